// Package dnsredirect is Cafilprox's DNS redirector: a small DNS server that
// answers A/AAAA queries for intercepted registry host names with the proxy's
// own address and forwards every other query to upstream resolvers.
//
// Clients that use it as their resolver reach the proxy's transparent
// listeners when they connect to a registry, with no proxy settings at all.
// Intercepted names never leak the real registry's addresses: AAAA queries get
// the proxy's IPv6 addresses or an empty answer, and HTTPS/SVCB and every other
// record type get an empty answer (no ECH configs or address hints).
package dnsredirect

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// DefaultTTL is the TTL of synthesized answers when Config.TTL is zero. It is
// short so that clients follow a changed proxy address quickly.
const DefaultTTL = 30

// DefaultResolvConf is where upstream resolvers are read from when
// Config.Upstream is empty.
const DefaultResolvConf = "/etc/resolv.conf"

// Config configures a Server.
type Config struct {
	// Listen is the UDP and TCP address to serve on; empty means ":53".
	// Port 0 picks a free port (the same one for UDP and TCP).
	Listen string
	// Answer holds the proxy's addresses: IPv4 ones answer A queries and
	// IPv6 ones answer AAAA queries of intercepted names. At least one is
	// required.
	Answer []net.IP
	// Upstream lists the resolvers (host:port, or host for port 53) that
	// other queries are forwarded to, tried in order. Empty means the
	// name servers of /etc/resolv.conf.
	Upstream []string
	// TTL of synthesized answers in seconds; zero means DefaultTTL.
	TTL uint32
	// Intercept reports whether a host name (lower-case, without the
	// trailing dot) is redirected to the proxy. Required.
	Intercept func(name string) bool
	// Timeout bounds one exchange with one upstream; zero means 2s.
	Timeout time.Duration
	// Logger receives upstream failures; nil means slog.Default().
	Logger *slog.Logger
}

// Server is a DNS redirector. It implements dns.Handler, so tests can drive
// ServeDNS directly.
type Server struct {
	listen    string
	v4, v6    []net.IP
	upstream  []string
	ttl       uint32
	intercept func(string) bool
	log       *slog.Logger
	udpClient *dns.Client
	tcpClient *dns.Client

	mu      sync.Mutex
	udp     *dns.Server
	tcp     *dns.Server
	errc    chan error
	started bool
	closed  bool
}

var _ dns.Handler = (*Server)(nil)

// New validates cfg and returns a Server that is not yet listening.
func New(cfg Config) (*Server, error) {
	if cfg.Intercept == nil {
		return nil, errors.New("dnsredirect: no Intercept function")
	}
	s := &Server{
		listen:    cfg.Listen,
		ttl:       cfg.TTL,
		intercept: cfg.Intercept,
		log:       cfg.Logger,
	}
	if s.listen == "" {
		s.listen = ":53"
	}
	if s.ttl == 0 {
		s.ttl = DefaultTTL
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	for _, ip := range cfg.Answer {
		switch {
		case ip.To4() != nil:
			s.v4 = append(s.v4, ip.To4())
		case len(ip) == net.IPv6len:
			s.v6 = append(s.v6, ip)
		default:
			return nil, fmt.Errorf("dnsredirect: invalid answer address %v", ip)
		}
	}
	if len(s.v4)+len(s.v6) == 0 {
		return nil, errors.New("dnsredirect: no answer address")
	}
	upstream := cfg.Upstream
	if len(upstream) == 0 {
		var err error
		if upstream, err = SystemUpstreams(DefaultResolvConf); err != nil {
			return nil, err
		}
	}
	for _, u := range upstream {
		addr, err := normalizeUpstream(u)
		if err != nil {
			return nil, err
		}
		s.upstream = append(s.upstream, addr)
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	// UDPSize only matters for queries without EDNS0: accept any reply size.
	s.udpClient = &dns.Client{Net: "udp", Timeout: timeout, UDPSize: dns.MaxMsgSize}
	s.tcpClient = &dns.Client{Net: "tcp", Timeout: timeout}
	return s, nil
}

// SystemUpstreams returns the name servers of a resolv.conf file as host:port.
func SystemUpstreams(path string) ([]string, error) {
	cc, err := dns.ClientConfigFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("dnsredirect: reading upstream resolvers: %w", err)
	}
	if len(cc.Servers) == 0 {
		return nil, fmt.Errorf("dnsredirect: no name server in %s", path)
	}
	out := make([]string, 0, len(cc.Servers))
	for _, srv := range cc.Servers {
		out = append(out, net.JoinHostPort(srv, cc.Port))
	}
	return out, nil
}

func normalizeUpstream(u string) (string, error) {
	host, port, err := net.SplitHostPort(u)
	if err != nil {
		host, port = strings.Trim(u, "[]"), "53"
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 || host == "" || strings.ContainsAny(host, " /[]") {
		return "", fmt.Errorf("dnsredirect: invalid upstream %q", u)
	}
	return net.JoinHostPort(host, port), nil
}

// Upstreams returns the resolvers queries are forwarded to, in order.
func (s *Server) Upstreams() []string { return append([]string(nil), s.upstream...) }

// ServeDNS answers one query.
func (s *Server) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	resp := s.answer(r, isUDP(w))
	if err := w.WriteMsg(resp); err != nil {
		s.log.Debug("dnsredirect: writing response", "remote", w.RemoteAddr(), "err", err)
	}
}

func isUDP(w dns.ResponseWriter) bool {
	_, ok := w.RemoteAddr().(*net.UDPAddr)
	return ok
}

// answer builds the response to r; udp says whether it must fit the
// client's UDP payload size.
func (s *Server) answer(r *dns.Msg, udp bool) *dns.Msg {
	if r.Opcode != dns.OpcodeQuery {
		return reply(r, dns.RcodeNotImplemented)
	}
	if len(r.Question) != 1 {
		return reply(r, dns.RcodeFormatError)
	}
	q := r.Question[0]
	name := CanonicalName(q.Name)
	var resp *dns.Msg
	if s.intercept(name) {
		resp = s.synthesize(r, q)
	} else {
		resp = s.forward(r)
	}
	if udp {
		size := dns.MinMsgSize
		if opt := r.IsEdns0(); opt != nil && int(opt.UDPSize()) > size {
			size = int(opt.UDPSize())
		}
		// Sets TC when it had to drop records, so the client retries over TCP.
		resp.Truncate(size)
	}
	return resp
}

// CanonicalName lower-cases a DNS name and removes its trailing dot, the form
// Config.Intercept receives.
func CanonicalName(name string) string {
	return strings.ToLower(strings.TrimSuffix(name, "."))
}

func reply(r *dns.Msg, rcode int) *dns.Msg {
	m := new(dns.Msg)
	m.SetRcode(r, rcode)
	m.RecursionAvailable = true
	if opt := r.IsEdns0(); opt != nil {
		m.SetEdns0(dns.DefaultMsgSize, false)
	}
	return m
}

// synthesize answers a query for an intercepted name. Types other than A and
// AAAA get NODATA (NOERROR, empty answer) rather than NXDOMAIN so that
// resolvers still try the A query.
func (s *Server) synthesize(r *dns.Msg, q dns.Question) *dns.Msg {
	m := reply(r, dns.RcodeSuccess)
	m.Authoritative = true
	if q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY {
		return m
	}
	hdr := func(t uint16) dns.RR_Header {
		return dns.RR_Header{Name: q.Name, Rrtype: t, Class: dns.ClassINET, Ttl: s.ttl}
	}
	if q.Qtype == dns.TypeA || q.Qtype == dns.TypeANY {
		for _, ip := range s.v4 {
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr(dns.TypeA), A: ip})
		}
	}
	if q.Qtype == dns.TypeAAAA || q.Qtype == dns.TypeANY {
		for _, ip := range s.v6 {
			m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr(dns.TypeAAAA), AAAA: ip})
		}
	}
	return m
}

// forward relays r to the upstream resolvers in order: UDP first, TCP when
// the UDP reply is truncated. A network error, SERVFAIL or REFUSED moves on
// to the next resolver; when none answers the client gets SERVFAIL.
func (s *Server) forward(r *dns.Msg) *dns.Msg {
	ctx := context.Background()
	for _, up := range s.upstream {
		resp, _, err := s.udpClient.ExchangeContext(ctx, r, up)
		if err == nil && resp.Truncated {
			resp, _, err = s.tcpClient.ExchangeContext(ctx, r, up)
		}
		if err != nil {
			s.log.Warn("dnsredirect: upstream failed", "upstream", up, "name", r.Question[0].Name, "err", err)
			continue
		}
		if resp.Rcode == dns.RcodeServerFailure || resp.Rcode == dns.RcodeRefused {
			s.log.Debug("dnsredirect: upstream refused", "upstream", up, "rcode", dns.RcodeToString[resp.Rcode])
			continue
		}
		resp.Id = r.Id
		return resp
	}
	return reply(r, dns.RcodeServerFailure)
}

// Start binds the UDP and TCP listeners and serves in the background. Use
// Addr for the bound address and Close to stop.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.closed {
		return errors.New("dnsredirect: server already started")
	}
	pc, ln, err := listenBoth(s.listen)
	if err != nil {
		return err
	}
	s.errc = make(chan error, 2)
	var ready sync.WaitGroup
	ready.Add(2)
	udpReady, tcpReady := sync.OnceFunc(ready.Done), sync.OnceFunc(ready.Done)
	s.udp = &dns.Server{PacketConn: pc, Handler: s, NotifyStartedFunc: udpReady}
	s.tcp = &dns.Server{Listener: ln, Handler: s, NotifyStartedFunc: tcpReady,
		ReadTimeout: 10 * time.Second, IdleTimeout: func() time.Duration { return 10 * time.Second }}
	serve := func(srv *dns.Server, done func()) {
		if err := srv.ActivateAndServe(); err != nil {
			s.errc <- fmt.Errorf("dnsredirect: serving: %w", err)
		}
		done()
	}
	go serve(s.udp, udpReady)
	go serve(s.tcp, tcpReady)
	// ActivateAndServe reports readiness or fails before ever serving;
	// waiting makes Close safe right after Start.
	ready.Wait()
	select {
	case err := <-s.errc:
		pc.Close()
		ln.Close()
		return err
	default:
	}
	s.started = true
	return nil
}

// listenBoth binds UDP and TCP on the same address; with port 0 it retries
// until both protocols get the same free port.
func listenBoth(addr string) (net.PacketConn, net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("dnsredirect: listen address %q: %w", addr, err)
	}
	var lastErr error
	for range 10 {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("dnsredirect: listening on udp %s: %w", addr, err)
		}
		p := strconv.Itoa(pc.LocalAddr().(*net.UDPAddr).Port)
		ln, err := net.Listen("tcp", net.JoinHostPort(host, p))
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		lastErr = err
		if port != "0" {
			break
		}
	}
	return nil, nil, fmt.Errorf("dnsredirect: listening on tcp %s: %w", addr, lastErr)
}

// Addr returns the bound address (the same port for UDP and TCP), or "" before
// Start.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.udp == nil {
		return ""
	}
	return s.udp.PacketConn.LocalAddr().String()
}

// ListenAndServe starts the server and blocks until ctx is done (then it
// closes the server and returns nil) or serving fails.
func (s *Server) ListenAndServe(ctx context.Context) error {
	if err := s.Start(); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return s.Close()
	case err := <-s.errc:
		s.Close()
		return err
	}
}

// Close stops both listeners and waits for in-flight queries.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if !s.started {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return errors.Join(s.udp.ShutdownContext(ctx), s.tcp.ShutdownContext(ctx))
}
