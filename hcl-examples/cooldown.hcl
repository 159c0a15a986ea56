# A 10-day cooldown (minimum release age) with allow and block lists.
#
# Hijacked releases of popular packages are usually found and pulled within
# hours or days; refusing versions younger than 10 days keeps them out of
# builds. Metadata documents hide young versions, so resolvers quietly pick
# the newest version that is old enough.
#
# npm audit: `npm audit` requests (/-/npm/v1/security/...) are not package
# downloads; Cafilprox passes them through unfiltered, so audits keep working
# behind the cooldown.

listen       = "127.0.0.1:8080"
admin_listen = "127.0.0.1:8081"
data_dir     = "./.cafilprox"

ecosystem "npm" {
  upstream = "https://registry.npmjs.org"
}

ecosystem "pypi" {
  upstream = "https://pypi.org"
  min_age  = "7d" # replaces policy.min_age for PyPI
}

policy {
  default = "allow"
  min_age = "10d"
  mode    = "enforce"
}

# Block list.
rule "block-list" {
  ecosystem = "npm"
  package   = "event-stream"
  versions  = "3.3.6" # the compromised release
  action    = "deny"
  reason    = "event-stream 3.3.6 pulled in the malicious flatmap-stream"
}

rule "block-colors" {
  ecosystem = "npm"
  package   = "colors"
  versions  = ">=1.4.1"
  action    = "deny"
  reason    = "colors >= 1.4.1 is sabotaged (infinite loop)"
}

# Allow list: our own packages skip the cooldown. waive_cooldown is needed
# because this allow names packages, not versions.
rule "own-packages" {
  ecosystem      = "npm"
  package        = "@mycorp/*"
  action         = "allow"
  waive_cooldown = true
}

# Urgent-fix waiver: an allow rule naming exact versions waives the cooldown
# for them. It ends by itself after its expiry date.
rule "urgent-next-fix" {
  ecosystem = "npm"
  package   = "next"
  versions  = "15.2.3"
  action    = "allow"
  reason    = "CVE-2025-29927 fix, approved by security (TICKET-1234)"
  expires   = "2099-12-31"
}

test "young-version-refused" {
  ecosystem       = "npm"
  package         = "express"
  version         = "5.1.1"
  age             = "3d"
  expect          = "deny"
  rule            = "cooldown"
  reason_contains = "younger than min_age 10d"
}

test "old-version-allowed" {
  ecosystem = "npm"
  package   = "express"
  version   = "5.1.0"
  age       = "11d"
  expect    = "allow"
}

test "pypi-uses-its-own-min-age" {
  ecosystem = "pypi"
  package   = "django"
  version   = "5.2.1"
  age       = "8d"
  expect    = "allow"
}

test "own-package-skips-cooldown" {
  ecosystem = "npm"
  package   = "@mycorp/ui"
  version   = "2.0.0"
  age       = "1h"
  expect    = "allow"
}

test "urgent-waiver" {
  ecosystem = "npm"
  package   = "next"
  version   = "15.2.3"
  age       = "1d"
  expect    = "allow"
}

test "waiver-covers-only-that-version" {
  ecosystem = "npm"
  package   = "next"
  version   = "15.2.4"
  age       = "1d"
  expect    = "deny"
  rule      = "cooldown"
}

test "block-list-exact" {
  ecosystem = "npm"
  package   = "event-stream"
  version   = "3.3.6"
  age       = "2000d"
  expect    = "deny"
  rule      = "block-list"
}

test "block-list-other-version" {
  ecosystem = "npm"
  package   = "event-stream"
  version   = "3.3.5"
  age       = "2000d"
  expect    = "allow"
}

test "block-range" {
  ecosystem = "npm"
  package   = "colors"
  version   = "1.4.2"
  age       = "1000d"
  expect    = "deny"
  rule      = "block-colors"
}

test "unknown-publish-time-is-allowed" {
  ecosystem = "npm"
  package   = "express"
  version   = "5.1.0"
  expect    = "allow"
}
