// Package limits protects the proxy from runaway or abusive clients: header
// and body size limits, a per-client concurrency limit and a per-client
// token-bucket rate limit, as HTTP middleware, plus the server timeouts that
// go with them.
//
// The limits exist to stop a client that misbehaves (a retry storm, a
// scanner, a broken build looping on one URL), not to shape normal
// installs, so the defaults are generous: a warm `npm ci` of a large
// project through a cache peaks at a few hundred requests per second from
// one machine, and package managers retry 429s, which only slows them.
package limits

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// now is the clock for token buckets and idle cleanup; tests replace it.
var now = time.Now

// Defaults applied by Config.WithDefaults to zero fields.
const (
	DefaultRequestsPerSecond = 200
	DefaultBurst             = 1000
	DefaultMaxConcurrent     = 64
	DefaultMaxBodyBytes      = 100 << 20 // npm publish bodies carry a base64 tarball
	DefaultMaxHeaderBytes    = 64 << 10
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout       = 2 * time.Minute
	DefaultIdleClientAfter   = 10 * time.Minute
)

// Config sets the limits. A zero field takes its default; a negative
// numeric field disables that limit.
type Config struct {
	// RequestsPerSecond is each client's sustained request rate; default 200.
	RequestsPerSecond float64
	// Burst is how many requests a client may make at once above the rate
	// (the bucket size); default 1000.
	Burst int
	// MaxConcurrent is each client's limit of requests in progress; default 64.
	MaxConcurrent int
	// MaxBodyBytes bounds a request body; default 100 MiB. Larger declared
	// bodies get 413 at once; chunked bodies fail when read past the limit
	// (see IsTooLarge).
	MaxBodyBytes int64
	// MaxHeaderBytes bounds the request line plus headers; default 64 KiB.
	// It is set on the http.Server by ConfigureServer (which answers 431)
	// and checked again by the middleware for requests read elsewhere, such
	// as inside MITM tunnels.
	MaxHeaderBytes int
	// ReadHeaderTimeout bounds reading a request's headers (slowloris);
	// default 10s. Set by ConfigureServer.
	ReadHeaderTimeout time.Duration
	// IdleTimeout bounds keep-alive idle time between requests; default 2m.
	// Set by ConfigureServer. Read and write timeouts for whole requests are
	// deliberately not set: artifacts of gigabytes must be able to stream.
	IdleTimeout time.Duration
	// IdleClientAfter is how long a client must be idle before its state is
	// forgotten; default 10m (never less than a full bucket refill).
	IdleClientAfter time.Duration
	// Respond writes refusals (413, 429, 431); nil writes a short text body.
	Respond func(w http.ResponseWriter, r *http.Request, status int, msg string)
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.RequestsPerSecond == 0 {
		c.RequestsPerSecond = DefaultRequestsPerSecond
	}
	if c.Burst == 0 {
		c.Burst = DefaultBurst
	}
	if c.MaxConcurrent == 0 {
		c.MaxConcurrent = DefaultMaxConcurrent
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.MaxHeaderBytes == 0 {
		c.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if c.ReadHeaderTimeout == 0 {
		c.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.IdleClientAfter == 0 {
		c.IdleClientAfter = DefaultIdleClientAfter
	}
	if c.Respond == nil {
		c.Respond = respondText
	}
	return c
}

// ConfigureServer sets the server's header size limit and timeouts from c
// (after defaults), leaving fields the caller already set alone.
func (c Config) ConfigureServer(s *http.Server) {
	c = c.WithDefaults()
	if s.MaxHeaderBytes == 0 && c.MaxHeaderBytes > 0 {
		s.MaxHeaderBytes = c.MaxHeaderBytes
	}
	if s.ReadHeaderTimeout == 0 && c.ReadHeaderTimeout > 0 {
		s.ReadHeaderTimeout = c.ReadHeaderTimeout
	}
	if s.IdleTimeout == 0 && c.IdleTimeout > 0 {
		s.IdleTimeout = c.IdleTimeout
	}
}

func respondText(w http.ResponseWriter, _ *http.Request, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	fmt.Fprintln(w, msg)
}

// IsTooLarge reports whether err comes from reading a body past
// MaxBodyBytes; the handler should then answer 413.
func IsTooLarge(err error) bool {
	var e *http.MaxBytesError
	return errors.As(err, &e)
}

// ClientIP is the default client key: the remote address without its port.
func ClientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// client is one client's bucket and in-flight count.
type client struct {
	tokens   float64
	last     time.Time // of the last refill
	inflight int
}

type limiter struct {
	cfg       Config
	key       func(*http.Request) string
	onLimited func()

	mu        sync.Mutex
	clients   map[string]*client
	idle      time.Duration
	lastSweep time.Time
}

// New returns middleware enforcing cfg (after defaults). clientKey names
// the client (nil means ClientIP; use the proxy user when authenticated,
// so users behind one NAT do not share a budget). onLimited, when set, is
// called for every 429 (pass metrics.RateLimited).
//
// Client state is swept lazily, at most every IdleClientAfter/2, from the
// request path: clients idle longer than IdleClientAfter with nothing in
// flight are forgotten, which is exact because their bucket would be full
// again anyway. So memory stays bounded by the clients seen recently,
// without a background goroutine to stop.
func New(cfg Config, clientKey func(*http.Request) string, onLimited func()) func(http.Handler) http.Handler {
	return newLimiter(cfg, clientKey, onLimited).middleware
}

func newLimiter(cfg Config, clientKey func(*http.Request) string, onLimited func()) *limiter {
	cfg = cfg.WithDefaults()
	if clientKey == nil {
		clientKey = ClientIP
	}
	l := &limiter{cfg: cfg, key: clientKey, onLimited: onLimited, clients: map[string]*client{}, idle: cfg.IdleClientAfter, lastSweep: now()}
	if cfg.RequestsPerSecond > 0 && cfg.Burst > 0 {
		refill := time.Duration(float64(cfg.Burst) / cfg.RequestsPerSecond * float64(time.Second))
		l.idle = max(l.idle, refill)
	}
	return l
}

func (l *limiter) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if limit := l.cfg.MaxHeaderBytes; limit > 0 && headerSize(r) > limit {
			l.cfg.Respond(w, r, http.StatusRequestHeaderFieldsTooLarge, "request headers too large")
			return
		}
		if limit := l.cfg.MaxBodyBytes; limit > 0 {
			if r.ContentLength > limit {
				l.cfg.Respond(w, r, http.StatusRequestEntityTooLarge,
					fmt.Sprintf("request body of %d bytes exceeds the limit of %d bytes", r.ContentLength, limit))
				return
			}
			if r.Body != nil && r.Body != http.NoBody {
				r.Body = http.MaxBytesReader(w, r.Body, limit)
			}
		}
		key := l.key(r)
		retry, ok := l.acquire(key)
		if !ok {
			if l.onLimited != nil {
				l.onLimited()
			}
			w.Header().Set("Retry-After", strconv.Itoa(retry))
			l.cfg.Respond(w, r, http.StatusTooManyRequests, "too many requests from this client, retry later")
			return
		}
		defer l.release(key)
		next.ServeHTTP(w, r)
	})
}

// acquire takes a token and a concurrency slot for key; when refused it
// returns the whole seconds after which a retry may succeed (at least 1).
func (l *limiter) acquire(key string) (retryAfter int, ok bool) {
	t := now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if t.Sub(l.lastSweep) >= l.idle/2 {
		l.sweep(t)
	}
	c := l.clients[key]
	if c == nil {
		c = &client{tokens: float64(l.cfg.Burst), last: t}
		l.clients[key] = c
	}
	if limit := l.cfg.MaxConcurrent; limit > 0 && c.inflight >= limit {
		return 1, false
	}
	if rps := l.cfg.RequestsPerSecond; rps > 0 && l.cfg.Burst > 0 {
		if el := t.Sub(c.last); el > 0 {
			c.tokens = math.Min(float64(l.cfg.Burst), c.tokens+el.Seconds()*rps)
		}
		c.last = t
		if c.tokens < 1 {
			return max(1, int(math.Ceil((1-c.tokens)/rps))), false
		}
		c.tokens--
	}
	c.inflight++
	return 0, true
}

func (l *limiter) release(key string) {
	t := now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if c := l.clients[key]; c != nil {
		c.inflight--
		if l.cfg.RequestsPerSecond <= 0 {
			c.last = t // without a bucket, last marks activity for the sweep
		}
	}
}

// sweep forgets idle clients; l.mu is held.
func (l *limiter) sweep(t time.Time) {
	for k, c := range l.clients {
		if c.inflight == 0 && t.Sub(c.last) >= l.idle {
			delete(l.clients, k)
		}
	}
	l.lastSweep = t
}

// clientCount is for tests.
func (l *limiter) clientCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.clients)
}

// headerSize approximates the bytes of the request line and headers as
// sent (name, ": ", value, CRLF per field).
func headerSize(r *http.Request) int {
	n := len(r.Method) + len(r.RequestURI) + len(r.Proto) + 4
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}
