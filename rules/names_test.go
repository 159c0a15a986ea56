package rules

import (
	"testing"
	"time"
)

func TestNormalize(t *testing.T) {
	tests := []struct{ eco, in, want string }{
		{"pypi", "Flask_Login", "flask-login"},
		{"pypi", "zope.interface", "zope-interface"},
		{"pypi", "a-_.b", "a-b"},
		{"pypi", "_private", "-private"},
		{"cargo", "Serde_JSON", "serde-json"},
		{"composer", "Symfony/Console", "symfony/console"},
		{"rubygems", "Rails", "rails"},
		{"npm", "JSONStream", "JSONStream"},
		{"go", "github.com/Azure/go-autorest", "github.com/Azure/go-autorest"},
		{"maven", "org.Apache:Commons", "org.Apache:Commons"},
	}
	for _, tt := range tests {
		t.Run(tt.eco+"/"+tt.in, func(t *testing.T) {
			if got := Normalize(tt.eco, tt.in); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestGlobMatch(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"@mycorp/*", "@mycorp/ui", true},
		{"@mycorp/*", "@mycorp/a/b", true},
		{"@mycorp/*", "@other/ui", false},
		{"github.com/mycorp/*", "github.com/mycorp/x/v2", true},
		{"pytest*", "pytest", true},
		{"pytest*", "pytest-cov", true},
		{"pytest*", "py-test", false},
		{"*-dev", "foo-dev", true},
		{"*-dev", "foo-devx", false},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"*a*b*", "xxaxxbxx", true},
		{"*a*b*", "xxbxxaxx", false},
		{"", "", true},
		{"*", "", true},
		{"*", "*0", true},
		{"a*", "a*b", true},
	}
	for _, tt := range tests {
		t.Run(tt.pattern+"~"+tt.name, func(t *testing.T) {
			if got := globMatch(tt.pattern, tt.name); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"10d", 240 * time.Hour, false},
		{"1w", 168 * time.Hour, false},
		{"1w2d", 216 * time.Hour, false},
		{"36h", 36 * time.Hour, false},
		{"1h30m", 90 * time.Minute, false},
		{"1d12h", 36 * time.Hour, false},
		{"1.5d", 36 * time.Hour, false},
		{"0s", 0, false},
		{"0", 0, false},
		{"", 0, true},
		{"10", 0, true},
		{"-1d", 0, true},
		{"10x", 0, true},
		{"d", 0, true},
		{"99999999999999999999d", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseDuration(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("got error %v, want error %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"10d", "1w2d", "1h30m", "1.5d", "0", "-1d", "9999999999w"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err == nil && d < 0 {
			t.Errorf("got negative %v for %q", d, s)
		}
	})
}

func FuzzNormalizeGlob(f *testing.F) {
	f.Add("pypi", "Flask_Login", "flask*")
	f.Add("npm", "@mycorp/ui", "@mycorp/*")
	f.Fuzz(func(t *testing.T, eco, name, pattern string) {
		n := Normalize(eco, name)
		if Normalize(eco, n) != n {
			t.Errorf("Normalize not idempotent for %q: %q then %q", name, n, Normalize(eco, n))
		}
		if !globMatch("*", n) || (!isGlob(n) && !globMatch(n, n)) {
			t.Errorf("glob identity failed for %q", n)
		}
		globMatch(pattern, n) // must terminate without panicking
	})
}

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{49 * time.Hour, "2d1h"},
		{48 * time.Hour, "2d"},
		{90 * time.Minute, "1h30m"},
		{5 * time.Minute, "5m"},
		{42 * time.Second, "42s"},
		{-time.Second, "0s"},
	}
	for _, tt := range tests {
		if got := formatDuration(tt.in); got != tt.want {
			t.Errorf("formatDuration(%v): got %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseExpires(t *testing.T) {
	got, err := parseExpires("2026-12-31")
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("got %v, want %v (the whole day counts)", got, want)
	}
	got, err = parseExpires("2026-12-31T18:00:00+02:00")
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 12, 31, 16, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if _, err := parseExpires("31/12/2026"); err == nil {
		t.Error("got no error for a non-RFC 3339 date, want one")
	}
}
