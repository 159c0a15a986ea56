// Command bench measures Cafilprox side by side with going direct, Squid
// (ssl-bump + memory cache), mitmproxy (plain forward proxy) and Verdaccio
// (npm cache) against a local fake registry on loopback, and writes
// BENCHMARKS.md. It is a separate main package so that the unit-test run
// never starts it; bench/run.sh is the one command that regenerates results.
//
//	bench record-npm -lock package-lock.json -dir DIR
//	bench run -out results.json [flags]
//	bench report -in results.json -md BENCHMARKS.md -png plot.png
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: bench record-npm|run|report [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "record-npm":
		fs := flag.NewFlagSet("record-npm", flag.ExitOnError)
		lock := fs.String("lock", "", "package-lock.json of the workload project")
		dir := fs.String("dir", "", "output directory")
		fs.Parse(os.Args[2:])
		err = recordNPM(context.Background(), *lock, *dir)
	case "run":
		stopOnSignal()
		err = runCmd(os.Args[2:])
	case "report":
		err = reportCmd(os.Args[2:])
	default:
		err = fmt.Errorf("bench: unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// Results is everything one run measured; report renders it.
type Results struct {
	Started  time.Time         `json:"started"`
	Finished time.Time         `json:"finished"`
	Machine  map[string]string `json:"machine"`
	Versions map[string]string `json:"versions"`
	Skipped  map[string]string `json:"skipped"`
	Config   map[string]string `json:"config"`
	Peers    []string          `json:"peers"`
	Hits     []HitsRun         `json:"hits"`
	Tunnels  []TunnelRun       `json:"tunnels"`
	Streams  []StreamRun       `json:"streams"`
	Meta     []MetaRun         `json:"metadata"`
	Workload []WorkloadRun     `json:"workload"`
}

// HitsRun is one repetition of the warm-tunnel metadata-hit measurement.
type HitsRun struct {
	Peer       string     `json:"peer"`
	Latency    loadResult `json:"latency"`    // 1 connection, sequential
	Throughput loadResult `json:"throughput"` // many connections, closed loop
	ProxyCPU   float64    `json:"proxy_cpu_s"`
	PerCore    float64    `json:"per_core"` // requests per proxy CPU second
}

// TunnelRun is one repetition of the new-tunnel measurement.
type TunnelRun struct {
	Peer     string     `json:"peer"`
	Load     loadResult `json:"load"`
	ProxyCPU float64    `json:"proxy_cpu_s"`
	PerCore  float64    `json:"per_core"`
}

// MetaRun is the latency of one packument size: the first (cold) request and
// then sequential warm requests on one keep-alive connection.
type MetaRun struct {
	Peer  string        `json:"peer"`
	Size  string        `json:"size"`
	Bytes int64         `json:"bytes"`
	Cold  time.Duration `json:"cold_ns"`
	Warm  loadResult    `json:"warm"`
	Err   string        `json:"error,omitempty"`
}

// StreamRun is one large download with the proxy's peak RSS while serving it.
type StreamRun struct {
	Peer    string       `json:"peer"`
	Size    string       `json:"size"`
	Phase   string       `json:"phase"` // cold | warm
	Result  streamResult `json:"result"`
	PeakRSS int64        `json:"peak_rss"`
	// Upstream is how many times the fake registry had served this URL
	// after the download (cold: 1; warm: still 1 when served from cache).
	Upstream int `json:"upstream_fetches"`
}

// WorkloadRun is one real-client run.
type WorkloadRun struct {
	// Network is "wan" when the registry answered after WANLatency, ""
	// (LAN) when it answered at once.
	Network string        `json:"network,omitempty"`
	Peer    string        `json:"peer"`
	Tool    string        `json:"tool"`  // npm | go
	Phase   string        `json:"phase"` // cold | warm
	Elapsed time.Duration `json:"elapsed_ns"`
	Err     string        `json:"error,omitempty"`
}

type runFlags struct {
	work, out, cafilprox, verdaccio, regIP string
	npmData, npmProject, goData, goProject string
	peers, sizes, slowSizes                string
	reps, conns, tunnelConns, workloadReps int
	wanLatency                             time.Duration
	duration                               time.Duration
	skipMicro, skipWorkload                bool
	profileDir                             string
}

func runCmd(args []string) error {
	var f runFlags
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	fs.StringVar(&f.work, "work", "", "scratch directory (default: a new temp dir)")
	fs.StringVar(&f.out, "out", "results.json", "results file")
	fs.StringVar(&f.cafilprox, "cafilprox", "", "cafilprox binary")
	fs.StringVar(&f.verdaccio, "verdaccio", "", "verdaccio binary (empty: skip Verdaccio)")
	fs.StringVar(&f.regIP, "registry-ip", "127.0.0.77", "loopback address the fake registry listens on (port 443)")
	fs.StringVar(&f.npmData, "npm-data", "", "recorded npm data (record-npm)")
	fs.StringVar(&f.npmProject, "npm-project", "", "directory with package.json and package-lock.json")
	fs.StringVar(&f.goData, "go-data", "", "GOPROXY-layout directory of recorded modules")
	fs.StringVar(&f.goProject, "go-project", "", "directory with go.mod and go.sum")
	fs.StringVar(&f.peers, "peers", "direct,cafilprox,squid,mitmproxy,verdaccio", "peers to measure")
	fs.StringVar(&f.sizes, "sizes", "10k,1m,100m,1g", "artifact sizes for fast peers")
	fs.StringVar(&f.slowSizes, "slow-sizes", "10k,1m,100m", "artifact sizes for mitmproxy and Verdaccio")
	fs.IntVar(&f.reps, "reps", 3, "repetitions of each micro measurement")
	fs.IntVar(&f.workloadReps, "workload-reps", 3, "repetitions of each real-client workload")
	fs.IntVar(&f.conns, "conns", 16, "connections for the hit throughput load")
	fs.IntVar(&f.tunnelConns, "tunnel-conns", 8, "concurrent clients opening tunnels")
	fs.DurationVar(&f.duration, "duration", 5*time.Second, "duration of each load phase")
	fs.StringVar(&f.profileDir, "profile-dir", "", "with a pprof-enabled cafilprox build (bench/pprof_hook.go.txt), save CPU profiles of its hit and tunnel runs here")
	fs.BoolVar(&f.skipMicro, "skip-micro", false, "skip hits/tunnels/streams")
	fs.BoolVar(&f.skipWorkload, "skip-workload", false, "skip npm install / go mod download")
	fs.DurationVar(&f.wanLatency, "wan-latency", 20*time.Millisecond, "also run the real-client workloads with every registry response delayed this long (a registry across a WAN); 0 = LAN only")
	fs.Parse(args)
	if f.cafilprox == "" {
		return fmt.Errorf("bench: -cafilprox is required")
	}
	if f.work == "" {
		d, err := os.MkdirTemp("", "cafilprox-bench-")
		if err != nil {
			return err
		}
		f.work = d
	}
	if err := os.MkdirAll(f.work, 0o755); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	os.Chmod(f.work, 0o755)

	ca, err := newFakeCA(net.ParseIP(f.regIP))
	if err != nil {
		return err
	}
	e := &env{work: f.work, regIP: f.regIP, regCAFile: filepath.Join(f.work, "fake-registry-ca.pem"), cafilprox: f.cafilprox, verdaccio: f.verdaccio}
	if f.profileDir != "" {
		e.pprofAddr = fmt.Sprintf("127.0.0.1:%d", freePort())
		os.MkdirAll(f.profileDir, 0o755)
	}
	if err := os.WriteFile(e.regCAFile, ca.certPEM, 0o644); err != nil {
		return err
	}
	reg := newRegistry(f.npmData, f.goData)
	srv, _, err := serveRegistry(f.regIP+":443", reg, ca)
	if err != nil {
		return err
	}
	srv.ErrorLog = log.New(io.Discard, "", 0)
	defer srv.Close()

	res := &Results{Started: time.Now().UTC(), Machine: machineInfo(), Versions: versions(f), Skipped: map[string]string{},
		Config: map[string]string{
			"reps": fmt.Sprint(f.reps), "workload_reps": fmt.Sprint(f.workloadReps), "wan_latency": f.wanLatency.String(), "conns": fmt.Sprint(f.conns),
			"tunnel_conns": fmt.Sprint(f.tunnelConns), "duration": f.duration.String(), "sizes": f.sizes, "slow_sizes": f.slowSizes,
		}}
	all := map[string]peer{
		"direct":    {name: "direct", kind: "direct"},
		"cafilprox": {name: "cafilprox", kind: "forward", start: startCafilprox},
		"squid":     {name: "squid", kind: "forward", start: startSquid},
		"mitmproxy": {name: "mitmproxy", kind: "forward", start: startMitmproxy},
		"verdaccio": {name: "verdaccio", kind: "registry", npmOnly: true, start: startVerdaccio},
	}
	var peers []peer
	for _, name := range strings.Split(f.peers, ",") {
		p, ok := all[name]
		if !ok {
			return fmt.Errorf("bench: unknown peer %q", name)
		}
		if why := unavailable(p, f); why != "" {
			res.Skipped[name] = why
			continue
		}
		peers = append(peers, p)
		res.Peers = append(res.Peers, name)
	}
	res.Skipped["athens"] = "not available: the Go module proxy reachable here does not serve github.com/gomods/athens (`go list -m -versions` and /@v/list return \"not available\"), so `go install github.com/gomods/athens/cmd/proxy@<version>` cannot run"

	save := func() {
		b, _ := json.MarshalIndent(res, "", "  ")
		os.WriteFile(f.out, b, 0o644)
	}
	version := 1
	for _, p := range peers {
		if f.skipMicro {
			break
		}
		logf("== %s: micro benchmarks", p.name)
		r, t, err := startPeer(e, p, ca)
		if err != nil {
			res.Skipped[p.name] = "failed to start: " + err.Error()
			continue
		}
		current.Store(r)
		// Prime the metadata cache, then measure.
		if _, err := get(context.Background(), &http.Client{Transport: t.transport(true)}, t.base+"/bench-meta-2k"); err != nil {
			logf("prime %s: %v", p.name, err)
		}
		for rep := range f.reps {
			lat := runLoad(t, "/bench-meta-2k", 1, f.duration/2, 3000, true)
			c0 := cpuSeconds(r.pid())
			prof := profile(e, p, rep, f.profileDir, "hits", f.duration)
			thr := runLoad(t, "/bench-meta-2k", f.conns, f.duration, 0, true)
			prof()
			cpu := cpuSeconds(r.pid()) - c0
			h := HitsRun{Peer: p.name, Latency: lat, Throughput: thr, ProxyCPU: cpu}
			if cpu > 0 {
				h.PerCore = float64(thr.Requests) / cpu
			}
			res.Hits = append(res.Hits, h)
			logf("hits %s rep %d: p50 %v p99 %v, %.0f req/s, %.0f req/s per proxy core (errors %d %s)", p.name, rep, lat.P50, lat.P99, thr.PerSec, h.PerCore, thr.Errors+lat.Errors, thr.FirstErr+lat.FirstErr)
			if p.kind == "registry" {
				continue // plain HTTP: there is no TLS tunnel to open
			}
			c0 = cpuSeconds(r.pid())
			prof = profile(e, p, rep, f.profileDir, "tunnels", f.duration)
			tun := runLoad(t, "/bench-meta-2k", f.tunnelConns, f.duration, 0, false)
			prof()
			cpu = cpuSeconds(r.pid()) - c0
			tr := TunnelRun{Peer: p.name, Load: tun, ProxyCPU: cpu}
			if cpu > 0 {
				tr.PerCore = float64(tun.Requests) / cpu
			}
			res.Tunnels = append(res.Tunnels, tr)
			logf("tunnels %s rep %d: %.0f/s, %.0f per proxy core (errors %d %s)", p.name, rep, tun.PerSec, tr.PerCore, tun.Errors, tun.FirstErr)
		}
		for _, size := range []string{"100k", "1m", "10m"} {
			path := "/bench-meta-" + size
			c := &http.Client{Transport: t.transport(true), Timeout: time.Minute}
			t0 := time.Now()
			n, err := get(context.Background(), c, t.base+path)
			mr := MetaRun{Peer: p.name, Size: size, Bytes: n, Cold: time.Since(t0)}
			c.CloseIdleConnections()
			if err != nil {
				mr.Err = err.Error()
			} else {
				mr.Warm = runLoad(t, path, 1, 5*time.Second, 20, true)
			}
			res.Meta = append(res.Meta, mr)
			logf("metadata %s %s (%d bytes): cold %v, warm p50 %v p99 %v %s", p.name, size, n, mr.Cold, mr.Warm.P50, mr.Warm.P99, mr.Err)
		}
		sizes := f.sizes
		if p.name == "mitmproxy" || p.name == "verdaccio" {
			sizes = f.slowSizes
		}
		for _, size := range strings.Split(sizes, ",") {
			for rep := range f.reps {
				if size == "1g" && rep > 0 && p.name != "cafilprox" {
					break // 1 GB once for peers, every repetition for Cafilprox
				}
				path := fmt.Sprintf("/bench-art-%s/-/bench-art-%s-1.0.%d.tgz", size, size, version)
				u := t.base + path
				version++
				for _, phase := range []string{"cold", "warm"} {
					resetHWM(r.pid())
					prof := func() {}
					if size == "1g" {
						prof = profile(e, p, rep, f.profileDir, "stream-"+phase, 4*time.Second)
					}
					sr := stream(t, u)
					prof()
					rss := rssHWM(r.pid())
					ups := reg.artifactFetches(path)
					if p.name == "verdaccio" {
						ups = reg.artifactFetches("/verdaccio" + path)
					}
					res.Streams = append(res.Streams, StreamRun{Peer: p.name, Size: size, Phase: phase, Result: sr, PeakRSS: rss, Upstream: ups})
					logf("stream %s %s %s: %.0f MB/s ttfb %v rss %d MB x-cache %q upstream fetches %d %s", p.name, size, phase, sr.MBps, sr.TTFB, rss>>20, sr.Result(), ups, sr.Err)
				}
			}
		}
		r.stop()
		save()
	}
	networks := []string{""}
	if f.wanLatency > 0 {
		networks = append(networks, "wan")
	}
	for _, network := range networks {
		if f.skipWorkload {
			break
		}
		reg.setLatency(0)
		if network == "wan" {
			reg.setLatency(f.wanLatency)
		}
		for _, p := range peers {
			for rep := range f.workloadReps {
				logf("== %s: workloads rep %d %s", p.name, rep, network)
				r, _, err := startPeer(e, p, ca)
				if err != nil {
					res.Skipped[p.name+" workload"] = "failed to start: " + err.Error()
					break
				}
				current.Store(r)
				for _, phase := range []string{"cold", "warm"} {
					if f.npmProject != "" {
						prof := profile(e, p, rep, f.profileDir, "npm-"+phase, 8*time.Second)
						d, err := npmInstall(e, p, r, f.npmProject)
						prof()
						w := WorkloadRun{Network: network, Peer: p.name, Tool: "npm", Phase: phase, Elapsed: d}
						if err != nil {
							w.Err = err.Error()
						}
						res.Workload = append(res.Workload, w)
						logf("npm install %s %s %s: %v %s", p.name, phase, network, d, w.Err)
					}
					if f.goProject != "" && !p.npmOnly {
						d, err := goModDownload(e, p, r, f.goProject)
						w := WorkloadRun{Network: network, Peer: p.name, Tool: "go", Phase: phase, Elapsed: d}
						if err != nil {
							w.Err = err.Error()
						}
						res.Workload = append(res.Workload, w)
						logf("go mod download %s %s %s: %v %s", p.name, phase, network, d, w.Err)
					}
				}
				r.stop()
				save()
			}
		}
	}
	res.Finished = time.Now().UTC()
	res.Machine["loadavg_end"] = loadavg()
	save()
	return nil
}

// profile starts a CPU profile of Cafilprox for the first repetition of a
// load phase and returns a function that waits for it to be saved.
func profile(e *env, p peer, rep int, dir, name string, d time.Duration) func() {
	if e.pprofAddr == "" || p.name != "cafilprox" || rep != 0 {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		secs := max(1, int(d.Seconds())-1)
		resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", e.pprofAddr, secs))
		if err != nil {
			logf("profile %s: %v", name, err)
			return
		}
		defer resp.Body.Close()
		f, err := os.Create(filepath.Join(dir, "cafilprox-"+name+".pprof"))
		if err != nil {
			logf("profile %s: %v", name, err)
			return
		}
		io.Copy(f, resp.Body)
		f.Close()
	}()
	return func() { <-done }
}

// Result abbreviates the X-Cache header for logs.
func (s streamResult) Result() string { return s.Cache }

// current is the peer running now, stopped if the harness is interrupted.
var current atomic.Pointer[running]

func stopOnSignal() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ch
		current.Load().stop()
		os.Exit(130)
	}()
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, time.Now().UTC().Format("15:04:05 ")+format+"\n", args...)
}

// startPeer starts p (nothing for direct) and returns how clients reach it.
func startPeer(e *env, p peer, ca *fakeCA) (*running, target, error) {
	switch p.kind {
	case "direct":
		roots, err := loadRoots(e.regCAFile)
		return nil, target{base: "https://registry.npmjs.org", dialAddr: e.regIP + ":443", roots: roots}, err
	case "registry":
		r, err := p.start(e)
		if err != nil {
			return nil, target{}, err
		}
		return r, target{base: strings.TrimSuffix(r.registry, "/")}, nil
	default:
		r, err := p.start(e)
		if err != nil {
			return nil, target{}, err
		}
		roots, err := loadRoots(r.caFile)
		if err != nil {
			r.stop()
			return nil, target{}, err
		}
		return r, target{proxy: r.proxy, base: "https://registry.npmjs.org", roots: roots}, nil
	}
}

func unavailable(p peer, f runFlags) string {
	bin := map[string]string{"squid": "squid", "mitmproxy": "mitmdump"}[p.name]
	if bin != "" {
		if _, err := exec.LookPath(bin); err != nil {
			return "not available: " + bin + " not installed"
		}
	}
	if p.name == "verdaccio" && f.verdaccio == "" {
		return "not available: no verdaccio binary given"
	}
	return ""
}

// npmInstall runs `npm install` of the project in a fresh directory with an
// empty npm cache, so only the proxy's cache state differs between runs.
func npmInstall(e *env, p peer, r *running, project string) (time.Duration, error) {
	dir, err := os.MkdirTemp(e.work, "npm-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	for _, f := range []string{"package.json", "package-lock.json"} {
		b, err := os.ReadFile(filepath.Join(project, f))
		if err != nil {
			return 0, fmt.Errorf("bench: %w", err)
		}
		os.WriteFile(filepath.Join(dir, f), b, 0o644)
	}
	os.WriteFile(filepath.Join(dir, ".npmrc"), nil, 0o644)
	envv := []string{
		"npm_config_cache=" + filepath.Join(dir, ".cache"),
		"npm_config_userconfig=" + filepath.Join(dir, ".npmrc"),
		"npm_config_audit=false", "npm_config_fund=false", "npm_config_update_notifier=false",
		"npm_config_loglevel=error",
	}
	switch p.kind {
	case "direct":
		envv = append(envv, "npm_config_registry=https://"+e.regIP+"/", "npm_config_cafile="+e.regCAFile)
	case "registry":
		envv = append(envv, "npm_config_registry="+r.registry)
	default:
		envv = append(envv, "npm_config_registry=https://registry.npmjs.org/", "npm_config_https_proxy="+r.proxy,
			"npm_config_proxy="+r.proxy, "npm_config_cafile="+r.caFile)
	}
	cmd := exec.Command("npm", "install", "--ignore-scripts", "--no-audit", "--no-fund")
	cmd.Dir = dir
	cmd.Env = append(cleanEnv(), envv...)
	t0 := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(t0)
	if err != nil {
		return d, fmt.Errorf("bench: npm install: %v: %s", err, tail(out))
	}
	n, _ := filepath.Glob(filepath.Join(dir, "node_modules", "*", "package.json"))
	s, _ := filepath.Glob(filepath.Join(dir, "node_modules", "@*", "*", "package.json"))
	if len(n)+len(s) < 100 {
		return d, fmt.Errorf("bench: npm install: only %d packages installed", len(n)+len(s))
	}
	return d, nil
}

// goModDownload runs `go mod download` of the project with an empty module cache.
func goModDownload(e *env, p peer, r *running, project string) (time.Duration, error) {
	dir, err := os.MkdirTemp(e.work, "gomod-")
	if err != nil {
		return 0, err
	}
	modcache := filepath.Join(dir, "modcache")
	defer func() {
		exec.Command("chmod", "-R", "u+w", dir).Run()
		os.RemoveAll(dir)
	}()
	for _, f := range []string{"go.mod", "go.sum"} {
		b, err := os.ReadFile(filepath.Join(project, f))
		if err != nil {
			return 0, fmt.Errorf("bench: %w", err)
		}
		os.WriteFile(filepath.Join(dir, f), b, 0o644)
	}
	envv := []string{"GOMODCACHE=" + modcache, "GOFLAGS=-mod=mod", "GOSUMDB=off", "GOTOOLCHAIN=local", "GONOPROXY=", "GOPRIVATE="}
	switch p.kind {
	case "direct":
		envv = append(envv, "GOPROXY=https://"+e.regIP, "SSL_CERT_FILE="+e.regCAFile)
	default:
		envv = append(envv, "GOPROXY=https://proxy.golang.org", "HTTPS_PROXY="+r.proxy, "SSL_CERT_FILE="+r.caFile)
	}
	cmd := exec.Command("go", "mod", "download")
	cmd.Dir = dir
	cmd.Env = append(cleanEnv(), envv...)
	t0 := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(t0)
	if err != nil {
		return d, fmt.Errorf("bench: go mod download: %v: %s", err, tail(out))
	}
	return d, nil
}

// cleanEnv is the environment without proxy and CA variables, which each
// run sets itself.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch strings.ToUpper(k) {
		case "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "ALL_PROXY", "NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE", "SSL_CERT_DIR",
			"GOPROXY", "GOFLAGS", "GOMODCACHE", "GOSUMDB", "GONOSUMDB":
			continue
		}
		if strings.HasPrefix(strings.ToLower(k), "npm_config_") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

func tail(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 600 {
		s = "…" + s[len(s)-600:]
	}
	return s
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

func machineInfo() map[string]string {
	m := map[string]string{"nproc": fmt.Sprint(runtime.NumCPU()), "loadavg_start": loadavg(), "go": runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				m["cpu"] = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		m["memory"] = strings.TrimSpace(strings.TrimPrefix(strings.SplitN(string(b), "\n", 2)[0], "MemTotal:"))
	}
	if out, err := exec.Command("uname", "-sr").Output(); err == nil {
		m["kernel"] = strings.TrimSpace(string(out))
	}
	return m
}

func firstLine(name string, args ...string) string {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil && len(out) == 0 {
		return ""
	}
	l, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return l
}

func versions(f runFlags) map[string]string {
	v := map[string]string{
		"cafilprox": "working tree build (" + filepath.Base(f.cafilprox) + ", " + runtime.Version() + ")",
		"squid":     firstLine("squid", "-v"),
		"mitmproxy": firstLine("mitmdump", "--version"),
		"node":      firstLine("node", "--version"),
		"npm":       firstLine("npm", "--version"),
		"go":        firstLine("go", "version"),
		"gnuplot":   firstLine("gnuplot", "--version"),
	}
	if f.verdaccio != "" {
		v["verdaccio"] = firstLine(f.verdaccio, "--version")
	}
	for k, s := range v {
		if s == "" {
			delete(v, k)
		}
	}
	return v
}
