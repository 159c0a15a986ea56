package mitm

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cafilprox/cafilprox/ca"
	"github.com/cafilprox/cafilprox/classifiers"
)

// testClassifier claims one host and classifies everything as "other".
type testClassifier struct{ hosts []string }

func (c testClassifier) Ecosystem() string      { return classifiers.NPM }
func (c testClassifier) DefaultHosts() []string { return c.hosts }
func (c testClassifier) Classify(r *http.Request) classifiers.Request {
	if r.URL.Path == "/panic-in-proxy" {
		panic("classifier bug")
	}
	return classifiers.Request{Package: strings.Trim(r.URL.Path, "/"), Kind: classifiers.KindOther}
}
func (testClassifier) Parse(classifiers.Request, []byte) (*classifiers.Metadata, error) {
	return nil, nil
}
func (testClassifier) Filter(_ classifiers.Request, b []byte, _ func(string) bool) ([]byte, error) {
	return b, nil
}
func (testClassifier) Facts(context.Context, classifiers.Request, classifiers.Fetcher) (*classifiers.Metadata, error) {
	return nil, nil
}

// harness is a proxy in front of a fake TLS registry.
type harness struct {
	proxyURL *url.URL
	caPool   *x509.CertPool
	upstream *httptest.Server
	tunnel   *httptest.Server // a non-registry TLS host
	hits     atomic.Int32
}

func newHarness(t *testing.T, egress Egress, upstreamTrusted bool) *harness {
	t.Helper()
	h := &harness{}
	h.upstream = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.hits.Add(1)
		switch r.URL.Path {
		case "/big":
			w.Header().Set("Content-Type", "application/octet-stream")
			chunk := strings.Repeat("x", 32<<10)
			for i := 0; i < 64; i++ {
				io.WriteString(w, chunk)
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Connection", "keep-alive, X-Hop")
		w.Header().Set("X-Hop", "must not pass")
		fmt.Fprintf(w, `{"path":%q,"host":%q,"ae":%q,"proxyauth":%q}`, r.URL.Path, r.Host, r.Header.Get("Accept-Encoding"), r.Header.Get("Proxy-Authorization"))
	}))
	h.upstream.StartTLS()
	t.Cleanup(h.upstream.Close)
	h.tunnel = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "tunnelled")
	}))
	t.Cleanup(h.tunnel.Close)

	authority, err := ca.Create(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	h.caPool = x509.NewCertPool()
	h.caPool.AddCert(authority.Cert)

	caFile := ""
	if upstreamTrusted {
		caFile = t.TempDir() + "/up.pem"
		os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: h.upstream.Certificate().Raw}), 0o644)
	}
	tr, err := NewTransport(UpstreamOptions{CAFile: caFile})
	if err != nil {
		t.Fatal(err)
	}
	set, err := classifiers.NewSet([]classifiers.Classifier{testClassifier{hosts: []string{"registry.npmjs.org"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ups, _ := NewUpstreams(map[string]string{classifiers.NPM: h.upstream.URL})
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	p := &Pipeline{Set: set, Upstreams: ups, Transport: tr, Logger: logger}
	p.Init()
	srv := NewServer(Options{
		Issuer:    ca.NewIssuer(authority, 0),
		Intercept: func(host string) bool { return set.ForHost(host) != nil },
		Handler:   p,
		Egress:    egress,
		Logger:    logger,
	})
	front := httptest.NewServer(srv)
	t.Cleanup(func() {
		front.Close()
		srv.Shutdown(context.Background())
	})
	h.proxyURL, _ = url.Parse(front.URL)
	return h
}

func (h *harness) client(h2 bool) *http.Client {
	tr := &http.Transport{
		Proxy:             http.ProxyURL(h.proxyURL),
		TLSClientConfig:   &tls.Config{RootCAs: h.caPool},
		ForceAttemptHTTP2: h2,
	}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func TestInterceptHTTP1AndHTTP2(t *testing.T) {
	h := newHarness(t, Egress{}, true)
	for _, tc := range []struct {
		name  string
		h2    bool
		proto int
	}{{"http1.1", false, 1}, {"h2", true, 2}} {
		t.Run(tc.name, func(t *testing.T) {
			c := h.client(tc.h2)
			for i := 0; i < 5; i++ { // many requests, one tunnel
				req, _ := http.NewRequest("GET", "https://registry.npmjs.org/left-pad", nil)
				req.Header.Set("Accept-Encoding", "gzip")
				resp, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Fatalf("status: got %d, want 200 (%s)", resp.StatusCode, body)
				}
				if resp.ProtoMajor != tc.proto {
					t.Errorf("protocol: got HTTP/%d, want HTTP/%d", resp.ProtoMajor, tc.proto)
				}
				if !strings.Contains(string(body), `"path":"/left-pad"`) || !strings.Contains(string(body), `"ae":"gzip"`) {
					t.Errorf("upstream saw: %s", body)
				}
				if resp.Header.Get(HeaderRequestID) == "" || resp.Header.Get(HeaderEcosystem) != "npm" {
					t.Errorf("headers: got %v", resp.Header)
				}
				if resp.Header.Get("X-Hop") != "" {
					t.Error("hop-by-hop header named in Connection was forwarded")
				}
				if err := resp.TLS.VerifiedChains[0][0].VerifyHostname("registry.npmjs.org"); err != nil {
					t.Errorf("leaf does not cover the host: %v", err)
				}
			}
		})
	}
}

func TestRequestIDKept(t *testing.T) {
	h := newHarness(t, Egress{}, true)
	req, _ := http.NewRequest("GET", "https://registry.npmjs.org/x", nil)
	req.Header.Set(HeaderRequestID, "abc-123")
	resp, err := h.client(false).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get(HeaderRequestID); got != "abc-123" {
		t.Errorf("X-Request-ID: got %q, want abc-123", got)
	}
}

func TestStreamsLargeBody(t *testing.T) {
	h := newHarness(t, Egress{}, true)
	resp, err := h.client(true).Get("https://registry.npmjs.org/big")
	if err != nil {
		t.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if n != 64*32<<10 {
		t.Errorf("body: got %d bytes, want %d", n, 64*32<<10)
	}
}

func TestPanicBecomes500(t *testing.T) {
	h := newHarness(t, Egress{}, true)
	c := h.client(false)
	resp, err := c.Get("https://registry.npmjs.org/panic-in-proxy")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// A bug in the pipeline answers 500 for that request and nothing else.
	if resp.StatusCode != 500 || !strings.Contains(string(body), "internal error") {
		t.Errorf("got %d %q, want 500 internal error", resp.StatusCode, body)
	}
	resp, err = c.Get("https://registry.npmjs.org/after")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("after panic: %v %v", resp, err)
	}
	resp.Body.Close()
}

func TestUntrustedUpstreamIs502(t *testing.T) {
	h := newHarness(t, Egress{}, false)
	resp, err := h.client(false).Get("https://registry.npmjs.org/left-pad")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("status: got %d, want 502", resp.StatusCode)
	}
	if !strings.Contains(string(body), "TLS verification failed") {
		t.Errorf("body: got %q, want a TLS verification message", body)
	}
	if h.hits.Load() != 0 {
		t.Error("request reached an unverified upstream")
	}
}

func TestEgress(t *testing.T) {
	tunnelPool := func(h *harness) *http.Client {
		pool := x509.NewCertPool()
		pool.AddCert(h.tunnel.Certificate())
		return &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(h.proxyURL), TLSClientConfig: &tls.Config{RootCAs: pool}}}
	}
	t.Run("tunnel", func(t *testing.T) {
		h := newHarness(t, Egress{}, true)
		// The tunnelled host's own certificate verifies: no decryption.
		resp, err := tunnelPool(h).Get(h.tunnel.URL)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "tunnelled" {
			t.Errorf("body: got %q", body)
		}
	})
	t.Run("deny", func(t *testing.T) {
		h := newHarness(t, Egress{Deny: true}, true)
		_, err := tunnelPool(h).Get(h.tunnel.URL)
		if err == nil || !strings.Contains(err.Error(), "Forbidden") {
			t.Errorf("got %v, want a 403 refusal of the CONNECT", err)
		}
	})
	t.Run("deny-allow-list", func(t *testing.T) {
		h := newHarness(t, Egress{Deny: true, Allow: []string{"127.0.0.1"}}, true)
		resp, err := tunnelPool(h).Get(h.tunnel.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	})
}

func TestPlainHTTPAbsoluteForm(t *testing.T) {
	h := newHarness(t, Egress{}, true)
	c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(h.proxyURL)}}
	resp, err := c.Get("http://registry.npmjs.org/left-pad")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"path":"/left-pad"`) {
		t.Errorf("got %d %s", resp.StatusCode, body)
	}
	if resp.Header.Get(HeaderEcosystem) != "npm" {
		t.Error("plain HTTP request did not go through the pipeline")
	}
}

func TestProxyAuth(t *testing.T) {
	srv := NewServer(Options{Intercept: func(string) bool { return false }, Users: map[string]string{"ci": "s3cret"}, Handler: http.NotFoundHandler()})
	for _, tc := range []struct {
		auth string
		want int
	}{{"", 407}, {"Basic " + b64("ci:wrong"), 407}, {"Basic " + b64("ci:s3cret"), 404}} {
		req := httptest.NewRequest("GET", "/", nil)
		if tc.auth != "" {
			req.Header.Set("Proxy-Authorization", tc.auth)
		}
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		if rec.Code != tc.want {
			t.Errorf("auth %q: got %d, want %d", tc.auth, rec.Code, tc.want)
		}
	}
}

func b64(s string) string {
	return strings.TrimSpace(base64Std(s))
}

func base64Std(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
