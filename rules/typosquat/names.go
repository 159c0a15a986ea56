package typosquat

import (
	"strings"

	"github.com/cafilprox/cafilprox/classifiers"
)

// normalizeName is the ecosystem's identity form of a name:
// classifiers.Normalize (as rules.Normalize) with one difference: npm names
// are lower-cased too, because npm refuses new mixed-case names (so a case
// variant cannot be published by anyone) and the shipped list is
// lower-cased ("JSONStream" is listed as "jsonstream").
func normalizeName(eco, name string) string {
	if eco == classifiers.NPM {
		return toLower(name)
	}
	return classifiers.Normalize(eco, name)
}

// isLower reports whether s has no upper-case ASCII and no non-ASCII byte.
func isLower(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' || c >= 0x80 {
			return false
		}
	}
	return true
}

// toLower avoids strings.ToLower's allocation check for the common case.
func toLower(s string) string {
	if isLower(s) {
		return s
	}
	return strings.ToLower(s)
}

// cmpForm is the form edit distances are measured on: lower-case, so that
// case confusion in case-sensitive ecosystems (Go, Maven, legacy npm) counts.
func cmpForm(eco, norm string) string { return toLower(norm) }

// goBase cuts a Go module's major-version suffix ("/v2", gopkg.in ".v3"):
// a new major version of a popular module is the same project, not a
// look-alike. Other ecosystems' names are returned unchanged.
func goBase(eco, s string) string {
	if eco != classifiers.Go {
		return s
	}
	i := strings.LastIndexAny(s, "/.")
	if i < 0 || i+2 >= len(s) || s[i+1] != 'v' {
		return s
	}
	for _, c := range []byte(s[i+2:]) {
		if c < '0' || c > '9' {
			return s
		}
	}
	if s[i] == '.' && !strings.HasPrefix(s, "gopkg.in/") {
		return s
	}
	return s[:i]
}

// goParts splits a compare-form Go path on a forge host into host, owner
// and repository.
func goParts(c string) (host, owner, repo string, ok bool) {
	host, rest, _ := strings.Cut(c, "/")
	switch host {
	case "github.com", "gitlab.com", "bitbucket.org":
	default:
		return "", "", "", false
	}
	owner, rest, _ = strings.Cut(rest, "/")
	repo, _, _ = strings.Cut(rest, "/")
	if owner == "" || repo == "" {
		return "", "", "", false
	}
	return host, owner, repo, true
}

// namespace returns the part of a compare-form name that one owner controls
// (npm scope, Composer vendor, Maven group, Go host or forge owner), or ""
// when the ecosystem or name has none. Two names in one namespace were
// published by the same owner, so neither imitates the other.
func namespace(eco, c string) string {
	switch eco {
	case classifiers.NPM:
		if strings.HasPrefix(c, "@") {
			if i := strings.IndexByte(c, '/'); i > 0 {
				return c[:i]
			}
		}
	case classifiers.Composer:
		if i := strings.IndexByte(c, '/'); i > 0 {
			return c[:i]
		}
	case classifiers.Maven:
		if i := strings.IndexByte(c, ':'); i > 0 {
			return c[:i]
		}
	case classifiers.Go:
		if host, owner, _, ok := goParts(c); ok {
			return host + "/" + owner
		}
		host, _, _ := strings.Cut(c, "/")
		if host == "gopkg.in" {
			return "" // gopkg.in/x maps onto unrelated GitHub owners
		}
		return host
	}
	return ""
}

// skeleton folds what a reader does not see: case, separators (- _ . and
// the @ / : of scopes and coordinates) and look-alike characters (I l 1 |
// → l, 0 → o, rn → m, vv → w). Two names with one skeleton read the same.
func skeleton(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == 'I' || c == '1' || c == '|':
			c = 'l'
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		case c == '0':
			c = 'o'
		case c == '-' || c == '_' || c == '.' || c == '@' || c == '/' || c == ':':
			continue
		}
		n := len(b)
		switch {
		case c == 'n' && n > 0 && b[n-1] == 'r':
			b[n-1] = 'm'
		case c == 'v' && n > 0 && b[n-1] == 'v':
			b[n-1] = 'w'
		default:
			b = append(b, c)
		}
	}
	return string(b)
}
