package rules

import (
	"math/big"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// The policy's when and reason expressions are HCL, but evaluating them
// through hcl/cty costs microseconds each (a cty object of every pkg.*
// attribute, conversions, allocations). fastexpr compiles the common subset
// — literals, pkg.*/client.* references, ! && || == != < <= > >= + - * /,
// conditionals, duration/contains/matches/glob/startswith/endswith/
// cidr_contains and simple templates — into Go closures that evaluate in
// tens of nanoseconds. Anything else falls back to HCL evaluation. Missing
// facts are unknown values, combined with three-valued (Kleene) logic:
// "false && unknown" is false, "true || unknown" is true, and a when that
// stays unknown does not match.

type kind uint8

const (
	kBool kind = iota + 1
	kNum
	kStr
	kList
)

type val struct {
	k     kind
	known bool
	b     bool
	n     float64
	s     string
	l     []string
}

type fexpr func(st *evalState) val

// field identifies a pkg.* or client.* attribute.
type field uint8

const (
	fName field = iota + 1
	fVersion
	fEcosystem
	fAge
	fPublished
	fYanked
	fMalicious
	fProvenance
	fPublisher
	fInstallScript
	fLicense
	fRegressed
	fFirstSeen
	fRetagged
	fPackageAge
	fTyposquat
	fInternal
	fClientIP
	fClientUser
	fClientGroups
)

var pkgFields = map[string]struct {
	f field
	k kind
}{
	"name": {fName, kStr}, "version": {fVersion, kStr}, "ecosystem": {fEcosystem, kStr},
	"age": {fAge, kNum}, "published": {fPublished, kStr}, "yanked": {fYanked, kBool},
	"malicious": {fMalicious, kBool}, "provenance": {fProvenance, kBool}, "publisher": {fPublisher, kStr},
	"has_install_script": {fInstallScript, kBool}, "license": {fLicense, kStr},
	"provenance_regressed": {fRegressed, kBool}, "first_seen": {fFirstSeen, kStr},
	"retagged": {fRetagged, kBool}, "package_age": {fPackageAge, kNum},
	"typosquat_of": {fTyposquat, kStr}, "internal": {fInternal, kBool},
}

var clientFields = map[string]struct {
	f field
	k kind
}{"ip": {fClientIP, kStr}, "user": {fClientUser, kStr}, "groups": {fClientGroups, kList}}

func unknown(k kind) val { return val{k: k} }
func vBool(b bool) val   { return val{k: kBool, known: true, b: b} }
func vStr(s string) val  { return val{k: kStr, known: true, s: s} }
func vNum(n float64) val { return val{k: kNum, known: true, n: n} }

// get returns the value of an attribute for the evaluation in st.
func (st *evalState) get(f field) val {
	pc, in, facts := st.pc, &st.in, st.in.facts
	switch f {
	case fName:
		return vStr(pc.name)
	case fVersion:
		if in.version == "" {
			return unknown(kStr)
		}
		return vStr(in.version)
	case fEcosystem:
		return vStr(pc.eco)
	case fMalicious:
		return vBool(st.malicious)
	case fRetagged:
		return vBool(in.retagged)
	case fTyposquat:
		return vStr(pc.typo)
	case fInternal:
		return vBool(pc.internal)
	case fAge:
		if pub, ok := st.effectivePublished(); ok {
			return vNum(float64(int64(pc.t.Sub(pub) / time.Second)))
		}
		return unknown(kNum)
	case fFirstSeen:
		if in.firstSeen.IsZero() {
			return unknown(kStr)
		}
		return vStr(in.firstSeen.UTC().Format(time.RFC3339))
	case fPackageAge:
		if pc.ov != nil && pc.ov.packageAge != nil {
			return vNum(float64(int64(*pc.ov.packageAge / time.Second)))
		}
		if pc.firstPub.IsZero() {
			return unknown(kNum)
		}
		return vNum(float64(int64(pc.t.Sub(pc.firstPub) / time.Second)))
	case fClientIP:
		if pc.client.IP == nil {
			return vStr("")
		}
		return vStr(pc.client.IP.String())
	case fClientUser:
		return vStr(pc.client.User)
	case fClientGroups:
		return val{k: kList, known: true, l: pc.groups}
	}
	// Facts.
	if facts == nil {
		return unknown(factKind(f))
	}
	switch f {
	case fPublished:
		if facts.Published.IsZero() {
			return unknown(kStr)
		}
		return vStr(facts.Published.UTC().Format(time.RFC3339))
	case fYanked:
		return vBool(facts.Yanked)
	case fProvenance:
		return vBool(facts.Provenance)
	case fPublisher:
		return vStr(facts.Publisher)
	case fInstallScript:
		return vBool(facts.HasInstallScript)
	case fLicense:
		return vStr(facts.License)
	case fRegressed:
		if r, ok := pc.regressed(facts); ok {
			return vBool(r)
		}
		return unknown(kBool)
	}
	return val{}
}

// factKind is the kind of a fact field, to type its unknown value.
func factKind(f field) kind {
	switch f {
	case fPublished, fPublisher, fLicense:
		return kStr
	}
	return kBool
}

// compileFast compiles expr, or returns nil when it is outside the subset.
func compileFast(expr hcl.Expression) (fexpr, kind) {
	x, ok := expr.(hclsyntax.Expression)
	if !ok {
		return nil, 0
	}
	return compileNode(x)
}

func constant(v val) (fexpr, kind) { return func(*evalState) val { return v }, v.k }

func compileNode(x hclsyntax.Expression) (fexpr, kind) {
	switch x := x.(type) {
	case *hclsyntax.ParenthesesExpr:
		return compileNode(x.Expression)
	case *hclsyntax.LiteralValueExpr:
		return literal(x.Val)
	case *hclsyntax.TemplateWrapExpr:
		return compileNode(x.Wrapped)
	case *hclsyntax.TemplateExpr:
		return compileTemplate(x)
	case *hclsyntax.ScopeTraversalExpr:
		if len(x.Traversal) != 2 {
			return nil, 0
		}
		a, ok := x.Traversal[1].(hcl.TraverseAttr)
		if !ok {
			return nil, 0
		}
		fields := pkgFields
		if x.Traversal.RootName() == "client" {
			fields = clientFields
		} else if x.Traversal.RootName() != "pkg" {
			return nil, 0
		}
		fd, ok := fields[a.Name]
		if !ok {
			return nil, 0
		}
		f := fd.f
		return func(st *evalState) val { return st.get(f) }, fd.k
	case *hclsyntax.TupleConsExpr:
		l := make([]string, 0, len(x.Exprs))
		for _, e := range x.Exprs {
			lit, ok := e.(*hclsyntax.TemplateExpr)
			if !ok || !lit.IsStringLiteral() {
				return nil, 0
			}
			v, diags := lit.Value(nil)
			if diags.HasErrors() {
				return nil, 0
			}
			l = append(l, v.AsString())
		}
		return constant(val{k: kList, known: true, l: l})
	case *hclsyntax.UnaryOpExpr:
		in, k := compileNode(x.Val)
		if in == nil {
			return nil, 0
		}
		switch {
		case x.Op == hclsyntax.OpLogicalNot && k == kBool:
			return func(st *evalState) val {
				v := in(st)
				v.b = !v.b
				return v
			}, kBool
		case x.Op == hclsyntax.OpNegate && k == kNum:
			return func(st *evalState) val {
				v := in(st)
				v.n = -v.n
				return v
			}, kNum
		}
		return nil, 0
	case *hclsyntax.BinaryOpExpr:
		return compileBinary(x)
	case *hclsyntax.ConditionalExpr:
		c, ck := compileNode(x.Condition)
		t, tk := compileNode(x.TrueResult)
		f, fk := compileNode(x.FalseResult)
		if c == nil || t == nil || f == nil || ck != kBool || tk != fk {
			return nil, 0
		}
		return func(st *evalState) val {
			cv := c(st)
			switch {
			case !cv.known:
				return unknown(tk)
			case cv.b:
				return t(st)
			}
			return f(st)
		}, tk
	case *hclsyntax.FunctionCallExpr:
		return compileCall(x)
	}
	return nil, 0
}

func literal(v cty.Value) (fexpr, kind) {
	if !v.IsKnown() || v.IsNull() {
		return nil, 0
	}
	switch v.Type() {
	case cty.Bool:
		return constant(vBool(v.True()))
	case cty.Number:
		f, _ := v.AsBigFloat().Float64()
		return constant(vNum(f))
	case cty.String:
		return constant(vStr(v.AsString()))
	}
	return nil, 0
}

func compileTemplate(x *hclsyntax.TemplateExpr) (fexpr, kind) {
	parts := make([]fexpr, len(x.Parts))
	for i, p := range x.Parts {
		f, k := compileNode(p)
		if f == nil || k == kList {
			return nil, 0
		}
		parts[i] = f
	}
	if len(parts) == 1 {
		p := parts[0]
		return func(st *evalState) val { return asString(p(st)) }, kStr
	}
	return func(st *evalState) val {
		var b strings.Builder
		for _, p := range parts {
			v := asString(p(st))
			if !v.known {
				return unknown(kStr)
			}
			b.WriteString(v.s)
		}
		return vStr(b.String())
	}, kStr
}

// asString converts like cty does for template interpolation.
func asString(v val) val {
	if !v.known {
		return unknown(kStr)
	}
	switch v.k {
	case kBool:
		return vStr(strconv.FormatBool(v.b))
	case kNum:
		return vStr(big.NewFloat(v.n).Text('f', -1))
	}
	return v
}

func compileBinary(x *hclsyntax.BinaryOpExpr) (fexpr, kind) {
	l, lk := compileNode(x.LHS)
	r, rk := compileNode(x.RHS)
	if l == nil || r == nil {
		return nil, 0
	}
	switch x.Op {
	case hclsyntax.OpLogicalAnd, hclsyntax.OpLogicalOr:
		if lk != kBool || rk != kBool {
			return nil, 0
		}
		and := x.Op == hclsyntax.OpLogicalAnd
		return func(st *evalState) val {
			a := l(st)
			if a.known && a.b != and { // false && _ , true || _
				return a
			}
			b := r(st)
			if b.known && b.b != and {
				return b
			}
			if !a.known || !b.known {
				return unknown(kBool)
			}
			return vBool(and)
		}, kBool
	case hclsyntax.OpEqual, hclsyntax.OpNotEqual:
		if lk != rk || lk == kList {
			return nil, 0
		}
		neg := x.Op == hclsyntax.OpNotEqual
		return func(st *evalState) val {
			a, b := l(st), r(st)
			if !a.known || !b.known {
				return unknown(kBool)
			}
			return vBool((a.b == b.b && a.n == b.n && a.s == b.s) != neg)
		}, kBool
	case hclsyntax.OpLessThan, hclsyntax.OpLessThanOrEqual, hclsyntax.OpGreaterThan, hclsyntax.OpGreaterThanOrEqual:
		if lk != kNum || rk != kNum {
			return nil, 0
		}
		op := x.Op
		return func(st *evalState) val {
			a, b := l(st), r(st)
			if !a.known || !b.known {
				return unknown(kBool)
			}
			switch op {
			case hclsyntax.OpLessThan:
				return vBool(a.n < b.n)
			case hclsyntax.OpLessThanOrEqual:
				return vBool(a.n <= b.n)
			case hclsyntax.OpGreaterThan:
				return vBool(a.n > b.n)
			}
			return vBool(a.n >= b.n)
		}, kBool
	case hclsyntax.OpAdd, hclsyntax.OpSubtract, hclsyntax.OpMultiply:
		if lk != kNum || rk != kNum {
			return nil, 0
		}
		op := x.Op
		return func(st *evalState) val {
			a, b := l(st), r(st)
			if !a.known || !b.known {
				return unknown(kNum)
			}
			switch op {
			case hclsyntax.OpAdd:
				return vNum(a.n + b.n)
			case hclsyntax.OpSubtract:
				return vNum(a.n - b.n)
			}
			return vNum(a.n * b.n)
		}, kNum
	}
	return nil, 0 // division (error on zero) and modulo go through HCL
}

func compileCall(x *hclsyntax.FunctionCallExpr) (fexpr, kind) {
	if x.ExpandFinal {
		return nil, 0
	}
	args := make([]fexpr, len(x.Args))
	kinds := make([]kind, len(x.Args))
	for i, a := range x.Args {
		args[i], kinds[i] = compileNode(a)
		if args[i] == nil {
			return nil, 0
		}
	}
	want := func(ks ...kind) bool {
		if len(ks) != len(kinds) {
			return false
		}
		for i := range ks {
			if ks[i] != kinds[i] {
				return false
			}
		}
		return true
	}
	switch x.Name {
	case "duration":
		// Only a literal argument: it is folded once here.
		lit, ok := x.Args[0].(*hclsyntax.TemplateExpr)
		if !want(kStr) || !ok || !lit.IsStringLiteral() {
			return nil, 0
		}
		v, _ := lit.Value(nil)
		d, err := ParseDuration(v.AsString())
		if err != nil {
			return nil, 0 // HCL reports the error at load time
		}
		return constant(vNum(float64(int64(d / time.Second))))
	case "contains":
		if !want(kList, kStr) {
			return nil, 0
		}
		list, v := args[0], args[1]
		return func(st *evalState) val {
			l, s := list(st), v(st)
			if !l.known || !s.known {
				return unknown(kBool)
			}
			for _, p := range l.l {
				if p == s.s || (isGlob(p) && globMatch(p, s.s)) {
					return vBool(true)
				}
			}
			return vBool(false)
		}, kBool
	case "startswith", "endswith", "matches", "glob":
		if !want(kStr, kStr) {
			return nil, 0
		}
		a, b := args[0], args[1]
		var f func(s, t string) bool
		switch x.Name {
		case "startswith":
			f = strings.HasPrefix
		case "endswith":
			f = strings.HasSuffix
		default:
			f = func(s, p string) bool { return globMatch(p, s) }
		}
		return func(st *evalState) val {
			s, t := a(st), b(st)
			if !s.known || !t.known {
				return unknown(kBool)
			}
			return vBool(f(s.s, t.s))
		}, kBool
	case "cidr_contains":
		lit, ok := x.Args[0].(*hclsyntax.TemplateExpr)
		if !want(kStr, kStr) || !ok || !lit.IsStringLiteral() {
			return nil, 0
		}
		v, _ := lit.Value(nil)
		_, n, err := net.ParseCIDR(v.AsString())
		if err != nil {
			return nil, 0
		}
		a := args[1]
		return func(st *evalState) val {
			s := a(st)
			if !s.known {
				return unknown(kBool)
			}
			ip := net.ParseIP(s.s)
			return vBool(ip != nil && n.Contains(ip))
		}, kBool
	}
	return nil, 0
}
