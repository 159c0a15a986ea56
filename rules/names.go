package rules

import (
	"strings"

	"github.com/cafilprox/cafilprox/classifiers"
)

// Normalize returns the form of a package name used for rule matching in
// ecosystem eco: PyPI names follow PEP 503 (lower-case, runs of "-", "_" and
// "." collapsed to "-"); Cargo names are lower-cased with "_" read as "-"
// (crates.io treats them as the same crate); Composer, RubyGems and CocoaPods
// names are lower-cased. npm, Go and Maven names are case-sensitive and kept
// as they are. Both rule patterns and requested names go through it, so a
// rule written as "Flask_Login" matches a request for "flask-login".
func Normalize(eco, name string) string {
	switch eco {
	case classifiers.PyPI:
		return pep503(name)
	case classifiers.Cargo:
		return strings.ReplaceAll(strings.ToLower(name), "_", "-")
	case classifiers.Composer, classifiers.RubyGems, classifiers.CocoaPods:
		return strings.ToLower(name)
	default:
		return name
	}
}

func pep503(name string) string {
	var b strings.Builder
	b.Grow(len(name))
	inSep := false
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c == '-' || c == '_' || c == '.' {
			if !inSep {
				b.WriteByte('-')
				inSep = true
			}
			continue
		}
		inSep = false
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
	return b.String()
}

// isGlob reports whether pattern uses glob syntax ("*" or "?").
func isGlob(pattern string) bool { return strings.ContainsAny(pattern, "*?") }

// globMatch matches name against pattern where "*" matches any run of
// characters (including "/", so "@mycorp/*" and "github.com/mycorp/*" work
// for nested names) and "?" matches exactly one byte. It runs in
// O(len(pattern)*len(name)) at worst, without recursion.
func globMatch(pattern, name string) bool {
	p, n := 0, 0
	star, mark := -1, 0
	for n < len(name) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, n
			p++
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == name[n]):
			p++
			n++
		case star >= 0:
			p = star + 1
			mark++
			n = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// knownEcosystem reports whether eco is one of classifiers.Ecosystems.
func knownEcosystem(eco string) bool {
	for _, e := range classifiers.Ecosystems {
		if e == eco {
			return true
		}
	}
	return false
}
