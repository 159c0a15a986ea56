package transparent

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestReadClientHello(t *testing.T) {
	npm := captureHello(t, &tls.Config{ServerName: "registry.npmjs.org"})
	tls12 := captureHello(t, &tls.Config{ServerName: "pypi.org", MaxVersion: tls.VersionTLS12})
	upper := captureHello(t, &tls.Config{ServerName: "Files.PythonHosted.org"})
	noSNI := captureHello(t, &tls.Config{InsecureSkipVerify: true})
	ipSNI := captureHello(t, &tls.Config{ServerName: "10.0.0.1"})
	// A long ALPN list makes a hello that spans several small records.
	long := captureHello(t, &tls.Config{ServerName: "repo.maven.apache.org", NextProtos: []string{strings.Repeat("p", 200), strings.Repeat("q", 200), "h2"}})

	tests := []struct {
		name    string
		input   []byte
		raw     []byte // bytes expected back; nil means input
		sni     string
		wantErr error
	}{
		{"tls13 client", npm, nil, "registry.npmjs.org", nil},
		{"tls12 client", tls12, nil, "pypi.org", nil},
		{"upper-case name is lowered", upper, nil, "files.pythonhosted.org", nil},
		{"no SNI", noSNI, nil, "", nil},
		{"IP literal is no SNI", ipSNI, nil, "", nil},
		{"fragmented into 7-byte records", refragment(t, npm, 7), nil, "registry.npmjs.org", nil},
		{"fragmented into 100-byte records", refragment(t, long, 100), nil, "repo.maven.apache.org", nil},
		{"trailing bytes are not consumed", append(bytes.Clone(npm), "EXTRA"...), npm, "registry.npmjs.org", nil},
		{"plain HTTP", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), []byte("GET /"), "", ErrNotTLS},
		{"alert record", []byte{21, 3, 1, 0, 2, 2, 40}, []byte{21, 3, 1, 0, 2}, "", ErrNotTLS},
		{"server hello type", []byte{22, 3, 3, 0, 4, 2, 0, 0, 0}, nil, "", ErrNotTLS},
		{"zero-length record", []byte{22, 3, 1, 0, 0}, nil, "", ErrNotTLS},
		{"oversized record", []byte{22, 3, 1, 0xff, 0xff}, nil, "", ErrNotTLS},
		{"truncated hello", npm[:len(npm)-10], nil, "", io.ErrUnexpectedEOF},
		{"empty", nil, nil, "", io.EOF},
		{"malformed body", []byte{22, 3, 1, 0, 8, 1, 0, 0, 4, 3, 3, 0, 0}, nil, "", ErrNotTLS},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, sni, err := ReadClientHello(bytes.NewReader(tt.input))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error: got %v, want %v", err, tt.wantErr)
			}
			if sni != tt.sni {
				t.Errorf("sni: got %q, want %q", sni, tt.sni)
			}
			want := tt.raw
			if want == nil {
				want = tt.input
			}
			if !bytes.Equal(raw, want) {
				t.Errorf("raw: got %d bytes %.16x, want %d bytes %.16x", len(raw), raw, len(want), want)
			}
		})
	}
}

func TestReadClientHelloSizeLimit(t *testing.T) {
	// A hello whose records exceed MaxHelloSize must be refused without reading past it.
	var in []byte
	in = append(in, 22, 3, 1, 0x40, 0x00, 1, 0x00, 0xff, 0xf0) // body just under the limit
	in = append(in, make([]byte, 0x4000-4)...)
	for len(in) < 2*MaxHelloSize {
		in = append(in, 22, 3, 1, 0x40, 0x00)
		in = append(in, make([]byte, 0x4000)...)
	}
	raw, _, err := ReadClientHello(bytes.NewReader(in))
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("got %v, want a size error", err)
	}
	if len(raw) > MaxHelloSize {
		t.Errorf("read %d bytes, want at most %d", len(raw), MaxHelloSize)
	}
}

func TestNormalizeServerName(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"registry.npmjs.org", "registry.npmjs.org", true},
		{"REGISTRY.npmjs.org.", "registry.npmjs.org", true},
		{"_srv.example.com", "_srv.example.com", true},
		{"::1", "", true},
		{"192.0.2.1", "", true},
		{"evil.com:8443", "", false},
		{"a/b", "", false},
		{"a..b", "", false},
		{"a\x00b", "", false},
		{"", "", false},
		{strings.Repeat("a", 64) + ".com", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := normalizeServerName(tt.in)
			if got != tt.want || (err == nil) != tt.ok {
				t.Errorf("got %q, %v, want %q, ok=%v", got, err, tt.want, tt.ok)
			}
		})
	}
}

func FuzzReadClientHello(f *testing.F) {
	npm := captureHello(f, &tls.Config{ServerName: "registry.npmjs.org"})
	f.Add(npm)
	f.Add(refragment(f, npm, 50))
	f.Add(captureHello(f, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12}))
	f.Add([]byte("GET / HTTP/1.1\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		raw, sni, err := ReadClientHello(bytes.NewReader(data))
		if !bytes.HasPrefix(data, raw) {
			t.Fatalf("raw is not a prefix of the input")
		}
		if err == nil && sni != "" {
			if n, err := normalizeServerName(sni); err != nil || n != sni {
				t.Errorf("sni %q is not normalized: %q, %v", sni, n, err)
			}
		}
	})
}

func BenchmarkReadClientHello(b *testing.B) {
	hello := captureHello(b, &tls.Config{ServerName: "registry.npmjs.org"})
	b.SetBytes(int64(len(hello)))
	b.ReportAllocs()
	for b.Loop() {
		if _, sni, err := ReadClientHello(bytes.NewReader(hello)); err != nil || sni != "registry.npmjs.org" {
			b.Fatalf("got %q, %v", sni, err)
		}
	}
}
