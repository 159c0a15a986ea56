package npm

import (
	"bytes"
	"encoding/json"
)

// The filter works on raw bytes: a packument can be tens of megabytes, and
// decoding every version into maps would cost several times its size. These
// helpers walk JSON that json.Valid has already accepted, so they only need to
// find value boundaries, not to validate.

// member is one "key": value pair of an object, as spans of the input.
type member struct {
	keyStart, keyEnd int // the key including its quotes
	valStart, valEnd int
}

// key returns the decoded key of m.
func (m member) key(b []byte) string {
	raw := b[m.keyStart:m.keyEnd]
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1])
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return string(raw[1 : len(raw)-1])
	}
	return s
}

func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipString returns the index just after the string whose opening quote is at i.
func skipString(b []byte, i int) int {
	i++
	for {
		j := bytes.IndexByte(b[i:], '"')
		if j < 0 {
			return len(b)
		}
		i += j
		// An odd run of backslashes before the quote escapes it.
		n := 0
		for k := i - 1; k >= 0 && b[k] == '\\'; k-- {
			n++
		}
		i++
		if n%2 == 0 {
			return i
		}
	}
}

// skipValue returns the index just after the value starting at i.
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	default:
		for i < len(b) {
			switch b[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return i
			}
			i++
		}
		return i
	}
}

// objectMembers lists the members of the object whose '{' is at b[start].
// ok is false when the value there is not an object.
func objectMembers(b []byte, start int) (ms []member, ok bool) {
	i := skipSpace(b, start)
	if i >= len(b) || b[i] != '{' {
		return nil, false
	}
	i = skipSpace(b, i+1)
	for i < len(b) && b[i] != '}' {
		var m member
		m.keyStart = i
		i = skipString(b, i)
		m.keyEnd = i
		i = skipSpace(b, i)
		i = skipSpace(b, i+1) // ':'
		m.valStart = i
		i = skipValue(b, i)
		m.valEnd = i
		ms = append(ms, m)
		i = skipSpace(b, i)
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
		}
	}
	return ms, true
}

// strSafe marks the bytes that may appear unescaped inside a JSON string
// without ending it.
var strSafe = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// maxDepth matches encoding/json's nesting limit.
const maxDepth = 10000

// validJSON reports whether b is one valid JSON value, with the same
// verdict as json.Valid. It exists because json.Valid's byte-wise state
// machine was over half of the time of filtering a large packument.
func validJSON(b []byte) bool {
	v := validator{b: b}
	v.ws()
	if !v.value() {
		return false
	}
	v.ws()
	return v.i == len(b)
}

type validator struct {
	b     []byte
	i     int
	depth int
}

func (v *validator) ws() {
	for v.i < len(v.b) {
		switch v.b[v.i] {
		case ' ', '\t', '\n', '\r':
			v.i++
		default:
			return
		}
	}
}

func (v *validator) value() bool {
	if v.i >= len(v.b) {
		return false
	}
	switch c := v.b[v.i]; {
	case c == '"':
		return v.str()
	case c == '{' || c == '[':
		return v.container(c)
	case c == 't':
		return v.lit("true")
	case c == 'f':
		return v.lit("false")
	case c == 'n':
		return v.lit("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return v.num()
	}
	return false
}

func (v *validator) container(open byte) bool {
	closer := byte('}')
	if open == '[' {
		closer = ']'
	}
	if v.depth++; v.depth > maxDepth {
		return false
	}
	v.i++
	v.ws()
	if v.i < len(v.b) && v.b[v.i] == closer {
		v.i++
		v.depth--
		return true
	}
	for {
		v.ws()
		if open == '{' {
			if v.i >= len(v.b) || v.b[v.i] != '"' || !v.str() {
				return false
			}
			v.ws()
			if v.i >= len(v.b) || v.b[v.i] != ':' {
				return false
			}
			v.i++
			v.ws()
		}
		if !v.value() {
			return false
		}
		v.ws()
		if v.i >= len(v.b) {
			return false
		}
		switch v.b[v.i] {
		case ',':
			v.i++
		case closer:
			v.i++
			v.depth--
			return true
		default:
			return false
		}
	}
}

func (v *validator) str() bool {
	b, i := v.b, v.i+1
	for i < len(b) {
		for i < len(b) && strSafe[b[i]] {
			i++
		}
		if i >= len(b) {
			return false
		}
		switch b[i] {
		case '"':
			v.i = i + 1
			return true
		case '\\':
			if i+1 >= len(b) {
				return false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) {
					return false
				}
				for _, h := range b[i+2 : i+6] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return false
					}
				}
				i += 6
			default:
				return false
			}
		default: // a control character
			return false
		}
	}
	return false
}

func (v *validator) lit(s string) bool {
	if !bytes.HasPrefix(v.b[v.i:], []byte(s)) {
		return false
	}
	v.i += len(s)
	return true
}

func (v *validator) num() bool {
	b, i := v.b, v.i
	if b[i] == '-' {
		i++
	}
	digits := func() int {
		s := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i - s
	}
	if i < len(b) && b[i] == '0' {
		i++
	} else if digits() == 0 {
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	v.i = i
	return true
}
