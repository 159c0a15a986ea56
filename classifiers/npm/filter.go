package npm

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"deps.dev/util/semver"

	"github.com/cafilprox/cafilprox/classifiers"
	"github.com/cafilprox/cafilprox/classifiers/internal/jsonscan"
)

// Filter drops denied versions from a packument (full or abbreviated) with
// their time entries, repoints dist-tags that named a dropped version and
// keeps "modified" as upstream sent it, so output is deterministic. Members it does not touch keep their original bytes,
// and a document that loses nothing is returned as is.
//
// A single-version document (req.Version set) cannot be shrunk: it is
// returned unchanged when kept and refused with ErrNoAllowedVersion otherwise.
func (*Classifier) Filter(req classifiers.Request, body []byte, keep func(version string) bool) ([]byte, error) {
	if !jsonscan.Valid(body) {
		return nil, classifiers.Malformed("npm: %s: invalid JSON", req.Package)
	}
	top, ok := jsonscan.ObjectMembers(body, 0)
	if !ok {
		return nil, classifiers.Malformed("npm: %s: document is not an object", req.Package)
	}
	var versions, distTags, timeM *jsonscan.Member
	for i := range top {
		switch top[i].Key(body) {
		case "versions":
			versions = &top[i]
		case "dist-tags":
			distTags = &top[i]
		case "time":
			timeM = &top[i]
		}
	}
	if versions == nil {
		if req.Version == "" {
			return nil, classifiers.Malformed("npm: %s: document has no versions", req.Package)
		}
		var one struct {
			Version string `json:"version"`
		}
		_ = json.Unmarshal(body, &one) // already valid JSON; a non-string version stays empty
		v := one.Version
		if v == "" {
			v = req.Version
		}
		if keep(v) {
			return body, nil
		}
		return nil, fmt.Errorf("npm: %s@%s: %w", req.Package, v, classifiers.ErrNoAllowedVersion)
	}
	vms, ok := jsonscan.ObjectMembers(body, versions.ValStart)
	if !ok {
		return nil, classifiers.Malformed("npm: %s: versions is not an object", req.Package)
	}
	kept := make([]jsonscan.Member, 0, len(vms))
	keptNames := make([]string, 0, len(vms))
	removed := map[string]bool{}
	for _, m := range vms {
		v := m.Key(body)
		if keep(v) {
			kept = append(kept, m)
			keptNames = append(keptNames, v)
		} else {
			removed[v] = true
		}
	}

	// dist-tags: repoint those naming a dropped or denied version.
	var tags []jsonscan.Member
	tagTarget := map[int]string{} // index in tags → new target ("" = drop)
	tagsChanged := false
	if distTags != nil {
		tags, _ = jsonscan.ObjectMembers(body, distTags.ValStart)
		var ranked *rankedVersions
		for i, t := range tags {
			var target string
			if json.Unmarshal(body[t.ValStart:t.ValEnd], &target) != nil {
				continue
			}
			if !removed[target] && keep(target) {
				continue
			}
			if ranked == nil {
				ranked = rankVersions(keptNames)
			}
			tagTarget[i] = ranked.replacement(target)
			tagsChanged = true
		}
	}
	if len(removed) == 0 && !tagsChanged {
		return body, nil
	}

	out := make([]byte, 0, len(body))
	out = append(out, '{')
	for i, m := range top {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, body[m.KeyStart:m.KeyEnd]...)
		out = append(out, ':')
		switch {
		case &top[i] == versions:
			out = appendMembers(out, body, kept)
		case &top[i] == distTags && tags != nil:
			out = append(out, '{')
			n := 0
			for j, t := range tags {
				target, changed := tagTarget[j]
				if changed && target == "" {
					continue
				}
				if n > 0 {
					out = append(out, ',')
				}
				n++
				out = append(out, body[t.KeyStart:t.KeyEnd]...)
				out = append(out, ':')
				if changed {
					out = appendJSONString(out, target)
				} else {
					out = append(out, body[t.ValStart:t.ValEnd]...)
				}
			}
			out = append(out, '}')
		case &top[i] == timeM:
			out = appendTime(out, body, m, removed)
		default:
			out = append(out, body[m.ValStart:m.ValEnd]...)
		}
	}
	out = append(out, '}')
	return out, nil
}

// appendTime copies the time object without removed versions. "modified"
// keeps its upstream value so that the same upstream document and policy
// always filter to the same bytes (stable ETags, 304s for clients).
func appendTime(out, body []byte, m jsonscan.Member, removed map[string]bool) []byte {
	tms, ok := jsonscan.ObjectMembers(body, m.ValStart)
	if !ok {
		return append(out, body[m.ValStart:m.ValEnd]...)
	}
	out = append(out, '{')
	n := 0
	for _, t := range tms {
		k := t.Key(body)
		if removed[k] {
			continue
		}
		if n > 0 {
			out = append(out, ',')
		}
		n++
		out = append(out, body[t.KeyStart:t.KeyEnd]...)
		out = append(out, ':')
		out = append(out, body[t.ValStart:t.ValEnd]...)
	}
	return append(out, '}')
}

func appendMembers(out, body []byte, ms []jsonscan.Member) []byte {
	out = append(out, '{')
	for i, m := range ms {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, body[m.KeyStart:m.ValEnd]...)
	}
	return append(out, '}')
}

func appendJSONString(out []byte, s string) []byte {
	b, _ := json.Marshal(s) // marshalling a string cannot fail
	return append(out, b...)
}

// rankedVersions are kept versions in ascending semver order.
type rankedVersions struct {
	vs []rankedVersion
}

type rankedVersion struct {
	name string
	sv   *semver.Version
}

func rankVersions(names []string) *rankedVersions {
	r := &rankedVersions{}
	for _, n := range names {
		if sv := parseSemver(n); sv != nil {
			r.vs = append(r.vs, rankedVersion{n, sv})
		}
	}
	slices.SortFunc(r.vs, func(a, b rankedVersion) int { return a.sv.Compare(b.sv) })
	return r
}

// replacement picks the new target of a tag that named old: the newest kept
// version not above old (a stable one when old was stable), else the newest
// stable kept version, else the newest kept version; "" when none remain.
// Staying at or below old keeps "npm install pkg" on the release line the
// tag was on.
func (r *rankedVersions) replacement(old string) string {
	if len(r.vs) == 0 {
		return ""
	}
	ov := parseSemver(old)
	stableOnly := ov != nil && !ov.IsPrerelease()
	pick := func(limit *semver.Version, stable bool) string {
		for i := len(r.vs) - 1; i >= 0; i-- {
			v := r.vs[i]
			if limit != nil && v.sv.Compare(limit) > 0 {
				continue
			}
			if stable && v.sv.IsPrerelease() {
				continue
			}
			return v.name
		}
		return ""
	}
	if ov != nil {
		if s := pick(ov, stableOnly); s != "" {
			return s
		}
	}
	if s := pick(nil, true); s != "" {
		return s
	}
	return pick(nil, false)
}

// sortVersions orders versions ascending by semver; unparsable ones go
// first, by name, so that the order is stable.
func sortVersions(vs []classifiers.Version) {
	parsed := make(map[string]*semver.Version, len(vs))
	for _, v := range vs {
		parsed[v.Version] = parseSemver(v.Version)
	}
	slices.SortFunc(vs, func(a, b classifiers.Version) int {
		pa, pb := parsed[a.Version], parsed[b.Version]
		switch {
		case pa != nil && pb != nil:
			if c := pa.Compare(pb); c != 0 {
				return c
			}
		case pa != nil:
			return 1
		case pb != nil:
			return -1
		}
		return strings.Compare(a.Version, b.Version)
	})
}
