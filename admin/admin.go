// Package admin serves Cafilprox's admin listener: health and readiness
// probes, the CA certificate and Prometheus metrics without a token, and the
// admin API under /api/ behind a bearer token. It is documented in
// docs/admin-api.yaml (OpenAPI 3).
//
// Everything the API acts on is injected through Deps as plain functions,
// so this package knows nothing of the pipeline, the policy engine or the
// cache implementation.
//
// /metrics needs no token because Prometheus scrapers rarely carry one and
// metrics hold no package names or client identities (see package metrics);
// bind admin_listen to a private address. /ca.pem is public by nature.
package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cafilprox/cafilprox/audit"
	"github.com/cafilprox/cafilprox/classifiers"
)

// now is the clock for "since" windows; tests replace it.
var now = time.Now

// ErrInvalid marks errors caused by the caller's input. An Explain or Purge
// error wrapping it is answered 400; other errors are answered 500.
var ErrInvalid = errors.New("admin: invalid request")

// Check is one readiness check.
type Check struct {
	// Name says what is checked: "ca", "policy", "cache", "feed:ossf"...
	Name string `json:"name"`
	// OK is true when the check passes.
	OK bool `json:"ok"`
	// Message explains a failure (or gives detail on success).
	Message string `json:"message,omitempty"`
}

// Deps is what the admin API acts on. A nil function or field makes its
// endpoints answer 501 (503 for the audit endpoints), except Ready: nil
// means always ready.
type Deps struct {
	// Token is the bearer token for /api/; empty refuses every /api/ call
	// with 403 so that an unconfigured deployment is never open.
	Token string
	// CAPEM returns the root CA certificate in PEM.
	CAPEM func() []byte
	// Ready runs the readiness checks; /readyz is 200 only if all pass.
	Ready func() []Check
	// ReloadPolicy reloads the configuration's policy; its error text is
	// the diagnostics shown to the operator (file:line:column...).
	ReloadPolicy func() error
	// Explain says how the policy decides on a package version for a
	// client; the result is returned as JSON.
	Explain func(eco, name, version, client string) (any, error)
	// Purge removes cached objects of a package (all versions when version
	// is empty) and returns how many were removed.
	Purge func(ctx context.Context, eco, pkg, version string) (int, error)
	// CacheStats returns cache statistics, returned as JSON.
	CacheStats func() any
	// Audit answers the /api/audit/ endpoints.
	Audit *audit.Log
	// Metrics serves /metrics (metrics.Metrics.Handler).
	Metrics http.Handler
	// Logger receives one line per admin action; nil means slog.Default().
	Logger *slog.Logger
}

// maxBody bounds JSON request bodies.
const maxBody = 1 << 20

// Handler returns the admin listener's handler.
func Handler(d Deps) http.Handler {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	s := &server{d: d, token: sha256.Sum256([]byte(d.Token))}
	mux := http.NewServeMux()
	mux.Handle("/healthz", only("GET", s.healthz))
	mux.Handle("/readyz", only("GET", s.readyz))
	mux.Handle("/ca.pem", only("GET", s.caPEM))
	mux.Handle("/metrics", only("GET", s.metrics))
	mux.Handle("/api/policy/reload", s.auth(only("POST", s.reload)))
	mux.Handle("/api/policy/explain", s.auth(only("GET", s.explain)))
	mux.Handle("/api/cache/purge", s.auth(only("POST", s.purge)))
	mux.Handle("/api/cache/stats", s.auth(only("GET", s.cacheStats)))
	mux.Handle("/api/audit/who", s.auth(only("GET", s.who)))
	mux.Handle("/api/audit/blocks", s.auth(only("GET", s.blocks)))
	mux.Handle("/api/audit/export", s.auth(only("GET", s.export)))
	mux.Handle("/api/", s.auth(http.HandlerFunc(notFound)))
	mux.HandleFunc("/", notFound)
	return mux
}

type server struct {
	d     Deps
	token [sha256.Size]byte
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// errorBody is the shape of every error.
type errorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorBody{Error: msg})
}

func notFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path)
}

func only(method string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != method && !(method == "GET" && r.Method == "HEAD") {
			w.Header().Set("Allow", method)
			writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed, use "+method)
			return
		}
		h(w, r)
	})
}

// auth refuses requests without the right bearer token. Both sides are
// hashed first so that the comparison is constant-time whatever the
// lengths.
func (s *server) auth(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.d.Token == "" {
			writeError(w, http.StatusForbidden, "admin token not configured")
			return
		}
		got, ok := bearer(r.Header.Get("Authorization"))
		sum := sha256.Sum256([]byte(got))
		if !ok || subtle.ConstantTimeCompare(sum[:], s.token[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="cafilprox"`)
			msg := "missing bearer token"
			if ok {
				msg = "invalid bearer token"
			}
			writeError(w, http.StatusUnauthorized, msg)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func bearer(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

func (s *server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

type readyBody struct {
	Ready  bool    `json:"ready"`
	Checks []Check `json:"checks"`
}

func (s *server) readyz(w http.ResponseWriter, r *http.Request) {
	body := readyBody{Ready: true, Checks: []Check{}}
	if s.d.Ready != nil {
		if cs := s.d.Ready(); cs != nil {
			body.Checks = cs
		}
	}
	for _, c := range body.Checks {
		body.Ready = body.Ready && c.OK
	}
	status := http.StatusOK
	if !body.Ready {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, body)
}

func (s *server) caPEM(w http.ResponseWriter, r *http.Request) {
	var pem []byte
	if s.d.CAPEM != nil {
		pem = s.d.CAPEM()
	}
	if len(pem) == 0 {
		writeError(w, http.StatusServiceUnavailable, "CA certificate not loaded")
		return
	}
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Header().Set("Content-Disposition", `attachment; filename="cafilprox-ca.pem"`)
	w.Header().Set("Content-Length", strconv.Itoa(len(pem)))
	w.Write(pem)
}

func (s *server) metrics(w http.ResponseWriter, r *http.Request) {
	if s.d.Metrics == nil {
		writeError(w, http.StatusNotFound, "metrics disabled")
		return
	}
	s.d.Metrics.ServeHTTP(w, r)
}

func (s *server) reload(w http.ResponseWriter, r *http.Request) {
	if s.d.ReloadPolicy == nil {
		writeError(w, http.StatusNotImplemented, "policy reload not available")
		return
	}
	if err := s.d.ReloadPolicy(); err != nil {
		s.d.Logger.Warn("admin: policy reload failed", "remote", r.RemoteAddr, "err", err)
		writeError(w, http.StatusUnprocessableEntity, err.Error())
		return
	}
	s.d.Logger.Info("admin: policy reloaded", "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, map[string]string{"status": "reloaded"})
}

func checkEcosystem(eco string, required bool) error {
	if eco == "" {
		if required {
			return errors.New("ecosystem is required")
		}
		return nil
	}
	if !slices.Contains(classifiers.Ecosystems, eco) {
		return fmt.Errorf("unknown ecosystem %q (want one of %s)", eco, strings.Join(classifiers.Ecosystems, ", "))
	}
	return nil
}

// failure answers an error from a dependency.
func failure(w http.ResponseWriter, err error) {
	if errors.Is(err, ErrInvalid) {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeError(w, http.StatusInternalServerError, err.Error())
}

func (s *server) explain(w http.ResponseWriter, r *http.Request) {
	if s.d.Explain == nil {
		writeError(w, http.StatusNotImplemented, "policy explain not available")
		return
	}
	q := r.URL.Query()
	eco, name := q.Get("ecosystem"), q.Get("package")
	if err := checkEcosystem(eco, true); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if name == "" {
		writeError(w, http.StatusBadRequest, "package is required")
		return
	}
	res, err := s.d.Explain(eco, name, q.Get("version"), q.Get("client"))
	if err != nil {
		failure(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// PurgeRequest is the body of POST /api/cache/purge.
type PurgeRequest struct {
	Ecosystem string `json:"ecosystem"`
	Package   string `json:"package"`
	// Version empty purges every version of the package.
	Version string `json:"version,omitempty"`
}

func (s *server) purge(w http.ResponseWriter, r *http.Request) {
	if s.d.Purge == nil {
		writeError(w, http.StatusNotImplemented, "cache purge not available")
		return
	}
	var req PurgeRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid JSON body: "+err.Error())
		return
	}
	if err := checkEcosystem(req.Ecosystem, true); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if req.Package == "" {
		writeError(w, http.StatusBadRequest, "package is required")
		return
	}
	n, err := s.d.Purge(r.Context(), req.Ecosystem, req.Package, req.Version)
	if err != nil {
		failure(w, err)
		return
	}
	s.d.Logger.Info("admin: cache purged", "remote", r.RemoteAddr, "ecosystem", req.Ecosystem,
		"package", req.Package, "version", req.Version, "purged", n)
	writeJSON(w, http.StatusOK, map[string]int{"purged": n})
}

func (s *server) cacheStats(w http.ResponseWriter, r *http.Request) {
	if s.d.CacheStats == nil {
		writeError(w, http.StatusNotImplemented, "cache stats not available")
		return
	}
	writeJSON(w, http.StatusOK, s.d.CacheStats())
}

func (s *server) auditOrRefuse(w http.ResponseWriter) bool {
	if s.d.Audit == nil {
		writeError(w, http.StatusServiceUnavailable, "audit trail disabled")
		return false
	}
	return true
}

// WhoResponse is the body of GET /api/audit/who.
type WhoResponse struct {
	Ecosystem string      `json:"ecosystem,omitempty"`
	Package   string      `json:"package"`
	Version   string      `json:"version,omitempty"`
	Clients   []audit.Row `json:"clients"`
}

func (s *server) who(w http.ResponseWriter, r *http.Request) {
	if !s.auditOrRefuse(w) {
		return
	}
	q := r.URL.Query()
	res := WhoResponse{Ecosystem: q.Get("ecosystem"), Package: q.Get("package"), Version: q.Get("version")}
	if err := checkEcosystem(res.Ecosystem, false); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if res.Package == "" {
		writeError(w, http.StatusBadRequest, "package is required")
		return
	}
	rows, err := s.d.Audit.Who(r.Context(), res.Ecosystem, res.Package, res.Version)
	if err != nil {
		failure(w, err)
		return
	}
	res.Clients = rows
	if res.Clients == nil {
		res.Clients = []audit.Row{}
	}
	writeJSON(w, http.StatusOK, res)
}

// ParseSince turns a "since" parameter into a time: a duration back from
// now ("24h", "90m", "7d" for days) or an RFC 3339 timestamp. Empty gives
// def back from now, or the zero time (everything) when def is zero.
func ParseSince(s string, def time.Duration) (time.Time, error) {
	if s == "" {
		if def == 0 {
			return time.Time{}, nil
		}
		return now().Add(-def), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		// Bounded so the conversion to a Duration cannot overflow.
		n, err := strconv.ParseFloat(days, 64)
		if err == nil && n >= 0 && n <= maxSinceDays {
			return now().Add(-time.Duration(n * 24 * float64(time.Hour))), nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("admin: invalid since %q (want a duration such as 24h or 7d, or an RFC 3339 time)", s)
	}
	return now().Add(-d), nil
}

// maxSinceDays bounds "Nd" since values (about 100 years).
const maxSinceDays = 36500

// BlocksResponse is the body of GET /api/audit/blocks.
type BlocksResponse struct {
	Since  time.Time     `json:"since"`
	Blocks []audit.Event `json:"blocks"`
	// Truncated is true when audit.MaxBlocks rows were returned and older
	// ones were left out.
	Truncated bool `json:"truncated"`
}

func (s *server) blocks(w http.ResponseWriter, r *http.Request) {
	if !s.auditOrRefuse(w) {
		return
	}
	since, err := ParseSince(r.URL.Query().Get("since"), 24*time.Hour)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	evs, err := s.d.Audit.Blocks(r.Context(), since)
	if err != nil {
		failure(w, err)
		return
	}
	writeJSON(w, http.StatusOK, BlocksResponse{Since: since.UTC(), Blocks: evs, Truncated: len(evs) >= audit.MaxBlocks})
}

func (s *server) export(w http.ResponseWriter, r *http.Request) {
	if !s.auditOrRefuse(w) {
		return
	}
	q := r.URL.Query()
	format := q.Get("format")
	if format == "" {
		format = audit.FormatJSONL
	}
	var ctype string
	switch format {
	case audit.FormatJSONL:
		ctype = "application/x-ndjson"
	case audit.FormatCSV:
		ctype = "text/csv; charset=utf-8"
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown format %q (want jsonl or csv)", format))
		return
	}
	since, err := ParseSince(q.Get("since"), 0)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	lw := &lazyWriter{w: w, ctype: ctype, filename: "cafilprox-audit." + format}
	if err := s.d.Audit.Export(r.Context(), lw, format, since); err != nil {
		if !lw.started {
			failure(w, err)
			return
		}
		// Once rows stream the status is sent; a failure midway can only be
		// logged and the response cut short.
		s.d.Logger.Error("admin: audit export failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	lw.start() // an empty export is still a 200 with the right type
}

// lazyWriter sends the export's headers on the first write, so that an error
// before any row can still be answered as JSON.
type lazyWriter struct {
	w        http.ResponseWriter
	ctype    string
	filename string
	started  bool
}

func (l *lazyWriter) start() {
	if l.started {
		return
	}
	l.started = true
	h := l.w.Header()
	h.Set("Content-Type", l.ctype)
	h.Set("Content-Disposition", `attachment; filename="`+l.filename+`"`)
	h.Set("Cache-Control", "no-store")
	l.w.WriteHeader(http.StatusOK)
}

func (l *lazyWriter) Write(p []byte) (int, error) {
	l.start()
	return l.w.Write(p)
}
