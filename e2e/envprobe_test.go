//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
)

// TestEnvRequirements finds, for each client, which variables of the proxy
// environment it really needs: it drops one variable at a time (through the
// reference proxy) and then checks that the needed ones alone suffice. It is
// the evidence behind what `cafilprox env` prints. Opt-in (slow):
// CAFILPROX_E2E_ENVPROBE=1.
func TestEnvRequirements(t *testing.T) {
	if os.Getenv("CAFILPROX_E2E_ENVPROBE") == "" {
		t.Skip("set CAFILPROX_E2E_ENVPROBE=1 to probe which proxy variables each client needs")
	}
	full := refTarget()
	only := os.Getenv("CAFILPROX_E2E_ENVPROBE_CLIENTS")
	for _, c := range clientCases() {
		if only != "" && !strings.Contains(","+only+",", ","+c.name+",") {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			requireClient(t, c.bins...)
			try := func(env map[string]string) bool {
				dir := t.TempDir()
				c.project(t, dir, "left", false)
				// No retries, so that a missing variable fails fast.
				probeEnv := map[string]string{"NPM_CONFIG_FETCH_RETRIES": "0", "PIP_RETRIES": "0", "CARGO_NET_RETRY": "0", "BUNDLE_RETRY": "0"}
				for k, v := range env {
					probeEnv[k] = v
				}
				out, err := c.install(t, &target{name: "probe", env: probeEnv}, dir, false)
				return err == nil && c.installed(t, dir, out) == "1.1.0"
			}
			if !try(full.env) {
				t.Fatalf("install fails even with the full environment")
			}
			// Single removals: variables without which the install fails.
			var needed []string
			for _, k := range sortedKeys(full.env) {
				if !try(without(full.env, k)) {
					needed = append(needed, k)
				}
			}
			// Greedy minimisation, lower-case proxy variables and alternates
			// first, gives one minimal sufficient set.
			order := sortedKeys(full.env)
			sort.SliceStable(order, func(i, j int) bool { return rank(order[i]) < rank(order[j]) })
			minimal := full.env
			for _, k := range order {
				if m := without(minimal, k); try(m) {
					minimal = m
				}
			}
			// Which of the two upper-case proxy variables does the client read?
			swap := func(from, to string) string {
				if _, ok := minimal[from]; !ok {
					return "n/a"
				}
				m := without(minimal, from)
				m[to] = full.env[to]
				return fmt.Sprint(try(m))
			}
			t.Logf("ENVPROBE %s: each of %v is necessary; minimal sufficient set: %v; works with HTTPS_PROXY instead of HTTP_PROXY: %s; with HTTP_PROXY instead of HTTPS_PROXY: %s",
				c.name, needed, sortedKeys(minimal), swap("HTTP_PROXY", "HTTPS_PROXY"), swap("HTTPS_PROXY", "HTTP_PROXY"))
		})
	}
}

func without(env map[string]string, key string) map[string]string {
	out := map[string]string{}
	for k, v := range env {
		if k != key {
			out[k] = v
		}
	}
	return out
}

// rank orders variables for removal: lower-case proxy variables, then
// client-specific trust variables, then the generic ones, so the minimal set
// keeps the conventional upper-case names where either works.
func rank(k string) int {
	switch {
	case k == strings.ToLower(k):
		return 0
	case k == "HTTPS_PROXY" || k == "HTTP_PROXY" || k == "SSL_CERT_FILE":
		return 2
	}
	return 1
}
