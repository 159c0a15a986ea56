package main

import (
	"context"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cafilprox/cafilprox/ca"
	"github.com/cafilprox/cafilprox/config"
)

// appHarness runs the fully wired app (policy, cache, audit, metrics,
// admin) in front of a fake npm registry.
type appHarness struct {
	app    *app
	cfg    string
	client *http.Client
	admin  *httptest.Server
}

const tarball = "tarball of left-pad 1.3.0"

func newAppHarness(t *testing.T, policy string, ecoExtra ...string) *appHarness {
	t.Helper()
	sum := sha512.Sum512([]byte(tarball))
	integrity := "sha512-" + base64.StdEncoding.EncodeToString(sum[:])
	old := time.Now().Add(-400 * 24 * time.Hour).UTC().Format(time.RFC3339)
	young := time.Now().Add(-2 * time.Hour).UTC().Format(time.RFC3339)
	fake := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/left-pad":
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"name":"left-pad","dist-tags":{"latest":"1.4.0"},"versions":{
"1.3.0":{"name":"left-pad","version":"1.3.0","dist":{"tarball":"https://registry.npmjs.org/left-pad/-/left-pad-1.3.0.tgz","integrity":%q}},
"1.4.0":{"name":"left-pad","version":"1.4.0","dist":{"tarball":"https://registry.npmjs.org/left-pad/-/left-pad-1.4.0.tgz"}}},
"time":{"1.3.0":%q,"1.4.0":%q}}`, integrity, old, young)
		case "/left-pad/-/left-pad-1.3.0.tgz":
			io.WriteString(w, tarball)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(fake.Close)
	dir := t.TempDir()
	upCA := filepath.Join(dir, "upstream-ca.pem")
	os.WriteFile(upCA, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: fake.Certificate().Raw}), 0o644)
	cfgPath := filepath.Join(dir, "cafilprox.hcl")
	src := fmt.Sprintf(`
data_dir         = %q
upstream_ca_file = %q
admin { token = "s3cret" }
ecosystem "npm" {
  upstream = %q
  %s
}
%s
`, filepath.Join(dir, "data"), upCA, fake.URL, strings.Join(ecoExtra, "\n"), policy)
	if err := os.WriteFile(cfgPath, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	a, authority := loadApp(t, cfgPath)
	front := httptest.NewServer(a.front)
	admin := httptest.NewServer(a.admin)
	t.Cleanup(func() {
		front.Close()
		admin.Close()
		a.server.Shutdown(context.Background())
		a.close()
	})
	pu, _ := url.Parse(front.URL)
	pool := x509.NewCertPool()
	pool.AddCert(authority.Cert)
	return &appHarness{app: a, cfg: cfgPath, admin: admin, client: &http.Client{Transport: &http.Transport{
		Proxy: http.ProxyURL(pu), TLSClientConfig: &tls.Config{RootCAs: pool}}}}
}

// loadApp wires the app from a configuration file, as `serve` does.
func loadApp(t *testing.T, cfgPath string) (*app, *ca.CA) {
	t.Helper()
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	authority, _, err := ca.LoadOrCreate(caDir(cfg))
	if err != nil {
		t.Fatal(err)
	}
	a, err := newApp(cfg, authority, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return a, authority
}

func (h *appHarness) get(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := h.client.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b)
}

func (h *appHarness) adminGet(t *testing.T, path, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", h.admin.URL+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b)
}

const cooldownPolicy = `
policy { min_age = "10d" }
rule "no-evil" {
  ecosystem = "npm"
  package   = "evil-*"
  action    = "deny"
  reason    = "evil packages are blocked"
}
`

func TestMetricsAndAuditAfterRealRequests(t *testing.T) {
	h := newAppHarness(t, cooldownPolicy, "")
	if code, body := h.get(t, "https://registry.npmjs.org/left-pad"); code != 200 || strings.Contains(body, `"1.4.0"`) {
		t.Fatalf("metadata: %d %s", code, body)
	}
	if code, _ := h.get(t, "https://registry.npmjs.org/left-pad/-/left-pad-1.4.0.tgz"); code != 403 {
		t.Errorf("young tarball: got %d, want 403", code)
	}
	if code, body := h.get(t, "https://registry.npmjs.org/left-pad/-/left-pad-1.3.0.tgz"); code != 200 || body != tarball {
		t.Fatalf("tarball: %d %q", code, body)
	}
	if code, _ := h.get(t, "https://registry.npmjs.org/evil-thing"); code != 403 {
		t.Errorf("blocked package: got %d, want 403", code)
	}

	code, metrics := h.adminGet(t, "/metrics", "")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		`cafilprox_requests_total{cache="miss",decision="allow",ecosystem="npm",kind="artifact"} 1`,
		`cafilprox_requests_total{cache="none",decision="deny",ecosystem="npm",kind="artifact"} 1`,
		`cafilprox_blocks_total{ecosystem="npm",rule="cooldown"} 1`,
		`cafilprox_blocks_total{ecosystem="npm",rule="no-evil"} 1`,
		`cafilprox_leaf_certs_minted_total 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if t.Failed() {
		for _, l := range strings.Split(metrics, "\n") {
			if strings.HasPrefix(l, "cafilprox_requests_total") || strings.HasPrefix(l, "cafilprox_blocks_total") {
				t.Log(l)
			}
		}
	}

	if err := h.app.audit.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	var errOut strings.Builder
	if c := run([]string{"audit", "who", "--config", h.cfg, "--ecosystem", "npm", "left-pad@1.3.0"}, &out, &errOut); c != 0 {
		t.Fatalf("audit who: exit %d %s", c, errOut.String())
	}
	if !strings.Contains(out.String(), "127.0.0.1") || !strings.Contains(out.String(), "1.3.0") {
		t.Errorf("audit who: %s", out.String())
	}
	out.Reset()
	if c := run([]string{"audit", "blocks", "--config", h.cfg, "--since", "1h"}, &out, &errOut); c != 0 || !strings.Contains(out.String(), "left-pad@1.4.0") {
		t.Errorf("audit blocks: exit %d %s", c, out.String())
	}
}

func TestAdminAPIAndReload(t *testing.T) {
	h := newAppHarness(t, cooldownPolicy, "")
	if code, _ := h.adminGet(t, "/api/cache/stats", ""); code != 401 {
		t.Errorf("no token: got %d, want 401", code)
	}
	if code, _ := h.adminGet(t, "/api/cache/stats", "wrong"); code != 401 {
		t.Errorf("wrong token: got %d, want 401", code)
	}
	if code, body := h.adminGet(t, "/api/cache/stats", "s3cret"); code != 200 || !strings.Contains(body, "hit_ratio") {
		t.Errorf("stats: %d %s", code, body)
	}
	if code, body := h.adminGet(t, "/ca.pem", ""); code != 200 || !strings.Contains(body, "BEGIN CERTIFICATE") {
		t.Errorf("ca.pem: %d", code)
	}
	if code, body := h.adminGet(t, "/api/policy/explain?ecosystem=npm&package=left-pad&version=1.4.0", "s3cret"); code != 200 || !strings.Contains(body, `"cooldown"`) {
		t.Errorf("explain: %d %s", code, body)
	}
	if code, _ := h.adminGet(t, "/readyz", ""); code != 200 {
		t.Fatalf("readyz: got %d, want 200", code)
	}

	// A broken policy is rejected, the old one keeps serving, readiness flips.
	src, _ := os.ReadFile(h.cfg)
	os.WriteFile(h.cfg, append(src, []byte("\nrule \"broken\" { action = \"explode\" }\n")...), 0o644)
	err := h.app.reload()
	if err == nil || !strings.Contains(err.Error(), h.cfg+":") {
		t.Errorf("reload of a broken policy: got %v, want diagnostics with file:line", err)
	}
	if code, _ := h.adminGet(t, "/readyz", ""); code != 503 {
		t.Errorf("readyz after a rejected reload: got %d, want 503", code)
	}
	if code, _ := h.get(t, "https://registry.npmjs.org/evil-thing"); code != 403 {
		t.Errorf("old policy stopped serving: got %d, want 403", code)
	}
	// Fix the file: the new policy (no cooldown) takes effect at once.
	os.WriteFile(h.cfg, []byte(strings.Replace(string(src), `min_age = "10d"`, `min_age = "0s"`, 1)), 0o644)
	req, _ := http.NewRequest("POST", h.admin.URL+"/api/policy/reload", nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("reload via API: %v %v", resp, err)
	}
	resp.Body.Close()
	if code, _ := h.adminGet(t, "/readyz", ""); code != 200 {
		t.Errorf("readyz after a good reload: got %d, want 200", code)
	}
	_, body := h.get(t, "https://registry.npmjs.org/left-pad")
	var doc struct {
		Versions map[string]json.RawMessage `json:"versions"`
	}
	json.Unmarshal([]byte(body), &doc)
	if _, ok := doc.Versions["1.4.0"]; !ok {
		t.Errorf("after reload without cooldown 1.4.0 is still hidden: %s", body)
	}
}

func TestInternalNamesNeverReachThePublicRegistry(t *testing.T) {
	private := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"name":"@mycorp/auth","served_by":"private","path":%q}`, r.URL.Path)
	}))
	defer private.Close()
	const policy = `
internal {
  npm = ["@mycorp/*"]
}
`
	t.Run("refused without a private upstream", func(t *testing.T) {
		h := newAppHarness(t, policy)
		code, body := h.get(t, "https://registry.npmjs.org/@mycorp%2fauth")
		if code != 403 || !strings.Contains(body, "dependency confusion") {
			t.Errorf("got %d %s, want 403 naming dependency confusion", code, body)
		}
	})
	t.Run("routed to the private upstream", func(t *testing.T) {
		// The private registry's certificate is trusted through the same
		// upstream_ca_file mechanism: write both into one bundle.
		h := newAppHarness(t, policy, fmt.Sprintf("internal_upstream = %q", private.URL))
		caFile := h.app.cfg.UpstreamCAFile
		b, _ := os.ReadFile(caFile)
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: private.Certificate().Raw})...)
		os.WriteFile(caFile, b, 0o644)
		h2 := reopen(t, h)
		code, body := h2.get(t, "https://registry.npmjs.org/@mycorp%2fauth")
		if code != 200 || !strings.Contains(body, `"served_by":"private"`) {
			t.Errorf("got %d %s, want the private registry's answer", code, body)
		}
		if code, _ := h2.get(t, "https://registry.npmjs.org/left-pad"); code != 200 {
			t.Errorf("public package: got %d", code)
		}
	})
}

// reopen builds a second app from the harness's (edited) configuration.
func reopen(t *testing.T, h *appHarness) *appHarness {
	t.Helper()
	cfg, err := config.Load(h.cfg)
	if err != nil {
		t.Fatal(err)
	}
	a, err := newApp(cfg, h.app.ca, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(a.front)
	t.Cleanup(func() {
		front.Close()
		a.server.Shutdown(context.Background())
		a.close()
	})
	pu, _ := url.Parse(front.URL)
	pool := x509.NewCertPool()
	pool.AddCert(h.app.ca.Cert)
	return &appHarness{app: a, cfg: h.cfg, client: &http.Client{Transport: &http.Transport{
		Proxy: http.ProxyURL(pu), TLSClientConfig: &tls.Config{RootCAs: pool}}}}
}

// A feed refresh that newly flags a cached version purges it from the
// cache (and the policy refuses it from then on). A package new to the
// feed is purged whole: packument and tarball, the only entries here.
func TestFeedRefreshPurgesNewlyFlaggedVersions(t *testing.T) {
	var flagged atomic.Bool
	record := func(id, name, version string) string {
		return fmt.Sprintf(`{"id":%q,"summary":"Malicious code in %s (npm)","affected":[{"package":{"ecosystem":"npm","name":%q},"versions":[%q]}]}`,
			id, name, name, version)
	}
	osv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if flagged.Load() {
			io.WriteString(w, record("MAL-2026-0042", "left-pad", "1.3.0"))
			return
		}
		io.WriteString(w, record("MAL-2026-0001", "evil-thing", "1.0.0"))
	}))
	defer osv.Close()
	h := newAppHarness(t, fmt.Sprintf(`feed "malicious" {
  url     = %q
  refresh = "50ms"
}`, osv.URL+"/osv.json"), "")

	const tgz = "https://registry.npmjs.org/left-pad/-/left-pad-1.3.0.tgz"
	if code, body := h.get(t, tgz); code != 200 || body != tarball {
		t.Fatalf("tarball before the feed flags it: %d %q", code, body)
	}
	h.app.cache.WaitIdle()
	before := h.app.cache.Stats().Entries
	if before != 2 {
		t.Fatalf("cache holds %d entries after a packument and a tarball, want 2", before)
	}

	flagged.Store(true)
	deadline := time.Now().Add(10 * time.Second)
	for h.app.cache.Stats().Entries != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the newly flagged package was not purged: %d of %d entries left", h.app.cache.Stats().Entries, before)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, body := h.get(t, tgz); code != 403 || !strings.Contains(body, "MAL-2026-0042") {
		t.Errorf("flagged tarball: %d %q, want a 403 naming MAL-2026-0042", code, body)
	}
}

// Without a configured token the admin API is still closed: Cafilprox
// generates one (0600, in data_dir) that the local CLI presents.
func TestGeneratedAdminToken(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "cafilprox.hcl")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf("data_dir = %q\nadmin_listen = %q\n", filepath.Join(dir, "data"), ln.Addr().String())), 0o644)
	a, _ := loadApp(t, cfgPath)
	defer a.close()
	cfg := a.cfg
	st, err := os.Stat(adminTokenPath(cfg))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %v, want 0600", st.Mode().Perm())
	}
	tok := adminTokenFor(cfg)
	if len(tok) != 64 {
		t.Fatalf("generated token %q, want 64 hex digits", tok)
	}
	for _, c := range []struct {
		token string
		want  int
	}{{"", http.StatusUnauthorized}, {"wrong", http.StatusUnauthorized}, {tok, http.StatusOK}} {
		req := httptest.NewRequest("GET", "/api/cache/stats", nil)
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		w := httptest.NewRecorder()
		a.admin.ServeHTTP(w, req)
		if w.Code != c.want {
			t.Errorf("token %q: got %d, want %d (%s)", c.token, w.Code, c.want, w.Body.String())
		}
	}
	// The CLI on the same machine reads the token and gets the live
	// counters (without it, the API answers 401 and the command fails).
	srv := &http.Server{Handler: a.admin}
	go srv.Serve(ln)
	defer srv.Close()
	var out, errOut strings.Builder
	if code := run([]string{"cache", "stats", "--config", cfgPath}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "hit ratio: 0.0%") {
		t.Errorf("cache stats: exit %d, output %q %q", code, out.String(), errOut.String())
	}
	// A restart keeps the token.
	if again, err := ensureAdminToken(cfg); err != nil || again != tok {
		t.Errorf("second start: token %q, %v; want the first one", again, err)
	}
}
