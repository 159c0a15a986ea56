package rules

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// ParseDuration parses Go duration syntax ("36h", "1h30m") extended with
// the units "d" (24h) and "w" (7d), which may be mixed: "1w2d", "10d12h".
// Negative durations are refused: every duration in the policy is an age.
func ParseDuration(s string) (time.Duration, error) {
	orig := s
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("rules: empty duration")
	}
	if s == "0" {
		return 0, nil
	}
	if strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("rules: negative duration %q", orig)
	}
	var total time.Duration
	for s != "" {
		// number
		i := 0
		for i < len(s) && (s[i] == '.' || ('0' <= s[i] && s[i] <= '9')) {
			i++
		}
		if i == 0 {
			return 0, fmt.Errorf("rules: invalid duration %q (want for example \"10d\", \"36h\", \"1w2d\")", orig)
		}
		num := s[:i]
		j := i
		for j < len(s) && !(s[j] == '.' || ('0' <= s[j] && s[j] <= '9')) {
			j++
		}
		unit := s[i:j]
		s = s[j:]
		var d time.Duration
		switch unit {
		case "d", "w":
			f, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return 0, fmt.Errorf("rules: invalid duration %q: %w", orig, err)
			}
			mult := 24 * time.Hour
			if unit == "w" {
				mult *= 7
			}
			if f > float64(1<<62)/float64(mult) {
				return 0, fmt.Errorf("rules: duration %q out of range", orig)
			}
			d = time.Duration(f * float64(mult))
		case "":
			return 0, fmt.Errorf("rules: invalid duration %q: missing unit (use s, m, h, d or w)", orig)
		default:
			var err error
			d, err = time.ParseDuration(num + unit)
			if err != nil {
				return 0, fmt.Errorf("rules: invalid duration %q (want for example \"10d\", \"36h\", \"1w2d\")", orig)
			}
		}
		if total > (1<<62) || d > (1<<62) {
			return 0, fmt.Errorf("rules: duration %q out of range", orig)
		}
		total += d
	}
	return total, nil
}

// formatDuration renders an age for people: "3d4h", "5h12m", "42s".
func formatDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	days := d / (24 * time.Hour)
	d -= days * 24 * time.Hour
	h := d / time.Hour
	d -= h * time.Hour
	m := d / time.Minute
	d -= m * time.Minute
	sec := d / time.Second
	switch {
	case days > 0 && h > 0:
		return fmt.Sprintf("%dd%dh", days, h)
	case days > 0:
		return fmt.Sprintf("%dd", days)
	case h > 0 && m > 0:
		return fmt.Sprintf("%dh%dm", h, m)
	case h > 0:
		return fmt.Sprintf("%dh", h)
	case m > 0:
		return fmt.Sprintf("%dm", m)
	default:
		return fmt.Sprintf("%ds", sec)
	}
}

// parseExpires reads an RFC 3339 date (the rule stays active through that
// whole day, UTC) or date-time.
func parseExpires(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("rules: invalid expires %q: want an RFC 3339 date (2026-12-31) or date-time (2026-12-31T18:00:00Z)", s)
	}
	return t.AddDate(0, 0, 1), nil
}

// durationFunc is duration("10d") → seconds, so that it compares with
// pkg.age and pkg.package_age.
var durationFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "duration", Type: cty.String}},
	Type:   function.StaticReturnType(cty.Number),
	RefineResult: func(b *cty.RefinementBuilder) *cty.RefinementBuilder {
		return b.NotNull()
	},
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		d, err := ParseDuration(args[0].AsString())
		if err != nil {
			return cty.NilVal, function.NewArgError(0, err)
		}
		return cty.NumberIntVal(int64(d / time.Second)), nil
	},
})

// containsFunc is contains(list, value): true when value equals an element,
// or, for strings, matches an element used as a glob ("my-org-*").
var containsFunc = function.New(&function.Spec{
	Params: []function.Parameter{
		{Name: "list", Type: cty.DynamicPseudoType},
		{Name: "value", Type: cty.DynamicPseudoType},
	},
	Type: function.StaticReturnType(cty.Bool),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		list, val := args[0], args[1]
		ty := list.Type()
		if !(ty.IsListType() || ty.IsTupleType() || ty.IsSetType()) {
			return cty.NilVal, function.NewArgErrorf(0, "contains: first argument must be a list, got %s", ty.FriendlyName())
		}
		if !list.IsWhollyKnown() || !val.IsWhollyKnown() {
			return cty.UnknownVal(cty.Bool), nil
		}
		if val.IsNull() {
			return cty.False, nil
		}
		for it := list.ElementIterator(); it.Next(); {
			_, el := it.Element()
			if el.IsNull() {
				continue
			}
			if el.Type() == cty.String && val.Type() == cty.String {
				p, s := el.AsString(), val.AsString()
				if p == s || (isGlob(p) && globMatch(p, s)) {
					return cty.True, nil
				}
				continue
			}
			if el.Equals(val).True() {
				return cty.True, nil
			}
		}
		return cty.False, nil
	},
})

// matchesFunc is matches(value, pattern): glob match ("*", "?").
var matchesFunc = function.New(&function.Spec{
	Params: []function.Parameter{
		{Name: "value", Type: cty.String},
		{Name: "pattern", Type: cty.String},
	},
	Type: function.StaticReturnType(cty.Bool),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		return cty.BoolVal(globMatch(args[1].AsString(), args[0].AsString())), nil
	},
})

// cidrContainsFunc is cidr_contains("10.0.0.0/8", client.ip).
var cidrContainsFunc = function.New(&function.Spec{
	Params: []function.Parameter{
		{Name: "cidr", Type: cty.String},
		{Name: "ip", Type: cty.String},
	},
	Type: function.StaticReturnType(cty.Bool),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		_, n, err := net.ParseCIDR(args[0].AsString())
		if err != nil {
			return cty.NilVal, function.NewArgErrorf(0, "invalid CIDR %q", args[0].AsString())
		}
		ip := net.ParseIP(args[1].AsString())
		return cty.BoolVal(ip != nil && n.Contains(ip)), nil
	},
})

// sinceFunc is since("2026-01-02T00:00:00Z") → seconds elapsed, for use with
// pkg.published and pkg.first_seen.
var sinceFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "timestamp", Type: cty.String}},
	Type:   function.StaticReturnType(cty.Number),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		t, err := time.Parse(time.RFC3339, args[0].AsString())
		if err != nil {
			return cty.NilVal, function.NewArgErrorf(0, "invalid RFC 3339 timestamp %q", args[0].AsString())
		}
		return cty.NumberIntVal(int64(now().Sub(t) / time.Second)), nil
	},
})

func strPredicate(f func(s, affix string) bool) function.Function {
	return function.New(&function.Spec{
		Params: []function.Parameter{{Name: "str", Type: cty.String}, {Name: "affix", Type: cty.String}},
		Type:   function.StaticReturnType(cty.Bool),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			return cty.BoolVal(f(args[0].AsString(), args[1].AsString())), nil
		},
	})
}

// functions available in when and reason expressions.
var functions = map[string]function.Function{
	"duration":      durationFunc,
	"contains":      containsFunc,
	"matches":       matchesFunc,
	"glob":          matchesFunc,
	"cidr_contains": cidrContainsFunc,
	"since":         sinceFunc,
	"startswith":    strPredicate(strings.HasPrefix),
	"endswith":      strPredicate(strings.HasSuffix),
	"lower":         stdlib.LowerFunc,
	"upper":         stdlib.UpperFunc,
	"length":        stdlib.LengthFunc,
	"strlen":        stdlib.StrlenFunc,
	"substr":        stdlib.SubstrFunc,
	"regex":         stdlib.RegexFunc,
	"regexall":      stdlib.RegexAllFunc,
	"replace":       stdlib.ReplaceFunc,
	"trimprefix":    stdlib.TrimPrefixFunc,
	"trimsuffix":    stdlib.TrimSuffixFunc,
	"split":         stdlib.SplitFunc,
	"join":          stdlib.JoinFunc,
	"concat":        stdlib.ConcatFunc,
	"coalesce":      stdlib.CoalesceFunc,
	"format":        stdlib.FormatFunc,
	"max":           stdlib.MaxFunc,
	"min":           stdlib.MinFunc,
	"abs":           stdlib.AbsoluteFunc,
	"floor":         stdlib.FloorFunc,
	"ceil":          stdlib.CeilFunc,
}

// pkgAttrs lists the pkg.* attributes; true marks those that need version
// facts (publish times, provenance...) from the registry.
var pkgAttrs = map[string]bool{
	"name": false, "version": false, "ecosystem": false,
	"age": true, "published": true, "yanked": true, "malicious": false,
	"provenance": true, "publisher": true, "has_install_script": true,
	"license": true, "provenance_regressed": true, "first_seen": false,
	"retagged": false, "package_age": true, "typosquat_of": false, "internal": false,
}

var clientAttrs = map[string]bool{"ip": true, "user": true, "groups": true}

// checkVariables reports references to anything but known pkg.* and
// client.* attributes, and says whether the expression needs facts.
func checkVariables(expr hcl.Expression) (needsFacts bool, diags hcl.Diagnostics) {
	for _, tr := range expr.Variables() {
		root := tr.RootName()
		var attrs map[string]bool
		switch root {
		case "pkg":
			attrs = pkgAttrs
		case "client":
			attrs = clientAttrs
		default:
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Unknown variable",
				Detail:   fmt.Sprintf("There is no variable named %q; use pkg.* or client.*.", root),
				Subject:  tr.SourceRange().Ptr(),
			})
			continue
		}
		if len(tr) < 2 {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Incomplete reference",
				Detail:   fmt.Sprintf("Use an attribute of %s, for example %s.name.", root, root),
				Subject:  tr.SourceRange().Ptr(),
			})
			continue
		}
		a, ok := tr[1].(hcl.TraverseAttr)
		if !ok {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid reference",
				Detail:   fmt.Sprintf("Use %s.<attribute>.", root),
				Subject:  tr.SourceRange().Ptr(),
			})
			continue
		}
		facts, ok := attrs[a.Name]
		if !ok {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Unsupported attribute",
				Detail:   fmt.Sprintf("%s has no attribute %q; known: %s.", root, a.Name, strings.Join(sortedKeys(attrs), ", ")),
				Subject:  tr.SourceRange().Ptr(),
			})
			continue
		}
		if root == "pkg" && facts {
			needsFacts = true
		}
	}
	return needsFacts, diags
}
