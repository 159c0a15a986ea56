// Package feed loads malicious-package advisories in OSV format (the
// OpenSSF malicious-packages repository layout, any directory tree of OSV
// JSON files, or an OSV all.zip) into an in-memory index keyed by ecosystem
// and package name, answers "is this package@version flagged?" in well under
// a microsecond for unflagged packages, and refreshes itself from a URL,
// swapping the index atomically and keeping the old one when an update fails.
package feed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"deps.dev/util/semver"

	"github.com/cafilprox/cafilprox/classifiers"
)

// now is the clock; tests move it.
var now = time.Now

// maxDownload bounds a downloaded feed. OSV's largest per-ecosystem all.zip
// is a few hundred MiB; anything far beyond that is not a feed.
var maxDownload int64 = 4 << 30

// Config describes one feed "x" { ... } block.
type Config struct {
	// Name identifies the feed in logs and names its download file.
	Name string
	// Type is the data format; "" and "osv" are the only ones supported.
	Type string
	// Path is a directory of OSV JSON files (OpenSSF layout or any tree;
	// osv/withdrawn/ and hidden directories are skipped), an OSV zip, or a
	// single OSV JSON file. Empty means the feed comes from URL only.
	Path string
	// URL, when set, is an http(s) URL of an OSV zip (or single JSON
	// document) to download at Open when nothing else is available, and on
	// every Refresh. Empty means no updates.
	URL string
	// Refresh is the interval between downloads of URL; zero means URL is
	// fetched only when Open needs it.
	Refresh time.Duration
	// DataDir is where downloads are kept (DataDir/feeds/<Name>.osv) so a
	// restart serves the last good download without the network. Empty
	// means the system temporary directory, and nothing survives a restart.
	DataDir string
	// Logger receives refresh outcomes; nil means slog.Default().
	Logger *slog.Logger
	// Client downloads URL; nil means a client with a 10-minute timeout.
	Client *http.Client
}

// Advisory is what a match reports: the OSV id and a one-line summary
// (at most 200 bytes).
type Advisory struct{ ID, Summary string }

// Key names a package, or one version of it when Version is set, that a
// refresh newly flagged. Version "" means the whole package.
type Key struct{ Ecosystem, Name, Version string }

// Feed is a loaded feed. Its methods are safe for concurrent use.
type Feed struct {
	cfg  Config
	log  *slog.Logger
	cur  atomic.Pointer[index]
	mu   sync.Mutex // serialises updates and guards etag/lastMod
	etag string
	last string
}

// Open loads the feed. The initial data comes from, in order: the last
// good download of URL kept under DataDir, Path, then a fresh download of
// URL. It fails when none of them yields a valid record.
func Open(ctx context.Context, cfg Config) (*Feed, error) {
	if cfg.Type != "" && cfg.Type != "osv" {
		return nil, fmt.Errorf("feed: %s: unsupported type %q (want \"osv\")", cfg.Name, cfg.Type)
	}
	if cfg.Path == "" && cfg.URL == "" {
		return nil, fmt.Errorf("feed: %s: neither path nor url set", cfg.Name)
	}
	f := &Feed{cfg: cfg, log: cfg.Logger}
	if f.log == nil {
		f.log = slog.Default()
	}
	f.log = f.log.With("feed", cfg.Name)
	var errs []error
	if cfg.URL != "" && cfg.DataDir != "" {
		if ix, err := loadPath(ctx, f.downloadPath()); err == nil {
			f.setIndex(ix)
			return f, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if cfg.Path != "" {
		ix, err := loadPath(ctx, cfg.Path)
		if err == nil {
			f.setIndex(ix)
			return f, nil
		}
		errs = append(errs, err)
	}
	if cfg.URL != "" {
		_, err := f.Update(ctx)
		if err == nil {
			return f, nil
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("feed: %s: %w", cfg.Name, errors.Join(errs...))
}

func (f *Feed) setIndex(ix *index) *index {
	if ix.skipped > 0 {
		f.log.Warn("feed: skipped malformed OSV records", "count", ix.skipped, "first", ix.firstErr)
	}
	f.log.Info("feed: loaded", "records", ix.records, "packages", len(ix.pkgs))
	return f.cur.Swap(ix)
}

// Match returns the advisories that flag version of package name in
// ecosystem eco (a cafilprox ecosystem name; name normalised or not). An
// empty version matches only advisories that cover every version.
func (f *Feed) Match(eco, name, version string) []Advisory {
	es := f.entries(eco, name)
	if len(es) == 0 {
		return nil
	}
	if version == "" {
		return allVersions(es)
	}
	version = normalizeVersion(eco, version)
	var pv *semver.Version
	parsedOnce := false
	var out []Advisory
	for i := range es {
		e := &es[i]
		if !e.all && len(e.ranges) > 0 && !parsedOnce {
			// Parsed lazily: most flagged packages only list exact versions.
			parsedOnce = true
			if v, err := systemOf(eco).Parse(version); err == nil {
				pv = v
			}
		}
		if e.match(version, pv) {
			out = append(out, e.Advisory)
		}
	}
	return out
}

// AllVersions returns the advisories that flag every version of the package
// (introduced "0" with no end): the package is to be denied outright.
func (f *Feed) AllVersions(eco, name string) []Advisory {
	return allVersions(f.entries(eco, name))
}

func allVersions(es []advisory) []Advisory {
	var out []Advisory
	for _, e := range es {
		if e.all {
			out = append(out, e.Advisory)
		}
	}
	return out
}

func (f *Feed) entries(eco, name string) []advisory {
	ix := f.cur.Load()
	if ix == nil {
		return nil
	}
	return ix.pkgs[pkgKey{eco, classifiers.Normalize(eco, name)}]
}

// Count returns the number of records indexed (records of unsupported
// ecosystems and withdrawn records are not counted).
func (f *Feed) Count() int {
	if ix := f.cur.Load(); ix != nil {
		return ix.records
	}
	return 0
}

// Skipped returns how many malformed files the current data skipped, and
// the first such error (naming its file), or 0 and nil.
func (f *Feed) Skipped() (int, error) {
	if ix := f.cur.Load(); ix != nil {
		return ix.skipped, ix.firstErr
	}
	return 0, nil
}

// LoadedAt returns when the current data was loaded.
func (f *Feed) LoadedAt() time.Time {
	if ix := f.cur.Load(); ix != nil {
		return ix.loadedAt
	}
	return time.Time{}
}

// Run refreshes the feed from URL every Refresh until ctx is done, calling
// onChange (when not nil) with the keys each successful refresh newly
// flagged. A failed refresh is logged and the current data kept. Without
// URL or Refresh it just waits for ctx.
func (f *Feed) Run(ctx context.Context, onChange func(newly []Key)) {
	if f.cfg.URL == "" || f.cfg.Refresh <= 0 {
		<-ctx.Done()
		return
	}
	t := time.NewTicker(f.cfg.Refresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		newly, err := f.Update(ctx)
		if err != nil {
			if ctx.Err() == nil {
				f.log.Warn("feed: refresh failed, keeping current data", "err", err)
			}
			continue
		}
		if len(newly) > 0 && onChange != nil {
			onChange(newly)
		}
	}
}

// Update downloads URL once and, when the download is a valid feed, swaps it
// in and returns the keys it newly flags. An unchanged upstream (HTTP 304)
// returns nil, nil. On any error the current data stays in place.
func (f *Feed) Update(ctx context.Context) ([]Key, error) {
	if f.cfg.URL == "" {
		return nil, fmt.Errorf("feed: %s: no url to update from", f.cfg.Name)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	tmp, changed, err := f.download(ctx)
	if err != nil || !changed {
		return nil, err
	}
	keep := false
	defer func() {
		if !keep {
			os.Remove(tmp)
		}
	}()
	ix, err := loadPath(ctx, tmp)
	if err != nil {
		return nil, fmt.Errorf("feed: %s: downloaded data rejected: %w", f.cfg.Name, err)
	}
	if f.cfg.DataDir != "" {
		if err := os.Rename(tmp, f.downloadPath()); err != nil {
			return nil, fmt.Errorf("feed: %s: %w", f.cfg.Name, err)
		}
		keep = true
		syncDir(filepath.Dir(tmp))
	}
	old := f.setIndex(ix)
	return diff(old, ix), nil
}

func (f *Feed) downloadDir() string {
	if f.cfg.DataDir == "" {
		return os.TempDir()
	}
	return filepath.Join(f.cfg.DataDir, "feeds")
}

func (f *Feed) downloadPath() string {
	name := f.cfg.Name
	if name == "" {
		name = "feed"
	}
	return filepath.Join(f.downloadDir(), filepath.Base(name)+".osv")
}

// download fetches URL into a synced temporary file next to the final one.
// It reports changed = false when the server says the data is unchanged.
func (f *Feed) download(ctx context.Context) (path string, changed bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.cfg.URL, nil)
	if err != nil {
		return "", false, fmt.Errorf("feed: %s: %w", f.cfg.Name, err)
	}
	if f.cur.Load() != nil {
		if f.etag != "" {
			req.Header.Set("If-None-Match", f.etag)
		}
		if f.last != "" {
			req.Header.Set("If-Modified-Since", f.last)
		}
	}
	client := f.cfg.Client
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Minute}
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", false, fmt.Errorf("feed: %s: download: %w", f.cfg.Name, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified:
		return "", false, nil
	case resp.StatusCode != http.StatusOK:
		return "", false, fmt.Errorf("feed: %s: download: %s answered %s", f.cfg.Name, f.cfg.URL, resp.Status)
	}
	dir := f.downloadDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", false, fmt.Errorf("feed: %s: %w", f.cfg.Name, err)
	}
	tf, err := os.CreateTemp(dir, filepath.Base(f.cfg.Name)+".*.tmp")
	if err != nil {
		return "", false, fmt.Errorf("feed: %s: %w", f.cfg.Name, err)
	}
	n, err := io.Copy(tf, io.LimitReader(resp.Body, maxDownload+1))
	if err == nil && n > maxDownload {
		err = fmt.Errorf("larger than %d bytes", maxDownload)
	}
	if err == nil {
		err = tf.Sync()
	}
	if cerr := tf.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tf.Name())
		return "", false, fmt.Errorf("feed: %s: download: %w", f.cfg.Name, err)
	}
	f.etag, f.last = resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
	return tf.Name(), true, nil
}

// syncDir makes a rename durable; failure only weakens crash safety.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// diff returns what next flags that old did not: a whole package when it is
// new to the feed or a new advisory on it uses ranges (the cache cannot
// enumerate versions), otherwise the newly listed exact versions. The first
// load (old == nil) has nothing to compare with and reports nothing.
func diff(old, next *index) []Key {
	if old == nil {
		return nil
	}
	var out []Key
	for k, es := range next.pkgs {
		prev := old.pkgs[k]
		if len(prev) == 0 {
			out = append(out, Key{Ecosystem: k.eco, Name: k.name})
			continue
		}
		if slices.ContainsFunc(prev, func(p advisory) bool { return p.all }) {
			continue // every version was flagged already
		}
		seen := make(map[string]bool, len(prev))
		for _, p := range prev {
			for _, v := range p.versions {
				seen[v] = true
			}
		}
		oldByID := make(map[string]*advisory, len(prev))
		for i := range prev {
			oldByID[prev[i].ID] = &prev[i]
		}
		whole := false
		var vers []string
		for i := range es {
			e := &es[i]
			if (e.all || len(e.ranges) > 0) && !sameRanges(oldByID[e.ID], e) {
				whole = true
				break
			}
			for _, v := range e.versions {
				if !seen[v] {
					seen[v] = true
					vers = append(vers, v)
				}
			}
		}
		if whole {
			out = append(out, Key{Ecosystem: k.eco, Name: k.name})
			continue
		}
		for _, v := range vers {
			out = append(out, Key{Ecosystem: k.eco, Name: k.name, Version: v})
		}
	}
	return out
}

// sameRanges reports whether a (nil when absent) already covered what b's
// ranges cover, judged by their bounds as written.
func sameRanges(a, b *advisory) bool {
	if a == nil || a.all != b.all || len(a.ranges) != len(b.ranges) {
		return false
	}
	for i := range a.ranges {
		x, y := &a.ranges[i], &b.ranges[i]
		if x.loRaw != y.loRaw || x.hiRaw != y.hiRaw || x.hiInclusive != y.hiInclusive || x.exact != y.exact {
			return false
		}
	}
	return true
}
