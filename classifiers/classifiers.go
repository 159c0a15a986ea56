// Package classifiers defines how Cafilprox recognises a registry request
// (ecosystem, package, version, kind) and how an ecosystem's metadata is parsed
// into versions and filtered. One sub-package per ecosystem implements
// Classifier; classifiers/all lists them explicitly.
//
// Classifiers always speak in terms of the real registry URLs (for example
// https://registry.npmjs.org/left-pad). The pipeline maps those onto the
// configured upstreams, so a classifier never knows about mirrors or fakes.
package classifiers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// Ecosystem names, as used in configuration, metrics and the audit trail.
const (
	NPM       = "npm"
	PyPI      = "pypi"
	Go        = "go"
	Cargo     = "cargo"
	RubyGems  = "rubygems"
	Maven     = "maven"
	Composer  = "composer"
	CocoaPods = "cocoapods"
)

// Ecosystems lists every ecosystem name in a stable order.
var Ecosystems = []string{NPM, PyPI, Go, Cargo, RubyGems, Maven, Composer, CocoaPods}

// Kind says what a request is for.
type Kind string

const (
	// KindMetadata is a document listing versions (npm packument, PyPI simple
	// page, Go @v/list, cargo index file, ...). It is filtered by policy.
	KindMetadata Kind = "metadata"
	// KindArtifact is an immutable file of one version (tarball, wheel, zip,
	// .crate, .gem, jar...). It is allowed or refused as a whole.
	KindArtifact Kind = "artifact"
	// KindOther is anything else on a registry host (search, audit,
	// signatures, config files); it is passed through unfiltered.
	KindOther Kind = "other"
)

// Request is what a classifier learned about one HTTP request.
type Request struct {
	// Ecosystem is one of the names above; empty means "not a registry request".
	Ecosystem string
	// Package is the name normalised the ecosystem's way (PyPI PEP 503,
	// Go module path unescaped, lower-case crate names...). Empty for
	// requests that concern no single package (search, /versions of RubyGems).
	Package string
	// Version is the version the request is about; empty when it concerns the
	// whole package (metadata listing all versions).
	Version string
	// Kind says whether the request is metadata, an artifact or other.
	Kind Kind
	// Variant names the representation when one URL has several (npm
	// "abbreviated" vs "full", PyPI "html" vs "json"); it is part of the cache
	// key so that clients asking differently never get each other's form.
	// Empty means the URL has a single representation.
	Variant string
	// ChecksumOf, when set, says this request is a checksum sidecar (for
	// example maven-metadata.xml.sha1) of the metadata document at this URL;
	// ChecksumAlgo ("md5", "sha1", "sha256", "sha512") says which digest.
	// The pipeline answers it from the filtered parent document.
	ChecksumOf   string
	ChecksumAlgo string
}

// String renders the request as ecosystem:package@version (kind).
func (r Request) String() string {
	s := r.Ecosystem + ":" + r.Package
	if r.Version != "" {
		s += "@" + r.Version
	}
	return s + " (" + string(r.Kind) + ")"
}

// Version is one published version as the registry's metadata describes it.
// Every field's zero value means "the registry did not say".
type Version struct {
	Version   string
	Published time.Time
	Yanked    bool
	// Provenance is true when the version carries a build provenance
	// attestation (npm dist.attestations, PyPI PEP 740).
	Provenance bool
	// Publisher names the trusted publisher kind that uploaded the version
	// (for example "github-actions", "gitlab"); empty when none/unknown.
	Publisher        string
	HasInstallScript bool
	License          string
	// Integrity is the registry-published digest of the artifact as
	// "<algo>:<lower-case hex>", algo one of md5, sha1, sha256, sha512.
	Integrity string
	// FileDigests maps artifact file names to their published digests
	// ("<algo>:<hex>") where a version has several files (PyPI wheels and
	// sdists); nil when the registry has one artifact per version.
	FileDigests map[string]string
	// Ref identifies the content the version points at where the registry
	// lets it move (Composer dist reference, CocoaPods source tag/commit);
	// used to detect re-tagged versions.
	Ref string
	// ArtifactURLs are download URLs the metadata names for this version
	// whose path does not reveal package and version (Composer dists,
	// CocoaPods sources). The pipeline remembers them for attribution.
	ArtifactURLs []string
}

// Metadata is a package's version list as parsed from one document.
type Metadata struct {
	Package  string
	Versions []Version
	// Latest is the version the registry marks as latest, if any.
	Latest string
}

// Version returns the facts for version v, or nil.
func (m *Metadata) Version(v string) *Version {
	if m == nil {
		return nil
	}
	for i := range m.Versions {
		if m.Versions[i].Version == v {
			return &m.Versions[i]
		}
	}
	return nil
}

// ErrMalformed is wrapped by parse and filter errors on bad upstream documents;
// the pipeline answers them with 502.
var ErrMalformed = errors.New("malformed upstream metadata")

// Malformed wraps ErrMalformed with a description.
func Malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// Fetcher obtains an upstream document by its real registry URL (the
// pipeline maps it onto the configured upstream and caches it). A non-2xx
// status is returned as an error wrapping ErrUpstreamStatus.
type Fetcher interface {
	Fetch(ctx context.Context, url string, header http.Header) (body []byte, respHeader http.Header, err error)
}

// FetcherFunc adapts a function to Fetcher.
type FetcherFunc func(ctx context.Context, url string, header http.Header) ([]byte, http.Header, error)

// Fetch calls f.
func (f FetcherFunc) Fetch(ctx context.Context, url string, header http.Header) ([]byte, http.Header, error) {
	return f(ctx, url, header)
}

// StatusError is returned by a Fetcher for a non-2xx upstream answer.
type StatusError struct {
	URL    string
	Status int
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("upstream answered %d for %s", e.Status, e.URL)
}

// Classifier recognises one ecosystem's requests and handles its metadata.
type Classifier interface {
	// Ecosystem returns the ecosystem name (one of the constants above).
	Ecosystem() string
	// DefaultHosts lists the registry host names this ecosystem claims.
	DefaultHosts() []string
	// Classify inspects a request to one of the ecosystem's hosts
	// (r.Host, r.URL.Path, headers such as Accept) and says what it is.
	Classify(r *http.Request) Request
	// Parse reads a metadata document (as classified by req) into versions.
	// A malformed document gives an error wrapping ErrMalformed.
	Parse(req Request, body []byte) (*Metadata, error)
	// Filter rewrites a metadata document so that only versions for which
	// keep returns true remain, fixing latest pointers; the result must stay
	// valid for the real client. A malformed document gives an error
	// wrapping ErrMalformed.
	Filter(req Request, body []byte, keep func(version string) bool) ([]byte, error)
	// Facts returns the richest version facts for req.Package (publish
	// times, provenance...), fetching whatever documents the ecosystem needs
	// (npm full packument, PyPI JSON API, Go .info, Maven POM Last-Modified).
	// When req.Version is set, facts for at least that version are returned.
	Facts(ctx context.Context, req Request, f Fetcher) (*Metadata, error)
}

// IndexRewriter is implemented by classifiers whose metadata holds absolute
// URLs: in index-URL mode they are rewritten to stay on the proxy.
type IndexRewriter interface {
	// RewriteIndex rewrites absolute registry URLs in body so that they point
	// under proxyBase (for example "http://proxy:8080/npm").
	RewriteIndex(req Request, body []byte, proxyBase string) ([]byte, error)
}

// Set maps host names to classifiers. A host may be claimed only once.
type Set struct {
	byHost map[string]Classifier
	byEco  map[string]Classifier
}

// NewSet builds a set; hosts overrides the default hosts per ecosystem
// (nil or missing entries keep the defaults). It refuses a host claimed by
// two ecosystems.
func NewSet(cs []Classifier, hosts map[string][]string) (*Set, error) {
	s := &Set{byHost: map[string]Classifier{}, byEco: map[string]Classifier{}}
	for _, c := range cs {
		eco := c.Ecosystem()
		if _, dup := s.byEco[eco]; dup {
			return nil, fmt.Errorf("classifiers: ecosystem %q registered twice", eco)
		}
		s.byEco[eco] = c
		hs := c.DefaultHosts()
		if h, ok := hosts[eco]; ok && h != nil {
			hs = h
		}
		for _, h := range hs {
			h = strings.ToLower(h)
			if prev, dup := s.byHost[h]; dup {
				return nil, fmt.Errorf("classifiers: host %q claimed by both %s and %s", h, prev.Ecosystem(), eco)
			}
			s.byHost[h] = c
		}
	}
	return s, nil
}

// ForHost returns the classifier claiming host (port ignored), or nil.
func (s *Set) ForHost(host string) Classifier {
	return s.byHost[HostOnly(host)]
}

// ForEcosystem returns the classifier of an ecosystem, or nil.
func (s *Set) ForEcosystem(eco string) Classifier { return s.byEco[eco] }

// GuessPackage asks the classifiers that can (DownloadGuesser) which
// package a download URL probably belongs to.
func (s *Set) GuessPackage(u *url.URL) (Classifier, string, bool) {
	for _, c := range s.byEco {
		if g, ok := c.(DownloadGuesser); ok {
			if pkg, ok := g.GuessPackage(u); ok {
				return c, pkg, true
			}
		}
	}
	return nil, "", false
}

// Hosts lists every claimed host, sorted.
func (s *Set) Hosts() []string {
	hs := make([]string, 0, len(s.byHost))
	for h := range s.byHost {
		hs = append(hs, h)
	}
	sort.Strings(hs)
	return hs
}

// HostsOf lists the hosts claimed by one ecosystem, sorted.
func (s *Set) HostsOf(eco string) []string {
	var hs []string
	for h, c := range s.byHost {
		if c.Ecosystem() == eco {
			hs = append(hs, h)
		}
	}
	sort.Strings(hs)
	return hs
}

// HostOnly lower-cases host and strips a port and IPv6 brackets.
func HostOnly(host string) string {
	host = strings.ToLower(host)
	if strings.HasPrefix(host, "[") {
		if i := strings.IndexByte(host, ']'); i > 0 {
			return host[1:i]
		}
	}
	if i := strings.LastIndexByte(host, ':'); i >= 0 && strings.Count(host, ":") == 1 {
		return host[:i]
	}
	return host
}

// LatestBuilder is implemented by classifiers whose protocol has a "latest
// version" document that names one version (Go's /@latest). When policy
// denies the version upstream named, the pipeline asks for the document of
// the newest version that keep allows, built from the package facts.
type LatestBuilder interface {
	BuildLatest(req Request, md *Metadata, keep func(version string) bool) ([]byte, error)
}

// DownloadGuesser is implemented by classifiers whose downloads live on
// other hosts under URLs that name no package (Composer's GitHub dists).
// GuessPackage names the package whose metadata probably lists u; the
// pipeline attributes u only if that metadata does list it.
type DownloadGuesser interface {
	GuessPackage(u *url.URL) (pkg string, ok bool)
}

// FactsElsewhere is implemented by classifiers some of whose metadata
// representations carry no publish times (npm abbreviated documents, the
// PyPI simple HTML page): the pipeline then fetches the facts alongside the
// document instead of after it, saving a round trip on a cold cache.
type FactsElsewhere interface {
	FactsElsewhere(req Request) bool
}

// ErrNoAllowedVersion is returned when a filter leaves no version at all
// where the format cannot express an empty list.
var ErrNoAllowedVersion = errors.New("no version allowed by policy")
