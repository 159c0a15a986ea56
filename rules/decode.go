package rules

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"deps.dev/util/semver"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/cafilprox/cafilprox/classifiers"
	"github.com/cafilprox/cafilprox/rules/feed"
)

// builtinRules are the Decision.Rule names of built-in checks.
var builtinRules = map[string]bool{"internal": true, "malicious": true, "retagged": true, "cooldown": true, "default": true}

var rootSchema = &hcl.BodySchema{
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "policy"},
		{Type: "rule", LabelNames: []string{"name"}},
		{Type: "feed", LabelNames: []string{"name"}},
		{Type: "client", LabelNames: []string{"group"}},
		{Type: "internal"},
		{Type: "test", LabelNames: []string{"name"}},
	},
}

var policySchema = attrSchema("default", "min_age", "mode", "age_source")
var ruleSchema = attrSchema("ecosystem", "package", "versions", "action", "reason", "clients",
	"mode", "expires", "when", "override_malicious", "waive_cooldown")
var feedSchema = attrSchema("type", "path", "url", "refresh")
var clientSchema = attrSchema("cidrs", "users", "min_age")
var internalSchema = attrSchema(classifiers.Ecosystems...)

func attrSchema(names ...string) *hcl.BodySchema {
	s := &hcl.BodySchema{}
	for _, n := range names {
		s.Attributes = append(s.Attributes, hcl.AttributeSchema{Name: n})
	}
	return s
}

func decodeAttr(a *hcl.Attribute, target any) hcl.Diagnostics {
	return gohcl.DecodeExpression(a.Expr, nil, target)
}

func attrErr(a *hcl.Attribute, summary string, err error) *hcl.Diagnostic {
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: err.Error(), Subject: a.Expr.Range().Ptr()}
}

func attrErrf(a *hcl.Attribute, summary, format string, args ...any) *hcl.Diagnostic {
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: fmt.Sprintf(format, args...), Subject: a.Expr.Range().Ptr()}
}

func blockErrf(b *hcl.Block, summary, format string, args ...any) *hcl.Diagnostic {
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: fmt.Sprintf(format, args...), Subject: b.DefRange.Ptr()}
}

// str decodes an optional string attribute; ok is false when absent or bad.
func str(attrs hcl.Attributes, name string, diags *hcl.Diagnostics) (string, bool) {
	a, ok := attrs[name]
	if !ok {
		return "", false
	}
	var s string
	d := decodeAttr(a, &s)
	*diags = append(*diags, d...)
	return s, !d.HasErrors()
}

func oneOf(attrs hcl.Attributes, name, def string, diags *hcl.Diagnostics, allowed ...string) string {
	s, ok := str(attrs, name, diags)
	if !ok {
		return def
	}
	for _, v := range allowed {
		if s == v {
			return s
		}
	}
	*diags = append(*diags, attrErrf(attrs[name], "Invalid "+name, "%s must be one of %s, got %q.", name, strings.Join(quoteAll(allowed), ", "), s))
	return def
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

func durationAttr(attrs hcl.Attributes, name string, diags *hcl.Diagnostics) (d durationValue) {
	s, ok := str(attrs, name, diags)
	if !ok {
		return d
	}
	v, err := ParseDuration(s)
	if err != nil {
		*diags = append(*diags, attrErr(attrs[name], "Invalid "+name, err))
		return d
	}
	return durationValue{v, true}
}

func boolAttr(attrs hcl.Attributes, name string, diags *hcl.Diagnostics) (v, set bool) {
	a, ok := attrs[name]
	if !ok {
		return false, false
	}
	d := decodeAttr(a, &v)
	*diags = append(*diags, d...)
	return v, !d.HasErrors()
}

func strList(attrs hcl.Attributes, name string, diags *hcl.Diagnostics) []string {
	a, ok := attrs[name]
	if !ok {
		return nil
	}
	var v []string
	*diags = append(*diags, decodeAttr(a, &v)...)
	return v
}

func decode(body hcl.Body, opts Options) (*Engine, hcl.Diagnostics) {
	content, diags := body.Content(rootSchema)
	e := &Engine{
		def:        "allow",
		ecoMinAge:  map[string]time.Duration{},
		exact:      map[string][]*rule{},
		byGroup:    map[string]*group{},
		internal:   map[string][]string{},
		typo:       opts.Typosquat,
		needsFacts: map[string]bool{},
	}
	canon := []string{}
	for eco, d := range opts.MinAge {
		if !knownEcosystem(eco) {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unknown ecosystem", Detail: fmt.Sprintf("rules: min_age override for unknown ecosystem %q", eco)})
			continue
		}
		e.ecoMinAge[eco] = d
	}
	for _, eco := range sortedKeys(e.ecoMinAge) {
		canon = append(canon, "minage", eco, e.ecoMinAge[eco].String())
	}

	var policySeen, internalSeen *hcl.Block
	groupAt := map[string]hcl.Range{}
	// Client groups first: rules refer to them.
	for _, b := range content.Blocks {
		if b.Type != "client" {
			continue
		}
		g := decodeClient(b, &diags)
		if prev, dup := groupAt[g.name]; dup {
			diags = append(diags, blockErrf(b, "Duplicate client group", "Client group %q is already defined at %s.", g.name, prev))
			continue
		}
		groupAt[g.name] = b.DefRange
		e.byGroup[g.name] = g
		e.groups = append(e.groups, g)
		canon = append(canon, "client", g.name, fmt.Sprint(g.nets, sortedKeys(g.users), g.minAge, g.hasAge))
	}
	type pendingFeed struct {
		cfg feed.Config
		b   *hcl.Block
	}
	var feeds []pendingFeed
	ruleAt := map[string]hcl.Range{}
	feedAt := map[string]hcl.Range{}
	testAt := map[string]hcl.Range{}
	for _, b := range content.Blocks {
		switch b.Type {
		case "policy":
			if policySeen != nil {
				diags = append(diags, blockErrf(b, "Duplicate policy block", "Only one policy block is allowed; the first is at %s.", policySeen.DefRange))
				continue
			}
			policySeen = b
			decodePolicy(e, b, &diags)
			canon = append(canon, "policy", e.def, e.minAge.String(), fmt.Sprint(e.shadow, e.ageMax))
		case "rule":
			name := b.Labels[0]
			if prev, dup := ruleAt[name]; dup {
				diags = append(diags, blockErrf(b, "Duplicate rule", "Rule %q is already defined at %s.", name, prev))
				continue
			}
			if builtinRules[name] {
				diags = append(diags, blockErrf(b, "Reserved rule name", "%q names a built-in check in decisions; choose another name.", name))
				continue
			}
			ruleAt[name] = b.DefRange
			r := decodeRule(e, b, len(e.rules), &diags)
			if r == nil {
				continue
			}
			e.rules = append(e.rules, r)
			canon = append(canon, "rule", r.name, r.eco, r.pkg, r.versions, r.action, r.static, exprText(r.reason), exprText(r.when),
				strings.Join(r.clients, ","), fmt.Sprint(r.shadow, r.expires, r.overrideMalicious, r.waiveCooldown))
		case "feed":
			name := b.Labels[0]
			if prev, dup := feedAt[name]; dup {
				diags = append(diags, blockErrf(b, "Duplicate feed", "Feed %q is already defined at %s.", name, prev))
				continue
			}
			feedAt[name] = b.DefRange
			cfg, ok := decodeFeed(b, opts.DataDir, &diags)
			if !ok {
				continue
			}
			canon = append(canon, "feed", cfg.Name, cfg.Type, cfg.Path, cfg.URL, cfg.Refresh.String())
			feeds = append(feeds, pendingFeed{cfg, b})
		case "internal":
			if internalSeen != nil {
				diags = append(diags, blockErrf(b, "Duplicate internal block", "Only one internal block is allowed; the first is at %s.", internalSeen.DefRange))
				continue
			}
			internalSeen = b
			c, d := b.Body.Content(internalSchema)
			diags = append(diags, d...)
			for _, eco := range sortedKeys(c.Attributes) {
				pats := strList(c.Attributes, eco, &diags)
				for _, p := range pats {
					if p == "" {
						diags = append(diags, attrErrf(c.Attributes[eco], "Invalid internal pattern", "An empty pattern would match nothing."))
						continue
					}
					e.internal[eco] = append(e.internal[eco], Normalize(eco, p))
				}
				canon = append(canon, "internal", eco, strings.Join(pats, ","))
			}
		}
	}
	// Feeds are loaded last, and only for an otherwise valid policy: a
	// rejected reload must not pay for (or leak) a feed load.
	if !diags.HasErrors() {
		open := opts.OpenFeed
		if open == nil {
			open = feed.Open
		}
		for _, pf := range feeds {
			f, err := open(context.Background(), pf.cfg)
			if err != nil {
				diags = append(diags, blockErrf(pf.b, "Cannot load feed", "rules: feed %q: %v", pf.cfg.Name, err))
				continue
			}
			e.feeds = append(e.feeds, f)
			e.mal = append(e.mal, feedIndex{f: f, name: pf.cfg.Name})
		}
	}
	e.mal = append(e.mal, opts.Malicious...)
	// Tests last: they refer to nothing but need the engine's settings.
	for _, b := range content.Blocks {
		if b.Type != "test" {
			continue
		}
		name := b.Labels[0]
		if prev, dup := testAt[name]; dup {
			diags = append(diags, blockErrf(b, "Duplicate test", "Test %q is already defined at %s.", name, prev))
			continue
		}
		testAt[name] = b.DefRange
		if tc, ok := decodeTest(b, &diags); ok {
			e.tests = append(e.tests, tc)
		}
	}

	for _, r := range e.rules {
		for _, c := range r.clients {
			if e.byGroup[c] == nil {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unknown client group",
					Detail: fmt.Sprintf("Rule %q refers to client group %q, which no client block defines.", r.name, c), Subject: r.rng.Ptr()})
			}
		}
		e.index(r)
	}
	for _, eco := range classifiers.Ecosystems {
		need := e.minAgeFor(eco) > 0
		for _, g := range e.groups {
			need = need || g.minAge > 0
		}
		for _, r := range e.rules {
			need = need || (r.facts && (r.eco == "" || r.eco == eco))
		}
		e.needsFacts[eco] = need
	}
	if opts.Source != nil {
		// The text covers everything but the ecosystem min_age overrides,
		// which live in ecosystem blocks the config package decodes.
		e.hash = hashString(string(opts.Source), fmt.Sprint(e.ecoMinAge))
	} else {
		e.hash = hashString(canon...)
	}
	return e, diags
}

// exprText renders an expression's structure (node types, literals,
// references, function names, operators) for the structural hash, so that
// any edit that changes its meaning changes the hash.
func exprText(x hcl.Expression) string {
	if x == nil {
		return ""
	}
	sx, ok := x.(hclsyntax.Expression)
	if !ok {
		return x.Range().String()
	}
	var b strings.Builder
	hclsyntax.VisitAll(sx, func(n hclsyntax.Node) hcl.Diagnostics {
		fmt.Fprintf(&b, "%T", n)
		switch n := n.(type) {
		case *hclsyntax.LiteralValueExpr:
			b.WriteString(n.Val.GoString())
		case *hclsyntax.ScopeTraversalExpr:
			for _, t := range n.Traversal {
				switch t := t.(type) {
				case hcl.TraverseRoot:
					b.WriteString(t.Name)
				case hcl.TraverseAttr:
					b.WriteString("." + t.Name)
				case hcl.TraverseIndex:
					b.WriteString("[" + t.Key.GoString() + "]")
				}
			}
		case *hclsyntax.FunctionCallExpr:
			fmt.Fprintf(&b, "%s/%d/%v", n.Name, len(n.Args), n.ExpandFinal)
		case *hclsyntax.BinaryOpExpr:
			fmt.Fprintf(&b, "%d", opIndex(n.Op))
		case *hclsyntax.UnaryOpExpr:
			fmt.Fprintf(&b, "%d", opIndex(n.Op))
		}
		b.WriteByte(';')
		return nil
	})
	return b.String()
}

var operations = []*hclsyntax.Operation{
	hclsyntax.OpLogicalOr, hclsyntax.OpLogicalAnd, hclsyntax.OpLogicalNot, hclsyntax.OpEqual,
	hclsyntax.OpNotEqual, hclsyntax.OpGreaterThan, hclsyntax.OpGreaterThanOrEqual, hclsyntax.OpLessThan,
	hclsyntax.OpLessThanOrEqual, hclsyntax.OpAdd, hclsyntax.OpSubtract, hclsyntax.OpMultiply,
	hclsyntax.OpDivide, hclsyntax.OpModulo, hclsyntax.OpNegate,
}

func opIndex(op *hclsyntax.Operation) int {
	for i, o := range operations {
		if o == op {
			return i
		}
	}
	return -1
}

func (e *Engine) index(r *rule) {
	if r.pkg == "" || r.glob {
		e.general = append(e.general, r)
		return
	}
	if r.eco != "" {
		k := r.eco + "\x00" + r.pkgNorm[r.eco]
		e.exact[k] = append(e.exact[k], r)
		return
	}
	for _, eco := range classifiers.Ecosystems {
		k := eco + "\x00" + r.pkgNorm[eco]
		e.exact[k] = append(e.exact[k], r)
	}
}

func (e *Engine) minAgeFor(eco string) time.Duration {
	if d, ok := e.ecoMinAge[eco]; ok {
		return d
	}
	return e.minAge
}

func decodePolicy(e *Engine, b *hcl.Block, diags *hcl.Diagnostics) {
	c, d := b.Body.Content(policySchema)
	*diags = append(*diags, d...)
	e.def = oneOf(c.Attributes, "default", "allow", diags, "allow", "deny")
	if v := durationAttr(c.Attributes, "min_age", diags); v.set {
		e.minAge = v.d
	}
	e.shadow = oneOf(c.Attributes, "mode", "enforce", diags, "enforce", "shadow") == "shadow"
	e.ageMax = oneOf(c.Attributes, "age_source", "published", diags, "published", "max") == "max"
}

func decodeClient(b *hcl.Block, diags *hcl.Diagnostics) *group {
	c, d := b.Body.Content(clientSchema)
	*diags = append(*diags, d...)
	g := &group{name: b.Labels[0], users: map[string]bool{}}
	for _, s := range strList(c.Attributes, "cidrs", diags) {
		if !strings.Contains(s, "/") { // a bare address is a host route
			if ip := net.ParseIP(s); ip != nil {
				if ip.To4() != nil {
					s += "/32"
				} else {
					s += "/128"
				}
			}
		}
		_, n, err := net.ParseCIDR(s)
		if err != nil {
			*diags = append(*diags, attrErrf(c.Attributes["cidrs"], "Invalid CIDR", "%q is not a CIDR (for example 10.0.0.0/8) or IP address.", s))
			continue
		}
		g.nets = append(g.nets, n)
	}
	for _, u := range strList(c.Attributes, "users", diags) {
		g.users[u] = true
	}
	if v := durationAttr(c.Attributes, "min_age", diags); v.set {
		g.minAge, g.hasAge = v.d, true
	}
	if len(g.nets) == 0 && len(g.users) == 0 && !diags.HasErrors() {
		*diags = append(*diags, blockErrf(b, "Empty client group", "Client group %q has neither cidrs nor users, so no client can belong to it.", g.name))
	}
	return g
}

func decodeFeed(b *hcl.Block, dataDir string, diags *hcl.Diagnostics) (feed.Config, bool) {
	c, d := b.Body.Content(feedSchema)
	*diags = append(*diags, d...)
	cfg := feed.Config{Name: b.Labels[0], DataDir: dataDir}
	before := len(*diags)
	cfg.Type = oneOf(c.Attributes, "type", "osv", diags, "osv")
	cfg.Path, _ = str(c.Attributes, "path", diags)
	cfg.URL, _ = str(c.Attributes, "url", diags)
	if v := durationAttr(c.Attributes, "refresh", diags); v.set {
		cfg.Refresh = v.d
	}
	if cfg.Path == "" && cfg.URL == "" {
		*diags = append(*diags, blockErrf(b, "Feed without source", "Feed %q needs a path, a url, or both.", cfg.Name))
	}
	if cfg.Refresh > 0 && cfg.URL == "" {
		*diags = append(*diags, attrErrf(c.Attributes["refresh"], "Refresh without url", "refresh only applies to feeds with a url."))
	}
	if cfg.Path != "" && !filepath.IsAbs(cfg.Path) && b.DefRange.Filename != "" {
		// Relative paths are relative to the configuration file, like every
		// other path a user writes next to the rules.
		cfg.Path = filepath.Join(filepath.Dir(b.DefRange.Filename), cfg.Path)
	}
	return cfg, len(*diags) == before && !d.HasErrors()
}

func decodeRule(e *Engine, b *hcl.Block, index int, diags *hcl.Diagnostics) *rule {
	c, d := b.Body.Content(ruleSchema)
	*diags = append(*diags, d...)
	errs := len(*diags)
	r := &rule{name: b.Labels[0], index: index, rng: b.DefRange, pkgNorm: map[string]string{}}
	a := c.Attributes
	if eco, ok := str(a, "ecosystem", diags); ok {
		if !knownEcosystem(eco) {
			*diags = append(*diags, attrErrf(a["ecosystem"], "Unknown ecosystem", "ecosystem must be one of %s, got %q.", strings.Join(classifiers.Ecosystems, ", "), eco))
		}
		r.eco = eco
	}
	if p, ok := str(a, "package", diags); ok {
		if p == "" {
			*diags = append(*diags, attrErrf(a["package"], "Empty package", "Leave package out to match every package."))
		}
		r.pkg, r.glob = p, isGlob(p)
		for _, eco := range classifiers.Ecosystems {
			r.pkgNorm[eco] = Normalize(eco, p)
		}
	}
	if _, ok := a["action"]; !ok {
		*diags = append(*diags, blockErrf(b, "Missing action", "Rule %q needs action = \"deny\", \"allow\" or \"pin\".", r.name))
	}
	r.action = oneOf(a, "action", actDeny, diags, actDeny, actAllow, actPin)
	if v, ok := str(a, "versions", diags); ok {
		r.versions = v
		if r.eco == "" {
			*diags = append(*diags, attrErrf(a["versions"], "versions needs ecosystem", "Version constraints use the ecosystem's own syntax, so set ecosystem in rule %q.", r.name))
		} else if cons, err := parseConstraint(r.eco, v); err != nil {
			*diags = append(*diags, attrErrf(a["versions"], "Invalid versions", "rules: %q is not a valid %s constraint: %v", v, r.eco, err))
		} else {
			r.cons = cons
		}
	}
	if r.action == actPin && (r.pkg == "" || r.versions == "") {
		*diags = append(*diags, blockErrf(b, "Incomplete pin", "A pin rule needs package and versions (only matching versions may be served)."))
	}
	if x, ok := a["reason"]; ok {
		r.reason = x.Expr
		_, d := checkVariables(x.Expr)
		*diags = append(*diags, d...)
		if len(x.Expr.Variables()) == 0 {
			var s string
			d := decodeAttr(x, &s)
			*diags = append(*diags, d...)
			r.static, r.isStatic = s, true
		} else if !d.HasErrors() {
			td := trialEval(x.Expr, cty.String)
			*diags = append(*diags, td...)
			if !td.HasErrors() {
				if f, k := compileFast(x.Expr); k == kStr {
					r.reasonF = f
				}
			}
		}
	}
	r.clients = strList(a, "clients", diags)
	r.shadow = oneOf(a, "mode", "enforce", diags, "enforce", "shadow") == "shadow"
	if s, ok := str(a, "expires", diags); ok {
		t, err := parseExpires(s)
		if err != nil {
			*diags = append(*diags, attrErr(a["expires"], "Invalid expires", err))
		}
		r.expires = t
	}
	if x, ok := a["when"]; ok {
		r.when = x.Expr
		facts, d := checkVariables(x.Expr)
		*diags = append(*diags, d...)
		r.facts = facts
		if !d.HasErrors() {
			td := trialEval(x.Expr, cty.Bool)
			*diags = append(*diags, td...)
			if !td.HasErrors() {
				if f, k := compileFast(x.Expr); k == kBool {
					r.whenF = f
				}
			}
		}
	}
	r.overrideMalicious, _ = boolAttr(a, "override_malicious", diags)
	if r.overrideMalicious && r.action != actAllow {
		*diags = append(*diags, attrErrf(a["override_malicious"], "override_malicious needs allow", "Only an allow rule can override a malicious-feed match."))
	}
	r.waiveCooldown = r.versions != ""
	if v, set := boolAttr(a, "waive_cooldown", diags); set {
		r.waiveCooldown = v
		if r.action != actAllow {
			*diags = append(*diags, attrErrf(a["waive_cooldown"], "waive_cooldown needs allow", "Only an allow rule can waive the cooldown."))
		}
	}
	if (*diags)[errs:].HasErrors() {
		return nil
	}
	return r
}

type durationValue struct {
	d   time.Duration
	set bool
}

// trialEval evaluates expr once over sample values so that unknown
// functions, bad arguments and type errors fail at load time, not per request.
func trialEval(expr hcl.Expression, want cty.Type) hcl.Diagnostics {
	v, diags := expr.Value(sampleContext)
	if diags.HasErrors() {
		return diags
	}
	if v.IsKnown() && !v.IsNull() {
		if _, err := convertTo(v, want); err != nil {
			return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Wrong type", Detail: fmt.Sprintf("The expression must be a %s: %v.", want.FriendlyName(), err), Subject: expr.Range().Ptr()}}
		}
	}
	return nil
}

// parseConstraint parses a version constraint in eco's syntax. The semver
// library has no constraint grammar for Composer (it panics) nor for Go (Go
// modules have no ranges), so both are read with npm's: for Composer with
// "," read as AND and the two-component tilde ("~1.2" = ">=1.2 <2.0")
// translated; for Go with the "v" prefix optional.
func parseConstraint(eco, s string) (c *semver.Constraint, err error) {
	switch eco {
	case classifiers.Composer:
		s = composerTilde.ReplaceAllStringFunc(strings.ReplaceAll(s, ",", " "), func(m string) string {
			sub := composerTilde.FindStringSubmatch(m)
			major, err := strconv.Atoi(sub[2])
			if err != nil {
				return m
			}
			return fmt.Sprintf("%s>=%s.%s.0 <%d.0.0%s", sub[1], sub[2], sub[3], major+1, sub[4])
		})
	case classifiers.PyPI:
		// PEP 440 needs an operator; a bare version means exactly it.
		if x := exactConstraint(s); x != "" && x == strings.TrimSpace(s) {
			s = "==" + x
		}
	case classifiers.Go:
		// Go has no constraint syntax of its own; accept npm-style ranges
		// over Go versions, with or without the "v" prefix.
		s = goV.ReplaceAllString(s, "$1")
	}
	defer func() {
		if p := recover(); p != nil { // the library panics on some inputs
			c, err = nil, fmt.Errorf("unparsable constraint (%v)", p)
		}
	}()
	return constraintSystem(eco).ParseConstraint(s)
}

// composerTilde finds Composer's two-component tilde, "~1.2" = ">=1.2 <2.0".
var composerTilde = regexp.MustCompile(`(^|[\s|])~\s*(\d+)\.(\d+)($|[\s|])`)

var goV = regexp.MustCompile(`\bv(\d)`)

// constraintSystem is the grammar constraints of eco are parsed with (and
// versions matched against them).
func constraintSystem(eco string) semver.System {
	switch eco {
	case classifiers.Composer, classifiers.Go:
		return semver.NPM
	}
	return semverSystem(eco)
}

// parseVersion parses an upstream version string, never panicking.
func parseVersion(sys semver.System, v string) (pv *semver.Version, err error) {
	defer func() {
		if p := recover(); p != nil {
			pv, err = nil, fmt.Errorf("unparsable version (%v)", p)
		}
	}()
	return sys.Parse(v)
}

func semverSystem(eco string) semver.System {
	switch eco {
	case classifiers.NPM:
		return semver.NPM
	case classifiers.PyPI:
		return semver.PyPI
	case classifiers.Go:
		return semver.Go
	case classifiers.Cargo:
		return semver.Cargo
	case classifiers.RubyGems, classifiers.CocoaPods: // CocoaPods uses RubyGems' "~>" operators
		return semver.RubyGems
	case classifiers.Maven:
		return semver.Maven
	case classifiers.Composer:
		return semver.Composer
	}
	return semver.DefaultSystem
}
