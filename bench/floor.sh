#!/usr/bin/env bash
# Breakwater against the floor, many alternating rounds: CPU µs per request of bin/breakwater
# (one endpoint, defaults) and of the minimal Node proxy (bench/peers/minimal.ts: node:http →
# undici dispatch(), nothing else) on one fake, JSON and then a 50-event SSE stream, closed loop.
#   bash bench/floor.sh [ROUNDS] [SECONDS]        # default 12 rounds of 3 s per proxy and workload
# Why: `make bench` gives each peer 2 rounds, and on this shared VM one round of the same peer
# can differ from the next by 25 %, so its Breakwater/minimal ratio moves between runs (1.08× and
# 1.71× for SSE in two runs). Alternating short rounds, both proxies loaded in turn within
# seconds of each other, and the median of the per-round ratios is a steadier figure.
# Both proxies and the fake share CPU 1, autocannon runs on CPU 0 (as bench/ab.sh); only
# 127.0.0.1; everything started is killed on exit. About 6 minutes at the defaults.
set -euo pipefail
rounds=${1:-12}; seconds=${2:-3}
source "$(dirname "$0")/lib/rig.sh"
taskset -c 1 "$here/bin/breakwater" fake --listen 127.0.0.1:18080 >/dev/null 2>&1 & pids+=($!)
taskset -c 1 "$here/bin/breakwater" proxy --config "$dir/up.yaml" --listen 127.0.0.1:18081 --admin 127.0.0.1:18091 --log-level warn >/dev/null 2>&1 & pids+=($!); breakwater=$!
# the minimal proxy with the same young generation as bin/breakwater's
taskset -c 1 "$node" --max-semi-space-size=4 "$here/bench/peers/minimal.ts" --listen 127.0.0.1:18082 --upstream http://127.0.0.1:18080 >/dev/null 2>&1 & pids+=($!); minimal=$!
sleep 3
# 50 events per stream, set on the fake (the minimal proxy forwards headers too, but one rule for both)
curl -fsS -X POST 127.0.0.1:18080/_fake/faults -d '{"events":50}' >/dev/null

ticks() { local s=0 t; for t in /proc/"$1"/task/*/stat; do s=$((s + $(awk '{print $14 + $15}' "$t"))); done; echo "$s"; }
round() { # pid url body: µs of CPU per request over one round
  local before after n
  before=$(ticks "$1"); n=$(requests "$2" "$seconds" "$3"); after=$(ticks "$1")
  awk -v t=$((after - before)) -v n="$n" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", t * 1e6 / hz / n }'
}
median() { tr ' ' '\n' | sed '/^$/d' | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

bw_url=http://127.0.0.1:18081/openai/chat/completions
min_url=http://127.0.0.1:18082/v1/chat/completions
for workload in json sse; do
  stream=$([[ $workload == sse ]] && echo ',"stream":true' || true)
  body="{\"model\":\"gpt-4.1\"${stream},\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"
  # 12 s of saturating load each first: Node reaches its steady CPU per request after 10–15 s
  requests "$bw_url" 12 "$body" >/dev/null; requests "$min_url" 12 "$body" >/dev/null
  bw=""; min=""; ratios=""
  for r in $(seq "$rounds"); do
    # each round starts with the other proxy than the last
    if (( r % 2 )); then b=$(round "$breakwater" "$bw_url" "$body"); m=$(round "$minimal" "$min_url" "$body")
    else m=$(round "$minimal" "$min_url" "$body"); b=$(round "$breakwater" "$bw_url" "$body"); fi
    bw="$bw $b"; min="$min $m"; ratios="$ratios $(awk -v b="$b" -v m="$m" 'BEGIN { printf "%.3f", b / m }')"
  done
  printf '%s  breakwater µs/request:%s\n' "$workload" "$bw"
  printf '%s  minimal    µs/request:%s\n' "$workload" "$min"
  printf '%s  breakwater / minimal: median of the %d per-round ratios %.2f× (medians %s / %s µs)\n' "$workload" "$rounds" \
    "$(echo "$ratios" | median)" "$(echo "$bw" | median)" "$(echo "$min" | median)"
done
