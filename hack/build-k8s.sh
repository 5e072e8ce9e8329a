#!/usr/bin/env bash
# Builds the upstream control-plane binaries used by hack/cluster.sh from the
# Go modules pinned in hack/k8s/go.mod and hack/kwok/go.mod:
#
#   kube-apiserver kube-controller-manager kube-scheduler kubectl helm etcd
#   (module hack/k8s)  and  kwok (module hack/kwok)
#
# Binaries go to ${KEDA_RS_CACHE:-$HOME/.cache/keda-rs}/<key>/bin where <key>
# names the pinned versions, so a second run with everything present costs
# nothing (Go is not even needed then). Progress goes to stderr; the last
# line on stdout is the bin directory.
#
# Environment:
#   KEDA_RS_CACHE        cache root (default $HOME/.cache/keda-rs)
#   KEDA_RS_BUILD_JOBS   go build -p value (default 2)
#   GO                   go command to use (default: `go` on PATH)
#   KEDA_RS_KEEP_GO_CACHES  keep Go's build/module caches (default: a scratch dir removed on exit)
set -euo pipefail

HACK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
K8S_MOD_DIR=$HACK_DIR/k8s
KWOK_MOD_DIR=$HACK_DIR/kwok

log() { printf 'build-k8s: %s\n' "$*" >&2; }
die() { printf 'build-k8s: error: %s\n' "$*" >&2; exit 1; }

# Version of a required module, read straight from a go.mod (no Go needed).
modver() {
  awk -v m="$2" '
    $1 == "require" && $2 == m { print $3; exit }
    $1 == m && $2 ~ /^v/       { print $2; exit }
  ' "$1"
}

K8S_VERSION=$(modver "$K8S_MOD_DIR/go.mod" k8s.io/kubernetes)
HELM_VERSION=$(modver "$K8S_MOD_DIR/go.mod" helm.sh/helm/v3)
ETCD_VERSION=$(modver "$K8S_MOD_DIR/go.mod" go.etcd.io/etcd/server/v3)
KWOK_VERSION=$(modver "$KWOK_MOD_DIR/go.mod" sigs.k8s.io/kwok)
[[ -n $K8S_VERSION && -n $HELM_VERSION && -n $ETCD_VERSION && -n $KWOK_VERSION ]] ||
  die "could not read pinned versions from hack/k8s/go.mod and hack/kwok/go.mod"

CACHE_ROOT=${KEDA_RS_CACHE:-$HOME/.cache/keda-rs}
BIN_DIR=$CACHE_ROOT/k8s-$K8S_VERSION-kwok-$KWOK_VERSION-helm-$HELM_VERSION/bin

# name|module dir|package
TARGETS=(
  "etcd|$K8S_MOD_DIR|keda-rs.local/hack/k8s/cmd/etcd"
  "kube-apiserver|$K8S_MOD_DIR|k8s.io/kubernetes/cmd/kube-apiserver"
  "kube-controller-manager|$K8S_MOD_DIR|k8s.io/kubernetes/cmd/kube-controller-manager"
  "kube-scheduler|$K8S_MOD_DIR|k8s.io/kubernetes/cmd/kube-scheduler"
  "kubectl|$K8S_MOD_DIR|k8s.io/kubernetes/cmd/kubectl"
  "helm|$K8S_MOD_DIR|helm.sh/helm/v3/cmd/helm"
  "kwok|$KWOK_MOD_DIR|sigs.k8s.io/kwok/cmd/kwok"
)

missing=()
for t in "${TARGETS[@]}"; do
  name=${t%%|*}
  [[ -x $BIN_DIR/$name ]] || missing+=("$t")
done
if ((${#missing[@]} == 0)); then
  log "all binaries present in $BIN_DIR"
  echo "$BIN_DIR"
  exit 0
fi

# ---- Go toolchain checks ---------------------------------------------------
GO=${GO:-go}
if ! command -v "$GO" >/dev/null 2>&1; then
  if [[ -x /usr/local/go/bin/go ]]; then
    GO=/usr/local/go/bin/go
  else
    die "Go toolchain not found (looked for '$GO' on PATH and /usr/local/go/bin/go).
  Install Go >= 1.26 and put it on PATH (or set GO=/path/to/go), then re-run."
  fi
fi
export GOTOOLCHAIN=local # never try to download another toolchain
export GOWORK=off         # the pinned modules stand alone
gover=$("$GO" env GOVERSION 2>/dev/null) || die "'$GO env GOVERSION' failed; is the Go installation broken?"
need=$(awk '$1 == "go" { print $2; exit }' "$KWOK_MOD_DIR/go.mod")
if [[ $(printf '%s\n%s\n' "go$need" "$gover" | sort -V | head -n1) != "go$need" ]]; then
  die "Go $gover is too old: the pinned modules need go >= $need"
fi

# One binary at a time with at most KEDA_RS_BUILD_JOBS compile jobs keeps the
# peak memory use of the big links (kube-apiserver) at a few GiB on 2 cores.
JOBS=${KEDA_RS_BUILD_JOBS:-2}
export CGO_ENABLED=0 # static binaries, like upstream releases; no C compiler needed
export GOFLAGS="-mod=readonly -buildvcs=false"

mkdir -p "$BIN_DIR"
# Serialize concurrent invocations (e.g. parallel test processes).
exec 9>"$BIN_DIR/.build.lock"
if ! flock -n 9; then
  log "another build is running for $BIN_DIR; waiting for it"
  flock 9
fi

# Release timestamp of a module as recorded by the module proxy (deterministic
# "build date" for the version stamp).
modtime() {
  "$GO" list -C "$1" -m -f '{{if .Time}}{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}{{end}}' "$2" 2>/dev/null || true
}

ldflags_for() {
  local name=$1 flags="-s -w"
  case $name in
    kube-* | kubectl)
      local ver=${K8S_VERSION#v} date
      local major=${ver%%.*} minor=${ver#*.}
      minor=${minor%%.*}
      date=$(modtime "$K8S_MOD_DIR" k8s.io/kubernetes)
      for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        flags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
        # gitCommit: the published module does not record the release commit;
        # leave it empty rather than showing the "$Format:%H$" placeholder.
        flags+=" -X $pkg.gitTreeState=archive -X $pkg.gitCommit="
        flags+=" -X $pkg.buildDate=${date:-1970-01-01T00:00:00Z}"
      done
      ;;
    helm)
      flags+=" -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
      flags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
      local ver=${K8S_VERSION#v}
      # helm reports the Kubernetes version it targets from client-go's stamp.
      flags+=" -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION"
      flags+=" -X k8s.io/client-go/pkg/version.gitMajor=${ver%%.*}"
      ver=${ver#*.}
      flags+=" -X k8s.io/client-go/pkg/version.gitMinor=${ver%%.*}"
      ;;
    kwok)
      flags+=" -X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v}"
      ;;
    etcd)
      flags+=" -X go.etcd.io/etcd/api/v3/version.GitSHA=module-$ETCD_VERSION"
      ;;
  esac
  printf '%s' "$flags"
}

# Go's build and module caches (about 5 GB after this build) are of no use once the binaries are cached:
# keep them in a scratch directory removed on exit, so a cold run leaves only the binaries on disk.
# KEDA_RS_KEEP_GO_CACHES=1 uses Go's usual caches instead (faster rebuilds while changing hack/k8s).
if [[ -z ${KEDA_RS_KEEP_GO_CACHES:-} ]]; then
  GO_SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/keda-rs-go.XXXXXX")
  trap 'rm -rf "$GO_SCRATCH"' EXIT
  export GOCACHE=$GO_SCRATCH/build GOMODCACHE=$GO_SCRATCH/mod GOFLAGS="${GOFLAGS:+$GOFLAGS }-modcacherw"
fi

total_start=$SECONDS
for t in "${missing[@]}"; do
  IFS='|' read -r name dir pkg <<<"$t"
  [[ -x $BIN_DIR/$name ]] && continue # built by a concurrent run meanwhile
  log "building $name ($pkg) ..."
  start=$SECONDS
  tmp=$BIN_DIR/.$name.tmp.$$
  if ! "$GO" build -C "$dir" -p "$JOBS" -trimpath -ldflags "$(ldflags_for "$name")" -o "$tmp" "$pkg" >&2; then
    rm -f "$tmp"
    die "go build of $name ($pkg, module hack/${dir#"$HACK_DIR"/}) failed; see the output above
  (a compile error, or a module download failure if the Go module proxy is unreachable)"
  fi
  mv -f "$tmp" "$BIN_DIR/$name"
  log "built $name in $((SECONDS - start))s"
done
log "done in $((SECONDS - total_start))s: $BIN_DIR"
echo "$BIN_DIR"
