//go:build e2e

package e2e

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The signals of issue 10 with real clients: a typosquat name and an internal
// (dependency-confusion) name refused with a clear message, an internal name
// served from the private registry instead, and a re-tagged Composer version
// refused. The test has its own fakes so that it can add packages and change
// a version's content without disturbing the other tests.

const (
	sigTyposquatNPM  = "lodahs"   // imitates lodash
	sigTyposquatPyPI = "reqeusts" // imitates requests
	sigInternalNPM   = "@mycorp/secret"
	sigInternalPyPI  = "mycorp-secret"
	sigComposerPkg   = "vendor/pkg"
	sigVersion       = "1.0.0"
)

// signalsPolicy is the CI-default style policy under test: cooldown counted
// from the later of publish time and first sight, the typosquat rule, the
// internal names and (built in) re-tagged versions denied.
const signalsPolicy = `
policy {
  default    = "allow"
  min_age    = "10d"
  age_source = "max"
}

internal {
  npm  = ["@mycorp/*"]
  pypi = ["mycorp-*"]
}

rule "typosquats" {
  when   = pkg.typosquat_of != ""
  action = "deny"
  reason = "${pkg.name} imitates ${pkg.typosquat_of}"
}
`

// signalsFakes are the registries of TestSignals: public npm, PyPI and
// Composer, and private npm and PyPI registries for internal names.
type signalsFakes struct {
	npm, pypi, composer *fakeRegistry
	privNPM, privPyPI   *fakeRegistry
}

func newSignalsFakes(t *testing.T) *signalsFakes {
	t.Helper()
	ca := h.fakeCA
	s := &signalsFakes{
		npm:      newFakeRegistry("signals-npm", ca, "registry.npmjs.org", "registry.yarnpkg.com"),
		privNPM:  newFakeRegistry("signals-npm-private", ca, "registry.npmjs.org", "registry.yarnpkg.com"),
		pypi:     newFakeRegistry("signals-pypi", ca, "pypi.org", "files.pythonhosted.org"),
		privPyPI: newFakeRegistry("signals-pypi-private", ca, "pypi.org", "files.pythonhosted.org"),
		composer: newFakeRegistry("signals-composer", ca, "repo.packagist.org", "api.github.com", "codeload.github.com"),
	}
	// Every package is old (past the cooldown) and a genuine release on its
	// registry: only the signal under test can refuse it.
	addNPMPackage(s.npm, sigTyposquatNPM, sigVersion, oldTime, "public")
	addNPMPackage(s.npm, sigInternalNPM, sigVersion, oldTime, "public")
	addNPMPackage(s.privNPM, sigInternalNPM, sigVersion, oldTime, "private")
	addPyPIPackage(s.pypi, sigTyposquatPyPI, sigVersion, oldTime, "public")
	addPyPIPackage(s.pypi, sigInternalPyPI, sigVersion, oldTime, "public")
	addPyPIPackage(s.privPyPI, sigInternalPyPI, sigVersion, oldTime, "private")
	s.composer.add("/packages.json", "application/json", []byte(`{"packages":[],"metadata-url":"/p2/%package%.json"}`))
	s.retagComposer("original")
	for _, f := range s.all() {
		if err := f.start(); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, f := range s.all() {
			f.stop()
		}
	})
	return s
}

func (s *signalsFakes) all() []*fakeRegistry {
	return []*fakeRegistry{s.npm, s.privNPM, s.pypi, s.privPyPI, s.composer}
}

// retagComposer (re)publishes vendor/pkg 1.0.0 with content marked by
// marker: a new dist reference and zipball for the same version, as a moved
// git tag does on Packagist. Earlier zipballs stay downloadable.
func (s *signalsFakes) retagComposer(marker string) {
	name, v := sigComposerPkg, sigVersion
	ref := sha1Hex([]byte(name + "@" + v + "#" + marker))
	top := fmt.Sprintf("%s-%s", strings.ReplaceAll(name, "/", "-"), ref[:7])
	zip := zipBytes([]file{
		{top + "/composer.json", fmt.Sprintf(`{"name":%q,"type":"library","license":"MIT","autoload":{"psr-4":{"Vendor\\\\Pkg\\\\":"src/"}}}`, name)},
		{top + "/src/Origin.php", fmt.Sprintf("<?php\nnamespace Vendor\\Pkg;\nfinal class Origin { const MARK = %q; }\n", marker)},
	}, oldTime)
	zipPath := fmt.Sprintf("/repos/%s/zipball/%s", name, ref)
	s.composer.addArtifact(zipPath, "application/zip", zip, oldTime)
	s.composer.add("/p2/"+name+".json", "application/json", mustJSON(map[string]any{
		"packages": map[string]any{name: []any{map[string]any{
			"name": name, "description": "cafilprox e2e signals fake", "version": v, "version_normalized": v + ".0",
			"license": []string{"MIT"}, "type": "library", "time": oldTime.Format("2006-01-02T15:04:05+00:00"),
			"source":   map[string]any{"type": "git", "url": "https://github.com/" + name + ".git", "reference": ref},
			"dist":     map[string]any{"type": "zip", "url": "https://api.github.com" + zipPath, "reference": ref, "shasum": ""},
			"autoload": map[string]any{"psr-4": map[string]string{`Vendor\Pkg\`: "src/"}},
		}}},
	}))
}

// addNPMPackage serves one version of name (scoped names too): packument
// (full and abbreviated) and tarball, whose index.js exports marker.
func addNPMPackage(f *fakeRegistry, name, version string, at time.Time, marker string) {
	base := name
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		base = name[i+1:]
	}
	tgz := tarGz([]file{
		{"package/package.json", fmt.Sprintf(`{"name":%q,"version":%q,"main":"index.js","license":"MIT"}`, name, version)},
		{"package/index.js", fmt.Sprintf("module.exports = %q;\n", marker)},
	}, at)
	tgzPath := fmt.Sprintf("/%s/-/%s-%s.tgz", name, base, version)
	f.addArtifact(tgzPath, "application/octet-stream", tgz, at)
	dist := map[string]any{"tarball": npmRegistry + tgzPath, "shasum": sha1Hex(tgz), "integrity": sha512SRI(tgz)}
	doc := map[string]any{"name": name, "version": version, "main": "index.js", "license": "MIT", "_id": name + "@" + version, "dist": dist}
	tags := map[string]string{"latest": version}
	full := mustJSON(map[string]any{"_id": name, "name": name, "dist-tags": tags, "versions": map[string]any{version: doc},
		"time": map[string]any{"created": rfc3339(at), "modified": rfc3339(at), version: rfc3339(at)}, "license": "MIT"})
	abbr := mustJSON(map[string]any{"name": name, "modified": rfc3339(at), "dist-tags": tags,
		"versions": map[string]any{version: map[string]any{"name": name, "version": version, "dist": dist}}})
	// npm asks for /@scope%2fname; the server sees the decoded path.
	f.addNegotiated("/"+name, func(r *http.Request) (resource, bool) {
		if strings.Contains(r.Header.Get("Accept"), "application/vnd.npm.install-v1+json") {
			return resource{contentType: "application/vnd.npm.install-v1+json", body: abbr}, true
		}
		return resource{contentType: "application/json", body: full}, true
	})
}

// addPyPIPackage serves one version of name as a wheel (module origin_<name>
// whose ORIGIN is marker) with the PEP 691 JSON and HTML simple pages and
// the JSON API.
func addPyPIPackage(f *fakeRegistry, name, version string, at time.Time, marker string) {
	mod := strings.ReplaceAll(name, "-", "_")
	di := fmt.Sprintf("%s-%s.dist-info/", mod, version)
	files := []file{
		{mod + "/__init__.py", fmt.Sprintf("ORIGIN = %q\n", marker)},
		{di + "METADATA", fmt.Sprintf("Metadata-Version: 2.1\nName: %s\nVersion: %s\nSummary: cafilprox e2e signals fake\n", name, version)},
		{di + "WHEEL", "Wheel-Version: 1.0\nGenerator: cafilprox-e2e\nRoot-Is-Purelib: true\nTag: py3-none-any\n"},
	}
	var record strings.Builder
	for _, fl := range files {
		fmt.Fprintf(&record, "%s,sha256=%s,%d\n", fl.name, base64.RawURLEncoding.EncodeToString(sha256Sum([]byte(fl.body))), len(fl.body))
	}
	record.WriteString(di + "RECORD,,\n")
	whl := zipBytes(append(files, file{di + "RECORD", record.String()}), at)
	filename := fmt.Sprintf("%s-%s-py3-none-any.whl", mod, version)
	sum := sha256Hex(whl)
	path := fmt.Sprintf("/packages/%s/%s/%s/%s", sum[:2], sum[2:4], sum[4:], filename)
	f.addArtifact(path, "application/octet-stream", whl, at)
	url := "https://files.pythonhosted.org" + path
	jsonDoc := mustJSON(map[string]any{
		"meta": map[string]any{"api-version": "1.1", "_last-serial": 1},
		"name": name, "versions": []string{version},
		"files": []any{map[string]any{"filename": filename, "url": url, "hashes": map[string]string{"sha256": sum},
			"requires-python": nil, "core-metadata": false, "yanked": false, "size": len(whl), "upload-time": rfc3339(at)}},
	})
	htmlDoc := []byte(fmt.Sprintf("<!DOCTYPE html>\n<html>\n  <head>\n    <meta name=\"pypi:repository-version\" content=\"1.1\">\n    <title>Links for %s</title>\n  </head>\n  <body>\n    <h1>Links for %s</h1>\n    <a href=\"%s#sha256=%s\">%s</a><br />\n  </body>\n</html>\n", name, name, url, sum, filename))
	f.addNegotiated("/simple/"+name+"/", func(r *http.Request) (resource, bool) {
		if strings.Contains(r.Header.Get("Accept"), "application/vnd.pypi.simple.v1+json") {
			return resource{contentType: "application/vnd.pypi.simple.v1+json", body: jsonDoc}, true
		}
		return resource{contentType: "text/html; charset=utf-8", body: htmlDoc}, true
	})
	rel := []any{map[string]any{"filename": filename, "url": url, "digests": map[string]string{"sha256": sum},
		"packagetype": "bdist_wheel", "python_version": "py3", "size": len(whl),
		"upload_time": at.UTC().Format("2006-01-02T15:04:05"), "upload_time_iso_8601": rfc3339(at), "yanked": false}}
	info := map[string]any{"name": name, "version": version, "summary": "cafilprox e2e signals fake", "yanked": false}
	f.add(fmt.Sprintf("/pypi/%s/json", name), "application/json", mustJSON(map[string]any{
		"info": info, "releases": map[string]any{version: rel}, "urls": rel, "last_serial": 1}))
	f.add(fmt.Sprintf("/pypi/%s/%s/json", name, version), "application/json", mustJSON(map[string]any{
		"info": info, "urls": rel, "last_serial": 1}))
}

// signalsConfig points npm, PyPI and Composer at the signals fakes (with
// private registries for internal names when private is set).
func (s *signalsFakes) config(private bool) func(*strings.Builder) {
	return func(cfg *strings.Builder) {
		fmt.Fprintf(cfg, "upstream_ca_file = %q\n\n", filepath.Join(h.root, "fake-registries-ca.pem"))
		for _, e := range []struct {
			eco  string
			pub  *fakeRegistry
			priv *fakeRegistry
		}{{"npm", s.npm, s.privNPM}, {"pypi", s.pypi, s.privPyPI}} {
			fmt.Fprintf(cfg, "ecosystem %q {\n  upstream = %q\n", e.eco, e.pub.URL())
			if private {
				fmt.Fprintf(cfg, "  internal_upstream = %q\n", e.priv.URL())
			}
			fmt.Fprintf(cfg, "}\n")
		}
		fmt.Fprintf(cfg, "ecosystem \"composer\" {\n  upstream     = %q\n  hosts        = [\"%s\"]\n  metadata_ttl = \"1s\"\n}\n",
			s.composer.URL(), strings.Join(s.composer.hosts, `", "`))
		cfg.WriteString(signalsPolicy)
	}
}

// pathHits sums the requests a fake served for paths containing sub.
func pathHits(f *fakeRegistry, sub string) int {
	n := 0
	for p, c := range f.requests() {
		if strings.Contains(p, sub) {
			n += c
		}
	}
	return n
}

func launchSignals(t *testing.T, name string, body func(*strings.Builder)) *target {
	t.Helper()
	c, err := launchCafilprox(name, body)
	if err != nil {
		if os.Getenv("CI") == "true" || os.Getenv("CAFILPROX_E2E_REQUIRE") != "" {
			t.Fatalf("cafilprox: %v", err)
		}
		t.Skipf("cafilprox not usable yet: %v", err)
	}
	t.Cleanup(c.stop)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s log (last lines):\n%s", name, tail(c.logText(), 25))
		}
	})
	return &target{name: name, env: c.env, policy: true, cafil: c}
}

func npmInstallPkg(t *testing.T, tg *target, dir, name string) (string, error) {
	writeFiles(t, dir, map[string]string{"package.json": fmt.Sprintf(`{"name":"e2e-app","version":"1.0.0","private":true,"dependencies":{%q:%q}}`, name, sigVersion)})
	return run(t, tg, dir, nil, "npm", "install", "--no-audit", "--no-fund")
}

// pipInstallPkg installs name==1.0.0 into dir/site.
func pipInstallPkg(t *testing.T, tg *target, dir, name string) (string, error) {
	return run(t, tg, dir, map[string]string{"PIP_CONFIG_FILE": os.DevNull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
		"python3", "-m", "pip", "install", "--no-cache-dir", "--target", filepath.Join(dir, "site"), name+"=="+sigVersion)
}

func composerInstall(t *testing.T, tg *target, dir string) (string, error) {
	return run(t, tg, dir, map[string]string{"COMPOSER_ALLOW_SUPERUSER": "1", "COMPOSER_NO_INTERACTION": "1"},
		"composer", "install", "--no-interaction", "--no-progress", "--no-plugins", "--no-scripts")
}

// linesWith returns the lines of out that contain sub (case-insensitive).
func linesWith(out, sub string) string {
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(strings.ToLower(l), strings.ToLower(sub)) {
			keep = append(keep, strings.TrimSpace(l))
		}
	}
	return strings.Join(keep, "\n")
}

// containsAll reports whether out contains every one of subs (case-insensitive).
func containsAll(out string, subs ...string) bool {
	low := strings.ToLower(out)
	for _, s := range subs {
		if !strings.Contains(low, strings.ToLower(s)) {
			return false
		}
	}
	return true
}

// auditBlocks polls `cafilprox audit blocks` (events are written in batches)
// until its output contains every one of want, and returns the last output.
func auditBlocks(t *testing.T, c *cafilprox, eco string, want ...string) (string, bool) {
	t.Helper()
	var out string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		cmd := exec.Command(c.bin, "audit", "blocks", "--config", c.config, "--ecosystem", eco, "--since", "1h")
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + filepath.Dir(c.config)}
		b, err := cmd.CombinedOutput()
		out = string(b)
		if err == nil && containsAll(out, want...) {
			return out, true
		}
		if time.Now().After(deadline) {
			return out, false
		}
	}
}

// TestSignals checks the protections of issue 10 with real clients.
func TestSignals(t *testing.T) {
	fakes := newSignalsFakes(t)
	tg := launchSignals(t, "signals", fakes.config(false))

	t.Run("typosquat_refused", func(t *testing.T) {
		t.Run("npm", func(t *testing.T) {
			requireClient(t, "npm")
			dir := t.TempDir()
			out, err := npmInstallPkg(t, tg, dir, sigTyposquatNPM)
			if err == nil {
				t.Fatalf("npm install %s succeeded, want it refused as a typosquat\n%s", sigTyposquatNPM, tail(out, 30))
			}
			if !containsAll(out, sigTyposquatNPM+" imitates lodash") {
				t.Errorf("npm output does not name the imitated package (%q):\n%s", sigTyposquatNPM+" imitates lodash", tail(out, 30))
			}
			t.Logf("npm said:\n%s", linesWith(out, "imitates"))
			if _, err := os.Stat(filepath.Join(dir, "node_modules", sigTyposquatNPM)); err == nil {
				t.Errorf("node_modules/%s exists after a refused install", sigTyposquatNPM)
			}
		})
		t.Run("pip", func(t *testing.T) {
			requireClient(t, "python3")
			dir := t.TempDir()
			out, err := pipInstallPkg(t, tg, dir, sigTyposquatPyPI)
			if err == nil {
				t.Fatalf("pip install %s succeeded, want it refused as a typosquat\n%s", sigTyposquatPyPI, tail(out, 30))
			}
			if !containsAll(out, sigTyposquatPyPI+" imitates requests") {
				t.Errorf("pip output does not name the imitated package (%q):\n%s", sigTyposquatPyPI+" imitates requests", tail(out, 30))
			}
			t.Logf("pip said:\n%s", linesWith(out, "imitates"))
			if m, _ := filepath.Glob(filepath.Join(dir, "site", "reqeusts*")); len(m) != 0 {
				t.Errorf("%v installed after a refused install", m)
			}
		})
	})

	t.Run("internal_name_refused", func(t *testing.T) {
		t.Run("npm", func(t *testing.T) {
			requireClient(t, "npm")
			before := pathHits(fakes.npm, "mycorp")
			out, err := npmInstallPkg(t, tg, t.TempDir(), sigInternalNPM)
			if err == nil {
				t.Fatalf("npm install %s succeeded, want it refused (internal name)\n%s", sigInternalNPM, tail(out, 30))
			}
			if !containsAll(out, "dependency confusion") {
				t.Errorf("npm output does not mention dependency confusion:\n%s", tail(out, 30))
			}
			t.Logf("npm said:\n%s", linesWith(out, "dependency confusion"))
			if n := pathHits(fakes.npm, "mycorp") - before; n != 0 {
				t.Errorf("the public npm registry served %d requests for the internal name, want 0", n)
			}
		})
		t.Run("pip", func(t *testing.T) {
			requireClient(t, "python3")
			before := pathHits(fakes.pypi, "mycorp")
			out, err := pipInstallPkg(t, tg, t.TempDir(), sigInternalPyPI)
			if err == nil {
				t.Fatalf("pip install %s succeeded, want it refused (internal name)\n%s", sigInternalPyPI, tail(out, 30))
			}
			// An internal name never reaches the public registry, not even
			// its listing. pip hides a refused index page behind "no
			// matching distribution" (it logs the reason only with -v), so
			// the reason is checked in the audit trail instead.
			if n := pathHits(fakes.pypi, "mycorp") - before; n != 0 {
				t.Errorf("the public PyPI registry saw %d requests for the internal name, want 0", n)
			}
			if !containsAll(out, "No matching distribution found for "+sigInternalPyPI) {
				t.Errorf("pip output:\n%s", tail(out, 30))
			}
			if blocks, ok := auditBlocks(t, tg.cafil, "pypi", sigInternalPyPI, "dependency confusion"); !ok {
				t.Errorf("audit blocks lacks the internal refusal of %s:\n%s", sigInternalPyPI, blocks)
			}
		})
	})

	t.Run("internal_name_from_private_registry", func(t *testing.T) {
		ptg := launchSignals(t, "signals-private", fakes.config(true))
		t.Run("npm", func(t *testing.T) {
			requireClient(t, "npm")
			before := pathHits(fakes.npm, "mycorp")
			dir := t.TempDir()
			out, err := npmInstallPkg(t, ptg, dir, sigInternalNPM)
			if err != nil {
				t.Fatalf("npm install %s through the private upstream failed: %v\n%s", sigInternalNPM, err, tail(out, 30))
			}
			js, _ := os.ReadFile(filepath.Join(dir, "node_modules", sigInternalNPM, "index.js"))
			if !strings.Contains(string(js), `"private"`) {
				t.Errorf("installed %s/index.js = %q, want the private registry's package", sigInternalNPM, js)
			}
			if n := pathHits(fakes.npm, "mycorp") - before; n != 0 {
				t.Errorf("the public npm registry served %d requests for the internal name, want 0", n)
			}
			if pathHits(fakes.privNPM, "mycorp") == 0 {
				t.Errorf("the private npm registry saw no request for %s", sigInternalNPM)
			}
		})
		t.Run("pip", func(t *testing.T) {
			requireClient(t, "python3")
			before := pathHits(fakes.pypi, "mycorp")
			dir := t.TempDir()
			out, err := pipInstallPkg(t, ptg, dir, sigInternalPyPI)
			if err != nil {
				t.Fatalf("pip install %s through the private upstream failed: %v\n%s", sigInternalPyPI, err, tail(out, 30))
			}
			py, _ := os.ReadFile(filepath.Join(dir, "site", "mycorp_secret", "__init__.py"))
			if !strings.Contains(string(py), `"private"`) {
				t.Errorf("installed mycorp_secret/__init__.py = %q, want the private registry's package", py)
			}
			if n := pathHits(fakes.pypi, "mycorp") - before; n != 0 {
				t.Errorf("the public PyPI registry served %d requests for the internal name, want 0", n)
			}
			if pathHits(fakes.privPyPI, "mycorp") == 0 {
				t.Errorf("the private PyPI registry saw no request for %s", sigInternalPyPI)
			}
		})
	})

	t.Run("composer_retagged_version_refused", func(t *testing.T) {
		requireClient(t, "composer", "php")
		project := fmt.Sprintf(`{"name":"e2e/app","require":{%q:%q},"config":{"allow-plugins":false}}`, sigComposerPkg, sigVersion)
		first := t.TempDir()
		writeFiles(t, first, map[string]string{"composer.json": project})
		out, err := composerInstall(t, tg, first)
		if err != nil {
			t.Fatalf("first install of %s %s failed: %v\n%s", sigComposerPkg, sigVersion, err, tail(out, 30))
		}
		if php, _ := os.ReadFile(filepath.Join(first, "vendor", sigComposerPkg, "src/Origin.php")); !strings.Contains(string(php), `"original"`) {
			t.Fatalf("first install: Origin.php = %q, want the original content", php)
		}
		lock, err := os.ReadFile(filepath.Join(first, "composer.lock"))
		if err != nil {
			t.Fatal(err)
		}

		// The tag moves: same version, other commit and zipball. Once the
		// proxy's metadata TTL (1s) has passed it sees the new reference.
		fakes.retagComposer("moved")
		time.Sleep(1500 * time.Millisecond)

		t.Run("fresh_resolution", func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, map[string]string{"composer.json": project})
			out, err := composerInstall(t, tg, dir)
			if err == nil {
				t.Fatalf("install of the re-tagged %s %s succeeded\n%s", sigComposerPkg, sigVersion, tail(out, 30))
			}
			if php, _ := os.ReadFile(filepath.Join(dir, "vendor", sigComposerPkg, "src/Origin.php")); len(php) != 0 {
				t.Errorf("re-tagged content was installed: %q", php)
			}
			// Composer metadata can list no versions, so the re-tagged
			// version is hidden and composer only says nothing matches (a
			// lockfile install, below, shows the reason).
			if !containsAll(out, "re-tagged") && !containsAll(out, sigComposerPkg, "could not be found") {
				t.Errorf("composer output neither names the re-tag nor says %s could not be found:\n%s", sigComposerPkg, tail(out, 30))
			}
			t.Logf("composer said:\n%s", linesWith(out, sigComposerPkg))
		})
		t.Run("lockfile", func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, map[string]string{"composer.json": project, "composer.lock": string(lock)})
			out, err := composerInstall(t, tg, dir)
			if err == nil {
				t.Fatalf("install of the re-tagged %s %s from the lockfile succeeded\n%s", sigComposerPkg, sigVersion, tail(out, 30))
			}
			if !containsAll(out, sigComposerPkg+"@"+sigVersion+" now points at different content", "re-tagged") {
				t.Errorf("composer output does not name the re-tag of %s@%s:\n%s", sigComposerPkg, sigVersion, tail(out, 30))
			}
			if _, err := os.Stat(filepath.Join(dir, "vendor", sigComposerPkg, "src/Origin.php")); err == nil {
				t.Errorf("vendor/%s was installed from the re-tagged version", sigComposerPkg)
			}
			t.Logf("composer said:\n%s", linesWith(out, "re-tagged"))
		})
		if log := tg.cafil.logText(); !strings.Contains(log, "RE-TAGGED VERSION") || !strings.Contains(log, sigComposerPkg) {
			t.Errorf("proxy log has no RE-TAGGED line for %s:\n%s", sigComposerPkg, tail(log, 20))
		}
		if n := tg.cafil.metric(t, "cafilprox_retagged_total", map[string]string{"ecosystem": "composer"}); n < 1 {
			t.Errorf("cafilprox_retagged_total{ecosystem=\"composer\"} = %v, want >= 1", n)
		}
		if out, ok := auditBlocks(t, tg.cafil, "composer", sigComposerPkg, "retagged"); !ok {
			t.Errorf("cafilprox audit blocks names no %q block of %s:\n%s", "retagged", sigComposerPkg, out)
		}
	})
}
