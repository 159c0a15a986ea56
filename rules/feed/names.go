package feed

import (
	"strings"

	"deps.dev/util/semver"

	"github.com/cafilprox/cafilprox/classifiers"
)

// osvEcosystems maps OSV ecosystem strings to cafilprox names. OSV allows a
// ":suffix" (for example "Maven:https://repo.example"), stripped before lookup.
var osvEcosystems = map[string]string{
	"npm":       classifiers.NPM,
	"PyPI":      classifiers.PyPI,
	"Go":        classifiers.Go,
	"crates.io": classifiers.Cargo,
	"RubyGems":  classifiers.RubyGems,
	"Maven":     classifiers.Maven,
	"Packagist": classifiers.Composer,
	"CocoaPods": classifiers.CocoaPods,
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
	case classifiers.NPM:
		return semver.NPM
	case classifiers.PyPI:
		return semver.PyPI
	case classifiers.Go:
		return semver.Go
	case classifiers.Cargo:
		return semver.Cargo
	case classifiers.RubyGems:
		return semver.RubyGems
	case classifiers.Maven:
		return semver.Maven
	case classifiers.Composer:
		return semver.Composer
	default:
		return semver.DefaultSystem
	}
}

// normalizeVersion puts a version string in the form the ecosystem's semver
// system parses: Go versions need their "v" (OSV Go ranges omit it), npm
// tolerates a leading "=" or "v" that registries never serve.
func normalizeVersion(eco, v string) string {
	switch eco {
	case classifiers.Go:
		if v != "" && v[0] != 'v' {
			return "v" + v
		}
	case classifiers.NPM:
		v = strings.TrimLeft(v, "=v")
	}
	return v
}
