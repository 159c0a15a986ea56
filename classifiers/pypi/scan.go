package pypi

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

// arrayElements lists the [start, end) spans of the elements of the array
// whose '[' is at b[start]. ok is false when the value there is not an array.
func arrayElements(b []byte, start int) (spans [][2]int, ok bool) {
	i := skipSpace(b, start)
	if i >= len(b) || b[i] != '[' {
		return nil, false
	}
	i = skipSpace(b, i+1)
	for i < len(b) && b[i] != ']' {
		s := i
		i = skipValue(b, i)
		spans = append(spans, [2]int{s, i})
		i = skipSpace(b, i)
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
		}
	}
	return spans, true
}
