#!/usr/bin/env bash
# A real one-node Kubernetes cluster for the tests, inside its own network namespace:
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet and kube-proxy
# (v1.34.10, built by hack/control-plane.sh --node), containerd + runc + the CNI bridge from
# Debian, and the images of hack/image.sh imported without a registry (pods use
# `imagePullPolicy: Never`). Needs root. See hack/README.md and ../shared/notes/real-node.md.
#
#   hack/node.sh up        # build what is missing, clean a stale run, start, wait for the node
#   hack/node.sh down      # stop everything and leave nothing behind (also after a killed run)
#   hack/node.sh status    # "running", "stale" or "absent"
#   hack/node.sh kubectl … # kubectl as admin, inside the namespace
#   hack/node.sh exec …    # any command inside the namespace (e.g. curl to a Service IP)
#
# `up` writes ${DIR}/cluster.env (shell) and ${DIR}/cluster.json (for test/node/harness.ts).
# Every process runs with `nsenter --net` (never `ip netns exec`: that would give it its own
# mount namespace, and containerd must see the kubelet's mounts). The namespace holds `lo` and
# the bridge only: no route off the machine. There is no cluster DNS: address Services by
# their ClusterIP (kube-proxy, iptables mode, masquerading all Service traffic).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"

DIR="${BREAKWATER_NODE_DIR:-/tmp/bwn}"          # short: unix socket paths stay < 108 bytes
NETNS="${BREAKWATER_NODE_NETNS:-bwnode}"
NODE_NAME=bwnode
BRIDGE=bwn0
POD_CIDR=10.77.0.0/24
NODE_IP=10.77.0.1
SVC_CIDR=10.77.1.0/24
API_SVC_IP=10.77.1.1
API_PORT=6443
# Machine-wide sysctls the kubelet sets (its kernel tunables): saved at up, restored at down.
SYSCTLS=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys kernel.keys.root_maxbytes)
DAEMONS=(kube-proxy kubelet kube-scheduler kube-controller-manager containerd kube-apiserver etcd)
IMAGES=(pause breakwater breakwater-testapp)
# Paths outside DIR that the components create whatever they are told (the kubelet's device
# plugin socket dir, libcni's result cache, containerd 1.6's shim sockets, the kubelet's log
# links): removed at teardown when this run created them.
HOST_PATHS=(/var/lib/kubelet /var/lib/cni /run/containerd /var/log/containers)

log() { printf '[node] %s\n' "$*" >&2; }
die() { printf '[node] error: %s\n' "$*" >&2; exit 1; }
NS() { nsenter --net="/run/netns/${NETNS}" -- "$@"; }

need_root() { [[ "$(id -u)" == 0 ]] || die "needs root (network namespace, mounts, cgroups)"; }

# --- state -------------------------------------------------------------------
pid_of() { [[ -f "${DIR}/pids/$1" ]] && cat "${DIR}/pids/$1" || true; }
alive() { [[ -n "$1" ]] && kill -0 "$1" 2>/dev/null; }

status() {
  if [[ ! -d "${DIR}" && ! -e "/run/netns/${NETNS}" ]]; then echo absent; return; fi
  local owner; owner="$(cat "${DIR}/owner" 2>/dev/null || true)"
  if alive "$(pid_of kube-apiserver)" && alive "$(pid_of kubelet)" && { [[ -z "${owner}" ]] || alive "${owner}"; }; then
    echo running
  else
    echo stale
  fi
}

# --- teardown ----------------------------------------------------------------
# Processes of this cluster: the recorded daemons, plus any etcd/kube-*/containerd/shim
# whose command line names DIR (e.g. from a run whose pid files are gone).
our_pids() {
  local p exe
  for p in /proc/[0-9]*; do
    p="${p#/proc/}"
    [[ "${p}" == "$$" ]] && continue
    exe="$(readlink "/proc/${p}/exe" 2>/dev/null || true)"
    case "${exe##*/}" in
      etcd|kube-apiserver|kube-controller-manager|kube-scheduler|kubelet|kube-proxy|containerd|containerd-shim*) ;;
      *) continue ;;
    esac
    tr '\0' ' ' <"/proc/${p}/cmdline" 2>/dev/null | grep -qF -- "${DIR}/" && printf '%s\n' "${p}"
  done
  return 0
}

# stop_all <grace seconds> <pid…>: TERM to all, KILL to those left after the grace time.
stop_all() {
  local grace="$1" p i left; shift
  (( $# == 0 )) && return 0
  for p in "$@"; do kill -TERM "${p}" 2>/dev/null || true; done
  for ((i = 0; i < grace * 10 + 50; i++)); do
    left=0
    for p in "$@"; do alive "${p}" && left=1; done
    (( left == 0 )) && return 0
    (( i == grace * 10 )) && for p in "$@"; do kill -KILL "${p}" 2>/dev/null || true; done
    sleep 0.1
  done
}

stop_pid() { # <pid> <grace seconds>
  local pid="$1" i
  alive "${pid}" || return 0
  kill -TERM "${pid}" 2>/dev/null || true
  for ((i = 0; i < $2 * 10; i++)); do alive "${pid}" || return 0; sleep 0.1; done
  kill -KILL "${pid}" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do alive "${pid}" || return 0; sleep 0.1; done
}

# Every process in a cgroup the kubelet made (the containers), in every hierarchy.
kill_pod_processes() {
  local f p
  for f in /sys/fs/cgroup/*/kubepods/ /sys/fs/cgroup/*/kubepods.slice/; do
    [[ -d "${f}" ]] || continue
    while read -r p; do kill -KILL "${p}" 2>/dev/null || true; done < <(find "${f}" -name cgroup.procs -exec cat {} + 2>/dev/null)
  done
}

remove_cgroups() {
  local h d
  for h in /sys/fs/cgroup/*/; do
    for d in kubepods kubepods.slice k8s.io; do
      [[ -d "${h}${d}" ]] || continue
      find "${h}${d}" -depth -type d -exec rmdir {} \; 2>/dev/null || true
      [[ -d "${h}${d}" ]] && log "warning: could not remove cgroup ${h}${d}"
    done
  done
  return 0
}

unmount_all() {
  local m i
  for i in 1 2 3 4 5; do
    mapfile -t mounts < <(awk -v d="${DIR}/" 'index($5, d) == 1 || $5 == substr(d, 1, length(d) - 1) { print $5 }' /proc/self/mountinfo | awk '{ print length($0), $0 }' | sort -rn | cut -d' ' -f2-)
    (( ${#mounts[@]} == 0 )) && return 0
    for m in "${mounts[@]}"; do umount "${m}" 2>/dev/null || umount -l "${m}" 2>/dev/null || true; done
  done
}

restore_sysctls() {
  [[ -f "${DIR}/sysctls" ]] || return 0
  local k v
  while read -r k v; do
    [[ -n "${k}" ]] && sysctl -q -w "${k}=${v}" >/dev/null 2>&1 || true
  done <"${DIR}/sysctls"
}

# Progress of the teardown with BREAKWATER_NODE_TRACE=1.
stage() { [[ "${BREAKWATER_NODE_TRACE:-0}" == 1 ]] && log "  $1 (${SECONDS} s)"; return 0; }

down() {
  need_root
  local start=${SECONDS} p d pids=()
  [[ -d "${DIR}" || -e "/run/netns/${NETNS}" ]] || { log "nothing to tear down"; return 0; }
  # Pods first, while the kubelet runs: it stops them and unmounts their volumes.
  if alive "$(pid_of kubelet)" && alive "$(pid_of kube-apiserver)" && [[ -f "${DIR}/kube/admin.kubeconfig" ]] && find_bin; then
    KUBECTL_TIMEOUT=10 NS_kubectl delete pods --all-namespaces --all --grace-period=0 --force --wait=false >/dev/null 2>&1 || true
    for ((i = 0; i < 50; i++)); do
      [[ -z "$(timeout 5 ctr --address "${DIR}/containerd.sock" -n k8s.io tasks ls -q 2>/dev/null || true)" ]] && break
      sleep 0.1
    done
  fi
  stage "pods deleted"
  stop_pid "$(pid_of kubelet)" 2
  stage "kubelet stopped"
  # Whatever the kubelet left running: kill the tasks through containerd, then any straggler.
  if alive "$(pid_of containerd)"; then
    local ctr=(timeout 10 ctr --address "${DIR}/containerd.sock" -n k8s.io)
    for p in $("${ctr[@]}" tasks ls -q 2>/dev/null || true); do "${ctr[@]}" tasks kill -s SIGKILL "${p}" >/dev/null 2>&1 || true; done
    for p in $("${ctr[@]}" tasks ls -q 2>/dev/null || true); do "${ctr[@]}" tasks rm -f "${p}" >/dev/null 2>&1 || true; done
  fi
  kill_pod_processes
  stage "tasks killed"
  # The rest together (their state is thrown away): the daemons, then the shims, which
  # daemonize, and anything whose pid file is gone, found by their arguments.
  for d in "${DAEMONS[@]}"; do p="$(pid_of "${d}")"; alive "${p}" && pids+=("${p}"); done
  for p in $(our_pids); do pids+=("${p}"); done
  stop_all 3 "${pids[@]}"
  kill_pod_processes
  stage "processes stopped"
  restore_sysctls
  # Outside DIR: what this run created goes; in what existed before, only this run's files.
  find /var/log/containers -maxdepth 1 -type l -lname "${DIR}/*" -delete 2>/dev/null || true
  find /var/lib/cni/results -maxdepth 1 -name 'bwnode-*' -delete 2>/dev/null || true
  local created=()
  [[ -f "${DIR}/created-paths" ]] && mapfile -t created <"${DIR}/created-paths"
  for p in "${created[@]}"; do
    case "${p}" in /var/lib/kubelet|/var/lib/cni|/run/containerd|/var/log/containers) rm -rf --one-file-system "${p}" ;; esac
  done
  local sysctl_drift=""
  if [[ -f "${DIR}/sysctls" ]]; then
    while read -r k v; do [[ "$(sysctl -n "${k}" 2>/dev/null)" == "${v}" ]] || sysctl_drift+=" ${k}"; done <"${DIR}/sysctls"
  fi
  unmount_all   # the pods' volumes and netns files, the kubelet's bind mount, then the tmpfs itself
  stage "unmounted"
  if [[ -e "/run/netns/${NETNS}" ]]; then ip netns delete "${NETNS}" 2>/dev/null || { umount "/run/netns/${NETNS}" 2>/dev/null; rm -f "/run/netns/${NETNS}"; }; fi
  remove_cgroups
  if [[ -n "$(awk -v d="${DIR}" '$5 == d || index($5, d "/") == 1' /proc/self/mountinfo)" ]]; then
    log "warning: mounts remain under ${DIR}; not removing it"
  else
    rm -rf --one-file-system "${DIR}"
  fi
  local left
  left="$(leftovers "${created[@]}")"
  [[ -n "${sysctl_drift}" ]] && left+=$'\n'"sysctls not restored:${sysctl_drift}"
  if [[ -n "${left//$'\n'/}" ]]; then
    log "down in $((SECONDS - start)) s, but left behind:"
    printf '  %s\n' ${left} >&2
    return 1
  fi
  log "down in $((SECONDS - start)) s; nothing left behind"
}

# leftovers <paths this run created…>: what a teardown must not leave, one item a line.
leftovers() {
  local h p
  [[ -e "/run/netns/${NETNS}" ]] && echo "netns:${NETNS}"
  [[ -e "${DIR}" ]] && echo "dir:${DIR}"
  awk -v d="${DIR}" '$5 == d || index($5, d "/") == 1 { print "mount:" $5 }' /proc/self/mountinfo
  for p in $(our_pids); do echo "process:${p}:$(tr '\0' ' ' <"/proc/${p}/cmdline" 2>/dev/null | cut -c1-60 | tr ' ' '_')"; done
  for h in /sys/fs/cgroup/*/; do [[ -d "${h}kubepods" ]] && echo "cgroup:${h}kubepods"; done
  ip link show "${BRIDGE}" >/dev/null 2>&1 && echo "link:${BRIDGE}"
  iptables-save 2>/dev/null | grep -q 'KUBE-' && echo "iptables:KUBE-chains-in-the-machine-namespace"
  for p in "$@"; do [[ -e "${p}" ]] && echo "path:${p}"; done
  return 0
}

NS_kubectl() {
  if [[ -n "${KUBECTL_TIMEOUT:-}" ]]; then
    timeout "${KUBECTL_TIMEOUT}" nsenter --net="/run/netns/${NETNS}" -- "${BIN}/kubectl" --kubeconfig "${DIR}/kube/admin.kubeconfig" "$@"
  else
    NS "${BIN}/kubectl" --kubeconfig "${DIR}/kube/admin.kubeconfig" "$@"
  fi
}
node_ready() {
  [[ "$(KUBECTL_TIMEOUT=5 NS_kubectl get node "${NODE_NAME}" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" == True ]]
}

# --- bring-up ----------------------------------------------------------------
BIN=""
find_bin() {
  BIN="$(bash hack/control-plane.sh --bin-dir)"
  local t
  for t in kube-apiserver etcd kubectl kubelet kube-controller-manager kube-scheduler kube-proxy; do
    [[ -x "${BIN}/${t}" ]] || return 1
  done
}

# start_daemon <name> <command> <args…>: in the namespace, its own session, logs in DIR/logs.
start_daemon() {
  local name="$1"; shift
  nsenter --net="/run/netns/${NETNS}" -- setsid "$@" >"${DIR}/logs/${name}.log" 2>&1 </dev/null &
  echo $! >"${DIR}/pids/${name}"
}

# wait_for <what> <seconds> <daemon> <command…>: polls every 0.2 s; fails fast if the daemon died.
wait_for() {
  local what="$1" secs="$2" daemon="$3"; shift 3
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if [[ -n "${daemon}" ]] && ! alive "$(pid_of "${daemon}")"; then
      tail -n 30 "${DIR}/logs/${daemon}.log" >&2 || true
      die "${daemon} exited while waiting for ${what}"
    fi
    if (( SECONDS >= deadline )); then
      [[ -n "${daemon}" ]] && tail -n 30 "${DIR}/logs/${daemon}.log" >&2
      die "timed out after ${secs} s waiting for ${what}"
    fi
    sleep 0.2
  done
}

pki() {
  local d="${DIR}/pki"
  mkdir -p "${d}"
  cat >"${d}/req.cnf" <<'EOF'
[req]
distinguished_name = dn
[dn]
EOF
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "${d}/ca.key" -out "${d}/ca.crt" \
    -subj /CN=breakwater-node-ca -days 7 -config "${d}/req.cnf" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign,digitalSignature 2>/dev/null
  issue() { # <name> <subject> <extensions…>
    local n="$1" s="$2"; shift 2
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "${d}/${n}.key" -out "${d}/${n}.csr" \
      -subj "${s}" -config "${d}/req.cnf" 2>/dev/null
    printf '%s\n' '[ext]' "$@" >"${d}/${n}.ext"
    openssl x509 -req -in "${d}/${n}.csr" -CA "${d}/ca.crt" -CAkey "${d}/ca.key" -CAcreateserial -days 7 \
      -extfile "${d}/${n}.ext" -extensions ext -out "${d}/${n}.crt" 2>/dev/null
  }
  local client=('basicConstraints = critical, CA:FALSE' 'keyUsage = critical, digitalSignature' 'extendedKeyUsage = clientAuth')
  issue apiserver /CN=kube-apiserver 'basicConstraints = critical, CA:FALSE' 'keyUsage = critical, digitalSignature, keyEncipherment' \
    'extendedKeyUsage = serverAuth' \
    "subjectAltName = IP:${NODE_IP}, IP:127.0.0.1, IP:${API_SVC_IP}, DNS:localhost, DNS:kubernetes, DNS:kubernetes.default, DNS:kubernetes.default.svc, DNS:kubernetes.default.svc.cluster.local"
  # The admin identity is for setup, kube-controller-manager, kube-scheduler, kube-proxy and
  # the API server's calls to the kubelet; the node has its own (Node authorizer, NodeRestriction).
  issue admin "/CN=admin/O=system:masters" "${client[@]}"
  issue node "/CN=system:node:${NODE_NAME}/O=system:nodes" "${client[@]}"
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "${d}/sa.key" 2>/dev/null
  openssl pkey -in "${d}/sa.key" -pubout -out "${d}/sa.pub" 2>/dev/null
  chmod 600 "${d}"/*.key
}

kubeconfig() { # <file> <user> <cert base>
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: bwnode
  cluster: { server: "https://${NODE_IP}:${API_PORT}", certificate-authority: "${DIR}/pki/ca.crt" }
users:
- name: $2
  user: { client-certificate: "${DIR}/pki/$3.crt", client-key: "${DIR}/pki/$3.key" }
contexts:
- name: bwnode
  context: { cluster: bwnode, user: $2 }
current-context: bwnode
EOF
  chmod 600 "$1"
}

configs() {
  mkdir -p "${DIR}/kube" "${DIR}/cni/net.d" "${DIR}/cni/ipam" "${DIR}/c/root" "${DIR}/c/state" "${DIR}/c/opt" "${DIR}/runc" \
    "${DIR}/kubelet" "${DIR}/kubelet-pki" "${DIR}/kubelet-plugins" "${DIR}/pod-logs"
  kubeconfig "${DIR}/kube/admin.kubeconfig" admin admin
  kubeconfig "${DIR}/kube/node.kubeconfig" "system:node:${NODE_NAME}" node

  cat >"${DIR}/containerd.toml" <<EOF
version = 2
root = "${DIR}/c/root"
state = "${DIR}/c/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "${DIR}/containerd.sock"
[ttrpc]
  address = "${DIR}/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "${DIR}/c/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/pause:dev"
  # Root here lacks CAP_SYS_RESOURCE: without this every sandbox fails (oom_score_adj -998).
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_selinux = false
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "/usr/sbin/runc"
        Root = "${DIR}/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "${DIR}/cni/net.d"
    max_conf_num = 1
EOF

  cat >"${DIR}/cni/net.d/10-bwnode.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "bwnode",
  "plugins": [{
    "type": "bridge", "bridge": "${BRIDGE}", "isGateway": true, "isDefaultGateway": false,
    "ipMasq": false, "hairpinMode": true,
    "ipam": {
      "type": "host-local", "dataDir": "${DIR}/cni/ipam",
      "ranges": [[{ "subnet": "${POD_CIDR}", "gateway": "${NODE_IP}" }]],
      "routes": [{ "dst": "${SVC_CIDR}", "gw": "${NODE_IP}" }]
    }
  }]
}
EOF

  cat >"${DIR}/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: ${NODE_IP}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
authentication:
  anonymous: { enabled: false }
  webhook: { enabled: true }
  x509: { clientCAFile: "${DIR}/pki/ca.crt" }
authorization: { mode: Webhook }
containerRuntimeEndpoint: "unix://${DIR}/containerd.sock"
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
makeIPTablesUtilChains: false
# Images exist only locally: never collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: { memory.available: 100Mi, nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%" }
nodeStatusUpdateFrequency: 5s
serializeImagePulls: false
resolvConf: ""
podLogsDir: "${DIR}/pod-logs"
volumePluginDir: "${DIR}/kubelet-plugins"
maxPods: 50
EOF

  cat >"${DIR}/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: { kubeconfig: "${DIR}/kube/admin.kubeconfig" }
hostnameOverride: ${NODE_NAME}
mode: iptables
clusterCIDR: ${POD_CIDR}
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: ["${NODE_IP}/32"]
# 0 leaves the machine-wide conntrack settings alone.
conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s }
# Pods talk to Services over the bridge without br_netfilter: masquerade, so replies come back
# through the node and are un-NATed.
iptables: { masqueradeAll: true, minSyncPeriod: 0s, syncPeriod: 30s }
EOF
}

write_cluster_info() {
  cat >"${DIR}/cluster.env" <<EOF
BREAKWATER_NODE_DIR=${DIR}
BREAKWATER_NODE_NETNS=${NETNS}
KUBECONFIG=${DIR}/kube/admin.kubeconfig
BREAKWATER_NODE_BIN=${BIN}
EOF
  cat >"${DIR}/cluster.json" <<EOF
{
  "dir": "${DIR}",
  "netns": "/run/netns/${NETNS}",
  "bin": "${BIN}",
  "kubeconfig": "${DIR}/kube/admin.kubeconfig",
  "server": "https://${NODE_IP}:${API_PORT}",
  "nodeName": "${NODE_NAME}",
  "nodeIP": "${NODE_IP}",
  "podCIDR": "${POD_CIDR}",
  "serviceCIDR": "${SVC_CIDR}",
  "containerdSocket": "${DIR}/containerd.sock",
  "logs": "${DIR}/logs",
  "images": { "breakwater": "localhost/breakwater:dev", "testapp": "localhost/breakwater-testapp:dev", "pause": "localhost/pause:dev" }
}
EOF
}

up() {
  need_root
  local t0=${SECONDS} s
  case "$(status)" in
    running) die "a cluster is already running in ${DIR} (owner pid $(cat "${DIR}/owner" 2>/dev/null)); 'hack/node.sh down' first" ;;
    stale) log "cleaning a stale run"; down ;;
  esac
  [[ -e "/run/netns/${NETNS}" ]] && die "network namespace ${NETNS} still exists after cleanup"
  bash hack/system-deps.sh
  s=${SECONDS}
  find_bin || bash hack/control-plane.sh --node >/dev/null
  find_bin || die "Kubernetes binaries missing in ${BIN}"
  log "binaries ready ($((SECONDS - s)) s)"
  if [[ "${BREAKWATER_NODE_BUILD_IMAGES:-1}" != 0 ]]; then
    s=${SECONDS}; bash hack/image.sh all; log "images ready ($((SECONDS - s)) s)"
  fi
  local img
  for img in "${IMAGES[@]}"; do [[ -f build/${img}.oci.tar ]] || die "build/${img}.oci.tar missing (hack/image.sh all)"; done

  s=${SECONDS}
  # The whole work dir is a tmpfs: containerd unpacks images at memory speed, and the
  # teardown's last unmount takes every file with it.
  mkdir -p "${DIR}"
  mount -t tmpfs -o "size=${BREAKWATER_NODE_TMPFS_SIZE:-6g},mode=0755" bwnode "${DIR}"
  mkdir -p "${DIR}/pids" "${DIR}/logs"
  echo "${BREAKWATER_NODE_OWNER:-${PPID}}" >"${DIR}/owner"
  local hp
  for hp in "${HOST_PATHS[@]}"; do [[ -e "${hp}" ]] || echo "${hp}" >>"${DIR}/created-paths"; done
  for k in "${SYSCTLS[@]}"; do printf '%s %s\n' "${k}" "$(sysctl -n "${k}")"; done >"${DIR}/sysctls"

  ip netns add "${NETNS}"
  ip -n "${NETNS}" link set lo up
  ip -n "${NETNS}" link add "${BRIDGE}" type bridge
  ip -n "${NETNS}" addr add "${NODE_IP}/24" dev "${BRIDGE}"
  ip -n "${NETNS}" link set "${BRIDGE}" up
  # A route for the Service range, so the node's own processes (and the tests' curl) reach
  # ClusterIPs: kube-proxy's DNAT happens after the routing decision.
  ip -n "${NETNS}" route add "${SVC_CIDR}" dev "${BRIDGE}" src "${NODE_IP}"

  pki
  configs

  start_daemon etcd "${BIN}/etcd" --name=default --data-dir="${DIR}/etcd" \
    --listen-client-urls=http://127.0.0.1:2379 --advertise-client-urls=http://127.0.0.1:2379 \
    --listen-peer-urls=http://127.0.0.1:2380 --initial-advertise-peer-urls=http://127.0.0.1:2380 \
    --initial-cluster=default=http://127.0.0.1:2380 --unsafe-no-fsync=true --log-level=warn
  start_daemon containerd containerd --config "${DIR}/containerd.toml"
  wait_for "containerd" 30 containerd ctr --address "${DIR}/containerd.sock" version
  # Images import (and unpack) in the background while the control plane starts.
  # One at a time: breakwater and the test app share their first layers.
  local imported=${SECONDS} import_pid
  (
    for img in "${IMAGES[@]}"; do
      ctr --address "${DIR}/containerd.sock" -n k8s.io images import "build/${img}.oci.tar" || { echo "import of ${img} failed"; exit 1; }
    done
  ) >"${DIR}/logs/import.log" 2>&1 &
  import_pid=$!
  wait_for "etcd" 30 etcd NS curl -sf http://127.0.0.1:2379/health

  start_daemon kube-apiserver "${BIN}/kube-apiserver" \
    --etcd-servers=http://127.0.0.1:2379 --bind-address=0.0.0.0 --secure-port="${API_PORT}" \
    --advertise-address="${NODE_IP}" --service-cluster-ip-range="${SVC_CIDR}" \
    --cert-dir="${DIR}/apiserver-certs" --tls-cert-file="${DIR}/pki/apiserver.crt" --tls-private-key-file="${DIR}/pki/apiserver.key" \
    --client-ca-file="${DIR}/pki/ca.crt" --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
    --kubelet-client-certificate="${DIR}/pki/admin.crt" --kubelet-client-key="${DIR}/pki/admin.key" \
    --kubelet-preferred-address-types=InternalIP \
    --service-account-issuer=https://kubernetes.default.svc --service-account-key-file="${DIR}/pki/sa.pub" \
    --service-account-signing-key-file="${DIR}/pki/sa.key" --allow-privileged=true --profiling=false --v=1
  wait_for "kube-apiserver /readyz" 60 kube-apiserver \
    NS curl -sf --cacert "${DIR}/pki/ca.crt" --cert "${DIR}/pki/admin.crt" --key "${DIR}/pki/admin.key" "https://${NODE_IP}:${API_PORT}/readyz"
  log "API server ready ($((SECONDS - s)) s)"

  start_daemon kube-controller-manager "${BIN}/kube-controller-manager" --kubeconfig="${DIR}/kube/admin.kubeconfig" \
    --leader-elect=false --root-ca-file="${DIR}/pki/ca.crt" --service-account-private-key-file="${DIR}/pki/sa.key" \
    --bind-address=127.0.0.1 --use-service-account-credentials=false \
    --flex-volume-plugin-dir="${DIR}/kcm-flex" --v=1
  start_daemon kube-scheduler "${BIN}/kube-scheduler" --kubeconfig="${DIR}/kube/admin.kubeconfig" \
    --leader-elect=false --bind-address=127.0.0.1 --v=1

  wait "${import_pid}" || { cat "${DIR}/logs/import.log" >&2; die "ctr images import failed"; }
  log "images imported ($((SECONDS - imported)) s since containerd started)"

  start_daemon kubelet "${BIN}/kubelet" --config="${DIR}/kubelet.yaml" --kubeconfig="${DIR}/kube/node.kubeconfig" \
    --root-dir="${DIR}/kubelet" --cert-dir="${DIR}/kubelet-pki" --hostname-override="${NODE_NAME}" --node-ip="${NODE_IP}" --v=1
  start_daemon kube-proxy "${BIN}/kube-proxy" --config="${DIR}/kube-proxy.yaml" --v=1

  wait_for "node ${NODE_NAME} Ready" 90 kubelet node_ready
  KUBECTL_TIMEOUT=5 wait_for "ServiceAccount default/default" 60 kube-controller-manager NS_kubectl -n default get serviceaccount default
  wait_for "kube-proxy healthz" 30 kube-proxy NS curl -sf http://127.0.0.1:10256/healthz
  write_cluster_info
  log "cluster up in $((SECONDS - s)) s (total $((SECONDS - t0)) s); KUBECONFIG=${DIR}/kube/admin.kubeconfig inside netns ${NETNS}"
  log "try: hack/node.sh kubectl get nodes -o wide"
  printf '%s\n' "${DIR}/cluster.json"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  kubectl) shift; need_root; find_bin || die "binaries missing"; NS_kubectl "$@" ;;
  exec) shift; need_root; NS "$@" ;;
  *) printf 'usage: %s up|down|status|kubectl ARGS|exec CMD\n' "$0" >&2; exit 2 ;;
esac
