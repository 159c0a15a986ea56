package cargo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cafilprox/cafilprox/classifiers"
	"github.com/cafilprox/cafilprox/classifiers/internal/classifiertest"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		method, url string
		want        classifiers.Request
	}{
		{"GET", "https://index.crates.io/config.json", classifiers.Request{Kind: classifiers.KindOther}},
		{"GET", "https://index.crates.io/1/a", classifiers.Request{Package: "a", Kind: classifiers.KindMetadata}},
		{"GET", "https://index.crates.io/2/cc", classifiers.Request{Package: "cc", Kind: classifiers.KindMetadata}},
		{"GET", "https://index.crates.io/3/l/log", classifiers.Request{Package: "log", Kind: classifiers.KindMetadata}},
		{"GET", "https://index.crates.io/se/nt/sentry", classifiers.Request{Package: "sentry", Kind: classifiers.KindMetadata}},
		{"GET", "https://index.crates.io/cr/at/crates-index", classifiers.Request{Package: "crates-index", Kind: classifiers.KindMetadata}},
		{"GET", "https://index.crates.io/se/rd/serde_json", classifiers.Request{Package: "serde_json", Kind: classifiers.KindMetadata}},
		{"GET", "https://index.crates.io/3/x/log", classifiers.Request{Kind: classifiers.KindOther}},
		{"GET", "https://index.crates.io/se/nt/Sentry", classifiers.Request{Kind: classifiers.KindOther}},
		{"GET", "https://index.crates.io/se/nt/sentry/extra", classifiers.Request{Kind: classifiers.KindOther}},
		{"GET", "https://index.crates.io/1/ab", classifiers.Request{Kind: classifiers.KindOther}},
		{"GET", "https://index.crates.io/se/nt/sen..try", classifiers.Request{Kind: classifiers.KindOther}},
		{"GET", "https://static.crates.io/crates/serde/serde-1.0.200.crate", classifiers.Request{Package: "serde", Version: "1.0.200", Kind: classifiers.KindArtifact}},
		{"GET", "https://static.crates.io/crates/crates-index/crates-index-0.19.0-alpha.1.crate", classifiers.Request{Package: "crates-index", Version: "0.19.0-alpha.1", Kind: classifiers.KindArtifact}},
		{"GET", "https://static.crates.io/crates/serde/1.0.200/download", classifiers.Request{Package: "serde", Version: "1.0.200", Kind: classifiers.KindArtifact}},
		{"GET", "https://static.crates.io/crates/Inflector/Inflector-0.11.4.crate", classifiers.Request{Package: "inflector", Version: "0.11.4", Kind: classifiers.KindArtifact}},
		{"GET", "https://static.crates.io/crates/serde/other-1.0.0.crate", classifiers.Request{Kind: classifiers.KindOther}},
		{"GET", "https://static.crates.io/readmes/serde/serde-1.0.0.html", classifiers.Request{Kind: classifiers.KindOther}},
		{"GET", "https://crates.io/api/v1/crates/serde/1.0.200/download", classifiers.Request{Package: "serde", Version: "1.0.200", Kind: classifiers.KindArtifact}},
		{"GET", "https://crates.io/api/v1/crates/serde", classifiers.Request{Kind: classifiers.KindOther}},
		{"GET", "https://crates.io/api/v1/crates?q=serde", classifiers.Request{Kind: classifiers.KindOther}},
		{"PUT", "https://crates.io/api/v1/crates/new", classifiers.Request{Kind: classifiers.KindOther}},
		{"DELETE", "https://crates.io/api/v1/crates/serde/1.0.200/download", classifiers.Request{Package: "serde", Version: "1.0.200", Kind: classifiers.KindOther}},
	}
	c := New()
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.url, func(t *testing.T) {
			tt.want.Ecosystem = classifiers.Cargo
			if got := c.Classify(httptest.NewRequest(tt.method, tt.url, nil)); got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestIndexPath(t *testing.T) {
	for name, want := range map[string]string{"a": "1/a", "cc": "2/cc", "log": "3/l/log", "Serde": "se/rd/serde", "autocfg": "au/to/autocfg"} {
		if got := IndexPath(name); got != want {
			t.Errorf("%s: got %s, want %s", name, got, want)
		}
	}
}

func TestParse(t *testing.T) {
	c := New()
	md, err := c.Parse(classifiers.Request{Package: "autocfg"}, classifiertest.ReadFile(t, "index-au-to-autocfg.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, v := range md.Versions {
		names = append(names, v.Version)
	}
	want := []string{"0.0.1", "0.1.0", "0.1.1", "0.1.2", "0.1.3", "0.1.4", "0.1.5", "0.1.6", "0.1.7", "0.1.8", "1.0.0", "1.0.1", "1.1.0"}
	if !slices.Equal(names, want) {
		t.Errorf("got %v, want %v", names, want)
	}
	if v := md.Version("0.1.3"); !v.Yanked || !strings.HasPrefix(v.Integrity, "sha256:") || len(v.Integrity) != 71 {
		t.Errorf("got %+v, want 0.1.3 yanked with a sha256", v)
	}
	md, err = c.Parse(classifiers.Request{}, classifiertest.ReadFile(t, "index-se-nt-sentry.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if v := md.Version("0.1.0"); md.Package != "sentry" || v.Yanked || !v.Published.Equal(time.Date(2016, 5, 20, 17, 24, 17, 0, time.UTC)) ||
		v.Integrity != "sha256:0d29ae928c9f77b6655c0bb8024013df8412ebc0783bad4c9878f55d9af19932" {
		t.Errorf("got %s %+v, want sentry 0.1.0 with pubtime and cksum", md.Package, v)
	}
	md, err = c.Parse(classifiers.Request{}, classifiertest.ReadFile(t, "index-cr-at-crates-index.txt"))
	if err != nil {
		t.Fatal(err)
	}
	yanked := 0
	for _, v := range md.Versions {
		if v.Yanked {
			yanked++
		}
	}
	if len(md.Versions) != 69 || yanked != 38 {
		t.Errorf("got %d versions, %d yanked, want 69 and 38", len(md.Versions), yanked)
	}
	for _, bad := range []string{"{", `{"name":"x"}`, "{\"vers\":\"1.0.0\"}\nnot json\n", `[1]`, `{"vers":1}`} {
		t.Run("malformed "+bad, func(t *testing.T) {
			if _, err := c.Parse(classifiers.Request{}, []byte(bad)); !errors.Is(err, classifiers.ErrMalformed) {
				t.Errorf("got %v, want ErrMalformed", err)
			}
		})
	}
}

func TestFilter(t *testing.T) {
	c := New()
	tests := []struct {
		in, golden string
		denied     []string
	}{
		{"index-au-to-autocfg.txt", "index-au-to-autocfg.drop.golden", []string{"1.1.0", "0.1.8", "0.0.1"}},
		{"index-cr-at-crates-index.txt", "index-cr-at-crates-index.drop.golden", []string{"2.2.0", "0.19.0"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			in := classifiertest.ReadFile(t, tt.in)
			got, err := c.Filter(classifiers.Request{}, in, classifiertest.KeepExcept(tt.denied...))
			if err != nil {
				t.Fatal(err)
			}
			classifiertest.Golden(t, tt.golden, got)
			// Every kept line is an original line, in order.
			var kept [][]byte
			for l := range bytes.Lines(in) {
				var e entry
				if json.Unmarshal(l, &e) == nil && !slices.Contains(tt.denied, e.Vers) {
					kept = append(kept, l)
				}
			}
			if want := bytes.Join(kept, nil); !bytes.Equal(got, want) {
				t.Errorf("got %d bytes, want the %d bytes of the kept original lines", len(got), len(want))
			}
		})
	}
	in := classifiertest.ReadFile(t, "index-se-nt-sentry.txt")
	if got, _ := c.Filter(classifiers.Request{}, in, classifiertest.KeepExcept()); !bytes.Equal(got, in) {
		t.Errorf("identity: got a rewritten file")
	}
	if got, err := c.Filter(classifiers.Request{}, in, func(string) bool { return false }); err != nil || len(got) != 0 {
		t.Errorf("deny all: got %q, %v, want empty", got, err)
	}
	noEOL := []byte(`{"vers":"1.0.0"}` + "\n" + `{"vers":"1.1.0"}`)
	if got, _ := c.Filter(classifiers.Request{}, noEOL, classifiertest.KeepExcept("1.0.0")); string(got) != `{"vers":"1.1.0"}` {
		t.Errorf("no final newline: got %q", got)
	}
	if _, err := c.Filter(classifiers.Request{}, []byte("garbage\n"), classifiertest.KeepExcept()); !errors.Is(err, classifiers.ErrMalformed) {
		t.Errorf("got %v, want ErrMalformed", err)
	}
}

func TestRewriteIndex(t *testing.T) {
	c := New()
	got, err := c.RewriteIndex(classifiers.Request{Kind: classifiers.KindOther}, classifiertest.ReadFile(t, "config.json"), "http://proxy:8080/cargo/")
	if err != nil {
		t.Fatal(err)
	}
	classifiertest.Golden(t, "config.rewrite.golden", got)
	var cfg struct{ DL, API string }
	if err := json.Unmarshal(got, &cfg); err != nil || cfg.DL != "http://proxy:8080/cargo/dl/crates" || cfg.API != "http://proxy:8080/cargo/api" {
		t.Errorf("got %+v (%v), want dl and api on the proxy", cfg, err)
	}
	got, err = c.RewriteIndex(classifiers.Request{Kind: classifiers.KindOther}, []byte(`{"dl":"x","auth-required":true}`), "http://p")
	if err != nil || !bytes.Contains(got, []byte(`"auth-required": true`)) || bytes.Contains(got, []byte(`"api"`)) {
		t.Errorf("got %s, %v, want other keys kept and no api added", got, err)
	}
	idx := classifiertest.ReadFile(t, "index-se-nt-sentry.txt")
	if got, err := c.RewriteIndex(classifiers.Request{Kind: classifiers.KindMetadata}, idx, "http://p"); err != nil || !bytes.Equal(got, idx) {
		t.Errorf("index file: got a change (%v), want it unchanged", err)
	}
	for _, bad := range []string{`{`, `{"api":"x"}`, `[]`} {
		if _, err := c.RewriteIndex(classifiers.Request{}, []byte(bad), "http://p"); !errors.Is(err, classifiers.ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", bad, err)
		}
	}
}

func TestFacts(t *testing.T) {
	c := New()
	var got string
	f := classifiers.FetcherFunc(func(_ context.Context, url string, _ http.Header) ([]byte, http.Header, error) {
		got = url
		if url == Index+"/se/nt/sentry" {
			return classifiertest.ReadFile(t, "index-se-nt-sentry.txt"), nil, nil
		}
		return nil, nil, &classifiers.StatusError{URL: url, Status: 404}
	})
	md, err := c.Facts(context.Background(), classifiers.Request{Package: "Sentry", Version: "0.1.1"}, f)
	if err != nil {
		t.Fatal(err)
	}
	if got != "https://index.crates.io/se/nt/sentry" || md.Version("0.1.1") == nil || md.Version("0.1.1").Published.IsZero() {
		t.Errorf("fetched %s, got %+v, want sentry's index with pubtime", got, md)
	}
	var se *classifiers.StatusError
	if _, err := c.Facts(context.Background(), classifiers.Request{Package: "nope"}, f); !errors.As(err, &se) {
		t.Errorf("got %v, want the StatusError wrapped", err)
	}
	if _, err := c.Facts(context.Background(), classifiers.Request{Package: "../x"}, f); err == nil {
		t.Errorf("got nil error for an invalid name")
	}
}

func TestREADMEAndTestdata(t *testing.T) {
	classifiertest.READMEAndTestdata(t, "index.crates.io")
}

var fixtures = []string{"index-au-to-autocfg.txt", "index-cr-at-crates-index.txt", "index-se-nt-sentry.txt"}

func FuzzParse(f *testing.F) {
	for _, name := range fixtures {
		f.Add(classifiertest.ReadFile(f, name))
	}
	c := New()
	f.Fuzz(func(t *testing.T, body []byte) {
		_, err := c.Parse(classifiers.Request{}, body)
		if err != nil && !errors.Is(err, classifiers.ErrMalformed) {
			t.Errorf("got %v, want nil or ErrMalformed", err)
		}
	})
}

func FuzzFilter(f *testing.F) {
	for _, name := range fixtures {
		f.Add(classifiertest.ReadFile(f, name), "0.1.3")
	}
	f.Add(classifiertest.ReadFile(f, "config.json"), "")
	c := New()
	f.Fuzz(func(t *testing.T, body []byte, deny string) {
		got, err := c.Filter(classifiers.Request{}, body, classifiertest.KeepExcept(deny))
		if err == nil {
			md, err := c.Parse(classifiers.Request{}, got)
			if err != nil {
				t.Fatalf("filtered file does not parse: %v", err)
			}
			if md.Version(deny) != nil {
				t.Errorf("got denied %q in output", deny)
			}
		} else if !errors.Is(err, classifiers.ErrMalformed) {
			t.Errorf("got %v, want ErrMalformed", err)
		}
		if _, err := c.RewriteIndex(classifiers.Request{}, body, "http://p"); err != nil && !errors.Is(err, classifiers.ErrMalformed) {
			t.Errorf("rewrite: got %v, want nil or ErrMalformed", err)
		}
	})
}

func BenchmarkClassify(b *testing.B) {
	classifiertest.BenchClassify(b, New(), "https://index.crates.io/cr/at/crates-index", classifiers.KindMetadata)
}

// TestTruncated cuts every fixture inside its last line: the partial JSON
// line must fail as malformed, whole lines must pass.
func TestTruncated(t *testing.T) {
	c := New()
	for _, name := range fixtures {
		body := classifiertest.ReadFile(t, name)
		for i := 0; i < len(body); i += max(len(body)/150, 7) {
			cut := body[:i]
			_, perr := c.Parse(classifiers.Request{}, cut)
			_, ferr := c.Filter(classifiers.Request{}, cut, classifiertest.KeepExcept("0.1.3"))
			whole := i == 0 || body[i-1] == '\n' || body[i] == '\n'
			for _, err := range []error{perr, ferr} {
				if whole && err != nil || !whole && !errors.Is(err, classifiers.ErrMalformed) {
					t.Errorf("%s[:%d]: got %v, want an error only for a cut line", name, i, err)
				}
			}
		}
	}
}
