package main

import (
	"bytes"
	"compress/gzip"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// registryHosts are the names the fake registry's certificate is valid for:
// the peers connect to it under the real registry names.
var registryHosts = []string{"registry.npmjs.org", "proxy.golang.org", "localhost"}

// fakeCA is the fake registry's own CA and the TLS certificate it serves.
type fakeCA struct {
	certPEM []byte
	leaf    tls.Certificate
}

// newFakeCA creates a CA and an ECDSA leaf for registryHosts and ip.
func newFakeCA(ip net.IP) (*fakeCA, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("bench: ca key: %w", err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "cafilprox bench fake registry CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(7 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("bench: ca cert: %w", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, fmt.Errorf("bench: parse ca: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("bench: leaf key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: registryHosts[0]},
		DNSNames:     registryHosts,
		IPAddresses:  []net.IP{ip, net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(7 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("bench: leaf cert: %w", err)
	}
	return &fakeCA{
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		leaf:    tls.Certificate{Certificate: [][]byte{der, caDER}, PrivateKey: key},
	}, nil
}

// artifactSizes maps the label in a synthetic artifact's package name
// (bench-art-<label>) to its size in bytes.
var artifactSizes = map[string]int64{
	"10k":  10 << 10,
	"1m":   1 << 20,
	"100m": 100 << 20,
	"1g":   1 << 30,
}

// metaSizes are the synthetic packuments (bench-meta-<label>) and their
// approximate sizes: npm documents range from a few KB to tens of MB.
var metaSizes = map[string]int{
	"2k":   2 << 10,
	"100k": 100 << 10,
	"1m":   1 << 20,
	"10m":  10 << 20,
}

// registry is the fake upstream: synthetic npm packuments and artifacts,
// recorded npm packuments and tarballs, and a recorded Go module proxy tree.
type registry struct {
	npmDir string // recorded npm data (see recordNPM); may be empty
	goDir  string // GOPROXY layout (GOMODCACHE/cache/download); may be empty
	meta   map[string][]byte
	block  []byte // 1 MiB of incompressible bytes repeated in artifacts
	start  time.Time

	mu      sync.Mutex
	fetches map[string]int    // GETs per synthetic artifact path: shows whether a "warm" download reached upstream
	gz      map[string][]byte // compressed packuments

	latency atomic.Int64 // nanoseconds every response waits: a registry across a WAN
}

// setLatency delays every later response by d.
func (r *registry) setLatency(d time.Duration) { r.latency.Store(int64(d)) }

// artifactFetches is how many times path was fetched from the registry.
func (r *registry) artifactFetches(path string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fetches[path]
}

func newRegistry(npmDir, goDir string) *registry {
	r := &registry{npmDir: npmDir, goDir: goDir, meta: map[string][]byte{}, start: time.Now().Add(-48 * time.Hour), fetches: map[string]int{}, gz: map[string][]byte{}}
	rng := mrand.New(mrand.NewPCG(1, 2))
	r.block = make([]byte, 1<<20)
	for i := range r.block {
		r.block[i] = byte(rng.Uint32())
	}
	for label, size := range metaSizes {
		r.meta["bench-meta-"+label] = synthPackument("bench-meta-"+label, size, 0)
	}
	for label, size := range artifactSizes {
		r.meta["bench-art-"+label] = artPackument("bench-art-"+label, r.digests(size))
	}
	return r
}

// synthPackument builds a full npm packument of about size bytes: real
// structure (versions, dist, time, dist-tags), padded by adding versions.
func synthPackument(name string, size int, tarballSize int64) []byte {
	versions := map[string]any{}
	times := map[string]string{"created": "2020-01-01T00:00:00.000Z"}
	var latest string
	base := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	perVersion := 900
	n := max(1, size/perVersion)
	for i := range n {
		v := fmt.Sprintf("1.%d.%d", i/100, i%100)
		latest = v
		versions[v] = map[string]any{
			"name":        name,
			"version":     v,
			"description": "Synthetic package for the cafilprox benchmarks, shaped like a real npm document",
			"main":        "index.js",
			"license":     "MIT",
			"scripts":     map[string]string{"test": "node test.js"},
			"dependencies": map[string]string{
				"is-stream": "^2.0.0", "ms": "^2.1.3",
			},
			"dist": map[string]any{
				"tarball":      fmt.Sprintf("https://registry.npmjs.org/%s/-/%s-%s.tgz", name, name, v),
				"shasum":       "0123456789abcdef0123456789abcdef01234567",
				"integrity":    "sha512-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==",
				"fileCount":    3,
				"unpackedSize": max(tarballSize, 4096),
			},
			"_npmUser":    map[string]string{"name": "bench", "email": "bench@example.com"},
			"maintainers": []map[string]string{{"name": "bench", "email": "bench@example.com"}},
		}
		times[v] = base.Add(time.Duration(i) * time.Hour).Format("2006-01-02T15:04:05.000Z")
	}
	times["modified"] = times[latest]
	doc := map[string]any{
		"_id":         name,
		"name":        name,
		"description": "Synthetic package for the cafilprox benchmarks",
		"dist-tags":   map[string]string{"latest": latest},
		"versions":    versions,
		"time":        times,
		"license":     "MIT",
		"readme":      strings.Repeat("x", max(0, min(size/10, 64<<10))),
	}
	b, _ := json.Marshal(doc)
	return b
}

// digests returns the npm shasum (hex SHA-1) and integrity (SHA-512) of a
// synthetic artifact of size bytes: proxies verify them, so they must be real.
func (r *registry) digests(size int64) [2]string {
	h1, h512 := sha1.New(), sha512.New()
	w := io.MultiWriter(h1, h512)
	for n := size; n > 0; n -= min(n, int64(len(r.block))) {
		w.Write(r.block[:min(n, int64(len(r.block)))])
	}
	return [2]string{hex.EncodeToString(h1.Sum(nil)), "sha512-" + base64.StdEncoding.EncodeToString(h512.Sum(nil))}
}

// artPackument lists versions 1.0.0–1.0.999 of an artifact package, so a
// run can ask for a never-fetched version to force a cold cache.
func artPackument(name string, dig [2]string) []byte {
	versions := map[string]any{}
	times := map[string]string{"created": "2020-01-01T00:00:00.000Z", "modified": "2020-01-02T00:00:00.000Z"}
	for i := range 1000 {
		v := fmt.Sprintf("1.0.%d", i)
		versions[v] = map[string]any{
			"name": name, "version": v,
			"dist": map[string]any{
				"tarball":   fmt.Sprintf("https://registry.npmjs.org/%s/-/%s-%s.tgz", name, name, v),
				"shasum":    dig[0],
				"integrity": dig[1],
			},
		}
		times[v] = "2020-01-01T00:00:00.000Z"
	}
	doc := map[string]any{"_id": name, "name": name, "dist-tags": map[string]string{"latest": "1.0.0"}, "versions": versions, "time": times}
	b, _ := json.Marshal(doc)
	return b
}

// ServeHTTP routes Go module proxy paths, synthetic and recorded npm paths.
// A /verdaccio/ prefix serves the same content with tarball URLs pointing
// back at this server (Verdaccio fetches tarballs from the URL in the
// document, which must not be the real registry).
func (r *registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if d := time.Duration(r.latency.Load()); d > 0 {
		time.Sleep(d)
	}
	p := req.URL.Path
	rewriteTo := ""
	if rest, ok := strings.CutPrefix(p, "/verdaccio/"); ok {
		p = "/" + rest
		rewriteTo = "https://" + req.Host + "/verdaccio/"
	}
	if strings.Contains(p, "/@v/") || strings.HasSuffix(p, "/@latest") {
		r.serveGo(w, req, p)
		return
	}
	if i := strings.Index(p, "/-/"); i > 0 {
		r.serveTarball(w, req, p[1:i], p[i+3:])
		return
	}
	name, err := url.PathUnescape(strings.TrimPrefix(p, "/"))
	if err != nil || name == "" {
		http.NotFound(w, req)
		return
	}
	body, ok := r.meta[name]
	if !ok && r.npmDir != "" {
		body, err = os.ReadFile(filepath.Join(r.npmDir, "meta", metaFile(name)))
		ok = err == nil
	}
	if !ok {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"error":"Not found"}`)
		return
	}
	if rewriteTo != "" {
		body = bytes.ReplaceAll(body, []byte("https://registry.npmjs.org/"), []byte(rewriteTo))
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "public, max-age=300")
	h.Set("Vary", "Accept-Encoding")
	etag := fmt.Sprintf(`"%x-%d`, len(body), r.start.Unix())
	if strings.Contains(req.Header.Get("Accept-Encoding"), "gzip") {
		// As registry.npmjs.org does: packuments go out compressed to
		// clients that accept it (npm does), so "direct" pays for
		// decompression like every proxied client.
		body = r.gzipped(rewriteTo+name, body)
		h.Set("Content-Encoding", "gzip")
		etag += "-gz"
	}
	h.Set("ETag", etag+`"`)
	h.Set("Last-Modified", r.start.UTC().Format(http.TimeFormat))
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if req.Method != http.MethodHead {
		w.Write(body)
	}
}

// gzipped returns body gzip-compressed, compressing each document once.
func (r *registry) gzipped(key string, body []byte) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	if b, ok := r.gz[key]; ok {
		return b
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(body)
	zw.Close()
	r.gz[key] = buf.Bytes()
	return buf.Bytes()
}

// metaFile is the file name of a recorded packument ("@scope/x" → "@scope%2fx.json").
func metaFile(name string) string { return strings.ReplaceAll(name, "/", "%2f") + ".json" }

func (r *registry) serveTarball(w http.ResponseWriter, req *http.Request, name, file string) {
	h := w.Header()
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	h.Set("Last-Modified", r.start.UTC().Format(http.TimeFormat))
	if label, ok := strings.CutPrefix(name, "bench-art-"); ok {
		size, ok := artifactSizes[label]
		if !ok {
			http.NotFound(w, req)
			return
		}
		h.Set("Content-Type", "application/octet-stream")
		h.Set("ETag", fmt.Sprintf(`"%s"`, file))
		h.Set("Content-Length", strconv.FormatInt(size, 10))
		if req.Method == http.MethodHead {
			return
		}
		r.mu.Lock()
		r.fetches[req.URL.Path]++
		r.mu.Unlock()
		for size > 0 {
			n := min(size, int64(len(r.block)))
			if _, err := w.Write(r.block[:n]); err != nil {
				return
			}
			size -= n
		}
		return
	}
	if r.npmDir == "" || strings.Contains(file, "/") || strings.Contains(name, "..") {
		http.NotFound(w, req)
		return
	}
	h.Set("Content-Type", "application/octet-stream")
	http.ServeFile(w, req, filepath.Join(r.npmDir, "tarballs", strings.ReplaceAll(name, "/", "%2f"), file))
}

func (r *registry) serveGo(w http.ResponseWriter, req *http.Request, p string) {
	clean := filepath.Clean(p)
	if r.goDir == "" || strings.Contains(clean, "..") {
		http.NotFound(w, req)
		return
	}
	f := filepath.Join(r.goDir, clean)
	if strings.HasSuffix(clean, "/@latest") {
		http.NotFound(w, req)
		return
	}
	if _, err := os.Stat(f); err != nil {
		http.Error(w, "not found: "+clean, http.StatusNotFound)
		return
	}
	switch {
	case strings.HasSuffix(f, ".info"):
		w.Header().Set("Content-Type", "application/json")
	case strings.HasSuffix(f, ".zip"):
		w.Header().Set("Content-Type", "application/zip")
	default:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	}
	w.Header().Set("Cache-Control", "public, max-age=10800")
	http.ServeFile(w, req, f)
}

// serveRegistry starts the fake registry with TLS on addr.
func serveRegistry(addr string, reg *registry, ca *fakeCA) (*http.Server, net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("bench: registry listen %s: %w", addr, err)
	}
	srv := &http.Server{
		Handler:   reg,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{ca.leaf}, NextProtos: []string{"http/1.1"}},
		ErrorLog:  nil,
	}
	srv.SetKeepAlivesEnabled(true)
	go srv.Serve(tls.NewListener(ln, srv.TLSConfig))
	return srv, ln, nil
}
