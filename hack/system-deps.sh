#!/usr/bin/env bash
# Installs the Debian packages the tests and the demo need, so `make test` works on a fresh
# Debian machine. A warm run only asks dpkg-query (a few ms) and installs nothing. Without
# root it installs nothing and stops at once, printing the one `apt-get install` line to run.
#
#   hack/system-deps.sh           # install what is missing (root), or print the line and exit 1
#   hack/system-deps.sh --list    # print the package names, one per line
#   hack/system-deps.sh --check   # exit 0 when all are installed, 1 otherwise (never installs)
#
# Who needs what:
#   ca-certificates curl openssl unzip   registries, the e2e PKI, kubectl/helm from npm
#   iproute2 util-linux                  network namespaces (admin-access test, the real node), nsenter, flock
#   prometheus                           promtool (alert rule tests)
#   chromium                             the dashboard test (playwright-core drives it)
#   containerd runc containernetworking-plugins iptables
#                                        the real one-node cluster (hack/node.sh)
#   tar gzip coreutils                   hack/image.sh writes OCI archives by hand
set -euo pipefail

PACKAGES=(
  ca-certificates curl openssl unzip
  iproute2 util-linux
  prometheus
  chromium
  containerd runc containernetworking-plugins iptables
  tar gzip coreutils
)

# The packages dpkg does not list as installed (one dpkg-query for all of them).
missing() {
  local installed p
  installed=" $( { dpkg-query -W -f='${Package}=${db:Status-Abbrev}\n' "${PACKAGES[@]}" 2>/dev/null || true; } \
    | sed -n 's/^\([^=]*\)=ii.*/\1/p' | tr '\n' ' ') "
  for p in "${PACKAGES[@]}"; do
    [[ "${installed}" == *" ${p} "* ]] || printf '%s\n' "${p}"
  done
}

case "${1:-}" in
  --list) printf '%s\n' "${PACKAGES[@]}"; exit 0 ;;
  --check) [[ -z "$(missing)" ]]; exit $? ;;
  "") ;;
  *) printf 'usage: %s [--list|--check]\n' "$0" >&2; exit 2 ;;
esac

if ! command -v dpkg-query >/dev/null 2>&1; then
  printf '[system-deps] not a Debian system: install the equivalents of: %s\n' "${PACKAGES[*]}" >&2
  exit 0
fi

mapfile -t need < <(missing)
(( ${#need[@]} == 0 )) && exit 0

line="apt-get update && apt-get install -y --no-install-recommends ${need[*]}"
if [[ "$(id -u)" != 0 ]]; then
  printf '[system-deps] missing Debian packages: %s\nrun as root:\n  %s\n' "${need[*]}" "${line}" >&2
  exit 1
fi

printf '[system-deps] installing: %s\n' "${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
