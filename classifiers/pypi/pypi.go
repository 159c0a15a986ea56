// Package pypi classifies requests to the Python Package Index (pip, uv),
// parses its three metadata forms (simple HTML, PEP 691 JSON, the legacy
// JSON API) into version facts and filters them by policy.
package pypi

import (
	"context"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/cafilprox/cafilprox/classifiers"
)

// Index is the canonical index host facts are fetched from.
const Index = "https://pypi.org"

// Variants: the simple API as HTML or PEP 691 JSON, and the JSON API.
const (
	VariantHTML    = "html"
	VariantJSON    = "json"
	VariantJSONAPI = "jsonapi"
)

// SimpleJSON is the PEP 691 content type.
const SimpleJSON = "application/vnd.pypi.simple.v1+json"

// Classifier implements classifiers.Classifier for PyPI.
type Classifier struct{}

var (
	_ classifiers.Classifier    = (*Classifier)(nil)
	_ classifiers.IndexRewriter = (*Classifier)(nil)
)

// New returns the PyPI classifier.
func New() *Classifier { return &Classifier{} }

// Ecosystem returns "pypi".
func (*Classifier) Ecosystem() string { return classifiers.PyPI }

// FactsElsewhere: the simple HTML page carries no upload times.
func (*Classifier) FactsElsewhere(req classifiers.Request) bool {
	return req.Variant == VariantHTML
}

// DefaultHosts lists the index and the file host.
func (*Classifier) DefaultHosts() []string {
	return []string{"pypi.org", "files.pythonhosted.org"}
}

// Normalize applies PEP 503 name normalization.
func Normalize(name string) string { return classifiers.Normalize(classifiers.PyPI, name) }

// Classify recognises simple pages, JSON API documents, distribution files
// and the integrity API.
func (*Classifier) Classify(r *http.Request) classifiers.Request {
	req := classifiers.Request{Ecosystem: classifiers.PyPI, Kind: classifiers.KindOther}
	p := r.URL.Path
	if strings.Contains(p, "/../") || strings.HasSuffix(p, "/..") {
		return req
	}
	segs := strings.Split(strings.Trim(p, "/"), "/")
	if classifiers.HostOnly(r.Host) == "files.pythonhosted.org" || (len(segs) > 0 && segs[0] == "packages") {
		if len(segs) >= 2 && segs[0] == "packages" {
			classifyFile(segs[len(segs)-1], &req)
		}
		return req
	}
	switch {
	case len(segs) == 2 && segs[0] == "simple" && segs[1] != "":
		req.Package = Normalize(segs[1])
		req.Kind = classifiers.KindMetadata
		req.Variant = simpleVariant(r)
	case len(segs) == 3 && segs[0] == "pypi" && segs[2] == "json":
		req.Package = Normalize(segs[1])
		req.Kind = classifiers.KindMetadata
		req.Variant = VariantJSONAPI
	case len(segs) == 4 && segs[0] == "pypi" && segs[3] == "json":
		req.Package = Normalize(segs[1])
		req.Version = segs[2]
		req.Kind = classifiers.KindMetadata
		req.Variant = VariantJSONAPI
	case len(segs) >= 3 && segs[0] == "integrity":
		// /integrity/<project>/<version>/<file>/provenance
		req.Package = Normalize(segs[1])
		req.Version = segs[2]
	}
	if r.Method != "" && r.Method != http.MethodGet && r.Method != http.MethodHead {
		req.Kind = classifiers.KindOther
	}
	return req
}

// classifyFile attributes a distribution file; PEP 658 .metadata files and
// signatures name their version but are passed through as other.
func classifyFile(file string, req *classifiers.Request) {
	base := file
	for _, suf := range []string{".metadata", ".asc", ".provenance"} {
		base = strings.TrimSuffix(base, suf)
	}
	name, ver, ok := ParseFilename(base)
	if !ok {
		return
	}
	req.Package, req.Version = name, ver
	if base == file {
		req.Kind = classifiers.KindArtifact
	}
}

// simpleVariant honours ?format= and the Accept q-values the way PEP 691
// content negotiation does; ties go to JSON, HTML is the fallback.
func simpleVariant(r *http.Request) string {
	if f := r.URL.Query().Get("format"); f != "" {
		// A literal "+" in a query string decodes as a space.
		if strings.HasSuffix(f, "+json") || strings.HasSuffix(f, " json") {
			return VariantJSON
		}
		return VariantHTML
	}
	jsonQ, htmlQ := -1.0, -1.0
	for part := range strings.SplitSeq(r.Header.Get("Accept"), ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if s, ok := params["q"]; ok {
			if v, err := strconv.ParseFloat(s, 64); err == nil {
				q = v
			}
		}
		switch mt {
		case SimpleJSON, "application/vnd.pypi.simple.latest+json":
			jsonQ = max(jsonQ, q)
		case "application/vnd.pypi.simple.v1+html", "application/vnd.pypi.simple.latest+html", "text/html", "*/*":
			htmlQ = max(htmlQ, q)
		}
	}
	if jsonQ > 0 && jsonQ >= htmlQ {
		return VariantJSON
	}
	return VariantHTML
}

var sdistExts = []string{".tar.gz", ".zip", ".tar.bz2", ".tar.xz", ".tgz", ".tar"}

// ParseFilename extracts the normalized project name and the version from
// a wheel ("name-ver(-build)?-py-abi-plat.whl"), an egg or an sdist
// ("name-ver.tar.gz"). Sdist names may contain hyphens, so the version
// starts at the first hyphen followed by a digit.
func ParseFilename(file string) (name, version string, ok bool) {
	if strings.ContainsAny(file, "/\\") {
		return "", "", false
	}
	if stem, isWheel := strings.CutSuffix(file, ".whl"); isWheel {
		parts := strings.Split(stem, "-")
		if len(parts) != 5 && len(parts) != 6 {
			return "", "", false
		}
		name, version = parts[0], parts[1]
	} else if stem, isEgg := strings.CutSuffix(file, ".egg"); isEgg {
		parts := strings.Split(stem, "-")
		if len(parts) < 2 {
			return "", "", false
		}
		name, version = parts[0], parts[1]
	} else {
		stem := ""
		for _, ext := range sdistExts {
			if s, cut := strings.CutSuffix(file, ext); cut {
				stem = s
				break
			}
		}
		for i := 0; i+1 < len(stem); i++ {
			if stem[i] == '-' && stem[i+1] >= '0' && stem[i+1] <= '9' {
				name, version = stem[:i], stem[i+1:]
				break
			}
		}
	}
	if name == "" || version == "" {
		return "", "", false
	}
	return Normalize(name), version, true
}

// File is one distribution file as an index document lists it.
type File struct {
	Filename string
	URL      string
	// Version is taken from the file name; empty when it cannot be.
	Version        string
	SHA256         string // lower-case hex; empty when not published
	RequiresPython string
	Yanked         bool
	YankedReason   string
	Uploaded       time.Time // zero in the HTML form
	// Provenance is the PEP 740 provenance URL; empty when none.
	Provenance string
}

// document is the parsed form of any of the three representations.
type document struct {
	name     string
	files    []File
	versions []string // PEP 700 "versions" or JSON API release keys
	latest   string
	license  string // JSON API: applies to latest only
}

func (d *document) hasVersion(v string) bool {
	for _, x := range d.versions {
		if x == v {
			return true
		}
	}
	return false
}

func parseDoc(req classifiers.Request, body []byte) (*document, error) {
	switch {
	case req.Variant == VariantJSONAPI:
		return parseJSONAPI(req, body)
	case req.Variant == VariantJSON || (req.Variant == "" && looksJSON(body)):
		return parseSimpleJSON(req, body)
	default:
		return parseHTML(req, body)
	}
}

func looksJSON(b []byte) bool {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '{':
			return true
		}
		return false
	}
	return false
}

// Files lists the distribution files of a simple page (HTML or JSON) or a
// JSON API document, for callers that check per-file digests.
func Files(req classifiers.Request, body []byte) ([]File, error) {
	d, err := parseDoc(req, body)
	if err != nil {
		return nil, err
	}
	return d.files, nil
}

// Parse reads any of the three forms into versions. A version's publish
// time is the earliest upload among its files; it is yanked when every one
// of its files is; it has provenance when any file does.
func (*Classifier) Parse(req classifiers.Request, body []byte) (*classifiers.Metadata, error) {
	d, err := parseDoc(req, body)
	if err != nil {
		return nil, err
	}
	md := &classifiers.Metadata{Package: d.name, Latest: d.latest}
	if md.Package == "" {
		md.Package = req.Package
	}
	idx := map[string]int{}
	add := func(v string) *classifiers.Version {
		if i, ok := idx[v]; ok {
			return &md.Versions[i]
		}
		idx[v] = len(md.Versions)
		md.Versions = append(md.Versions, classifiers.Version{Version: v, Yanked: true})
		return &md.Versions[len(md.Versions)-1]
	}
	nfiles := map[string]int{}
	for _, f := range d.files {
		if f.Version == "" {
			continue
		}
		v := add(f.Version)
		nfiles[f.Version]++
		v.Yanked = v.Yanked && f.Yanked
		v.Provenance = v.Provenance || f.Provenance != ""
		if !f.Uploaded.IsZero() && (v.Published.IsZero() || f.Uploaded.Before(v.Published)) {
			v.Published = f.Uploaded
		}
		// One integrity per version only makes sense for a single file;
		// per-file digests are available through Files.
		if f.SHA256 != "" && f.Filename != "" {
			if v.FileDigests == nil {
				v.FileDigests = map[string]string{}
			}
			v.FileDigests[f.Filename] = "sha256:" + f.SHA256
		}
		if nfiles[f.Version] == 1 && f.SHA256 != "" {
			v.Integrity = "sha256:" + f.SHA256
		} else {
			v.Integrity = ""
		}
	}
	for _, ver := range d.versions {
		if _, ok := idx[ver]; !ok {
			add(ver).Yanked = false // a release without files is not yanked
		}
	}
	if d.license != "" && d.latest != "" {
		if i, ok := idx[d.latest]; ok {
			md.Versions[i].License = d.license
		}
	}
	sortVersions(md.Versions)
	return md, nil
}

// Facts fetches the PEP 691 JSON page (PEP 700 upload times, PEP 740
// provenance, sha256). When req.Version is set and that version has a
// provenance document, its publisher kind is looked up too.
func (c *Classifier) Facts(ctx context.Context, req classifiers.Request, f classifiers.Fetcher) (*classifiers.Metadata, error) {
	if req.Package == "" {
		return nil, fmt.Errorf("pypi: facts need a package name")
	}
	h := http.Header{}
	h.Set("Accept", SimpleJSON)
	body, _, err := f.Fetch(ctx, Index+"/simple/"+url.PathEscape(Normalize(req.Package))+"/", h)
	if err != nil {
		return nil, fmt.Errorf("pypi: fetching %s: %w", req.Package, err)
	}
	sreq := classifiers.Request{Ecosystem: classifiers.PyPI, Package: Normalize(req.Package), Kind: classifiers.KindMetadata, Variant: VariantJSON}
	d, err := parseSimpleJSON(sreq, body)
	if err != nil {
		return nil, err
	}
	md, err := c.Parse(sreq, body)
	if err != nil {
		return nil, err
	}
	if req.Version == "" {
		return md, nil
	}
	v := md.Version(req.Version)
	if v == nil || !v.Provenance {
		return md, nil
	}
	for _, file := range d.files {
		if file.Version != req.Version || !strings.HasPrefix(file.Provenance, Index+"/integrity/") {
			continue
		}
		pub, err := publisherKind(ctx, f, file.Provenance)
		if err != nil {
			return nil, fmt.Errorf("pypi: provenance of %s: %w", file.Filename, err)
		}
		v.Publisher = pub
		break
	}
	return md, nil
}

// pathBase returns the unescaped last path segment of a URL or path.
func pathBase(u string) string {
	if i := strings.IndexAny(u, "#?"); i >= 0 {
		u = u[:i]
	}
	b := path.Base(u)
	if s, err := url.PathUnescape(b); err == nil {
		return s
	}
	return b
}
