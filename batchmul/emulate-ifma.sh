#!/usr/bin/env bash
# Runs tests/equal_to_dalek.rs on an emulated CPU that has AVX-512 IFMA, so
# that the kernel's instructions (src/ifma.rs) run somewhere even when no
# machine at hand has them. On a CPU without IFMA that test checks the
# kernel's arithmetic on the portable lanes only, says "NOT TESTED HERE" for
# the avx512ifma-8way backend, and leaves unchecked exactly what this script
# checks: the mapping of each lane operation to its instruction.
#
# How: Bochs (Debian's package, built with EVEX) emulates a Tiger Lake. It
# boots Debian's Linux (its cloud flavour, fetched with `apt-get download`,
# never installed) from an ISOLINUX CD image whose initramfs holds the test,
# built static for musl, and a small /init that runs it, prints a marker
# with its exit status and powers the machine off. The script passes only if
# the test passed, printed "tested: avx512ifma-8way", and never printed "NOT
# TESTED HERE"; anything else (no AVX-512 in the emulated CPU or not enabled
# by Linux, SIGILL, a hang) fails and says why.
#
# What it proves: on the test's inputs (RFC 9496's vectors, invalid
# encodings, edge cases, random points) the kernel gives curve25519-dalek's
# bytes when the AVX-512 instructions behave as Bochs implements Intel's
# manual. What it does not: anything about speed (Bochs interprets every
# instruction, tens of millions a second), or about a real CPU beyond Bochs's
# reading of the manual.
#
# Cost (2-core AMD EPYC, one core): under 2 minutes for the emulated boot
# (about 60 s), test (about 40 s) and power-off, plus the first build of the
# test for musl (about 2 minutes) and, once, a 27 MB download of Linux's
# package (only its 14 MB vmlinuz is kept, in $CARGO_TARGET_DIR/emulate-ifma/).
# The last run's serial console and Bochs log stay in
# $CARGO_TARGET_DIR/emulate-ifma/last/.
#
# Needs Debian (apt-get, dpkg) and Rust's x86_64-unknown-linux-musl target;
# installs bochs, bochs-term, bochsbios, vgabios, isolinux, syslinux-common,
# xorriso and cpio from Debian's packages when they are missing.
#
# Usage: batchmul/emulate-ifma.sh [TEST-FILTER...]   (arguments go to the test)
# Environment: EMULATE_IFMA_CPU (Bochs's CPU model, default tigerlake;
# corei7_icelake_u and corei3_cnl have IFMA too), EMULATE_IFMA_TIMEOUT
# (seconds, default 900), EMULATE_IFMA_KERNEL (a vmlinuz to boot instead of
# Debian's current cloud one).
# Exit status: 0 passed, 1 failed, 2 could not run (the IFMA kernel NOT tested).
set -euo pipefail
cd "$(dirname "$0")/.."

cpu=${EMULATE_IFMA_CPU:-tigerlake}
limit=${EMULATE_IFMA_TIMEOUT:-900}
work=${CARGO_TARGET_DIR:-$PWD/target}/emulate-ifma
musl=x86_64-unknown-linux-musl
marker=EMULATE-IFMA-END

say() { echo "batchmul/emulate-ifma.sh: $*" >&2; }
cannot() {
    echo "!! batchmul/emulate-ifma.sh: NOT RUN: $*" >&2
    echo "!! the AVX-512 IFMA kernel was NOT tested" >&2
    exit 2
}
fail() {
    echo "!! batchmul/emulate-ifma.sh: FAILED: $*" >&2
    exit 1
}

command -v dpkg-query >/dev/null && command -v apt-get >/dev/null ||
    cannot "this script needs Debian's apt-get and dpkg"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

# --- 1. Tools, from Debian's packages ---------------------------------------
missing=()
for p in bochs bochs-term bochsbios vgabios isolinux syslinux-common xorriso cpio gcc libc6-dev binutils; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
command -v python3 >/dev/null || missing+=(python3)
if [ ${#missing[@]} -gt 0 ]; then
    say "installing from Debian's packages: ${missing[*]}"
    $sudo apt-get update -qq >&2 || true
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >&2 || cannot "could not install ${missing[*]}"
fi
bochs=$(command -v bochs-bin || command -v bochs) || cannot "no bochs binary after installing bochs"
# A CPU model of Bochs's exists only in a build with EVEX (AVX-512) support.
models=$("$bochs" -help cpu 2>&1) || true
grep -qx "$cpu" <<<"$models" ||
    cannot "this Bochs ($bochs) has no CPU model '$cpu': it was built without AVX-512 (EVEX)"
[ -d "$(rustc --print target-libdir --target "$musl" 2>/dev/null)" ] ||
    cannot "Rust's $musl target is not installed (rustup target add $musl)"

# --- 2. Linux: Debian's current cloud kernel, unpacked, not installed ---------
mkdir -p "$work"
kernel=${EMULATE_IFMA_KERNEL:-}
if [ -z "$kernel" ]; then
    # The cloud flavour: fewer drivers to start, and LZ4 rather than XZ to
    # unpack, which halves the emulated boot.
    newest() { apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-/ { print $2; exit }'; }
    pkg=$(newest)
    if [ -z "$pkg" ]; then
        $sudo apt-get update -qq >&2 || true
        pkg=$(newest)
    fi
    [ -n "$pkg" ] || cannot "apt-cache names no kernel for linux-image-cloud-amd64"
    kernel=$work/vmlinuz-${pkg#linux-image-}
    if [ ! -s "$kernel" ]; then
        say "fetching $pkg with apt-get download (unpacked here, not installed)"
        deb=$(mktemp -d "$work/deb.XXXXXX")
        [ -n "$sudo" ] || chown _apt "$deb" 2>/dev/null || true # apt's download user
        (cd "$deb" && apt-get download -q "$pkg" >&2) || cannot "apt-get download $pkg failed"
        dpkg-deb --fsys-tarfile "$deb"/*.deb | tar -x -C "$deb" --wildcards './boot/vmlinuz-*'
        mv "$deb"/boot/vmlinuz-* "$kernel"
        rm -rf "$deb"
    fi
fi
[ -s "$kernel" ] || cannot "no kernel at $kernel"

# --- 3. The test, static ------------------------------------------------------
say "building tests/equal_to_dalek.rs for $musl"
json=$(cargo test --release --locked -p blindmatch-batchmul --test equal_to_dalek \
    --target "$musl" --no-run --message-format=json-render-diagnostics) ||
    fail "the test did not build"
# The executable, and the package directory compiled into it (the test
# reads its vectors through CARGO_MANIFEST_DIR, an absolute path).
read -r bin pkgdir < <(python3 -c 'import json, os, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "equal_to_dalek" and m.get("executable"):
        print(m["executable"], os.path.dirname(m["manifest_path"]))' <<<"$json") || true
[ -x "${bin:-}" ] || fail "cargo named no test executable"
vectors=protocol/tests/data/rfc9496_ristretto255.json

# --- 4. The initramfs: /init runs /test, reports, powers off -------------------
run=$work/last
rm -rf "$run"
mkdir -p "$run/root/dev" "$run/iso/isolinux"
cat >"$run/init.c" <<'EOF'
/* PID 1: run /test with our arguments (the kernel command line's words after
 * "--") and environment (its unknown KEY=VALUE words), print the marker with
 * its exit status once the console has sent everything, power off. */
#include <fcntl.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

int main(int argc, char **argv) {
    (void)argc;
    mount("devtmpfs", "/dev", "devtmpfs", 0, 0);
    int console = open("/dev/console", O_RDWR);
    if (console >= 0) {
        dup2(console, 0);
        dup2(console, 1);
        dup2(console, 2);
    }
    argv[0] = "/test";
    int status = 0;
    pid_t pid = fork();
    if (pid == 0) {
        execv("/test", argv);
        perror("/init: execv /test");
        _exit(127);
    }
    if (pid < 0 || waitpid(pid, &status, 0) < 0) {
        perror("/init");
        status = 126 << 8;
    }
    printf("\nEMULATE-IFMA-END status=%d\n",
           WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status));
    fflush(stdout);
    tcdrain(1);
    sync();
    reboot(RB_POWER_OFF);
    return 0;
}
EOF
gcc -static -Os -o "$run/root/init" "$run/init.c" || cannot "gcc -static failed (libc6-dev has the static libc)"
objcopy --strip-debug "$bin" "$run/root/test"
mkdir -p "$run/root$pkgdir" "$(dirname "$run/root$pkgdir/../$vectors")"
cp "$vectors" "$run/root$pkgdir/../$vectors"
(cd "$run/root" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) |
    gzip -1 >"$run/iso/initrd.gz"

# --- 5. A CD that boots it, and a Bochs to boot the CD --------------------------
# Linux's arguments. Bochs 2.7's models, as Linux 6.1 reads them, need
# four CPU features hidden from Linux (clearcpuid; user space still sees
# them in CPUID, and none is used by the test):
# - xsaves, xsavec: Bochs reports CPUID.(0Dh,1).EBX as the standard format's
#   size, not the compacted one; Linux finds the sizes inconsistent and
#   disables XSAVE, and AVX-512 with it (the test would say NOT TESTED HERE).
#   Without them Linux uses the standard format, whose sizes agree.
# - pku: Bochs returns zeros for CPUID.(0Dh,9), PKRU's size and offset (a
#   typo, BX_SUPPPORT_PKEYS, in its cpu/cpuid.cc): the same inconsistency.
# - fsrm: Bochs's IA32_MISC_ENABLE has fast strings off, so Linux drops ERMS
#   but keeps FSRM, and its memmove, patched for that mix, loses its length
#   check and runs over memory: the boot hangs (seen just after "LSM:
#   Security Framework initializing").
args="console=ttyS0 clearcpuid=xsaves,xsavec,pku,fsrm"
args="$args PROPTEST_DISABLE_FAILURE_PERSISTENCE=true -- --test-threads=1 $*"
cp /usr/lib/ISOLINUX/isolinux.bin /usr/lib/syslinux/modules/bios/ldlinux.c32 "$run/iso/isolinux/"
cp "$kernel" "$run/iso/vmlinuz"
cat >"$run/iso/isolinux/isolinux.cfg" <<EOF
SERIAL 0 115200
DEFAULT test
PROMPT 0
LABEL test
  KERNEL /vmlinuz
  APPEND initrd=/initrd.gz $args
EOF
xorriso -as mkisofs -quiet -o "$run/test.iso" -b isolinux/isolinux.bin -c isolinux/boot.cat \
    -no-emul-boot -boot-load-size 4 -boot-info-table "$run/iso" 2>/dev/null
cat >"$run/bochsrc" <<EOF
cpu: model=$cpu, count=1, ips=100000000, reset_on_triple_fault=0, ignore_bad_msrs=1
memory: guest=512, host=512
romimage: file=/usr/share/bochs/BIOS-bochs-latest
vgaromimage: file=/usr/share/vgabios/vgabios.bin
ata1: enabled=1, ioaddr1=0x170, ioaddr2=0x370, irq=15
ata1-master: type=cdrom, path=test.iso, status=inserted
boot: cdrom
# Debian builds no "nogui"; "term" draws the screen on a pty of its own.
display_library: term
com1: enabled=1, mode=file, dev=serial.log
log: bochs.log
panic: action=fatal
error: action=report
info: action=report
debug: action=ignore
EOF
# Debian's Bochs has its debugger built in and waits at its prompt: "c"
# continues. It exits when the guest powers off (an ACPI soft power off).
printf 'c\n' >"$run/debugger"

# --- 6. Run ---------------------------------------------------------------------
say "booting $(basename "$kernel") on Bochs's $cpu (logs in $run)"
cd "$run"
: >serial.log
start=$SECONDS
TERM=xterm "$bochs" -q -f bochsrc <debugger >bochs.out 2>&1 &
pid=$!
trap 'kill -9 $pid 2>/dev/null || true' EXIT
booted="" ended="" why=""
while kill -0 "$pid" 2>/dev/null; do
    sleep 2
    now=$((SECONDS - start))
    if [ -z "$booted" ] && grep -q "Run /init as init process" serial.log; then
        booted=$now
        say "Linux up, /init started after ${booted}s"
    fi
    if [ -z "$ended" ] && grep -q "^$marker" serial.log; then
        ended=$now
    fi
    if [ -n "$ended" ] && [ $((now - ended)) -gt 30 ]; then
        break # the test is done; Bochs did not power off in time
    elif grep -q "Kernel panic" serial.log; then
        why="the emulated Linux panicked" && break
    elif [ "$now" -ge "$limit" ]; then
        why="no result after ${limit}s" && break
    fi
done
kill -9 "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
total=$((SECONDS - start))

# --- 7. Verdict -------------------------------------------------------------------
log=$(tr -d '\r' <serial.log)
fpu=$(grep -o 'x86/fpu: Enabled xstate features.*' <<<"$log" ||
    echo "no 'x86/fpu: Enabled xstate features' line: XSAVE, and so AVX-512, off")
# The test's own output, from libtest's first line to /init's marker.
out=$(sed -n '/^running [0-9]* tests\{0,1\}$/,$p' <<<"$log" | grep -v '^\[ *[0-9.]*\] ' || true)
[ -n "$out" ] && printf '%s\n' "$out" >&2
explain() {
    fail "$1
   Linux: $fpu
   logs: $run/serial.log, $run/bochs.log"
}
[ -z "$why" ] || explain "$why (after ${total}s)"
grep -q "^$marker" <<<"$log" || explain "the emulated machine stopped without reporting the test's exit"
if grep -q "NOT TESTED HERE" <<<"$log"; then
    explain "the emulated CPU did not offer AVX-512 IFMA to the test: Bochs's model '$cpu' lacks it, or Linux did not enable AVX-512 state"
fi
status=$(sed -n "s/^$marker status=\([0-9]*\).*/\1/p" <<<"$log" | tail -n 1)
if [ "$status" = 132 ]; then
    explain "the test died of SIGILL: the emulator lacks an instruction it used"
elif [ "$status" != 0 ]; then
    explain "the test failed (exit status $status)"
fi
grep -q "^test result: ok\." <<<"$log" || explain "no 'test result: ok.' line"
# (The line may follow libtest's "test NAME ... " on the same line.)
grep -q "tested: avx512ifma-8way$" <<<"$log" ||
    explain "the test never said 'tested: avx512ifma-8way': the IFMA kernel was not compared with dalek"
say "PASSED: the avx512ifma-8way kernel agreed with curve25519-dalek on Bochs's $cpu
   ($fpu; boot ${booted:-?}s, total ${total}s)"
