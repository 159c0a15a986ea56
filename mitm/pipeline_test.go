package mitm

import (
	"context"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2/hclparse"

	"github.com/cafilprox/cafilprox/ca"
	"github.com/cafilprox/cafilprox/cache"
	"github.com/cafilprox/cafilprox/cache/fs"
	"github.com/cafilprox/cafilprox/classifiers"
	"github.com/cafilprox/cafilprox/classifiers/npm"
	"github.com/cafilprox/cafilprox/rules"
)

// fakeNPM serves a tiny npm registry: "demo" with an old 1.0.0 and a young
// 2.0.0, "evil", and "broken" (malformed packument).
type fakeNPM struct {
	srv      *httptest.Server
	hits     sync.Map // path -> *atomic.Int32
	tamper   atomic.Bool
	tarballs map[string][]byte
}

func (f *fakeNPM) count(path string) int32 {
	v, _ := f.hits.LoadOrStore(path, new(atomic.Int32))
	return v.(*atomic.Int32).Load()
}

func newFakeNPM(t *testing.T) *fakeNPM {
	f := &fakeNPM{tarballs: map[string][]byte{
		"1.0.0": []byte("tarball bytes of demo 1.0.0"),
		"2.0.0": []byte("tarball bytes of demo 2.0.0"),
	}}
	sri := func(b []byte) string {
		s := sha512.Sum512(b)
		return "sha512-" + base64.StdEncoding.EncodeToString(s[:])
	}
	old := time.Now().Add(-30 * 24 * time.Hour).UTC().Format(time.RFC3339)
	young := time.Now().Add(-24 * time.Hour).UTC().Format(time.RFC3339)
	readme := strings.Repeat("demo pads strings on the left. ", 100) // a real-sized document
	packument := fmt.Sprintf(`{"name":"demo","readme":%q,"dist-tags":{"latest":"2.0.0"},
"versions":{
 "1.0.0":{"name":"demo","version":"1.0.0","dist":{"tarball":"https://registry.npmjs.org/demo/-/demo-1.0.0.tgz","integrity":%q}},
 "2.0.0":{"name":"demo","version":"2.0.0","dist":{"tarball":"https://registry.npmjs.org/demo/-/demo-2.0.0.tgz","integrity":%q}}},
"time":{"created":%q,"modified":%q,"1.0.0":%q,"2.0.0":%q}}`,
		readme, sri(f.tarballs["1.0.0"]), sri(f.tarballs["2.0.0"]), old, young, old, young)
	abbreviated := fmt.Sprintf(`{"name":"demo","modified":%q,"dist-tags":{"latest":"2.0.0"},
"versions":{
 "1.0.0":{"name":"demo","version":"1.0.0","dist":{"tarball":"https://registry.npmjs.org/demo/-/demo-1.0.0.tgz","integrity":%q}},
 "2.0.0":{"name":"demo","version":"2.0.0","dist":{"tarball":"https://registry.npmjs.org/demo/-/demo-2.0.0.tgz","integrity":%q}}}}`,
		young, sri(f.tarballs["1.0.0"]), sri(f.tarballs["2.0.0"]))
	f.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, _ := f.hits.LoadOrStore(r.URL.Path, new(atomic.Int32))
		v.(*atomic.Int32).Add(1)
		switch r.URL.Path {
		case "/demo":
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("ETag", `"upstream-etag"`)
			if strings.Contains(r.Header.Get("Accept"), "application/vnd.npm.install-v1+json") {
				// The abbreviated form, as the registry sends it: no times.
				io.WriteString(w, abbreviated)
				return
			}
			io.WriteString(w, packument)
		case "/evil":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"name":"evil","dist-tags":{"latest":"1.0.0"},"versions":{"1.0.0":{"name":"evil","version":"1.0.0","dist":{"tarball":"https://registry.npmjs.org/evil/-/evil-1.0.0.tgz"}}}}`)
		case "/broken":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"name":"broken","versions":[1,2`)
		case "/demo/-/demo-1.0.0.tgz", "/demo/-/demo-2.0.0.tgz":
			ver := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/demo/-/demo-"), ".tgz")
			b := f.tarballs[ver]
			if f.tamper.Load() {
				b = []byte("tampered tarball bytes!!!!!")
			}
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Write(b)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(f.srv.Close)
	return f
}

const testPolicy = `
policy {
  default = "allow"
  min_age = "10d"
}
rule "no-evil" {
  ecosystem = "npm"
  package   = "evil"
  action    = "deny"
  reason    = "known bad package"
}
`

type pipelineHarness struct {
	fake   *fakeNPM
	client *http.Client
	index  *httptest.Server
}

func newPipelineHarness(t *testing.T) *pipelineHarness {
	t.Helper()
	fake := newFakeNPM(t)
	upCA := t.TempDir() + "/up.pem"
	os.WriteFile(upCA, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: fake.srv.Certificate().Raw}), 0o644)
	tr, err := NewTransport(UpstreamOptions{CAFile: upCA})
	if err != nil {
		t.Fatal(err)
	}
	set, err := classifiers.NewSet([]classifiers.Classifier{npm.New()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ups, _ := NewUpstreams(map[string]string{classifiers.NPM: fake.srv.URL})
	f, diags := hclparse.NewParser().ParseHCL([]byte(testPolicy), "policy.hcl")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	pol, diags := rules.Compile(f.Body, rules.Options{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	store, err := fs.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c, err := cache.New(store, cache.Options{StaleIfError: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Background saves finish before the store's directory goes away.
		c.WaitIdle()
		store.Close()
	})
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	p := &Pipeline{Set: set, Upstreams: ups, Transport: tr, Logger: logger, Cache: c,
		Policy:      func() *rules.Engine { return pol },
		MetadataTTL: func(string) time.Duration { return time.Nanosecond }}
	p.Init()
	authority, _ := ca.Create(t.TempDir())
	srv := NewServer(Options{Issuer: ca.NewIssuer(authority, 0), Handler: p, Logger: logger,
		Intercept: func(h string) bool { return set.ForHost(h) != nil },
		Local:     IndexHandler(p, DefaultIndexRoutes, nil)})
	front := httptest.NewServer(srv)
	t.Cleanup(front.Close)
	pu, _ := url.Parse(front.URL)
	pool := x509.NewCertPool()
	pool.AddCert(authority.Cert)
	return &pipelineHarness{fake: fake, index: front, client: &http.Client{Transport: &http.Transport{
		Proxy: http.ProxyURL(pu), TLSClientConfig: &tls.Config{RootCAs: pool}}}}
}

func (h *pipelineHarness) get(t *testing.T, u string) (*http.Response, []byte) {
	t.Helper()
	resp, err := h.client.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("reading %s: %v", u, err)
	}
	return resp, b
}

func TestPipelineFiltersMetadata(t *testing.T) {
	h := newPipelineHarness(t)
	resp, body := h.get(t, "https://registry.npmjs.org/demo")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var doc struct {
		DistTags map[string]string          `json:"dist-tags"`
		Versions map[string]json.RawMessage `json:"versions"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	if _, ok := doc.Versions["2.0.0"]; ok || len(doc.Versions) != 1 {
		t.Errorf("versions: got %v, want only 1.0.0 (2.0.0 is younger than min_age)", doc.Versions)
	}
	if got := doc.DistTags["latest"]; got != "1.0.0" {
		t.Errorf("latest: got %q, want 1.0.0", got)
	}
	if got := resp.Header.Get(HeaderFiltered); got != "1" {
		t.Errorf("%s: got %q, want 1", HeaderFiltered, got)
	}
	etag := resp.Header.Get("ETag")
	if etag == "" || etag == `"upstream-etag"` {
		t.Errorf("ETag: got %q, want a fresh validator", etag)
	}
	req, _ := http.NewRequest("GET", "https://registry.npmjs.org/demo", nil)
	req.Header.Set("If-None-Match", etag)
	r2, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != http.StatusNotModified {
		t.Errorf("revalidation: got %d, want 304", r2.StatusCode)
	}
}

func TestPipelineRefusesArtifacts(t *testing.T) {
	h := newPipelineHarness(t)
	resp, body := h.get(t, "https://registry.npmjs.org/demo/-/demo-2.0.0.tgz")
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("young tarball: got %d, want 403", resp.StatusCode)
	}
	var e struct{ Error string }
	json.Unmarshal(body, &e)
	if !strings.Contains(e.Error, "demo@2.0.0") || !strings.Contains(e.Error, "1.0.0") {
		t.Errorf("npm error: got %q, want package, version and the suggestion 1.0.0", e.Error)
	}
	if h.fake.count("/demo/-/demo-2.0.0.tgz") != 0 {
		t.Error("a refused artifact was fetched upstream")
	}
	resp, body = h.get(t, "https://registry.npmjs.org/evil")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "known bad package") {
		t.Errorf("denied package: got %d %s", resp.StatusCode, body)
	}
}

func TestPipelineCachesAndSurvivesOutage(t *testing.T) {
	h := newPipelineHarness(t)
	const u = "https://registry.npmjs.org/demo/-/demo-1.0.0.tgz"
	resp, body := h.get(t, u)
	if resp.StatusCode != 200 || string(body) != "tarball bytes of demo 1.0.0" || resp.Header.Get(HeaderCache) != "MISS" {
		t.Fatalf("first request: got %d %q X-Cache=%q, want 200 MISS", resp.StatusCode, body, resp.Header.Get(HeaderCache))
	}
	// The store write completes just after the client got its last byte.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		resp, body = h.get(t, u)
		if resp.Header.Get(HeaderCache) == "HIT" || time.Now().After(deadline) {
			break
		}
	}
	if resp.Header.Get(HeaderCache) != "HIT" || string(body) != "tarball bytes of demo 1.0.0" {
		t.Errorf("later request: X-Cache=%q body %q, want a HIT", resp.Header.Get(HeaderCache), body)
	}
	if got := h.fake.count("/demo/-/demo-1.0.0.tgz"); got != 1 {
		t.Errorf("upstream tarball fetches: got %d, want 1", got)
	}
	h.get(t, "https://registry.npmjs.org/demo")
	h.fake.srv.Close() // the registry goes down
	resp, body = h.get(t, u)
	if resp.StatusCode != 200 || string(body) != "tarball bytes of demo 1.0.0" {
		t.Errorf("cached artifact during outage: got %d %q", resp.StatusCode, body)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		resp, _ = h.get(t, "https://registry.npmjs.org/demo")
		if resp.Header.Get(HeaderCache) == "STALE" || time.Now().After(deadline) {
			break
		}
	}
	if resp.StatusCode != 200 || resp.Header.Get(HeaderCache) != "STALE" {
		t.Errorf("metadata during outage: got %d X-Cache=%q, want 200 STALE", resp.StatusCode, resp.Header.Get(HeaderCache))
	}
}

func TestPipelineIntegrityMismatch(t *testing.T) {
	h := newPipelineHarness(t)
	h.fake.tamper.Store(true)
	const u = "https://registry.npmjs.org/demo/-/demo-1.0.0.tgz"
	for i := 0; i < 2; i++ {
		resp, err := h.client.Get(u)
		if err != nil {
			continue // an aborted transfer is also a refusal
		}
		body, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		if rerr == nil && resp.StatusCode == 200 {
			t.Fatalf("tampered tarball served completely: %q", body)
		}
	}
	if got := h.fake.count("/demo/-/demo-1.0.0.tgz"); got != 2 {
		t.Errorf("upstream fetches: got %d, want 2 (a mismatching download is never stored)", got)
	}
}

func TestPipelineMalformedMetadataIs502(t *testing.T) {
	h := newPipelineHarness(t)
	resp, body := h.get(t, "https://registry.npmjs.org/broken")
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), "cannot be read") {
		t.Errorf("got %d %q, want 502 with a clear message", resp.StatusCode, body)
	}
}

func TestIndexURLMode(t *testing.T) {
	h := newPipelineHarness(t)
	resp, err := http.Get(h.index.URL + "/npm/demo")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if strings.Contains(string(body), "https://registry.npmjs.org/") || !strings.Contains(string(body), h.index.URL+"/npm/demo/-/demo-1.0.0.tgz") {
		t.Errorf("tarball URLs not rewritten to the proxy: %s", body)
	}
	resp, err = http.Get(h.index.URL + "/npm/demo/-/demo-1.0.0.tgz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "tarball bytes of demo 1.0.0" {
		t.Errorf("tarball via index URL: got %d %q", resp.StatusCode, body)
	}
}

func TestIdleBodyCancelsStalledDownload(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	cancelled := make(chan struct{})
	b := newIdleBody(pr, 50*time.Millisecond, func() { close(cancelled); pr.CloseWithError(context.Canceled) })
	go pw.Write([]byte("some bytes"))
	buf := make([]byte, 64)
	if n, err := b.Read(buf); err != nil || n == 0 {
		t.Fatalf("first read: %d %v", n, err)
	}
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("a stalled body was not cancelled")
	}
	if _, err := b.Read(buf); err == nil {
		t.Error("read after idle cancel: got nil error")
	}
}

// An abbreviated packument has no publish times: they come from the full
// document, fetched alongside it, and the young version is still hidden.
func TestPipelineFiltersAbbreviatedMetadata(t *testing.T) {
	h := newPipelineHarness(t)
	req, _ := http.NewRequest("GET", "https://registry.npmjs.org/demo", nil)
	req.Header.Set("Accept", "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*")
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var doc struct {
		DistTags map[string]string          `json:"dist-tags"`
		Versions map[string]json.RawMessage `json:"versions"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("%d %s: %v", resp.StatusCode, body, err)
	}
	if _, ok := doc.Versions["2.0.0"]; ok || len(doc.Versions) != 1 || doc.DistTags["latest"] != "1.0.0" {
		t.Errorf("abbreviated: versions %v, latest %q; want only 1.0.0", doc.Versions, doc.DistTags["latest"])
	}
	if strings.Contains(string(body), "readme") {
		t.Error("the full document was served instead of the abbreviated one")
	}
}
