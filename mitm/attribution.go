package mitm

import (
	"container/list"
	"context"
	"strings"
	"sync"

	"github.com/cafilprox/cafilprox/classifiers"
	"github.com/cafilprox/cafilprox/logx"
)

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

// attributeByGuess covers dists that no metadata served here named (a
// Composer lockfile install fetches dists without metadata): a classifier
// guesses the package, its metadata is fetched, and the URL is attributed
// only if that metadata lists it.
func (p *Pipeline) attributeByGuess(ctx context.Context, rt *routed) (classifiers.Request, bool) {
	if rt.offline {
		return classifiers.Request{}, false
	}
	cl, pkg, ok := p.Set.GuessPackage(rt.real)
	if !ok {
		return classifiers.Request{}, false
	}
	sub := *rt
	sub.class = cl
	sub.req = classifiers.Request{Ecosystem: cl.Ecosystem(), Package: pkg, Kind: classifiers.KindMetadata}
	md, err := p.facts(ctx, &sub)
	if err != nil || md == nil {
		return classifiers.Request{}, false
	}
	p.remember(&sub, md)
	return p.attrib.lookup(rt.real.String())
}
