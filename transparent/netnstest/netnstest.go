//go:build linux

// Package netnstest creates throw-away Linux network namespaces for tests
// of the DNS redirector and transparent listeners: a namespace joined to the
// host by a veth pair, its own resolv.conf (bind-mounted by `ip netns exec`)
// and a way to run commands or Go code inside it. Everything is removed when
// the test ends, so nothing outside the test changes.
//
// Tests skip when not run as root; as root in CI (CI=true) a namespace that
// cannot be created fails the test instead, so CI never silently skips.
package netnstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// NS is a network namespace joined to the host by a veth pair:
// HostIP (host side) and NSIP (namespace side) share a /30. The namespace's
// default route points at HostIP.
type NS struct {
	Name   string
	HostIf string
	NSIf   string
	HostIP netip.Addr
	NSIP   netip.Addr
}

// unavailable skips the test, or fails it in CI when running as root.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" && os.Geteuid() == 0 {
		t.Fatalf("netnstest: %s (CI=true and root: this test must run)", msg)
	}
	t.Skipf("netnstest: skipping: %s", msg)
}

// Require skips the test unless it runs as root and `ip` and every named
// tool are on PATH (failing instead in CI as root).
func Require(t testing.TB, tools ...string) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("netnstest: skipping: network namespaces need Linux")
	}
	if os.Geteuid() != 0 {
		t.Skip("netnstest: skipping: network namespaces need root (run the tests as root, e.g. in CI)")
	}
	for _, tool := range append([]string{"ip"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			unavailable(t, "%s not found on PATH", tool)
		}
	}
}

// New creates a namespace with a veth pair and addresses, removed at the end
// of the test.
func New(t testing.TB) *NS {
	t.Helper()
	Require(t)
	var b [3]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	n := &NS{
		Name:   "cfp-test-" + id,
		HostIf: "cfph" + id, // interface names are limited to 15 bytes
		NSIf:   "cfpn" + id,
		// 10.213.x.y/30 with a random x.y keeps parallel tests apart.
		HostIP: netip.AddrFrom4([4]byte{10, 213, b[0], b[1]&^3 | 1}),
		NSIP:   netip.AddrFrom4([4]byte{10, 213, b[0], b[1]&^3 | 2}),
	}
	if out, err := exec.Command("ip", "netns", "add", n.Name).CombinedOutput(); err != nil {
		unavailable(t, "ip netns add: %v: %s", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		// Deleting the namespace destroys its veth end and with it the peer.
		if out, err := exec.Command("ip", "netns", "del", n.Name).CombinedOutput(); err != nil {
			t.Errorf("netnstest: ip netns del %s: %v: %s", n.Name, err, out)
		}
		exec.Command("ip", "link", "del", n.HostIf).Run() // in case it was never moved
		os.RemoveAll(filepath.Join("/etc/netns", n.Name))
	})
	steps := [][]string{
		{"link", "add", n.HostIf, "type", "veth", "peer", "name", n.NSIf},
		{"link", "set", n.NSIf, "netns", n.Name},
		{"addr", "add", n.HostIP.String() + "/30", "dev", n.HostIf},
		{"link", "set", n.HostIf, "up"},
		{"-n", n.Name, "addr", "add", n.NSIP.String() + "/30", "dev", n.NSIf},
		{"-n", n.Name, "link", "set", n.NSIf, "up"},
		{"-n", n.Name, "link", "set", "lo", "up"},
		{"-n", n.Name, "route", "add", "default", "via", n.HostIP.String()},
	}
	for _, args := range steps {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			unavailable(t, "ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
	}
	return n
}

// SetResolvConf writes /etc/netns/<name>/resolv.conf, which `ip netns exec`
// bind-mounts over /etc/resolv.conf for commands run in the namespace.
func (n *NS) SetResolvConf(t testing.TB, nameservers ...string) {
	t.Helper()
	dir := filepath.Join("/etc/netns", n.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("netnstest: %v", err)
	}
	var sb strings.Builder
	for _, ns := range nameservers {
		fmt.Fprintf(&sb, "nameserver %s\n", ns)
	}
	sb.WriteString("options timeout:2 attempts:1\n")
	if err := os.WriteFile(filepath.Join(dir, "resolv.conf"), []byte(sb.String()), 0o644); err != nil {
		t.Fatalf("netnstest: %v", err)
	}
}

// Command returns a command that runs inside the namespace.
func (n *NS) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// Run runs a command inside the namespace and returns its standard output,
// failing the test (with stderr) when it fails.
func (n *NS) Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := n.Command(ctx, name, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("netnstest: %s %s in %s: %v\n%s%s", name, strings.Join(args, " "), n.Name, err, out, stderr.String())
	}
	return string(out)
}

// Do runs fn on an OS thread switched into the namespace. Sockets that fn
// creates (net.Listen, net.Dial with an IP literal) belong to the namespace
// and may be used from any goroutine afterwards; fn must not start
// goroutines that create sockets (so no host-name resolution inside fn).
func (n *NS) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		// The thread is never unlocked when switching back fails, so the
		// runtime discards it instead of reusing it in the wrong namespace.
		runtime.LockOSThread()
		orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			errc <- fmt.Errorf("netnstest: %w", err)
			return
		}
		defer orig.Close()
		target, err := os.Open(filepath.Join("/var/run/netns", n.Name))
		if err != nil {
			errc <- fmt.Errorf("netnstest: %w", err)
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("netnstest: setns: %w", err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("netnstest: setns back: %w", err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
