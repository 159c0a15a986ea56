package mitm

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/cafilprox/cafilprox/classifiers"
)

// Metadata is fetched from upstream unencoded (it is parsed and filtered
// here), so the proxy compresses what it serves itself: a 10 MB packument
// is ~1 MB gzipped, which matters to runners on the far side of a WAN.

// minGzipSize is the smallest body worth compressing.
const minGzipSize = 1024

// lazyGzip compresses a view's body once, on the first request that
// accepts gzip.
type lazyGzip struct {
	once sync.Once
	b    []byte
}

func (g *lazyGzip) encode(body []byte) []byte {
	g.once.Do(func() {
		var buf bytes.Buffer
		buf.Grow(len(body) / 5)
		// BestSpeed: the view is rebuilt every few seconds and the first
		// client waits for it; level 1 keeps JSON at ~1/8 of its size.
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
		zw.Write(body)
		zw.Close()
		g.b = buf.Bytes()
	})
	return g.b
}

// compressible reports whether an ecosystem's documents may be served
// gzip-encoded. Not RubyGems: Bundler appends to its compact index files
// with Range requests and checks their ETag and digest against the
// unencoded bytes.
func compressible(eco string) bool {
	return eco != classifiers.RubyGems
}

// acceptsGzip reports whether the client named gzip in Accept-Encoding
// with a non-zero quality (a bare "*" is not taken as consent).
func acceptsGzip(h http.Header) bool {
	for _, v := range h.Values("Accept-Encoding") {
		for _, part := range strings.Split(v, ",") {
			name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			name = strings.TrimSpace(name)
			if !strings.EqualFold(name, "gzip") && !strings.EqualFold(name, "x-gzip") {
				continue
			}
			q := 1.0
			for _, p := range strings.Split(params, ";") {
				if k, val, ok := strings.Cut(strings.TrimSpace(p), "="); ok && strings.EqualFold(strings.TrimSpace(k), "q") {
					if f, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
						q = f
					}
				}
			}
			return q > 0
		}
	}
	return false
}

// addVary adds a field name to Vary unless it is listed already.
func addVary(h http.Header, name string) {
	for _, v := range h.Values("Vary") {
		for _, f := range strings.Split(v, ",") {
			if f = strings.TrimSpace(f); f == "*" || strings.EqualFold(f, name) {
				return
			}
		}
	}
	h.Add("Vary", name)
}
