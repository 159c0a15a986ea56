//go:build e2e

package e2e

import (
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
)

// TestCafilproxEnv checks `cafilprox env` against what the clients were
// found to need (TestEnvRequirements): every variable, and every file it
// names, with the proxy's CA in each bundle.
func TestCafilproxEnv(t *testing.T) {
	tg := startCafilprox(t)
	env := h.cafil.env // not tg.env: no debugging additions
	resp, err := http.Get("http://" + tg.cafil.admin + "/ca.pem")
	if err != nil {
		t.Fatalf("GET /ca.pem: %v", err)
	}
	caPEM, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	ca := parsePEMCerts(caPEM)
	if len(ca) != 1 {
		t.Fatalf("/ca.pem holds %d certificates, want 1", len(ca))
	}
	required := []struct{ key, why string }{
		{"HTTPS_PROXY", "npm, pnpm, pip, go, cargo"},
		{"HTTP_PROXY", "yarn, gem, bundler, composer work with either"},
		{"NO_PROXY", "keeps loopback traffic direct"},
		{"SSL_CERT_FILE", "go, cargo, gem, bundler, composer (replaces the system roots: must be a bundle)"},
		{"NPM_CONFIG_CAFILE", "npm, pnpm, yarn when an npmrc sets cafile (Debian's /usr/etc/npmrc does)"},
		{"NODE_EXTRA_CA_CERTS", "node clients without a cafile setting"},
		{"REQUESTS_CA_BUNDLE", "pip (or PIP_CERT)"},
		{"PIP_CERT", "pip, over a pip.conf cert= setting"},
		{"CARGO_HTTP_CAINFO", "cargo, over a config http.cainfo"},
		{"JAVA_TOOL_OPTIONS", "mvn: trust store and proxy system properties"},
	}
	for _, r := range required {
		if env[r.key] == "" {
			t.Errorf("cafilprox env does not set %s (needed by %s)", r.key, r.why)
		}
	}
	for _, key := range []string{"SSL_CERT_FILE", "NPM_CONFIG_CAFILE", "REQUESTS_CA_BUNDLE", "PIP_CERT", "CARGO_HTTP_CAINFO", "NODE_EXTRA_CA_CERTS"} {
		if env[key] == "" {
			continue
		}
		b, err := os.ReadFile(env[key])
		if err != nil {
			t.Errorf("%s=%s: %v", key, env[key], err)
			continue
		}
		certs := parsePEMCerts(b)
		found := false
		for _, c := range certs {
			found = found || c.Equal(ca[0])
		}
		if !found {
			t.Errorf("%s=%s does not contain the proxy CA", key, env[key])
		}
		if key != "NODE_EXTRA_CA_CERTS" && len(certs) < 2 {
			t.Errorf("%s=%s holds %d certificates, want the system roots plus the proxy CA", key, env[key], len(certs))
		}
	}
	jto := env["JAVA_TOOL_OPTIONS"]
	for _, prop := range []string{"-Djavax.net.ssl.trustStore=", "-Djavax.net.ssl.trustStoreType=PKCS12", "-Dhttps.proxyHost=", "-Dhttps.proxyPort=", "-Dhttp.proxyHost=", "-Dhttp.proxyPort="} {
		if !strings.Contains(jto, prop) {
			t.Errorf("JAVA_TOOL_OPTIONS lacks %s: %q", prop, jto)
		}
	}
}
