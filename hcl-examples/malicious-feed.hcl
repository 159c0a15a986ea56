# Malicious-package feed only: no cooldown, no lists; every version the
# OpenSSF malicious-packages data flags is hidden and refused, with the
# advisory id and summary in the message. A package whose every version is
# malicious is refused outright.
#
# Get the data with
#   git clone --depth 1 https://github.com/ossf/malicious-packages feeds/malicious-packages
# or let Cafilprox download and refresh the OSV zip (url + refresh). The copy
# in feeds/ next to this file is a tiny sample used by the tests.

listen       = "127.0.0.1:8080"
admin_listen = "127.0.0.1:8081"
data_dir     = "./.cafilprox"

feed "ossf" {
  type = "osv"
  path = "feeds/malicious-packages" # relative to this file
  # url     = "https://osv-vulnerabilities.storage.googleapis.com/all.zip"
  # refresh = "1h"
}

policy {
  default = "allow"
  mode    = "enforce"
}

test "every-version-malicious" {
  ecosystem       = "npm"
  package         = "flatmap-stream"
  version         = "0.1.1"
  expect          = "deny"
  rule            = "malicious"
  reason_contains = "MAL-2025-20690"
}

test "listed-version-malicious" {
  ecosystem       = "pypi"
  package         = "0x000testqwe"
  version         = "5.20.4"
  expect          = "deny"
  reason_contains = "MAL-2025-6428"
}

test "other-version-clean" {
  ecosystem = "pypi"
  package   = "0x000testqwe"
  version   = "5.20.3"
  expect    = "allow"
}

test "go-typosquat-module" {
  ecosystem = "go"
  package   = "github.com/boltdb-go/bolt"
  version   = "v1.3.1"
  expect    = "deny"
  rule      = "malicious"
}

test "crate" {
  ecosystem = "cargo"
  package   = "replit_ruspty"
  version   = "1.0.0"
  expect    = "deny"
}

test "clean-package" {
  ecosystem = "npm"
  package   = "left-pad"
  version   = "1.3.0"
  expect    = "allow"
}
