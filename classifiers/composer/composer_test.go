package composer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cafilprox/cafilprox/classifiers"
	"github.com/cafilprox/cafilprox/classifiers/internal/classifiertest"
)

func TestClassify(t *testing.T) {
	const (
		meta  = classifiers.KindMetadata
		other = classifiers.KindOther
	)
	tests := []struct {
		host, path string
		want       classifiers.Request
	}{
		{"repo.packagist.org", "/packages.json", classifiers.Request{Kind: other}},
		{"repo.packagist.org", "/p2/drewm/mailchimp-api.json", classifiers.Request{Kind: meta, Package: "drewm/mailchimp-api"}},
		{"repo.packagist.org", "/p2/drewm/mailchimp-api~dev.json", classifiers.Request{Kind: meta, Package: "drewm/mailchimp-api", Variant: VariantDev}},
		{"repo.packagist.org", "/p2/Symfony/Polyfill-Mbstring.json", classifiers.Request{Kind: meta, Package: "symfony/polyfill-mbstring"}},
		{"packagist.org", "/p2/symfony/polyfill-mbstring.json", classifiers.Request{Kind: meta, Package: "symfony/polyfill-mbstring"}},
		{"repo.packagist.org", "/p/symfony/polyfill-mbstring$0123abcd.json", classifiers.Request{Kind: meta, Package: "symfony/polyfill-mbstring", Variant: VariantLegacy}},
		{"repo.packagist.org", "/p/symfony/polyfill-mbstring.json", classifiers.Request{Kind: meta, Package: "symfony/polyfill-mbstring", Variant: VariantLegacy}},
		{"repo.packagist.org", "/p/symfony/polyfill-mbstring$nothex.json", classifiers.Request{Kind: other}},
		{"repo.packagist.org", "/p/provider-latest$f408804d.json", classifiers.Request{Kind: other}},
		{"repo.packagist.org", "/p2/drewm.json", classifiers.Request{Kind: other}},
		{"repo.packagist.org", "/p2/a/b/c.json", classifiers.Request{Kind: other}},
		{"repo.packagist.org", "/p2/../etc.json", classifiers.Request{Kind: other}},
		{"repo.packagist.org", "/p2/drewm/mailchimp-api", classifiers.Request{Kind: other}},
		{"packagist.org", "/search.json", classifiers.Request{Kind: other}},
		{"packagist.org", "/downloads/", classifiers.Request{Kind: other}},
		{"packagist.org", "/packages/list.json", classifiers.Request{Kind: other}},
		{"repo.packagist.org", "/metadata/changes.json", classifiers.Request{Kind: other}},
	}
	c := New()
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "https://"+tt.host+"/", nil)
			r.URL.Path = tt.path
			tt.want.Ecosystem = classifiers.Composer
			if got := c.Classify(r); got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParse(t *testing.T) {
	c := New()
	t.Run("mailchimp", func(t *testing.T) {
		md, err := c.Parse(classifiers.Request{Package: "drewm/mailchimp-api"}, classifiertest.ReadFile(t, "p2-drewm-mailchimp-api.json"))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := len(md.Versions), 19; got != want {
			t.Fatalf("got %d versions, want %d", got, want)
		}
		v := md.Versions[0]
		if got, want := v.Version, "v2.5.4"; got != want {
			t.Errorf("got %v, want %v", got, want)
		}
		if want := time.Date(2019, 8, 6, 9, 24, 58, 0, time.UTC); !v.Published.Equal(want) {
			t.Errorf("got published %v, want %v", v.Published, want)
		}
		if v.License != "MIT" || v.Ref != "c6cdfab4ca6ddbc3b260913470bd0a4a5cb84c7a" || v.Integrity != "" {
			t.Errorf("got license %q ref %q integrity %q, want MIT, the dist reference and none (empty shasum)", v.License, v.Ref, v.Integrity)
		}
		want := []string{
			"https://api.github.com/repos/drewm/mailchimp-api/zipball/c6cdfab4ca6ddbc3b260913470bd0a4a5cb84c7a",
			"https://github.com/drewm/mailchimp-api.git",
		}
		if !reflect.DeepEqual(v.ArtifactURLs, want) {
			t.Errorf("got %v, want %v", v.ArtifactURLs, want)
		}
		// Later entries inherit keys they do not repeat.
		for _, v := range md.Versions {
			if v.License == "" || v.Published.IsZero() || v.Ref == "" || len(v.ArtifactURLs) == 0 {
				t.Errorf("got %+v, want inherited license, time, ref and URLs", v)
			}
		}
	})
	t.Run("dev", func(t *testing.T) {
		md, err := c.Parse(classifiers.Request{Package: "drewm/mailchimp-api", Variant: VariantDev}, classifiertest.ReadFile(t, "p2-drewm-mailchimp-api~dev.json"))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, v := range md.Versions {
			got = append(got, v.Version)
		}
		if want := []string{"dev-master", "dev-api-v3", "dev-api-v2"}; !reflect.DeepEqual(got, want) {
			t.Errorf("got %v, want %v", got, want)
		}
	})
	t.Run("polyfill", func(t *testing.T) {
		md, err := c.Parse(classifiers.Request{Package: "symfony/polyfill-mbstring"}, classifiertest.ReadFile(t, "p2-symfony-polyfill-mbstring.json"))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := len(md.Versions), 36; got != want {
			t.Errorf("got %d versions, want %d", got, want)
		}
	})
	t.Run("shasum", func(t *testing.T) {
		body := `{"packages":{"a/b":[{"version":"1.0.0","dist":{"url":"https://example.org/a.zip","shasum":"DA39A3EE5E6B4B0D3255BFEF95601890AFD80709","reference":""},"source":{"url":"git@github.com:a/b.git","reference":"abc"}}]}}`
		md, err := c.Parse(classifiers.Request{Package: "a/b"}, []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		v := md.Versions[0]
		if v.Integrity != "sha1:da39a3ee5e6b4b0d3255bfef95601890afd80709" || v.Ref != "abc" || len(v.ArtifactURLs) != 1 {
			t.Errorf("got %+v, want sha1 integrity, source ref fallback, no ssh source URL", v)
		}
	})
}

// expandedMaps returns the package's versions fully expanded, as generic
// maps, for content comparison.
func expandedMaps(t *testing.T, body []byte) []map[string]any {
	t.Helper()
	doc, err := parseDocument(body)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, m := range doc.packages {
		vs, _, err := doc.versionsOf(m.val, false)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vs {
			var buf bytes.Buffer
			appendObject(&buf, v)
			var mv map[string]any
			if err := json.Unmarshal(buf.Bytes(), &mv); err != nil {
				t.Fatal(err)
			}
			out = append(out, mv)
		}
	}
	return out
}

func TestFilterRoundTrip(t *testing.T) {
	tests := []struct {
		name, file string
		keep       func(string) bool
	}{
		{"mailchimp-drop-newest", "p2-drewm-mailchimp-api.json", func(v string) bool { return v != "v2.5.4" && v != "v2.5.3" }},
		{"mailchimp-drop-alternate", "p2-drewm-mailchimp-api.json", func(v string) bool { return !strings.HasSuffix(v, "1") && !strings.HasSuffix(v, "3") }},
		{"mailchimp-dev-drop-master", "p2-drewm-mailchimp-api~dev.json", func(v string) bool { return v != "dev-master" }},
		{"polyfill-drop-1.2x", "p2-symfony-polyfill-mbstring.json", func(v string) bool { return !strings.HasPrefix(v, "v1.2") }},
		{"polyfill-drop-all", "p2-symfony-polyfill-mbstring.json", func(string) bool { return false }},
	}
	c := New()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := classifiertest.ReadFile(t, tt.file)
			out, err := c.Filter(classifiers.Request{}, body, tt.keep)
			if err != nil {
				t.Fatal(err)
			}
			classifiertest.Golden(t, tt.name+".golden", out)
			var want []map[string]any
			for _, v := range expandedMaps(t, body) {
				if tt.keep(v["version"].(string)) {
					want = append(want, v)
				}
			}
			got := expandedMaps(t, out)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %d expanded versions, want %d identical to the kept input versions", len(got), len(want))
			}
			var top, orig map[string]json.RawMessage
			if err := json.Unmarshal(out, &top); err != nil {
				t.Fatal(err)
			}
			_ = json.Unmarshal(body, &orig)
			for k := range orig {
				if _, ok := top[k]; !ok {
					t.Errorf("got no top-level %q, want it kept", k)
				}
			}
			if string(top["minified"]) != `"composer/2.0"` {
				t.Errorf("got minified %s, want composer/2.0", top["minified"])
			}
			if len(out) >= len(body) {
				t.Errorf("got %d bytes, want fewer than %d", len(out), len(body))
			}
		})
	}
}

func TestFilterKeepAllUnchanged(t *testing.T) {
	body := classifiertest.ReadFile(t, "p2-symfony-polyfill-mbstring.json")
	out, err := New().Filter(classifiers.Request{}, body, func(string) bool { return true })
	if err != nil || !bytes.Equal(out, body) {
		t.Errorf("got %d bytes (%v), want the input unchanged", len(out), err)
	}
}

func TestLegacy(t *testing.T) {
	body := []byte(`{"packages":{"a/b":{"1.0.0":{"name":"a/b","version":"1.0.0","time":"2020-01-02T03:04:05+00:00","dist":{"url":"https://repo.packagist.org/dists/a-b-1.0.0.zip","type":"zip","shasum":""}},"2.0.0":{"name":"a/b","version":"2.0.0"}}}}`)
	req := classifiers.Request{Package: "a/b", Variant: VariantLegacy}
	c := New()
	md, err := c.Parse(req, body)
	if err != nil {
		t.Fatal(err)
	}
	if len(md.Versions) != 2 || md.Versions[0].Published.IsZero() {
		t.Fatalf("got %+v, want two versions, the first with a time", md.Versions)
	}
	out, err := c.Filter(req, body, func(v string) bool { return v != "2.0.0" })
	if err != nil {
		t.Fatal(err)
	}
	md, err = c.Parse(req, out)
	if err != nil || len(md.Versions) != 1 || md.Versions[0].Version != "1.0.0" {
		t.Errorf("got %+v (%v), want only 1.0.0", md, err)
	}
	out, err = c.Filter(req, body, func(string) bool { return false })
	if err != nil || !bytes.Contains(out, []byte(`"a/b":[]`)) {
		t.Errorf("got %s (%v), want an empty version map", out, err)
	}
	out, err = c.RewriteIndex(req, body, "http://proxy:8080/composer")
	if err != nil || !bytes.Contains(out, []byte(`"http://proxy:8080/composer/dists/a-b-1.0.0.zip"`)) {
		t.Errorf("got %s (%v), want the Packagist dist URL under the proxy", out, err)
	}
}

func TestRewriteIndex(t *testing.T) {
	c := New()
	t.Run("packages.json", func(t *testing.T) {
		out, err := c.RewriteIndex(classifiers.Request{}, classifiertest.ReadFile(t, "packages.json"), "http://proxy:8080/composer/")
		if err != nil {
			t.Fatal(err)
		}
		classifiertest.Golden(t, "packages.rewrite.golden", out)
		var got map[string]any
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatal(err)
		}
		for k, want := range map[string]string{
			"metadata-url":  "http://proxy:8080/composer/p2/%package%.json",
			"providers-url": "http://proxy:8080/composer/p/%package%$%hash%.json",
			"notify-batch":  "http://proxy:8080/composer/downloads/",
			"search":        "http://proxy:8080/composer/search.json?q=%query%&type=%type%",
		} {
			if got[k] != want {
				t.Errorf("%s: got %v, want %v", k, got[k], want)
			}
		}
		if _, ok := got["provider-includes"].(map[string]any)["p/provider-latest$%hash%.json"]; !ok {
			t.Errorf("got %v, want relative provider-includes keys untouched", got["provider-includes"])
		}
	})
	t.Run("p2 with github dists is unchanged", func(t *testing.T) {
		body := classifiertest.ReadFile(t, "p2-drewm-mailchimp-api.json")
		out, err := c.RewriteIndex(classifiers.Request{Package: "drewm/mailchimp-api"}, body, "http://proxy:8080/composer")
		if err != nil || !bytes.Equal(out, body) {
			t.Errorf("got %d bytes (%v), want the input unchanged", len(out), err)
		}
	})
	t.Run("security advisories api-url", func(t *testing.T) {
		body := []byte(`{"packages":[],"security-advisories":{"metadata":true,"api-url":"https://packagist.org/api/security-advisories/"}}`)
		out, err := c.RewriteIndex(classifiers.Request{}, body, "http://p/composer")
		if err != nil || !bytes.Contains(out, []byte(`"api-url":"http://p/composer/api/security-advisories/"`)) {
			t.Errorf("got %s (%v), want api-url under the proxy", out, err)
		}
	})
}

func TestMalformed(t *testing.T) {
	tests := []struct{ name, body string }{
		{"empty", ""},
		{"html", "<html>"},
		{"no packages", `{"minified":"composer/2.0"}`},
		{"packages not object", `{"packages":"x"}`},
		{"versions not array", `{"packages":{"a/b":{"x":1}}}`},
		{"entry not object", `{"packages":{"a/b":[1]}}`},
		{"no version", `{"packages":{"a/b":[{"name":"a/b"}]}}`},
		{"truncated", `{"packages":{"a/b":[{"version":"1"}`},
		{"trailing", `{"packages":{}} x`},
	}
	c := New()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := c.Parse(classifiers.Request{}, []byte(tt.body)); !errors.Is(err, classifiers.ErrMalformed) {
				t.Errorf("Parse: got %v, want ErrMalformed", err)
			}
			if _, err := c.Filter(classifiers.Request{}, []byte(tt.body), func(string) bool { return false }); !errors.Is(err, classifiers.ErrMalformed) {
				t.Errorf("Filter: got %v, want ErrMalformed", err)
			}
		})
	}
}

func TestFacts(t *testing.T) {
	var got []string
	f := classifiers.FetcherFunc(func(_ context.Context, u string, _ http.Header) ([]byte, http.Header, error) {
		got = append(got, u)
		if strings.HasSuffix(u, "~dev.json") {
			return classifiertest.ReadFile(t, "p2-drewm-mailchimp-api~dev.json"), nil, nil
		}
		return classifiertest.ReadFile(t, "p2-drewm-mailchimp-api.json"), nil, nil
	})
	tests := []struct {
		req     classifiers.Request
		wantURL string
		has     string
	}{
		{classifiers.Request{Package: "drewm/mailchimp-api", Version: "v2.5.4"}, "https://repo.packagist.org/p2/drewm/mailchimp-api.json", "v2.5.4"},
		{classifiers.Request{Package: "drewm/mailchimp-api", Variant: VariantDev}, "https://repo.packagist.org/p2/drewm/mailchimp-api~dev.json", "dev-master"},
		{classifiers.Request{Package: "drewm/mailchimp-api", Version: "dev-api-v3"}, "https://repo.packagist.org/p2/drewm/mailchimp-api~dev.json", "dev-api-v3"},
	}
	for _, tt := range tests {
		t.Run(tt.wantURL, func(t *testing.T) {
			got = nil
			md, err := New().Facts(context.Background(), tt.req, f)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0] != tt.wantURL {
				t.Errorf("got fetches %v, want %v", got, tt.wantURL)
			}
			if md.Version(tt.has) == nil {
				t.Errorf("got no %v, want it", tt.has)
			}
		})
	}
	if _, err := New().Facts(context.Background(), classifiers.Request{Package: "bad"}, f); err == nil {
		t.Errorf("got nil error for an invalid name, want one")
	}
}

func TestREADMEAndTestdata(t *testing.T) {
	classifiertest.READMEAndTestdata(t, "repo.packagist.org")
}

func FuzzFilter(f *testing.F) {
	for _, n := range []string{"p2-drewm-mailchimp-api.json", "p2-drewm-mailchimp-api~dev.json", "p2-symfony-polyfill-mbstring.json", "packages.json"} {
		f.Add(classifiertest.ReadFile(f, n), false)
	}
	f.Add([]byte(`{"packages":{"a/b":{"1.0":{"version":"1.0"}}}}`), true)
	c := New()
	f.Fuzz(func(t *testing.T, body []byte, legacy bool) {
		req := classifiers.Request{Package: "a/b"}
		if legacy {
			req.Variant = VariantLegacy
		}
		keep := func(v string) bool { return len(v)%2 == 0 }
		_, perr := c.Parse(req, body)
		out, ferr := c.Filter(req, body, keep)
		_, rerr := c.RewriteIndex(req, body, "http://p/composer")
		_, rerr2 := c.RewriteIndex(classifiers.Request{}, body, "http://p/composer")
		for _, err := range []error{perr, ferr, rerr, rerr2} {
			if err != nil && !errors.Is(err, classifiers.ErrMalformed) {
				t.Fatalf("got %v, want ErrMalformed", err)
			}
		}
		if ferr == nil {
			md, err := c.Parse(classifiers.Request{Variant: req.Variant}, out)
			if err != nil {
				t.Fatalf("filtered output does not parse: %v", err)
			}
			for _, v := range md.Versions {
				if !keep(v.Version) {
					t.Fatalf("got denied %q after filtering", v.Version)
				}
			}
		}
	})
}

func BenchmarkClassify(b *testing.B) {
	classifiertest.BenchClassify(b, New(), "https://repo.packagist.org/p2/symfony/polyfill-mbstring~dev.json", classifiers.KindMetadata)
}

func BenchmarkFilter(b *testing.B) {
	body := classifiertest.ReadFile(b, "p2-symfony-polyfill-mbstring.json")
	c := New()
	keep := func(v string) bool { return !strings.HasPrefix(v, "v1.2") }
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Filter(classifiers.Request{}, body, keep); err != nil {
			b.Fatal(err)
		}
	}
}

// Packagist sends compact JSON; the fixtures are pretty-printed. Filtering
// must not depend on the whitespace.
func TestFilterCompactInputSameOutput(t *testing.T) {
	body := classifiertest.ReadFile(t, "p2-symfony-polyfill-mbstring.json")
	var compact bytes.Buffer
	if err := json.Compact(&compact, body); err != nil {
		t.Fatal(err)
	}
	keep := func(v string) bool { return v != "v1.27.0" }
	want, err := New().Filter(classifiers.Request{}, body, keep)
	if err != nil {
		t.Fatal(err)
	}
	got, err := New().Filter(classifiers.Request{}, compact.Bytes(), keep)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("got %d bytes from compact input, want the same %d bytes as from pretty input", len(got), len(want))
	}
}

func TestMinifyExpandUnset(t *testing.T) {
	vs := []object{
		{{"version", json.RawMessage(`"3"`)}, {"a", json.RawMessage(`1`)}, {"b", json.RawMessage(`2`)}},
		{{"version", json.RawMessage(`"2"`)}, {"a", json.RawMessage(`1`)}},
		{{"version", json.RawMessage(`"1"`)}, {"a", json.RawMessage(`5`)}, {"b", json.RawMessage(`2`)}},
	}
	m := minify(vs)
	var buf bytes.Buffer
	appendObject(&buf, m[1])
	if got, want := buf.String(), `{"version":"2","b":"__unset"}`; got != want {
		t.Errorf("got %v, want %v", got, want)
	}
	if got := expand(m); !reflect.DeepEqual(got, vs) {
		t.Errorf("got %v, want %v", got, vs)
	}
}

func TestGuessPackage(t *testing.T) {
	for raw, want := range map[string]string{
		"https://api.github.com/repos/Drewm/MailChimp-API/zipball/c6cdfab4": "drewm/mailchimp-api",
		"https://codeload.github.com/symfony/console/legacy.zip/abc":        "symfony/console",
		"https://api.github.com/symfony/console/legacy.zip/abc":             "",
		"https://codeload.github.com/repos/a/b/zipball/abc":                 "",
		"https://api.github.com/repos/a/b/zipball/abc/extra":                "",
		"https://example.org/repos/a/b/zipball/abc":                         "",
	} {
		u, _ := url.Parse(raw)
		got, ok := New().GuessPackage(u)
		if got != want || ok != (want != "") {
			t.Errorf("GuessPackage(%s) = %q, %v; want %q", raw, got, ok, want)
		}
	}
}
