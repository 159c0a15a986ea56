package cache

import (
	"strings"
	"testing"
)

func TestParseExpect(t *testing.T) {
	tests := []struct {
		in      string
		algo    string
		wantErr bool
	}{
		{"", "", false},
		{"sha256:" + strings.Repeat("ab", 32), "sha256", false},
		{"SHA256:" + strings.Repeat("AB", 32), "sha256", false},
		{"sha1:" + strings.Repeat("0f", 20), "sha1", false},
		{"md5:" + strings.Repeat("0f", 16), "md5", false},
		{"sha512-" + strings.Repeat("A", 86) + "==", "sha512", false},
		{"sha256:abcd", "", true},                              // too short
		{"sha256:" + strings.Repeat("zz", 32), "", true},       // not hex
		{"crc32:00000000", "", true},                           // unknown algorithm
		{"deadbeef", "", true},                                 // no algorithm
		{"sha1:" + strings.Repeat("0f", 32), "", true},         // length of another algorithm
		{"sha512-" + strings.Repeat("A", 10) + "!!", "", true}, // not base64
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			e, err := parseExpect(tt.in)
			if (err != nil) != tt.wantErr || e.algo != tt.algo {
				t.Errorf("got %q %v, want %q err %v", e.algo, err, tt.algo, tt.wantErr)
			}
		})
	}
}

func FuzzParseExpect(f *testing.F) {
	f.Add("sha256:" + strings.Repeat("ab", 32))
	f.Add("sha512-" + strings.Repeat("A", 86) + "==")
	f.Add("sha1:")
	f.Fuzz(func(t *testing.T, s string) {
		e, err := parseExpect(s)
		if err != nil {
			return
		}
		if s == "" {
			if e.algo != "" {
				t.Fatalf("empty input gave %q", e.algo)
			}
			return
		}
		if h := newHash(e.algo); h == nil || len(e.sum) != h.Size() {
			t.Fatalf("parseExpect(%q) = %q with %d bytes", s, e.algo, len(e.sum))
		}
	})
}
