package mitm

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2/hclparse"

	"github.com/cafilprox/cafilprox/audit"
	"github.com/cafilprox/cafilprox/ca"
	"github.com/cafilprox/cafilprox/classifiers"
	"github.com/cafilprox/cafilprox/classifiers/composer"
	"github.com/cafilprox/cafilprox/rules"
)

// A Composer lockfile install fetches dists without metadata. After a
// restart the in-memory attribution is gone; the durable one must still
// judge the dist as the version it belongs to.
func TestComposerAttributionSurvivesRestart(t *testing.T) {
	old := time.Now().Add(-30 * 24 * time.Hour).UTC().Format(time.RFC3339)
	young := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	meta := `{"minified":"composer/2.0","packages":{"acme/lib":[
{"name":"acme/lib","version":"1.1.0","version_normalized":"1.1.0.0","time":"` + young + `","dist":{"type":"zip","url":"https://api.github.com/repos/acme/lib/zipball/bbb","reference":"bbb","shasum":""}},
{"version":"1.0.0","version_normalized":"1.0.0.0","time":"` + old + `","dist":{"type":"zip","url":"https://api.github.com/repos/acme/lib/zipball/aaa","reference":"aaa","shasum":""}}]}}`
	reg := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/p2/acme/lib.json":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, meta)
		case "/repos/acme/lib/zipball/aaa", "/repos/acme/lib/zipball/bbb":
			w.Header().Set("Content-Type", "application/zip")
			io.WriteString(w, "zip of "+r.URL.Path)
		default:
			http.NotFound(w, r)
		}
	}))
	defer reg.Close()
	upCA := filepath.Join(t.TempDir(), "up.pem")
	os.WriteFile(upCA, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: reg.Certificate().Raw}), 0o644)

	db, err := audit.Open(filepath.Join(t.TempDir(), "audit.db"), audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	authority, err := ca.Create(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f, diags := hclparse.NewParser().ParseHCL([]byte(`policy { min_age = "10d" }`), "policy.hcl")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	pol, diags := rules.Compile(f.Body, rules.Options{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}

	// start runs a fresh proxy process's pipeline (no cache, so every
	// download reaches the judgement) and returns a client using it.
	start := func(downloads Downloads) *http.Client {
		set, err := classifiers.NewSet([]classifiers.Classifier{composer.New()},
			map[string][]string{classifiers.Composer: {"repo.packagist.org", "api.github.com"}})
		if err != nil {
			t.Fatal(err)
		}
		tr, err := NewTransport(UpstreamOptions{CAFile: upCA})
		if err != nil {
			t.Fatal(err)
		}
		ups, _ := NewUpstreams(map[string]string{classifiers.Composer: reg.URL})
		logger := slog.New(slog.NewTextHandler(io.Discard, nil))
		p := &Pipeline{Set: set, Upstreams: ups, Transport: tr, Logger: logger, Downloads: downloads,
			Policy: func() *rules.Engine { return pol }}
		p.Init()
		front := httptest.NewServer(NewServer(Options{Issuer: ca.NewIssuer(authority, 0), Handler: p, Logger: logger,
			Intercept: func(h string) bool { return set.ForHost(h) != nil }}))
		t.Cleanup(front.Close)
		pu, _ := url.Parse(front.URL)
		pool := x509.NewCertPool()
		pool.AddCert(authority.Cert)
		return &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu), TLSClientConfig: &tls.Config{RootCAs: pool}}}
	}
	get := func(c *http.Client, u string) (*http.Response, string) {
		t.Helper()
		resp, err := c.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}

	first := start(db)
	if resp, body := get(first, "https://repo.packagist.org/p2/acme/lib.json"); resp.StatusCode != http.StatusOK {
		t.Fatalf("metadata: %d %s", resp.StatusCode, body)
	}

	// Without the durable index, a restarted proxy cannot tell what the
	// dist is: this is the gap the index closes.
	if resp, _ := get(start(nil), "https://api.github.com/repos/acme/lib/zipball/bbb"); resp.StatusCode != http.StatusOK {
		t.Fatalf("control: an unattributed dist got %d, want it passed unjudged", resp.StatusCode)
	}

	restarted := start(db)
	resp, body := get(restarted, "https://api.github.com/repos/acme/lib/zipball/bbb")
	if resp.StatusCode == http.StatusOK || resp.Header.Get(HeaderDecision) != "deny" {
		t.Fatalf("young dist after restart: %d %q (decision %q), want a cooldown refusal", resp.StatusCode, body, resp.Header.Get(HeaderDecision))
	}
	if resp.Header.Get(HeaderEcosystem) != classifiers.Composer {
		t.Errorf("young dist not attributed to composer: %q", resp.Header.Get(HeaderEcosystem))
	}
	if resp, body := get(restarted, "https://api.github.com/repos/acme/lib/zipball/aaa"); resp.StatusCode != http.StatusOK || body != "zip of /repos/acme/lib/zipball/aaa" {
		t.Fatalf("old dist after restart: %d %q", resp.StatusCode, body)
	}
}
