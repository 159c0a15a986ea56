package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/cafilprox/cafilprox/ca"
	"github.com/cafilprox/cafilprox/classifiers"
	"github.com/cafilprox/cafilprox/classifiers/all"
	"github.com/cafilprox/cafilprox/config"
	"github.com/cafilprox/cafilprox/mitm"
)

// shutdownGrace bounds how long in-flight requests may finish on SIGTERM.
const shutdownGrace = 25 * time.Second

func runServe(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", stderr)
	var c common
	c.register(fs, true)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{"serve takes no arguments"}
	}
	cfg, err := c.load()
	if err != nil {
		return err
	}
	logger := newLogger(cfg.LogFormat, stderr)

	authority, created, err := ca.LoadOrCreate(caDir(cfg))
	if err != nil {
		return fmt.Errorf("%w (check permissions of %s, or bring your own with `cafilprox ca init --cert F --key F`)", err, caDir(cfg))
	}
	a, err := newApp(cfg, authority, logger)
	if err != nil {
		return err
	}
	defer a.close()

	proxyLn, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("cannot listen on %s (listen): %w", cfg.Listen, err)
	}
	adminLn, err := net.Listen("tcp", cfg.AdminListen)
	if err != nil {
		proxyLn.Close()
		return fmt.Errorf("cannot listen on %s (admin_listen): %w", cfg.AdminListen, err)
	}
	printBanner(stdout, cfg, proxyLn.Addr().String(), adminLn.Addr().String(), created)

	proxySrv := &http.Server{
		Handler:           a.server,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}
	adminSrv := &http.Server{Handler: a.admin, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 2)
	go func() { errc <- proxySrv.Serve(proxyLn) }()
	go func() { errc <- adminSrv.Serve(adminLn) }()
	logger.Info("cafilprox started", "listen", proxyLn.Addr().String(), "admin", adminLn.Addr().String(), "data_dir", cfg.DataDir)

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	select {
	case err := <-errc:
		return fmt.Errorf("server stopped: %w", err)
	case s := <-sigs:
		logger.Info("shutting down", "signal", s.String(), "grace", shutdownGrace)
	}
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	// Stop accepting, let in-flight requests (including those inside
	// intercepted tunnels) finish, then close what remains.
	errProxy := proxySrv.Shutdown(ctx)
	errMITM := a.server.Shutdown(ctx)
	errAdmin := adminSrv.Shutdown(ctx)
	if err := errors.Join(errProxy, errMITM, errAdmin); err != nil {
		logger.Warn("shutdown incomplete", "err", err)
	}
	return nil
}

// app is everything serve wires together.
type app struct {
	cfg    *config.Config
	ca     *ca.CA
	server *mitm.Server
	admin  http.Handler
	close  func()
}

func newApp(cfg *config.Config, authority *ca.CA, logger *slog.Logger) (*app, error) {
	hosts := map[string][]string{}
	bases := map[string]string{}
	var enabled []classifiers.Classifier
	for _, cl := range all.Classifiers() {
		e := cfg.Ecosystem(cl.Ecosystem())
		if e.Disabled {
			continue
		}
		enabled = append(enabled, cl)
		if e.Hosts != nil {
			hosts[e.Name] = e.Hosts
		}
		bases[cl.Ecosystem()] = e.Upstream
	}
	set, err := classifiers.NewSet(enabled, hosts)
	if err != nil {
		return nil, err
	}
	ups, err := mitm.NewUpstreams(bases)
	if err != nil {
		return nil, err
	}
	uo := mitm.UpstreamOptions{CAFile: cfg.UpstreamCAFile, Proxy: cfg.UpstreamProxy}
	transport, err := mitm.NewTransport(uo)
	if err != nil {
		return nil, err
	}
	extra := map[string]bool{}
	for _, h := range cfg.Egress.InterceptHosts {
		extra[strings.ToLower(h)] = true
	}
	intercept := func(host string) bool { return set.ForHost(host) != nil || extra[host] }

	pipeline := &mitm.Pipeline{Set: set, Upstreams: ups, Transport: transport, Logger: logger}
	pipeline.Init()
	issuer := ca.NewIssuer(authority, 0)
	forward := &httputil.ReverseProxy{
		Transport: transport,
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.Out.Header.Del("Proxy-Authorization") },
	}
	srv := mitm.NewServer(mitm.Options{
		Issuer:     issuer,
		Intercept:  intercept,
		Handler:    pipeline,
		Egress:     mitm.Egress{Deny: cfg.Egress.UnknownHosts == "deny", Allow: cfg.Egress.AllowHosts},
		TunnelDial: uo.Dialer(),
		Forward:    forward,
		Users:      authUsers(cfg),
		Logger:     logger,
	})
	return &app{
		cfg:    cfg,
		ca:     authority,
		server: srv,
		admin:  basicAdmin(authority),
		close:  func() {},
	}, nil
}

func authUsers(cfg *config.Config) map[string]string {
	if cfg.Auth == nil {
		return nil
	}
	return cfg.Auth.Users
}

// basicAdmin serves the endpoints every release has.
func basicAdmin(authority *ca.CA) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"ok"}`+"\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ready":true}`+"\n")
	})
	mux.HandleFunc("GET /ca.pem", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-pem-file")
		w.Write(authority.PEM())
	})
	return mux
}

func newLogger(format string, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: slog.LevelInfo}
	if os.Getenv("CAFILPROX_DEBUG") != "" {
		opts.Level = slog.LevelDebug
	}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// printBanner tells a person how to point clients at the proxy.
func printBanner(w io.Writer, cfg *config.Config, proxyAddr, adminAddr string, created bool) {
	dir, _ := filepath.Abs(caDir(cfg))
	if created {
		fmt.Fprintf(w, "cafilprox: created a new root CA in %s (key stays there, mode 0600)\n", dir)
	}
	fmt.Fprintf(w, "cafilprox: proxy on http://%s, admin on http://%s\n", proxyAddr, adminAddr)
	fmt.Fprintf(w, "  point this shell's clients at it:   eval \"$(cafilprox env%s)\"\n", configFlag(cfg))
	fmt.Fprintf(w, "  CA certificate for other machines:  curl -o cafilprox-ca.pem http://%s/ca.pem\n", adminAddr)
	fmt.Fprintf(w, "  or trust %s/%s in your OS store (see certs/README.md)\n", dir, ca.CertFile)
}

func configFlag(cfg *config.Config) string {
	if cfg.File == config.DefaultName {
		return ""
	}
	return " --config " + cfg.File
}

func runPolicy(args []string, stdout, stderr io.Writer) error {
	return errors.New("policy commands are not available in this build yet")
}

func runCache(args []string, stdout, stderr io.Writer) error {
	return errors.New("cache commands are not available in this build yet")
}

func runAudit(args []string, stdout, stderr io.Writer) error {
	return errors.New("audit commands are not available in this build yet")
}
