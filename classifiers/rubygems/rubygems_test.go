package rubygems

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cafilprox/cafilprox/classifiers"
	"github.com/cafilprox/cafilprox/classifiers/internal/classifiertest"
)

func TestClassify(t *testing.T) {
	const (
		meta  = classifiers.KindMetadata
		art   = classifiers.KindArtifact
		other = classifiers.KindOther
	)
	tests := []struct {
		host, path string
		want       classifiers.Request
	}{
		{"index.rubygems.org", "/versions", classifiers.Request{Kind: meta, Variant: VariantVersions}},
		{"index.rubygems.org", "/info/rack", classifiers.Request{Kind: meta, Package: "rack"}},
		{"rubygems.org", "/info/guard-bundler", classifiers.Request{Kind: meta, Package: "guard-bundler"}},
		{"rubygems.org", "/info/a/b", classifiers.Request{Kind: other}},
		{"rubygems.org", "/info/", classifiers.Request{Kind: other}},
		{"rubygems.org", "/gems/rack-3.0.8.gem", classifiers.Request{Kind: art, Package: "rack", Version: "3.0.8"}},
		{"rubygems.org", "/gems/nokogiri-1.11.0.rc2-x86_64-linux.gem", classifiers.Request{Kind: art, Package: "nokogiri", Version: "1.11.0.rc2"}},
		{"rubygems.org", "/gems/nokogiri-1.6.6.1-java.gem", classifiers.Request{Kind: art, Package: "nokogiri", Version: "1.6.6.1"}},
		{"rubygems.org", "/gems/nokogiri-1.6.5-x64-mingw32.gem", classifiers.Request{Kind: art, Package: "nokogiri", Version: "1.6.5"}},
		{"rubygems.org", "/gems/ffi-1.9.0-universal-darwin-9.gem", classifiers.Request{Kind: art, Package: "ffi", Version: "1.9.0"}},
		{"rubygems.org", "/gems/guard-bundler-3.0.0.gem", classifiers.Request{Kind: art, Package: "guard-bundler", Version: "3.0.0"}},
		{"rubygems.org", "/gems/10to1-crack-0.1.1.gem", classifiers.Request{Kind: art, Package: "10to1-crack", Version: "0.1.1"}},
		{"rubygems.org", "/gems/21-day-challenge-countdown-0.1.0.gem", classifiers.Request{Kind: art, Package: "21-day-challenge-countdown", Version: "0.1.0"}},
		{"rubygems.org", "/gems/foo-2fa-1.0.gem", classifiers.Request{Kind: art, Package: "foo-2fa", Version: "1.0"}},
		{"rubygems.org", "/gems/ruby-1-2.0.gem", classifiers.Request{Kind: art, Package: "ruby-1", Version: "2.0"}},
		{"rubygems.org", "/gems/--1.gem", classifiers.Request{Kind: art, Package: "-", Version: "1"}},
		{"rubygems.org", "/downloads/rails-7.1.0.gem", classifiers.Request{Kind: art, Package: "rails", Version: "7.1.0"}},
		{"rubygems.org", "/gems/rack.gem", classifiers.Request{Kind: other}},
		{"rubygems.org", "/gems/rack-3.0.8.tgz", classifiers.Request{Kind: other}},
		{"rubygems.org", "/quick/Marshal.4.8/rack-3.0.8.gemspec.rz", classifiers.Request{Kind: meta, Package: "rack", Version: "3.0.8", Variant: VariantGemspec}},
		{"rubygems.org", "/quick/Marshal.4.8/nokogiri-1.11.0-java.gemspec.rz", classifiers.Request{Kind: meta, Package: "nokogiri", Version: "1.11.0", Variant: VariantGemspec}},
		{"rubygems.org", "/api/v1/versions/guard-bundler.json", classifiers.Request{Kind: meta, Package: "guard-bundler", Variant: VariantAPI}},
		{"rubygems.org", "/api/v1/versions/rack/latest.json", classifiers.Request{Kind: other}},
		{"rubygems.org", "/api/v1/dependencies", classifiers.Request{Kind: other}},
		{"rubygems.org", "/specs.4.8.gz", classifiers.Request{Kind: other}},
		{"rubygems.org", "/latest_specs.4.8.gz", classifiers.Request{Kind: other}},
		{"rubygems.org", "/", classifiers.Request{Kind: other}},
	}
	c := New()
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "https://"+tt.host+tt.path, nil)
			tt.want.Ecosystem = classifiers.RubyGems
			if got := c.Classify(r); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseInfo(t *testing.T) {
	c := New()
	tests := []struct {
		file          string
		versions      int
		first, last   string
		check         string
		wantIntegrity string
	}{
		{"info-rack", 90, "1.0.0", "", "0.1.0", "sha256:ae2a16ef7744acf003a2f1adc0d8c5cbb3dfa614f6f70f7b99165ba5fad3c0ac"},
		// 1.11.0.rc2 has six platform lines; the ruby line's checksum wins.
		{"info-nokogiri", 0, "1.3.1", "", "1.11.0.rc2", "sha256:73a4824f45ea2f4a2"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			body := classifiertest.ReadFile(t, tt.file)
			md, err := c.Parse(classifiers.Request{Kind: classifiers.KindMetadata, Package: "x"}, body)
			if err != nil {
				t.Fatal(err)
			}
			if md.Versions[0].Version != tt.first {
				t.Errorf("got first %v, want %v", md.Versions[0].Version, tt.first)
			}
			seen := map[string]bool{}
			for _, v := range md.Versions {
				if seen[v.Version] {
					t.Errorf("got version %v twice, want platforms collapsed", v.Version)
				}
				seen[v.Version] = true
			}
			if tt.versions > 0 && len(md.Versions) != tt.versions {
				t.Errorf("got %d versions, want %d", len(md.Versions), tt.versions)
			}
			v := md.Version(tt.check)
			if v == nil {
				t.Fatalf("got no version %v", tt.check)
			}
			if !strings.HasPrefix(v.Integrity, tt.wantIntegrity) || len(v.Integrity) != len("sha256:")+64 {
				t.Errorf("got integrity %v, want prefix %v", v.Integrity, tt.wantIntegrity)
			}
		})
	}
}

func TestParseNokogiriPlatformsCollapse(t *testing.T) {
	body := classifiertest.ReadFile(t, "info-nokogiri")
	md, err := New().Parse(classifiers.Request{Package: "nokogiri"}, body)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Count(body, []byte("\n")) - 1
	if len(md.Versions) >= lines {
		t.Errorf("got %d versions for %d lines, want fewer (platform lines collapse)", len(md.Versions), lines)
	}
	if md.Version("1.6.6.1") == nil {
		t.Errorf("got no 1.6.6.1, want it from its platform lines")
	}
}

func TestParseAPI(t *testing.T) {
	body := classifiertest.ReadFile(t, "api-v1-versions-guard-bundler.json")
	md, err := New().Parse(classifiers.Request{Package: "guard-bundler", Variant: VariantAPI}, body)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(md.Versions), 10; got != want {
		t.Fatalf("got %d versions, want %d", got, want)
	}
	v := md.Version("3.0.0")
	want := time.Date(2019, 12, 23, 16, 51, 50, 100e6, time.UTC)
	if !v.Published.Equal(want) {
		t.Errorf("got published %v, want %v", v.Published, want)
	}
	if got, want := v.Integrity, "sha256:c59d0bf0f65e6f800e4bbeb26b89a7b45cd4f17c170d67c50a8f3a097446ce9c"; got != want {
		t.Errorf("got integrity %v, want %v", got, want)
	}
	if got, want := v.License, "MIT"; got != want {
		t.Errorf("got license %v, want %v", got, want)
	}
}

func TestParseVersionsIsNil(t *testing.T) {
	md, err := New().Parse(classifiers.Request{Variant: VariantVersions}, classifiertest.ReadFile(t, "versions-excerpt.txt"))
	if err != nil || md != nil {
		t.Errorf("got %v, %v, want nil, nil", md, err)
	}
}

func TestFilter(t *testing.T) {
	deny := func(vs ...string) func(string) bool {
		return func(v string) bool {
			for _, d := range vs {
				if v == d {
					return false
				}
			}
			return true
		}
	}
	tests := []struct {
		name, file string
		req        classifiers.Request
		keep       func(string) bool
		dropped    []string
	}{
		{"rack-drop-1.3", "info-rack", classifiers.Request{Package: "rack"}, deny("1.3.0", "1.3.0.beta", "1.0.0"), []string{"1.3.0", "1.3.0.beta", "1.0.0"}},
		{"nokogiri-drop-rc2", "info-nokogiri", classifiers.Request{Package: "nokogiri"}, deny("1.11.0.rc2", "1.6.6.1"), []string{"1.11.0.rc2", "1.6.6.1"}},
		{"guard-bundler-api-drop-3", "api-v1-versions-guard-bundler.json", classifiers.Request{Package: "guard-bundler", Variant: VariantAPI}, deny("3.0.0"), []string{"3.0.0"}},
	}
	c := New()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := classifiertest.ReadFile(t, tt.file)
			out, err := c.Filter(tt.req, body, tt.keep)
			if err != nil {
				t.Fatal(err)
			}
			classifiertest.Golden(t, tt.name+".golden", out)
			md, err := c.Parse(tt.req, out)
			if err != nil {
				t.Fatalf("filtered output does not parse: %v", err)
			}
			orig, _ := c.Parse(tt.req, body)
			if got, want := len(md.Versions), len(orig.Versions)-len(tt.dropped); got != want {
				t.Errorf("got %d versions, want %d", got, want)
			}
			for _, d := range tt.dropped {
				if md.Version(d) != nil {
					t.Errorf("got %v after filtering, want it dropped", d)
				}
			}
		})
	}
}

func TestFilterInfoKeepsOtherLinesByteIdentical(t *testing.T) {
	body := classifiertest.ReadFile(t, "info-nokogiri")
	out, err := New().Filter(classifiers.Request{Package: "nokogiri"}, body, func(string) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, body) {
		t.Errorf("got %d bytes, want the original %d bytes unchanged", len(out), len(body))
	}
	out, err = New().Filter(classifiers.Request{Package: "nokogiri"}, body, func(v string) bool { return v != "1.11.0.rc2" })
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "1.11.0.rc2 ") || strings.HasPrefix(l, "1.11.0.rc2-") {
			t.Errorf("got line %q, want every platform line of 1.11.0.rc2 dropped", l)
		}
		if l != "" && !bytes.Contains(body, []byte(l+"\n")) {
			t.Errorf("got line %q that is not in the original", l)
		}
	}
}

func TestFilterVersionsUnchanged(t *testing.T) {
	body := classifiertest.ReadFile(t, "versions-excerpt.txt")
	out, err := New().Filter(classifiers.Request{Variant: VariantVersions}, body, func(string) bool { return false })
	if err != nil || !bytes.Equal(out, body) {
		t.Errorf("got %q, %v, want the body unchanged", out, err)
	}
}

func TestMalformed(t *testing.T) {
	tests := []struct {
		name string
		req  classifiers.Request
		body string
	}{
		{"no header", classifiers.Request{Package: "x"}, "1.0.0 |checksum:ab\n"},
		{"no version", classifiers.Request{Package: "x"}, "---\n |checksum:ab\n"},
		{"api not json", classifiers.Request{Package: "x", Variant: VariantAPI}, "<html>"},
		{"api no number", classifiers.Request{Package: "x", Variant: VariantAPI}, `[{"sha":"x"}]`},
	}
	c := New()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := c.Parse(tt.req, []byte(tt.body)); !errors.Is(err, classifiers.ErrMalformed) {
				t.Errorf("Parse: got %v, want ErrMalformed", err)
			}
			if _, err := c.Filter(tt.req, []byte(tt.body), func(string) bool { return true }); !errors.Is(err, classifiers.ErrMalformed) {
				t.Errorf("Filter: got %v, want ErrMalformed", err)
			}
		})
	}
}

func TestFacts(t *testing.T) {
	body := classifiertest.ReadFile(t, "api-v1-versions-guard-bundler.json")
	var gotURL string
	f := classifiers.FetcherFunc(func(_ context.Context, u string, _ http.Header) ([]byte, http.Header, error) {
		gotURL = u
		return body, nil, nil
	})
	md, err := New().Facts(context.Background(), classifiers.Request{Package: "guard-bundler", Version: "2.2.1"}, f)
	if err != nil {
		t.Fatal(err)
	}
	if want := "https://rubygems.org/api/v1/versions/guard-bundler.json"; gotURL != want {
		t.Errorf("got URL %v, want %v", gotURL, want)
	}
	if v := md.Version("2.2.1"); v == nil || v.Published.IsZero() {
		t.Errorf("got %v, want 2.2.1 with a publish time", v)
	}
	var se *classifiers.StatusError
	if _, err := New().Facts(context.Background(), classifiers.Request{Package: "nope"}, classifiertest.NotFound); !errors.As(err, &se) {
		t.Errorf("got %v, want a wrapped StatusError", err)
	}
}

func TestValidators(t *testing.T) {
	if got, want := InfoETag([]byte("")), `"d41d8cd98f00b204e9800998ecf8427e"`; got != want {
		t.Errorf("got %v, want %v", got, want)
	}
	if got, want := ReprDigest([]byte("")), "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:"; got != want {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestREADMEAndTestdata(t *testing.T) {
	classifiertest.READMEAndTestdata(t, "rubygems.org")
}

func FuzzParseFilter(f *testing.F) {
	for _, n := range []string{"info-rack", "info-nokogiri", "api-v1-versions-guard-bundler.json"} {
		f.Add(classifiertest.ReadFile(f, n), strings.HasSuffix(n, ".json"))
	}
	f.Add([]byte("---\n1.0-java |checksum:\n"), false)
	c := New()
	f.Fuzz(func(t *testing.T, body []byte, api bool) {
		req := classifiers.Request{Package: "x"}
		if api {
			req.Variant = VariantAPI
		}
		_, perr := c.Parse(req, body)
		out, ferr := c.Filter(req, body, func(v string) bool { return len(v)%2 == 0 })
		if (perr == nil) != (ferr == nil) {
			t.Fatalf("got parse error %v and filter error %v, want both or neither", perr, ferr)
		}
		for _, err := range []error{perr, ferr} {
			if err != nil && !errors.Is(err, classifiers.ErrMalformed) {
				t.Fatalf("got %v, want ErrMalformed", err)
			}
		}
		if ferr == nil {
			if _, err := c.Parse(req, out); err != nil {
				t.Fatalf("filtered output does not parse: %v", err)
			}
		}
	})
}

func BenchmarkClassify(b *testing.B) {
	classifiertest.BenchClassify(b, New(), "https://rubygems.org/gems/nokogiri-1.11.0.rc2-x86_64-linux.gem", classifiers.KindArtifact)
}
