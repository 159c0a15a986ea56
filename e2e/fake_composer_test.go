//go:build e2e

package e2e

import (
	"fmt"
	"strings"
)

// newFakeComposer serves Packagist's packages.json and minified p2 metadata,
// with dists at GitHub zipball URLs as Packagist lists them (the Composer
// ecosystem must claim those hosts for the dists to reach the fake).
func newFakeComposer(ca *testCA) *fakeRegistry {
	f := newFakeRegistry("composer", ca, "repo.packagist.org", "api.github.com", "codeload.github.com")
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
