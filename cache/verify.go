package cache

import (
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strings"
	"sync"
)

// expect is a parsed Fetch.Expect.
type expect struct {
	algo string // "" when nothing is expected
	sum  []byte
}

// parseExpect reads "algo:hex" or SRI "algo-base64".
func parseExpect(s string) (expect, error) {
	if s == "" {
		return expect{}, nil
	}
	var algo, val string
	var sum []byte
	var err error
	if a, v, ok := strings.Cut(s, ":"); ok {
		algo, val = strings.ToLower(a), v
		sum, err = hex.DecodeString(strings.ToLower(val))
	} else if a, v, ok := strings.Cut(s, "-"); ok {
		algo, val = strings.ToLower(a), v
		sum, err = base64.StdEncoding.DecodeString(val)
	} else {
		return expect{}, fmt.Errorf("cache: expected digest %q: want algo:hex", s)
	}
	if err != nil {
		return expect{}, fmt.Errorf("cache: expected digest %q: %w", s, err)
	}
	h := newHash(algo)
	if h == nil {
		return expect{}, fmt.Errorf("cache: expected digest %q: unknown algorithm %q", s, algo)
	}
	if len(sum) != h.Size() {
		return expect{}, fmt.Errorf("cache: expected digest %q: %d bytes, want %d", s, len(sum), h.Size())
	}
	return expect{algo: algo, sum: sum}, nil
}

func newHash(algo string) hash.Hash {
	switch algo {
	case "sha256":
		return sha256.New()
	case "sha512":
		return sha512.New()
	case "sha384":
		return sha512.New384()
	case "sha1":
		return sha1.New()
	case "md5":
		return md5.New()
	}
	return nil
}

// contradicts reports whether a stored entry's SHA-256 differs from an
// expected SHA-256 (other algorithms cannot be checked without rereading).
func (e expect) contradicts(i Info) bool {
	return e.algo == "sha256" && i.Status != http.StatusNotFound && i.SHA256 != hex.EncodeToString(e.sum)
}

// hashes computes the SHA-256 every entry records and, when different, the
// expected algorithm, in one pass.
type hashes struct {
	sha256 hash.Hash
	other  hash.Hash
	exp    expect
}

func newHashes(e expect) *hashes {
	h := &hashes{sha256: sha256.New(), exp: e}
	if e.algo != "" && e.algo != "sha256" {
		h.other = newHash(e.algo)
	}
	return h
}

func (h *hashes) write(p []byte) {
	h.sha256.Write(p)
	if h.other != nil {
		h.other.Write(p)
	}
}

func (h *hashes) matches() bool {
	switch {
	case h.exp.algo == "":
		return true
	case h.other != nil:
		return bytes.Equal(h.other.Sum(nil), h.exp.sum)
	}
	return bytes.Equal(h.sha256.Sum(nil), h.exp.sum)
}

// verify wraps a stored body so that it is hashed while streamed and its
// last holdback bytes are released only once size and SHA-256 match; a bad
// entry yields ErrIntegrity before the body is complete and is dropped.
func (c *Cache) verify(rc io.ReadCloser, info Info) io.ReadCloser {
	want, err := hex.DecodeString(info.SHA256)
	if err != nil || len(want) != sha256.Size {
		want = nil // unverifiable: fails at the end
	}
	return &verifyReader{rc: rc, h: sha256.New(), want: want, size: info.Size,
		onBad: func() { c.corrupt.Add(1); c.drop(info.Key) }, key: info.Key}
}

type verifyReader struct {
	rc    io.ReadCloser
	h     hash.Hash
	want  []byte
	size  int64
	n     int64  // bytes read from rc
	tail  []byte // verified final bytes, once read
	toff  int
	err   error
	key   string
	onBad func()
}

func (v *verifyReader) fail(format string, args ...any) error {
	v.err = fmt.Errorf("cache: %q: "+format+": %w", append(append([]any{v.key}, args...), ErrIntegrity)...)
	if v.onBad != nil {
		v.onBad()
		v.onBad = nil
	}
	return v.err
}

func (v *verifyReader) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	if v.tail != nil {
		if v.toff == len(v.tail) {
			return 0, io.EOF
		}
		n := copy(p, v.tail[v.toff:])
		v.toff += n
		return n, nil
	}
	hold := min(v.size, holdback)
	if rem := v.size - hold - v.n; rem > 0 {
		if int64(len(p)) > rem {
			p = p[:rem]
		}
		n, err := v.rc.Read(p)
		v.h.Write(p[:n])
		v.n += int64(n)
		if err == io.EOF {
			return n, v.fail("truncated at %d of %d bytes", v.n, v.size)
		}
		return n, err
	}
	tail := make([]byte, hold)
	if k, err := io.ReadFull(v.rc, tail); err != nil {
		if err == io.ErrUnexpectedEOF || err == io.EOF {
			return 0, v.fail("truncated at %d of %d bytes", v.n+int64(k), v.size)
		}
		return 0, err
	}
	var extra [1]byte
	if k, _ := io.ReadFull(v.rc, extra[:]); k > 0 {
		return 0, v.fail("longer than %d bytes", v.size)
	}
	v.h.Write(tail)
	if v.want == nil || !bytes.Equal(v.h.Sum(nil), v.want) {
		return 0, v.fail("sha256 mismatch")
	}
	v.tail = tail
	return v.Read(p)
}

func (v *verifyReader) Close() error { return v.rc.Close() }

var bigBufs = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// WriteTo lets io.Copy stream large bodies in 256 KiB reads instead of the
// 8-32 KiB a ReaderFrom destination would use: fewer syscalls per byte.
func (v *verifyReader) WriteTo(w io.Writer) (int64, error) {
	var buf []byte
	if v.size > 64<<10 {
		bp := bigBufs.Get().(*[]byte)
		defer bigBufs.Put(bp)
		buf = *bp
	} else {
		buf = make([]byte, max(v.size, 1))
	}
	var total int64
	for {
		n, err := v.Read(buf)
		if n > 0 {
			k, werr := w.Write(buf[:n])
			total += int64(k)
			if werr != nil {
				return total, werr
			}
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}
