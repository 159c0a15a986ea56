package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestEmbeddedDefault(t *testing.T) {
	c, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ got, want string }{
		{c.Listen, "127.0.0.1:8080"}, {c.AdminListen, "127.0.0.1:8081"}, {c.DataDir, "./.cafilprox"},
		{c.Egress.UnknownHosts, "tunnel"}, {c.Cache.Backend, "fs"}, {c.File, DefaultName},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
	if got := c.MaxSize(); got != 20<<30 {
		t.Errorf("max size: got %d, want 20GiB", got)
	}
}

func TestEnvOverrides(t *testing.T) {
	c, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"CAFILPROX_LISTEN": "0.0.0.0:3128", "CAFILPROX_DATA_DIR": "/var/lib/cafilprox", "CAFILPROX_ADMIN_TOKEN": "t0k"}
	c.ApplyEnv(func(k string) string { return env[k] })
	if c.Listen != "0.0.0.0:3128" || c.DataDir != "/var/lib/cafilprox" || c.Admin.Token != "t0k" {
		t.Errorf("got %q %q %q", c.Listen, c.DataDir, c.Admin.Token)
	}
}

func TestDiagnosticsCarryPosition(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"syntax", "listen = \n", "bad.hcl:1:"},
		{"unknown ecosystem", "\n\necosystem \"npmx\" {}\n", "bad.hcl:3:1: Unknown ecosystem"},
		{"bad size", "cache {\n  max_size = \"lots\"\n}\n", "bad.hcl:1:1: Invalid max_size"},
		{"bad listen", "listen = \"nowhere\"\n", "bad.hcl:1:10: Invalid listen address"},
		{"bad duration", "ecosystem \"npm\" { min_age = \"ten days\" }\n", "Invalid min_age"},
		{"wrong type", "listen = [1]\n", "bad.hcl:1:"},
		{"egress", "egress { unknown_hosts = \"maybe\" }\n", "Invalid unknown_hosts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bad.hcl")
			os.WriteFile(path, []byte(tc.src), 0o644)
			_, err := Load(path)
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("got %v, want a *config.Error", err)
			}
			if !strings.Contains(err.Error(), filepath.Dir(path)) || !strings.Contains(err.Error(), strings.TrimPrefix(tc.want, "bad.hcl")) {
				t.Errorf("got %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestEcosystemsAndPolicyRemain(t *testing.T) {
	src := `
ecosystem "npm" {
  upstream = "https://127.0.0.1:4873"
  min_age  = "10d"
}
rule "x" { action = "deny" }
`
	c, err := Parse([]byte(src), "c.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if e := c.Ecosystem("npm"); e.Upstream != "https://127.0.0.1:4873" || e.MinAge != "10d" {
		t.Errorf("ecosystem: got %+v", e)
	}
	if c.Policy == nil {
		t.Fatal("policy blocks were not handed on")
	}
}

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"10d", 240 * time.Hour, true}, {"2w", 336 * time.Hour, true}, {"1w2d12h", (7+2)*24*time.Hour + 12*time.Hour, true},
		{"90s", 90 * time.Second, true}, {"1.5d", 36 * time.Hour, true}, {"", 0, false}, {"ten", 0, false}, {"5x", 0, false},
	} {
		got, err := ParseDuration(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("%q: got %v %v, want %v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}
