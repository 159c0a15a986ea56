//go:build e2e

package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Publish times of the fake packages: "old" is past the 10-day cooldown of the
// test policy, "young" is inside it.
var (
	oldTime   = time.Now().UTC().Add(-100 * 24 * time.Hour).Truncate(time.Second)
	youngTime = time.Now().UTC().Add(-24 * time.Hour).Truncate(time.Second)
)

// debug logs every fake-registry request (CAFILPROX_E2E_DEBUG=1).
var debug = os.Getenv("CAFILPROX_E2E_DEBUG") != ""

// resource is one file a fake registry serves.
type resource struct {
	contentType string
	body        []byte
	modified    time.Time // Last-Modified when non-zero
	artifact    bool      // counted in artifactHits
}

// fakeRegistry is one ecosystem's fake: a TLS server on a fixed loopback port
// that serves every host of the ecosystem (their paths do not collide). It can
// be stopped and started again on the same port, to test offline behaviour.
type fakeRegistry struct {
	name  string
	ca    *testCA
	hosts []string

	mu        sync.Mutex
	files     map[string]resource // by URL path (no query)
	negotiate map[string]func(r *http.Request) (resource, bool)
	fallback  func(r *http.Request) (resource, bool)
	git       http.Handler      // serves git smart HTTP (paths with ".git/") when set
	facts     map[string]string // values the client drivers need (digests, refs)
	srv       *http.Server
	addr      string
	hits      map[string]int
	artifacts int
}

func newFakeRegistry(name string, ca *testCA, hosts ...string) *fakeRegistry {
	return &fakeRegistry{
		name:      name,
		ca:        ca,
		hosts:     hosts,
		files:     map[string]resource{},
		negotiate: map[string]func(*http.Request) (resource, bool){},
		hits:      map[string]int{},
		facts:     map[string]string{},
	}
}

func (f *fakeRegistry) add(path, contentType string, body []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.files[path] = resource{contentType: contentType, body: body}
}

func (f *fakeRegistry) addArtifact(path, contentType string, body []byte, modified time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.files[path] = resource{contentType: contentType, body: body, artifact: true, modified: modified}
}

// addNegotiated registers a path whose representation depends on the request
// (Accept header).
func (f *fakeRegistry) addNegotiated(path string, fn func(r *http.Request) (resource, bool)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.negotiate[path] = fn
}

// URL is the base URL the proxy is configured with.
func (f *fakeRegistry) URL() string { return "https://" + f.addr }

// artifactHits counts artifact downloads served since start of the run.
func (f *fakeRegistry) artifactHits() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.artifacts
}

// requests returns a copy of the per-path request counts.
func (f *fakeRegistry) requests() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]int, len(f.hits))
	for k, v := range f.hits {
		out[k] = v
	}
	return out
}

func (f *fakeRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if debug {
		log.Printf("fake %s: %s %s%s accept=%q range=%q", f.name, r.Method, r.Host, r.URL.RequestURI(), r.Header.Get("Accept"), r.Header.Get("Range"))
	}
	f.mu.Lock()
	f.hits[r.URL.Path]++
	git := f.git
	res, ok := f.files[r.URL.Path]
	fn := f.negotiate[r.URL.Path]
	f.mu.Unlock()
	if git != nil && strings.Contains(r.URL.Path, ".git/") {
		git.ServeHTTP(w, r)
		return
	}
	if fn != nil {
		res, ok = fn(r)
	} else if !ok && f.fallback != nil {
		res, ok = f.fallback(r)
	}
	if !ok {
		if debug {
			log.Printf("fake %s: 404 %s %s", f.name, r.Method, r.URL.Path)
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, "not found: %s\n", r.URL.Path)
		return
	}
	if res.artifact && r.Method == http.MethodGet {
		f.mu.Lock()
		f.artifacts++
		f.mu.Unlock()
	}
	h := w.Header()
	h.Set("Content-Type", res.contentType)
	h.Set("Content-Length", strconv.Itoa(len(res.body)))
	if !res.modified.IsZero() {
		h.Set("Last-Modified", res.modified.Format(http.TimeFormat))
	}
	// Quoted MD5 of the body, as rubygems.org does: Bundler checks it.
	etag := `"` + md5Hex(res.body) + `"`
	h.Set("ETag", etag)
	if inm := r.Header.Get("If-None-Match"); inm != "" && strings.Contains(inm, etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(res.body)
}

// start listens on the registry's port (a fresh one the first time).
func (f *fakeRegistry) start() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.srv != nil {
		return nil
	}
	addr := f.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ { // the old socket may linger briefly after stop
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("e2e: fake %s listen: %w", f.name, err)
	}
	f.addr = ln.Addr().String()
	leaf, err := f.ca.leaf(append([]string{"127.0.0.1", "localhost"}, f.hosts...)...)
	if err != nil {
		ln.Close()
		return err
	}
	srv := &http.Server{
		Handler:           f,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{*leaf}, NextProtos: []string{"h2", "http/1.1"}},
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(discard{}, "", 0),
	}
	f.srv = srv
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	return nil
}

// stop closes the listener and every connection: the registry is down.
func (f *fakeRegistry) stop() {
	f.mu.Lock()
	srv := f.srv
	f.srv = nil
	f.mu.Unlock()
	if srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		_ = srv.Close()
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func netListen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }
