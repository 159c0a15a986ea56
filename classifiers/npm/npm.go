// Package npm classifies requests to the npm registry (npm, yarn, pnpm),
// parses packuments (full and abbreviated) into version facts, and filters
// them by dropping denied versions and repointing dist-tags.
package npm

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"deps.dev/util/semver"

	"github.com/cafilprox/cafilprox/classifiers"
	"github.com/cafilprox/cafilprox/classifiers/internal/jsonscan"
)

// now is the clock (tests move it).
var now = time.Now

// Registry is the canonical registry URL facts are fetched from.
const Registry = "https://registry.npmjs.org"

// Variants of a package document, chosen by the Accept header.
const (
	VariantFull        = "full"
	VariantAbbreviated = "abbreviated"
)

// abbreviatedMIME is the Accept type npm and pnpm send for install metadata.
const abbreviatedMIME = "application/vnd.npm.install-v1+json"

// Classifier implements classifiers.Classifier for npm.
type Classifier struct{}

var (
	_ classifiers.Classifier    = (*Classifier)(nil)
	_ classifiers.IndexRewriter = (*Classifier)(nil)
)

// New returns the npm classifier.
func New() *Classifier { return &Classifier{} }

// Ecosystem returns "npm".
func (*Classifier) Ecosystem() string { return classifiers.NPM }

// FactsElsewhere: abbreviated documents carry no publish times.
func (*Classifier) FactsElsewhere(req classifiers.Request) bool {
	return req.Variant == VariantAbbreviated
}

// DefaultHosts lists the public npm registry hosts.
func (*Classifier) DefaultHosts() []string {
	return []string{"registry.npmjs.org", "registry.yarnpkg.com"}
}

// Classify recognises package documents, version documents, tarballs and
// the registry's /-/ endpoints.
func (*Classifier) Classify(r *http.Request) classifiers.Request {
	req := classifiers.Request{Ecosystem: classifiers.NPM, Kind: classifiers.KindOther}
	// Unescaping the whole path turns "@scope%2fname" into "@scope/name",
	// which is how the path form and the encoded form become one.
	p, err := url.PathUnescape(r.URL.EscapedPath())
	if err != nil {
		return req
	}
	p = strings.TrimPrefix(p, "/")
	if p == "" {
		return req
	}
	if strings.HasPrefix(p, "-/") {
		classifyDash(p, &req)
		return req
	}
	segs := strings.Split(p, "/")
	name := segs[0]
	rest := segs[1:]
	if strings.HasPrefix(name, "@") {
		if len(segs) < 2 || segs[1] == "" || len(name) < 2 {
			return req
		}
		name = segs[0] + "/" + segs[1]
		rest = segs[2:]
	}
	if !validName(name) {
		return req
	}
	req.Package = name
	if r.Method != "" && r.Method != http.MethodGet && r.Method != http.MethodHead {
		return req // publish, unpublish, dist-tag changes
	}
	switch {
	case len(rest) == 0 || (len(rest) == 1 && rest[0] == ""):
		req.Kind = classifiers.KindMetadata
		req.Variant = VariantFull
		if strings.Contains(r.Header.Get("Accept"), abbreviatedMIME) {
			req.Variant = VariantAbbreviated
		}
	case len(rest) == 1:
		req.Kind = classifiers.KindMetadata
		req.Version = rest[0]
	case len(rest) >= 2 && rest[0] == "-":
		// Anything under /<name>/-/ is a file of the package, so it is
		// judged as an artifact even when the version cannot be read.
		req.Kind = classifiers.KindArtifact
		req.Version = tarballVersion(name, strings.Join(rest[1:], "/"))
	}
	return req
}

// classifyDash handles /-/ endpoints; attestations name a package version.
func classifyDash(p string, req *classifiers.Request) {
	const att = "-/npm/v1/attestations/"
	if !strings.HasPrefix(p, att) {
		return
	}
	spec := p[len(att):]
	at := strings.LastIndexByte(spec, '@')
	if at <= 0 {
		return
	}
	if name := spec[:at]; validName(name) {
		req.Package, req.Version = name, spec[at+1:]
	}
}

// tarballVersion extracts the version from "<basename>-<ver>.tgz"; it is
// empty when the file name does not belong to the package.
func tarballVersion(name, file string) string {
	base := name
	if i := strings.IndexByte(name, '/'); i >= 0 {
		base = name[i+1:]
	}
	v, ok := strings.CutPrefix(file, base+"-")
	if !ok {
		// Some registries name scoped tarballs "@scope/name-<ver>.tgz".
		if v, ok = strings.CutPrefix(file, name+"-"); !ok {
			return ""
		}
	}
	v, ok = strings.CutSuffix(v, ".tgz")
	if !ok || v == "" {
		return ""
	}
	return v
}

// validName rejects names npm could never publish, so that odd paths are
// not mistaken for packages.
func validName(name string) bool {
	if name == "" || len(name) > 214 || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
		return false
	}
	if strings.HasPrefix(name, "@") && strings.Count(name, "/") != 1 {
		return false
	}
	if !strings.HasPrefix(name, "@") && strings.Contains(name, "/") {
		return false
	}
	return !strings.ContainsAny(name, " \\?#%\x00\n\r\t")
}

// Parse reads a full or abbreviated packument, or a single version document.
// It walks the raw document and decodes only the few members it needs, so
// that the megabytes of readmes in a large packument are skipped, not decoded.
func (*Classifier) Parse(req classifiers.Request, body []byte) (*classifiers.Metadata, error) {
	if !jsonscan.Valid(body) {
		return nil, classifiers.Malformed("npm: %s: invalid JSON", req.Package)
	}
	top, ok := jsonscan.ObjectMembers(body, 0)
	if !ok {
		return nil, classifiers.Malformed("npm: %s: document is not an object", req.Package)
	}
	var versions, distTags, times *jsonscan.Member
	var single, hasDist bool
	md := &classifiers.Metadata{Package: req.Package}
	for i, m := range top {
		switch m.Key(body) {
		case "name":
			if n := rawString(body[m.ValStart:m.ValEnd]); n != "" {
				md.Package = n
			}
		case "versions":
			versions = &top[i]
		case "dist-tags":
			distTags = &top[i]
		case "time":
			times = &top[i]
		case "version":
			single = rawString(body[m.ValStart:m.ValEnd]) != ""
		case "dist":
			hasDist = true
		}
	}
	if versions == nil && single && hasDist {
		var one struct {
			Version string `json:"version"`
		}
		_ = json.Unmarshal(body, &one) // valid JSON with a string version, checked above
		v, err := parseVersion(one.Version, body, 0)
		if err != nil {
			return nil, err
		}
		md.Versions = []classifiers.Version{v}
		return md, nil
	}
	if versions == nil {
		return nil, classifiers.Malformed("npm: %s: document has no versions", req.Package)
	}
	vms, ok := jsonscan.ObjectMembers(body, versions.ValStart)
	if !ok {
		return nil, classifiers.Malformed("npm: %s: versions is not an object", req.Package)
	}
	if distTags != nil {
		if tms, ok := jsonscan.ObjectMembers(body, distTags.ValStart); ok {
			for _, t := range tms {
				if t.Key(body) == "latest" {
					md.Latest = rawString(body[t.ValStart:t.ValEnd])
				}
			}
		}
	}
	published := map[string]time.Time{}
	if times != nil {
		tms, _ := jsonscan.ObjectMembers(body, times.ValStart)
		for _, t := range tms {
			if pt, err := time.Parse(time.RFC3339Nano, rawString(body[t.ValStart:t.ValEnd])); err == nil {
				published[t.Key(body)] = pt.UTC()
			}
		}
	}
	md.Versions = make([]classifiers.Version, 0, len(vms))
	for _, m := range vms {
		ver := m.Key(body)
		v, err := parseVersion(ver, body, m.ValStart)
		if err != nil {
			return nil, err
		}
		v.Published = published[ver]
		md.Versions = append(md.Versions, v)
	}
	sortVersions(md.Versions)
	return md, nil
}

// parseVersion reads the facts of the version object at b[start]. Members
// whose type varies across the registry's history are read leniently.
func parseVersion(ver string, b []byte, start int) (classifiers.Version, error) {
	ms, ok := jsonscan.ObjectMembers(b, start)
	if !ok {
		return classifiers.Version{}, classifiers.Malformed("npm: version %q is not an object", ver)
	}
	v := classifiers.Version{Version: ver}
	var scriptsRaw, userRaw, distRaw []byte
	for _, m := range ms {
		raw := b[m.ValStart:m.ValEnd]
		switch m.Key(b) {
		case "license":
			v.License = license(raw)
		case "hasInstallScript":
			v.HasInstallScript = v.HasInstallScript || string(raw) == "true"
		case "scripts":
			scriptsRaw = raw
		case "_npmUser":
			userRaw = raw
		case "dist":
			distRaw = raw
		}
	}
	var scripts map[string]json.RawMessage
	if json.Unmarshal(scriptsRaw, &scripts) == nil {
		for _, s := range []string{"preinstall", "install", "postinstall"} {
			if _, ok := scripts[s]; ok {
				v.HasInstallScript = true
			}
		}
	}
	var user struct {
		TrustedPublisher struct {
			ID string `json:"id"`
		} `json:"trustedPublisher"`
	}
	if json.Unmarshal(userRaw, &user) == nil {
		v.Publisher = user.TrustedPublisher.ID
	}
	var dist struct {
		Integrity    string          `json:"integrity"`
		Shasum       string          `json:"shasum"`
		Attestations json.RawMessage `json:"attestations"`
	}
	if json.Unmarshal(distRaw, &dist) == nil {
		att := bytes.TrimSpace(dist.Attestations)
		v.Provenance = len(att) > 0 && !bytes.Equal(att, []byte("null"))
		v.Integrity = integrity(dist.Integrity, dist.Shasum)
	}
	return v, nil
}

// license reads "MIT", {"type":"MIT"} or [{"type":"MIT"},...] (joined with OR).
func license(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	type typed struct {
		Type string `json:"type"`
	}
	var o typed
	if json.Unmarshal(raw, &o) == nil {
		return o.Type
	}
	var list []typed
	if json.Unmarshal(raw, &list) == nil {
		var parts []string
		for _, l := range list {
			if l.Type != "" {
				parts = append(parts, l.Type)
			}
		}
		if len(parts) > 1 {
			return "(" + strings.Join(parts, " OR ") + ")"
		}
		return strings.Join(parts, "")
	}
	return ""
}

// integrity turns an SRI string (strongest hash wins) or a hex shasum into
// "<algo>:<hex>".
func integrity(sri, shasum string) string {
	best, bestRank := "", 0
	rank := map[string]int{"sha1": 1, "sha256": 2, "sha384": 0, "sha512": 3}
	for _, part := range strings.Fields(sri) {
		algo, b64, ok := strings.Cut(part, "-")
		if !ok || rank[algo] <= bestRank {
			continue
		}
		if i := strings.IndexByte(b64, '?'); i >= 0 {
			b64 = b64[:i] // SRI options
		}
		sum, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			continue
		}
		best, bestRank = algo+":"+hex.EncodeToString(sum), rank[algo]
	}
	if best != "" {
		return best
	}
	if shasum != "" {
		if _, err := hex.DecodeString(shasum); err == nil && len(shasum) == 40 {
			return "sha1:" + strings.ToLower(shasum)
		}
	}
	return ""
}

func rawString(raw json.RawMessage) string {
	var s string
	if len(raw) == 0 || json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

// Facts fetches the full packument, the only form with publish times.
func (c *Classifier) Facts(ctx context.Context, req classifiers.Request, f classifiers.Fetcher) (*classifiers.Metadata, error) {
	if req.Package == "" {
		return nil, fmt.Errorf("npm: facts need a package name")
	}
	h := http.Header{}
	h.Set("Accept", "application/json")
	body, _, err := f.Fetch(ctx, Registry+"/"+escapeName(req.Package), h)
	if err != nil {
		return nil, fmt.Errorf("npm: fetching %s: %w", req.Package, err)
	}
	full := req
	full.Kind, full.Version, full.Variant = classifiers.KindMetadata, "", VariantFull
	return c.Parse(full, body)
}

// escapeName gives the registry path of a name, "@scope%2fname" for scoped ones.
func escapeName(name string) string {
	if scope, n, ok := strings.Cut(name, "/"); ok {
		return url.PathEscape(scope) + "%2f" + url.PathEscape(n)
	}
	return url.PathEscape(name)
}

// RewriteIndex points dist.tarball URLs at proxyBase so that clients using
// the proxy as their registry URL fetch tarballs through it too.
func (*Classifier) RewriteIndex(req classifiers.Request, body []byte, proxyBase string) ([]byte, error) {
	if !jsonscan.Valid(body) {
		return nil, classifiers.Malformed("npm: %s: invalid JSON", req.Package)
	}
	base := strings.TrimSuffix(proxyBase, "/") + "/"
	key := []byte(`"tarball"`)
	var out []byte
	last := 0
	for i := 0; ; {
		j := bytes.Index(body[i:], key)
		if j < 0 {
			break
		}
		i += j + len(key)
		k := jsonscan.SkipSpace(body, i)
		if k >= len(body) || body[k] != ':' {
			continue
		}
		k = jsonscan.SkipSpace(body, k+1)
		if k >= len(body) || body[k] != '"' {
			continue
		}
		k++
		for _, host := range []string{"https://registry.npmjs.org/", "https://registry.yarnpkg.com/", "http://registry.npmjs.org/"} {
			if bytes.HasPrefix(body[k:], []byte(host)) {
				if out == nil {
					out = make([]byte, 0, len(body)+len(body)/8)
				}
				out = append(out, body[last:k]...)
				out = append(out, base...)
				last = k + len(host)
				i = last
				break
			}
		}
	}
	if out == nil {
		return body, nil
	}
	return append(out, body[last:]...), nil
}

// parseSemver parses an npm version, nil when it is not one.
func parseSemver(v string) *semver.Version {
	sv, err := semver.NPM.Parse(v)
	if err != nil {
		return nil
	}
	return sv
}
