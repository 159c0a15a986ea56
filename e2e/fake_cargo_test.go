//go:build e2e

package e2e

import (
	"fmt"
	"strings"
)

// cargoIndexPath is the sparse-index path of a crate name (lower-cased).
func cargoIndexPath(name string) string {
	n := strings.ToLower(name)
	switch len(n) {
	case 1:
		return "/1/" + n
	case 2:
		return "/2/" + n
	case 3:
		return "/3/" + n[:1] + "/" + n
	}
	return "/" + n[:2] + "/" + n[2:4] + "/" + n
}

// newFakeCargo serves the sparse index (config.json and index files with
// pubtime) on index.crates.io and .crate files on static.crates.io.
func newFakeCargo(ca *testCA) *fakeRegistry {
	f := newFakeRegistry("cargo", ca, "index.crates.io", "static.crates.io", "crates.io")
	f.add("/config.json", "application/json", []byte(`{"dl":"https://static.crates.io/crates","api":"https://crates.io"}`))
	for name, versions := range map[string][]fakeVersion{"e2e-left": leftVersions, "evil-pkg": evilVersions} {
		var lines []string
		for _, v := range versions {
			root := fmt.Sprintf("%s-%s/", name, v.version)
			crate := tarGz([]file{
				{root + "Cargo.toml", fmt.Sprintf("[package]\nedition = \"2021\"\nname = %q\nversion = %q\ndescription = \"cafilprox e2e fake\"\nlicense = \"MIT\"\n\n[lib]\npath = \"src/lib.rs\"\n", name, v.version)},
				{root + "Cargo.toml.orig", fmt.Sprintf("[package]\nname = %q\nversion = %q\nedition = \"2021\"\n", name, v.version)},
				{root + "src/lib.rs", fmt.Sprintf("//! cafilprox e2e fake.\npub const VERSION: &str = %q;\n", v.version)},
			}, v.time)
			f.addArtifact(fmt.Sprintf("/crates/%s/%s/download", name, v.version), "application/gzip", crate, v.time)
			f.addArtifact(fmt.Sprintf("/api/v1/crates/%s/%s/download", name, v.version), "application/gzip", crate, v.time)
			f.facts[name+"@"+v.version+":cksum"] = sha256Hex(crate)
			lines = append(lines, string(mustJSON(map[string]any{
				"name": name, "vers": v.version, "deps": []any{}, "cksum": sha256Hex(crate),
				"features": map[string]any{}, "yanked": false, "links": nil, "v": 2,
				"pubtime": v.time.UTC().Format("2006-01-02T15:04:05Z"),
			})))
		}
		f.add(cargoIndexPath(name), "text/plain", []byte(strings.Join(lines, "\n")+"\n"))
	}
	return f
}
