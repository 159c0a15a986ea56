//go:build e2e

package e2e

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// refProxy is a minimal TLS-intercepting forward proxy with no policy and no
// cache. It maps each registry host onto its fake exactly as Cafilprox's
// `ecosystem { upstream = ... }` does. Running every client through it
// validates the fakes and the client environment (HTTPS_PROXY + CA trust)
// independently of Cafilprox, and records which hosts each client really
// reached through the proxy.
type refProxy struct {
	ca        *testCA
	upstreams map[string]string // host -> base URL of its fake
	transport *http.Transport
	ln        net.Listener

	mu    sync.Mutex
	seen  map[string]int // "host" -> requests
	block func(host, path string) *blockSpec
}

// blockSpec is a refusal written raw (HTTP/1.1 with a custom reason phrase),
// used to learn which refusal each client shows best.
type blockSpec struct {
	status      int
	reason      string
	contentType string
	body        string
}

func (p *refProxy) setBlock(fn func(host, path string) *blockSpec) {
	p.mu.Lock()
	p.block = fn
	p.mu.Unlock()
}

func newRefProxy(ca *testCA, upstreamRoots *x509.CertPool, fakes []*fakeRegistry) (*refProxy, error) {
	p := &refProxy{
		ca:        ca,
		upstreams: map[string]string{},
		seen:      map[string]int{},
		transport: &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: upstreamRoots},
			DisableCompression:  true,
			MaxIdleConnsPerHost: 8,
		},
	}
	for _, f := range fakes {
		for _, h := range f.hosts {
			p.upstreams[h] = f.URL()
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("e2e: ref proxy listen: %w", err)
	}
	p.ln = ln
	srv := &http.Server{Handler: p, ReadHeaderTimeout: 30 * time.Second, ErrorLog: log.New(discard{}, "", 0)}
	go func() { _ = srv.Serve(ln) }()
	return p, nil
}

func (p *refProxy) addr() string { return p.ln.Addr().String() }

func (p *refProxy) hostsSeen() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]int{}
	for k, v := range p.seen {
		out[k] = v
	}
	return out
}

func (p *refProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodConnect {
		p.forward(w, r, r.URL.Hostname())
		return
	}
	host := r.URL.Hostname()
	if _, ok := p.upstreams[host]; !ok {
		p.mu.Lock()
		p.seen["refused:"+host]++
		p.mu.Unlock()
		http.Error(w, "ref proxy: not a registry host: "+host, http.StatusForbidden)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "no hijack", http.StatusInternalServerError)
		return
	}
	conn, brw, err := hj.Hijack()
	if err != nil {
		return
	}
	_, _ = conn.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n"))
	tconn := tls.Server(&bufferedConn{Conn: conn, r: brw.Reader}, &tls.Config{
		NextProtos: []string{"http/1.1"},
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			name := hello.ServerName
			if name == "" {
				name = host
			}
			return p.ca.leaf(name)
		},
	})
	ln := &oneConnListener{conn: tconn, done: make(chan struct{})}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { p.forward(w, r, host) }),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateClosed || s == http.StateHijacked {
				ln.Close()
			}
		},
		ErrorLog: log.New(discard{}, "", 0),
	}
	go func() { _ = srv.Serve(ln) }()
}

func (p *refProxy) forward(w http.ResponseWriter, r *http.Request, host string) {
	p.mu.Lock()
	p.seen[host]++
	block := p.block
	p.mu.Unlock()
	if block != nil {
		if b := block(host, r.URL.Path); b != nil {
			if hj, ok := w.(http.Hijacker); ok {
				if conn, brw, err := hj.Hijack(); err == nil {
					fmt.Fprintf(brw, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
						b.status, b.reason, b.contentType, len(b.body), b.body)
					brw.Flush()
					conn.Close()
					return
				}
			}
		}
	}
	base, ok := p.upstreams[host]
	if !ok {
		http.Error(w, "ref proxy: not a registry host: "+host, http.StatusForbidden)
		return
	}
	target := base + r.URL.EscapedPath()
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	out, err := http.NewRequestWithContext(r.Context(), r.Method, target, r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	for k, vv := range r.Header {
		switch strings.ToLower(k) {
		case "proxy-connection", "proxy-authorization", "connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade":
			continue
		}
		out.Header[k] = vv
	}
	out.ContentLength = r.ContentLength
	resp, err := p.transport.RoundTrip(out)
	if err != nil {
		http.Error(w, "ref proxy: upstream: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, vv := range resp.Header {
		switch strings.ToLower(k) {
		case "connection", "keep-alive", "transfer-encoding", "trailer", "upgrade":
			continue
		}
		w.Header()[k] = vv
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// bufferedConn reads first what the HTTP server already buffered.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(b []byte) (int, error) { return c.r.Read(b) }

// oneConnListener hands one connection to an http.Server, then blocks until
// that connection is done.
type oneConnListener struct {
	conn net.Conn
	once sync.Once
	done chan struct{}
	cl   sync.Once
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	var c net.Conn
	l.once.Do(func() { c = l.conn })
	if c != nil {
		return c, nil
	}
	<-l.done
	return nil, net.ErrClosed
}

func (l *oneConnListener) Close() error {
	l.cl.Do(func() { close(l.done) })
	return nil
}

func (l *oneConnListener) Addr() net.Addr { return l.conn.LocalAddr() }
