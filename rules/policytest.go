package rules

import (
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/cafilprox/cafilprox/classifiers"
)

var testSchema = attrSchema("ecosystem", "package", "version", "published", "age", "first_seen",
	"client", "malicious", "yanked", "provenance", "publisher", "has_install_script", "license",
	"retagged", "package_age", "typosquat_of", "history", "expect", "reason_contains", "rule")

// TestCase is one test block: a subject and the decision it expects.
type TestCase struct {
	Name  string
	Range hcl.Range
	// Expect is "allow", "deny" or "shadow" (allowed, but a shadow rule or
	// shadow policy would have denied).
	Expect string
	// ReasonContains, when set, must occur in the decision's reason.
	ReasonContains string
	// Rule, when set, must be the deciding rule (or built-in).
	Rule string

	eco, pkg, version string
	client            Client
	facts             *classifiers.Version
	age               *time.Duration // age = "2d": published relative to the run
	firstSeenAge      *time.Duration
	firstSeen         time.Time
	retagged          bool
	history           []historyEntry
	ov                testOverrides
}

type historyEntry struct {
	v   classifiers.Version
	age *time.Duration
}

// TestResult is the outcome of one test block.
type TestResult struct {
	Name     string
	Range    hcl.Range
	Pass     bool
	Decision Decision
	// Message says why the test failed; "" when it passed.
	Message string
}

// Tests returns the policy's test blocks in file order.
func (e *Engine) Tests() []TestCase { return e.tests }

// Subject returns the subject the test evaluates, with relative ages
// resolved against the current time.
func (tc *TestCase) Subject() Subject {
	t := now()
	s := Subject{Ecosystem: tc.eco, Package: tc.pkg, Version: tc.version, Client: tc.client,
		FirstSeen: tc.firstSeen, Retagged: tc.retagged}
	if tc.firstSeenAge != nil {
		s.FirstSeen = t.Add(-*tc.firstSeenAge)
	}
	if tc.facts != nil {
		f := *tc.facts
		if tc.age != nil {
			f.Published = t.Add(-*tc.age)
		}
		s.Facts = &f
	}
	if len(tc.history) > 0 || s.Facts != nil {
		md := &classifiers.Metadata{Package: tc.pkg}
		for _, h := range tc.history {
			v := h.v
			if h.age != nil {
				v.Published = t.Add(-*h.age)
			}
			md.Versions = append(md.Versions, v)
		}
		if s.Facts != nil && md.Version(tc.version) == nil {
			md.Versions = append(md.Versions, *s.Facts)
		}
		s.Meta = md
	}
	return s
}

// RunTests evaluates every test block against the policy.
func (e *Engine) RunTests() []TestResult {
	out := make([]TestResult, 0, len(e.tests))
	for i := range e.tests {
		tc := &e.tests[i]
		s := tc.Subject()
		ov := tc.ov
		pc := e.newPkgCtx(s.Ecosystem, s.Package, s.Meta, s.Client, &ov)
		d := pc.decide(verInput{version: s.Version, facts: s.Facts, firstSeen: s.FirstSeen, retagged: s.Retagged}, false)
		res := TestResult{Name: tc.Name, Range: tc.Range, Decision: d, Pass: true}
		got := "allow"
		switch {
		case !d.Allow:
			got = "deny"
		case d.Shadow:
			got = "shadow"
		}
		var why []string
		if got != tc.Expect {
			why = append(why, fmt.Sprintf("got %s, want %s", got, tc.Expect))
		}
		if tc.ReasonContains != "" && !strings.Contains(d.Reason, tc.ReasonContains) {
			why = append(why, fmt.Sprintf("reason %q does not contain %q", d.Reason, tc.ReasonContains))
		}
		if tc.Rule != "" && d.Rule != tc.Rule {
			why = append(why, fmt.Sprintf("got rule %q, want %q", d.Rule, tc.Rule))
		}
		if len(why) > 0 {
			res.Pass = false
			res.Message = strings.Join(why, "; ")
			if d.Reason != "" && tc.ReasonContains == "" {
				res.Message += fmt.Sprintf(" (rule %q: %s)", d.Rule, d.Reason)
			}
		}
		out = append(out, res)
	}
	return out
}

func decodeTest(b *hcl.Block, diags *hcl.Diagnostics) (TestCase, bool) {
	c, d := b.Body.Content(testSchema)
	*diags = append(*diags, d...)
	errs := len(*diags)
	a := c.Attributes
	tc := TestCase{Name: b.Labels[0], Range: b.DefRange}
	for _, req := range []string{"ecosystem", "package", "expect"} {
		if _, ok := a[req]; !ok {
			*diags = append(*diags, blockErrf(b, "Missing "+req, "Test %q needs %s.", tc.Name, req))
		}
	}
	tc.eco, _ = str(a, "ecosystem", diags)
	if tc.eco != "" && !knownEcosystem(tc.eco) {
		*diags = append(*diags, attrErrf(a["ecosystem"], "Unknown ecosystem", "ecosystem must be one of %s, got %q.", strings.Join(classifiers.Ecosystems, ", "), tc.eco))
	}
	tc.pkg, _ = str(a, "package", diags)
	tc.version, _ = str(a, "version", diags)
	tc.Expect = oneOf(a, "expect", "allow", diags, "allow", "deny", "shadow")
	tc.ReasonContains, _ = str(a, "reason_contains", diags)
	tc.Rule, _ = str(a, "rule", diags)

	var f classifiers.Version
	hasFacts := false
	if s, ok := str(a, "published", diags); ok {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			*diags = append(*diags, attrErrf(a["published"], "Invalid published", "Want an RFC 3339 date-time such as 2026-01-01T00:00:00Z, got %q.", s))
		}
		f.Published, hasFacts = t, true
	}
	if v := durationAttr(a, "age", diags); v.set {
		if _, both := a["published"]; both {
			*diags = append(*diags, attrErrf(a["age"], "Conflicting age", "Set published or age, not both."))
		}
		tc.age, hasFacts = &v.d, true
	}
	if s, ok := str(a, "first_seen", diags); ok {
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			tc.firstSeen = t
		} else if d, err := ParseDuration(s); err == nil {
			tc.firstSeenAge = &d // "3d" = first seen 3 days ago
		} else {
			*diags = append(*diags, attrErrf(a["first_seen"], "Invalid first_seen", "Want an RFC 3339 date-time or an age such as \"3d\", got %q.", s))
		}
	}
	for name, dst := range map[string]*bool{"yanked": &f.Yanked, "provenance": &f.Provenance, "has_install_script": &f.HasInstallScript} {
		if v, set := boolAttr(a, name, diags); set {
			*dst, hasFacts = v, true
		}
	}
	for name, dst := range map[string]*string{"publisher": &f.Publisher, "license": &f.License} {
		if v, ok := str(a, name, diags); ok {
			*dst, hasFacts = v, true
		}
	}
	if hasFacts {
		f.Version = tc.version
		tc.facts = &f
	}
	tc.retagged, _ = boolAttr(a, "retagged", diags)
	if v, set := boolAttr(a, "malicious", diags); set {
		tc.ov.malicious = &v
	}
	if v, ok := str(a, "typosquat_of", diags); ok {
		tc.ov.typosquat = &v
	}
	if v := durationAttr(a, "package_age", diags); v.set {
		tc.ov.packageAge = &v.d
	}
	if ca, ok := a["client"]; ok {
		var m map[string]string
		d := decodeAttr(ca, &m)
		*diags = append(*diags, d...)
		for k, v := range m {
			switch k {
			case "ip":
				if tc.client.IP = net.ParseIP(v); tc.client.IP == nil {
					*diags = append(*diags, attrErrf(ca, "Invalid client ip", "%q is not an IP address.", v))
				}
			case "user":
				tc.client.User = v
			default:
				*diags = append(*diags, attrErrf(ca, "Unsupported client attribute", "client takes ip and user, not %q.", k))
			}
		}
	}
	if ha, ok := a["history"]; ok {
		tc.history = decodeHistory(ha, diags)
	}
	return tc, !(*diags)[errs:].HasErrors()
}

// decodeHistory reads history = [{ version, age | published, provenance,
// publisher }], the package's other versions (for provenance regression and
// package_age).
func decodeHistory(a *hcl.Attribute, diags *hcl.Diagnostics) []historyEntry {
	v, d := a.Expr.Value(nil)
	*diags = append(*diags, d...)
	if d.HasErrors() {
		return nil
	}
	ty := v.Type()
	if !(ty.IsTupleType() || ty.IsListType()) || !v.IsWhollyKnown() {
		*diags = append(*diags, attrErrf(a, "Invalid history", "history must be a list of objects."))
		return nil
	}
	var out []historyEntry
	for it := v.ElementIterator(); it.Next(); {
		_, el := it.Element()
		if !(el.Type().IsObjectType() || el.Type().IsMapType()) {
			*diags = append(*diags, attrErrf(a, "Invalid history", "history must be a list of objects."))
			return nil
		}
		var h historyEntry
		for k, x := range el.AsValueMap() {
			bad := func(want string) {
				*diags = append(*diags, attrErrf(a, "Invalid history", "history %s must be %s.", k, want))
			}
			switch k {
			case "version", "publisher", "published", "age":
				if x.Type() != cty.String || x.IsNull() {
					bad("a string")
					continue
				}
				s := x.AsString()
				switch k {
				case "version":
					h.v.Version = s
				case "publisher":
					h.v.Publisher = s
				case "published":
					t, err := time.Parse(time.RFC3339, s)
					if err != nil {
						bad("an RFC 3339 date-time")
					}
					h.v.Published = t
				case "age":
					dur, err := ParseDuration(s)
					if err != nil {
						bad("a duration such as \"30d\"")
					}
					h.age = &dur
				}
			case "provenance":
				if x.Type() != cty.Bool || x.IsNull() {
					bad("a bool")
					continue
				}
				h.v.Provenance = x.True()
			default:
				*diags = append(*diags, attrErrf(a, "Invalid history", "history entries take version, published, age, provenance and publisher, not %q.", k))
			}
		}
		if h.v.Version == "" {
			*diags = append(*diags, attrErrf(a, "Invalid history", "every history entry needs a version."))
		}
		out = append(out, h)
	}
	return out
}
