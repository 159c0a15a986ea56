//go:build e2e

package e2e

import (
	"fmt"
	"net/http"
	"strings"
)

const npmRegistry = "https://registry.npmjs.org"

// newFakeNPM serves packuments (full and abbreviated) and tarballs for
// e2e-left and evil-pkg, with integrity, provenance and publish times.
func newFakeNPM(ca *testCA) *fakeRegistry {
	f := newFakeRegistry("npm", ca, "registry.npmjs.org", "registry.yarnpkg.com")
	for name, versions := range map[string][]fakeVersion{"e2e-left": leftVersions, "evil-pkg": evilVersions} {
		full := map[string]any{}
		abbr := map[string]any{}
		times := map[string]any{"created": rfc3339(versions[0].time)}
		latest := ""
		modified := versions[0].time
		for _, v := range versions {
			tgz := tarGz([]file{
				{"package/package.json", fmt.Sprintf(`{"name":%q,"version":%q,"main":"index.js","license":"MIT"}`, name, v.version)},
				{"package/index.js", fmt.Sprintf("module.exports = %q;\n", name+"@"+v.version)},
			}, v.time)
			tarball := fmt.Sprintf("%s/%s/-/%s-%s.tgz", npmRegistry, name, name, v.version)
			f.addArtifact(fmt.Sprintf("/%s/-/%s-%s.tgz", name, name, v.version), "application/octet-stream", tgz, v.time)
			dist := map[string]any{
				"tarball":   tarball,
				"shasum":    sha1Hex(tgz),
				"integrity": sha512SRI(tgz),
				"attestations": map[string]any{
					"url":        fmt.Sprintf("%s/-/npm/v1/attestations/%s@%s", npmRegistry, name, v.version),
					"provenance": map[string]any{"predicateType": "https://slsa.dev/provenance/v1"},
				},
			}
			doc := map[string]any{
				"name": name, "version": v.version, "main": "index.js", "license": "MIT",
				"_id": name + "@" + v.version, "dist": dist,
				"_npmUser": map[string]any{"name": "GitHub Actions", "email": "npm-oidc-no-reply@github.com",
					"trustedPublisher": map[string]any{"id": "github", "oidcConfigId": "oidc:e2e"}},
			}
			f.facts[name+"@"+v.version+":integrity"] = sha512SRI(tgz)
			f.facts[name+"@"+v.version+":shasum"] = sha1Hex(tgz)
			full[v.version] = doc
			f.add(fmt.Sprintf("/%s/%s", name, v.version), "application/json", mustJSON(doc))
			abbr[v.version] = map[string]any{"name": name, "version": v.version, "dist": map[string]any{
				"tarball": tarball, "shasum": sha1Hex(tgz), "integrity": sha512SRI(tgz)}}
			times[v.version] = rfc3339(v.time)
			latest = v.version
			modified = v.time
		}
		times["modified"] = rfc3339(modified)
		tags := map[string]string{"latest": latest}
		fullDoc := mustJSON(map[string]any{"_id": name, "name": name, "dist-tags": tags, "versions": full, "time": times, "license": "MIT"})
		abbrDoc := mustJSON(map[string]any{"name": name, "modified": rfc3339(modified), "dist-tags": tags, "versions": abbr})
		f.addNegotiated("/"+name, func(r *http.Request) (resource, bool) {
			if strings.Contains(r.Header.Get("Accept"), "application/vnd.npm.install-v1+json") {
				return resource{contentType: "application/vnd.npm.install-v1+json", body: abbrDoc}, true
			}
			return resource{contentType: "application/json", body: fullDoc}, true
		})
	}
	return f
}
