package rules

import (
	"archive/zip"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cafilprox/cafilprox/classifiers"
	"github.com/cafilprox/cafilprox/rules/feed"
)

// benchPolicy returns a 200-rule policy: 170 exact-name rules (deny, allow,
// pin), 20 globs and 10 when-expression rules that apply to every package.
func benchPolicy() string {
	var b strings.Builder
	b.WriteString("policy {\n  default = \"allow\"\n  min_age = \"7d\"\n}\n")
	b.WriteString("client \"ci\" {\n  cidrs = [\"10.0.0.0/8\"]\n}\n")
	b.WriteString("internal {\n  npm = [\"@corp/*\"]\n}\n")
	for i := 0; i < 170; i++ {
		eco := []string{"npm", "pypi"}[i%2]
		switch i % 3 {
		case 0:
			fmt.Fprintf(&b, "rule \"deny-%d\" {\n  ecosystem = %q\n  package = \"pkg-%d\"\n  versions = \">=2.0.0\"\n  action = \"deny\"\n}\n", i, eco, i)
		case 1:
			fmt.Fprintf(&b, "rule \"allow-%d\" {\n  ecosystem = %q\n  package = \"pkg-%d\"\n  versions = \"1.0.%d\"\n  action = \"allow\"\n}\n", i, eco, i, i)
		case 2:
			fmt.Fprintf(&b, "rule \"pin-%d\" {\n  ecosystem = %q\n  package = \"pkg-%d\"\n  versions = \"<3.0.0\"\n  action = \"pin\"\n}\n", i, eco, i)
		}
	}
	for i := 0; i < 20; i++ {
		fmt.Fprintf(&b, "rule \"glob-%d\" {\n  ecosystem = \"npm\"\n  package = \"scope%d-*\"\n  action = \"deny\"\n}\n", i, i)
	}
	whens := []string{
		`pkg.typosquat_of != ""`,
		`pkg.package_age < duration("30d")`,
		`pkg.provenance_regressed`,
		`pkg.has_install_script && pkg.package_age < duration("90d")`,
		`contains(["GPL-*", "AGPL-*"], pkg.license)`,
		`pkg.yanked`,
		`pkg.age < duration("1d") && !contains(["@corp/*"], pkg.name)`,
		`cidr_contains("192.168.0.0/16", client.ip) && pkg.age < duration("3d")`,
		`pkg.retagged`,
		`startswith(pkg.name, "evil-")`,
	}
	for i, w := range whens {
		fmt.Fprintf(&b, "rule \"when-%d\" {\n  when = %s\n  action = \"deny\"\n  reason = \"${pkg.name}@${pkg.version}: rule %d\"\n}\n", i, w, i)
	}
	return b.String()
}

// syntheticFeed writes an OSV zip of n records (one version of pkg-i each).
func syntheticFeed(b *testing.B, n int) string {
	path := filepath.Join(b.TempDir(), "all.zip")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	zw := zip.NewWriter(f)
	for i := 0; i < n; i++ {
		eco := []string{"npm", "PyPI"}[i%2]
		w, err := zw.Create(fmt.Sprintf("MAL-%d.json", i))
		if err != nil {
			b.Fatal(err)
		}
		fmt.Fprintf(w, `{"id":"MAL-%d","summary":"Malicious code in mal-%d","affected":[{"package":{"ecosystem":%q,"name":"mal-%d"},"versions":["1.0.%d"]}]}`, i, i, eco, i, i%10)
	}
	if err := zw.Close(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return path
}

func benchSubject() Subject {
	md := &classifiers.Metadata{}
	for i := 0; i < 30; i++ {
		md.Versions = append(md.Versions, classifiers.Version{Version: fmt.Sprintf("1.%d.0", i), Published: t0.Add(-day(300 - i)), Provenance: true, Publisher: "github-actions", License: "MIT"})
	}
	return Subject{Ecosystem: "npm", Package: "pkg-4", Version: "1.29.0", Facts: &md.Versions[29], Meta: md, Client: Client{IP: ip("10.1.2.3")}}
}

// BenchmarkDecide: one decision, 200-rule policy, 200k-record feed.
func BenchmarkDecide(b *testing.B) {
	fixClock(b)
	idx := fakeIndex{}
	for i := 0; i < 200_000; i++ {
		idx[fmt.Sprintf("npm/mal-%d", i)] = map[string]Advisory{"1.0.0": {ID: fmt.Sprint("MAL-", i)}}
	}
	b.Run("fake-index", func(b *testing.B) {
		e := mustCompile(b, benchPolicy(), Options{Malicious: []MaliciousIndex{idx}})
		s := benchSubject()
		if d := e.Decide(s); !d.Allow {
			b.Fatalf("got deny (%s), want allow", d.Reason)
		}
		b.ReportAllocs()
		for b.Loop() {
			e.Decide(s)
		}
	})
	b.Run("osv-feed", func(b *testing.B) {
		path := syntheticFeed(b, 200_000)
		quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
		start := time.Now()
		e := mustCompile(b, benchPolicy()+fmt.Sprintf("feed \"ossf\" {\n  path = %q\n}\n", path), Options{
			DataDir: b.TempDir(),
			OpenFeed: func(ctx context.Context, cfg feed.Config) (*feed.Feed, error) {
				cfg.Logger = quiet
				return feed.Open(ctx, cfg)
			},
		})
		b.Logf("compile with a 200k-record OSV zip: %v", time.Since(start))
		if got := e.Feeds()[0].Count(); got != 200_000 {
			b.Fatalf("got %d records, want 200000", got)
		}
		flagged := Subject{Ecosystem: "npm", Package: "mal-42", Version: "1.0.2"}
		if d := e.Decide(flagged); d.Allow {
			b.Fatalf("got allow for a flagged version, want deny")
		}
		s := benchSubject()
		b.ReportAllocs()
		for b.Loop() {
			e.Decide(s)
		}
	})
	b.Run("no-when-rules", func(b *testing.B) {
		src := benchPolicy()
		src = src[:strings.Index(src, "rule \"when-0\"")]
		e := mustCompile(b, src, Options{Malicious: []MaliciousIndex{idx}})
		s := benchSubject()
		b.ReportAllocs()
		for b.Loop() {
			e.Decide(s)
		}
	})
}

// BenchmarkKeep filters a 1000-version document (per op: all 1000 calls).
func BenchmarkKeep(b *testing.B) {
	fixClock(b)
	e := mustCompile(b, benchPolicy(), Options{})
	md := &classifiers.Metadata{}
	for i := 0; i < 1000; i++ {
		md.Versions = append(md.Versions, classifiers.Version{Version: fmt.Sprintf("%d.%d.0", i/100, i%100), Published: t0.Add(-time.Duration(1000-i) * time.Hour), Provenance: i%2 == 0})
	}
	b.ReportAllocs()
	for b.Loop() {
		keep := e.Keep("npm", "pkg-4", md, Client{})
		for i := range md.Versions {
			keep(md.Versions[i].Version)
		}
	}
}
