// Package metrics holds Cafilprox's Prometheus collectors on a private
// registry and exposes them on the admin listener's /metrics.
//
// Every metric name starts with "cafilprox_". Methods take plain Go values so
// the pipeline never touches Prometheus types, and every method is safe on a
// nil *Metrics (it does nothing), so tests and tools can run without metrics.
//
// Cardinality is bounded on purpose, because a proxy sees an unbounded number
// of package names, versions and clients:
//   - ecosystem is one of classifiers.Ecosystems, "none" (not a registry
//     request) or "other";
//   - kind is metadata, artifact, other or "none";
//   - decision and cache are folded onto small fixed sets (see Decisions and
//     CacheStatuses), anything else becomes "other";
//   - rule is a rule name from the configuration (bounded by the config file,
//     truncated to 64 bytes; "none" when empty);
//   - feed is a feed name from the configuration;
//   - package names, versions, client addresses and users are NEVER labels:
//     they belong in the audit database (package audit), not in metrics.
package metrics

import (
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cafilprox/cafilprox/classifiers"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every metric name.
const Namespace = "cafilprox"

// now is the clock used for feed ages; tests replace it.
var now = time.Now

// Decisions are the decision label values; anything else is reported as "other".
var Decisions = []string{"allow", "deny", "shadow-deny", "pin", "error", "none"}

// CacheStatuses are the cache label values; anything else is reported as "other".
var CacheStatuses = []string{"hit", "miss", "stale", "revalidated", "bypass", "none"}

var kinds = []string{string(classifiers.KindMetadata), string(classifiers.KindArtifact), string(classifiers.KindOther), "none"}

// maxRuleLabel caps the rule label length so a pathological config cannot
// produce huge series names.
const maxRuleLabel = 64

// CacheStats is a snapshot of the cache, read once per scrape.
type CacheStats struct {
	// SizeBytes is the total size of stored objects.
	SizeBytes int64
	// Entries is the number of stored objects.
	Entries int64
	// Evictions counts objects evicted since the process started; it must
	// never decrease.
	Evictions uint64
}

// Metrics is the set of Cafilprox collectors. Build it with New.
type Metrics struct {
	reg *prometheus.Registry

	requests         *prometheus.CounterVec
	requestDuration  *prometheus.HistogramVec
	upstreamDuration *prometheus.HistogramVec
	bytesServed      *prometheus.CounterVec
	blocks           *prometheus.CounterVec
	leafCerts        prometheus.Counter
	policyReloads    *prometheus.CounterVec
	tunnels          prometheus.Gauge
	auditDropped     prometheus.Counter
	rateLimited      prometheus.Counter
	retagged         *prometheus.CounterVec

	cache *cacheCollector
	feeds *feedCollector
}

// New builds the collectors and registers them, together with the Go runtime
// and process collectors, on a fresh registry.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "requests_total",
		Help: "Client requests handled, by ecosystem, kind, decision and cache status.",
	}, []string{"ecosystem", "kind", "decision", "cache"})
	m.requestDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "request_duration_seconds",
		Help:    "Time to serve a client request, from headers read to last byte written.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
	}, []string{"ecosystem"})
	m.upstreamDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "upstream_duration_seconds",
		Help:    "Time of upstream registry fetches, until response headers.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
	}, []string{"ecosystem"})
	m.bytesServed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "bytes_served_total",
		Help: "Response body bytes sent to clients, by source (cache or upstream).",
	}, []string{"source"})
	m.blocks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "blocks_total",
		Help: "Requests or versions refused by policy, by ecosystem and rule name (package names are never labels).",
	}, []string{"ecosystem", "rule"})
	m.leafCerts = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Name: "leaf_certs_minted_total",
		Help: "Leaf certificates minted by the internal CA (cache misses of the leaf cache).",
	})
	m.policyReloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "policy_reloads_total",
		Help: "Policy reload attempts, by result (success or failure).",
	}, []string{"result"})
	m.tunnels = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "tunnels_in_flight",
		Help: "CONNECT or transparent tunnels currently open.",
	})
	m.auditDropped = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Name: "audit_dropped_total",
		Help: "Audit events dropped because the audit queue was full.",
	})
	m.rateLimited = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Name: "rate_limited_total",
		Help: "Client requests refused by the per-client rate or concurrency limit.",
	})
	m.retagged = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "retagged_total",
		Help: "Versions whose content reference changed since first seen, by ecosystem.",
	}, []string{"ecosystem"})
	m.cache = newCacheCollector()
	m.feeds = newFeedCollector()

	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.requestDuration, m.upstreamDuration, m.bytesServed, m.blocks,
		m.leafCerts, m.policyReloads, m.tunnels, m.auditDropped, m.rateLimited, m.retagged,
		m.cache, m.feeds,
	)
	return m
}

// Registry returns the registry, for tests and for registering extra
// collectors.
func (m *Metrics) Registry() *prometheus.Registry {
	if m == nil {
		return nil
	}
	return m.reg
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// ObserveRequest records one finished client request: its count, its
// duration and the body bytes sent, attributed to the cache when fromCache
// is true and to upstream otherwise.
func (m *Metrics) ObserveRequest(eco, kind, decision, cache string, d time.Duration, bytes int64, fromCache bool) {
	if m == nil {
		return
	}
	e := ecoLabel(eco)
	m.requests.WithLabelValues(e, oneOf(kind, kinds), oneOf(decision, Decisions), oneOf(cache, CacheStatuses)).Inc()
	m.requestDuration.WithLabelValues(e).Observe(d.Seconds())
	if bytes > 0 {
		src := "upstream"
		if fromCache {
			src = "cache"
		}
		m.bytesServed.WithLabelValues(src).Add(float64(bytes))
	}
}

// ObserveUpstream records the duration of one upstream fetch.
func (m *Metrics) ObserveUpstream(eco string, d time.Duration) {
	if m == nil {
		return
	}
	m.upstreamDuration.WithLabelValues(ecoLabel(eco)).Observe(d.Seconds())
}

// ObserveBlock counts one refusal by the named rule (a configured rule name,
// or a built-in reason such as "default" or "feed:ossf"; never a package name).
func (m *Metrics) ObserveBlock(eco, rule string) {
	if m == nil {
		return
	}
	m.blocks.WithLabelValues(ecoLabel(eco), ruleLabel(rule)).Inc()
}

// LeafMinted counts one freshly minted leaf certificate.
func (m *Metrics) LeafMinted() {
	if m == nil {
		return
	}
	m.leafCerts.Inc()
}

// PolicyReloaded counts one policy reload attempt.
func (m *Metrics) PolicyReloaded(ok bool) {
	if m == nil {
		return
	}
	res := "failure"
	if ok {
		res = "success"
	}
	m.policyReloads.WithLabelValues(res).Inc()
}

// TunnelOpened increments tunnels_in_flight and returns the function that
// decrements it; call it exactly once when the tunnel closes.
func (m *Metrics) TunnelOpened() (closed func()) {
	if m == nil {
		return func() {}
	}
	m.tunnels.Inc()
	var once sync.Once
	return func() { once.Do(m.tunnels.Dec) }
}

// AuditDropped counts one dropped audit event; pass it as audit.Options.OnDrop.
func (m *Metrics) AuditDropped() {
	if m == nil {
		return
	}
	m.auditDropped.Inc()
}

// RateLimited counts one request refused by package limits; pass it as the
// onLimited argument of limits.New.
func (m *Metrics) RateLimited() {
	if m == nil {
		return
	}
	m.rateLimited.Inc()
}

// Retagged counts one version whose content changed since first seen.
func (m *Metrics) Retagged(eco string) {
	if m == nil {
		return
	}
	m.retagged.WithLabelValues(ecoLabel(eco)).Inc()
}

// SetCacheStats installs the callback read at every scrape to export
// cache_size_bytes, cache_entries and cache_evictions_total. It is called
// once per scrape, so it may take a lock but must be quick. A nil callback
// removes the three metrics.
func (m *Metrics) SetCacheStats(fn func() CacheStats) {
	if m == nil {
		return
	}
	m.cache.set(fn)
}

// SetFeed reports a feed's record count and the time it was last refreshed;
// feed_age_seconds is computed from updated at scrape time.
func (m *Metrics) SetFeed(feed string, records int, updated time.Time) {
	if m == nil {
		return
	}
	m.feeds.set(feed, records, updated)
}

// RemoveFeed stops exporting a feed that left the configuration.
func (m *Metrics) RemoveFeed(feed string) {
	if m == nil {
		return
	}
	m.feeds.remove(feed)
}

func ecoLabel(eco string) string {
	if eco == "" {
		return "none"
	}
	if slices.Contains(classifiers.Ecosystems, eco) {
		return eco
	}
	return "other"
}

func oneOf(v string, allowed []string) string {
	v = strings.ToLower(v)
	if v == "" {
		return "none"
	}
	if slices.Contains(allowed, v) {
		return v
	}
	return "other"
}

func ruleLabel(rule string) string {
	if rule == "" {
		return "none"
	}
	if len(rule) > maxRuleLabel {
		return rule[:maxRuleLabel]
	}
	return rule
}

// cacheCollector reads the cache snapshot once per scrape.
type cacheCollector struct {
	mu        sync.Mutex
	fn        func() CacheStats
	size      *prometheus.Desc
	entries   *prometheus.Desc
	evictions *prometheus.Desc
}

func newCacheCollector() *cacheCollector {
	return &cacheCollector{
		size:      prometheus.NewDesc(Namespace+"_cache_size_bytes", "Total size of objects in the cache.", nil, nil),
		entries:   prometheus.NewDesc(Namespace+"_cache_entries", "Number of objects in the cache.", nil, nil),
		evictions: prometheus.NewDesc(Namespace+"_cache_evictions_total", "Objects evicted from the cache since start.", nil, nil),
	}
}

func (c *cacheCollector) set(fn func() CacheStats) {
	c.mu.Lock()
	c.fn = fn
	c.mu.Unlock()
}

func (c *cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.size
	ch <- c.entries
	ch <- c.evictions
}

func (c *cacheCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	fn := c.fn
	c.mu.Unlock()
	if fn == nil {
		return
	}
	s := fn()
	ch <- prometheus.MustNewConstMetric(c.size, prometheus.GaugeValue, float64(s.SizeBytes))
	ch <- prometheus.MustNewConstMetric(c.entries, prometheus.GaugeValue, float64(s.Entries))
	ch <- prometheus.MustNewConstMetric(c.evictions, prometheus.CounterValue, float64(s.Evictions))
}

// feedCollector exports per-feed record counts and ages computed at scrape time.
type feedCollector struct {
	mu      sync.Mutex
	feeds   map[string]feedState
	records *prometheus.Desc
	age     *prometheus.Desc
}

type feedState struct {
	records int
	updated time.Time
}

func newFeedCollector() *feedCollector {
	return &feedCollector{
		feeds:   map[string]feedState{},
		records: prometheus.NewDesc(Namespace+"_feed_records", "Records loaded from a feed.", []string{"feed"}, nil),
		age:     prometheus.NewDesc(Namespace+"_feed_age_seconds", "Seconds since a feed was last refreshed.", []string{"feed"}, nil),
	}
}

func (c *feedCollector) set(feed string, records int, updated time.Time) {
	c.mu.Lock()
	c.feeds[feed] = feedState{records: records, updated: updated}
	c.mu.Unlock()
}

func (c *feedCollector) remove(feed string) {
	c.mu.Lock()
	delete(c.feeds, feed)
	c.mu.Unlock()
}

func (c *feedCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.records
	ch <- c.age
}

func (c *feedCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := now()
	for name, f := range c.feeds {
		ch <- prometheus.MustNewConstMetric(c.records, prometheus.GaugeValue, float64(f.records), name)
		if !f.updated.IsZero() {
			ch <- prometheus.MustNewConstMetric(c.age, prometheus.GaugeValue, t.Sub(f.updated).Seconds(), name)
		}
	}
}
