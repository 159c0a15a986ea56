package rules

import (
	"fmt"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/cafilprox/cafilprox/classifiers"
)

// TestFastMatchesHCL evaluates expressions both compiled and through HCL
// over several subjects: wherever HCL gives a known result the compiled
// form must agree, and compiled-unknown must be HCL-unknown.
func TestFastMatchesHCL(t *testing.T) {
	fixClock(t)
	exprs := []string{
		`pkg.age < duration("10d")`,
		`pkg.age >= duration("1w") && !contains(["my-org-*"], pkg.name)`,
		`pkg.typosquat_of != ""`,
		`pkg.provenance_regressed`,
		`pkg.has_install_script && pkg.package_age < duration("90d")`,
		`pkg.yanked || pkg.malicious`,
		`contains(["GPL-*", "AGPL-3.0"], pkg.license)`,
		`contains(client.groups, "ci")`,
		`cidr_contains("10.0.0.0/8", client.ip) && client.user == "ci"`,
		`startswith(pkg.name, "@types/") || endswith(pkg.name, "-dev") || matches(pkg.version, "*-rc*")`,
		`pkg.ecosystem == "npm" ? pkg.age > 3600 : pkg.age > 7200`,
		`pkg.age * 2 - 60 + 1 > duration("1d")`,
		`-pkg.package_age < 0`,
		`pkg.first_seen == "" || pkg.published != ""`,
		`pkg.retagged == false && pkg.internal != true`,
		`"${pkg.name}@${pkg.ecosystem} ${pkg.internal} ${1.5}" == "x@npm true 1.5"`,
	}
	md := &classifiers.Metadata{Versions: []classifiers.Version{
		{Version: "1.0.0", Published: t0.Add(-day(300)), Provenance: true},
		{Version: "1.1.0-rc.1", Published: t0.Add(-day(3)), License: "GPL-3.0", HasInstallScript: true, Yanked: true},
	}}
	subjects := []struct {
		pc *pkgCtx
		in verInput
	}{
		{pc: &pkgCtx{e: &Engine{}, eco: "npm", name: "my-org-x", t: t0}, in: verInput{version: "1.0.0"}},
		{pc: &pkgCtx{e: &Engine{}, eco: "npm", name: "@types/node", t: t0, meta: md, firstPub: md.Versions[0].Published, groups: []string{"ci"},
			client: Client{IP: ip("10.1.1.1"), User: "ci"}, typo: "x"}, in: verInput{version: "1.1.0-rc.1", facts: &md.Versions[1], retagged: true}},
		{pc: &pkgCtx{e: &Engine{}, eco: "pypi", name: "foo-dev", t: t0, meta: md, firstPub: md.Versions[0].Published}, in: verInput{version: "1.0.0", facts: &md.Versions[0], firstSeen: t0.Add(-day(1))}},
		{pc: &pkgCtx{e: &Engine{}, eco: "npm", name: "x", t: t0, internal: true}, in: verInput{}},
	}
	for _, src := range exprs {
		x, diags := hclsyntax.ParseExpression([]byte(src), "e.hcl", hcl.InitialPos)
		if diags.HasErrors() {
			t.Fatalf("%s: %s", src, diags.Error())
		}
		f, k := compileFast(x)
		if f == nil || k != kBool {
			t.Errorf("%s: not compiled (kind %d), want compiled bool", src, k)
			continue
		}
		for i, s := range subjects {
			t.Run(fmt.Sprintf("%s/%d", src, i), func(t *testing.T) {
				st := &evalState{pc: s.pc, in: s.in, malicious: i == 3}
				fast := f(st)
				hv, diags := x.Value(st.evalCtx())
				if diags.HasErrors() {
					t.Fatalf("hcl: %s", diags.Error())
				}
				if !hv.IsKnown() {
					return // Kleene logic may decide where HCL stays unknown
				}
				if !fast.known {
					t.Fatalf("got unknown, want %v as hcl", hv.True())
				}
				if hv.Type() != cty.Bool || fast.b != hv.True() {
					t.Errorf("got %v, want %#v", fast.b, hv)
				}
			})
		}
	}
}

func TestFastFallback(t *testing.T) {
	for _, src := range []string{`length(pkg.name) > 3`, `pkg.age / 86400 > 1`, `regex("^a", pkg.name) != ""`, `duration(pkg.name) > 0`} {
		x, diags := hclsyntax.ParseExpression([]byte(src), "e.hcl", hcl.InitialPos)
		if diags.HasErrors() {
			t.Fatal(diags.Error())
		}
		if f, _ := compileFast(x); f != nil {
			t.Errorf("%s: got compiled, want HCL fallback", src)
		}
	}
}
