//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLive installs real packages from the real npm registry and the real
// Go module proxy (with the real checksum database) through Cafilprox.
// Opt-in: CAFILPROX_LIVE=1 (needs network access to those two registries).
func TestLive(t *testing.T) {
	if os.Getenv("CAFILPROX_LIVE") != "1" {
		t.Skip("set CAFILPROX_LIVE=1 to run the live suite against registry.npmjs.org and proxy.golang.org")
	}
	h.liveOnce.Do(func() {
		h.live, h.liveErr = launchCafilprox("cafilprox-live", func(cfg *strings.Builder) {
			cfg.WriteString("\npolicy {\n  default = \"allow\"\n  min_age = \"3d\"\n}\n")
		})
	})
	if h.live == nil {
		t.Fatalf("cafilprox (live): %v", h.liveErr)
	}
	tg := &target{name: "live", env: h.live.env, cafil: h.live}
	t.Run("npm", func(t *testing.T) {
		requireClient(t, "npm")
		for _, round := range []string{"cold", "warm"} {
			dir := t.TempDir()
			writeFiles(t, dir, map[string]string{"package.json": `{"name":"live-app","version":"1.0.0","private":true,"dependencies":{"left-pad":"1.3.0","is-number":"^7.0.0","ms":"^2.1.3"}}`})
			out, err := run(t, tg, dir, nil, "npm", "install", "--no-audit", "--no-fund")
			if err != nil {
				t.Fatalf("%s npm install: %v\n%s", round, err, tail(out, 30))
			}
			for _, p := range []string{"left-pad", "is-number", "ms"} {
				if _, err := os.Stat(filepath.Join(dir, "node_modules", p, "package.json")); err != nil {
					t.Errorf("%s: %s not installed: %v", round, p, err)
				}
			}
		}
		if hits := h.live.metric(t, "cafilprox_requests_total", map[string]string{"ecosystem": "npm", "kind": "artifact", "cache": "HIT"}); hits < 3 {
			t.Errorf("npm artifact cache hits after the warm install = %v, want >= 3", hits)
		}
	})
	t.Run("go", func(t *testing.T) {
		requireClient(t, "go")
		dir := t.TempDir()
		writeFiles(t, dir, map[string]string{
			"go.mod": "module liveapp\n\ngo 1.21\n\nrequire (\n\tgolang.org/x/text v0.14.0\n\tgithub.com/google/uuid v1.6.0\n)\n",
		})
		// Default GOPROXY and GOSUMDB: go verifies every module against
		// sum.golang.org, reached through the proxy too.
		env := map[string]string{"GOFLAGS": "-mod=mod -modcacherw", "GOTOOLCHAIN": "local", "GOMODCACHE": filepath.Join(dir, "modcache")}
		out, err := run(t, tg, dir, env, "go", "mod", "download", "-x")
		if err != nil {
			t.Fatalf("go mod download: %v\n%s", err, tail(out, 30))
		}
		if !strings.Contains(out, "proxy.golang.org") {
			t.Errorf("go did not fetch from proxy.golang.org:\n%s", tail(out, 20))
		}
		if n := h.live.metric(t, "cafilprox_requests_total", map[string]string{"ecosystem": "go"}); n == 0 {
			t.Errorf("cafilprox counted no go requests: the go command bypassed the proxy")
		}
		for _, m := range []string{"golang.org/x/text@v0.14.0", "github.com/google/uuid@v1.6.0"} {
			if _, err := os.Stat(filepath.Join(dir, "modcache", m)); err != nil {
				t.Errorf("%s not in the module cache: %v", m, err)
			}
		}
	})
}
