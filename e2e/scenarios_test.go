//go:build e2e

package e2e

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestReference runs every client through the reference proxy (no policy, no
// cache): it proves the fakes serve what real clients accept and that the
// proxy environment alone brings each client to them.
func TestReference(t *testing.T) {
	tg := refTarget()
	for _, c := range clientCases() {
		t.Run(c.name, func(t *testing.T) {
			requireClient(t, c.bins...)
			t.Run("fresh_resolution_gets_newest", func(t *testing.T) {
				dir := t.TempDir()
				c.project(t, dir, "left", false)
				out, err := c.install(t, tg, dir, false)
				if err != nil {
					t.Fatalf("install failed: %v\n%s", err, tail(out, 40))
				}
				if got, want := c.installed(t, dir, out), "1.1.0"; got != want {
					t.Errorf("installed e2e-left %q, want %q\n%s", got, want, tail(out, 40))
				}
			})
			t.Run("lockfile_young_version", func(t *testing.T) {
				dir := t.TempDir()
				c.project(t, dir, "left", true)
				out, err := c.install(t, tg, dir, true)
				if err != nil {
					t.Fatalf("install failed: %v\n%s", err, tail(out, 40))
				}
				if got, want := c.installed(t, dir, out), "1.1.0"; got != want {
					t.Errorf("installed e2e-left %q, want %q\n%s", got, want, tail(out, 40))
				}
			})
			t.Run("evil_package_served", func(t *testing.T) {
				dir := t.TempDir()
				c.project(t, dir, "evil", false)
				if out, err := c.install(t, tg, dir, false); err != nil {
					t.Fatalf("install failed: %v\n%s", err, tail(out, 40))
				}
			})
		})
	}
	t.Logf("hosts reached through the reference proxy: %v", h.ref.hostsSeen())
}

// TestCafilprox runs every client through Cafilprox with the test policy
// (10-day cooldown, evil-pkg denied in every ecosystem) and checks the five
// behaviours of issue 8.
func TestCafilprox(t *testing.T) {
	for _, c := range clientCases() {
		t.Run(c.name, func(t *testing.T) {
			requireClient(t, c.bins...)
			tg := startCafilprox(t)
			fake := h.fakes[c.eco]
			defer func() {
				if t.Failed() {
					t.Logf("cafilprox log (last lines):\n%s", tail(h.cafil.logText(), 15))
				}
			}()
			allowedOK := t.Run("allowed_fresh_resolution_gets_old_version", func(t *testing.T) {
				dir := t.TempDir()
				c.project(t, dir, "left", false)
				out, err := c.install(t, tg, dir, false)
				if err != nil {
					t.Fatalf("install failed: %v\n%s", err, tail(out, 40))
				}
				if got, want := c.installed(t, dir, out), "1.0.0"; got != want {
					t.Errorf("installed e2e-left %q, want %q (1.1.0 is younger than min_age)\n%s", got, want, tail(out, 40))
				}
			})
			t.Run("denied_package_names_rule", func(t *testing.T) {
				dir := t.TempDir()
				c.project(t, dir, "evil", false)
				out, err := c.install(t, tg, dir, false)
				if err == nil {
					t.Fatalf("install of denied package succeeded\n%s", tail(out, 40))
				}
				if !strings.Contains(out, denyReason) && !strings.Contains(out, "no-evil-"+c.eco) {
					t.Errorf("client output does not name the rule (%q) or reason (%q):\n%s", "no-evil-"+c.eco, denyReason, tail(out, 40))
				}
			})
			t.Run("lockfile_young_version_refused", func(t *testing.T) {
				dir := t.TempDir()
				c.project(t, dir, "left", true)
				out, err := c.install(t, tg, dir, true)
				if err == nil {
					t.Fatalf("install pinned to the young version succeeded\n%s", tail(out, 40))
				}
				if got := c.installed(t, dir, out); got == "1.1.0" {
					t.Errorf("young version 1.1.0 was installed")
				}
				if c.lockRefusalSays != "" && !strings.Contains(out, c.lockRefusalSays) {
					t.Errorf("client output lacks %q\n%s", c.lockRefusalSays, tail(out, 30))
				}
				t.Logf("client said:\n%s", tail(out, 12))
			})
			if !allowedOK {
				t.Log("allowed install failed: skipping cache and offline checks")
				return
			}
			t.Run("second_install_served_from_cache", func(t *testing.T) {
				upstreamBefore := fake.artifactHits()
				hitsBefore := tg.cafil.metric(t, "cafilprox_requests_total", map[string]string{"ecosystem": c.eco, "kind": "artifact", "cache": "HIT"})
				dir := t.TempDir()
				c.project(t, dir, "left", false)
				out, err := c.install(t, tg, dir, false)
				if err != nil {
					t.Fatalf("install failed: %v\n%s", err, tail(out, 40))
				}
				if got := fake.artifactHits() - upstreamBefore; got != 0 {
					t.Errorf("upstream served %d artifact downloads on the second install, want 0", got)
				}
				// The audit trail names the client that fetched the allowed
				// version (events are written in batches: poll briefly).
				var who string
				for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
					who, err = tg.cafil.audit(c.eco, leftNames[c.eco]+"@"+leftVersion(c.eco))
					if (err == nil && strings.Contains(who, "127.0.0.1")) || time.Now().After(deadline) {
						break
					}
				}
				if err != nil || !strings.Contains(who, "127.0.0.1") {
					t.Errorf("cafilprox audit who %s@%s: err=%v, want a line naming client 127.0.0.1; got:\n%s", leftNames[c.eco], leftVersion(c.eco), err, tail(who, 10))
				}
				hitsAfter := tg.cafil.metric(t, "cafilprox_requests_total", map[string]string{"ecosystem": c.eco, "kind": "artifact", "cache": "HIT"})
				if hitsAfter <= hitsBefore {
					t.Errorf("cafilprox_requests_total{ecosystem=%q,kind=\"artifact\",cache=\"HIT\"} went %v -> %v, want an increase", c.eco, hitsBefore, hitsAfter)
				}
			})
			t.Run("registry_down_cached_install_succeeds", func(t *testing.T) {
				fake.stop()
				defer func() {
					if err := fake.start(); err != nil {
						t.Fatalf("restart fake: %v", err)
					}
				}()
				dir := t.TempDir()
				c.project(t, dir, "left", false)
				out, err := c.install(t, tg, dir, false)
				if err != nil {
					t.Fatalf("install with the registry down failed: %v\n%s", err, tail(out, 40))
				}
				if got, want := c.installed(t, dir, out), "1.0.0"; got != want {
					t.Errorf("installed e2e-left %q, want %q\n%s", got, want, tail(out, 40))
				}
			})
		})
	}
	if h.cafil != nil && testing.Verbose() {
		t.Logf("cafilprox log (tail):\n%s", tail(h.cafil.logText(), 40))
	}
}

// TestCocoaPods documents why CocoaPods has no real-client test here.
func TestCocoaPods(t *testing.T) {
	if _, err := lookPath("pod"); err != nil || os.Getenv("CI") == "true" {
		t.Skip("CocoaPods (pod) needs Ruby gems from rubygems.org, which is not reachable from this project's machines; " +
			"the cocoapods classifier is covered by recorded-protocol tests in classifiers/cocoapods")
	}
}
