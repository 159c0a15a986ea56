package mitm

import (
	"net/http"
	"net/http/cgi"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestRepoKeyAndGitFetchRepo(t *testing.T) {
	for raw, want := range map[string]string{
		"https://github.com/Acme/Lib.git":  "github.com/acme/lib",
		"https://GitHub.com/acme/lib/":     "github.com/acme/lib",
		"https://github.com/acme/lib":      "github.com/acme/lib",
		"git@github.com:acme/lib.git":      "",
		"ssh://git@github.com/acme/lib":    "",
		"https://github.com/":              "",
		"https://gitlab.com/g/sub/pkg.git": "gitlab.com/g/sub/pkg",
	} {
		got, ok := repoKey(raw)
		if got != want || ok != (want != "") {
			t.Errorf("repoKey(%q) = %q, %v; want %q", raw, got, ok, want)
		}
	}
	for raw, want := range map[string]string{
		"https://github.com/acme/lib.git/info/refs?service=git-upload-pack":  "/acme/lib.git",
		"https://github.com/acme/lib.git/git-upload-pack":                    "/acme/lib.git",
		"https://github.com/acme/lib/info/refs?service=git-upload-pack":      "/acme/lib",
		"https://github.com/acme/lib.git/info/refs?service=git-receive-pack": "",
		"https://github.com/acme/lib.git/info/refs":                          "",
		"https://github.com/acme/lib/blob/main/info/refs.md":                 "",
	} {
		u, _ := url.Parse(raw)
		got, ok := gitFetchRepo(u)
		if got != want || ok != (want != "") {
			t.Errorf("gitFetchRepo(%q) = %q, %v; want %q", raw, got, ok, want)
		}
	}
}

// Composer falls back from a refused dist to cloning the source: with real
// git through the proxy, the clone works until this client is refused the
// version, then fails with the refusal as git's "remote error".
func TestRefusedVersionGuardsItsSourceRepository(t *testing.T) {
	gitBin, err := exec.LookPath("git")
	if err != nil {
		t.Skip("git not installed")
	}
	backend := "/usr/lib/git-core/git-http-backend"
	if out, err := exec.Command(gitBin, "--exec-path").Output(); err == nil {
		backend = filepath.Join(strings.TrimSpace(string(out)), "git-http-backend")
	}
	if _, err := os.Stat(backend); err != nil {
		t.Skip("git-http-backend not installed")
	}
	home := t.TempDir()
	gitEnv := []string{"HOME=" + home, "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0", "PATH=" + os.Getenv("PATH"),
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.org", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.org"}
	git := func(dir string, env []string, args ...string) (string, error) {
		cmd := exec.Command(gitBin, args...)
		cmd.Dir, cmd.Env = dir, append(append([]string{}, gitEnv...), env...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	must := func(out string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatalf("git: %v\n%s", err, out)
		}
		return strings.TrimSpace(out)
	}
	// A real repository for acme/lib with the 1.1.0 commit tagged.
	work, repos := t.TempDir(), t.TempDir()
	must(git(work, nil, "init", "-q", "-b", "main"))
	os.WriteFile(filepath.Join(work, "Lib.php"), []byte("<?php // 1.1.0\n"), 0o644)
	must(git(work, nil, "add", "."))
	must(git(work, nil, "commit", "-q", "-m", "1.1.0"))
	must(git(work, nil, "tag", "v1.1.0"))
	sha := must(git(work, nil, "rev-parse", "HEAD"))
	must(git(repos, nil, "clone", "-q", "--bare", work, filepath.Join(repos, "acme", "lib.git")))

	gitServer := &cgi.Handler{Path: backend, Env: []string{"GIT_PROJECT_ROOT=" + repos, "GIT_HTTP_EXPORT_ALL=1"}}
	h := newComposerHarness(t, "acme/lib", sha, gitServer)
	proxyURL, client := h.start(t, nil)
	viaProxy := []string{"HTTPS_PROXY=" + proxyURL, "https_proxy=" + proxyURL, "GIT_SSL_CAINFO=" + filepath.Join(h.caDir, "ca.pem")}
	const repo = "https://github.com/acme/lib.git"

	if out := must(git(home, viaProxy, "ls-remote", repo)); !strings.Contains(out, sha) {
		t.Fatalf("ls-remote before any refusal lacks %s:\n%s", sha, out)
	}
	if resp, body := get(t, client, "https://repo.packagist.org/p2/acme/lib.json"); resp.StatusCode != http.StatusOK {
		t.Fatalf("metadata: %d %s", resp.StatusCode, body)
	}
	if resp, _ := get(t, client, "https://api.github.com/repos/acme/lib/zipball/bbb"); resp.StatusCode != http.StatusUnavailableForLegalReasons {
		t.Fatalf("young dist: got %d, want 451", resp.StatusCode)
	}
	out, err := git(home, viaProxy, "clone", "-q", repo, filepath.Join(home, "lib"))
	if err == nil {
		t.Fatalf("clone of the refused version's source succeeded:\n%s", out)
	}
	if !strings.Contains(out, "remote error: cafilprox blocked composer package acme/lib@1.1.0") {
		t.Errorf("git does not show the refusal:\n%s", out)
	}
	// The same URL spelled differently is the same repository.
	if out, _ := git(home, viaProxy, "ls-remote", "https://github.com/Acme/Lib"); !strings.Contains(out, "remote error: cafilprox blocked") {
		t.Errorf("ls-remote of the same repository spelled differently is not refused:\n%s", out)
	}
	t.Logf("git clone says:\n%s", out)
}
