package feed

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"
)

// maxRecordSize bounds one OSV file; real records are a few KiB.
const maxRecordSize = 16 << 20

// pkgKey indexes entries by ecosystem and normalised name.
type pkgKey struct{ eco, name string }

// index is one immutable snapshot of a feed; refreshes build a new one and
// swap it in, so readers never lock.
type index struct {
	pkgs     map[pkgKey][]advisory
	records  int // records that produced at least one entry
	skipped  int // malformed files skipped
	firstErr error
	loadedAt time.Time
}

// source is one file to parse: a name for messages and a way to open it.
type source struct {
	name string
	open func() (io.ReadCloser, error)
}

// loadPath loads a directory tree of OSV files, a zip of them, or a single
// JSON file (one record or an array of records).
func loadPath(ctx context.Context, path string) (*index, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("feed: %w", err)
	}
	if st.IsDir() {
		srcs, err := walkDir(path)
		if err != nil {
			return nil, err
		}
		return build(ctx, path, srcs)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("feed: %w", err)
	}
	defer f.Close()
	var magic [4]byte
	n, _ := io.ReadFull(f, magic[:])
	if n == 4 && bytes.Equal(magic[:], []byte("PK\x03\x04")) {
		zr, err := zip.NewReader(f, st.Size())
		if err != nil {
			return nil, fmt.Errorf("feed: %s: %w", path, err)
		}
		return build(ctx, path, zipSources(zr))
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("feed: %w", err)
	}
	return loadJSONFile(path, f)
}

// skipDir reports whether a directory holds no live records: OpenSSF moves
// withdrawn reports to osv/withdrawn/, and VCS metadata is never data.
func skipDir(name string) bool {
	return name == "withdrawn" || (strings.HasPrefix(name, ".") && name != ".")
}

func walkDir(root string) ([]source, error) {
	var srcs []source
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != root && skipDir(d.Name()) {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || !strings.HasSuffix(d.Name(), ".json") {
			return nil
		}
		srcs = append(srcs, source{name: p, open: func() (io.ReadCloser, error) { return os.Open(p) }})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("feed: walking %s: %w", root, err)
	}
	return srcs, nil
}

func zipSources(zr *zip.Reader) []source {
	var srcs []source
	for _, zf := range zr.File {
		if zf.FileInfo().IsDir() || !strings.HasSuffix(zf.Name, ".json") {
			continue
		}
		skip := false
		segs := strings.Split(zf.Name, "/")
		for _, seg := range segs[:len(segs)-1] {
			if skipDir(seg) {
				skip = true
				break
			}
		}
		if skip {
			continue
		}
		srcs = append(srcs, source{name: zf.Name, open: zf.Open})
	}
	return srcs
}

// parsed is one file's outcome.
type parsed struct {
	name    string
	entries []*entry
	err     error
}

// build parses sources on all CPUs and indexes the result. Malformed files
// are skipped and counted (the first error, naming its file, is kept): one
// bad record in a 200k-file upstream must not take the whole feed down. An
// unreadable source (I/O, zip CRC) or a feed with no valid record is an error.
func build(ctx context.Context, origin string, srcs []source) (*index, error) {
	ix := &index{pkgs: make(map[pkgKey][]advisory, len(srcs))}
	jobs := make(chan source)
	results := make(chan parsed, 64)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf bytes.Buffer
			for s := range jobs {
				es, err := parseSource(s, &buf)
				results <- parsed{name: s.name, entries: es, err: err}
			}
		}()
	}
	go func() {
		defer close(jobs)
		for _, s := range srcs {
			select {
			case jobs <- s:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() { wg.Wait(); close(results) }()

	var ioErr error
	for r := range results {
		switch {
		case r.err == nil:
			ix.add(r.entries)
		case errors.Is(r.err, errWithdrawn):
		case errors.Is(r.err, errUnreadable):
			if ioErr == nil {
				ioErr = r.err
			}
		default:
			ix.skipped++
			if ix.firstErr == nil {
				ix.firstErr = r.err
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("feed: loading %s: %w", origin, err)
	}
	if ioErr != nil {
		return nil, ioErr
	}
	return ix.finish(origin)
}

// errUnreadable marks a source that could not be read at all, as opposed to
// one that was read but holds bad JSON.
var errUnreadable = errors.New("unreadable")

func parseSource(s source, buf *bytes.Buffer) ([]*entry, error) {
	rc, err := s.open()
	if err != nil {
		return nil, fmt.Errorf("feed: %s: %w: %w", s.name, errUnreadable, err)
	}
	buf.Reset()
	_, err = buf.ReadFrom(io.LimitReader(rc, maxRecordSize+1))
	rc.Close()
	if err != nil {
		return nil, fmt.Errorf("feed: %s: %w: %w", s.name, errUnreadable, err)
	}
	if buf.Len() > maxRecordSize {
		return nil, fmt.Errorf("feed: %s: record larger than %d bytes", s.name, maxRecordSize)
	}
	es, err := parseRecord(buf.Bytes())
	if err != nil && !errors.Is(err, errWithdrawn) {
		return nil, fmt.Errorf("%w (in %s)", err, s.name)
	}
	return es, err
}

// loadJSONFile loads a single JSON document: one record or an array.
func loadJSONFile(name string, r io.Reader) (*index, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("feed: %s: %w", name, err)
	}
	ix := &index{pkgs: map[pkgKey][]advisory{}}
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) > 0 && trimmed[0] == '[' {
		var recs []osvRecord
		if err := json.Unmarshal(data, &recs); err != nil {
			return nil, fmt.Errorf("feed: %s: invalid OSV JSON: %w", name, err)
		}
		for i := range recs {
			es, err := recs[i].entries()
			switch {
			case err == nil:
				ix.add(es)
			case errors.Is(err, errWithdrawn):
			default:
				ix.skipped++
				if ix.firstErr == nil {
					ix.firstErr = fmt.Errorf("%w (record %d of %s)", err, i, name)
				}
			}
		}
		return ix.finish(name)
	}
	es, err := parseRecord(data)
	if err != nil && !errors.Is(err, errWithdrawn) {
		return nil, fmt.Errorf("%w (in %s)", err, name)
	}
	ix.add(es)
	return ix.finish(name)
}

func (ix *index) add(es []*entry) {
	if len(es) == 0 {
		return
	}
	ix.records++
	for _, e := range es {
		k := pkgKey{e.eco, e.name}
		ix.pkgs[k] = append(ix.pkgs[k], e.advisory)
	}
}

// ErrEmpty is returned when a feed source holds no usable record; an empty
// feed almost always means a wrong path or a broken download.
var ErrEmpty = errors.New("feed: no valid OSV record")

func (ix *index) finish(origin string) (*index, error) {
	if ix.records == 0 {
		if ix.firstErr != nil {
			return nil, fmt.Errorf("%w in %s (%d malformed, first: %w)", ErrEmpty, origin, ix.skipped, ix.firstErr)
		}
		return nil, fmt.Errorf("%w in %s", ErrEmpty, origin)
	}
	for k, es := range ix.pkgs {
		ix.pkgs[k] = es[:len(es):len(es)]
	}
	ix.loadedAt = now()
	return ix, nil
}
