// Package storetest is the compliance suite every cache.Store backend runs.
package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/cafilprox/cafilprox/cache"
)

// Run runs the suite; newStore returns an empty store for each subtest.
func Run(t *testing.T, newStore func(t *testing.T) cache.Store) {
	t.Run("SaveGetStat", func(t *testing.T) { testSaveGetStat(t, newStore(t)) })
	t.Run("Missing", func(t *testing.T) { testMissing(t, newStore(t)) })
	t.Run("Overwrite", func(t *testing.T) { testOverwrite(t, newStore(t)) })
	t.Run("Delete", func(t *testing.T) { testDelete(t, newStore(t)) })
	t.Run("ListPrefix", func(t *testing.T) { testList(t, newStore(t)) })
	t.Run("ConcurrentSaves", func(t *testing.T) { testConcurrent(t, newStore(t)) })
	t.Run("FailingReader", func(t *testing.T) { testFailingReader(t, newStore(t)) })
	t.Run("WeirdKeys", func(t *testing.T) { testWeirdKeys(t, newStore(t)) })
	t.Run("InvalidKeys", func(t *testing.T) { testInvalidKeys(t, newStore(t)) })
	t.Run("OptionalAbilities", func(t *testing.T) { testOptional(t, newStore(t)) })
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func mustSave(t *testing.T, s cache.Store, key string, body []byte, info cache.Info) cache.Info {
	t.Helper()
	got, err := s.Save(context.Background(), key, bytes.NewReader(body), info)
	if err != nil {
		t.Fatalf("Save(%q): %v", key, err)
	}
	return got
}

func mustGet(t *testing.T, s cache.Store, key string) ([]byte, cache.Info) {
	t.Helper()
	rc, info, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("Get(%q) read: %v", key, err)
	}
	return b, info
}

func testSaveGetStat(t *testing.T, s cache.Store) {
	body := []byte("hello, registry")
	stored := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	h := http.Header{"Content-Type": {"application/json"}, "Etag": {`"abc"`}}
	info := mustSave(t, s, "npm/lodash/4.17.21/k1", body, cache.Info{Header: h, Status: 200, StoredAt: stored})
	if info.Size != int64(len(body)) || info.SHA256 != sum(body) || info.Key != "npm/lodash/4.17.21/k1" {
		t.Errorf("Save info = %+v, want size %d sha %s", info, len(body), sum(body))
	}
	got, gi := mustGet(t, s, "npm/lodash/4.17.21/k1")
	if !bytes.Equal(got, body) {
		t.Errorf("Get body = %q, want %q", got, body)
	}
	for name, st := range map[string]cache.Info{"Get": gi, "Stat": mustStat(t, s, "npm/lodash/4.17.21/k1")} {
		if st.Size != int64(len(body)) || st.SHA256 != sum(body) {
			t.Errorf("%s size/sha = %d/%s, want %d/%s", name, st.Size, st.SHA256, len(body), sum(body))
		}
		if st.Header.Get("Content-Type") != "application/json" || st.Header.Get("ETag") != `"abc"` {
			t.Errorf("%s header = %v, want Content-Type and ETag kept", name, st.Header)
		}
		if st.Status != 200 || !st.StoredAt.Equal(stored) {
			t.Errorf("%s status/stored = %d/%v, want 200/%v", name, st.Status, st.StoredAt, stored)
		}
		if st.Key != "npm/lodash/4.17.21/k1" {
			t.Errorf("%s key = %q", name, st.Key)
		}
	}
	// Negative entries keep their status; an empty body is valid.
	mustSave(t, s, "npm/nope/_/k", nil, cache.Info{Status: 404})
	b, ni := mustGet(t, s, "npm/nope/_/k")
	if len(b) != 0 || ni.Status != 404 || ni.SHA256 != sum(nil) {
		t.Errorf("negative entry = %q status %d sha %s, want empty 404", b, ni.Status, ni.SHA256)
	}
}

func mustStat(t *testing.T, s cache.Store, key string) cache.Info {
	t.Helper()
	st, err := s.Stat(context.Background(), key)
	if err != nil {
		t.Fatalf("Stat(%q): %v", key, err)
	}
	return st
}

func testMissing(t *testing.T, s cache.Store) {
	ctx := context.Background()
	if _, _, err := s.Get(ctx, "npm/missing/1/k"); !errors.Is(err, cache.ErrNotFound) {
		t.Errorf("Get missing: got %v, want ErrNotFound", err)
	}
	if _, err := s.Stat(ctx, "npm/missing/1/k"); !errors.Is(err, cache.ErrNotFound) {
		t.Errorf("Stat missing: got %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, "npm/missing/1/k"); err != nil {
		t.Errorf("Delete missing: got %v, want nil", err)
	}
	mustSave(t, s, "npm/a/1/k", []byte("x"), cache.Info{})
	// A prefix of an existing key is not a key.
	if _, _, err := s.Get(ctx, "npm/a/1"); !errors.Is(err, cache.ErrNotFound) {
		t.Errorf("Get of a key's directory: got %v, want ErrNotFound", err)
	}
}

func testOverwrite(t *testing.T, s cache.Store) {
	mustSave(t, s, "pypi/requests/_/k", []byte("first version, longer"), cache.Info{Header: http.Header{"Etag": {"1"}}})
	mustSave(t, s, "pypi/requests/_/k", []byte("second"), cache.Info{Header: http.Header{"Etag": {"2"}}})
	b, info := mustGet(t, s, "pypi/requests/_/k")
	if string(b) != "second" || info.Size != 6 || info.SHA256 != sum([]byte("second")) || info.Header.Get("ETag") != "2" {
		t.Errorf("after overwrite got %q %+v, want second", b, info)
	}
	n := 0
	if err := s.List(context.Background(), "pypi/", func(cache.Info) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("List after overwrite: got %d entries, want 1", n)
	}
}

func testDelete(t *testing.T, s cache.Store) {
	ctx := context.Background()
	mustSave(t, s, "cargo/serde/1.0.0/k", []byte("crate"), cache.Info{})
	if err := s.Delete(ctx, "cargo/serde/1.0.0/k"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, _, err := s.Get(ctx, "cargo/serde/1.0.0/k"); !errors.Is(err, cache.ErrNotFound) {
		t.Errorf("Get after Delete: got %v, want ErrNotFound", err)
	}
	// Saving again after a delete works.
	mustSave(t, s, "cargo/serde/1.0.0/k", []byte("again"), cache.Info{})
	if b, _ := mustGet(t, s, "cargo/serde/1.0.0/k"); string(b) != "again" {
		t.Errorf("got %q, want again", b)
	}
}

func listKeys(t *testing.T, s cache.Store, prefix string) []string {
	t.Helper()
	var keys []string
	err := s.List(context.Background(), prefix, func(i cache.Info) error {
		keys = append(keys, i.Key)
		return nil
	})
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	sort.Strings(keys)
	return keys
}

func testList(t *testing.T, s cache.Store) {
	keys := []string{"npm/lodash/1/a", "npm/lodash/2/a", "npm/lodash-es/1/a", "npm/%40scope%2Fx/1/a", "pypi/lodash/1/a"}
	for i, k := range keys {
		mustSave(t, s, k, bytes.Repeat([]byte("x"), i+1), cache.Info{})
	}
	tests := []struct {
		prefix string
		want   []string
	}{
		{"", []string{"npm/%40scope%2Fx/1/a", "npm/lodash-es/1/a", "npm/lodash/1/a", "npm/lodash/2/a", "pypi/lodash/1/a"}},
		{"npm/", []string{"npm/%40scope%2Fx/1/a", "npm/lodash-es/1/a", "npm/lodash/1/a", "npm/lodash/2/a"}},
		{"npm/lodash/", []string{"npm/lodash/1/a", "npm/lodash/2/a"}},
		{"npm/lodash", []string{"npm/lodash-es/1/a", "npm/lodash/1/a", "npm/lodash/2/a"}},
		{"npm/lodash/2/", []string{"npm/lodash/2/a"}},
		{"go/", nil},
	}
	for _, tt := range tests {
		t.Run(tt.prefix, func(t *testing.T) {
			got := listKeys(t, s, tt.prefix)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	var size int64
	_ = s.List(context.Background(), "npm/lodash/2/", func(i cache.Info) error { size = i.Size; return nil })
	if size != 2 {
		t.Errorf("listed size = %d, want 2", size)
	}
	stop := errors.New("stop")
	if err := s.List(context.Background(), "", func(cache.Info) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("List with failing fn: got %v, want %v", err, stop)
	}
}

func testConcurrent(t *testing.T, s cache.Store) {
	const n = 8
	bodies := make(map[string]bool)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		body := bytes.Repeat([]byte{byte('a' + i)}, 1000+i*4096)
		bodies[sum(body)] = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Save(context.Background(), "maven/g:a/1/k", bytes.NewReader(body), cache.Info{})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent Save: %v", err)
		}
	}
	b, info := mustGet(t, s, "maven/g:a/1/k")
	if sum(b) != info.SHA256 || !bodies[info.SHA256] || int64(len(b)) != info.Size {
		t.Errorf("after concurrent saves: body sha %s, info %+v; want one complete body", sum(b), info)
	}
	if got := listKeys(t, s, "maven/"); len(got) != 1 {
		t.Errorf("List after concurrent saves = %v, want one key", got)
	}
}

// failingReader returns n bytes and then an error.
type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n == 0 {
		return 0, errors.New("storetest: upstream reset")
	}
	k := min(len(p), f.n)
	for i := range k {
		p[i] = 'z'
	}
	f.n -= k
	return k, nil
}

func testFailingReader(t *testing.T, s cache.Store) {
	ctx := context.Background()
	if _, err := s.Save(ctx, "npm/fail/1/k", &failingReader{n: 100 << 10}, cache.Info{}); err == nil {
		t.Fatal("Save with failing reader: got nil error")
	}
	if _, _, err := s.Get(ctx, "npm/fail/1/k"); !errors.Is(err, cache.ErrNotFound) {
		t.Errorf("Get after failed Save: got %v, want ErrNotFound", err)
	}
	if got := listKeys(t, s, ""); len(got) != 0 {
		t.Errorf("List after failed Save = %v, want nothing", got)
	}
	// A failed overwrite keeps the previous entry.
	mustSave(t, s, "npm/fail/1/k", []byte("good"), cache.Info{})
	if _, err := s.Save(ctx, "npm/fail/1/k", &failingReader{n: 10}, cache.Info{}); err == nil {
		t.Fatal("Save with failing reader: got nil error")
	}
	if b, _ := mustGet(t, s, "npm/fail/1/k"); string(b) != "good" {
		t.Errorf("after failed overwrite got %q, want good", b)
	}
	// A cancelled context fails the save too.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Save(cctx, "npm/cancel/1/k", bytes.NewReader([]byte("x")), cache.Info{}); err == nil {
		t.Error("Save with cancelled context: got nil error")
	}
	if _, err := s.Stat(ctx, "npm/cancel/1/k"); !errors.Is(err, cache.ErrNotFound) {
		t.Errorf("Stat after cancelled Save: got %v, want ErrNotFound", err)
	}
}

func testWeirdKeys(t *testing.T, s cache.Store) {
	keys := []string{
		"../../etc/passwd",
		"npm/../../../etc/passwd",
		"..",
		"./.",
		"%2e%2e/%2e%2e/x",
		"npm/a\\b\\..\\c/1/k",
		"npm/nul\x00byte/1/k",
		"npm/@scope%2Fname/1/k",
		"npm/.hidden/1/k",
		"npm/space and ü/1/k",
		"npm/x#m/1/k",
		"npm/x/1/k#m",
		"npm/x/1/k#b0123",
		"npm/ /1/k",
		"npm/" + string(bytes.Repeat([]byte("long"), 60)) + "/k",
		"npm/\xff\xfe/1/k",
	}
	for i, k := range keys {
		t.Run(fmt.Sprintf("%d", i), func(t *testing.T) {
			body := []byte(fmt.Sprintf("body %d", i))
			mustSave(t, s, k, body, cache.Info{})
			b, info := mustGet(t, s, k)
			if !bytes.Equal(b, body) || info.Key != k {
				t.Errorf("Get(%q) = %q key %q, want %q", k, b, info.Key, body)
			}
		})
	}
	got := listKeys(t, s, "")
	want := append([]string(nil), keys...)
	sort.Strings(want)
	if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
		t.Errorf("List = %q, want %q", got, want)
	}
	for _, k := range keys {
		if err := s.Delete(context.Background(), k); err != nil {
			t.Errorf("Delete(%q): %v", k, err)
		}
	}
	if got := listKeys(t, s, ""); len(got) != 0 {
		t.Errorf("List after deleting all = %q, want none", got)
	}
}

func testInvalidKeys(t *testing.T, s cache.Store) {
	for _, k := range []string{"", "/abs", "trailing/", "a//b", string(bytes.Repeat([]byte("k"), cache.MaxKeyLen+1))} {
		if _, err := s.Save(context.Background(), k, bytes.NewReader(nil), cache.Info{}); !errors.Is(err, cache.ErrInvalidKey) {
			t.Errorf("Save(%q): got %v, want ErrInvalidKey", k, err)
		}
	}
}

func testOptional(t *testing.T, s cache.Store) {
	ctx := context.Background()
	if is, ok := s.(cache.InfoSetter); ok {
		mustSave(t, s, "npm/meta/_/k", []byte("doc"), cache.Info{Header: http.Header{"Etag": {"1"}}})
		at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		if err := is.SetInfo(ctx, "npm/meta/_/k", cache.Info{Header: http.Header{"Etag": {"2"}}, StoredAt: at}); err != nil {
			t.Fatalf("SetInfo: %v", err)
		}
		b, info := mustGet(t, s, "npm/meta/_/k")
		if string(b) != "doc" || info.Header.Get("ETag") != "2" || !info.StoredAt.Equal(at) || info.SHA256 != sum(b) {
			t.Errorf("after SetInfo got %q %+v, want body kept, ETag 2, StoredAt %v", b, info, at)
		}
		if err := is.SetInfo(ctx, "npm/none/_/k", cache.Info{}); !errors.Is(err, cache.ErrNotFound) {
			t.Errorf("SetInfo missing: got %v, want ErrNotFound", err)
		}
	}
	if fsv, ok := s.(cache.FileSaver); ok {
		dir := t.TempDir()
		if sp, ok := s.(cache.Spooler); ok {
			dir = sp.SpoolDir()
		}
		body := []byte("spooled artifact")
		p := dir + "/spool-test"
		if err := writeFile(p, body); err != nil {
			t.Fatal(err)
		}
		if _, err := fsv.SaveFile(ctx, "npm/file/1/k", p, cache.Info{Size: int64(len(body)), SHA256: sum(body)}); err != nil {
			t.Fatalf("SaveFile: %v", err)
		}
		b, info := mustGet(t, s, "npm/file/1/k")
		if !bytes.Equal(b, body) || info.SHA256 != sum(body) || info.Size != int64(len(body)) {
			t.Errorf("after SaveFile got %q %+v", b, info)
		}
	}
	if tc, ok := s.(cache.Toucher); ok {
		mustSave(t, s, "npm/touch/1/k", []byte("t"), cache.Info{})
		at := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
		if err := tc.Touch(ctx, "npm/touch/1/k", at); err != nil {
			t.Fatalf("Touch: %v", err)
		}
		if got := mustStat(t, s, "npm/touch/1/k").LastAccess; !got.Equal(at) {
			t.Errorf("LastAccess after Touch = %v, want %v", got, at)
		}
	}
}
