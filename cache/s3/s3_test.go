package s3

import (
	"context"
	"fmt"
	"go/build"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cafilprox/cafilprox/cache"
	"github.com/cafilprox/cafilprox/cache/storetest"
)

// startVersity runs a real S3-compatible server (versitygw, posix backend)
// in a temp dir on a loopback port. Install it with
// go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
func startVersity(t *testing.T) (endpoint, access, secret string) {
	t.Helper()
	bin, err := exec.LookPath("versitygw")
	if err != nil {
		alt := filepath.Join(build.Default.GOPATH, "bin", "versitygw")
		if _, serr := os.Stat(alt); serr == nil {
			bin, err = alt, nil
		}
	}
	if err != nil {
		msg := "versitygw not found on PATH: go install github.com/versity/versitygw/cmd/versitygw@v1.8.0"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	root := t.TempDir()
	access, secret = "cafilproxtest", "cafilprox-test-secret"
	cmd := exec.Command(bin, "--access", access, "--secret", secret, "--port", addr, "posix", root)
	log, err := os.Create(filepath.Join(t.TempDir(), "versitygw.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		log.Close()
	})
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if i == 200 {
			b, _ := os.ReadFile(log.Name())
			t.Fatalf("versitygw did not start on %s: %s", addr, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return "http://" + addr, access, secret
}

func TestCompliance(t *testing.T) {
	endpoint, access, secret := startVersity(t)
	var n atomic.Int64
	storetest.Run(t, func(t *testing.T) cache.Store {
		// One bucket; every subtest gets its own prefix, which also
		// proves that prefixes isolate.
		s, err := Open(context.Background(), Config{Endpoint: endpoint, Bucket: "cafilprox", CreateBucket: true,
			Prefix: fmt.Sprintf("run-%d", n.Add(1)), AccessKey: access, SecretKey: secret, TempDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestOpenErrors(t *testing.T) {
	endpoint, access, secret := startVersity(t)
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no endpoint", Config{Bucket: "b"}},
		{"no bucket", Config{Endpoint: endpoint}},
		{"missing bucket", Config{Endpoint: endpoint, Bucket: "absent", AccessKey: access, SecretKey: secret}},
		{"wrong secret", Config{Endpoint: endpoint, Bucket: "absent", AccessKey: access, SecretKey: "wrong", CreateBucket: true}},
		{"missing ca file", Config{Endpoint: endpoint, Bucket: "b", CAFile: "/nonexistent.pem"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Open(context.Background(), tt.cfg); err == nil {
				t.Errorf("got nil error, want failure")
			}
		})
	}
}

// TestCacheOverS3 runs the Cache on this backend: miss, hit, revalidation
// through SetInfo, and an index rebuilt from the bucket listing.
func TestCacheOverS3(t *testing.T) {
	endpoint, access, secret := startVersity(t)
	ctx := context.Background()
	open := func() *Store {
		s, err := Open(ctx, Config{Endpoint: endpoint, Bucket: "cache-test", CreateBucket: true,
			Prefix: "cache", AccessKey: access, SecretKey: secret})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	c, err := cache.New(open(), cache.Options{SpoolDir: t.TempDir(), MetadataTTL: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int64
	body := strings.Repeat("metadata document ", 5000)
	f := cache.Fetch{Key: cache.Key("npm", "react", "", "full", "https://registry.npmjs.org/react"),
		Do: func(_ context.Context, h http.Header) (*http.Response, error) {
			calls.Add(1)
			if h.Get("If-None-Match") == `"e1"` {
				return &http.Response{StatusCode: 304, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(""))}, nil
			}
			return &http.Response{StatusCode: 200, Header: http.Header{"Etag": {`"e1"`}}, ContentLength: int64(len(body)),
				Body: io.NopCloser(strings.NewReader(body))}, nil
		}}
	for i, want := range []string{cache.StatusMiss, cache.StatusRevalidated} {
		r, err := c.Get(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(r.Body)
		r.Body.Close()
		c.WaitIdle()
		if err != nil || string(b) != body || r.Status != want {
			t.Errorf("request %d: got %s, %d bytes, err %v; want %s", i, r.Status, len(b), err, want)
		}
	}
	if calls.Load() != 2 {
		t.Errorf("upstream calls: got %d, want 2", calls.Load())
	}
	c2, err := cache.New(open(), cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s := c2.Stats(); s.Entries != 1 || s.Size != int64(len(body)) {
		t.Errorf("rebuilt index: got %d entries, %d bytes; want 1, %d", s.Entries, s.Size, len(body))
	}
}
