package mitm

import (
	"container/list"
	"context"
	"net/http"
	"regexp"
	"strings"
	"sync"

	"github.com/cafilprox/cafilprox/classifiers"
	"github.com/cafilprox/cafilprox/logx"
)

// indexMode marks a request that arrived in index-URL mode
// (http://proxy:8080/npm/...): base is the proxy URL prefix that absolute
// registry URLs in metadata are rewritten to.
type indexMode struct{ base string }

type indexKey struct{}

func indexFrom(ctx context.Context) *indexMode {
	m, _ := ctx.Value(indexKey{}).(*indexMode)
	return m
}

// IndexRoute maps a path prefix on the proxy's listener to a registry host.
type IndexRoute struct {
	Prefix string // "/npm", "/pypi/files"
	Host   string // registry.npmjs.org
	// Keep is a path prefix kept on the upstream path ("/maven2" for Maven).
	Keep string
	// Base is the prefix the ecosystem's rewriter is given ("/pypi" for both
	// PyPI routes); empty = Prefix.
	Base string
}

// DefaultIndexRoutes serve every ecosystem under a path prefix. Longer
// prefixes come first so /pypi/files wins over /pypi.
var DefaultIndexRoutes = []IndexRoute{
	{Prefix: "/pypi/files", Host: "files.pythonhosted.org", Base: "/pypi"},
	{Prefix: "/pypi", Host: "pypi.org"},
	{Prefix: "/npm", Host: "registry.npmjs.org"},
	{Prefix: "/go", Host: "proxy.golang.org"},
	{Prefix: "/cargo/dl", Host: "static.crates.io", Base: "/cargo"},
	{Prefix: "/cargo/api", Host: "crates.io", Base: "/cargo"},
	{Prefix: "/cargo", Host: "index.crates.io"},
	{Prefix: "/rubygems", Host: "rubygems.org"},
	{Prefix: "/maven2", Host: "repo.maven.apache.org", Keep: "/maven2"},
	{Prefix: "/composer", Host: "repo.packagist.org"},
	{Prefix: "/cocoapods", Host: "cdn.cocoapods.org"},
}

// IndexHandler serves index-URL mode on the forward listener: a request for
// /npm/left-pad is served as https://registry.npmjs.org/left-pad through the
// pipeline, with absolute URLs in metadata rewritten to stay on the proxy.
func IndexHandler(pipeline http.Handler, routes []IndexRoute, other http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, rt := range routes {
			rest, ok := strings.CutPrefix(r.URL.Path, rt.Prefix)
			if !ok || (rest != "" && rest[0] != '/') {
				continue
			}
			base := rt.Base
			if base == "" {
				base = rt.Prefix
			}
			scheme := "http"
			if r.TLS != nil {
				scheme = "https"
			}
			r2 := r.Clone(context.WithValue(r.Context(), indexKey{}, &indexMode{base: scheme + "://" + r.Host + base}))
			r2.Host = rt.Host
			r2.URL.Path = rt.Keep + rest
			if r.URL.RawPath != "" {
				r2.URL.RawPath = rt.Keep + strings.TrimPrefix(r.URL.RawPath, rt.Prefix)
			}
			if r2.URL.Path == "" {
				r2.URL.Path = "/"
			}
			pipeline.ServeHTTP(w, r2)
			return
		}
		if other != nil {
			other.ServeHTTP(w, r)
			return
		}
		http.NotFound(w, r)
	})
}

// attribution remembers download URLs named in metadata we served (Composer
// dists, CocoaPods sources) so that a later download of that URL is judged as
// the package version it belongs to. Bounded LRU.
type attribution struct {
	mu    sync.Mutex
	max   int
	lru   *list.List
	byURL map[string]*list.Element
}

type attributed struct {
	url string
	req classifiers.Request
}

func newAttribution(max int) *attribution {
	return &attribution{max: max, lru: list.New(), byURL: map[string]*list.Element{}}
}

func normalizeURL(u string) string {
	u = strings.TrimPrefix(strings.TrimPrefix(u, "https://"), "http://")
	return strings.ToLower(u[:max(0, strings.IndexByte(u+"/", '/'))]) + u[max(0, strings.IndexByte(u+"/", '/')):]
}

// add attributes a URL to req; it returns the URL's key and whether the
// mapping is new or changed (worth persisting).
func (a *attribution) add(u string, req classifiers.Request) (string, bool) {
	k := normalizeURL(u)
	a.mu.Lock()
	defer a.mu.Unlock()
	if el, ok := a.byURL[k]; ok {
		a.lru.MoveToFront(el)
		at := el.Value.(*attributed)
		if at.req == req {
			return k, false
		}
		at.req = req
		return k, true
	}
	a.byURL[k] = a.lru.PushFront(&attributed{url: k, req: req})
	for a.lru.Len() > a.max {
		old := a.lru.Back()
		a.lru.Remove(old)
		delete(a.byURL, old.Value.(*attributed).url)
	}
	return k, true
}

func (a *attribution) lookup(u string) (classifiers.Request, bool) {
	k := normalizeURL(u)
	a.mu.Lock()
	defer a.mu.Unlock()
	el, ok := a.byURL[k]
	if !ok {
		return classifiers.Request{}, false
	}
	a.lru.MoveToFront(el)
	return el.Value.(*attributed).req, true
}

// attribute finds the package version a download URL belongs to: in memory
// first, then, when durable, in the durable index (after a restart, or once
// the LRU let the URL go).
func (p *Pipeline) attribute(ctx context.Context, u string, durable bool) (classifiers.Request, bool) {
	if req, ok := p.attrib.lookup(u); ok || !durable || p.Downloads == nil {
		return req, ok
	}
	eco, pkg, version, ok, err := p.Downloads.Download(ctx, normalizeURL(u))
	if err != nil {
		p.Logger.Warn("download attribution lookup failed", "url", logx.RedactURL(u), "err", err)
	}
	if !ok {
		return classifiers.Request{}, false
	}
	req := classifiers.Request{Ecosystem: eco, Package: pkg, Version: version, Kind: classifiers.KindArtifact}
	p.attrib.add(u, req)
	return req, true
}

// githubDist matches the GitHub archive URLs Packagist lists as dists:
// api.github.com/repos/OWNER/REPO/zipball/REF and
// codeload.github.com/OWNER/REPO/legacy.zip/REF.
var githubDist = regexp.MustCompile(`^https://(?:api\.github\.com/repos/([^/]+)/([^/]+)/zipball|codeload\.github\.com/([^/]+)/([^/]+)/legacy\.zip)/[^/]+$`)

// attributeByGuess covers dists that no metadata served here named (a
// Composer lockfile install fetches dists without metadata): most packages
// are named like their GitHub repository, so the metadata of OWNER/REPO is
// fetched and the URL attributed only if that metadata lists it.
func (p *Pipeline) attributeByGuess(ctx context.Context, rt *routed) (classifiers.Request, bool) {
	if h := rt.real.Host; h != "api.github.com" && h != "codeload.github.com" {
		return classifiers.Request{}, false
	}
	m := githubDist.FindStringSubmatch(rt.real.String())
	cl := p.Set.ForEcosystem(classifiers.Composer)
	if m == nil || cl == nil || rt.offline {
		return classifiers.Request{}, false
	}
	owner, repo := m[1]+m[3], m[2]+m[4]
	sub := *rt
	sub.class = cl
	sub.req = classifiers.Request{Ecosystem: classifiers.Composer, Package: strings.ToLower(owner + "/" + repo), Kind: classifiers.KindMetadata}
	md, err := p.facts(ctx, &sub)
	if err != nil || md == nil {
		return classifiers.Request{}, false
	}
	p.remember(&sub, md)
	return p.attrib.lookup(rt.real.String())
}
