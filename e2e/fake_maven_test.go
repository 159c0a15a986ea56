//go:build e2e

package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// debianMavenRepo holds the Maven plugins `mvn dependency:resolve` needs
// (Debian package libmaven-dependency-plugin-java and its dependencies).
const debianMavenRepo = "/usr/share/maven-repo"

// mavenDependencyPlugin is the plugin version Debian ships.
func mavenDependencyPlugin() string {
	dir := filepath.Join(debianMavenRepo, "org/apache/maven/plugins/maven-dependency-plugin")
	entries, _ := os.ReadDir(dir)
	best := ""
	for _, e := range entries {
		if _, err := os.Stat(filepath.Join(dir, e.Name(), "maven-dependency-plugin-"+e.Name()+".jar")); err == nil && e.Name() > best {
			best = e.Name()
		}
	}
	return best
}

// newFakeMaven serves Maven Central's layout under /maven2: the test
// artifacts com.example.e2e:{e2e-left,evil-pkg} (jar, pom, maven-metadata.xml,
// checksum sidecars, Last-Modified as publish time), and everything else from
// Debian's /usr/share/maven-repo (with generated sidecars and metadata).
func newFakeMaven(ca *testCA) *fakeRegistry {
	f := newFakeRegistry("maven", ca, "repo.maven.apache.org", "repo1.maven.org")
	for name, versions := range map[string][]fakeVersion{"e2e-left": leftVersions, "evil-pkg": evilVersions} {
		base := "/maven2/com/example/e2e/" + name
		var vs []string
		for _, v := range versions {
			vs = append(vs, v.version)
			pom := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="http://maven.apache.org/POM/4.0.0 https://maven.apache.org/xsd/maven-4.0.0.xsd">
  <modelVersion>4.0.0</modelVersion>
  <groupId>com.example.e2e</groupId>
  <artifactId>%s</artifactId>
  <version>%s</version>
  <packaging>jar</packaging>
  <description>cafilprox e2e fake</description>
</project>
`, name, v.version)
			jar := zipBytes([]file{
				{"META-INF/MANIFEST.MF", "Manifest-Version: 1.0\r\nCreated-By: cafilprox e2e\r\n\r\n"},
				{"com/example/e2e/" + strings.ReplaceAll(name, "-", "_") + ".properties", "version=" + v.version + "\n"},
			}, v.time)
			stem := fmt.Sprintf("%s/%s/%s-%s", base, v.version, name, v.version)
			for ext, body := range map[string][]byte{".pom": []byte(pom), ".jar": jar} {
				f.addArtifact(stem+ext, "application/octet-stream", body, v.time)
				f.addArtifact(stem+ext+".sha1", "text/plain", []byte(sha1Hex(body)), v.time)
				f.addArtifact(stem+ext+".md5", "text/plain", []byte(md5Hex(body)), v.time)
			}
		}
		md := mavenMetadata("com.example.e2e", name, vs, versions[len(versions)-1].time)
		f.add(base+"/maven-metadata.xml", "text/xml", md)
		f.add(base+"/maven-metadata.xml.sha1", "text/plain", []byte(sha1Hex(md)))
		f.add(base+"/maven-metadata.xml.md5", "text/plain", []byte(md5Hex(md)))
	}
	f.fallback = serveDebianMaven
	return f
}

func mavenMetadata(group, artifact string, versions []string, updated time.Time) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<metadata>\n  <groupId>%s</groupId>\n  <artifactId>%s</artifactId>\n  <versioning>\n", group, artifact)
	last := versions[len(versions)-1]
	fmt.Fprintf(&b, "    <latest>%s</latest>\n    <release>%s</release>\n    <versions>\n", last, last)
	for _, v := range versions {
		fmt.Fprintf(&b, "      <version>%s</version>\n", v)
	}
	fmt.Fprintf(&b, "    </versions>\n    <lastUpdated>%s</lastUpdated>\n  </versioning>\n</metadata>\n", updated.UTC().Format("20060102150405"))
	return []byte(b.String())
}

// serveDebianMaven answers /maven2/<path> from Debian's Maven repository.
func serveDebianMaven(r *http.Request) (resource, bool) {
	p, ok := strings.CutPrefix(r.URL.Path, "/maven2/")
	if !ok || strings.Contains(p, "..") {
		return resource{}, false
	}
	algo := ""
	for _, a := range []string{".sha1", ".md5", ".sha256", ".sha512"} {
		if strings.HasSuffix(p, a) {
			algo, p = a, strings.TrimSuffix(p, a)
		}
	}
	var body []byte
	var mod time.Time
	full := filepath.Join(debianMavenRepo, filepath.FromSlash(p))
	if strings.HasSuffix(p, "/maven-metadata.xml") {
		dir := filepath.Dir(full)
		entries, err := os.ReadDir(dir)
		if err != nil {
			return resource{}, false
		}
		var vs []string
		for _, e := range entries {
			if e.IsDir() && e.Name() != "debian" {
				vs = append(vs, e.Name())
			}
		}
		if len(vs) == 0 {
			return resource{}, false
		}
		sort.Strings(vs)
		rel := strings.TrimSuffix(p, "/maven-metadata.xml")
		i := strings.LastIndex(rel, "/")
		body = mavenMetadata(strings.ReplaceAll(rel[:i], "/", "."), rel[i+1:], vs, oldTime)
		mod = oldTime
	} else {
		fi, err := os.Stat(full)
		if err != nil || fi.IsDir() {
			return resource{}, false
		}
		if body, err = os.ReadFile(full); err != nil {
			return resource{}, false
		}
		mod = fi.ModTime()
		if mod.After(oldTime) { // Debian's install time is not a publish time
			mod = oldTime
		}
	}
	switch algo {
	case ".sha1":
		body = []byte(sha1Hex(body))
	case ".md5":
		body = []byte(md5Hex(body))
	case ".sha256":
		body = []byte(sha256Hex(body))
	case ".sha512":
		return resource{}, false
	}
	return resource{contentType: "application/octet-stream", body: body, modified: mod, artifact: !strings.Contains(p, "maven-metadata")}, true
}
