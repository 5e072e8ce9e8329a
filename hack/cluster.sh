#!/usr/bin/env bash
# A real, local Kubernetes control plane for keda-rs tests, made of upstream
# processes (etcd, kube-apiserver, kube-controller-manager, kube-scheduler)
# plus kwok, which plays the kubelet for fake nodes. No container runtime is
# needed: pods are scheduled onto kwok nodes and kwok fakes their status.
#
# Usage: hack/cluster.sh up|down|status|env|exec -- CMD [ARGS...]
#
# Everything runs inside the network namespace "keda-rs", joined to the host
# by a veth pair:  host keda-rs-h 10.200.0.2/24  <->  netns keda-rs-n 10.200.0.1/24
# The API server listens on https://10.200.0.1:6443 (reachable from the host
# and from inside the namespace). See hack/README.md for the details.
#
# Environment:
#   KEDA_CLUSTER_DIR              state dir (default <repo>/target/keda-cluster)
#   KEDA_CLUSTER_HPA_SYNC_PERIOD  kube-controller-manager HPA sync period (default 15s)
#   KEDA_CLUSTER_NODES            number of kwok nodes kwok-node-0.. (default 1)
#   KEDA_CLUSTER_TIMEOUT          seconds to wait for each readiness step (default 120)
#   KEDA_RS_CACHE                 binary cache root (see hack/build-k8s.sh)
set -euo pipefail

HACK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(git -C "$HACK_DIR" rev-parse --show-toplevel 2>/dev/null || (cd "$HACK_DIR/.." && pwd))
STATE_DIR=${KEDA_CLUSTER_DIR:-$REPO_DIR/target/keda-cluster}
case $STATE_DIR in /*) ;; *) STATE_DIR=$PWD/$STATE_DIR ;; esac

NETNS=keda-rs
VETH_HOST=keda-rs-h
VETH_NS=keda-rs-n
HOST_IP=10.200.0.2
NS_IP=10.200.0.1
PREFIX=24
API_PORT=6443
API_URL=https://$NS_IP:$API_PORT
SERVICE_CIDR=10.96.0.0/16
SERVICE_IP=10.96.0.1
POD_CIDR=10.244.0.0/16
ETCD_CLIENT_PORT=2379
ETCD_PEER_PORT=2380
KCM_PORT=10257
SCHED_PORT=10259
TIMEOUT=${KEDA_CLUSTER_TIMEOUT:-120}
HPA_SYNC=${KEDA_CLUSTER_HPA_SYNC_PERIOD:-15s}
NODES=${KEDA_CLUSTER_NODES:-1}

PKI=$STATE_DIR/pki
LOGS=$STATE_DIR/logs
PIDS=$STATE_DIR/pids
KUBECONFIG_FILE=$STATE_DIR/kubeconfig
# start order; stopped in reverse
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)

log() { printf 'cluster: %s\n' "$*" >&2; }
die() { printf 'cluster: error: %s\n' "$*" >&2; exit 1; }

usage() {
  cat >&2 <<EOF
usage: $0 up|down|status|env|exec -- CMD [ARGS...]
  up      start the cluster (or reuse a healthy one); last line: export KUBECONFIG=...
  down    stop everything, delete the network namespace and the state dir
  status  show the processes and /readyz; exit 0 when healthy
  env     print KUBECONFIG=... and KEDA_CLUSTER_BIN=... (and a few more) lines
  exec    run CMD inside the cluster's network namespace with KUBECONFIG set
          and the cluster binaries (kubectl, helm, ...) first on PATH
state dir: $STATE_DIR
EOF
  exit 2
}

need_root() {
  if [[ $(id -u) -ne 0 ]]; then
    die "'$1' needs root: it manages the network namespace '$NETNS' and a veth pair.
  Re-run as root, e.g.: sudo -E bash $0 $1"
  fi
}

need_tools() {
  local t missing=()
  for t in "$@"; do command -v "$t" >/dev/null 2>&1 || missing+=("$t"); done
  ((${#missing[@]} == 0)) ||
    die "missing tools: ${missing[*]} (on Debian: apt-get install iproute2 openssl curl util-linux)"
}

netns_exists() { [[ -e /run/netns/$NETNS ]]; }
in_ns() { ip netns exec "$NETNS" "$@"; }

bin_dir() {
  if [[ -s $STATE_DIR/bin-dir ]] && [[ -x $(cat "$STATE_DIR/bin-dir")/kubectl ]]; then
    cat "$STATE_DIR/bin-dir"
  else
    local out
    out=$(bash "$HACK_DIR/build-k8s.sh") || die "building the Kubernetes binaries failed (see above)"
    printf '%s\n' "$out" | tail -n1
  fi
}

# ---- process bookkeeping ----------------------------------------------------
pid_of() {
  local f=$PIDS/$1.pid pid
  [[ -s $f ]] || return 1
  pid=$(cat "$f")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  printf '%s' "$pid"
}

# True while a pid exists and is not a zombie.
running() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat%% *} != Z ]]
}

# When a pid started (clock ticks since boot, field 22 of /proc/PID/stat). A pid and its start time name
# one process: a pid freed and reused by another process has a later start time.
started_at() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) } # fields 3.. (the command name before may contain spaces)
  # shellcheck disable=SC2086
  set -- $stat
  printf '%s' "${20}"
}

# The command line of a pid, arguments separated by spaces (empty when the pid is gone).
cmdline() {
  tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline" || true
}

# "<binary> of <state dir>" for a leftover process of some cluster (its command line names its state
# dir, see alive), else its command line.
describe() {
  local words word dir
  read -ra words <<<"$(cmdline "$1")"
  for word in "${words[@]}"; do
    case $word in
      --data-dir=* | */kubeconfigs/* | */pki/*)
        dir=${word#*=}
        dir=${dir%/*}
        dir=${dir%/kubeconfigs}
        printf '%s of %s' "$(basename "$(cmdline "$1" | cut -d' ' -f1)")" "${dir%/pki}"
        return
        ;;
    esac
  done
  cmdline "$1" | cut -c1-200
}

# True when the recorded pid is alive and is ours:
# * it runs our binary, or is still one of the launchers that exec into it (`setsid ip netns exec nohup
#   [env] <binary>`: for a moment after start, longer on a busy machine, the pid is still setsid, ip, nohup
#   or, for kwok, env; if the exec fails, the launcher exits and the pid is gone);
# * its command line names this state dir (every component's does: data dir, certificates, kubeconfigs).
#   A pid file may be stale — the cluster was stopped without `down`, the machine rebooted — and pids are
#   reused (pid_max is often 32768): the pid may now be anything, or another checkout's etcd, and `down`
#   must not stop it as ours.
alive() {
  local pid exe
  pid=$(pid_of "$1") || return 1
  running "$pid" || return 1
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
  case $(basename "${exe% (deleted)}") in
    "$1" | setsid | ip | nohup | env) ;;
    *) return 1 ;;
  esac
  [[ $(cmdline "$pid") == *"$STATE_DIR/"* ]]
}

show_log_tail() {
  local f=$LOGS/$1.log
  if [[ -s $f ]]; then
    printf -- '----- last 30 lines of %s -----\n' "$f" >&2
    tail -n 30 "$f" >&2
    printf -- '-----\n' >&2
  else
    printf 'cluster: (no log output in %s)\n' "$f" >&2
  fi
}

fail_exited() {
  log "process '$1' exited early"
  show_log_tail "$1"
  die "'$1' is not running (state and logs kept in $STATE_DIR; run '$0 down' to clean up)"
}

check_running() {
  local c
  for c in "$@"; do alive "$c" || fail_exited "$c"; done
}

# Which process (inside the namespace) already listens on a TCP port, if any.
port_user() {
  in_ns ss -Hltnp "sport = :$1" 2>/dev/null | head -n1
}

check_port_free() {
  local who
  who=$(port_user "$1")
  if [[ -n $who ]]; then
    die "port $1 is already in use inside network namespace '$NETNS' (needed by $2):
  $who
  Is an old cluster still running? Try: $0 down"
  fi
}

start() { # name port cmd...
  local name=$1 port=$2
  shift 2
  [[ $port == - ]] || check_port_free "$port" "$name"
  # setsid+nohup: the process outlives this script and its terminal. Without
  # job control the background child is not a group leader, so setsid does
  # not fork and $! is the component's own pid (ip netns exec and nohup exec).
  setsid ip netns exec "$NETNS" nohup "$@" >"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$PIDS/$name.pid"
  log "started $name (pid $!), log: $LOGS/$name.log"
}

# Wait until a command succeeds, failing fast when a watched process dies.
wait_for() { # description "watched components" cmd...
  local what=$1 watched=$2 deadline=$((SECONDS + TIMEOUT))
  shift 2
  until "$@" >/dev/null 2>&1; do
    # shellcheck disable=SC2086
    check_running $watched
    if ((SECONDS >= deadline)); then
      log "timed out after ${TIMEOUT}s waiting for $what"
      local c
      for c in $watched; do show_log_tail "$c"; done
      die "timed out waiting for $what (state and logs kept in $STATE_DIR)"
    fi
    sleep 0.5
  done
}

readyz() {
  curl -fsS --max-time 3 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
    "$API_URL/readyz" >/dev/null 2>&1
}

healthy() {
  local c
  [[ -d $STATE_DIR ]] && netns_exists || return 1
  for c in "${COMPONENTS[@]}"; do alive "$c" || return 1; done
  [[ -s $KUBECONFIG_FILE ]] && readyz
}

# ---- network ----------------------------------------------------------------
setup_network() {
  if ! netns_exists; then
    # Refuse to shadow an address range the host already uses.
    if ip -o addr show | grep -v " $VETH_HOST " | grep -q ' inet 10\.200\.0\.'; then
      die "the host already has an address in 10.200.0.0/24 on another interface:
$(ip -o addr show | grep ' inet 10\.200\.0\.')"
    fi
    ip netns add "$NETNS"
  fi
  in_ns ip link set lo up
  if ! ip link show "$VETH_HOST" >/dev/null 2>&1; then
    in_ns ip link del "$VETH_NS" >/dev/null 2>&1 || true
    ip link add "$VETH_HOST" type veth peer name "$VETH_NS"
    ip link set "$VETH_NS" netns "$NETNS"
  fi
  ip addr replace "$HOST_IP/$PREFIX" dev "$VETH_HOST"
  ip link set "$VETH_HOST" up
  in_ns ip addr replace "$NS_IP/$PREFIX" dev "$VETH_NS"
  in_ns ip link set "$VETH_NS" up
  # Deliberately no default route: processes in the namespace reach only
  # 10.200.0.0/24 (e.g. webhooks or aggregated APIs served from the host side
  # on 10.200.0.2), never anything beyond this machine.
}

teardown_network() {
  ip link del "$VETH_HOST" >/dev/null 2>&1 || true
  if netns_exists; then
    ip netns del "$NETNS" >/dev/null 2>&1 || true
  fi
}

# ---- certificates -----------------------------------------------------------
newkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; chmod 600 "$1"; }

new_ca() { # name CN
  [[ -s $PKI/$1.crt ]] && return 0
  newkey "$PKI/$1.key"
  openssl req -x509 -new -key "$PKI/$1.key" -subj "/CN=$2" -days 3650 -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
    -out "$PKI/$1.crt" 2>/dev/null
}

new_cert() { # name CA subject usage [SANs]
  local name=$1 ca=$2 subj=$3 usage=$4 sans=${5:-}
  [[ -s $PKI/$name.crt ]] && return 0
  newkey "$PKI/$name.key"
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$usage"
    [[ -n $sans ]] && echo "subjectAltName=$sans"
  } >"$PKI/$name.ext"
  openssl req -new -key "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr" 2>/dev/null
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/$ca.crt" -CAkey "$PKI/$ca.key" \
    -CAcreateserial -days 825 -sha256 -extfile "$PKI/$name.ext" -out "$PKI/$name.crt" 2>/dev/null
  rm -f "$PKI/$name.csr" "$PKI/$name.ext"
}

gen_pki() {
  mkdir -p "$PKI"
  chmod 700 "$PKI"
  new_ca ca keda-rs-cluster-ca
  new_ca front-proxy-ca keda-rs-front-proxy-ca
  new_cert apiserver ca /CN=kube-apiserver serverAuth \
    "IP:$NS_IP,IP:127.0.0.1,IP:$SERVICE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  new_cert admin ca "/O=system:masters/CN=kubernetes-admin" clientAuth
  new_cert controller-manager ca /CN=system:kube-controller-manager clientAuth
  new_cert scheduler ca /CN=system:kube-scheduler clientAuth
  new_cert front-proxy-client front-proxy-ca /CN=front-proxy-client clientAuth
  if [[ ! -s $PKI/sa.key ]]; then
    newkey "$PKI/sa.key"
    openssl pkey -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
  fi
}

write_kubeconfig() { # file server user
  local b64="base64 -w0"
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: keda-rs
  cluster:
    server: $2
    certificate-authority-data: $($b64 <"$PKI/ca.crt")
users:
- name: $3
  user:
    client-certificate-data: $($b64 <"$PKI/$3.crt")
    client-key-data: $($b64 <"$PKI/$3.key")
contexts:
- name: keda-rs
  context:
    cluster: keda-rs
    user: $3
current-context: keda-rs
EOF
  chmod 600 "$1"
}

node_manifest() { # name
  cat <<EOF
apiVersion: v1
kind: Node
metadata:
  name: $1
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    type: kwok
    kubernetes.io/arch: amd64
    kubernetes.io/os: linux
    kubernetes.io/hostname: $1
spec: {}
status:
  capacity:
    cpu: "32"
    memory: 256Gi
    pods: "110"
  allocatable:
    cpu: "32"
    memory: 256Gi
    pods: "110"
EOF
}

# ---- commands ---------------------------------------------------------------
cmd_up() {
  need_root up
  need_tools ip openssl curl setsid nohup ss
  local bin out start_time=$SECONDS
  out=$(bash "$HACK_DIR/build-k8s.sh") || die "building the Kubernetes binaries failed (see above)"
  bin=$(printf '%s\n' "$out" | tail -n1)

  if healthy; then
    log "cluster already running and healthy ($STATE_DIR)"
    echo "$bin" >"$STATE_DIR/bin-dir"
    echo "export KUBECONFIG=$KUBECONFIG_FILE"
    return 0
  fi
  # Whatever is left from before is removed, so that `up` never needs a manual step: this state dir from
  # a stopped, failed or interrupted (Ctrl-C) `up`, stale pid files, the namespace and veth with or
  # without processes whose state dir is gone, or another checkout's cluster holding the namespace and
  # its ports (one cluster per machine: the namespace name and addresses are fixed).
  if [[ -d $STATE_DIR ]] || netns_exists || ip link show "$VETH_HOST" >/dev/null 2>&1; then
    log "found a stopped, unhealthy or other checkout's cluster; cleaning it up first"
    cmd_down
  fi

  mkdir -p "$STATE_DIR" "$LOGS" "$PIDS" "$STATE_DIR/etcd" "$STATE_DIR/kubeconfigs" "$STATE_DIR/kwok-home"
  chmod 700 "$STATE_DIR/etcd"
  echo "$bin" >"$STATE_DIR/bin-dir"
  setup_network
  gen_pki
  write_kubeconfig "$KUBECONFIG_FILE" "$API_URL" admin
  local local_api=https://127.0.0.1:$API_PORT
  write_kubeconfig "$STATE_DIR/kubeconfigs/controller-manager" "$local_api" controller-manager
  write_kubeconfig "$STATE_DIR/kubeconfigs/scheduler" "$local_api" scheduler
  write_kubeconfig "$STATE_DIR/kubeconfigs/kwok" "$local_api" admin

  start etcd "$ETCD_CLIENT_PORT" "$bin/etcd" \
    --name=keda-rs \
    --data-dir="$STATE_DIR/etcd" \
    --listen-client-urls="http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --advertise-client-urls="http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster="keda-rs=http://127.0.0.1:$ETCD_PEER_PORT" \
    --unsafe-no-fsync=true \
    --log-level=warn
  wait_for "etcd" "etcd" in_ns curl -fsS --max-time 2 "http://127.0.0.1:$ETCD_CLIENT_PORT/health"

  start kube-apiserver "$API_PORT" "$bin/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --bind-address=0.0.0.0 \
    --secure-port="$API_PORT" \
    --advertise-address="$NS_IP" \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --tls-cert-file="$PKI/apiserver.crt" \
    --tls-private-key-file="$PKI/apiserver.key" \
    --client-ca-file="$PKI/ca.crt" \
    --authorization-mode=Node,RBAC \
    --allow-privileged=true \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$PKI/sa.pub" \
    --service-account-signing-key-file="$PKI/sa.key" \
    --requestheader-client-ca-file="$PKI/front-proxy-ca.crt" \
    --requestheader-allowed-names=front-proxy-client \
    --requestheader-extra-headers-prefix=X-Remote-Extra- \
    --requestheader-group-headers=X-Remote-Group \
    --requestheader-username-headers=X-Remote-User \
    --proxy-client-cert-file="$PKI/front-proxy-client.crt" \
    --proxy-client-key-file="$PKI/front-proxy-client.key" \
    --enable-aggregator-routing=true \
    --profiling=false \
    --v=1
  wait_for "kube-apiserver /readyz" "etcd kube-apiserver" readyz

  start kube-controller-manager "$KCM_PORT" "$bin/kube-controller-manager" \
    --kubeconfig="$STATE_DIR/kubeconfigs/controller-manager" \
    --authentication-kubeconfig="$STATE_DIR/kubeconfigs/controller-manager" \
    --authorization-kubeconfig="$STATE_DIR/kubeconfigs/controller-manager" \
    --bind-address=127.0.0.1 \
    --secure-port="$KCM_PORT" \
    --leader-elect=false \
    --controllers='*' \
    --use-service-account-credentials=true \
    --service-account-private-key-file="$PKI/sa.key" \
    --root-ca-file="$PKI/ca.crt" \
    --cluster-signing-cert-file="$PKI/ca.crt" \
    --cluster-signing-key-file="$PKI/ca.key" \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --horizontal-pod-autoscaler-sync-period="$HPA_SYNC" \
    --profiling=false \
    --v=1

  start kube-scheduler "$SCHED_PORT" "$bin/kube-scheduler" \
    --kubeconfig="$STATE_DIR/kubeconfigs/scheduler" \
    --authentication-kubeconfig="$STATE_DIR/kubeconfigs/scheduler" \
    --authorization-kubeconfig="$STATE_DIR/kubeconfigs/scheduler" \
    --bind-address=127.0.0.1 \
    --secure-port="$SCHED_PORT" \
    --leader-elect=false \
    --profiling=false \
    --v=1

  # HOME points at the state dir so that a personal ~/.kwok/kwok.yaml is not
  # merged into the configuration.
  start kwok - env HOME="$STATE_DIR/kwok-home" "$bin/kwok" \
    --kubeconfig="$STATE_DIR/kubeconfigs/kwok" \
    --config="$HACK_DIR/kwok-stages.yaml" \
    --manage-all-nodes=false \
    --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
    --manage-nodes-with-label-selector= \
    --node-ip="$NS_IP" \
    --cidr="$POD_CIDR" \
    --node-lease-duration-seconds=40
  sleep 0.5
  check_running "${COMPONENTS[@]}"

  local kubectl=("$bin/kubectl" --kubeconfig="$KUBECONFIG_FILE")
  local i name
  for ((i = 0; i < NODES; i++)); do
    name=kwok-node-$i
    node_manifest "$name" | "${kubectl[@]}" apply -f - >/dev/null ||
      die "creating node $name failed"
  done
  for ((i = 0; i < NODES; i++)); do
    wait_for "node kwok-node-$i to become Ready" "${COMPONENTS[*]}" \
      "${kubectl[@]}" wait --for=condition=Ready "node/kwok-node-$i" --timeout=2s
  done
  # Pods can only be created once the 'default' ServiceAccount exists.
  wait_for "the default ServiceAccount" "${COMPONENTS[*]}" \
    "${kubectl[@]}" -n default get serviceaccount default
  check_running "${COMPONENTS[@]}"
  log "cluster up in $((SECONDS - start_time))s: API $API_URL, state $STATE_DIR"
  echo "export KUBECONFIG=$KUBECONFIG_FILE"
}

# The process is compared by pid and start time, so that a pid reused while we wait is not taken for it.
still_running() { # pid start-time
  running "$1" && [[ $(started_at "$1") == "$2" ]]
}

stop_pid() { # name pid
  local name=$1 pid=$2 since i
  since=$(started_at "$pid") || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 100; i++)); do
    still_running "$pid" "$since" || return 0
    sleep 0.1
  done
  log "$name (pid $pid) did not stop after TERM; sending KILL"
  kill -KILL "$pid" 2>/dev/null || true
  # Wait for it to be gone: removing the state dir while etcd still writes into it can fail.
  for ((i = 0; i < 50; i++)); do
    still_running "$pid" "$since" || return 0
    sleep 0.1
  done
}

# The pids, the most recently started first (the reverse of start order: clients before their servers).
newest_first() { # pid...
  local pid
  for pid in "$@"; do
    printf '%s %s\n' "$(started_at "$pid" || echo 0)" "$pid"
  done | sort -rn | cut -d' ' -f2
}

cmd_down() {
  need_root down
  local i c pid
  for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do
    c=${COMPONENTS[i]}
    if alive "$c"; then
      pid=$(pid_of "$c")
      log "stopping $c (pid $pid)"
      stop_pid "$c" "$pid"
    fi
  done
  # Anything else still inside our namespace was started through this script: 'exec' leftovers (a test
  # or demo process), components whose pid file or whole state dir was lost (`cargo clean`, `rm -rf` of a
  # checkout), or another checkout's cluster (one cluster per machine). The command line shows whose.
  # Newest first, as above: a kube-apiserver whose etcd is gone waits out the whole TERM grace period.
  if netns_exists; then
    # shellcheck disable=SC2046 # one pid per word
    for pid in $(newest_first $(ip netns pids "$NETNS" 2>/dev/null)); do
      log "stopping leftover process $pid in namespace $NETNS: $(describe "$pid")"
      stop_pid "pid $pid" "$pid"
    done
  fi
  teardown_network
  if [[ -d $STATE_DIR ]]; then
    rm -rf "$STATE_DIR"
  fi
  log "cluster down"
}

cmd_status() {
  local c pid ok=0
  if [[ ! -d $STATE_DIR ]]; then
    echo "cluster: not running (no state dir $STATE_DIR)"
    return 1
  fi
  if netns_exists; then echo "netns $NETNS: present"; else echo "netns $NETNS: missing"; ok=1; fi
  for c in "${COMPONENTS[@]}"; do
    if alive "$c"; then
      printf '%-24s running (pid %s)\n' "$c" "$(pid_of "$c")"
    else
      printf '%-24s NOT running (log: %s)\n' "$c" "$LOGS/$c.log"
      ok=1
    fi
  done
  if [[ -s $PKI/admin.crt ]] && readyz; then
    echo "apiserver $API_URL/readyz: ok"
  else
    echo "apiserver $API_URL/readyz: FAILED"
    ok=1
  fi
  if ((ok == 0)); then echo "healthy"; else echo "unhealthy"; fi
  return $ok
}

cmd_env() {
  local bin
  bin=$(bin_dir)
  echo "KUBECONFIG=$KUBECONFIG_FILE"
  echo "KEDA_CLUSTER_BIN=$bin"
  echo "KEDA_CLUSTER_DIR=$STATE_DIR"
  echo "KEDA_CLUSTER_NETNS=$NETNS"
  echo "KEDA_CLUSTER_APISERVER=$API_URL"
  echo "KEDA_CLUSTER_HOST_IP=$HOST_IP"
}

cmd_exec() {
  need_root exec
  [[ $# -gt 0 ]] || usage
  netns_exists || die "network namespace '$NETNS' does not exist; run '$0 up' first"
  local bin
  bin=$(bin_dir)
  exec ip netns exec "$NETNS" env KUBECONFIG="$KUBECONFIG_FILE" KEDA_CLUSTER_BIN="$bin" \
    PATH="$bin:$PATH" "$@"
}

case ${1:-} in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  env) cmd_env ;;
  exec)
    shift
    [[ ${1:-} == -- ]] && shift
    cmd_exec "$@"
    ;;
  *) usage ;;
esac
