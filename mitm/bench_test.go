package mitm

import (
	"crypto/tls"
	"io"
	"net/http"
	"sort"
	"testing"
	"time"
)

// BenchmarkWarmTunnelHit measures a small cached metadata request through
// an established MITM tunnel (HTTP/1.1 keep-alive): classify, policy,
// cache hit, filter, respond. Reports p50/p99 latency.
func BenchmarkWarmTunnelHit(b *testing.B) {
	t := &testing.T{}
	h := newPipelineHarness(t)
	const u = "https://registry.npmjs.org/demo/-/demo-1.0.0.tgz"
	// Warm: tunnel, leaf, cache entry.
	for i := 0; i < 20; i++ {
		resp, err := h.client.Get(u)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.Header.Get(HeaderCache) == "HIT" {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		resp, err := h.client.Get(u)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.Header.Get(HeaderCache) != "HIT" {
			b.Fatalf("X-Cache %q, want HIT", resp.Header.Get(HeaderCache))
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	reportPercentiles(b, lat)
}

// BenchmarkNewTunnel measures CONNECT + TLS handshake (cached leaf) + one
// request per iteration.
func BenchmarkNewTunnel(b *testing.B) {
	t := &testing.T{}
	h := newPipelineHarness(t)
	tr := h.client.Transport.(*http.Transport)
	const u = "https://registry.npmjs.org/demo/-/demo-1.0.0.tgz"
	for i := 0; i < 20; i++ {
		resp, err := h.client.Get(u)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		time.Sleep(5 * time.Millisecond)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c := &http.Client{Transport: &http.Transport{Proxy: tr.Proxy, TLSClientConfig: tr.TLSClientConfig.Clone(), DisableKeepAlives: true,
			TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}}
		start := time.Now()
		resp, err := c.Get(u)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	reportPercentiles(b, lat)
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
