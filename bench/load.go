package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// target says how a client reaches the registry: through a forward proxy
// (CONNECT to the real host name), or directly (the host name dialled at the
// fake registry's address), or through a registry-style cache (plain URL).
type target struct {
	proxy    string // http://127.0.0.1:port; empty = no forward proxy
	base     string // base URL requests go to, e.g. https://registry.npmjs.org
	dialAddr string // when set, every dial goes here (direct mode)
	roots    *x509.CertPool
}

// transport builds one client transport; keepAlive=false makes every request
// open a new connection (a new CONNECT tunnel and TLS handshake).
func (t target) transport(keepAlive bool) *http.Transport {
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: t.roots, ClientSessionCache: nil},
		DisableKeepAlives:   !keepAlive,
		MaxIdleConnsPerHost: 1,
		MaxConnsPerHost:     1,
		DisableCompression:  true,
		TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{}, // HTTP/1.1 like npm
		IdleConnTimeout:     time.Minute,
	}
	if t.proxy != "" {
		u, _ := url.Parse(t.proxy)
		tr.Proxy = http.ProxyURL(u)
	}
	if t.dialAddr != "" {
		d := &net.Dialer{}
		tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, t.dialAddr)
		}
	}
	return tr
}

func loadRoots(files ...string) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("bench: read CA: %w", err)
		}
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("bench: no certificate in %s", f)
		}
	}
	return pool, nil
}

// get performs one GET and drains the body, checking the status.
func get(ctx context.Context, c *http.Client, u string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return n, err
	}
	if resp.StatusCode != http.StatusOK {
		return n, fmt.Errorf("bench: GET %s: %s", u, resp.Status)
	}
	return n, nil
}

// loadResult is the outcome of one closed-loop load run.
type loadResult struct {
	Requests int64         `json:"requests"`
	Errors   int64         `json:"errors"`
	FirstErr string        `json:"first_error,omitempty"`
	Elapsed  time.Duration `json:"elapsed_ns"`
	P50      time.Duration `json:"p50_ns"`
	P99      time.Duration `json:"p99_ns"`
	PerSec   float64       `json:"per_sec"`
}

// runLoad runs conns closed-loop workers for d (or until maxReq requests),
// each calling do with its own client; keepAlive selects warm tunnels or a
// new tunnel per request.
func runLoad(t target, path string, conns int, d time.Duration, maxReq int64, keepAlive bool) loadResult {
	ctx, cancel := context.WithTimeout(context.Background(), d+30*time.Second)
	defer cancel()
	var (
		n, errs  atomic.Int64
		firstErr atomic.Value
		mu       sync.Mutex
		lats     []time.Duration
		wg       sync.WaitGroup
	)
	deadline := time.Now().Add(d)
	start := time.Now()
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := t.transport(keepAlive)
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
			local := make([]time.Duration, 0, 4096)
			for time.Now().Before(deadline) && (maxReq <= 0 || n.Load() < maxReq) {
				t0 := time.Now()
				_, err := get(ctx, c, t.base+path)
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					time.Sleep(10 * time.Millisecond)
					continue
				}
				local = append(local, time.Since(t0))
				n.Add(1)
			}
			mu.Lock()
			lats = append(lats, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	el := time.Since(start)
	r := loadResult{Requests: n.Load(), Errors: errs.Load(), Elapsed: el}
	if v, ok := firstErr.Load().(string); ok {
		r.FirstErr = v
	}
	r.PerSec = float64(r.Requests) / el.Seconds()
	if len(lats) > 0 {
		slices.Sort(lats)
		r.P50 = lats[len(lats)/2]
		r.P99 = lats[min(len(lats)-1, len(lats)*99/100)]
	}
	return r
}

// streamResult is one large download.
type streamResult struct {
	Bytes   int64         `json:"bytes"`
	Elapsed time.Duration `json:"elapsed_ns"`
	TTFB    time.Duration `json:"ttfb_ns"`
	MBps    float64       `json:"mb_per_s"`
	Cache   string        `json:"x_cache,omitempty"`
	Err     string        `json:"error,omitempty"`
}

// stream downloads u once through t with a fresh connection.
func stream(t target, u string) streamResult {
	tr := t.transport(true)
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Minute}
	t0 := time.Now()
	resp, err := c.Get(u)
	if err != nil {
		return streamResult{Err: err.Error()}
	}
	defer resp.Body.Close()
	ttfb := time.Since(t0)
	buf := make([]byte, 256<<10)
	n, err := io.CopyBuffer(io.Discard, resp.Body, buf)
	el := time.Since(t0)
	r := streamResult{Bytes: n, Elapsed: el, TTFB: ttfb, MBps: float64(n) / (1 << 20) / el.Seconds(), Cache: resp.Header.Get("X-Cache")}
	if err != nil {
		r.Err = err.Error()
	} else if resp.StatusCode != http.StatusOK {
		r.Err = resp.Status
	}
	return r
}
