// Package rubygems classifies requests to rubygems.org (gem, Bundler), parses
// the compact index (/info/<gem>) and the JSON API (/api/v1/versions) into
// version facts, and filters both by dropping denied versions.
package rubygems

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/cafilprox/cafilprox/classifiers"
)

// Registry is the canonical registry URL facts are fetched from.
const Registry = "https://rubygems.org"

// Variants of gem metadata. The compact index /info/<gem> has no variant.
const (
	// VariantAPI is the JSON API /api/v1/versions/<gem>.json.
	VariantAPI = "api"
	// VariantGemspec is the marshalled gemspec of one version
	// (/quick/Marshal.4.8/<gem>-<ver>.gemspec.rz).
	VariantGemspec = "gemspec"
	// VariantVersions is the global compact index /versions.
	VariantVersions = "versions"
)

// Classifier implements classifiers.Classifier for RubyGems.
type Classifier struct{}

var _ classifiers.Classifier = (*Classifier)(nil)

// New returns the RubyGems classifier.
func New() *Classifier { return &Classifier{} }

// Ecosystem returns "rubygems".
func (*Classifier) Ecosystem() string { return classifiers.RubyGems }

// DefaultHosts lists the public RubyGems hosts.
func (*Classifier) DefaultHosts() []string {
	return []string{"rubygems.org", "index.rubygems.org"}
}

// Classify recognises the compact index, gem downloads, quick gemspecs and
// the versions API; everything else on the hosts is KindOther.
func (*Classifier) Classify(r *http.Request) classifiers.Request {
	req := classifiers.Request{Ecosystem: classifiers.RubyGems, Kind: classifiers.KindOther}
	if r == nil || r.URL == nil {
		return req
	}
	p := r.URL.Path
	if r.URL.RawPath != "" {
		if u, err := url.PathUnescape(r.URL.RawPath); err == nil {
			p = u
		}
	}
	switch {
	case p == "/versions":
		req.Kind = classifiers.KindMetadata
		req.Variant = VariantVersions
	case strings.HasPrefix(p, "/info/"):
		name := p[len("/info/"):]
		if validName(name) {
			req.Kind = classifiers.KindMetadata
			req.Package = name
		}
	case strings.HasPrefix(p, "/gems/") || strings.HasPrefix(p, "/downloads/"):
		file := p[strings.IndexByte(p[1:], '/')+2:]
		if base, ok := strings.CutSuffix(file, ".gem"); ok {
			if name, ver, _, ok := SplitFilename(base); ok {
				req.Kind = classifiers.KindArtifact
				req.Package, req.Version = name, ver
			}
		}
	case strings.HasPrefix(p, "/quick/Marshal.4.8/"):
		file := p[len("/quick/Marshal.4.8/"):]
		if base, ok := strings.CutSuffix(file, ".gemspec.rz"); ok {
			if name, ver, _, ok := SplitFilename(base); ok {
				req.Kind = classifiers.KindMetadata
				req.Variant = VariantGemspec
				req.Package, req.Version = name, ver
			}
		}
	case strings.HasPrefix(p, "/api/v1/versions/"):
		rest := p[len("/api/v1/versions/"):]
		if name, ok := strings.CutSuffix(rest, ".json"); ok && validName(name) {
			req.Kind = classifiers.KindMetadata
			req.Variant = VariantAPI
			req.Package = name
		}
	}
	return req
}

// validName accepts gem names as rubygems.org allows them (letters, digits,
// '.', '_', '-'); it keeps path tricks like "a/b" or ".." out.
func validName(s string) bool {
	if s == "" || s == "." || s == ".." {
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

// versionLike reports whether s looks like a gem version: a digit first,
// then dot-separated alphanumeric segments ("1.2.3", "1.0.0.rc1", "20040616").
func versionLike(s string) bool {
	if s == "" || s[0] < '0' || s[0] > '9' {
		return false
	}
	prevDot := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.':
			if prevDot || i == len(s)-1 {
				return false
			}
			prevDot = true
		case c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			prevDot = false
		default:
			return false
		}
	}
	return true
}

// SplitFilename splits a gem file base name ("nokogiri-1.11.0-x86_64-linux")
// into name, version and platform (empty for pure-Ruby gems). Names may
// contain '-' and digits, so the version is the first '-'-separated segment
// that looks like a version and is not itself followed by another
// version-like segment (platforms such as "x86_64-linux", "java",
// "universal-darwin-9" never start with a digit).
func SplitFilename(base string) (name, version, platform string, ok bool) {
	segs := strings.Split(base, "-")
	for i := 1; i < len(segs); i++ {
		if !versionLike(segs[i]) {
			continue
		}
		if i+1 < len(segs) && versionLike(segs[i+1]) {
			continue
		}
		name = strings.Join(segs[:i], "-")
		if !validName(name) {
			return "", "", "", false
		}
		return name, segs[i], strings.Join(segs[i+1:], "-"), true
	}
	return "", "", "", false
}

// Parse reads /info/<gem>, the versions API JSON or a quick gemspec request.
// The global /versions index concerns no single package: Parse returns nil
// metadata for it.
func (*Classifier) Parse(req classifiers.Request, body []byte) (*classifiers.Metadata, error) {
	switch req.Variant {
	case VariantVersions:
		return nil, nil
	case VariantGemspec:
		// The marshalled gemspec is opaque to us; the URL names the version.
		return &classifiers.Metadata{Package: req.Package, Versions: []classifiers.Version{{Version: req.Version}}}, nil
	case VariantAPI:
		return parseAPI(req.Package, body)
	}
	return parseInfo(req.Package, body)
}

// infoLine is one version line of a compact index /info file.
type infoLine struct {
	version, platform, checksum string
}

// splitInfo returns the index of the first byte after the "---" header
// line, erroring when there is none.
func splitInfo(body []byte) (int, error) {
	if bytes.HasPrefix(body, []byte("---\n")) {
		return 4, nil
	}
	if i := bytes.Index(body, []byte("\n---\n")); i >= 0 {
		return i + 5, nil
	}
	if bytes.Equal(body, []byte("---")) {
		return 3, nil
	}
	return 0, classifiers.Malformed("rubygems: compact index without a --- header line")
}

// parseInfoLine reads "VER[-PLATFORM] deps|checksum:<sha256>,ruby:..".
func parseInfoLine(line []byte) (infoLine, error) {
	var l infoLine
	// Bundler splits on the first space; a bare version is accepted too.
	sp := bytes.IndexByte(line, ' ')
	if sp < 0 {
		sp = len(line)
	}
	vp := string(line[:sp])
	l.version, l.platform, _ = strings.Cut(vp, "-")
	if l.version == "" {
		return l, classifiers.Malformed("rubygems: compact index line %.60q has no version", line)
	}
	if _, reqs, ok := bytes.Cut(line[sp:], []byte("|")); ok {
		for _, r := range bytes.Split(reqs, []byte(",")) {
			if v, ok := bytes.CutPrefix(r, []byte("checksum:")); ok {
				l.checksum = strings.ToLower(string(v))
			}
		}
	}
	return l, nil
}

// forEachLine calls fn for every non-empty line of body[from:] with its
// start and end (excluding '\n') offsets.
func forEachLine(body []byte, from int, fn func(line []byte, start, end int) error) error {
	for i := from; i < len(body); {
		j := bytes.IndexByte(body[i:], '\n')
		end := len(body)
		next := len(body)
		if j >= 0 {
			end = i + j
			next = end + 1
		}
		if end > i {
			if err := fn(body[i:end], i, next); err != nil {
				return err
			}
		}
		i = next
	}
	return nil
}

func parseInfo(pkg string, body []byte) (*classifiers.Metadata, error) {
	start, err := splitInfo(body)
	if err != nil {
		return nil, err
	}
	md := &classifiers.Metadata{Package: pkg}
	idx := map[string]int{}
	err = forEachLine(body, start, func(line []byte, _, _ int) error {
		l, err := parseInfoLine(line)
		if err != nil {
			return err
		}
		i, seen := idx[l.version]
		if !seen {
			i = len(md.Versions)
			idx[l.version] = i
			md.Versions = append(md.Versions, classifiers.Version{Version: l.version})
		}
		// The ruby platform's checksum is the one `gem install name -v x`
		// fetches by default; other platforms only fill a gap.
		if l.checksum != "" && (l.platform == "" || md.Versions[i].Integrity == "") && isHex(l.checksum, 64) {
			md.Versions[i].Integrity = "sha256:" + l.checksum
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return md, nil
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// apiVersion is one entry of /api/v1/versions/<gem>.json.
type apiVersion struct {
	Number    string   `json:"number"`
	Platform  string   `json:"platform"`
	CreatedAt string   `json:"created_at"`
	SHA       string   `json:"sha"`
	Licenses  []string `json:"licenses"`
}

func parseAPI(pkg string, body []byte) (*classifiers.Metadata, error) {
	var list []apiVersion
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, fmt.Errorf("%w: rubygems: versions API: %v", classifiers.ErrMalformed, err)
	}
	md := &classifiers.Metadata{Package: pkg}
	idx := map[string]int{}
	for _, a := range list {
		if a.Number == "" {
			return nil, classifiers.Malformed("rubygems: versions API entry without number")
		}
		i, seen := idx[a.Number]
		if !seen {
			i = len(md.Versions)
			idx[a.Number] = i
			md.Versions = append(md.Versions, classifiers.Version{Version: a.Number})
		}
		v := &md.Versions[i]
		ruby := a.Platform == "" || a.Platform == "ruby"
		if t, err := time.Parse(time.RFC3339Nano, a.CreatedAt); err == nil {
			// Platform gems of one version are pushed separately; the
			// earliest push is when the version first appeared.
			if v.Published.IsZero() || t.Before(v.Published) {
				v.Published = t.UTC()
			}
		}
		if sha := strings.ToLower(a.SHA); isHex(sha, 64) && (ruby || v.Integrity == "") {
			v.Integrity = "sha256:" + sha
		}
		if len(a.Licenses) > 0 && (ruby || v.License == "") {
			v.License = strings.Join(a.Licenses, " OR ")
		}
	}
	return md, nil
}

// Filter drops denied versions from /info/<gem> (every platform line of a
// denied version; the header and all other lines stay byte-identical) and
// from the versions API JSON. /versions and quick gemspecs are returned
// unchanged: /versions names no single package, and a gemspec of a denied
// version is refused by the pipeline from its Request.Version.
func (*Classifier) Filter(req classifiers.Request, body []byte, keep func(version string) bool) ([]byte, error) {
	switch req.Variant {
	case VariantVersions, VariantGemspec:
		return body, nil
	case VariantAPI:
		return filterAPI(body, keep)
	}
	return filterInfo(body, keep)
}

func filterInfo(body []byte, keep func(string) bool) ([]byte, error) {
	start, err := splitInfo(body)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(body))
	out = append(out, body[:start]...)
	err = forEachLine(body, start, func(line []byte, s, next int) error {
		l, err := parseInfoLine(line)
		if err != nil {
			return err
		}
		if keep(l.version) {
			out = append(out, body[s:next]...)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func filterAPI(body []byte, keep func(string) bool) ([]byte, error) {
	var raw []json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("%w: rubygems: versions API: %v", classifiers.ErrMalformed, err)
	}
	var buf bytes.Buffer
	buf.Grow(len(body))
	buf.WriteByte('[')
	n := 0
	for _, r := range raw {
		var a struct {
			Number string `json:"number"`
		}
		if err := json.Unmarshal(r, &a); err != nil || a.Number == "" {
			return nil, classifiers.Malformed("rubygems: versions API entry without number")
		}
		if !keep(a.Number) {
			continue
		}
		if n > 0 {
			buf.WriteByte(',')
		}
		buf.Write(r)
		n++
	}
	buf.WriteByte(']')
	return buf.Bytes(), nil
}

// Facts fetches https://rubygems.org/api/v1/versions/<gem>.json, the only
// document with publish times (created_at), sha256 and licenses.
func (c *Classifier) Facts(ctx context.Context, req classifiers.Request, f classifiers.Fetcher) (*classifiers.Metadata, error) {
	if !validName(req.Package) {
		return nil, fmt.Errorf("rubygems: facts: invalid gem name %q", req.Package)
	}
	u := Registry + "/api/v1/versions/" + req.Package + ".json"
	body, _, err := f.Fetch(ctx, u, http.Header{"Accept": {"application/json"}})
	if err != nil {
		return nil, fmt.Errorf("rubygems: facts for %s: %w", req.Package, err)
	}
	return parseAPI(req.Package, body)
}

// InfoETag is the ETag rubygems.org gives a compact index file: the quoted
// MD5 hex of the body. The pipeline must use exactly this on a filtered
// /info: Bundler < 2.5 compares the ETag with the MD5 of the file it wrote
// (a mismatch is a checksum error) and sends that MD5 as If-None-Match.
func InfoETag(body []byte) string {
	sum := md5.Sum(body)
	return `"` + hex.EncodeToString(sum[:]) + `"`
}

// ReprDigest is the Repr-Digest header value ("sha-256=:<base64>:") for a
// complete body; Bundler checks it against the file it ends up with.
func ReprDigest(body []byte) string {
	sum := sha256.Sum256(body)
	return "sha-256=:" + base64.StdEncoding.EncodeToString(sum[:]) + ":"
}
