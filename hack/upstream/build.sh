#!/usr/bin/env bash
# Builds upstream KEDA (operator `keda`, metrics API server `keda-adapter`, `keda-admission-webhooks`)
# from the wrapper module in this directory (go.mod requires github.com/kedacore/keda/v2 and repeats
# its replace block, since replace directives only apply in the main module; tools.go keeps the three
# cmd/ packages in the build list). Also copies upstream's CRDs (config/crd/bases) next to the
# binaries, because the upstream operator's caches need all six, including eventing.keda.sh.
#
#   bash hack/upstream/build.sh     # -> ~/.cache/keda-rs/upstream-keda-<version>
#
# The cache dir holds bin/ and crd/ and a .complete marker; when the marker is there nothing is
# built (Go is not even needed). The build goes to <dir>.tmp and is renamed into place at the end,
# so an interrupted build never looks finished. GOCACHE and GOMODCACHE are temporary and removed
# afterwards (about 3.7 GB together): a build leaves only the binaries and CRDs behind.
# Progress goes to stderr; the last stdout line is the cache dir.
#
# Environment:
#   KEDA_RS_CACHE        cache root (default $HOME/.cache/keda-rs)
#   KEDA_RS_BUILD_JOBS   go build -p value (default 2)
#   GO                   go command (default: `go` on PATH; needs Go >= 1.26)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
log() { printf 'upstream-keda: %s\n' "$*" >&2; }
die() { printf 'upstream-keda: error: %s\n' "$*" >&2; exit 1; }

VERSION=$(awk '$1 == "require" && $2 == "github.com/kedacore/keda/v2" { sub(/^v/, "", $3); print $3; exit }' "$HERE/go.mod")
[[ -n $VERSION ]] || die "no 'require github.com/kedacore/keda/v2 vX.Y.Z' line in $HERE/go.mod"

CACHE_ROOT=${KEDA_RS_CACHE:-$HOME/.cache/keda-rs}
DEST=$CACHE_ROOT/upstream-keda-$VERSION
if [[ -f $DEST/.complete ]]; then
  echo "$DEST"
  exit 0
fi

GO=${GO:-go}
command -v "$GO" >/dev/null || die "go (>= 1.26) is needed to build upstream KEDA $VERSION once; set GO=/path/to/go"
mkdir -p "$CACHE_ROOT"

# One build at a time: a second caller waits, then finds the marker.
exec 9>"$CACHE_ROOT/.upstream-keda-$VERSION.lock"
flock 9
if [[ -f $DEST/.complete ]]; then
  echo "$DEST"
  exit 0
fi

TMP=$DEST.tmp
SCRATCH=$(mktemp -d "$CACHE_ROOT/.upstream-keda-go.XXXXXX")
trap 'chmod -R u+w "$SCRATCH" 2>/dev/null; rm -rf "$SCRATCH"' EXIT
rm -rf "$TMP"
mkdir -p "$TMP/bin" "$TMP/crd"

# Upstream's Makefile flags: CGO off, version stamped by -X, no stripping. -buildvcs=false: this
# wrapper is no checkout of KEDA. -modcacherw: the temporary module cache must be deletable.
export GOTOOLCHAIN=local GOWORK=off GO111MODULE=on CGO_ENABLED=0
export GOFLAGS="-mod=readonly -buildvcs=false -modcacherw"
export GOCACHE=$SCRATCH/gocache GOMODCACHE=$SCRATCH/gomodcache
LDFLAGS="-X=github.com/kedacore/keda/v2/version.GitCommit=unknown-modproxy -X=github.com/kedacore/keda/v2/version.Version=$VERSION"

cd "$HERE"
log "$("$GO" version); building $VERSION into $DEST"
t0=$(date +%s)
"$GO" mod download || die "go mod download failed (module proxy reachable? go.sum intact?)"
log "modules downloaded in $(( $(date +%s) - t0 ))s"

for spec in "keda operator" "keda-adapter adapter" "keda-admission-webhooks webhooks"; do
  read -r name pkg <<<"$spec"
  t=$(date +%s)
  "$GO" build -p "${KEDA_RS_BUILD_JOBS:-2}" -ldflags "$LDFLAGS" -o "$TMP/bin/$name" \
    "github.com/kedacore/keda/v2/cmd/$pkg" || die "go build of $name failed"
  log "$name built in $(( $(date +%s) - t ))s ($(( $(stat -c %s "$TMP/bin/$name") / 1048576 )) MiB)"
  "$TMP/bin/$name" --help >/dev/null 2>&1 || [[ $? -le 2 ]] || die "$name --help failed"
done

MODDIR=$("$GO" list -m -f '{{.Dir}}' github.com/kedacore/keda/v2) || die "cannot locate the keda module"
cp "$MODDIR"/config/crd/bases/*.yaml "$TMP/crd/" || die "no CRDs in $MODDIR/config/crd/bases"
chmod u+w "$TMP"/crd/*.yaml
log "$(ls "$TMP/crd" | wc -l) CRDs copied; $(( $(date +%s) - t0 ))s in total"

rm -rf "$DEST"
mv "$TMP" "$DEST"
touch "$DEST/.complete"
echo "$DEST"
