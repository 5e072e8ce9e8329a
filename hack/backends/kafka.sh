#!/usr/bin/env bash
# Apache Kafka (broker + KRaft controller in one JVM) for the kafka / apache-kafka scaler tests.
# Resolves org.apache.kafka:kafka_2.13 and its runtime dependencies from Maven Central into
# ~/.cache/keda-rs/kafka-<version>/libs/ (idempotent: a finished cache is left alone) and prints the path.
# The tests start it with `java -cp 'libs/*' kafka.Kafka server.properties` (tests/scalers/kafka.rs).
set -euo pipefail

VERSION="${KAFKA_VERSION:-4.1.1}"
CACHE="${KEDA_RS_CACHE:-$HOME/.cache/keda-rs}"
DEST="$CACHE/kafka-$VERSION"

if [[ -f "$DEST/.complete" ]]; then
    echo "$DEST"
    exit 0
fi

command -v java >/dev/null || { echo "kafka.sh: java (17+) is needed: apt-get install default-jre-headless" >&2; exit 1; }
command -v mvn >/dev/null || { echo "kafka.sh: mvn is needed: apt-get install maven" >&2; exit 1; }

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cat >"$WORK/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>keda-rs.backends</groupId>
  <artifactId>kafka-classpath</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$VERSION</version>
    </dependency>
    <!-- the broker logs through slf4j; without a binding it prints a warning and nothing else -->
    <dependency>
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-simple</artifactId>
      <version>1.7.36</version>
    </dependency>
  </dependencies>
</project>
POM

rm -rf "$DEST.tmp"
mkdir -p "$DEST.tmp/libs"
mvn -q -B -f "$WORK/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$DEST.tmp/libs" >&2
rm -rf "$DEST"
mv "$DEST.tmp" "$DEST"
touch "$DEST/.complete"
echo "$DEST"
