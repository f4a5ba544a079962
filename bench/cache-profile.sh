#!/usr/bin/env bash
# The cache miss against the plain JSON path in CPU profiles (issue 10's performance aim: a miss
# within 10 % of the plain path's CPU per request), steadier than bench/features.sh's ratios.
#   bench/cache-profile.sh [ROUNDS] [SECONDS] [OTHER_CHECKOUT]
# One fake (CPU 0) and one proxy per config (CPU 1) under `--cpu-prof`: "plain" (cache off) and
# "miss" (spec.cache on, every body distinct via autocannon's [<id>]: a miss that stores, LRU
# evicting), each with a small body (the bench's 81 bytes) and a 12 KB conversation; with
# OTHER_CHECKOUT (a directory holding another version's src/, package.json and node_modules),
# "miss-other" runs that version's proxy too. Autocannon from CPU 0, 32 connections, configs in
# turn each round, a first round left out as warm-up. Prints, per config, CPU ms per request
# from /proc (median of the rounds) and busy profile ms per request over the measured rounds,
# with the shares of the busy samples that the cache's functions and GC take. Sources run by type
# stripping (the same JavaScript the build emits). Only 127.0.0.1; everything started is stopped.
set -euo pipefail
rounds=${1:-4}
seconds=${2:-6}
other=${3:-}
here=$(cd "$(dirname "$0")/.." && pwd)
node="$here/node_modules/.bin/node"
dir=$(mktemp -d)
pids=()
# KEEP=1 keeps the profiles (the directory is printed); SIZES="small" measures one body size
trap 'kill "${pids[@]}" 2>/dev/null; [ -n "${KEEP:-}" ] && echo "profiles: $dir" >&2 || rm -rf "$dir"' EXIT

fake_port=18580
cat > "$dir/plain.yaml" <<YAML
apiVersion: breakwater.dev/v1alpha1
kind: LLMUpstream
metadata: { name: openai }
spec:
  endpoints:
    - { name: fake, url: "http://127.0.0.1:$fake_port/v1" }
YAML
{ cat "$dir/plain.yaml"; echo '  cache: { enabled: true }'; } > "$dir/miss.yaml"
cp "$dir/miss.yaml" "$dir/miss-other.yaml"
small='{"model":"gpt-4.1","temperature":0,"messages":[{"role":"user","content":"hi [<id>]"}]}'
large=$("$node" -e '
const turns = Array.from({ length: 24 }, (_, t) => ({ role: t % 2 ? "assistant" : "user", content: `Turn ${t}: ${"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor. ".repeat(6)}` }));
console.log(JSON.stringify({ model: "gpt-4.1", temperature: 0, max_tokens: 256, messages: [...turns, { role: "user", content: "question [<id>]" }] }));')

names=(plain miss)
[ -n "$other" ] && names+=(miss-other)
taskset -c 0 "$here/bin/breakwater" fake --listen "127.0.0.1:$fake_port" >/dev/null 2>&1 & pids+=($!)
declare -A pid port spawned
n=0
for name in "${names[@]}"; do
  port[$name]=$((18600 + n)); n=$((n + 1))
  root=$here; [ "$name" = miss-other ] && root=$other
  mkdir -p "$dir/prof-$name"
  spawned[$name]=$(date +%s%3N)
  NODE_OPTIONS="--max-semi-space-size=4 --cpu-prof --cpu-prof-dir=$dir/prof-$name" taskset -c 1 "$node" "$root/src/main.ts" proxy --config "$dir/$name.yaml" \
    --listen "127.0.0.1:${port[$name]}" --admin "127.0.0.1:$((18700 + n))" --log-level warn >/dev/null 2>&1 & pids+=($!)
  pid[$name]=$!
done
sleep 4

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
declare -A total begun ended results
for size in ${SIZES:-small large}; do
  body=${!size}
  for name in "${names[@]}"; do total[$name-$size]=0; results[$name-$size]=''; done
  for round in $(seq 0 "$rounds"); do
    for i in "${!names[@]}"; do
      name=${names[$(((i + round) % ${#names[@]}))]}
      [ "$round" = 1 ] && [ -z "${begun[$name-$size]:-}" ] && begun[$name-$size]=$(date +%s%3N)
      before=$(ticks "${pid[$name]}")
      requests=$(taskset -c 0 "$node" "$here/node_modules/autocannon/autocannon.js" -j -c 32 -d "$seconds" -I -m POST -H content-type=application/json -b "$body" "http://127.0.0.1:${port[$name]}/openai/chat/completions" 2>/dev/null \
        | "$node" -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => { const r = JSON.parse(s); console.log(r.non2xx ? "non2xx" : r.requests.total); })')
      [ "$requests" = non2xx ] && { echo "$name: non-2xx answers" >&2; exit 1; }
      after=$(ticks "${pid[$name]}")
      if [ "$round" -gt 0 ]; then
        total[$name-$size]=$((total[$name-$size] + requests))
        results[$name-$size]+="$(awk -v t=$((after - before)) -v r="$requests" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.4f", t * 1000 / hz / r }') "
      fi
    done
  done
  for name in "${names[@]}"; do ended[$name-$size]=$(date +%s%3N); done
done
for name in "${names[@]}"; do kill -TERM "${pid[$name]}"; done
for name in "${names[@]}"; do while kill -0 "${pid[$name]}" 2>/dev/null; do sleep 0.2; done; done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
echo "| body | config | CPU ms/request (/proc, median of $rounds rounds) | profile: busy ms/request | cache's functions (inclusive) | GC |"
echo "|---|---|---:|---:|---:|---:|"
for size in ${SIZES:-small large}; do
  for name in "${names[@]}"; do
    from=$((begun[$name-$size] - spawned[$name])); to=$((ended[$name-$size] - spawned[$name]))
    m=$(echo "${results[$name-$size]}" | median)
    "$node" --input-type=module -e "
      import { summariseProfile } from '$here/bench/lib/cpuprofile.ts';
      import { readdirSync } from 'node:fs';
      const d = '$dir/prof-$name';
      const s = summariseProfile(d + '/' + readdirSync(d)[0], $from, $to, 1000);
      const cache = s.topSrcInclusive.filter((r) => /^(consult|storeAnswer|parseObject) /.test(r.name)).reduce((a, r) => a + r.pct, 0);
      const gc = s.selfAreas.find((r) => r.name === 'GC')?.pct ?? 0;
      console.log('| $size | $name | $m | ' + (s.busyMs / ${total[$name-$size]}).toFixed(4) + ' | ' + cache.toFixed(1) + ' % | ' + gc.toFixed(1) + ' % |');"
  done
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
