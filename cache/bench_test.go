package cache_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cafilprox/cafilprox/cache"
	"github.com/cafilprox/cafilprox/cache/fs"
)

func benchCache(b *testing.B) (*cache.Cache, *fs.Store) {
	st, err := fs.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	c, err := cache.New(st, cache.Options{})
	if err != nil {
		b.Fatal(err)
	}
	return c, st
}

// BenchmarkHitSmall: a fresh 2 KiB metadata hit, read to the end.
func BenchmarkHitSmall(b *testing.B) {
	c, st := benchCache(b)
	body := bytes.Repeat([]byte("x"), 2048)
	f := cache.Fetch{Key: cache.Key("npm", "lodash", "", "abbreviated", "https://registry.npmjs.org/lodash"),
		TTL: time.Hour, Do: func(context.Context, http.Header) (*http.Response, error) {
			b.Fatal("unexpected upstream call")
			return nil, nil
		}}
	if _, err := st.Save(context.Background(), f.Key, bytes.NewReader(body), cache.Info{StoredAt: time.Now()}); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		r, err := c.Get(ctx, f)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			b.Fatal(err)
		}
		r.Body.Close()
	}
}

// BenchmarkStreamLarge streams one large artifact (1 GiB by default, a
// sparse file; CAFILPROX_BENCH_SIZE overrides) from the fs store, verified,
// and reports the heap growth: it must stay flat whatever the size.
func BenchmarkStreamLarge(b *testing.B) {
	size := int64(1 << 30)
	if v, err := strconv.ParseInt(os.Getenv("CAFILPROX_BENCH_SIZE"), 10, 64); err == nil {
		size = v
	}
	c, st := benchCache(b)
	p := filepath.Join(st.SpoolDir(), "sparse")
	if err := os.WriteFile(p, nil, 0o640); err != nil {
		b.Fatal(err)
	}
	if err := os.Truncate(p, size); err != nil {
		b.Fatal(err)
	}
	h := sha256.New()
	if _, err := io.CopyN(h, zeroReader{}, size); err != nil {
		b.Fatal(err)
	}
	key := "npm/huge/1.0.0/k"
	if _, err := st.SaveFile(context.Background(), key, p, cache.Info{Size: size, SHA256: hex.EncodeToString(h.Sum(nil))}); err != nil {
		b.Fatal(err)
	}
	f := cache.Fetch{Key: key, Artifact: true, Do: func(context.Context, http.Header) (*http.Response, error) {
		b.Fatal("unexpected upstream call")
		return nil, nil
	}}

	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var peak atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // sample the heap while streaming
		defer close(done)
		var m runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
		}
	}()
	buf := make([]byte, 256<<10)
	b.SetBytes(size)
	for b.Loop() {
		r, err := c.Get(context.Background(), f)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.CopyBuffer(io.Discard, r.Body, buf)
		r.Body.Close()
		if err != nil || n != size {
			b.Fatalf("streamed %d bytes, err %v; want %d", n, err, size)
		}
	}
	close(stop)
	<-done
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(int64(after.Sys)-int64(before.Sys))/(1<<20), "sys-growth-MiB")
}

// BenchmarkMissStream: a 64 MiB artifact fetched upstream through the
// spool, verified against a published SHA-256 and stored.
func BenchmarkMissStream(b *testing.B) {
	const size = 64 << 20
	c, _ := benchCache(b)
	h := sha256.New()
	io.CopyN(h, zeroReader{}, size)
	expect := "sha256:" + hex.EncodeToString(h.Sum(nil))
	b.SetBytes(size)
	i := 0
	for b.Loop() {
		i++
		f := cache.Fetch{Key: "npm/m/" + strconv.Itoa(i) + "/k", Artifact: true, Expect: expect,
			Do: func(context.Context, http.Header) (*http.Response, error) {
				return &http.Response{StatusCode: 200, Header: http.Header{}, ContentLength: size,
					Body: io.NopCloser(io.LimitReader(zeroReader{}, size))}, nil
			}}
		r, err := c.Get(context.Background(), f)
		if err != nil {
			b.Fatal(err)
		}
		if n, err := io.Copy(io.Discard, r.Body); err != nil || n != size {
			b.Fatalf("got %d bytes, err %v", n, err)
		}
		r.Body.Close()
		c.WaitIdle()
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
