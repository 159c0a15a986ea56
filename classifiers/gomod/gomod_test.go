package gomod

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cafilprox/cafilprox/classifiers"
	"github.com/cafilprox/cafilprox/classifiers/internal/classifiertest"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		url  string
		want classifiers.Request
	}{
		{"https://proxy.golang.org/golang.org/x/text/@v/list", classifiers.Request{Package: "golang.org/x/text", Kind: classifiers.KindMetadata}},
		{"https://proxy.golang.org/golang.org/x/text/@v/v0.14.0.info", classifiers.Request{Package: "golang.org/x/text", Version: "v0.14.0", Kind: classifiers.KindMetadata}},
		{"https://proxy.golang.org/golang.org/x/text/@v/v0.14.0.mod", classifiers.Request{Package: "golang.org/x/text", Version: "v0.14.0", Kind: classifiers.KindMetadata}},
		{"https://proxy.golang.org/golang.org/x/text/@v/v0.14.0.zip", classifiers.Request{Package: "golang.org/x/text", Version: "v0.14.0", Kind: classifiers.KindArtifact}},
		{"https://proxy.golang.org/golang.org/x/text/@latest", classifiers.Request{Package: "golang.org/x/text", Kind: classifiers.KindMetadata, Variant: "latest"}},
		{"https://proxy.golang.org/github.com/!burnt!sushi/toml/@v/list", classifiers.Request{Package: "github.com/BurntSushi/toml", Kind: classifiers.KindMetadata}},
		{"https://proxy.golang.org/github.com/!burnt!sushi/toml/@v/v1.4.1-0.20240526193622-a339e1f7089c.zip", classifiers.Request{Package: "github.com/BurntSushi/toml", Version: "v1.4.1-0.20240526193622-a339e1f7089c", Kind: classifiers.KindArtifact}},
		{"https://proxy.golang.org/github.com/x/y/@v/v1.0.0-!r!c1.info", classifiers.Request{Package: "github.com/x/y", Version: "v1.0.0-RC1", Kind: classifiers.KindMetadata}},
		{"https://proxy.golang.org/github.com/x/y/v2/@v/v2.0.0+incompatible.zip", classifiers.Request{Package: "github.com/x/y/v2", Version: "v2.0.0+incompatible", Kind: classifiers.KindArtifact}},
		// Upper case is never valid in an escaped path.
		{"https://proxy.golang.org/github.com/BurntSushi/toml/@v/list", classifiers.Request{Kind: classifiers.KindOther}},
		{"https://proxy.golang.org/github.com/x/y/@v/v1.0.0.txt", classifiers.Request{Package: "github.com/x/y", Kind: classifiers.KindOther}},
		{"https://proxy.golang.org/github.com/x/y/@v/", classifiers.Request{Package: "github.com/x/y", Kind: classifiers.KindOther}},
		{"https://proxy.golang.org/sumdb/sum.golang.org/lookup/golang.org/x/text@v0.14.0", classifiers.Request{Kind: classifiers.KindOther}},
		{"https://sum.golang.org/lookup/golang.org/x/text@v0.14.0", classifiers.Request{Kind: classifiers.KindOther}},
		{"https://sum.golang.org/golang.org/x/text/@v/list", classifiers.Request{Kind: classifiers.KindOther}},
		{"https://proxy.golang.org/", classifiers.Request{Kind: classifiers.KindOther}},
		{"https://proxy.golang.org/@v/list", classifiers.Request{Kind: classifiers.KindOther}},
	}
	c := New()
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			tt.want.Ecosystem = classifiers.Go
			if got := c.Classify(httptest.NewRequest("GET", tt.url, nil)); got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParse(t *testing.T) {
	c := New()
	md, err := c.Parse(classifiers.Request{Package: "golang.org/x/text"}, classifiertest.ReadFile(t, "golang.org-x-text.list"))
	if err != nil {
		t.Fatal(err)
	}
	if len(md.Versions) != 57 || md.Versions[0].Version != "v0.0.0-20160726164857-2910a502d2bf" || md.Versions[56].Version != "v0.44.0" {
		t.Errorf("got %d versions %v…, want 57 sorted from the oldest pseudo-version to v0.44.0", len(md.Versions), md.Versions[0])
	}
	md, err = c.Parse(classifiers.Request{Package: "golang.org/x/text", Version: "v0.14.0"}, classifiertest.ReadFile(t, "golang.org-x-text.v0.14.0.info"))
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2023, 10, 11, 21, 58, 48, 0, time.UTC); len(md.Versions) != 1 || !md.Versions[0].Published.Equal(want) {
		t.Errorf("got %+v, want v0.14.0 published %v", md.Versions, want)
	}
	md, err = c.Parse(classifiers.Request{Package: "golang.org/x/text", Variant: "latest"}, classifiertest.ReadFile(t, "golang.org-x-text.v0.14.0.info"))
	if err != nil || md.Latest != "v0.14.0" {
		t.Errorf("latest: got %v, %v, want v0.14.0", md, err)
	}
	md, err = c.Parse(classifiers.Request{Package: "m", Version: "v1.0.0"}, []byte("module m\n\ngo 1.21\n"))
	if err != nil || len(md.Versions) != 1 || md.Versions[0].Version != "v1.0.0" {
		t.Errorf(".mod: got %v, %v, want v1.0.0", md, err)
	}
	for _, bad := range []struct {
		req  classifiers.Request
		body string
	}{
		{classifiers.Request{}, "v1.0.0\nnot-a-version\n"},
		{classifiers.Request{}, "<html>"},
		{classifiers.Request{Variant: "latest"}, `{"Version":1}`},
		{classifiers.Request{Variant: "latest"}, `{}`},
		{classifiers.Request{Version: "v1.0.0"}, `{"Version":"v1.0.0","Time":"yesterday"}`},
	} {
		t.Run("malformed "+bad.body, func(t *testing.T) {
			if _, err := c.Parse(bad.req, []byte(bad.body)); !errors.Is(err, classifiers.ErrMalformed) {
				t.Errorf("got %v, want ErrMalformed", err)
			}
		})
	}
}

func TestFilter(t *testing.T) {
	c := New()
	got, err := c.Filter(classifiers.Request{Package: "golang.org/x/text"}, classifiertest.ReadFile(t, "golang.org-x-text.list"), classifiertest.KeepExcept("v0.44.0", "v0.3.0", "v0.3.8-0.20211004125949-5bd84dd9b33b"))
	if err != nil {
		t.Fatal(err)
	}
	classifiertest.Golden(t, "golang.org-x-text.list.golden", got)
	if bytes.Contains(got, []byte("v0.44.0")) || !bytes.HasSuffix(got, []byte("v0.43.0\n")) {
		t.Errorf("got %q, want v0.44.0 dropped and the list ending in v0.43.0", got[len(got)-20:])
	}

	in := []byte("v1.0.0\r\nv1.1.0\r\nv1.2.0")
	got, _ = c.Filter(classifiers.Request{}, in, classifiertest.KeepExcept("v1.2.0"))
	if want := "v1.0.0\r\nv1.1.0\r\n"; string(got) != want {
		t.Errorf("crlf: got %q, want %q", got, want)
	}
	got, _ = c.Filter(classifiers.Request{}, in, classifiertest.KeepExcept())
	if !bytes.Equal(got, in) {
		t.Errorf("identity: got %q, want %q", got, in)
	}
	got, err = c.Filter(classifiers.Request{}, in, func(string) bool { return false })
	if err != nil || len(got) != 0 {
		t.Errorf("deny all: got %q, %v, want an empty list", got, err)
	}

	info := classifiertest.ReadFile(t, "golang.org-x-text.v0.14.0.info")
	for _, req := range []classifiers.Request{{Variant: "latest"}, {Version: "v0.14.0"}} {
		if got, err := c.Filter(req, info, classifiertest.KeepExcept()); err != nil || !bytes.Equal(got, info) {
			t.Errorf("%+v kept: got %s, %v, want unchanged", req, got, err)
		}
		if _, err := c.Filter(req, info, classifiertest.KeepExcept("v0.14.0")); !errors.Is(err, classifiers.ErrNoAllowedVersion) {
			t.Errorf("%+v denied: got %v, want ErrNoAllowedVersion", req, err)
		}
	}
	if _, err := c.Filter(classifiers.Request{}, []byte("garbage here\n"), classifiertest.KeepExcept()); !errors.Is(err, classifiers.ErrMalformed) {
		t.Errorf("got %v, want ErrMalformed", err)
	}
}

func TestBuildLatest(t *testing.T) {
	c := New()
	day := func(d int) time.Time { return time.Date(2024, 1, d, 0, 0, 0, 0, time.UTC) }
	md := &classifiers.Metadata{Versions: []classifiers.Version{
		{Version: "v1.0.0", Published: day(1)},
		{Version: "v1.1.0", Published: day(2)},
		{Version: "v1.2.0-rc.1", Published: day(3)},
		{Version: "v1.2.1-0.20240105000000-abcdefabcdef", Published: day(5)},
		{Version: "v1.2.1-0.20240104000000-abcdefabcdef", Published: day(4)},
		{Version: "garbage"},
	}}
	tests := []struct {
		name   string
		keep   func(string) bool
		want   string
		errNon bool
	}{
		{"release", classifiertest.KeepExcept(), `{"Version":"v1.1.0","Time":"2024-01-02T00:00:00Z"}`, false},
		{"older release", classifiertest.KeepExcept("v1.1.0"), `{"Version":"v1.0.0","Time":"2024-01-01T00:00:00Z"}`, false},
		{"prerelease", classifiertest.KeepExcept("v1.1.0", "v1.0.0"), `{"Version":"v1.2.0-rc.1","Time":"2024-01-03T00:00:00Z"}`, false},
		{"pseudo", classifiertest.KeepExcept("v1.1.0", "v1.0.0", "v1.2.0-rc.1"), `{"Version":"v1.2.1-0.20240105000000-abcdefabcdef","Time":"2024-01-05T00:00:00Z"}`, false},
		{"none", func(string) bool { return false }, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.BuildLatest(classifiers.Request{Package: "m"}, md, tt.keep)
			if tt.errNon {
				if !errors.Is(err, classifiers.ErrNoAllowedVersion) {
					t.Errorf("got %v, want ErrNoAllowedVersion", err)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Errorf("got %s, %v, want %s", got, err, tt.want)
			}
		})
	}
	got, _ := c.BuildLatest(classifiers.Request{}, &classifiers.Metadata{Versions: []classifiers.Version{{Version: "v1.0.0"}}}, classifiertest.KeepExcept())
	if string(got) != `{"Version":"v1.0.0"}` {
		t.Errorf("no time: got %s, want Version only", got)
	}
}

// fakeProxy serves the recorded list and .info documents, synthesising
// .info for versions that were not recorded.
func fakeProxy(t *testing.T, inFlight, maxInFlight *int32, fetched *[]string, mu *sync.Mutex) classifiers.Fetcher {
	return classifiers.FetcherFunc(func(_ context.Context, url string, _ http.Header) ([]byte, http.Header, error) {
		n := atomic.AddInt32(inFlight, 1)
		defer atomic.AddInt32(inFlight, -1)
		for {
			m := atomic.LoadInt32(maxInFlight)
			if n <= m || atomic.CompareAndSwapInt32(maxInFlight, m, n) {
				break
			}
		}
		mu.Lock()
		*fetched = append(*fetched, url)
		mu.Unlock()
		rest, ok := strings.CutPrefix(url, "https://proxy.golang.org/golang.org/x/text/@v/")
		switch {
		case !ok:
			return nil, nil, &classifiers.StatusError{URL: url, Status: 404}
		case rest == "list":
			return classifiertest.ReadFile(t, "golang.org-x-text.list"), nil, nil
		case rest == "v0.0.1.info":
			return nil, nil, &classifiers.StatusError{URL: url, Status: 410}
		}
		v := strings.TrimSuffix(rest, ".info")
		if b, err := os.ReadFile(filepath.Join("testdata", "golang.org-x-text."+v+".info")); err == nil {
			return b, nil, nil
		}
		return fmt.Appendf(nil, `{"Version":%q,"Time":"2020-01-01T00:00:00Z"}`, v), nil, nil
	})
}

func TestFacts(t *testing.T) {
	c := New()
	var inFlight, maxInFlight int32
	var fetched []string
	var mu sync.Mutex
	f := fakeProxy(t, &inFlight, &maxInFlight, &fetched, &mu)
	md, err := c.Facts(context.Background(), classifiers.Request{Package: "golang.org/x/text"}, f)
	if err != nil {
		t.Fatal(err)
	}
	if len(fetched) != 58 || maxInFlight > infoConcurrency {
		t.Errorf("got %d fetches, %d at once, want 58 and at most %d", len(fetched), maxInFlight, infoConcurrency)
	}
	if v := md.Version("v0.3.0"); v == nil || !v.Published.Equal(time.Date(2017, 12, 14, 13, 8, 43, 0, time.UTC)) {
		t.Errorf("got %+v, want v0.3.0 with its recorded time", v)
	}
	for _, v := range md.Versions {
		if v.Published.IsZero() {
			t.Errorf("got %s without a time", v.Version)
		}
	}

	fetched = nil
	md, err = c.Facts(context.Background(), classifiers.Request{Package: "golang.org/x/text", Version: "v0.14.0"}, f)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"https://proxy.golang.org/golang.org/x/text/@v/list", "https://proxy.golang.org/golang.org/x/text/@v/v0.14.0.info"}
	if !slices.Equal(fetched, want) || md.Version("v0.14.0").Published.IsZero() {
		t.Errorf("got %v, want only %v and a time for v0.14.0", fetched, want)
	}

	md, err = c.Facts(context.Background(), classifiers.Request{Package: "golang.org/x/text", Version: "v0.0.1"}, f)
	if err != nil || md.Version("v0.0.1") == nil || !md.Version("v0.0.1").Published.IsZero() {
		t.Errorf("gone .info: got %v, want the version without a time", err)
	}
	if _, err := c.Facts(context.Background(), classifiers.Request{Package: "example.com/missing"}, f); err == nil {
		t.Errorf("got nil error, want the list fetch error")
	}
	if _, err := c.Facts(context.Background(), classifiers.Request{Package: "Bad Path"}, f); err == nil {
		t.Errorf("got nil error for an invalid module path")
	}
}

func TestREADMEAndTestdata(t *testing.T) {
	classifiertest.READMEAndTestdata(t, "proxy.golang.org")
}

func FuzzParse(f *testing.F) {
	f.Add(classifiertest.ReadFile(f, "golang.org-x-text.list"), "", "")
	f.Add(classifiertest.ReadFile(f, "golang.org-x-text.v0.14.0.info"), "v0.14.0", "")
	f.Add(classifiertest.ReadFile(f, "golang.org-x-text.v0.14.0.info"), "", "latest")
	c := New()
	f.Fuzz(func(t *testing.T, body []byte, version, variant string) {
		_, err := c.Parse(classifiers.Request{Version: version, Variant: variant}, body)
		if err != nil && !errors.Is(err, classifiers.ErrMalformed) {
			t.Errorf("got %v, want nil or ErrMalformed", err)
		}
	})
}

func FuzzFilter(f *testing.F) {
	f.Add(classifiertest.ReadFile(f, "golang.org-x-text.list"), "v0.44.0")
	f.Add(classifiertest.ReadFile(f, "github.com-!burnt!sushi-toml.list"), "v1.6.0")
	c := New()
	f.Fuzz(func(t *testing.T, body []byte, deny string) {
		got, err := c.Filter(classifiers.Request{}, body, classifiertest.KeepExcept(deny))
		if err != nil {
			if !errors.Is(err, classifiers.ErrMalformed) {
				t.Errorf("got %v, want ErrMalformed", err)
			}
			return
		}
		md, err := c.Parse(classifiers.Request{}, got)
		if err != nil {
			t.Fatalf("filtered list does not parse: %v", err)
		}
		if md.Version(deny) != nil {
			t.Errorf("got denied %s in %q", deny, got)
		}
	})
}

func BenchmarkClassify(b *testing.B) {
	classifiertest.BenchClassify(b, New(), "https://proxy.golang.org/github.com/!burnt!sushi/toml/@v/v1.4.1-0.20240526193622-a339e1f7089c.zip", classifiers.KindArtifact)
}

// TestTruncated feeds prefixes of the recorded documents to Parse and
// Filter: they either succeed or fail as malformed, never panic.
func TestTruncated(t *testing.T) {
	c := New()
	for _, tt := range []struct {
		file string
		req  classifiers.Request
	}{
		{"golang.org-x-text.list", classifiers.Request{}},
		{"golang.org-x-text.v0.14.0.info", classifiers.Request{Version: "v0.14.0"}},
		{"golang.org-x-text.v0.14.0.info", classifiers.Request{Variant: "latest"}},
	} {
		body := classifiertest.ReadFile(t, tt.file)
		for i := range len(body) {
			_, perr := c.Parse(tt.req, body[:i])
			_, ferr := c.Filter(tt.req, body[:i], classifiertest.KeepExcept())
			for _, err := range []error{perr, ferr} {
				if err != nil && !errors.Is(err, classifiers.ErrMalformed) {
					t.Errorf("%s[:%d]: got %v, want nil or ErrMalformed", tt.file, i, err)
				}
			}
			if tt.req.Variant == "latest" && perr == nil {
				t.Errorf("%s[:%d]: got a truncated @latest accepted", tt.file, i)
			}
		}
	}
}
