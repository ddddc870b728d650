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

# As an app vendors it: the header and the static library, copied into a
# scratch project that knows nothing of this repository, linked statically.
scratch="$work/scratch"
rm -rf "$scratch" && mkdir -p "$scratch/include" "$scratch/lib"
cp "$here/include/blindmatch.h" "$scratch/include/"
cp "$target/$profile/libblindmatch.a" "$scratch/lib/"
cat > "$scratch/main.c" <<'C'
#include <stdio.h>
#include <string.h>
#include "blindmatch.h"

int main(void) {
    /* A statement that is not one: refused with a message. */
    const uint8_t key[32] = {0};
    const uint8_t junk[3] = {1, 2, 3};
    const uint8_t sig[64] = {0};
    struct BmManifest *m = NULL;
    enum BmStatus s = bm_manifest_verify(junk, sizeof junk, sig, sizeof sig, key, sizeof key, &m);
    char why[256];
    size_t n = bm_last_error(why, sizeof why);
    if (s == BM_STATUS_OK || m != NULL || n == 0 || strlen(why) == 0) {
        fprintf(stderr, "scratch: a junk statement was not refused with a message\n");
        return 1;
    }
    printf("scratch: libblindmatch.a linked; junk refused (status %d): %s\n", (int)s, why);
    return 0;
}
C
(cd "$scratch" && cc -std=c11 -Wall -Wextra -Werror -I include main.c lib/libblindmatch.a -lpthread -ldl -lm \
  -o main && ./main)
