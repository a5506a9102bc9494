#!/usr/bin/env bash
# bench/l4.sh — layer-4 TCP proxy benchmark: Fulcrum against HAProxy
# (mode tcp) and nginx (stream), on loopback only. See bench/README.md.
#
#   bench/l4.sh                 # 3 rounds of every workload, 5 s per run
#   ROUNDS=1 SECONDS_PER_RUN=3 bench/l4.sh
#
# Each proxy is pinned to CPU 0 and runs one thread (Fulcrum: GOMAXPROCS 1
# through the affinity mask); the backends and the load generator are
# pinned to CPU 1. Runs are interleaved (Fulcrum, HAProxy, nginx, and
# again) so that drift on a shared machine hits all three alike.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/fulcrum-bench.XXXXXX)
BASE=${BASE_PORT:-27000} # ports BASE+1..3: backends, +80..+82: proxies, +443: Fulcrum's admin plane
B1=$((BASE + 1)) B2=$((BASE + 2)) B3=$((BASE + 3))
BACKENDS=127.0.0.1:$B1,127.0.0.1:$B2,127.0.0.1:$B3
PORT_FULCRUM=$((BASE + 80)) PORT_HAPROXY=$((BASE + 81)) PORT_NGINX=$((BASE + 82)) PORT_ADMIN=$((BASE + 443))
PIDS=()

cleanup() {
	status=$?
	for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
	if [ "$status" -ne 0 ]; then
		echo "failed; logs:" >&2
		tail -n 20 "$WORK"/*.log >&2 || true
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT

need() { command -v "$1" >/dev/null 2>&1; }

# --- tools ---------------------------------------------------------------
if ! need haproxy || ! need nginx || [ ! -e /usr/lib/nginx/modules/ngx_stream_module.so ]; then
	echo "installing haproxy and nginx (with the stream module)..." >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq haproxy nginx libnginx-mod-stream >/dev/null
fi
need taskset || { echo "taskset (util-linux) is required" >&2; exit 1; }
ulimit -n 65536 2>/dev/null || ulimit -n 8192 || true

echo "building fulcrum, backend and tcpload..." >&2
(cd "$ROOT" && go build -o "$WORK/fulcrum" ./cmd/fulcrum &&
	go build -o "$WORK/backend" ./bench/cmd/backend &&
	go build -o "$WORK/tcpload" ./bench/cmd/tcpload)

# --- backends ------------------------------------------------------------
taskset -c "$LOAD_CPU" "$WORK/backend" -listen "$BACKENDS" >"$WORK/backend.log" 2>&1 &
PIDS+=($!)

wait_port() { # wait_port PORT: until something listens on 127.0.0.1:PORT (10 s)
	for _ in $(seq 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	echo "nothing listens on port $1" >&2
	return 1
}
for p in $B1 $B2 $B3; do wait_port "$p"; done

alive() { # alive NAME PID: fail when the process has exited
	kill -0 "$2" 2>/dev/null || { echo "$1 exited" >&2; return 1; }
}

# --- Fulcrum ---------------------------------------------------------------
mkdir -p "$WORK/fulcrum-data"
cat >"$WORK/fulcrum.yaml" <<EOF
virtualServices:
- address: 127.0.0.1
  port: $PORT_FULCRUM
  protocol: tcp
  schedule: lc
  realServers:
  - {address: 127.0.0.1, port: $B1}
  - {address: 127.0.0.1, port: $B2}
  - {address: 127.0.0.1, port: $B3}
EOF
FULCRUM_ADMIN_PASSWORD='benchmark passphrase' taskset -c "$PROXY_CPU" "$WORK/fulcrum" serve \
	--data-dir "$WORK/fulcrum-data" --admin-addr 127.0.0.1:$PORT_ADMIN --log-level warn >"$WORK/fulcrum.log" 2>&1 &
PID_FULCRUM=$!
PIDS+=($PID_FULCRUM)
for _ in $(seq 100); do [ -S "$WORK/fulcrum-data/fulcrum.sock" ] && break; sleep 0.1; done
"$WORK/fulcrum" apply --data-dir "$WORK/fulcrum-data" -f "$WORK/fulcrum.yaml" >"$WORK/apply.log" 2>&1 ||
	{ cat "$WORK/apply.log" >&2; exit 1; }
wait_port $PORT_FULCRUM
alive fulcrum $PID_FULCRUM

# --- HAProxy ---------------------------------------------------------------
cat >"$WORK/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 4000
defaults
    mode tcp
    timeout connect 5s
    timeout client 660s
    timeout server 660s
frontend fe
    bind 127.0.0.1:$PORT_HAPROXY
    default_backend be
backend be
    balance leastconn
    server s1 127.0.0.1:$B1
    server s2 127.0.0.1:$B2
    server s3 127.0.0.1:$B3
EOF
taskset -c "$PROXY_CPU" haproxy -db -f "$WORK/haproxy.cfg" >"$WORK/haproxy.log" 2>&1 &
PID_HAPROXY=$!
PIDS+=($PID_HAPROXY)
wait_port $PORT_HAPROXY
alive haproxy $PID_HAPROXY

# --- nginx -----------------------------------------------------------------
cat >"$WORK/nginx.conf" <<EOF
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
daemon off;
master_process off;
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 4000; }
stream {
    upstream be {
        least_conn;
        server 127.0.0.1:$B1;
        server 127.0.0.1:$B2;
        server 127.0.0.1:$B3;
    }
    server {
        listen 127.0.0.1:$PORT_NGINX;
        proxy_pass be;
        proxy_timeout 660s;
    }
}
EOF
taskset -c "$PROXY_CPU" nginx -e "$WORK/nginx-error.log" -c "$WORK/nginx.conf" >"$WORK/nginx.log" 2>&1 &
PID_NGINX=$!
PIDS+=($PID_NGINX)
wait_port $PORT_NGINX
alive nginx $PID_NGINX

# --- runs ------------------------------------------------------------------
CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime + stime
hwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }

# workload name, tcpload flags
WORKLOADS=(
	"small-kept|-conns 50 -size 64"
	"small-newconn|-conns 20 -size 64 -newconn"
	"1MiB|-conns 4 -size 1048576"
)
PROXIES=("fulcrum|$PID_FULCRUM|$PORT_FULCRUM" "haproxy|$PID_HAPROXY|$PORT_HAPROXY" "nginx|$PID_NGINX|$PORT_NGINX")
RESULTS="$WORK/results.tsv"
: >"$RESULTS"

echo "proxies on CPU $PROXY_CPU, load and backends on CPU $LOAD_CPU; $ROUNDS rounds of ${SECONDS_PER_RUN}s runs" >&2
for round in $(seq "$ROUNDS"); do
	for w in "${WORKLOADS[@]}"; do
		wname=${w%%|*} wflags=${w#*|}
		for p in "${PROXIES[@]}"; do
			IFS='|' read -r pname pid port <<<"$p"
			alive "$pname" "$pid"
			before=$(cpu_ticks "$pid")
			# shellcheck disable=SC2086
			out=$(taskset -c "$LOAD_CPU" "$WORK/tcpload" -addr "127.0.0.1:$port" -duration "${SECONDS_PER_RUN}s" $wflags)
			after=$(cpu_ticks "$pid")
			req=$(sed -E 's/.*"requests":([0-9]+).*/\1/' <<<"$out")
			err=$(sed -E 's/.*"errors":([0-9]+).*/\1/' <<<"$out")
			rps=$(sed -E 's/.*"rps":([0-9.e+]+).*/\1/' <<<"$out")
			p50=$(sed -E 's/.*"p50_us":([0-9.e+]+).*/\1/' <<<"$out")
			p99=$(sed -E 's/.*"p99_us":([0-9.e+]+).*/\1/' <<<"$out")
			printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$wname" "$pname" "$round" "$req" "$err" "$rps" "$p50" "$p99" >>"$RESULTS"
			printf '%s\t%s\t%s\t%s\n' "$wname" "$pname" "$round" "$((after - before))" >>"$WORK/cpu.tsv"
			echo "round $round $wname $pname: $req requests, $err errors, $((after - before)) CPU ticks" >&2
		done
	done
done

# --- report ----------------------------------------------------------------
for p in "${PROXIES[@]}"; do
	IFS='|' read -r pname pid _ <<<"$p"
	printf '%s\t%s\n' "$pname" "$(hwm_kib "$pid")" >>"$WORK/hwm.tsv"
done

echo
echo "Layer-4 TCP, loopback, least connection over 3 backends; $ROUNDS rounds × ${SECONDS_PER_RUN}s per run"
echo "$(nproc) CPUs; $(haproxy -v | head -1 | cut -d' ' -f1-3); $(nginx -v 2>&1); $(go version | cut -d' ' -f3)"
awk -F'\t' -v tck="$CLK_TCK" -v hwmfile="$WORK/hwm.tsv" -v cpufile="$WORK/cpu.tsv" '
	BEGIN {
		while ((getline l < hwmfile) > 0) { split(l, a, "\t"); hwm[a[1]] = a[2] }
		while ((getline l < cpufile) > 0) { split(l, a, "\t"); ticks[a[1] SUBSEP a[2]] += a[4] }
	}
	{
		k = $1 SUBSEP $2
		if (!(k in seen)) { seen[k] = 1; order[++n] = k }
		req[k] += $4; errs[k] += $5
		nr[k]++; rps[k, nr[k]] = $6; p50[k, nr[k]] = $7; p99[k, nr[k]] = $8
		if (!($1 in wseen)) { wseen[$1] = 1; worder[++nw] = $1 }
	}
	function median(arr, k, m,    i, j, t, v) {
		for (i = 1; i <= m; i++) v[i] = arr[k, i]
		for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
		return (m % 2) ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2
	}
	END {
		printf "%-14s %-8s %12s %9s %9s %14s %10s %9s %7s\n", "workload", "proxy", "req/s", "p50 µs", "p99 µs", "CPU µs/req", "vs HAProxy", "errors", "RSS MiB"
		for (w = 1; w <= nw; w++) {
			hk = worder[w] SUBSEP "haproxy"
			hcpu = (req[hk] > 0) ? ticks[hk] * 1e6 / tck / req[hk] : 0
			for (i = 1; i <= n; i++) {
				k = order[i]; split(k, kk, SUBSEP)
				if (kk[1] != worder[w]) continue
				cpu = (req[k] > 0) ? ticks[k] * 1e6 / tck / req[k] : 0
				ratio = (hcpu > 0) ? sprintf("%.2f", cpu / hcpu) : "-"
				printf "%-14s %-8s %12.0f %9.0f %9.0f %14.2f %10s %9d %7.1f\n", kk[1], kk[2], median(rps, k, nr[k]), median(p50, k, nr[k]), median(p99, k, nr[k]), cpu, ratio, errs[k], hwm[kk[2]] / 1024
			}
		}
	}' "$RESULTS"
echo
echo "req/s, p50 and p99 are medians over the rounds; CPU µs/req is the proxy's utime+stime over all rounds"
echo "divided by all requests (1MiB: per 1 MiB transfer); RSS is the peak (VmHWM) over the whole benchmark."
