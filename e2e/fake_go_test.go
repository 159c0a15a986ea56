//go:build e2e

package e2e

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"

	"golang.org/x/mod/module"
	modzip "golang.org/x/mod/zip"
)

// Fake Go module paths; GONOSUMDB covers them (they are unknown to sum.golang.org).
const (
	goLeftModule = "example.com/e2e/left"
	goEvilModule = "example.com/e2e/evil"
	goNoSumDB    = "example.com/e2e"
)

// newFakeGoProxy serves the GOPROXY protocol (list, .info, .mod, .zip,
// @latest) for two fake modules, zips built with golang.org/x/mod/zip.
func newFakeGoProxy(ca *testCA) (*fakeRegistry, error) {
	f := newFakeRegistry("go", ca, "proxy.golang.org", "sum.golang.org")
	for mod, versions := range map[string][]fakeVersion{goLeftModule: leftVersions, goEvilModule: evilVersions} {
		var list []string
		for _, fv := range versions {
			v := "v" + fv.version
			list = append(list, v)
			gomod := fmt.Sprintf("module %s\n\ngo 1.21\n", mod)
			pkg := mod[strings.LastIndex(mod, "/")+1:]
			var zb bytes.Buffer
			err := modzip.Create(&zb, module.Version{Path: mod, Version: v}, []modzip.File{
				memFile{"go.mod", gomod, fv.time},
				memFile{pkg + ".go", fmt.Sprintf("// Package %s is a cafilprox e2e fake.\npackage %s\n\n// Version is the module version.\nconst Version = %q\n", pkg, pkg, v), fv.time},
			})
			if err != nil {
				return nil, fmt.Errorf("e2e: go zip %s@%s: %w", mod, v, err)
			}
			info := mustJSON(map[string]any{"Version": v, "Time": fv.time.UTC().Format(time.RFC3339)})
			base := "/" + mod + "/@v/" + v
			f.add(base+".info", "application/json", info)
			f.add(base+".mod", "text/plain; charset=utf-8", []byte(gomod))
			f.addArtifact(base+".zip", "application/zip", zb.Bytes(), fv.time)
			f.add("/"+mod+"/@latest", "application/json", info)
		}
		f.add("/"+mod+"/@v/list", "text/plain; charset=utf-8", []byte(strings.Join(list, "\n")+"\n"))
	}
	return f, nil
}

// memFile is an in-memory file for modzip.Create.
type memFile struct {
	path string
	body string
	mod  time.Time
}

func (m memFile) Path() string                 { return m.path }
func (m memFile) Lstat() (fs.FileInfo, error)  { return memInfo{m}, nil }
func (m memFile) Open() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(m.body)), nil }

type memInfo struct{ m memFile }

func (i memInfo) Name() string       { return i.m.path[strings.LastIndex(i.m.path, "/")+1:] }
func (i memInfo) Size() int64        { return int64(len(i.m.body)) }
func (i memInfo) Mode() fs.FileMode  { return 0o644 }
func (i memInfo) ModTime() time.Time { return i.m.mod }
func (i memInfo) IsDir() bool        { return false }
func (i memInfo) Sys() any           { return nil }
