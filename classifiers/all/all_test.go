package all

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cafilprox/cafilprox/classifiers"
)

func TestEveryEcosystemOnceWithDistinctHosts(t *testing.T) {
	cs := Classifiers()
	if len(cs) != len(classifiers.Ecosystems) {
		t.Fatalf("got %d classifiers, want %d", len(cs), len(classifiers.Ecosystems))
	}
	for i, c := range cs {
		if got, want := c.Ecosystem(), classifiers.Ecosystems[i]; got != want {
			t.Errorf("classifier %d: got %s, want %s", i, got, want)
		}
	}
	// NewSet refuses a host claimed twice, so this also proves no overlap.
	set, err := classifiers.NewSet(cs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Hosts()) < len(cs) {
		t.Errorf("got %d hosts, want at least one per ecosystem", len(set.Hosts()))
	}
}

func TestDoubleClaimRefused(t *testing.T) {
	cs := Classifiers()
	_, err := classifiers.NewSet(cs, map[string][]string{classifiers.PyPI: {"registry.npmjs.org"}})
	if err == nil || !strings.Contains(err.Error(), "claimed by both") {
		t.Errorf("got %v, want a double-claim error", err)
	}
}

// TestPackagesHaveReadmeAndTestdata keeps every classifier documented and
// tested from recorded fixtures.
func TestPackagesHaveReadmeAndTestdata(t *testing.T) {
	dirs := map[string]string{
		classifiers.NPM: "npm", classifiers.PyPI: "pypi", classifiers.Go: "gomod", classifiers.Cargo: "cargo",
		classifiers.RubyGems: "rubygems", classifiers.Maven: "maven", classifiers.Composer: "composer", classifiers.CocoaPods: "cocoapods",
	}
	for _, c := range Classifiers() {
		dir := filepath.Join("..", dirs[c.Ecosystem()])
		readme, err := os.ReadFile(filepath.Join(dir, "README.md"))
		if err != nil || len(strings.TrimSpace(string(readme))) < 100 {
			t.Errorf("%s: README.md missing or too short (%v)", dir, err)
		}
		entries, err := os.ReadDir(filepath.Join(dir, "testdata"))
		if err != nil || len(entries) == 0 {
			t.Errorf("%s: testdata/ missing or empty (%v)", dir, err)
		}
		for _, h := range c.DefaultHosts() {
			if !strings.Contains(string(readme), h) {
				t.Errorf("%s: README does not name host %s", dir, h)
			}
		}
	}
}
