// Package transparent implements Cafilprox's transparent listeners: the
// HTTPS listener that reads the TLS ClientHello's SNI of connections sent to
// the proxy by the DNS redirector or an iptables REDIRECT rule, and hands
// intercepted hosts to the MITM (or splices other hosts through untouched),
// and the plain-HTTP listener.
package transparent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// Config configures ServeHTTPS.
type Config struct {
	// Intercept reports whether a (lower-case) SNI host name is terminated
	// by the proxy. nil intercepts nothing.
	Intercept func(host string) bool
	// ServeTLS terminates TLS for serverName on conn (which replays the
	// ClientHello bytes already read) and serves the pipeline. It runs on the
	// connection's own goroutine; conn is closed when it returns. Required
	// when Intercept is set.
	ServeTLS func(conn net.Conn, serverName string)
	// Splice passes hosts that are not intercepted through as TCP tunnels to
	// the real host, without decryption. false refuses them.
	Splice bool
	// Allow reports whether a host (SNI name, or the original destination IP
	// when the client sent no SNI) may be spliced. nil allows every host.
	Allow func(host string) bool
	// Dial opens spliced connections. It must not resolve through the DNS
	// redirector (use dnsredirect.NewResolver). nil means a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// HelloTimeout bounds reading the ClientHello; zero means 10s.
	HelloTimeout time.Duration
	// DialTimeout bounds connecting to a spliced host; zero means 10s.
	DialTimeout time.Duration
	// Logger receives refusals and failures; nil means slog.Default().
	Logger *slog.Logger
}

// originalDst is replaced in tests that cannot create iptables rules.
var originalDst = redirectedDst

// redirectedDst returns the pre-NAT destination of a REDIRECTed connection;
// ok is false when the connection was not translated.
func redirectedDst(conn net.Conn) (netip.AddrPort, bool) {
	tc, ok := conn.(*net.TCPConn)
	if !ok {
		return netip.AddrPort{}, false
	}
	orig, err := OriginalDst(tc)
	if err != nil {
		return netip.AddrPort{}, false
	}
	orig = netip.AddrPortFrom(orig.Addr().Unmap(), orig.Port())
	local := tc.LocalAddr().(*net.TCPAddr).AddrPort()
	if orig.Addr() == local.Addr().Unmap() && orig.Port() == local.Port() {
		return netip.AddrPort{}, false
	}
	return orig, true
}

// ServeHTTPS accepts connections on ln until it is closed (then it returns
// nil) and routes each by the SNI of its ClientHello.
func ServeHTTPS(ln net.Listener, cfg Config) error {
	if cfg.Intercept != nil && cfg.ServeTLS == nil {
		return errors.New("transparent: Intercept set without ServeTLS")
	}
	h := &httpsHandler{cfg: cfg}
	if h.cfg.Logger == nil {
		h.cfg.Logger = slog.Default()
	}
	if h.cfg.HelloTimeout <= 0 {
		h.cfg.HelloTimeout = 10 * time.Second
	}
	if h.cfg.DialTimeout <= 0 {
		h.cfg.DialTimeout = 10 * time.Second
	}
	if h.cfg.Dial == nil {
		h.cfg.Dial = (&net.Dialer{}).DialContext
	}
	var backoff time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Like net/http: back off on temporary errors such as EMFILE.
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				h.cfg.Logger.Warn("transparent: accept failed; retrying", "err", err, "delay", backoff)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("transparent: accept: %w", err)
		}
		backoff = 0
		go h.handle(conn)
	}
}

func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

type httpsHandler struct {
	cfg Config
}

// alertUnrecognizedName is a plaintext fatal unrecognized_name(112) alert
// record: clients report "unrecognized name" instead of a bare reset.
var alertUnrecognizedName = []byte{21, 3, 1, 0, 2, 2, 112}

func (h *httpsHandler) handle(conn net.Conn) {
	defer conn.Close()
	defer func() {
		if v := recover(); v != nil {
			h.cfg.Logger.Error("transparent: panic serving connection", "remote", conn.RemoteAddr(), "panic", v)
		}
	}()
	log := h.cfg.Logger.With("remote", conn.RemoteAddr().String())
	conn.SetReadDeadline(time.Now().Add(h.cfg.HelloTimeout))
	raw, sni, err := ReadClientHello(conn)
	conn.SetReadDeadline(time.Time{})
	if err != nil {
		log.Debug("transparent: no ClientHello", "err", err)
		return
	}
	orig, redirected := originalDst(conn)
	switch {
	case sni != "" && h.cfg.Intercept != nil && h.cfg.Intercept(sni):
		h.cfg.ServeTLS(&prefixConn{Conn: conn, r: io.MultiReader(bytes.NewReader(raw), conn)}, sni)
	case sni != "" && h.cfg.Splice && h.allowed(sni):
		// Dial the SNI name, not the original destination IP: a client must
		// not reach an arbitrary address by naming an allowed host.
		port := uint16(443)
		if redirected {
			port = orig.Port()
		}
		h.splice(log, conn, raw, net.JoinHostPort(sni, strconv.Itoa(int(port))), sni)
	case sni == "" && redirected && h.cfg.Splice && h.allowed(orig.Addr().String()):
		h.splice(log, conn, raw, orig.String(), orig.Addr().String())
	default:
		log.Info("transparent: refused connection", "sni", sni, "original_dst", fmtAddr(orig, redirected),
			"reason", refusal(sni, h.cfg.Splice))
		conn.Write(alertUnrecognizedName)
	}
}

func (h *httpsHandler) allowed(host string) bool {
	return h.cfg.Allow == nil || h.cfg.Allow(host)
}

func refusal(sni string, splice bool) string {
	switch {
	case sni == "":
		return "no SNI and no original destination"
	case !splice:
		return "host not intercepted"
	default:
		return "host not allowed"
	}
}

func fmtAddr(ap netip.AddrPort, ok bool) string {
	if !ok {
		return ""
	}
	return ap.String()
}

// splice connects to target, replays the ClientHello and copies bytes both
// ways until both sides are done.
func (h *httpsHandler) splice(log *slog.Logger, conn net.Conn, hello []byte, target, host string) {
	ctx, cancel := context.WithTimeout(context.Background(), h.cfg.DialTimeout)
	up, err := h.cfg.Dial(ctx, "tcp", target)
	cancel()
	if err != nil {
		log.Warn("transparent: splice dial failed", "target", target, "err", err)
		return
	}
	defer up.Close()
	if _, err := up.Write(hello); err != nil {
		log.Warn("transparent: splice write failed", "target", target, "err", err)
		return
	}
	log.Debug("transparent: splicing", "host", host, "target", target)
	pipe(conn, up)
}

// pipe copies a→b and b→a, half-closing each side when its source ends, and
// closes both when either direction fails.
func pipe(a, b net.Conn) {
	var wg sync.WaitGroup
	cp := func(dst, src net.Conn) {
		defer wg.Done()
		_, err := io.Copy(dst, src)
		if cw, ok := dst.(interface{ CloseWrite() error }); ok && err == nil {
			cw.CloseWrite()
			return
		}
		dst.Close()
		src.Close()
	}
	wg.Add(2)
	go cp(a, b)
	go cp(b, a)
	wg.Wait()
}

// prefixConn replays bytes already read from the connection before reading
// from it again.
type prefixConn struct {
	net.Conn
	r io.Reader
}

func (c *prefixConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// NetConn returns the underlying connection (for OriginalDst and the like).
func (c *prefixConn) NetConn() net.Conn { return c.Conn }

// NewHTTPServer returns the server for the plain-HTTP transparent listener:
// handler routes by Host. There is no write timeout because artifacts stream
// for as long as they take; slow clients are bounded by the read timeouts.
func NewHTTPServer(handler http.Handler, logger *slog.Logger) *http.Server {
	if logger == nil {
		logger = slog.Default()
	}
	return &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       5 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// ServeHTTP serves plain HTTP on ln until it is closed (then it returns
// nil). Use NewHTTPServer directly for graceful shutdown.
func ServeHTTP(ln net.Listener, handler http.Handler) error {
	err := NewHTTPServer(handler, nil).Serve(ln)
	if errors.Is(err, net.ErrClosed) || errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
