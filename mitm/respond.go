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
// PROTOCOLS.md): npm and Composer print a JSON "error"; pip, gem and mvn print
// only the HTTP/1.1 reason phrase; go, cargo and pod print the body; Bundler
// hides 403 behind an auth error but shows a 451 body. Never 404: clients
// would fall back to other sources.
func (p *Pipeline) deny(w http.ResponseWriter, r *http.Request, rt *routed, d rules.Decision) {
	rt.record(d)
	msg := denyMessage(rt, d)
	h := w.Header()
	h.Set(HeaderDecision, "deny")
	h.Set("Cache-Control", "no-store")
	status := http.StatusForbidden
	switch rt.req.Ecosystem {
	case classifiers.NPM:
		writeJSON(w, status, map[string]string{"error": msg})
	case classifiers.Composer:
		writeJSON(w, status, map[string]string{"error": msg, "status": "error", "message": msg})
	case classifiers.RubyGems:
		if strings.Contains(strings.ToLower(r.UserAgent()), "bundler") {
			writeError(w, http.StatusUnavailableForLegalReasons, msg)
			return
		}
		writeWithReason(w, r, status, msg)
	case classifiers.PyPI, classifiers.Maven:
		writeWithReason(w, r, status, msg)
	default: // go, cargo, cocoapods and anything else read the body
		writeError(w, status, msg)
	}
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
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Del("Content-Length")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// writeWithReason sends status with msg as the reason phrase. net/http
// always writes the standard phrase, so on HTTP/1.x the connection is
// hijacked and the response written by hand (then closed). On HTTP/2 there
// is no reason phrase: the message goes in the body.
func writeWithReason(w http.ResponseWriter, r *http.Request, status int, msg string) {
	if r.ProtoMajor != 1 {
		writeError(w, status, msg)
		return
	}
	rc := http.NewResponseController(w)
	conn, buf, err := rc.Hijack()
	if err != nil {
		writeError(w, status, msg)
		return
	}
	defer conn.Close()
	body := msg + "\n"
	var hb strings.Builder
	fmt.Fprintf(&hb, "HTTP/1.1 %d %s\r\n", status, reasonPhrase(msg))
	hdr := w.Header().Clone()
	hdr.Set("Content-Type", "text/plain; charset=utf-8")
	hdr.Set("Content-Length", fmt.Sprint(len(body)))
	hdr.Set("Connection", "close")
	hdr.Write(&hb)
	hb.WriteString("\r\n")
	if r.Method != http.MethodHead {
		hb.WriteString(body)
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
