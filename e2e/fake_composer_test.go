//go:build e2e

package e2e

import (
	"fmt"
	"log"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// newFakeComposer serves Packagist's packages.json and minified p2 metadata,
// with dists at GitHub zipball URLs as Packagist lists them (the Composer
// ecosystem must claim those hosts for the dists to reach the fake), and
// e2e/left's git source on github.com (a real repository under gitDir,
// served by git-http-backend) for Composer's fallback from a refused dist.
func newFakeComposer(ca *testCA, gitDir string) *fakeRegistry {
	f := newFakeRegistry("composer", ca, "repo.packagist.org", "api.github.com", "codeload.github.com", "github.com")
	sources, err := fakeGitSource(f, gitDir, "e2e/left", leftVersions)
	if err != nil {
		log.Printf("e2e: composer fake: no git source for e2e/left: %v", err)
	}
	f.add("/packages.json", "application/json", []byte(`{"packages":[],"notify-batch":"https://packagist.org/downloads/","metadata-url":"/p2/%package%.json","search":"https://packagist.org/search.json?q=%query%&type=%type%"}`))
	for _, name := range []string{"e2e/left", "e2e/evil-pkg"} {
		versions := map[string][]fakeVersion{"e2e/left": leftVersions, "e2e/evil-pkg": evilVersions}[name]
		repo := strings.ReplaceAll(name, "/", "-")
		var entries []map[string]any
		var prev map[string]any
		for i := len(versions) - 1; i >= 0; i-- { // Packagist lists newest first
			v := versions[i]
			ref := sha1Hex([]byte(name + v.version))
			zip := zipBytes([]file{
				{fmt.Sprintf("%s-%s/composer.json", repo, ref[:7]), fmt.Sprintf(`{"name":%q,"type":"library","license":"MIT","autoload":{"psr-4":{"E2e\\\\Fake\\\\":"src/"}}}`, name)},
				{fmt.Sprintf("%s-%s/src/Version.php", repo, ref[:7]), fmt.Sprintf("<?php\nnamespace E2e\\Fake;\nfinal class Version { const V = %q; }\n", v.version)},
			}, v.time)
			zipPath := fmt.Sprintf("/repos/%s/zipball/%s", name, ref)
			f.addArtifact(zipPath, "application/zip", zip, v.time)
			full := map[string]any{
				"name": name, "description": "cafilprox e2e fake", "version": v.version, "version_normalized": v.version + ".0",
				"license": []string{"MIT"}, "type": "library", "time": v.time.UTC().Format("2006-01-02T15:04:05+00:00"),
				"dist":     map[string]any{"type": "zip", "url": "https://api.github.com" + zipPath, "reference": ref, "shasum": ""},
				"autoload": map[string]any{"psr-4": map[string]string{`E2e\Fake\`: "src/"}},
			}
			if src, ok := sources[v.version]; ok && name == "e2e/left" {
				full["source"] = map[string]any{"type": "git", "url": "https://github.com/" + name + ".git", "reference": src}
				f.facts[name+"@"+v.version+":source"] = src
			}
			f.facts[name+"@"+v.version+":ref"] = ref
			// composer/2.0 minification: keys equal to the previous entry are omitted.
			entry := map[string]any{}
			for k, val := range full {
				if prev == nil || string(mustJSON(prev[k])) != string(mustJSON(val)) {
					entry[k] = val
				}
			}
			prev = full
			entries = append(entries, entry)
		}
		f.add("/p2/"+name+".json", "application/json", mustJSON(map[string]any{
			"packages": map[string]any{name: entries}, "minified": "composer/2.0"}))
	}
	return f
}

// fakeGitSource builds a git repository for a package with one tagged commit
// per version (the same files the dists hold) and serves it as
// https://github.com/<name>.git. It returns the commit of each version.
func fakeGitSource(f *fakeRegistry, dir, name string, versions []fakeVersion) (map[string]string, error) {
	gitBin, err := exec.LookPath("git")
	if err != nil {
		return nil, err
	}
	out, err := exec.Command(gitBin, "--exec-path").Output()
	if err != nil {
		return nil, err
	}
	backend := filepath.Join(strings.TrimSpace(string(out)), "git-http-backend")
	work := filepath.Join(dir, "work", name)
	if err := os.MkdirAll(filepath.Join(work, "src"), 0o755); err != nil {
		return nil, err
	}
	git := func(args ...string) (string, error) {
		cmd := exec.Command(gitBin, args...)
		cmd.Dir = work
		cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
			"GIT_AUTHOR_NAME=e2e", "GIT_AUTHOR_EMAIL=e2e@example.org", "GIT_COMMITTER_NAME=e2e", "GIT_COMMITTER_EMAIL=e2e@example.org")
		b, err := cmd.CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("git %s: %w\n%s", strings.Join(args, " "), err, b)
		}
		return strings.TrimSpace(string(b)), nil
	}
	if _, err := git("init", "-q", "-b", "main"); err != nil {
		return nil, err
	}
	refs := map[string]string{}
	for _, v := range versions {
		files := map[string]string{
			"composer.json":   fmt.Sprintf(`{"name":%q,"type":"library","license":"MIT","autoload":{"psr-4":{"E2e\\\\Fake\\\\":"src/"}}}`, name),
			"src/Version.php": fmt.Sprintf("<?php\nnamespace E2e\\Fake;\nfinal class Version { const V = %q; }\n", v.version),
		}
		for p, body := range files {
			if err := os.WriteFile(filepath.Join(work, p), []byte(body), 0o644); err != nil {
				return nil, err
			}
		}
		date := v.time.Format("2006-01-02T15:04:05Z")
		if _, err := git("add", "-A"); err != nil {
			return nil, err
		}
		if _, err := git("-c", "core.hooksPath=/dev/null", "commit", "-q", "-m", v.version, "--date", date); err != nil {
			return nil, err
		}
		if _, err := git("tag", "v"+v.version); err != nil {
			return nil, err
		}
		if refs[v.version], err = git("rev-parse", "HEAD"); err != nil {
			return nil, err
		}
	}
	bare := filepath.Join(dir, "repos", name+".git")
	if _, err := git("clone", "-q", "--bare", work, bare); err != nil {
		return nil, err
	}
	f.git = &cgi.Handler{Path: backend, Env: []string{"GIT_PROJECT_ROOT=" + filepath.Join(dir, "repos"), "GIT_HTTP_EXPORT_ALL=1"}}
	return refs, nil
}
