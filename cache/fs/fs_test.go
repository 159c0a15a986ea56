package fs

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/cafilprox/cafilprox/cache"
	"github.com/cafilprox/cafilprox/cache/storetest"
)

func TestCompliance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) cache.Store {
		s, err := Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestChangesByAnotherProcessSeen: sidecars kept in memory never hide an
// overwrite or delete made through another Store on the same directory.
func TestChangesByAnotherProcessSeen(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	a, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	read := func() (string, error) {
		rc, _, err := a.Get(ctx, "npm/x/1/k")
		if err != nil {
			return "", err
		}
		defer rc.Close()
		body, err := io.ReadAll(rc)
		return string(body), err
	}
	if _, err := a.Save(ctx, "npm/x/1/k", strings.NewReader("one"), cache.Info{}); err != nil {
		t.Fatal(err)
	}
	if got, err := read(); got != "one" || err != nil {
		t.Fatalf("got %q %v, want one", got, err)
	}
	if _, err := b.Save(ctx, "npm/x/1/k", strings.NewReader("two"), cache.Info{}); err != nil {
		t.Fatal(err)
	}
	if got, err := read(); got != "two" || err != nil {
		t.Errorf("after another store overwrote: got %q %v, want two", got, err)
	}
	if st, err := a.Stat(ctx, "npm/x/1/k"); err != nil || st.Size != 3 {
		t.Errorf("Stat after overwrite: got %+v %v", st, err)
	}
	if err := b.Delete(ctx, "npm/x/1/k"); err != nil {
		t.Fatal(err)
	}
	if _, err := read(); !errors.Is(err, cache.ErrNotFound) {
		t.Errorf("after another store deleted: got %v, want ErrNotFound", err)
	}
}
