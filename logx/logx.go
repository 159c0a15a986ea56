// Package logx builds Cafilprox's structured loggers (log/slog) and scrubs
// secrets from what gets logged: URLs lose their user info and token-like
// query parameters, headers lose credentials, and attributes whose key
// names a secret are replaced before any handler writes them.
package logx

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
)

// Redacted replaces every secret value.
const Redacted = "REDACTED"

// NewLogger returns a logger writing text (for terminals) or JSON lines to w
// at the given minimum level (nil means Info). Attributes whose key names a
// secret (see SecretKey) are redacted whatever the caller passes.
func NewLogger(format string, w io.Writer, level slog.Leveler) (*slog.Logger, error) {
	if level == nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: replaceAttr}
	switch format {
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("logx: unknown log format %q (want text or json)", format)
}

// ParseLevel parses debug, info, warn or error (any case).
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("logx: unknown log level %q (want debug, info, warn or error)", s)
	}
	return l, nil
}

func replaceAttr(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindGroup {
		return a
	}
	if SecretKey(a.Key) {
		return slog.String(a.Key, Redacted)
	}
	return a
}

// secretWords are substrings of attribute keys and query parameter names
// that name credentials.
var secretWords = []string{"password", "passwd", "secret", "token", "authorization", "cookie", "private_key", "privatekey", "credential", "signature", "api_key", "apikey"}

// SecretKey reports whether an attribute key names a secret.
func SecretKey(key string) bool {
	k := strings.ToLower(key)
	for _, w := range secretWords {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

// secretParams are query parameter names (lower-case) that carry
// credentials even though the name is generic.
var secretParams = map[string]bool{
	"token": true, "access_token": true, "auth": true, "key": true, "signature": true,
	"sig": true, "password": true, "secret": true, "client_secret": true, "code": true,
}

func secretParam(name string) bool {
	n := strings.ToLower(name)
	return secretParams[n] || strings.HasPrefix(n, "x-amz-") || strings.HasPrefix(n, "x-goog-") || SecretKey(n)
}

// RedactURL returns u without user info and with the values of token-like
// query parameters (token, access_token, auth, key, signature, X-Amz-*,
// X-Goog-*, anything naming a password or secret) replaced by REDACTED.
// A string that does not parse as a URL is returned as "REDACTED-URL"
// rather than risk logging a secret verbatim.
func RedactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return Redacted + "-URL"
	}
	if p.User != nil {
		p.User = nil
	}
	if p.RawQuery != "" {
		q, err := url.ParseQuery(p.RawQuery)
		if err != nil {
			p.RawQuery = Redacted
		} else {
			changed := false
			for k, vs := range q {
				if secretParam(k) {
					for i := range vs {
						vs[i] = Redacted
					}
					changed = true
				}
			}
			if changed {
				p.RawQuery = q.Encode()
			}
		}
	}
	return p.String()
}

// sensitiveHeaders are dropped by RedactHeaders.
var sensitiveHeaders = []string{"Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie", "X-Api-Key", "X-Auth-Token", "Private-Token", "X-Npm-Otp"}

// RedactHeaders returns a copy of h without credential headers, for logging.
func RedactHeaders(h http.Header) http.Header {
	out := h.Clone()
	if out == nil {
		return http.Header{}
	}
	for _, k := range sensitiveHeaders {
		out.Del(k)
	}
	return out
}
