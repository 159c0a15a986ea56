// Package mitm is Cafilprox's front: the forward-proxy listener (CONNECT and
// absolute-form HTTP), TLS termination with leaves minted by package ca, the
// request pipeline (classify, decide, cache, filter, respond) and the
// upstream transport. CONNECT parsing and raw tunnels use goproxy; decrypted
// connections are served by net/http (HTTP/1.1 and HTTP/2) so the pipeline is
// an ordinary http.Handler with streaming, keep-alive and deadlines.
package mitm

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/elazarl/goproxy"

	"github.com/cafilprox/cafilprox/ca"
	"github.com/cafilprox/cafilprox/classifiers"
)

// Egress decides what happens to CONNECTs for hosts that are not intercepted.
type Egress struct {
	// Deny refuses unknown hosts with 403 instead of tunnelling them.
	Deny bool
	// Allow lists hosts (or "*.suffix" globs) tunnelled even when Deny is set.
	Allow []string
}

func (e Egress) Allowed(host string) bool {
	if !e.Deny {
		return true
	}
	for _, pat := range e.Allow {
		if ok, _ := path.Match(strings.ToLower(pat), host); ok {
			return true
		}
		if strings.HasPrefix(pat, "*.") && strings.HasSuffix(host, pat[1:]) {
			return true
		}
	}
	return false
}

// Options configures a Server.
type Options struct {
	Issuer *ca.Issuer
	// Intercept reports whether a host is decrypted and served by Handler.
	Intercept func(host string) bool
	// Handler is the pipeline for intercepted requests and absolute-form
	// requests to intercepted hosts.
	Handler http.Handler
	// Local serves origin-form requests to the proxy itself (index-URL
	// mode); nil answers 404.
	Local  http.Handler
	Egress Egress
	// TunnelDial opens raw tunnels to non-intercepted hosts.
	TunnelDial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Forward serves absolute-form plain HTTP requests to non-intercepted
	// hosts that egress allows (nil refuses them).
	Forward http.Handler
	// Users enables proxy basic authentication (user -> password).
	Users  map[string]string
	Realm  string
	Logger *slog.Logger
	// HTTP1Only reports hosts whose clients must be served HTTP/1.1 (no h2
	// in ALPN) because they only show a refusal's reason phrase, which
	// HTTP/2 cannot carry (Composer). Nil offers h2 everywhere.
	HTTP1Only func(host string) bool
	// OnTunnel is called when a raw tunnel opens; the function it returns
	// is called once when the tunnel closes (metrics).
	OnTunnel func() (closed func())
}

// Server is the forward proxy. ServeHTTP handles the forward listener;
// ServeTLSConn takes connections already routed to an intercepted host (the
// transparent listener).
type Server struct {
	opt     Options
	gp      *goproxy.ProxyHttpServer
	tlsLn   *connListener
	tlsSrv  *http.Server
	closing atomic.Bool
	serveWG sync.WaitGroup
}

// Client identifies who sent a request; the pipeline reads it from the
// request context with ClientFrom.
type Client struct {
	IP   net.IP
	User string
	// Tunnel is the host the client asked to CONNECT to (or the SNI on the
	// transparent listener); empty for plain HTTP.
	Tunnel string
}

type clientKey struct{}

// WithClient returns ctx carrying c.
func WithClient(ctx context.Context, c Client) context.Context {
	return context.WithValue(ctx, clientKey{}, c)
}

// ClientFrom returns the client carried by ctx.
func ClientFrom(ctx context.Context) Client {
	c, _ := ctx.Value(clientKey{}).(Client)
	return c
}

// NewServer builds the proxy.
func NewServer(o Options) *Server {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Local == nil {
		o.Local = http.NotFoundHandler()
	}
	s := &Server{opt: o, tlsLn: newConnListener()}

	gp := goproxy.NewProxyHttpServer()
	gp.Logger = log.New(slogWriter{o.Logger}, "", 0)
	gp.Verbose = false
	gp.Tr = nil // never used: only CONNECT goes through goproxy
	gp.ConnectDial = nil
	dial := o.TunnelDial
	if dial == nil {
		dial = (&net.Dialer{Timeout: 10 * time.Second}).DialContext
	}
	gp.ConnectDialWithReq = func(req *http.Request, network, addr string) (net.Conn, error) {
		c, err := dial(req.Context(), network, addr)
		if err != nil {
			return nil, err
		}
		if o.OnTunnel != nil {
			return &countedConn{Conn: c, done: o.OnTunnel()}, nil
		}
		return c, nil
	}
	gp.OnRequest().HandleConnectFunc(func(host string, ctx *goproxy.ProxyCtx) (*goproxy.ConnectAction, string) {
		h := classifiers.HostOnly(host)
		switch {
		case o.Intercept(h):
			return &goproxy.ConnectAction{Action: goproxy.ConnectHijack, Hijack: s.hijack}, host
		case o.Egress.Allowed(h):
			return goproxy.OkConnect, host
		default:
			ctx.Resp = refusal(ctx.Req, h)
			return goproxy.RejectConnect, host
		}
	})
	s.gp = gp

	s.tlsSrv = &http.Server{
		Handler:           o.Handler,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          log.New(slogWriter{o.Logger}, "", 0),
		TLSConfig: &tls.Config{
			MinVersion:     tls.VersionTLS12,
			NextProtos:     []string{"h2", "http/1.1"},
			GetCertificate: s.certificate,
		},
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if tc, ok := c.(*tls.Conn); ok {
				if ic, ok := tc.NetConn().(*interceptedConn); ok {
					return WithClient(ctx, ic.client)
				}
			}
			return ctx
		},
	}
	if o.HTTP1Only != nil {
		h1 := &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}, GetCertificate: s.certificate}
		s.tlsSrv.TLSConfig.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			if o.HTTP1Only(s.serverName(hello)) {
				return h1, nil
			}
			return nil, nil
		}
	}
	s.serveWG.Add(1)
	go func() {
		defer s.serveWG.Done()
		_ = s.tlsSrv.ServeTLS(s.tlsLn, "", "")
	}()
	return s
}

// refusal is the 403 a client sees for a CONNECT to a host egress denies.
func refusal(r *http.Request, host string) *http.Response {
	resp := goproxy.NewResponse(r, "text/plain; charset=utf-8", http.StatusForbidden,
		"cafilprox: egress to "+host+" is not allowed by policy (egress.unknown_hosts = \"deny\")\n")
	resp.Status = "403 Forbidden by cafilprox egress policy"
	return resp
}

// ServeHTTP handles the forward listener.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	user, ok := s.authenticate(r)
	if !ok {
		w.Header().Set("Proxy-Authenticate", `Basic realm="`+s.realm()+`"`)
		http.Error(w, "cafilprox: proxy authentication required", http.StatusProxyAuthRequired)
		return
	}
	client := Client{IP: remoteIP(r.RemoteAddr), User: user}
	r.Header.Del("Proxy-Authorization")
	if r.Method == http.MethodConnect {
		client.Tunnel = classifiers.HostOnly(r.URL.Host)
		s.gp.ServeHTTP(w, r.WithContext(WithClient(r.Context(), client)))
		return
	}
	if r.URL.IsAbs() {
		host := classifiers.HostOnly(r.URL.Host)
		r = r.WithContext(WithClient(r.Context(), client))
		switch {
		case s.opt.Intercept(host):
			r.Host = r.URL.Host
			s.opt.Handler.ServeHTTP(w, r)
		case s.opt.Egress.Allowed(host) && s.opt.Forward != nil:
			s.opt.Forward.ServeHTTP(w, r)
		default:
			resp := refusal(r, host)
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(resp.StatusCode)
			io.Copy(w, resp.Body)
		}
		return
	}
	s.opt.Local.ServeHTTP(w, r.WithContext(WithClient(r.Context(), client)))
}

func (s *Server) realm() string {
	if s.opt.Realm != "" {
		return s.opt.Realm
	}
	return "cafilprox"
}

// authenticate checks Proxy-Authorization when users are configured.
func (s *Server) authenticate(r *http.Request) (user string, ok bool) {
	if len(s.opt.Users) == 0 {
		return "", true
	}
	h := r.Header.Get("Proxy-Authorization")
	const prefix = "Basic "
	if len(h) < len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", false
	}
	raw, err := base64.StdEncoding.DecodeString(h[len(prefix):])
	if err != nil {
		return "", false
	}
	u, p, found := strings.Cut(string(raw), ":")
	want, known := s.opt.Users[u]
	if !found || !known {
		return "", false
	}
	if subtle.ConstantTimeCompare([]byte(p), []byte(want)) != 1 {
		return "", false
	}
	return u, true
}

// hijack takes a CONNECT to an intercepted host: confirm the tunnel and hand
// the connection to the TLS server.
func (s *Server) hijack(r *http.Request, conn net.Conn, ctx *goproxy.ProxyCtx) {
	if _, err := io.WriteString(conn, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		conn.Close()
		return
	}
	go s.ServeTLSConn(conn, ClientFrom(r.Context()))
}

// ServeTLSConn serves a client connection that will start a TLS handshake
// for an intercepted host, and returns when the connection is closed.
// c.Tunnel names the host (used when the client sends no SNI); c.IP and
// c.User identify the client.
func (s *Server) ServeTLSConn(conn net.Conn, c Client) {
	if c.IP == nil {
		c.IP = remoteIP(conn.RemoteAddr().String())
	}
	ic := &interceptedConn{Conn: conn, client: c, done: make(chan struct{})}
	if !s.tlsLn.push(ic) {
		conn.Close()
		return
	}
	<-ic.done
}

// ServeTransparentHTTP serves plain HTTP that reached the transparent :80
// listener: routed by Host like an absolute-form proxy request.
func (s *Server) ServeTransparentHTTP(w http.ResponseWriter, r *http.Request) {
	r.URL.Scheme, r.URL.Host = "http", r.Host
	r = r.WithContext(WithClient(r.Context(), Client{IP: remoteIP(r.RemoteAddr)}))
	host := classifiers.HostOnly(r.Host)
	switch {
	case s.opt.Intercept(host):
		s.opt.Handler.ServeHTTP(w, r)
	case s.opt.Egress.Allowed(host) && s.opt.Forward != nil:
		s.opt.Forward.ServeHTTP(w, r)
	default:
		resp := refusal(r, host)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	}
}

// serverName is the host a handshake is for: SNI, else the tunnel's host.
func (s *Server) serverName(hello *tls.ClientHelloInfo) string {
	name := hello.ServerName
	if ic, ok := hello.Conn.(*interceptedConn); ok && name == "" {
		name = ic.client.Tunnel
	}
	return strings.ToLower(name)
}

func (s *Server) certificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := s.serverName(hello)
	if name == "" {
		return nil, errors.New("mitm: client sent no server name")
	}
	return s.opt.Issuer.Leaf(name)
}

// Shutdown stops accepting intercepted connections and waits (bounded by
// ctx) for in-flight requests to finish.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closing.Store(true)
	err := s.tlsSrv.Shutdown(ctx)
	s.serveWG.Wait()
	return err
}

func remoteIP(addr string) net.IP {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	return net.ParseIP(host)
}

// interceptedConn carries who the connection belongs to into ConnContext
// and tells ServeTLSConn when the server is done with it.
type interceptedConn struct {
	net.Conn
	client Client
	done   chan struct{}
	once   sync.Once
}

func (c *interceptedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { close(c.done) })
	return err
}

// connListener is a net.Listener fed by hijacked connections.
type connListener struct {
	ch     chan net.Conn
	done   chan struct{}
	closed sync.Once
}

func newConnListener() *connListener {
	return &connListener{ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *connListener) push(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error {
	l.closed.Do(func() { close(l.done) })
	return nil
}

func (l *connListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

// countedConn reports its close once.
type countedConn struct {
	net.Conn
	once sync.Once
	done func()
}

func (c *countedConn) Close() error {
	c.once.Do(c.done)
	return c.Conn.Close()
}

// CloseWrite keeps half-close working for tunnels.
func (c *countedConn) CloseWrite() error {
	if hc, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return hc.CloseWrite()
	}
	return nil
}

// CloseRead keeps half-close working for tunnels.
func (c *countedConn) CloseRead() error {
	if hc, ok := c.Conn.(interface{ CloseRead() error }); ok {
		return hc.CloseRead()
	}
	return nil
}

// slogWriter routes library log lines (goproxy, net/http) to slog at debug.
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.l.Debug(strings.TrimSpace(string(p)))
	return len(p), nil
}
