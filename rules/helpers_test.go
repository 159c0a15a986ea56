package rules

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"

	"github.com/cafilprox/cafilprox/classifiers"
)

var t0 = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// fixClock sets now to t0 for the test.
func fixClock(t testing.TB) {
	old := now
	now = func() time.Time { return t0 }
	t.Cleanup(func() { now = old })
}

func parse(t testing.TB, src string, opts Options) (*Engine, hcl.Diagnostics) {
	t.Helper()
	f, diags := hclparse.NewParser().ParseHCL([]byte(src), "policy.hcl")
	if diags.HasErrors() {
		t.Fatalf("parse: %s", diags.Error())
	}
	return Compile(f.Body, opts)
}

func mustCompile(t testing.TB, src string, opts Options) *Engine {
	t.Helper()
	e, diags := parse(t, src, opts)
	if diags.HasErrors() {
		t.Fatalf("compile: %s", diags.Error())
	}
	return e
}

// fakeIndex is an in-memory MaliciousIndex: key eco/name → versions ("" =
// every version).
type fakeIndex map[string]map[string]Advisory

func (f fakeIndex) Match(eco, name, version string) []Advisory {
	vs := f[eco+"/"+name]
	if a, ok := vs[version]; ok {
		return []Advisory{a}
	}
	return nil
}

func (f fakeIndex) AllVersions(eco, name string) []Advisory {
	if a, ok := f[eco+"/"+name][""]; ok {
		return []Advisory{a}
	}
	return nil
}

type fakeTypo map[string]string

func (f fakeTypo) Check(eco, name string) (string, bool) {
	p, ok := f[eco+"/"+name]
	return p, ok
}

func ver(v string, age time.Duration) *classifiers.Version {
	return &classifiers.Version{Version: v, Published: t0.Add(-age)}
}

func day(n int) time.Duration { return time.Duration(n) * 24 * time.Hour }

func ip(s string) net.IP { return net.ParseIP(s) }

func verdict(d Decision) string {
	switch {
	case !d.Allow:
		return "deny"
	case d.Shadow:
		return "shadow"
	}
	return "allow"
}

func matchRules(d Decision) string {
	var out []string
	for _, m := range d.Matches {
		s := m.Rule + ":" + m.Action
		if m.Waived {
			s += "(waived)"
		}
		if m.Shadow {
			s += "(shadow)"
		}
		out = append(out, s)
	}
	return strings.Join(out, ",")
}
