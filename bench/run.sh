#!/usr/bin/env bash
# bench/run.sh — Fulcrum's side-by-side benchmark suite against HAProxy,
# nginx and Caddy. Installs the Debian packages it needs when run as root,
# then runs bench/cmd/benchrun with the arguments given. See bench/README.md.
#
#   bench/run.sh                          # every row, 3 rounds × 5 s
#   bench/run.sh -rounds 1 -duration 3s   # a quick look
#   bench/run.sh -only http-small,l4-small -proxies fulcrum,haproxy
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have haproxy || need+=(haproxy)
have nginx || need+=(nginx)
[ -e /usr/lib/nginx/modules/ngx_stream_module.so ] || need+=(libnginx-mod-stream)
have caddy || need+=(caddy)
have wrk || need+=(wrk)
have h2load || need+=(nghttp2-client)
have openssl || need+=(openssl)
have taskset || need+=(util-linux)
if [ ${#need[@]} -gt 0 ]; then
	if [ "$(id -u)" = 0 ]; then
		echo "bench/run.sh: installing ${need[*]}" >&2
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
	else
		echo "bench/run.sh: missing Debian packages ${need[*]} (run as root to install them)" >&2
		exit 1
	fi
fi
# Debian starts the packaged services; the suite runs its own copies.
exec go run ./bench/cmd/benchrun "$@"
