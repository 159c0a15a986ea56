package maven

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
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
	mockk := Registry + "/io/mockk/mockk/maven-metadata.xml"
	tests := []struct {
		host, path string
		want       classifiers.Request
	}{
		{"repo.maven.apache.org", "/maven2/io/mockk/mockk/maven-metadata.xml", classifiers.Request{Kind: meta, Package: "io.mockk:mockk"}},
		{"repo1.maven.org", "/maven2/io/mockk/mockk/maven-metadata.xml.sha1", classifiers.Request{Kind: meta, Package: "io.mockk:mockk", ChecksumOf: mockk, ChecksumAlgo: "sha1"}},
		{"repo1.maven.org", "/maven2/io/mockk/mockk/maven-metadata.xml.md5", classifiers.Request{Kind: meta, Package: "io.mockk:mockk", ChecksumOf: mockk, ChecksumAlgo: "md5"}},
		{"repo1.maven.org", "/maven2/io/mockk/mockk/maven-metadata.xml.sha256", classifiers.Request{Kind: meta, Package: "io.mockk:mockk", ChecksumOf: mockk, ChecksumAlgo: "sha256"}},
		{"repo1.maven.org", "/maven2/io/mockk/mockk/maven-metadata.xml.sha512", classifiers.Request{Kind: meta, Package: "io.mockk:mockk", ChecksumOf: mockk, ChecksumAlgo: "sha512"}},
		{"repo1.maven.org", "/maven2/io/mockk/mockk/maven-metadata.xml.asc", classifiers.Request{Kind: other, Package: "io.mockk:mockk"}},
		{"repo1.maven.org", "/maven2/commons-collections/commons-collections/maven-metadata.xml", classifiers.Request{Kind: meta, Package: "commons-collections:commons-collections"}},
		{"repo.maven.apache.org", "/maven2/io/mockk/mockk/1.10.0/mockk-1.10.0.pom", classifiers.Request{Kind: art, Package: "io.mockk:mockk", Version: "1.10.0"}},
		{"repo.maven.apache.org", "/maven2/io/mockk/mockk/1.10.0/mockk-1.10.0.jar", classifiers.Request{Kind: art, Package: "io.mockk:mockk", Version: "1.10.0"}},
		{"repo.maven.apache.org", "/maven2/io/mockk/mockk/1.10.0/mockk-1.10.0-sources.jar", classifiers.Request{Kind: art, Package: "io.mockk:mockk", Version: "1.10.0"}},
		{"repo.maven.apache.org", "/maven2/io/mockk/mockk/1.10.0/mockk-1.10.0.jar.sha1", classifiers.Request{Kind: art, Package: "io.mockk:mockk", Version: "1.10.0"}},
		{"repo.maven.apache.org", "/maven2/io/mockk/mockk/1.10.0/mockk-1.10.0.jar.asc", classifiers.Request{Kind: art, Package: "io.mockk:mockk", Version: "1.10.0"}},
		{"repo.maven.apache.org", "/maven2/io/mockk/mockk/1.10.0/mockk-1.10.0.jar.asc.sha256", classifiers.Request{Kind: art, Package: "io.mockk:mockk", Version: "1.10.0"}},
		{"repo.maven.apache.org", "/maven2/io/mockk/mockk/1.10.0/mockk-1.10.0.module", classifiers.Request{Kind: art, Package: "io.mockk:mockk", Version: "1.10.0"}},
		{"repo.maven.apache.org", "/maven2/com/google/guava/guava/23.6-jre/guava-23.6-jre.jar", classifiers.Request{Kind: art, Package: "com.google.guava:guava", Version: "23.6-jre"}},
		{"repo.maven.apache.org", "/maven2/org/apache/maven/plugins/maven-compiler-plugin/3.11.0/maven-compiler-plugin-3.11.0.pom", classifiers.Request{Kind: art, Package: "org.apache.maven.plugins:maven-compiler-plugin", Version: "3.11.0"}},
		{"repo.maven.apache.org", "/maven2/junit/junit/4.13.2/junit-4.13.2.jar", classifiers.Request{Kind: art, Package: "junit:junit", Version: "4.13.2"}},
		{"repo.maven.apache.org", "/maven2/com/example/lib/1.0-SNAPSHOT/lib-1.0-20240101.120000-3.jar", classifiers.Request{Kind: art, Package: "com.example:lib", Version: "1.0-SNAPSHOT"}},
		{"repo.maven.apache.org", "/maven2/com/example/lib/1.0-SNAPSHOT/maven-metadata.xml", classifiers.Request{Kind: other, Package: "com.example:lib", Version: "1.0-SNAPSHOT"}},
		// A file of another artifact in the directory is not attributed.
		{"repo.maven.apache.org", "/maven2/io/mockk/mockk/1.10.0/other-1.10.0.jar", classifiers.Request{Kind: other}},
		{"repo.maven.apache.org", "/maven2/io/mockk/mockk/1.10.0/mockk-1.10.00.jar", classifiers.Request{Kind: other}},
		{"repo.maven.apache.org", "/maven2/io/mockk/mockk/", classifiers.Request{Kind: other}},
		{"repo.maven.apache.org", "/maven2/io/../mockk/maven-metadata.xml", classifiers.Request{Kind: other}},
		{"repo.maven.apache.org", "/maven2/maven-metadata.xml", classifiers.Request{Kind: other}},
		{"repo.maven.apache.org", "/maven2/.index/nexus-maven-repository-index.gz", classifiers.Request{Kind: other}},
		{"repo.maven.apache.org", "/io/mockk/mockk/maven-metadata.xml", classifiers.Request{Kind: other}},
	}
	c := New()
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "https://"+tt.host+"/", nil)
			r.URL.Path = tt.path
			tt.want.Ecosystem = classifiers.Maven
			if got := c.Classify(r); got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		file, pkg, latest string
		n                 int
		contains          string
	}{
		{"io.mockk.mockk.maven-metadata.xml", "io.mockk:mockk", "1.10.0", 65, "1.9.3.kotlin12"},
		{"com.google.guava.guava.maven-metadata.xml", "com.google.guava:guava", "23.6-jre", 0, "23.7-rc1-android"},
		{"commons-collections.commons-collections.maven-metadata.xml", "commons-collections:commons-collections", "20040616", 17, "2.0.20020914.015953"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			md, err := New().Parse(classifiers.Request{}, classifiertest.ReadFile(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if md.Package != tt.pkg {
				t.Errorf("got package %v, want %v", md.Package, tt.pkg)
			}
			if md.Latest != tt.latest {
				t.Errorf("got latest %v, want %v", md.Latest, tt.latest)
			}
			if tt.n > 0 && len(md.Versions) != tt.n {
				t.Errorf("got %d versions, want %d", len(md.Versions), tt.n)
			}
			if md.Version(tt.contains) == nil {
				t.Errorf("got no %v, want it listed", tt.contains)
			}
		})
	}
}

func TestFilter(t *testing.T) {
	deny := func(vs ...string) func(string) bool {
		return func(v string) bool {
			for _, d := range vs {
				if v == d || strings.HasSuffix(d, "*") && strings.HasPrefix(v, strings.TrimSuffix(d, "*")) {
					return false
				}
			}
			return true
		}
	}
	tests := []struct {
		name, file         string
		keep               func(string) bool
		latest, release    string
		dropped            []string
		unchangedIfAllKept bool
	}{
		{"mockk-drop-latest", "io.mockk.mockk.maven-metadata.xml", deny("1.10.0", "1.9.3.kotlin12"), "1.9.3", "1.9.3", []string{"1.10.0", "1.9.3.kotlin12"}, false},
		{"mockk-drop-old", "io.mockk.mockk.maven-metadata.xml", deny("1.0", "1.1"), "1.10.0", "1.10.0", []string{"1.0", "1.1"}, false},
		{"guava-drop-23.6", "com.google.guava.guava.maven-metadata.xml", deny("23.6*"), "23.7-rc1-jre", "23.7-rc1-jre", []string{"23.6-jre", "23.6-android"}, false},
		{"commons-collections-drop-date", "commons-collections.commons-collections.maven-metadata.xml", deny("20040616"), "20040102.233541", "20040102.233541", []string{"20040616"}, false},
		{"mockk-drop-all", "io.mockk.mockk.maven-metadata.xml", func(string) bool { return false }, "", "", []string{"1.0", "1.10.0"}, false},
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
			info, err := ParseInfo(out)
			if err != nil {
				t.Fatalf("filtered output is not valid: %v", err)
			}
			if info.Latest != tt.latest || info.Release != tt.release {
				t.Errorf("got latest %v release %v, want %v and %v", info.Latest, info.Release, tt.latest, tt.release)
			}
			orig, _ := ParseInfo(body)
			if info.LastUpdated != orig.LastUpdated {
				t.Errorf("got lastUpdated %v, want %v", info.LastUpdated, orig.LastUpdated)
			}
			md, _ := c.Parse(classifiers.Request{}, out)
			for _, d := range tt.dropped {
				if md.Version(d) != nil {
					t.Errorf("got %v, want it dropped", d)
				}
			}
			for _, v := range md.Versions {
				if !tt.keep(v.Version) {
					t.Errorf("got denied %v, want it dropped", v.Version)
				}
			}
			if bytes.Contains(out, []byte("\n\n")) {
				t.Errorf("got a blank line in the output, want formatting kept")
			}
		})
	}
}

func TestFilterKeepAllIsIdentity(t *testing.T) {
	for _, f := range []string{"io.mockk.mockk.maven-metadata.xml", "com.google.guava.guava.maven-metadata.xml"} {
		body := classifiertest.ReadFile(t, f)
		out, err := New().Filter(classifiers.Request{}, body, func(string) bool { return true })
		if err != nil || !bytes.Equal(out, body) {
			t.Errorf("%s: got %d bytes (%v), want the input unchanged", f, len(out), err)
		}
	}
}

func TestFilterSnapshotRelease(t *testing.T) {
	body := []byte(`<?xml version="1.0" encoding="UTF-8"?>
<metadata>
  <groupId>g</groupId>
  <artifactId>a</artifactId>
  <versioning>
    <latest>2.0-SNAPSHOT</latest>
    <release>1.1</release>
    <versions>
      <version>1.0</version>
      <version>1.1</version>
      <version>1.2-SNAPSHOT</version>
      <version>2.0-SNAPSHOT</version>
    </versions>
  </versioning>
</metadata>
`)
	out, err := New().Filter(classifiers.Request{}, body, func(v string) bool { return v != "1.1" && v != "2.0-SNAPSHOT" })
	if err != nil {
		t.Fatal(err)
	}
	info, err := ParseInfo(out)
	if err != nil {
		t.Fatal(err)
	}
	if info.Latest != "1.2-SNAPSHOT" || info.Release != "1.0" {
		t.Errorf("got latest %v release %v, want 1.2-SNAPSHOT and 1.0", info.Latest, info.Release)
	}
}

func TestMalformed(t *testing.T) {
	for _, body := range []string{"", "<metadata>", "<html><body>oops", "not xml", "<metadata><versioning><versions><version>1</versions></metadata>"} {
		t.Run(body, func(t *testing.T) {
			if _, err := New().Parse(classifiers.Request{}, []byte(body)); !errors.Is(err, classifiers.ErrMalformed) {
				t.Errorf("Parse: got %v, want ErrMalformed", err)
			}
			if _, err := New().Filter(classifiers.Request{}, []byte(body), func(string) bool { return false }); !errors.Is(err, classifiers.ErrMalformed) {
				t.Errorf("Filter: got %v, want ErrMalformed", err)
			}
		})
	}
}

func TestFacts(t *testing.T) {
	meta := classifiertest.ReadFile(t, "io.mockk.mockk.maven-metadata.xml")
	pom := classifiertest.ReadFile(t, "mockk-1.10.0.pom")
	published := time.Date(2020, 4, 19, 22, 24, 43, 0, time.UTC)
	var mu sync.Mutex
	var fetched []string
	var inflight, peak atomic.Int32
	f := classifiers.FetcherFunc(func(_ context.Context, u string, _ http.Header) ([]byte, http.Header, error) {
		n := inflight.Add(1)
		defer inflight.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		mu.Lock()
		fetched = append(fetched, u)
		mu.Unlock()
		switch {
		case strings.HasSuffix(u, "/maven-metadata.xml"):
			return meta, http.Header{}, nil
		case strings.HasSuffix(u, "/1.0/mockk-1.0.pom"):
			return nil, nil, &classifiers.StatusError{URL: u, Status: 404}
		case strings.HasSuffix(u, ".pom"):
			return pom, http.Header{"Last-Modified": {published.Format(http.TimeFormat)}}, nil
		}
		return nil, nil, &classifiers.StatusError{URL: u, Status: 404}
	})
	c := New()
	t.Run("one version", func(t *testing.T) {
		fetched = nil
		md, err := c.Facts(context.Background(), classifiers.Request{Package: "io.mockk:mockk", Version: "1.10.0"}, f)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{Registry + "/io/mockk/mockk/1.10.0/mockk-1.10.0.pom"}; len(fetched) != 1 || fetched[0] != want[0] {
			t.Errorf("got fetches %v, want %v", fetched, want)
		}
		v := md.Version("1.10.0")
		if v == nil || !v.Published.Equal(published) {
			t.Fatalf("got %+v, want published %v", v, published)
		}
		if got, want := v.License, "Apache License, Version 2.0"; got != want {
			t.Errorf("got license %v, want %v", got, want)
		}
	})
	t.Run("all versions", func(t *testing.T) {
		fetched = nil
		md, err := c.Facts(context.Background(), classifiers.Request{Package: "io.mockk:mockk"}, f)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := len(fetched), 1+65; got != want {
			t.Errorf("got %d fetches, want %d", got, want)
		}
		if p := peak.Load(); p > FactsConcurrency {
			t.Errorf("got %d concurrent fetches, want at most %d", p, FactsConcurrency)
		}
		if v := md.Version("1.0"); v == nil || !v.Published.IsZero() {
			t.Errorf("got %+v, want 1.0 present without a time (its POM failed)", v)
		}
		if v := md.Version("1.9"); v == nil || !v.Published.Equal(published) {
			t.Errorf("got %+v, want 1.9 published %v", v, published)
		}
	})
	t.Run("missing pom for the version asked", func(t *testing.T) {
		var se *classifiers.StatusError
		if _, err := c.Facts(context.Background(), classifiers.Request{Package: "io.mockk:mockk", Version: "1.0"}, f); !errors.As(err, &se) {
			t.Errorf("got %v, want a wrapped StatusError", err)
		}
	})
	t.Run("bad coordinates", func(t *testing.T) {
		if _, err := c.Facts(context.Background(), classifiers.Request{Package: "nocolon"}, f); err == nil {
			t.Errorf("got nil error, want one")
		}
	})
}

func TestREADMEAndTestdata(t *testing.T) {
	classifiertest.READMEAndTestdata(t, "repo.maven.apache.org")
}

func FuzzFilter(f *testing.F) {
	for _, n := range []string{"io.mockk.mockk.maven-metadata.xml", "com.google.guava.guava.maven-metadata.xml", "commons-collections.commons-collections.maven-metadata.xml", "mockk-1.10.0.pom"} {
		f.Add(classifiertest.ReadFile(f, n))
	}
	c := New()
	f.Fuzz(func(t *testing.T, body []byte) {
		_, perr := c.Parse(classifiers.Request{}, body)
		keep := func(v string) bool { return len(v)%2 == 0 }
		out, ferr := c.Filter(classifiers.Request{}, body, keep)
		for _, err := range []error{perr, ferr} {
			if err != nil && !errors.Is(err, classifiers.ErrMalformed) {
				t.Fatalf("got %v, want ErrMalformed", err)
			}
		}
		if ferr != nil {
			return
		}
		md, err := c.Parse(classifiers.Request{}, out)
		if err != nil {
			t.Fatalf("filtered output does not parse: %v\n%s", err, out)
		}
		for _, v := range md.Versions {
			if !keep(v.Version) {
				t.Fatalf("got denied version %q in output", v.Version)
			}
		}
	})
}

func BenchmarkClassify(b *testing.B) {
	classifiertest.BenchClassify(b, New(), "https://repo.maven.apache.org/maven2/org/apache/maven/plugins/maven-compiler-plugin/3.11.0/maven-compiler-plugin-3.11.0.jar.sha1", classifiers.KindArtifact)
}
