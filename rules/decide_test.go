package rules

import (
	"strings"
	"testing"
	"time"

	"github.com/cafilprox/cafilprox/classifiers"
)

const policySrc = `
policy {
  default = "allow"
  min_age = "10d"
}
client "ci" {
  cidrs   = ["10.20.0.0/16"]
  users   = ["ci-bot"]
  min_age = "20d"
}
client "sec" {
  users = ["alice"]
}
internal {
  npm = ["@mycorp/*"]
}
rule "deny-bad" {
  ecosystem = "pypi"
  package   = "bad_package"
  action    = "deny"
  reason    = "Security vulnerability in ${pkg.name}@${pkg.version}"
}
rule "allow-bad" {
  ecosystem = "pypi"
  package   = "bad-package"
  action    = "allow"
}
rule "pin-requests" {
  ecosystem = "pypi"
  package   = "requests"
  versions  = "==2.28.1"
  action    = "pin"
}
rule "waiver" {
  ecosystem = "npm"
  package   = "next"
  versions  = "15.2.3"
  action    = "allow"
}
rule "expired-waiver" {
  ecosystem = "npm"
  package   = "next"
  versions  = "15.2.4"
  action    = "allow"
  expires   = "2026-05-31"
}
rule "name-allow" {
  ecosystem = "npm"
  package   = "react"
  action    = "allow"
}
rule "deny-range" {
  ecosystem = "npm"
  package   = "colors"
  versions  = ">=1.4.1"
  action    = "deny"
}
rule "override" {
  ecosystem          = "npm"
  package            = "research-sample"
  action             = "allow"
  override_malicious = true
}
rule "plain-allow-malicious" {
  ecosystem = "npm"
  package   = "evil"
  action    = "allow"
}
rule "shadow-scripts" {
  ecosystem = "npm"
  when      = pkg.has_install_script
  action    = "deny"
  mode      = "shadow"
  reason    = "install script in ${pkg.name}"
}
rule "ci-only" {
  ecosystem = "cargo"
  package   = "serde*"
  action    = "deny"
  clients   = ["ci"]
}
rule "typosquat" {
  when   = pkg.typosquat_of != ""
  action = "deny"
  reason = "${pkg.name} imitates ${pkg.typosquat_of}"
}
rule "regressed" {
  when   = pkg.provenance_regressed
  action = "deny"
}
rule "young-package" {
  ecosystem = "rubygems"
  when      = pkg.package_age < duration("30d")
  action    = "deny"
}
rule "bad-when" {
  ecosystem = "composer"
  when      = regex("^[a-z]+$", pkg.name) != ""
  action    = "deny"
}
`

func TestDecide(t *testing.T) {
	fixClock(t)
	mal := fakeIndex{
		"npm/evil":            {"": {ID: "MAL-1", Summary: "steals tokens"}},
		"npm/research-sample": {"": {ID: "MAL-2", Summary: "sample"}},
		"pypi/flaky":          {"1.0.1": {ID: "MAL-3", Summary: "bad release"}},
	}
	e := mustCompile(t, policySrc, Options{Malicious: []MaliciousIndex{mal}, Typosquat: fakeTypo{"pypi/reqeusts": "requests"}})
	old := ver("1.0.0", day(100))
	history := &classifiers.Metadata{Versions: []classifiers.Version{
		{Version: "1.0.0", Published: t0.Add(-day(100)), Provenance: true, Publisher: "github-actions"},
		{Version: "1.1.0", Published: t0.Add(-day(50)), Provenance: true, Publisher: "github-actions"},
		{Version: "1.2.0", Published: t0.Add(-day(40))},
	}}
	tests := []struct {
		name   string
		s      Subject
		want   string // allow | deny | shadow
		rule   string
		reason string // substring
	}{
		{name: "deny wins over allow", s: Subject{Ecosystem: "pypi", Package: "Bad.Package", Version: "1.0", Facts: old},
			want: "deny", rule: "deny-bad", reason: "Security vulnerability in Bad.Package@1.0"},
		{name: "pinned version allowed", s: Subject{Ecosystem: "pypi", Package: "requests", Version: "2.28.1", Facts: old}, want: "allow"},
		{name: "other version refused by pin", s: Subject{Ecosystem: "pypi", Package: "requests", Version: "2.32.0", Facts: old},
			want: "deny", rule: "pin-requests", reason: "pinned to ==2.28.1"},
		{name: "pin ignores other packages", s: Subject{Ecosystem: "pypi", Package: "requests-oauthlib", Version: "2.0.0", Facts: old}, want: "allow"},
		{name: "cooldown", s: Subject{Ecosystem: "npm", Package: "express", Version: "5.0.0", Facts: ver("5.0.0", day(3))},
			want: "deny", rule: "cooldown", reason: "published 3d ago, younger than min_age 10d"},
		{name: "cooldown passed", s: Subject{Ecosystem: "npm", Package: "express", Version: "5.0.0", Facts: ver("5.0.0", day(11))}, want: "allow"},
		{name: "unknown publish time allowed", s: Subject{Ecosystem: "npm", Package: "express", Version: "5.0.0"}, want: "allow"},
		{name: "exact allow waives cooldown", s: Subject{Ecosystem: "npm", Package: "next", Version: "15.2.3", Facts: ver("15.2.3", time.Hour)}, want: "allow"},
		{name: "expired waiver ignored", s: Subject{Ecosystem: "npm", Package: "next", Version: "15.2.4", Facts: ver("15.2.4", time.Hour)},
			want: "deny", rule: "cooldown"},
		{name: "name allow keeps cooldown", s: Subject{Ecosystem: "npm", Package: "react", Version: "19.0.0", Facts: ver("19.0.0", time.Hour)},
			want: "deny", rule: "cooldown"},
		{name: "deny range", s: Subject{Ecosystem: "npm", Package: "colors", Version: "1.4.2", Facts: old}, want: "deny", rule: "deny-range"},
		{name: "deny range catches prerelease", s: Subject{Ecosystem: "npm", Package: "colors", Version: "1.5.0-rc.1", Facts: old}, want: "deny", rule: "deny-range"},
		{name: "below range", s: Subject{Ecosystem: "npm", Package: "colors", Version: "1.4.0", Facts: old}, want: "allow"},
		{name: "malicious every version", s: Subject{Ecosystem: "npm", Package: "evil", Version: "9.9.9", Facts: old},
			want: "deny", rule: "malicious", reason: "MAL-1 (steals tokens)"},
		{name: "malicious package-level", s: Subject{Ecosystem: "npm", Package: "evil"}, want: "deny", rule: "malicious"},
		{name: "override_malicious waives", s: Subject{Ecosystem: "npm", Package: "research-sample", Version: "1.0.0", Facts: old}, want: "allow"},
		{name: "malicious version", s: Subject{Ecosystem: "pypi", Package: "flaky", Version: "1.0.1", Facts: old}, want: "deny", reason: "MAL-3"},
		{name: "clean version of flagged package", s: Subject{Ecosystem: "pypi", Package: "flaky", Version: "1.0.0", Facts: old}, want: "allow"},
		{name: "shadow rule", s: Subject{Ecosystem: "npm", Package: "esbuild", Version: "0.25.0",
			Facts: &classifiers.Version{Version: "0.25.0", Published: t0.Add(-day(30)), HasInstallScript: true}},
			want: "shadow", rule: "shadow-scripts", reason: "install script in esbuild"},
		{name: "when unknown without facts", s: Subject{Ecosystem: "npm", Package: "esbuild", Version: "0.25.0"}, want: "allow"},
		{name: "client group by cidr", s: Subject{Ecosystem: "cargo", Package: "serde_json", Version: "1.0.0", Facts: old, Client: Client{IP: ip("10.20.1.1")}},
			want: "deny", rule: "ci-only"},
		{name: "client group by user", s: Subject{Ecosystem: "cargo", Package: "serde", Version: "1.0.0", Facts: old, Client: Client{User: "ci-bot"}},
			want: "deny", rule: "ci-only"},
		{name: "outside client group", s: Subject{Ecosystem: "cargo", Package: "serde", Version: "1.0.0", Facts: old, Client: Client{IP: ip("192.168.0.1")}}, want: "allow"},
		{name: "strictest min_age of groups", s: Subject{Ecosystem: "pypi", Package: "django", Version: "5.0", Facts: ver("5.0", day(15)), Client: Client{IP: ip("10.20.1.1")}},
			want: "deny", rule: "cooldown", reason: "min_age 20d"},
		{name: "internal", s: Subject{Ecosystem: "npm", Package: "@mycorp/auth", Version: "99.0.0", Facts: old},
			want: "deny", rule: "internal", reason: "dependency confusion"},
		{name: "typosquat", s: Subject{Ecosystem: "pypi", Package: "reqeusts", Version: "1.0", Facts: old},
			want: "deny", rule: "typosquat", reason: "reqeusts imitates requests"},
		{name: "provenance regressed", s: Subject{Ecosystem: "npm", Package: "lib", Version: "1.2.0", Facts: &history.Versions[2], Meta: history},
			want: "deny", rule: "regressed"},
		{name: "provenance kept", s: Subject{Ecosystem: "npm", Package: "lib", Version: "1.1.0", Facts: &history.Versions[1], Meta: history}, want: "allow"},
		{name: "young package", s: Subject{Ecosystem: "rubygems", Package: "newgem", Version: "0.1.0", Facts: ver("0.1.0", day(12)),
			Meta: &classifiers.Metadata{Versions: []classifiers.Version{*ver("0.1.0", day(12))}}}, want: "deny", rule: "young-package"},
		{name: "retagged", s: Subject{Ecosystem: "composer", Package: "acme/lib", Version: "1.0.0", Facts: old, Retagged: true},
			want: "deny", rule: "retagged", reason: "re-tagged"},
		{name: "retagged waived by exact allow", s: Subject{Ecosystem: "npm", Package: "next", Version: "15.2.3", Facts: old, Retagged: true}, want: "allow"},
		{name: "runtime error does not match", s: Subject{Ecosystem: "composer", Package: "acme/x", Version: "1.0.0", Facts: old}, want: "allow"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := e.Decide(tt.s)
			if got := verdict(d); got != tt.want {
				t.Fatalf("got %s (rule %q: %s), want %s; matches %s", got, d.Rule, d.Reason, tt.want, matchRules(d))
			}
			if tt.rule != "" && d.Rule != tt.rule {
				t.Errorf("got rule %q, want %q", d.Rule, tt.rule)
			}
			if !strings.Contains(d.Reason, tt.reason) {
				t.Errorf("got reason %q, want it to contain %q", d.Reason, tt.reason)
			}
		})
	}
}

func TestDecideMatches(t *testing.T) {
	fixClock(t)
	e := mustCompile(t, policySrc, Options{Malicious: []MaliciousIndex{fakeIndex{"npm/research-sample": {"": {ID: "MAL-2"}}}}})
	tests := []struct {
		name string
		s    Subject
		want string
	}{
		{"deny and allow both listed", Subject{Ecosystem: "pypi", Package: "bad-package", Version: "1", Facts: ver("1", day(20))}, "deny-bad:deny,allow-bad:allow"},
		{"waived malicious", Subject{Ecosystem: "npm", Package: "research-sample", Version: "1", Facts: ver("1", day(20))}, "malicious:deny(waived),override:allow"},
		{"waived cooldown", Subject{Ecosystem: "npm", Package: "next", Version: "15.2.3", Facts: ver("15.2.3", day(1))}, "waiver:allow,cooldown:deny(waived)"},
		{"when error reported", Subject{Ecosystem: "composer", Package: "a/b", Version: "1"}, "bad-when:deny"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := e.Decide(tt.s)
			if got := matchRules(d); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
	d := e.Decide(Subject{Ecosystem: "composer", Package: "a/b", Version: "1"})
	if len(d.Matches) != 1 || d.Matches[0].Error == "" {
		t.Errorf("got matches %+v, want one with an evaluation error", d.Matches)
	}
}

func TestPlainAllowDoesNotWaiveMalicious(t *testing.T) {
	fixClock(t)
	e := mustCompile(t, policySrc, Options{Malicious: []MaliciousIndex{fakeIndex{"npm/evil": {"": {ID: "MAL-1"}}}}})
	d := e.Decide(Subject{Ecosystem: "npm", Package: "evil", Version: "1.0.0"})
	if d.Allow || d.Rule != "malicious" {
		t.Errorf("got allow=%v rule %q, want a malicious denial despite allow rule", d.Allow, d.Rule)
	}
	if d.Suggest != "" {
		t.Errorf("got suggestion %q for an every-version-malicious package, want none", d.Suggest)
	}
}

func TestDefaultDenyAndShadowPolicy(t *testing.T) {
	fixClock(t)
	src := `
policy {
  default = "deny"
  mode    = "%s"
}
rule "allow-requests" {
  ecosystem = "pypi"
  package   = "requests"
  action    = "allow"
}
rule "pin-urllib3" {
  ecosystem = "pypi"
  package   = "urllib3"
  versions  = ">=2,<3"
  action    = "pin"
}
`
	tests := []struct {
		mode, pkg, version, want, rule string
	}{
		{"enforce", "requests", "2.32.0", "allow", ""},
		{"enforce", "flask", "3.0.0", "deny", "default"},
		{"enforce", "urllib3", "2.2.0", "allow", ""},
		{"enforce", "urllib3", "1.26.0", "deny", "pin-urllib3"},
		{"shadow", "flask", "3.0.0", "shadow", "default"},
		{"shadow", "urllib3", "1.26.0", "shadow", "pin-urllib3"},
		{"shadow", "requests", "2.32.0", "allow", ""},
	}
	for _, tt := range tests {
		t.Run(tt.mode+"/"+tt.pkg+"@"+tt.version, func(t *testing.T) {
			e := mustCompile(t, strings.Replace(src, "%s", tt.mode, 1), Options{})
			d := e.Decide(Subject{Ecosystem: "pypi", Package: tt.pkg, Version: tt.version})
			if got := verdict(d); got != tt.want {
				t.Errorf("got %s (%s), want %s", got, d.Reason, tt.want)
			}
			if d.Rule != tt.rule {
				t.Errorf("got rule %q, want %q", d.Rule, tt.rule)
			}
		})
	}
}

func TestAgeSourceMax(t *testing.T) {
	fixClock(t)
	for _, tt := range []struct {
		source string
		want   string
	}{{"published", "allow"}, {"max", "deny"}} {
		t.Run(tt.source, func(t *testing.T) {
			e := mustCompile(t, `policy {
  min_age    = "7d"
  age_source = "`+tt.source+`"
}`, Options{})
			d := e.Decide(Subject{Ecosystem: "go", Package: "example.com/m", Version: "v1.0.0",
				Facts: ver("v1.0.0", day(2000)), FirstSeen: t0.Add(-day(1))})
			if got := verdict(d); got != tt.want {
				t.Errorf("got %s (%s), want %s", got, d.Reason, tt.want)
			}
			if tt.want == "deny" && !strings.Contains(d.Reason, "first seen 1d ago") {
				t.Errorf("got reason %q, want it to say first seen 1d ago", d.Reason)
			}
		})
	}
}

func TestEcosystemMinAgeOverride(t *testing.T) {
	fixClock(t)
	e := mustCompile(t, `policy { min_age = "10d" }`, Options{MinAge: map[string]time.Duration{"pypi": day(2)}})
	if d := e.Decide(Subject{Ecosystem: "pypi", Package: "x", Version: "1", Facts: ver("1", day(3))}); !d.Allow {
		t.Errorf("pypi: got deny (%s), want allow under its 2d override", d.Reason)
	}
	if d := e.Decide(Subject{Ecosystem: "npm", Package: "x", Version: "1", Facts: ver("1", day(3))}); d.Allow {
		t.Error("npm: got allow, want deny under policy min_age 10d")
	}
}

func TestSuggest(t *testing.T) {
	fixClock(t)
	e := mustCompile(t, `
policy { min_age = "10d" }
rule "no-4" {
  ecosystem = "npm"
  package   = "lib"
  versions  = ">=4.0.0"
  action    = "deny"
}`, Options{})
	md := &classifiers.Metadata{Versions: []classifiers.Version{
		*ver("2.0.0", day(300)), *ver("3.1.0", day(100)), *ver("3.10.0", day(20)),
		*ver("3.11.0", day(2)), *ver("4.0.0", day(50)), {Version: "3.12.0", Published: t0.Add(-day(30)), Yanked: true},
	}}
	d := e.Decide(Subject{Ecosystem: "npm", Package: "lib", Version: "4.0.0", Facts: &md.Versions[4], Meta: md})
	if d.Allow {
		t.Fatal("got allow, want deny")
	}
	if got, want := d.Suggest, "3.10.0"; got != want {
		t.Errorf("got suggestion %q, want %q (newest allowed, semver order, not yanked)", got, want)
	}
}

func TestKeep(t *testing.T) {
	fixClock(t)
	e := mustCompile(t, policySrc, Options{Malicious: []MaliciousIndex{fakeIndex{"pypi/requests": {"2.28.0": {ID: "MAL-9"}}}}})
	md := &classifiers.Metadata{Versions: []classifiers.Version{
		*ver("2.27.0", day(900)), *ver("2.28.0", day(800)), *ver("2.28.1", day(700)), *ver("2.32.0", day(1)),
	}}
	keep := e.Keep("pypi", "requests", md, Client{})
	want := map[string]bool{"2.27.0": false, "2.28.0": false, "2.28.1": true, "2.32.0": false, "9.9.9": false}
	for v, w := range want {
		if got := keep(v); got != w {
			t.Errorf("keep(%s): got %v, want %v", v, got, w)
		}
	}
	md2 := &classifiers.Metadata{Versions: []classifiers.Version{*ver("1.0.0", day(30)), *ver("1.1.0", day(3))}}
	keep = e.KeepWith("npm", "express", md2, Client{}, func(v string) (time.Time, bool) { return time.Time{}, v == "1.0.0" })
	if keep("1.0.0") {
		t.Error("keep(1.0.0): got true, want false for a re-tagged version")
	}
	if keep("1.1.0") {
		t.Error("keep(1.1.0): got true, want false in cooldown")
	}
	if !keep("1.2.0") {
		t.Error("keep(1.2.0): got false, want true for a version without facts")
	}
}

func TestHashAndNeedsFacts(t *testing.T) {
	a := mustCompile(t, policySrc, Options{})
	b := mustCompile(t, policySrc, Options{})
	c := mustCompile(t, strings.Replace(policySrc, "==2.28.1", "==2.28.2", 1), Options{})
	if a.Hash() != b.Hash() {
		t.Errorf("got different hashes %s, %s for the same policy", a.Hash(), b.Hash())
	}
	if a.Hash() == c.Hash() {
		t.Error("got the same hash for different policies, want different")
	}
	w1 := mustCompile(t, `rule "x" {
  when   = pkg.age < duration("10d")
  action = "deny"
}`, Options{})
	w2 := mustCompile(t, `rule "x" {
  when   = pkg.age > duration("10d")
  action = "deny"
}`, Options{})
	if w1.Hash() == w2.Hash() {
		t.Error("got the same hash for different when expressions of the same length, want different")
	}
	d := mustCompile(t, policySrc, Options{Source: []byte(policySrc)})
	f := mustCompile(t, policySrc, Options{Source: []byte(policySrc + "\n# comment")})
	if d.Hash() == f.Hash() {
		t.Error("got the same hash for different source text, want different")
	}
	plain := mustCompile(t, `rule "x" {
  package = "y"
  action  = "deny"
}`, Options{})
	if plain.NeedsFacts("npm") {
		t.Error("name-only policy: got NeedsFacts true, want false")
	}
	withWhen := mustCompile(t, `rule "x" {
  ecosystem = "pypi"
  when      = pkg.license == "GPL"
  action    = "deny"
}`, Options{})
	if !withWhen.NeedsFacts("pypi") || withWhen.NeedsFacts("npm") {
		t.Errorf("license rule: got pypi %v npm %v, want true false", withWhen.NeedsFacts("pypi"), withWhen.NeedsFacts("npm"))
	}
	if !a.NeedsFacts("cargo") {
		t.Error("min_age policy: got NeedsFacts false, want true")
	}
}

func TestRunTestsReportsFailures(t *testing.T) {
	fixClock(t)
	e := mustCompile(t, `
rule "x" {
  ecosystem = "npm"
  package   = "left-pad"
  action    = "deny"
  reason    = "nope"
}
test "passes" {
  ecosystem = "npm"
  package   = "left-pad"
  version   = "1.0.0"
  expect    = "deny"
  reason_contains = "nope"
}
test "wrong-expect" {
  ecosystem = "npm"
  package   = "left-pad"
  version   = "1.0.0"
  expect    = "allow"
}
test "wrong-reason" {
  ecosystem = "npm"
  package   = "left-pad"
  expect    = "deny"
  reason_contains = "other"
}
test "malicious-override" {
  ecosystem = "npm"
  package   = "lodash"
  version   = "4.17.21"
  malicious = true
  expect    = "deny"
  rule      = "malicious"
}`, Options{})
	res := e.RunTests()
	want := []bool{true, false, false, true}
	if len(res) != len(want) {
		t.Fatalf("got %d results, want %d", len(res), len(want))
	}
	for i, r := range res {
		if r.Pass != want[i] {
			t.Errorf("%s: got pass %v (%s), want %v", r.Name, r.Pass, r.Message, want[i])
		}
		if !r.Pass && r.Message == "" {
			t.Errorf("%s: failed without a message", r.Name)
		}
	}
	if !strings.Contains(res[1].Message, "got deny, want allow") {
		t.Errorf("got message %q, want it to say got deny, want allow", res[1].Message)
	}
}

// TestConcurrentUse shares one engine and one Keep filter between
// goroutines (run with -race).
func TestConcurrentUse(t *testing.T) {
	fixClock(t)
	e := mustCompile(t, policySrc, Options{})
	md := &classifiers.Metadata{Versions: []classifiers.Version{
		{Version: "1.0.0", Published: t0.Add(-day(100)), Provenance: true},
		{Version: "1.1.0", Published: t0.Add(-day(20))},
	}}
	keep := e.Keep("npm", "lib", md, Client{})
	done := make(chan [2]bool)
	for i := 0; i < 4; i++ {
		go func() {
			d := e.Decide(Subject{Ecosystem: "npm", Package: "lib", Version: "1.1.0", Facts: &md.Versions[1], Meta: md})
			done <- [2]bool{keep("1.1.0"), d.Allow}
		}()
	}
	for i := 0; i < 4; i++ {
		if got := <-done; got[0] || got[1] {
			t.Errorf("got keep %v, allow %v, want false, false (provenance regressed)", got[0], got[1])
		}
	}
}

func TestShadowPinAndExpiry(t *testing.T) {
	fixClock(t)
	e := mustCompile(t, `
rule "pin-shadow" {
  ecosystem = "cargo"
  package   = "tokio"
  versions  = "^1.38"
  action    = "pin"
  mode      = "shadow"
}
rule "allow-tokio" {
  ecosystem = "cargo"
  package   = "tokio"
  action    = "allow"
}
rule "deny-until-noon" {
  ecosystem = "npm"
  package   = "a"
  action    = "deny"
  expires   = "2026-06-01T12:00:00Z"
}
rule "deny-until-1pm" {
  ecosystem = "npm"
  package   = "b"
  action    = "deny"
  expires   = "2026-06-01T13:00:00Z"
}
rule "shadow-allow" {
  ecosystem = "npm"
  package   = "c"
  action    = "allow"
  mode      = "shadow"
}
policy { default = "deny" }
`, Options{})
	tests := []struct {
		eco, pkg, version, want, rule string
	}{
		{"cargo", "tokio", "1.39.0", "allow", ""},
		{"cargo", "tokio", "1.30.0", "shadow", "pin-shadow"},
		{"npm", "a", "1.0.0", "deny", "default"}, // expired at t0 exactly: back to the default
		{"npm", "b", "1.0.0", "deny", "deny-until-1pm"},
		{"npm", "c", "1.0.0", "deny", "default"}, // a shadow allow has no effect
	}
	for _, tt := range tests {
		t.Run(tt.pkg+"@"+tt.version, func(t *testing.T) {
			d := e.Decide(Subject{Ecosystem: tt.eco, Package: tt.pkg, Version: tt.version})
			if got := verdict(d); got != tt.want || d.Rule != tt.rule {
				t.Errorf("got %s rule %q, want %s rule %q (matches %s)", got, d.Rule, tt.want, tt.rule, matchRules(d))
			}
		})
	}
}
