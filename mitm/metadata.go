package mitm

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cafilprox/cafilprox/cache"
	"github.com/cafilprox/cafilprox/classifiers"
	"github.com/cafilprox/cafilprox/rules"
)

// viewTTL bounds how long a filtered response is reused as is: short, so
// versions crossing a cooldown boundary appear within seconds.
const viewTTL = 30 * time.Second

// viewKey identifies a filtered response: the raw document, the policy
// and feeds (Hash), the client (per-client rules), the index-URL base and
// the credentials rule (authorised requests are never shared).
func (p *Pipeline) viewKey(rt *routed, r *http.Request) (string, bool) {
	pol := p.policy()
	if pol == nil || p.Cache == nil || !p.cacheable(r) {
		return "", false
	}
	base := ""
	if rt.index != nil {
		base = rt.index.base
	}
	return cache.Key(rt.req.Ecosystem, rt.req.Package, "", rt.req.Variant, rt.real.String()) + "\x00" + pol.Hash() +
		"\x00" + rt.client.IP.String() + "\x00" + rt.client.User + "\x00" + base, true
}

// filtered is a metadata document after policy.
type filtered struct {
	body     []byte
	header   http.Header // upstream's stored headers
	status   int         // upstream status; non-200 bodies are relayed unfiltered
	cache    string
	dropped  int
	denied   *rules.Decision // set when the package as a whole is refused
	policyID string
	// decision, rule, reason are what the request's event recorded when
	// the view was built, replayed on reuse.
	decision, rule, reason string
	// gz, set on memoised views, holds the gzip encoding of body, made at
	// most once per view for the clients that accept it.
	gz *lazyGzip
}

// asHit is the view served again from memory.
func (f *filtered) asHit() *filtered {
	c := *f
	c.cache = "HIT"
	return &c
}

// serveMetadata serves a version listing with denied versions removed.
func (p *Pipeline) serveMetadata(w http.ResponseWriter, r *http.Request, rt *routed) {
	key, cacheable := p.viewKey(rt, r)
	f, hit := p.views.get(key, time.Now())
	if hit {
		rt.ev.Cache, rt.ev.Decision, rt.ev.Rule, rt.ev.Reason = "HIT", f.decision, f.rule, f.reason
		f = f.asHit()
	} else {
		var err error
		f, err = p.filterMetadata(r.Context(), rt, r)
		if err != nil {
			p.metadataError(w, rt, err)
			return
		}
		if cacheable && (f.status == http.StatusOK || f.denied != nil) {
			f.decision, f.rule, f.reason = rt.ev.Decision, rt.ev.Rule, rt.ev.Reason
			ttl := min(p.MetadataTTL(rt.req.Ecosystem), viewTTL)
			f.gz = &lazyGzip{}
			// The budget counts a compressed copy as a third of the body
			// (JSON and HTML listings compress 5-10x).
			p.views.put(key, f, int64(len(f.body))*4/3+1024, time.Now().Add(ttl))
		}
	}
	if f.denied != nil {
		p.deny(w, r, rt, *f.denied)
		return
	}
	p.writeDocument(w, r, rt, f, f.body)
}

// serveChecksum answers a checksum sidecar of a rewritten document (Maven
// maven-metadata.xml.sha1) from the filtered parent.
func (p *Pipeline) serveChecksum(w http.ResponseWriter, r *http.Request, rt *routed) {
	parent, err := url.Parse(rt.req.ChecksumOf)
	if err != nil {
		writeError(w, http.StatusBadRequest, "cafilprox: bad checksum parent URL")
		return
	}
	prt := *rt
	prt.req.ChecksumOf, prt.req.ChecksumAlgo = "", ""
	prt.real = parent
	prt.upstream = p.Upstreams.Map(rt.req.Ecosystem, parent)
	f, err := p.filterMetadata(r.Context(), &prt, r)
	if err != nil {
		p.metadataError(w, rt, err)
		return
	}
	if f.denied != nil {
		p.deny(w, r, rt, *f.denied)
		return
	}
	if f.status != http.StatusOK {
		p.writeDocument(w, r, rt, f, f.body)
		return
	}
	sum, ok := digestHex(rt.req.ChecksumAlgo, f.body)
	if !ok {
		writeError(w, http.StatusNotFound, "cafilprox: unsupported checksum "+rt.req.ChecksumAlgo)
		return
	}
	sf := *f
	sf.header = http.Header{"Content-Type": {"text/plain"}}
	sf.gz = nil
	p.writeDocument(w, r, rt, &sf, []byte(sum))
}

func (p *Pipeline) metadataError(w http.ResponseWriter, rt *routed, err error) {
	rt.ev.Err = err.Error()
	if errors.Is(err, classifiers.ErrMalformed) {
		writeError(w, http.StatusBadGateway, fmt.Sprintf("cafilprox: upstream %s sent metadata for %s that cannot be read: %v (request %s)",
			rt.upstream.Host, rt.req.Package, err, rt.id))
		return
	}
	writeUpstreamError(w, rt, err)
}

// filterMetadata fetches, parses and filters one metadata document.
func (p *Pipeline) filterMetadata(ctx context.Context, rt *routed, r *http.Request) (*filtered, error) {
	pol := p.policy()
	wholeDenied := false
	if pol != nil && rt.req.Package != "" {
		// A package refused as a whole (internal name, every version
		// malicious, blocked package) is refused, not shown empty...
		if d := pol.Decide(rt.subject("")); !d.Allow {
			if !listsDeniedPackages(rt.req.Ecosystem) {
				rt.record(d)
				return &filtered{denied: &d}, nil
			}
			wholeDenied = true
		}
	}
	var early <-chan factsResult
	if pol != nil && !wholeDenied && rt.req.Package != "" && pol.NeedsFacts(rt.req.Ecosystem) {
		if fe, ok := rt.class.(classifiers.FactsElsewhere); ok && fe.FactsElsewhere(rt.req) {
			early = p.factsAsync(ctx, rt)
		}
	}
	key := cache.Key(rt.req.Ecosystem, rt.req.Package, "", rt.req.Variant, rt.real.String())
	doc, err := p.getDocument(ctx, rt, key, rt.upstream, r.Header)
	if err != nil {
		return nil, err
	}
	rt.ev.Cache = doc.cache
	f := &filtered{body: doc.body, header: doc.header, status: doc.status, cache: doc.cache}
	if doc.status != http.StatusOK {
		return f, nil
	}
	md, err := rt.class.Parse(rt.req, doc.body)
	if err != nil {
		return nil, err
	}
	if md != nil {
		p.remember(rt, md)
	}
	if pol == nil || wholeDenied {
		// ...except where the client would hide the refusal behind "no
		// matching distribution" (pip) or a fallback index (gem, Bundler):
		// there the listing stays and every download is refused with the
		// reason, which those clients do show.
		return f, nil
	}
	f.policyID = pol.Hash()
	rt.ev.Decision = "allow"

	// CocoaPods shards list many pods: judge each line on its own.
	if sf, ok := rt.class.(shardFilter); ok && rt.req.Package == "" {
		out, err := sf.FilterShard(doc.body, func(pod, version string) bool {
			s := rt.subject(version)
			s.Package = pod
			keep := pol.Decide(s).Allow
			if !keep {
				f.dropped++
			}
			return keep
		})
		if err != nil {
			return nil, err
		}
		f.body = out
		return f, nil
	}
	if md == nil || rt.req.Package == "" {
		return f, nil
	}
	if pol.NeedsFacts(rt.req.Ecosystem) && lacksFacts(md) {
		var facts *classifiers.Metadata
		if early != nil {
			res := <-early
			facts, err = res.md, res.err
			rt.ev.UpstreamDuration += res.upstream
		} else {
			facts, err = p.facts(ctx, rt)
		}
		if err != nil {
			p.Logger.Warn("version facts unavailable; judging without them", "request_id", rt.id, "package", rt.req.Package, "err", err)
		} else {
			merge(md, facts)
		}
	}
	keep := p.keeper(pol, rt, md)
	for _, v := range md.Versions {
		if !keep(v.Version) {
			f.dropped++
		}
	}
	if lb, ok := rt.class.(classifiers.LatestBuilder); ok && rt.req.Variant == "latest" {
		if md.Latest != "" && keep(md.Latest) {
			return f, nil
		}
		shared, err := p.facts(ctx, rt)
		if err != nil {
			return nil, err
		}
		if shared == nil {
			shared = &classifiers.Metadata{}
		}
		// Facts are shared between requests: merge into a copy.
		facts := &classifiers.Metadata{Package: shared.Package, Latest: shared.Latest, Versions: append([]classifiers.Version(nil), shared.Versions...)}
		merge(facts, md)
		out, err := lb.BuildLatest(rt.req, facts, keep)
		if errors.Is(err, classifiers.ErrNoAllowedVersion) {
			d := noVersionDecision(rt)
			return &filtered{denied: &d}, nil
		}
		if err != nil {
			return nil, err
		}
		f.body = out
		return f, nil
	}
	if f.dropped == 0 {
		return f, nil
	}
	if f.dropped == len(md.Versions) {
		// Nothing is left. An empty listing makes clients say "not found"
		// or "typo in the package name"; refuse with the newest version's
		// reason instead (pip, gem and Bundler keep the listing and show the
		// reason when the download is refused).
		if listsDeniedPackages(rt.req.Ecosystem) {
			f.policyID = ""
			return f, nil
		}
		d := p.allDenied(pol, rt, md)
		rt.record(d)
		return &filtered{denied: &d}, nil
	}
	out, err := rt.class.Filter(rt.req, doc.body, keep)
	if errors.Is(err, classifiers.ErrNoAllowedVersion) {
		d := noVersionDecision(rt)
		return &filtered{denied: &d}, nil
	}
	if err != nil {
		return nil, err
	}
	f.body = out
	return f, nil
}

// factsResult is a facts lookup run alongside the document fetch.
type factsResult struct {
	md       *classifiers.Metadata
	err      error
	upstream time.Duration
}

// factsAsync looks up the package's facts in the background; the result
// arrives on the (buffered) channel whether or not anyone reads it.
func (p *Pipeline) factsAsync(ctx context.Context, rt *routed) <-chan factsResult {
	out := make(chan factsResult, 1)
	sub := *rt
	sub.ev = &Event{} // its own timings: rt.ev belongs to the request's goroutine
	go func() {
		md, err := p.facts(ctx, &sub)
		out <- factsResult{md: md, err: err, upstream: sub.ev.UpstreamDuration}
	}()
	return out
}

// keeper returns the per-version decision for filtering, with first-seen
// facts when tracked.
func (p *Pipeline) keeper(pol *rules.Engine, rt *routed, md *classifiers.Metadata) func(string) bool {
	c := rules.Client{IP: rt.client.IP, User: rt.client.User}
	if p.Seen == nil {
		return pol.Keep(rt.req.Ecosystem, rt.req.Package, md, c)
	}
	refs := map[string]string{}
	for i := range md.Versions {
		refs[md.Versions[i].Version] = ContentRef(rt.req.Ecosystem, &md.Versions[i])
	}
	return pol.KeepWith(rt.req.Ecosystem, rt.req.Package, md, c, func(v string) (time.Time, bool) {
		return p.Seen.Lookup(rt.req.Ecosystem, rt.req.Package, v, refs[v])
	})
}

func noVersionDecision(rt *routed) rules.Decision {
	return rules.Decision{Rule: "policy", Reason: "no version of " + rt.req.Package + " is allowed by policy"}
}

// allDenied explains a package none of whose versions is allowed with the
// decision on its newest version.
func (p *Pipeline) allDenied(pol *rules.Engine, rt *routed, md *classifiers.Metadata) rules.Decision {
	newest := md.Latest
	if md.Version(newest) == nil && len(md.Versions) > 0 {
		newest = md.Versions[len(md.Versions)-1].Version
	}
	s := rt.subject(newest)
	s.Facts, s.Meta = md.Version(newest), md
	if p.Seen != nil {
		s.FirstSeen, s.Retagged = p.Seen.Lookup(rt.req.Ecosystem, rt.req.Package, newest, ContentRef(rt.req.Ecosystem, s.Facts))
	}
	d := pol.Decide(s)
	if d.Allow {
		return noVersionDecision(rt)
	}
	d.Reason = "no version of " + rt.req.Package + " is allowed; the newest, " + newest + ": " + d.Reason
	return d
}

// remember records first-seen facts and download attributions.
func (p *Pipeline) remember(rt *routed, md *classifiers.Metadata) {
	if p.Seen != nil && rt.req.Package != "" && len(md.Versions) > 0 {
		p.Seen.Observe(rt.req.Ecosystem, rt.req.Package, md.Versions)
	}
	pkg := md.Package
	if pkg == "" {
		pkg = rt.req.Package
	}
	var changed map[string]string
	for _, v := range md.Versions {
		for _, u := range v.ArtifactURLs {
			if k, ok := p.attrib.add(u, classifiers.Request{Ecosystem: rt.req.Ecosystem, Package: pkg, Version: v.Version, Kind: classifiers.KindArtifact}); ok {
				if changed == nil {
					changed = map[string]string{}
				}
				changed[k] = v.Version
			}
		}
	}
	if p.Downloads != nil && changed != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.Downloads.RememberDownloads(ctx, rt.req.Ecosystem, pkg, changed); err != nil {
			p.Logger.Warn("download attribution not persisted", "ecosystem", rt.req.Ecosystem, "package", pkg, "err", err)
		}
	}
}

// shardFilter is implemented by classifiers whose metadata lists many
// packages (CocoaPods shards).
type shardFilter interface {
	FilterShard(body []byte, keep func(pkg, version string) bool) ([]byte, error)
}

// lacksFacts reports whether parsed metadata has no publish times at all.
func lacksFacts(md *classifiers.Metadata) bool {
	for _, v := range md.Versions {
		if !v.Published.IsZero() {
			return false
		}
	}
	return true
}

// merge fills facts missing in md from extra, version by version.
func merge(md, extra *classifiers.Metadata) {
	if md == nil || extra == nil {
		return
	}
	for i := range md.Versions {
		v := &md.Versions[i]
		e := extra.Version(v.Version)
		if e == nil {
			continue
		}
		if v.Published.IsZero() {
			v.Published = e.Published
		}
		v.Yanked = v.Yanked || e.Yanked
		v.Provenance = v.Provenance || e.Provenance
		v.HasInstallScript = v.HasInstallScript || e.HasInstallScript
		if v.Publisher == "" {
			v.Publisher = e.Publisher
		}
		if v.License == "" {
			v.License = e.License
		}
		if v.Integrity == "" {
			v.Integrity = e.Integrity
		}
		if v.Ref == "" {
			v.Ref = e.Ref
		}
	}
	if md.Latest == "" {
		md.Latest = extra.Latest
	}
}

// writeDocument sends a (possibly rewritten) metadata document with fresh
// validators: its own ETag from the body and the policy, and no upstream
// digests that no longer describe it.
func (p *Pipeline) writeDocument(w http.ResponseWriter, r *http.Request, rt *routed, f *filtered, body []byte) {
	if rt.index != nil && f.status == http.StatusOK {
		if ir, ok := rt.class.(classifiers.IndexRewriter); ok {
			out, err := ir.RewriteIndex(rt.req, body, rt.index.base)
			if err != nil {
				p.metadataError(w, rt, err)
				return
			}
			body = out
		}
	}
	h := w.Header()
	copyHeader(h, f.header)
	for _, k := range []string{"Content-Length", "Content-Encoding", "Digest", "Repr-Digest", "Content-Digest",
		"Content-Md5", "X-Checksum-Sha1", "X-Checksum-Md5", "X-Checksum-Sha256", "X-Checksum-Sha512", "Accept-Ranges", "Content-Range"} {
		h.Del(k)
	}
	if f.cache != "" {
		h.Set(HeaderCache, f.cache)
	}
	if f.status == http.StatusOK {
		if rt.req.Ecosystem == classifiers.RubyGems {
			// Bundler's compact index expects the ETag to be the MD5 of the body.
			sum := md5.Sum(body)
			h.Set("ETag", `"`+hex.EncodeToString(sum[:])+`"`)
		} else {
			sum := sha256.Sum256(append(body, f.policyID...))
			h.Set("ETag", `"cfp-`+hex.EncodeToString(sum[:12])+`"`)
		}
		if compressible(rt.req.Ecosystem) {
			addVary(h, "Accept-Encoding")
			if f.gz != nil && rt.index == nil && len(body) >= minGzipSize && acceptsGzip(r.Header) {
				// The gzip encoding is a representation of its own: its own
				// validator and digest (RFC 9110 8.8.3, RFC 9530).
				body = f.gz.encode(body)
				h.Set("Content-Encoding", "gzip")
				h.Set("ETag", strings.TrimSuffix(h.Get("ETag"), `"`)+`-gz"`)
			}
		}
		h.Set("Repr-Digest", reprDigest(body))
		h.Set(HeaderFiltered, strconv.Itoa(f.dropped))
		if f.policyID != "" {
			h.Set(HeaderDecision, "allow")
		}
		if rt.ev.Decision == "pass" && p.policy() != nil {
			rt.ev.Decision = "allow"
		}
		rt.ev.Filtered = f.dropped
		if etagMatch(r.Header.Get("If-None-Match"), h.Get("ETag")) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(f.status)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}

// writeError writes a plain-text error.
func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Del("Content-Length")
	w.WriteHeader(status)
	fmt.Fprintln(w, msg)
}

// writeUpstreamError turns a transport failure into a clear 502 (or 504).
func writeUpstreamError(w http.ResponseWriter, rt *routed, err error) {
	status := http.StatusBadGateway
	msg := err.Error()
	switch {
	case isCertError(err):
		msg = "upstream TLS verification failed: " + msg
	case isTimeout(err):
		status = http.StatusGatewayTimeout
	}
	writeError(w, status, fmt.Sprintf("cafilprox: cannot reach upstream %s for %s: %s (request %s)", rt.upstream.Host, rt.host, msg, rt.id))
}

func isIndexRewriter(c classifiers.Classifier) bool {
	_, ok := c.(classifiers.IndexRewriter)
	return ok
}

// serveRewrittenOther serves an unfiltered document whose absolute URLs
// must point at the proxy in index-URL mode (cargo config.json, Composer
// packages.json).
func (p *Pipeline) serveRewrittenOther(w http.ResponseWriter, r *http.Request, rt *routed) {
	key := cache.Key(rt.req.Ecosystem, rt.req.Package, rt.req.Version, "other "+rt.req.Variant, rt.real.String())
	doc, err := p.getDocument(r.Context(), rt, key, rt.upstream, r.Header)
	if err != nil {
		p.metadataError(w, rt, err)
		return
	}
	rt.ev.Cache = doc.cache
	p.writeDocument(w, r, rt, &filtered{body: doc.body, header: doc.header, status: doc.status, cache: doc.cache}, doc.body)
}

// listsDeniedPackages reports ecosystems whose clients show a refused
// download's reason but not a refused listing's.
func listsDeniedPackages(eco string) bool {
	return eco == classifiers.PyPI || eco == classifiers.RubyGems
}
