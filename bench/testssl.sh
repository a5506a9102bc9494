#!/usr/bin/env bash
# bench/testssl.sh — runs testssl.sh (Debian package testssl.sh) against an
# HTTPS virtual service of Fulcrum's layer-7 proxy with the default TLS
# profile (intermediate), served by bench/cmd/l7bench on 127.0.0.1:18443,
# and checks that no SSLv2/SSLv3/TLS 1.0/TLS 1.1 and no weak cipher is
# offered. It takes a few minutes, so it is a script, not a test.
# Usage: bench/testssl.sh [extra testssl options]
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v testssl >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends testssl.sh >/dev/null
  else
    echo "bench/testssl.sh: install the Debian package testssl.sh" >&2
    exit 1
  fi
fi
DIR=$(mktemp -d /tmp/fulcrum-testssl.XXXXXX)
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=bench.example \
  -addext subjectAltName=DNS:bench.example,IP:127.0.0.1 -keyout "$DIR/key.pem" -out "$DIR/cert.pem" 2>/dev/null
ind() { sed 's/^/    /' "$1"; }
cat >"$DIR/fulcrum.yaml" <<EOF2
certificates:
- name: bench
  certPem: |
$(ind "$DIR/cert.pem")
  keyPem: |
$(ind "$DIR/key.pem")
virtualServices:
- {address: 127.0.0.1, port: 18443, type: http2, tls: {offload: true, certificates: [bench]}, realServers: [{address: 127.0.0.1, port: 18000}]}
EOF2
go build -o "$DIR/l7bench" ./bench/cmd/l7bench
"$DIR/l7bench" -config "$DIR/fulcrum.yaml" 2>"$DIR/l7bench.log" &
PID=$!
for _ in $(seq 100); do curl -sk -o /dev/null https://127.0.0.1:18443/ && break; sleep 0.1; done
out="$DIR/testssl.txt"
testssl --quiet --color 0 --warnings off --protocols --std --server-defaults --fs "$@" 127.0.0.1:18443 | tee "$out"
fail=0
for proto in "SSLv2" "SSLv3" "TLS 1 " "TLS 1.1"; do
  if grep -E "^ *$proto" "$out" | grep -q "offered" && ! grep -E "^ *$proto" "$out" | grep -q "not offered"; then
    echo "FAIL: $proto is offered" >&2; fail=1
  fi
done
for weak in "NULL ciphers" "Anonymous NULL" "Export ciphers" "LOW: 64 Bit" "Triple DES" "Obsoleted CBC"; do
  line=$(grep -E "^ *$weak" "$out" || true)
  if [ -n "$line" ] && ! echo "$line" | grep -q "not offered"; then
    echo "FAIL: $line" >&2; fail=1
  fi
done
if [ $fail = 0 ]; then echo "testssl: no SSLv2/SSLv3/TLS 1.0/TLS 1.1 and no weak cipher offered on the default profile"; fi
exit $fail
