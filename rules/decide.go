package rules

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"deps.dev/util/semver"
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"

	"github.com/cafilprox/cafilprox/classifiers"
)

func convertTo(v cty.Value, t cty.Type) (cty.Value, error) { return convert.Convert(v, t) }

// sampleContext holds known sample values of every variable, for
// load-time trial evaluation of expressions.
var sampleContext = &hcl.EvalContext{
	Variables: map[string]cty.Value{
		"pkg": cty.ObjectVal(map[string]cty.Value{
			"name": cty.StringVal("example"), "version": cty.StringVal("1.0.0"), "ecosystem": cty.StringVal("npm"),
			"age": cty.NumberIntVal(86400), "published": cty.StringVal("2026-01-01T00:00:00Z"),
			"yanked": cty.False, "malicious": cty.False, "provenance": cty.True, "publisher": cty.StringVal("github-actions"),
			"has_install_script": cty.False, "license": cty.StringVal("MIT"), "provenance_regressed": cty.False,
			"first_seen": cty.StringVal("2026-01-01T00:00:00Z"), "retagged": cty.False, "package_age": cty.NumberIntVal(86400 * 365),
			"typosquat_of": cty.StringVal(""), "internal": cty.False,
		}),
		"client": cty.ObjectVal(map[string]cty.Value{
			"ip": cty.StringVal("10.0.0.1"), "user": cty.StringVal("ci"), "groups": cty.ListVal([]cty.Value{cty.StringVal("ci")}),
		}),
	},
	Functions: functions,
}

// testOverrides replace computed signals in test blocks.
type testOverrides struct {
	malicious  *bool
	typosquat  *string
	packageAge *time.Duration
}

// pkgCtx holds everything about one package and client that does not
// depend on the version, so that Keep computes it once per document.
type pkgCtx struct {
	e           *Engine
	eco, name   string
	norm        string
	client      Client
	groups      []string
	cands       []*rule
	minAge      time.Duration
	internal    bool
	allMal      []Advisory
	typo        string
	meta        *classifiers.Metadata
	firstPub    time.Time // earliest publish time in meta; zero = unknown
	ov          *testOverrides
	t           time.Time
	regressOnce sync.Once
	regress     map[string]bool // version → provenance regressed (only versions with a publish time)
}

func (e *Engine) newPkgCtx(eco, name string, md *classifiers.Metadata, c Client, ov *testOverrides) *pkgCtx {
	pc := &pkgCtx{e: e, eco: eco, name: name, norm: Normalize(eco, name), client: c, meta: md, ov: ov, t: now()}
	for _, g := range e.groups {
		if g.contains(c) {
			pc.groups = append(pc.groups, g.name)
		}
	}
	// Strictest min_age: the ecosystem's (or the policy's) and that of every
	// group the client is in.
	pc.minAge = e.minAgeFor(eco)
	for _, name := range pc.groups {
		if g := e.byGroup[name]; g.hasAge && g.minAge > pc.minAge {
			pc.minAge = g.minAge
		}
	}
	exact := e.exact[eco+"\x00"+pc.norm]
	i, j := 0, 0
	for i < len(exact) || j < len(e.general) {
		var r *rule
		if j >= len(e.general) || (i < len(exact) && exact[i].index < e.general[j].index) {
			r, i = exact[i], i+1
		} else {
			r, j = e.general[j], j+1
			if r.eco != "" && r.eco != eco {
				continue
			}
			if r.pkg != "" && !globMatch(r.pkgNorm[eco], pc.norm) {
				continue
			}
		}
		if !r.expires.IsZero() && !pc.t.Before(r.expires) {
			continue
		}
		if len(r.clients) > 0 && !pc.inAnyGroup(r.clients) {
			continue
		}
		pc.cands = append(pc.cands, r)
	}
	pc.internal = e.Internal(eco, name)
	if ov == nil || ov.malicious == nil { // a test's malicious = ... replaces the feeds
		for _, m := range e.mal {
			pc.allMal = append(pc.allMal, m.AllVersions(eco, name)...)
		}
	}
	switch {
	case ov != nil && ov.typosquat != nil:
		pc.typo = *ov.typosquat
	case e.typo != nil:
		if p, ok := e.typo.Check(eco, name); ok {
			pc.typo = p
		}
	}
	if md != nil {
		for i := range md.Versions {
			p := md.Versions[i].Published
			if !p.IsZero() && (pc.firstPub.IsZero() || p.Before(pc.firstPub)) {
				pc.firstPub = p
			}
		}
	}
	return pc
}

func (pc *pkgCtx) inAnyGroup(names []string) bool {
	for _, n := range names {
		for _, g := range pc.groups {
			if n == g {
				return true
			}
		}
	}
	return false
}

// regressed reports pkg.provenance_regressed for v: true when an earlier
// version (by publish time) carried provenance or a trusted publisher and v
// has none, or a different publisher kind. known is false without publish
// times.
func (pc *pkgCtx) regressed(v *classifiers.Version) (regressed, known bool) {
	if v == nil || v.Published.IsZero() || pc.meta == nil {
		return false, false
	}
	pc.regressOnce.Do(func() {
		vs := make([]*classifiers.Version, 0, len(pc.meta.Versions))
		for i := range pc.meta.Versions {
			if !pc.meta.Versions[i].Published.IsZero() {
				vs = append(vs, &pc.meta.Versions[i])
			}
		}
		sort.SliceStable(vs, func(i, j int) bool { return vs[i].Published.Before(vs[j].Published) })
		pc.regress = make(map[string]bool, len(vs))
		var prev *classifiers.Version
		for _, x := range vs {
			pc.regress[x.Version] = prev != nil && isRegression(prev, x)
			if x.Provenance || x.Publisher != "" {
				prev = x
			}
		}
	})
	if r, ok := pc.regress[v.Version]; ok {
		return r, true
	}
	// v is not in the metadata (facts from elsewhere): compare with the
	// latest attested version published before it.
	var prev *classifiers.Version
	for i := range pc.meta.Versions {
		x := &pc.meta.Versions[i]
		if (x.Provenance || x.Publisher != "") && !x.Published.IsZero() && x.Published.Before(v.Published) &&
			(prev == nil || x.Published.After(prev.Published)) {
			prev = x
		}
	}
	return prev != nil && isRegression(prev, v), true
}

func isRegression(prev, v *classifiers.Version) bool {
	return (prev.Provenance && !v.Provenance) || (prev.Publisher != "" && v.Publisher != prev.Publisher)
}

// verInput is the per-version part of a subject.
type verInput struct {
	version   string
	facts     *classifiers.Version
	firstSeen time.Time
	retagged  bool
}

// evalState carries the lazily built variables of one evaluation.
type evalState struct {
	pc        *pkgCtx
	in        verInput
	malicious bool
	ctx       *hcl.EvalContext
}

func (st *evalState) evalCtx() *hcl.EvalContext {
	if st.ctx != nil {
		return st.ctx
	}
	pc, in, f := st.pc, st.in, st.in.facts
	unkS, unkN, unkB := cty.UnknownVal(cty.String), cty.UnknownVal(cty.Number), cty.UnknownVal(cty.Bool)
	v := map[string]cty.Value{
		"name": cty.StringVal(pc.name), "ecosystem": cty.StringVal(pc.eco),
		"version": cty.StringVal(in.version), "malicious": cty.BoolVal(st.malicious),
		"retagged": cty.BoolVal(in.retagged), "typosquat_of": cty.StringVal(pc.typo),
		"internal": cty.BoolVal(pc.internal),
		"age":      unkN, "published": unkS, "yanked": unkB, "provenance": unkB, "publisher": unkS,
		"has_install_script": unkB, "license": unkS, "provenance_regressed": unkB,
		"first_seen": unkS, "package_age": unkN,
	}
	if in.version == "" {
		v["version"] = unkS
	}
	if f != nil {
		v["yanked"] = cty.BoolVal(f.Yanked)
		v["provenance"] = cty.BoolVal(f.Provenance)
		v["publisher"] = cty.StringVal(f.Publisher)
		v["has_install_script"] = cty.BoolVal(f.HasInstallScript)
		v["license"] = cty.StringVal(f.License)
		if r, ok := pc.regressed(f); ok {
			v["provenance_regressed"] = cty.BoolVal(r)
		}
		if !f.Published.IsZero() {
			v["published"] = cty.StringVal(f.Published.UTC().Format(time.RFC3339))
		}
	}
	if pub, ok := st.effectivePublished(); ok {
		v["age"] = cty.NumberIntVal(int64(pc.t.Sub(pub) / time.Second))
	}
	if !in.firstSeen.IsZero() {
		v["first_seen"] = cty.StringVal(in.firstSeen.UTC().Format(time.RFC3339))
	}
	if pc.ov != nil && pc.ov.packageAge != nil {
		v["package_age"] = cty.NumberIntVal(int64(*pc.ov.packageAge / time.Second))
	} else if !pc.firstPub.IsZero() {
		v["package_age"] = cty.NumberIntVal(int64(pc.t.Sub(pc.firstPub) / time.Second))
	}
	gs := make([]cty.Value, len(pc.groups))
	for i, g := range pc.groups {
		gs[i] = cty.StringVal(g)
	}
	groups := cty.ListValEmpty(cty.String)
	if len(gs) > 0 {
		groups = cty.ListVal(gs)
	}
	ip := ""
	if pc.client.IP != nil {
		ip = pc.client.IP.String()
	}
	client := cty.ObjectVal(map[string]cty.Value{"ip": cty.StringVal(ip), "user": cty.StringVal(pc.client.User), "groups": groups})
	st.ctx = &hcl.EvalContext{
		Variables: map[string]cty.Value{"pkg": cty.ObjectVal(v), "client": client},
		Functions: functions,
	}
	return st.ctx
}

// effectivePublished is the time cooldown measures from: the publish time,
// or with age_source = "max" the later of publish time and first sight.
func (st *evalState) effectivePublished() (time.Time, bool) {
	var pub time.Time
	if st.in.facts != nil {
		pub = st.in.facts.Published
	}
	if st.pc.e.ageMax && st.in.firstSeen.After(pub) {
		pub = st.in.firstSeen
	}
	return pub, !pub.IsZero()
}

// whenTrue evaluates r.when; unknown (missing facts) or null results do not
// match, and runtime errors are returned for the explain output.
func (st *evalState) whenTrue(r *rule) (bool, string) {
	if r.when == nil {
		return true, ""
	}
	if r.whenF != nil {
		v := r.whenF(st)
		return v.known && v.b, ""
	}
	v, diags := r.when.Value(st.evalCtx())
	if diags.HasErrors() {
		return false, diags.Error()
	}
	if !v.IsKnown() || v.IsNull() {
		return false, ""
	}
	v, err := convert.Convert(v, cty.Bool)
	if err != nil || !v.IsKnown() || v.IsNull() {
		return false, "when: result is not a bool"
	}
	return v.True(), ""
}

func (st *evalState) reason(r *rule, def string) string {
	switch {
	case r.reason == nil:
		return def
	case r.isStatic:
		return r.static
	case r.reasonF != nil:
		if v := r.reasonF(st); v.known {
			return v.s
		}
		return def
	}
	v, diags := r.reason.Value(st.evalCtx())
	if diags.HasErrors() || !v.IsWhollyKnown() || v.IsNull() {
		return def
	}
	v, err := convert.Convert(v, cty.String)
	if err != nil {
		return def
	}
	return v.AsString()
}

// versionMatches applies r's versions constraint. Deny rules also match
// pre-releases inside the range (a deny of ">=1.0.0" must not let
// "1.5.0-rc.1" through); allow and pin rules match strictly. A constraint
// that is a single exact version also matches it textually, for version
// strings the ecosystem's grammar cannot parse.
func versionMatches(r *rule, eco, version string) bool {
	if r.cons == nil {
		return true
	}
	if version == "" {
		return false
	}
	if exactConstraint(r.versions) == version {
		return true
	}
	v, err := parseVersion(constraintSystem(eco), version)
	if err != nil {
		return false
	}
	if r.action == actDeny {
		return r.cons.MatchVersionPrerelease(v) || r.cons.MatchVersion(v)
	}
	return r.cons.MatchVersion(v)
}

// exactConstraint returns the version of a constraint naming a single
// version ("1.2.3", "==1.2.3", "=1.2.3", "[1.2.3]"), or "".
func exactConstraint(c string) string {
	c = strings.TrimSpace(c)
	if strings.HasPrefix(c, "[") && strings.HasSuffix(c, "]") && !strings.Contains(c, ",") {
		return strings.TrimSpace(c[1 : len(c)-1])
	}
	c = strings.TrimLeft(c, "=")
	if c == "" || strings.ContainsAny(c, " <>~^*|,![]()") {
		return ""
	}
	return strings.TrimSpace(c)
}

// Decide evaluates the policy for one subject, following the order in
// README.md. It never fails: evaluation errors of a rule are reported in
// Decision.Matches and the rule does not match.
func (e *Engine) Decide(s Subject) Decision {
	pc := e.newPkgCtx(s.Ecosystem, s.Package, s.Meta, s.Client, nil)
	return pc.decide(verInput{version: s.Version, facts: s.Facts, firstSeen: s.FirstSeen, retagged: s.Retagged}, false)
}

// Keep returns a filter for metadata documents of eco/pkg as seen by client
// c: it reports whether each version stays listed (shadow denials stay).
// Package-level work is done once, so each call is cheap.
func (e *Engine) Keep(eco, pkg string, md *classifiers.Metadata, c Client) func(version string) bool {
	return e.KeepWith(eco, pkg, md, c, nil)
}

// KeepWith is Keep with the pipeline's per-version knowledge: seen returns
// when a version was first seen and whether it was re-tagged (nil = unknown
// for every version).
func (e *Engine) KeepWith(eco, pkg string, md *classifiers.Metadata, c Client, seen func(version string) (firstSeen time.Time, retagged bool)) func(version string) bool {
	pc := e.newPkgCtx(eco, pkg, md, c, nil)
	var byVersion map[string]*classifiers.Version
	if md != nil {
		byVersion = make(map[string]*classifiers.Version, len(md.Versions))
		for i := range md.Versions {
			byVersion[md.Versions[i].Version] = &md.Versions[i]
		}
	}
	return func(version string) bool {
		in := verInput{version: version, facts: byVersion[version]}
		if seen != nil {
			in.firstSeen, in.retagged = seen(version)
		}
		return pc.decide(in, true).Allow
	}
}

// decide runs the evaluation order. lite skips what only people read
// (reason templates, suggestions) for metadata filtering.
func (pc *pkgCtx) decide(in verInput, lite bool) Decision {
	e := pc.e
	st := &evalState{pc: pc, in: in}
	var ms []Match
	add := func(m Match) { ms = append(ms, m) }
	label := pc.name
	if in.version != "" {
		label += "@" + in.version
	}

	// 1. Malicious lookups (needed by pkg.malicious before rules run).
	advs := pc.allMal
	switch {
	case pc.ov != nil && pc.ov.malicious != nil:
		if *pc.ov.malicious {
			advs = []Advisory{{ID: "TEST-MALICIOUS", Summary: "flagged by the test block", Feed: "test"}}
		}
	case in.version != "":
		for _, m := range e.mal {
			if a := m.Match(pc.eco, pc.name, in.version); len(a) > 0 {
				advs = append(advs[:len(advs):len(advs)], a...)
			}
		}
	}
	st.malicious = len(advs) > 0

	// 2. Internal names (dependency confusion): never waivable.
	if pc.internal {
		add(Match{Rule: "internal", Action: actDeny, Shadow: e.shadow,
			Reason: fmt.Sprintf("internal package %s must not be fetched from the public registry (dependency confusion)", pc.name)})
	}
	malAt := -1
	if st.malicious {
		malAt = len(ms)
		add(Match{Rule: "malicious", Action: actDeny, Shadow: e.shadow, Reason: maliciousReason(label, advs, lite)})
	}

	// 3. Rules in file order.
	var allowed, waive, override, pinned bool
	var pinEnf, pinEnfOK, pinSh, pinShOK bool
	var pinEnfRule, pinShRule *rule
	for _, r := range pc.cands {
		shadow := r.shadow || e.shadow
		if r.action == actPin {
			if in.version == "" {
				continue
			}
			ok, errText := st.whenTrue(r)
			if errText != "" {
				add(Match{Rule: r.name, Action: r.action, Error: errText})
			}
			if !ok {
				continue
			}
			vm := versionMatches(r, pc.eco, in.version)
			if r.shadow {
				pinSh, pinShOK = true, pinShOK || vm
				if pinShRule == nil {
					pinShRule = r
				}
			} else {
				pinEnf, pinEnfOK = true, pinEnfOK || vm
				if pinEnfRule == nil {
					pinEnfRule = r
				}
			}
			if vm {
				// A satisfied pin acts as an allow (it satisfies default = deny).
				add(Match{Rule: r.name, Action: actAllow, Shadow: r.shadow, Reason: "version matches the pin " + r.versions})
			}
			continue
		}
		if !versionMatches(r, pc.eco, in.version) {
			continue
		}
		ok, errText := st.whenTrue(r)
		if errText != "" {
			add(Match{Rule: r.name, Action: r.action, Error: errText})
		}
		if !ok {
			continue
		}
		switch r.action {
		case actDeny:
			reason := "denied by rule " + r.name
			if !lite {
				reason = st.reason(r, reason)
			}
			add(Match{Rule: r.name, Action: actDeny, Shadow: shadow, Reason: reason})
		case actAllow:
			reason := "allowed by rule " + r.name
			if !lite {
				reason = st.reason(r, reason)
			}
			add(Match{Rule: r.name, Action: actAllow, Shadow: r.shadow, Reason: reason})
			if !r.shadow {
				allowed = true
				waive = waive || r.waiveCooldown
				override = override || r.overrideMalicious
			}
		}
	}
	if malAt >= 0 && override {
		ms[malAt].Waived = true
	}
	// 4. Pins: a version outside every applicable pin is denied.
	if pinEnf && !pinEnfOK {
		add(Match{Rule: pinEnfRule.name, Action: actPin, Shadow: e.shadow, Reason: pinReason(st, pinEnfRule, pc.name, lite)})
	}
	if pinSh && !pinShOK {
		add(Match{Rule: pinShRule.name, Action: actPin, Shadow: true, Reason: pinReason(st, pinShRule, pc.name, lite)})
	}
	pinned = pinEnf && pinEnfOK
	// 5. Re-tagged versions.
	if in.retagged {
		add(Match{Rule: "retagged", Action: actDeny, Shadow: e.shadow, Waived: waive,
			Reason: fmt.Sprintf("%s now points at different content than when first seen (re-tagged)", label)})
	}
	// 6. Cooldown.
	if pc.minAge > 0 {
		if pub, ok := st.effectivePublished(); ok {
			if age := pc.t.Sub(pub); age < pc.minAge {
				what := "published"
				if in.facts == nil || !pub.Equal(in.facts.Published) {
					what = "first seen"
				}
				add(Match{Rule: "cooldown", Action: actDeny, Shadow: e.shadow, Waived: waive,
					Reason: fmt.Sprintf("%s %s ago, younger than min_age %s", what, formatDuration(age), formatDuration(pc.minAge))})
			}
		}
	}
	// 7. Default.
	if e.def == actDeny && !allowed && !pinned {
		add(Match{Rule: "default", Action: actDeny, Shadow: e.shadow,
			Reason: fmt.Sprintf("%s is not on the allow list (policy default = deny)", pc.name)})
	}

	d := Decision{Allow: true, Matches: ms}
	var shadowHit *Match
	for i := range ms {
		m := &ms[i]
		if m.Action == actAllow || m.Waived || m.Error != "" {
			continue
		}
		if m.Shadow {
			if shadowHit == nil {
				shadowHit = m
			}
			continue
		}
		d.Allow, d.Rule, d.Reason = false, m.Rule, m.Reason
		break
	}
	if d.Allow && shadowHit != nil {
		d.Shadow, d.Rule, d.Reason = true, shadowHit.Rule, shadowHit.Reason
	}
	if lite {
		d.Matches = nil
	} else if !d.Allow && pc.meta != nil && !pc.internal && (len(pc.allMal) == 0 || override) {
		d.Suggest = pc.suggest(in.version)
	}
	return d
}

func pinReason(st *evalState, r *rule, name string, lite bool) string {
	def := fmt.Sprintf("%s is pinned to %s by rule %s", name, r.versions, r.name)
	if lite {
		return def
	}
	return st.reason(r, def)
}

func maliciousReason(label string, advs []Advisory, lite bool) string {
	if lite {
		return "malicious"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s is flagged malicious by ", label)
	for i, a := range advs {
		if i == 3 {
			fmt.Fprintf(&b, " and %d more", len(advs)-3)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(a.ID)
		if a.Summary != "" {
			b.WriteString(" (" + a.Summary + ")")
		}
	}
	return b.String()
}

// suggest returns the newest version, in the ecosystem's order, that the
// policy allows (shadow denials count as allowed), other than except.
func (pc *pkgCtx) suggest(except string) string {
	sys := semverSystem(pc.eco)
	type cand struct {
		v  *classifiers.Version
		sv *semver.Version
	}
	cs := make([]cand, 0, len(pc.meta.Versions))
	for i := range pc.meta.Versions {
		v := &pc.meta.Versions[i]
		if v.Version == except || v.Yanked {
			continue
		}
		sv, _ := parseVersion(sys, v.Version)
		cs = append(cs, cand{v, sv})
	}
	sort.SliceStable(cs, func(i, j int) bool {
		a, b := cs[i], cs[j]
		switch {
		case a.sv != nil && b.sv != nil:
			return a.sv.Compare(b.sv) > 0
		case a.sv != nil:
			return true
		case b.sv != nil:
			return false
		}
		return a.v.Published.After(b.v.Published)
	})
	for _, c := range cs {
		if pc.decide(verInput{version: c.v.Version, facts: c.v}, true).Allow {
			return c.v.Version
		}
	}
	return ""
}
