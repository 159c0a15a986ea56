package mitm

import (
	"context"
	"net/http"
	"strings"
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
