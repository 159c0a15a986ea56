# Shadow-mode rollout: introduce a new policy without breaking anyone.
#
# Step 1 (this file): policy.mode = "enforce" keeps today's rules enforced,
# while the new rules carry mode = "shadow": they are evaluated and logged
# (X-Cafilprox-Decision, the audit trail, `cafilprox policy explain`), but
# nothing they would deny is refused.
# Step 2: read the audit trail for shadow denials, add allow rules for
# legitimate uses, then remove `mode = "shadow"` from the rules.
#
# To trial a whole policy at once, set policy.mode = "shadow": every denial
# (rules, cooldown, default = deny) is then logged only.

listen       = "127.0.0.1:8080"
admin_listen = "127.0.0.1:8081"
data_dir     = "./.cafilprox"

policy {
  default = "allow"
  min_age = "0s"
  mode    = "enforce"
}

# Enforced today.
rule "block-left-pad" {
  ecosystem = "npm"
  package   = "left-pad"
  action    = "deny"
}

# New: no install scripts from packages younger than 90 days. Shadow first.
rule "young-install-scripts" {
  ecosystem = "npm"
  when      = pkg.has_install_script && pkg.package_age < duration("90d")
  action    = "deny"
  mode      = "shadow"
  reason    = "${pkg.name} is ${floor(pkg.package_age / 86400)} days old and runs an install script"
}

# New: copyleft licenses need review. Shadow first.
rule "license-review" {
  when   = contains(["GPL-*", "AGPL-*"], pkg.license)
  action = "deny"
  mode   = "shadow"
  reason = "license ${pkg.license} needs legal review"
}

test "enforced-rule-still-denies" {
  ecosystem = "npm"
  package   = "left-pad"
  version   = "1.3.0"
  expect    = "deny"
}

test "shadow-rule-logs-only" {
  ecosystem          = "npm"
  package            = "fresh-helper"
  version            = "0.1.0"
  age                = "20d"
  package_age        = "30d"
  has_install_script = true
  expect             = "shadow"
  rule               = "young-install-scripts"
  reason_contains    = "30 days old"
}

test "license-shadow" {
  ecosystem       = "pypi"
  package         = "some-gpl-lib"
  version         = "1.0"
  age             = "100d"
  license         = "GPL-3.0-only"
  expect          = "shadow"
  reason_contains = "GPL-3.0-only"
}

test "unaffected" {
  ecosystem          = "npm"
  package            = "express"
  version            = "5.1.0"
  age                = "100d"
  package_age        = "5000d"
  has_install_script = false
  license            = "MIT"
  expect             = "allow"
}
