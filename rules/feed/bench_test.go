package feed

import (
	"archive/zip"
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// syntheticRecords is the size of the OpenSSF malicious-packages set.
const syntheticRecords = 200_000

// writeSyntheticZip writes n OSV records shaped like the real set: mostly
// npm and PyPI, most "introduced 0" (whole package), the rest version lists,
// a few real ranges, with details text of realistic length.
func writeSyntheticZip(b *testing.B, path string, n int) {
	b.Helper()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	zw := zip.NewWriter(bw)
	ecos := []string{"npm", "npm", "npm", "npm", "npm", "npm", "npm", "PyPI", "PyPI", "crates.io", "RubyGems", "Go", "Maven", "Packagist"}
	details := "\n---\n_-= Per source details. Do not edit below this line.=-_\n\n## Source: ossf-package-analysis (703ba59c0f40f937ba922d389d8beab406cc57110b792ed8d58ab7e8133c1712)\nThe OpenSSF Package Analysis project identified the package as malicious.\n\nIt is considered malicious because:\n\n- The package communicates with a domain associated with malicious activity.\n"
	for i := range n {
		eco := ecos[i%len(ecos)]
		name := fmt.Sprintf("synthetic-pkg-%d", i)
		switch eco {
		case "Go":
			name = "github.com/synthetic/pkg" + fmt.Sprint(i)
		case "Maven":
			name = fmt.Sprintf("com.synthetic:pkg-%d", i)
		case "Packagist":
			name = fmt.Sprintf("synthetic/pkg-%d", i)
		}
		var affected string
		switch {
		case i%10 < 6:
			affected = `"ranges":[{"type":"SEMVER","events":[{"introduced":"0"}]}]`
		case i%10 < 9:
			affected = `"versions":["1.0.0","1.0.1","2.3.4"]`
		default:
			affected = `"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"1.0.0"},{"fixed":"1.5.0"}]}]`
		}
		w, err := zw.Create(fmt.Sprintf("MAL-2025-%d.json", i))
		if err != nil {
			b.Fatal(err)
		}
		fmt.Fprintf(w, `{"modified":"2025-08-14T18:52:04Z","published":"2025-08-14T18:52:04Z","schema_version":"1.5.0","id":"MAL-2025-%d","summary":"Malicious code in %s (%s)","details":%q,"affected":[{"package":{"ecosystem":%q,"name":%q},%s}],"credits":[{"name":"OpenSSF: Package Analysis","type":"FINDER"}],"database_specific":{"malicious-packages-origins":[{"source":"ossf-package-analysis","sha256":"703ba59c0f40f937ba922d389d8beab406cc57110b792ed8d58ab7e8133c1712"}]}}`,
			i, name, eco, details, eco, name, affected)
	}
	if err := zw.Close(); err != nil {
		b.Fatal(err)
	}
	if err := bw.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}

var syntheticZip string

// TestMain removes the synthetic feed shared by the benchmarks.
func TestMain(m *testing.M) {
	code := m.Run()
	if syntheticZip != "" {
		os.RemoveAll(filepath.Dir(syntheticZip))
	}
	os.Exit(code)
}

func syntheticFeed(b *testing.B) string {
	if syntheticZip == "" {
		dir, err := os.MkdirTemp("", "feedbench")
		if err != nil {
			b.Fatal(err)
		}
		syntheticZip = filepath.Join(dir, "all.zip")
		writeSyntheticZip(b, syntheticZip, syntheticRecords)
	}
	return syntheticZip
}

// BenchmarkLoad200k loads a synthetic 200k-record all.zip; it reports the
// heap the loaded index retains (index-MiB) next to the usual allocation
// figures.
func BenchmarkLoad200k(b *testing.B) {
	path := syntheticFeed(b)
	b.ReportAllocs()
	b.ResetTimer()
	var retained uint64
	for range b.N {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		ix, err := loadPath(context.Background(), path)
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if ix.records != syntheticRecords {
			b.Fatalf("got %d records, want %d", ix.records, syntheticRecords)
		}
		retained = after.HeapAlloc - before.HeapAlloc
		runtime.KeepAlive(ix)
	}
	b.ReportMetric(float64(retained)/(1<<20), "index-MiB")
}

func BenchmarkMatch(b *testing.B) {
	path := syntheticFeed(b)
	ix, err := loadPath(context.Background(), path)
	if err != nil {
		b.Fatal(err)
	}
	f := &Feed{}
	f.cur.Store(ix)
	for _, bc := range []struct{ name, eco, pkg, version string }{
		{"miss", "npm", "react", "18.2.0"},
		{"miss-pypi-unnormalised", "pypi", "Flask_Login", "0.6.3"},
		{"all-versions", "npm", "synthetic-pkg-0", "1.0.0"},
		{"exact-versions", "npm", "synthetic-pkg-6", "2.3.4"},
		{"exact-versions-miss", "npm", "synthetic-pkg-6", "2.3.5"},
		{"range", "npm", "synthetic-pkg-19", "1.2.0"},
		{"go-range", "go", "github.com/synthetic/pkg39", "v1.2.0"},
		{"go-range-miss", "go", "github.com/synthetic/pkg39", "v9.0.0"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				f.Match(bc.eco, bc.pkg, bc.version)
			}
		})
	}
}
