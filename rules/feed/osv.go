package feed

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	"deps.dev/util/semver"

	"github.com/cafilprox/cafilprox/classifiers"
)

// maxSummary bounds the summary kept per advisory; it ends up in deny
// reasons and log lines, and 200k full summaries would dominate memory.
const maxSummary = 200

// errWithdrawn marks a record that has been withdrawn; it is skipped, not
// counted as malformed.
var errWithdrawn = errors.New("feed: record withdrawn")

// osvRecord holds the fields of an OSV record that matching needs; the
// decoder skips everything else.
type osvRecord struct {
	ID        string `json:"id"`
	Summary   string `json:"summary"`
	Details   string `json:"details"`
	Withdrawn string `json:"withdrawn"`
	Affected  []struct {
		Package struct {
			Ecosystem string `json:"ecosystem"`
			Name      string `json:"name"`
		} `json:"package"`
		Versions []string `json:"versions"`
		Ranges   []struct {
			Type   string `json:"type"`
			Events []struct {
				Introduced   string `json:"introduced"`
				Fixed        string `json:"fixed"`
				LastAffected string `json:"last_affected"`
				Limit        string `json:"limit"`
			} `json:"events"`
		} `json:"ranges"`
	} `json:"affected"`
}

// entry is one advisory as it applies to one package, as parsed.
type entry struct {
	advisory
	eco, name string
}

// advisory is what the index stores per package: only what matching needs.
// It is kept by value (one allocation per package, not per advisory).
type advisory struct {
	Advisory
	all      bool     // every version is affected
	versions []string // exact versions, as normalizeVersion leaves them
	ranges   []interval
}

// interval is [lo, hi) or [lo, hi] of one range; nil bounds are open. When a
// bound does not parse in the ecosystem's system, the interval only matches
// its bound strings exactly (exact = true) rather than guessing an order.
type interval struct {
	lo, hi       *semver.Version
	loRaw, hiRaw string
	hiInclusive  bool
	exact        bool
}

// parseRecord decodes one OSV JSON record into entries, one per affected
// package of a supported ecosystem. A record of no supported ecosystem
// yields no entries and no error. A withdrawn record yields errWithdrawn.
func parseRecord(data []byte) ([]*entry, error) {
	var r osvRecord
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("feed: invalid OSV JSON: %w", err)
	}
	return r.entries()
}

func (r *osvRecord) entries() ([]*entry, error) {
	if r.Withdrawn != "" {
		return nil, errWithdrawn
	}
	if r.ID == "" {
		return nil, errors.New("feed: OSV record without id")
	}
	summary := r.Summary
	if summary == "" {
		summary = firstLine(r.Details)
	}
	adv := Advisory{ID: strings.Clone(r.ID), Summary: truncate(summary, maxSummary)}
	var out []*entry
	for _, a := range r.Affected {
		eco := ecosystemOf(a.Package.Ecosystem)
		if eco == "" || a.Package.Name == "" {
			continue
		}
		name := classifiers.Normalize(eco, a.Package.Name)
		// A record may list one package in several affected entries; they
		// merge into one entry so Match reports the advisory once.
		var e *entry
		for _, prev := range out {
			if prev.eco == eco && prev.name == name {
				e = prev
				break
			}
		}
		if e == nil {
			e = &entry{advisory: advisory{Advisory: adv}, eco: eco, name: name}
			out = append(out, e)
		}
		sys := systemOf(eco)
		for _, v := range a.Versions {
			if v != "" {
				e.versions = append(e.versions, normalizeVersion(eco, v))
			}
		}
		for _, rg := range a.Ranges {
			if rg.Type == "GIT" {
				continue // commit hashes say nothing about registry versions
			}
			evs := make([]event, 0, len(rg.Events))
			for _, ev := range rg.Events {
				switch {
				case ev.Introduced != "":
					evs = append(evs, event{kind: evIntroduced, raw: ev.Introduced})
				case ev.Fixed != "":
					evs = append(evs, event{kind: evFixed, raw: ev.Fixed})
				case ev.LastAffected != "":
					evs = append(evs, event{kind: evLastAffected, raw: ev.LastAffected})
				case ev.Limit != "":
					evs = append(evs, event{kind: evLimit, raw: ev.Limit})
				}
			}
			ivs, all := intervals(eco, sys, evs)
			e.ranges = append(e.ranges, ivs...)
			e.all = e.all || all
		}
	}
	for _, e := range out {
		if e.all {
			e.versions, e.ranges = nil, nil // nothing narrower matters
		}
		e.versions = compactStrings(e.versions)
	}
	return out, nil
}

type eventKind uint8

const (
	evIntroduced eventKind = iota
	evFixed
	evLastAffected
	evLimit
)

type event struct {
	kind eventKind
	raw  string
	v    *semver.Version
}

// isZero reports whether an introduced version means "from the beginning".
func isZero(raw string) bool {
	switch raw {
	case "0", "0.0.0", "v0.0.0", "0.0":
		return true
	}
	return false
}

// intervals turns a range's events into intervals, following the OSV
// evaluation rules: events are sorted by version, each introduced opens an
// interval closed by the next fixed/last_affected/limit. It reports all =
// true when one interval starts at zero and never ends.
func intervals(eco string, sys semver.System, evs []event) ([]interval, bool) {
	parsed := true
	for i := range evs {
		if evs[i].kind == evIntroduced && isZero(evs[i].raw) {
			continue
		}
		v, err := sys.Parse(normalizeVersion(eco, evs[i].raw))
		if err != nil {
			parsed = false
			continue
		}
		evs[i].v = v
	}
	if !parsed {
		// Without an order only exact bound matches are safe.
		var out []interval
		for _, ev := range evs {
			switch {
			case ev.kind == evIntroduced && isZero(ev.raw):
				// "introduced 0" alone, with unparseable ends, still covers
				// every version: counted below.
			case ev.kind == evIntroduced || ev.kind == evLastAffected:
				out = append(out, interval{loRaw: normalizeVersion(eco, ev.raw), exact: true})
			}
		}
		if len(evs) == 1 && evs[0].kind == evIntroduced && isZero(evs[0].raw) {
			return nil, true
		}
		return out, false
	}
	sort.SliceStable(evs, func(i, j int) bool {
		a, b := evs[i].v, evs[j].v
		switch {
		case a == nil:
			return b != nil
		case b == nil:
			return false
		}
		return a.Compare(b) < 0
	})
	var out []interval
	all := false
	open := false
	var cur interval
	for _, ev := range evs {
		switch ev.kind {
		case evIntroduced:
			if !open {
				cur = interval{lo: ev.v, loRaw: ev.raw}
				open = true
			}
		default:
			if open {
				cur.hi, cur.hiRaw = ev.v, ev.raw
				cur.hiInclusive = ev.kind == evLastAffected
				out = append(out, cur)
				open = false
			}
		}
	}
	if open {
		if cur.lo == nil {
			all = true
		}
		out = append(out, cur)
	}
	return out, all
}

// match reports whether version (already normalised; pv its parse, nil if
// it does not parse) is affected by e.
func (e *advisory) match(version string, pv *semver.Version) bool {
	if e.all {
		return true
	}
	for _, v := range e.versions {
		if v == version {
			return true
		}
	}
	for i := range e.ranges {
		if e.ranges[i].contains(version, pv) {
			return true
		}
	}
	return false
}

func (iv *interval) contains(version string, pv *semver.Version) bool {
	if iv.exact {
		return version == iv.loRaw
	}
	if pv == nil {
		return version == iv.loRaw || (iv.hiInclusive && version == iv.hiRaw)
	}
	if iv.lo != nil && pv.Compare(iv.lo) < 0 {
		return false
	}
	if iv.hi != nil {
		c := pv.Compare(iv.hi)
		if c > 0 || (c == 0 && !iv.hiInclusive) {
			return false
		}
	}
	return true
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

// truncate cuts s to at most n bytes on a rune boundary, marking the cut.
// The result never shares memory with s so the decoded record can be freed.
func truncate(s string, n int) string {
	if len(s) <= n {
		return strings.Clone(s)
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func compactStrings(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	sort.Strings(s)
	out := s[:1]
	for _, v := range s[1:] {
		if v != out[len(out)-1] {
			out = append(out, v)
		}
	}
	return out[:len(out):len(out)]
}
