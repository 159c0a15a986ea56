package feed

import (
	"strings"

	"deps.dev/util/semver"
)

// Ecosystem names as cafilprox uses them (see classifiers). They are spelled
// out here rather than imported so that this leaf package stays standalone.
const (
	ecoNPM       = "npm"
	ecoPyPI      = "pypi"
	ecoGo        = "go"
	ecoCargo     = "cargo"
	ecoRubyGems  = "rubygems"
	ecoMaven     = "maven"
	ecoComposer  = "composer"
	ecoCocoaPods = "cocoapods"
)

// osvEcosystems maps OSV ecosystem strings to cafilprox names. OSV allows a
// ":suffix" (for example "Maven:https://repo.example"), stripped before lookup.
var osvEcosystems = map[string]string{
	"npm":       ecoNPM,
	"PyPI":      ecoPyPI,
	"Go":        ecoGo,
	"crates.io": ecoCargo,
	"RubyGems":  ecoRubyGems,
	"Maven":     ecoMaven,
	"Packagist": ecoComposer,
	"CocoaPods": ecoCocoaPods,
}

// ecosystemOf returns the cafilprox name of an OSV ecosystem string, or "".
func ecosystemOf(osv string) string {
	if i := strings.IndexByte(osv, ':'); i >= 0 {
		osv = osv[:i]
	}
	return osvEcosystems[osv]
}

// systemOf returns the deps.dev semver system used to compare versions of
// an ecosystem. CocoaPods has no system of its own; its versions are plain
// dotted numbers, which DefaultSystem orders correctly.
func systemOf(eco string) semver.System {
	switch eco {
	case ecoNPM:
		return semver.NPM
	case ecoPyPI:
		return semver.PyPI
	case ecoGo:
		return semver.Go
	case ecoCargo:
		return semver.Cargo
	case ecoRubyGems:
		return semver.RubyGems
	case ecoMaven:
		return semver.Maven
	case ecoComposer:
		return semver.Composer
	default:
		return semver.DefaultSystem
	}
}

// normalizeName returns the form of a package name used as the index key.
// It is the same form as rules.Normalize (kept in step by hand because rules
// imports this package): PyPI PEP 503; Cargo lower-case with "_" read as "-"
// (crates.io treats them as one crate); Composer, RubyGems and CocoaPods
// lower-case; npm, Go and Maven ("group:artifact") exact. It does not
// allocate when the name is already normalised, which is the common case on
// the request path.
func normalizeName(eco, name string) string {
	switch eco {
	case ecoPyPI:
		if isPEP503(name) {
			return name
		}
		return pep503(name)
	case ecoCargo:
		if isLowerNoUnderscore(name) {
			return name
		}
		return strings.ReplaceAll(strings.ToLower(name), "_", "-")
	case ecoComposer, ecoRubyGems, ecoCocoaPods:
		if isLower(name) {
			return name
		}
		return strings.ToLower(name)
	default:
		return name
	}
}

func isSep(c byte) bool { return c == '-' || c == '_' || c == '.' }

func isPEP503(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 0x80 || c == '_' || c == '.' {
			return false
		}
		if c == '-' && i > 0 && s[i-1] == '-' {
			return false
		}
	}
	return true
}

func pep503(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		if isSep(s[i]) {
			for i < len(s) && isSep(s[i]) {
				i++
			}
			b.WriteByte('-')
			continue
		}
		b.WriteByte(s[i])
		i++
	}
	return strings.ToLower(b.String())
}

func isLower(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' || c >= 0x80 {
			return false
		}
	}
	return true
}

func isLowerNoUnderscore(s string) bool {
	return isLower(s) && strings.IndexByte(s, '_') < 0
}

// normalizeVersion puts a version string in the form the ecosystem's semver
// system parses: Go versions need their "v" (OSV Go ranges omit it), npm
// tolerates a leading "=" or "v" that registries never serve.
func normalizeVersion(eco, v string) string {
	switch eco {
	case ecoGo:
		if v != "" && v[0] != 'v' {
			return "v" + v
		}
	case ecoNPM:
		v = strings.TrimLeft(v, "=v")
	}
	return v
}
