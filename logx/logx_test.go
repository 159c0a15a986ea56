package logx

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestRedactURL(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain", "https://registry.npmjs.org/left-pad", "https://registry.npmjs.org/left-pad"},
		{"userinfo", "https://alice:s3cret@pypi.example/simple/", "https://pypi.example/simple/"},
		{"token param", "https://h/x?token=abc&page=2", "https://h/x?page=2&token=REDACTED"},
		{"access_token", "https://h/x?access_token=abc", "https://h/x?access_token=REDACTED"},
		{"key and auth", "https://h/x?KEY=1&auth=2", "https://h/x?KEY=REDACTED&auth=REDACTED"},
		{"s3 presigned", "https://b.s3.amazonaws.com/o?X-Amz-Credential=AK%2F1&X-Amz-Signature=ff&X-Amz-Expires=60",
			"https://b.s3.amazonaws.com/o?X-Amz-Credential=REDACTED&X-Amz-Expires=REDACTED&X-Amz-Signature=REDACTED"},
		{"signature", "https://h/x?signature=zz", "https://h/x?signature=REDACTED"},
		{"password-like name", "https://h/x?db_password=zz", "https://h/x?db_password=REDACTED"},
		{"unparsable", "http://[::1", "REDACTED-URL"},
		{"bad query", "https://h/x?a=%zz&token=1", "https://h/x?REDACTED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := RedactURL(tt.in); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func FuzzRedactURL(f *testing.F) {
	for _, s := range []string{"https://u:p@h/x?token=1", "http://h/?X-Amz-Signature=a&a=b", "%", "//a@b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := RedactURL(in)
		p, err := url.Parse(out)
		if err != nil {
			if out != Redacted+"-URL" {
				t.Fatalf("output %q does not parse: %v", out, err)
			}
			return
		}
		if p.User != nil {
			t.Fatalf("user info kept in %q", out)
		}
		for k, vs := range p.Query() {
			if secretParam(k) {
				for _, v := range vs {
					if v != Redacted {
						t.Fatalf("secret param %q kept value %q in %q", k, v, out)
					}
				}
			}
		}
	})
}

func TestRedactHeaders(t *testing.T) {
	h := http.Header{}
	h.Set("Authorization", "Bearer x")
	h.Set("Proxy-Authorization", "Basic y")
	h.Set("Cookie", "a=b")
	h.Set("Accept", "application/json")
	got := RedactHeaders(h)
	for _, k := range []string{"Authorization", "Proxy-Authorization", "Cookie"} {
		if v := got.Get(k); v != "" {
			t.Errorf("%s: got %q, want removed", k, v)
		}
	}
	if got.Get("Accept") != "application/json" {
		t.Errorf("Accept: got %q, want application/json", got.Get("Accept"))
	}
	if h.Get("Authorization") == "" {
		t.Errorf("original header modified: got empty Authorization, want kept")
	}
	if RedactHeaders(nil) == nil {
		t.Errorf("nil headers: got nil, want empty")
	}
}

func TestNewLogger(t *testing.T) {
	tests := []struct {
		format string
		check  func(t *testing.T, out string)
	}{
		{"json", func(t *testing.T, out string) {
			var m map[string]any
			if err := json.Unmarshal([]byte(out), &m); err != nil {
				t.Fatalf("not JSON: %v: %s", err, out)
			}
			if m["password"] != Redacted || m["client"] != "10.0.0.1" {
				t.Errorf("got %v, want password redacted and client kept", m)
			}
		}},
		{"text", func(t *testing.T, out string) {
			if !strings.Contains(out, "password=REDACTED") || !strings.Contains(out, "client=10.0.0.1") {
				t.Errorf("got %q, want password redacted and client kept", out)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			var buf bytes.Buffer
			l, err := NewLogger(tt.format, &buf, slog.LevelInfo)
			if err != nil {
				t.Fatal(err)
			}
			l.Debug("hidden")
			l.Info("request", "client", "10.0.0.1", "password", "hunter2")
			if strings.Contains(buf.String(), "hidden") || strings.Contains(buf.String(), "hunter2") {
				t.Errorf("got %q, want no debug line and no secret", buf.String())
			}
			tt.check(t, buf.String())
		})
	}
	if _, err := NewLogger("xml", &bytes.Buffer{}, nil); err == nil {
		t.Errorf("unknown format: got nil error, want one")
	}
}

func TestParseLevel(t *testing.T) {
	tests := []struct {
		in      string
		want    slog.Level
		wantErr bool
	}{
		{"debug", slog.LevelDebug, false},
		{"INFO", slog.LevelInfo, false},
		{"warn", slog.LevelWarn, false},
		{"error", slog.LevelError, false},
		{"loud", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseLevel(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("got %v, %v, want %v, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}
