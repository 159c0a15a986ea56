//go:build e2e

package e2e

import "testing"

func TestParseEnv(t *testing.T) {
	tests := []struct {
		name, in, key, want string
		wantErr             bool
	}{
		{"single quoted", "export HTTPS_PROXY='http://127.0.0.1:8080'\n", "HTTPS_PROXY", "http://127.0.0.1:8080", false},
		{"escaped single quote", "export HTTPS_PROXY=x\nexport A='it'\\''s'\n", "A", "it's", false},
		{"double quoted", "export HTTPS_PROXY=x\nexport B=\"a \\\"b\\\" \\$c\"\n", "B", `a "b" $c`, false},
		{"bare with spaces in options", "export HTTPS_PROXY=x\nexport J='-Da=b -Dc=d|e'\n", "J", "-Da=b -Dc=d|e", false},
		{"comments and blank lines ignored", "# hi\n\nexport HTTPS_PROXY=http://p\n", "HTTPS_PROXY", "http://p", false},
		{"unterminated quote", "export HTTPS_PROXY='http://p\n", "", "", true},
		{"no proxy at all", "export A=b\n", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := parseEnv(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseEnv error = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && env[tt.key] != tt.want {
				t.Errorf("got %s=%q, want %q", tt.key, env[tt.key], tt.want)
			}
		})
	}
}

func FuzzShellUnquote(f *testing.F) {
	for _, s := range []string{"'a'", `"a\"b"`, `a\ b`, `'it'\''s'`, `"unterminated`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out, err := shellUnquote(s)
		if err == nil && len(out) > len(s) {
			t.Errorf("unquoting %q grew it to %q", s, out)
		}
	})
}
