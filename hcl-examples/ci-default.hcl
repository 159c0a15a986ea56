# Recommended "CI default" policy: what we suggest for build machines.
#
# Protection                      | stops                                   | does not stop
# --------------------------------|-----------------------------------------|----------------------------------
# cooldown (min_age 7d)           | hijacked releases of popular packages   | long-lived malicious packages,
#                                 | (usually pulled within hours or days)   | slow-burn backdoors
# age_source = "max"              | back-dated publish times (Go from VCS,  | attacks older than first sight
#                                 | Composer tags, CocoaPods)               |
# malicious feed                  | known malicious packages and versions   | anything not yet reported
# typosquat rule                  | look-alike names of popular packages    | look-alikes of unpopular names
# new-package rule (package_age)  | brand-new malicious packages            | old accounts or packages taken over
# internal                        | dependency confusion (public packages   | confusion under names you did not
#                                 | named like your private ones)           | list
# provenance regression           | a release published outside the usual  | registries without provenance data
#                                 | trusted CI pipeline (stolen token)      | (Go, Cargo, Maven, RubyGems...)
# re-tagged versions (built-in)   | a version moved to other content        | a first release that is already bad

listen       = "127.0.0.1:8080"
admin_listen = "127.0.0.1:8081"
data_dir     = "./.cafilprox"

feed "ossf" {
  type = "osv"
  path = "feeds/malicious-packages"
}

policy {
  default    = "allow"
  min_age    = "7d"
  mode       = "enforce"
  age_source = "max" # cooldown counts from the later of publish time and Cafilprox's first sight
}

# Names that only exist on our private registry. A public package with such
# a name is a dependency-confusion attack and is always refused.
internal {
  npm  = ["@mycorp/*"]
  pypi = ["mycorp-*"]
  go   = ["git.mycorp.example/*"]
}

# A name imitating a popular package (edit distance, separators, homoglyphs,
# scope confusion), while not being popular itself.
# A deny always wins over an allow, so genuine names are excepted in the
# condition itself.
rule "typosquat" {
  when   = pkg.typosquat_of != "" && !contains(["preact"], pkg.name)
  action = "deny"
  reason = "${pkg.name} looks like a typosquat of ${pkg.typosquat_of}; allow it explicitly if it is genuine"
}

# Packages whose first version is younger than 30 days need an explicit allow.
rule "new-package" {
  when   = pkg.package_age < duration("30d")
  action = "deny"
  reason = "${pkg.name} first appeared less than 30 days ago; new packages need an explicit allow rule"
}

# A version published without the provenance or trusted publisher that
# earlier versions had suggests a stolen token.
rule "provenance-regressed" {
  when   = pkg.provenance_regressed
  action = "deny"
  reason = "${pkg.name}@${pkg.version} lacks the provenance (or publisher ${pkg.publisher == "" ? "none" : pkg.publisher}) earlier versions had"
}

test "typosquat-denied" {
  ecosystem       = "pypi"
  package         = "reqeusts"
  version         = "1.0.0"
  age             = "400d"
  package_age     = "400d"
  typosquat_of    = "requests"
  expect          = "deny"
  rule            = "typosquat"
  reason_contains = "typosquat of requests"
}

test "typosquat-exception" {
  ecosystem    = "npm"
  package      = "preact"
  version      = "10.26.0"
  age          = "400d"
  package_age  = "3000d"
  typosquat_of = "react"
  expect       = "allow"
}

test "internal-name-denied" {
  ecosystem       = "npm"
  package         = "@mycorp/auth"
  version         = "99.0.0"
  age             = "400d"
  expect          = "deny"
  rule            = "internal"
  reason_contains = "dependency confusion"
}

test "internal-pypi-normalized" {
  ecosystem = "pypi"
  package   = "MyCorp_Billing"
  version   = "1.0"
  expect    = "deny"
  rule      = "internal"
}

test "new-package-denied" {
  ecosystem   = "npm"
  package     = "shiny-new-thing"
  version     = "1.0.0"
  age         = "10d"
  package_age = "10d"
  expect      = "deny"
  rule        = "new-package"
}

test "provenance-regression-denied" {
  ecosystem  = "npm"
  package    = "popular-lib"
  version    = "2.0.1"
  age        = "8d"
  provenance = false
  publisher  = ""
  history = [
    { version = "1.9.0", age = "200d", provenance = true, publisher = "github-actions" },
    { version = "2.0.0", age = "50d", provenance = true, publisher = "github-actions" },
  ]
  expect = "deny"
  rule   = "provenance-regressed"
}

test "provenance-kept-allowed" {
  ecosystem  = "npm"
  package    = "popular-lib"
  version    = "2.0.1"
  age        = "8d"
  provenance = true
  publisher  = "github-actions"
  history = [
    { version = "2.0.0", age = "50d", provenance = true, publisher = "github-actions" },
  ]
  expect = "allow"
}

test "backdated-but-first-seen-recently" {
  ecosystem       = "go"
  package         = "github.com/example/lib"
  version         = "v1.2.0"
  published       = "2020-01-01T00:00:00Z" # the commit date the author chose
  first_seen      = "2d"                   # Cafilprox saw it two days ago
  package_age     = "1000d"
  expect          = "deny"
  rule            = "cooldown"
  reason_contains = "first seen"
}

test "retagged-denied" {
  ecosystem   = "composer"
  package     = "acme/lib"
  version     = "1.0.0"
  age         = "300d"
  package_age = "1000d"
  retagged    = true
  expect      = "deny"
  rule        = "retagged"
}

test "malicious-feed" {
  ecosystem = "npm"
  package   = "flatmap-stream"
  version   = "0.1.1"
  expect    = "deny"
  rule      = "malicious"
}

test "ordinary-package" {
  ecosystem   = "npm"
  package     = "express"
  version     = "5.1.0"
  age         = "100d"
  package_age = "5000d"
  expect      = "allow"
}
