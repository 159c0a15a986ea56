package typosquat

import (
	"runtime"
	"sort"
	"strings"
	"testing"
)

func TestCheckTyposquats(t *testing.T) {
	x := Default()
	tests := []struct {
		eco, name, want string
		why             Reason
	}{
		// Real typosquats (npm/PyPI/Go incident reports).
		{"npm", "lodahs", "lodash", EditDistance},
		{"npm", "crossenv", "cross-env", Confusable},
		{"npm", "electorn", "electron", EditDistance},
		{"npm", "babelcli", "@babel/cli", Confusable}, // babel-cli also matches; the more popular wins
		{"npm", "mongose", "mongoose", EditDistance},
		{"pypi", "reqeusts", "requests", EditDistance},
		{"pypi", "python3-dateutil", "python-dateutil", EditDistance},
		{"pypi", "djanga", "django", EditDistance},
		{"pypi", "jeIlyfish", "jellyfish", EditDistance}, // I for l; PEP 503 lower-cases it to "i"
		{"pypi", "urlib3", "urllib3", EditDistance},
		{"pypi", "python-requests", "requests", Affix},
		{"go", "github.com/boltdb-go/bolt", "github.com/boltdb/bolt", GoOwner},
		{"go", "github.com/sirupsen/l0grus", "", 0}, // GitHub owner of a popular module
		{"go", "github.com/sirupsen-go/logrus", "github.com/sirupsen/logrus", GoOwner},
		{"go", "github.com/slrupsen/logrus", "github.com/sirupsen/logrus", EditDistance},
		{"go", "golang.org/x/nett", "", 0}, // golang.org is the Go team's
		{"cargo", "serde_jsn", "serde_json", EditDistance},
		{"cargo", "rustdecimal", "rust_decimal", Confusable},
		// Separator, case and homoglyph swaps.
		{"npm", "rnoment", "moment", Confusable},
		{"npm", "l0dash", "lodash", Confusable},
		{"npm", "cross_env", "cross-env", Confusable},
		{"npm", "types-node", "@types/node", Confusable},
		{"pypi", "beautifu1soup4", "beautifulsoup4", Confusable},
		{"rubygems", "rai1s", "rails", Confusable},
		// Scopes and prefixes.
		{"npm", "@evil/lodash", "lodash", Affix},
		{"npm", "node-lodash", "lodash", Affix},
		{"npm", "@babe1/core", "@babel/core", Confusable},
		{"npm", "@babel/c0re", "", 0}, // only Babel publishes under @babel
		{"cargo", "tokio-rs", "tokio", Affix},
		{"rubygems", "ruby-rails", "rails", Affix},
		// Namespaces owned by someone else.
		{"maven", "com.goog1e.guava:guava", "com.google.guava:guava", Confusable},
		{"maven", "com.google.guava:guave", "", 0}, // same group: its owner published it
		{"composer", "symfony/consol", "", 0},      // same vendor
		{"npm", "@types/lodahs", "", 0},            // same scope
		{"npm", "@types/lodash-extra", "", 0},      // not "lodash" dressed up: @types is owned
	}
	for _, tc := range tests {
		t.Run(tc.eco+"/"+tc.name, func(t *testing.T) {
			got, why, ok := x.Explain(tc.eco, tc.name)
			if got != tc.want || ok != (tc.want != "") {
				t.Fatalf("Explain(%q) = %q, %v, want %q", tc.name, got, ok, tc.want)
			}
			if why != tc.why {
				t.Errorf("reason = %v, want %v", why, tc.why)
			}
			if got2, ok2 := x.Check(tc.eco, tc.name); got2 != got || ok2 != ok {
				t.Errorf("Check = %q, %v, want %q, %v", got2, ok2, got, ok)
			}
		})
	}
}

func TestCheckNotFlagged(t *testing.T) {
	x := Default()
	tests := []struct{ eco, name string }{
		{"npm", "lodash"},
		{"npm", "express"},
		{"npm", "my-own-internal-tool"},
		{"npm", "@types/node"},
		{"npm", "JSONStream"},
		{"npm", "ms2"},                 // short
		{"pypi", "Requests"},           // popular, other spelling
		{"pypi", "Python_Dateutil"},    // popular, other spelling
		{"pypi", "requests-toolbelt2"}, // numbered sibling, not a look-alike
		{"go", "github.com/sirupsen/logrus/v2"},
		{"go", "gopkg.in/yaml.v4"},
		{"go", "github.com/myorg/bolt"},
		{"cargo", "serde-json"}, // crates.io folds - and _
		{"maven", "com.google.guava:guava"},
		{"cocoapods", "Alamofire"}, // no list shipped
		{"unknown", "lodahs"},
		{"npm", ""},
	}
	for _, tc := range tests {
		t.Run(tc.eco+"/"+tc.name, func(t *testing.T) {
			if got, ok := x.Check(tc.eco, tc.name); ok {
				t.Errorf("Check(%q) = %q, true, want not flagged", tc.name, got)
			}
		})
	}
}

func TestNewOverride(t *testing.T) {
	x := New(map[string][]string{"npm": {"internal-sdk", "Other_Thing"}})
	tests := []struct {
		eco, name, want string
	}{
		{"npm", "internal-sdk", ""},
		{"npm", "intrenal-sdk", "internal-sdk"},
		{"npm", "internal-skd", ""}, // edits in words under 4 letters do not count
		{"npm", "internalsdk", "internal-sdk"},
		{"npm", "lodahs", ""}, // the override replaces the shipped lists
		{"pypi", "reqeusts", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := x.Check(tc.eco, tc.name)
			if got != tc.want {
				t.Errorf("Check(%q) = %q, want %q", tc.name, got, tc.want)
			}
		})
	}
	var nilIndex *Index
	if _, ok := nilIndex.Check("npm", "lodahs"); ok {
		t.Errorf("nil index flagged a name")
	}
}

// TestPopularNamesNotFlagged is the false-positive rate on the lists
// themselves: with every popular name in the index, none may flag (rate 0
// by construction). It also logs list density: how many popular names would
// flag another popular name if they were not listed themselves.
func TestPopularNamesNotFlagged(t *testing.T) {
	x := Default()
	ecos := make([]string, 0, len(x.ecos))
	for eco := range x.ecos {
		ecos = append(ecos, eco)
	}
	sort.Strings(ecos)
	for _, eco := range ecos {
		e := x.ecos[eco]
		t.Run(eco, func(t *testing.T) {
			flagged := 0
			for _, n := range e.names {
				if p, ok := x.Check(eco, n); ok {
					flagged++
					if flagged <= 5 {
						t.Errorf("popular %q flagged as a typosquat of %q", n, p)
					}
				}
			}
			if flagged != 0 {
				t.Errorf("false positives on the list itself: got %d of %d, want 0", flagged, len(e.names))
			}
			dense, byReason := density(e)
			t.Logf("%s: %d names, self-FP 0, density %d (%.1f%%) %v", eco, len(e.names), dense,
				100*float64(dense)/float64(len(e.names)), byReason)
		})
	}
}

// density counts popular names that would be flagged as imitating another
// popular name if they were not on the list, by reason.
func density(e *ecoIndex) (int, map[string]int) {
	n := 0
	by := map[string]int{}
	for id := range e.names {
		if _, why, ok := e.find(e.norm[id], id); ok {
			n++
			by[why.String()]++
		}
	}
	return n, by
}

func TestOSA1(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"lodash", "lodahs", true},
		{"lodash", "lodas", true},
		{"lodash", "lodashh", true},
		{"lodash", "lodesh", true},
		{"lodash", "lodash", false},
		{"lodash", "ldoahs", false},
		{"abcd", "bcda", false},
		{"", "a", true},
		{"ab", "ba", true},
	}
	for _, tc := range tests {
		t.Run(tc.a+"/"+tc.b, func(t *testing.T) {
			if _, got := osa1(tc.a, tc.b); got != tc.want {
				t.Errorf("osa1 = %v, want %v", got, tc.want)
			}
			if _, got := osa1(tc.b, tc.a); got != tc.want {
				t.Errorf("osa1 reversed = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestSkeleton(t *testing.T) {
	tests := []struct{ in, want string }{
		{"cross-env", "crossenv"},
		{"@types/node", "typesnode"},
		{"rnoment", "moment"},
		{"vvebpack", "webpack"},
		{"L0DASH", "lodash"},
		{"IodasI", "lodasl"},
		{"com.google:guava", "comgoogleguava"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if got := skeleton(tc.in); got != tc.want {
				t.Errorf("skeleton(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestGoBase(t *testing.T) {
	tests := []struct{ in, want string }{
		{"github.com/a/b/v2", "github.com/a/b"},
		{"github.com/a/b/v", "github.com/a/b/v"},
		{"github.com/a/b/vx1", "github.com/a/b/vx1"},
		{"gopkg.in/yaml.v3", "gopkg.in/yaml"},
		{"example.com/a.v3", "example.com/a.v3"},
	}
	for _, tc := range tests {
		if got := goBase("go", tc.in); got != tc.want {
			t.Errorf("goBase(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzCheck(f *testing.F) {
	x := New(map[string][]string{
		"npm":  {"lodash", "cross-env", "@types/node"},
		"pypi": {"requests", "python-dateutil"},
		"go":   {"github.com/boltdb/bolt", "gopkg.in/yaml.v3"},
	})
	for _, s := range []string{"lodahs", "@evil/lodash", "python-requests", "github.com/boltdb-go/bolt", "gopkg.in/.v", "/", "@", "-"} {
		f.Add("npm", s)
		f.Add("go", s)
	}
	f.Fuzz(func(t *testing.T, eco, name string) {
		p, ok := x.Check(eco, name)
		if ok == (p == "") {
			t.Errorf("Check(%q, %q) = %q, %v: ok must say whether a name came back", eco, name, p, ok)
		}
		if ok && p == name {
			t.Errorf("Check(%q) flagged a name as imitating itself", name)
		}
	})
}

func BenchmarkCheck(b *testing.B) {
	x := Default()
	for _, bc := range []struct{ eco, name string }{
		{"npm", "lodash"},
		{"npm", "lodahs"},
		{"npm", "some-unknown-package-name"},
		{"npm", "@myorg/some-internal-lib"},
		{"pypi", "reqeusts"},
		{"pypi", "Some_Unknown.Package"},
		{"go", "github.com/someone/something/v3"},
		{"maven", "com.example:some-artifact"},
	} {
		b.Run(bc.eco+"/"+strings.ReplaceAll(bc.name, "/", "_"), func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				x.Check(bc.eco, bc.name)
			}
		})
	}
}

// BenchmarkDefault builds the index from the shipped lists; index-MiB is
// the heap the built index retains.
func BenchmarkDefault(b *testing.B) {
	b.ReportAllocs()
	var retained uint64
	for range b.N {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		popular := map[string][]string{}
		for _, eco := range []string{"npm", "pypi", "go", "cargo", "rubygems", "maven", "composer"} {
			data, _ := dataFS.ReadFile("data/" + eco + ".txt")
			popular[eco] = lines(data)
		}
		x := New(popular)
		runtime.GC()
		runtime.ReadMemStats(&after)
		if len(x.ecos) != 7 {
			b.Fatalf("got %d ecosystems, want 7", len(x.ecos))
		}
		retained = after.HeapAlloc - before.HeapAlloc
		runtime.KeepAlive(x)
	}
	b.ReportMetric(float64(retained)/(1<<20), "index-MiB")
}
