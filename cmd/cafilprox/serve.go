package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/cafilprox/cafilprox/ca"
	"github.com/cafilprox/cafilprox/config"
	"github.com/cafilprox/cafilprox/logx"
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
		Handler:  a.front,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}
	a.limits.ConfigureServer(proxySrv)
	adminSrv := &http.Server{Handler: a.admin, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 4)
	go func() { errc <- proxySrv.Serve(proxyLn) }()
	go func() { errc <- adminSrv.Serve(adminLn) }()
	stopExtra, err := a.startNetworkEnforcement(errc)
	if err != nil {
		proxySrv.Close()
		adminSrv.Close()
		return err
	}
	defer stopExtra()
	logger.Info("cafilprox started", "listen", proxyLn.Addr().String(), "admin", adminLn.Addr().String(), "data_dir", cfg.DataDir)

	ctx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	go a.watchConfig(ctx)

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
wait:
	for {
		select {
		case err := <-errc:
			return fmt.Errorf("server stopped: %w", err)
		case s := <-sigs:
			if s == syscall.SIGHUP {
				a.reload()
				continue
			}
			logger.Info("shutting down", "signal", s.String(), "grace", shutdownGrace)
			break wait
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	// Stop accepting, let in-flight requests (including those inside
	// intercepted tunnels) finish, then close what remains.
	// All listeners close at once; each server then waits for its own
	// in-flight requests.
	errs := make(chan error, 3)
	for _, shutdown := range []func(context.Context) error{proxySrv.Shutdown, a.server.Shutdown, adminSrv.Shutdown} {
		go func() { errs <- shutdown(sctx) }()
	}
	var all []error
	for range 3 {
		all = append(all, <-errs)
	}
	if err := errors.Join(all...); err != nil {
		logger.Warn("shutdown incomplete", "err", err)
	}
	return nil
}

// newLogger builds the process logger; attributes naming secrets
// (passwords, tokens, Authorization) are redacted by logx.
func newLogger(format string, w io.Writer) *slog.Logger {
	level := slog.LevelInfo
	if os.Getenv("CAFILPROX_DEBUG") != "" {
		level = slog.LevelDebug
	}
	l, err := logx.NewLogger(format, w, level)
	if err != nil {
		l, _ = logx.NewLogger("text", w, level)
	}
	return l
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
	if cfg.Admin.Token == "" {
		tok, _ := filepath.Abs(adminTokenPath(cfg))
		fmt.Fprintf(w, "  admin API (/api/...) bearer token:  in %s (used by this CLI)\n", tok)
	}
}

func configFlag(cfg *config.Config) string {
	if cfg.File == config.DefaultName {
		return ""
	}
	return " --config " + cfg.File
}
