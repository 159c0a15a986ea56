package feed

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

const fixtureDir = "testdata/malicious-packages"

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func ids(as []Advisory) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.ID)
	}
	sort.Strings(out)
	return out
}

func openDir(t *testing.T, path string) *Feed {
	t.Helper()
	f, err := Open(context.Background(), Config{Name: "test", Path: path, Logger: quiet})
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	return f
}

// fixtureMatches is shared by the directory and zip tests.
var fixtureMatches = []struct {
	eco, name, version string
	want               []string
	all                bool
}{
	{"npm", "flatmap-stream", "0.1.1", []string{"MAL-2025-20690"}, true},
	{"npm", "flatmap-stream", "", []string{"MAL-2025-20690"}, true},
	{"npm", "flatmap-streams", "0.1.1", nil, false},
	{"npm", "event-stream", "3.3.6", nil, false},
	{"pypi", "0x000testqwe", "5.20.4", []string{"MAL-2025-6428"}, false},
	{"pypi", "0x000TestQWE", "5.20.4", []string{"MAL-2025-6428"}, false},
	{"pypi", "0x000testqwe", "5.20.5", nil, false},
	{"pypi", "0x000testqwe", "", nil, false},
	{"cargo", "replit_ruspty", "1.0.0", []string{"MAL-2025-49350"}, false},
	{"cargo", "replit-ruspty", "1.0.0", []string{"MAL-2025-49350"}, false},
	{"cargo", "replit_ruspty", "1.0.1", nil, false},
	{"go", "github.com/boltdb-go/bolt", "v1.3.1", []string{"MAL-2025-2545"}, true},
	{"go", "github.com/boltdb/bolt", "v1.3.1", nil, false},
	{"rubygems", "a00_arcguide", "0.0.1", []string{"MAL-2026-7468"}, false},
	{"rubygems", "a00_arcguide", "0.0.2", nil, false},
	{"npm", "left-pad", "1.3.0", nil, false}, // only in osv/withdrawn/
	{"pypi", "flatmap-stream", "0.1.1", nil, false},
}

func checkFixtures(t *testing.T, f *Feed) {
	t.Helper()
	if got, want := f.Count(), 5; got != want {
		t.Errorf("Count() = %d, want %d", got, want)
	}
	for _, tc := range fixtureMatches {
		t.Run(tc.eco+"/"+tc.name+"@"+tc.version, func(t *testing.T) {
			if got := ids(f.Match(tc.eco, tc.name, tc.version)); !slices.Equal(got, tc.want) {
				t.Errorf("Match = %v, want %v", got, tc.want)
			}
			if got := len(f.AllVersions(tc.eco, tc.name)) > 0; got != tc.all {
				t.Errorf("AllVersions non-empty = %v, want %v", got, tc.all)
			}
		})
	}
}

func TestOpenDirectory(t *testing.T) {
	f := openDir(t, fixtureDir)
	checkFixtures(t, f)
	got := f.Match("npm", "flatmap-stream", "1.0.0")
	if len(got) != 1 || got[0].Summary != "Malicious code in flatmap-stream (npm)" {
		t.Errorf("got %+v, want the record's summary", got)
	}
	if n, err := f.Skipped(); n != 0 || err != nil {
		t.Errorf("Skipped() = %d, %v, want 0, nil", n, err)
	}
}

// zipDir writes every file under dir into a zip at dst, paths relative to
// dir; prefix is prepended (GitHub archives nest everything in one folder).
func zipDir(t testing.TB, dir, prefix, dst string) {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		w, err := zw.Create(prefix + filepath.ToSlash(rel))
		if err != nil {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		_, err = w.Write(data)
		return err
	})
	if err == nil {
		err = zw.Close()
	}
	if err == nil {
		err = os.WriteFile(dst, buf.Bytes(), 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func TestOpenZip(t *testing.T) {
	for _, tc := range []struct{ name, src, prefix string }{
		{"osv all.zip layout", fixtureDir + "/osv/malicious", ""},
		{"github archive layout", fixtureDir, "malicious-packages-main/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "all.zip")
			zipDir(t, tc.src, tc.prefix, dst)
			checkFixtures(t, openDir(t, dst))
		})
	}
}

func TestOpenSingleJSON(t *testing.T) {
	f := openDir(t, fixtureDir+"/osv/malicious/npm/flatmap-stream/MAL-2025-20690.json")
	if got, want := ids(f.Match("npm", "flatmap-stream", "1.0.0")), []string{"MAL-2025-20690"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	arr := filepath.Join(t.TempDir(), "arr.json")
	writeFile(t, arr, `[`+rec("MAL-1", "npm", "a", `"versions":["1.0.0"]`)+`,`+rec("MAL-2", "npm", "b", `"versions":["2.0.0"]`)+`]`)
	f = openDir(t, arr)
	if got, want := f.Count(), 2; got != want {
		t.Errorf("Count() = %d, want %d", got, want)
	}
}

func writeFile(t testing.TB, p, s string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// rec builds a one-package OSV record; affected is the JSON after "package".
func rec(id, eco, name, affected string) string {
	return fmt.Sprintf(`{"id":%q,"summary":"Malicious code in %s","affected":[{"package":{"ecosystem":%q,"name":%q},%s}]}`,
		id, name, eco, name, affected)
}

func TestRanges(t *testing.T) {
	semverRange := func(typ string, evs ...string) string {
		return fmt.Sprintf(`"ranges":[{"type":%q,"events":[%s]}]`, typ, strings.Join(evs, ","))
	}
	tests := []struct {
		name     string
		eco      string
		affected string
		version  string
		want     bool
	}{
		{"introduced-fixed inside", "npm", semverRange("SEMVER", `{"introduced":"1.0.0"}`, `{"fixed":"1.2.0"}`), "1.1.9", true},
		{"introduced bound is inclusive", "npm", semverRange("SEMVER", `{"introduced":"1.0.0"}`, `{"fixed":"1.2.0"}`), "1.0.0", true},
		{"fixed bound is exclusive", "npm", semverRange("SEMVER", `{"introduced":"1.0.0"}`, `{"fixed":"1.2.0"}`), "1.2.0", false},
		{"below introduced", "npm", semverRange("SEMVER", `{"introduced":"1.0.0"}`, `{"fixed":"1.2.0"}`), "0.9.0", false},
		{"last_affected inclusive", "npm", semverRange("SEMVER", `{"introduced":"0"}`, `{"last_affected":"2.0.0"}`), "2.0.0", true},
		{"after last_affected", "npm", semverRange("SEMVER", `{"introduced":"0"}`, `{"last_affected":"2.0.0"}`), "2.0.1", false},
		{"limit exclusive", "npm", semverRange("SEMVER", `{"introduced":"0"}`, `{"limit":"3.0.0"}`), "3.0.0", false},
		{"open-ended from 2.0", "npm", semverRange("SEMVER", `{"introduced":"2.0.0"}`), "9.9.9", true},
		{"open-ended below start", "npm", semverRange("SEMVER", `{"introduced":"2.0.0"}`), "1.9.9", false},
		{"second interval", "npm", semverRange("SEMVER", `{"introduced":"1.0.0"}`, `{"fixed":"1.1.0"}`, `{"introduced":"2.0.0"}`, `{"fixed":"2.1.0"}`), "2.0.5", true},
		{"between intervals", "npm", semverRange("SEMVER", `{"introduced":"1.0.0"}`, `{"fixed":"1.1.0"}`, `{"introduced":"2.0.0"}`, `{"fixed":"2.1.0"}`), "1.5.0", false},
		{"unsorted events", "npm", semverRange("SEMVER", `{"fixed":"2.1.0"}`, `{"introduced":"2.0.0"}`), "2.0.5", true},
		{"npm prerelease in range", "npm", semverRange("SEMVER", `{"introduced":"1.0.0"}`, `{"fixed":"2.0.0"}`), "2.0.0-beta.1", true},
		{"GIT range ignored", "npm", semverRange("GIT", `{"introduced":"0"}`), "1.0.0", false},
		{"PyPI PEP 440 order", "PyPI", semverRange("ECOSYSTEM", `{"introduced":"1.0"}`, `{"fixed":"1.0.post1"}`), "1.0.0", true},
		{"PyPI rc before final", "PyPI", semverRange("ECOSYSTEM", `{"introduced":"0"}`, `{"fixed":"2.0"}`), "2.0rc1", true},
		{"Go range without v", "Go", semverRange("SEMVER", `{"introduced":"1.2.0"}`, `{"fixed":"1.3.0"}`), "v1.2.5", true},
		{"Go range above", "Go", semverRange("SEMVER", `{"introduced":"1.2.0"}`, `{"fixed":"1.3.0"}`), "v1.3.0", false},
		{"Go pseudo-version", "Go", semverRange("SEMVER", `{"introduced":"0"}`, `{"fixed":"1.0.0"}`), "v0.0.0-20240101000000-abcdefabcdef", true},
		{"Maven qualifiers", "Maven", semverRange("ECOSYSTEM", `{"introduced":"1.0"}`, `{"fixed":"1.0.1"}`), "1.0-SNAPSHOT", false},
		{"Maven in range", "Maven", semverRange("ECOSYSTEM", `{"introduced":"1.0"}`, `{"fixed":"1.0.1"}`), "1.0.0.1", true},
		{"RubyGems four parts", "RubyGems", semverRange("ECOSYSTEM", `{"introduced":"1.2.3.4"}`), "1.2.3.5", true},
		{"Packagist", "Packagist", semverRange("ECOSYSTEM", `{"introduced":"0"}`, `{"fixed":"v2.0.0"}`), "1.9.0", true},
		{"crates.io", "crates.io", semverRange("SEMVER", `{"introduced":"0.3.0"}`), "0.2.9", false},
		{"unparseable bound matches exactly", "npm", semverRange("ECOSYSTEM", `{"introduced":"not a version"}`), "not a version", true},
		{"unparseable bound no order", "npm", semverRange("ECOSYSTEM", `{"introduced":"not a version"}`), "9.0.0", false},
		{"unparseable query matches intervals only exactly", "npm", semverRange("SEMVER", `{"introduced":"1.0.0"}`), "latest", false},
		{"exact versions list", "npm", `"versions":["1.0.0","1.0.1"]`, "1.0.1", true},
		{"exact versions list miss", "npm", `"versions":["1.0.0","1.0.1"]`, "1.0.2", false},
		{"npm v prefix", "npm", `"versions":["1.0.0"]`, "v1.0.0", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "r.json")
			writeFile(t, p, rec("MAL-T", tc.eco, "pkg", tc.affected))
			f := openDir(t, p)
			eco := ecosystemOf(tc.eco)
			if got := len(f.Match(eco, "pkg", tc.version)) > 0; got != tc.want {
				t.Errorf("Match(%s) = %v, want %v", tc.version, got, tc.want)
			}
		})
	}
}

func TestAllVersions(t *testing.T) {
	tests := []struct {
		name     string
		affected string
		want     bool
	}{
		{"introduced 0", `"ranges":[{"type":"SEMVER","events":[{"introduced":"0"}]}]`, true},
		{"introduced 0.0.0", `"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0.0.0"}]}]`, true},
		{"introduced 0 then fixed", `"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.0.0"}]}]`, false},
		{"introduced 1.0", `"ranges":[{"type":"SEMVER","events":[{"introduced":"1.0.0"}]}]`, false},
		{"versions only", `"versions":["1.0.0"]`, false},
		{"GIT introduced 0", `"ranges":[{"type":"GIT","events":[{"introduced":"0"}]}]`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "r.json")
			writeFile(t, p, rec("MAL-T", "npm", "pkg", tc.affected))
			f := openDir(t, p)
			if got := len(f.AllVersions("npm", "pkg")) > 0; got != tc.want {
				t.Errorf("AllVersions = %v, want %v", got, tc.want)
			}
			if got := len(f.Match("npm", "pkg", "")) > 0; got != tc.want {
				t.Errorf("Match with no version = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestWithdrawnField(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.json"), rec("MAL-1", "npm", "live", `"versions":["1.0.0"]`))
	writeFile(t, filepath.Join(dir, "b.json"), strings.Replace(rec("MAL-2", "npm", "gone", `"versions":["1.0.0"]`), `{"id"`, `{"withdrawn":"2025-01-01T00:00:00Z","id"`, 1))
	f := openDir(t, dir)
	if got, want := f.Count(), 1; got != want {
		t.Errorf("Count() = %d, want %d", got, want)
	}
	if got := f.Match("npm", "gone", "1.0.0"); got != nil {
		t.Errorf("withdrawn record matched: got %v, want nil", got)
	}
	if n, _ := f.Skipped(); n != 0 {
		t.Errorf("withdrawn counted as malformed: got %d, want 0", n)
	}
}

func TestNameNormalisation(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.json"), rec("MAL-1", "PyPI", "Evil_Pkg.Name", `"versions":["1.0"]`))
	writeFile(t, filepath.Join(dir, "b.json"), rec("MAL-2", "Packagist", "Evil/Pkg", `"versions":["1.0"]`))
	writeFile(t, filepath.Join(dir, "c.json"), rec("MAL-3", "Maven", "com.evil:Pkg", `"versions":["1.0"]`))
	writeFile(t, filepath.Join(dir, "d.json"), rec("MAL-4", "Debian:12", "pkg", `"versions":["1.0"]`))
	f := openDir(t, dir)
	tests := []struct {
		eco, name string
		want      bool
	}{
		{"pypi", "evil-pkg-name", true},
		{"pypi", "EVIL--pkg__name", true},
		{"composer", "evil/pkg", true},
		{"maven", "com.evil:Pkg", true},
		{"maven", "com.evil:pkg", false}, // Maven coordinates are case-sensitive
		{"npm", "pkg", false},            // Debian record is not indexed
	}
	for _, tc := range tests {
		t.Run(tc.eco+"/"+tc.name, func(t *testing.T) {
			if got := len(f.Match(tc.eco, tc.name, "1.0")) > 0; got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	if got, want := f.Count(), 3; got != want {
		t.Errorf("Count() = %d, want %d (unsupported ecosystem not counted)", got, want)
	}
}

func TestMalformed(t *testing.T) {
	t.Run("skipped and counted", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "good.json"), rec("MAL-1", "npm", "good", `"versions":["1.0.0"]`))
		bad := filepath.Join(dir, "sub", "bad.json")
		writeFile(t, bad, `{"id": "MAL-2", "affected": [`)
		f := openDir(t, dir)
		n, err := f.Skipped()
		if n != 1 {
			t.Errorf("Skipped() count = %d, want 1", n)
		}
		if err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("Skipped() error = %v, want it to name %s", err, bad)
		}
		if got := f.Match("npm", "good", "1.0.0"); len(got) != 1 {
			t.Errorf("good record: got %v, want one match", got)
		}
	})
	t.Run("no valid record is an error", func(t *testing.T) {
		dir := t.TempDir()
		bad := filepath.Join(dir, "bad.json")
		writeFile(t, bad, `not json`)
		_, err := Open(context.Background(), Config{Name: "x", Path: dir, Logger: quiet})
		if !errors.Is(err, ErrEmpty) || !strings.Contains(err.Error(), bad) {
			t.Errorf("got %v, want ErrEmpty naming %s", err, bad)
		}
	})
	t.Run("record without id", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "noid.json")
		writeFile(t, p, `{"affected":[]}`)
		_, err := Open(context.Background(), Config{Name: "x", Path: p, Logger: quiet})
		if err == nil || !strings.Contains(err.Error(), "without id") {
			t.Errorf("got %v, want an error about the missing id", err)
		}
	})
	t.Run("empty directory", func(t *testing.T) {
		_, err := Open(context.Background(), Config{Name: "x", Path: t.TempDir(), Logger: quiet})
		if !errors.Is(err, ErrEmpty) {
			t.Errorf("got %v, want ErrEmpty", err)
		}
	})
	t.Run("corrupt zip", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "all.zip")
		writeFile(t, p, "PK\x03\x04 truncated")
		_, err := Open(context.Background(), Config{Name: "x", Path: p, Logger: quiet})
		if err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("got %v, want an error naming %s", err, p)
		}
	})
	t.Run("unknown type", func(t *testing.T) {
		_, err := Open(context.Background(), Config{Name: "x", Type: "csv", Path: fixtureDir})
		if err == nil || !strings.Contains(err.Error(), `"csv"`) {
			t.Errorf("got %v, want an unsupported type error", err)
		}
	})
}

func TestSummary(t *testing.T) {
	long := strings.Repeat("é", 300)
	p := filepath.Join(t.TempDir(), "r.json")
	writeFile(t, p, fmt.Sprintf(`{"id":"MAL-1","details":"\n%s\nmore","affected":[{"package":{"ecosystem":"npm","name":"x"},"versions":["1"]}]}`, long))
	f := openDir(t, p)
	got := f.Match("npm", "x", "1")
	if len(got) != 1 {
		t.Fatalf("got %v, want one match", got)
	}
	s := got[0].Summary
	if len(s) > maxSummary || !strings.HasSuffix(s, "…") || !strings.HasPrefix(s, "éé") {
		t.Errorf("summary = %q (%d bytes), want the details' first line cut to %d bytes", s, len(s), maxSummary)
	}
}

// feedServer serves whatever body/status is current, with an ETag.
type feedServer struct {
	mu     sync.Mutex
	status int
	body   []byte
	etag   string
	hits   int
}

func (s *feedServer) set(status int, body []byte, etag string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.body, s.etag = status, body, etag
}

func (s *feedServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hits++
	if s.etag != "" && r.Header.Get("If-None-Match") == s.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if s.etag != "" {
		w.Header().Set("ETag", s.etag)
	}
	w.WriteHeader(s.status)
	w.Write(s.body)
}

func zipOf(t testing.TB, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, body := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, body)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func sortKeys(ks []Key) []Key {
	sort.Slice(ks, func(i, j int) bool {
		return ks[i].Ecosystem+ks[i].Name+ks[i].Version < ks[j].Ecosystem+ks[j].Name+ks[j].Version
	})
	return ks
}

func TestUpdate(t *testing.T) {
	fs := &feedServer{}
	srv := httptest.NewServer(fs)
	defer srv.Close()
	dataDir := t.TempDir()
	ctx := context.Background()

	v1 := zipOf(t, map[string]string{
		"MAL-1.json": rec("MAL-1", "npm", "evil", `"versions":["1.0.0"]`),
		"MAL-2.json": rec("MAL-2", "PyPI", "Bad_Pkg", `"versions":["0.1"]`),
	})
	fs.set(http.StatusOK, v1, `"v1"`)
	cfg := Config{Name: "ossf", URL: srv.URL + "/all.zip", DataDir: dataDir, Logger: quiet}
	f, err := Open(ctx, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if got := ids(f.Match("pypi", "bad-pkg", "0.1")); !slices.Equal(got, []string{"MAL-2"}) {
		t.Fatalf("after first download: got %v, want [MAL-2]", got)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "feeds", "ossf.osv")); err != nil {
		t.Errorf("download not kept under DataDir: %v", err)
	}

	// Unchanged upstream: 304, nothing newly flagged, no new load.
	loaded := f.LoadedAt()
	newly, err := f.Update(ctx)
	if err != nil || newly != nil {
		t.Errorf("304 update: got %v, %v, want nil, nil", newly, err)
	}
	if !f.LoadedAt().Equal(loaded) {
		t.Errorf("304 update reloaded the data")
	}

	// New package, new version of a known one, new range on a known one.
	v2 := zipOf(t, map[string]string{
		"MAL-1.json": rec("MAL-1", "npm", "evil", `"versions":["1.0.0","1.0.1"]`),
		"MAL-2.json": rec("MAL-2", "PyPI", "Bad_Pkg", `"versions":["0.1"]`),
		"MAL-3.json": rec("MAL-3", "crates.io", "New_Crate", `"ranges":[{"type":"SEMVER","events":[{"introduced":"0"}]}]`),
		"MAL-4.json": rec("MAL-4", "PyPI", "bad-pkg", `"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"2.0"}]}]`),
	})
	fs.set(http.StatusOK, v2, `"v2"`)
	newly, err = f.Update(ctx)
	if err != nil {
		t.Fatalf("update v2: %v", err)
	}
	want := []Key{{"cargo", "new-crate", ""}, {"npm", "evil", "1.0.1"}, {"pypi", "bad-pkg", ""}}
	if got := sortKeys(newly); !slices.Equal(got, want) {
		t.Errorf("newly flagged = %v, want %v", got, want)
	}
	if got, want := f.Count(), 4; got != want {
		t.Errorf("Count() after v2 = %d, want %d", got, want)
	}

	// Failures keep the v2 data.
	for _, tc := range []struct {
		name   string
		status int
		body   []byte
	}{
		{"server error", http.StatusInternalServerError, []byte("oops")},
		{"not a feed", http.StatusOK, []byte("<html>maintenance</html>")},
		{"corrupt zip", http.StatusOK, v2[:len(v2)/2]},
		{"zip without records", http.StatusOK, zipOf(t, map[string]string{"README": "x"})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs.set(tc.status, tc.body, "")
			newly, err := f.Update(ctx)
			if err == nil {
				t.Errorf("got newly=%v, nil error; want an error", newly)
			}
			if got := ids(f.Match("cargo", "new_crate", "9.9.9")); !slices.Equal(got, []string{"MAL-3"}) {
				t.Errorf("old data lost: got %v, want [MAL-3]", got)
			}
			left, _ := filepath.Glob(filepath.Join(dataDir, "feeds", "*.tmp"))
			if len(left) != 0 {
				t.Errorf("temporary files left behind: %v", left)
			}
		})
	}

	// A restart uses the kept download even when the URL is down.
	f2, err := Open(ctx, cfg)
	if err != nil {
		t.Fatalf("reopen with server failing: %v", err)
	}
	if got, want := f2.Count(), 4; got != want {
		t.Errorf("reopened Count() = %d, want %d", got, want)
	}
}

func TestOpenURLFailure(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	_, err := Open(context.Background(), Config{Name: "x", URL: srv.URL, DataDir: t.TempDir(), Logger: quiet})
	if err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("got %v, want an error with the 404", err)
	}
}

func TestRun(t *testing.T) {
	fs := &feedServer{}
	fs.set(http.StatusOK, zipOf(t, map[string]string{"a.json": rec("MAL-1", "npm", "a", `"versions":["1"]`)}), "")
	srv := httptest.NewServer(fs)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f, err := Open(ctx, Config{Name: "x", URL: srv.URL, Refresh: time.Millisecond, DataDir: t.TempDir(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	fs.set(http.StatusOK, zipOf(t, map[string]string{
		"a.json": rec("MAL-1", "npm", "a", `"versions":["1"]`),
		"b.json": rec("MAL-2", "npm", "b", `"versions":["1"]`),
	}), "")
	got := make(chan []Key, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.Run(ctx, func(k []Key) {
			select {
			case got <- k:
			default:
			}
		})
	}()
	select {
	case k := <-got:
		if want := []Key{{"npm", "b", ""}}; !slices.Equal(k, want) {
			t.Errorf("onChange got %v, want %v", k, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("onChange never called")
	}
	cancel()
	<-done
}

func TestRunWithoutURLReturnsOnCancel(t *testing.T) {
	f := openDir(t, fixtureDir)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f.Run(ctx, func([]Key) { t.Error("onChange called without URL") })
}

func FuzzParseRecord(f *testing.F) {
	matches, _ := filepath.Glob(fixtureDir + "/osv/*/*/*/*.json")
	for _, m := range matches {
		data, err := os.ReadFile(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, "1.0.0")
	}
	f.Add([]byte(rec("MAL-1", "Go", "x", `"ranges":[{"type":"SEMVER","events":[{"fixed":"1"},{"introduced":"0"},{"last_affected":"x"}]}]`)), "v1.0.0")
	f.Add([]byte(`{"id":"x","affected":[{"package":{"ecosystem":"Maven:x","name":"a:b"},"ranges":[{"events":[{"limit":"*"}]}]}]}`), "")
	f.Fuzz(func(t *testing.T, data []byte, version string) {
		es, err := parseRecord(data)
		if err != nil {
			if es != nil {
				t.Errorf("entries %v returned with error %v", es, err)
			}
			return
		}
		for _, e := range es {
			if e.ID == "" || e.eco == "" {
				t.Errorf("entry without id or ecosystem: %+v", e)
			}
			if len(e.Summary) > maxSummary {
				t.Errorf("summary of %d bytes, want at most %d", len(e.Summary), maxSummary)
			}
			v := normalizeVersion(e.eco, version)
			pv, _ := systemOf(e.eco).Parse(v)
			if e.all && !e.match(v, pv) {
				t.Errorf("all-versions entry does not match %q", v)
			}
			e.match(v, pv)
		}
	})
}

func TestDiff(t *testing.T) {
	load := func(recs ...string) *index {
		t.Helper()
		ix, err := loadJSONFile("test", strings.NewReader("["+strings.Join(recs, ",")+"]"))
		if err != nil {
			t.Fatal(err)
		}
		return ix
	}
	rangeFrom := func(v string) string {
		return `"ranges":[{"type":"SEMVER","events":[{"introduced":"` + v + `"}]}]`
	}
	tests := []struct {
		name      string
		old, next *index
		want      []Key
	}{
		{"first load reports nothing", nil, load(rec("MAL-1", "npm", "a", `"versions":["1"]`)), nil},
		{"unchanged", load(rec("MAL-1", "npm", "a", rangeFrom("1.0.0"))), load(rec("MAL-1", "npm", "a", rangeFrom("1.0.0"))), nil},
		{"range widened", load(rec("MAL-1", "npm", "a", rangeFrom("2.0.0"))), load(rec("MAL-1", "npm", "a", rangeFrom("1.0.0"))), []Key{{"npm", "a", ""}}},
		{"became all versions", load(rec("MAL-1", "npm", "a", `"versions":["1"]`)), load(rec("MAL-1", "npm", "a", rangeFrom("0"))), []Key{{"npm", "a", ""}}},
		{"already all versions", load(rec("MAL-1", "npm", "a", rangeFrom("0"))), load(rec("MAL-1", "npm", "a", rangeFrom("0")), rec("MAL-2", "npm", "a", rangeFrom("0"))), nil},
		{"package removed", load(rec("MAL-1", "npm", "a", `"versions":["1"]`), rec("MAL-2", "npm", "b", `"versions":["1"]`)), load(rec("MAL-1", "npm", "a", `"versions":["1"]`)), nil},
		{"version added by a new advisory", load(rec("MAL-1", "npm", "a", `"versions":["1"]`)), load(rec("MAL-1", "npm", "a", `"versions":["1"]`), rec("MAL-2", "npm", "a", `"versions":["1","2"]`)), []Key{{"npm", "a", "2"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := sortKeys(diff(tc.old, tc.next)); !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}
