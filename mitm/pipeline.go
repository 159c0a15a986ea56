package mitm

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"runtime/debug"
	"strings"
	"time"

	"github.com/cafilprox/cafilprox/classifiers"
)

// Response headers Cafilprox adds.
const (
	HeaderRequestID = "X-Request-ID"
	HeaderEcosystem = "X-Cafilprox-Ecosystem"
	HeaderDecision  = "X-Cafilprox-Decision"
	HeaderCache     = "X-Cache"
	HeaderFiltered  = "X-Cafilprox-Filtered"
)

// Pipeline is the http.Handler for intercepted registry requests: r.Host
// names the registry host, r.URL.Path the path on it.
type Pipeline struct {
	Set       *classifiers.Set
	Upstreams *Upstreams
	Transport http.RoundTripper
	Logger    *slog.Logger

	proxy *httputil.ReverseProxy
}

// Init prepares the pipeline; call once before serving.
func (p *Pipeline) Init() {
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	p.proxy = &httputil.ReverseProxy{
		Transport:     p.Transport,
		FlushInterval: -1, // stream every chunk as it arrives
		Rewrite: func(pr *httputil.ProxyRequest) {
			target := pr.In.Context().Value(targetKey{}).(*routed)
			pr.Out.URL = target.upstream
			pr.Out.Host = target.upstream.Host
			pr.Out.Header.Del("Proxy-Authorization")
			pr.Out.Header.Del(HeaderRequestID)
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			target := r.Context().Value(targetKey{}).(*routed)
			writeUpstreamError(w, target, err)
		},
		ErrorLog: nil,
	}
}

type targetKey struct{}

// routed is one request's classification and upstream.
type routed struct {
	id       string
	req      classifiers.Request
	class    classifiers.Classifier
	host     string
	upstream *url.URL
	start    time.Time
}

// ServeHTTP classifies and serves one request.
func (p *Pipeline) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get(HeaderRequestID)
	if id == "" || len(id) > 128 {
		id = newRequestID()
	}
	w.Header().Set(HeaderRequestID, id)
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			p.Logger.Error("panic serving request", "request_id", id, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			http.Error(w, "cafilprox: internal error (request "+id+")", http.StatusInternalServerError)
		}
	}()

	host := classifiers.HostOnly(r.Host)
	c := ClientFrom(r.Context())
	if c.Tunnel != "" && host != c.Tunnel {
		http.Error(w, fmt.Sprintf("cafilprox: Host %q does not match the tunnel to %q", host, c.Tunnel), http.StatusMisdirectedRequest)
		return
	}
	rt := &routed{id: id, host: host, start: time.Now()}
	if cl := p.Set.ForHost(host); cl != nil {
		rt.class = cl
		rt.req = cl.Classify(r)
		rt.req.Ecosystem = cl.Ecosystem()
		w.Header().Set(HeaderEcosystem, rt.req.Ecosystem)
	}
	real := *r.URL
	real.Scheme, real.Host = "https", host
	rt.upstream = p.Upstreams.Map(rt.req.Ecosystem, &real)
	r = r.WithContext(withTarget(r.Context(), rt))
	p.proxy.ServeHTTP(w, r)
	p.Logger.Info("request", "request_id", id, "client", c.IP, "user", c.User, "method", r.Method,
		"host", host, "path", redactPath(r.URL.Path), "ecosystem", rt.req.Ecosystem,
		"package", rt.req.Package, "version", rt.req.Version, "kind", rt.req.Kind,
		"duration", time.Since(rt.start))
}

func newRequestID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// redactPath keeps paths short in logs.
func redactPath(p string) string {
	if len(p) > 256 {
		return p[:256] + "…"
	}
	return p
}

// writeUpstreamError turns a transport failure into a clear 502 (or 504).
func writeUpstreamError(w http.ResponseWriter, rt *routed, err error) {
	status := http.StatusBadGateway
	msg := err.Error()
	var verr *tls.CertificateVerificationError
	switch {
	case errors.As(err, &verr):
		msg = "upstream TLS verification failed: " + msg
	case strings.Contains(msg, "timeout"):
		status = http.StatusGatewayTimeout
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprintf(w, "cafilprox: cannot reach upstream %s for %s: %s (request %s)\n", rt.upstream.Host, rt.host, msg, rt.id)
}

func withTarget(ctx context.Context, rt *routed) context.Context {
	return context.WithValue(ctx, targetKey{}, rt)
}
