#!/usr/bin/env bash
# Boots Debian 12's stock cloud kernel (linux-image-cloud-amd64, Linux 6.1) in
# our VMM, or in QEMU `pc` + TCG as the reference, and logs its console with
# host time since the start of the boot, to record how far it gets (issue 12,
# item 5). Too long for the test suite: this is for people to reproduce.
#
#   scripts/linux/stock.sh [--qemu] [CAP_SECONDS]
#
#   --qemu       boot the same kernel, initramfs and command line in
#                qemu-system-x86_64 -M pc -accel tcg instead of our VMM
#   CAP_SECONDS  wall-clock cap on the boot (default 1800: 30 minutes)
#
# Environment:
#   STOCK_CMDLINE  the kernel command line (default: the one the README justifies)
#   STOCK_MEMORY   guest RAM in MiB (default 128)
#   STOCK_LOG      the log file (default: ~/.cache/asyncos-linux/stock/boot-<vmm|qemu>-<time>.log)
#   VMM            the VMM binary (default: target/release/vmm of this checkout)
#
# The package is fetched with `apt-get download` and cached, with the vmlinux
# extracted from its bzImage, under ${ASYNCOS_LINUX_CACHE:-~/.cache/asyncos-linux}/stock.
# The initramfs is the one scripts/linux/build.sh makes (that script builds the
# small kernel too on its first run: minutes).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cache="${ASYNCOS_LINUX_CACHE:-$HOME/.cache/asyncos-linux}/stock"

die() { echo "scripts/linux/stock.sh: $*" >&2; exit 1; }

mode=vmm
if [ "${1:-}" = "--qemu" ]; then mode=qemu; shift; fi
cap="${1:-1800}"
[[ "$cap" =~ ^[1-9][0-9]*$ ]] || die "the cap must be a whole number of seconds, got '$cap'"
[ $# -le 1 ] || die "usage: scripts/linux/stock.sh [--qemu] [CAP_SECONDS]"

# Each flag is justified in the README ("The stock Debian kernel"); the last
# two only make the log say which initcall is running (two lines each).
cmdline="${STOCK_CMDLINE:-console=ttyS0 noapic nolapic noxsave clearcpuid=137 tsc=reliable printk.time=1 acpi=off pci=off mitigations=off cryptomgr.notests init_on_alloc=0 nowatchdog rodata=off initcall_debug loglevel=8}"
memory="${STOCK_MEMORY:-128}"

for tool in apt-get apt-cache dpkg-deb readelf lz4 python3; do
    command -v "$tool" >/dev/null || die "$tool is missing (lz4: apt-get install lz4; readelf: binutils)"
done
if [ "$mode" = qemu ]; then
    command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 is missing: apt-get install qemu-system-x86"
else
    vmm="${VMM:-$repo/target/release/vmm}"
    [ -x "$vmm" ] || die "$vmm is missing: cargo build --release"
fi

# The package: the one the cloud meta-package depends on today.
mkdir -p "$cache"
pkg="$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-/ { print $2; exit }')"
[ -n "$pkg" ] || die "apt-cache does not know linux-image-cloud-amd64 (a Debian 12 apt source and apt-get update needed)"
deb="$(ls "$cache/${pkg}"_*.deb 2>/dev/null | head -1 || true)"
if [ -z "$deb" ]; then
    echo "== apt-get download $pkg" >&2
    (cd "$cache" && apt-get download "$pkg" >&2) || die "apt-get download $pkg failed"
    deb="$(ls "$cache/${pkg}"_*.deb 2>/dev/null | head -1 || true)"
    [ -n "$deb" ] || die "apt-get download $pkg left no .deb in $cache"
fi

# vmlinux from the bzImage: its payload is an LZ4 legacy frame (magic
# 02 21 4c 18); lz4 decodes the frame and stops at the bzImage's trailing
# bytes with status 1, so its status is not the test: the ELF check is.
vmlinux="$cache/${pkg}.vmlinux"
if [ ! -f "$vmlinux" ]; then
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$work" ./boot || die "$deb: cannot unpack ./boot"
    bz="$(ls "$work"/boot/vmlinuz-* 2>/dev/null | head -1 || true)"
    [ -n "$bz" ] || die "$deb has no boot/vmlinuz-*"
    cp "$work"/boot/config-* "$cache/${pkg}.config"
    off="$(grep -obUaP '\x02\x21\x4c\x18' "$bz" | head -1 | cut -d: -f1 || true)"
    [ -n "$off" ] || die "$bz: no LZ4 legacy frame (magic 02 21 4c 18) in the bzImage"
    tail -c +"$((off + 1))" "$bz" | lz4 -dc >"$work/vmlinux" 2>/dev/null || true
    head -c 4 "$work/vmlinux" | grep -q $'^\x7fELF' || die "$bz: the LZ4 payload at offset $off is not an ELF"
    mv "$work/vmlinux" "$vmlinux"
fi
# The PVH entry: a Xen note of type 0x12 (XEN_ELFNOTE_PHYS32_ENTRY).
readelf -n "$vmlinux" | grep -q 'Xen.*(0x00000012)' \
    || die "$vmlinux has no PVH note (Xen note type 0x12): neither our VMM nor QEMU -kernel can boot it"

initrd_dir="$("$here/build.sh" | tail -1)" || die "scripts/linux/build.sh failed"
initrd="$initrd_dir/initramfs.cpio"
[ -f "$initrd" ] || die "$initrd is missing after scripts/linux/build.sh"

log="${STOCK_LOG:-$cache/boot-$mode-$(date -u +%Y%m%dT%H%M%SZ).log}"
{
    echo "# $pkg ($(basename "$deb")) in $mode, cap ${cap}s, ${memory} MiB, started $(date -u +%FT%TZ)"
    echo "# cmdline: $cmdline"
} >"$log"
echo "== booting $pkg in $mode (cap ${cap}s); log: $log" >&2

# Host seconds since the start of the boot before every console line (and
# the VMM's own stderr, e.g. an emulation failure's instruction bytes).
stamp='
import sys, time
t0 = time.monotonic()
out = open(sys.argv[1], "a", buffering=1)
for raw in iter(sys.stdin.buffer.readline, b""):
    line = raw.decode("utf-8", "replace").rstrip("\r\n").replace("\r", "")
    text = "[%9.3f] %s" % (time.monotonic() - t0, line)
    out.write(text + "\n")
    print(text, flush=True)
'

# Not -e around the boot: its status (124 the cap, 125 an emulation
# failure) is the result, not an error of this script.
set +e
if [ "$mode" = qemu ]; then
    timeout "$cap" qemu-system-x86_64 -M pc -accel tcg -m "$memory" -nodefaults -display none \
        -serial stdio -no-reboot -kernel "$vmlinux" -initrd "$initrd" -append "$cmdline" \
        </dev/null 2>&1 | python3 -c "$stamp" "$log"
else
    "$vmm" --kernel "$vmlinux" --initrd "$initrd" --memory "$memory" --cpu host \
        --cmdline "$cmdline" --timeout "$cap" --no-reboot --stats \
        </dev/null 2>&1 | python3 -c "$stamp" "$log"
fi
status="${PIPESTATUS[0]}"
set -e
echo "# ended with status $status at $(date -u +%FT%TZ) (124: the cap; 125: an emulation failure, see above)" >>"$log"
echo "== status $status; log: $log" >&2
