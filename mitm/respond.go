package mitm

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/cafilprox/cafilprox/classifiers"
	"github.com/cafilprox/cafilprox/rules"
)

// deny refuses a request in the form its client shows best (see the table in
// PROTOCOLS.md, checked against the real clients in e2e/): npm and Composer
// print a JSON "error"; pip, gem, mvn, pnpm and Composer print the HTTP/1.1
// reason phrase; go, cargo and pod print the body; Bundler hides 403 behind
// an auth error but shows a 451, and Composer shows "could not authenticate"
// for a 403 on a GitHub dist. So every refusal carries the message as the
// reason phrase (HTTP/1.1) and in the body. Never 404: clients would fall
// back to other sources.
func (p *Pipeline) deny(w http.ResponseWriter, r *http.Request, rt *routed, d rules.Decision) {
	rt.record(d)
	msg := denyMessage(rt, d)
	h := w.Header()
	h.Set(HeaderDecision, "deny")
	h.Set("Cache-Control", "no-store")
	status := http.StatusForbidden
	contentType := "text/plain; charset=utf-8"
	body := []byte(msg + "\n")
	switch rt.req.Ecosystem {
	case classifiers.NPM:
		contentType, body = "application/json", jsonBody(map[string]string{"error": msg})
	case classifiers.Composer:
		contentType, body = "application/json", jsonBody(map[string]string{"error": msg, "status": "error", "message": msg})
		if rt.req.Kind == classifiers.KindArtifact {
			status = http.StatusUnavailableForLegalReasons
		}
	case classifiers.RubyGems:
		if strings.Contains(strings.ToLower(r.UserAgent()), "bundler") {
			status = http.StatusUnavailableForLegalReasons
		}
	}
	writeWithReason(w, r, status, reasonPhrase(msg), contentType, body)
}

func jsonBody(v any) []byte {
	b, _ := json.Marshal(v)
	return append(b, '\n')
}

// denyMessage names package, version, rule, reason and a suggestion.
func denyMessage(rt *routed, d rules.Decision) string {
	var b strings.Builder
	b.WriteString("cafilprox blocked ")
	b.WriteString(rt.req.Ecosystem + " package " + pkgAt(rt.req.Package, rt.req.Version))
	if d.Rule != "" {
		b.WriteString(" (rule " + d.Rule + ")")
	}
	if d.Reason != "" {
		b.WriteString(": " + d.Reason)
	}
	if d.Suggest != "" && d.Suggest != rt.req.Version {
		b.WriteString("; newest allowed version: " + d.Suggest)
	}
	return b.String()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Del("Content-Length")
	w.WriteHeader(status)
	w.Write(jsonBody(v))
}

// writeWithReason sends status with a custom reason phrase. net/http
// always writes the standard phrase, so on HTTP/1.x the connection is
// hijacked and the response written by hand (then closed). HTTP/2 has no
// reason phrase: the body carries the message.
func writeWithReason(w http.ResponseWriter, r *http.Request, status int, reason, contentType string, body []byte) {
	plain := func() {
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.WriteHeader(status)
		if r.Method != http.MethodHead {
			w.Write(body)
		}
	}
	if r.ProtoMajor != 1 {
		plain()
		return
	}
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		plain()
		return
	}
	defer conn.Close()
	var hb strings.Builder
	fmt.Fprintf(&hb, "HTTP/1.1 %d %s\r\n", status, reason)
	hdr := w.Header().Clone()
	hdr.Set("Content-Type", contentType)
	hdr.Set("Content-Length", fmt.Sprint(len(body)))
	hdr.Set("Connection", "close")
	hdr.Write(&hb)
	hb.WriteString("\r\n")
	if r.Method != http.MethodHead {
		hb.Write(body)
	}
	buf.WriteString(hb.String())
	buf.Flush()
	if cw, ok := w.(*countingWriter); ok {
		cw.status, cw.wrote, cw.n = status, true, int64(len(body))
	}
}

// reasonPhrase makes msg safe for a status line: printable ASCII only.
func reasonPhrase(msg string) string {
	var b strings.Builder
	for _, r := range msg {
		switch {
		case r == '\t':
			b.WriteByte(' ')
		case r >= 0x20 && r < 0x7f:
			b.WriteRune(r)
		}
		if b.Len() >= 400 {
			break
		}
	}
	return b.String()
}

func isCertError(err error) bool {
	var verr *tls.CertificateVerificationError
	return errors.As(err, &verr)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
