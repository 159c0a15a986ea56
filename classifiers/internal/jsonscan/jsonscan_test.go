package jsonscan

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var validCases = []string{
	``, ` `, `{}`, `[]`, `{"a":1}`, `{"a":1,}`, `[1,]`, `[1 2]`, `{"a" 1}`, `{a:1}`, `"x"`, `"x`, `"\u00e9"`, `"\u00g9"`,
	`"\q"`, "\"a\tb\"", "\"a\x7fb\"", "\"\xff\"", `-`, `-0`, `01`, `1.`, `1.5e`, `1.5e+3`, `-0.0E-0`, `tru`, `true`,
	`nul`, `null `, ` false`, `{"a":[true,false,null,{"b":"c"}]}`, `{"a":1}}`, `[[[]]]`, `[[[]]`, `{"a":"b"`, `1 2`,
	strings.Repeat("[", 10001) + strings.Repeat("]", 10001), strings.Repeat("[", 9999) + strings.Repeat("]", 9999),
}

func TestValid(t *testing.T) {
	for _, s := range validCases {
		if got, want := Valid([]byte(s)), json.Valid([]byte(s)); got != want {
			t.Errorf("%.40q: got %v, want %v (json.Valid)", s, got, want)
		}
	}
}

// FuzzValid checks Valid against json.Valid.
func FuzzValid(f *testing.F) {
	for _, s := range validCases {
		f.Add([]byte(s))
	}
	b, err := os.ReadFile(filepath.Join("testdata", "synthetic-abbreviated.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := Valid(b), json.Valid(b); got != want {
			t.Errorf("%q: got %v, want %v (json.Valid)", b, got, want)
		}
	})
}

func TestObjectMembers(t *testing.T) {
	tests := []struct {
		in     string
		start  int
		want   map[string]string // key → raw value
		wantOK bool
	}{
		{`{}`, 0, map[string]string{}, true},
		{` { "a" : 1 , "b\"c":[1,{"x":"]"}] ,"d":"q\\"}`, 0, map[string]string{"a": "1", `b"c`: `[1,{"x":"]"}]`, "d": `"q\\"`}, true},
		{`{"\u0061":true}`, 0, map[string]string{"a": "true"}, true},
		{`[1]`, 0, nil, false},
		{`{"o":{"p":null}}`, 5, map[string]string{"p": "null"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			b := []byte(tt.in)
			ms, ok := ObjectMembers(b, tt.start)
			if ok != tt.wantOK {
				t.Fatalf("got ok %v, want %v", ok, tt.wantOK)
			}
			if !ok {
				return
			}
			got := map[string]string{}
			for _, m := range ms {
				got[m.Key(b)] = string(b[m.ValStart:m.ValEnd])
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestArrayElements(t *testing.T) {
	tests := []struct {
		in     string
		want   []string
		wantOK bool
	}{
		{`[]`, nil, true},
		{` [ 1 , "a,]" ,{"k":[2]}, null ]`, []string{"1", `"a,]"`, `{"k":[2]}`, "null"}, true},
		{`{"a":1}`, nil, false},
		{``, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			b := []byte(tt.in)
			spans, ok := ArrayElements(b, 0)
			if ok != tt.wantOK {
				t.Fatalf("got ok %v, want %v", ok, tt.wantOK)
			}
			var got []string
			for _, s := range spans {
				got = append(got, string(b[s[0]:s[1]]))
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
