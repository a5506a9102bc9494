#!/usr/bin/env bash
# bench/http.sh — the HTTP and HTTPS keep-alive rows of the benchmark suite
# (Fulcrum, HAProxy, nginx, Caddy), kept for the commands in older notes. It
# calls the driver, which runs Fulcrum as in production (`fulcrum serve`) and
# keeps CPU and allocation profiles of Fulcrum with the results:
#
#   bench/http.sh [seconds-per-run]  # default 8; ROUNDS=3
#
# See bench/README.md.
set -euo pipefail
exec "$(dirname "$0")/run.sh" -only http-small,https-small -rounds "${ROUNDS:-3}" -duration "${1:-8}"
