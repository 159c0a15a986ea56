# The "advanced" PyPI + npm example: a block list, a pinned version and a
# blocked npm package, with a short cooldown on everything else.

listen       = "127.0.0.1:8080"
admin_listen = "127.0.0.1:8081"
data_dir     = "./.cafilprox"

cache {
  max_size       = "20GiB"
  metadata_ttl   = "5m"
  stale_if_error = "72h"
}

ecosystem "pypi" {
  upstream = "https://pypi.org"
}

ecosystem "npm" {
  upstream = "https://registry.npmjs.org"
}

policy {
  default = "allow"
  min_age = "2d" # versions younger than two days are hidden and refused
  mode    = "enforce"
}

# Deny every version of a package. Names are normalized per ecosystem, so
# "Bad_Package" and "bad.package" are the same PyPI project.
rule "block-bad-package" {
  ecosystem = "pypi"
  package   = "bad-package"
  action    = "deny"
  reason    = "Security vulnerability"
}

# Only requests 2.28.1 may be served; every other version is refused with
# this rule's reason, and pip resolves to 2.28.1.
rule "pin-requests" {
  ecosystem = "pypi"
  package   = "requests"
  versions  = "==2.28.1" # PEP 440, as pip would write it
  action    = "pin"
  reason    = "requests is pinned to 2.28.1 until the TLS regression is fixed"
}

rule "block-left-pad" {
  ecosystem = "npm"
  package   = "left-pad"
  action    = "deny"
  reason    = "${pkg.name} was unpublished once and broke the build; vendor it instead"
}

test "bad-package-denied" {
  ecosystem       = "pypi"
  package         = "Bad_Package"
  version         = "1.0.0"
  age             = "300d"
  expect          = "deny"
  rule            = "block-bad-package"
  reason_contains = "Security vulnerability"
}

test "requests-pinned-version-allowed" {
  ecosystem = "pypi"
  package   = "requests"
  version   = "2.28.1"
  published = "2022-06-29T15:13:18Z"
  expect    = "allow"
}

test "requests-other-version-denied" {
  ecosystem       = "pypi"
  package         = "requests"
  version         = "2.32.3"
  age             = "200d"
  expect          = "deny"
  rule            = "pin-requests"
  reason_contains = "pinned to 2.28.1"
}

test "left-pad-denied" {
  ecosystem       = "npm"
  package         = "left-pad"
  version         = "1.3.0"
  age             = "3000d"
  expect          = "deny"
  reason_contains = "left-pad was unpublished once"
}

test "fresh-release-in-cooldown" {
  ecosystem       = "npm"
  package         = "lodash"
  version         = "4.17.22"
  age             = "5h"
  expect          = "deny"
  rule            = "cooldown"
  reason_contains = "younger than min_age 2d"
}

test "old-release-allowed" {
  ecosystem = "npm"
  package   = "lodash"
  version   = "4.17.21"
  age       = "400d"
  expect    = "allow"
}
