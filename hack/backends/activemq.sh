#!/usr/bin/env bash
# Apache ActiveMQ Classic for the activemq scaler test: the binary distribution from Maven Central
# (org.apache.activemq:apache-activemq:<version>:tar.gz:bin), unpacked into
# ~/.cache/keda-rs/activemq-<version>/ (idempotent: a finished cache is left alone); prints the path of the
# unpacked broker (its bin/activemq). The test starts it on free loopback ports (tests/scalers/activemq.rs).
set -euo pipefail

VERSION="${ACTIVEMQ_VERSION:-5.18.3}"
CACHE="${KEDA_RS_CACHE:-$HOME/.cache/keda-rs}"
DEST="$CACHE/activemq-$VERSION"

if [[ -f "$DEST/.complete" ]]; then
    echo "$DEST/apache-activemq-$VERSION"
    exit 0
fi

command -v java >/dev/null || { echo "activemq.sh: java (17+) is needed: apt-get install default-jre-headless" >&2; exit 1; }
command -v mvn >/dev/null || { echo "activemq.sh: mvn is needed: apt-get install maven" >&2; exit 1; }

rm -rf "$DEST"
mkdir -p "$DEST"
# Outside a project, the plugin writes its markers under ./${project.basedir}: run it in a scratch dir.
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
(cd "$WORK" && mvn -q -B dependency:unpack \
    -Dartifact="org.apache.activemq:apache-activemq:$VERSION:tar.gz:bin" \
    -DoutputDirectory="$DEST" >&2)
test -x "$DEST/apache-activemq-$VERSION/bin/activemq" || chmod +x "$DEST/apache-activemq-$VERSION/bin/activemq"
touch "$DEST/.complete"
echo "$DEST/apache-activemq-$VERSION"
