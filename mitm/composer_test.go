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
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2/hclparse"

	"github.com/cafilprox/cafilprox/audit"
	"github.com/cafilprox/cafilprox/ca"
	"github.com/cafilprox/cafilprox/classifiers"
	"github.com/cafilprox/cafilprox/classifiers/composer"
	"github.com/cafilprox/cafilprox/rules"
)

// composerHarness is a fake Packagist listing acme/lib 1.0.0 (old) and
// 1.1.0 (younger than the 10-day cooldown), with GitHub zipball dists of
// repository distRepo and a git source on github.com, behind proxies
// started on demand.
type composerHarness struct {
	reg       *httptest.Server
	upCA      string
	authority *ca.CA
	caDir     string
	pol       *rules.Engine
}

// newComposerHarness serves the registry; other paths go to extra (nil:
// 404), e.g. a git server for github.com.
func newComposerHarness(t *testing.T, distRepo, sourceRef string, extra http.Handler) *composerHarness {
	t.Helper()
	dist := "/repos/" + distRepo + "/zipball/"
	old := time.Now().Add(-30 * 24 * time.Hour).UTC().Format(time.RFC3339)
	young := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	meta := `{"minified":"composer/2.0","packages":{"acme/lib":[
{"name":"acme/lib","version":"1.1.0","version_normalized":"1.1.0.0","time":"` + young + `","dist":{"type":"zip","url":"https://api.github.com` + dist + `bbb","reference":"bbb","shasum":""},"source":{"type":"git","url":"https://github.com/acme/lib.git","reference":"` + sourceRef + `"}},
{"version":"1.0.0","version_normalized":"1.0.0.0","time":"` + old + `","dist":{"type":"zip","url":"https://api.github.com` + dist + `aaa","reference":"aaa","shasum":""}}]}}`
	h := &composerHarness{}
	h.reg = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/p2/acme/lib.json":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, meta)
		case dist + "aaa", dist + "bbb":
			w.Header().Set("Content-Type", "application/zip")
			io.WriteString(w, "zip of "+r.URL.Path)
		default:
			if extra == nil {
				http.NotFound(w, r)
				return
			}
			extra.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(h.reg.Close)
	h.upCA = filepath.Join(t.TempDir(), "up.pem")
	os.WriteFile(h.upCA, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: h.reg.Certificate().Raw}), 0o644)
	h.caDir = t.TempDir()
	var err error
	if h.authority, err = ca.Create(h.caDir); err != nil {
		t.Fatal(err)
	}
	f, diags := hclparse.NewParser().ParseHCL([]byte(`policy { min_age = "10d" }`), "policy.hcl")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if h.pol, diags = rules.Compile(f.Body, rules.Options{}); diags.HasErrors() {
		t.Fatal(diags)
	}
	return h
}

// start runs a fresh proxy process's pipeline (no cache, so every download
// reaches the judgement; github.com intercepted) and returns its URL and a
// client using it.
func (h *composerHarness) start(t *testing.T, downloads Downloads) (string, *http.Client) {
	t.Helper()
	set, err := classifiers.NewSet([]classifiers.Classifier{composer.New()},
		map[string][]string{classifiers.Composer: {"repo.packagist.org", "api.github.com"}})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := NewTransport(UpstreamOptions{CAFile: h.upCA})
	if err != nil {
		t.Fatal(err)
	}
	// Every host, github.com included, is served by the fake.
	ups, _ := NewUpstreams(map[string]string{classifiers.Composer: h.reg.URL, "": h.reg.URL})
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	p := &Pipeline{Set: set, Upstreams: ups, Transport: tr, Logger: logger, Downloads: downloads,
		Policy: func() *rules.Engine { return h.pol }}
	p.Init()
	front := httptest.NewServer(NewServer(Options{Issuer: ca.NewIssuer(h.authority, 0), Handler: p, Logger: logger,
		Intercept: func(host string) bool { return set.ForHost(host) != nil || host == "github.com" }}))
	t.Cleanup(front.Close)
	pu, _ := url.Parse(front.URL)
	pool := x509.NewCertPool()
	pool.AddCert(h.authority.Cert)
	return front.URL, &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu), TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

func get(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// A Composer lockfile install fetches dists without metadata. After a
// restart the in-memory attribution is gone; the durable one must still
// judge the dist as the version it belongs to.
func TestComposerAttributionSurvivesRestart(t *testing.T) {
	// A repository not named like the package: only what was served
	// before can attribute its dists.
	h := newComposerHarness(t, "acme-corp/php-lib", "bbb", nil)
	db, err := audit.Open(filepath.Join(t.TempDir(), "audit.db"), audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	_, first := h.start(t, db)
	if resp, body := get(t, first, "https://repo.packagist.org/p2/acme/lib.json"); resp.StatusCode != http.StatusOK {
		t.Fatalf("metadata: %d %s", resp.StatusCode, body)
	}

	// Without the durable index, a restarted proxy cannot tell what the
	// dist is: this is the gap the index closes.
	_, control := h.start(t, nil)
	if resp, _ := get(t, control, "https://api.github.com/repos/acme-corp/php-lib/zipball/bbb"); resp.StatusCode != http.StatusOK {
		t.Fatalf("control: an unattributed dist got %d, want it passed unjudged", resp.StatusCode)
	}

	_, restarted := h.start(t, db)
	resp, body := get(t, restarted, "https://api.github.com/repos/acme-corp/php-lib/zipball/bbb")
	if resp.StatusCode == http.StatusOK || resp.Header.Get(HeaderDecision) != "deny" {
		t.Fatalf("young dist after restart: %d %q (decision %q), want a cooldown refusal", resp.StatusCode, body, resp.Header.Get(HeaderDecision))
	}
	if resp.Header.Get(HeaderEcosystem) != classifiers.Composer {
		t.Errorf("young dist not attributed to composer: %q", resp.Header.Get(HeaderEcosystem))
	}
	if resp, body := get(t, restarted, "https://api.github.com/repos/acme-corp/php-lib/zipball/aaa"); resp.StatusCode != http.StatusOK || body != "zip of /repos/acme-corp/php-lib/zipball/aaa" {
		t.Fatalf("old dist after restart: %d %q", resp.StatusCode, body)
	}
}

// A lockfile install through a proxy that never served the package's
// metadata: the dist of a repository named like its package is attributed
// by fetching that package's metadata and finding the URL in it.
func TestComposerDistAttributedByRepositoryName(t *testing.T) {
	h := newComposerHarness(t, "acme/lib", "bbb", nil)
	_, c := h.start(t, nil)
	resp, body := get(t, c, "https://api.github.com/repos/acme/lib/zipball/bbb")
	if resp.StatusCode != http.StatusUnavailableForLegalReasons || !strings.Contains(body, "acme/lib@1.1.0") {
		t.Fatalf("young dist, no metadata served before: %d %q, want 451 naming acme/lib@1.1.0", resp.StatusCode, body)
	}
	if resp, body := get(t, c, "https://api.github.com/repos/acme/lib/zipball/aaa"); resp.StatusCode != http.StatusOK || body != "zip of /repos/acme/lib/zipball/aaa" {
		t.Fatalf("old dist: %d %q", resp.StatusCode, body)
	}
	// A dist the guessed metadata does not list stays unattributed.
	if resp, _ := get(t, c, "https://api.github.com/repos/acme/lib/zipball/ccc"); resp.Header.Get(HeaderDecision) == "deny" {
		t.Errorf("a dist not listed in acme/lib's metadata was judged as acme/lib")
	}
}
