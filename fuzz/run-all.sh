#!/usr/bin/env bash
# Builds every fuzz target, then runs each for SECONDS, one after another
# (CI runs `fuzz/run-all.sh 30` as a smoke test). Prints each target's
# final statistics; fails on the first crash or invariant violation, after
# printing the end of that run's log (the input is in fuzz/artifacts/).
set -euo pipefail
cd "$(dirname "$0")"
if [ $# -ne 1 ]; then
    echo "usage: $0 SECONDS" >&2
    exit 2
fi
export VMM_GUEST_ELF="$PWD/corpus/elf_loader/guest.elf"
cargo +nightly fuzz build --sanitizer none --debug-assertions
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for target in $(cargo +nightly fuzz list); do
    echo "== fuzz $target for $1 s"
    if ! ./run.sh "$target" "$1" >"$log" 2>&1; then
        # The panic message comes before the backtrace, which can be long.
        grep -A 4 -m 1 'panicked at' "$log" || true
        tail -n 60 "$log"
        echo "error: fuzz target $target failed" >&2
        exit 1
    fi
    grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::average_exec_per_sec|stat::new_units_added)' "$log" || true
done
