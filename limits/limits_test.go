package limits

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock replaces now for one test.
func fakeClock(t *testing.T) *time.Time {
	t.Helper()
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	old := now
	now = func() time.Time { return clock }
	t.Cleanup(func() { now = old })
	return &clock
}

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })

func do(h http.Handler, remote string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", "http://registry.npmjs.org/left-pad", nil)
	r.RemoteAddr = remote
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestRateLimit(t *testing.T) {
	clock := fakeClock(t)
	var limited atomic.Int64
	h := New(Config{RequestsPerSecond: 1, Burst: 2}, nil, func() { limited.Add(1) })(okHandler)

	steps := []struct {
		name       string
		advance    time.Duration
		remote     string
		want       int
		retryAfter string
	}{
		{"first of burst", 0, "10.0.0.1:1000", 200, ""},
		{"second of burst", 0, "10.0.0.1:1001", 200, ""},
		{"bucket empty", 0, "10.0.0.1:1002", 429, "1"},
		{"other client has its own bucket", 0, "10.0.0.2:1000", 200, ""},
		{"half a token later", 500 * time.Millisecond, "10.0.0.1:1003", 429, "1"},
		{"a token later", 500 * time.Millisecond, "10.0.0.1:1004", 200, ""},
		{"empty again", 0, "10.0.0.1:1005", 429, "1"},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			*clock = clock.Add(s.advance)
			w := do(h, s.remote)
			if w.Code != s.want {
				t.Errorf("status: got %v, want %v", w.Code, s.want)
			}
			if got := w.Header().Get("Retry-After"); got != s.retryAfter {
				t.Errorf("Retry-After: got %q, want %q", got, s.retryAfter)
			}
		})
	}
	if got := limited.Load(); got != 3 {
		t.Errorf("onLimited calls: got %v, want 3", got)
	}
}

func TestRetryAfterSlowRate(t *testing.T) {
	fakeClock(t)
	h := New(Config{RequestsPerSecond: 0.1, Burst: 1}, nil, nil)(okHandler)
	do(h, "10.0.0.1:1")
	w := do(h, "10.0.0.1:1")
	if w.Code != 429 || w.Header().Get("Retry-After") != "10" {
		t.Errorf("got %v Retry-After %q, want 429 Retry-After \"10\"", w.Code, w.Header().Get("Retry-After"))
	}
}

func TestBodyLimit(t *testing.T) {
	var sawTooLarge atomic.Bool
	reached := atomic.Int64{}
	h := New(Config{MaxBodyBytes: 10}, nil, nil)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		if _, err := io.ReadAll(r.Body); err != nil {
			sawTooLarge.Store(IsTooLarge(err))
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	tests := []struct {
		name        string
		body        string
		chunked     bool
		want        int
		wantReached int64
	}{
		{"small body", "0123456789", false, 200, 1},
		{"declared too large", "0123456789x", false, 413, 0},
		{"chunked too large", strings.Repeat("x", 100), true, 413, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reached.Store(0)
			r := httptest.NewRequest("PUT", "http://registry.npmjs.org/pkg", strings.NewReader(tt.body))
			if tt.chunked {
				r.ContentLength = -1
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.want {
				t.Errorf("status: got %v, want %v", w.Code, tt.want)
			}
			if got := reached.Load(); got != tt.wantReached {
				t.Errorf("handler reached: got %v, want %v", got, tt.wantReached)
			}
		})
	}
	if !sawTooLarge.Load() {
		t.Errorf("IsTooLarge on the chunked read error: got false, want true")
	}
}

func TestHeaderLimit(t *testing.T) {
	h := New(Config{MaxHeaderBytes: 200}, nil, nil)(okHandler)
	r := httptest.NewRequest("GET", "http://registry.npmjs.org/x", nil)
	r.Header.Set("X-Big", strings.Repeat("a", 300))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("status: got %v, want %v", w.Code, http.StatusRequestHeaderFieldsTooLarge)
	}
	if got := do(h, "10.0.0.1:1").Code; got != 200 {
		t.Errorf("small headers: got %v, want 200", got)
	}
}

func TestConcurrencyLimit(t *testing.T) {
	entered := make(chan struct{})
	unblock := make(chan struct{})
	h := New(Config{MaxConcurrent: 2, RequestsPerSecond: -1}, func(r *http.Request) string { return r.Header.Get("User") }, nil)(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Get("block") != "" {
				entered <- struct{}{}
				<-unblock
			}
			w.WriteHeader(http.StatusOK)
		}))
	req := func(user string, block bool) *httptest.ResponseRecorder {
		u := "http://h/x"
		if block {
			u += "?block=1"
		}
		r := httptest.NewRequest("GET", u, nil)
		r.Header.Set("User", user)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i := range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); codes[i] = req("alice", true).Code }()
		<-entered
	}
	if got := req("alice", false).Code; got != 429 {
		t.Errorf("third concurrent request: got %v, want 429", got)
	}
	if got := req("bob", false).Code; got != 200 {
		t.Errorf("another user: got %v, want 200", got)
	}
	close(unblock)
	wg.Wait()
	for i, c := range codes {
		if c != 200 {
			t.Errorf("blocked request %d: got %v, want 200", i, c)
		}
	}
	if got := req("alice", false).Code; got != 200 {
		t.Errorf("after release: got %v, want 200", got)
	}
}

func TestIdleClientsForgotten(t *testing.T) {
	clock := fakeClock(t)
	l := newLimiter(Config{RequestsPerSecond: 10, Burst: 10, IdleClientAfter: time.Minute}, nil, nil)
	h := l.middleware(okHandler)
	for i := range 50 {
		do(h, fmt.Sprintf("10.0.%d.1:1", i))
	}
	if got := l.clientCount(); got != 50 {
		t.Fatalf("clients: got %v, want 50", got)
	}
	*clock = clock.Add(2 * time.Minute)
	do(h, "10.9.9.9:1")
	if got := l.clientCount(); got != 1 {
		t.Errorf("clients after idle sweep: got %v, want 1", got)
	}
}

func TestIdleNeverBeforeRefill(t *testing.T) {
	l := newLimiter(Config{RequestsPerSecond: 1, Burst: 3600, IdleClientAfter: time.Minute}, nil, nil)
	if l.idle != time.Hour {
		t.Errorf("idle: got %v, want %v", l.idle, time.Hour)
	}
}

func TestDisabled(t *testing.T) {
	fakeClock(t)
	h := New(Config{RequestsPerSecond: -1, MaxConcurrent: -1, MaxBodyBytes: -1, MaxHeaderBytes: -1}, nil, nil)(okHandler)
	for i := range 5000 {
		if got := do(h, "10.0.0.1:1").Code; got != 200 {
			t.Fatalf("request %d: got %v, want 200", i, got)
		}
	}
}

func TestConfigureServer(t *testing.T) {
	s := &http.Server{IdleTimeout: time.Second}
	Config{}.ConfigureServer(s)
	if s.MaxHeaderBytes != DefaultMaxHeaderBytes || s.ReadHeaderTimeout != DefaultReadHeaderTimeout || s.IdleTimeout != time.Second {
		t.Errorf("got %d %v %v, want %d %v %v", s.MaxHeaderBytes, s.ReadHeaderTimeout, s.IdleTimeout,
			DefaultMaxHeaderBytes, DefaultReadHeaderTimeout, time.Second)
	}
}

func TestClientIP(t *testing.T) {
	tests := []struct{ remote, want string }{
		{"10.0.0.1:1234", "10.0.0.1"},
		{"[::1]:80", "::1"},
		{"pipe", "pipe"},
	}
	for _, tt := range tests {
		t.Run(tt.remote, func(t *testing.T) {
			r := &http.Request{RemoteAddr: tt.remote}
			if got := ClientIP(r); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func BenchmarkMiddleware(b *testing.B) {
	h := New(Config{RequestsPerSecond: 1e9, Burst: 1 << 30}, nil, nil)(okHandler)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		r := httptest.NewRequest("GET", "http://registry.npmjs.org/left-pad", nil)
		r.RemoteAddr = "10.0.0.1:1"
		w := httptest.NewRecorder()
		for pb.Next() {
			h.ServeHTTP(w, r)
		}
	})
}
