// Package typosquat says whether a package name imitates a popular one: a
// name that is not itself popular but is one edit away from a popular name,
// the same name with separators, case or look-alike characters swapped, or a
// popular name dressed in a scope or an ecosystem prefix/suffix.
//
// Every check is a lookup in an index precomputed from the popular lists
// (a symmetric-delete table of hashes for edit distance 1, a skeleton map for
// separator/case/homoglyph swaps, a name map for prefixes), so a check costs
// about a microsecond whatever the size of the lists. The lists shipped in
// data/ (see data/README.md) are used by Default; New takes others.
package typosquat

import (
	"bufio"
	"bytes"
	"embed"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/cafilprox/cafilprox/classifiers"
)

//go:embed data/*.txt
var dataFS embed.FS

// minEditLen is the shortest name component (the part of a name between
// "/" or ":" separators) in which an edit of distance 1 counts: below it
// almost every name is one edit from another ("ms"/"qs").
const minEditLen = 5

// minWordLen is the shortest word (part between "-", "_", "." or the
// component separators) in which an edit counts: "aws-sdk-sns"/"aws-sdk-sms"
// and "net-smtp"/"net-sftp" are different acronyms, not look-alikes.
const minWordLen = 4

// minAffixLen is the shortest popular name matched inside a prefix, suffix
// or scope ("@x/ws" is not worth flagging as "ws").
const minAffixLen = 4

// affixes are the decorations typosquats add around a popular name in each
// ecosystem ("python-requests", "node-lodash", "serde-rs"). A name wearing
// one whose remainder is popular is flagged.
var affixes = map[string]struct{ prefixes, suffixes []string }{
	classifiers.NPM:      {[]string{"node-", "nodejs-"}, []string{"-js", ".js", "js", "-node"}},
	classifiers.PyPI:     {[]string{"python3-", "python-", "py3-", "py-"}, []string{"-python3", "-python", "-py3", "-py"}},
	classifiers.Cargo:    {[]string{"rust-"}, []string{"-rs", "-rust"}},
	classifiers.RubyGems: {[]string{"ruby-"}, []string{"-ruby", "-rb"}},
}

// Index is a precomputed typosquat index over popular names per ecosystem.
// It is immutable and safe for concurrent use.
type Index struct {
	ecos map[string]*ecoIndex
}

type ecoIndex struct {
	eco   string
	names []string          // popular names as given, in rank order
	norm  []string          // normalised names (the Check input form)
	cmp   []string          // compare forms: lower-case, Go major suffix cut
	exact map[string]bool   // normalised (Go: major-cut) popular names
	byCmp map[string]uint32 // compare form → best-ranked id
	skel  map[string][]uint32
	del   []hashID            // symmetric-delete table, sorted by hash
	repo  map[string][]uint32 // Go: "host/repo" → ids of host/owner/repo paths
	owned map[string]int      // namespace → how many popular names it holds
}

// hashID is one entry of the symmetric-delete table: the hash of a compare
// form, or of it with one byte deleted, and the popular name it came from.
// Hash collisions only cost a wasted distance check.
type hashID struct {
	h  uint64
	id uint32
}

var (
	defaultOnce  sync.Once
	defaultIndex *Index
)

// Default returns the index built from the embedded popular lists. It is
// built once, on first use (about 0.2 s for the 38k shipped names).
func Default() *Index {
	defaultOnce.Do(func() {
		popular := map[string][]string{}
		for _, eco := range []string{classifiers.NPM, classifiers.PyPI, classifiers.Go, classifiers.Cargo, classifiers.RubyGems, classifiers.Maven, classifiers.Composer} {
			data, err := dataFS.ReadFile("data/" + eco + ".txt")
			if err != nil {
				panic("typosquat: embedded list missing: " + err.Error())
			}
			popular[eco] = lines(data)
		}
		defaultIndex = New(popular)
	})
	return defaultIndex
}

func lines(data []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

// New builds an index from popular names per ecosystem (cafilprox
// ecosystem names; names in any case/separator form, most popular first —
// the rank decides which popular name is reported when several match).
func New(popular map[string][]string) *Index {
	x := &Index{ecos: make(map[string]*ecoIndex, len(popular))}
	for eco, names := range popular {
		x.ecos[eco] = buildEco(eco, names)
	}
	return x
}

func buildEco(eco string, names []string) *ecoIndex {
	e := &ecoIndex{
		eco:   eco,
		exact: make(map[string]bool, len(names)),
		byCmp: make(map[string]uint32, len(names)),
		skel:  make(map[string][]uint32, len(names)),
		owned: map[string]int{},
	}
	if eco == classifiers.Go {
		e.repo = map[string][]uint32{}
	}
	for _, n := range names {
		norm := normalizeName(eco, n)
		base := goBase(eco, norm)
		if e.exact[base] {
			continue // duplicate in another form
		}
		id := uint32(len(e.names))
		c := cmpForm(eco, base)
		e.names = append(e.names, n)
		e.norm = append(e.norm, base)
		e.cmp = append(e.cmp, c)
		e.exact[base] = true
		if _, ok := e.byCmp[c]; !ok {
			e.byCmp[c] = id
		}
		if ns := namespace(eco, c); ns != "" {
			e.owned[ns]++
		}
		s := skeleton(base)
		e.skel[s] = append(e.skel[s], id)
		if len(c) >= minEditLen {
			e.del = append(e.del, hashID{hashSkip(c, -1), id})
			for i := range len(c) {
				e.del = append(e.del, hashID{hashSkip(c, i), id})
			}
		}
		if e.repo != nil {
			if host, _, repo, ok := goParts(c); ok {
				k := host + "/" + repo
				e.repo[k] = append(e.repo[k], id)
			}
		}
	}
	sort.Slice(e.del, func(i, j int) bool {
		if e.del[i].h != e.del[j].h {
			return e.del[i].h < e.del[j].h
		}
		return e.del[i].id < e.del[j].id
	})
	e.del = slices.Compact(e.del)
	return e
}

// Check returns the popular name that name (in ecosystem eco) imitates, and
// ok = true, when name is not itself popular but is a likely typosquat of
// a popular name. Unknown ecosystems are never flagged.
func (x *Index) Check(eco, name string) (popular string, ok bool) {
	popular, _, ok = x.Explain(eco, name)
	return popular, ok
}

// Explain is Check that also says which check matched. When several popular
// names match, the most popular (first listed) one is reported.
func (x *Index) Explain(eco, name string) (popular string, why Reason, ok bool) {
	if x == nil {
		return "", 0, false
	}
	e := x.ecos[eco]
	if e == nil || name == "" {
		return "", 0, false
	}
	norm := goBase(eco, normalizeName(eco, name))
	if e.exact[norm] {
		return "", 0, false
	}
	if id, why, ok := e.find(norm, -1); ok {
		return e.names[id], why, true
	}
	return "", 0, false
}

// Reason says which check matched.
type Reason uint8

// Reasons, in the order the checks run.
const (
	// Confusable: same name up to case, separators (- _ . @ / :) or
	// look-alike characters (I l 1 | → l, 0 → o, rn → m, vv → w).
	Confusable Reason = iota + 1
	// EditDistance: one insertion, deletion, substitution or adjacent
	// transposition away.
	EditDistance
	// Affix: a popular name inside an ecosystem prefix/suffix
	// ("python-requests") or another npm scope ("@evil/lodash").
	Affix
	// GoOwner: a popular Go repository under an owner that wraps the
	// popular owner ("github.com/boltdb-go/bolt").
	GoOwner
)

// String names the reason for logs and deny messages.
func (r Reason) String() string {
	switch r {
	case Confusable:
		return "confusable"
	case EditDistance:
		return "edit-distance"
	case Affix:
		return "affix"
	case GoOwner:
		return "go-owner"
	}
	return "none"
}

// noID marks "no candidate yet"; ids are ranks, lower is more popular.
const noID = ^uint32(0)

// find runs every check for the normalised, not-popular name norm and
// returns the best-ranked popular name it imitates. self, when >= 0, is a
// popular id to ignore (used to measure how dense the lists are).
func (e *ecoIndex) find(norm string, self int) (uint32, Reason, bool) {
	c := cmpForm(e.eco, norm)
	if ns := namespace(e.eco, c); ns != "" && e.owned[ns]-e.selfIn(ns, self) > 0 {
		// Only the owner of a namespace (npm scope, Maven group, Composer
		// vendor, Go host or forge owner) publishes in it; one that already
		// publishes a popular package is not imitating anyone.
		return 0, 0, false
	}
	best := noID
	var why Reason
	consider := func(id uint32, r Reason) {
		if int(id) != self && id < best {
			best, why = id, r
		}
	}
	// Case, separator and homoglyph swaps.
	if id, ok := e.byCmp[c]; ok {
		consider(id, Confusable)
	}
	for _, id := range e.skel[skeleton(norm)] {
		consider(id, Confusable)
	}
	// Damerau-Levenshtein distance 1 through the symmetric-delete table:
	// a popular name within one edit shares a hash with c or one of its
	// one-byte deletions; candidates are verified exactly.
	if len(c) >= minEditLen {
		for i := -1; i < len(c); i++ {
			h := hashSkip(c, i)
			j := sort.Search(len(e.del), func(k int) bool { return e.del[k].h >= h })
			for ; j < len(e.del) && e.del[j].h == h; j++ {
				id := e.del[j].id
				if id >= best || int(id) == self {
					continue
				}
				// An edit inside a short component ("gopkg.in/ini" vs
				// ".../inf", "@x/ms") is too likely to be a different word.
				if at, ok := osa1(c, e.cmp[id]); ok && componentLen(e.cmp[id], at, "/:") >= minEditLen && componentLen(e.cmp[id], at, "/:-_.") >= minWordLen && !numberedSibling(c, e.cmp[id], at) {
					consider(id, EditDistance)
				}
			}
		}
	}
	// Prefixes, suffixes and scopes around a popular name.
	if a, ok := affixes[e.eco]; ok {
		for _, p := range a.prefixes {
			if rest, ok := strings.CutPrefix(c, p); ok {
				e.affix(rest, consider)
			}
		}
		for _, s := range a.suffixes {
			if rest, ok := strings.CutSuffix(c, s); ok {
				e.affix(rest, consider)
			}
		}
	}
	if e.eco == classifiers.NPM && strings.HasPrefix(c, "@") {
		if i := strings.IndexByte(c, '/'); i > 0 {
			e.affix(c[i+1:], consider) // "@evil/lodash" dressing up "lodash"
		}
	}
	// Go: the same repository under an owner that wraps a popular owner
	// ("github.com/boltdb-go/bolt" for "github.com/boltdb/bolt").
	if e.repo != nil {
		if host, owner, repo, ok := goParts(c); ok {
			for _, id := range e.repo[host+"/"+repo] {
				if _, pOwner, _, _ := goParts(e.cmp[id]); owner != pOwner && wraps(owner, pOwner) {
					consider(id, GoOwner)
				}
			}
		}
	}
	return best, why, best != noID
}

// selfIn is 1 when popular id self lies in namespace ns: measuring list
// density must not count a name as owning its own namespace.
func (e *ecoIndex) selfIn(ns string, self int) int {
	if self >= 0 && namespace(e.eco, e.cmp[self]) == ns {
		return 1
	}
	return 0
}

func (e *ecoIndex) affix(rest string, consider func(uint32, Reason)) {
	if len(rest) < minAffixLen {
		return
	}
	if id, ok := e.byCmp[rest]; ok {
		consider(id, Affix)
	}
}

// wraps reports whether owner is popular owner p with a word added before or
// after it ("boltdb-go", "go-boltdb", "boltdbgo" for "boltdb").
func wraps(owner, p string) bool {
	if len(p) < 3 || len(owner) <= len(p) {
		return false
	}
	if rest, ok := strings.CutPrefix(owner, p); ok {
		return rest[0] == '-' || rest[0] == '_' || rest == "go" || rest == "golang"
	}
	if rest, ok := strings.CutSuffix(owner, p); ok {
		l := rest[len(rest)-1]
		return l == '-' || l == '_' || rest == "go" || rest == "golang"
	}
	return false
}

// osa1 reports whether a and b are within optimal-string-alignment
// (restricted Damerau-Levenshtein) distance 1: one insertion, deletion,
// substitution or transposition of adjacent bytes (a == b is not), and the
// offset of the edit.
func osa1(a, b string) (int, bool) {
	if a == b {
		return 0, false
	}
	la, lb := len(a), len(b)
	if la-lb > 1 || lb-la > 1 {
		return 0, false
	}
	i := 0
	for i < la && i < lb && a[i] == b[i] {
		i++
	}
	switch {
	case la == lb:
		if a[i+1:] == b[i+1:] {
			return i, true // substitution
		}
		return i, i+1 < la && a[i] == b[i+1] && a[i+1] == b[i] && a[i+2:] == b[i+2:]
	case la > lb:
		return i, a[i+1:] == b[i:]
	default:
		return i, a[i:] == b[i+1:]
	}
}

// numberedSibling reports whether the one edit at offset at between a and b
// only changes, adds or drops a digit ending a component: "json5"/"json3",
// "okhttp"/"okhttp3", "oauth"/"oauth2" are numbered series, not look-alikes.
// A digit inside a name ("python3-dateutil") still counts.
func numberedSibling(a, b string, at int) bool {
	if len(a) < len(b) {
		a, b = b, a
	}
	if at >= len(a) || !isDigit(a[at]) || (at < len(b) && len(a) == len(b) && !isDigit(b[at])) {
		return false
	}
	end := at + 1
	return end == len(a) || a[end] == '/' || a[end] == ':'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// componentLen is the length of the component of s (split at "/" and ":",
// the separators of scopes, paths and coordinates) holding offset i.
func componentLen(s string, i int, seps string) int {
	if i > len(s) {
		i = len(s)
	}
	start := strings.LastIndexAny(s[:i], seps) + 1
	end := strings.IndexAny(s[i:], seps)
	if end < 0 {
		return len(s) - start
	}
	return i + end - start
}

// hashSkip is FNV-1a over s without byte skip (skip < 0: all of s). It
// hashes a deletion without building the string, so Check allocates nothing.
func hashSkip(s string, skip int) uint64 {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	for i := 0; i < len(s); i++ {
		if i == skip {
			continue
		}
		h ^= uint64(s[i])
		h *= prime
	}
	return h
}
