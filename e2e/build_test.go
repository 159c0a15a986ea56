//go:build e2e

package e2e

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"sort"
	"time"
)

// file is one entry of an archive built by the test.
type file struct {
	name string
	body string
}

func tarGz(files []file, mtime time.Time) []byte {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	gz.Write(tarBytes(files, mtime))
	gz.Close()
	return buf.Bytes()
}

func tarBytes(files []file, mtime time.Time) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body)), ModTime: mtime, Typeflag: tar.TypeReg, Format: tar.FormatPAX})
		tw.Write([]byte(f.body))
	}
	tw.Close()
	return buf.Bytes()
}

func zipBytes(files []file, mtime time.Time) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range files {
		w, _ := zw.CreateHeader(&zip.FileHeader{Name: f.name, Method: zip.Deflate, Modified: mtime})
		w.Write([]byte(f.body))
	}
	zw.Close()
	return buf.Bytes()
}

func sha256Sum(b []byte) []byte { s := sha256.Sum256(b); return s[:] }
func sha256Hex(b []byte) string { return hex.EncodeToString(sha256Sum(b)) }
func sha1Hex(b []byte) string   { s := sha1.Sum(b); return hex.EncodeToString(s[:]) }
func md5Hex(b []byte) string    { s := md5.Sum(b); return hex.EncodeToString(s[:]) }
func sha512SRI(b []byte) string {
	s := sha512.Sum512(b)
	return "sha512-" + base64.StdEncoding.EncodeToString(s[:])
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func rfc3339(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// fakeVersion describes one version of a fake package in every ecosystem.
type fakeVersion struct {
	version string
	time    time.Time
}

// The packages every fake registry serves: "left" has an old and a young
// version; "evil" is denied by name in the test policy.
var (
	leftVersions = []fakeVersion{{"1.0.0", oldTime}, {"1.1.0", youngTime}}
	evilVersions = []fakeVersion{{"1.0.0", oldTime}}
)

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
