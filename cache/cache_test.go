package cache_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cafilprox/cafilprox/cache"
	"github.com/cafilprox/cafilprox/cache/fs"
)

// clock is a movable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newClock(t *testing.T) *clock {
	c := &clock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	t.Cleanup(cache.SetNow(c.now))
	return c
}

// upstream is a scripted registry: respond builds each response; calls
// counts requests and keeps the last request headers.
type upstream struct {
	calls   atomic.Int64
	mu      sync.Mutex
	lastHdr http.Header
	respond func(h http.Header) (*http.Response, error)
}

func (u *upstream) do(ctx context.Context, h http.Header) (*http.Response, error) {
	u.calls.Add(1)
	u.mu.Lock()
	u.lastHdr = h.Clone()
	u.mu.Unlock()
	return u.respond(h)
}

func (u *upstream) header() http.Header {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.lastHdr
}

func response(status int, body []byte, hdr ...string) *http.Response {
	h := http.Header{}
	for i := 0; i+1 < len(hdr); i += 2 {
		h.Set(hdr[i], hdr[i+1])
	}
	return &http.Response{StatusCode: status, Header: h, ContentLength: int64(len(body)),
		Body: io.NopCloser(bytes.NewReader(body))}
}

func newCache(t *testing.T, opts cache.Options) (*cache.Cache, *fs.Store, string) {
	t.Helper()
	dir := t.TempDir()
	st, err := fs.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	c, err := cache.New(st, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.WaitIdle)
	return c, st, dir
}

// get runs one Get and reads the whole body.
func get(t *testing.T, c *cache.Cache, f cache.Fetch) (string, []byte, *cache.Result, error) {
	t.Helper()
	r, err := c.Get(context.Background(), f)
	if err != nil {
		return "", nil, nil, err
	}
	if r.Upstream != nil && r.Body != r.Upstream.Body {
		t.Errorf("BYPASS Body is not Upstream.Body")
	}
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	return r.Status, b, r, err
}

func TestMetadataLifecycle(t *testing.T) {
	clk := newClock(t)
	c, _, _ := newCache(t, cache.Options{MetadataTTL: time.Minute})
	u := &upstream{}
	u.respond = func(h http.Header) (*http.Response, error) {
		if h.Get("If-None-Match") == `"v1"` {
			return response(http.StatusNotModified, nil, "ETag", `"v1"`), nil
		}
		return response(200, []byte(`{"name":"lodash"}`), "ETag", `"v1"`, "Content-Type", "application/json", "Set-Cookie", "x=y"), nil
	}
	f := cache.Fetch{Key: cache.Key("npm", "lodash", "", "full", "https://registry.npmjs.org/lodash"), Do: u.do}

	steps := []struct {
		advance    time.Duration
		wantStatus string
		wantCalls  int64
	}{
		{0, cache.StatusMiss, 1},
		{30 * time.Second, cache.StatusHit, 1},
		{time.Minute, cache.StatusRevalidated, 2},
		{30 * time.Second, cache.StatusHit, 2},
	}
	for i, s := range steps {
		t.Run(fmt.Sprint(i, s.wantStatus), func(t *testing.T) {
			clk.add(s.advance)
			status, body, r, err := get(t, c, f)
			if err != nil {
				t.Fatal(err)
			}
			c.WaitIdle()
			if status != s.wantStatus || string(body) != `{"name":"lodash"}` {
				t.Errorf("got %s %q, want %s", status, body, s.wantStatus)
			}
			if got := u.calls.Load(); got != s.wantCalls {
				t.Errorf("upstream calls: got %d, want %d", got, s.wantCalls)
			}
			if r.Info.Header.Get("Content-Type") != "application/json" || r.Info.Header.Get("Set-Cookie") != "" {
				t.Errorf("headers: got %v, want Content-Type kept and Set-Cookie dropped", r.Info.Header)
			}
		})
	}
	if got := u.header().Get("If-None-Match"); got != `"v1"` {
		t.Errorf("revalidation If-None-Match: got %q, want %q", got, `"v1"`)
	}
	st := c.Stats()
	if st.Hits != 2 || st.Misses != 1 || st.Revalidated != 1 || st.Entries != 1 {
		t.Errorf("stats: got %+v", st)
	}
}

func TestArtifactNeverExpires(t *testing.T) {
	clk := newClock(t)
	c, _, _ := newCache(t, cache.Options{MetadataTTL: time.Minute})
	u := &upstream{respond: func(http.Header) (*http.Response, error) { return response(200, []byte("tarball")), nil }}
	f := cache.Fetch{Key: "npm/lodash/4.17.21/a", Artifact: true, Do: u.do}
	get(t, c, f)
	c.WaitIdle()
	clk.add(365 * 24 * time.Hour)
	status, body, _, err := get(t, c, f)
	if err != nil || status != cache.StatusHit || string(body) != "tarball" || u.calls.Load() != 1 {
		t.Errorf("got %s %q %v calls %d, want HIT tarball with 1 upstream call", status, body, err, u.calls.Load())
	}
}

func TestNegativeCaching(t *testing.T) {
	sum := sha256.Sum256([]byte("now here"))
	t.Run("metadata", func(t *testing.T) { testNegative(t, cache.Fetch{Key: "pypi/newpkg/_/k"}) })
	// A 404 is remembered even when the artifact's digest is expected.
	t.Run("artifact with digest", func(t *testing.T) {
		testNegative(t, cache.Fetch{Key: "pypi/newpkg/1/k", Artifact: true, Expect: "sha256:" + hex.EncodeToString(sum[:])})
	})
}

func testNegative(t *testing.T, f cache.Fetch) {
	clk := newClock(t)
	c, _, _ := newCache(t, cache.Options{NegativeTTL: time.Minute})
	var exists atomic.Bool
	u := &upstream{respond: func(http.Header) (*http.Response, error) {
		if exists.Load() {
			return response(200, []byte("now here")), nil
		}
		return response(404, []byte("not found")), nil
	}}
	f.Do = u.do
	tests := []struct {
		advance    time.Duration
		publish    bool
		wantStatus string
		wantCode   int
		wantBody   string
	}{
		{0, false, cache.StatusMiss, 404, "not found"},
		{30 * time.Second, true, cache.StatusHit, 404, "not found"}, // still remembered
		{31 * time.Second, true, cache.StatusMiss, 200, "now here"}, // expired: never a permanent miss
	}
	for i, tt := range tests {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			clk.add(tt.advance)
			exists.Store(tt.publish)
			status, body, r, err := get(t, c, f)
			c.WaitIdle()
			if err != nil || status != tt.wantStatus || r.Info.Status != tt.wantCode || string(body) != tt.wantBody {
				t.Errorf("got %s %d %q %v, want %s %d %q", status, r.Info.Status, body, err, tt.wantStatus, tt.wantCode, tt.wantBody)
			}
		})
	}
}

func TestStaleIfError(t *testing.T) {
	tests := []struct {
		name       string
		fail       func() (*http.Response, error)
		advance    time.Duration
		wantStatus string
		wantErr    bool
		wantBody   string
	}{
		{"connect error within window", func() (*http.Response, error) { return nil, errors.New("dial tcp: connection refused") }, 2 * time.Hour, cache.StatusStale, false, "cached doc"},
		{"503 within window", func() (*http.Response, error) { return response(503, []byte("down")), nil }, 2 * time.Hour, cache.StatusStale, false, "cached doc"},
		{"timeout within window", func() (*http.Response, error) { return nil, context.DeadlineExceeded }, 2 * time.Hour, cache.StatusStale, false, "cached doc"},
		{"connect error past window", func() (*http.Response, error) { return nil, errors.New("dial tcp: connection refused") }, 30 * time.Hour, "", true, ""},
		{"503 past window passes through", func() (*http.Response, error) { return response(503, []byte("down")), nil }, 30 * time.Hour, cache.StatusBypass, false, "down"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock(t)
			c, _, _ := newCache(t, cache.Options{MetadataTTL: time.Minute, StaleIfError: 24 * time.Hour})
			var down atomic.Bool
			u := &upstream{respond: func(http.Header) (*http.Response, error) {
				if down.Load() {
					return tt.fail()
				}
				return response(200, []byte("cached doc")), nil
			}}
			f := cache.Fetch{Key: "npm/left-pad/_/k", Do: u.do}
			if _, _, _, err := get(t, c, f); err != nil {
				t.Fatal(err)
			}
			c.WaitIdle()
			down.Store(true)
			clk.add(tt.advance)
			status, body, _, err := get(t, c, f)
			if (err != nil) != tt.wantErr || status != tt.wantStatus || string(body) != tt.wantBody {
				t.Errorf("got %s %q err %v, want %s %q err %v", status, body, err, tt.wantStatus, tt.wantBody, tt.wantErr)
			}
		})
	}
}

func TestBypassNotStored(t *testing.T) {
	newClock(t)
	c, st, _ := newCache(t, cache.Options{})
	u := &upstream{respond: func(http.Header) (*http.Response, error) { return response(403, []byte("forbidden")), nil }}
	f := cache.Fetch{Key: "npm/private/1/k", Do: u.do}
	for i := range 2 {
		status, body, r, err := get(t, c, f)
		if err != nil || status != cache.StatusBypass || r.Upstream.StatusCode != 403 || string(body) != "forbidden" {
			t.Errorf("call %d: got %s %q %v, want BYPASS 403", i, status, body, err)
		}
	}
	if _, err := st.Stat(context.Background(), f.Key); !errors.Is(err, cache.ErrNotFound) {
		t.Errorf("stored after 403: got %v, want ErrNotFound", err)
	}
	if got := u.calls.Load(); got != 2 {
		t.Errorf("upstream calls: got %d, want 2", got)
	}
}

// gatedBody streams first, then blocks until release is closed, then rest.
type gatedBody struct {
	first, rest []byte
	release     chan struct{}
	started     chan struct{}
	once        sync.Once
}

func (g *gatedBody) Read(p []byte) (int, error) {
	if len(g.first) > 0 {
		n := copy(p, g.first)
		g.first = g.first[n:]
		return n, nil
	}
	g.once.Do(func() { close(g.started) })
	<-g.release
	if len(g.rest) == 0 {
		return 0, io.EOF
	}
	n := copy(p, g.rest)
	g.rest = g.rest[n:]
	return n, nil
}

func (g *gatedBody) Close() error { return nil }

func payload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

func TestSingleflight50(t *testing.T) {
	newClock(t)
	c, _, _ := newCache(t, cache.Options{})
	body := payload(300 << 10)
	g := &gatedBody{first: body[:100<<10], rest: body[100<<10:], release: make(chan struct{}), started: make(chan struct{})}
	u := &upstream{respond: func(http.Header) (*http.Response, error) {
		return &http.Response{StatusCode: 200, Header: http.Header{}, ContentLength: int64(len(body)), Body: g}, nil
	}}
	f := cache.Fetch{Key: "npm/big/1/k", Artifact: true, Do: u.do}
	const n = 50
	var wg sync.WaitGroup
	results := make(chan error, n)
	statuses := make(chan string, n)
	var joined sync.WaitGroup
	joined.Add(n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := c.Get(context.Background(), f)
			joined.Done()
			if err != nil {
				results <- err
				statuses <- ""
				return
			}
			defer r.Body.Close()
			got, err := io.ReadAll(r.Body)
			if err == nil && !bytes.Equal(got, body) {
				err = fmt.Errorf("body of %d bytes differs", len(got))
			}
			results <- err
			statuses <- r.Status
		}()
	}
	// Every caller holds its Result while the upstream is paused mid-body:
	// all 50 share the one download.
	joined.Wait()
	<-g.started
	close(g.release)
	wg.Wait()
	close(results)
	close(statuses)
	for err := range results {
		if err != nil {
			t.Error(err)
		}
	}
	if got := u.calls.Load(); got != 1 {
		t.Errorf("upstream calls: got %d, want 1", got)
	}
	counts := map[string]int{}
	for s := range statuses {
		counts[s]++
	}
	if counts[cache.StatusMiss] != n {
		t.Errorf("statuses: got %v, want %d MISS", counts, n)
	}
}

func TestFollowersStreamBeforeDownloadCompletes(t *testing.T) {
	newClock(t)
	c, _, _ := newCache(t, cache.Options{})
	body := payload(512 << 10)
	const firstPart = 256 << 10
	g := &gatedBody{first: body[:firstPart], rest: body[firstPart:], release: make(chan struct{}), started: make(chan struct{})}
	u := &upstream{respond: func(http.Header) (*http.Response, error) {
		return &http.Response{StatusCode: 200, Header: http.Header{}, ContentLength: -1, Body: g}, nil
	}}
	f := cache.Fetch{Key: "pypi/torch/2/k", Artifact: true, Do: u.do}
	const n = 5
	readers := make([]*cache.Result, n)
	for i := range readers {
		r, err := c.Get(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		readers[i] = r
	}
	<-g.started // upstream has sent the first part and is now paused
	for i, r := range readers {
		if r.Status != cache.StatusMiss {
			t.Errorf("reader %d: status %s, want MISS", i, r.Status)
		}
		// Everything but the withheld final chunk is readable now.
		buf := make([]byte, firstPart-(64<<10))
		if _, err := io.ReadFull(r.Body, buf); err != nil {
			t.Fatalf("reader %d before upstream finished: %v", i, err)
		}
		if !bytes.Equal(buf, body[:len(buf)]) {
			t.Errorf("reader %d: early bytes differ", i)
		}
	}
	if got := u.calls.Load(); got != 1 {
		t.Errorf("upstream calls: got %d, want 1", got)
	}
	close(g.release)
	for i, r := range readers {
		rest, err := io.ReadAll(r.Body)
		if err != nil || !bytes.Equal(rest, body[firstPart-(64<<10):]) {
			t.Errorf("reader %d rest: %d bytes, err %v", i, len(rest), err)
		}
	}
}

func TestExpectedDigest(t *testing.T) {
	body := payload(200 << 10)
	s256 := sha256.Sum256(body)
	s512 := sha512.Sum512(body)
	tests := []struct {
		name    string
		expect  string
		wantErr bool
	}{
		{"sha256 match", "sha256:" + hex.EncodeToString(s256[:]), false},
		{"sri sha512 match", "sha512-" + base64.StdEncoding.EncodeToString(s512[:]), false},
		{"sha256 mismatch", "sha256:" + strings.Repeat("00", 32), true},
		{"sha1 mismatch", "sha1:" + strings.Repeat("ab", 20), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			newClock(t)
			c, st, _ := newCache(t, cache.Options{})
			u := &upstream{respond: func(http.Header) (*http.Response, error) { return response(200, body), nil }}
			f := cache.Fetch{Key: "npm/x/1/k", Artifact: true, Expect: tt.expect, Do: u.do}
			_, got, _, err := get(t, c, f)
			c.WaitIdle()
			_, serr := st.Stat(context.Background(), f.Key)
			if tt.wantErr {
				if !errors.Is(err, cache.ErrIntegrity) {
					t.Errorf("err: got %v, want ErrIntegrity", err)
				}
				if len(got) >= len(body) {
					t.Errorf("client received %d of %d bytes, want the body withheld", len(got), len(body))
				}
				if !errors.Is(serr, cache.ErrNotFound) {
					t.Errorf("stored after mismatch: got %v, want ErrNotFound", serr)
				}
				return
			}
			if err != nil || !bytes.Equal(got, body) || serr != nil {
				t.Errorf("got %d bytes err %v stat %v, want full body stored", len(got), err, serr)
			}
		})
	}
	c, _, _ := newCache(t, cache.Options{})
	if _, err := c.Get(context.Background(), cache.Fetch{Key: "a/b", Expect: "crc32:00", Do: (&upstream{}).do}); err == nil {
		t.Error("unknown digest algorithm: got nil error")
	}
}

func TestCorruptEntryNeverServed(t *testing.T) {
	body := payload(100 << 10)
	tests := []struct {
		name    string
		corrupt func(t *testing.T, path string)
		// wantStatus: the first read after corruption is a HIT that fails
		// mid-body (byte flip) or a MISS that refetches (size mismatch).
		wantStatus string
	}{
		{"flip one byte", func(t *testing.T, p string) {
			f, err := os.OpenFile(p, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var b [1]byte
			f.ReadAt(b[:], 5000)
			b[0] ^= 0x01
			if _, err := f.WriteAt(b[:], 5000); err != nil {
				t.Fatal(err)
			}
		}, cache.StatusHit},
		{"flip the last byte", func(t *testing.T, p string) {
			f, err := os.OpenFile(p, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var b [1]byte
			f.ReadAt(b[:], int64(len(body)-1))
			b[0] ^= 0x80
			f.WriteAt(b[:], int64(len(body)-1))
		}, cache.StatusHit},
		{"truncate", func(t *testing.T, p string) {
			if err := os.Truncate(p, 1000); err != nil {
				t.Fatal(err)
			}
		}, cache.StatusMiss},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			newClock(t)
			c, _, dir := newCache(t, cache.Options{})
			u := &upstream{respond: func(http.Header) (*http.Response, error) { return response(200, body), nil }}
			f := cache.Fetch{Key: "cargo/serde/1.0.0/k", Artifact: true, Do: u.do}
			get(t, c, f)
			c.WaitIdle()
			bodies, _ := filepath.Glob(filepath.Join(dir, "objects", "cargo", "serde", "1.0.0", "k#b*"))
			if len(bodies) != 1 {
				t.Fatalf("body files: got %v, want one", bodies)
			}
			tt.corrupt(t, bodies[0])

			status, got, _, err := get(t, c, f)
			c.WaitIdle()
			if status != tt.wantStatus {
				t.Errorf("status: got %s, want %s", status, tt.wantStatus)
			}
			if tt.wantStatus == cache.StatusHit {
				if !errors.Is(err, cache.ErrIntegrity) {
					t.Errorf("err: got %v, want ErrIntegrity", err)
				}
				if len(got) >= len(body) {
					t.Errorf("client received %d of %d bytes of a corrupt entry", len(got), len(body))
				}
				if c.Stats().IntegrityFailures != 1 {
					t.Errorf("integrity failures: got %d, want 1", c.Stats().IntegrityFailures)
				}
				// Dropped: the next request refetches.
				status, got, _, err = get(t, c, f)
				c.WaitIdle()
				if status != cache.StatusMiss {
					t.Errorf("after corruption: got %s, want MISS", status)
				}
			}
			if err != nil || !bytes.Equal(got, body) {
				t.Errorf("refetch: got %d bytes err %v, want full body", len(got), err)
			}
			if u.calls.Load() != 2 {
				t.Errorf("upstream calls: got %d, want 2", u.calls.Load())
			}
			if status, _, _, _ := get(t, c, f); status != cache.StatusHit {
				t.Errorf("after refetch: got %s, want HIT", status)
			}
		})
	}
}

func TestTruncatedDownloadNotStored(t *testing.T) {
	newClock(t)
	c, st, _ := newCache(t, cache.Options{})
	u := &upstream{respond: func(http.Header) (*http.Response, error) {
		r := response(200, payload(50<<10))
		r.ContentLength = 100 << 10 // the connection dropped half way
		return r, nil
	}}
	f := cache.Fetch{Key: "npm/cut/1/k", Artifact: true, Do: u.do}
	_, got, _, err := get(t, c, f)
	c.WaitIdle()
	if err == nil || len(got) >= 50<<10 {
		t.Errorf("got %d bytes err %v, want an error before the end", len(got), err)
	}
	if _, err := st.Stat(context.Background(), f.Key); !errors.Is(err, cache.ErrNotFound) {
		t.Errorf("stored after truncated download: got %v, want ErrNotFound", err)
	}
}

func TestEvictionLRU(t *testing.T) {
	clk := newClock(t)
	c, st, _ := newCache(t, cache.Options{MaxSize: 3500})
	fetch := func(key string) cache.Fetch {
		return cache.Fetch{Key: key, Artifact: true, Do: func(context.Context, http.Header) (*http.Response, error) {
			return response(200, payload(1000)), nil
		}}
	}
	for _, k := range []string{"npm/a/1/k", "npm/b/1/k", "npm/c/1/k"} {
		get(t, c, fetch(k))
		c.WaitIdle()
		clk.add(time.Minute)
	}
	get(t, c, fetch("npm/a/1/k")) // a is now the most recent
	clk.add(time.Minute)
	get(t, c, fetch("npm/d/1/k")) // 4000 > 3500: evict down to 3150 → b goes
	c.WaitIdle()
	want := map[string]bool{"npm/a/1/k": true, "npm/b/1/k": false, "npm/c/1/k": true, "npm/d/1/k": true}
	for k, present := range want {
		_, err := st.Stat(context.Background(), k)
		if (err == nil) != present {
			t.Errorf("%s present: got %v, want %v", k, err == nil, present)
		}
	}
	s := c.Stats()
	if s.Evictions != 1 || s.Size != 3000 || s.Entries != 3 {
		t.Errorf("stats: got %+v, want 1 eviction, size 3000, 3 entries", s)
	}
}

func TestIndexSurvivesRestart(t *testing.T) {
	newClock(t)
	c, _, dir := newCache(t, cache.Options{})
	for i, k := range []string{"npm/a/1/k", "npm/b/1/k"} {
		get(t, c, cache.Fetch{Key: k, Artifact: true, Do: func(context.Context, http.Header) (*http.Response, error) {
			return response(200, payload(100*(i+1))), nil
		}})
	}
	c.WaitIdle()
	st, err := fs.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := cache.New(st, cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s := c2.Stats(); s.Entries != 2 || s.Size != 300 {
		t.Errorf("after restart: got %d entries %d bytes, want 2 and 300", s.Entries, s.Size)
	}
}

func TestPurge(t *testing.T) {
	newClock(t)
	c, _, _ := newCache(t, cache.Options{})
	keys := []string{
		cache.Key("npm", "lodash", "4.17.21", "", "u1"),
		cache.Key("npm", "lodash", "4.17.20", "", "u2"),
		cache.Key("npm", "lodash", "", "full", "u3"),
		cache.Key("npm", "lodash-es", "1.0.0", "", "u4"),
		cache.Key("pypi", "lodash", "1.0", "", "u5"),
	}
	for _, k := range keys {
		get(t, c, cache.Fetch{Key: k, Artifact: true, Do: func(context.Context, http.Header) (*http.Response, error) {
			return response(200, []byte("x")), nil
		}})
	}
	c.WaitIdle()
	tests := []struct {
		prefix string
		want   int
	}{
		{cache.PurgePrefix("npm", "lodash", "4.17.21"), 1},
		{cache.PurgePrefix("npm", "lodash", ""), 2},
		{cache.PurgePrefix("npm", "", ""), 1},
		{cache.PurgePrefix("", "", ""), 1},
	}
	for _, tt := range tests {
		n, err := c.Purge(context.Background(), tt.prefix)
		if err != nil || n != tt.want {
			t.Errorf("Purge(%q): got %d %v, want %d", tt.prefix, n, err, tt.want)
		}
	}
	if s := c.Stats(); s.Entries != 0 || s.Size != 0 {
		t.Errorf("after purging all: got %+v", s)
	}
}

func TestKey(t *testing.T) {
	tests := []struct {
		eco, pkg, version, variant, url string
		want                            string
	}{
		{"npm", "@types/node", "20.1.0", "", "https://registry.npmjs.org/@types/node/-/node-20.1.0.tgz", "npm/@types%2Fnode/20.1.0/"},
		{"pypi", "requests", "", "json", "https://pypi.org/pypi/requests/json", "pypi/requests/_/"},
		{"npm", "_", "..", "", "u", "npm/%5F/%2E./"},
		{"go", "../../etc/passwd", "v1", "", "u", "go/%2E.%2F..%2Fetc%2Fpasswd/v1/"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			k := cache.Key(tt.eco, tt.pkg, tt.version, tt.variant, tt.url)
			if !strings.HasPrefix(k, tt.want) || cache.ValidKey(k) != nil || strings.Count(k, "/") != 3 {
				t.Errorf("got %q, want prefix %q and 4 valid segments", k, tt.want)
			}
			if !strings.HasPrefix(k, cache.PurgePrefix(tt.eco, tt.pkg, tt.version)) {
				t.Errorf("key %q not under its purge prefix %q", k, cache.PurgePrefix(tt.eco, tt.pkg, tt.version))
			}
		})
	}
	a := cache.Key("npm", "lodash", "", "abbreviated", "https://registry.npmjs.org/lodash")
	b := cache.Key("npm", "lodash", "", "full", "https://registry.npmjs.org/lodash")
	if a == b {
		t.Errorf("variants share key %q", a)
	}
	if got := cache.Key("npm", "lodash", "", "full", "https://registry.npmjs.org/lodash"); got != b {
		t.Errorf("unstable key: got %q, want %q", got, b)
	}
	long := cache.Key(strings.Repeat("e", 200), strings.Repeat("\x00", 200), strings.Repeat("/", 200), "", "u")
	if err := cache.ValidKey(long); err != nil {
		t.Errorf("long components: key %q invalid: %v", long, err)
	}
}

func FuzzEscapeSegment(f *testing.F) {
	for _, s := range []string{"", ".", "..", "%2e%2e", "a/b", "\x00", "@scope%2Fname", "ü", "#m"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e := cache.EscapeSegment(s)
		if strings.ContainsAny(e, "/\\\x00#") || (s != "" && (e == "." || e == "..")) || strings.HasPrefix(e, ".") {
			t.Fatalf("EscapeSegment(%q) = %q is not a safe name", s, e)
		}
		u, err := cache.UnescapeSegment(e)
		if err != nil || u != s {
			t.Fatalf("UnescapeSegment(%q) = %q, %v; want %q", e, u, err, s)
		}
		k := cache.Key(s, s, s, s, s)
		if cache.ValidKey(k) != nil {
			t.Fatalf("Key(%q) = %q is invalid", s, k)
		}
	})
}

// TestFirstCallerGoneDownloadContinues: the caller that started the
// download disconnects; the others still get the whole body and it is
// stored.
func TestFirstCallerGoneDownloadContinues(t *testing.T) {
	newClock(t)
	c, st, _ := newCache(t, cache.Options{})
	body := payload(200 << 10)
	g := &gatedBody{first: body[:100<<10], rest: body[100<<10:], release: make(chan struct{}), started: make(chan struct{})}
	u := &upstream{respond: func(http.Header) (*http.Response, error) {
		return &http.Response{StatusCode: 200, Header: http.Header{}, ContentLength: int64(len(body)), Body: g}, nil
	}}
	f := cache.Fetch{Key: "npm/gone/1/k", Artifact: true, Do: u.do}
	ctx, cancel := context.WithCancel(context.Background())
	first, err := c.Get(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	second, err := c.Get(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Body.Close()
	if first.Info.Size != int64(len(body)) {
		t.Errorf("MISS Info.Size: got %d, want %d", first.Info.Size, len(body))
	}
	<-g.started
	cancel()
	if _, err := io.ReadAll(first.Body); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled caller: got %v, want context.Canceled", err)
	}
	first.Body.Close()
	close(g.release)
	got, err := io.ReadAll(second.Body)
	if err != nil || !bytes.Equal(got, body) {
		t.Errorf("remaining caller: got %d bytes, err %v; want %d", len(got), err, len(body))
	}
	c.WaitIdle()
	if info, err := st.Stat(context.Background(), f.Key); err != nil || info.Size != int64(len(body)) {
		t.Errorf("stored: got %+v %v, want the full body", info, err)
	}
}
