package main

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"software.sslmate.com/src/go-pkcs12"
)

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

func TestEnvShells(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		shell string
		want  []string
	}{
		{"sh", []string{"export HTTPS_PROXY='http://127.0.0.1:8080'", "export NODE_EXTRA_CA_CERTS='" + dir, "export SSL_CERT_FILE='" + dir, "export JAVA_TOOL_OPTIONS='-Djavax.net.ssl.trustStore="}},
		{"fish", []string{"set -gx HTTPS_PROXY 'http://127.0.0.1:8080'", "set -gx CARGO_HTTP_CAINFO '"}},
		{"powershell", []string{"$env:HTTPS_PROXY = 'http://127.0.0.1:8080'", "$env:PIP_CERT = '"}},
		{"github", []string{"HTTPS_PROXY=http://127.0.0.1:8080\n", "GIT_SSL_CAINFO=" + dir}},
	} {
		code, out, errOut := runCLI(t, "env", "--data-dir", dir, "--shell", tc.shell)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", tc.shell, code, errOut)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: output lacks %q:\n%s", tc.shell, w, out)
			}
		}
	}
	if code, _, errOut := runCLI(t, "env", "--data-dir", dir, "--shell", "tcsh"); code != 2 || !strings.Contains(errOut, "unknown --shell") {
		t.Errorf("unknown shell: exit %d %q", code, errOut)
	}
	// The key is never printed, and is private.
	_, out, _ := runCLI(t, "env", "--data-dir", dir)
	if strings.Contains(out, "PRIVATE KEY") {
		t.Error("env printed key material")
	}
	st, err := os.Stat(filepath.Join(dir, "ca", "ca-key.pem"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("CA key: %v mode %v, want 0600", err, st.Mode())
	}
}

func TestCAExport(t *testing.T) {
	dir := t.TempDir()
	if code, _, e := runCLI(t, "ca", "export", "--data-dir", dir); code != 1 || !strings.Contains(e, "ca init") {
		t.Errorf("export before init: exit %d %q, want a hint to run ca init", code, e)
	}
	if code, out, e := runCLI(t, "ca", "init", "--data-dir", dir); code != 0 || !strings.Contains(out, "created CA") {
		t.Fatalf("init: %d %q %q", code, out, e)
	}
	_, pemOut, _ := runCLI(t, "ca", "export", "--data-dir", dir, "--format", "pem")
	b, _ := pem.Decode([]byte(pemOut))
	if b == nil || b.Type != "CERTIFICATE" {
		t.Fatalf("pem export: %q", pemOut)
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil || !cert.IsCA {
		t.Fatalf("exported certificate: %v", err)
	}
	_, derOut, _ := runCLI(t, "ca", "export", "--data-dir", dir, "--format", "der")
	if !bytes.Equal([]byte(derOut), cert.Raw) {
		t.Error("der export differs from the pem certificate")
	}
	p12 := filepath.Join(t.TempDir(), "trust.p12")
	if code, _, e := runCLI(t, "ca", "export", "--data-dir", dir, "--format", "p12", "--out", p12); code != 0 {
		t.Fatal(e)
	}
	raw, _ := os.ReadFile(p12)
	certs, err := pkcs12.DecodeTrustStore(raw, "changeit")
	if err != nil || len(certs) == 0 {
		t.Fatalf("p12: %v", err)
	}
	// Bring your own CA: import the one just made into another data dir.
	other := t.TempDir()
	code, out, e := runCLI(t, "ca", "init", "--data-dir", other, "--cert", filepath.Join(dir, "ca", "ca.pem"), "--key", filepath.Join(dir, "ca", "ca-key.pem"))
	if code != 0 || !strings.Contains(out, "imported") {
		t.Fatalf("import: %d %q %q", code, out, e)
	}
}

func TestBadConfigExitsWithPosition(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cafilprox.hcl")
	os.WriteFile(path, []byte("listen = \"127.0.0.1:0\"\n\nrule \"x\" {\n  action = \"explode\"\n}\n"), 0o644)
	code, _, e := runCLI(t, "serve", "--config", path)
	if code == 0 || !strings.Contains(e, path+":4:") {
		t.Errorf("exit %d, stderr %q; want non-zero and %s:4:col", code, e, path)
	}
	code, _, e = runCLI(t, "policy", "check", path)
	if code == 0 || !strings.Contains(e, path+":4:") {
		t.Errorf("policy check: exit %d, stderr %q", code, e)
	}
}

func TestPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	code, _, e := runCLI(t, "serve", "--data-dir", t.TempDir(), "--listen", ln.Addr().String(), "--admin-listen", "127.0.0.1:0")
	if code != 1 || !strings.Contains(e, "cannot listen on "+ln.Addr().String()) {
		t.Errorf("exit %d, stderr %q; want a clear port-in-use error", code, e)
	}
}

func TestUnknownCommand(t *testing.T) {
	if code, _, e := runCLI(t, "frobnicate"); code != 2 || !strings.Contains(e, "unknown command") {
		t.Errorf("exit %d %q", code, e)
	}
}

func TestSplitNameVersion(t *testing.T) {
	for _, tc := range []struct{ in, name, ver string }{
		{"left-pad@1.3.0", "left-pad", "1.3.0"}, {"@types/node@20.1.0", "@types/node", "20.1.0"},
		{"@types/node", "@types/node", ""}, {"requests", "requests", ""},
	} {
		n, v := splitNameVersion(tc.in)
		if n != tc.name || v != tc.ver {
			t.Errorf("%q: got %q %q, want %q %q", tc.in, n, v, tc.name, tc.ver)
		}
	}
}

// TestExamplesThroughFullConfig loads every example the way serve does
// (config package for the settings, rules for the policy) and runs its tests.
func TestExamplesThroughFullConfig(t *testing.T) {
	files, _ := filepath.Glob("../../hcl-examples/*.hcl")
	if len(files) < 7 {
		t.Fatalf("got %d examples, want at least 7", len(files))
	}
	for _, f := range files {
		code, out, e := runCLI(t, "policy", "test", f)
		if code != 0 || !strings.Contains(out, " 0 failed") {
			t.Errorf("%s: exit %d\n%s%s", f, code, out, e)
		}
	}
}
