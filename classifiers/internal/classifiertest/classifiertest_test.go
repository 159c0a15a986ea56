package classifiertest

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/cafilprox/cafilprox/classifiers"
)

// recorder is a testing.TB that records failures instead of reporting them.
type recorder struct {
	testing.TB
	failures []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
}
func (r *recorder) Fatal(args ...any) {
	r.failures = append(r.failures, fmt.Sprint(args...))
	runtime.Goexit()
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	runtime.Goexit()
}

// run calls f with a recorder and returns what it recorded.
func run(t *testing.T, f func(testing.TB)) []string {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r.failures
}

// inTestdata moves the test into a directory whose testdata holds files.
func inTestdata(t *testing.T, files map[string][]byte) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "testdata"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, "testdata", name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(dir)
}

func TestReadFile(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("unpacked"))
	zw.Close()
	inTestdata(t, map[string][]byte{"a.txt": []byte("plain"), "b.json.gz": gz.Bytes()})
	tests := []struct{ name, want string }{{"a.txt", "plain"}, {"b.json.gz", "unpacked"}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ReadFile(t, tt.name); string(got) != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	if got := run(t, func(tb testing.TB) { ReadFile(tb, "missing") }); len(got) != 1 {
		t.Errorf("missing file: got failures %q, want one", got)
	}
}

func TestGolden(t *testing.T) {
	inTestdata(t, map[string][]byte{"x.golden": []byte("same")})
	tests := []struct {
		name, file, got string
		update          bool
		wantFail        bool
		wantFile        string
	}{
		{"equal", "x.golden", "same", false, false, "same"},
		{"differs", "x.golden", "other", false, true, "same"},
		{"missing", "y.golden", "new", false, true, ""},
		{"update writes", "z.golden", "new", true, false, "new"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := *update
			*update = tt.update
			defer func() { *update = old }()
			fails := run(t, func(tb testing.TB) { Golden(tb, tt.file, []byte(tt.got)) })
			if got := len(fails) > 0; got != tt.wantFail {
				t.Errorf("got failed %v (%q), want %v", got, fails, tt.wantFail)
			}
			b, _ := os.ReadFile(filepath.Join("testdata", tt.file))
			if string(b) != tt.wantFile {
				t.Errorf("got file %q, want %q", b, tt.wantFile)
			}
		})
	}
}

func TestKeepExcept(t *testing.T) {
	keep := KeepExcept("1.0", "2.0")
	for v, want := range map[string]bool{"1.0": false, "2.0": false, "1.1": true, "": true} {
		if got := keep(v); got != want {
			t.Errorf("%q: got %v, want %v", v, got, want)
		}
	}
	if !KeepExcept()("1.0") {
		t.Errorf("got 1.0 dropped by an empty deny list, want it kept")
	}
}

func TestNotFound(t *testing.T) {
	_, _, err := NotFound.Fetch(context.Background(), "https://x.example/p", nil)
	var se *classifiers.StatusError
	if !errors.As(err, &se) || se.Status != 404 || se.URL != "https://x.example/p" {
		t.Errorf("got %v, want a 404 StatusError for the URL", err)
	}
}

func TestREADMEAndTestdata(t *testing.T) {
	tests := []struct {
		name     string
		readme   string // "" for none
		testdata bool
		hosts    []string
		wantFail int
	}{
		{"complete", "served from a.example", true, []string{"a.example"}, 0},
		{"host missing", "served from a.example", true, []string{"b.example"}, 1},
		{"no readme", "", true, nil, 1},
		{"empty testdata", "r", false, nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := map[string][]byte{}
			if tt.testdata {
				files["f"] = []byte("x")
			}
			inTestdata(t, files)
			if tt.readme != "" {
				if err := os.WriteFile("README.md", []byte(tt.readme), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if got := run(t, func(tb testing.TB) { READMEAndTestdata(tb, tt.hosts...) }); len(got) != tt.wantFail {
				t.Errorf("got failures %q, want %d", got, tt.wantFail)
			}
		})
	}
}
