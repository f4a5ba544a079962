#!/usr/bin/env bash
# The cost of each traffic-shaping feature when it is on (issue 10's performance rule), in one run:
# CPU ms per proxied JSON request for the same proxy with one feature switched on at a time,
# next to the plain config, and the ratio to it.
#   bench/features.sh [ROUNDS]        (make bench-features)
# One fake (CPU 0) and one proxy per config (all on CPU 1, idle while another is loaded),
# autocannon from CPU 0: 32 connections, 4 s per round, configs in turn; the first round warms the
# JIT and is left out of the median. Each feature is set so that it works on every request but
# never refuses one (a bulkhead that never fills, limits far above the load, a hedge that never
# fires): what is measured is its bookkeeping. The two-endpoint pair shares one origin (one pool). "cache-hit" repeats one temperature-0 body;
# "cache-miss" sends a new one every time (autocannon's [<id>]). Only 127.0.0.1; everything
# started is killed on exit.
# Then, steadier than CPU time between processes on a shared machine: one fresh proxy per config
# under --cpu-prof (8 s of warm-up, 6 s measured), and each feature's own code as a share of
# the busy samples, with the feature on less without it (bench/feature-shares.ts).
set -euo pipefail
rounds=${1:-5}
here=$(cd "$(dirname "$0")/.." && pwd)
node="$here/node_modules/.bin/node"
dir=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; rm -rf "$dir"' EXIT

fake_port=18180
endpoint="{ name: fake, url: \"http://127.0.0.1:$fake_port/v1\" }"
config() { # name, extra endpoint fields, extra spec lines
  cat > "$dir/$1.yaml" <<YAML
apiVersion: breakwater.dev/v1alpha1
kind: LLMUpstream
metadata: { name: openai }
spec:
  endpoints:
    - { name: fake, url: "http://127.0.0.1:$fake_port/v1" $2 }
$3
YAML
}
config plain '' ''
config bulkhead ', maxConcurrent: 1000' ''
config ratelimit ', rateLimit: { requestsPerMinute: 10000000, tokensPerMinute: 10000000000 }' ''
config cache-miss '' '  cache: { enabled: true }'
config cache-hit '' '  cache: { enabled: true }'
config health '' '  healthCheck: { enabled: true }'
config hedge '' '  hedge: { after: 30s }'
cat > "$dir/least-latency.yaml" <<YAML
apiVersion: breakwater.dev/v1alpha1
kind: LLMUpstream
metadata: { name: openai }
spec:
  balance: leastLatency
  endpoints:
    - { name: a, url: "http://127.0.0.1:$fake_port/v1" }
    - { name: b, url: "http://127.0.0.1:$fake_port/v1/" }
YAML
sed 's/  balance: leastLatency//' "$dir/least-latency.yaml" > "$dir/weighted-two.yaml"

names=(plain bulkhead ratelimit cache-miss cache-hit health hedge weighted-two least-latency)
taskset -c 0 "$here/bin/breakwater" fake --listen "127.0.0.1:$fake_port" >/dev/null 2>&1 & pids+=($!)
declare -A pid port
n=0
for name in "${names[@]}"; do
  port[$name]=$((18200 + n)); n=$((n + 1))
  taskset -c 1 "$here/bin/breakwater" proxy --config "$dir/$name.yaml" --listen "127.0.0.1:${port[$name]}" --admin "127.0.0.1:$((18300 + n))" --log-level warn >/dev/null 2>&1 & pids+=($!)
  pid[$name]=$!
done
sleep 4

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
load() { # name seconds port -> requests served
  local body='{"model":"gpt-4.1","temperature":0,"messages":[{"role":"user","content":"hi"}]}'
  [ "$1" = cache-miss ] && body='{"model":"gpt-4.1","temperature":0,"messages":[{"role":"user","content":"hi [<id>]"}]}'
  taskset -c 0 "$node" "$here/node_modules/autocannon/autocannon.js" -j -c 32 -d "$2" -I -m POST -H content-type=application/json -b "$body" "http://127.0.0.1:$3/openai/chat/completions" 2>/dev/null \
    | "$node" -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => console.log(JSON.parse(s).requests.total))'
}
run() { # name -> CPU ms per request
  local name=$1 before after requests
  before=$(ticks "${pid[$name]}")
  requests=$(load "$name" 4 "${port[$name]}")
  after=$(ticks "${pid[$name]}")
  awk -v t=$((after - before)) -v r="$requests" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.4f", t * 1000 / hz / r }'
}
declare -A results
# each round starts one config later, so no config is always measured first or last (a position
# in the round showed up as a steady +20-35 % for whichever config came last)
count=${#names[@]}
for round in $(seq "$rounds"); do
  for i in $(seq 0 $((count - 1))); do
    name=${names[$(((i + round) % count))]}
    ms=$(run "$name")
    [ "$round" -gt 1 ] && results[$name]+="$ms "
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
base=$(echo "${results[plain]}" | median)
pair=$(echo "${results[weighted-two]}" | median)
printf '| config | CPU ms/request (median of %d rounds) | vs plain |\n|---|---|---|\n' $((rounds - 1))
for name in "${names[@]}"; do
  m=$(echo "${results[$name]}" | median)
  ref=$base; [ "$name" = least-latency ] && ref=$pair
  awk -v n="$name" -v m="$m" -v b="$ref" 'BEGIN { printf "| %s | %.4f | %+.1f %%%s |\n", n, m, (m / b - 1) * 100, (n == "least-latency" ? " (vs weighted-two)" : "") }'
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

# ---- phase 2: CPU profiles, one fresh proxy per config, alone on CPU 1 ----
kill "${pids[@]:1}" 2>/dev/null || true
mkdir -p "$dir/prof"
: > "$dir/skip"
for name in "${names[@]}"; do
  t0=$(date +%s%3N)
  NODE_OPTIONS="--cpu-prof --cpu-prof-interval=250 --cpu-prof-dir=$dir/prof --cpu-prof-name=$name.cpuprofile" taskset -c 1 "$here/bin/breakwater" proxy --config "$dir/$name.yaml" --listen 127.0.0.1:18290 --admin 127.0.0.1:18390 --log-level warn >/dev/null 2>&1 &
  prof_pid=$!
  sleep 3
  load "$name" 8 18290 >/dev/null
  echo "$name $(($(date +%s%3N) - t0))" >> "$dir/skip"
  load "$name" 6 18290 >/dev/null
  kill -TERM "$prof_pid"
  wait "$prof_pid" || true
done
echo
"$node" "$here/bench/feature-shares.ts" "$dir/prof" "$dir/skip"
