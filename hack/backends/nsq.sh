#!/usr/bin/env bash
# NSQ (nsqd + nsqlookupd) for the nsq scaler test (crates/keda-scalers/tests/scalers/nsq.rs).
# Builds both daemons from the Go module github.com/nsqio/nsq into
# ~/.cache/keda-rs/nsq-<version>/bin/ (idempotent: a finished cache is left alone) and prints the path.
# nsq's go.mod carries a replace directive that a dependent module does not inherit, so the build goes
# through a small wrapper module that requires nsq and repeats that replace.
set -euo pipefail

VERSION="${NSQ_VERSION:-1.3.0}"
CACHE="${KEDA_RS_CACHE:-$HOME/.cache/keda-rs}"
DEST="$CACHE/nsq-$VERSION"

if [[ -f "$DEST/.complete" ]]; then
    echo "$DEST"
    exit 0
fi

command -v go >/dev/null || { echo "nsq.sh: go (1.21+) is needed" >&2; exit 1; }

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cat >"$WORK/go.mod" <<MOD
module keda-rs.backends/nsq

go 1.21

require github.com/nsqio/nsq v$VERSION

replace github.com/judwhite/go-svc => github.com/mreiferson/go-svc v1.2.2-0.20210815184239-7a96e00010f6
MOD
cat >"$WORK/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "github.com/nsqio/nsq/apps/nsqd"
	_ "github.com/nsqio/nsq/apps/nsqlookupd"
)
GO

# Build and module caches live in the scratch directory and go with it: only the binaries stay on disk.
export GOFLAGS="-mod=mod -modcacherw" GOCACHE="$WORK/gocache" GOMODCACHE="$WORK/gomod"
rm -rf "$DEST.tmp"
mkdir -p "$DEST.tmp/bin"
(
    cd "$WORK"
    go mod tidy -e >&2 || true
    go build -o "$DEST.tmp/bin/nsqd" github.com/nsqio/nsq/apps/nsqd >&2
    go build -o "$DEST.tmp/bin/nsqlookupd" github.com/nsqio/nsq/apps/nsqlookupd >&2
)
rm -rf "$DEST"
mv "$DEST.tmp" "$DEST"
touch "$DEST/.complete"
echo "$DEST"
