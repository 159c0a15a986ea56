// Package cache stores registry responses (artifacts and metadata) with
// their SHA-256 and serves them back verified: a Store layer of small
// composed interfaces with fs and s3 backends, and a Cache on top that does
// freshness, revalidation, singleflight streaming, stale-if-error, negative
// caching, integrity checks and LRU eviction.
package cache

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"
)

// Sentinel errors, checked with errors.Is.
var (
	// ErrNotFound: the key has no (complete) entry.
	ErrNotFound = errors.New("cache: not found")
	// ErrIntegrity: stored bytes do not match their recorded SHA-256, or a
	// download does not match the digest the registry published.
	ErrIntegrity = errors.New("cache: integrity check failed")
	// ErrInvalidKey: the key is empty, too long or has an empty segment.
	ErrInvalidKey = errors.New("cache: invalid key")
)

// MaxKeyLen bounds keys so that every backend can hold their escaped form
// (S3 object names are at most 1024 bytes).
const MaxKeyLen = 300

// Info describes one stored entry.
type Info struct {
	Key    string
	Size   int64  // body length in bytes
	SHA256 string // lower-case hex of the body
	// Header holds the stored response headers (Content-Type, ETag,
	// Last-Modified, Content-Encoding, ...); nil means none.
	Header http.Header
	// Status is the upstream status the body answers: 200, or 404 for a
	// negative entry. Zero is read as 200.
	Status     int
	StoredAt   time.Time // when the body was fetched or last revalidated
	LastAccess time.Time // last served; zero when the backend cannot tell
}

// Getter opens an entry; the caller closes the body. A missing key is
// ErrNotFound.
type Getter interface {
	Get(ctx context.Context, key string) (io.ReadCloser, Info, error)
}

// Saver stores r under key atomically: nothing becomes visible unless the
// whole body was read and made durable. It computes Size and SHA256; the
// other fields of info (Header, Status, StoredAt) are kept.
type Saver interface {
	Save(ctx context.Context, key string, r io.Reader, info Info) (Info, error)
}

// Deleter removes an entry; deleting a missing key is not an error.
type Deleter interface {
	Delete(ctx context.Context, key string) error
}

// Lister calls fn for every entry whose key starts with prefix, in no
// particular order; an error from fn stops the walk and is returned.
// Backends that cannot list metadata cheaply may leave SHA256 and Header
// empty; Key and Size are always set.
type Lister interface {
	List(ctx context.Context, prefix string, fn func(Info) error) error
}

// Stat returns an entry's Info without opening its body.
type Stat interface {
	Stat(ctx context.Context, key string) (Info, error)
}

// Store is a complete backend.
type Store interface {
	Getter
	Saver
	Deleter
	Lister
	Stat
}

// Optional abilities, found by type assertion.

// InfoSetter replaces an entry's Header, Status and StoredAt without
// rewriting its body (a 304 revalidation).
type InfoSetter interface {
	SetInfo(ctx context.Context, key string, info Info) error
}

// FileSaver commits a complete, fsynced local file whose Size and SHA256 are
// already known (the Cache's download spool), moving it instead of copying
// when it can. The file belongs to the store afterwards (moved or removed).
type FileSaver interface {
	SaveFile(ctx context.Context, key, path string, info Info) (Info, error)
}

// Toucher records an access time used by LRU eviction across restarts.
type Toucher interface {
	Touch(ctx context.Context, key string, t time.Time) error
}

// Spooler names a directory for download spool files, on the same
// filesystem as the store so that FileSaver can rename them.
type Spooler interface {
	SpoolDir() string
}

// ValidKey reports whether key can be stored: non-empty, at most MaxKeyLen
// bytes, and no empty '/'-separated segment. Any other byte (NUL, '\',
// "..", '%', non-UTF-8) is allowed; backends escape it.
func ValidKey(key string) error {
	if key == "" || len(key) > MaxKeyLen {
		return ErrInvalidKey
	}
	if key[0] == '/' || key[len(key)-1] == '/' || strings.Contains(key, "//") {
		return ErrInvalidKey
	}
	return nil
}

// EscapeSegment turns one key segment into a string that is safe as a file
// or object name and never equal to "." or "..": bytes outside
// [A-Za-z0-9_.@+~-] become %XX, and so does a leading '.'. The mapping is
// injective and reversed by UnescapeSegment.
func EscapeSegment(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if !safeByte(s[i]) || (i == 0 && s[i] == '.') {
			n++
		}
	}
	if n == 0 {
		return s
	}
	const hexd = "0123456789ABCDEF"
	b := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !safeByte(c) || (i == 0 && c == '.') {
			b = append(b, '%', hexd[c>>4], hexd[c&15])
			continue
		}
		b = append(b, c)
	}
	return string(b)
}

// UnescapeSegment reverses EscapeSegment.
func UnescapeSegment(s string) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b = append(b, s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", ErrInvalidKey
		}
		hi, ok1 := unhex(s[i+1])
		lo, ok2 := unhex(s[i+2])
		if !ok1 || !ok2 {
			return "", ErrInvalidKey
		}
		b = append(b, hi<<4|lo)
		i += 2
	}
	return string(b), nil
}

// EscapeKey escapes every segment of a valid key, keeping '/' separators.
func EscapeKey(key string) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = EscapeSegment(s)
	}
	return strings.Join(segs, "/")
}

// UnescapeKey reverses EscapeKey.
func UnescapeKey(s string) (string, error) {
	segs := strings.Split(s, "/")
	for i, seg := range segs {
		u, err := UnescapeSegment(seg)
		if err != nil {
			return "", err
		}
		segs[i] = u
	}
	return strings.Join(segs, "/"), nil
}

func safeByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '_' || c == '.' || c == '@' || c == '+' || c == '~' || c == '-'
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
