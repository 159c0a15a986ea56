package classifiers

import (
	"regexp"
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	tests := []struct{ eco, in, want string }{
		{NPM, "JSONStream", "JSONStream"},
		{NPM, "@Scope/Pkg_x", "@Scope/Pkg_x"},
		{PyPI, "Flask_Login", "flask-login"},
		{PyPI, "zope.interface", "zope-interface"},
		{PyPI, "a-_.b", "a-b"},
		{PyPI, "a--b", "a-b"},
		{PyPI, "_private", "-private"},
		{PyPI, "requests", "requests"},
		{PyPI, "Ä_B", "ä-b"},
		{Go, "github.com/Azure/go-autorest", "github.com/Azure/go-autorest"},
		{Cargo, "Serde_JSON", "serde-json"},
		{Cargo, "serde_json", "serde-json"},
		{Cargo, "serde-json", "serde-json"},
		{Cargo, "a.b", "a.b"},
		{RubyGems, "Rails", "rails"},
		{RubyGems, "net_http-x", "net_http-x"},
		{Maven, "org.Apache:Commons", "org.Apache:Commons"},
		{Composer, "Symfony/Console", "symfony/console"},
		{CocoaPods, "AFNetworking", "afnetworking"},
		{"", "Any_Name", "Any_Name"},
		{"unknown", "Any_Name", "Any_Name"},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		seen[tt.eco] = true
		t.Run(tt.eco+"/"+tt.in, func(t *testing.T) {
			if got := Normalize(tt.eco, tt.in); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	for _, eco := range Ecosystems {
		if !seen[eco] {
			t.Errorf("got no case for ecosystem %q, want one for each", eco)
		}
	}
}

// TestNormalizeNoAlloc holds the request-path promise: a name already in
// normal form is returned without allocating.
func TestNormalizeNoAlloc(t *testing.T) {
	for _, eco := range Ecosystems {
		if n := testing.AllocsPerRun(10, func() { Normalize(eco, "already-normal") }); n != 0 {
			t.Errorf("%s: got %v allocations, want 0", eco, n)
		}
	}
}

var pep503Sep = regexp.MustCompile(`[-_.]+`)

// FuzzNormalize checks idempotence, and PyPI against PEP 503's own
// definition, re.sub(r"[-_.]+", "-", name).lower().
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"Flask_Login", "a-_.b", "Serde_JSON", "Ä_B", "\xff-X", "@s/P"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		for _, eco := range Ecosystems {
			n := Normalize(eco, name)
			if again := Normalize(eco, n); again != n {
				t.Errorf("%s: %q normalised to %q, then to %q", eco, name, n, again)
			}
		}
		if got, want := Normalize(PyPI, name), strings.ToLower(pep503Sep.ReplaceAllString(name, "-")); got != want {
			t.Errorf("pypi %q: got %q, want %q", name, got, want)
		}
	})
}
