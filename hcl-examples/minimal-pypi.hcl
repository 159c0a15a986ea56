# Minimal PyPI caching proxy.
#
#   pip install --index-url http://127.0.0.1:8080/pypi/simple/ requests
# or, with the proxy's CA trusted:
#   HTTPS_PROXY=http://127.0.0.1:8080 pip install requests
#
# Everything is allowed; Cafilprox only caches. Add rules when you need them.

listen       = "127.0.0.1:8080"
admin_listen = "127.0.0.1:8081"
data_dir     = "./.cafilprox"

ecosystem "pypi" {
  upstream = "https://pypi.org"
}

policy {
  default = "allow" # serve anything no rule denies
  min_age = "0s"    # no cooldown
  mode    = "enforce"
}

# `cafilprox policy test minimal-pypi.hcl` runs these.
test "anything-goes" {
  ecosystem = "pypi"
  package   = "Requests" # names are compared in PEP 503 form: this is "requests"
  version   = "2.32.3"
  age       = "1h"
  expect    = "allow"
}
