// Package fs is the embedded cache.Store: one body file and one JSON sidecar
// per entry under a directory.
//
// Layout under the root:
//
//	objects/<escaped key segments>#m      metadata sidecar (JSON), the commit point
//	objects/<escaped key segments>#b<id>  body, named by a random id
//	tmp/                                  temp files and download spools
//	lock                                  flock of the owning process
//
// Every key segment is escaped with cache.EscapeSegment (no '/', NUL, '\',
// leading '.', "..") and '#' never appears in escaped text, so a key can
// neither traverse nor collide with another key's files.
//
// A Save writes the body to tmp/, fsyncs it, renames it to a fresh body
// name, fsyncs the directory, then writes the sidecar the same way; the
// sidecar names its body and records its size and SHA-256. An entry exists
// only once its sidecar is renamed into place, so a crash leaves either the
// previous entry or the new one, never a partial body: a body without
// sidecar is an orphan, and a sidecar whose body is missing or of the wrong
// size is treated as absent. Open removes tmp/ leftovers and orphans.
//
// The size/LRU index is not persisted: the cache rebuilds it from List at
// start. Last access is the body file's modification time (Touch).
package fs

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	iofs "io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cafilprox/cafilprox/cache"
)

var now = time.Now

// Compile-time checks of the abilities this backend offers.
var (
	_ cache.Store      = (*Store)(nil)
	_ cache.InfoSetter = (*Store)(nil)
	_ cache.FileSaver  = (*Store)(nil)
	_ cache.Toucher    = (*Store)(nil)
	_ cache.Spooler    = (*Store)(nil)
)

// Store is a cache.Store under one directory. It is safe for concurrent use
// by one process.
type Store struct {
	root    string
	objects string
	tmp     string
	locks   [64]sync.Mutex // per-key commit locks, striped by hash

	lockFile *os.File // held while open when this Open owns the directory

	metaMu sync.Mutex
	metas  map[string]cachedMeta // sidecars in memory; see load
}

// meta is the sidecar's JSON form.
type meta struct {
	Key      string      `json:"key"`  // cache.EscapeKey form: JSON cannot hold invalid UTF-8
	Body     string      `json:"body"` // body file name in the same directory
	Size     int64       `json:"size"`
	SHA256   string      `json:"sha256"`
	Status   int         `json:"status,omitempty"`
	Header   http.Header `json:"header,omitempty"`
	StoredAt time.Time   `json:"stored_at"`
}

// Open opens (creating) a store under dir. The first Open takes an
// exclusive lock on dir/lock and clears the temp files and orphans a killed
// process may have left; an Open while another process holds the lock (a
// CLI next to the running proxy) skips that cleanup, which would break the
// owner's saves in progress.
func Open(dir string) (*Store, error) {
	s := &Store{root: dir, objects: filepath.Join(dir, "objects"), tmp: filepath.Join(dir, "tmp"),
		metas: map[string]cachedMeta{}}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("fs: %w", err)
	}
	lock, owner, err := tryLock(filepath.Join(dir, "lock"))
	if err != nil {
		return nil, fmt.Errorf("fs: lock: %w", err)
	}
	s.lockFile = lock
	if owner {
		if err := os.RemoveAll(s.tmp); err != nil {
			s.Close()
			return nil, fmt.Errorf("fs: clear temp dir: %w", err)
		}
	}
	for _, d := range []string{s.objects, s.tmp} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			s.Close()
			return nil, fmt.Errorf("fs: %w", err)
		}
	}
	if owner {
		if err := s.sweep(); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// Close releases the directory lock; the store must not be used after.
func (s *Store) Close() error {
	if s.lockFile == nil {
		return nil
	}
	err := s.lockFile.Close()
	s.lockFile = nil
	return err
}

// SpoolDir implements cache.Spooler.
func (s *Store) SpoolDir() string { return s.tmp }

// sweep removes bodies no sidecar names and sidecars whose body is missing
// or of the wrong size.
func (s *Store) sweep() error {
	err := filepath.WalkDir(s.objects, func(p string, d iofs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		ents, err := os.ReadDir(p)
		if err != nil {
			return err
		}
		keep := map[string]bool{}
		for _, e := range ents {
			if !strings.HasSuffix(e.Name(), "#m") {
				continue
			}
			mp := filepath.Join(p, e.Name())
			m, err := readMeta(mp)
			if err == nil {
				if fi, serr := os.Stat(filepath.Join(p, m.Body)); serr == nil && fi.Size() == m.Size {
					keep[m.Body] = true
					continue
				}
			}
			_ = os.Remove(mp)
		}
		for _, e := range ents {
			if !e.IsDir() && !strings.HasSuffix(e.Name(), "#m") && !keep[e.Name()] {
				_ = os.Remove(filepath.Join(p, e.Name()))
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("fs: sweep: %w", err)
	}
	return nil
}

// paths returns the directory and the file-name stem of a key.
func (s *Store) paths(key string) (dir, stem string, err error) {
	if err := cache.ValidKey(key); err != nil {
		return "", "", fmt.Errorf("fs: %q: %w", key, err)
	}
	segs := strings.Split(key, "/")
	for i, seg := range segs {
		e := cache.EscapeSegment(seg)
		if len(e) > 180 { // file names are limited to 255 bytes
			sum := sha256.Sum256([]byte(seg))
			e = e[:100] + "#h" + hex.EncodeToString(sum[:16])
		}
		segs[i] = e
	}
	stem = segs[len(segs)-1]
	dir = filepath.Join(append([]string{s.objects}, segs[:len(segs)-1]...)...)
	return dir, stem, nil
}

func (s *Store) lock(key string) func() {
	h := fnv.New32a()
	h.Write([]byte(key))
	m := &s.locks[h.Sum32()%uint32(len(s.locks))]
	m.Lock()
	return m.Unlock
}

func readMeta(p string) (meta, error) {
	var m meta
	b, err := os.ReadFile(p)
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("fs: %s: %w", p, err)
	}
	if m.Key, err = cache.UnescapeKey(m.Key); err != nil {
		return m, fmt.Errorf("fs: %s: %w", p, err)
	}
	if m.Body == "" || strings.ContainsAny(m.Body, `/\`) || m.Body == "." || m.Body == ".." {
		return m, fmt.Errorf("fs: %s: bad body name", p)
	}
	return m, nil
}

func (m meta) info(lastAccess time.Time) cache.Info {
	return cache.Info{Key: m.Key, Size: m.Size, SHA256: m.SHA256, Header: m.Header,
		Status: m.Status, StoredAt: m.StoredAt, LastAccess: lastAccess}
}

// maxCachedMeta bounds the in-memory sidecar cache (a few hundred bytes
// per entry).
const maxCachedMeta = 1 << 14

type cachedMeta struct {
	m   meta
	dir string
}

// rememberMeta records a sidecar just written (overwrite) or just read
// (only when absent, so that a read racing a commit cannot undo it).
func (s *Store) rememberMeta(key string, m meta, dir string, overwrite bool) {
	s.metaMu.Lock()
	defer s.metaMu.Unlock()
	if _, ok := s.metas[key]; ok && !overwrite {
		return
	}
	if len(s.metas) >= maxCachedMeta {
		for k := range s.metas { // drop an arbitrary entry
			delete(s.metas, k)
			break
		}
	}
	s.metas[key] = cachedMeta{m, dir}
}

func (s *Store) forgetMeta(key string) {
	s.metaMu.Lock()
	delete(s.metas, key)
	s.metaMu.Unlock()
}

// load returns a key's sidecar, from memory when allowed: hits then cost
// no sidecar read. A remembered sidecar can only be stale when another
// process changed the entry, which removes the body it names, so callers
// that fail to open the body retry with fromMemory false.
func (s *Store) load(key string, fromMemory bool) (meta, string, error) {
	if fromMemory {
		s.metaMu.Lock()
		c, ok := s.metas[key]
		s.metaMu.Unlock()
		if ok {
			return c.m, c.dir, nil
		}
	}
	dir, stem, err := s.paths(key)
	if err != nil {
		return meta{}, "", err
	}
	m, err := readMeta(filepath.Join(dir, stem+"#m"))
	if err != nil {
		if errors.Is(err, iofs.ErrNotExist) {
			return m, dir, fmt.Errorf("fs: %q: %w", key, cache.ErrNotFound)
		}
		return m, dir, fmt.Errorf("fs: %q: %w: %w", key, cache.ErrNotFound, err)
	}
	if m.Key != key { // a hashed long segment collided: not ours
		return m, dir, fmt.Errorf("fs: %q: %w", key, cache.ErrNotFound)
	}
	s.rememberMeta(key, m, dir, false)
	return m, dir, nil
}

// Get implements cache.Getter. A body whose size differs from its sidecar
// is reported as ErrIntegrity; content is verified by the reader (the
// Cache hashes while streaming).
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, cache.Info, error) {
	for attempt := 0; attempt < 3; attempt++ {
		m, dir, err := s.load(key, attempt == 0)
		if err != nil {
			return nil, cache.Info{}, err
		}
		f, err := os.Open(filepath.Join(dir, m.Body))
		if errors.Is(err, iofs.ErrNotExist) {
			// Overwritten or deleted since the sidecar was read.
			s.forgetMeta(key)
			continue
		}
		if err != nil {
			return nil, cache.Info{}, fmt.Errorf("fs: get %q: %w", key, err)
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, cache.Info{}, fmt.Errorf("fs: %w", err)
		}
		if fi.Size() != m.Size {
			f.Close()
			s.forgetMeta(key)
			return nil, cache.Info{}, fmt.Errorf("fs: %q: size %d, want %d: %w", key, fi.Size(), m.Size, cache.ErrIntegrity)
		}
		return f, m.info(fi.ModTime()), nil
	}
	return nil, cache.Info{}, fmt.Errorf("fs: %q: %w", key, cache.ErrNotFound)
}

// Stat implements cache.Stat.
func (s *Store) Stat(ctx context.Context, key string) (cache.Info, error) {
	for attempt := 0; attempt < 2; attempt++ {
		m, dir, err := s.load(key, attempt == 0)
		if err != nil {
			return cache.Info{}, err
		}
		fi, err := os.Stat(filepath.Join(dir, m.Body))
		if err == nil {
			return m.info(fi.ModTime()), nil
		}
		s.forgetMeta(key)
	}
	return cache.Info{}, fmt.Errorf("fs: %q: %w", key, cache.ErrNotFound)
}

// Save implements cache.Saver.
func (s *Store) Save(ctx context.Context, key string, r io.Reader, info cache.Info) (cache.Info, error) {
	if _, _, err := s.paths(key); err != nil {
		return cache.Info{}, err
	}
	f, err := os.CreateTemp(s.tmp, "body-*")
	if err != nil {
		return cache.Info{}, fmt.Errorf("fs: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op once renamed
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), ctxReader{ctx, r})
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return cache.Info{}, fmt.Errorf("fs: save %q: %w", key, err)
	}
	info.Key, info.Size, info.SHA256 = key, n, hex.EncodeToString(h.Sum(nil))
	return s.commit(key, tmp, info)
}

// SaveFile implements cache.FileSaver: path must be a complete, fsynced
// file whose Size and SHA256 are in info. It is renamed into place when it
// lives on the store's filesystem, copied (and re-hashed) otherwise.
func (s *Store) SaveFile(ctx context.Context, key, path string, info cache.Info) (cache.Info, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return cache.Info{}, fmt.Errorf("fs: %w", err)
	}
	if fi.Size() != info.Size || len(info.SHA256) != 64 || filepath.Dir(path) != s.tmp {
		f, err := os.Open(path)
		if err != nil {
			return cache.Info{}, fmt.Errorf("fs: %w", err)
		}
		defer os.Remove(path)
		defer f.Close()
		return s.Save(ctx, key, f, info)
	}
	info.Key = key
	return s.commit(key, path, info)
}

// commit moves a complete temp body into place and writes the sidecar.
func (s *Store) commit(key, tmp string, info cache.Info) (cache.Info, error) {
	dir, stem, err := s.paths(key)
	if err != nil {
		return cache.Info{}, err
	}
	if info.StoredAt.IsZero() {
		info.StoredAt = now()
	}
	if info.Status == 0 {
		info.Status = http.StatusOK
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	body := stem + "#b" + hex.EncodeToString(id[:])
	m := meta{Key: cache.EscapeKey(key), Body: body, Size: info.Size, SHA256: info.SHA256, Status: info.Status,
		Header: info.Header, StoredAt: info.StoredAt.UTC()}

	unlock := s.lock(key)
	defer unlock()
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return cache.Info{}, fmt.Errorf("fs: %w", err)
	}
	old, oldErr := readMeta(filepath.Join(dir, stem+"#m"))
	if err := os.Rename(tmp, filepath.Join(dir, body)); err != nil {
		return cache.Info{}, fmt.Errorf("fs: %w", err)
	}
	// The body's directory entry must be durable before the sidecar that
	// names it, or a crash could leave a sidecar pointing at nothing.
	if err := syncDir(dir); err != nil {
		_ = os.Remove(filepath.Join(dir, body))
		return cache.Info{}, err
	}
	if err := s.writeMeta(key, dir, stem, m); err != nil {
		_ = os.Remove(filepath.Join(dir, body))
		return cache.Info{}, err
	}
	if oldErr == nil && old.Body != body {
		_ = os.Remove(filepath.Join(dir, old.Body))
	}
	info.LastAccess = now()
	return info, nil
}

// writeMeta atomically replaces a sidecar and remembers it.
func (s *Store) writeMeta(key, dir, stem string, m meta) error {
	s.forgetMeta(key)
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("fs: %w", err)
	}
	f, err := os.CreateTemp(s.tmp, "meta-*")
	if err != nil {
		return fmt.Errorf("fs: %w", err)
	}
	defer os.Remove(f.Name())
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), filepath.Join(dir, stem+"#m"))
	}
	if err != nil {
		return fmt.Errorf("fs: write metadata: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	m.Key = key
	s.rememberMeta(key, m, dir, true)
	return nil
}

// SetInfo implements cache.InfoSetter.
func (s *Store) SetInfo(ctx context.Context, key string, info cache.Info) error {
	dir, stem, err := s.paths(key)
	if err != nil {
		return err
	}
	unlock := s.lock(key)
	defer unlock()
	m, _, err := s.load(key, false)
	if err != nil {
		return err
	}
	m.Key = cache.EscapeKey(key)
	m.Header, m.StoredAt = info.Header, info.StoredAt.UTC()
	if info.Status != 0 {
		m.Status = info.Status
	}
	return s.writeMeta(key, dir, stem, m)
}

// Touch implements cache.Toucher by setting the body's modification time.
func (s *Store) Touch(ctx context.Context, key string, t time.Time) error {
	m, dir, err := s.load(key, true)
	if err != nil {
		return err
	}
	if err := os.Chtimes(filepath.Join(dir, m.Body), t, t); err != nil {
		return fmt.Errorf("fs: touch %q: %w", key, err)
	}
	return nil
}

// Delete implements cache.Deleter.
func (s *Store) Delete(ctx context.Context, key string) error {
	dir, stem, err := s.paths(key)
	if err != nil {
		return err
	}
	unlock := s.lock(key)
	defer unlock()
	s.forgetMeta(key)
	defer s.forgetMeta(key) // also drops what a racing read remembered meanwhile
	m, _, err := s.load(key, false)
	if errors.Is(err, cache.ErrNotFound) {
		// An unreadable sidecar is still removed below.
		_ = os.Remove(filepath.Join(dir, stem+"#m"))
		return nil
	}
	if err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(dir, stem+"#m")); err != nil && !errors.Is(err, iofs.ErrNotExist) {
		return fmt.Errorf("fs: delete %q: %w", key, err)
	}
	_ = os.Remove(filepath.Join(dir, m.Body))
	return nil
}

// List implements cache.Lister. It walks only the directory that the
// prefix's complete segments name.
func (s *Store) List(ctx context.Context, prefix string, fn func(cache.Info) error) error {
	start := s.objects
	if i := strings.LastIndexByte(prefix, '/'); i > 0 {
		if d, _, err := s.paths(prefix[:i] + "/x"); err == nil {
			start = d
		}
	}
	err := filepath.WalkDir(start, func(p string, d iofs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, iofs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(d.Name(), "#m") {
			return nil
		}
		m, err := readMeta(p)
		if err != nil || !strings.HasPrefix(m.Key, prefix) {
			return nil // a concurrent delete, or not under the prefix
		}
		fi, err := os.Stat(filepath.Join(filepath.Dir(p), m.Body))
		if err != nil {
			return nil
		}
		return fn(m.info(fi.ModTime()))
	})
	if err != nil {
		return fmt.Errorf("fs: list %q: %w", prefix, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("fs: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fs: sync %s: %w", dir, err)
	}
	return nil
}

// ctxReader stops a long copy when the context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
