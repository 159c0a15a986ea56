package mitm

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"runtime/debug"
	"strings"
	"time"

	"github.com/cafilprox/cafilprox/cache"
	"github.com/cafilprox/cafilprox/classifiers"
	"github.com/cafilprox/cafilprox/rules"
)

// Response headers Cafilprox adds.
const (
	HeaderRequestID = "X-Request-ID"
	HeaderEcosystem = "X-Cafilprox-Ecosystem"
	HeaderDecision  = "X-Cafilprox-Decision"
	HeaderCache     = "X-Cache"
	HeaderFiltered  = "X-Cafilprox-Filtered"
)

// Event describes one served request, for metrics and the audit trail.
type Event struct {
	Time      time.Time
	RequestID string
	Client    Client
	Method    string
	Host      string
	Ecosystem string
	Package   string
	Version   string
	Kind      string
	// Decision is "allow", "deny", "shadow-deny" or "pass" (not judged).
	Decision         string
	Rule, Reason     string
	Cache            string // HIT, MISS, STALE, REVALIDATED, BYPASS or ""
	Status           int
	Bytes            int64
	Filtered         int
	Duration         time.Duration
	UpstreamDuration time.Duration
	Err              string
}

// Observer receives an Event after each request; it must not block.
type Observer interface{ Observe(Event) }

// Seen remembers when versions were first seen upstream and what they
// pointed at (issue: re-tagged versions, untrustworthy publish times).
type Seen interface {
	// Observe records versions of eco/pkg seen in upstream metadata.
	Observe(eco, pkg string, versions []classifiers.Version)
	// Lookup returns when eco/pkg@version was first seen and whether its
	// content reference changed since (ref "" = unknown).
	Lookup(eco, pkg, version, ref string) (firstSeen time.Time, retagged bool)
}

// Downloads durably remembers which package version a download URL named
// in served metadata belongs to, so attribution (see attribution) survives
// restarts. URLs are passed in normalised form. audit.Log implements it.
type Downloads interface {
	RememberDownloads(ctx context.Context, eco, pkg string, urls map[string]string) error
	Download(ctx context.Context, url string) (eco, pkg, version string, ok bool, err error)
}

// Pipeline is the http.Handler for intercepted registry requests: r.Host
// names the registry host, r.URL.Path the path on it.
type Pipeline struct {
	Set       *classifiers.Set
	Upstreams *Upstreams
	Transport http.RoundTripper
	Logger    *slog.Logger
	// Policy returns the current policy; nil (or a nil result) allows all.
	Policy func() *rules.Engine
	// Cache stores artifacts and raw metadata; nil disables caching.
	Cache *cache.Cache
	// MetadataTTL says how long raw metadata of an ecosystem stays fresh.
	MetadataTTL func(eco string) time.Duration
	// Observer, when set, receives one Event per request.
	Observer Observer
	// Seen, when set, tracks first-seen times and content references.
	Seen Seen
	// Downloads, when set, keeps download attributions across restarts.
	Downloads Downloads
	// Internal maps ecosystems to private registries that serve the names
	// the policy's internal block matches; nil or missing = refuse them.
	Internal *Upstreams
	// DenyAudit refuses npm audit requests instead of passing them upstream.
	DenyAudit bool
	// MaxMetadataBytes bounds a metadata document read for filtering
	// (default 512 MiB).
	MaxMetadataBytes int64

	proxy     *httputil.ReverseProxy
	transport http.RoundTripper // Transport with idle timeouts on bodies
	attrib    *attribution
	memo      *ttlCache[*classifiers.Metadata] // parsed version facts
	views     *ttlCache[*filtered]             // filtered metadata responses
	sources   *ttlCache[refusedSource]         // source repositories of refused versions, per client
}

// Init prepares the pipeline; call once before serving.
func (p *Pipeline) Init() {
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	if p.MetadataTTL == nil {
		p.MetadataTTL = func(string) time.Duration { return 5 * time.Minute }
	}
	if p.MaxMetadataBytes == 0 {
		p.MaxMetadataBytes = 512 << 20
	}
	p.transport = idleTransport{next: p.Transport, idle: upstreamIdleTimeout}
	p.attrib = newAttribution(100_000)
	p.memo = newTTLCache[*classifiers.Metadata](4096)
	p.views = newTTLCache[*filtered](64 << 20)
	p.sources = newTTLCache[refusedSource](100_000)
	p.proxy = &httputil.ReverseProxy{
		Transport:     p.transport,
		FlushInterval: -1, // stream every chunk as it arrives
		Rewrite: func(pr *httputil.ProxyRequest) {
			rt := routedFrom(pr.In.Context())
			pr.Out.URL = rt.upstream
			pr.Out.Host = rt.upstream.Host
			pr.Out.Header.Del("Proxy-Authorization")
			pr.Out.Header.Del(HeaderRequestID)
		},
		ModifyResponse: func(resp *http.Response) error {
			rt := routedFrom(resp.Request.Context())
			rt.ev.UpstreamDuration = time.Since(rt.start)
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			rt := routedFrom(r.Context())
			rt.ev.Err = err.Error()
			writeUpstreamError(w, rt, err)
		},
	}
}

type targetKey struct{}

// routed is one request's classification, upstream and event.
type routed struct {
	id       string
	req      classifiers.Request
	class    classifiers.Classifier
	host     string
	real     *url.URL // the URL on the real registry
	upstream *url.URL // where it is fetched from
	index    *indexMode
	client   Client
	offline  bool // never contact upstream (policy explain --online=false)
	start    time.Time
	ev       *Event
}

func withTarget(ctx context.Context, rt *routed) context.Context {
	return context.WithValue(ctx, targetKey{}, rt)
}

func routedFrom(ctx context.Context) *routed {
	return ctx.Value(targetKey{}).(*routed)
}

// ServeHTTP classifies and serves one request.
func (p *Pipeline) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get(HeaderRequestID)
	if id == "" || len(id) > 128 {
		id = newRequestID()
	}
	w.Header().Set(HeaderRequestID, id)
	cw := &countingWriter{ResponseWriter: w}
	c := ClientFrom(r.Context())
	host := classifiers.HostOnly(r.Host)
	rt := &routed{id: id, host: host, client: c, start: time.Now(), index: indexFrom(r.Context())}
	rt.ev = &Event{Time: rt.start, RequestID: id, Client: c, Method: r.Method, Host: host, Decision: "pass"}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			p.Logger.Error("panic serving request", "request_id", id, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			rt.ev.Err = fmt.Sprint("panic: ", v)
			if !cw.wrote {
				http.Error(cw, "cafilprox: internal error (request "+id+")", http.StatusInternalServerError)
			}
		}
		p.finish(rt, cw)
	}()

	if c.Tunnel != "" && host != c.Tunnel {
		http.Error(cw, fmt.Sprintf("cafilprox: Host %q does not match the tunnel to %q", host, c.Tunnel), http.StatusMisdirectedRequest)
		return
	}
	real := *r.URL
	real.Scheme, real.Host = "https", host
	rt.real = &real
	if cl := p.Set.ForHost(host); cl != nil {
		rt.class = cl
		rt.req = cl.Classify(r)
		rt.req.Ecosystem = cl.Ecosystem()
	}
	// Downloads whose URL does not name package and version (Composer
	// dists, CocoaPods sources) are attributed from metadata we served.
	// They are never metadata, and live on hosts no classifier claims or
	// on those ecosystems' own hosts: only those reach the durable index.
	if rt.req.Kind != classifiers.KindArtifact && rt.req.Kind != classifiers.KindMetadata {
		durable := rt.class == nil || rt.req.Ecosystem == classifiers.Composer || rt.req.Ecosystem == classifiers.CocoaPods
		a, ok := p.attribute(r.Context(), real.String(), durable)
		if !ok {
			a, ok = p.attributeByGuess(r.Context(), rt)
		}
		if ok {
			rt.req = a
			rt.class = p.Set.ForEcosystem(a.Ecosystem)
		}
	}
	rt.upstream = p.Upstreams.Map(rt.req.Ecosystem, rt.real)
	// Attributed downloads stay on their own host unless that host belongs
	// to the ecosystem (tests point the whole ecosystem at one fake).
	if p.Set.ForHost(host) == nil || p.Set.ForHost(host).Ecosystem() != rt.req.Ecosystem {
		rt.upstream = p.Upstreams.Map("", rt.real)
	}
	if rt.req.Ecosystem != "" {
		cw.Header().Set(HeaderEcosystem, rt.req.Ecosystem)
	}
	rt.ev.Ecosystem, rt.ev.Package, rt.ev.Version, rt.ev.Kind = rt.req.Ecosystem, rt.req.Package, rt.req.Version, string(rt.req.Kind)
	r = r.WithContext(withTarget(r.Context(), rt))

	if p.refuseInternal(cw, r, rt) {
		return
	}
	if p.refuseGuardedSource(cw, r, rt) {
		return
	}
	if p.routeInternal(rt) {
		// Dependency confusion guard: an internal name is fetched only from
		// the private registry, never judged against the public one.
		rt.ev.Decision, rt.ev.Rule = "allow", "internal"
		cw.Header().Set(HeaderDecision, "internal")
		p.proxy.ServeHTTP(cw, r)
		return
	}
	switch {
	case p.DenyAudit && rt.req.Ecosystem == classifiers.NPM && strings.HasPrefix(rt.real.Path, "/-/npm/v1/security/"):
		p.deny(cw, r, rt, rules.Decision{Rule: "audit", Reason: "npm audit requests are not forwarded (ecosystem \"npm\" { audit = \"deny\" })"})
	case rt.index != nil && rt.req.Kind == classifiers.KindOther && isIndexRewriter(rt.class) && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		p.serveRewrittenOther(cw, r, rt)
	case rt.class == nil || r.Method != http.MethodGet && r.Method != http.MethodHead:
		p.proxy.ServeHTTP(cw, r)
	case rt.req.Kind == classifiers.KindOther || rt.req.Kind == "":
		// Registry files that are neither metadata nor artifacts (cargo
		// config.json, Composer packages.json, the RubyGems index root, Go
		// checksum database tiles) are cached like metadata, so installs
		// from cache keep working while the registry is down.
		rt.req.Variant = "other " + rt.req.Variant
		p.serveCached(cw, r, rt, false, "")
	case rt.req.ChecksumOf != "":
		p.serveChecksum(cw, r, rt)
	case rt.req.Kind == classifiers.KindArtifact || rt.req.Version != "":
		p.serveVersion(cw, r, rt)
	default:
		p.serveMetadata(cw, r, rt)
	}
}

// finish logs the request and hands its event to the observer.
func (p *Pipeline) finish(rt *routed, cw *countingWriter) {
	ev := rt.ev
	ev.Status = cw.status
	if ev.Status == 0 {
		ev.Status = http.StatusOK
	}
	ev.Bytes = cw.n
	ev.Duration = time.Since(rt.start)
	attrs := []any{"request_id", ev.RequestID, "client", ev.Client.IP, "method", ev.Method, "host", ev.Host,
		"status", ev.Status, "bytes", ev.Bytes, "duration", ev.Duration}
	if ev.Client.User != "" {
		attrs = append(attrs, "user", ev.Client.User)
	}
	if ev.Ecosystem != "" {
		attrs = append(attrs, "ecosystem", ev.Ecosystem, "package", pkgAt(ev.Package, ev.Version), "kind", ev.Kind)
	}
	attrs = append(attrs, "decision", ev.Decision)
	if ev.Rule != "" {
		attrs = append(attrs, "rule", ev.Rule, "reason", ev.Reason)
	}
	if ev.Cache != "" {
		attrs = append(attrs, "cache", ev.Cache)
	}
	if ev.Filtered > 0 {
		attrs = append(attrs, "filtered", ev.Filtered)
	}
	if ev.Err != "" {
		attrs = append(attrs, "err", ev.Err)
	}
	level := slog.LevelInfo
	if ev.Status >= 500 {
		level = slog.LevelWarn
	}
	p.Logger.Log(context.Background(), level, "request", attrs...)
	if p.Observer != nil {
		p.Observer.Observe(*ev)
	}
}

func pkgAt(pkg, ver string) string {
	if ver == "" {
		return pkg
	}
	return pkg + "@" + ver
}

func newRequestID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// countingWriter records status and bytes written, and passes Flush on.
type countingWriter struct {
	http.ResponseWriter
	status int
	n      int64
	wrote  bool
}

func (w *countingWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status = code
		if code >= 200 {
			w.wrote = true
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *countingWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.wrote = true
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.n += int64(n)
	return n, err
}

func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *countingWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// refuseInternal refuses an internal name (dependency confusion) before
// anything is asked of the public registry, unless a private upstream
// serves internal names.
func (p *Pipeline) refuseInternal(w http.ResponseWriter, r *http.Request, rt *routed) bool {
	pol := p.policy()
	if pol == nil || rt.req.Package == "" || (p.Internal != nil && p.Internal.Configured(rt.req.Ecosystem)) {
		return false
	}
	if !pol.Internal(rt.req.Ecosystem, rt.req.Package) {
		return false
	}
	d := pol.Decide(rt.subject(rt.req.Version))
	if d.Allow && !d.Shadow {
		return false
	}
	if d.Allow { // shadow mode: logged, served
		rt.record(d)
		return false
	}
	p.deny(w, r, rt, d)
	return true
}

// routeInternal points rt at the private registry when its package is an
// internal name and one is configured for the ecosystem.
func (p *Pipeline) routeInternal(rt *routed) bool {
	pol := p.policy()
	if p.Internal == nil || pol == nil || rt.req.Package == "" || !p.Internal.Configured(rt.req.Ecosystem) {
		return false
	}
	if !pol.Internal(rt.req.Ecosystem, rt.req.Package) {
		return false
	}
	rt.upstream = p.Internal.Map(rt.req.Ecosystem, rt.real)
	return true
}
