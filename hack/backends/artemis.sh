#!/usr/bin/env bash
# Apache ActiveMQ Artemis for the artemis-queue scaler test: the binary distribution from Maven Central
# (org.apache.activemq:apache-artemis:<version>:tar.gz:bin), unpacked into
# ~/.cache/keda-rs/artemis-<version>/ (idempotent: a finished cache is left alone); prints the path of the
# unpacked distribution (its bin/artemis). The test creates a broker instance in a scratch directory
# (`artemis create`) and runs it on free loopback ports (tests/artemis.rs).
set -euo pipefail

VERSION="${ARTEMIS_VERSION:-2.40.0}"
CACHE="${KEDA_RS_CACHE:-$HOME/.cache/keda-rs}"
DEST="$CACHE/artemis-$VERSION"

if [[ -f "$DEST/.complete" ]]; then
    echo "$DEST/apache-artemis-$VERSION"
    exit 0
fi

command -v java >/dev/null || { echo "artemis.sh: java (17+) is needed: apt-get install default-jre-headless" >&2; exit 1; }
command -v mvn >/dev/null || { echo "artemis.sh: mvn is needed: apt-get install maven" >&2; exit 1; }

rm -rf "$DEST"
mkdir -p "$DEST"
# Outside a project, the plugin writes its markers under ./${project.basedir}: run it in a scratch dir.
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
(cd "$WORK" && mvn -q -B dependency:unpack \
    -Dartifact="org.apache.activemq:apache-artemis:$VERSION:tar.gz:bin" \
    -DoutputDirectory="$DEST" >&2)
touch "$DEST/.complete"
echo "$DEST/apache-artemis-$VERSION"
