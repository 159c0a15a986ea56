#!/usr/bin/env bash
# Runs every check and test: formatting, vet, unit tests (with the race
# detector for the packages that run concurrently) and the end-to-end suite
# with the real package managers. Clients missing locally are skipped with a
# message; with CI=true a missing client fails (.ci/run installs them all).
set -euo pipefail
cd "$(dirname "$0")"

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.cafilprox/*'))
if [ -n "$unformatted" ]; then
  echo "gofmt needed:"; echo "$unformatted"; exit 1
fi

echo "== go vet"
go vet ./...
go vet -tags e2e ./e2e/...

echo "== unit tests (race detector on concurrent packages)"
race_pkgs=(./ca/... ./mitm/... ./cache/... ./audit/... ./limits/... ./dnsredirect/... ./transparent/... ./rules/feed/... ./cmd/...)
go test -race -count=1 "${race_pkgs[@]}"
go test -count=1 $(go list ./... | grep -v -E "/(ca|mitm|cache|audit|limits|dnsredirect|transparent|cmd)(/|\$)|/rules/feed\$|/e2e\$|/bench(/|\$)")

echo "== end-to-end tests with real clients"
go test -tags e2e -count=1 -timeout 60m ./e2e/...
