package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/cafilprox/cafilprox/dnsredirect"
	"github.com/cafilprox/cafilprox/mitm"
	"github.com/cafilprox/cafilprox/transparent"
)

// startNetworkEnforcement starts what works without client configuration:
// the transparent listeners (SNI / Host routed) and the DNS redirector that
// sends registry names to them. Fatal serve errors go to errc.
func (a *app) startNetworkEnforcement(errc chan<- error) (stop func(), err error) {
	var stops []func()
	stop = func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	defer func() {
		if err != nil {
			stop()
		}
	}()
	cfg := a.cfg
	if t := cfg.Transparent; t != nil {
		if t.HTTPSListen != "" {
			ln, err := net.Listen("tcp", t.HTTPSListen)
			if err != nil {
				return stop, fmt.Errorf("cannot listen on %s (transparent.https_listen): %w", t.HTTPSListen, err)
			}
			stops = append(stops, func() { ln.Close() })
			dial := mitm.UpstreamOptions{Resolver: a.resolver}.Dialer()
			go func() {
				err := transparent.ServeHTTPS(ln, transparent.Config{
					Intercept: a.intercept,
					ServeTLS: func(conn net.Conn, sni string) {
						a.server.ServeTLSConn(conn, mitm.Client{Tunnel: sni})
					},
					Splice: cfg.Egress.UnknownHosts != "deny" || len(cfg.Egress.AllowHosts) > 0,
					Allow:  mitm.Egress{Deny: cfg.Egress.UnknownHosts == "deny", Allow: cfg.Egress.AllowHosts}.Allowed,
					Dial:   dial,
					Logger: a.logger,
				})
				if err != nil {
					errc <- err
				}
			}()
			a.logger.Info("transparent HTTPS listener", "listen", ln.Addr().String())
		}
		if t.HTTPListen != "" {
			ln, err := net.Listen("tcp", t.HTTPListen)
			if err != nil {
				return stop, fmt.Errorf("cannot listen on %s (transparent.http_listen): %w", t.HTTPListen, err)
			}
			srv := transparent.NewHTTPServer(http.HandlerFunc(a.server.ServeTransparentHTTP), a.logger)
			stops = append(stops, func() { srv.Close() })
			go func() {
				if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
					errc <- err
				}
			}()
			a.logger.Info("transparent HTTP listener", "listen", ln.Addr().String())
		}
	}
	if d := cfg.DNS; d != nil {
		var answers []net.IP
		for _, s := range d.Answer {
			ip := net.ParseIP(s)
			if ip == nil {
				return stop, fmt.Errorf("dns.answer: %q is not an IP address", s)
			}
			answers = append(answers, ip)
		}
		srv, err := dnsredirect.New(dnsredirect.Config{
			Listen: d.Listen, Answer: answers, Upstream: d.Upstream, TTL: uint32(d.TTL),
			Intercept: a.intercept, Logger: a.logger,
		})
		if err != nil {
			return stop, err
		}
		if err := srv.Start(); err != nil {
			return stop, fmt.Errorf("dns redirector on %s: %w", d.Listen, err)
		}
		stops = append(stops, func() { srv.Close() })
		a.logger.Info("DNS redirector", "listen", srv.Addr(), "answer", d.Answer, "upstream", srv.Upstreams())
	}
	return stop, nil
}
