package dnsredirect

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// fakeUpstream is a loopback DNS server recording the queries it receives.
type fakeUpstream struct {
	addr string
	mu   sync.Mutex
	seen []string // "udp:name:type" / "tcp:name:type"
}

func (f *fakeUpstream) record(w dns.ResponseWriter, r *dns.Msg) {
	proto := "tcp"
	if isUDP(w) {
		proto = "udp"
	}
	f.mu.Lock()
	f.seen = append(f.seen, proto+":"+CanonicalName(r.Question[0].Name)+":"+dns.TypeToString[r.Question[0].Qtype])
	f.mu.Unlock()
}

func (f *fakeUpstream) queries() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.seen)
}

// startUpstream serves handler on loopback UDP and TCP (same port).
func startUpstream(t *testing.T, handler func(w dns.ResponseWriter, r *dns.Msg)) *fakeUpstream {
	t.Helper()
	f := &fakeUpstream{}
	pc, ln, err := listenBoth("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = pc.LocalAddr().String()
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		f.record(w, r)
		handler(w, r)
	})
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go srv.ActivateAndServe()
		<-started
		t.Cleanup(func() { srv.Shutdown() })
	}
	return f
}

// answerA answers every A query with ip; other types get NODATA.
func answerA(ip string) func(w dns.ResponseWriter, r *dns.Msg) {
	return func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		q := r.Question[0]
		if q.Qtype == dns.TypeA {
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300}, A: net.ParseIP(ip)})
		}
		w.WriteMsg(m)
	}
}

func deadAddr(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	return addr
}

var registries = map[string]bool{"registry.npmjs.org": true, "pypi.org": true}

func interceptRegistries(name string) bool { return registries[name] }

func startRedirector(t *testing.T, cfg Config) *Server {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.Intercept == nil {
		cfg.Intercept = interceptRegistries
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = time.Second
	}
	cfg.Logger = slog.New(slog.DiscardHandler)
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func query(t *testing.T, proto, addr, name string, qtype uint16) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: proto, Timeout: 5 * time.Second}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	resp, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("query %s %s over %s: %v", name, dns.TypeToString[qtype], proto, err)
	}
	return resp
}

// answers renders the answer section as "TYPE value ttl" strings.
func answers(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		switch rr := rr.(type) {
		case *dns.A:
			out = append(out, "A "+rr.A.String()+" "+itoa(rr.Hdr.Ttl))
		case *dns.AAAA:
			out = append(out, "AAAA "+rr.AAAA.String()+" "+itoa(rr.Hdr.Ttl))
		default:
			out = append(out, rr.String())
		}
	}
	return out
}

func itoa(v uint32) string { return strconv.FormatUint(uint64(v), 10) }

func TestRedirector(t *testing.T) {
	up := startUpstream(t, answerA("192.0.2.7"))
	dual := startRedirector(t, Config{
		Answer:   []net.IP{net.ParseIP("10.0.0.5"), net.ParseIP("fd00::5")},
		Upstream: []string{up.addr},
	})
	v4only := startRedirector(t, Config{
		Answer:   []net.IP{net.ParseIP("10.0.0.5")},
		Upstream: []string{up.addr},
		TTL:      5,
	})
	tests := []struct {
		name   string
		srv    *Server
		proto  string
		qname  string
		qtype  uint16
		rcode  int
		auth   bool
		answer []string
	}{
		{"intercepted A", dual, "udp", "registry.npmjs.org", dns.TypeA, dns.RcodeSuccess, true, []string{"A 10.0.0.5 30"}},
		{"intercepted A case and dot", dual, "udp", "REGISTRY.NpmJS.org.", dns.TypeA, dns.RcodeSuccess, true, []string{"A 10.0.0.5 30"}},
		{"intercepted A over tcp", dual, "tcp", "pypi.org", dns.TypeA, dns.RcodeSuccess, true, []string{"A 10.0.0.5 30"}},
		{"intercepted AAAA", dual, "udp", "registry.npmjs.org", dns.TypeAAAA, dns.RcodeSuccess, true, []string{"AAAA fd00::5 30"}},
		{"intercepted AAAA without v6 answer is NODATA", v4only, "udp", "registry.npmjs.org", dns.TypeAAAA, dns.RcodeSuccess, true, nil},
		{"custom TTL", v4only, "udp", "registry.npmjs.org", dns.TypeA, dns.RcodeSuccess, true, []string{"A 10.0.0.5 5"}},
		{"intercepted HTTPS is NODATA", dual, "udp", "registry.npmjs.org", dns.TypeHTTPS, dns.RcodeSuccess, true, nil},
		{"intercepted SVCB is NODATA", dual, "udp", "registry.npmjs.org", dns.TypeSVCB, dns.RcodeSuccess, true, nil},
		{"intercepted TXT is NODATA", dual, "udp", "registry.npmjs.org", dns.TypeTXT, dns.RcodeSuccess, true, nil},
		{"intercepted MX is NODATA", dual, "udp", "registry.npmjs.org", dns.TypeMX, dns.RcodeSuccess, true, nil},
		{"intercepted CNAME is NODATA", dual, "udp", "registry.npmjs.org", dns.TypeCNAME, dns.RcodeSuccess, true, nil},
		{"intercepted ANY", dual, "tcp", "registry.npmjs.org", dns.TypeANY, dns.RcodeSuccess, true, []string{"A 10.0.0.5 30", "AAAA fd00::5 30"}},
		{"subdomain is forwarded", dual, "udp", "www.registry.npmjs.org", dns.TypeA, dns.RcodeSuccess, false, []string{"A 192.0.2.7 300"}},
		{"forwarded A", dual, "udp", "example.org", dns.TypeA, dns.RcodeSuccess, false, []string{"A 192.0.2.7 300"}},
		{"forwarded A over tcp", dual, "tcp", "example.org", dns.TypeA, dns.RcodeSuccess, false, []string{"A 192.0.2.7 300"}},
		{"forwarded AAAA", dual, "udp", "example.org", dns.TypeAAAA, dns.RcodeSuccess, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := query(t, tt.proto, tt.srv.Addr(), tt.qname, tt.qtype)
			if resp.Rcode != tt.rcode {
				t.Errorf("rcode: got %v, want %v", dns.RcodeToString[resp.Rcode], dns.RcodeToString[tt.rcode])
			}
			if resp.Authoritative != tt.auth {
				t.Errorf("authoritative: got %v, want %v", resp.Authoritative, tt.auth)
			}
			if got := answers(resp); !slices.Equal(got, tt.answer) {
				t.Errorf("answer: got %v, want %v", got, tt.answer)
			}
		})
	}
	for _, q := range up.queries() {
		if strings.Contains(q, ":registry.npmjs.org:") || strings.Contains(q, ":pypi.org:") {
			t.Errorf("intercepted name leaked upstream: %s", q)
		}
	}
	if got := up.queries(); !slices.Contains(got, "udp:example.org:A") || !slices.Contains(got, "udp:www.registry.npmjs.org:A") {
		t.Errorf("upstream queries: got %v, want example.org and www.registry.npmjs.org", got)
	}
}

func TestTruncatedUpstreamRetriesOverTCP(t *testing.T) {
	const n = 40 // 40 A records do not fit in 512 bytes
	up := startUpstream(t, func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		if isUDP(w) {
			m.Truncated = true
			w.WriteMsg(m)
			return
		}
		for i := range n {
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
				A: net.IPv4(192, 0, 2, byte(i+1))})
		}
		w.WriteMsg(m)
	})
	s := startRedirector(t, Config{Answer: []net.IP{net.ParseIP("10.0.0.5")}, Upstream: []string{up.addr}})

	t.Run("tcp client gets the full answer", func(t *testing.T) {
		resp := query(t, "tcp", s.Addr(), "big.example", dns.TypeA)
		if got := len(resp.Answer); got != n || resp.Truncated {
			t.Errorf("got %d answers (truncated %v), want %d (not truncated)", got, resp.Truncated, n)
		}
	})
	t.Run("udp client without EDNS is told to retry over tcp", func(t *testing.T) {
		resp := query(t, "udp", s.Addr(), "big.example", dns.TypeA)
		if !resp.Truncated {
			t.Errorf("truncated: got %v, want true", resp.Truncated)
		}
		resp.Compress = true // as sent on the wire
		if got := resp.Len(); got > dns.MinMsgSize {
			t.Errorf("udp response size: got %d, want <= %d", got, dns.MinMsgSize)
		}
	})
	if got := up.queries(); !slices.Contains(got, "udp:big.example:A") || !slices.Contains(got, "tcp:big.example:A") {
		t.Errorf("upstream queries: got %v, want a udp then a tcp query", got)
	}
}

func TestUpstreamFailover(t *testing.T) {
	good := startUpstream(t, answerA("192.0.2.9"))
	servfail := startUpstream(t, func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetRcode(r, dns.RcodeServerFailure)
		w.WriteMsg(m)
	})
	nxdomain := startUpstream(t, func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetRcode(r, dns.RcodeNameError)
		w.WriteMsg(m)
	})
	dead := deadAddr(t)
	tests := []struct {
		name     string
		upstream []string
		rcode    int
		answer   []string
	}{
		{"all upstreams dead", []string{dead}, dns.RcodeServerFailure, nil},
		{"dead then good", []string{dead, good.addr}, dns.RcodeSuccess, []string{"A 192.0.2.9 300"}},
		{"servfail then good", []string{servfail.addr, good.addr}, dns.RcodeSuccess, []string{"A 192.0.2.9 300"}},
		{"only servfail", []string{servfail.addr}, dns.RcodeServerFailure, nil},
		{"nxdomain is an answer", []string{nxdomain.addr, good.addr}, dns.RcodeNameError, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startRedirector(t, Config{Answer: []net.IP{net.ParseIP("10.0.0.5")}, Upstream: tt.upstream})
			resp := query(t, "udp", s.Addr(), "example.net", dns.TypeA)
			if resp.Rcode != tt.rcode {
				t.Errorf("rcode: got %v, want %v", dns.RcodeToString[resp.Rcode], dns.RcodeToString[tt.rcode])
			}
			if got := answers(resp); !slices.Equal(got, tt.answer) {
				t.Errorf("answer: got %v, want %v", got, tt.answer)
			}
		})
	}
}

func TestEDNSAndOpcode(t *testing.T) {
	s := startRedirector(t, Config{Answer: []net.IP{net.ParseIP("10.0.0.5")}, Upstream: []string{deadAddr(t)}})
	c := &dns.Client{Net: "udp", Timeout: 5 * time.Second}

	m := new(dns.Msg)
	m.SetQuestion("registry.npmjs.org.", dns.TypeA)
	m.SetEdns0(1232, false)
	resp, _, err := c.Exchange(m, s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if resp.IsEdns0() == nil {
		t.Errorf("EDNS0 in response: got none, want OPT record")
	}

	m = new(dns.Msg)
	m.SetNotify("registry.npmjs.org.")
	resp, _, err = c.Exchange(m, s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if resp.Rcode != dns.RcodeNotImplemented {
		t.Errorf("NOTIFY rcode: got %v, want NOTIMP", dns.RcodeToString[resp.Rcode])
	}
}

func TestNewValidation(t *testing.T) {
	ip := []net.IP{net.ParseIP("10.0.0.5")}
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"no intercept", Config{Answer: ip, Upstream: []string{"1.1.1.1"}}, "no Intercept"},
		{"no answer", Config{Intercept: interceptRegistries, Upstream: []string{"1.1.1.1"}}, "no answer address"},
		{"bad answer", Config{Intercept: interceptRegistries, Answer: []net.IP{{1, 2}}, Upstream: []string{"1.1.1.1"}}, "invalid answer"},
		{"bad upstream", Config{Intercept: interceptRegistries, Answer: ip, Upstream: []string{"http://x/"}}, "invalid upstream"},
		{"ok", Config{Intercept: interceptRegistries, Answer: ip, Upstream: []string{"1.1.1.1", "[2606:4700::1111]:53", "::1"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.cfg)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("got %v, want no error", err)
				}
				want := []string{"1.1.1.1:53", "[2606:4700::1111]:53", "[::1]:53"}
				if got := s.Upstreams(); !slices.Equal(got, want) {
					t.Errorf("upstreams: got %v, want %v", got, want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "dnsredirect: ") {
				t.Errorf("got %v, want error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestSystemUpstreams(t *testing.T) {
	path := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(path, []byte("# test\nnameserver 192.0.2.53\nnameserver 2001:db8::53\noptions ndots:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := SystemUpstreams(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"192.0.2.53:53", "[2001:db8::53]:53"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if _, err := SystemUpstreams(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Errorf("missing file: got nil error, want one")
	}
}

func TestListenAndServeStopsOnCancel(t *testing.T) {
	s, err := New(Config{Listen: "127.0.0.1:0", Intercept: interceptRegistries, Answer: []net.IP{net.ParseIP("10.0.0.5")}, Upstream: []string{deadAddr(t)}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.ListenAndServe(ctx) }()
	var addr string
	for addr == "" {
		addr = s.Addr()
		time.Sleep(time.Millisecond)
	}
	resp := query(t, "udp", addr, "pypi.org", dns.TypeA)
	if got, want := answers(resp), []string{"A 10.0.0.5 30"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("ListenAndServe: got %v, want nil", err)
	}
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Errorf("tcp listener still open after cancel")
	}
}

func TestNewResolverUsesOnlyConfiguredUpstreams(t *testing.T) {
	up := startUpstream(t, answerA("192.0.2.44"))
	r := NewResolver([]string{up.addr})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := r.LookupIP(ctx, "ip4", "registry.npmjs.org")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].String() != "192.0.2.44" {
		t.Errorf("got %v, want [192.0.2.44]", got)
	}
	if q := up.queries(); !slices.Contains(q, "udp:registry.npmjs.org:A") {
		t.Errorf("upstream queries: got %v, want the lookup", q)
	}
}

func FuzzAnswer(f *testing.F) {
	for _, q := range []struct {
		name  string
		qtype uint16
	}{{"registry.npmjs.org.", dns.TypeA}, {"pypi.org.", dns.TypeHTTPS}, {"x.", dns.TypeANY}} {
		m := new(dns.Msg)
		m.SetQuestion(q.name, q.qtype)
		m.SetEdns0(4096, true)
		b, _ := m.Pack()
		f.Add(b)
	}
	s, err := New(Config{Intercept: func(string) bool { return true }, Answer: []net.IP{net.ParseIP("10.0.0.5"), net.ParseIP("::5")}, Upstream: []string{"127.0.0.1:1"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m := new(dns.Msg)
		if m.Unpack(data) != nil {
			return
		}
		resp := s.answer(m, true)
		if resp.Id != m.Id {
			t.Errorf("id: got %d, want %d", resp.Id, m.Id)
		}
		if _, err := resp.Pack(); err != nil {
			t.Errorf("response does not pack: %v", err)
		}
	})
}

func BenchmarkAnswerIntercepted(b *testing.B) {
	s, err := New(Config{Intercept: interceptRegistries, Answer: []net.IP{net.ParseIP("10.0.0.5")}, Upstream: []string{"127.0.0.1:1"}})
	if err != nil {
		b.Fatal(err)
	}
	m := new(dns.Msg)
	m.SetQuestion("registry.npmjs.org.", dns.TypeA)
	b.ReportAllocs()
	for b.Loop() {
		if resp := s.answer(m, true); len(resp.Answer) != 1 {
			b.Fatalf("got %d answers, want 1", len(resp.Answer))
		}
	}
}

// BenchmarkRedirectorUDP measures a full UDP round trip through the server.
func BenchmarkRedirectorUDP(b *testing.B) {
	s, err := New(Config{Listen: "127.0.0.1:0", Intercept: interceptRegistries, Answer: []net.IP{net.ParseIP("10.0.0.5")},
		Upstream: []string{"127.0.0.1:1"}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Start(); err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	conn, err := dns.Dial("udp", s.Addr())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	m := new(dns.Msg)
	m.SetQuestion("registry.npmjs.org.", dns.TypeA)
	b.ReportAllocs()
	for b.Loop() {
		if err := conn.WriteMsg(m); err != nil {
			b.Fatal(err)
		}
		if resp, err := conn.ReadMsg(); err != nil || len(resp.Answer) != 1 {
			b.Fatalf("got %v, %v", resp, err)
		}
	}
}

func TestNewResolverFailsOver(t *testing.T) {
	up := startUpstream(t, answerA("192.0.2.45"))
	r := NewResolver([]string{deadAddr(t), up.addr})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Each lookup starts at the next resolver; every one must succeed.
	for i := range 3 {
		got, err := r.LookupIP(ctx, "ip4", "pypi.org")
		if err != nil {
			t.Fatalf("lookup %d: %v", i, err)
		}
		if len(got) != 1 || got[0].String() != "192.0.2.45" {
			t.Errorf("lookup %d: got %v, want [192.0.2.45]", i, got)
		}
	}
}
