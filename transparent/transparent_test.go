package transparent

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// startHTTPS runs ServeHTTPS on a loopback listener for the test.
func startHTTPS(t *testing.T, cfg Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	done := make(chan error, 1)
	go func() { done <- ServeHTTPS(ln, cfg) }()
	t.Cleanup(func() {
		ln.Close()
		if err := <-done; err != nil {
			t.Errorf("ServeHTTPS: got %v, want nil after Close", err)
		}
	})
	return ln.Addr().String()
}

// interceptor is a ServeTLS that terminates TLS with leaves from ca and
// answers one line per connection.
func interceptor(t *testing.T, ca *testCA) func(net.Conn, string) {
	return func(conn net.Conn, serverName string) {
		cert := ca.leaf(t, serverName)
		tc := tls.Server(conn, &tls.Config{Certificates: []tls.Certificate{cert}})
		line, err := bufio.NewReader(tc).ReadString('\n')
		if err != nil {
			t.Errorf("intercepted connection: %v", err)
			return
		}
		io.WriteString(tc, "intercepted "+serverName+" "+line)
	}
}

func TestServeHTTPSIntercept(t *testing.T) {
	ca := newTestCA(t)
	addr := startHTTPS(t, Config{
		Intercept: func(h string) bool { return h == "registry.npmjs.org" },
		ServeTLS:  interceptor(t, ca),
	})
	for _, name := range []string{"registry.npmjs.org", "REGISTRY.npmjs.org"} {
		t.Run(name, func(t *testing.T) {
			conn, err := tls.Dial("tcp", addr, &tls.Config{ServerName: name, RootCAs: ca.pool})
			if err != nil {
				t.Fatalf("handshake through the replayed hello: %v", err)
			}
			defer conn.Close()
			io.WriteString(conn, "ping\n")
			got, err := io.ReadAll(conn)
			if err != nil {
				t.Fatal(err)
			}
			if want := "intercepted registry.npmjs.org ping\n"; string(got) != want {
				t.Errorf("got %q, want %q", got, want)
			}
		})
	}
}

// recordingDialer sends every dial to one address and records the targets.
type recordingDialer struct {
	to      string
	mu      sync.Mutex
	targets []string
}

func (d *recordingDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	d.targets = append(d.targets, addr)
	d.mu.Unlock()
	return (&net.Dialer{}).DialContext(ctx, network, d.to)
}

func (d *recordingDialer) last() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.targets) == 0 {
		return ""
	}
	return d.targets[len(d.targets)-1]
}

func TestServeHTTPSRouting(t *testing.T) {
	origin := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "origin "+r.Host)
	}))
	defer origin.Close()
	originPool := x509.NewCertPool()
	originPool.AddCert(origin.Certificate())
	ca := newTestCA(t)

	tests := []struct {
		name       string
		splice     bool
		allow      func(string) bool
		serverName string // "" sends no SNI
		redirected netip.AddrPort
		wantBody   string // "" means the connection is refused
		wantTarget string
	}{
		{name: "not intercepted, spliced by SNI", splice: true, serverName: "example.com",
			wantBody: "origin example.com", wantTarget: "example.com:443"},
		{name: "redirected keeps the original port", splice: true, serverName: "example.com",
			redirected: netip.MustParseAddrPort("192.0.2.10:8443"), wantBody: "origin example.com", wantTarget: "example.com:8443"},
		{name: "not allowed", splice: true, allow: func(h string) bool { return h != "example.com" }, serverName: "example.com"},
		{name: "splice disabled", splice: false, serverName: "example.com"},
		{name: "no SNI, not redirected", splice: true},
		{name: "no SNI, redirected, spliced to the original destination", splice: true,
			redirected: netip.MustParseAddrPort("192.0.2.10:443"), wantBody: "origin example.com", wantTarget: "192.0.2.10:443"},
		{name: "no SNI, redirected, IP not allowed", splice: true, allow: func(h string) bool { return h != "192.0.2.10" },
			redirected: netip.MustParseAddrPort("192.0.2.10:443")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			originalDst = func(net.Conn) (netip.AddrPort, bool) { return tt.redirected, tt.redirected.IsValid() }
			t.Cleanup(func() { originalDst = redirectedDst })
			d := &recordingDialer{to: origin.Listener.Addr().String()}
			addr := startHTTPS(t, Config{
				Intercept: func(h string) bool { return h == "registry.npmjs.org" },
				ServeTLS:  interceptor(t, ca),
				Splice:    tt.splice,
				Allow:     tt.allow,
				Dial:      d.dial,
			})
			tlsCfg := &tls.Config{
				ServerName:         tt.serverName,
				RootCAs:            originPool,
				InsecureSkipVerify: tt.serverName == "", // the only way to send no SNI
			}
			client := &http.Client{Transport: &http.Transport{
				// http.Transport would fill in the SNI from the URL; dial TLS by hand.
				DialTLSContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
					c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
					if err != nil {
						return nil, err
					}
					tc := tls.Client(c, tlsCfg)
					if err := tc.HandshakeContext(ctx); err != nil {
						c.Close()
						return nil, err
					}
					return tc, nil
				},
			}}
			defer client.CloseIdleConnections()
			resp, err := client.Get("https://example.com/")
			if tt.wantBody == "" {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("got a response, want the connection refused")
				}
				if !strings.Contains(err.Error(), "unrecognized name") {
					t.Errorf("error: got %v, want a TLS unrecognized_name alert", err)
				}
				if got := d.last(); got != "" {
					t.Errorf("dialed %q, want no dial", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(body) != tt.wantBody {
				t.Errorf("body: got %q, want %q", body, tt.wantBody)
			}
			if got := d.last(); got != tt.wantTarget {
				t.Errorf("dial target: got %q, want %q", got, tt.wantTarget)
			}
		})
	}
}

func TestServeHTTPSClosesNonTLS(t *testing.T) {
	called := false
	addr := startHTTPS(t, Config{
		Intercept:    func(string) bool { return true },
		ServeTLS:     func(net.Conn, string) { called = true },
		Splice:       true,
		HelloTimeout: 5 * time.Second,
	})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: registry.npmjs.org\r\n\r\n")
	// The unread request makes the close a reset; either way no byte comes back.
	if got, _ := io.ReadAll(conn); len(got) != 0 {
		t.Errorf("got %q, want the connection closed without a reply", got)
	}
	if called {
		t.Errorf("ServeTLS called for a non-TLS connection")
	}
}

func TestServeHTTPSNeedsServeTLS(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := ServeHTTPS(ln, Config{Intercept: func(string) bool { return true }}); err == nil || !strings.HasPrefix(err.Error(), "transparent: ") {
		t.Errorf("got %v, want a transparent: error", err)
	}
}

func TestRedirectedDstWithoutNAT(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err == nil {
			defer c.Close()
			time.Sleep(100 * time.Millisecond)
		}
	}()
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if ap, ok := redirectedDst(conn); ok {
		t.Errorf("got redirected to %v, want not redirected", ap)
	}
}

func TestServeHTTP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- ServeHTTP(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, r.Host+r.URL.Path)
		}))
	}()
	req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+"/simple/requests/", nil)
	req.Host = "pypi.org"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := "pypi.org/simple/requests/"; string(body) != want {
		t.Errorf("got %q, want %q", body, want)
	}
	http.DefaultClient.CloseIdleConnections()
	ln.Close()
	if err := <-done; err != nil {
		t.Errorf("ServeHTTP after Close: got %v, want nil", err)
	}
}
