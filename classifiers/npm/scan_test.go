package npm

import (
	"encoding/json"
	"strings"
	"testing"
)

var validCases = []string{
	``, ` `, `{}`, `[]`, `{"a":1}`, `{"a":1,}`, `[1,]`, `[1 2]`, `{"a" 1}`, `{a:1}`, `"x"`, `"x`, `"\u00e9"`, `"\u00g9"`,
	`"\q"`, "\"a\tb\"", "\"a\x7fb\"", "\"\xff\"", `-`, `-0`, `01`, `1.`, `1.5e`, `1.5e+3`, `-0.0E-0`, `tru`, `true`,
	`nul`, `null `, ` false`, `{"a":[true,false,null,{"b":"c"}]}`, `{"a":1}}`, `[[[]]]`, `[[[]]`, `{"a":"b"`, `1 2`,
	strings.Repeat("[", 10001) + strings.Repeat("]", 10001), strings.Repeat("[", 9999) + strings.Repeat("]", 9999),
}

func TestValidJSON(t *testing.T) {
	for _, s := range validCases {
		if got, want := validJSON([]byte(s)), json.Valid([]byte(s)); got != want {
			t.Errorf("%.40q: got %v, want %v (json.Valid)", s, got, want)
		}
	}
}

// FuzzValid checks validJSON against json.Valid.
func FuzzValid(f *testing.F) {
	for _, s := range validCases {
		f.Add([]byte(s))
	}
	f.Add(readFile(f, "synthetic-abbreviated.json"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := validJSON(b), json.Valid(b); got != want {
			t.Errorf("%q: got %v, want %v (json.Valid)", b, got, want)
		}
	})
}
