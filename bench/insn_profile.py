#!/usr/bin/env python3
"""Where the guest's emulated instructions go, per function, per typed character.

Under `kvm_pvm` KVM emulates every ring-0 guest instruction (about 1.3 µs
each), so the instructions a path executes are its latency. KVM's
`kvm:kvm_emulate_insn` tracepoint records the guest RIP of each one; this
tool records it with `perf record` for two runs of our VMM, one that types N
lowercase letters at the prompt and one that types none (both then Ctrl+C
and `exit 0`), resolves every RIP to a guest function with the ELF's symbols
(`nm`) or, with `--by inline`/`--by line`, to the innermost inlined function
or source line (`addr2line -i`), and prints per function:
(instructions in the typing run - instructions in the idle run) / N.
It also counts, in trace order, the instructions on each character's
latency path: from the keyboard interrupt's entry after the idle `hlt` to
the echo's `out` to COM1 (median and spread).

    python3 bench/insn_profile.py [--vmm PATH] [--chars N] [--by symbol|inline|line]
                                  [--top K] [--keep DIR]
    python3 bench/insn_profile.py --flat -- VMM-ARGS...   (one run, flat totals)

It needs `perf` (with access to the kvm tracepoints: root, or
`kernel.perf_event_paranoid` <= -1), `nm` and `addr2line` (binutils); a
missing one is an error. The guest ELF is the VMM's embedded one
(`vmm --export-guest`), so the symbols always match what ran.
"""

import argparse
import bisect
import collections
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# `perf script -F trace` prints the tracepoint's own text:
#   0:100000:fa (prot32)      csbase:rip:bytes (mode)[ failed]
TRACE = re.compile(r"^\s*([0-9a-f]+):([0-9a-f]+):([0-9a-f ]*)\((\w+)\)( failed)?\s*$")


class ProfileError(Exception):
    pass


def need(tool):
    if shutil.which(tool) is None:
        raise ProfileError(f"{tool} not found on PATH (needed to profile; see the module doc)")


def run_recorded(vmm, argv, data_path):
    """Runs `vmm ARGV` under perf record; returns the VMM's stderr."""
    cmd = ["perf", "record", "-q", "-e", "kvm:kvm_emulate_insn", "-o", data_path, "--", vmm] + argv
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if not os.path.exists(data_path) or os.path.getsize(data_path) == 0:
        raise ProfileError(f"perf record wrote nothing: {proc.stderr[-800:]}")
    if proc.returncode != 0:
        raise ProfileError(f"{' '.join(cmd)}: status {proc.returncode}: {proc.stderr[-800:]}")
    return proc.stderr


def rip_counts(data_path):
    """RIP -> (emulated count, failed count) from a perf data file."""
    out = subprocess.run(["perf", "script", "-F", "trace", "-i", data_path],
                         capture_output=True, text=True, check=True).stdout
    counts = collections.Counter()
    failed = collections.Counter()
    for line in out.splitlines():
        m = TRACE.match(line)
        if not m:
            continue
        rip = int(m.group(1), 16) + int(m.group(2), 16)
        counts[rip] += 1
        if m.group(5):
            failed[rip] += 1
    if not counts:
        raise ProfileError(f"no kvm_emulate_insn events in {data_path}: is this host's KVM emulating?")
    return counts, failed


class Symbols:
    """Guest addresses to function names (`nm`) or inlined frames (`addr2line`)."""

    def __init__(self, elf):
        self.elf = elf
        out = subprocess.run(["nm", "-C", "--defined-only", "-S", "--numeric-sort", elf],
                             capture_output=True, text=True, check=True).stdout
        self.starts, self.ends, self.names = [], [], []
        for line in out.splitlines():
            parts = line.split(" ", 3)
            if len(parts) == 4 and parts[2] in ("t", "T", "W", "w"):
                start, size = int(parts[0], 16), int(parts[1], 16)
                self.starts.append(start)
                self.ends.append(start + size)
                self.names.append(shorten(parts[3]))
        self.frames = {}

    def symbol(self, rip):
        i = bisect.bisect_right(self.starts, rip) - 1
        if i >= 0 and rip < max(self.ends[i], self.starts[i] + 1):
            return self.names[i]
        return f"?? {rip:#x}"

    def resolve_inline(self, rips):
        """Fills `frames`: rip -> (innermost function, file:line)."""
        todo = [r for r in rips if r not in self.frames]
        if not todo:
            return
        out = subprocess.run(["addr2line", "-e", self.elf, "-f", "-C", "-i", "-a"],
                             input="".join(f"{r:#x}\n" for r in todo),
                             capture_output=True, text=True, check=True).stdout
        # Per address: its own line (0x...), then (function, file:line) pairs,
        # innermost first.
        current, pairs = None, []
        lines = out.splitlines()
        i = 0
        while i < len(lines):
            if lines[i].startswith("0x"):
                if current is not None:
                    self.frames[current] = pairs[0] if pairs else ("??", "??")
                current, pairs = int(lines[i], 16), []
                i += 1
            else:
                func = shorten(lines[i])
                loc = lines[i + 1] if i + 1 < len(lines) else "??"
                pairs.append((func, short_path(loc)))
                i += 2
        if current is not None:
            self.frames[current] = pairs[0] if pairs else ("??", "??")

    def key(self, rip, by):
        if by == "symbol":
            return self.symbol(rip)
        func, loc = self.frames.get(rip, ("??", "??"))
        if by == "inline":
            return func if func != "??" else self.symbol(rip)
        return f"{loc} ({func})"


def shorten(name):
    """Drops Rust's hash suffix and the crate noise generic paths carry."""
    name = re.sub(r"::h[0-9a-f]{16}$", "", name)
    return name if len(name) <= 110 else name[:107] + "..."


def short_path(loc):
    loc = re.sub(r" \(discriminator \d+\)", "", loc)
    for marker in ("/guest/src/", "/shared/src/", "/library/", "/registry/src/"):
        if marker in loc:
            return loc.split(marker, 1)[1]
    return loc


def group(counts, symbols, by):
    if by != "symbol":
        symbols.resolve_inline(counts.keys())
    grouped = collections.Counter()
    for rip, n in counts.items():
        grouped[symbols.key(rip, by)] += n
    return grouped


def letters(n):
    return "".join(chr(ord("a") + i % 26) for i in range(n))


def keys_script(n):
    """Types N letters at the prompt (none for N = 0), then Ctrl+C and `exit 0`."""
    script = 'expect "> " 60s\n'
    if n:
        line = letters(n)
        script += f"type {line}\nexpect {line[-12:]} 60s\n"
    script += 'key ctrl-c\nexpect "^C" 60s\nexpect "> " 60s\ntype exit 0\\n\n'
    return script


def key_to_echo(data_path, symbols):
    """Instructions on each typed character's latency path, in trace order:
    from the first IRQ1 entry (`vector_33`) after the idle `hlt` to the
    echo's `out` to COM1 (`out dx, al` in a `serial` function). It includes
    whatever else runs meanwhile (the break code's IRQ, if it comes first);
    characters the guest took without halting in between are not counted."""
    out = subprocess.run(["perf", "script", "-F", "trace", "-i", data_path],
                         capture_output=True, text=True, check=True).stdout
    entry = [s for s, n in zip(symbols.starts, symbols.names) if n.endswith("interrupts::vector_33")]
    if not entry:
        raise ProfileError("no `vector_33` (the IRQ1 entry stub) in the guest's symbols")
    serial = {}
    paths, start, idle, index = [], None, False, 0
    for line in out.splitlines():
        m = TRACE.match(line)
        if not m:
            continue
        index += 1
        rip = int(m.group(1), 16) + int(m.group(2), 16)
        code = m.group(3).strip()
        if code == "f4":  # hlt
            idle, start = True, None
        elif rip == entry[0] and idle:
            idle, start = False, index
        elif code == "ee" and start is not None:  # out dx, al
            if rip not in serial:
                serial[rip] = "serial" in symbols.symbol(rip)
            if serial[rip]:
                paths.append(index - start)
                start = None
    return paths


def exits_from_stats(stderr):
    m = re.search(r"^  exits: (\d+)", stderr, re.M)
    return int(m.group(1)) if m else None


def print_table(rows, total, fail_total, title, unit, top):
    print(f"\n{title}")
    print(f"{'instructions':>14}  {'share':>6}  function")
    shown = 0.0
    for name, value in rows[:top]:
        shown += value
        print(f"{value:14.1f}  {100 * value / total if total else 0:5.1f}%  {name}")
    rest = total - shown
    if len(rows) > top:
        print(f"{rest:14.1f}  {100 * rest / total if total else 0:5.1f}%  ({len(rows) - top} more)")
    print(f"{total:14.1f}  100.0%  total {unit}"
          + (f" ({fail_total:.1f} of them traced as emulation failures: `iretq`, which KVM "
             "completes itself, and anything the VMM completes)" if fail_total else ""))


def prepare(args):
    """Checks the tools, makes the work folder and exports the embedded
    guest ELF into it: (work folder, ELF path)."""
    need("perf")
    need("nm")
    need("addr2line")
    work = args.keep or tempfile.mkdtemp(prefix="insn-profile-")
    os.makedirs(work, exist_ok=True)
    elf = os.path.join(work, "guest.elf")
    subprocess.run([args.vmm, "--export-guest", elf], check=True)
    return work, elf


def per_char(args):
    work, elf = prepare(args)
    symbols = Symbols(elf)
    results = {}
    for n in (0, args.chars):
        script = os.path.join(work, f"type{n}.keys")
        with open(script, "w") as f:
            f.write(keys_script(n))
        data = os.path.join(work, f"type{n}.data")
        stderr = run_recorded(args.vmm, ["--keys", script, "--stats", "--timeout", "120"], data)
        counts, failed = rip_counts(data)
        results[n] = (group(counts, symbols, args.by), sum(counts.values()),
                      sum(failed.values()), exits_from_stats(stderr))
        print(f"run typing {n} characters: {results[n][1]} emulated instructions, "
              f"{results[n][3]} exits", file=sys.stderr)
    base, typed = results[0], results[args.chars]
    names = set(base[0]) | set(typed[0])
    rows = [(name, (typed[0][name] - base[0][name]) / args.chars) for name in names]
    rows = [r for r in rows if abs(r[1]) >= 0.05]
    rows.sort(key=lambda r: -r[1])
    total = (typed[1] - base[1]) / args.chars
    fails = (typed[2] - base[2]) / args.chars
    print(f"per typed character ((run with {args.chars} letters - run with none) / {args.chars}; "
          f"by {args.by})")
    if typed[3] is not None and base[3] is not None:
        print(f"exits to the VMM per character: {(typed[3] - base[3]) / args.chars:.2f}")
    print_table(rows, total, fails, "emulated guest instructions per typed character",
                "per character", args.top)
    paths = sorted(key_to_echo(os.path.join(work, f"type{args.chars}.data"), symbols))
    if len(paths) >= 10:
        print(f"\nkey to echo (IRQ1 entry after the idle `hlt` to the echo's `out`): median "
              f"{statistics.median(paths):.0f} instructions [p10 {paths[len(paths) // 10]}, "
              f"p90 {paths[len(paths) * 9 // 10]}] over {len(paths)} characters")
    if not args.keep:
        shutil.rmtree(work)


def flat(args):
    work, elf = prepare(args)
    if "--kernel" in args.vmm_args:
        elf = args.vmm_args[args.vmm_args.index("--kernel") + 1]
    data = os.path.join(work, "flat.data")
    run_recorded(args.vmm, args.vmm_args, data)
    counts, failed = rip_counts(data)
    grouped = group(counts, Symbols(elf), args.by)
    rows = sorted(grouped.items(), key=lambda r: -r[1])
    print_table(rows, sum(counts.values()), sum(failed.values()),
                f"emulated guest instructions in the run (by {args.by})", "in the run", args.top)
    if not args.keep:
        shutil.rmtree(work)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vmm", default=os.path.join(ROOT, "target", "release", "vmm"),
                        help="the vmm binary (default: target/release/vmm; build it first)")
    parser.add_argument("--chars", type=int, default=200, help="letters typed (default 200)")
    parser.add_argument("--by", choices=("symbol", "inline", "line"), default="symbol",
                        help="group by ELF symbol (default), innermost inlined function, "
                             "or source line")
    parser.add_argument("--top", type=int, default=30, help="rows shown (default 30)")
    parser.add_argument("--keep", metavar="DIR",
                        help="keep the scripts, perf data and ELF in DIR")
    parser.add_argument("--flat", action="store_true",
                        help="profile one run of `vmm VMM-ARGS` (after --) instead")
    parser.add_argument("vmm_args", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.chars <= 0:
        parser.error("--chars must be positive")
    if not os.access(args.vmm, os.X_OK):
        parser.error(f"{args.vmm} is not an executable: cargo build --release first, or --vmm")
    try:
        flat(args) if args.flat else per_char(args)
    except (ProfileError, subprocess.CalledProcessError) as error:
        print(f"insn_profile: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
