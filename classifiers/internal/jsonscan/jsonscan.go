// Package jsonscan walks and validates JSON as raw bytes, for the
// classifiers that filter large metadata documents (npm packuments, PyPI
// JSON pages) without decoding every version into maps, which would cost
// several times the document's size.
package jsonscan

import (
	"bytes"
	"encoding/json"
)

// The walking helpers expect JSON that Valid (or json.Valid) has already
// accepted, so they only need to find value boundaries, not to validate.

// Member is one "key": value pair of an object, as spans of the input.
type Member struct {
	KeyStart, KeyEnd int // the key including its quotes
	ValStart, ValEnd int
}

// Key returns the decoded key of m.
func (m Member) Key(b []byte) string {
	raw := b[m.KeyStart:m.KeyEnd]
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1])
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return string(raw[1 : len(raw)-1])
	}
	return s
}

// SkipSpace returns the index of the first non-space byte at or after i.
func SkipSpace(b []byte, i int) int {
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

// SkipString returns the index just after the string whose opening quote is at i.
func SkipString(b []byte, i int) int {
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

// SkipValue returns the index just after the value starting at i.
func SkipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return SkipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = SkipString(b, i)
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

// ObjectMembers lists the members of the object whose '{' is at b[start].
// ok is false when the value there is not an object.
func ObjectMembers(b []byte, start int) (ms []Member, ok bool) {
	i := SkipSpace(b, start)
	if i >= len(b) || b[i] != '{' {
		return nil, false
	}
	i = SkipSpace(b, i+1)
	for i < len(b) && b[i] != '}' {
		var m Member
		m.KeyStart = i
		i = SkipString(b, i)
		m.KeyEnd = i
		i = SkipSpace(b, i)
		i = SkipSpace(b, i+1) // ':'
		m.ValStart = i
		i = SkipValue(b, i)
		m.ValEnd = i
		ms = append(ms, m)
		i = SkipSpace(b, i)
		if i < len(b) && b[i] == ',' {
			i = SkipSpace(b, i+1)
		}
	}
	return ms, true
}

// ArrayElements lists the [start, end) spans of the elements of the array
// whose '[' is at b[start]. ok is false when the value there is not an array.
func ArrayElements(b []byte, start int) (spans [][2]int, ok bool) {
	i := SkipSpace(b, start)
	if i >= len(b) || b[i] != '[' {
		return nil, false
	}
	i = SkipSpace(b, i+1)
	for i < len(b) && b[i] != ']' {
		s := i
		i = SkipValue(b, i)
		spans = append(spans, [2]int{s, i})
		i = SkipSpace(b, i)
		if i < len(b) && b[i] == ',' {
			i = SkipSpace(b, i+1)
		}
	}
	return spans, true
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

// Valid reports whether b is one valid JSON value, with the same
// verdict as json.Valid. It exists because json.Valid's byte-wise state
// machine was over half of the time of filtering a large packument.
func Valid(b []byte) bool {
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
