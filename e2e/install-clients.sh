#!/usr/bin/env bash
# install-clients.sh installs the package managers that the e2e suite drives, on Debian 12, as root.
# It is idempotent: clients already present are left alone, so a re-run costs seconds.
# Reachable registries are Debian apt, the npm registry and the Go module proxy only, so every
# client comes from one of those (python3/pip, go, cargo, node/npm and mvn are preinstalled).
set -euo pipefail

need_apt=()
command -v ruby >/dev/null 2>&1 || need_apt+=(ruby)
command -v gem >/dev/null 2>&1 || need_apt+=(ruby)
command -v bundle >/dev/null 2>&1 || need_apt+=(ruby-bundler)
command -v php >/dev/null 2>&1 || need_apt+=(php-cli)
command -v composer >/dev/null 2>&1 || need_apt+=(composer)
command -v unzip >/dev/null 2>&1 || need_apt+=(unzip)
command -v mvn >/dev/null 2>&1 || need_apt+=(maven)
# git (with git-http-backend) serves and clones the Composer fake's git source.
command -v git >/dev/null 2>&1 || need_apt+=(git)
# composer needs zip (and prefers curl) support in PHP; check the extensions themselves.
if command -v php >/dev/null 2>&1; then
  php -m 2>/dev/null | grep -qi '^zip$' || need_apt+=(php-zip)
  php -m 2>/dev/null | grep -qi '^curl$' || need_apt+=(php-curl)
  php -m 2>/dev/null | grep -qi '^mbstring$' || need_apt+=(php-mbstring)
else
  need_apt+=(php-zip php-curl php-mbstring)
fi
# The fake Maven registry serves the plugins `mvn dependency:resolve` needs from Debian's repo.
[ -d /usr/share/maven-repo/org/apache/maven/plugins/maven-dependency-plugin ] ||
  need_apt+=(libmaven-dependency-plugin-java)
# Debian's plugin POMs depend on junit:junit:4.x, which only the junit4 package provides.
[ -d /usr/share/maven-repo/junit/junit ] || need_apt+=(junit4)

if [ "${#need_apt[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=900 update -q
  # shellcheck disable=SC2046
  apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends $(printf '%s\n' "${need_apt[@]}" | sort -u)
fi

if command -v npm >/dev/null 2>&1; then
  need_npm=()
  command -v pnpm >/dev/null 2>&1 || need_npm+=(pnpm@9)
  command -v yarn >/dev/null 2>&1 || need_npm+=(yarn@1)
  if [ "${#need_npm[@]}" -gt 0 ]; then
    npm install -g --no-fund --no-audit "${need_npm[@]}"
  fi
fi

for c in node npm pnpm yarn python3 go cargo ruby gem bundle mvn php composer; do
  printf '%-9s %s\n' "$c" "$(command -v "$c" || echo MISSING)"
done
