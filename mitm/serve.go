package mitm

import (
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/cafilprox/cafilprox/cache"
	"github.com/cafilprox/cafilprox/classifiers"
	"github.com/cafilprox/cafilprox/rules"
)

// policy returns the current policy or nil.
func (p *Pipeline) policy() *rules.Engine {
	if p.Policy == nil {
		return nil
	}
	return p.Policy()
}

func (rt *routed) subject(version string) rules.Subject {
	return rules.Subject{
		Ecosystem: rt.req.Ecosystem,
		Package:   rt.req.Package,
		Version:   version,
		Client:    rules.Client{IP: rt.client.IP, User: rt.client.User},
	}
}

// record puts a decision into the request's event.
func (rt *routed) record(d rules.Decision) {
	switch {
	case !d.Allow:
		rt.ev.Decision = "deny"
	case d.Shadow:
		rt.ev.Decision = "shadow-deny"
	default:
		rt.ev.Decision = "allow"
	}
	rt.ev.Rule, rt.ev.Reason = d.Rule, d.Reason
}

// serveVersion serves an artifact or a document about one version: the
// version is judged as a whole before any upstream byte is fetched.
func (p *Pipeline) serveVersion(w http.ResponseWriter, r *http.Request, rt *routed) {
	ctx := r.Context()
	if rt.req.Kind == classifiers.KindArtifact && rt.req.Version == "" && p.policy() != nil {
		// An artifact whose version cannot be read from its URL cannot be
		// judged; serving it would bypass every version rule.
		p.deny(w, r, rt, rules.Decision{Rule: "unattributed", Reason: "the artifact's version cannot be determined from its URL"})
		return
	}
	var expect string
	if pol := p.policy(); pol != nil || rt.req.Kind == classifiers.KindArtifact {
		md, err := p.facts(ctx, rt)
		if err != nil {
			p.Logger.Warn("version facts unavailable", "request_id", rt.id, "package", pkgAt(rt.req.Package, rt.req.Version), "err", err)
		}
		facts := md.Version(rt.req.Version)
		if facts != nil && rt.req.Kind == classifiers.KindArtifact {
			expect = facts.Integrity
			if d, ok := facts.FileDigests[path.Base(rt.real.Path)]; ok {
				expect = d
			}
		}
		if pol != nil {
			s := rt.subject(rt.req.Version)
			s.Facts, s.Meta = facts, md
			if p.Seen != nil {
				s.FirstSeen, s.Retagged = p.Seen.Lookup(rt.req.Ecosystem, rt.req.Package, rt.req.Version, ContentRef(rt.req.Ecosystem, facts))
			}
			d := pol.Decide(s)
			rt.record(d)
			if !d.Allow {
				if rt.req.Kind == classifiers.KindArtifact {
					p.guardSources(rt, facts, d)
				}
				p.deny(w, r, rt, d)
				return
			}
		}
	}
	w.Header().Set(HeaderDecision, "allow")
	if rt.req.Kind == classifiers.KindArtifact && !strings.HasPrefix(expect, "sha") {
		expect = ""
	}
	p.serveCached(w, r, rt, rt.req.Kind == classifiers.KindArtifact, expect)
}

// cacheable reports whether a request's answer may be shared between
// clients: requests carrying credentials may see private content.
func (p *Pipeline) cacheable(r *http.Request) bool {
	return p.Cache != nil && r.Header.Get("Authorization") == "" && r.Header.Get("Cookie") == ""
}

// serveCached serves a whole upstream response through the cache.
func (p *Pipeline) serveCached(w http.ResponseWriter, r *http.Request, rt *routed, artifact bool, expect string) {
	if !p.cacheable(r) {
		rt.ev.Cache = "BYPASS"
		w.Header().Set(HeaderCache, "BYPASS")
		p.proxy.ServeHTTP(w, r)
		return
	}
	key := cache.Key(rt.req.Ecosystem, rt.req.Package, rt.req.Version, rt.req.Variant, rt.real.String())
	res, err := p.Cache.Get(r.Context(), cache.Fetch{
		Key:      key,
		Artifact: artifact,
		TTL:      p.MetadataTTL(rt.req.Ecosystem),
		Expect:   expect,
		Do:       p.upstreamCall(rt, r.Header),
	})
	if err != nil {
		rt.ev.Err = err.Error()
		if errors.Is(err, cache.ErrIntegrity) {
			writeError(w, http.StatusBadGateway, fmt.Sprintf("cafilprox: %s from %s does not match the digest the registry published (%s); refusing it (request %s)",
				pkgAt(rt.req.Package, rt.req.Version), rt.upstream.Host, err, rt.id))
			return
		}
		writeUpstreamError(w, rt, err)
		return
	}
	defer res.Body.Close()
	rt.ev.Cache = res.Status
	if res.Upstream != nil {
		// Not cacheable (an upstream error without a stale copy, a redirect...):
		// relay it as it came.
		copyHeader(w.Header(), res.Upstream.Header)
		w.Header().Set(HeaderCache, res.Status)
		w.WriteHeader(res.Upstream.StatusCode)
		if r.Method != http.MethodHead {
			io.Copy(flushWriter{w}, res.Body)
		}
		return
	}
	h := w.Header()
	copyHeader(h, res.Info.Header)
	h.Set(HeaderCache, res.Status)
	if res.Info.Size > 0 {
		// On a MISS this is upstream's length: a truncated download then
		// shows as truncated to the client too.
		h.Set("Content-Length", strconv.FormatInt(res.Info.Size, 10))
	}
	status := res.Info.Status
	if status == 0 {
		status = http.StatusOK
	}
	if status == http.StatusOK && etagMatch(r.Header.Get("If-None-Match"), h.Get("ETag")) {
		h.Del("Content-Length")
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	var dst io.Writer = w
	if res.Status == "MISS" {
		dst = flushWriter{w}
	}
	if _, err := io.Copy(dst, res.Body); err != nil {
		// The body is withheld at its end when the cache detects corruption
		// or a digest mismatch: abort so the client sees a broken transfer,
		// never a complete wrong file.
		rt.ev.Err = err.Error()
		panic(http.ErrAbortHandler)
	}
}

// upstreamCall returns the function the cache uses to reach upstream: a GET
// of the mapped URL with the headers that select the representation.
func (p *Pipeline) upstreamCall(rt *routed, in http.Header) func(ctx context.Context, cond http.Header) (*http.Response, error) {
	return func(ctx context.Context, cond http.Header) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, rt.upstream.String(), nil)
		if err != nil {
			return nil, err
		}
		for _, k := range []string{"Accept", "User-Agent", "Accept-Language"} {
			if v := in.Values(k); len(v) > 0 {
				req.Header[k] = v
			}
		}
		// Cached bodies are served to every client and parsed by us: fetch
		// them unencoded so no client receives an encoding it did not ask for.
		req.Header.Set("Accept-Encoding", "identity")
		for k, v := range cond {
			req.Header[k] = v
		}
		if rt.offline {
			return nil, ErrOffline
		}
		start := time.Now()
		resp, err := p.transport.RoundTrip(req)
		rt.ev.UpstreamDuration += time.Since(start)
		return resp, err
	}
}

// idleTransport gives every upstream response body an idle timeout.
type idleTransport struct {
	next http.RoundTripper
	idle time.Duration
}

func (t idleTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancel(req.Context())
	resp, err := t.next.RoundTrip(req.WithContext(ctx))
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = newIdleBody(resp.Body, t.idle, cancel)
	return resp, nil
}

// upstreamIdleTimeout ends an upstream download that sends nothing for
// this long (a stalled registry must not hold a download forever; a slow
// one that keeps sending is fine).
const upstreamIdleTimeout = 2 * time.Minute

// idleBody cancels its request when no byte arrives within idle.
type idleBody struct {
	io.ReadCloser
	idle   time.Duration
	timer  *time.Timer
	cancel context.CancelFunc
}

func newIdleBody(rc io.ReadCloser, idle time.Duration, cancel context.CancelFunc) *idleBody {
	return &idleBody{ReadCloser: rc, idle: idle, cancel: cancel, timer: time.AfterFunc(idle, cancel)}
}

func (b *idleBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.timer.Reset(b.idle)
	}
	return n, err
}

func (b *idleBody) Close() error {
	b.timer.Stop()
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// document is a whole metadata document fetched through the cache.
type document struct {
	body   []byte
	header http.Header
	status int
	cache  string
}

// getDocument fetches a document (raw, unfiltered) through the cache.
func (p *Pipeline) getDocument(ctx context.Context, rt *routed, key string, up *url.URL, in http.Header) (*document, error) {
	sub := *rt
	sub.upstream = up
	call := p.upstreamCall(&sub, in)
	if p.Cache == nil || in.Get("Authorization") != "" {
		resp, err := call(ctx, nil)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		b, err := readLimited(resp.Body, p.MaxMetadataBytes)
		if err != nil {
			return nil, err
		}
		return &document{body: b, header: resp.Header, status: resp.StatusCode, cache: "BYPASS"}, nil
	}
	res, err := p.Cache.Get(ctx, cache.Fetch{Key: key, TTL: p.MetadataTTL(rt.req.Ecosystem), Do: call})
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := readLimited(res.Body, p.MaxMetadataBytes)
	if err != nil {
		return nil, err
	}
	d := &document{body: b, header: res.Info.Header, status: res.Info.Status, cache: res.Status}
	if res.Upstream != nil {
		d.header, d.status = res.Upstream.Header, res.Upstream.StatusCode
	}
	if d.status == 0 {
		d.status = http.StatusOK
	}
	return d, nil
}

func readLimited(r io.Reader, max int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("metadata document larger than %d bytes", max)
	}
	return b, nil
}

// facts asks the classifier for the package's version facts, fetching
// documents through the cache.
func (p *Pipeline) facts(ctx context.Context, rt *routed) (*classifiers.Metadata, error) {
	if rt.class == nil {
		return nil, nil
	}
	// Facts that cover every version (npm, PyPI, cargo...) are shared by
	// all versions of a package; per-version facts (Go .info, Maven POM
	// times) are kept under the version too.
	now := time.Now()
	pkgKey := rt.req.Ecosystem + "\x00" + rt.req.Package + "\x00" + rt.req.Variant
	verKey := pkgKey + "\x00" + rt.req.Version
	if !rt.offline {
		if md, ok := p.memo.get(pkgKey, now); ok && (rt.req.Version == "" || hasTime(md, rt.req.Version)) {
			return md, nil
		}
		if md, ok := p.memo.get(verKey, now); ok {
			return md, nil
		}
	}
	md, err := p.fetchFacts(ctx, rt)
	if err == nil && md != nil && !rt.offline {
		exp := now.Add(min(p.MetadataTTL(rt.req.Ecosystem), factsMemoTTL))
		p.memo.put(verKey, md, 1, exp)
		if allTimed(md) {
			p.memo.put(pkgKey, md, 1, exp)
		}
	}
	return md, err
}

// hasTime reports whether md knows when version v was published.
func hasTime(md *classifiers.Metadata, v string) bool {
	fv := md.Version(v)
	return fv != nil && !fv.Published.IsZero()
}

// allTimed reports whether every version in md has a publish time.
func allTimed(md *classifiers.Metadata) bool {
	for _, v := range md.Versions {
		if v.Published.IsZero() {
			return false
		}
	}
	return len(md.Versions) > 0
}

// factsMemoTTL bounds how long parsed facts are reused without looking at
// the (cached) metadata again.
const factsMemoTTL = time.Minute

func (p *Pipeline) fetchFacts(ctx context.Context, rt *routed) (*classifiers.Metadata, error) {
	f := classifiers.FetcherFunc(func(ctx context.Context, raw string, h http.Header) ([]byte, http.Header, error) {
		u, err := url.Parse(raw)
		if err != nil {
			return nil, nil, err
		}
		if h == nil {
			h = http.Header{}
		}
		// Classify the document like a client request so that facts and
		// clients asking for the same representation share one cache entry.
		variant, version := "facts "+h.Get("Accept"), ""
		if hr, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil); err == nil {
			hr.Header = h
			if c := rt.class.Classify(hr); c.Kind == classifiers.KindMetadata && c.Package == rt.req.Package {
				variant, version = c.Variant, c.Version
			}
		}
		key := cache.Key(rt.req.Ecosystem, rt.req.Package, version, variant, raw)
		d, err := p.getDocument(ctx, rt, key, p.Upstreams.Map(rt.req.Ecosystem, u), h)
		if err != nil {
			return nil, nil, err
		}
		if d.status < 200 || d.status > 299 {
			return nil, d.header, &classifiers.StatusError{URL: raw, Status: d.status}
		}
		return d.body, d.header, nil
	})
	return rt.class.Facts(ctx, rt.req, f)
}

// flushWriter flushes after every write so a streamed download reaches the
// client as it arrives.
type flushWriter struct{ w http.ResponseWriter }

func (f flushWriter) Write(b []byte) (int, error) {
	n, err := f.w.Write(b)
	if fl, ok := f.w.(http.Flusher); ok {
		fl.Flush()
	}
	return n, err
}

// hopHeaders are connection-level headers (RFC 9110 §7.6.1) never relayed.
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// copyHeader copies end-to-end headers.
func copyHeader(dst, src http.Header) {
	skip := map[string]bool{}
	for _, h := range hopHeaders {
		skip[h] = true
	}
	for _, v := range src.Values("Connection") {
		for _, f := range strings.Split(v, ",") {
			skip[http.CanonicalHeaderKey(strings.TrimSpace(f))] = true
		}
	}
	for k, vs := range src {
		if skip[k] {
			continue
		}
		dst[k] = append([]string(nil), vs...)
	}
}

func etagMatch(ifNoneMatch, etag string) bool {
	if ifNoneMatch == "" || etag == "" {
		return false
	}
	if strings.TrimSpace(ifNoneMatch) == "*" {
		return true
	}
	for _, t := range strings.Split(ifNoneMatch, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == strings.TrimPrefix(etag, "W/") {
			return true
		}
	}
	return false
}

// digestHex returns the hex digest of b with a named algorithm.
func digestHex(algo string, b []byte) (string, bool) {
	var h hash.Hash
	switch algo {
	case "md5":
		h = md5.New()
	case "sha1":
		h = sha1.New()
	case "sha256":
		h = sha256.New()
	case "sha512":
		h = sha512.New()
	default:
		return "", false
	}
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil)), true
}

// reprDigest is an RFC 9530 Repr-Digest value for b.
func reprDigest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha-256=:" + base64.StdEncoding.EncodeToString(sum[:]) + ":"
}

// ErrOffline is returned by upstream calls made in offline mode.
var ErrOffline = errors.New("mitm: offline: upstream not contacted")

// Facts returns version facts for eco/pkg (as `policy explain` and the admin
// API need them), through the cache. Offline, only cached documents are used.
func (p *Pipeline) Facts(ctx context.Context, eco, pkg, version string, offline bool) (*classifiers.Metadata, error) {
	cl := p.Set.ForEcosystem(eco)
	if cl == nil {
		return nil, fmt.Errorf("mitm: unknown ecosystem %q", eco)
	}
	rt := &routed{id: "explain", class: cl, ev: &Event{}, start: time.Now(), offline: offline,
		req: classifiers.Request{Ecosystem: eco, Package: pkg, Version: version, Kind: classifiers.KindMetadata}}
	return p.facts(ctx, rt)
}

// ContentRef is what identifies a version's content for re-tag detection:
// the registry's movable reference (Composer dist reference, CocoaPods
// source tag) or, where a version has exactly one artifact, its digest.
func ContentRef(eco string, v *classifiers.Version) string {
	if v == nil {
		return ""
	}
	if v.Ref != "" {
		return v.Ref
	}
	switch eco {
	case classifiers.NPM, classifiers.Cargo, classifiers.RubyGems:
		return v.Integrity
	}
	return ""
}
