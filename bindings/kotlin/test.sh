#!/usr/bin/env bash
# The Kotlin/JVM binding: uniffi's Kotlin generated from the library built
# here, the library put in the jar where JNA finds it, then `mvn verify`
# (JUnit against a real server; grpc-java stubs from our .proto). Maven
# fetches its plugins and artifacts from Maven Central into ~/.m2 the first
# time. Needs the release server binary.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$here/../.."
target="${CARGO_TARGET_DIR:-$root/target}"
work="$target/bindings/kotlin"
rm -rf "$work" && mkdir -p "$work/generated" "$work/native/linux-x86-64"
"$here/../uniffi/generate.sh" kotlin "$work/generated"
lib="$target/${BLINDMATCH_BINDINGS_PROFILE:-dist}/libblindmatch_uniffi.so"
cp "$lib" "$work/native/linux-x86-64/"
cd "$here"
mvn --batch-mode --no-transfer-progress -q verify \
  -Duniffi.generated="$work/generated" -Duniffi.native="$work/native" \
  -Dmaven.repo.local="${BLINDMATCH_M2:-$HOME/.m2/repository}"
jar="$here/target/blindmatch-0.1.0.jar"
jar tf "$jar" | grep -qx 'linux-x86-64/libblindmatch_uniffi.so' \
  || { echo "kotlin: the jar does not carry the native library" >&2; exit 1; }
ran="$(cat "$here"/target/surefire-reports/TEST-*.xml | grep -o '<testsuite [^>]*' | grep -o ' tests="[0-9]*"' | grep -o '[0-9]*' | awk '{ s += $1 } END { print s + 0 }')"
[ "${ran:-0}" -gt 0 ] || { echo "kotlin: no tests ran" >&2; exit 1; }
echo "kotlin: $(basename "$jar") ($(du -k "$jar" | cut -f1) KiB, native library included); $ran tests passed"
