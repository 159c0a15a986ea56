// Package maven classifies requests to Maven Central, parses
// maven-metadata.xml into versions (publish times come from the POM's
// Last-Modified header), and filters it by dropping denied <version> entries
// and repointing <latest>/<release>.
package maven

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"deps.dev/util/semver"
	"golang.org/x/sync/errgroup"

	"github.com/cafilprox/cafilprox/classifiers"
)

// Registry is the canonical repository URL: checksum parents and facts are
// named under it whichever Central host the client used.
const Registry = "https://repo.maven.apache.org/maven2"

// MetadataFile is the name of the per-artifact version list.
const MetadataFile = "maven-metadata.xml"

// FactsConcurrency bounds the parallel POM fetches of Facts.
const FactsConcurrency = 8

// checksumAlgos maps checksum sidecar extensions to algorithm names.
var checksumAlgos = map[string]string{".md5": "md5", ".sha1": "sha1", ".sha256": "sha256", ".sha512": "sha512"}

// Classifier implements classifiers.Classifier for Maven repositories.
type Classifier struct{}

var _ classifiers.Classifier = (*Classifier)(nil)

// New returns the Maven classifier.
func New() *Classifier { return &Classifier{} }

// Ecosystem returns "maven".
func (*Classifier) Ecosystem() string { return classifiers.Maven }

// DefaultHosts lists Maven Central's host names.
func (*Classifier) DefaultHosts() []string {
	return []string{"repo.maven.apache.org", "repo1.maven.org"}
}

// Classify recognises /maven2/<group/path>/<artifact>/maven-metadata.xml
// (and its checksum sidecars) and the files of a version directory
// /maven2/<group/path>/<artifact>/<version>/<artifact>-<version>[-<classifier>].<ext>
// including their .sha1/.md5/.sha256/.sha512/.asc sidecars, which are
// artifacts too so that a denied version refuses them all.
func (*Classifier) Classify(r *http.Request) classifiers.Request {
	req := classifiers.Request{Ecosystem: classifiers.Maven, Kind: classifiers.KindOther}
	if r == nil || r.URL == nil {
		return req
	}
	p := r.URL.Path
	rest, ok := strings.CutPrefix(p, "/maven2/")
	if !ok {
		return req
	}
	segs := strings.Split(rest, "/")
	for _, s := range segs {
		if s == "" || s == "." || s == ".." {
			return req
		}
	}
	file := segs[len(segs)-1]
	base, algo, sidecar := stripSidecar(file)

	if base == MetadataFile {
		dirs := segs[:len(segs)-1]
		// <g...>/<a>/<v>/maven-metadata.xml is a SNAPSHOT version's build
		// list: it concerns one version and is passed through.
		if len(dirs) >= 3 && strings.HasSuffix(dirs[len(dirs)-1], "-SNAPSHOT") {
			req.Package = strings.Join(dirs[:len(dirs)-2], ".") + ":" + dirs[len(dirs)-2]
			req.Version = dirs[len(dirs)-1]
			return req
		}
		if len(dirs) < 2 {
			return req
		}
		req.Package = strings.Join(dirs[:len(dirs)-1], ".") + ":" + dirs[len(dirs)-1]
		switch {
		case !sidecar:
			req.Kind = classifiers.KindMetadata
		case algo != "" && file == MetadataFile+"."+algo:
			req.Kind = classifiers.KindMetadata
			req.ChecksumOf = Registry + "/" + strings.Join(dirs, "/") + "/" + MetadataFile
			req.ChecksumAlgo = algo
		}
		// A signature (.asc) of metadata cannot match a rewritten document;
		// it stays KindOther and is passed through.
		return req
	}

	if len(segs) < 4 {
		return req
	}
	ver, art := segs[len(segs)-2], segs[len(segs)-3]
	if !artifactFile(base, art, ver) {
		return req
	}
	req.Kind = classifiers.KindArtifact
	req.Package = strings.Join(segs[:len(segs)-3], ".") + ":" + art
	req.Version = ver
	return req
}

// stripSidecar removes checksum/signature suffixes ("x.jar.asc.sha1" →
// "x.jar"); algo is the outermost checksum algorithm, if any.
func stripSidecar(file string) (base, algo string, sidecar bool) {
	base = file
	for i := 0; ; i++ {
		ext := base[strings.LastIndexByte(base, '.')+1:]
		if a, ok := checksumAlgos["."+ext]; ok && len(base) > len(ext)+1 {
			if i == 0 {
				algo = a
			}
		} else if ext != "asc" || len(base) <= len(ext)+1 {
			return base, algo, i > 0
		}
		base = base[:len(base)-len(ext)-1]
	}
}

// artifactFile reports whether file is "<art>-<ver>[-<classifier>].<ext>";
// a SNAPSHOT directory also holds timestamped files "<art>-<base>-<ts>-<n>…".
func artifactFile(file, art, ver string) bool {
	prefix := art + "-" + ver
	if b, ok := strings.CutSuffix(ver, "-SNAPSHOT"); ok && !strings.HasPrefix(file, prefix) {
		prefix = art + "-" + b + "-"
		return strings.HasPrefix(file, prefix) && strings.IndexByte(file[len(prefix):], '.') > 0
	}
	rest, ok := strings.CutPrefix(file, prefix)
	if !ok || rest == "" {
		return false
	}
	switch rest[0] {
	case '.':
		return len(rest) > 1
	case '-':
		return strings.IndexByte(rest, '.') > 1
	}
	return false
}

// Coordinates splits "groupId:artifactId".
func Coordinates(pkg string) (group, artifact string, ok bool) {
	group, artifact, ok = strings.Cut(pkg, ":")
	ok = ok && group != "" && artifact != "" && !strings.ContainsAny(artifact, ":/") && !strings.ContainsAny(group, ":/")
	return group, artifact, ok
}

// MetadataURL is the real URL of a package's maven-metadata.xml.
func MetadataURL(pkg string) (string, error) {
	g, a, ok := Coordinates(pkg)
	if !ok {
		return "", fmt.Errorf("maven: invalid coordinates %q", pkg)
	}
	return Registry + "/" + strings.ReplaceAll(g, ".", "/") + "/" + a + "/" + MetadataFile, nil
}

// POMURL is the real URL of one version's POM.
func POMURL(pkg, version string) (string, error) {
	g, a, ok := Coordinates(pkg)
	if !ok || version == "" || strings.ContainsAny(version, "/") {
		return "", fmt.Errorf("maven: invalid coordinates %q version %q", pkg, version)
	}
	return Registry + "/" + strings.ReplaceAll(g, ".", "/") + "/" + a + "/" + version + "/" + a + "-" + version + ".pom", nil
}

// document is the part of maven-metadata.xml we read.
type document struct {
	XMLName    xml.Name `xml:"metadata"`
	GroupID    string   `xml:"groupId"`
	ArtifactID string   `xml:"artifactId"`
	Versioning struct {
		Latest      string `xml:"latest"`
		Release     string `xml:"release"`
		LastUpdated string `xml:"lastUpdated"`
	} `xml:"versioning"`
}

// Info is what maven-metadata.xml says beyond the version list.
type Info struct {
	Latest, Release, LastUpdated string
}

func newDecoder(body []byte) *xml.Decoder {
	d := xml.NewDecoder(bytes.NewReader(body))
	// Version strings are ASCII; any declared charset reads fine as is.
	d.CharsetReader = func(_ string, r io.Reader) (io.Reader, error) { return r, nil }
	return d
}

func parseDoc(body []byte) (*document, error) {
	var doc document
	if err := newDecoder(body).Decode(&doc); err != nil {
		return nil, fmt.Errorf("%w: maven: maven-metadata.xml: %v", classifiers.ErrMalformed, err)
	}
	return &doc, nil
}

// ParseInfo returns latest, release and lastUpdated of maven-metadata.xml.
func ParseInfo(body []byte) (Info, error) {
	doc, err := parseDoc(body)
	if err != nil {
		return Info{}, err
	}
	v := doc.Versioning
	return Info{Latest: strings.TrimSpace(v.Latest), Release: strings.TrimSpace(v.Release), LastUpdated: strings.TrimSpace(v.LastUpdated)}, nil
}

// Parse reads maven-metadata.xml. Metadata.Latest is <release> (what
// Maven resolves RELEASE and version ranges towards), else <latest>.
func (*Classifier) Parse(req classifiers.Request, body []byte) (*classifiers.Metadata, error) {
	doc, err := parseDoc(body)
	if err != nil {
		return nil, err
	}
	md := &classifiers.Metadata{Package: req.Package}
	if md.Package == "" && doc.GroupID != "" {
		md.Package = strings.TrimSpace(doc.GroupID) + ":" + strings.TrimSpace(doc.ArtifactID)
	}
	// The version texts come from the same scan Filter uses, so that
	// both agree on what the document lists.
	_, texts, _, _, err := scan(body)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, v := range texts {
		if v == "" || seen[v] {
			continue
		}
		seen[v] = true
		md.Versions = append(md.Versions, classifiers.Version{Version: v})
	}
	md.Latest = strings.TrimSpace(doc.Versioning.Release)
	if md.Latest == "" {
		md.Latest = strings.TrimSpace(doc.Versioning.Latest)
	}
	return md, nil
}

// span is a byte range of the document.
type span struct{ start, end int }

// scan finds the byte ranges of every <version> element under
// metadata/versioning/versions and of metadata/versioning/latest|release.
func scan(body []byte) (versions []span, texts []string, latest, release span, err error) {
	d := newDecoder(body)
	var stack []string
	var text strings.Builder
	var start int
	latest, release = span{-1, -1}, span{-1, -1}
	for {
		off := int(d.InputOffset())
		tok, terr := d.Token()
		if terr == io.EOF {
			break
		}
		if terr != nil {
			return nil, nil, latest, release, fmt.Errorf("%w: maven: maven-metadata.xml: %v", classifiers.ErrMalformed, terr)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if leaf(stack) {
				return nil, nil, latest, release, classifiers.Malformed("maven: maven-metadata.xml: element <%s> inside <%s>", t.Name.Local, stack[len(stack)-1])
			}
			stack = append(stack, t.Name.Local)
			if len(stack) == 4 && stack[1] == "versioning" && stack[2] == "versions" && t.Name.Local == "version" ||
				len(stack) == 3 && stack[1] == "versioning" && (t.Name.Local == "latest" || t.Name.Local == "release") {
				start = off
				text.Reset()
			}
		case xml.CharData:
			text.Write(t)
		case xml.EndElement:
			end := int(d.InputOffset())
			switch {
			case len(stack) == 4 && stack[1] == "versioning" && stack[2] == "versions" && t.Name.Local == "version":
				versions = append(versions, span{start, end})
				texts = append(texts, strings.TrimSpace(text.String()))
			case len(stack) == 3 && stack[1] == "versioning" && t.Name.Local == "latest":
				latest = span{start, end}
			case len(stack) == 3 && stack[1] == "versioning" && t.Name.Local == "release":
				release = span{start, end}
			}
			stack = stack[:len(stack)-1]
		}
	}
	if len(stack) != 0 {
		return nil, nil, latest, release, classifiers.Malformed("maven: maven-metadata.xml ends inside an element")
	}
	return versions, texts, latest, release, nil
}

// leaf reports whether the innermost open element is one that holds only
// text (<version>, <latest>, <release>); markup inside it would make the
// text ambiguous.
func leaf(stack []string) bool {
	if len(stack) < 3 || stack[1] != "versioning" {
		return false
	}
	top := stack[len(stack)-1]
	return len(stack) == 4 && stack[2] == "versions" && top == "version" ||
		len(stack) == 3 && (top == "latest" || top == "release")
}

// edit is one replacement in the document.
type edit struct {
	span
	with string
}

// Filter drops the <version> entries keep refuses (with the whitespace
// that put them on their own line) and, when <latest> or <release> named a
// dropped version, points them at the newest kept version in Maven order
// (<release>: newest non-SNAPSHOT) or removes them when none is left.
// Everything else, <lastUpdated> included, stays byte-identical: the
// output is a deterministic function of the input, so its checksum
// sidecars and ETag do not churn between fetches.
func (*Classifier) Filter(req classifiers.Request, body []byte, keep func(version string) bool) ([]byte, error) {
	if _, err := parseDoc(body); err != nil {
		return nil, err
	}
	vs, texts, latest, release, err := scan(body)
	if err != nil {
		return nil, err
	}
	var edits []edit
	var kept []string
	for i, s := range vs {
		if keep(texts[i]) {
			kept = append(kept, texts[i])
			continue
		}
		edits = append(edits, edit{span: lineSpan(body, s)})
	}
	newest := func(release bool) string {
		best := ""
		for _, v := range kept {
			if release && strings.HasSuffix(v, "-SNAPSHOT") {
				continue
			}
			if best == "" || semver.Maven.Compare(v, best) > 0 {
				best = v
			}
		}
		return best
	}
	for _, p := range []struct {
		s       span
		name    string
		release bool
	}{{latest, "latest", false}, {release, "release", true}} {
		if p.s.start < 0 {
			continue
		}
		// A pointer at an allowed version stays, even one missing from
		// <versions>: only what policy refuses is changed.
		if keep(elementText(body[p.s.start:p.s.end])) {
			continue
		}
		if n := newest(p.release); n != "" {
			edits = append(edits, edit{span: p.s, with: "<" + p.name + ">" + escape(n) + "</" + p.name + ">"})
		} else {
			edits = append(edits, edit{span: lineSpan(body, p.s)})
		}
	}
	if len(edits) == 0 {
		return body, nil
	}
	sortEdits(edits)
	out := make([]byte, 0, len(body))
	pos := 0
	for _, e := range edits {
		if e.start < pos {
			return nil, errors.New("maven: overlapping edits") // cannot happen: elements are disjoint
		}
		out = append(out, body[pos:e.start]...)
		out = append(out, e.with...)
		pos = e.end
	}
	out = append(out, body[pos:]...)
	return out, nil
}

// elementText returns the unescaped text of a one-element fragment.
func elementText(b []byte) string {
	var s string
	if err := xml.Unmarshal(b, &s); err != nil {
		return ""
	}
	return strings.TrimSpace(s)
}

func escape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// lineSpan widens an element's span to its whole line when it is alone on
// it, so that removing it leaves no blank line; otherwise it takes the
// whitespace before the element.
func lineSpan(body []byte, s span) span {
	i := s.start
	for i > 0 && (body[i-1] == ' ' || body[i-1] == '\t') {
		i--
	}
	j := s.end
	if j < len(body) && body[j] == '\r' {
		j++
	}
	if (i == 0 || body[i-1] == '\n') && j < len(body) && body[j] == '\n' {
		return span{i, j + 1}
	}
	return span{i, s.end}
}

func sortEdits(es []edit) {
	for i := 1; i < len(es); i++ {
		for j := i; j > 0 && es[j].start < es[j-1].start; j-- {
			es[j], es[j-1] = es[j-1], es[j]
		}
	}
}

// Facts returns publish times from the Last-Modified header of each
// version's POM (Central keeps it at the upload time). With req.Version set
// only that POM is fetched; otherwise maven-metadata.xml is fetched for the
// version list and every POM after it, at most FactsConcurrency at a time.
// The pipeline's fetcher caches these immutable POMs, so this costs one
// round of requests per package. A POM that cannot be fetched leaves that
// version without a time rather than failing the whole lookup.
func (c *Classifier) Facts(ctx context.Context, req classifiers.Request, f classifiers.Fetcher) (*classifiers.Metadata, error) {
	md := &classifiers.Metadata{Package: req.Package}
	if req.Version != "" {
		md.Versions = []classifiers.Version{{Version: req.Version}}
	} else {
		u, err := MetadataURL(req.Package)
		if err != nil {
			return nil, err
		}
		body, _, err := f.Fetch(ctx, u, nil)
		if err != nil {
			return nil, fmt.Errorf("maven: facts for %s: %w", req.Package, err)
		}
		if md, err = c.Parse(req, body); err != nil {
			return nil, err
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(FactsConcurrency)
	var mu sync.Mutex
	var firstErr error
	for i := range md.Versions {
		v := &md.Versions[i]
		u, err := POMURL(req.Package, v.Version)
		if err != nil {
			return nil, err
		}
		g.Go(func() error {
			body, hdr, err := f.Fetch(gctx, u, nil)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				return nil
			}
			if t, err := http.ParseTime(hdr.Get("Last-Modified")); err == nil {
				v.Published = t.UTC()
			}
			v.License = pomLicense(body)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("maven: facts for %s: %w", req.Package, err)
	}
	// With a single version asked for, its POM is the whole answer.
	if req.Version != "" && firstErr != nil {
		return nil, fmt.Errorf("maven: facts for %s@%s: %w", req.Package, req.Version, firstErr)
	}
	return md, nil
}

// pomLicense returns the POM's declared license names joined by " OR "
// (empty when the POM inherits them from a parent).
func pomLicense(body []byte) string {
	var pom struct {
		Licenses []string `xml:"licenses>license>name"`
	}
	if err := newDecoder(body).Decode(&pom); err != nil {
		return ""
	}
	var names []string
	for _, n := range pom.Licenses {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	return strings.Join(names, " OR ")
}
