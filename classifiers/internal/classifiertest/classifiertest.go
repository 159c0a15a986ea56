// Package classifiertest holds the helpers the ecosystem classifiers' tests
// share: testdata fixtures, golden files (rewritten with -update), a
// policy that keeps all versions but some, and a fetcher that finds nothing.
// Only tests import it.
package classifiertest

import (
	"bytes"
	"compress/gzip"
	"context"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/cafilprox/cafilprox/classifiers"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// ReadFile returns the content of testdata/name, decompressed when the
// name ends in ".gz" (large recordings are stored compressed).
func ReadFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Ext(name) == ".gz" {
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if b, err = io.ReadAll(zr); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// Golden fails t unless got equals testdata/name byte for byte. With
// -update it writes got there instead.
func Golden(t testing.TB, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (run with -update to accept)\ngot %d bytes:  %.300q\nwant %d bytes: %.300q", path, len(got), got, len(want), want)
	}
}

// KeepExcept is a keep policy that drops exactly the denied versions.
func KeepExcept(denied ...string) func(string) bool {
	return func(v string) bool { return !slices.Contains(denied, v) }
}

// NotFound is a fetcher whose upstream answers 404 for every URL.
var NotFound classifiers.Fetcher = classifiers.FetcherFunc(func(_ context.Context, u string, _ http.Header) ([]byte, http.Header, error) {
	return nil, nil, &classifiers.StatusError{URL: u, Status: http.StatusNotFound}
})

// READMEAndTestdata fails t unless the package directory has a README.md
// that names each of hosts and a non-empty testdata directory.
func READMEAndTestdata(t testing.TB, hosts ...string) {
	t.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Errorf("got README error %v, want a README", err)
	}
	for _, h := range hosts {
		if !bytes.Contains(b, []byte(h)) {
			t.Errorf("got a README without %s, want it named", h)
		}
	}
	if es, err := os.ReadDir("testdata"); err != nil || len(es) == 0 {
		t.Errorf("got %d testdata entries (%v), want some", len(es), err)
	}
}

// BenchClassify measures c.Classify on a GET of url, failing b unless the
// request is classified as kind want.
func BenchClassify(b *testing.B, c classifiers.Classifier, url string, want classifiers.Kind) {
	b.Helper()
	r := httptest.NewRequest(http.MethodGet, url, nil)
	b.ReportAllocs()
	for b.Loop() {
		if got := c.Classify(r).Kind; got != want {
			b.Fatalf("got kind %v, want %v", got, want)
		}
	}
}
