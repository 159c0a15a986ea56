package metrics

import (
	"encoding/json"
	"io"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestObserveRequestLabels(t *testing.T) {
	tests := []struct {
		name                       string
		eco, kind, decision, cache string
		fromCache                  bool
		wantLabels                 []string
		wantSource                 string
	}{
		{"artifact hit", "npm", "artifact", "allow", "hit", true, []string{"npm", "artifact", "allow", "hit"}, "cache"},
		{"metadata miss", "pypi", "metadata", "allow", "miss", false, []string{"pypi", "metadata", "allow", "miss"}, "upstream"},
		{"upper-case cache status", "go", "artifact", "DENY", "MISS", false, []string{"go", "artifact", "deny", "miss"}, "upstream"},
		{"unknown ecosystem folded", "left-pad", "artifact", "allow", "hit", true, []string{"other", "artifact", "allow", "hit"}, "cache"},
		{"not a registry", "", "", "", "", false, []string{"none", "none", "none", "none"}, "upstream"},
		{"unknown decision folded", "cargo", "weird", "maybe", "x", false, []string{"cargo", "other", "other", "other"}, "upstream"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New()
			m.ObserveRequest(tt.eco, tt.kind, tt.decision, tt.cache, 3*time.Millisecond, 1234, tt.fromCache)
			if got := testutil.ToFloat64(m.requests.WithLabelValues(tt.wantLabels...)); got != 1 {
				t.Errorf("requests_total%v: got %v, want 1", tt.wantLabels, got)
			}
			if got := testutil.ToFloat64(m.bytesServed.WithLabelValues(tt.wantSource)); got != 1234 {
				t.Errorf("bytes_served_total{source=%q}: got %v, want 1234", tt.wantSource, got)
			}
			if got := testutil.CollectAndCount(m.requestDuration); got != 1 {
				t.Errorf("request_duration_seconds series: got %v, want 1", got)
			}
		})
	}
}

func TestExposition(t *testing.T) {
	m := New()
	m.ObserveRequest("npm", "artifact", "allow", "hit", time.Millisecond, 10, true)
	m.ObserveUpstream("npm", 20*time.Millisecond)
	m.ObserveBlock("pypi", "block-bad-package")
	m.ObserveBlock("pypi", "")
	m.LeafMinted()
	m.PolicyReloaded(true)
	m.PolicyReloaded(false)
	m.PolicyReloaded(false)
	done := m.TunnelOpened()
	m.AuditDropped()
	m.RateLimited()
	m.Retagged("composer")
	m.SetCacheStats(func() CacheStats { return CacheStats{SizeBytes: 4096, Entries: 3, Evictions: 7} })

	want := `
# HELP cafilprox_blocks_total Requests or versions refused by policy, by ecosystem and rule name (package names are never labels).
# TYPE cafilprox_blocks_total counter
cafilprox_blocks_total{ecosystem="pypi",rule="block-bad-package"} 1
cafilprox_blocks_total{ecosystem="pypi",rule="none"} 1
# HELP cafilprox_cache_entries Number of objects in the cache.
# TYPE cafilprox_cache_entries gauge
cafilprox_cache_entries 3
# HELP cafilprox_cache_evictions_total Objects evicted from the cache since start.
# TYPE cafilprox_cache_evictions_total counter
cafilprox_cache_evictions_total 7
# HELP cafilprox_cache_size_bytes Total size of objects in the cache.
# TYPE cafilprox_cache_size_bytes gauge
cafilprox_cache_size_bytes 4096
# HELP cafilprox_leaf_certs_minted_total Leaf certificates minted by the internal CA (cache misses of the leaf cache).
# TYPE cafilprox_leaf_certs_minted_total counter
cafilprox_leaf_certs_minted_total 1
# HELP cafilprox_policy_reloads_total Policy reload attempts, by result (success or failure).
# TYPE cafilprox_policy_reloads_total counter
cafilprox_policy_reloads_total{result="failure"} 2
cafilprox_policy_reloads_total{result="success"} 1
# HELP cafilprox_tunnels_in_flight CONNECT or transparent tunnels currently open.
# TYPE cafilprox_tunnels_in_flight gauge
cafilprox_tunnels_in_flight 1
# HELP cafilprox_audit_dropped_total Audit events dropped because the audit queue was full.
# TYPE cafilprox_audit_dropped_total counter
cafilprox_audit_dropped_total 1
# HELP cafilprox_rate_limited_total Client requests refused by the per-client rate or concurrency limit.
# TYPE cafilprox_rate_limited_total counter
cafilprox_rate_limited_total 1
# HELP cafilprox_retagged_total Versions whose content reference changed since first seen, by ecosystem.
# TYPE cafilprox_retagged_total counter
cafilprox_retagged_total{ecosystem="composer"} 1
`
	names := []string{
		"cafilprox_blocks_total", "cafilprox_cache_entries", "cafilprox_cache_evictions_total",
		"cafilprox_cache_size_bytes", "cafilprox_leaf_certs_minted_total", "cafilprox_policy_reloads_total",
		"cafilprox_tunnels_in_flight", "cafilprox_audit_dropped_total", "cafilprox_rate_limited_total",
		"cafilprox_retagged_total",
	}
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}

	done()
	done() // a second call must not decrement again
	if got := testutil.ToFloat64(m.tunnels); got != 0 {
		t.Errorf("tunnels_in_flight after close: got %v, want 0", got)
	}

	// The HTTP handler serves the same registry, including runtime collectors.
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, s := range []string{
		`cafilprox_requests_total{cache="hit",decision="allow",ecosystem="npm",kind="artifact"} 1`,
		`cafilprox_upstream_duration_seconds_count{ecosystem="npm"} 1`,
		`cafilprox_bytes_served_total{source="cache"} 10`,
		"go_goroutines",
		"process_",
	} {
		if !strings.Contains(string(body), s) {
			t.Errorf("exposition: got no %q in\n%s", s, body)
		}
	}
}

func TestFeedAge(t *testing.T) {
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	defer func(f func() time.Time) { now = f }(now)
	now = func() time.Time { return base.Add(90 * time.Second) }

	m := New()
	m.SetFeed("ossf", 1200, base)
	m.SetFeed("gone", 1, base)
	m.RemoveFeed("gone")
	want := `
# HELP cafilprox_feed_age_seconds Seconds since a feed was last refreshed.
# TYPE cafilprox_feed_age_seconds gauge
cafilprox_feed_age_seconds{feed="ossf"} 90
# HELP cafilprox_feed_records Records loaded from a feed.
# TYPE cafilprox_feed_records gauge
cafilprox_feed_records{feed="ossf"} 1200
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "cafilprox_feed_age_seconds", "cafilprox_feed_records"); err != nil {
		t.Error(err)
	}
}

func TestRuleLabelBounded(t *testing.T) {
	long := strings.Repeat("r", 200)
	if got := ruleLabel(long); len(got) != maxRuleLabel {
		t.Errorf("rule label length: got %v, want %v", len(got), maxRuleLabel)
	}
}

func TestNilMetricsIsSafe(t *testing.T) {
	var m *Metrics
	m.ObserveRequest("npm", "artifact", "allow", "hit", time.Second, 1, true)
	m.ObserveUpstream("npm", time.Second)
	m.ObserveBlock("npm", "r")
	m.LeafMinted()
	m.PolicyReloaded(true)
	m.TunnelOpened()()
	m.AuditDropped()
	m.RateLimited()
	m.Retagged("npm")
	m.SetCacheStats(nil)
	m.SetFeed("f", 1, time.Now())
	m.RemoveFeed("f")
	if m.Registry() != nil {
		t.Errorf("Registry on nil: got non-nil, want nil")
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 404 {
		t.Errorf("Handler on nil: got %v, want 404", rec.Code)
	}
}

func BenchmarkObserveRequest(b *testing.B) {
	m := New()
	b.ReportAllocs()
	for b.Loop() {
		m.ObserveRequest("npm", "artifact", "allow", "hit", time.Millisecond, 4096, true)
	}
}

// TestDashboardUsesRealMetrics checks that every cafilprox_ metric the
// Grafana dashboard queries exists, so a rename cannot silently blank a panel.
func TestDashboardUsesRealMetrics(t *testing.T) {
	raw, err := os.ReadFile("../deploy/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("dashboard is not JSON: %v", err)
	}

	m := New()
	m.ObserveRequest("npm", "artifact", "allow", "hit", time.Millisecond, 1, true)
	m.ObserveRequest("npm", "artifact", "allow", "miss", time.Millisecond, 1, false)
	m.ObserveUpstream("npm", time.Millisecond)
	m.ObserveBlock("npm", "r")
	m.LeafMinted()
	m.PolicyReloaded(true)
	m.AuditDropped()
	m.RateLimited()
	m.Retagged("npm")
	m.SetCacheStats(func() CacheStats { return CacheStats{} })
	m.SetFeed("f", 1, time.Now())
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, f := range families {
		known[f.GetName()] = true
	}

	re := regexp.MustCompile(`cafilprox_[a-z_]+`)
	used := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, name := range re.FindAllString(tg.Expr, -1) {
				used++
				base := name
				for _, suf := range []string{"_bucket", "_count", "_sum"} {
					base = strings.TrimSuffix(base, suf)
				}
				if !known[base] {
					t.Errorf("panel %q queries %s: got no such metric", p.Title, name)
				}
			}
		}
	}
	if used < 15 {
		t.Errorf("metric references in the dashboard: got %v, want at least 15", used)
	}
}
