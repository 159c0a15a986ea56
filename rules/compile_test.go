package rules

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/hclparse"

	"github.com/cafilprox/cafilprox/classifiers"
	"github.com/cafilprox/cafilprox/rules/feed"
)

func TestCompileDiagnostics(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string // substring of the first error, with its position
	}{
		{"unknown block", `rules "x" {}`, `policy.hcl:1,1-6: Unsupported block type`},
		{"unknown attribute", "rule \"x\" {\n  action = \"deny\"\n  pakage = \"a\"\n}", `policy.hcl:3,3-9: Unsupported argument`},
		{"top-level attribute", `listen = "x"`, `Unsupported argument`},
		{"bad action", "rule \"x\" {\n  action = \"block\"\n}", `policy.hcl:2,12-19: Invalid action`},
		{"missing action", `rule "x" { package = "a" }`, `Missing action`},
		{"versions without ecosystem", "rule \"x\" {\n  package = \"a\"\n  versions = \"1.0\"\n  action = \"deny\"\n}", `versions needs ecosystem`},
		{"bad constraint", "rule \"x\" {\n  ecosystem = \"npm\"\n  package = \"a\"\n  versions = \">=>1\"\n  action = \"deny\"\n}", `policy.hcl:4,14-20: Invalid versions`},
		{"unknown ecosystem", `rule "x" {
  ecosystem = "nuget"
  action    = "deny"
}`, `Unknown ecosystem`},
		{"incomplete pin", `rule "x" {
  ecosystem = "npm"
  package   = "a"
  action    = "pin"
}`, `Incomplete pin`},
		{"unknown client group", `rule "x" {
  action  = "deny"
  clients = ["ci"]
}`, `Unknown client group`},
		{"unknown pkg attribute", `rule "x" {
  when   = pkg.agee > 1
  action = "deny"
}`, `policy.hcl:2,12-20: Unsupported attribute`},
		{"unknown variable", `rule "x" {
  when   = foo.bar
  action = "deny"
}`, `Unknown variable`},
		{"unknown function", `rule "x" {
  when   = durashun("1d") > 0
  action = "deny"
}`, `Call to unknown function`},
		{"bad duration literal in when", `rule "x" {
  when   = pkg.age < duration("ten days")
  action = "deny"
}`, `invalid duration`},
		{"when not bool", `rule "x" {
  when   = pkg.name
  action = "deny"
}`, `Wrong type`},
		{"bad expires", `rule "x" {
  action  = "deny"
  expires = "next year"
}`, `Invalid expires`},
		{"duplicate rule", `rule "x" { action = "deny" }
rule "x" { action = "deny" }`, `policy.hcl:2,1-9: Duplicate rule`},
		{"reserved rule name", `rule "cooldown" { action = "allow" }`, `Reserved rule name`},
		{"duplicate client", "client \"a\" { users = [\"x\"] }\nclient \"a\" { users = [\"y\"] }", `policy.hcl:2,1-11: Duplicate client group; Client group "a" is already defined at policy.hcl:1,1-11`},
		{"bad min_age", `policy { min_age = "ten" }`, `Invalid min_age`},
		{"bad default", `policy { default = "block" }`, `Invalid default`},
		{"duplicate policy", "policy {}\npolicy {}", `Duplicate policy block`},
		{"bad cidr", `client "ci" { cidrs = ["10.0.0.0/33"] }`, `Invalid CIDR`},
		{"empty client", `client "ci" {}`, `Empty client group`},
		{"override on deny", `rule "x" {
  action             = "deny"
  override_malicious = true
}`, `override_malicious needs allow`},
		{"feed without source", `feed "f" { type = "osv" }`, `Feed without source`},
		{"feed bad type", `feed "f" {
  type = "csv"
  path = "x"
}`, `Invalid type`},
		{"feed missing path", `feed "f" { path = "/nonexistent/feed/dir" }`, `Cannot load feed`},
		{"internal unknown ecosystem", `internal { nuget = ["x"] }`, `Unsupported argument`},
		{"test missing expect", `test "t" {
  ecosystem = "npm"
  package   = "a"
}`, `Missing expect`},
		{"test bad client", `test "t" {
  ecosystem = "npm"
  package   = "a"
  expect    = "allow"
  client    = { ip = "nope" }
}`, `Invalid client ip`},
		{"test published and age", `test "t" {
  ecosystem = "npm"
  package   = "a"
  expect    = "allow"
  published = "2026-01-01T00:00:00Z"
  age       = "1d"
}`, `Conflicting age`},
		{"reason bad reference", `rule "x" {
  action = "deny"
  reason = "${pkg.nam}"
}`, `Unsupported attribute`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, diags := parse(t, tt.src, Options{})
			if !diags.HasErrors() {
				t.Fatalf("got no error, want %q", tt.want)
			}
			if e != nil {
				t.Error("got an engine despite errors, want nil")
			}
			if got := diags.Error(); !strings.Contains(got, tt.want) {
				t.Errorf("got %q, want it to contain %q", got, tt.want)
			}
		})
	}
}

func TestCompileValid(t *testing.T) {
	e := mustCompile(t, `
policy {
  default    = "deny"
  min_age    = "1w"
  mode       = "shadow"
  age_source = "max"
}
client "ci" { cidrs = ["10.0.0.1", "fd00::/8"] }
rule "a" {
  ecosystem = "maven"
  package   = "org.apache.logging.log4j:log4j-core"
  versions  = "[2.0,2.17.1)"
  action    = "deny"
  clients   = ["ci"]
  expires   = "2030-01-01T00:00:00Z"
  when      = cidr_contains("10.0.0.0/8", client.ip) && contains(client.groups, "ci") && startswith(pkg.name, "org.")
}
rule "b" {
  ecosystem = "cargo"
  package   = "tokio"
  versions  = ">=1.0, <1.38"
  action    = "pin"
}
rule "c" {
  ecosystem = "rubygems"
  package   = "rails"
  versions  = "~> 7.1"
  action    = "allow"
}
rule "d" {
  ecosystem = "composer"
  package   = "symfony/*"
  versions  = "^6.4 || ^7.0"
  action    = "allow"
}
rule "e" {
  ecosystem = "go"
  package   = "golang.org/x/*"
  versions  = ">=v0.20.0"
  action    = "allow"
}
internal {
  npm = ["@corp/*"]
}
`, Options{})
	if got, want := e.Default(), "deny"; got != want {
		t.Errorf("got default %q, want %q", got, want)
	}
	if got := e.Groups(Client{IP: ip("10.0.0.1")}); len(got) != 1 || got[0] != "ci" {
		t.Errorf("got groups %v, want [ci] for a bare-address cidr", got)
	}
	if got := e.Groups(Client{IP: ip("10.0.0.2")}); len(got) != 0 {
		t.Errorf("got groups %v, want none", got)
	}
	if !e.Internal("npm", "@corp/x") || e.Internal("npm", "@other/x") {
		t.Error("Internal: got wrong answer for @corp/x or @other/x")
	}
}

func TestVersionMatching(t *testing.T) {
	tests := []struct {
		eco, cons, action, version string
		want                       bool
	}{
		{"pypi", "==2.28.1", "pin", "2.28.1", true},
		{"pypi", "==2.28.1", "pin", "2.28.2", false},
		{"pypi", ">=2,<3", "allow", "2.5.0", true},
		{"pypi", "~=1.4", "allow", "1.9", true},
		{"pypi", "~=1.4", "allow", "2.0", false},
		{"npm", "^1.2.0", "allow", "1.9.9", true},
		{"npm", "^1.2.0", "allow", "2.0.0", false},
		{"npm", ">=1.0.0", "allow", "1.5.0-rc.1", false},
		{"npm", ">=1.0.0", "deny", "1.5.0-rc.1", true},
		{"npm", "1.2.3", "deny", "1.2.3", true},
		{"go", ">=v1.2.0", "deny", "v1.3.0", true},
		{"go", ">=v1.2.0", "deny", "v1.1.0", false},
		{"cargo", "^0.3", "allow", "0.3.9", true},
		{"cargo", "^0.3", "allow", "0.4.0", false},
		{"rubygems", "~> 7.1", "allow", "7.2.0", true},
		{"rubygems", "~> 7.1", "allow", "8.0.0", false},
		{"maven", "[2.0,2.17.1)", "deny", "2.14.0", true},
		{"maven", "[2.0,2.17.1)", "deny", "2.17.1", false},
		{"composer", "^6.4 || ^7.0", "allow", "7.1.0", true},
		{"composer", "^6.4 || ^7.0", "allow", "5.4.0", false},
		{"npm", "1.2.3", "pin", "not a version", false},
		{"composer", "~1.2", "allow", "1.9.0", true},
		{"composer", "~1.2", "allow", "2.0.0", false},
		{"composer", "~1.2.3", "allow", "1.2.9", true},
		{"composer", "~1.2.3", "allow", "1.3.0", false},
		{"composer", ">=1.0,<1.5", "allow", "v1.4.0", true},
		{"go", "v1.2.3", "pin", "v1.2.3", true},
		{"go", "<v2", "deny", "v2.0.0+incompatible", false},
		{"go", ">=v0.20.0", "deny", "v0.0.0-20240101000000-abcdefabcdef", false},
		{"go", ">=v0.20.0", "deny", "v0.21.0-pre", true},
	}
	for _, tt := range tests {
		t.Run(tt.eco+" "+tt.cons+" "+tt.action+" "+tt.version, func(t *testing.T) {
			c, err := parseConstraint(tt.eco, tt.cons)
			if err != nil {
				t.Fatal(err)
			}
			r := &rule{versions: tt.cons, cons: c, action: tt.action}
			if got := versionMatches(r, tt.eco, tt.version); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func FuzzParseConstraint(f *testing.F) {
	for _, s := range []string{">=1.0.0", "^6.4 || ~7.0", "[2.0,2.17.1)", "~> 7.1", "==2.28.1", ">=>1", "~1.2, <1.5"} {
		f.Add("composer", s, "1.2.3")
		f.Add("npm", s, "1.2.3")
	}
	f.Fuzz(func(t *testing.T, eco, cons, version string) {
		c, err := parseConstraint(eco, cons) // must not panic
		if err != nil {
			return
		}
		versionMatches(&rule{versions: cons, cons: c, action: actDeny}, eco, version)
	})
}

// FuzzCompile: any policy text either compiles or yields diagnostics, and a
// compiled policy decides without panicking.
func FuzzCompile(f *testing.F) {
	f.Add(policySrc)
	f.Add(`rule "x" {
  when   = pkg.age < duration("1d") || contains(client.groups, "ci")
  action = "deny"
  reason = "${pkg.name}"
}`)
	f.Add(`policy { default = "deny" }`)
	f.Fuzz(func(t *testing.T, src string) {
		file, diags := hclparse.NewParser().ParseHCL([]byte(src), "fuzz.hcl")
		if diags.HasErrors() {
			return
		}
		e, diags := Compile(file.Body, Options{})
		if diags.HasErrors() {
			if e != nil {
				t.Fatal("got an engine with errors")
			}
			return
		}
		e.Decide(Subject{Ecosystem: "npm", Package: "x", Version: "1.0.0", Facts: &classifiers.Version{Version: "1.0.0"}})
		e.Keep("pypi", "x", nil, Client{})("1")
		e.RunTests()
	})
}

func TestFeedsNotOpenedForInvalidPolicy(t *testing.T) {
	opened := 0
	opts := Options{OpenFeed: func(ctx context.Context, cfg feed.Config) (*feed.Feed, error) {
		opened++
		return nil, errors.New("should not be called")
	}}
	_, diags := parse(t, `feed "f" { path = "x" }
rule "bad" { action = "nope" }`, opts)
	if !diags.HasErrors() {
		t.Fatal("got no error, want one")
	}
	if opened != 0 {
		t.Errorf("got %d feed opens, want 0 for an invalid policy", opened)
	}
	_, diags = parse(t, `feed "f" { path = "x" }`, opts)
	if opened != 1 || !strings.Contains(diags.Error(), "should not be called") {
		t.Errorf("got %d opens and %q, want 1 open and its error", opened, diags.Error())
	}
}
