package npm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cafilprox/cafilprox/classifiers"
	"github.com/cafilprox/cafilprox/classifiers/internal/classifiertest"
	"github.com/cafilprox/cafilprox/classifiers/internal/jsonscan"
)

func fixNow(t *testing.T) {
	t.Helper()
	old := now
	now = func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC) }
	t.Cleanup(func() { now = old })
}

func TestClassify(t *testing.T) {
	abbr := http.Header{"Accept": {"application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*"}}
	tests := []struct {
		method, url string
		header      http.Header
		want        classifiers.Request
	}{
		{"GET", "https://registry.npmjs.org/left-pad", nil, classifiers.Request{Package: "left-pad", Kind: classifiers.KindMetadata, Variant: "full"}},
		{"GET", "https://registry.npmjs.org/left-pad", abbr, classifiers.Request{Package: "left-pad", Kind: classifiers.KindMetadata, Variant: "abbreviated"}},
		{"HEAD", "https://registry.npmjs.org/left-pad/", nil, classifiers.Request{Package: "left-pad", Kind: classifiers.KindMetadata, Variant: "full"}},
		{"GET", "https://registry.npmjs.org/@types%2fnode", abbr, classifiers.Request{Package: "@types/node", Kind: classifiers.KindMetadata, Variant: "abbreviated"}},
		{"GET", "https://registry.npmjs.org/@types%2Fnode", nil, classifiers.Request{Package: "@types/node", Kind: classifiers.KindMetadata, Variant: "full"}},
		{"GET", "https://registry.npmjs.org/@types/node", nil, classifiers.Request{Package: "@types/node", Kind: classifiers.KindMetadata, Variant: "full"}},
		{"GET", "https://registry.npmjs.org/%40types%2fnode", nil, classifiers.Request{Package: "@types/node", Kind: classifiers.KindMetadata, Variant: "full"}},
		{"GET", "https://registry.npmjs.org/left-pad/1.3.0", nil, classifiers.Request{Package: "left-pad", Version: "1.3.0", Kind: classifiers.KindMetadata}},
		{"GET", "https://registry.npmjs.org/left-pad/latest", nil, classifiers.Request{Package: "left-pad", Version: "latest", Kind: classifiers.KindMetadata}},
		{"GET", "https://registry.npmjs.org/@types%2fnode/20.1.0", nil, classifiers.Request{Package: "@types/node", Version: "20.1.0", Kind: classifiers.KindMetadata}},
		{"GET", "https://registry.npmjs.org/left-pad/-/left-pad-1.3.0.tgz", nil, classifiers.Request{Package: "left-pad", Version: "1.3.0", Kind: classifiers.KindArtifact}},
		{"GET", "https://registry.yarnpkg.com/is-stream/-/is-stream-3.0.0-beta.1.tgz", nil, classifiers.Request{Package: "is-stream", Version: "3.0.0-beta.1", Kind: classifiers.KindArtifact}},
		{"GET", "https://registry.npmjs.org/@types/node/-/node-20.1.0.tgz", nil, classifiers.Request{Package: "@types/node", Version: "20.1.0", Kind: classifiers.KindArtifact}},
		{"GET", "https://registry.npmjs.org/@types%2fnode/-/node-20.1.0.tgz", nil, classifiers.Request{Package: "@types/node", Version: "20.1.0", Kind: classifiers.KindArtifact}},
		{"GET", "https://registry.npmjs.org/@types%2Fnode/-/@types/node-20.1.0.tgz", nil, classifiers.Request{Package: "@types/node", Version: "20.1.0", Kind: classifiers.KindArtifact}},
		{"GET", "https://registry.npmjs.org/@types/node/-/node-20.1.0.tgz.sig", nil, classifiers.Request{Package: "@types/node", Kind: classifiers.KindArtifact}},
		// A file name of another package is still an artifact of this one, without a version.
		{"GET", "https://registry.npmjs.org/left-pad/-/evil-1.0.0.tgz", nil, classifiers.Request{Package: "left-pad", Kind: classifiers.KindArtifact}},
		{"GET", "https://registry.npmjs.org/-/npm/v1/security/advisories/bulk", nil, classifiers.Request{Kind: classifiers.KindOther}},
		{"POST", "https://registry.npmjs.org/-/npm/v1/security/audits/quick", nil, classifiers.Request{Kind: classifiers.KindOther}},
		{"GET", "https://registry.npmjs.org/-/v1/search?text=left", nil, classifiers.Request{Kind: classifiers.KindOther}},
		{"GET", "https://registry.npmjs.org/-/npm/v1/attestations/left-pad@1.3.0", nil, classifiers.Request{Package: "left-pad", Version: "1.3.0", Kind: classifiers.KindOther}},
		{"GET", "https://registry.npmjs.org/-/npm/v1/attestations/@sigstore%2fcore@1.0.0", nil, classifiers.Request{Package: "@sigstore/core", Version: "1.0.0", Kind: classifiers.KindOther}},
		{"GET", "https://registry.npmjs.org/-/ping", nil, classifiers.Request{Kind: classifiers.KindOther}},
		{"GET", "https://registry.npmjs.org/", nil, classifiers.Request{Kind: classifiers.KindOther}},
		{"PUT", "https://registry.npmjs.org/left-pad", nil, classifiers.Request{Package: "left-pad", Kind: classifiers.KindOther}},
		{"GET", "https://registry.npmjs.org/@scope", nil, classifiers.Request{Kind: classifiers.KindOther}},
		{"GET", "https://registry.npmjs.org/.hidden", nil, classifiers.Request{Kind: classifiers.KindOther}},
		{"GET", "https://registry.npmjs.org/left-pad/-/left-pad-1.3.0.tgz/extra", nil, classifiers.Request{Package: "left-pad", Kind: classifiers.KindArtifact}},
		{"GET", "https://registry.npmjs.org/left-pad/1.3.0/extra", nil, classifiers.Request{Package: "left-pad", Kind: classifiers.KindOther}},
	}
	c := New()
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.url, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.url, nil)
			for k, v := range tt.header {
				r.Header[k] = v
			}
			tt.want.Ecosystem = classifiers.NPM
			if got := c.Classify(r); got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParse(t *testing.T) {
	c := New()
	t.Run("is-stream full", func(t *testing.T) {
		md, err := c.Parse(classifiers.Request{Package: "is-stream"}, classifiertest.ReadFile(t, "is-stream.packument.json"))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, v := range md.Versions {
			names = append(names, v.Version)
		}
		if want := []string{"1.0.0", "1.0.1", "1.1.0", "2.0.0", "2.0.1", "3.0.0"}; !slices.Equal(names, want) {
			t.Errorf("versions: got %v, want %v", names, want)
		}
		if md.Latest != "3.0.0" || md.Package != "is-stream" {
			t.Errorf("got latest %q package %q, want 3.0.0 is-stream", md.Latest, md.Package)
		}
		v := md.Version("3.0.0")
		if want := time.Date(2021, 8, 10, 10, 52, 14, 251e6, time.UTC); !v.Published.Equal(want) {
			t.Errorf("published: got %v, want %v", v.Published, want)
		}
		if v.License != "MIT" || v.HasInstallScript || v.Provenance || v.Yanked {
			t.Errorf("got %+v, want MIT and no flags", v)
		}
		if want := "sha512:"; len(v.Integrity) != len(want)+128 || v.Integrity[:7] != want {
			t.Errorf("integrity: got %q, want sha512 hex", v.Integrity)
		}
	})
	t.Run("synthetic abbreviated", func(t *testing.T) {
		md, err := c.Parse(classifiers.Request{Package: "@acme/widget", Variant: "abbreviated"}, classifiertest.ReadFile(t, "synthetic-abbreviated.json"))
		if err != nil {
			t.Fatal(err)
		}
		want := []classifiers.Version{
			{Version: "1.0.0", Integrity: "sha512:c1539130118efc502cffef9b94635e01575b34ab48875adb04bd84c90d7e27d942949f772a288a7bc3e614855d5e11dccafe3848bf6882599f792b27768d2347"},
			{Version: "2.0.0", HasInstallScript: true, Integrity: "sha1:4f4c3a1b4d0e3c2a1b0a99887766554433221100"},
			{Version: "2.1.0", Provenance: true, Publisher: "github", Integrity: "sha512:c1539130118efc502cffef9b94635e01575b34ab48875adb04bd84c90d7e27d942949f772a288a7bc3e614855d5e11dccafe3848bf6882599f792b27768d2347"},
			{Version: "3.0.0-rc.1", HasInstallScript: true, License: "Apache-2.0"},
		}
		if len(md.Versions) != len(want) {
			t.Fatalf("got %d versions, want %d", len(md.Versions), len(want))
		}
		for i := range want {
			got := md.Versions[i]
			if got.Version != want[i].Version || got.HasInstallScript != want[i].HasInstallScript || got.Provenance != want[i].Provenance ||
				got.Publisher != want[i].Publisher || got.Integrity != want[i].Integrity || got.License != want[i].License || !got.Published.IsZero() {
				t.Errorf("got %+v, want %+v", got, want[i])
			}
		}
	})
	t.Run("version document", func(t *testing.T) {
		doc := []byte(`{"name":"left-pad","version":"1.3.0","license":"WTFPL","scripts":{"install":"x"},"dist":{"shasum":"5b8a3a7765dfe001261dde915589e782f8c94d1e"}}`)
		md, err := c.Parse(classifiers.Request{Package: "left-pad", Version: "1.3.0"}, doc)
		if err != nil {
			t.Fatal(err)
		}
		if len(md.Versions) != 1 || md.Versions[0].Version != "1.3.0" || !md.Versions[0].HasInstallScript || md.Versions[0].License != "WTFPL" {
			t.Errorf("got %+v, want one 1.3.0 WTFPL with install script", md.Versions)
		}
	})
	for _, bad := range []string{``, `[]`, `{"versions":[1]}`, `{"name":"x"}`, `{"versions":{"1.0.0":"x"}}`, `{"versions":{"1.0.0":{"dist":1}}`} {
		t.Run("malformed "+bad, func(t *testing.T) {
			_, err := c.Parse(classifiers.Request{Package: "x"}, []byte(bad))
			if !errors.Is(err, classifiers.ErrMalformed) {
				t.Errorf("got %v, want ErrMalformed", err)
			}
		})
	}
}

func TestFilter(t *testing.T) {
	fixNow(t)
	c := New()
	tests := []struct {
		name, in, golden string
		req              classifiers.Request
		keep             func(string) bool
	}{
		{"drop latest", "is-stream.packument.json", "is-stream.drop-3.0.0-2.0.0.golden", classifiers.Request{Package: "is-stream"}, classifiertest.KeepExcept("3.0.0", "2.0.0")},
		{"drop all", "is-stream.packument.json", "is-stream.drop-all.golden", classifiers.Request{Package: "is-stream"}, func(string) bool { return false }},
		{"abbreviated tags", "synthetic-abbreviated.json", "synthetic-abbreviated.drop-2.1.0-rc.golden", classifiers.Request{Package: "@acme/widget"}, classifiertest.KeepExcept("2.1.0", "3.0.0-rc.1")},
		{"spaced json", "sigstore-core.packument.json", "sigstore-core.drop-latest.golden", classifiers.Request{Package: "@sigstore/core"}, classifiertest.KeepExcept("4.0.1")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.Filter(tt.req, classifiertest.ReadFile(t, tt.in), tt.keep)
			if err != nil {
				t.Fatal(err)
			}
			if !json.Valid(got) {
				t.Fatalf("filtered document is not valid JSON")
			}
			classifiertest.Golden(t, tt.golden, got)
			md, err := c.Parse(tt.req, got)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range md.Versions {
				if !tt.keep(v.Version) {
					t.Errorf("got denied version %s in output", v.Version)
				}
			}
		})
	}

	t.Run("dist-tags", func(t *testing.T) {
		got, err := c.Filter(classifiers.Request{Package: "@acme/widget"}, classifiertest.ReadFile(t, "synthetic-abbreviated.json"), classifiertest.KeepExcept("2.1.0", "3.0.0-rc.1", "1.0.0"))
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Modified string            `json:"modified"`
			DistTags map[string]string `json:"dist-tags"`
		}
		if err := json.Unmarshal(got, &doc); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"latest": "2.0.0", "next": "2.0.0", "legacy": "2.0.0"}
		for k, v := range want {
			if doc.DistTags[k] != v {
				t.Errorf("dist-tags[%s]: got %q, want %q", k, doc.DistTags[k], v)
			}
		}
		if doc.Modified != "2025-03-01T10:00:00.000Z" {
			t.Errorf("modified: got %q, want the upstream value kept (deterministic output)", doc.Modified)
		}
		again, _ := c.Filter(classifiers.Request{Package: "@acme/widget"}, classifiertest.ReadFile(t, "synthetic-abbreviated.json"), classifiertest.KeepExcept("2.1.0", "3.0.0-rc.1", "1.0.0"))
		if !bytes.Equal(again, got) {
			t.Error("filtering the same document twice gave different bytes")
		}
	})
	t.Run("nothing removed is identity", func(t *testing.T) {
		in := classifiertest.ReadFile(t, "is-stream.packument.json")
		got, err := c.Filter(classifiers.Request{Package: "is-stream"}, in, func(string) bool { return true })
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, in) {
			t.Errorf("got a rewritten document, want the input unchanged")
		}
	})
	t.Run("version document", func(t *testing.T) {
		doc := []byte(`{"name":"left-pad","version":"1.3.0","dist":{}}`)
		req := classifiers.Request{Package: "left-pad", Version: "1.3.0"}
		if got, err := c.Filter(req, doc, classifiertest.KeepExcept()); err != nil || !bytes.Equal(got, doc) {
			t.Errorf("kept: got %s, %v, want input unchanged", got, err)
		}
		if _, err := c.Filter(req, doc, classifiertest.KeepExcept("1.3.0")); !errors.Is(err, classifiers.ErrNoAllowedVersion) {
			t.Errorf("denied: got %v, want ErrNoAllowedVersion", err)
		}
	})
	for _, bad := range []string{`{"versions":`, `"x"`, `{"versions":[]}`, `{}`} {
		t.Run("malformed "+bad, func(t *testing.T) {
			_, err := c.Filter(classifiers.Request{Package: "x"}, []byte(bad), classifiertest.KeepExcept())
			if !errors.Is(err, classifiers.ErrMalformed) {
				t.Errorf("got %v, want ErrMalformed", err)
			}
		})
	}
}

func TestReplacement(t *testing.T) {
	r := rankVersions([]string{"1.0.0", "1.2.0", "2.0.0-beta.1", "2.0.0-rc.1", "0.9.0", "not-semver"})
	tests := []struct{ old, want string }{
		{"1.5.0", "1.2.0"},
		{"2.0.0", "1.2.0"},
		{"2.0.0-rc.2", "2.0.0-rc.1"},
		{"0.1.0", "1.2.0"},
		{"garbage", "1.2.0"},
	}
	for _, tt := range tests {
		t.Run(tt.old, func(t *testing.T) {
			if got := r.replacement(tt.old); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	if got := rankVersions([]string{"1.0.0-a"}).replacement("2.0.0"); got != "1.0.0-a" {
		t.Errorf("prerelease only: got %q, want 1.0.0-a", got)
	}
	if got := rankVersions(nil).replacement("2.0.0"); got != "" {
		t.Errorf("empty: got %q, want empty", got)
	}
}

func TestRewriteIndex(t *testing.T) {
	c := New()
	got, err := c.RewriteIndex(classifiers.Request{Package: "@acme/widget"}, classifiertest.ReadFile(t, "synthetic-abbreviated.json"), "http://proxy:8080/npm/")
	if err != nil {
		t.Fatal(err)
	}
	classifiertest.Golden(t, "synthetic-abbreviated.rewrite.golden", got)
	if bytes.Contains(got, []byte(`"tarball":"https://registry.npmjs.org`)) {
		t.Errorf("got a tarball URL left on the registry")
	}
	// The attestation URL is not a tarball and stays.
	if !bytes.Contains(got, []byte(`"url":"https://registry.npmjs.org/-/npm/v1/attestations/`)) {
		t.Errorf("got the attestation URL rewritten, want it unchanged")
	}
	spaced := classifiertest.ReadFile(t, "sigstore-core.packument.json")
	got, err = c.RewriteIndex(classifiers.Request{}, spaced, "http://p/npm")
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(got, []byte(`"tarball": "http://p/npm/@sigstore/core/-/`)); n != 11 {
		t.Errorf("got %d rewritten tarballs, want 11", n)
	}
	if _, err := c.RewriteIndex(classifiers.Request{}, []byte(`{`), "http://p"); !errors.Is(err, classifiers.ErrMalformed) {
		t.Errorf("got %v, want ErrMalformed", err)
	}
}

func TestFacts(t *testing.T) {
	c := New()
	body := classifiertest.ReadFile(t, "is-stream.packument.json")
	var gotURL, gotAccept string
	f := classifiers.FetcherFunc(func(_ context.Context, url string, h http.Header) ([]byte, http.Header, error) {
		gotURL, gotAccept = url, h.Get("Accept")
		return body, nil, nil
	})
	md, err := c.Facts(context.Background(), classifiers.Request{Package: "is-stream", Version: "2.0.0", Variant: "abbreviated"}, f)
	if err != nil {
		t.Fatal(err)
	}
	if gotURL != "https://registry.npmjs.org/is-stream" || gotAccept != "application/json" {
		t.Errorf("got %s with Accept %q, want the full document", gotURL, gotAccept)
	}
	if v := md.Version("2.0.0"); v == nil || v.Published.IsZero() {
		t.Errorf("got %+v, want 2.0.0 with a publish time", v)
	}
	if _, err := c.Facts(context.Background(), classifiers.Request{Package: "@types/node"}, f); err != nil || gotURL != "https://registry.npmjs.org/@types%2fnode" {
		t.Errorf("scoped: got %s (%v), want the %%2f form", gotURL, err)
	}
	var se *classifiers.StatusError
	if _, err := c.Facts(context.Background(), classifiers.Request{Package: "x"}, classifiertest.NotFound); !errors.As(err, &se) {
		t.Errorf("got %v, want the StatusError wrapped", err)
	}
}

func TestREADMEAndTestdata(t *testing.T) {
	classifiertest.READMEAndTestdata(t, "registry.npmjs.org")
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"is-stream.packument.json", "synthetic-abbreviated.json", "sigstore-core.packument.json"} {
		f.Add(classifiertest.ReadFile(f, name), "")
	}
	f.Add([]byte(`{"name":"a","version":"1.0.0","dist":{}}`), "1.0.0")
	c := New()
	f.Fuzz(func(t *testing.T, body []byte, version string) {
		_, err := c.Parse(classifiers.Request{Package: "p", Version: version}, body)
		if err != nil && !errors.Is(err, classifiers.ErrMalformed) {
			t.Errorf("got %v, want nil or ErrMalformed", err)
		}
	})
}

func FuzzFilter(f *testing.F) {
	for _, name := range []string{"is-stream.packument.json", "synthetic-abbreviated.json", "sigstore-core.packument.json"} {
		f.Add(classifiertest.ReadFile(f, name), "3.0.0")
	}
	f.Add([]byte(`{"versions":{"a\"b":{}},"dist-tags":{"x":"a\"b"}}`), `a"b`)
	c := New()
	f.Fuzz(func(t *testing.T, body []byte, deny string) {
		got, err := c.Filter(classifiers.Request{Package: "p"}, body, classifiertest.KeepExcept(deny))
		if err != nil {
			if !errors.Is(err, classifiers.ErrMalformed) && !errors.Is(err, classifiers.ErrNoAllowedVersion) {
				t.Errorf("got %v, want ErrMalformed", err)
			}
			return
		}
		if !json.Valid(got) {
			t.Errorf("got invalid JSON %q from valid input", got)
		}
		if _, err := c.RewriteIndex(classifiers.Request{}, got, "http://p"); err != nil {
			t.Errorf("rewrite of filtered output: %v", err)
		}
	})
}

func BenchmarkFilterLarge(b *testing.B) {
	body := classifiertest.ReadFile(b, "typescript.packument.json.gz")
	c := New()
	// Deny a third of the versions and the latest one, which forces
	// version, time and dist-tag rewrites.
	var doc struct {
		Versions map[string]json.RawMessage `json:"versions"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		b.Fatal(err)
	}
	names := slices.Sorted(maps.Keys(doc.Versions))
	denied := map[string]bool{"7.0.2": true}
	for i, v := range names {
		if i%3 == 0 {
			denied[v] = true
		}
	}
	keep := func(v string) bool { return !denied[v] }
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Filter(classifiers.Request{Package: "typescript"}, body, keep); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseLarge(b *testing.B) {
	body := classifiertest.ReadFile(b, "typescript.packument.json.gz")
	c := New()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Parse(classifiers.Request{Package: "typescript"}, body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkClassify(b *testing.B) {
	classifiertest.BenchClassify(b, New(), "https://registry.npmjs.org/@types%2fnode/-/node-20.1.0.tgz", classifiers.KindArtifact)
}

// TestTruncated feeds every prefix (at a stride) of each fixture to Parse,
// Filter and RewriteIndex: a cut document must give ErrMalformed, never a
// panic or invalid output.
func TestTruncated(t *testing.T) {
	c := New()
	for _, name := range []string{"is-stream.packument.json", "synthetic-abbreviated.json"} {
		body := classifiertest.ReadFile(t, name)
		for i := 0; i < len(body); i += 29 {
			cut := body[:i]
			if _, err := c.Parse(classifiers.Request{}, cut); err == nil {
				t.Errorf("%s[:%d]: parse got nil error, want ErrMalformed", name, i)
			}
			if _, err := c.Filter(classifiers.Request{}, cut, classifiertest.KeepExcept("2.0.0")); !errors.Is(err, classifiers.ErrMalformed) {
				t.Errorf("%s[:%d]: filter got %v, want ErrMalformed", name, i, err)
			}
			if _, err := c.RewriteIndex(classifiers.Request{}, cut, "http://p"); !errors.Is(err, classifiers.ErrMalformed) {
				t.Errorf("%s[:%d]: rewrite got %v, want ErrMalformed", name, i, err)
			}
		}
	}
}

// BenchmarkFilter20MB doubles the recorded typescript packument (every
// version also under a "-copy" pre-release key) to the 20 MB of the
// performance target.
func BenchmarkFilter20MB(b *testing.B) {
	src := classifiertest.ReadFile(b, "typescript.packument.json.gz")
	top, _ := jsonscan.ObjectMembers(src, 0)
	var body []byte
	body = append(body, '{')
	for i, m := range top {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, src[m.KeyStart:m.KeyEnd]...)
		body = append(body, ':')
		k := m.Key(src)
		if k != "versions" && k != "time" {
			body = append(body, src[m.ValStart:m.ValEnd]...)
			continue
		}
		ms, _ := jsonscan.ObjectMembers(src, m.ValStart)
		body = append(body, '{')
		for j, v := range ms {
			if j > 0 {
				body = append(body, ',')
			}
			body = append(body, src[v.KeyStart:v.ValEnd]...)
			body = append(body, ',')
			body = append(body, src[v.KeyStart:v.KeyEnd-1]...)
			body = append(body, `-copy"`...)
			body = append(body, src[v.KeyEnd:v.ValEnd]...)
		}
		body = append(body, '}')
	}
	body = append(body, '}')
	if !json.Valid(body) {
		b.Fatal("built an invalid document")
	}
	c := New()
	keep := func(v string) bool { return !strings.HasSuffix(v, "-copy") && v != "7.0.2" }
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Filter(classifiers.Request{Package: "typescript"}, body, keep); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(body))/1e6, "MB-doc")
}
