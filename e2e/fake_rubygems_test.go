//go:build e2e

package e2e

import (
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// gemBuilder builds real .gem files and their quick/Marshal.4.8 specs with
// the machine's Ruby (the formats are Ruby-specific: YAML+Marshal).
const gemBuilder = `
require "rubygems/package"
require "fileutils"
out, name, version, epoch = ARGV
spec = Gem::Specification.new do |s|
  s.name = name
  s.version = version
  s.summary = "cafilprox e2e fake"
  s.authors = ["cafilprox e2e"]
  s.license = "MIT"
  s.files = ["lib/#{name}.rb"]
  s.date = Time.at(epoch.to_i).utc
end
Dir.chdir(out) do
  FileUtils.mkdir_p("lib")
  File.write("lib/#{name}.rb", "module E2e; VERSION = #{version.dump}; end\n")
  Gem::Package.build(spec)
  File.binwrite("#{name}-#{version}.gemspec.rz", Gem.deflate(Marshal.dump(spec)))
end
`

// newFakeRubyGems serves the compact index (/versions, /info/<gem>), the
// JSON API, quick/Marshal.4.8 specs and .gem files. Without Ruby it serves
// nothing (the RubyGems tests skip or fail on the missing client anyway).
func newFakeRubyGems(ca *testCA, work string) *fakeRegistry {
	f := newFakeRegistry("rubygems", ca, "rubygems.org", "index.rubygems.org")
	ruby, err := exec.LookPath("ruby")
	if err != nil {
		return f
	}
	versionsFile := fmt.Sprintf("created_at: %s\n---\n", oldTime.Format("2006-01-02T15:04:05-07:00"))
	for _, name := range []string{"e2e-left", "evil-pkg"} {
		versions := map[string][]fakeVersion{"e2e-left": leftVersions, "evil-pkg": evilVersions}[name]
		info := "---\n"
		var nums []string
		var api []map[string]any
		for _, v := range versions {
			dir := filepath.Join(work, name+"-"+v.version)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				log.Printf("e2e: rubygems fake: %v", err)
				return f
			}
			cmd := exec.Command(ruby, "-e", gemBuilder, dir, name, v.version, fmt.Sprint(v.time.Unix()))
			if out, err := cmd.CombinedOutput(); err != nil {
				log.Printf("e2e: rubygems fake: gem build %s-%s: %v\n%s", name, v.version, err, out)
				return f
			}
			gem, err1 := os.ReadFile(filepath.Join(dir, name+"-"+v.version+".gem"))
			rz, err2 := os.ReadFile(filepath.Join(dir, name+"-"+v.version+".gemspec.rz"))
			if err1 != nil || err2 != nil {
				log.Printf("e2e: rubygems fake: %v %v", err1, err2)
				return f
			}
			f.addArtifact("/gems/"+name+"-"+v.version+".gem", "application/octet-stream", gem, v.time)
			f.add("/quick/Marshal.4.8/"+name+"-"+v.version+".gemspec.rz", "application/octet-stream", rz)
			info += fmt.Sprintf("%s |checksum:%s\n", v.version, sha256Hex(gem))
			nums = append(nums, v.version)
			api = append([]map[string]any{{
				"number": v.version, "platform": "ruby", "created_at": rfc3339(v.time), "sha": sha256Hex(gem),
				"prerelease": false, "licenses": []string{"MIT"}, "summary": "cafilprox e2e fake", "authors": "cafilprox e2e",
			}}, api...)
		}
		f.add("/info/"+name, "text/plain; charset=utf-8", []byte(info))
		f.add("/api/v1/versions/"+name+".json", "application/json", mustJSON(api))
		versionsFile += fmt.Sprintf("%s %s %s\n", name, strings.Join(nums, ","), md5Hex([]byte(info)))
	}
	f.add("/versions", "text/plain; charset=utf-8", []byte(versionsFile))
	// gem (RubyGems 3.3) probes HEAD https://index.rubygems.org/ to choose the compact index.
	f.add("/", "text/plain; charset=utf-8", []byte("compact index\n"))
	return f
}
