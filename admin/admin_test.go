package admin

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cafilprox/cafilprox/audit"
	"github.com/cafilprox/cafilprox/metrics"
)

const token = "s3cret-token"

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type fixture struct {
	h        http.Handler
	policyOK atomic.Bool
	purged   []string
	log      *audit.Log
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{}
	f.policyOK.Store(true)
	l, err := audit.Open(filepath.Join(t.TempDir(), "audit.db"), audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	for i, e := range []audit.Event{
		{ClientIP: "10.0.0.1", Ecosystem: "npm", Package: "left-pad", Version: "1.3.0", Kind: "artifact", Decision: audit.Allow, Status: 200},
		{ClientIP: "10.0.0.2", User: "ci", Ecosystem: "npm", Package: "left-pad", Version: "1.3.0", Kind: "artifact", Decision: audit.Allow, Status: 200},
		{ClientIP: "10.0.0.3", Ecosystem: "pypi", Package: "bad-package", Version: "1.0", Kind: "artifact", Decision: audit.Deny, Rule: "block-bad-package", Reason: "Security vulnerability", Status: 403},
	} {
		e.Time = t0.Add(time.Duration(i) * time.Minute)
		l.Record(e)
	}
	if err := l.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.log = l
	m := metrics.New()
	m.ObserveRequest("npm", "artifact", "allow", "hit", time.Millisecond, 10, true)
	f.h = Handler(Deps{
		Token: token,
		CAPEM: func() []byte { return []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n") },
		Ready: func() []Check {
			c := Check{Name: "policy", OK: f.policyOK.Load()}
			if !c.OK {
				c.Message = "cafilprox.hcl:12:3: unknown attribute"
			}
			return []Check{{Name: "ca", OK: true}, c}
		},
		ReloadPolicy: func() error {
			if !f.policyOK.Load() {
				return errors.New("cafilprox.hcl:12:3: unknown attribute \"acton\"")
			}
			return nil
		},
		Explain: func(eco, name, version, client string) (any, error) {
			switch name {
			case "invalid":
				return nil, fmt.Errorf("%w: bad version %q", ErrInvalid, version)
			case "broken":
				return nil, errors.New("policy engine exploded")
			}
			return map[string]string{"decision": "allow", "for": eco + ":" + name + "@" + version + " by " + client}, nil
		},
		Purge: func(ctx context.Context, eco, pkg, version string) (int, error) {
			f.purged = append(f.purged, eco+":"+pkg+"@"+version)
			return 3, nil
		},
		CacheStats: func() any { return map[string]int64{"entries": 42, "size_bytes": 4096} },
		Audit:      l,
		Metrics:    m.Handler(),
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	return f
}

func (f *fixture) do(method, target, tok, body string) *httptest.ResponseRecorder {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, target, rd)
	if tok != "" {
		r.Header.Set("Authorization", tok)
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	return w
}

func errorOf(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type: got %q, want application/json", ct)
	}
	var e errorBody
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
		t.Fatalf("error body %q: %v", w.Body.String(), err)
	}
	return e.Error
}

var apiEndpoints = []struct{ method, path, body string }{
	{"POST", "/api/policy/reload", ""},
	{"GET", "/api/policy/explain?ecosystem=npm&package=left-pad", ""},
	{"POST", "/api/cache/purge", `{"ecosystem":"npm","package":"left-pad"}`},
	{"GET", "/api/cache/stats", ""},
	{"GET", "/api/audit/who?package=left-pad", ""},
	{"GET", "/api/audit/blocks", ""},
	{"GET", "/api/audit/export", ""},
	{"GET", "/api/nothing", ""},
}

func TestTokenRefused(t *testing.T) {
	f := newFixture(t)
	for _, ep := range apiEndpoints {
		for _, tc := range []struct {
			name, auth, wantErr string
		}{
			{"missing", "", "missing bearer token"},
			{"wrong", "Bearer nope", "invalid bearer token"},
			{"prefix of token", "Bearer " + token[:4], "invalid bearer token"},
			{"basic scheme", "Basic " + token, "missing bearer token"},
		} {
			t.Run(ep.path+" "+tc.name, func(t *testing.T) {
				w := f.do(ep.method, ep.path, tc.auth, ep.body)
				if w.Code != http.StatusUnauthorized {
					t.Errorf("status: got %v, want 401", w.Code)
				}
				if got := errorOf(t, w); got != tc.wantErr {
					t.Errorf("error: got %q, want %q", got, tc.wantErr)
				}
				if w.Header().Get("WWW-Authenticate") == "" {
					t.Errorf("WWW-Authenticate: got none, want a challenge")
				}
			})
		}
	}
	if len(f.purged) != 0 {
		t.Errorf("purge ran without a token: got %v, want nothing", f.purged)
	}
}

func TestTokenNotConfigured(t *testing.T) {
	h := Handler(Deps{ReloadPolicy: func() error { t.Error("reload ran"); return nil }})
	for _, ep := range apiEndpoints {
		t.Run(ep.path, func(t *testing.T) {
			for _, auth := range []string{"", "Bearer ", "Bearer x"} {
				r := httptest.NewRequest(ep.method, ep.path, strings.NewReader(ep.body))
				r.Header.Set("Authorization", auth)
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != http.StatusForbidden {
					t.Errorf("auth %q: got %v, want 403", auth, w.Code)
				}
				if got := errorOf(t, w); got != "admin token not configured" {
					t.Errorf("error: got %q, want %q", got, "admin token not configured")
				}
			}
		})
	}
}

func TestPublicEndpoints(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		path, wantType, wantBody string
	}{
		{"/healthz", "application/json", `"status": "ok"`},
		{"/ca.pem", "application/x-pem-file", "-----BEGIN CERTIFICATE-----"},
		{"/metrics", "text/plain", `cafilprox_requests_total{cache="hit",decision="allow",ecosystem="npm",kind="artifact"} 1`},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			w := f.do("GET", tt.path, "", "")
			if w.Code != 200 {
				t.Fatalf("status: got %v, want 200", w.Code)
			}
			if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, tt.wantType) {
				t.Errorf("Content-Type: got %q, want %q", ct, tt.wantType)
			}
			if !strings.Contains(w.Body.String(), tt.wantBody) {
				t.Errorf("body: got %q, want it to contain %q", w.Body.String(), tt.wantBody)
			}
		})
	}
	if w := f.do("POST", "/healthz", "", ""); w.Code != 405 || w.Header().Get("Allow") != "GET" {
		t.Errorf("POST /healthz: got %v Allow %q, want 405 Allow GET", w.Code, w.Header().Get("Allow"))
	}
	if w := f.do("GET", "/nope", "", ""); w.Code != 404 {
		t.Errorf("unknown path: got %v, want 404", w.Code)
	}
	empty := Handler(Deps{})
	for _, p := range []string{"/ca.pem", "/metrics"} {
		w := httptest.NewRecorder()
		empty.ServeHTTP(w, httptest.NewRequest("GET", p, nil))
		if w.Code == 200 {
			t.Errorf("%s without a dependency: got 200, want an error", p)
		}
	}
}

func TestReadinessFlips(t *testing.T) {
	f := newFixture(t)
	check := func(wantCode int, wantReady bool) {
		t.Helper()
		w := f.do("GET", "/readyz", "", "")
		if w.Code != wantCode {
			t.Errorf("status: got %v, want %v", w.Code, wantCode)
		}
		var body readyBody
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatal(err)
		}
		if body.Ready != wantReady || len(body.Checks) != 2 {
			t.Errorf("body: got %+v, want ready %v with 2 checks", body, wantReady)
		}
	}
	check(200, true)
	f.policyOK.Store(false)
	check(503, false)
	f.policyOK.Store(true)
	check(200, true)

	w := httptest.NewRecorder()
	Handler(Deps{}).ServeHTTP(w, httptest.NewRequest("GET", "/readyz", nil))
	if w.Code != 200 {
		t.Errorf("no Ready func: got %v, want 200", w.Code)
	}
}

func TestReload(t *testing.T) {
	f := newFixture(t)
	if w := f.do("POST", "/api/policy/reload", "Bearer "+token, ""); w.Code != 200 {
		t.Errorf("good policy: got %v, want 200", w.Code)
	}
	f.policyOK.Store(false)
	w := f.do("POST", "/api/policy/reload", "Bearer "+token, "")
	if w.Code != http.StatusUnprocessableEntity {
		t.Errorf("broken policy: got %v, want 422", w.Code)
	}
	if got := errorOf(t, w); !strings.Contains(got, "cafilprox.hcl:12:3") {
		t.Errorf("diagnostics: got %q, want file:line:column", got)
	}
	if w := f.do("GET", "/api/policy/reload", "Bearer "+token, ""); w.Code != 405 {
		t.Errorf("GET reload: got %v, want 405", w.Code)
	}
}

func TestExplain(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name, query string
		want        int
		wantBody    string
	}{
		{"ok", "ecosystem=npm&package=left-pad&version=1.3.0&client=10.0.0.1", 200, "npm:left-pad@1.3.0 by 10.0.0.1"},
		{"missing ecosystem", "package=left-pad", 400, "ecosystem is required"},
		{"unknown ecosystem", "ecosystem=bower&package=x", 400, "unknown ecosystem"},
		{"missing package", "ecosystem=npm", 400, "package is required"},
		{"invalid input", "ecosystem=npm&package=invalid&version=zz", 400, "bad version"},
		{"internal error", "ecosystem=npm&package=broken", 500, "exploded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := f.do("GET", "/api/policy/explain?"+tt.query, "Bearer "+token, "")
			if w.Code != tt.want {
				t.Errorf("status: got %v, want %v", w.Code, tt.want)
			}
			if !strings.Contains(w.Body.String(), tt.wantBody) {
				t.Errorf("body: got %q, want it to contain %q", w.Body.String(), tt.wantBody)
			}
		})
	}
}

func TestPurge(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name, body string
		want       int
		wantBody   string
	}{
		{"one version", `{"ecosystem":"npm","package":"left-pad","version":"1.3.0"}`, 200, `"purged": 3`},
		{"all versions", `{"ecosystem":"pypi","package":"requests"}`, 200, `"purged": 3`},
		{"not JSON", `ecosystem=npm`, 400, "invalid JSON body"},
		{"unknown field", `{"ecosystem":"npm","package":"x","pkg":"y"}`, 400, "unknown field"},
		{"missing package", `{"ecosystem":"npm"}`, 400, "package is required"},
		{"unknown ecosystem", `{"ecosystem":"bower","package":"x"}`, 400, "unknown ecosystem"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := f.do("POST", "/api/cache/purge", "Bearer "+token, tt.body)
			if w.Code != tt.want {
				t.Errorf("status: got %v, want %v", w.Code, tt.want)
			}
			if !strings.Contains(w.Body.String(), tt.wantBody) {
				t.Errorf("body: got %q, want it to contain %q", w.Body.String(), tt.wantBody)
			}
		})
	}
	want := []string{"npm:left-pad@1.3.0", "pypi:requests@"}
	if fmt.Sprint(f.purged) != fmt.Sprint(want) {
		t.Errorf("purge calls: got %v, want %v", f.purged, want)
	}
}

func TestCacheStats(t *testing.T) {
	f := newFixture(t)
	w := f.do("GET", "/api/cache/stats", "Bearer "+token, "")
	var got map[string]int64
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if w.Code != 200 || got["entries"] != 42 {
		t.Errorf("got %v %v, want 200 with 42 entries", w.Code, got)
	}
}

func TestAuditWho(t *testing.T) {
	f := newFixture(t)
	w := f.do("GET", "/api/audit/who?ecosystem=npm&package=left-pad&version=1.3.0", "Bearer "+token, "")
	if w.Code != 200 {
		t.Fatalf("status: got %v, want 200: %s", w.Code, w.Body.String())
	}
	var res WhoResponse
	if err := json.Unmarshal(w.Body.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	var clients []string
	for _, c := range res.Clients {
		clients = append(clients, c.ClientIP+"/"+c.User)
	}
	if want := "[10.0.0.2/ci 10.0.0.1/]"; fmt.Sprint(clients) != want {
		t.Errorf("clients: got %v, want %v", clients, want)
	}
	w = f.do("GET", "/api/audit/who?package=never", "Bearer "+token, "")
	if !strings.Contains(w.Body.String(), `"clients": []`) {
		t.Errorf("no clients: got %s, want an empty list", w.Body.String())
	}
	if w := f.do("GET", "/api/audit/who", "Bearer "+token, ""); w.Code != 400 {
		t.Errorf("missing package: got %v, want 400", w.Code)
	}
}

func TestAuditBlocks(t *testing.T) {
	defer func(f func() time.Time) { now = f }(now)
	now = func() time.Time { return t0.Add(time.Hour) }
	f := newFixture(t)
	tests := []struct {
		since string
		want  int
		code  int
	}{
		{"", 1, 200},
		{"24h", 1, 200},
		{"30m", 0, 200},
		{"7d", 1, 200},
		{t0.Add(2 * time.Minute).Format(time.RFC3339), 1, 200},
		{"yesterday", 0, 400},
	}
	for _, tt := range tests {
		t.Run(tt.since, func(t *testing.T) {
			w := f.do("GET", "/api/audit/blocks?since="+tt.since, "Bearer "+token, "")
			if w.Code != tt.code {
				t.Fatalf("status: got %v, want %v", w.Code, tt.code)
			}
			if tt.code != 200 {
				return
			}
			var res BlocksResponse
			if err := json.Unmarshal(w.Body.Bytes(), &res); err != nil {
				t.Fatal(err)
			}
			if len(res.Blocks) != tt.want {
				t.Errorf("blocks: got %v, want %v", len(res.Blocks), tt.want)
			}
			if len(res.Blocks) > 0 && res.Blocks[0].Rule != "block-bad-package" {
				t.Errorf("rule: got %q, want block-bad-package", res.Blocks[0].Rule)
			}
		})
	}
}

func TestAuditExport(t *testing.T) {
	f := newFixture(t)
	t.Run("jsonl", func(t *testing.T) {
		w := f.do("GET", "/api/audit/export", "Bearer "+token, "")
		if w.Code != 200 || w.Header().Get("Content-Type") != "application/x-ndjson" {
			t.Fatalf("got %v %q, want 200 application/x-ndjson", w.Code, w.Header().Get("Content-Type"))
		}
		if got := strings.Count(w.Body.String(), "\n"); got != 3 {
			t.Errorf("lines: got %v, want 3", got)
		}
	})
	t.Run("csv since", func(t *testing.T) {
		w := f.do("GET", "/api/audit/export?format=csv&since="+t0.Add(time.Minute).Format(time.RFC3339), "Bearer "+token, "")
		recs, err := csv.NewReader(bytes.NewReader(w.Body.Bytes())).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 3 || recs[0][0] != "time" {
			t.Errorf("records: got %v, want header + 2 rows", recs)
		}
	})
	t.Run("bad format", func(t *testing.T) {
		if w := f.do("GET", "/api/audit/export?format=xml", "Bearer "+token, ""); w.Code != 400 {
			t.Errorf("got %v, want 400", w.Code)
		}
	})
	t.Run("closed log answers JSON", func(t *testing.T) {
		f.log.Close()
		w := f.do("GET", "/api/audit/export", "Bearer "+token, "")
		if w.Code != 500 {
			t.Errorf("status: got %v, want 500", w.Code)
		}
		if got := errorOf(t, w); !strings.Contains(got, "closed") {
			t.Errorf("error: got %q, want it to mention closed", got)
		}
	})
}

func TestAuditDisabled(t *testing.T) {
	h := Handler(Deps{Token: token})
	for _, p := range []string{"/api/audit/who?package=x", "/api/audit/blocks", "/api/audit/export"} {
		r := httptest.NewRequest("GET", p, nil)
		r.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusServiceUnavailable {
			t.Errorf("%s: got %v, want 503", p, w.Code)
		}
	}
}

func TestParseSince(t *testing.T) {
	defer func(f func() time.Time) { now = f }(now)
	now = func() time.Time { return t0 }
	tests := []struct {
		in      string
		def     time.Duration
		want    time.Time
		wantErr bool
	}{
		{"", 24 * time.Hour, t0.Add(-24 * time.Hour), false},
		{"", 0, time.Time{}, false},
		{"90m", 0, t0.Add(-90 * time.Minute), false},
		{"2d", 0, t0.Add(-48 * time.Hour), false},
		{"0.5d", 0, t0.Add(-12 * time.Hour), false},
		{"2026-01-02T03:04:05Z", 0, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), false},
		{"-1h", 0, time.Time{}, true},
		{"-1d", 0, time.Time{}, true},
		{"1e9d", 0, time.Time{}, true},
		{"NaNd", 0, time.Time{}, true},
		{"soon", 0, time.Time{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSince(tt.in, tt.def)
			if (err != nil) != tt.wantErr || !got.Equal(tt.want) {
				t.Errorf("got %v, %v, want %v, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func FuzzParseSince(f *testing.F) {
	for _, s := range []string{"24h", "7d", "2026-01-02T03:04:05Z", "", "1e9d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseSince(s, time.Hour)
		if _, abs := time.Parse(time.RFC3339, s); abs == nil {
			return // absolute times may lie anywhere
		}
		if err == nil && got.After(now().Add(time.Second)) {
			t.Errorf("ParseSince(%q) = %v, in the future", s, got)
		}
	})
}

// TestOpenAPIMatchesRoutes keeps docs/admin-api.yaml and the handler in step.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	doc, err := os.ReadFile("../docs/admin-api.yaml")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, line := range strings.Split(string(doc), "\n") {
		if strings.HasPrefix(line, "  /") && strings.HasSuffix(line, ":") {
			documented[strings.TrimSuffix(strings.TrimSpace(line), ":")] = true
		}
	}
	f := newFixture(t)
	for _, ep := range apiEndpoints {
		p, _, _ := strings.Cut(ep.path, "?")
		if p == "/api/nothing" {
			continue
		}
		if !documented[p] {
			t.Errorf("%s: served but not documented", p)
		}
		delete(documented, p)
	}
	for _, p := range []string{"/healthz", "/readyz", "/ca.pem", "/metrics"} {
		if !documented[p] {
			t.Errorf("%s: served but not documented", p)
		}
		delete(documented, p)
	}
	for p := range documented {
		if w := f.do("GET", p, "Bearer "+token, ""); w.Code == http.StatusNotFound {
			t.Errorf("%s: documented but not served", p)
		}
	}
}
