package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/cafilprox/cafilprox/ca"
	"github.com/cafilprox/cafilprox/classifiers"
	"github.com/cafilprox/cafilprox/config"
	"github.com/cafilprox/cafilprox/rules"
)

func runPolicy(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{"usage: cafilprox policy check|explain|test [flags] ..."}
	}
	sub, args := args[0], args[1:]
	fs := newFlagSet("policy "+sub, stderr)
	var c common
	c.register(fs, false)
	switch sub {
	case "check", "test":
		if err := fs.Parse(args); err != nil {
			return err
		}
		file := c.config
		if fs.NArg() == 1 {
			file = fs.Arg(0)
		} else if fs.NArg() > 1 || file == "" {
			return usageError{"usage: cafilprox policy " + sub + " FILE"}
		}
		cfg, err := config.Load(file)
		if err != nil {
			return err
		}
		a := &app{cfg: cfg}
		eng, err := a.compilePolicy(cfg)
		if err != nil {
			return err
		}
		if sub == "check" {
			fmt.Fprintf(stdout, "%s: policy OK (%d test blocks, policy %s)\n", file, len(eng.Tests()), eng.Hash())
			return nil
		}
		return printTests(stdout, file, eng)
	case "explain":
		client := fs.String("client", "", "client IP or proxy user (user:NAME) to evaluate per-client rules for")
		online := fs.Bool("online", true, "fetch version facts from the registry when not cached")
		if err := fs.Parse(args); err != nil {
			return err
		}
		if fs.NArg() != 2 {
			return usageError{"usage: cafilprox policy explain [--client IP] ECOSYSTEM NAME@VERSION"}
		}
		eco := fs.Arg(0)
		name, version := splitNameVersion(fs.Arg(1))
		cfg, err := c.load()
		if err != nil {
			return err
		}
		authority, _, err := ca.LoadOrCreate(caDir(cfg))
		if err != nil {
			return err
		}
		a, err := newApp(cfg, authority, newLogger("text", io.Discard))
		if err != nil {
			return err
		}
		defer a.close()
		if !*online {
			a.offline = true
		}
		res, err := explainWith(context.Background(), a, a.policy.Load(), eco, name, version, *client)
		if err != nil {
			return err
		}
		b, _ := json.MarshalIndent(res, "", "  ")
		fmt.Fprintln(stdout, string(b))
		return nil
	default:
		return usageError{fmt.Sprintf("unknown policy command %q (check, explain, test)", sub)}
	}
}

func printTests(w io.Writer, file string, eng *rules.Engine) error {
	results := eng.RunTests()
	failed := 0
	for _, r := range results {
		if r.Pass {
			fmt.Fprintf(w, "PASS %s\n", r.Name)
			continue
		}
		failed++
		fmt.Fprintf(w, "FAIL %s (%s:%d:%d): %s\n", r.Name, r.Range.Filename, r.Range.Start.Line, r.Range.Start.Column, r.Message)
	}
	fmt.Fprintf(w, "%d passed, %d failed\n", len(results)-failed, failed)
	if len(results) == 0 {
		return fmt.Errorf("%s has no test blocks", file)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d policy tests failed", failed, len(results))
	}
	return nil
}

// splitNameVersion splits NAME@VERSION, keeping a leading @ of npm scopes.
func splitNameVersion(s string) (name, version string) {
	i := strings.LastIndexByte(s, '@')
	if i <= 0 {
		return s, ""
	}
	return s[:i], s[i+1:]
}

// Explanation is what `policy explain` and the admin API return.
type Explanation struct {
	Ecosystem string        `json:"ecosystem"`
	Package   string        `json:"package"`
	Version   string        `json:"version,omitempty"`
	Client    string        `json:"client,omitempty"`
	Groups    []string      `json:"groups,omitempty"`
	Decision  string        `json:"decision"`
	Rule      string        `json:"rule,omitempty"`
	Reason    string        `json:"reason,omitempty"`
	Suggest   string        `json:"suggest,omitempty"`
	Matches   []rules.Match `json:"matches"`
	Facts     *factsJSON    `json:"facts,omitempty"`
	FactsErr  string        `json:"facts_error,omitempty"`
	Policy    string        `json:"policy"`
}

type factsJSON struct {
	Published        time.Time `json:"published,omitempty"`
	Yanked           bool      `json:"yanked,omitempty"`
	Provenance       bool      `json:"provenance,omitempty"`
	Publisher        string    `json:"publisher,omitempty"`
	HasInstallScript bool      `json:"has_install_script,omitempty"`
	License          string    `json:"license,omitempty"`
	Integrity        string    `json:"integrity,omitempty"`
}

// explainWith evaluates the policy for one package version, fetching the
// version facts through the cache (offline: only what is cached).
func explainWith(ctx context.Context, a *app, p *rules.Engine, eco, name, version, client string) (*Explanation, error) {
	cl := a.set.ForEcosystem(eco)
	if cl == nil {
		return nil, fmt.Errorf("unknown ecosystem %q (one of %s)", eco, strings.Join(classifiers.Ecosystems, ", "))
	}
	pkg := rules.Normalize(eco, name)
	s := rules.Subject{Ecosystem: eco, Package: pkg, Version: version}
	if client != "" {
		if u, ok := strings.CutPrefix(client, "user:"); ok {
			s.Client.User = u
		} else if ip := net.ParseIP(client); ip != nil {
			s.Client.IP = ip
		} else {
			return nil, fmt.Errorf("client %q is neither an IP address nor user:NAME", client)
		}
	}
	ex := &Explanation{Ecosystem: eco, Package: pkg, Version: version, Client: client, Policy: p.Hash(), Groups: p.Groups(s.Client)}
	md, err := a.versionFacts(ctx, eco, pkg, version)
	if err != nil {
		ex.FactsErr = err.Error()
	}
	if v := md.Version(version); v != nil {
		s.Facts = v
		ex.Facts = &factsJSON{Published: v.Published, Yanked: v.Yanked, Provenance: v.Provenance, Publisher: v.Publisher,
			HasInstallScript: v.HasInstallScript, License: v.License, Integrity: v.Integrity}
	}
	s.Meta = md
	d := p.Decide(s)
	ex.Decision = "allow"
	if !d.Allow {
		ex.Decision = "deny"
	} else if d.Shadow {
		ex.Decision = "shadow-deny"
	}
	ex.Rule, ex.Reason, ex.Suggest, ex.Matches = d.Rule, d.Reason, d.Suggest, d.Matches
	if ex.Matches == nil {
		ex.Matches = []rules.Match{}
	}
	return ex, nil
}
