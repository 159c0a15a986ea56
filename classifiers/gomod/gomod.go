// Package gomod classifies requests to the Go module proxy, filters the
// version list and @latest by policy, and gathers publish times from the
// proxy's .info documents. .mod and .zip files and the checksum database
// are verified by the go command and are never rewritten.
package gomod

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
	"golang.org/x/sync/errgroup"

	"github.com/cafilprox/cafilprox/classifiers"
)

// Proxy is the canonical module proxy facts are fetched from.
const Proxy = "https://proxy.golang.org"

// VariantLatest marks the @latest document.
const VariantLatest = "latest"

// infoConcurrency bounds parallel .info fetches in Facts.
const infoConcurrency = 8

// Classifier implements classifiers.Classifier for Go modules.
type Classifier struct{}

var (
	_ classifiers.Classifier    = (*Classifier)(nil)
	_ classifiers.LatestBuilder = (*Classifier)(nil)
)

// New returns the Go module classifier.
func New() *Classifier { return &Classifier{} }

// Ecosystem returns "go".
func (*Classifier) Ecosystem() string { return classifiers.Go }

// DefaultHosts lists the module proxy and the checksum database.
func (*Classifier) DefaultHosts() []string {
	return []string{"proxy.golang.org", "sum.golang.org"}
}

// Classify recognises <module>/@v/list, @v/<version>.info|.mod|.zip and
// <module>/@latest; the checksum database is always other.
func (*Classifier) Classify(r *http.Request) classifiers.Request {
	req := classifiers.Request{Ecosystem: classifiers.Go, Kind: classifiers.KindOther}
	if classifiers.HostOnly(r.Host) == "sum.golang.org" {
		return req
	}
	p := strings.TrimPrefix(r.URL.Path, "/")
	if strings.HasPrefix(p, "sumdb/") {
		return req
	}
	if escMod, ok := strings.CutSuffix(p, "/@latest"); ok {
		if mod, err := module.UnescapePath(escMod); err == nil {
			req.Package, req.Kind, req.Variant = mod, classifiers.KindMetadata, VariantLatest
		}
		return req
	}
	escMod, file, ok := strings.Cut(p, "/@v/")
	if !ok {
		return req
	}
	mod, err := module.UnescapePath(escMod)
	if err != nil {
		return req
	}
	req.Package = mod
	if file == "list" {
		req.Kind = classifiers.KindMetadata
		return req
	}
	ext := file[strings.LastIndexByte(file, '.')+1:]
	escVer := strings.TrimSuffix(file, "."+ext)
	ver, err := module.UnescapeVersion(escVer)
	if err != nil || escVer == file {
		return req
	}
	switch ext {
	case "info", "mod":
		req.Kind, req.Version = classifiers.KindMetadata, ver
	case "zip":
		req.Kind, req.Version = classifiers.KindArtifact, ver
	}
	return req
}

// info is the proxy's {Version, Time} document (.info and @latest).
type info struct {
	Version string
	Time    time.Time
}

// Parse reads a version list (one version per line), an .info or an
// @latest document. A .mod file names no versions of its own: it gives
// the requested version without facts.
func (*Classifier) Parse(req classifiers.Request, body []byte) (*classifiers.Metadata, error) {
	md := &classifiers.Metadata{Package: req.Package}
	switch {
	case req.Variant == VariantLatest || (req.Version != "" && looksJSON(body)):
		var in info
		if err := json.Unmarshal(body, &in); err != nil {
			return nil, classifiers.Malformed("gomod: %s: %v", req.Package, err)
		}
		if in.Version == "" {
			return nil, classifiers.Malformed("gomod: %s: info without Version", req.Package)
		}
		md.Versions = []classifiers.Version{{Version: in.Version, Published: in.Time.UTC()}}
		if req.Variant == VariantLatest {
			md.Latest = in.Version
		}
	case req.Version != "":
		md.Versions = []classifiers.Version{{Version: req.Version}}
	default:
		vs, err := parseList(req, body)
		if err != nil {
			return nil, err
		}
		for _, v := range vs {
			md.Versions = append(md.Versions, classifiers.Version{Version: v})
		}
	}
	return md, nil
}

func looksJSON(b []byte) bool {
	b = bytes.TrimSpace(b)
	return len(b) > 0 && b[0] == '{'
}

// parseList returns the versions of a list document, sorted by semver.
func parseList(req classifiers.Request, body []byte) ([]string, error) {
	var vs []string
	for line := range strings.Lines(string(body)) {
		v := strings.TrimSpace(line)
		if v == "" {
			continue
		}
		// Lines may carry more fields after the version (old proxies did);
		// only the first one matters.
		v, _, _ = strings.Cut(v, " ")
		if !semver.IsValid(v) {
			return nil, classifiers.Malformed("gomod: %s: invalid version %q in list", req.Package, v)
		}
		vs = append(vs, v)
	}
	semver.Sort(vs)
	return slices.Compact(vs), nil
}

// Filter drops denied versions from a list (keeping the original lines of
// the rest) or, for .info and @latest documents, refuses a denied version
// with ErrNoAllowedVersion; the pipeline then asks BuildLatest for @latest.
func (c *Classifier) Filter(req classifiers.Request, body []byte, keep func(version string) bool) ([]byte, error) {
	if req.Variant == VariantLatest || req.Version != "" {
		md, err := c.Parse(req, body)
		if err != nil {
			return nil, err
		}
		if v := md.Versions[0].Version; !keep(v) {
			return nil, fmt.Errorf("gomod: %s@%s: %w", req.Package, v, classifiers.ErrNoAllowedVersion)
		}
		return body, nil
	}
	if _, err := parseList(req, body); err != nil {
		return nil, err
	}
	var out []byte
	last := 0
	off := 0
	for line := range strings.Lines(string(body)) {
		start := off
		off += len(line)
		v, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		if v == "" || keep(v) {
			continue
		}
		if out == nil {
			out = make([]byte, 0, len(body))
		}
		out = append(out, body[last:start]...)
		last = off
	}
	if out == nil {
		return body, nil
	}
	return append(out, body[last:]...), nil
}

// BuildLatest answers @latest with the newest kept version of md: the
// highest release, else the highest pre-release, else the newest
// pseudo-version by time, as the go command itself prefers.
func (*Classifier) BuildLatest(req classifiers.Request, md *classifiers.Metadata, keep func(version string) bool) ([]byte, error) {
	if md == nil {
		return nil, fmt.Errorf("gomod: %s: no facts: %w", req.Package, classifiers.ErrNoAllowedVersion)
	}
	var best *classifiers.Version
	rank := func(v *classifiers.Version) int {
		switch {
		case module.IsPseudoVersion(v.Version):
			return 0
		case semver.Prerelease(v.Version) != "":
			return 1
		}
		return 2
	}
	for i := range md.Versions {
		v := &md.Versions[i]
		if !semver.IsValid(v.Version) || !keep(v.Version) {
			continue
		}
		if best == nil {
			best = v
			continue
		}
		rv, rb := rank(v), rank(best)
		switch {
		case rv != rb:
			if rv > rb {
				best = v
			}
		case rv == 0:
			if v.Published.After(best.Published) || (v.Published.Equal(best.Published) && semver.Compare(v.Version, best.Version) > 0) {
				best = v
			}
		case semver.Compare(v.Version, best.Version) > 0:
			best = v
		}
	}
	if best == nil {
		return nil, fmt.Errorf("gomod: %s: %w", req.Package, classifiers.ErrNoAllowedVersion)
	}
	out := struct {
		Version string
		Time    *time.Time `json:",omitempty"`
	}{Version: best.Version}
	if !best.Published.IsZero() {
		t := best.Published.UTC()
		out.Time = &t
	}
	return json.Marshal(out)
}

// Facts fetches the version list and the .info of every listed version
// (or only of req.Version when set) for publish times. A version whose
// .info the proxy refuses is kept without a time.
func (c *Classifier) Facts(ctx context.Context, req classifiers.Request, f classifiers.Fetcher) (*classifiers.Metadata, error) {
	esc, err := module.EscapePath(req.Package)
	if err != nil {
		return nil, fmt.Errorf("gomod: %s: %w", req.Package, err)
	}
	base := Proxy + "/" + esc + "/@v/"
	body, _, err := f.Fetch(ctx, base+"list", nil)
	if err != nil {
		return nil, fmt.Errorf("gomod: fetching list of %s: %w", req.Package, err)
	}
	md, err := c.Parse(classifiers.Request{Ecosystem: classifiers.Go, Package: req.Package, Kind: classifiers.KindMetadata}, body)
	if err != nil {
		return nil, err
	}
	if req.Version != "" && md.Version(req.Version) == nil {
		// Pseudo-versions are not listed but are served.
		md.Versions = append(md.Versions, classifiers.Version{Version: req.Version})
	}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(infoConcurrency)
	for i := range md.Versions {
		v := md.Versions[i].Version
		if req.Version != "" && v != req.Version {
			continue
		}
		g.Go(func() error {
			ev, err := module.EscapeVersion(v)
			if err != nil {
				return nil // not a version the proxy can serve
			}
			b, _, err := f.Fetch(gctx, base+ev+".info", nil)
			if err != nil {
				var se *classifiers.StatusError
				if errors.As(err, &se) {
					return nil
				}
				return fmt.Errorf("gomod: fetching %s@%s info: %w", req.Package, v, err)
			}
			var in info
			if json.Unmarshal(b, &in) != nil {
				return classifiers.Malformed("gomod: %s@%s: bad .info", req.Package, v)
			}
			mu.Lock()
			md.Versions[i].Published = in.Time.UTC()
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return md, nil
}
