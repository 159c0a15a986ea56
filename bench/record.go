package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// recordNPM downloads, from the real npm registry, the abbreviated
// packument of every package in lockFile and the tarball of each locked
// version, into dir/meta and dir/tarballs. Files already present are kept,
// so a re-run only fetches what is missing.
func recordNPM(ctx context.Context, lockFile, dir string) error {
	b, err := os.ReadFile(lockFile)
	if err != nil {
		return fmt.Errorf("bench: read lock: %w", err)
	}
	var lock struct {
		Packages map[string]struct {
			Version  string `json:"version"`
			Resolved string `json:"resolved"`
			Name     string `json:"name"`
		} `json:"packages"`
	}
	if err := json.Unmarshal(b, &lock); err != nil {
		return fmt.Errorf("bench: parse lock: %w", err)
	}
	type pkg struct{ name, version string }
	var pkgs []pkg
	names := map[string]bool{}
	seen := map[string]bool{}
	for key, p := range lock.Packages {
		i := strings.LastIndex(key, "node_modules/")
		if i < 0 || p.Version == "" {
			continue
		}
		name := key[i+len("node_modules/"):]
		if p.Name != "" {
			name = p.Name
		}
		if seen[name+"@"+p.Version] {
			continue // the same version nested at several paths
		}
		seen[name+"@"+p.Version] = true
		pkgs = append(pkgs, pkg{name, p.Version})
		names[name] = true
	}
	sort.Slice(pkgs, func(i, j int) bool { return pkgs[i].name+pkgs[i].version < pkgs[j].name+pkgs[j].version })
	for _, d := range []string{"meta", "tarballs"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
	}
	client := &http.Client{Timeout: 2 * time.Minute}
	fetch := func(u, accept, dst string) error {
		if _, err := os.Stat(dst); err == nil {
			return nil
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("bench: GET %s: %s", u, resp.Status)
		}
		tmp := dst + ".tmp"
		f, err := os.Create(tmp)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, resp.Body); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		return os.Rename(tmp, dst)
	}
	var jobs []func() error
	for name := range names {
		u := "https://registry.npmjs.org/" + strings.Replace(url.PathEscape(name), "%40", "@", 1)
		dst := filepath.Join(dir, "meta", metaFile(name))
		jobs = append(jobs, func() error {
			return fetch(u, "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8", dst)
		})
	}
	for _, p := range pkgs {
		base := path.Base(p.name)
		file := fmt.Sprintf("%s-%s.tgz", base, p.version)
		u := fmt.Sprintf("https://registry.npmjs.org/%s/-/%s", p.name, file)
		d := filepath.Join(dir, "tarballs", strings.ReplaceAll(p.name, "/", "%2f"))
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		dst := filepath.Join(d, file)
		jobs = append(jobs, func() error { return fetch(u, "", dst) })
	}
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
		sem  = make(chan struct{}, 8)
	)
	for _, job := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := job(); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	fmt.Fprintf(os.Stderr, "recorded %d packuments, %d tarballs into %s (%d errors)\n", len(names), len(pkgs), dir, len(errs))
	return errors.Join(errs...)
}
