package rules

import "github.com/cafilprox/cafilprox/rules/feed"

// feedIndex adapts a *feed.Feed to MaliciousIndex, naming its advisories
// after the feed block.
type feedIndex struct {
	f    *feed.Feed
	name string
}

var _ MaliciousIndex = feedIndex{}

func (x feedIndex) Match(eco, name, version string) []Advisory {
	return x.convert(x.f.Match(eco, name, version))
}

func (x feedIndex) AllVersions(eco, name string) []Advisory {
	return x.convert(x.f.AllVersions(eco, name))
}

func (x feedIndex) convert(as []feed.Advisory) []Advisory {
	if len(as) == 0 {
		return nil
	}
	out := make([]Advisory, len(as))
	for i, a := range as {
		out[i] = Advisory{ID: a.ID, Summary: a.Summary, Feed: x.name}
	}
	return out
}
