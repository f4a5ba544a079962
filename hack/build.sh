#!/usr/bin/env bash
# Compiles src/ to JavaScript in build/dist: what the image ships and what bin/breakwater runs
# when it is current. Why compiled: Node's type stripping loads a TypeScript transformer
# (amaro, WebAssembly) into every process, ~25 MB of resident memory in a sidecar that runs
# in every app pod; the compiled tree runs the same code without it (README, "Footprint").
#
#   hack/build.sh           # build/dist, unless it was built from exactly these inputs
#   hack/build.sh --check   # exit 0 when build/dist is current, 1 when not; builds nothing
#
# tsc with tsconfig.build.json: rewriteRelativeImportExtensions turns the sources' `./x.ts`
# specifiers into `./x.js`, and noCheck skips type checking (`make typecheck` does that; the
# sources are erasable syntax only, so emitting never depends on types). `make build`,
# `make image` (through hack/image.sh) and `make test` run it.
#
# Current means: build/dist/.inputs holds the hash of the inputs it was built from (src/,
# package.json, tsconfig.json, tsconfig.build.json: paths and contents), and that is the hash
# of the inputs now. bin/breakwater makes the same comparison with the same pipeline (inputs_hash
# below; a test checks that a fresh build is what it runs). The new tree is compiled next to the
# old one and swapped in by rename, so a process running from build/dist never sees a half tree.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[build] %s\n' "$*" >&2; }
NODE=node_modules/.bin/node
OUT=build/dist

# The same pipeline as bin/breakwater's (keep them identical).
inputs_hash() {
  find src package.json tsconfig.json tsconfig.build.json -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum
}

current() { [[ -f "${OUT}/.inputs" && "$(cat "${OUT}/.inputs")" == "$(inputs_hash)" ]]; }

if [[ "${1:-}" == --check ]]; then current; exit; fi
[[ $# -eq 0 ]] || { log "usage: hack/build.sh [--check]"; exit 2; }
[[ -x "${NODE}" ]] || { log "${NODE} is missing; run 'make deps' first"; exit 1; }

mkdir -p build
exec 9>build/.build.lock
command -v flock >/dev/null 2>&1 && flock 9
current && exit 0

start=${SECONDS}
# The hash of the inputs as they are before compiling: an edit during the compile leaves the
# tree marked stale, never a stale tree marked current.
hash="$(inputs_hash)"
rm -rf "${OUT}.new" "${OUT}.old"
"${NODE}" node_modules/typescript/bin/tsc -p tsconfig.build.json --outDir "${OUT}.new"
[[ -f "${OUT}.new/main.js" ]] || { log "tsc wrote no ${OUT}.new/main.js"; exit 1; }
printf '%s\n' "${hash}" >"${OUT}.new/.inputs"
[[ -d "${OUT}" ]] && mv "${OUT}" "${OUT}.old"
mv "${OUT}.new" "${OUT}"
rm -rf "${OUT}.old"
log "${OUT}: $(find "${OUT}" -name '*.js' | wc -l) files in $((SECONDS - start)) s"
