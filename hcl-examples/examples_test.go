package hclexamples

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"

	"github.com/cafilprox/cafilprox/classifiers"
	"github.com/cafilprox/cafilprox/rules"
	"github.com/cafilprox/cafilprox/rules/feed"
	"github.com/cafilprox/cafilprox/rules/typosquat"
)

// quietOptions opens feeds without log output and keeps downloads in a
// temporary directory.
func quietOptions(t *testing.T) rules.Options {
	return rules.Options{
		DataDir: t.TempDir(),
		OpenFeed: func(ctx context.Context, cfg feed.Config) (*feed.Feed, error) {
			cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
			return feed.Open(ctx, cfg)
		},
	}
}

// ecosystemMinAges reads min_age from ecosystem blocks, as the config
// package does before calling rules.Compile.
func ecosystemMinAges(t *testing.T, top *hcl.BodyContent) map[string]time.Duration {
	out := map[string]time.Duration{}
	for _, b := range top.Blocks {
		if b.Type != "ecosystem" {
			continue
		}
		attrs, _ := b.Body.JustAttributes()
		a, ok := attrs["min_age"]
		if !ok {
			continue
		}
		v, diags := a.Expr.Value(nil)
		if diags.HasErrors() {
			t.Fatal(diags.Error())
		}
		d, err := rules.ParseDuration(v.AsString())
		if err != nil {
			t.Fatal(err)
		}
		out[b.Labels[0]] = d
	}
	return out
}

// TestExamples parses every example, compiles its policy and runs its test
// blocks: each example must be valid and must carry tests that pass.
func TestExamples(t *testing.T) {
	files, err := filepath.Glob("*.hcl")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"advanced.hcl", "ci-default.hcl", "cooldown.hcl", "malicious-feed.hcl", "minimal-pypi.hcl", "shadow-rollout.hcl", "strict-ci.hcl"}
	for _, w := range want {
		found := false
		for _, f := range files {
			found = found || f == w
		}
		if !found {
			t.Errorf("example %s is missing", w)
		}
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			// Decode the way the config package does: top-level settings
			// first, the remaining body goes to the policy engine.
			p := hclparse.NewParser()
			file, diags := p.ParseHCLFile(f)
			if diags.HasErrors() {
				t.Fatalf("parse: %s", diags.Error())
			}
			top, rest, diags := file.Body.PartialContent(rules.TopLevelSchema)
			if diags.HasErrors() {
				t.Fatalf("top level: %s", diags.Error())
			}
			opts := quietOptions(t)
			opts.MinAge = ecosystemMinAges(t, top)
			e, diags := rules.Compile(rest, opts)
			if diags.HasErrors() {
				t.Fatalf("compile: %s", diags.Error())
			}
			if len(diags) > 0 {
				t.Errorf("got warnings %s, want none", diags.Error())
			}
			if len(e.Tests()) == 0 {
				t.Fatalf("got no test blocks, want some")
			}
			for _, r := range e.RunTests() {
				if !r.Pass {
					t.Errorf("%s (%s): %s", r.Name, r.Range, r.Message)
				}
			}
			// ParseFile, used by `cafilprox policy check|test`, agrees.
			e2, diags := rules.ParseFile(f, quietOptions(t))
			if diags.HasErrors() {
				t.Fatalf("ParseFile: %s", diags.Error())
			}
			if got, want := len(e2.RunTests()), len(e.Tests()); got != want {
				t.Errorf("ParseFile ran %d tests, want %d", got, want)
			}
		})
	}
}

// TestExampleDiagnostics checks that a mistake in an example-style file is
// reported with its position.
func TestExampleDiagnostics(t *testing.T) {
	src := []byte("listen = \"127.0.0.1:8080\"\nrule \"x\" {\n  action = \"deny\"\n  pakage = \"typo\"\n}\n")
	file, diags := hclparse.NewParser().ParseHCL(src, "bad.hcl")
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	_, rest, _ := file.Body.PartialContent(rules.TopLevelSchema)
	_, diags = rules.Compile(rest, rules.Options{})
	if !diags.HasErrors() {
		t.Fatal("got no error, want one for the misspelt attribute")
	}
	var d *hcl.Diagnostic = diags[0]
	if got, want := d.Subject.String(), "bad.hcl:4,3-9"; got != want {
		t.Errorf("got position %s, want %s", got, want)
	}
}

// TestCIDefaultWithTyposquatIndex runs the recommended policy with the
// shipped popular-name index instead of a test override.
func TestCIDefaultWithTyposquatIndex(t *testing.T) {
	opts := quietOptions(t)
	opts.Typosquat = typosquat.Default()
	e, diags := rules.ParseFile("ci-default.hcl", opts)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	old := &classifiers.Version{Version: "2.31.0", Published: time.Now().Add(-400 * 24 * time.Hour)}
	md := &classifiers.Metadata{Versions: []classifiers.Version{*old}}
	tests := []struct {
		eco, name string
		want      bool
	}{
		{"pypi", "reqeusts", false},
		{"pypi", "requests", true},
		{"npm", "expresss", false},
		{"npm", "express", true},
	}
	for _, tt := range tests {
		t.Run(tt.eco+"/"+tt.name, func(t *testing.T) {
			d := e.Decide(rules.Subject{Ecosystem: tt.eco, Package: tt.name, Version: old.Version, Facts: old, Meta: md})
			if d.Allow != tt.want {
				t.Errorf("got allow %v (rule %q: %s), want %v", d.Allow, d.Rule, d.Reason, tt.want)
			}
			if !tt.want && d.Rule != "typosquat" {
				t.Errorf("got rule %q, want typosquat", d.Rule)
			}
		})
	}
}
