package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// env is what every peer needs to know about the bench run.
type env struct {
	work      string // scratch directory of this run
	regIP     string // the fake registry's address (port 443)
	regCAFile string // PEM of the fake registry's CA
	cafilprox string // cafilprox binary
	verdaccio string // verdaccio binary
	pprofAddr string // when set, cafilprox is a pprof-enabled build listening here
}

// running is a started peer.
type running struct {
	cmd      *exec.Cmd
	proxy    string // forward proxy URL; empty for registry-style caches and direct
	registry string // npm registry URL for registry-style caches (Verdaccio)
	caFile   string // CA the client must trust for intercepted TLS
	dir      string
}

func (r *running) pid() int {
	if r == nil || r.cmd == nil || r.cmd.Process == nil {
		return 0
	}
	return r.cmd.Process.Pid
}

// stop ends the peer (its process group) and waits for it.
func (r *running) stop() {
	if r == nil || r.cmd == nil || r.cmd.Process == nil {
		return
	}
	syscall.Kill(-r.cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { r.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// peer is one system under test. start gives a fresh instance (empty cache).
type peer struct {
	name    string
	kind    string // "forward" (HTTPS_PROXY + CA), "registry" (npm registry URL), "direct"
	npmOnly bool
	start   func(e *env) (*running, error)
}

func freePort() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func startCmd(dir, logName string, name string, args []string, extraEnv []string) (*exec.Cmd, error) {
	logf, err := os.Create(filepath.Join(dir, logName))
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.Env = append(os.Environ(), extraEnv...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("bench: start %s: %w", name, err)
	}
	go func() { cmd.Wait(); logf.Close() }()
	return cmd, nil
}

// waitPort waits until addr accepts TCP connections (or an HTTP URL answers 200).
func waitReady(addr, httpURL string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if httpURL != "" {
			resp, err := http.Get(httpURL)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return nil
				}
			}
		} else if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("bench: %s%s not ready after %v", addr, httpURL, d)
}

func startCafilprox(e *env) (*running, error) {
	dir, err := os.MkdirTemp(e.work, "cafilprox-")
	if err != nil {
		return nil, err
	}
	port, admin := freePort(), freePort()
	up := "https://" + e.regIP + ":443"
	cfg := fmt.Sprintf(`listen       = "127.0.0.1:%d"
admin_listen = "127.0.0.1:%d"
data_dir     = %q
upstream_ca_file = %q
# The load generator is one client; the per-client rate limit (200/s by
# default) would measure the limiter, not the proxy.
limits {
  requests_per_second = -1
  max_concurrent      = -1
}
ecosystem "npm" { upstream = %q }
ecosystem "go"  { upstream = %q }
`, port, admin, filepath.Join(dir, "data"), e.regCAFile, up, up)
	cfgFile := filepath.Join(dir, "cafilprox.hcl")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	extra := []string{}
	if e.pprofAddr != "" {
		extra = append(extra, "CAFILPROX_BENCH_PPROF="+e.pprofAddr)
	}
	cmd, err := startCmd(dir, "cafilprox.log", e.cafilprox, []string{"serve", "--config", cfgFile}, extra)
	if err != nil {
		return nil, err
	}
	r := &running{cmd: cmd, proxy: fmt.Sprintf("http://127.0.0.1:%d", port), caFile: filepath.Join(dir, "data", "ca", "ca.pem"), dir: dir}
	if err := waitReady("", fmt.Sprintf("http://127.0.0.1:%d/readyz", admin), 30*time.Second); err != nil {
		r.stop()
		return nil, err
	}
	return r, nil
}

const squidCertgen = "/usr/lib/squid/security_file_certgen"

func startSquid(e *env) (*running, error) {
	dir, err := os.MkdirTemp(e.work, "squid-")
	if err != nil {
		return nil, err
	}
	os.Chmod(dir, 0o777)
	caKey, caCert := filepath.Join(dir, "ca.key"), filepath.Join(dir, "ca.pem")
	gen := exec.Command("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
		"-keyout", caKey, "-out", caCert, "-days", "7", "-subj", "/CN=squid bench CA",
		"-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
	if out, err := gen.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("bench: squid CA: %v: %s", err, out)
	}
	sslDB := filepath.Join(dir, "ssl_db")
	if out, err := exec.Command(squidCertgen, "-c", "-s", sslDB, "-M", "16MB").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("bench: squid ssl_db: %v: %s", err, out)
	}
	hosts := filepath.Join(dir, "hosts")
	os.WriteFile(hosts, []byte(fmt.Sprintf("%s registry.npmjs.org proxy.golang.org\n", e.regIP)), 0o644)
	port := freePort()
	conf := fmt.Sprintf(`http_port 127.0.0.1:%d ssl-bump tls-cert=%s tls-key=%s generate-host-certificates=on dynamic_cert_mem_cache_size=16MB
sslcrtd_program %s -s %s -M 16MB
sslcrtd_children 5 startup=1 idle=1
acl step1 at_step SslBump1
ssl_bump peek step1
ssl_bump bump all
tls_outgoing_options cafile=%s
hosts_file %s
cache_mem 1536 MB
maximum_object_size_in_memory 128 MB
maximum_object_size 2 GB
memory_cache_mode always
refresh_pattern . 0 20%% 4320
http_access allow localhost
http_access deny all
pid_filename %s/squid.pid
cache_log %s/cache.log
access_log none
cache_store_log none
coredump_dir %s
shutdown_lifetime 1 seconds
cache_effective_user proxy
workers 1
`, port, caCert, caKey, squidCertgen, sslDB, e.regCAFile, hosts, dir, dir, dir)
	confFile := filepath.Join(dir, "squid.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	exec.Command("chown", "-R", "proxy:proxy", dir).Run()
	cmd, err := startCmd(dir, "squid.out", "squid", []string{"-N", "-f", confFile}, nil)
	if err != nil {
		return nil, err
	}
	r := &running{cmd: cmd, proxy: fmt.Sprintf("http://127.0.0.1:%d", port), caFile: caCert, dir: dir}
	if err := waitReady(fmt.Sprintf("127.0.0.1:%d", port), "", 30*time.Second); err != nil {
		r.stop()
		return nil, err
	}
	return r, nil
}

// mitmAddon sends every upstream connection to the fake registry (the
// equivalent of squid's hosts_file) while keeping SNI and Host.
const mitmAddon = `
from mitmproxy import ctx

class Redirect:
    def server_connect(self, data):
        data.server.address = (%q, 443)

addons = [Redirect()]
`

func startMitmproxy(e *env) (*running, error) {
	dir, err := os.MkdirTemp(e.work, "mitmproxy-")
	if err != nil {
		return nil, err
	}
	addon := filepath.Join(dir, "redirect.py")
	os.WriteFile(addon, []byte(fmt.Sprintf(mitmAddon, e.regIP)), 0o644)
	port := freePort()
	args := []string{"--listen-host", "127.0.0.1", "--listen-port", strconv.Itoa(port),
		"--set", "confdir=" + dir, "--set", "ssl_verify_upstream_trusted_ca=" + e.regCAFile,
		"--set", "connection_strategy=lazy", "--set", "stream_large_bodies=1m",
		"-q", "-s", addon}
	cmd, err := startCmd(dir, "mitmdump.log", "mitmdump", args, nil)
	if err != nil {
		return nil, err
	}
	r := &running{cmd: cmd, proxy: fmt.Sprintf("http://127.0.0.1:%d", port), caFile: filepath.Join(dir, "mitmproxy-ca-cert.pem"), dir: dir}
	if err := waitReady(fmt.Sprintf("127.0.0.1:%d", port), "", 60*time.Second); err != nil {
		r.stop()
		return nil, err
	}
	for range 50 {
		if _, err := os.Stat(r.caFile); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return r, nil
}

func startVerdaccio(e *env) (*running, error) {
	dir, err := os.MkdirTemp(e.work, "verdaccio-")
	if err != nil {
		return nil, err
	}
	port := freePort()
	conf := fmt.Sprintf(`storage: %s/storage
web:
  enable: false
uplinks:
  npmjs:
    url: https://%s/verdaccio/
    timeout: 120s
    maxage: 5m
packages:
  '@*/*':
    access: $all
    proxy: npmjs
  '**':
    access: $all
    proxy: npmjs
server:
  keepAliveTimeout: 60
max_body_size: 2gb
log: { type: stdout, format: pretty, level: error }
listen: 127.0.0.1:%d
`, dir, e.regIP, port)
	confFile := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	cmd, err := startCmd(dir, "verdaccio.log", e.verdaccio, []string{"--config", confFile},
		[]string{"NODE_EXTRA_CA_CERTS=" + e.regCAFile})
	if err != nil {
		return nil, err
	}
	r := &running{cmd: cmd, registry: fmt.Sprintf("http://127.0.0.1:%d/", port), dir: dir}
	if err := waitReady(fmt.Sprintf("127.0.0.1:%d", port), "", 60*time.Second); err != nil {
		r.stop()
		return nil, err
	}
	return r, nil
}

// procTree lists pid and its descendants.
func procTree(pid int) []int {
	children := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		f := strings.Fields(s[i+2:])
		if len(f) > 2 {
			pp, _ := strconv.Atoi(f[1])
			children[pp] = append(children[pp], p)
		}
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// cpuSeconds is the user+system CPU time of pid and its descendants.
func cpuSeconds(pid int) float64 {
	if pid == 0 {
		return 0
	}
	var ticks int64
	for _, p := range procTree(pid) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		if len(f) > 12 {
			u, _ := strconv.ParseInt(f[11], 10, 64)
			st, _ := strconv.ParseInt(f[12], 10, 64)
			ticks += u + st
		}
	}
	return float64(ticks) / 100 // USER_HZ
}

// rssHWM is the peak RSS in bytes of the process tree (sum of each VmHWM).
func rssHWM(pid int) int64 {
	if pid == 0 {
		return 0
	}
	var total int64
	for _, p := range procTree(pid) {
		f, err := os.Open(fmt.Sprintf("/proc/%d/status", p))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				total += kb << 10
			}
		}
		f.Close()
	}
	return total
}

// resetHWM resets the peak RSS counters of the process tree.
func resetHWM(pid int) {
	for _, p := range procTree(pid) {
		os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", p), []byte("5"), 0)
	}
}
