// Package cocoapods classifies requests to the CocoaPods CDN, parses its
// version shards and podspecs, and filters shard lines. Podspecs are never
// rewritten (Podfile.lock records their checksums).
package cocoapods

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/cafilprox/cafilprox/classifiers"
)

// Registry is the canonical CDN URL facts are fetched from.
const Registry = "https://cdn.cocoapods.org"

// Variants of CDN metadata.
const (
	// VariantShard is an all_pods_versions_<a>_<b>_<c>.txt file listing
	// the versions of every pod whose name hashes to that prefix.
	VariantShard = "shard"
	// VariantPodspec is Specs/<a>/<b>/<c>/<Name>/<ver>/<Name>.podspec.json.
	VariantPodspec = "podspec"
)

// Classifier implements classifiers.Classifier for CocoaPods.
type Classifier struct{}

var _ classifiers.Classifier = (*Classifier)(nil)

// New returns the CocoaPods classifier.
func New() *Classifier { return &Classifier{} }

// Ecosystem returns "cocoapods".
func (*Classifier) Ecosystem() string { return classifiers.CocoaPods }

// DefaultHosts lists the CocoaPods CDN host.
func (*Classifier) DefaultHosts() []string { return []string{"cdn.cocoapods.org"} }

// ShardFor returns the shard prefix of a pod, the first three hex digits of
// md5(name) joined by '_' ("BeaconKit" → "2_0_9"), as used in
// all_pods_versions_<prefix>.txt and, with '/', in Specs/<a>/<b>/<c>/.
func ShardFor(pod string) string {
	sum := md5.Sum([]byte(pod))
	h := hex.EncodeToString(sum[:2])
	return h[0:1] + "_" + h[1:2] + "_" + h[2:3]
}

// ShardURL is the real URL of the shard listing pod's versions.
func ShardURL(pod string) string {
	return Registry + "/all_pods_versions_" + ShardFor(pod) + ".txt"
}

// PodspecURL is the real URL of one version's podspec.
func PodspecURL(pod, version string) string {
	return Registry + "/Specs/" + strings.ReplaceAll(ShardFor(pod), "_", "/") + "/" + pod + "/" + version + "/" + pod + ".podspec.json"
}

// Classify recognises version shards (metadata for many pods: Package is
// empty) and podspecs (metadata of one version: Package and Version set).
// CocoaPods-version.yml, deprecated_podspecs.txt, all_pods.txt and
// everything else are KindOther. Sources (git/http on GitHub) are on other
// hosts and are attributed from the podspec's ArtifactURLs.
func (*Classifier) Classify(r *http.Request) classifiers.Request {
	req := classifiers.Request{Ecosystem: classifiers.CocoaPods, Kind: classifiers.KindOther}
	if r == nil || r.URL == nil {
		return req
	}
	p := r.URL.Path
	if rest, ok := strings.CutPrefix(p, "/all_pods_versions_"); ok {
		if prefix, ok := strings.CutSuffix(rest, ".txt"); ok && validPrefix(prefix) {
			req.Kind, req.Variant = classifiers.KindMetadata, VariantShard
		}
		return req
	}
	if rest, ok := strings.CutPrefix(p, "/Specs/"); ok {
		segs := strings.Split(rest, "/")
		if len(segs) != 6 || !validPrefix(segs[0]+"_"+segs[1]+"_"+segs[2]) {
			return req
		}
		name, ver, file := segs[3], segs[4], segs[5]
		if !validName(name) || !validVersion(ver) || file != name+".podspec.json" {
			return req
		}
		req.Kind, req.Variant = classifiers.KindMetadata, VariantPodspec
		req.Package, req.Version = name, ver
	}
	return req
}

// validPrefix accepts "<hex>_<hex>_<hex>".
func validPrefix(s string) bool {
	if len(s) != 5 || s[1] != '_' || s[3] != '_' {
		return false
	}
	for _, i := range []int{0, 2, 4} {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// validName rejects empty names and path tricks; pod names are otherwise
// free-form (letters, digits, '-', '_', '+', '.').
func validName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/\\ \n")
}

func validVersion(s string) bool { return validName(s) }

// ShardLine is one pod of a version shard.
type ShardLine struct {
	Pod      string
	Versions []string
}

// forEachLine calls fn with every non-empty line of body (without its line
// ending) and the line's full bytes (with it).
func forEachLine(body []byte, fn func(line, full []byte) error) error {
	for len(body) > 0 {
		i := bytes.IndexByte(body, '\n')
		full := body
		if i >= 0 {
			full = body[:i+1]
		}
		body = body[len(full):]
		line := bytes.TrimRight(full, "\r\n")
		if len(line) == 0 {
			continue
		}
		if err := fn(line, full); err != nil {
			return err
		}
	}
	return nil
}

func parseShardLine(line []byte) (ShardLine, error) {
	parts := strings.Split(string(line), "/")
	if !validName(parts[0]) || bytes.ContainsAny(line, " \t") {
		return ShardLine{}, classifiers.Malformed("cocoapods: shard line %.60q is not Name/v1/v2/...", line)
	}
	for _, v := range parts[1:] {
		if v == "" {
			return ShardLine{}, classifiers.Malformed("cocoapods: shard line %.60q has an empty version", line)
		}
	}
	return ShardLine{Pod: parts[0], Versions: parts[1:]}, nil
}

// ParseShard reads every line of an all_pods_versions_*.txt shard.
func ParseShard(body []byte) ([]ShardLine, error) {
	var out []ShardLine
	err := forEachLine(body, func(line, _ []byte) error {
		l, err := parseShardLine(line)
		if err != nil {
			return err
		}
		out = append(out, l)
		return nil
	})
	return out, err
}

// podspec is the part of a podspec JSON we read.
type podspec struct {
	Name    string          `json:"name"`
	Version string          `json:"version"`
	License json.RawMessage `json:"license"`
	Source  struct {
		Git    string `json:"git"`
		Tag    string `json:"tag"`
		Commit string `json:"commit"`
		HTTP   string `json:"http"`
		SHA256 string `json:"sha256"`
		SHA1   string `json:"sha1"`
	} `json:"source"`
}

func parsePodspec(body []byte) (classifiers.Version, string, error) {
	var ps podspec
	if err := json.Unmarshal(body, &ps); err != nil {
		return classifiers.Version{}, "", fmt.Errorf("%w: cocoapods: podspec: %v", classifiers.ErrMalformed, err)
	}
	if ps.Name == "" || ps.Version == "" {
		return classifiers.Version{}, "", classifiers.Malformed("cocoapods: podspec without name or version")
	}
	v := classifiers.Version{Version: ps.Version}
	var lic struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(ps.License, &v.License); err != nil && json.Unmarshal(ps.License, &lic) == nil {
		v.License = lic.Type
	}
	v.Ref = ps.Source.Tag
	if v.Ref == "" {
		v.Ref = ps.Source.Commit
	}
	switch {
	case ps.Source.HTTP != "":
		v.ArtifactURLs = []string{ps.Source.HTTP}
		if s := strings.ToLower(ps.Source.SHA256); len(s) == 64 && isHex(s) {
			v.Integrity = "sha256:" + s
		} else if s := strings.ToLower(ps.Source.SHA1); len(s) == 40 && isHex(s) {
			v.Integrity = "sha1:" + s
		}
	case ps.Source.Git != "":
		v.ArtifactURLs = []string{ps.Source.Git}
	}
	return v, ps.Name, nil
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil
}

// Parse reads a podspec into its one version (Ref = source tag or commit,
// ArtifactURLs = source http or git URL), or a shard into the versions of
// req.Package (none when Package is empty: use ParseShard for all pods).
// The CDN has no publish times.
func (*Classifier) Parse(req classifiers.Request, body []byte) (*classifiers.Metadata, error) {
	if req.Variant == VariantPodspec {
		v, name, err := parsePodspec(body)
		if err != nil {
			return nil, err
		}
		pkg := req.Package
		if pkg == "" {
			pkg = name
		}
		return &classifiers.Metadata{Package: pkg, Versions: []classifiers.Version{v}}, nil
	}
	lines, err := ParseShard(body)
	if err != nil {
		return nil, err
	}
	md := &classifiers.Metadata{Package: req.Package}
	for _, l := range lines {
		if req.Package == "" || l.Pod != req.Package {
			continue
		}
		for _, v := range l.Versions {
			md.Versions = append(md.Versions, classifiers.Version{Version: v})
		}
	}
	return md, nil
}

// Filter returns podspecs unchanged (they are never rewritten: a denied
// version's podspec is refused by the pipeline from Request.Version) and
// validates but does not change shards, whose keep cannot know which pod a
// version belongs to: the pipeline filters shards with FilterShard.
func (*Classifier) Filter(req classifiers.Request, body []byte, keep func(version string) bool) ([]byte, error) {
	if req.Variant == VariantPodspec {
		return body, nil
	}
	if _, err := ParseShard(body); err != nil {
		return nil, err
	}
	return body, nil
}

// FilterShard drops from a version shard every version keep refuses, and
// the whole line of a pod left with none (CocoaPods then reports the pod
// as unknown rather than failing on an empty list). Lines with nothing
// dropped stay byte-identical, line endings included.
func (*Classifier) FilterShard(body []byte, keep func(pod, version string) bool) ([]byte, error) {
	out := make([]byte, 0, len(body))
	err := forEachLine(body, func(line, full []byte) error {
		l, err := parseShardLine(line)
		if err != nil {
			return err
		}
		kept := l.Versions[:0:0]
		for _, v := range l.Versions {
			if keep(l.Pod, v) {
				kept = append(kept, v)
			}
		}
		switch {
		case len(kept) == len(l.Versions):
			out = append(out, full...)
		case len(kept) > 0:
			out = append(out, l.Pod...)
			for _, v := range kept {
				out = append(out, '/')
				out = append(out, v...)
			}
			out = append(out, full[len(line):]...)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Facts fetches the pod's shard for its version list and, when
// req.Version is set, that version's podspec for license, source ref and
// URLs. The CDN publishes no times at all, so Published stays zero: age
// rules cannot apply to CocoaPods.
func (c *Classifier) Facts(ctx context.Context, req classifiers.Request, f classifiers.Fetcher) (*classifiers.Metadata, error) {
	if !validName(req.Package) {
		return nil, fmt.Errorf("cocoapods: facts: invalid pod name %q", req.Package)
	}
	body, _, err := f.Fetch(ctx, ShardURL(req.Package), nil)
	if err != nil {
		return nil, fmt.Errorf("cocoapods: facts for %s: %w", req.Package, err)
	}
	md, err := c.Parse(classifiers.Request{Package: req.Package, Variant: VariantShard}, body)
	if err != nil {
		return nil, err
	}
	if req.Version == "" {
		return md, nil
	}
	if !validVersion(req.Version) {
		return nil, fmt.Errorf("cocoapods: facts: invalid version %q", req.Version)
	}
	spec, _, err := f.Fetch(ctx, PodspecURL(req.Package, req.Version), nil)
	if err != nil {
		return nil, fmt.Errorf("cocoapods: facts for %s@%s: %w", req.Package, req.Version, err)
	}
	v, _, err := parsePodspec(spec)
	if err != nil {
		return nil, err
	}
	v.Version = req.Version
	if cur := md.Version(req.Version); cur != nil {
		*cur = v
	} else {
		md.Versions = append(md.Versions, v)
	}
	return md, nil
}
