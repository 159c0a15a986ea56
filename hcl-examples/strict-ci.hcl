# Strict CI runners: deny by default and serve only an explicit allow list.
# CI runners (identified by network or proxy user) get a longer cooldown
# through their client group, and release builds a pinned toolchain.

listen       = "0.0.0.0:8080"
admin_listen = "127.0.0.1:8081"
data_dir     = "/var/lib/cafilprox"

# Proxy users (client "ci" { users = [...] } below) come from the auth
# block; see the main README for its settings. Without it, clients are
# identified by source address only.

policy {
  default = "deny" # anything not allowed below is refused
  min_age = "3d"
  mode    = "enforce"
}

# Clients are grouped by source network and by proxy user name.
client "ci" {
  cidrs   = ["10.20.0.0/16", "fd00:20::/32"]
  users   = ["ci-runner"]
  min_age = "14d" # the strictest min_age of the client's groups applies
}

client "release" {
  users = ["release-bot"]
}

# The allow list. An allow rule without versions lets the package through
# default = deny but keeps the cooldown.
rule "allow-python-basics" {
  ecosystem = "pypi"
  package   = "requests"
  action    = "allow"
}

rule "allow-pytest" {
  ecosystem = "pypi"
  package   = "pytest*" # pytest, pytest-cov, pytest-xdist...
  action    = "allow"
}

rule "allow-npm-build" {
  ecosystem = "npm"
  package   = "typescript"
  action    = "allow"
}

rule "allow-types" {
  ecosystem = "npm"
  package   = "@types/*"
  action    = "allow"
}

# Release builds may only use exact, reviewed versions of the toolchain.
rule "release-typescript" {
  ecosystem = "npm"
  package   = "typescript"
  versions  = "5.8.3"
  action    = "pin"
  clients   = ["release"]
  reason    = "release builds use the reviewed typescript 5.8.3"
}

test "ci-allowed-package" {
  ecosystem = "pypi"
  package   = "requests"
  version   = "2.32.3"
  age       = "30d"
  client    = { ip = "10.20.3.4" }
  expect    = "allow"
}

test "ci-unlisted-package" {
  ecosystem       = "pypi"
  package         = "flask"
  version         = "3.1.0"
  age             = "300d"
  client          = { ip = "10.20.3.4" }
  expect          = "deny"
  rule            = "default"
  reason_contains = "not on the allow list"
}

test "ci-glob-allow" {
  ecosystem = "pypi"
  package   = "pytest_cov" # PEP 503: pytest-cov
  version   = "6.0.0"
  age       = "30d"
  client    = { user = "ci-runner" }
  expect    = "allow"
}

test "ci-stricter-cooldown" {
  ecosystem       = "npm"
  package         = "@types/node"
  version         = "22.15.0"
  age             = "7d"
  client          = { ip = "10.20.3.4" }
  expect          = "deny"
  reason_contains = "younger than min_age 14d"
}

test "laptop-default-cooldown" {
  ecosystem = "npm"
  package   = "@types/node"
  version   = "22.15.0"
  age       = "7d"
  client    = { ip = "192.168.1.10" }
  expect    = "allow"
}

test "release-pinned" {
  ecosystem = "npm"
  package   = "typescript"
  version   = "5.9.2"
  age       = "60d"
  client    = { user = "release-bot" }
  expect    = "deny"
  rule      = "release-typescript"
}

test "others-not-pinned" {
  ecosystem = "npm"
  package   = "typescript"
  version   = "5.9.2"
  age       = "60d"
  client    = { user = "alice" }
  expect    = "allow"
}
