package fs

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cafilprox/cafilprox/cache"
)

const helperEnv = "CAFILPROX_FS_CRASH_HELPER"

// stallingReader yields n bytes, announces it on stdout, then blocks
// forever, like an upstream that stops sending.
type stallingReader struct{ n int }

func (r *stallingReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		fmt.Println("stalled")
		select {}
	}
	k := min(len(p), r.n)
	clear(p[:k])
	r.n -= k
	return k, nil
}

// TestCrashHelper is the child process of TestKilledDuringSave.
func TestCrashHelper(t *testing.T) {
	dir := os.Getenv(helperEnv)
	if dir == "" {
		t.Skip("helper process for TestKilledDuringSave")
	}
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Save(context.Background(), "npm/big/1/k", &stallingReader{n: 1 << 20}, cache.Info{}); err != nil {
		t.Fatal(err)
	}
}

func TestKilledDuringSave(t *testing.T) {
	if os.Getenv(helperEnv) != "" {
		t.Skip("in helper")
	}
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	old := []byte("previous complete entry")
	if _, err := s.Save(ctx, "npm/big/1/old", bytes.NewReader(old), cache.Info{}); err != nil {
		t.Fatal(err)
	}
	s.Close() // the helper owns the directory now, as a restarted proxy would

	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$", "-test.v")
	cmd.Env = append(os.Environ(), helperEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	stalled := false
	for sc.Scan() {
		if strings.Contains(sc.Text(), "stalled") {
			stalled = true
			break
		}
	}
	if !stalled {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("helper never reached the stalled write")
	}
	// The helper has written 1 MiB to a temp file and is mid-Save.
	temps, _ := filepath.Glob(filepath.Join(dir, "tmp", "body-*"))
	if len(temps) != 1 {
		t.Errorf("temp files while saving: got %v, want one", temps)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	go io.Copy(io.Discard, out)

	s2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s2.Get(ctx, "npm/big/1/k"); !errors.Is(err, cache.ErrNotFound) {
		t.Errorf("Get of the killed save: got %v, want ErrNotFound", err)
	}
	var listed []string
	var size int64
	s2.List(ctx, "", func(i cache.Info) error { listed = append(listed, i.Key); size += i.Size; return nil })
	if len(listed) != 1 || listed[0] != "npm/big/1/old" || size != int64(len(old)) {
		t.Errorf("after kill: listed %v (%d bytes), want only the old entry", listed, size)
	}
	if temps, _ := filepath.Glob(filepath.Join(dir, "tmp", "*")); len(temps) != 0 {
		t.Errorf("temp files after reopen: got %v, want none", temps)
	}
}

// TestCrashStatesSwept covers the states a crash between the two renames
// of a commit can leave: a body no sidecar names, and a sidecar whose body
// is missing or short.
func TestCrashStatesSwept(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, k := range []string{"npm/a/1/k", "npm/b/1/k", "npm/c/1/k"} {
		if _, err := s.Save(ctx, k, bytes.NewReader([]byte("0123456789")), cache.Info{}); err != nil {
			t.Fatal(err)
		}
	}
	obj := filepath.Join(dir, "objects", "npm")
	// a: an orphan body beside the committed one (crash before the sidecar).
	orphan := filepath.Join(obj, "a", "1", "k#b00000000deadbeef")
	if err := os.WriteFile(orphan, []byte("partial"), 0o640); err != nil {
		t.Fatal(err)
	}
	// b: the sidecar's body is gone.
	bodies, _ := filepath.Glob(filepath.Join(obj, "b", "1", "k#b*"))
	os.Remove(bodies[0])
	// c: the body is short.
	bodies, _ = filepath.Glob(filepath.Join(obj, "c", "1", "k#b*"))
	os.Truncate(bodies[0], 3)
	// A stray temp file.
	os.WriteFile(filepath.Join(dir, "tmp", "body-123"), []byte("tmp"), 0o640)
	s.Close() // the crashed process is gone

	s2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		key     string
		wantErr error
	}{
		{"npm/a/1/k", nil},
		{"npm/b/1/k", cache.ErrNotFound},
		{"npm/c/1/k", cache.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			rc, _, err := s2.Get(ctx, tt.key)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("got %v, want %v", err, tt.wantErr)
			}
			if err == nil {
				b, _ := io.ReadAll(rc)
				rc.Close()
				if string(b) != "0123456789" {
					t.Errorf("got %q, want the committed body", b)
				}
			}
		})
	}
	if _, err := os.Stat(orphan); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("orphan body after Open: got %v, want removed", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "tmp", "*")); len(left) != 0 {
		t.Errorf("temp files after Open: %v", left)
	}
}

func TestKeysStayInsideRoot(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "store")
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"../../etc/passwd", "..", "../x", "%2e%2e/%2e%2e/escape", "a/../../../escape", "..\\..\\escape", "\x00/.."} {
		if _, err := s.Save(context.Background(), k, bytes.NewReader([]byte("x")), cache.Info{}); err != nil {
			t.Fatalf("Save(%q): %v", k, err)
		}
	}
	// Nothing may have been created outside <root>/objects.
	err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if p != dir && p != root && !strings.HasPrefix(rel, "objects") && !strings.HasPrefix(rel, "tmp") && rel != "lock" {
			t.Errorf("file outside the store: %s", p)
		}
		if base := d.Name(); base == ".." || base == "." || strings.ContainsAny(base, "\\\x00") {
			t.Errorf("unsafe name on disk: %q", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestSecondOpenLeavesOwnersTempFiles(t *testing.T) {
	dir := t.TempDir()
	owner, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	inProgress := filepath.Join(dir, "tmp", "body-inprogress")
	if err := os.WriteFile(inProgress, []byte("x"), 0o640); err != nil {
		t.Fatal(err)
	}
	other, err := Open(dir) // e.g. `cafilprox cache stats` next to the proxy
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := os.Stat(inProgress); err != nil {
		t.Errorf("owner's temp file after a second Open: got %v, want kept", err)
	}
	owner.Close()
	third, err := Open(dir) // the owner is gone: this one cleans up
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	if _, err := os.Stat(inProgress); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temp file after the owner closed: got %v, want removed", err)
	}
}
