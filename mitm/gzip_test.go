package mitm

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestAcceptsGzip(t *testing.T) {
	for ae, want := range map[string]bool{
		"":                      false,
		"gzip":                  true,
		"gzip, deflate, br":     true,
		"deflate, GZIP;q=0.5":   true,
		"br;q=1.0, gzip;q=0":    false,
		"gzip; q=0.000":         false,
		"x-gzip":                true,
		"identity":              false,
		"*":                     false,
		"gzipped, notgzip;q=1":  false,
		"deflate;q=1, gzip ; q": true,
	} {
		h := http.Header{}
		if ae != "" {
			h.Set("Accept-Encoding", ae)
		}
		if got := acceptsGzip(h); got != want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", ae, got, want)
		}
	}
}

// Filtered metadata is served gzip-encoded to clients that ask for it, as a
// representation of its own (ETag, digest), and identical once decoded.
func TestPipelineGzipsMetadata(t *testing.T) {
	h := newPipelineHarness(t)
	// The client sets Accept-Encoding itself, so Go's transport hands over
	// the encoded bytes as they came.
	h.client.Transport.(*http.Transport).DisableCompression = true
	get := func(ae, inm string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest("GET", "https://registry.npmjs.org/demo", nil)
		if ae != "" {
			req.Header.Set("Accept-Encoding", ae)
		}
		if inm != "" {
			req.Header.Set("If-None-Match", inm)
		}
		resp, err := h.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, b
	}
	plain, plainBody := get("", "")
	if plain.StatusCode != 200 || plain.Header.Get("Content-Encoding") != "" {
		t.Fatalf("identity: %d, Content-Encoding %q", plain.StatusCode, plain.Header.Get("Content-Encoding"))
	}
	gz, gzBody := get("gzip, deflate", "")
	if gz.StatusCode != 200 || gz.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("gzip: %d, Content-Encoding %q", gz.StatusCode, gz.Header.Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(bytes.NewReader(gzBody))
	if err != nil {
		t.Fatal(err)
	}
	decoded, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(decoded, plainBody) {
		t.Errorf("decoded gzip body differs from the identity body (%d vs %d bytes)", len(decoded), len(plainBody))
	}
	if len(gzBody) >= len(plainBody)/2 {
		t.Errorf("gzip body is %d bytes for %d plain", len(gzBody), len(plainBody))
	}
	if strings.Contains(string(decoded), `"2.0.0":{`) {
		t.Error("the gzip representation is not filtered")
	}
	for _, r := range []*http.Response{plain, gz} {
		if !strings.Contains(r.Header.Get("Vary"), "Accept-Encoding") {
			t.Errorf("Vary: %q lacks Accept-Encoding", r.Header.Get("Vary"))
		}
	}
	if gz.Header.Get("ETag") == plain.Header.Get("ETag") || gz.Header.Get("Repr-Digest") == plain.Header.Get("Repr-Digest") {
		t.Errorf("both encodings share a validator or digest: %q %q", gz.Header.Get("ETag"), gz.Header.Get("Repr-Digest"))
	}
	if r, _ := get("gzip", gz.Header.Get("ETag")); r.StatusCode != http.StatusNotModified {
		t.Errorf("revalidating the gzip representation: %d, want 304", r.StatusCode)
	}
	if r, _ := get("", gz.Header.Get("ETag")); r.StatusCode != http.StatusOK {
		t.Errorf("the gzip ETag validated the identity representation: %d", r.StatusCode)
	}
}
