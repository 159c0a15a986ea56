// Package cargo classifies requests to the crates.io sparse index and
// download hosts, parses index files into version facts and filters them
// line by line.
package cargo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"deps.dev/util/semver"

	"github.com/cafilprox/cafilprox/classifiers"
)

// Index is the canonical sparse index facts are fetched from.
const Index = "https://index.crates.io"

// Classifier implements classifiers.Classifier for Cargo.
type Classifier struct{}

var (
	_ classifiers.Classifier    = (*Classifier)(nil)
	_ classifiers.IndexRewriter = (*Classifier)(nil)
)

// New returns the Cargo classifier.
func New() *Classifier { return &Classifier{} }

// Ecosystem returns "cargo".
func (*Classifier) Ecosystem() string { return classifiers.Cargo }

// DefaultHosts lists the sparse index, the download CDN and the API host.
func (*Classifier) DefaultHosts() []string {
	return []string{"index.crates.io", "static.crates.io", "crates.io"}
}

// Classify recognises sparse index files, .crate downloads on
// static.crates.io and the API download redirect on crates.io.
func (*Classifier) Classify(r *http.Request) classifiers.Request {
	req := classifiers.Request{Ecosystem: classifiers.Cargo, Kind: classifiers.KindOther}
	segs := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
	switch classifiers.HostOnly(r.Host) {
	case "index.crates.io":
		if name, ok := IndexName(segs); ok {
			req.Package, req.Kind = name, classifiers.KindMetadata
		}
	case "static.crates.io":
		// /crates/<crate>/<crate>-<ver>.crate and /crates/<crate>/<ver>/download
		if len(segs) < 3 || segs[0] != "crates" || !validName(segs[1]) {
			return req
		}
		name := segs[1]
		switch {
		case len(segs) == 3:
			if v, ok := strings.CutPrefix(segs[2], name+"-"); ok {
				if v, ok = strings.CutSuffix(v, ".crate"); ok && v != "" {
					req.Package, req.Version, req.Kind = strings.ToLower(name), v, classifiers.KindArtifact
				}
			}
		case len(segs) == 4 && segs[3] == "download" && segs[2] != "":
			req.Package, req.Version, req.Kind = strings.ToLower(name), segs[2], classifiers.KindArtifact
		}
	case "crates.io":
		// /api/v1/crates/<crate>/<ver>/download
		if len(segs) == 6 && segs[0] == "api" && segs[1] == "v1" && segs[2] == "crates" && segs[5] == "download" && validName(segs[3]) && segs[4] != "" {
			req.Package, req.Version, req.Kind = strings.ToLower(segs[3]), segs[4], classifiers.KindArtifact
		}
	}
	if req.Kind != classifiers.KindOther && r.Method != "" && r.Method != http.MethodGet && r.Method != http.MethodHead {
		req.Kind = classifiers.KindOther
	}
	return req
}

// IndexName returns the crate an index path names (segments without the
// leading slash), checking the prefix directories the way cargo builds
// them: 1/<n>, 2/<n>, 3/<c>/<n>, <ab>/<cd>/<name>, all lower-case.
func IndexName(segs []string) (string, bool) {
	if len(segs) < 2 {
		return "", false
	}
	name := segs[len(segs)-1]
	if !validName(name) || name != strings.ToLower(name) || len(segs) > 3 {
		return "", false
	}
	want := IndexPath(name)
	if strings.Join(segs, "/") != want {
		return "", false
	}
	return name, true
}

// IndexPath is the sparse index path of a crate, without a leading slash.
func IndexPath(name string) string {
	name = strings.ToLower(name)
	switch len(name) {
	case 1:
		return "1/" + name
	case 2:
		return "2/" + name
	case 3:
		return "3/" + name[:1] + "/" + name
	}
	return name[:2] + "/" + name[2:4] + "/" + name
}

// validName accepts crate names as crates.io does: ASCII letters, digits,
// '-' and '_', at most 64 characters.
func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// entry holds the fields of an index line that matter here.
type entry struct {
	Name    string  `json:"name"`
	Vers    string  `json:"vers"`
	Cksum   string  `json:"cksum"`
	Yanked  bool    `json:"yanked"`
	Pubtime *string `json:"pubtime"`
}

// lines calls fn for every non-blank line of an index file with its span
// (including its line break) and decoded entry.
func lines(req classifiers.Request, body []byte, fn func(start, end int, e entry)) error {
	off := 0
	for len(body[off:]) > 0 {
		start := off
		line := body[off:]
		if i := bytes.IndexByte(line, '\n'); i >= 0 {
			line = line[:i+1]
		}
		off += len(line)
		trimmed := bytes.TrimSpace(line)
		if len(trimmed) == 0 {
			continue
		}
		var e entry
		if err := json.Unmarshal(trimmed, &e); err != nil {
			return classifiers.Malformed("cargo: %s: index line %q: %v", req.Package, truncate(trimmed), err)
		}
		if e.Vers == "" {
			return classifiers.Malformed("cargo: %s: index line without vers", req.Package)
		}
		fn(start, off, e)
	}
	return nil
}

func truncate(b []byte) string {
	if len(b) > 60 {
		return string(b[:60]) + "…"
	}
	return string(b)
}

// Parse reads an index file: one JSON object per line, in publish order.
func (*Classifier) Parse(req classifiers.Request, body []byte) (*classifiers.Metadata, error) {
	md := &classifiers.Metadata{Package: req.Package}
	err := lines(req, body, func(_, _ int, e entry) {
		v := classifiers.Version{Version: e.Vers, Yanked: e.Yanked}
		if isHex64(e.Cksum) {
			v.Integrity = "sha256:" + strings.ToLower(e.Cksum)
		}
		if e.Pubtime != nil {
			if t, err := time.Parse(time.RFC3339, *e.Pubtime); err == nil {
				v.Published = t.UTC()
			}
		}
		if md.Package == "" {
			md.Package = strings.ToLower(e.Name)
		}
		md.Versions = append(md.Versions, v)
	})
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(md.Versions, func(a, b classifiers.Version) int { return compareVersions(a.Version, b.Version) })
	return md, nil
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// compareVersions orders by Cargo semver; unparsable versions sort first.
func compareVersions(a, b string) int {
	va, ea := semver.Cargo.Parse(a)
	vb, eb := semver.Cargo.Parse(b)
	switch {
	case ea == nil && eb == nil:
		if c := va.Compare(vb); c != 0 {
			return c
		}
	case ea == nil:
		return 1
	case eb == nil:
		return -1
	}
	return strings.Compare(a, b)
}

// Filter drops the lines of denied versions and keeps the others byte for
// byte. An index file may become empty; cargo then finds no version.
func (*Classifier) Filter(req classifiers.Request, body []byte, keep func(version string) bool) ([]byte, error) {
	var out []byte
	last := 0
	err := lines(req, body, func(start, end int, e entry) {
		if keep(e.Vers) {
			return
		}
		if out == nil {
			out = make([]byte, 0, len(body))
		}
		out = append(out, body[last:start]...)
		last = end
	})
	if err != nil {
		return nil, err
	}
	if out == nil {
		return body, nil
	}
	return append(out, body[last:]...), nil
}

// Facts fetches the crate's index file, whose lines carry pubtime on
// crates.io.
func (c *Classifier) Facts(ctx context.Context, req classifiers.Request, f classifiers.Fetcher) (*classifiers.Metadata, error) {
	if !validName(req.Package) {
		return nil, fmt.Errorf("cargo: invalid crate name %q", req.Package)
	}
	body, _, err := f.Fetch(ctx, Index+"/"+IndexPath(req.Package), nil)
	if err != nil {
		return nil, fmt.Errorf("cargo: fetching index of %s: %w", req.Package, err)
	}
	return c.Parse(classifiers.Request{Ecosystem: classifiers.Cargo, Package: strings.ToLower(req.Package), Kind: classifiers.KindMetadata}, body)
}

// RewriteIndex rewrites the registry's config.json for index-URL mode:
// "dl" becomes proxyBase+"/dl/crates" (cargo appends
// /<crate>/<version>/download; the listener maps <base>/dl to
// static.crates.io) and "api" becomes proxyBase+"/api" (cargo appends
// /api/v1/...; <base>/api maps to crates.io); other keys are kept. Index
// files hold no URLs and are returned unchanged.
func (*Classifier) RewriteIndex(req classifiers.Request, body []byte, proxyBase string) ([]byte, error) {
	if req.Kind == classifiers.KindMetadata {
		return body, nil
	}
	var cfg map[string]json.RawMessage
	if err := json.Unmarshal(body, &cfg); err != nil {
		return nil, classifiers.Malformed("cargo: config.json: %v", err)
	}
	if _, ok := cfg["dl"]; !ok {
		return nil, classifiers.Malformed("cargo: config.json without dl")
	}
	base := strings.TrimSuffix(proxyBase, "/")
	cfg["dl"], _ = json.Marshal(base + "/dl/crates")
	if _, ok := cfg["api"]; ok {
		cfg["api"], _ = json.Marshal(base + "/api")
	}
	out, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("cargo: config.json: %w", err)
	}
	return append(out, '\n'), nil
}
