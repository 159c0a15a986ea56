package audit

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestWriteWho(t *testing.T) {
	var buf bytes.Buffer
	err := WriteWho(&buf, []Row{{Ecosystem: "npm", Package: "left-pad", ClientIP: "10.0.0.1", First: t0, Last: t0.Add(time.Hour), Count: 2, Versions: []string{"1.2.0", "1.3.0"}}})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("lines: got %v, want 2", len(lines))
	}
	want := []string{"npm", "left-pad", "10.0.0.1", "-", "2026-03-01T12:00:00Z", "2026-03-01T13:00:00Z", "2", "1.2.0,1.3.0"}
	if got := strings.Fields(lines[1]); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("row: got %v, want %v", got, want)
	}
}

func TestWriteBlocks(t *testing.T) {
	var buf bytes.Buffer
	err := WriteBlocks(&buf, []Event{{Time: t0, ClientIP: "10.0.0.3", Ecosystem: "pypi", Package: "bad-package", Version: "1.0",
		Decision: Deny, Rule: "block-bad-package", Reason: "Security\nvulnerability"}})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("lines: got %v, want 2: %q", len(lines), buf.String())
	}
	if !strings.Contains(lines[1], "bad-package@1.0") || !strings.HasSuffix(lines[1], "Security vulnerability") {
		t.Errorf("row: got %q, want package@version and a one-line reason", lines[1])
	}
}
