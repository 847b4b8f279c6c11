#!/usr/bin/env bash
# Runs one fuzz target for a given time:
#
#     fuzz/run.sh TARGET SECONDS [libFuzzer options...]
#
# Needs the nightly toolchain and cargo-fuzz (see fuzz/README.md). New
# interesting inputs go to fuzz/work/TARGET (not in git), the committed seeds
# in fuzz/corpus/TARGET are read; a crash is saved in fuzz/artifacts/TARGET/
# and makes the script fail. The per-input time limit (300 s) is generous: on
# a loaded machine a fast input can wait seconds for a CPU (a 10 s limit gave
# false timeouts here). The embedded guest is not rebuilt for the fuzz build:
# the seed ELF of elf_loader stands in for it (VMM_GUEST_ELF).
set -euo pipefail
cd "$(dirname "$0")"
if [ $# -lt 2 ]; then
    echo "usage: $0 TARGET SECONDS [libFuzzer options...]" >&2
    exit 2
fi
target=$1
seconds=$2
shift 2
export VMM_GUEST_ELF="$PWD/corpus/elf_loader/guest.elf"
mkdir -p "work/$target" "artifacts/$target"
dict=()
if [ -f "dict/$target.dict" ]; then
    dict=(-dict="dict/$target.dict")
fi
exec cargo +nightly fuzz run --sanitizer none --debug-assertions "$target" \
    "work/$target" "corpus/$target" -- \
    -max_total_time="$seconds" -print_final_stats=1 -timeout=300 -rss_limit_mb=2048 \
    -artifact_prefix="artifacts/$target/" "${dict[@]}" "$@"
