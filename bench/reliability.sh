#!/usr/bin/env bash
# bench/reliability.sh — Fulcrum's reliability suite (issue 14): attacks
# and faults against Fulcrum and HAProxy in the same run, with a JSON and
# Markdown report in bench/results/reliability-<UTC>/. Installs what it
# needs from Debian when run as root, then runs bench/cmd/reliability with
# the arguments given. See bench/README.md.
#
#   bench/reliability.sh                              # every case, both proxies
#   bench/reliability.sh -only rapid-reset,floods     # some cases (-list names them)
#   bench/reliability.sh -proxies fulcrum -duration 5s
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have haproxy || need+=(haproxy)
have taskset || need+=(util-linux)
if [ ${#need[@]} -gt 0 ]; then
	if [ "$(id -u)" = 0 ]; then
		echo "bench/reliability.sh: installing ${need[*]}" >&2
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
		# Debian starts the packaged service; the suite runs its own copy.
		if [[ " ${need[*]} " == *" haproxy "* ]]; then
			systemctl stop haproxy >/dev/null 2>&1 || service haproxy stop >/dev/null 2>&1 || true
		fi
	else
		echo "bench/reliability.sh: missing Debian packages ${need[*]} (run as root to install them)" >&2
		exit 1
	fi
fi
exec go run ./bench/cmd/reliability "$@"
