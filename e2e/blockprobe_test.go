//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestBlockResponses learns, for each client, which refusal (status, reason
// phrase, body, content type; on the metadata or on the artifact request)
// makes the client show the reason to its user. The reference proxy refuses
// every request for evil-pkg of the chosen kind; the result table is the
// evidence for PROTOCOLS.md's "which status a blocked client should get".
// Opt-in: CAFILPROX_E2E_BLOCKPROBE=1.
func TestBlockResponses(t *testing.T) {
	if os.Getenv("CAFILPROX_E2E_BLOCKPROBE") == "" {
		t.Skip("set CAFILPROX_E2E_BLOCKPROBE=1 to probe how each client shows a refusal")
	}
	const marker = "blocked-by-policy-marker"
	variants := []struct {
		name string
		spec blockSpec
	}{
		{"403-json", blockSpec{403, "Forbidden " + marker + "-phrase", "application/json", `{"error":"` + marker + `-body"}`}},
		{"403-text", blockSpec{403, "Forbidden " + marker + "-phrase", "text/plain; charset=utf-8", marker + "-body\n"}},
		{"451-text", blockSpec{451, "Unavailable For Legal Reasons " + marker + "-phrase", "text/plain; charset=utf-8", marker + "-body\n"}},
	}
	tg := refTarget()
	defer h.ref.setBlock(nil)
	only := os.Getenv("CAFILPROX_E2E_BLOCKPROBE_CLIENTS")
	var table []string
	for _, c := range clientCases() {
		if only != "" && !strings.Contains(","+only+",", ","+c.name+",") {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			requireClient(t, c.bins...)
			fake := h.fakes[c.eco]
			for _, level := range []string{"metadata", "artifact"} {
				for _, v := range variants {
					spec := v.spec
					h.ref.setBlock(func(host, path string) *blockSpec {
						if !strings.Contains(strings.ToLower(path), "evil") {
							return nil
						}
						fake.mu.Lock()
						res, known := fake.files[path]
						fake.mu.Unlock()
						isArtifact := known && res.artifact
						if (level == "artifact") == isArtifact {
							return &spec
						}
						return nil
					})
					dir := t.TempDir()
					c.project(t, dir, "evil", false)
					out, err := c.install(t, tg, dir, false)
					shown := "nothing"
					switch {
					case strings.Contains(out, marker+"-phrase") && strings.Contains(out, marker+"-body"):
						shown = "phrase+body"
					case strings.Contains(out, marker+"-phrase"):
						shown = "phrase"
					case strings.Contains(out, marker+"-body"):
						shown = "body"
					}
					line := fmt.Sprintf("BLOCKPROBE %-8s %-8s %-8s failed=%-5v shows=%-11s | %s", c.name, level, v.name, err != nil, shown, firstLineWith(out, marker, "403", "451", "rror"))
					table = append(table, line)
					t.Log(line)
				}
			}
		})
	}
	h.ref.setBlock(nil)
	t.Logf("summary:\n%s", strings.Join(table, "\n"))
}

// firstLineWith returns the first output line containing any of subs.
func firstLineWith(out string, subs ...string) string {
	for _, sub := range subs {
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, sub) {
				l = strings.TrimSpace(l)
				if len(l) > 160 {
					l = l[:160]
				}
				return l
			}
		}
	}
	return ""
}
