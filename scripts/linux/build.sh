#!/usr/bin/env bash
# Builds the small Linux kernel and the busybox initramfs that tests/linux_boot.rs
# boots in our VMM and in QEMU (issue 12).
#
#   scripts/linux/build.sh [OUT_DIR]
#
# Needs Debian's linux-source-6.1 and busybox-static packages plus the kernel's
# build dependencies (gcc, make, flex, bison, bc, libelf-dev, libssl-dev); .ci/run
# installs them. A missing one is an error, never a skip.
#
# Output (printed as its last line: the directory holding them):
#   vmlinux         the kernel ELF; it carries the PVH note, so it boots as is
#   initramfs.cpio  a newc archive: busybox, /init, evkeys
#
# The kernel is cached under ${ASYNCOS_LINUX_CACHE:-~/.cache/asyncos-linux}/<key>,
# the key a hash of config.sh and KERNEL_RECIPE (bump it when the kernel
# build steps below change) plus the linux-source version, so a changed
# configuration builds again and an unchanged one takes seconds. The
# initramfs is rebuilt every run (it takes a second) so init changes need no
# cache clearing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${ASYNCOS_LINUX_CACHE:-$HOME/.cache/asyncos-linux}"
jobs="${ASYNCOS_LINUX_JOBS:-$(nproc)}"

die() { echo "scripts/linux/build.sh: $*" >&2; exit 1; }

tarball=/usr/src/linux-source-6.1.tar.xz
[ -f "$tarball" ] || die "$tarball is missing: apt-get install linux-source-6.1"
[ -x /bin/busybox ] && /bin/busybox --list >/dev/null 2>&1 || die "/bin/busybox is missing: apt-get install busybox-static"
file -L /bin/busybox 2>/dev/null | grep -q 'statically linked' || die "/bin/busybox is not static: apt-get install busybox-static"
for tool in gcc make flex bison bc; do
    command -v "$tool" >/dev/null || die "$tool is missing (apt-get install $tool)"
done

version="$(dpkg-query -W -f '${Version}' linux-source-6.1)"
KERNEL_RECIPE=1
key="$( (cat "$here/config.sh"; echo "recipe $KERNEL_RECIPE") | sha256sum | cut -c1-12)-$version"
out="${1:-$cache/$key}"
mkdir -p "$out"

src="$cache/src/linux-source-6.1-$version"
if [ ! -f "$src/Makefile" ]; then
    echo "== extracting $tarball" >&2
    mkdir -p "$cache/src/tmp.$$"
    tar -xJf "$tarball" -C "$cache/src/tmp.$$"
    mv "$cache/src/tmp.$$/linux-source-6.1" "$src"
    rmdir "$cache/src/tmp.$$"
fi

if [ ! -f "$out/vmlinux" ]; then
    build="$out/build"
    mkdir -p "$build"
    echo "== configuring ($build)" >&2
    make -s -C "$src" O="$build" tinyconfig >&2
    # shellcheck source=config.sh
    (cd "$build" && . "$here/config.sh" && apply_config "$src/scripts/config")
    make -s -C "$src" O="$build" olddefconfig >&2
    (cd "$build" && . "$here/config.sh" && check_config)
    echo "== building vmlinux with -j$jobs (minutes)" >&2
    make -s -C "$src" O="$build" -j"$jobs" vmlinux >&2
    cp "$build/.config" "$out/config"
    cp "$build/vmlinux" "$out/vmlinux.tmp"
    strip --strip-debug "$out/vmlinux.tmp" 2>/dev/null || true
    mv "$out/vmlinux.tmp" "$out/vmlinux"
    rm -rf "$build"
fi

echo "== initramfs" >&2
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# The kernel's own cpio writer: device nodes without root, no cpio tool needed.
gcc -O2 -o "$work/gen_init_cpio" "$src/usr/gen_init_cpio.c"
for prog in evkeys; do
    gcc -static -Os -s -Wall -Werror -o "$work/$prog" "$here/$prog.c"
done
cat >"$work/list" <<EOF
dir /dev 0755 0 0
nod /dev/console 0600 0 0 c 5 1
dir /bin 0755 0 0
dir /proc 0755 0 0
dir /sys 0755 0 0
dir /tmp 01777 0 0
dir /root 0700 0 0
file /bin/busybox /bin/busybox 0755 0 0
slink /bin/sh busybox 0777 0 0
file /bin/evkeys $work/evkeys 0755 0 0
file /init $here/init 0755 0 0
EOF
"$work/gen_init_cpio" "$work/list" >"$out/initramfs.cpio.tmp"
mv "$out/initramfs.cpio.tmp" "$out/initramfs.cpio"
echo "$out"
