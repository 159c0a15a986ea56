package cache

import (
	"crypto/sha256"
	"encoding/hex"
)

// Key returns the cache key of one representation of one URL:
//
//	<eco>/<pkg>/<version>/<hash of variant and url>
//
// Each component is escaped (so "@scope/name" stays one segment and nothing
// can traverse), an empty component becomes "_", and the variant and URL are
// hashed so that npm abbreviated vs full, or PyPI HTML vs JSON, never share
// an entry. Grouping by ecosystem, package and version makes PurgePrefix
// work. Keys are stable across releases: changing this format orphans
// existing entries (they age out through LRU).
func Key(eco, pkg, version, variant, url string) string {
	h := sha256.New()
	h.Write([]byte(variant))
	h.Write([]byte{0})
	h.Write([]byte(url))
	sum := h.Sum(nil)
	return keyComponent(eco) + "/" + keyComponent(pkg) + "/" + keyComponent(version) + "/" +
		hex.EncodeToString(sum[:20])
}

// PurgePrefix returns the key prefix that Purge takes to drop an ecosystem
// (pkg and version empty), a package with all its versions and metadata
// (version empty), or one version. All empty purges everything.
func PurgePrefix(eco, pkg, version string) string {
	switch {
	case eco == "":
		return ""
	case pkg == "":
		return keyComponent(eco) + "/"
	case version == "":
		return keyComponent(eco) + "/" + keyComponent(pkg) + "/"
	}
	return keyComponent(eco) + "/" + keyComponent(pkg) + "/" + keyComponent(version) + "/"
}

// keyComponent escapes one component injectively: "" is "_", so a literal
// "_" is escaped.
func keyComponent(s string) string {
	switch s {
	case "":
		return "_"
	case "_":
		return "%5F"
	}
	// Keep keys bounded: very long names are hashed (still injective with
	// overwhelming probability, and '#' never appears in escaped text).
	e := EscapeSegment(s)
	if len(e) > 80 {
		sum := sha256.Sum256([]byte(s))
		e = e[:40] + "#" + hex.EncodeToString(sum[:16])
	}
	return e
}
