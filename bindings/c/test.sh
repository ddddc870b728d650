#!/usr/bin/env bash
# The C binding: the header is checked against the source (cargo test), the
# library built, and tests/test.c compiled with the system C compiler
# (-Wall -Wextra -Werror, C11) and run against it, under valgrind's memcheck
# when it is installed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$here/../.."
target="${CARGO_TARGET_DIR:-$root/target}"
work="$target/bindings/c"
# The profile the library is built with: dist, what ships, unless
# BLINDMATCH_BINDINGS_PROFILE says otherwise (.ci/run: release, which the
# server build has already compiled; the two differ only in debug info).
profile="${BLINDMATCH_BINDINGS_PROFILE:-dist}"
mkdir -p "$work"
cargo build --quiet --profile "$profile" -p blindmatch-ffi --manifest-path "$root/Cargo.toml"
python3 - "$root/protocol/vectors/blindmatch-v1.json" "$root/protocol/vectors/blindmatch-v2-threshold.json" > "$work/vectors.h" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
tv = json.load(open(sys.argv[2]))
tm = tv["manifest"]
m, u, t = v["lifecycle"]["manifest"], v["lifecycle"]["update"], v["table"]
print("/* From protocol/vectors/blindmatch-v1.json, by bindings/c/test.sh. */")
for name, value in [("STATEMENT", m["statement"]), ("SIGNATURE", m["signature"]),
                    ("VERIFYING_KEY", m["verifying_key"]), ("V2_TABLE_ID", u["table_id"]),
                    ("V1_TABLE_ID", t["table_id"]), ("V1_TABLE", t["header"] + "".join(t["slots"])),
                    ("THRESHOLD_STATEMENT", tm["statement"]), ("THRESHOLD_SIGNATURE", tm["signature"]),
                    ("THRESHOLD_VERIFYING_KEY", tm["verifying_key"]),
                    ("ACCOUNT", tv["account"]["file"]), ("ACCOUNT_ID", tv["account"]["account_id"])]:
    print(f'#define VECTOR_{name} "{value}"')
print(f"#define VECTOR_THRESHOLD_T {tv['t']}")
print(f"#define VECTOR_THRESHOLD_S {tv['s']}")
print(f"#define VECTOR_DELTA_LEN {len(u['delta'])}")
print("static const uint32_t VECTOR_DELTA_SLOTS[] = {%s};" % ", ".join(str(d["slot"]) for d in u["delta"]))
print("static const char *VECTOR_DELTA_AFTER[] = {%s};" % ", ".join('"%s"' % d["after"] for d in u["delta"]))
PY
cc -std=c11 -Wall -Wextra -Werror -I "$here/include" -I "$work" "$here/tests/test.c" \
  -L "$target/$profile" -lblindmatch -Wl,-rpath,"$target/$profile" -o "$work/test"
if command -v valgrind >/dev/null; then
  # rayon's global pool keeps its threads to exit: "possibly lost", not leaks.
  valgrind --quiet --error-exitcode=1 --leak-check=full --show-leak-kinds=definite \
    --errors-for-leak-kinds=definite "$work/test"
else
  echo "c: valgrind is not installed; running without memcheck" >&2
  "$work/test"
fi

# As an app vendors it: the header, the static library and the example,
# copied into a scratch project that knows nothing of this repository,
# linked statically, and run against real servers. The app's transport is
# tests/transport.py (gRPC-Web with Python's standard library).
scratch="$work/scratch"
rm -rf "$scratch" && mkdir -p "$scratch/include" "$scratch/lib"
cp "$here/include/blindmatch.h" "$scratch/include/"
cp "$target/$profile/libblindmatch.a" "$scratch/lib/"
cp "$here/examples/check.c" "$scratch/"
cd "$scratch"
cc -std=c11 -Wall -Wextra -Werror -I include check.c lib/libblindmatch.a -lpthread -ldl -lm -o check
export BLINDMATCH_BIN="$target/release" BLINDMATCH_SERVE_ARGS="--grpc-web-origin http://app.example"
testkit="$root/bindings/testkit/server.sh"
transport() { python3 "$here/tests/transport.py" "$@"; }
servers=()
trap 'for s in "${servers[@]}"; do "$testkit" stop "$s"; done' EXIT
expect() { # what a run must print
  grep -q -- "$1" <<<"$2" || { echo "c: expected \"$1\" in: $2" >&2; exit 1; }
}
notes() { "$BLINDMATCH_BIN/blindmatch-server" matches --data "$1/data" --json | grep -o '"associated_data": "[^"]*"' || true; }

# Version 1: a listed item and an unlisted one, the listed one recorded.
v1="$work/server-v1" && rm -rf "$v1" && "$testkit" start "$v1" && servers+=("$v1")
url="$(cat "$v1/url")" && key="$(cat "$v1/operator.sign.pub")"
read -r type value < "$v1/listed.txt"
mkdir app && transport fetch "$url" app && cp -r app app-v1
out="$(./check "$key" app "$type:$value:c-example" "sha256:$(printf x | sha256sum | cut -c1-64)" | transport submit "$url")"
expect "accepted 2" "$out"
"$testkit" matches "$v1" 1 >/dev/null
expect '"associated_data": "c-example"' "$(notes "$v1")"

# Refused tables: the operator's version 2, then version 1 offered again (a
# rollback); a key that is not the operator's (a bad signature).
"$testkit" publish "$v1"
for _ in $(seq 1 100); do # until the server has swapped (SIGHUP)
  transport fetch "$url" app
  said="$(./check "$key" app "$type:$value" 2>&1 >/dev/null)"
  grep -q "version 2 verified" <<<"$said" && break
  sleep 0.1
done
expect "version 2 verified" "$said"
cp app-v1/statement app-v1/signature app-v1/table app/
set +e
out="$(./check "$key" app "$type:$value" 2>&1)"; status=$?
set -e
[ "$status" = 3 ] || { echo "c: a rollback exited $status: $out" >&2; exit 1; }
expect "refused a table (status 2): the server offers table version 1, older than version 2" "$out"
set +e
out="$(./check "$(cat "$v1/org-a.sign.pub")" app-v1 "$type:$value" 2>&1)"; status=$?
set -e
[ "$status" = 3 ] || { echo "c: a bad signature exited $status: $out" >&2; exit 1; }
expect "refused a table (status 1): manifest signature does not verify" "$out"

# Threshold mode (t = 3, s = 2): the six listed items under an account whose
# rate is s / 2N for N = 100, so at least t of them are real but for odds of
# about 1.5e-7.
tm="$work/server-threshold" && rm -rf "$tm" && BLINDMATCH_THRESHOLD=3:2 "$testkit" start "$tm" && servers+=("$tm")
url="$(cat "$tm/url")" && key="$(cat "$tm/operator.sign.pub")"
mkdir app-t && transport fetch "$url" app-t
uploads=() && i=0
while read -r type value; do uploads+=("$type:$value:c-threshold-$i") && i=$((i + 1)); done < "$tm/listed.txt"
mkdir -p "$scratch/secrets" # an absolute path, as an app keeps its secrets elsewhere
out="$(./check --account "$scratch/secrets/account.secret" --max-uploads 100 "$key" app-t "${uploads[@]}" | transport submit "$url")"
expect "accepted ${#uploads[@]}" "$out"
[ "$(stat -c %a "$scratch/secrets/account.secret")" = 600 ] || { echo "c: account.secret is not mode 600" >&2; exit 1; }
"$testkit" matches "$tm" 3 >/dev/null
real="$(notes "$tm" | grep -c c-threshold- || true)"
[ "$real" -ge 3 ] || { echo "c: $real of the account's listed uploads recorded, expected at least 3" >&2; exit 1; }
echo "c: the example, built in a scratch project, ran against real servers (version 1, a rollback and a bad signature refused, threshold mode: $real matches recorded)"
# The reference page is what the header says.
python3 "$here/reference.py" --check
