#!/usr/bin/env bash
# bench/micro.sh — the hot-path microbenchmarks (request parsing and
# rewriting, a proxied keep-alive request, pick, persistence lookup,
# counters, the L4 copy loop), pinned to one CPU, in the format benchstat
# reads. Not a test: it reports figures and asserts nothing.
#
#   bench/micro.sh                  # 6 samples of each into bench/results/micro-<UTC>.txt
#   COUNT=10 bench/micro.sh         # more samples
#   bench/micro.sh OLD.txt          # then compare with an earlier file (benchstat OLD NEW)
#
# A file from another commit: `git stash; bench/micro.sh; git stash pop;
# bench/micro.sh bench/results/micro-<first>.txt`.
set -euo pipefail
cd "$(dirname "$0")/.."

COUNT=${COUNT:-6}
CPU=${CPU:-0}
# benchstat, pinned; fetched through the Go module proxy on first use.
BENCHSTAT=golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da
PKGS=(./internal/l7 ./internal/l7/h1 ./internal/balance ./internal/persist ./internal/backend ./internal/l4)
# Hot paths only: the memory and whole-system benchmarks (IdleConnMemory,
# TableMemory, Throughput...) have their own commands in bench/README.md.
BENCH='^(BenchmarkProxyKeepAlive|BenchmarkProxyKeepAliveTLS|BenchmarkParseRequest|BenchmarkParseResponse|BenchmarkParseAndRewrite|BenchmarkWriteRequestHead|BenchmarkAddFields|BenchmarkPick|BenchmarkPickParallel|BenchmarkTableLookupStore|BenchmarkPersistPick|BenchmarkPersistPickNew|BenchmarkCounters|BenchmarkAddBytes|BenchmarkCopySmall)$'

mkdir -p bench/results
out=bench/results/micro-$(date -u +%Y%m%dT%H%M%SZ).txt
pin=()
command -v taskset >/dev/null 2>&1 && pin=(taskset -c "$CPU")
{
  echo "# commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo '+changes'), load $(cut -d' ' -f1-3 /proc/loadavg)"
  "${pin[@]}" go test -p 1 -run '^$' -bench "$BENCH" -benchmem -count "$COUNT" "${PKGS[@]}"
} | tee "$out"
echo "written: $out" >&2
if [ $# -ge 1 ]; then
  go run "$BENCHSTAT" "$1" "$out"
fi
