package pypi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"deps.dev/util/semver"
	"golang.org/x/net/html"

	"github.com/cafilprox/cafilprox/classifiers"
)

// anchor is one <a> of a simple HTML page, with the byte span it occupies.
type anchor struct {
	file       File
	start, end int // from "<a" to the end of "</a>"
}

// scanHTML walks a simple page with the tokenizer, which keeps every
// token's raw bytes so that a filter can cut anchors out exactly.
func scanHTML(req classifiers.Request, body []byte) ([]anchor, error) {
	z := html.NewTokenizer(bytes.NewReader(body))
	var (
		as     []anchor
		cur    *anchor
		offset int
		sawTag bool
	)
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			if z.Err() == io.EOF {
				break
			}
			return nil, classifiers.Malformed("pypi: %s: %v", req.Package, z.Err())
		}
		raw := z.Raw()
		start := offset
		offset += len(raw)
		switch tt {
		case html.StartTagToken, html.SelfClosingTagToken:
			sawTag = true
			tn, hasAttr := z.TagName()
			if string(tn) != "a" {
				continue
			}
			a := anchor{start: start, end: offset}
			for hasAttr {
				var k, v []byte
				k, v, hasAttr = z.TagAttr()
				switch string(k) {
				case "href":
					a.file.URL = string(v)
				case "data-requires-python":
					a.file.RequiresPython = string(v)
				case "data-yanked":
					a.file.Yanked = true
					a.file.YankedReason = string(v)
				case "data-provenance":
					a.file.Provenance = string(v)
				}
			}
			a.file.Filename = pathBase(a.file.URL)
			if _, frag, ok := strings.Cut(a.file.URL, "#sha256="); ok && isHex(frag, 64) {
				a.file.SHA256 = strings.ToLower(frag)
			}
			if _, v, ok := ParseFilename(a.file.Filename); ok {
				a.file.Version = v
			}
			as = append(as, a)
			cur = &as[len(as)-1]
			if tt == html.SelfClosingTagToken {
				cur = nil
			}
		case html.EndTagToken:
			sawTag = true
			if tn, _ := z.TagName(); string(tn) == "a" && cur != nil {
				cur.end = offset
				cur = nil
			}
		case html.DoctypeToken, html.CommentToken:
			sawTag = true
		}
	}
	if !sawTag {
		return nil, classifiers.Malformed("pypi: %s: not an HTML page", req.Package)
	}
	return as, nil
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
			return false
		}
	}
	return true
}

func parseHTML(req classifiers.Request, body []byte) (*document, error) {
	as, err := scanHTML(req, body)
	if err != nil {
		return nil, err
	}
	d := &document{name: req.Package}
	for _, a := range as {
		d.files = append(d.files, a.file)
	}
	return d, nil
}

// simpleFile is a PEP 691 files[] entry.
type simpleFile struct {
	Filename       string            `json:"filename"`
	URL            string            `json:"url"`
	Hashes         map[string]string `json:"hashes"`
	RequiresPython *string           `json:"requires-python"`
	Yanked         json.RawMessage   `json:"yanked"`
	UploadTime     *string           `json:"upload-time"`
	Provenance     *string           `json:"provenance"`
}

func (sf simpleFile) file() File {
	f := File{Filename: sf.Filename, URL: sf.URL, SHA256: strings.ToLower(sf.Hashes["sha256"])}
	if f.Filename == "" {
		f.Filename = pathBase(sf.URL)
	}
	if _, v, ok := ParseFilename(f.Filename); ok {
		f.Version = v
	}
	if sf.RequiresPython != nil {
		f.RequiresPython = *sf.RequiresPython
	}
	f.Yanked, f.YankedReason = yanked(sf.Yanked)
	if sf.UploadTime != nil {
		if t, err := time.Parse(time.RFC3339Nano, *sf.UploadTime); err == nil {
			f.Uploaded = t.UTC()
		}
	}
	if sf.Provenance != nil {
		f.Provenance = *sf.Provenance
	}
	return f
}

// yanked reads PEP 592 "yanked": false, true or a reason string.
func yanked(raw json.RawMessage) (bool, string) {
	var b bool
	if json.Unmarshal(raw, &b) == nil {
		return b, ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return true, s
	}
	return false, ""
}

func parseSimpleJSON(req classifiers.Request, body []byte) (*document, error) {
	var doc struct {
		Name     string       `json:"name"`
		Files    []simpleFile `json:"files"`
		Versions []string     `json:"versions"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, classifiers.Malformed("pypi: %s: %v", req.Package, err)
	}
	if doc.Files == nil {
		return nil, classifiers.Malformed("pypi: %s: simple JSON without files", req.Package)
	}
	d := &document{name: Normalize(doc.Name), versions: doc.Versions}
	if d.name == "" {
		d.name = req.Package
	}
	for _, sf := range doc.Files {
		d.files = append(d.files, sf.file())
	}
	return d, nil
}

// apiFile is a JSON API releases[ver][] / urls[] entry.
type apiFile struct {
	Filename     string            `json:"filename"`
	URL          string            `json:"url"`
	Digests      map[string]string `json:"digests"`
	Uploaded     string            `json:"upload_time_iso_8601"`
	Yanked       bool              `json:"yanked"`
	YankedReason *string           `json:"yanked_reason"`
	RequiresPy   *string           `json:"requires_python"`
}

type apiInfo struct {
	Name       string  `json:"name"`
	Version    string  `json:"version"`
	License    *string `json:"license"`
	LicenseExp *string `json:"license_expression"`
}

func parseJSONAPI(req classifiers.Request, body []byte) (*document, error) {
	var doc struct {
		Info     *apiInfo             `json:"info"`
		Releases map[string][]apiFile `json:"releases"`
		URLs     []apiFile            `json:"urls"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, classifiers.Malformed("pypi: %s: %v", req.Package, err)
	}
	if doc.Info == nil {
		return nil, classifiers.Malformed("pypi: %s: JSON API document without info", req.Package)
	}
	d := &document{name: Normalize(doc.Info.Name), latest: doc.Info.Version}
	if d.name == "" {
		d.name = req.Package
	}
	switch {
	case doc.Info.LicenseExp != nil && *doc.Info.LicenseExp != "":
		d.license = *doc.Info.LicenseExp
	case doc.Info.License != nil && len(*doc.Info.License) <= 100:
		// Long values are whole license texts, not identifiers.
		d.license = *doc.Info.License
	}
	releases := doc.Releases
	if releases == nil {
		// A version document (/pypi/<name>/<ver>/json) lists only urls.
		releases = map[string][]apiFile{doc.Info.Version: doc.URLs}
	}
	for _, ver := range slices.Sorted(maps.Keys(releases)) {
		d.versions = append(d.versions, ver)
		for _, af := range releases[ver] {
			f := File{Filename: af.Filename, URL: af.URL, Version: ver, SHA256: strings.ToLower(af.Digests["sha256"]), Yanked: af.Yanked}
			if af.YankedReason != nil {
				f.YankedReason = *af.YankedReason
			}
			if af.RequiresPy != nil {
				f.RequiresPython = *af.RequiresPy
			}
			if t, err := time.Parse(time.RFC3339Nano, af.Uploaded); err == nil {
				f.Uploaded = t.UTC()
			}
			d.files = append(d.files, f)
		}
	}
	return d, nil
}

// publisherKind reads the trusted publisher kind from a PEP 740
// provenance document.
func publisherKind(ctx context.Context, f classifiers.Fetcher, url string) (string, error) {
	h := http.Header{}
	h.Set("Accept", "application/vnd.pypi.integrity.v1+json")
	body, _, err := f.Fetch(ctx, url, h)
	if err != nil {
		return "", err
	}
	var prov struct {
		Bundles []struct {
			Publisher struct {
				Kind string `json:"kind"`
			} `json:"publisher"`
		} `json:"attestation_bundles"`
	}
	if err := json.Unmarshal(body, &prov); err != nil {
		return "", classifiers.Malformed("pypi: provenance: %v", err)
	}
	for _, b := range prov.Bundles {
		if b.Publisher.Kind != "" {
			return b.Publisher.Kind, nil
		}
	}
	return "", nil
}

// compareVersions orders PEP 440 versions; unparsable ones sort first, by name.
func compareVersions(a, b string) int {
	va, ea := semver.PyPI.Parse(a)
	vb, eb := semver.PyPI.Parse(b)
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

func sortVersions(vs []classifiers.Version) {
	slices.SortFunc(vs, func(a, b classifiers.Version) int { return compareVersions(a.Version, b.Version) })
}

// newest returns the highest of vs, preferring final releases.
func newest(vs []string) string {
	best, bestPre := "", true
	for _, v := range vs {
		sv, err := semver.PyPI.Parse(v)
		pre := err != nil || sv.IsPrerelease()
		switch {
		case best == "",
			bestPre && !pre,
			pre == bestPre && compareVersions(v, best) > 0:
			best, bestPre = v, pre
		}
	}
	return best
}
