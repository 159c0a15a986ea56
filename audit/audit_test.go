package audit

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func openTest(t *testing.T, opts Options) (*Log, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit", "audit.db")
	l, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, path
}

func flush(t *testing.T, l *Log) {
	t.Helper()
	if err := l.Flush(context.Background()); err != nil {
		t.Fatalf("flush: %v", err)
	}
}

func countRows(t *testing.T, path string) int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func ev(min int, ip, user, eco, pkg, ver, kind, decision string) Event {
	return Event{Time: t0.Add(time.Duration(min) * time.Minute), RequestID: fmt.Sprintf("r%d", min), ClientIP: ip, User: user,
		Ecosystem: eco, Package: pkg, Version: ver, Kind: kind, Decision: decision, Cache: "miss", Bytes: 100, Status: 200}
}

func seed(t *testing.T, l *Log) {
	t.Helper()
	for _, e := range []Event{
		ev(0, "10.0.0.1", "", "npm", "left-pad", "1.3.0", "metadata", Allow),
		ev(1, "10.0.0.1", "", "npm", "left-pad", "1.3.0", "artifact", Allow),
		ev(2, "10.0.0.1", "", "npm", "left-pad", "1.2.0", "artifact", Allow),
		ev(3, "10.0.0.2", "ci", "npm", "left-pad", "1.3.0", "artifact", ShadowDeny),
		ev(4, "10.0.0.3", "", "npm", "left-pad", "1.3.0", "artifact", Deny),
		ev(5, "10.0.0.4", "", "pypi", "left-pad", "0.1", "artifact", Allow),
		ev(6, "10.0.0.1", "", "npm", "right-pad", "2.0.0", "artifact", Allow),
	} {
		l.Record(e)
	}
	flush(t, l)
}

func TestWho(t *testing.T) {
	l, _ := openTest(t, Options{})
	seed(t, l)
	tests := []struct {
		name              string
		eco, pkg, version string
		want              []Row
	}{
		{"all versions one ecosystem", "npm", "left-pad", "", []Row{
			{Ecosystem: "npm", Package: "left-pad", ClientIP: "10.0.0.2", User: "ci", First: t0.Add(3 * time.Minute), Last: t0.Add(3 * time.Minute), Count: 1, Versions: []string{"1.3.0"}},
			{Ecosystem: "npm", Package: "left-pad", ClientIP: "10.0.0.1", First: t0.Add(time.Minute), Last: t0.Add(2 * time.Minute), Count: 2, Versions: []string{"1.2.0", "1.3.0"}},
		}},
		{"one version", "npm", "left-pad", "1.2.0", []Row{
			{Ecosystem: "npm", Package: "left-pad", ClientIP: "10.0.0.1", First: t0.Add(2 * time.Minute), Last: t0.Add(2 * time.Minute), Count: 1, Versions: []string{"1.2.0"}},
		}},
		{"any ecosystem", "", "left-pad", "", []Row{
			{Ecosystem: "pypi", Package: "left-pad", ClientIP: "10.0.0.4", First: t0.Add(5 * time.Minute), Last: t0.Add(5 * time.Minute), Count: 1, Versions: []string{"0.1"}},
			{Ecosystem: "npm", Package: "left-pad", ClientIP: "10.0.0.2", User: "ci", First: t0.Add(3 * time.Minute), Last: t0.Add(3 * time.Minute), Count: 1, Versions: []string{"1.3.0"}},
			{Ecosystem: "npm", Package: "left-pad", ClientIP: "10.0.0.1", First: t0.Add(time.Minute), Last: t0.Add(2 * time.Minute), Count: 2, Versions: []string{"1.2.0", "1.3.0"}},
		}},
		{"never fetched", "npm", "nothing", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := l.Who(context.Background(), tt.eco, tt.pkg, tt.version)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestBlocks(t *testing.T) {
	l, _ := openTest(t, Options{})
	seed(t, l)
	got, err := l.Blocks(context.Background(), t0.Add(3*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	var ips []string
	for _, e := range got {
		ips = append(ips, e.ClientIP+":"+e.Decision)
	}
	want := []string{"10.0.0.3:deny", "10.0.0.2:shadow-deny"}
	if !reflect.DeepEqual(ips, want) {
		t.Errorf("got %v, want %v", ips, want)
	}
	got, err = l.Blocks(context.Background(), t0.Add(4*time.Minute+time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Errorf("blocks after the last refusal: got %v, want none", got)
	}
}

func TestExport(t *testing.T) {
	l, _ := openTest(t, Options{})
	seed(t, l)
	l.Record(Event{Time: t0.Add(10 * time.Minute), ClientIP: "10.0.0.9", Package: `a,"quoted"`, Reason: "line\nbreak", Decision: Deny})
	flush(t, l)
	since := t0.Add(5 * time.Minute)

	t.Run("jsonl", func(t *testing.T) {
		var buf bytes.Buffer
		if err := l.Export(context.Background(), &buf, "jsonl", since); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
		if len(lines) != 3 {
			t.Fatalf("lines: got %v, want 3:\n%s", len(lines), buf.String())
		}
		var last Event
		if err := json.Unmarshal([]byte(lines[2]), &last); err != nil {
			t.Fatal(err)
		}
		if last.Package != `a,"quoted"` || last.Reason != "line\nbreak" || !last.Time.Equal(t0.Add(10*time.Minute)) {
			t.Errorf("last event: got %+v", last)
		}
	})
	t.Run("csv", func(t *testing.T) {
		var buf bytes.Buffer
		if err := l.Export(context.Background(), &buf, "csv", since); err != nil {
			t.Fatal(err)
		}
		recs, err := csv.NewReader(&buf).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 4 {
			t.Fatalf("records: got %v, want 4 (header + 3)", len(recs))
		}
		if !reflect.DeepEqual(recs[0], csvHeader) {
			t.Errorf("header: got %v, want %v", recs[0], csvHeader)
		}
		if got, want := recs[1][2], "10.0.0.4"; got != want {
			t.Errorf("first row client: got %v, want %v", got, want)
		}
		if got, want := recs[3][5], `a,"quoted"`; got != want {
			t.Errorf("quoted package: got %v, want %v", got, want)
		}
	})
	t.Run("unknown format", func(t *testing.T) {
		if err := l.Export(context.Background(), &bytes.Buffer{}, "xml", since); err == nil {
			t.Errorf("got nil error, want one")
		}
	})
}

func TestPrune(t *testing.T) {
	defer func(f func() time.Time) { now = f }(now)
	now = func() time.Time { return t0.Add(time.Hour) }
	l, path := openTest(t, Options{Retention: 30 * time.Minute})
	for i := range 10 {
		l.Record(ev(i*10, "10.0.0.1", "", "npm", "a", "1", "artifact", Allow)) // t0 .. t0+90m
	}
	flush(t, l)
	// The background loop may already have pruned some; either way the
	// cutoff t0+30m removes the rows at 0, 10 and 20 minutes.
	if _, err := l.Prune(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := countRows(t, path); got != 7 {
		t.Errorf("rows left: got %v, want 7", got)
	}
	n, err := l.Prune(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("second prune: got %v, want 0", n)
	}
}

// TestRecordNeverBlocks stalls the writer by holding the database's write
// lock from another connection and checks that Record still returns and
// that every event is either written or counted as dropped.
func TestRecordNeverBlocks(t *testing.T) {
	var onDrop atomic.Int64
	l, path := openTest(t, Options{QueueSize: 4, BatchSize: 1, FlushInterval: time.Millisecond, OnDrop: func() { onDrop.Add(1) }})

	other, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}

	const total = 200
	for i := range total {
		l.Record(ev(i, "10.0.0.1", "", "npm", "a", "1", "artifact", Allow))
	}
	dropped := l.Dropped()
	if dropped < total-6 { // at most QueueSize queued plus one batch in the stalled writer
		t.Errorf("dropped while stalled: got %v, want >= %v", dropped, total-6)
	}
	if got := uint64(onDrop.Load()); got != dropped {
		t.Errorf("OnDrop calls: got %v, want %v", got, dropped)
	}

	if _, err := conn.ExecContext(context.Background(), "COMMIT"); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := uint64(countRows(t, path)) + l.Dropped(); got != total {
		t.Errorf("written + dropped: got %v, want %v", got, total)
	}
	// After Close, Record still returns and counts.
	l.Record(Event{})
	if got := l.Dropped(); got != dropped+1 {
		t.Errorf("dropped after close: got %v, want %v", got, dropped+1)
	}
	if _, err := l.Who(context.Background(), "", "a", ""); err != ErrClosed {
		t.Errorf("Who after close: got %v, want %v", err, ErrClosed)
	}
}

func TestConcurrentRecordAndQuery(t *testing.T) {
	l, path := openTest(t, Options{BatchSize: 64, FlushInterval: 5 * time.Millisecond})
	const writers, each = 8, 300
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				l.Record(ev(i, fmt.Sprintf("10.0.1.%d", w), "", "npm", "pkg", fmt.Sprintf("1.0.%d", i%3), "artifact", Allow))
			}
		}()
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		for range 20 {
			if _, err := l.Who(context.Background(), "npm", "pkg", ""); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		for i := range 20 {
			if _, err := l.MarkSeen(context.Background(), "npm", "pkg", []string{fmt.Sprint(i)}, nil); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	wg.Wait()
	flush(t, l)
	rows, err := l.Who(context.Background(), "npm", "pkg", "")
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, r := range rows {
		sum += r.Count
	}
	if got := uint64(sum) + l.Dropped(); got != writers*each {
		t.Errorf("counted + dropped: got %v, want %v", got, writers*each)
	}
	l.Close()
	if got := uint64(countRows(t, path)) + l.Dropped(); got != writers*each {
		t.Errorf("rows + dropped: got %v, want %v", got, writers*each)
	}
}

func TestLogAttrs(t *testing.T) {
	e := Event{RequestID: "r1", ClientIP: "10.0.0.1", Ecosystem: "npm", Package: "left-pad", Version: "1.3.0",
		Kind: "artifact", Decision: Deny, Rule: "cooldown", Cache: "miss", Status: 403}
	got := map[string]string{}
	for _, a := range e.LogAttrs() {
		got[a.Key] = a.Value.String()
	}
	want := map[string]string{"request_id": "r1", "client": "10.0.0.1", "ecosystem": "npm", "package": "left-pad@1.3.0",
		"kind": "artifact", "decision": "deny", "rule": "cooldown", "cache": "miss", "status": "403", "bytes": "0"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func BenchmarkRecord(b *testing.B) {
	l, err := Open(filepath.Join(b.TempDir(), "a.db"), Options{QueueSize: 1 << 16})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	e := ev(0, "10.0.0.1", "", "npm", "left-pad", "1.3.0", "artifact", Allow)
	b.ReportAllocs()
	for b.Loop() {
		l.Record(e)
	}
	b.StopTimer()
	b.ReportMetric(float64(l.Dropped()), "dropped")
}

func BenchmarkWriteThroughput(b *testing.B) {
	l, err := Open(filepath.Join(b.TempDir(), "a.db"), Options{QueueSize: 1 << 16})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	e := ev(0, "10.0.0.1", "", "npm", "left-pad", "1.3.0", "artifact", Allow)
	for b.Loop() {
		for range 1000 {
			l.Record(e)
		}
		if err := l.Flush(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(l.Dropped()), "dropped")
}

func TestDatabaseIsPrivate(t *testing.T) {
	l, path := openTest(t, Options{})
	l.Record(ev(0, "10.0.0.1", "alice", "npm", "left-pad", "1.3.0", "artifact", Allow))
	flush(t, l)
	// The WAL holds the rows until a checkpoint: it must be as private.
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Mode().Perm(); got != 0o600 {
			t.Errorf("%s mode: got %v, want %v", filepath.Base(p), got, os.FileMode(0o600))
		}
	}
}

func TestFailedBatchCountsAsDropped(t *testing.T) {
	var errs, drops atomic.Int64
	l, path := openTest(t, Options{OnError: func(error) { errs.Add(1) }, OnDrop: func() { drops.Add(1) }})
	other, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.Exec(`DROP TABLE events`); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		l.Record(ev(i, "10.0.0.1", "", "npm", "a", "1", "artifact", Allow))
	}
	flush(t, l)
	if got := l.Dropped(); got != 3 {
		t.Errorf("dropped: got %v, want 3", got)
	}
	if got := drops.Load(); got != 3 {
		t.Errorf("OnDrop calls: got %v, want 3", got)
	}
	if got := errs.Load(); got != 1 {
		t.Errorf("OnError calls: got %v, want 1", got)
	}
}
