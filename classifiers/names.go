package classifiers

import "strings"

// Normalize returns the identity form of a package name in ecosystem eco,
// the form under which the registry treats two spellings as one package:
// PyPI names follow PEP 503 (lower-case, runs of "-", "_" and "." collapsed
// to "-"); Cargo names are lower-cased with "_" read as "-" (crates.io
// treats them as the same crate); Composer, RubyGems and CocoaPods names are
// lower-cased. npm, Go and Maven ("group:artifact") names are case-sensitive
// and kept as they are, as are names of unknown ecosystems. It does not
// allocate when the name is already in that form, the common case on the
// request path.
func Normalize(eco, name string) string {
	switch eco {
	case PyPI:
		if isPEP503(name) {
			return name
		}
		return pep503(name)
	case Cargo:
		if isLower(name) && strings.IndexByte(name, '_') < 0 {
			return name
		}
		return strings.ReplaceAll(strings.ToLower(name), "_", "-")
	case Composer, RubyGems, CocoaPods:
		if isLower(name) {
			return name
		}
		return strings.ToLower(name)
	default:
		return name
	}
}

func isNameSep(c byte) bool { return c == '-' || c == '_' || c == '.' }

// isPEP503 reports whether s is already PEP 503 normal. Non-ASCII bytes
// send s through pep503, whose Unicode lower-casing matches Python's.
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

// pep503 is re.sub(r"[-_.]+", "-", s).lower().
func pep503(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		if isNameSep(s[i]) {
			for i < len(s) && isNameSep(s[i]) {
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

// isLower reports whether s has no upper-case ASCII and no non-ASCII byte
// (which strings.ToLower might change).
func isLower(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' || c >= 0x80 {
			return false
		}
	}
	return true
}
