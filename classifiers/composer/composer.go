// Package composer classifies requests to Packagist (Composer v2 and the
// legacy v1 layout), parses the minified p2 metadata into version facts,
// filters it by expanding, dropping denied versions and re-minifying, and
// rewrites packages.json for index-URL mode.
package composer

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/cafilprox/cafilprox/classifiers"
)

// Registry is the canonical repository URL facts are fetched from.
const Registry = "https://repo.packagist.org"

// Variants of package metadata.
const (
	// VariantDev is the /p2/<vendor>/<name>~dev.json file of dev branches.
	VariantDev = "dev"
	// VariantLegacy is the Composer 1 file /p/<vendor>/<name>[$<sha256>].json
	// (versions as an object, not minified).
	VariantLegacy = "legacy"
)

// minifiedTag is the "minified" value of composer/2.0 minified documents.
const minifiedTag = "composer/2.0"

// Classifier implements classifiers.Classifier for Composer.
type Classifier struct{}

var (
	_ classifiers.Classifier    = (*Classifier)(nil)
	_ classifiers.IndexRewriter = (*Classifier)(nil)
)

// New returns the Composer classifier.
func New() *Classifier { return &Classifier{} }

// Ecosystem returns "composer".
func (*Classifier) Ecosystem() string { return classifiers.Composer }

// DefaultHosts lists the Packagist hosts.
func (*Classifier) DefaultHosts() []string {
	return []string{"repo.packagist.org", "packagist.org"}
}

// githubDist matches the GitHub archive URLs Packagist lists as dists:
// api.github.com/repos/OWNER/REPO/zipball/REF and
// codeload.github.com/OWNER/REPO/legacy.zip/REF.
var githubDist = regexp.MustCompile(`^(?:/repos/([^/]+)/([^/]+)/zipball|/([^/]+)/([^/]+)/legacy\.zip)/[^/]+$`)

// GuessPackage names the package a GitHub dist most likely belongs to:
// most packages are named like their repository (OWNER/REPO → owner/repo).
func (*Classifier) GuessPackage(u *url.URL) (string, bool) {
	h := strings.ToLower(u.Hostname())
	if h != "api.github.com" && h != "codeload.github.com" {
		return "", false
	}
	m := githubDist.FindStringSubmatch(u.Path)
	if m == nil || (h == "api.github.com") != (m[1] != "") {
		return "", false
	}
	return strings.ToLower(m[1] + m[3] + "/" + m[2] + m[4]), true
}

// Classify recognises /p2/<vendor>/<name>.json (and ~dev.json) and the
// legacy /p/<vendor>/<name>[$hash].json as metadata; packages.json,
// provider lists, search, download notifications and everything else are
// KindOther. Dists live on other hosts (GitHub) and are attributed from
// the metadata's ArtifactURLs.
func (*Classifier) Classify(r *http.Request) classifiers.Request {
	req := classifiers.Request{Ecosystem: classifiers.Composer, Kind: classifiers.KindOther}
	if r == nil || r.URL == nil {
		return req
	}
	p := r.URL.Path
	var variant string
	switch {
	case strings.HasPrefix(p, "/p2/"):
		rest, ok := strings.CutSuffix(p[len("/p2/"):], ".json")
		if !ok {
			return req
		}
		if n, dev := strings.CutSuffix(rest, "~dev"); dev {
			rest, variant = n, VariantDev
		}
		if name, ok := packageName(rest); ok {
			req.Kind, req.Package, req.Variant = classifiers.KindMetadata, name, variant
		}
	case strings.HasPrefix(p, "/p/"):
		rest, ok := strings.CutSuffix(p[len("/p/"):], ".json")
		if !ok {
			return req
		}
		if i := strings.IndexByte(rest, '$'); i >= 0 {
			if !isHex(rest[i+1:]) {
				return req
			}
			rest = rest[:i]
		}
		if name, ok := packageName(rest); ok {
			req.Kind, req.Package, req.Variant = classifiers.KindMetadata, name, VariantLegacy
		}
	}
	return req
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil && s != ""
}

// packageName validates "vendor/name" the way Packagist does and
// lower-cases it (Packagist names are case-insensitive).
func packageName(s string) (string, bool) {
	v, n, ok := strings.Cut(s, "/")
	if !ok || !validPart(v) || !validPart(n) {
		return "", false
	}
	return strings.ToLower(s), true
}

func validPart(s string) bool {
	if s == "" || s[0] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// document is a parsed p2 (or legacy) file.
type document struct {
	top      object
	packages object
	minified bool
}

func parseDocument(body []byte) (*document, error) {
	top, err := parseObject(body)
	if err != nil {
		return nil, err
	}
	raw, ok := top.get("packages")
	if !ok {
		return nil, classifiers.Malformed("composer: metadata without \"packages\"")
	}
	doc := &document{top: top, minified: top.str("minified") == minifiedTag}
	// Packagist sends "packages":[] for an empty map (PHP's empty array).
	if string(raw) == "[]" {
		return doc, nil
	}
	if doc.packages, err = parseCompact(raw); err != nil {
		return nil, err
	}
	return doc, nil
}

// versionsOf returns the expanded version entries of one package.
func (d *document) versionsOf(raw json.RawMessage, legacy bool) ([]object, []string, error) {
	if legacy {
		if string(raw) == "[]" {
			return nil, nil, nil
		}
		o, err := parseCompact(raw)
		if err != nil {
			return nil, nil, err
		}
		vs := make([]object, 0, len(o))
		keys := make([]string, 0, len(o))
		for _, m := range o {
			v, err := parseCompact(m.val)
			if err != nil {
				return nil, nil, err
			}
			vs = append(vs, v)
			keys = append(keys, m.key)
		}
		return vs, keys, nil
	}
	entries, err := parseArrayOfObjects(raw)
	if err != nil {
		return nil, nil, err
	}
	if d.minified {
		entries = expand(entries)
	}
	return entries, nil, nil
}

// versionString returns the entry's "version", erroring when it has none.
func versionString(v object, fallback string) (string, error) {
	if s := v.str("version"); s != "" {
		return s, nil
	}
	if fallback != "" {
		return fallback, nil
	}
	return "", classifiers.Malformed("composer: version entry without \"version\"")
}

// Parse reads a p2 (or legacy) file into versions with time, license,
// dist shasum, dist/source reference and the dist (and https source) URLs.
func (*Classifier) Parse(req classifiers.Request, body []byte) (*classifiers.Metadata, error) {
	doc, err := parseDocument(body)
	if err != nil {
		return nil, err
	}
	md := &classifiers.Metadata{Package: req.Package}
	for _, m := range doc.packages {
		if req.Package != "" && !strings.EqualFold(m.key, req.Package) {
			continue
		}
		if md.Package == "" {
			md.Package = strings.ToLower(m.key)
		}
		vs, keys, err := doc.versionsOf(m.val, req.Variant == VariantLegacy)
		if err != nil {
			return nil, err
		}
		for i, v := range vs {
			fallback := ""
			if keys != nil {
				fallback = keys[i]
			}
			ver, err := versionString(v, fallback)
			if err != nil {
				return nil, err
			}
			md.Versions = append(md.Versions, versionFacts(ver, v))
		}
	}
	return md, nil
}

// versionFacts extracts what policy needs from one expanded entry.
func versionFacts(ver string, v object) classifiers.Version {
	out := classifiers.Version{Version: ver}
	if t, err := time.Parse(time.RFC3339, v.str("time")); err == nil {
		out.Published = t.UTC()
	}
	if raw, ok := v.get("license"); ok {
		var ls []string
		if json.Unmarshal(raw, &ls) == nil {
			out.License = strings.Join(ls, " OR ")
		} else {
			out.License = v.str("license")
		}
	}
	var dist, source struct {
		URL       string `json:"url"`
		Reference string `json:"reference"`
		Shasum    string `json:"shasum"`
	}
	if raw, ok := v.get("dist"); ok {
		_ = json.Unmarshal(raw, &dist) // "dist": null or odd shapes mean "no dist"
	}
	if raw, ok := v.get("source"); ok {
		_ = json.Unmarshal(raw, &source)
	}
	if s := strings.ToLower(dist.Shasum); len(s) == 40 && isHex(s) {
		out.Integrity = "sha1:" + s
	}
	out.Ref = dist.Reference
	if out.Ref == "" {
		out.Ref = source.Reference
	}
	if dist.URL != "" {
		out.ArtifactURLs = append(out.ArtifactURLs, dist.URL)
	}
	if strings.HasPrefix(source.URL, "https://") {
		out.ArtifactURLs = append(out.ArtifactURLs, source.URL)
	}
	return out
}

// Filter expands the entries, drops the versions keep refuses and
// re-minifies (when the input was minified), keeping every other
// top-level key (security-advisories, minified...). A p2 file holds one
// package; every package it holds is filtered with keep. The output is
// compact JSON, as Packagist sends it; a document from which nothing is
// dropped is returned unchanged.
func (*Classifier) Filter(req classifiers.Request, body []byte, keep func(version string) bool) ([]byte, error) {
	doc, err := parseDocument(body)
	if err != nil {
		return nil, err
	}
	legacy := req.Variant == VariantLegacy
	changed := false
	for i, m := range doc.packages {
		vs, keys, err := doc.versionsOf(m.val, legacy)
		if err != nil {
			return nil, err
		}
		var kept []object
		var keptKeys []string
		for j, v := range vs {
			fallback := ""
			if keys != nil {
				fallback = keys[j]
			}
			ver, err := versionString(v, fallback)
			if err != nil {
				return nil, err
			}
			if keep(ver) {
				kept = append(kept, v)
				keptKeys = append(keptKeys, fallback)
			}
		}
		if len(kept) == len(vs) {
			continue
		}
		changed = true
		var buf bytes.Buffer
		switch {
		case legacy:
			o := make(object, len(kept))
			for j, v := range kept {
				var vb bytes.Buffer
				appendObject(&vb, v)
				o[j] = member{keptKeys[j], vb.Bytes()}
			}
			if len(o) == 0 {
				buf.WriteString("[]") // what PHP encodes an empty map as
			} else {
				appendObject(&buf, o)
			}
		default:
			if doc.minified {
				kept = minify(kept)
			}
			buf.WriteByte('[')
			for j, v := range kept {
				if j > 0 {
					buf.WriteByte(',')
				}
				appendObject(&buf, v)
			}
			buf.WriteByte(']')
		}
		doc.packages[i].val = buf.Bytes()
	}
	if !changed {
		return body, nil
	}
	var pb bytes.Buffer
	appendObject(&pb, doc.packages)
	doc.top.set("packages", pb.Bytes())
	var out bytes.Buffer
	out.Grow(len(body))
	appendObject(&out, doc.top)
	return out.Bytes(), nil
}

// Facts fetches https://repo.packagist.org/p2/<vendor>/<name>.json, or
// the ~dev.json file for the dev variant and dev versions (dev-<branch>,
// <x>-dev), and parses it: p2 files carry every version's time.
func (c *Classifier) Facts(ctx context.Context, req classifiers.Request, f classifiers.Fetcher) (*classifiers.Metadata, error) {
	name, ok := packageName(req.Package)
	if !ok {
		return nil, fmt.Errorf("composer: facts: invalid package name %q", req.Package)
	}
	u := Registry + "/p2/" + name
	if req.Variant == VariantDev || IsDevVersion(req.Version) {
		u += "~dev"
	}
	u += ".json"
	body, _, err := f.Fetch(ctx, u, nil)
	if err != nil {
		return nil, fmt.Errorf("composer: facts for %s: %w", name, err)
	}
	return c.Parse(classifiers.Request{Ecosystem: classifiers.Composer, Package: name, Kind: classifiers.KindMetadata}, body)
}

// IsDevVersion reports whether v is a branch version, which Packagist
// lists in ~dev.json rather than the tagged-release file.
func IsDevVersion(v string) bool {
	return strings.HasPrefix(v, "dev-") || strings.HasSuffix(v, "-dev")
}

// packagistPrefixes are absolute URL prefixes that index-URL mode moves
// under the proxy.
var packagistPrefixes = []string{"https://repo.packagist.org", "https://packagist.org"}

// rewriteURL maps a root-relative or Packagist URL under base; other URLs
// are returned unchanged.
func rewriteURL(s, base string) (string, bool) {
	if strings.HasPrefix(s, "/") && !strings.HasPrefix(s, "//") {
		return base + s, true
	}
	for _, p := range packagistPrefixes {
		if rest, ok := strings.CutPrefix(s, p); ok && (rest == "" || rest[0] == '/' || rest[0] == '?') {
			return base + rest, true
		}
	}
	return s, false
}

// rewriteStrings rewrites the string members of o (and of its object
// members, one level down: "security-advisories": {"api-url": ...}).
func rewriteStrings(o object, base string, depth int) (bool, error) {
	changed := false
	for i, m := range o {
		switch {
		case len(m.val) > 0 && m.val[0] == '"':
			var s string
			if err := json.Unmarshal(m.val, &s); err != nil {
				return false, malformed("json", err)
			}
			if ns, ok := rewriteURL(s, base); ok {
				b := jsonString(ns)
				o[i].val = b
				changed = true
			}
		case depth > 0 && len(m.val) > 0 && m.val[0] == '{':
			sub, err := parseCompact(m.val)
			if err != nil {
				return false, err
			}
			c, err := rewriteStrings(sub, base, depth-1)
			if err != nil {
				return false, err
			}
			if c {
				var buf bytes.Buffer
				appendObject(&buf, sub)
				o[i].val = buf.Bytes()
				changed = true
			}
		}
	}
	return changed, nil
}

// RewriteIndex points packages.json (req.Package empty) at the proxy:
// root-relative URLs such as "metadata-url": "/p2/%package%.json" would
// otherwise resolve to the proxy's root instead of proxyBase, and absolute
// Packagist URLs would leave the proxy. In p2 files only dist/source URLs
// on Packagist hosts are rewritten; GitHub dists keep their URL (the
// client fetches them directly or through the forward proxy).
func (*Classifier) RewriteIndex(req classifiers.Request, body []byte, proxyBase string) ([]byte, error) {
	base := strings.TrimSuffix(proxyBase, "/")
	if _, err := url.Parse(base); err != nil || base == "" {
		return nil, fmt.Errorf("composer: invalid proxy base %q", proxyBase)
	}
	top, err := parseObject(body)
	if err != nil {
		return nil, err
	}
	if req.Package == "" {
		changed, err := rewriteStrings(top, base, 1)
		if err != nil {
			return nil, err
		}
		if !changed {
			return body, nil
		}
		var out bytes.Buffer
		appendObject(&out, top)
		return out.Bytes(), nil
	}
	doc, err := parseDocument(body)
	if err != nil {
		return nil, err
	}
	changed := false
	for i, m := range doc.packages {
		if string(m.val) == "[]" {
			continue
		}
		var entries []object
		var legacy object
		if req.Variant == VariantLegacy {
			if legacy, err = parseCompact(m.val); err != nil {
				return nil, err
			}
			for _, lm := range legacy {
				e, err := parseCompact(lm.val)
				if err != nil {
					return nil, err
				}
				entries = append(entries, e)
			}
		} else if entries, err = parseArrayOfObjects(m.val); err != nil {
			return nil, err
		}
		pkgChanged := false
		for _, e := range entries {
			for k, em := range e {
				if em.key != "dist" && em.key != "source" || len(em.val) == 0 || em.val[0] != '{' {
					continue
				}
				sub, err := parseCompact(em.val)
				if err != nil {
					return nil, err
				}
				s := sub.str("url")
				ns, ok := rewriteURL(s, base)
				if !ok || strings.HasPrefix(s, "/") {
					continue // a relative dist URL is resolved by Composer itself
				}
				b := jsonString(ns)
				sub.set("url", b)
				var buf bytes.Buffer
				appendObject(&buf, sub)
				e[k].val = buf.Bytes()
				pkgChanged = true
			}
		}
		if !pkgChanged {
			continue
		}
		changed = true
		var buf bytes.Buffer
		if legacy != nil {
			for j := range legacy {
				var eb bytes.Buffer
				appendObject(&eb, entries[j])
				legacy[j].val = eb.Bytes()
			}
			appendObject(&buf, legacy)
		} else {
			buf.WriteByte('[')
			for j, e := range entries {
				if j > 0 {
					buf.WriteByte(',')
				}
				appendObject(&buf, e)
			}
			buf.WriteByte(']')
		}
		doc.packages[i].val = buf.Bytes()
	}
	if !changed {
		return body, nil
	}
	var pb bytes.Buffer
	appendObject(&pb, doc.packages)
	doc.top.set("packages", pb.Bytes())
	var out bytes.Buffer
	appendObject(&out, doc.top)
	return out.Bytes(), nil
}
