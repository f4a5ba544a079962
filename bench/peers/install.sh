#!/usr/bin/env bash
# Installs the peers `make bench` compares Breakwater with, each at a pinned version, into a
# cache outside the repo (never the project's package.json, never what someone installed by
# hand), and prints one line per peer: name, version, how to start it. A warm run only checks
# the stamps (a few ms) and installs nothing.
#
#   bench/peers/install.sh            # install what is missing, then print the manifest (JSON)
#
#   nginx     Debian package `nginx` (apt-get when root, as hack/system-deps.sh does; otherwise
#             prints the line to run and the nginx rows are skipped)
#   portkey   npm `@portkey-ai/gateway@PORTKEY_VERSION` in its own prefix (npm ci from the lock in
#             bench/peers/portkey/), run by the pinned Node 24
#   litellm   PyPI `litellm[proxy]` in its own venv: the first of LITELLM_CANDIDATES (newest
#             first) whose [proxy] extra installs here; the one installed is recorded
#
# Cache: $BREAKWATER_BENCH_CACHE or ~/.cache/breakwater/bench. Every step is bounded (timeout).
set -euo pipefail

# Portkey: bench/peers/portkey/package.json + package-lock.json pin the gateway (1.15.2) and its
# whole tree. Its SSE relay builds `new Response(stream, upstreamResponse)` and then appends headers;
# @hono/node-server >= 1.14 (what Portkey's ^1.3.3 range resolves to today) keeps the upstream's
# immutable Headers there, so every streamed request fails ("TypeError: immutable", answered as
# 500 "Something went wrong"); the lock holds it at 1.13.8 (npm overrides), the last release before.
PORTKEY_VERSION=1.15.2
LITELLM_CANDIDATES=(1.110.2 1.109.3 1.108.14 1.106.12 1.100.5)

here=$(cd "$(dirname "$0")/../.." && pwd)
cache="${BREAKWATER_BENCH_CACHE:-${HOME}/.cache/breakwater/bench}"
mkdir -p "${cache}"
say() { printf '[bench-peers] %s\n' "$*" >&2; }

# ---- nginx (Debian) ----
if ! command -v nginx >/dev/null 2>&1 && [[ ! -x /usr/sbin/nginx ]]; then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    say "installing nginx (Debian package)"
    export DEBIAN_FRONTEND=noninteractive
    timeout 600 apt-get update -qq >&2
    timeout 600 apt-get install -y -qq --no-install-recommends nginx >&2 || say "nginx install failed: its rows are skipped"
  else
    say "nginx missing: run as root: apt-get update && apt-get install -y --no-install-recommends nginx (its rows are skipped)"
  fi
fi

# ---- Portkey gateway (npm, own prefix, from the committed lock) ----
lock_sum=$(cat "${here}/bench/peers/portkey/package.json" "${here}/bench/peers/portkey/package-lock.json" | sha256sum | cut -c1-12)
portkey="${cache}/portkey-${PORTKEY_VERSION}-${lock_sum}"
if [[ ! -f "${portkey}/.stamp" ]]; then
  say "installing @portkey-ai/gateway@${PORTKEY_VERSION} into ${portkey} (npm ci)"
  rm -rf "${portkey}"
  mkdir -p "${portkey}"
  cp "${here}/bench/peers/portkey/package.json" "${here}/bench/peers/portkey/package-lock.json" "${portkey}/"
  # --ignore-scripts: its only install script is patch-package, with no patches in the package
  if (cd "${portkey}" && timeout 600 npm ci --no-audit --no-fund --ignore-scripts >&2); then
    touch "${portkey}/.stamp"
  else
    say "portkey install failed: its rows are skipped"
  fi
fi

# ---- LiteLLM proxy (PyPI, own venv) ----
litellm="${cache}/litellm"
if [[ ! -f "${litellm}/.stamp" ]]; then
  python=$(command -v python3 || true)
  if [[ -z "${python}" ]]; then
    say "python3 missing: the litellm rows are skipped"
  else
    for v in "${LITELLM_CANDIDATES[@]}"; do
      say "installing litellm[proxy]==${v} into ${litellm} (venv)"
      rm -rf "${litellm}"
      if timeout 900 "${python}" -m venv "${litellm}" >&2 \
        && timeout 900 "${litellm}/bin/pip" install --quiet --disable-pip-version-check "litellm[proxy]==${v}" >&2 \
        && timeout 120 "${litellm}/bin/litellm" --help >/dev/null 2>&1; then
        printf '%s\n' "${v}" > "${litellm}/VERSION"
        touch "${litellm}/.stamp"
        break
      fi
      say "litellm[proxy]==${v} did not install here; trying the next older candidate"
    done
    [[ -f "${litellm}/.stamp" ]] || { rm -rf "${litellm}"; say "no litellm candidate installed: its rows are skipped"; }
  fi
fi

# ---- manifest ----
nginx_bin=$(command -v nginx || { [[ -x /usr/sbin/nginx ]] && echo /usr/sbin/nginx; } || true)
nginx_version=""
[[ -n "${nginx_bin}" ]] && nginx_version=$("${nginx_bin}" -v 2>&1 | sed -n 's|.*nginx/||p')
portkey_main=""
[[ -f "${portkey}/.stamp" ]] && portkey_main="${portkey}/node_modules/@portkey-ai/gateway/build/start-server.js"
litellm_bin="" litellm_version=""
[[ -f "${litellm}/.stamp" ]] && { litellm_bin="${litellm}/bin/litellm"; litellm_version=$(cat "${litellm}/VERSION"); }
printf '{"nginx":{"bin":"%s","version":"%s"},"portkey":{"main":"%s","version":"%s"},"litellm":{"bin":"%s","version":"%s"}}\n' \
  "${nginx_bin}" "${nginx_version}" "${portkey_main}" "${portkey_main:+${PORTKEY_VERSION}}" "${litellm_bin}" "${litellm_version}"
