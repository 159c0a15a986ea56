//go:build linux

package transparent_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/cafilprox/cafilprox/dnsredirect"
	"github.com/cafilprox/cafilprox/transparent"
	"github.com/cafilprox/cafilprox/transparent/netnstest"
)

// mitmStub stands in for the lead's MITM: it terminates TLS with a leaf for
// the SNI name from its own CA and serves an http.Handler on the connection.
type mitmStub struct {
	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey
	caPEM  []byte
	conns  chan net.Conn
	srv    *http.Server
}

func newMITMStub(t *testing.T, h http.Handler) *mitmStub {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "netns test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	m := &mitmStub{caCert: cert, caKey: key, caPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		conns: make(chan net.Conn), srv: &http.Server{Handler: h}}
	go m.srv.Serve(&chanListener{conns: m.conns, done: make(chan struct{})})
	t.Cleanup(func() { m.srv.Close() })
	return m
}

func (m *mitmStub) leaf(name string) (*tls.Certificate, error) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		DNSNames: []string{name}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, m.caCert, &key.PublicKey, m.caKey)
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// ServeTLS hands the TLS connection to the HTTP server and blocks until the
// server closes it, as ServeTLS's contract requires.
func (m *mitmStub) ServeTLS(conn net.Conn, serverName string) {
	cert, err := m.leaf(serverName)
	if err != nil {
		return
	}
	done := make(chan struct{})
	m.conns <- &notifyConn{Conn: tls.Server(conn, &tls.Config{Certificates: []tls.Certificate{*cert}}), done: done}
	<-done
}

type notifyConn struct {
	net.Conn
	done chan struct{}
	once sync.Once
}

func (c *notifyConn) Close() error {
	c.once.Do(func() { close(c.done) })
	return c.Conn.Close()
}

// chanListener hands ServeTLS's connections to an http.Server.
type chanListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}
func (l *chanListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *chanListener) Addr() net.Addr { return &net.TCPAddr{} }

// startFakeUpstreamDNS answers A queries for forwarded.test on loopback.
func startFakeUpstreamDNS(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		if q := r.Question[0]; q.Qtype == dns.TypeA && q.Name == "forwarded.test." {
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
				A: net.ParseIP("192.0.2.77")})
		} else if q.Qtype == dns.TypeA || q.Qtype == dns.TypeAAAA {
			m.Rcode = dns.RcodeNameError
		}
		w.WriteMsg(m)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String()
}

// TestNetnsRedirectorAndTransparentHTTPS is the no-client-configuration path:
// a client in its own network namespace, whose resolv.conf names only the
// redirector, resolves registry.npmjs.org to the proxy and fetches over
// HTTPS through the transparent listener. The e2e suite extends this with
// the real proxy and npm.
func TestNetnsRedirectorAndTransparentHTTPS(t *testing.T) {
	ns := netnstest.New(t)
	hostIP := ns.HostIP.String()
	intercept := func(h string) bool { return h == "registry.npmjs.org" }

	red, err := dnsredirect.New(dnsredirect.Config{
		Listen:    net.JoinHostPort(hostIP, "53"),
		Answer:    []net.IP{net.ParseIP(hostIP)},
		Upstream:  []string{startFakeUpstreamDNS(t)},
		Intercept: intercept,
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := red.Start(); err != nil {
		t.Fatal(err)
	}
	defer red.Close()
	ns.SetResolvConf(t, hostIP)

	mitm := newMITMStub(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "served "+r.Host+r.URL.Path)
	}))
	ln, err := net.Listen("tcp", net.JoinHostPort(hostIP, "443"))
	if err != nil {
		t.Fatal(err)
	}
	go transparent.ServeHTTPS(ln, transparent.Config{Intercept: intercept, ServeTLS: mitm.ServeTLS, Logger: slog.New(slog.DiscardHandler)})
	defer ln.Close()

	t.Run("getent resolves the registry to the proxy", func(t *testing.T) {
		if got := ns.Run(t, "getent", "ahostsv4", "registry.npmjs.org"); !strings.HasPrefix(got, hostIP+" ") {
			t.Errorf("got %q, want %s", got, hostIP)
		}
	})
	t.Run("getent forwards other names", func(t *testing.T) {
		if got := ns.Run(t, "getent", "ahostsv4", "forwarded.test"); !strings.HasPrefix(got, "192.0.2.77 ") {
			t.Errorf("got %q, want 192.0.2.77", got)
		}
	})
	t.Run("dig", func(t *testing.T) {
		if _, err := exec.LookPath("dig"); err != nil {
			t.Skip("dig not installed (apt-get install dnsutils)")
		}
		tests := []struct{ args, want string }{
			{"+short A registry.npmjs.org", hostIP},
			{"+short +tcp A registry.npmjs.org", hostIP},
			{"+short AAAA registry.npmjs.org", ""},
			{"+short HTTPS registry.npmjs.org", ""},
			{"+short A forwarded.test", "192.0.2.77"},
		}
		for _, tt := range tests {
			if got := strings.TrimSpace(ns.Run(t, "dig", append([]string{"@" + hostIP}, strings.Fields(tt.args)...)...)); got != tt.want {
				t.Errorf("dig %s: got %q, want %q", tt.args, got, tt.want)
			}
		}
	})
	t.Run("curl without proxy settings", func(t *testing.T) {
		if _, err := exec.LookPath("curl"); err != nil {
			t.Skip("curl not installed")
		}
		caFile := filepath.Join(t.TempDir(), "ca.pem")
		if err := os.WriteFile(caFile, mitm.caPEM, 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := ns.Command(context.Background(), "curl", "-sS", "--max-time", "20", "--cacert", caFile, "https://registry.npmjs.org/left-pad")
		cmd.Env = []string{"PATH=" + os.Getenv("PATH")} // no *_proxy variables
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("curl: %v: %s", err, out)
		}
		if want := "served registry.npmjs.org/left-pad"; string(out) != want {
			t.Errorf("got %q, want %q", out, want)
		}
	})
}

// TestIptablesRedirectOriginalDst checks SO_ORIGINAL_DST recovery on
// connections an iptables REDIRECT rule sent to the transparent listener, for
// IPv4 and IPv6, inside a namespace so that no host rule changes.
func TestIptablesRedirectOriginalDst(t *testing.T) {
	netnstest.Require(t, "iptables")
	origin := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "origin")
	}))
	defer origin.Close()

	tests := []struct {
		name, iptables, network, listen, dst, sni, wantTarget string
	}{
		{"ipv4 without SNI", "iptables", "tcp4", "0.0.0.0:0", "192.0.2.10", "", "192.0.2.10:443"},
		{"ipv4 with SNI", "iptables", "tcp4", "0.0.0.0:0", "192.0.2.10", "example.com", "example.com:443"},
		// https_listen = ":443" is a dual-stack socket seeing IPv4-mapped addresses.
		{"ipv4 on a dual-stack listener", "iptables", "tcp", ":0", "192.0.2.10", "", "192.0.2.10:443"},
		{"ipv6 without SNI", "ip6tables", "tcp6", "[::]:0", "2001:db8::10", "", "[2001:db8::10]:443"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			netnstest.Require(t, tt.iptables)
			ns := netnstest.New(t)
			if tt.iptables == "ip6tables" {
				// A route is needed for connect(); REDIRECT then rewrites to ::1.
				if out, err := ns.Command(context.Background(), "ip", "-6", "route", "add", "2001:db8::/64", "dev", "lo").CombinedOutput(); err != nil {
					t.Skipf("no IPv6 in the namespace: %v: %s", err, out)
				}
			}
			var ln net.Listener
			if err := ns.Do(func() (err error) { ln, err = net.Listen(tt.network, tt.listen); return err }); err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
			ns.Run(t, tt.iptables, "-t", "nat", "-A", "OUTPUT", "-p", "tcp", "-d", tt.dst, "--dport", "443", "-j", "REDIRECT", "--to-ports", port)

			var mu sync.Mutex
			var target string
			go transparent.ServeHTTPS(ln, transparent.Config{
				Splice: true,
				Logger: slog.New(slog.DiscardHandler),
				Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
					mu.Lock()
					target = addr
					mu.Unlock()
					return (&net.Dialer{}).DialContext(ctx, "tcp", origin.Listener.Addr().String())
				},
			})

			var raw net.Conn
			if err := ns.Do(func() (err error) {
				raw, err = net.DialTimeout("tcp", net.JoinHostPort(tt.dst, "443"), 5*time.Second)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			pool := x509.NewCertPool()
			pool.AddCert(origin.Certificate())
			tc := tls.Client(raw, &tls.Config{ServerName: tt.sni, RootCAs: pool, InsecureSkipVerify: tt.sni == ""})
			defer tc.Close()
			tc.SetDeadline(time.Now().Add(10 * time.Second))
			io.WriteString(tc, "GET / HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n")
			body, err := io.ReadAll(tc)
			if err != nil && !errors.Is(err, io.EOF) {
				t.Fatalf("reading through the splice: %v", err)
			}
			if !strings.HasSuffix(string(body), "origin") {
				t.Errorf("response: got %q, want the origin's", body)
			}
			mu.Lock()
			defer mu.Unlock()
			if target != tt.wantTarget {
				t.Errorf("splice target: got %q, want %q", target, tt.wantTarget)
			}
		})
	}
}
