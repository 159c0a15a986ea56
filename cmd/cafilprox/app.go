package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cafilprox/cafilprox/admin"
	"github.com/cafilprox/cafilprox/audit"
	"github.com/cafilprox/cafilprox/ca"
	"github.com/cafilprox/cafilprox/cache"
	"github.com/cafilprox/cafilprox/classifiers"
	"github.com/cafilprox/cafilprox/classifiers/all"
	"github.com/cafilprox/cafilprox/config"
	"github.com/cafilprox/cafilprox/dnsredirect"
	"github.com/cafilprox/cafilprox/limits"
	"github.com/cafilprox/cafilprox/metrics"
	"github.com/cafilprox/cafilprox/mitm"
	"github.com/cafilprox/cafilprox/rules"
	"github.com/cafilprox/cafilprox/rules/feed"
	"github.com/cafilprox/cafilprox/rules/typosquat"
)

// app is everything serve wires together.
type app struct {
	cfg     *config.Config
	ca      *ca.CA
	logger  *slog.Logger
	metrics *metrics.Metrics
	audit   *audit.Log
	cache   *cache.Cache
	pipe    *mitm.Pipeline
	offline bool
	set     *classifiers.Set
	server  *mitm.Server
	front   http.Handler // forward listener: proxy + index-URL mode, behind limits
	admin   http.Handler
	limits  limits.Config

	intercept func(host string) bool
	resolver  *net.Resolver

	policy    atomic.Pointer[rules.Engine]
	policyErr atomic.Pointer[string]
	reloadMu  sync.Mutex
	feedStop  context.CancelFunc
	feedMu    sync.Mutex
	feeds     map[string]openFeed // by feed name, reused across reloads

	closers []func()
}

func newApp(cfg *config.Config, authority *ca.CA, logger *slog.Logger) (*app, error) {
	a := &app{cfg: cfg, ca: authority, logger: logger, metrics: metrics.New()}
	ok := false
	defer func() {
		if !ok {
			a.close()
		}
	}()

	// Registries and where they are fetched from.
	hosts := map[string][]string{}
	bases := map[string]string{}
	internalBases := map[string]string{}
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
		internalBases[cl.Ecosystem()] = e.InternalUpstream
	}
	set, err := classifiers.NewSet(enabled, hosts)
	if err != nil {
		return nil, err
	}
	a.set = set
	internalUps, err := mitm.NewUpstreams(internalBases)
	if err != nil {
		return nil, err
	}
	ups, err := mitm.NewUpstreams(bases)
	if err != nil {
		return nil, err
	}
	extra := map[string]bool{}
	for _, h := range cfg.Egress.InterceptHosts {
		extra[strings.ToLower(h)] = true
	}
	a.intercept = func(host string) bool { return set.ForHost(host) != nil || extra[host] }

	// The proxy's own lookups never go through the DNS redirector.
	if cfg.DNS != nil {
		a.resolver = dnsredirect.NewResolver(cfg.DNS.Upstream)
	}
	uo := mitm.UpstreamOptions{CAFile: cfg.UpstreamCAFile, Proxy: cfg.UpstreamProxy, Resolver: a.resolver}
	transport, err := mitm.NewTransport(uo)
	if err != nil {
		return nil, err
	}

	// Audit trail and first-seen tracking.
	var seen mitm.Seen
	if !cfg.Audit.Disabled {
		a.audit, err = audit.Open(filepath.Join(cfg.DataDir, "audit.db"), audit.Options{
			Retention: config.Duration(cfg.Audit.Retention, 90*24*time.Hour),
			OnDrop:    a.metrics.AuditDropped,
		})
		if err != nil {
			return nil, err
		}
		a.closers = append(a.closers, func() { a.audit.Close() })
		seen = newSeenTracker(a.audit, a.metrics, logger)
	}

	// Cache.
	store, err := openStore(cfg)
	if err != nil {
		return nil, err
	}
	a.cache, err = cache.New(store, cache.Options{
		MaxSize:      cfg.MaxSize(),
		MetadataTTL:  config.Duration(cfg.Cache.MetadataTTL, 5*time.Minute),
		NegativeTTL:  config.Duration(cfg.Cache.NegativeTTL, time.Minute),
		StaleIfError: config.Duration(cfg.Cache.StaleIfError, 72*time.Hour),
		SpoolDir:     spoolDirFor(cfg),
		Logger:       logger,
	})
	if err != nil {
		return nil, err
	}
	a.metrics.SetCacheStats(func() metrics.CacheStats {
		s := a.cache.Stats()
		return metrics.CacheStats{SizeBytes: s.Size, Entries: s.Entries, Evictions: uint64(s.Evictions)}
	})

	// Policy.
	eng, err := a.compilePolicy(cfg)
	if err != nil {
		return nil, err
	}
	a.setPolicy(eng)

	ttls := map[string]time.Duration{}
	for _, e := range cfg.Ecosystems {
		if e.MetadataTTL != "" {
			ttls[e.Name] = config.Duration(e.MetadataTTL, 0)
		}
	}
	pipeline := &mitm.Pipeline{
		Set: set, Upstreams: ups, Transport: transport, Logger: logger,
		Policy:   a.policy.Load,
		Cache:    a.cache,
		Internal: internalUps,
		MetadataTTL: func(eco string) time.Duration {
			if d, ok := ttls[eco]; ok {
				return d
			}
			return config.Duration(cfg.Cache.MetadataTTL, 5*time.Minute)
		},
		Observer:  observer{m: a.metrics, audit: a.audit},
		DenyAudit: cfg.Ecosystem("npm").Audit == "deny",
		Seen:      seen,
	}
	if a.audit != nil {
		pipeline.Downloads = a.audit // attributions survive restarts
	}
	pipeline.Init()
	a.pipe = pipeline

	a.limits = limits.Config{
		RequestsPerSecond: cfg.Limits.RequestsPerSecond,
		Burst:             cfg.Limits.Burst,
		MaxConcurrent:     cfg.Limits.MaxConcurrent,
	}
	if cfg.Limits.MaxBody != "" {
		if n, err := parseSize(cfg.Limits.MaxBody); err == nil {
			a.limits.MaxBodyBytes = n
		}
	}
	if cfg.Limits.MaxHeader != "" {
		if n, err := parseSize(cfg.Limits.MaxHeader); err == nil {
			a.limits.MaxHeaderBytes = int(n)
		}
	}
	limit := limits.New(a.limits, clientKey, a.metrics.RateLimited)

	issuer := ca.NewIssuer(authority, 0)
	issuer.OnMint = func(string, time.Duration) { a.metrics.LeafMinted() }
	forward := &httputil.ReverseProxy{
		Transport: transport,
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.Out.Header.Del("Proxy-Authorization") },
	}
	limitedPipeline := limit(pipeline)
	a.server = mitm.NewServer(mitm.Options{
		Issuer:     issuer,
		Intercept:  a.intercept,
		Handler:    limitedPipeline,
		Local:      mitm.IndexHandler(pipeline, mitm.DefaultIndexRoutes, nil),
		Egress:     mitm.Egress{Deny: cfg.Egress.UnknownHosts == "deny", Allow: cfg.Egress.AllowHosts},
		TunnelDial: uo.Dialer(),
		Forward:    forward,
		Users:      authUsers(cfg),
		Realm:      authRealm(cfg),
		Logger:     logger,
		OnTunnel:   a.metrics.TunnelOpened,
		HTTP1Only: func(host string) bool {
			// Composer shows only the reason phrase of a refusal (e2e).
			c := set.ForHost(host)
			return c != nil && c.Ecosystem() == classifiers.Composer || extra[host]
		},
	})
	a.front = limit(a.server)

	token, err := ensureAdminToken(cfg)
	if err != nil {
		return nil, err
	}
	a.admin = admin.Handler(admin.Deps{
		Token:        token,
		CAPEM:        authority.PEM,
		Ready:        a.ready,
		ReloadPolicy: a.reload,
		Explain:      a.explain,
		Purge:        a.purge,
		CacheStats:   func() any { return cacheStatsJSON(a.cache.Stats()) },
		Audit:        a.audit,
		Metrics:      a.metrics.Handler(),
		Logger:       logger,
	})
	ok = true
	return a, nil
}

// spoolDirFor is where downloads spool for backends that are not local.
func spoolDirFor(cfg *config.Config) string {
	if cfg.Cache.Backend == "s3" {
		return spoolDir(cfg)
	}
	return ""
}

func (a *app) close() {
	if a.cache != nil {
		a.cache.WaitIdle()
	}
	if a.feedStop != nil {
		a.feedStop()
	}
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
}

// clientKey identifies a client for rate limits: the proxy user when
// authenticated, else the source address.
func clientKey(r *http.Request) string {
	if c := mitm.ClientFrom(r.Context()); c.User != "" {
		return "user:" + c.User
	} else if c.IP != nil {
		return c.IP.String()
	}
	return limits.ClientIP(r)
}

func authRealm(cfg *config.Config) string {
	if cfg.Auth == nil {
		return ""
	}
	return cfg.Auth.Realm
}

// compilePolicy builds the policy from a configuration's policy blocks.
func (a *app) compilePolicy(cfg *config.Config) (*rules.Engine, error) {
	minAge := map[string]time.Duration{}
	for _, e := range cfg.Ecosystems {
		if e.MinAge != "" {
			minAge[e.Name] = config.Duration(e.MinAge, 0)
		}
	}
	var src []byte
	if cfg.File == config.DefaultName {
		src = config.Default
	} else {
		src, _ = os.ReadFile(cfg.File)
	}
	eng, diags := rules.Compile(cfg.Policy, rules.Options{
		MinAge:    minAge,
		DataDir:   filepath.Join(cfg.DataDir, "feeds"),
		Typosquat: typosquat.Default(),
		Source:    src,
		OpenFeed:  a.openFeed,
	})
	if diags.HasErrors() {
		return nil, &config.Error{Diags: diags, Files: cfg.Files}
	}
	return eng, nil
}

// openFeed is one loaded feed and the settings it was opened with.
type openFeed struct {
	cfg  feed.Config
	feed *feed.Feed
}

// openFeed reuses a feed whose block did not change, so a policy reload
// does not reload a 200k-record feed (its own refresh loop keeps it fresh).
func (a *app) openFeed(ctx context.Context, fc feed.Config) (*feed.Feed, error) {
	a.feedMu.Lock()
	defer a.feedMu.Unlock()
	same := func(x, y feed.Config) bool {
		return x.Name == y.Name && x.Type == y.Type && x.Path == y.Path && x.URL == y.URL && x.Refresh == y.Refresh && x.DataDir == y.DataDir
	}
	if of, ok := a.feeds[fc.Name]; ok && same(of.cfg, fc) {
		return of.feed, nil
	}
	if fc.Logger == nil {
		fc.Logger = a.logger
	}
	f, err := feed.Open(ctx, fc)
	if err != nil {
		return nil, err
	}
	if a.feeds == nil {
		a.feeds = map[string]openFeed{}
	}
	a.feeds[fc.Name] = openFeed{cfg: fc, feed: f}
	return f, nil
}

// setPolicy installs a compiled policy and (re)starts its feeds' refresh.
func (a *app) setPolicy(eng *rules.Engine) {
	a.policy.Store(eng)
	a.policyErr.Store(nil)
	if a.feedStop != nil {
		a.feedStop()
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.feedStop = cancel
	for _, f := range eng.Feeds() {
		f := f
		a.metrics.SetFeed(f.Name(), f.Count(), f.LoadedAt())
		go f.Run(ctx, func(newly []feed.Key) {
			a.metrics.SetFeed(f.Name(), f.Count(), f.LoadedAt())
			for _, k := range newly {
				// Newly flagged versions must not be served from cache.
				n, err := a.cache.Purge(context.Background(), cache.PurgePrefix(k.Ecosystem, k.Name, k.Version))
				a.logger.Warn("feed flagged a package; purged cached copies", "feed", f.Name(), "ecosystem", k.Ecosystem,
					"package", k.Name, "version", k.Version, "purged", n, "err", err)
			}
		})
	}
}

// reload re-reads the configuration file and swaps in its policy; an
// invalid file leaves the current policy serving.
func (a *app) reload() error {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	path := a.cfg.File
	if path == config.DefaultName {
		path = ""
	}
	cfg, err := config.Load(path)
	if err == nil {
		cfg.ApplyEnv(os.Getenv)
		var eng *rules.Engine
		if eng, err = a.compilePolicy(cfg); err == nil {
			a.setPolicy(eng)
			a.metrics.PolicyReloaded(true)
			a.logger.Info("policy reloaded", "file", a.cfg.File, "policy", eng.Hash())
			return nil
		}
	}
	msg := err.Error()
	a.policyErr.Store(&msg)
	a.metrics.PolicyReloaded(false)
	a.logger.Error("policy reload rejected; the previous policy keeps serving", "file", a.cfg.File, "err", msg)
	return err
}

// watchConfig reloads the policy when the configuration file changes.
func (a *app) watchConfig(ctx context.Context) {
	if a.cfg.File == config.DefaultName {
		return
	}
	var last [32]byte
	if b, err := os.ReadFile(a.cfg.File); err == nil {
		last = sha256.Sum256(b)
	}
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			b, err := os.ReadFile(a.cfg.File)
			if err != nil {
				continue
			}
			if sum := sha256.Sum256(b); sum != last {
				last = sum
				a.reload()
			}
		}
	}
}

// ready reports readiness: CA loaded, policy loaded (and the last reload
// valid), cache writable, feeds loaded.
func (a *app) ready() []admin.Check {
	checks := []admin.Check{{Name: "ca", OK: a.ca != nil, Message: a.ca.Cert.Subject.CommonName}}
	pc := admin.Check{Name: "policy", OK: a.policy.Load() != nil}
	if e := a.policyErr.Load(); e != nil {
		pc.OK, pc.Message = false, "last reload rejected: "+*e
	} else if p := a.policy.Load(); p != nil {
		pc.Message = "policy " + p.Hash()
	}
	checks = append(checks, pc)
	cc := admin.Check{Name: "cache", OK: true}
	if a.cfg.Cache.Backend == "fs" {
		dir := cacheDir(a.cfg)
		f, err := os.CreateTemp(dir, ".ready-*")
		if err != nil {
			cc.OK, cc.Message = false, err.Error()
		} else {
			f.Close()
			os.Remove(f.Name())
		}
	}
	checks = append(checks, cc)
	if p := a.policy.Load(); p != nil {
		for _, f := range p.Feeds() {
			checks = append(checks, admin.Check{Name: "feed:" + f.Name(), OK: f.Count() > 0,
				Message: fmt.Sprintf("%d records loaded %s", f.Count(), f.LoadedAt().UTC().Format(time.RFC3339))})
		}
	}
	return checks
}

// explain answers the admin API and `policy explain` from the running proxy.
func (a *app) explain(eco, name, version, client string) (any, error) {
	p := a.policy.Load()
	if p == nil {
		return nil, errors.New("no policy loaded")
	}
	return explainWith(context.Background(), a, p, eco, name, version, client)
}

func (a *app) purge(ctx context.Context, eco, pkg, version string) (int, error) {
	if eco != "" && a.set.ForEcosystem(eco) == nil {
		return 0, fmt.Errorf("%w: unknown ecosystem %q", admin.ErrInvalid, eco)
	}
	if version != "" && pkg == "" {
		return 0, fmt.Errorf("%w: version needs a package", admin.ErrInvalid)
	}
	if pkg != "" {
		pkg = rules.Normalize(eco, pkg)
	}
	return a.cache.Purge(ctx, cache.PurgePrefix(eco, pkg, version))
}

// cacheStatsJSON renders cache statistics with a hit ratio.
func cacheStatsJSON(s cache.Stats) map[string]any {
	served := s.Hits + s.Misses + s.Stale + s.Revalidated
	ratio := 0.0
	if served > 0 {
		ratio = float64(s.Hits+s.Revalidated+s.Stale) / float64(served)
	}
	return map[string]any{
		"size_bytes": s.Size, "max_size_bytes": s.MaxSize, "entries": s.Entries,
		"hits": s.Hits, "misses": s.Misses, "stale": s.Stale, "revalidated": s.Revalidated,
		"bypass": s.Bypass, "evictions": s.Evictions, "integrity_failures": s.IntegrityFailures,
		"upstream_failures": s.UpstreamFailures, "hit_ratio": ratio,
	}
}

// observer sends request events to metrics and the audit trail.
type observer struct {
	m     *metrics.Metrics
	audit *audit.Log
}

func (o observer) Observe(e mitm.Event) {
	eco := e.Ecosystem
	if eco == "" {
		eco = "none"
	}
	fromCache := e.Cache == cache.StatusHit || e.Cache == cache.StatusStale || e.Cache == cache.StatusRevalidated
	o.m.ObserveRequest(eco, e.Kind, e.Decision, e.Cache, e.Duration, e.Bytes, fromCache)
	if e.UpstreamDuration > 0 {
		o.m.ObserveUpstream(eco, e.UpstreamDuration)
	}
	if e.Decision == "deny" {
		o.m.ObserveBlock(eco, e.Rule)
	}
	// The audit trail records package decisions and served artifacts, not
	// every passthrough request.
	if o.audit == nil || e.Ecosystem == "" || e.Package == "" || e.Decision == "pass" {
		return
	}
	ip := ""
	if e.Client.IP != nil {
		ip = e.Client.IP.String()
	}
	o.audit.Record(audit.Event{
		Time: e.Time.Add(e.Duration), RequestID: e.RequestID, ClientIP: ip, User: e.Client.User,
		Ecosystem: e.Ecosystem, Package: e.Package, Version: e.Version, Kind: e.Kind,
		Decision: e.Decision, Rule: e.Rule, Reason: e.Reason, Cache: e.Cache, Bytes: e.Bytes, Status: e.Status,
	})
}

// seenTracker adapts the audit database's first-seen table to the
// pipeline: one database write only when a package's version list or
// references change, and lookups from memory.
type seenTracker struct {
	log    *audit.Log
	m      *metrics.Metrics
	logger *slog.Logger

	mu    sync.Mutex
	byPkg map[string]*seenEntry
}

type seenEntry struct {
	fingerprint [32]byte
	versions    map[string]audit.Seen
}

const seenMaxPackages = 50_000

func newSeenTracker(l *audit.Log, m *metrics.Metrics, logger *slog.Logger) *seenTracker {
	return &seenTracker{log: l, m: m, logger: logger, byPkg: map[string]*seenEntry{}}
}

func (s *seenTracker) Observe(eco, pkg string, versions []classifiers.Version) {
	names := make([]string, len(versions))
	refs := map[string]string{}
	h := sha256.New()
	for i, v := range versions {
		names[i] = v.Version
		ref := mitm.ContentRef(eco, &versions[i])
		if ref != "" {
			refs[v.Version] = ref
		}
		fmt.Fprintf(h, "%s\x00%s\x01", v.Version, ref)
	}
	var fp [32]byte
	copy(fp[:], h.Sum(nil))
	key := eco + "\x00" + pkg
	s.mu.Lock()
	e := s.byPkg[key]
	s.mu.Unlock()
	if e != nil && e.fingerprint == fp {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := s.log.MarkSeen(ctx, eco, pkg, names, refs)
	if err != nil {
		s.logger.Warn("first-seen tracking failed", "ecosystem", eco, "package", pkg, "err", err)
		return
	}
	for _, v := range res.Retagged {
		s.m.Retagged(eco)
		s.logger.Error("RE-TAGGED VERSION: content changed since first seen", "ecosystem", eco, "package", pkg, "version", v,
			"first_ref", res.Versions[v].Ref, "now", refs[v])
	}
	s.mu.Lock()
	if len(s.byPkg) >= seenMaxPackages {
		s.byPkg = map[string]*seenEntry{}
	}
	s.byPkg[key] = &seenEntry{fingerprint: fp, versions: res.Versions}
	s.mu.Unlock()
}

func (s *seenTracker) Lookup(eco, pkg, version, ref string) (time.Time, bool) {
	key := eco + "\x00" + pkg
	s.mu.Lock()
	e := s.byPkg[key]
	s.mu.Unlock()
	var v audit.Seen
	var ok bool
	if e != nil {
		v, ok = e.versions[version]
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		vs, err := s.log.SeenVersions(ctx, eco, pkg)
		if err != nil {
			return time.Time{}, false
		}
		v, ok = vs[version]
	}
	if !ok {
		return time.Time{}, false
	}
	first := v.FirstSeen
	if v.Baseline {
		first = time.Time{} // present on first sight: arrival time unknown
	}
	return first, v.Retagged(ref) || v.LastRef != ""
}

// versionFacts fetches facts for explain through the pipeline's cache.
func (a *app) versionFacts(ctx context.Context, eco, pkg, version string) (*classifiers.Metadata, error) {
	return a.pipe.Facts(ctx, eco, pkg, version, a.offline)
}
