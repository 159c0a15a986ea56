package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// testCAPEM returns a freshly made self-signed CA certificate in PEM (and its
// key in PEM, to check that scripts refuse to distribute keys).
func testCAPEM(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Cafilprox CA test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

func scripts(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.sh")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts found: %v", err)
	}
	return files
}

func TestScriptsParse(t *testing.T) {
	for _, f := range scripts(t) {
		for _, shell := range []string{"sh", "bash", "dash", "busybox"} {
			t.Run(f+"/"+shell, func(t *testing.T) {
				if _, err := exec.LookPath(shell); err != nil {
					t.Skipf("%s not installed", shell)
				}
				args := []string{"-n", f}
				if shell == "busybox" {
					args = append([]string{"sh"}, args...)
				}
				if out, err := exec.Command(shell, args...).CombinedOutput(); err != nil {
					t.Errorf("%s -n %s: %v\n%s", shell, f, err, out)
				}
			})
		}
	}
}

func TestShellcheck(t *testing.T) {
	if _, err := exec.LookPath("shellcheck"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("shellcheck not installed (apt-get install shellcheck)")
		}
		t.Skip("shellcheck not installed (apt-get install shellcheck)")
	}
	args := append([]string{"--shell=sh"}, scripts(t)...)
	if out, err := exec.Command("shellcheck", args...).CombinedOutput(); err != nil {
		t.Errorf("shellcheck: %v\n%s", err, out)
	}
}

func TestNoPrivateKeysCommitted(t *testing.T) {
	keyBlock := regexp.MustCompile(`-----BEGIN [A-Z ]*PRIVATE KEY-----`)
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if keyBlock.Match(b) && !strings.HasSuffix(path, "_test.go") {
			t.Errorf("%s contains a private key", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// runScript runs a script with a minimal environment plus env; it returns
// the combined output and whether it succeeded.
func runScript(t *testing.T, env []string, script string, args ...string) (string, bool) {
	t.Helper()
	cmd := exec.Command("sh", append([]string{script}, args...)...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "TMPDIR=" + t.TempDir()}, env...)
	out, err := cmd.CombinedOutput()
	return string(out), err == nil
}

// fakeCommand writes a script that records its arguments, one call a line.
func fakeCommand(t *testing.T, dir string) (cmd, log string) {
	t.Helper()
	log = filepath.Join(dir, "calls.log")
	cmd = filepath.Join(dir, "fake.sh")
	if err := os.WriteFile(cmd, []byte("#!/bin/sh\necho \"$*\" >> '"+log+"'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return cmd, log
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

func TestInstallCA(t *testing.T) {
	certPEM, keyPEM := testCAPEM(t)
	src := t.TempDir()
	good := filepath.Join(src, "ca.pem")
	withKey := filepath.Join(src, "ca-and-key.pem")
	notPEM := filepath.Join(src, "ca.der")
	os.WriteFile(good, certPEM, 0o600)
	os.WriteFile(withKey, append(append([]byte{}, certPEM...), keyPEM...), 0o600)
	os.WriteFile(notPEM, []byte("\x30\x82\x01\x00 not pem"), 0o600)
	sum := sha256.Sum256(certPEM)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ca.pem" {
			http.NotFound(w, r)
			return
		}
		w.Write(certPEM)
	}))
	defer srv.Close()

	tests := []struct {
		name    string
		args    []string
		env     []string
		wantOK  bool
		wantErr string
	}{
		{name: "debian from file", args: []string{"--os", "debian", good}, wantOK: true},
		{name: "alpine from file", args: []string{"--os=alpine", good}, wantOK: true},
		{name: "rhel from file", args: []string{"--os", "rhel", good}, wantOK: true},
		{name: "suse from file", args: []string{"--os", "suse", good}, wantOK: true},
		{name: "debian from the admin URL", args: []string{"--os", "debian"}, env: []string{"CAFILPROX_CA_URL=" + srv.URL + "/ca.pem"}, wantOK: true},
		{name: "pinned hash matches", args: []string{"--os", "debian", srv.URL + "/ca.pem"}, env: []string{"CAFILPROX_CA_SHA256=" + hex.EncodeToString(sum[:])}, wantOK: true},
		{name: "pinned hash mismatch", args: []string{"--os", "debian", srv.URL + "/ca.pem"}, env: []string{"CAFILPROX_CA_SHA256=" + strings.Repeat("0", 64)}, wantErr: "SHA-256"},
		{name: "URL not found", args: []string{"--os", "debian", srv.URL + "/missing"}, wantErr: "cannot fetch"},
		{name: "private key refused", args: []string{"--os", "debian", withKey}, wantErr: "private key"},
		{name: "not PEM", args: []string{"--os", "debian", notPEM}, wantErr: "no PEM certificate"},
		{name: "missing file", args: []string{"--os", "debian", filepath.Join(src, "nope.pem")}, wantErr: "cannot read"},
		{name: "unknown OS", args: []string{"--os", "plan9", good}, wantErr: "unknown --os"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			certDir := filepath.Join(dir, "anchors")
			update, calls := fakeCommand(t, dir)
			env := append([]string{"CERT_DIR=" + certDir, "UPDATE_CMD=" + update + " --refresh"}, tt.env...)
			out, ok := runScript(t, env, "install-ca.sh", tt.args...)
			if ok != tt.wantOK {
				t.Fatalf("succeeded: got %v, want %v\n%s", ok, tt.wantOK, out)
			}
			target := filepath.Join(certDir, "cafilprox-ca.crt")
			if !tt.wantOK {
				if !strings.Contains(out, tt.wantErr) {
					t.Errorf("output: got %q, want it to mention %q", out, tt.wantErr)
				}
				if got := readFile(t, target); got != "" {
					t.Errorf("a failed run installed %s", target)
				}
				if got := readFile(t, calls); got != "" {
					t.Errorf("a failed run rebuilt the bundle: %q", got)
				}
				return
			}
			if got := readFile(t, target); got != string(certPEM) {
				t.Errorf("installed certificate: got %q, want the CA PEM", got)
			}
			if fi, err := os.Stat(target); err != nil || fi.Mode().Perm() != 0o644 {
				t.Errorf("mode: got %v, %v, want 0644", fi.Mode().Perm(), err)
			}
			if got := readFile(t, calls); got != "--refresh\n" {
				t.Errorf("update calls: got %q, want one call", got)
			}

			out, ok = runScript(t, env, "install-ca.sh", append([]string{"--uninstall"}, tt.args...)...)
			if !ok {
				t.Fatalf("uninstall failed:\n%s", out)
			}
			if _, err := os.Stat(target); !os.IsNotExist(err) {
				t.Errorf("after uninstall: got %v, want the file removed", err)
			}
			if got := readFile(t, calls); got != "--refresh\n--refresh\n" {
				t.Errorf("update calls after uninstall: got %q, want two calls", got)
			}
		})
	}
}

func TestInstallJVM(t *testing.T) {
	certPEM, _ := testCAPEM(t)
	good := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(good, certPEM, 0o600)
	tests := []struct {
		name      string
		env       []string
		args      []string
		wantCalls []string
	}{
		{"jdk cacerts", nil, []string{good}, []string{
			"-delete -noprompt -alias cafilprox-ca -storepass changeit -cacerts",
			"-importcert -noprompt -trustcacerts -alias cafilprox-ca -file * -storepass changeit -cacerts",
		}},
		{"explicit store and password", []string{"CACERTS=/opt/jdk/lib/security/cacerts", "STOREPASS=s3cret", "CAFILPROX_CA_NAME=corp-proxy"}, []string{good}, []string{
			"-delete -noprompt -alias corp-proxy -storepass s3cret -keystore /opt/jdk/lib/security/cacerts",
			"-importcert -noprompt -trustcacerts -alias corp-proxy -file * -storepass s3cret -keystore /opt/jdk/lib/security/cacerts",
		}},
		{"uninstall", nil, []string{"--uninstall"}, []string{
			"-delete -noprompt -alias cafilprox-ca -storepass changeit -cacerts",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keytool, calls := fakeCommand(t, t.TempDir())
			out, ok := runScript(t, append([]string{"KEYTOOL=" + keytool}, tt.env...), "install-jvm.sh", tt.args...)
			if !ok {
				t.Fatalf("install-jvm.sh failed:\n%s", out)
			}
			got := strings.Split(strings.TrimSpace(readFile(t, calls)), "\n")
			if len(got) != len(tt.wantCalls) {
				t.Fatalf("keytool calls: got %q, want %q", got, tt.wantCalls)
			}
			for i, want := range tt.wantCalls {
				// The temp file name varies: compare around it.
				re := regexp.MustCompile("^" + strings.ReplaceAll(regexp.QuoteMeta(want), `\*`, `\S+`) + "$")
				if !re.MatchString(got[i]) {
					t.Errorf("keytool call %d: got %q, want %q", i, got[i], want)
				}
			}
		})
	}
}
