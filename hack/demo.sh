#!/usr/bin/env bash
# make run: two fake providers and Breakwater on loopback, plus a small app sending traffic.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEMO_OPENAI_KEY=sk-demo-not-a-real-key
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM
bin/breakwater fake --listen 127.0.0.1:8081 --name primary >/dev/null & pids+=($!)
bin/breakwater fake --listen 127.0.0.1:8082 --name secondary >/dev/null & pids+=($!)
bin/breakwater proxy --config examples/demo.yaml & pids+=($!)
for _ in $(seq 50); do curl -fs http://127.0.0.1:8081/_fake/health >/dev/null 2>&1 && curl -fs -o /dev/null http://127.0.0.1:7878/openai/models 2>/dev/null && break; sleep 0.2; done
cat <<MSG

  Breakwater is up. Point an app at it:
      export OPENAI_BASE_URL=http://127.0.0.1:7878/openai
      curl -s \$OPENAI_BASE_URL/chat/completions -H 'content-type: application/json' \\
           -d '{"model":"gpt-4.1","messages":[{"role":"user","content":"hi"}]}'

  A small app is sending 2 requests a second below. Make the primary throttle every request:
      curl -s -X POST http://127.0.0.1:8081/_fake/faults -d '{"fault":"429"}'
  and watch the breaker open and traffic fail over to the secondary. Heal it again with:
      curl -s -X DELETE http://127.0.0.1:8081/_fake/faults
  (after 15 s the breaker half-opens and ramps back to the primary). Ctrl-C stops everything.

MSG
node_modules/.bin/node hack/demo-traffic.ts & pids+=($!)
wait
