//go:build e2e && linux

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/cafilprox/cafilprox/transparent/netnstest"
)

// Network enforcement without client configuration (issue 7): real clients in
// a network namespace of their own, whose resolv.conf names only Cafilprox's
// DNS redirector and whose environment has no proxy variable at all, reach the
// registry by its default URL and land on the transparent listeners.

// Addresses the fake upstream resolver gives out. realRegistry* stand for the
// registry's real addresses: a client must never see them.
const (
	forwardedName    = "forwarded.e2e.test"
	forwardedAddr    = "192.0.2.77"
	realRegistryIPv4 = "192.0.2.1"
	realRegistryIPv6 = "2001:db8::1"
)

// upstreamDNS is the resolver the redirector forwards to: it knows the
// registry's "real" addresses (A, AAAA and an HTTPS record with address hints)
// and one other name, and records which names it was asked about.
type upstreamDNS struct {
	addr string
	mu   sync.Mutex
	seen map[string]int // "name TYPE" → count
}

func startUpstreamDNS(t *testing.T) *upstreamDNS {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &upstreamDNS{addr: pc.LocalAddr().String(), seen: map[string]int{}}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(u.serve)}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })
	return u
}

func (u *upstreamDNS) serve(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	if len(r.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		w.WriteMsg(m)
		return
	}
	q := r.Question[0]
	name := strings.ToLower(strings.TrimSuffix(q.Name, "."))
	u.mu.Lock()
	u.seen[name+" "+dns.TypeToString[q.Qtype]]++
	u.mu.Unlock()
	hdr := dns.RR_Header{Name: q.Name, Rrtype: q.Qtype, Class: dns.ClassINET, Ttl: 60}
	switch {
	case name == forwardedName && q.Qtype == dns.TypeA:
		m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: net.ParseIP(forwardedAddr)})
	case name == forwardedName:
		// NODATA
	case name == "registry.npmjs.org" && q.Qtype == dns.TypeA:
		m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: net.ParseIP(realRegistryIPv4)})
	case name == "registry.npmjs.org" && q.Qtype == dns.TypeAAAA:
		m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr, AAAA: net.ParseIP(realRegistryIPv6)})
	case name == "registry.npmjs.org" && q.Qtype == dns.TypeHTTPS:
		m.Answer = append(m.Answer, &dns.HTTPS{SVCB: dns.SVCB{Hdr: hdr, Priority: 1, Target: ".", Value: []dns.SVCBKeyValue{
			&dns.SVCBIPv4Hint{Hint: []net.IP{net.ParseIP(realRegistryIPv4)}},
			&dns.SVCBIPv6Hint{Hint: []net.IP{net.ParseIP(realRegistryIPv6)}},
		}}})
	default:
		m.Rcode = dns.RcodeNameError
	}
	w.WriteMsg(m)
}

// asked reports how many queries for name (any type) reached the upstream.
func (u *upstreamDNS) asked(name string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := 0
	for k, c := range u.seen {
		if strings.HasPrefix(k, name+" ") {
			n += c
		}
	}
	return n
}

// nsRun runs a client inside the namespace in dir with exactly env (no
// inherited variable) and returns its combined output.
func nsRun(t *testing.T, ns *netnstest.NS, dir string, env map[string]string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := ns.Command(ctx, name, args...)
	cmd.Dir = dir
	for _, k := range sortedKeys(env) {
		cmd.Env = append(cmd.Env, k+"="+env[k])
	}
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("[netns] %s %s (%.1fs, err=%v)", name, strings.Join(args, " "), time.Since(start).Seconds(), err)
	return string(out), err
}

// TestNetworkEnforcement runs the real binary with the DNS redirector and the
// transparent listeners on the host side of a veth pair, and real dig,
// getent, curl and npm in the namespace on the other side.
func TestNetworkEnforcement(t *testing.T) {
	netnstest.Require(t, "getent")
	requireClient(t, "curl", "npm")
	ns := netnstest.New(t)
	hostIP, nsIP := ns.HostIP.String(), ns.NSIP.String()

	upstream := startUpstreamDNS(t)
	fake := newFakeNPM(h.fakeCA) // a fake of its own: other tests count its requests
	if err := fake.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.stop)

	tg := launchSignals(t, "netns-"+strings.ReplaceAll(hostIP, ".", "-"), func(cfg *strings.Builder) {
		fmt.Fprintf(cfg, "upstream_ca_file = %q\n\n", filepath.Join(h.root, "fake-registries-ca.pem"))
		fmt.Fprintf(cfg, "dns {\n  listen   = %q\n  answer   = [%q]\n  upstream = [%q]\n}\n\n",
			net.JoinHostPort(hostIP, "53"), hostIP, upstream.addr)
		fmt.Fprintf(cfg, "transparent {\n  https_listen = %q\n  http_listen  = %q\n}\n\n",
			net.JoinHostPort(hostIP, "443"), net.JoinHostPort(hostIP, "80"))
		fmt.Fprintf(cfg, "ecosystem \"npm\" {\n  upstream = %q\n}\n", fake.URL())
		fmt.Fprintf(cfg, "\npolicy {\n  default = \"allow\"\n  min_age = \"10d\"\n}\n")
		fmt.Fprintf(cfg, "\nrule \"no-evil-npm\" {\n  ecosystem = \"npm\"\n  package   = %q\n  action    = \"deny\"\n  reason    = %q\n}\n",
			denyNames["npm"], denyReason)
	})
	c := tg.cafil
	ns.SetResolvConf(t, hostIP)

	// Clients get trust in the proxy's CA and nothing else.
	caDir := filepath.Join(filepath.Dir(c.config), "data", "ca")
	caPEM, bundle := filepath.Join(caDir, "ca.pem"), filepath.Join(caDir, "ca-bundle.pem")
	for _, f := range []string{caPEM, bundle} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("proxy CA file: %v", err)
		}
	}
	clientEnv := func(t *testing.T) map[string]string {
		home := t.TempDir()
		return map[string]string{
			"PATH": h.path, "HOME": home, "LANG": "C.UTF-8", "USER": "root", "TERM": "dumb", "NO_COLOR": "1",
			"NODE_EXTRA_CA_CERTS": caPEM, "NPM_CONFIG_CAFILE": bundle,
			"NPM_CONFIG_CACHE": filepath.Join(home, "npm-cache"), "NPM_CONFIG_UPDATE_NOTIFIER": "false",
		}
	}

	t.Run("dig", func(t *testing.T) {
		requireClient(t, "dig")
		tests := []struct{ name, args, want string }{
			{"registry A over UDP is the proxy", "+short A registry.npmjs.org", hostIP},
			{"registry A over TCP is the proxy", "+short +tcp A registry.npmjs.org", hostIP},
			{"registry AAAA is empty", "+short AAAA registry.npmjs.org", ""},
			{"registry HTTPS is empty", "+short HTTPS registry.npmjs.org", ""},
			{"other names are forwarded", "+short A " + forwardedName, forwardedAddr},
			{"other names are forwarded over TCP", "+short +tcp A " + forwardedName, forwardedAddr},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				// No @server: dig reads the namespace's resolv.conf.
				out, err := nsRun(t, ns, "/", map[string]string{"PATH": h.path}, "dig", strings.Fields(tt.args)...)
				if err != nil {
					t.Fatalf("dig %s: %v\n%s", tt.args, err, out)
				}
				if got := strings.TrimSpace(out); got != tt.want {
					t.Errorf("dig %s: got %q, want %q", tt.args, got, tt.want)
				}
			})
		}
		// NODATA, not NXDOMAIN: a resolver must go on to the A query.
		for _, typ := range []string{"AAAA", "HTTPS"} {
			out, err := nsRun(t, ns, "/", map[string]string{"PATH": h.path}, "dig", "+noall", "+comments", typ, "registry.npmjs.org")
			if err != nil || !strings.Contains(out, "status: NOERROR") {
				t.Errorf("dig %s registry.npmjs.org: err=%v, want status NOERROR:\n%s", typ, err, out)
			}
		}
	})

	t.Run("getent", func(t *testing.T) {
		tests := []struct{ name, db, host, want string }{
			{"registry IPv4 is the proxy", "ahostsv4", "registry.npmjs.org", hostIP},
			{"registry, any family, is only the proxy", "ahosts", "registry.npmjs.org", hostIP},
			{"other names are forwarded", "ahostsv4", forwardedName, forwardedAddr},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				out, err := nsRun(t, ns, "/", map[string]string{"PATH": h.path}, "getent", tt.db, tt.host)
				if err != nil {
					t.Fatalf("getent %s %s: %v\n%s", tt.db, tt.host, err, out)
				}
				for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
					if f := strings.Fields(line); len(f) == 0 || f[0] != tt.want {
						t.Errorf("getent %s %s: line %q, want every address to be %s", tt.db, tt.host, line, tt.want)
					}
				}
			})
		}
	})

	t.Run("registry names never reach the upstream resolver", func(t *testing.T) {
		if n := upstream.asked("registry.npmjs.org"); n != 0 {
			t.Errorf("upstream resolver got %d queries for registry.npmjs.org, want 0", n)
		}
		if n := upstream.asked(forwardedName); n == 0 {
			t.Errorf("upstream resolver got no query for %s, want it forwarded", forwardedName)
		}
	})

	// packument fetches the abbreviated packument of name with curl and
	// returns its versions and the address curl connected to.
	packument := func(t *testing.T, url string, extra ...string) (versions []string, remote string) {
		t.Helper()
		args := append([]string{"-sS", "--fail", "--max-time", "60", "-H", "Accept: application/vnd.npm.install-v1+json",
			"-w", "\n%{remote_ip}"}, extra...)
		out, err := nsRun(t, ns, "/", clientEnv(t), "curl", append(args, url)...)
		if err != nil {
			t.Fatalf("curl %s: %v\n%s", url, err, tail(out, 20))
		}
		body, remote, _ := strings.Cut(strings.TrimRight(out, "\n"), "\n")
		var doc struct{ Versions map[string]json.RawMessage }
		if err := json.Unmarshal([]byte(body), &doc); err != nil {
			t.Fatalf("curl %s: not a packument: %v\n%s", url, err, tail(body, 10))
		}
		return sortedKeys(doc.Versions), remote
	}

	t.Run("curl https with only the proxy CA", func(t *testing.T) {
		// --cacert with the proxy's CA alone: the answer can only come from a
		// certificate Cafilprox minted.
		versions, remote := packument(t, npmRegistry+"/e2e-left", "--cacert", caPEM)
		if remote != hostIP {
			t.Errorf("curl connected to %q, want the proxy %s", remote, hostIP)
		}
		// The cooldown filtered the young version: the policy pipeline served it.
		if got, want := strings.Join(versions, ","), "1.0.0"; got != want {
			t.Errorf("versions: got %s, want %s", got, want)
		}
	})

	t.Run("curl plain http by Host", func(t *testing.T) {
		versions, remote := packument(t, "http://registry.npmjs.org/e2e-left")
		if remote != hostIP {
			t.Errorf("curl connected to %q, want the proxy %s", remote, hostIP)
		}
		if got, want := strings.Join(versions, ","), "1.0.0"; got != want {
			t.Errorf("versions: got %s, want %s", got, want)
		}
	})

	t.Run("npm uses its default registry and no proxy", func(t *testing.T) {
		for key, want := range map[string]string{"registry": npmRegistry + "/", "proxy": "null", "https-proxy": "null"} {
			out, err := nsRun(t, ns, t.TempDir(), clientEnv(t), "npm", "config", "get", key)
			if err != nil {
				t.Fatalf("npm config get %s: %v\n%s", key, err, out)
			}
			if got := strings.TrimSpace(out); got != want {
				t.Errorf("npm config get %s: got %q, want %q", key, got, want)
			}
		}
	})

	installOK := t.Run("npm install allowed package", func(t *testing.T) {
		before := fake.artifactHits()
		dir := t.TempDir()
		npmProject(t, dir, "left", false, "")
		out, err := nsRun(t, ns, dir, clientEnv(t), "npm", "install", "--no-audit", "--no-fund")
		if err != nil {
			t.Fatalf("npm install: %v\n%s", err, tail(out, 40))
		}
		if got, want := npmInstalled(t, dir, out), "1.0.0"; got != want {
			t.Errorf("installed e2e-left %q, want %q (1.1.0 is younger than min_age)\n%s", got, want, tail(out, 20))
		}
		if got := fake.artifactHits() - before; got != 1 {
			t.Errorf("fake registry served %d tarballs, want 1 (through the proxy)", got)
		}
	})

	t.Run("npm install denied package names the reason", func(t *testing.T) {
		dir := t.TempDir()
		npmProject(t, dir, "evil", false, "")
		out, err := nsRun(t, ns, dir, clientEnv(t), "npm", "install", "--no-audit", "--no-fund")
		if err == nil {
			t.Fatalf("npm install of the denied package succeeded\n%s", tail(out, 40))
		}
		if !strings.Contains(out, denyReason) {
			t.Errorf("npm output does not give the rule's reason %q:\n%s", denyReason, tail(out, 40))
		}
		if _, err := os.Stat(filepath.Join(dir, "node_modules", denyNames["npm"])); err == nil {
			t.Errorf("%s was installed", denyNames["npm"])
		}
	})

	t.Run("proxy records the namespace client", func(t *testing.T) {
		if n := c.metric(t, "cafilprox_requests_total", map[string]string{"ecosystem": "npm", "kind": "artifact"}); installOK && n < 1 {
			t.Errorf("cafilprox_requests_total{ecosystem=npm,kind=artifact} = %v, want >= 1", n)
		}
		if n := c.metric(t, "cafilprox_blocks_total", map[string]string{"ecosystem": "npm", "rule": "no-evil-npm"}); n < 1 {
			t.Errorf("cafilprox_blocks_total{rule=no-evil-npm} = %v, want >= 1", n)
		}
		if installOK {
			// Events are written in batches: poll briefly.
			var who string
			var err error
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
				who, err = c.audit("npm", "e2e-left@1.0.0")
				if (err == nil && strings.Contains(who, nsIP)) || time.Now().After(deadline) {
					break
				}
			}
			if err != nil || !strings.Contains(who, nsIP) {
				t.Errorf("cafilprox audit who e2e-left@1.0.0: err=%v, want client %s:\n%s", err, nsIP, tail(who, 10))
			}
		}
		if out, ok := auditBlocks(t, c, "npm", nsIP, denyNames["npm"], denyReason); !ok {
			t.Errorf("cafilprox audit blocks: want a block of %s for client %s:\n%s", denyNames["npm"], nsIP, tail(out, 10))
		}
	})
}
