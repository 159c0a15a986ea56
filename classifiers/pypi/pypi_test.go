package pypi

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
	const pipAccept = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01"
	const file = "https://files.pythonhosted.org/packages/fd/bb/ad34bbc93d1bea3de086d7c59e528d4a503ac8fe318bd1fa48605584c3d2/"
	tests := []struct {
		method, url, accept string
		want                classifiers.Request
	}{
		{"GET", "https://pypi.org/simple/requests/", "", classifiers.Request{Package: "requests", Kind: classifiers.KindMetadata, Variant: "html"}},
		{"GET", "https://pypi.org/simple/Snowflake_Legacy/", pipAccept, classifiers.Request{Package: "snowflake-legacy", Kind: classifiers.KindMetadata, Variant: "json"}},
		{"GET", "https://pypi.org/simple/zope.interface", "text/html", classifiers.Request{Package: "zope-interface", Kind: classifiers.KindMetadata, Variant: "html"}},
		{"GET", "https://pypi.org/simple/black/", "application/vnd.pypi.simple.v1+json;q=0.2, text/html", classifiers.Request{Package: "black", Kind: classifiers.KindMetadata, Variant: "html"}},
		{"GET", "https://pypi.org/simple/black/?format=application/vnd.pypi.simple.v1+json", "", classifiers.Request{Package: "black", Kind: classifiers.KindMetadata, Variant: "json"}},
		{"GET", "https://pypi.org/simple/", "", classifiers.Request{Kind: classifiers.KindOther}},
		{"GET", "https://pypi.org/pypi/Luigi/json", "", classifiers.Request{Package: "luigi", Kind: classifiers.KindMetadata, Variant: "jsonapi"}},
		{"GET", "https://pypi.org/pypi/luigi/3.6.0/json", "", classifiers.Request{Package: "luigi", Version: "3.6.0", Kind: classifiers.KindMetadata, Variant: "jsonapi"}},
		{"GET", "https://pypi.org/integrity/poetry-core/2.1.3/poetry_core-2.1.3.tar.gz/provenance", "", classifiers.Request{Package: "poetry-core", Version: "2.1.3", Kind: classifiers.KindOther}},
		{"GET", "https://pypi.org/project/requests/", "", classifiers.Request{Kind: classifiers.KindOther}},
		{"POST", "https://pypi.org/simple/requests/", "", classifiers.Request{Package: "requests", Kind: classifiers.KindOther, Variant: "html"}},
		{"GET", file + "black-19.10b0-py36-none-any.whl", "", classifiers.Request{Package: "black", Version: "19.10b0", Kind: classifiers.KindArtifact}},
		{"GET", file + "black-19.10b0-py36-none-any.whl.metadata", "", classifiers.Request{Package: "black", Version: "19.10b0", Kind: classifiers.KindOther}},
		{"GET", file + "black-19.10b0.tar.gz", "", classifiers.Request{Package: "black", Version: "19.10b0", Kind: classifiers.KindArtifact}},
		{"GET", file + "python-dateutil-2.8.2.tar.gz", "", classifiers.Request{Package: "python-dateutil", Version: "2.8.2", Kind: classifiers.KindArtifact}},
		{"GET", file + "Django-4.2.1-1-py3-none-any.whl", "", classifiers.Request{Package: "django", Version: "4.2.1", Kind: classifiers.KindArtifact}},
		{"GET", file + "zope.interface-6.0-cp311-cp311-manylinux_2_17_x86_64.whl", "", classifiers.Request{Package: "zope-interface", Version: "6.0", Kind: classifiers.KindArtifact}},
		{"GET", file + "foo-1.0-py2.7.egg", "", classifiers.Request{Package: "foo", Version: "1.0", Kind: classifiers.KindArtifact}},
		{"GET", file + "foo-1.0.zip", "", classifiers.Request{Package: "foo", Version: "1.0", Kind: classifiers.KindArtifact}},
		{"GET", "https://files.pythonhosted.org/packages/source/r/requests/requests-2.31.0.tar.gz", "", classifiers.Request{Package: "requests", Version: "2.31.0", Kind: classifiers.KindArtifact}},
		{"GET", file + "README", "", classifiers.Request{Kind: classifiers.KindOther}},
		{"GET", file + "bad-wheel.whl", "", classifiers.Request{Kind: classifiers.KindOther}},
		{"GET", "https://files.pythonhosted.org/", "", classifiers.Request{Kind: classifiers.KindOther}},
	}
	c := New()
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.url, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.url, nil)
			if tt.accept != "" {
				r.Header.Set("Accept", tt.accept)
			}
			tt.want.Ecosystem = classifiers.PyPI
			if got := c.Classify(r); got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParse(t *testing.T) {
	c := New()
	type check struct {
		version            string
		published          time.Time
		yanked, provenance bool
		integrity, license string
	}
	tests := []struct {
		file     string
		req      classifiers.Request
		versions []string
		latest   string
		checks   []check
	}{
		{"simple-snowflake-legacy.html", classifiers.Request{Package: "snowflake-legacy", Variant: "html"},
			[]string{"0.3.0", "0.4.0", "0.5.0", "0.7.0", "0.8.0", "0.8.1", "0.9.0", "0.10.0", "0.11.0"}, "", nil},
		{"simple-black-yanked.html", classifiers.Request{Package: "black", Variant: "html"},
			[]string{"19.10b0", "21.11b0"}, "", []check{{version: "21.11b0", yanked: true}, {version: "19.10b0"}}},
		{"simple-black-yanked.v1.json", classifiers.Request{Package: "black", Variant: "json"},
			[]string{"19.10b0", "21.11b0"}, "", []check{
				{version: "19.10b0", published: time.Date(2019, 10, 28, 23, 53, 54, 711000, time.UTC)},
				{version: "21.11b0", yanked: true, published: time.Date(2021, 11, 17, 2, 32, 14, 551680000, time.UTC)},
			}},
		{"simple-poetry-core-provenance.v1.json", classifiers.Request{Package: "poetry-core"},
			[]string{"1.5.0", "2.1.3"}, "", []check{
				{version: "2.1.3", provenance: true, published: time.Date(2025, 5, 4, 12, 43, 9, 814666000, time.UTC)},
				{version: "1.5.0", published: time.Date(2023, 1, 28, 10, 52, 52, 445537000, time.UTC)},
			}},
		{"pypi-luigi.json", classifiers.Request{Package: "luigi", Variant: "jsonapi"}, nil, "3.6.0", []check{
			{version: "3.6.0", license: "Apache License 2.0", integrity: "sha256:41b14850223c619d9006b30acda733e756b883fc7e60814205576647190c96e3",
				published: time.Date(2024, 12, 6, 0, 58, 3, 138172000, time.UTC)},
			{version: "1.0.8"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			md, err := c.Parse(tt.req, classifiertest.ReadFile(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, v := range md.Versions {
				names = append(names, v.Version)
			}
			if tt.versions != nil && !slices.Equal(names, tt.versions) {
				t.Errorf("versions: got %v, want %v", names, tt.versions)
			}
			if md.Latest != tt.latest || md.Package != tt.req.Package {
				t.Errorf("got latest %q package %q, want %q %q", md.Latest, md.Package, tt.latest, tt.req.Package)
			}
			for _, ch := range tt.checks {
				v := md.Version(ch.version)
				if v == nil {
					t.Fatalf("got no version %s", ch.version)
				}
				if !v.Published.Equal(ch.published) || v.Yanked != ch.yanked || v.Provenance != ch.provenance ||
					(ch.integrity != "" && v.Integrity != ch.integrity) || v.License != ch.license {
					t.Errorf("got %+v, want %+v", *v, ch)
				}
			}
		})
	}
	if md, _ := c.Parse(classifiers.Request{Variant: "jsonapi"}, classifiertest.ReadFile(t, "pypi-luigi.json")); len(md.Versions) != 84 {
		t.Errorf("luigi: got %d versions, want 84", len(md.Versions))
	}
	for _, bad := range []struct{ variant, body string }{
		{"json", `{"files":1}`}, {"json", `{}`}, {"json", `[`}, {"jsonapi", `{"releases":{}}`}, {"jsonapi", `{"info":{},"releases":[]}`}, {"html", `just text`},
	} {
		t.Run("malformed "+bad.body, func(t *testing.T) {
			if _, err := c.Parse(classifiers.Request{Variant: bad.variant}, []byte(bad.body)); !errors.Is(err, classifiers.ErrMalformed) {
				t.Errorf("got %v, want ErrMalformed", err)
			}
		})
	}
}

func TestFiles(t *testing.T) {
	fs, err := Files(classifiers.Request{Variant: "html"}, classifiertest.ReadFile(t, "simple-black-yanked.html"))
	if err != nil {
		t.Fatal(err)
	}
	want := File{
		Filename: "black-21.11b0.tar.gz", Version: "21.11b0", RequiresPython: ">=3.6.2", Yanked: true,
		YankedReason: "Broken regex dependency. Use 21.11b1 instead.",
		SHA256:       "f23c482185d842e2f19d506e55c004061167e3c677c063ecd721042c62086ada",
		URL:          "https://files.pythonhosted.org/packages/2f/db/03e8cef689ab0ff857576ee2ee288d1ff2110ef7f3a77cac62e61f18acaf/black-21.11b0.tar.gz#sha256=f23c482185d842e2f19d506e55c004061167e3c677c063ecd721042c62086ada",
	}
	if len(fs) != 4 || fs[3] != want {
		t.Errorf("got %d files, last %+v, want 4 and %+v", len(fs), fs[len(fs)-1], want)
	}
}

func TestFilter(t *testing.T) {
	c := New()
	tests := []struct {
		name, in, golden string
		req              classifiers.Request
		keep             func(string) bool
	}{
		{"html", "simple-snowflake-legacy.html", "simple-snowflake-legacy.drop.golden", classifiers.Request{Package: "snowflake-legacy", Variant: "html"}, classifiertest.KeepExcept("0.11.0", "0.4.0")},
		{"html indented", "simple-black-yanked.html", "simple-black-yanked.drop.golden", classifiers.Request{Package: "black", Variant: "html"}, classifiertest.KeepExcept("19.10b0")},
		{"simple json", "simple-poetry-core-provenance.v1.json", "simple-poetry-core.drop.golden", classifiers.Request{Package: "poetry-core", Variant: "json"}, classifiertest.KeepExcept("2.1.3")},
		{"json api latest", "pypi-luigi.json", "pypi-luigi.drop-latest.golden", classifiers.Request{Package: "luigi", Variant: "jsonapi"}, classifiertest.KeepExcept("3.6.0", "3.5.2", "1.0")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.Filter(tt.req, classifiertest.ReadFile(t, tt.in), tt.keep)
			if err != nil {
				t.Fatal(err)
			}
			classifiertest.Golden(t, tt.golden, got)
			md, err := c.Parse(tt.req, got)
			if err != nil {
				t.Fatal(err)
			}
			before, _ := c.Parse(tt.req, classifiertest.ReadFile(t, tt.in))
			n := 0
			for _, v := range before.Versions {
				if tt.keep(v.Version) {
					n++
				}
			}
			if len(md.Versions) != n {
				t.Errorf("got %d versions, want %d", len(md.Versions), n)
			}
			for _, v := range md.Versions {
				if !tt.keep(v.Version) {
					t.Errorf("got denied version %s in output", v.Version)
				}
			}
		})
	}
	t.Run("json api latest repointed", func(t *testing.T) {
		got, err := c.Filter(classifiers.Request{Variant: "jsonapi"}, classifiertest.ReadFile(t, "pypi-luigi.json"), classifiertest.KeepExcept("3.6.0"))
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Info struct {
				Version    string
				ReleaseURL string `json:"release_url"`
			}
			URLs []struct{ Filename string }
		}
		if err := json.Unmarshal(got, &doc); err != nil {
			t.Fatal(err)
		}
		if doc.Info.Version != "3.5.2" || doc.Info.ReleaseURL != "https://pypi.org/project/luigi/3.5.2/" || len(doc.URLs) == 0 || !strings.Contains(doc.URLs[0].Filename, "3.5.2") {
			t.Errorf("got %+v, want info and urls of 3.5.2", doc)
		}
	})
	t.Run("nothing removed is identity", func(t *testing.T) {
		for _, in := range []string{"simple-snowflake-legacy.html", "simple-black-yanked.v1.json", "pypi-luigi.json"} {
			body := classifiertest.ReadFile(t, in)
			got, err := c.Filter(classifiers.Request{Variant: map[bool]string{true: "jsonapi"}[in == "pypi-luigi.json"]}, body, classifiertest.KeepExcept())
			if err != nil || !bytes.Equal(got, body) {
				t.Errorf("%s: got a rewritten document (%v), want it unchanged", in, err)
			}
		}
	})
	t.Run("version document", func(t *testing.T) {
		doc := []byte(`{"info":{"name":"x","version":"1.0"},"urls":[]}`)
		req := classifiers.Request{Package: "x", Version: "1.0", Variant: "jsonapi"}
		if got, err := c.Filter(req, doc, classifiertest.KeepExcept()); err != nil || !bytes.Equal(got, doc) {
			t.Errorf("kept: got %s, %v, want input unchanged", got, err)
		}
		if _, err := c.Filter(req, doc, classifiertest.KeepExcept("1.0")); !errors.Is(err, classifiers.ErrNoAllowedVersion) {
			t.Errorf("denied: got %v, want ErrNoAllowedVersion", err)
		}
	})
	for _, bad := range []struct{ variant, body string }{{"json", `{"files":{}}`}, {"json", `{"files":[],"versions":[1]}`}, {"json", `{"files":[1]}`}, {"jsonapi", `{"info":{},"releases":1}`}, {"html", ``}} {
		t.Run("malformed "+bad.body, func(t *testing.T) {
			if _, err := c.Filter(classifiers.Request{Variant: bad.variant}, []byte(bad.body), classifiertest.KeepExcept("1")); !errors.Is(err, classifiers.ErrMalformed) {
				t.Errorf("got %v, want ErrMalformed", err)
			}
		})
	}
}

func TestRewriteIndex(t *testing.T) {
	c := New()
	got, err := c.RewriteIndex(classifiers.Request{Variant: "html"}, classifiertest.ReadFile(t, "simple-black-yanked.html"), "http://proxy:8080/pypi/")
	if err != nil {
		t.Fatal(err)
	}
	classifiertest.Golden(t, "simple-black-yanked.rewrite.golden", got)
	if n := bytes.Count(got, []byte(`href="http://proxy:8080/pypi/files/packages/`)); n != 4 {
		t.Errorf("got %d rewritten hrefs, want 4", n)
	}
	if !bytes.Contains(got, []byte("black-21.11b0.tar.gz#sha256=f23c482185d842e2f19d506e55c004061167e3c677c063ecd721042c62086ada")) {
		t.Errorf("got the sha256 fragment lost")
	}
	got, err = c.RewriteIndex(classifiers.Request{Variant: "json"}, classifiertest.ReadFile(t, "simple-poetry-core-provenance.v1.json"), "http://p/pypi")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(got, []byte("files.pythonhosted.org")) || !json.Valid(got) {
		t.Errorf("got a file URL left on files.pythonhosted.org or invalid JSON")
	}
	if _, err := c.RewriteIndex(classifiers.Request{}, []byte(`{"files":`), "http://p"); !errors.Is(err, classifiers.ErrMalformed) {
		t.Errorf("got %v, want ErrMalformed", err)
	}
}

func TestFacts(t *testing.T) {
	c := New()
	var urls []string
	f := classifiers.FetcherFunc(func(_ context.Context, url string, h http.Header) ([]byte, http.Header, error) {
		urls = append(urls, url+" "+h.Get("Accept"))
		if strings.HasSuffix(url, "/provenance") {
			return []byte(`{"attestation_bundles":[{"publisher":{"kind":"GitHub","repository":"python-poetry/poetry-core"},"attestations":[]}]}`), nil, nil
		}
		return classifiertest.ReadFile(t, "simple-poetry-core-provenance.v1.json"), nil, nil
	})
	md, err := c.Facts(context.Background(), classifiers.Request{Package: "Poetry_Core", Version: "2.1.3", Variant: "html"}, f)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"https://pypi.org/simple/poetry-core/ application/vnd.pypi.simple.v1+json",
		"https://pypi.org/integrity/poetry-core/2.1.3/poetry_core-2.1.3-py3-none-any.whl/provenance application/vnd.pypi.integrity.v1+json",
	}
	if !slices.Equal(urls, want) {
		t.Errorf("fetched %v, want %v", urls, want)
	}
	if v := md.Version("2.1.3"); v == nil || v.Publisher != "GitHub" || !v.Provenance || v.Published.IsZero() {
		t.Errorf("got %+v, want 2.1.3 with publisher GitHub and a publish time", v)
	}
	urls = nil
	if _, err := c.Facts(context.Background(), classifiers.Request{Package: "poetry-core", Version: "1.5.0"}, f); err != nil || len(urls) != 1 {
		t.Errorf("no provenance: got %v fetches %v, want only the simple page", err, urls)
	}
}

func TestREADMEAndTestdata(t *testing.T) {
	classifiertest.READMEAndTestdata(t, "pypi.org")
}

var seeds = []struct{ file, variant string }{
	{"simple-snowflake-legacy.html", "html"}, {"simple-black-yanked.html", "html"}, {"simple-black-yanked.v1.json", "json"},
	{"simple-poetry-core-provenance.v1.json", "json"}, {"pypi-luigi.json", "jsonapi"},
}

func variantOf(n uint8) string { return []string{"html", "json", "jsonapi", ""}[n%4] }

func FuzzParse(f *testing.F) {
	for _, s := range seeds {
		f.Add(classifiertest.ReadFile(f, s.file), uint8(slices.Index([]string{"html", "json", "jsonapi"}, s.variant)))
	}
	c := New()
	f.Fuzz(func(t *testing.T, body []byte, variant uint8) {
		_, err := c.Parse(classifiers.Request{Variant: variantOf(variant)}, body)
		if err != nil && !errors.Is(err, classifiers.ErrMalformed) {
			t.Errorf("got %v, want nil or ErrMalformed", err)
		}
	})
}

func FuzzFilter(f *testing.F) {
	for _, s := range seeds {
		f.Add(classifiertest.ReadFile(f, s.file), uint8(slices.Index([]string{"html", "json", "jsonapi"}, s.variant)), "21.11b0")
	}
	c := New()
	f.Fuzz(func(t *testing.T, body []byte, variant uint8, deny string) {
		req := classifiers.Request{Variant: variantOf(variant)}
		got, err := c.Filter(req, body, classifiertest.KeepExcept(deny))
		if err != nil {
			if !errors.Is(err, classifiers.ErrMalformed) && !errors.Is(err, classifiers.ErrNoAllowedVersion) {
				t.Errorf("got %v, want ErrMalformed", err)
			}
			return
		}
		if req.Variant != "html" && looksJSON(body) && !json.Valid(got) {
			t.Errorf("got invalid JSON %q", got)
		}
		if _, err := c.RewriteIndex(req, got, "http://p"); err != nil && !errors.Is(err, classifiers.ErrMalformed) {
			t.Errorf("rewrite: %v", err)
		}
	})
}

func BenchmarkClassify(b *testing.B) {
	classifiertest.BenchClassify(b, New(), "https://files.pythonhosted.org/packages/fd/bb/ad34bbc93d1bea3de086d7c59e528d4a503ac8fe318bd1fa48605584c3d2/black-19.10b0-py36-none-any.whl", classifiers.KindArtifact)
}

func TestHTMLProvenance(t *testing.T) {
	// Written in the repository-version 1.4 form pypi.org serves (PEP 740
	// data-provenance); no recording of it was available.
	page := []byte(`<!DOCTYPE html>
<html>
  <head>
    <meta name="pypi:repository-version" content="1.4">
    <title>Links for iniconfig</title>
  </head>
  <body>
    <h1>Links for iniconfig</h1>
    <a href="https://files.pythonhosted.org/packages/2c/e1/e6716421ea10d38022b952c159d5161ca1193197fb744506875fbb87ea7b/iniconfig-2.1.0-py3-none-any.whl#sha256=9deba5723312380e77435581c6bf4935c94cbfab9b1ed33ef8d238ea168eb760" data-requires-python="&gt;=3.8" data-dist-info-metadata="sha256=e8a0c4b0" data-core-metadata="sha256=e8a0c4b0" data-provenance="https://pypi.org/integrity/iniconfig/2.1.0/iniconfig-2.1.0-py3-none-any.whl/provenance">iniconfig-2.1.0-py3-none-any.whl</a><br />
    <a href="https://files.pythonhosted.org/packages/4c/f3/f4a3e4e2ff5e8ab8d0e0a6e3c5a0c5a5e0c1c2d3e4f5a6b7c8d9e0f1a2b3c4d5/iniconfig-2.0.0.tar.gz#sha256=2d91e135bf72d31a410b17c16da610a82cb55f6b0477d1a902134b24a455b8b3" data-requires-python="&gt;=3.7" >iniconfig-2.0.0.tar.gz</a><br />
    </body>
</html>
<!--SERIAL 28151113-->`)
	c := New()
	md, err := c.Parse(classifiers.Request{Package: "iniconfig", Variant: "html"}, page)
	if err != nil {
		t.Fatal(err)
	}
	if v := md.Version("2.1.0"); v == nil || !v.Provenance || v.Integrity != "sha256:9deba5723312380e77435581c6bf4935c94cbfab9b1ed33ef8d238ea168eb760" {
		t.Errorf("got %+v, want 2.1.0 with provenance and its sha256", v)
	}
	if v := md.Version("2.0.0"); v == nil || v.Provenance {
		t.Errorf("got %+v, want 2.0.0 without provenance", v)
	}
	got, err := c.Filter(classifiers.Request{Variant: "html"}, page, classifiertest.KeepExcept("2.1.0"))
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(string(page), string(page[bytes.Index(page, []byte("    <a href")):bytes.Index(page, []byte("    <a href=\"https://files.pythonhosted.org/packages/4c"))]), "", 1)
	if string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// TestTruncated feeds prefixes of every fixture to Parse, Filter and
// RewriteIndex: nothing may panic, and JSON forms must fail as malformed.
func TestTruncated(t *testing.T) {
	c := New()
	for _, s := range seeds {
		body := classifiertest.ReadFile(t, s.file)
		req := classifiers.Request{Variant: s.variant}
		for i := 0; i < len(body); i += max(len(body)/150, 7) {
			cut := body[:i]
			_, perr := c.Parse(req, cut)
			_, ferr := c.Filter(req, cut, classifiertest.KeepExcept("21.11b0"))
			_, rerr := c.RewriteIndex(req, cut, "http://p")
			if s.variant == "html" {
				continue // any prefix of an HTML page is still HTML
			}
			if !errors.Is(perr, classifiers.ErrMalformed) || !errors.Is(ferr, classifiers.ErrMalformed) || (i > 0 && !errors.Is(rerr, classifiers.ErrMalformed)) {
				t.Errorf("%s[:%d]: got %v / %v / %v, want ErrMalformed", s.file, i, perr, ferr, rerr)
			}
		}
	}
}
