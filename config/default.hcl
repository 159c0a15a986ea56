# Cafilprox embedded default configuration: used when no --config is given.
# Every registry keeps its real upstream; nothing is denied until you add rules.
listen       = "127.0.0.1:8080"
admin_listen = "127.0.0.1:8081"
data_dir     = "./.cafilprox"

egress {
  unknown_hosts = "tunnel"
}

cache {
  max_size       = "20GiB"
  metadata_ttl   = "5m"
  stale_if_error = "72h"
}

policy {
  default = "allow"
  min_age = "0s"
  mode    = "enforce"
}
