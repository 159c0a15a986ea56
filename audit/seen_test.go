package audit

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func TestMarkSeen(t *testing.T) {
	defer func(f func() time.Time) { now = f }(now)
	clock := t0
	now = func() time.Time { return clock }
	ctx := context.Background()
	l, path := openTest(t, Options{})

	// First sighting: everything listed is baseline, FirstSeen says "unknown".
	res, err := l.MarkSeen(ctx, "composer", "acme/lib", []string{"1.0.0", "1.1.0"}, map[string]string{"1.0.0": "abc"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"1.0.0", "1.1.0"}; !reflect.DeepEqual(res.New, want) {
		t.Errorf("new on first sight: got %v, want %v", res.New, want)
	}
	if _, ok := l.FirstSeen(ctx, "composer", "acme/lib", "1.0.0"); ok {
		t.Errorf("FirstSeen of a baseline version: got ok, want not ok")
	}

	// A day later a new version appears, 1.1.0 gets its first ref and 1.0.0
	// is re-tagged.
	clock = t0.Add(24 * time.Hour)
	res, err = l.MarkSeen(ctx, "composer", "acme/lib", []string{"1.0.0", "1.1.0"},
		map[string]string{"1.0.0": "evil", "1.1.0": "def", "1.2.0": "ghi"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"1.2.0"}; !reflect.DeepEqual(res.New, want) {
		t.Errorf("new: got %v, want %v", res.New, want)
	}
	if want := []string{"1.0.0"}; !reflect.DeepEqual(res.Retagged, want) {
		t.Errorf("retagged: got %v, want %v", res.Retagged, want)
	}
	want := map[string]Seen{
		"1.0.0": {FirstSeen: t0, Ref: "abc", Baseline: true, LastRef: "evil"},
		"1.1.0": {FirstSeen: t0, Ref: "def", Baseline: true},
		"1.2.0": {FirstSeen: t0.Add(24 * time.Hour), Ref: "ghi"},
	}
	if !reflect.DeepEqual(res.Versions, want) {
		t.Errorf("versions: got %+v, want %+v", res.Versions, want)
	}

	first, ok := l.FirstSeen(ctx, "composer", "acme/lib", "1.2.0")
	if !ok || !first.Equal(t0.Add(24*time.Hour)) {
		t.Errorf("FirstSeen 1.2.0: got %v %v, want %v true", first, ok, t0.Add(24*time.Hour))
	}
	if _, ok := l.FirstSeen(ctx, "composer", "acme/lib", "9.9.9"); ok {
		t.Errorf("FirstSeen of an unknown version: got ok, want not ok")
	}

	tests := []struct {
		version, ref string
		want         bool
	}{
		{"1.0.0", "abc", false},
		{"1.0.0", "evil", true},
		{"1.0.0", "", false},
		{"1.1.0", "def", false},
		{"1.1.0", "other", true},
		{"9.9.9", "x", false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("retagged %s %s", tt.version, tt.ref), func(t *testing.T) {
			if got := l.Retagged(ctx, "composer", "acme/lib", tt.version, tt.ref); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}

	// Seen data is durable across reopen.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	got, err := l2.SeenVersions(ctx, "composer", "acme/lib")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("after reopen: got %+v, want %+v", got, want)
	}
	// Another package is independent: its first sighting is baseline too.
	res, err = l2.MarkSeen(ctx, "npm", "acme/lib", []string{"1.0.0"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Versions["1.0.0"].Baseline {
		t.Errorf("first sighting in another ecosystem: got not baseline, want baseline")
	}
}

func BenchmarkFirstSeen(b *testing.B) {
	l, err := Open(filepath.Join(b.TempDir(), "a.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	vs := make([]string, 1000)
	for i := range vs {
		vs[i] = fmt.Sprintf("1.0.%d", i)
	}
	if _, err := l.MarkSeen(ctx, "npm", "react", vs, nil); err != nil {
		b.Fatal(err)
	}
	if _, err := l.MarkSeen(ctx, "npm", "react", []string{"2.0.0"}, nil); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, ok := l.FirstSeen(ctx, "npm", "react", "2.0.0"); !ok {
			b.Fatal("not found")
		}
	}
}

func BenchmarkMarkSeenUnchanged(b *testing.B) {
	l, err := Open(filepath.Join(b.TempDir(), "a.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	vs := make([]string, 1000)
	for i := range vs {
		vs[i] = fmt.Sprintf("1.0.%d", i)
	}
	for b.Loop() {
		if _, err := l.MarkSeen(ctx, "npm", "react", vs, nil); err != nil {
			b.Fatal(err)
		}
	}
}
