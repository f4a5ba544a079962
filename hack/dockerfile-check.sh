#!/usr/bin/env bash
# Builds the top-level Dockerfile with buildah (no Docker engine) and runs the result, to check
# what docker/podman users get. No container registry is reachable here, so the base is made
# locally in the shape of node:24-bookworm-slim: Debian bookworm minbase (mmdebstrap), the pinned
# Node 24 at /usr/local/bin/node and npm under /usr/local/lib/node_modules, and this machine's
# CA bundle (registries may sit behind a TLS proxy). Needs root, buildah and mmdebstrap
# (apt-get install -y buildah mmdebstrap). Not part of `make test`; run by `make image-dockerfile`.
#
#   hack/dockerfile-check.sh   # -> build/breakwater-dockerfile.oci.tar (localhost/breakwater:dockerfile)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
WORK="${BREAKWATER_CACHE:-${HOME:?}/.cache/breakwater}/dockerfile-check"
S=(--storage-driver vfs --root "${WORK}/storage" --runroot "${WORK}/run")
log() { printf '[dockerfile] %s\n' "$*" >&2; }

for t in buildah mmdebstrap; do
  command -v "${t}" >/dev/null 2>&1 || { log "${t} missing: apt-get install -y --no-install-recommends buildah mmdebstrap"; exit 1; }
done
[[ "$(id -u)" == 0 ]] || { log "needs root"; exit 1; }
mkdir -p "${WORK}" "${ROOT}/build"
start=${SECONDS}

if ! buildah "${S[@]}" inspect localhost/node-base:24 >/dev/null 2>&1; then
  [[ -f "${WORK}/rootfs.tar" ]] || mmdebstrap --variant=minbase --include=ca-certificates bookworm "${WORK}/rootfs.tar"
  npm_dir="$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")"
  c="$(buildah "${S[@]}" from scratch)"
  m="$(buildah "${S[@]}" mount "${c}")"
  tar -xf "${WORK}/rootfs.tar" -C "${m}"
  mkdir -p "${m}/usr/local/bin" "${m}/usr/local/lib/node_modules"
  cp "$(readlink -f node_modules/.bin/node)" "${m}/usr/local/bin/node"
  cp -r "${npm_dir}" "${m}/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "${m}/usr/local/bin/npm"
  cp /etc/ssl/certs/ca-certificates.crt "${m}/etc/ssl/certs/ca-certificates.crt"
  buildah "${S[@]}" umount "${c}" >/dev/null
  buildah "${S[@]}" config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt "${c}"
  buildah "${S[@]}" commit -q "${c}" localhost/node-base:24 >/dev/null
  buildah "${S[@]}" rm "${c}" >/dev/null
  log "base localhost/node-base:24 ready"
fi

buildah "${S[@]}" bud -q --isolation chroot --build-arg BASE=localhost/node-base:24 -t localhost/breakwater:dockerfile "${ROOT}" >/dev/null
log "built localhost/breakwater:dockerfile: $(buildah "${S[@]}" inspect --format 'user {{.OCIv1.Config.User}}, entrypoint {{.OCIv1.Config.Entrypoint}}, cmd {{.OCIv1.Config.Cmd}}' localhost/breakwater:dockerfile)"

# It runs compiled JavaScript: the entrypoint is dist/main.js and no TypeScript source is in /app.
entrypoint="$(buildah "${S[@]}" inspect --format '{{.OCIv1.Config.Entrypoint}}' localhost/breakwater:dockerfile)"
[[ "${entrypoint}" == '[node --wasm-tiering-budget=2000000000 /app/dist/main.js]' ]] || { log "entrypoint is ${entrypoint}, not node --wasm-tiering-budget=2000000000 /app/dist/main.js"; exit 1; }
c="$(buildah "${S[@]}" from localhost/breakwater:dockerfile)"
m="$(buildah "${S[@]}" mount "${c}")"
ts="$(cd "${m}/app" && find . -path ./node_modules -prune -o -name '*.ts' -print | head -n3)"
buildah "${S[@]}" umount "${c}" >/dev/null
[[ -z "${ts}" ]] || { buildah "${S[@]}" rm "${c}" >/dev/null; log "TypeScript in the image's /app: ${ts}"; exit 1; }

# It starts as its non-root user and serves (the fake provider: no config needed), through the
# image's entrypoint and environment (NODE_OPTIONS included).
out="$(timeout 10 buildah "${S[@]}" run --isolation chroot --user 65532:65532 "${c}" -- node --wasm-tiering-budget=2000000000 /app/dist/main.js fake --listen 127.0.0.1:0 2>&1 | head -n1 || true)"
buildah "${S[@]}" rm "${c}" >/dev/null
[[ "${out}" == *'fake provider listening'* ]] || { log "the image did not start: ${out}"; exit 1; }
log "runs as 65532: ${out}"

rm -f "${ROOT}/build/breakwater-dockerfile.oci.tar"
buildah "${S[@]}" push -q localhost/breakwater:dockerfile "oci-archive:${ROOT}/build/breakwater-dockerfile.oci.tar:localhost/breakwater:dockerfile"
log "build/breakwater-dockerfile.oci.tar ($(du -m "${ROOT}/build/breakwater-dockerfile.oci.tar" | cut -f1) MB) in $((SECONDS - start)) s"
