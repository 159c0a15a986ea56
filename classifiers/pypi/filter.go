package pypi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/cafilprox/cafilprox/classifiers"
	"github.com/cafilprox/cafilprox/classifiers/internal/jsonscan"
)

// Filter drops the files and version entries of denied versions from any of
// the three forms. Untouched parts keep their original bytes. A JSON API
// document whose info.version was dropped is repointed at the newest kept
// release (info.version, info.release_url and urls). A single-version JSON
// API document is returned unchanged or refused with ErrNoAllowedVersion.
func (*Classifier) Filter(req classifiers.Request, body []byte, keep func(version string) bool) ([]byte, error) {
	switch {
	case req.Variant == VariantJSONAPI:
		return filterJSONAPI(req, body, keep)
	case req.Variant == VariantJSON || (req.Variant == "" && looksJSON(body)):
		return filterSimpleJSON(req, body, keep)
	default:
		return filterHTML(req, body, keep)
	}
}

func filterHTML(req classifiers.Request, body []byte, keep func(string) bool) ([]byte, error) {
	as, err := scanHTML(req, body)
	if err != nil {
		return nil, err
	}
	var out []byte
	last := 0
	for _, a := range as {
		if a.file.Version == "" || keep(a.file.Version) {
			continue
		}
		if out == nil {
			out = make([]byte, 0, len(body))
		}
		// Take the anchor's indentation and its trailing <br> and line
		// break with it, so the page keeps one file per line.
		start, end := a.start, a.end
		for _, br := range []string{"<br />", "<br/>", "<br>"} {
			if bytes.HasPrefix(body[end:], []byte(br)) {
				end += len(br)
				break
			}
		}
		indent := start
		for indent > last && (body[indent-1] == ' ' || body[indent-1] == '\t') {
			indent--
		}
		if indent > 0 && body[indent-1] == '\n' {
			// The anchor starts its line: drop the whole line.
			start = indent
			if bytes.HasPrefix(body[end:], []byte("\r\n")) {
				end += 2
			} else if end < len(body) && body[end] == '\n' {
				end++
			}
		}
		out = append(out, body[last:start]...)
		last = end
	}
	if out == nil {
		return body, nil
	}
	return append(out, body[last:]...), nil
}

func filterSimpleJSON(req classifiers.Request, body []byte, keep func(string) bool) ([]byte, error) {
	if !json.Valid(body) {
		return nil, classifiers.Malformed("pypi: %s: invalid JSON", req.Package)
	}
	top, ok := jsonscan.ObjectMembers(body, 0)
	if !ok {
		return nil, classifiers.Malformed("pypi: %s: simple JSON is not an object", req.Package)
	}
	changed := false
	repl := map[int][]byte{}
	for i, m := range top {
		switch m.Key(body) {
		case "files":
			els, ok := jsonscan.ArrayElements(body, m.ValStart)
			if !ok {
				return nil, classifiers.Malformed("pypi: %s: files is not an array", req.Package)
			}
			var keptEls [][2]int
			for _, e := range els {
				var sf simpleFile
				if err := json.Unmarshal(body[e[0]:e[1]], &sf); err != nil {
					return nil, classifiers.Malformed("pypi: %s: files entry: %v", req.Package, err)
				}
				if v := sf.file().Version; v != "" && !keep(v) {
					changed = true
					continue
				}
				keptEls = append(keptEls, e)
			}
			repl[i] = appendArray(nil, body, keptEls)
		case "versions":
			els, ok := jsonscan.ArrayElements(body, m.ValStart)
			if !ok {
				return nil, classifiers.Malformed("pypi: %s: versions is not an array", req.Package)
			}
			var keptEls [][2]int
			for _, e := range els {
				var v string
				if err := json.Unmarshal(body[e[0]:e[1]], &v); err != nil {
					return nil, classifiers.Malformed("pypi: %s: versions entry: %v", req.Package, err)
				}
				if !keep(v) {
					changed = true
					continue
				}
				keptEls = append(keptEls, e)
			}
			repl[i] = appendArray(nil, body, keptEls)
		}
	}
	if !changed {
		return body, nil
	}
	return rebuild(body, top, repl), nil
}

func filterJSONAPI(req classifiers.Request, body []byte, keep func(string) bool) ([]byte, error) {
	d, err := parseJSONAPI(req, body)
	if err != nil {
		return nil, err
	}
	top, _ := jsonscan.ObjectMembers(body, 0)
	var releases, info, urls = -1, -1, -1
	for i, m := range top {
		switch m.Key(body) {
		case "releases":
			releases = i
		case "info":
			info = i
		case "urls":
			urls = i
		}
	}
	if releases < 0 {
		if keep(d.latest) {
			return body, nil
		}
		return nil, fmt.Errorf("pypi: %s@%s: %w", req.Package, d.latest, classifiers.ErrNoAllowedVersion)
	}
	rms, ok := jsonscan.ObjectMembers(body, top[releases].ValStart)
	if !ok {
		return nil, classifiers.Malformed("pypi: %s: releases is not an object", req.Package)
	}
	var kept []jsonscan.Member
	var keptNames []string
	keptRaw := map[string][]byte{}
	for _, m := range rms {
		v := m.Key(body)
		if keep(v) {
			kept = append(kept, m)
			keptNames = append(keptNames, v)
			keptRaw[v] = body[m.ValStart:m.ValEnd]
		}
	}
	latestDenied := d.latest != "" && !keep(d.latest)
	if len(kept) == len(rms) && !latestDenied {
		return body, nil
	}
	repl := map[int][]byte{}
	out := []byte{'{'}
	for i, m := range kept {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, body[m.KeyStart:m.ValEnd]...)
	}
	repl[releases] = append(out, '}')
	if latestDenied {
		nv := newest(keptNames)
		if info >= 0 {
			repl[info] = rewriteInfo(body, top[info], d.latest, nv)
		}
		if urls >= 0 {
			if raw, ok := keptRaw[nv]; ok {
				repl[urls] = raw
			} else {
				repl[urls] = []byte("[]")
			}
		}
	}
	return rebuild(body, top, repl), nil
}

// rewriteInfo sets info.version to nv (null when nothing is left) and
// fixes release_url, leaving the other info fields as they were.
func rewriteInfo(body []byte, info jsonscan.Member, old, nv string) []byte {
	ms, ok := jsonscan.ObjectMembers(body, info.ValStart)
	if !ok {
		return body[info.ValStart:info.ValEnd]
	}
	repl := map[int][]byte{}
	for i, m := range ms {
		switch m.Key(body) {
		case "version":
			if nv == "" {
				repl[i] = []byte("null")
			} else {
				repl[i] = jsonString(nv)
			}
		case "release_url":
			var u string
			if json.Unmarshal(body[m.ValStart:m.ValEnd], &u) == nil && nv != "" {
				repl[i] = jsonString(strings.Replace(u, "/"+old+"/", "/"+nv+"/", 1))
			}
		}
	}
	return rebuild(body, ms, repl)
}

func jsonString(s string) []byte {
	b, _ := json.Marshal(s) // a string always marshals
	return b
}

// rebuild writes the object described by ms with values replaced per repl.
func rebuild(body []byte, ms []jsonscan.Member, repl map[int][]byte) []byte {
	out := make([]byte, 0, len(body))
	out = append(out, '{')
	for i, m := range ms {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, body[m.KeyStart:m.KeyEnd]...)
		out = append(out, ':')
		if r, ok := repl[i]; ok {
			out = append(out, r...)
		} else {
			out = append(out, body[m.ValStart:m.ValEnd]...)
		}
	}
	return append(out, '}')
}

func appendArray(out, body []byte, els [][2]int) []byte {
	out = append(out, '[')
	for i, e := range els {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, body[e[0]:e[1]]...)
	}
	return append(out, ']')
}

// RewriteIndex points files.pythonhosted.org links at proxyBase + "/files/",
// keeping paths and #sha256 fragments, so that index-URL clients download
// through the proxy.
func (*Classifier) RewriteIndex(req classifiers.Request, body []byte, proxyBase string) ([]byte, error) {
	if looksJSON(body) && !json.Valid(body) {
		return nil, classifiers.Malformed("pypi: %s: invalid JSON", req.Package)
	}
	base := []byte(strings.TrimSuffix(proxyBase, "/") + "/files/")
	out := body
	for _, host := range []string{"https://files.pythonhosted.org/", "http://files.pythonhosted.org/"} {
		out = bytes.ReplaceAll(out, []byte(host), base)
	}
	return out, nil
}
