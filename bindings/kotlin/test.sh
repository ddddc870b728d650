#!/usr/bin/env bash
# The Kotlin/JVM binding, as a user gets it: `mvn install` in
# bindings/kotlin (native.sh builds the library and uniffi's Kotlin; JUnit
# against a real server; the jar with the library inside, into the local
# Maven repository), then a scratch project that depends on
# org.blindmatch:blindmatch like an app, compiles against it and runs.
# Maven fetches its plugins and artifacts from Maven Central into the local
# repository (BLINDMATCH_M2, else ~/.m2/repository) the first time.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
m2="${BLINDMATCH_M2:-$HOME/.m2/repository}"
mvn=(mvn --batch-mode --no-transfer-progress -q -Dstyle.color=never "-Dmaven.repo.local=$m2")
version="$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' "$root/Cargo.toml")"

cd "$here"
"${mvn[@]}" install -Dcargo.profile="${BLINDMATCH_BINDINGS_PROFILE:-dist}"
jar="$here/target/blindmatch-$version.jar"
grep -qx 'linux-x86-64/libblindmatch_uniffi.so' <<<"$(jar tf "$jar")" \
  || { echo "kotlin: the jar does not carry the native library" >&2; exit 1; }
ran="$(cat "$here"/target/surefire-reports/TEST-*.xml | grep -o '<testsuite [^>]*' | grep -o ' tests="[0-9]*"' | grep -o '[0-9]*' | awk '{ s += $1 } END { print s + 0 }')"
[ "${ran:-0}" -gt 0 ] || { echo "kotlin: no tests ran" >&2; exit 1; }
echo "kotlin: $(basename "$jar") ($(du -k "$jar" | cut -f1) KiB, native library included)"

scratch="$target/bindings/kotlin-scratch"
rm -rf "$scratch" && mkdir -p "$scratch" && cp -r "$here/scratch/." "$scratch/"
(cd "$scratch" && "${mvn[@]}" package exec:java -Dblindmatch.version="$version")
echo "kotlin: $ran tests passed"
