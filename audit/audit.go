// Package audit keeps Cafilprox's audit trail: one row per package decision
// and per artifact served, with the client's identity, in an embedded SQLite
// database (modernc.org/sqlite, pure Go, so builds stay static) under
// data_dir. It answers "which clients fetched X, and when?", lists
// refusals, exports the trail as JSON lines or CSV, and prunes old rows.
//
// Record never blocks the request path: events go through a bounded queue
// to one writer goroutine that inserts them in batches, one transaction per
// batch. When the queue is full the event is dropped and counted (Dropped,
// Options.OnDrop), because a slow disk must not slow installs.
//
// The same database also remembers when each version was first seen in
// upstream metadata, and its content reference (see seen.go).
package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// now is the clock used for retention and first-seen times; tests replace it.
var now = time.Now

// Decision values stored in Event.Decision.
const (
	Allow      = "allow"
	Deny       = "deny"
	ShadowDeny = "shadow-deny"
)

// Event is one audited request.
type Event struct {
	// Time is when the request finished; zero means "now" at Record time.
	Time      time.Time `json:"time"`
	RequestID string    `json:"request_id,omitempty"`
	// ClientIP is the client's address without port.
	ClientIP string `json:"client_ip,omitempty"`
	// User is the proxy-authenticated user name; empty when anonymous.
	User      string `json:"user,omitempty"`
	Ecosystem string `json:"ecosystem,omitempty"`
	Package   string `json:"package,omitempty"`
	Version   string `json:"version,omitempty"`
	// Kind is metadata, artifact or other.
	Kind string `json:"kind,omitempty"`
	// Decision is allow, deny or shadow-deny (denied by policy in shadow
	// mode, served anyway).
	Decision string `json:"decision,omitempty"`
	// Rule names the rule that decided; empty for the default.
	Rule   string `json:"rule,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Cache is the cache status (hit, miss, stale...).
	Cache string `json:"cache,omitempty"`
	// Bytes is the response body size sent to the client.
	Bytes int64 `json:"bytes"`
	// Status is the HTTP status sent to the client.
	Status int `json:"status"`
}

// LogAttrs renders the event as slog attributes for the one-line-per-request
// log, so that logs and audit rows carry the same fields.
func (e Event) LogAttrs() []slog.Attr {
	pkg := e.Package
	if e.Version != "" {
		pkg += "@" + e.Version
	}
	attrs := []slog.Attr{
		slog.String("request_id", e.RequestID),
		slog.String("client", e.ClientIP),
	}
	if e.User != "" {
		attrs = append(attrs, slog.String("user", e.User))
	}
	attrs = append(attrs,
		slog.String("ecosystem", e.Ecosystem),
		slog.String("package", pkg),
		slog.String("kind", e.Kind),
		slog.String("decision", e.Decision),
	)
	if e.Rule != "" {
		attrs = append(attrs, slog.String("rule", e.Rule))
	}
	if e.Reason != "" {
		attrs = append(attrs, slog.String("reason", e.Reason))
	}
	return append(attrs,
		slog.String("cache", e.Cache),
		slog.Int("status", e.Status),
		slog.Int64("bytes", e.Bytes),
	)
}

// Options tune the log. Zero values select the defaults noted on each field.
type Options struct {
	// Retention is how long events are kept; zero keeps them forever.
	Retention time.Duration
	// QueueSize bounds the events waiting to be written; default 8192.
	QueueSize int
	// BatchSize is the most events written in one transaction; default 256.
	BatchSize int
	// FlushInterval is the longest an event waits in a partial batch;
	// default 1s.
	FlushInterval time.Duration
	// OnDrop, when set, is called for every event dropped because the queue
	// was full (on the request's goroutine, so it must be cheap) or because
	// its batch failed to write.
	OnDrop func()
	// OnError, when set, receives write and pruning errors (which never
	// reach the request path); by default they are logged with slog.
	OnError func(error)
}

// Log is an open audit database. Its methods are safe for concurrent use.
type Log struct {
	db   *sql.DB
	opts Options

	queue   chan Event
	stop    chan struct{}
	done    chan struct{}
	closed  atomic.Bool
	dropped atomic.Uint64
	once    sync.Once

	// flushReq lets tests and Flush wait until queued events are written.
	flushReq chan chan struct{}

	// lookup is prepared once: parsing the SQL dominates a point query.
	lookup *sql.Stmt
	// download is the point query behind Download.
	download *sql.Stmt
}

// Defaults for Options.
const (
	DefaultQueueSize     = 8192
	DefaultBatchSize     = 256
	DefaultFlushInterval = time.Second
)

// ErrClosed is returned by queries on a closed log.
var ErrClosed = errors.New("audit: log closed")

const schema = `
CREATE TABLE IF NOT EXISTS events (
	id         INTEGER PRIMARY KEY,
	ts         INTEGER NOT NULL, -- unix nanoseconds
	request_id TEXT NOT NULL DEFAULT '',
	client_ip  TEXT NOT NULL DEFAULT '',
	user       TEXT NOT NULL DEFAULT '',
	ecosystem  TEXT NOT NULL DEFAULT '',
	package    TEXT NOT NULL DEFAULT '',
	version    TEXT NOT NULL DEFAULT '',
	kind       TEXT NOT NULL DEFAULT '',
	decision   TEXT NOT NULL DEFAULT '',
	rule       TEXT NOT NULL DEFAULT '',
	reason     TEXT NOT NULL DEFAULT '',
	cache      TEXT NOT NULL DEFAULT '',
	bytes      INTEGER NOT NULL DEFAULT 0,
	status     INTEGER NOT NULL DEFAULT 0
);
-- Who: package (and version) lookups, newest first.
CREATE INDEX IF NOT EXISTS events_pkg ON events(package, ecosystem, version, ts);
-- Blocks: refusals since a time.
CREATE INDEX IF NOT EXISTS events_decision ON events(decision, ts);
-- Export and retention pruning.
CREATE INDEX IF NOT EXISTS events_ts ON events(ts);

CREATE TABLE IF NOT EXISTS seen (
	ecosystem  TEXT NOT NULL,
	package    TEXT NOT NULL,
	version    TEXT NOT NULL,
	first_seen INTEGER NOT NULL, -- unix nanoseconds
	ref        TEXT NOT NULL DEFAULT '',
	baseline   INTEGER NOT NULL DEFAULT 0,
	last_ref   TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (ecosystem, package, version)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS downloads (
	url       TEXT PRIMARY KEY, -- scheme-less, host lower-cased
	ecosystem TEXT NOT NULL,
	package   TEXT NOT NULL,
	version   TEXT NOT NULL
) WITHOUT ROWID;
`

// Open opens (creating if needed) the audit database at path and starts the
// writer and, when Retention is set, the pruning loop. Close it to flush.
func Open(path string, opts Options) (*Log, error) {
	if opts.QueueSize <= 0 {
		opts.QueueSize = DefaultQueueSize
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = DefaultBatchSize
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = DefaultFlushInterval
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("audit: create directory: %w", err)
		}
	}
	// The trail names clients and users: keep it private to the proxy's
	// user. SQLite creates the -wal and -shm files with the database
	// file's mode, so the file must be 0600 before SQLite opens it.
	if err := privateFile(path); err != nil {
		return nil, err
	}
	// WAL lets queries read while the writer commits; busy_timeout makes
	// concurrent writers (events, first-seen) wait instead of failing.
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	}
	if _, err := db.Exec(schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("audit: create schema in %s: %w", path, err)
	}
	lookup, err := db.Prepare(`SELECT first_seen, ref, baseline, last_ref FROM seen WHERE ecosystem = ? AND package = ? AND version = ?`)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("audit: prepare lookup: %w", err)
	}
	download, err := db.Prepare(`SELECT ecosystem, package, version FROM downloads WHERE url = ?`)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("audit: prepare download lookup: %w", err)
	}
	l := &Log{
		lookup:   lookup,
		download: download,
		db:       db,
		opts:     opts,
		queue:    make(chan Event, opts.QueueSize),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		flushReq: make(chan chan struct{}),
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); l.writer() }()
	if opts.Retention > 0 {
		wg.Add(1)
		go func() { defer wg.Done(); l.pruneLoop() }()
	}
	go func() { wg.Wait(); close(l.done) }()
	return l, nil
}

// privateFile creates path (and restricts an existing one and its WAL
// companions) to mode 0600.
func privateFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("audit: open %s: %w", path, err)
	}
	f.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(p, 0o600); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("audit: restrict permissions of %s: %w", p, err)
		}
	}
	return nil
}

// Record queues an event for writing. It never blocks: when the queue is
// full, or the log is closed, the event is dropped and counted.
func (l *Log) Record(e Event) {
	if l == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = now()
	}
	if !l.closed.Load() {
		select {
		case l.queue <- e:
			return
		default:
		}
	}
	l.dropped.Add(1)
	if l.opts.OnDrop != nil {
		l.opts.OnDrop()
	}
}

// Dropped reports how many events were dropped since Open (queue full, log
// closed, or batch write failed).
func (l *Log) Dropped() uint64 { return l.dropped.Load() }

// Flush waits until every event queued before the call is written, or ctx
// ends.
func (l *Log) Flush(ctx context.Context) error {
	ack := make(chan struct{})
	select {
	case l.flushReq <- ack:
	case <-l.done:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-ack:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops accepting events, writes those still queued and closes the
// database.
func (l *Log) Close() error {
	if l == nil {
		return nil
	}
	var err error
	l.once.Do(func() {
		l.closed.Store(true)
		close(l.stop)
		<-l.done
		// A Record racing with Close may have queued after the final drain.
		for {
			select {
			case <-l.queue:
				l.dropped.Add(1)
				continue
			default:
			}
			break
		}
		l.lookup.Close()
		l.download.Close()
		err = l.db.Close()
	})
	return err
}

func (l *Log) writer() {
	batch := make([]Event, 0, l.opts.BatchSize)
	tick := time.NewTicker(l.opts.FlushInterval)
	defer tick.Stop()
	flush := func() {
		if len(batch) == 0 {
			return
		}
		if err := l.insert(batch); err != nil {
			// A failed batch is lost like an overflow, and counted the same way.
			l.report(err)
			l.dropped.Add(uint64(len(batch)))
			if l.opts.OnDrop != nil {
				for range batch {
					l.opts.OnDrop()
				}
			}
		}
		batch = batch[:0]
	}
	// drain moves what is queued right now into batches.
	drain := func() {
		for {
			select {
			case e := <-l.queue:
				batch = append(batch, e)
				if len(batch) >= l.opts.BatchSize {
					flush()
				}
			default:
				return
			}
		}
	}
	for {
		select {
		case e := <-l.queue:
			batch = append(batch, e)
			if len(batch) >= l.opts.BatchSize {
				flush()
			}
		case <-tick.C:
			flush()
		case ack := <-l.flushReq:
			drain()
			flush()
			close(ack)
		case <-l.stop:
			drain()
			flush()
			return
		}
	}
}

func (l *Log) insert(batch []Event) error {
	tx, err := l.db.Begin()
	if err != nil {
		return fmt.Errorf("audit: begin: %w", err)
	}
	defer tx.Rollback()
	st, err := tx.Prepare(`INSERT INTO events
		(ts, request_id, client_ip, user, ecosystem, package, version, kind, decision, rule, reason, cache, bytes, status)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("audit: prepare insert: %w", err)
	}
	defer st.Close()
	for _, e := range batch {
		if _, err := st.Exec(e.Time.UnixNano(), e.RequestID, e.ClientIP, e.User, e.Ecosystem, e.Package,
			e.Version, e.Kind, e.Decision, e.Rule, e.Reason, e.Cache, e.Bytes, e.Status); err != nil {
			return fmt.Errorf("audit: insert %d events: %w", len(batch), err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("audit: commit %d events: %w", len(batch), err)
	}
	return nil
}

func (l *Log) report(err error) {
	if l.opts.OnError != nil {
		l.opts.OnError(err)
		return
	}
	slog.Error("audit write failed", "err", err)
}

// pruneChunk bounds one DELETE so pruning never holds the write lock long.
const pruneChunk = 5000

func (l *Log) pruneLoop() {
	every := min(max(l.opts.Retention/10, time.Minute), time.Hour)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := l.Prune(context.Background()); err != nil && !errors.Is(err, ErrClosed) {
			l.report(err)
		}
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
	}
}

// Prune deletes events older than the retention period and returns how
// many were deleted. It does nothing when Retention is zero. First-seen
// records are never pruned: they are the memory that makes re-tagging and
// new-version checks work.
func (l *Log) Prune(ctx context.Context) (int64, error) {
	if l.opts.Retention <= 0 {
		return 0, nil
	}
	cutoff := now().Add(-l.opts.Retention).UnixNano()
	var total int64
	for {
		if l.closed.Load() {
			return total, ErrClosed
		}
		res, err := l.db.ExecContext(ctx,
			`DELETE FROM events WHERE id IN (SELECT id FROM events WHERE ts < ? LIMIT ?)`, cutoff, pruneChunk)
		if err != nil {
			return total, fmt.Errorf("audit: prune: %w", err)
		}
		n, _ := res.RowsAffected()
		total += n
		if n < pruneChunk {
			return total, nil
		}
	}
}
