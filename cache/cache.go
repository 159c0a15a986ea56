package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// now is the clock; tests move it.
var now = time.Now

// Result statuses, suitable for the X-Cache header (the pipeline may show
// REVALIDATED as HIT).
const (
	StatusHit         = "HIT"         // served from the store, fresh
	StatusMiss        = "MISS"        // fetched upstream (and stored when cacheable)
	StatusStale       = "STALE"       // upstream failed; a stale copy within StaleIfError served
	StatusRevalidated = "REVALIDATED" // upstream answered 304; stored copy served
	StatusBypass      = "BYPASS"      // upstream response passed through uncached
)

// holdback is how many final bytes a reader withholds until the body is
// verified, so that a client never receives a complete corrupt body.
const holdback = 32 << 10

// StoredHeaders are the upstream response headers kept with an entry.
var StoredHeaders = []string{
	"Content-Type", "Content-Encoding", "Content-Disposition", "Content-Language",
	"ETag", "Last-Modified",
}

// Options configures a Cache. Zero values select the defaults noted.
type Options struct {
	// MaxSize bounds the total body size in bytes; entries are evicted by
	// least recent access beyond it. Zero means unbounded.
	MaxSize int64
	// MetadataTTL is the freshness of a metadata entry when Fetch.TTL is
	// zero. Zero means 5 minutes.
	MetadataTTL time.Duration
	// NegativeTTL is how long a 404 is remembered. Zero means 1 minute.
	NegativeTTL time.Duration
	// StaleIfError is how long past its expiry an entry may still be
	// served when the upstream fails. Zero means never.
	StaleIfError time.Duration
	// SpoolDir holds download spool files. Empty means the store's
	// Spooler directory, else os.TempDir().
	SpoolDir string
	// Logger receives background errors (failed saves, evictions). Nil
	// discards them.
	Logger *slog.Logger
}

// Fetch describes one request for a cacheable resource.
type Fetch struct {
	Key string // from Key()
	// Artifact marks an immutable file: a stored copy never expires.
	// Otherwise the entry is metadata and is revalidated after TTL.
	Artifact bool
	// TTL is the metadata freshness; zero means Options.MetadataTTL.
	TTL time.Duration
	// Expect is the digest the registry published ("sha256:<hex>",
	// "sha512:<hex>", "sha1:<hex>", "md5:<hex>", or SRI "sha512-<base64>");
	// a download that does not match fails with ErrIntegrity and is not
	// stored. Empty means no published digest.
	Expect string
	// Do performs the upstream request, adding h (If-None-Match,
	// If-Modified-Since when revalidating) to it. Its context is not
	// cancelled when the first caller goes away: the download carries on
	// for the others and for the store, bounded by the transport's own
	// timeouts.
	Do func(ctx context.Context, h http.Header) (*http.Response, error)
}

// Result is what Get serves. Body is always set and the caller closes it;
// with StatusBypass it is Upstream.Body. A Body may fail mid-read (ErrIntegrity, upstream
// error): the pipeline must then abort the client response rather than end
// it cleanly, since the final bytes are withheld until verified.
type Result struct {
	Body io.ReadCloser
	// Info describes Body. On a MISS, Size is the upstream Content-Length
	// (-1 when unknown) and SHA256 is empty. Status is 200 or 404.
	Info     Info
	Status   string
	Upstream *http.Response // set with StatusBypass: relay it as is
}

// Stats are counters since New plus the index totals.
type Stats struct {
	Size, MaxSize, Entries                         int64
	Hits, Misses, Stale, Revalidated, Bypass       int64
	Evictions, IntegrityFailures, UpstreamFailures int64
}

// Cache serves Fetches from a Store. It is safe for concurrent use.
type Cache struct {
	store Store
	opts  Options
	log   *slog.Logger

	mu      sync.Mutex
	flights map[string]*flight

	imu   sync.Mutex
	index map[string]*entry
	size  int64

	hits, misses, stale, revalidated, bypass atomic.Int64
	evictions, corrupt, upstreamFail         atomic.Int64

	bg sync.WaitGroup // background downloads, for tests
}

type entry struct {
	size    int64
	last    time.Time // last access
	touched time.Time // last persisted with Toucher
}

// New returns a cache over store, rebuilding the size/LRU index from a
// listing of the store.
func New(store Store, opts Options) (*Cache, error) {
	if opts.MetadataTTL <= 0 {
		opts.MetadataTTL = 5 * time.Minute
	}
	if opts.NegativeTTL <= 0 {
		opts.NegativeTTL = time.Minute
	}
	if opts.SpoolDir == "" {
		if sp, ok := store.(Spooler); ok {
			opts.SpoolDir = sp.SpoolDir()
		} else {
			opts.SpoolDir = os.TempDir()
		}
	}
	if err := os.MkdirAll(opts.SpoolDir, 0o750); err != nil {
		return nil, fmt.Errorf("cache: spool dir: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Cache{store: store, opts: opts, log: log, flights: map[string]*flight{}, index: map[string]*entry{}}
	err := store.List(context.Background(), "", func(i Info) error {
		last := i.LastAccess
		if last.IsZero() {
			last = i.StoredAt
		}
		c.index[i.Key] = &entry{size: i.Size, last: last, touched: last}
		c.size += i.Size
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cache: rebuild index: %w", err)
	}
	c.evict(context.Background())
	return c, nil
}

// WaitIdle waits until no download or save runs in the background: call
// it at shutdown, after the listeners stopped, so that downloads being
// stored finish.
func (c *Cache) WaitIdle() { c.bg.Wait() }

// Stats returns a snapshot of the counters.
func (c *Cache) Stats() Stats {
	c.imu.Lock()
	size, n := c.size, int64(len(c.index))
	c.imu.Unlock()
	return Stats{Size: size, MaxSize: c.opts.MaxSize, Entries: n,
		Hits: c.hits.Load(), Misses: c.misses.Load(), Stale: c.stale.Load(),
		Revalidated: c.revalidated.Load(), Bypass: c.bypass.Load(), Evictions: c.evictions.Load(),
		IntegrityFailures: c.corrupt.Load(), UpstreamFailures: c.upstreamFail.Load()}
}

// Get serves f from the store when fresh, otherwise from one shared
// upstream fetch; see the Status constants for the outcomes. Errors are
// upstream failures with no usable stale copy, ErrIntegrity for a download
// that does not match f.Expect (detected before Get returns only when the
// body is complete by then; otherwise the Body's Read fails), and
// ErrInvalidKey.
func (c *Cache) Get(ctx context.Context, f Fetch) (*Result, error) {
	if err := ValidKey(f.Key); err != nil {
		return nil, fmt.Errorf("cache: %q: %w", f.Key, err)
	}
	if f.Do == nil {
		return nil, errors.New("cache: Fetch.Do is nil")
	}
	exp, err := parseExpect(f.Expect)
	if err != nil {
		return nil, err
	}
	rc, info, err := c.store.Get(ctx, f.Key)
	var cached *Info
	switch {
	case err == nil && exp.contradicts(info):
		rc.Close()
		c.log.Warn("cache: stored entry does not match the published digest; refetching", "key", f.Key)
		c.drop(f.Key)
	case err == nil && now().Before(c.expiry(info, f)):
		c.hits.Add(1)
		c.touch(f.Key)
		return &Result{Body: c.verify(rc, info), Info: info, Status: StatusHit}, nil
	case err == nil:
		rc.Close()
		cached = &info
	case errors.Is(err, ErrIntegrity):
		c.corrupt.Add(1)
		c.log.Warn("cache: corrupt entry dropped", "key", f.Key, "err", err)
		c.drop(f.Key)
	case !errors.Is(err, ErrNotFound):
		// A failing store must not stop the proxy: fetch upstream.
		c.log.Error("cache: store read failed", "key", f.Key, "err", err)
	}
	return c.fetch(ctx, f, exp, cached)
}

// expiry says until when an entry is fresh.
func (c *Cache) expiry(info Info, f Fetch) time.Time {
	switch {
	case info.Status == http.StatusNotFound:
		return info.StoredAt.Add(c.opts.NegativeTTL)
	case f.Artifact:
		return time.Unix(1<<62, 0)
	case f.TTL > 0:
		return info.StoredAt.Add(f.TTL)
	}
	return info.StoredAt.Add(c.opts.MetadataTTL)
}

// Purge deletes every entry whose key starts with prefix (see PurgePrefix)
// and returns how many it deleted.
func (c *Cache) Purge(ctx context.Context, prefix string) (int, error) {
	var keys []string
	if err := c.store.List(ctx, prefix, func(i Info) error {
		keys = append(keys, i.Key)
		return nil
	}); err != nil {
		return 0, fmt.Errorf("cache: purge %q: %w", prefix, err)
	}
	n := 0
	for _, k := range keys {
		if err := c.store.Delete(ctx, k); err != nil {
			return n, fmt.Errorf("cache: purge %q: %w", prefix, err)
		}
		c.forget(k)
		n++
	}
	return n, nil
}

// touch records an access for LRU; it persists it (Toucher) at most every
// ten minutes per entry so that hits stay cheap.
func (c *Cache) touch(key string) {
	t := now()
	c.imu.Lock()
	e := c.index[key]
	persist := false
	if e != nil {
		e.last = t
		if t.Sub(e.touched) > 10*time.Minute {
			e.touched, persist = t, true
		}
	}
	c.imu.Unlock()
	if tc, ok := c.store.(Toucher); ok && persist {
		if err := tc.Touch(context.Background(), key, t); err != nil {
			c.log.Debug("cache: touch failed", "key", key, "err", err)
		}
	}
}

func (c *Cache) remember(key string, size int64) {
	t := now()
	c.imu.Lock()
	if e := c.index[key]; e != nil {
		c.size -= e.size
	}
	c.index[key] = &entry{size: size, last: t, touched: t}
	c.size += size
	c.imu.Unlock()
}

func (c *Cache) forget(key string) {
	c.imu.Lock()
	if e := c.index[key]; e != nil {
		c.size -= e.size
		delete(c.index, key)
	}
	c.imu.Unlock()
}

// drop deletes a bad entry so that the next request refetches it.
func (c *Cache) drop(key string) {
	if err := c.store.Delete(context.Background(), key); err != nil {
		c.log.Error("cache: delete failed", "key", key, "err", err)
	}
	c.forget(key)
}

// evict deletes least recently accessed entries until the total is under
// 90% of MaxSize (a low-water mark, so eviction does not run on every save).
func (c *Cache) evict(ctx context.Context) {
	if c.opts.MaxSize <= 0 {
		return
	}
	c.imu.Lock()
	if c.size <= c.opts.MaxSize {
		c.imu.Unlock()
		return
	}
	type kv struct {
		key string
		e   *entry
	}
	all := make([]kv, 0, len(c.index))
	for k, e := range c.index {
		all = append(all, kv{k, e})
	}
	target := c.opts.MaxSize / 10 * 9
	total := c.size
	c.imu.Unlock()
	sort.Slice(all, func(i, j int) bool { return all[i].e.last.Before(all[j].e.last) })
	for _, x := range all {
		if total <= target {
			break
		}
		c.mu.Lock()
		busy := c.flights[x.key] != nil
		c.mu.Unlock()
		if busy {
			continue
		}
		if err := c.store.Delete(ctx, x.key); err != nil {
			c.log.Error("cache: evict failed", "key", x.key, "err", err)
			continue
		}
		c.forget(x.key)
		total -= x.e.size
		c.evictions.Add(1)
	}
}

// filterHeader keeps the StoredHeaders of an upstream response.
func filterHeader(h http.Header) http.Header {
	out := http.Header{}
	for _, k := range StoredHeaders {
		if v := h.Values(k); len(v) > 0 {
			out[http.CanonicalHeaderKey(k)] = append([]string(nil), v...)
		}
	}
	return out
}
