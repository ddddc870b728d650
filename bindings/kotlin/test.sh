#!/usr/bin/env bash
# The Kotlin/JVM binding, as a user gets it: `mvn install` in
# bindings/kotlin (native.sh builds the library and uniffi's Kotlin; JUnit
# against a real server; the jar with the library inside, into the local
# Maven repository); REFERENCE.md checked against the code's KDoc
# (reference.py --check); then a scratch project that depends on
# org.blindmatch:blindmatch like an app, compiles against it with the
# examples copied in, and runs each example against a real server (and the
# quickstart again with another gRPC transport in the jar's one's place).
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
# REFERENCE.md is what the code's KDoc gives (Dokka over the client and
# uniffi's Kotlin, joined by reference.py); it fails naming the file.
BLINDMATCH_M2="$m2" python3 "$here/reference.py" --check

# The app's project: the jar from the local repository, the examples copied
# in as a user copies them (src/main/kotlin/org/blindmatch/example/*.kt).
scratch="$target/bindings/kotlin-scratch"
rm -rf "$scratch" && mkdir -p "$scratch" && cp -r "$here/scratch/." "$scratch/"
examples="$here/src/main/kotlin/org/blindmatch/example"
cp "$examples/Quickstart.kt" "$examples/Threshold.kt" "$examples/Refused.kt" "$scratch/src/main/kotlin/"
(cd "$scratch" && "${mvn[@]}" package exec:java -Dblindmatch.version="$version")

# Each example against a real server (bindings/testkit/server.sh): version 1
# and threshold mode (t = 3, s = 2).
kit="$root/bindings/testkit/server.sh"
v1="$(mktemp -d)" th="$(mktemp -d)"
trap '"$kit" stop "$v1" || true; "$kit" stop "$th" || true; rm -rf "$v1" "$th"' EXIT
"$kit" start "$v1"
BLINDMATCH_THRESHOLD=3:2 "$kit" start "$th"
fail() { echo "kotlin: example $*" >&2; exit 1; }
# run NAME EXPECTED_EXIT ARGS...: `mvn exec:java` in the scratch project;
# the example's output (less Maven's colour codes) in $out and $err.
run() {
  local name="$1" want="$2" rc=0
  shift 2
  (cd "$scratch" && "${mvn[@]}" "${profile[@]}" exec:java -Dblindmatch.version="$version" \
    -Dexec.mainClass="org.blindmatch.example.${name}Kt" -Dexec.args="$*") \
    > "$scratch/out" 2> "$scratch/err" || rc=$?
  out="$(sed 's/\x1b\[[0-9;]*m//g' "$scratch/out" | grep -v '^$' || true)"
  err="$(sed 's/\x1b\[[0-9;]*m//g' "$scratch/err" | grep -v '^$' || true)"
  [ "$rc" = "$want" ] || fail "$name exited $rc, not $want: $out $err"
}
profile=()
url() { cat "$1/url"; }
key() { cat "$1/operator.sign.pub"; }
unlisted="sha256:$(printf 'cd%.0s' $(seq 32))"

run Quickstart 0 "$(url "$v1")" "$(key "$v1")" "$scratch/cache" "$(sed -n 1p "$v1/listed.txt" | tr ' ' ':'):copied-quickstart" "$unlisted"
[ "$out" = "2 vouchers acknowledged" ] || fail "Quickstart printed: $out"
grep -q '"associated_data": "copied-quickstart"' <<<"$("$kit" matches "$v1" 1)" || fail "Quickstart: the listed item was not recorded"

uploads="$(awk '{ printf "%s:%s:copied-threshold-%d ", $1, $2, NR - 1 }' "$th/listed.txt")"
n="$(wc -l < "$th/listed.txt")"
# candidates WANT: how many candidates the example's account holds in all
# (`matches --accounts --json`, README: unrevealed + real + synthetic +
# rejected), one per upload that made one: every listed upload does, real
# or synthetic, and one sent again is not stored again (SPEC 14.9) unless
# its account secret or voucher id changed. Waits until WANT are in (at
# most 20 s), then 1 s more for any extra.
server="${BLINDMATCH_BIN:-$target/release}/blindmatch-server"
account_hex="$(printf account-1 | od -An -tx1 | tr -d ' \n')" # Threshold.kt's account id
candidates() {
  local got=-1
  for _ in $(seq 1 200); do
    got="$(counted)"
    [ "$got" -ge "$1" ] && break
    sleep 0.1
  done
  sleep 1
  counted
}
counted() {
  "$server" matches --data "$th/data" --accounts --json 2>/dev/null | python3 -c '
import json, sys
print(sum(a["unrevealed"] + a["real"] + a["synthetic"] + a["rejected"]
          for a in json.load(sys.stdin) if a["account_hex"] == sys.argv[1]))' "$account_hex" || echo -1
}
# shellcheck disable=SC2086 # one argument per upload
run Threshold 0 "$(url "$th")" "$(key "$th")" "$scratch/cache-th" "$scratch/account.secret" 100 $uploads
[ "$out" = "t = 3, s = 2: $n vouchers acknowledged" ] || fail "Threshold printed: $out"
got="$(candidates "$n")"
[ "$got" = "$n" ] || fail "Threshold: the account holds $got candidates after the first run, not $n"
# The second run restores the account from its file and sends the same
# uploads (the same voucher ids), then one more: a listed item under a new
# name. All go in one Submit, whose candidates the server stores in one
# transaction, so once the new one is counted the others were settled too:
# the same uploads count once if the total is one more than before.
again="$(sed -n 1p "$th/listed.txt" | tr ' ' ':'):copied-threshold-again"
# shellcheck disable=SC2086 # one argument per upload
run Threshold 0 "$(url "$th")" "$(key "$th")" "$scratch/cache-th" "$scratch/account.secret" 100 $uploads "$again"
[ "$out" = "t = 3, s = 2: $((n + 1)) vouchers acknowledged" ] || fail "Threshold (again) printed: $out"
got="$(candidates $((n + 1)))"
[ "$got" = $((n + 1)) ] || fail "Threshold: the account holds $got candidates after the second run, not $((n + 1)): the same uploads counted twice"
[ "$(stat -c %a "$scratch/account.secret")" = 600 ] || fail "Threshold: the account file is not 0600"
# Six listed uploads at a synthetic rate of 2 / 200: t = 3 real ones among
# them unless four or more were synthetic (about 1.5e-7).
got="$("$kit" matches "$th" 3 | grep -c '"associated_data": "copied-threshold-' || true)"
[ "$got" -ge 3 ] || fail "Threshold: $got of the account's uploads revealed, not 3 or more"
run Threshold 1 "$(url "$v1")" "$(key "$v1")" "$scratch/cache" "$scratch/account-v1.secret" 100 "$unlisted"
[[ "$err" == *"this table is in version 1: use Quickstart.kt"* ]] || fail "Threshold on version 1 said: $err"

# A key that is not the operator's: the table is refused, nothing is sent.
run Refused 3 "$(url "$v1")" "$(cat "$v1/org-a.sign.pub")" "$scratch/cache-refused" "$unlisted"
[ "$out" = "no verified table: uploads are not checked until one verifies" ] || fail "Refused printed: $out"
[[ "$err" == *"refused a table (BadSignature): manifest signature does not verify"* ]] || fail "Refused said: $err"
run Refused 0 "$(url "$v1")" "$(key "$v1")" "$scratch/cache-refused" "$unlisted"
[ "$out" = "1 vouchers acknowledged" ] || fail "Refused (the operator's key) printed: $out"

# Another gRPC transport in the place of grpc-netty-shaded (as an Android
# app puts grpc-okhttp): the url constructor takes whichever is there.
(cd "$scratch" && "${mvn[@]}" dependency:build-classpath -Pswap-transport -Dblindmatch.version="$version" -Dmdep.outputFile=swap.cp >/dev/null)
! grep -q grpc-netty-shaded "$scratch/swap.cp" || fail "swap-transport: grpc-netty-shaded is still on the classpath"
grep -q 'grpc-netty-[0-9]' "$scratch/swap.cp" || fail "swap-transport: grpc-netty is not on the classpath"
(cd "$scratch" && "${mvn[@]}" -Pswap-transport package -Dblindmatch.version="$version")
profile=(-Pswap-transport)
run Quickstart 0 "$(url "$v1")" "$(key "$v1")" "$scratch/cache-swap" "$unlisted"
[ "$out" = "1 vouchers acknowledged" ] || fail "Quickstart over grpc-netty printed: $out"
echo "kotlin: examples Quickstart, Threshold, Refused ran from the scratch project; another transport swapped in"
echo "kotlin: $ran tests passed"
