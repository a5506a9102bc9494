#!/usr/bin/env bash
# bench/http.sh — HTTP and HTTPS keep-alive small requests through
# Fulcrum's layer-7 proxy (bench/cmd/l7bench), HAProxy, nginx and Caddy,
# each pinned to CPU 0, with the load generator (wrk) and the real server
# (an nginx answering "Hello, world!") on CPU 1. Three interleaved rounds;
# prints requests/s and the proxy's CPU time per request (from
# /proc/<pid>/stat) with ratios to HAProxy (medians of the rounds), then
# the top of a CPU profile of Fulcrum under the same load.
#
# Not a test: it takes about 5 minutes and needs root for nothing but
# apt-get. Traffic stays on 127.0.0.1. Usage: bench/http.sh [seconds-per-run]
set -euo pipefail
cd "$(dirname "$0")/.."

DUR=${1:-8}
CONNS=${CONNS:-64}
ROUNDS=${ROUNDS:-3}
need=()
for c in haproxy nginx caddy wrk openssl taskset; do
  command -v "$c" >/dev/null 2>&1 || need+=("$c")
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    pkgs=()
    for c in "${need[@]}"; do case $c in taskset) pkgs+=(util-linux) ;; *) pkgs+=("$c") ;; esac; done
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
  else
    echo "bench/http.sh: missing ${need[*]} (Debian packages; run as root to install)" >&2
    exit 1
  fi
fi

DIR=$(mktemp -d /tmp/fulcrum-bench.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$DIR"
}
trap cleanup EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=bench.example \
  -addext subjectAltName=DNS:bench.example,IP:127.0.0.1 -keyout "$DIR/key.pem" -out "$DIR/cert.pem" 2>/dev/null
cat "$DIR/cert.pem" "$DIR/key.pem" >"$DIR/haproxy.pem"
mkdir -p "$DIR/nginx-be" "$DIR/nginx-px"

# --- the real server: nginx on CPU 1 ---
cat >"$DIR/nginx-be/nginx.conf" <<EOF
worker_processes 1;
pid $DIR/nginx-be/nginx.pid;
error_log $DIR/nginx-be/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $DIR/nginx-be; proxy_temp_path $DIR/nginx-be; fastcgi_temp_path $DIR/nginx-be;
  uwsgi_temp_path $DIR/nginx-be; scgi_temp_path $DIR/nginx-be;
  keepalive_requests 10000000;
  server { listen 127.0.0.1:18000; location / { return 200 "Hello, world!\n"; } }
}
EOF
taskset -c 1 nginx -p "$DIR/nginx-be" -c "$DIR/nginx-be/nginx.conf" -g 'daemon off;' &
PIDS+=($!)

# --- the proxies, each on CPU 0 ---
go build -o "$DIR/l7bench" ./bench/cmd/l7bench
indent() { sed 's/^/    /' "$1"; }
cat >"$DIR/fulcrum.yaml" <<EOF
certificates:
- name: bench
  certPem: |
$(indent "$DIR/cert.pem")
  keyPem: |
$(indent "$DIR/key.pem")
virtualServices:
- {address: 127.0.0.1, port: 18080, type: http, realServers: [{address: 127.0.0.1, port: 18000}]}
- {address: 127.0.0.1, port: 18443, type: http, tls: {offload: true, certificates: [bench]}, realServers: [{address: 127.0.0.1, port: 18000}]}
EOF

cat >"$DIR/haproxy.cfg" <<EOF
global
  nbthread 1
  maxconn 8000
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  option http-keep-alive
  option forwardfor
  http-reuse safe
frontend fe
  bind 127.0.0.1:18081
  bind 127.0.0.1:18444 ssl crt $DIR/haproxy.pem alpn http/1.1
  default_backend be
backend be
  server s1 127.0.0.1:18000
EOF

cat >"$DIR/nginx-px/nginx.conf" <<EOF
worker_processes 1;
pid $DIR/nginx-px/nginx.pid;
error_log $DIR/nginx-px/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $DIR/nginx-px; proxy_temp_path $DIR/nginx-px; fastcgi_temp_path $DIR/nginx-px;
  uwsgi_temp_path $DIR/nginx-px; scgi_temp_path $DIR/nginx-px;
  keepalive_requests 10000000;
  upstream be { server 127.0.0.1:18000; keepalive 128; keepalive_requests 10000000; }
  server {
    listen 127.0.0.1:18082;
    listen 127.0.0.1:18445 ssl;
    ssl_certificate $DIR/cert.pem; ssl_certificate_key $DIR/key.pem;
    location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header X-Forwarded-For \$remote_addr; }
  }
}
EOF

cat >"$DIR/Caddyfile" <<EOF
{
  admin off
  auto_https off
}
http://127.0.0.1:18083 {
  reverse_proxy 127.0.0.1:18000
}
https://127.0.0.1:18446 {
  tls $DIR/cert.pem $DIR/key.pem
  reverse_proxy 127.0.0.1:18000
}
EOF

declare -A PID
GOMAXPROCS=1 taskset -c 0 "$DIR/l7bench" -config "$DIR/fulcrum.yaml" 2>"$DIR/l7bench.log" &
PID[fulcrum]=$!; PIDS+=($!)
taskset -c 0 haproxy -db -f "$DIR/haproxy.cfg" >"$DIR/haproxy.log" 2>&1 &
PID[haproxy]=$!; PIDS+=($!)
taskset -c 0 nginx -p "$DIR/nginx-px" -c "$DIR/nginx-px/nginx.conf" -g 'daemon off;' &
PIDS+=($!); NGINX_MASTER=$!
GOMAXPROCS=1 HOME=$DIR XDG_DATA_HOME=$DIR XDG_CONFIG_HOME=$DIR taskset -c 0 caddy run --config "$DIR/Caddyfile" --adapter caddyfile >"$DIR/caddy.log" 2>&1 &
PID[caddy]=$!; PIDS+=($!)

declare -A PORT=([fulcrum]=18080 [haproxy]=18081 [nginx]=18082 [caddy]=18083)
declare -A TLSPORT=([fulcrum]=18443 [haproxy]=18444 [nginx]=18445 [caddy]=18446)
for p in 18000 18080 18443 18081 18444 18082 18445 18083 18446; do
  for _ in $(seq 100); do
    if curl -sk -o /dev/null "http://127.0.0.1:$p/" 2>/dev/null || curl -sk -o /dev/null "https://127.0.0.1:$p/" 2>/dev/null; then break; fi
    sleep 0.1
  done
done
for _ in $(seq 50); do
  PID[nginx]=$(pgrep -P "$NGINX_MASTER" | head -1 || true)
  [ -n "${PID[nginx]}" ] && break
  sleep 0.1
done
for name in fulcrum haproxy nginx caddy; do
  for scheme in http https; do
    port=${PORT[$name]}; [ $scheme = https ] && port=${TLSPORT[$name]}
    body=$(curl -sk "$scheme://127.0.0.1:$port/" || true)
    if [ "$body" != "Hello, world!" ]; then
      echo "bench/http.sh: $name $scheme answers '$body'" >&2
      cat "$DIR"/*.log >&2 || true
      exit 1
    fi
  done
done

TCK=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

RES="$DIR/results.txt"
: >"$RES"
run() { # name scheme round
  local name=$1 scheme=$2 port=${PORT[$1]}
  [ "$scheme" = https ] && port=${TLSPORT[$1]}
  local pid=${PID[$name]}
  local t0 t1 out reqs
  t0=$(cpu_ticks "$pid")
  out=$(taskset -c 1 wrk -t1 -c"$CONNS" -d"${DUR}s" "$scheme://127.0.0.1:$port/" 2>&1)
  t1=$(cpu_ticks "$pid")
  reqs=$(echo "$out" | awk '/requests in/ {print $1}')
  if echo "$out" | grep -q "Non-2xx\|Socket errors"; then
    echo "$out" | grep "Non-2xx\|Socket errors" | sed "s/^/  $name $scheme: /" >&2
  fi
  awk -v n="$name" -v s="$scheme" -v r="$reqs" -v d="$DUR" -v c="$((t1 - t0))" -v tck="$TCK" \
    'BEGIN { printf "%s %s %.0f %.2f\n", n, s, r / d, c / tck * 1e6 / r }' >>"$RES"
}

echo "== $ROUNDS rounds of ${DUR}s, wrk -t1 -c$CONNS on CPU 1, each proxy alone on CPU 0 ($(nproc) CPUs)"
for round in $(seq "$ROUNDS"); do
  for name in fulcrum haproxy nginx caddy; do
    for scheme in http https; do
      run "$name" "$scheme"
    done
  done
  echo "   round $round done"
done

echo
printf "%-8s %-6s %12s %10s %14s %10s\n" proxy scheme "req/s" "vs HAProxy" "CPU µs/req" "vs HAProxy"
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
declare -A RPS CPU
for name in fulcrum haproxy nginx caddy; do
  for scheme in http https; do
    RPS[$name.$scheme]=$(awk -v n=$name -v s=$scheme '$1==n && $2==s {print $3}' "$RES" | median)
    CPU[$name.$scheme]=$(awk -v n=$name -v s=$scheme '$1==n && $2==s {print $4}' "$RES" | median)
  done
done
for scheme in http https; do
  for name in fulcrum haproxy nginx caddy; do
    awk -v n=$name -v s=$scheme -v r="${RPS[$name.$scheme]}" -v c="${CPU[$name.$scheme]}" \
      -v hr="${RPS[haproxy.$scheme]}" -v hc="${CPU[haproxy.$scheme]}" \
      'BEGIN { printf "%-8s %-6s %12.0f %9.2fx %14.2f %9.2fx\n", n, s, r, r / hr, c, c / hc }'
  done
done
echo "(raw per-round figures: proxy scheme req/s cpu-µs/req)"
sed 's/^/  /' "$RES"

# A CPU profile of Fulcrum under the same HTTP load.
kill "${PID[fulcrum]}"; wait "${PID[fulcrum]}" 2>/dev/null || true
GOMAXPROCS=1 taskset -c 0 "$DIR/l7bench" -config "$DIR/fulcrum.yaml" -cpuprofile "$DIR/cpu.pprof" 2>>"$DIR/l7bench.log" &
FPID=$!; PIDS+=($FPID)
for _ in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:18080/ && break; sleep 0.1; done
taskset -c 1 wrk -t1 -c"$CONNS" -d"${DUR}s" http://127.0.0.1:18080/ >/dev/null
kill -INT "$FPID"; wait "$FPID" 2>/dev/null || true
echo
echo "== Fulcrum CPU profile (HTTP keep-alive), top functions by cumulative time"
go tool pprof -top -cum -nodecount=25 "$DIR/l7bench" "$DIR/cpu.pprof" 2>/dev/null | sed -n '1,35p'
echo
echo "== by flat time"
go tool pprof -top -nodecount=20 "$DIR/l7bench" "$DIR/cpu.pprof" 2>/dev/null | sed -n '5,28p'
