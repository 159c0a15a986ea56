#!/usr/bin/env bash
# Regenerates BENCHMARKS.md and bench/plot.png: Cafilprox side by side with
# direct, squid (ssl-bump), mitmproxy and Verdaccio, on loopback only.
#
#   bench/run.sh                 # full run (~12 min on 2 cores)
#   QUICK=1 bench/run.sh         # 1 repetition, 2 s phases, no 1 GB artifact
#   INSTALL=1 bench/run.sh       # first apt-get/npm install the peers
#
# Needs root for the fake registry's port 443 on 127.0.0.77 and for squid's
# user switch. Recorded registry data and peer installs are kept in
# $BENCH_CACHE (default /tmp/cafilprox-bench-cache) between runs.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${BENCH_CACHE:-/tmp/cafilprox-bench-cache}
mkdir -p "$cache"
cd "$root"

if [[ ${INSTALL:-0} == 1 ]]; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends squid-openssl mitmproxy gnuplot-nox
fi

# Verdaccio 6 needs Node 22; 5.x runs on Node 20. Its dependency tree asks
# for the dist-tag node-fetch@cjs, missing from some registry mirrors: pin it.
verdaccio="$cache/verdaccio/node_modules/.bin/verdaccio"
if [[ ! -x $verdaccio ]]; then
	mkdir -p "$cache/verdaccio"
	cat >"$cache/verdaccio/package.json" <<'EOF'
{"name":"bench-verdaccio","version":"1.0.0","private":true,"dependencies":{"verdaccio":"5.33.0"},"overrides":{"node-fetch":"2.7.0"}}
EOF
	(cd "$cache/verdaccio" && npm install --no-audit --no-fund --loglevel=error) || echo "verdaccio install failed: it will be skipped" >&2
fi
[[ -x $verdaccio ]] || verdaccio=""

echo "== building" >&2
go build -o "$cache/bench" ./bench
go build -o "$cache/cafilprox" ./cmd/cafilprox
# A pprof-enabled build for the profile pass only: the hook is overlaid, never
# part of the repository's cmd/cafilprox.
printf '{"Replace":{"%s/cmd/cafilprox/zz_bench_pprof.go":"%s/bench/pprof_hook.go.txt"}}\n' "$root" "$root" >"$cache/overlay.json"
go build -overlay "$cache/overlay.json" -o "$cache/cafilprox-pprof" ./cmd/cafilprox

echo "== recording registry data (kept in $cache)" >&2
"$cache/bench" record-npm -lock bench/npm-project/package-lock.json -dir "$cache/npm"
mkdir -p "$cache/goproj"
cp go.mod go.sum "$cache/goproj/"
(cd "$cache/goproj" && GOMODCACHE="$cache/gomod" GOFLAGS=-mod=mod GOTOOLCHAIN=local go mod download)

args=(-cafilprox "$cache/cafilprox" -verdaccio "$verdaccio"
	-npm-data "$cache/npm" -npm-project bench/npm-project
	-go-data "$cache/gomod/cache/download" -go-project "$cache/goproj")
if [[ ${QUICK:-0} == 1 ]]; then
	args+=(-reps 1 -workload-reps 1 -duration 2s -sizes 10k,1m,100m -slow-sizes 10k,1m,100m)
fi
work=$(mktemp -d /tmp/cafilprox-bench-XXXXXX)
chmod 755 "$work"
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT

echo "== measuring (log: $cache/run.log)" >&2
"$cache/bench" run -work "$work/run" -out bench/results.json "${args[@]}" 2>&1 | tee "$cache/run.log" >&2

echo "== profiling cafilprox" >&2
rm -rf "$cache/profiles"
"$cache/bench" run -work "$work/prof" -out "$cache/profile-results.json" -cafilprox "$cache/cafilprox-pprof" \
	-peers cafilprox -reps 1 -workload-reps 1 -duration 5s -sizes 1g -npm-data "$cache/npm" -npm-project bench/npm-project \
	-profile-dir "$cache/profiles" 2>&1 | tail -3 >&2
mkdir -p bench/profiles
for p in hits tunnels stream-cold stream-warm npm-cold npm-warm; do
	go tool pprof -top -nodecount=25 "$cache/cafilprox-pprof" "$cache/profiles/cafilprox-$p.pprof" >"bench/profiles/$p-flat.txt" 2>/dev/null || true
	go tool pprof -top -cum -nodecount=45 "$cache/cafilprox-pprof" "$cache/profiles/cafilprox-$p.pprof" >"bench/profiles/$p-cum.txt" 2>/dev/null || true
done

"$cache/bench" report -in bench/results.json -md BENCHMARKS.md -png bench/plot.png -notes bench/ANALYSIS.md
echo "== wrote BENCHMARKS.md and bench/plot.png" >&2
