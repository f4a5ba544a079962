#!/usr/bin/env bash
# A/B of two checkouts' proxies on one fake: CPU ms per proxied JSON request, closed loop.
#   bench/ab.sh OLD_CHECKOUT NEW_CHECKOUT [ROUNDS]
# Both proxies (one endpoint, everything default, log level warn) share CPU 1 and are loaded
# in turn (autocannon, 32 connections, 4 s) from CPU 0, where the fake runs too; the first
# rounds warm the JIT, so compare the last ones. Only 127.0.0.1; everything started is killed.
set -euo pipefail
old=$(cd "$1" && pwd); new=$(cd "$2" && pwd); rounds=${3:-7}
source "$(dirname "$0")/lib/rig.sh"
taskset -c 0 "$new/bin/breakwater" fake --listen 127.0.0.1:18080 >/dev/null 2>&1 & pids+=($!)
taskset -c 1 "$old/bin/breakwater" proxy --config "$dir/up.yaml" --listen 127.0.0.1:18081 --admin 127.0.0.1:18091 --log-level warn >/dev/null 2>&1 & pids+=($!); old_pid=$!
taskset -c 1 "$new/bin/breakwater" proxy --config "$dir/up.yaml" --listen 127.0.0.1:18082 --admin 127.0.0.1:18092 --log-level warn >/dev/null 2>&1 & pids+=($!); new_pid=$!
sleep 3
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
body='{"model":"gpt-4.1","messages":[{"role":"user","content":"hi"}]}'
run() { # name pid port
  local before after requests
  before=$(ticks "$2")
  requests=$(requests "http://127.0.0.1:$3/openai/chat/completions" 4 "$body")
  after=$(ticks "$2")
  awk -v n="$1" -v t=$((after - before)) -v r="$requests" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%s %d requests, %.4f CPU ms/request\n", n, r, t * 1000 / hz / r }'
}
for _ in $(seq "$rounds"); do run old "$old_pid" 18081; run new "$new_pid" 18082; done
