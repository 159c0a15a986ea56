// Package rules is Cafilprox's policy engine: it decodes the policy part of
// cafilprox.hcl (policy, rule, feed, client, internal and test blocks),
// compiles it once, and answers per-request decisions (Decide) and
// per-version metadata filters (Keep). The evaluation order and every
// built-in check are documented in README.md; Decide follows it exactly.
package rules

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"sort"
	"strings"
	"time"

	"deps.dev/util/semver"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"

	"github.com/cafilprox/cafilprox/classifiers"
	"github.com/cafilprox/cafilprox/rules/feed"
)

// now is the clock; tests move it.
var now = time.Now

// TyposquatIndex says which popular package a name imitates.
type TyposquatIndex interface {
	// Check returns the popular name that name imitates in ecosystem eco,
	// and ok=false when it imitates none (or is popular itself).
	Check(eco, name string) (popular string, ok bool)
}

// Advisory is one malicious-package record that matched.
type Advisory struct {
	ID      string
	Summary string
	// Feed names the feed block the record came from.
	Feed string
}

// MaliciousIndex answers malicious-package lookups. *feed.Feed is adapted
// to it; tests and embedders may supply their own through Options.
type MaliciousIndex interface {
	// Match returns the records that flag eco/name@version.
	Match(eco, name, version string) []Advisory
	// AllVersions returns the records that flag every version of eco/name.
	AllVersions(eco, name string) []Advisory
}

// Options carries what the policy needs from the rest of the configuration.
type Options struct {
	// MinAge holds per-ecosystem min_age overrides from ecosystem blocks; an
	// entry replaces policy.min_age for that ecosystem. Nil = none.
	MinAge map[string]time.Duration
	// DataDir is where feeds cache their downloads ("" = feeds keep
	// downloads only in memory, as the feed package decides).
	DataDir string
	// Typosquat computes pkg.typosquat_of; nil = always "".
	Typosquat TyposquatIndex
	// Source is the policy file's text; Hash covers it. Nil = Hash covers a
	// canonical rendering of the decoded policy instead.
	Source []byte
	// OpenFeed opens a feed block; nil = feed.Open. The lead may pass a
	// function that reuses already-loaded feeds across reloads.
	OpenFeed func(ctx context.Context, cfg feed.Config) (*feed.Feed, error)
	// Malicious are extra indexes consulted besides the feed blocks (nil =
	// none); their advisories carry Feed "" unless the index sets it.
	Malicious []MaliciousIndex
}

// Client identifies who asks.
type Client struct {
	// IP is the client's source address; nil = unknown (matches no cidrs).
	IP net.IP
	// User is the proxy basic-auth user; "" = anonymous.
	User string
}

// Subject is one version a decision is about.
type Subject struct {
	Ecosystem string
	// Package is the name as the classifier normalised it.
	Package string
	// Version is the version; "" asks about the package as a whole (only
	// package-level checks apply: internal, every-version-malicious,
	// package rules without versions or when).
	Version string
	// Facts are the registry's facts about Version; nil = unknown.
	Facts *classifiers.Version
	// Meta lists all known versions (provenance regression, package_age,
	// suggestions); nil = unknown.
	Meta *classifiers.Metadata
	// FirstSeen is when Cafilprox first saw this version upstream; zero =
	// unknown. Set by the pipeline.
	FirstSeen time.Time
	// Retagged says the version now points at different content than when
	// first seen. Set by the pipeline.
	Retagged bool
	Client   Client
}

// Match is one rule or built-in check that matched a subject.
type Match struct {
	// Rule is the rule name, or a built-in: "internal", "malicious",
	// "retagged", "cooldown", "default".
	Rule string
	// Action is "deny", "allow" or "pin".
	Action string
	Reason string
	// Shadow marks a match that is only logged (shadow rule or policy).
	Shadow bool
	// Waived marks a denial that an allow rule overrode.
	Waived bool
	// Error holds a runtime evaluation error of the rule's when expression
	// (the rule then did not match).
	Error string
}

// Decision is the policy's answer for one subject.
type Decision struct {
	// Allow is true when the subject may be served (also in shadow mode).
	Allow bool
	// Rule names the rule or built-in that decided a denial ("" when allowed
	// without a shadow denial).
	Rule   string
	Reason string
	// Shadow is true when a shadow rule or shadow policy would have denied:
	// Allow is then true and Rule/Reason say what would have denied.
	Shadow bool
	// Suggest is the newest version that would be allowed, for refusals;
	// "" = none known.
	Suggest string
	// Matches lists every rule and built-in check that matched, in
	// evaluation order, for explain and the audit trail.
	Matches []Match
}

// Engine is a compiled policy. It is immutable and safe for concurrent use;
// a reload compiles a new Engine.
type Engine struct {
	def       string // "allow" or "deny"
	minAge    time.Duration
	ecoMinAge map[string]time.Duration
	shadow    bool
	ageMax    bool

	rules   []*rule
	exact   map[string][]*rule // eco + "\x00" + normalized name
	general []*rule            // globs, rules without package
	groups  []*group
	byGroup map[string]*group

	internal map[string][]string // eco → normalized patterns

	feeds []*feed.Feed
	mal   []MaliciousIndex
	typo  TyposquatIndex

	tests      []TestCase
	hash       string
	needsFacts map[string]bool
}

type group struct {
	name   string
	nets   []*net.IPNet
	users  map[string]bool
	minAge time.Duration
	hasAge bool
}

type rule struct {
	name     string
	index    int
	rng      hcl.Range
	eco      string
	pkg      string // as written
	glob     bool
	pkgNorm  map[string]string // eco → normalized pattern
	versions string
	cons     *semver.Constraint
	action   string
	reason   hcl.Expression // nil = default reason
	static   string         // reason when it has no variables
	isStatic bool
	clients  []string
	shadow   bool
	expires  time.Time
	when     hcl.Expression
	facts    bool
	// whenF and reasonF are the compiled fast forms of when and reason;
	// nil = evaluate through HCL.
	whenF   fexpr
	reasonF fexpr
	// overrideMalicious lets an allow rule waive a malicious-feed match.
	overrideMalicious bool
	// waiveCooldown lets an allow rule waive cooldown and retagged checks;
	// defaults to true when versions is set.
	waiveCooldown bool
}

const (
	actDeny  = "deny"
	actAllow = "allow"
	actPin   = "pin"
)

// Compile decodes and compiles the policy blocks of body. Every block or
// attribute it does not know is reported as an error diagnostic with its
// source range. On errors the returned Engine is nil.
func Compile(body hcl.Body, opts Options) (*Engine, hcl.Diagnostics) {
	e, diags := decode(body, opts)
	if diags.HasErrors() {
		return nil, diags
	}
	return e, diags
}

// TopLevelSchema lists the top-level settings that the config package
// decodes; ParseFile skips them (without validating them) so that it can
// read a whole cafilprox.hcl.
var TopLevelSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "listen"}, {Name: "admin_listen"}, {Name: "data_dir"},
		{Name: "upstream_ca_file"}, {Name: "upstream_proxy"},
	},
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "egress"}, {Type: "cache"}, {Type: "ecosystem", LabelNames: []string{"name"}},
		{Type: "auth"}, {Type: "dns"}, {Type: "transparent"}, {Type: "admin"},
		{Type: "limits"}, {Type: "log"},
	},
}

// ParseFile reads a whole cafilprox.hcl, skips the settings listed in
// TopLevelSchema, and compiles the rest (for `cafilprox policy check` and
// `policy test`). opts.Source is set to the file's text; ecosystem blocks'
// min_age values are read into opts.MinAge when it is nil.
func ParseFile(path string, opts Options) (*Engine, hcl.Diagnostics) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot read policy file", Detail: fmt.Sprintf("rules: %v", err)}}
	}
	p := hclparse.NewParser()
	f, diags := p.ParseHCL(src, path)
	if diags.HasErrors() {
		return nil, diags
	}
	content, rest, d := f.Body.PartialContent(TopLevelSchema)
	diags = append(diags, d...)
	if opts.MinAge == nil {
		opts.MinAge = map[string]time.Duration{}
		for _, b := range content.Blocks {
			if b.Type != "ecosystem" {
				continue
			}
			attrs, _ := b.Body.JustAttributes()
			a, ok := attrs["min_age"]
			if !ok {
				continue
			}
			var s string
			d := decodeAttr(a, &s)
			diags = append(diags, d...)
			if d.HasErrors() {
				continue
			}
			dur, err := ParseDuration(s)
			if err != nil {
				diags = append(diags, attrErr(a, "Invalid min_age", err))
				continue
			}
			opts.MinAge[b.Labels[0]] = dur
		}
	}
	if opts.Source == nil {
		opts.Source = src
	}
	e, d := Compile(rest, opts)
	diags = append(diags, d...)
	if diags.HasErrors() {
		return nil, diags
	}
	return e, diags
}

// Hash returns a stable hash of the policy (its text, or its decoded form
// when Options.Source was nil) and of the loaded feed generations, so that
// filtered documents' ETags change when either does.
func (e *Engine) Hash() string {
	if len(e.feeds) == 0 {
		return e.hash
	}
	h := sha256.New()
	h.Write([]byte(e.hash))
	for _, f := range e.feeds {
		fmt.Fprintf(h, "|%d|%d", f.LoadedAt().UnixNano(), f.Count())
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// Feeds returns the feeds the policy opened, so that the caller can run
// their refresh loops and report readiness.
func (e *Engine) Feeds() []*feed.Feed { return e.feeds }

// NeedsFacts reports whether decisions in ecosystem eco can depend on
// version facts (publish times, provenance, licenses...). When false the
// pipeline may skip fetching them.
func (e *Engine) NeedsFacts(eco string) bool { return e.needsFacts[eco] }

// Internal reports whether eco/name matches an internal block pattern
// (dependency confusion): such requests are always denied by Decide, and
// the pipeline may route them to a private upstream instead.
func (e *Engine) Internal(eco, name string) bool {
	n := Normalize(eco, name)
	for _, p := range e.internal[eco] {
		if p == n || (isGlob(p) && globMatch(p, n)) {
			return true
		}
	}
	return false
}

// Default returns policy.default ("allow" or "deny").
func (e *Engine) Default() string { return e.def }

// Groups returns the names of the client groups c belongs to, in
// declaration order.
func (e *Engine) Groups(c Client) []string {
	var out []string
	for _, g := range e.groups {
		if g.contains(c) {
			out = append(out, g.name)
		}
	}
	return out
}

func (g *group) contains(c Client) bool {
	if c.User != "" && g.users[c.User] {
		return true
	}
	if c.IP != nil {
		for _, n := range g.nets {
			if n.Contains(c.IP) {
				return true
			}
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func hashString(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(sum[:])[:16]
}
