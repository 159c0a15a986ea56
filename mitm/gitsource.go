package mitm

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/cafilprox/cafilprox/classifiers"
	"github.com/cafilprox/cafilprox/rules"
)

// Composer falls back from a refused dist to cloning the package's source
// repository (for GitHub: git over HTTPS, then SSH). Where the repository's
// host is intercepted (github.com by default), a client that was just
// refused a version is refused git fetches of that version's source
// repositories for a while, with a message git prints as
// "fatal: remote error: ...". Other clients and other repositories are
// untouched: a clone fetches every ref, so it cannot be judged per version.

// sourceGuardTTL is how long a refusal extends to the source repositories.
const sourceGuardTTL = 10 * time.Minute

// refusedSource is what a guarded repository fetch is refused with.
type refusedSource struct {
	req classifiers.Request
	d   rules.Decision
}

// guardSources remembers the source repositories of a refused version.
func (p *Pipeline) guardSources(rt *routed, facts *classifiers.Version, d rules.Decision) {
	if facts == nil || rt.client.IP == nil {
		return
	}
	self := rt.real.String()
	for _, u := range facts.ArtifactURLs {
		if key, ok := repoKey(u); ok && u != self {
			p.sources.put(rt.client.IP.String()+"\x00"+key, refusedSource{req: rt.req, d: d}, 1, time.Now().Add(sourceGuardTTL))
		}
	}
}

// refuseGuardedSource refuses a git fetch of a repository guarded for this
// client and reports whether it did.
func (p *Pipeline) refuseGuardedSource(w http.ResponseWriter, r *http.Request, rt *routed) bool {
	if rt.client.IP == nil {
		return false
	}
	repo, ok := gitFetchRepo(r.URL)
	if !ok {
		return false
	}
	key, _ := repoKey("https://" + rt.host + repo)
	ref, ok := p.sources.get(rt.client.IP.String()+"\x00"+key, time.Now())
	if !ok {
		return false
	}
	src := *rt
	src.req = ref.req
	msg := denyMessage(&src, ref.d) + fmt.Sprintf(" (its source repository is refused to this client for %v after the refusal)", sourceGuardTTL)
	rt.req.Ecosystem, rt.req.Package, rt.req.Version = ref.req.Ecosystem, ref.req.Package, ref.req.Version
	rt.ev.Ecosystem, rt.ev.Package, rt.ev.Version, rt.ev.Kind = ref.req.Ecosystem, ref.req.Package, ref.req.Version, "source"
	rt.record(ref.d)
	h := w.Header()
	h.Set(HeaderDecision, "deny")
	h.Set("Cache-Control", "no-store")
	if strings.HasSuffix(r.URL.Path, "/info/refs") {
		// Smart HTTP: git reads an ERR packet in the ref advertisement
		// and prints it; a bare 403 would only show the status code.
		h.Set("Content-Type", "application/x-git-upload-pack-advertisement")
		w.WriteHeader(http.StatusOK)
		fmt.Fprintf(w, "%s0000%s", pktLine("# service=git-upload-pack\n"), pktLine("ERR "+msg+"\n"))
		return true
	}
	writeError(w, http.StatusForbidden, msg)
	return true
}

// pktLine frames s as a git pkt-line.
func pktLine(s string) string {
	return fmt.Sprintf("%04x%s", len(s)+4, s)
}

// gitFetchRepo returns the repository path of a git smart-HTTP fetch
// (GET <repo>/info/refs?service=git-upload-pack, POST <repo>/git-upload-pack).
func gitFetchRepo(u *url.URL) (string, bool) {
	if repo, ok := strings.CutSuffix(u.Path, "/info/refs"); ok && u.Query().Get("service") == "git-upload-pack" {
		return repo, repo != ""
	}
	if repo, ok := strings.CutSuffix(u.Path, "/git-upload-pack"); ok {
		return repo, repo != ""
	}
	return "", false
}

// repoKey names a repository independently of the spelling of its URL:
// lower-cased host and path, without a trailing ".git" or slash.
func repoKey(raw string) (string, bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return "", false
	}
	p := strings.TrimSuffix(strings.TrimSuffix(strings.ToLower(u.Path), "/"), ".git")
	if p == "" {
		return "", false
	}
	return strings.ToLower(u.Hostname()) + p, true
}
