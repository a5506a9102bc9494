#!/usr/bin/env bash
# bench/l4.sh — the layer-4 rows of the benchmark suite (Fulcrum, HAProxy,
# nginx), kept for the commands in older notes. It calls the driver:
#
#   bench/l4.sh                      # 3 rounds, 5 s per run
#   ROUNDS=1 SECONDS_PER_RUN=3 bench/l4.sh
#
# Extra arguments go to bench/cmd/benchrun (see bench/README.md).
set -euo pipefail
exec "$(dirname "$0")/run.sh" -only l4-small,l4-newconn,l4-1MiB -proxies fulcrum,haproxy,nginx \
	-rounds "${ROUNDS:-3}" -duration "${SECONDS_PER_RUN:-5}" "$@"
