package rules

import (
	"strings"

	"github.com/cafilprox/cafilprox/classifiers"
)

// Normalize returns the form of a package name used for rule matching in
// ecosystem eco, which is classifiers.Normalize. Both rule patterns and
// requested names go through it, so a rule written as "Flask_Login" matches
// a request for "flask-login".
func Normalize(eco, name string) string { return classifiers.Normalize(eco, name) }

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
