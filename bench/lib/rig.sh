# Sourced by bench/ab.sh and bench/floor.sh: what both start from. Sets `here` (the checkout),
# `node` (the pinned Node), `dir` (a temporary directory holding up.yaml: one upstream "openai"
# with one endpoint, the fake at 127.0.0.1:18080) and `pids` (every process started and added
# there is killed on exit, and `dir` removed). Defines `requests URL SECONDS BODY`: a closed
# loop of 32 connections from CPU 0 (autocannon), printing how many requests were answered.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
node="$here/node_modules/.bin/node"
dir=$(mktemp -d)
cat > "$dir/up.yaml" <<'YAML'
apiVersion: breakwater.dev/v1alpha1
kind: LLMUpstream
metadata: { name: openai }
spec:
  endpoints:
    - { name: fake, url: "http://127.0.0.1:18080/v1" }
YAML
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; rm -rf "$dir"' EXIT

requests() { # url seconds body
  taskset -c 0 "$node" "$here/node_modules/autocannon/autocannon.js" -j -c 32 -d "$2" -m POST -H content-type=application/json -b "$3" "$1" 2>/dev/null \
    | "$node" -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => console.log(JSON.parse(s).requests.total))'
}
