package mitm

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// UpstreamOptions configures the transport used to reach registries.
type UpstreamOptions struct {
	// CAFile adds a PEM bundle to the system roots (private mirrors, tests).
	CAFile string
	// Proxy chains to a corporate proxy; empty connects directly. The
	// process environment (HTTPS_PROXY) is deliberately ignored: a runner that
	// exported our own address would make the proxy call itself.
	Proxy string
	// Resolver resolves upstream host names; nil uses the system resolver.
	// With the DNS redirector running, pass one that bypasses it.
	Resolver *net.Resolver
}

// NewTransport returns the upstream transport: TLS always verified (system
// roots plus CAFile), no environment proxy, no transparent decompression
// (clients get the bytes and Content-Encoding the registry sent), bounded
// timeouts and pooled connections.
func NewTransport(o UpstreamOptions) (*http.Transport, error) {
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("mitm: upstream_ca_file: %w", err)
		}
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("mitm: upstream_ca_file %s holds no PEM certificate", o.CAFile)
		}
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Resolver: o.Resolver}
	t := &http.Transport{
		DialContext:           dialer.DialContext,
		TLSClientConfig:       &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		DisableCompression:    true,
		ForceAttemptHTTP2:     true,
		Proxy:                 nil,
	}
	if o.Proxy != "" {
		u, err := url.Parse(o.Proxy)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("mitm: invalid upstream_proxy %q", o.Proxy)
		}
		t.Proxy = http.ProxyURL(u)
	}
	return t, nil
}

// Dialer returns a dial function for raw tunnels, honouring the same
// resolver and (for CONNECT chaining) nothing else.
func (o UpstreamOptions) Dialer() func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Resolver: o.Resolver}
	return d.DialContext
}

// Upstreams maps a request on a registry host to the configured upstream.
type Upstreams struct {
	// byEco holds the replacement base URL per ecosystem; missing = real host.
	byEco map[string]*url.URL
}

// NewUpstreams parses per-ecosystem upstream base URLs.
func NewUpstreams(bases map[string]string) (*Upstreams, error) {
	u := &Upstreams{byEco: map[string]*url.URL{}}
	for eco, base := range bases {
		if base == "" {
			continue
		}
		p, err := url.Parse(base)
		if err != nil || p.Host == "" || (p.Scheme != "https" && p.Scheme != "http") {
			return nil, fmt.Errorf("mitm: invalid upstream %q for %s", base, eco)
		}
		p.Path = strings.TrimSuffix(p.Path, "/")
		u.byEco[eco] = p
	}
	return u, nil
}

// Map turns a real registry URL into the URL to fetch for ecosystem eco.
func (u *Upstreams) Map(eco string, real *url.URL) *url.URL {
	out := *real
	out.Scheme = "https"
	if base, ok := u.byEco[eco]; ok {
		out.Scheme = base.Scheme
		out.Host = base.Host
		out.Path = base.Path + real.Path
		if real.RawPath != "" {
			out.RawPath = base.Path + real.RawPath
		}
	}
	return &out
}

// Configured reports whether eco has a replacement upstream.
func (u *Upstreams) Configured(eco string) bool {
	_, ok := u.byEco[eco]
	return ok
}
