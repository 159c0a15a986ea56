//go:build e2e

package e2e

import (
	"encoding/base64"
	"fmt"
	"html"
	"net/http"
	"strings"
)

// newFakePyPI serves e2e-left and evil-pkg as wheels and sdists, with the
// PEP 691 JSON and HTML simple pages, the JSON API and PEP 740 provenance.
func newFakePyPI(ca *testCA) *fakeRegistry {
	f := newFakeRegistry("pypi", ca, "pypi.org", "files.pythonhosted.org")
	for name, versions := range map[string][]fakeVersion{"e2e-left": leftVersions, "evil-pkg": evilVersions} {
		mod := strings.ReplaceAll(name, "-", "_")
		var jsonFiles []map[string]any
		var anchors []string
		var versionList []string
		releases := map[string]any{}
		for _, v := range versions {
			versionList = append(versionList, v.version)
			var relFiles []map[string]any
			for _, kind := range []string{"wheel", "sdist"} {
				var filename string
				var body []byte
				metadata := fmt.Sprintf("Metadata-Version: 2.1\nName: %s\nVersion: %s\nSummary: cafilprox e2e fake\nRequires-Python: >=3.7\n", name, v.version)
				if kind == "wheel" {
					filename = fmt.Sprintf("%s-%s-py3-none-any.whl", mod, v.version)
					body = wheel(mod, v.version, metadata, v)
				} else {
					filename = fmt.Sprintf("%s-%s.tar.gz", mod, v.version)
					root := fmt.Sprintf("%s-%s/", mod, v.version)
					body = tarGz([]file{
						{root + "PKG-INFO", metadata},
						{root + "pyproject.toml", fmt.Sprintf("[build-system]\nrequires = [\"setuptools\"]\nbuild-backend = \"setuptools.build_meta\"\n\n[project]\nname = %q\nversion = %q\n", name, v.version)},
						{root + mod + "/__init__.py", fmt.Sprintf("VERSION = %q\n", v.version)},
					}, v.time)
				}
				sum := sha256Hex(body)
				path := fmt.Sprintf("/packages/%s/%s/%s/%s", sum[:2], sum[2:4], sum[4:], filename)
				f.addArtifact(path, "application/octet-stream", body, v.time)
				url := "https://files.pythonhosted.org" + path
				f.facts[name+"@"+v.version+":"+kind+"-sha256"] = sum
				f.facts[name+"@"+v.version+":"+kind+"-url"] = url
				var prov any
				provAttr := ""
				if v.time.Equal(oldTime) {
					p := fmt.Sprintf("https://pypi.org/integrity/%s/%s/%s/provenance", name, v.version, filename)
					prov, provAttr = p, fmt.Sprintf(` data-provenance="%s"`, html.EscapeString(p))
					f.add(fmt.Sprintf("/integrity/%s/%s/%s/provenance", name, v.version, filename), "application/json",
						mustJSON(map[string]any{"version": 1, "attestation_bundles": []any{map[string]any{
							"publisher":    map[string]any{"kind": "GitHub", "repository": "cafilprox/" + name, "workflow": "release.yml"},
							"attestations": []any{}}}}))
				}
				jsonFiles = append(jsonFiles, map[string]any{
					"filename": filename, "url": url, "hashes": map[string]string{"sha256": sum},
					"requires-python": ">=3.7", "core-metadata": false, "data-dist-info-metadata": false,
					"yanked": false, "size": len(body), "upload-time": rfc3339(v.time), "provenance": prov,
				})
				anchors = append(anchors, fmt.Sprintf(`    <a href="%s#sha256=%s" data-requires-python="&gt;=3.7"%s>%s</a><br />`, url, sum, provAttr, filename))
				ptype := "bdist_wheel"
				if kind == "sdist" {
					ptype = "sdist"
				}
				relFiles = append(relFiles, map[string]any{
					"filename": filename, "url": url, "digests": map[string]string{"sha256": sum, "md5": md5Hex(body)},
					"packagetype": ptype, "python_version": "py3", "requires_python": ">=3.7", "size": len(body),
					"upload_time": v.time.UTC().Format("2006-01-02T15:04:05"), "upload_time_iso_8601": rfc3339(v.time),
					"yanked": false, "yanked_reason": nil,
				})
			}
			releases[v.version] = relFiles
			f.add(fmt.Sprintf("/pypi/%s/%s/json", name, v.version), "application/json", mustJSON(map[string]any{
				"info": map[string]any{"name": name, "version": v.version, "summary": "cafilprox e2e fake", "yanked": false},
				"urls": relFiles, "last_serial": 1000, "vulnerabilities": []any{}}))
		}
		last := versions[len(versions)-1]
		f.add(fmt.Sprintf("/pypi/%s/json", name), "application/json", mustJSON(map[string]any{
			"info":     map[string]any{"name": name, "version": last.version, "summary": "cafilprox e2e fake", "yanked": false},
			"releases": releases, "urls": releases[last.version], "last_serial": 1000, "vulnerabilities": []any{}}))
		jsonDoc := mustJSON(map[string]any{
			"meta": map[string]any{"api-version": "1.1", "_last-serial": 1000},
			"name": name, "files": jsonFiles, "versions": versionList,
		})
		htmlDoc := []byte(fmt.Sprintf("<!DOCTYPE html>\n<html>\n  <head>\n    <meta name=\"pypi:repository-version\" content=\"1.1\">\n    <title>Links for %s</title>\n  </head>\n  <body>\n    <h1>Links for %s</h1>\n%s\n  </body>\n</html>\n<!--SERIAL 1000-->", name, name, strings.Join(anchors, "\n")))
		f.addNegotiated("/simple/"+name+"/", func(r *http.Request) (resource, bool) {
			if strings.Contains(r.Header.Get("Accept"), "application/vnd.pypi.simple.v1+json") {
				return resource{contentType: "application/vnd.pypi.simple.v1+json", body: jsonDoc}, true
			}
			return resource{contentType: "text/html; charset=utf-8", body: htmlDoc}, true
		})
	}
	return f
}

// wheel builds a pure-Python wheel with a correct RECORD.
func wheel(mod, version, metadata string, v fakeVersion) []byte {
	di := fmt.Sprintf("%s-%s.dist-info/", mod, version)
	files := []file{
		{mod + "/__init__.py", fmt.Sprintf("VERSION = %q\n", version)},
		{di + "METADATA", metadata},
		{di + "WHEEL", "Wheel-Version: 1.0\nGenerator: cafilprox-e2e\nRoot-Is-Purelib: true\nTag: py3-none-any\n"},
		{di + "top_level.txt", mod + "\n"},
	}
	var record strings.Builder
	for _, fl := range files {
		h := base64.RawURLEncoding.EncodeToString(sha256Sum([]byte(fl.body)))
		fmt.Fprintf(&record, "%s,sha256=%s,%d\n", fl.name, h, len(fl.body))
	}
	record.WriteString(di + "RECORD,,\n")
	files = append(files, file{di + "RECORD", record.String()})
	return zipBytes(files, v.time)
}
