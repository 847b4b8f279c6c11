#!/usr/bin/env python3
"""Benchmark: our VMM against QEMU 7.2, same guest ELF, same memory size.

Builds the VMM (cargo build --release) unless --vmm is given, exports the
embedded guest (vmm --export-guest), builds a trivial PVH kernel (print one
line to COM1, exit through port 0xF4), runs every case --runs times,
alternating our VMM and the QEMU configurations run by run, and writes a
report directory: report.md (the table and how each number was measured),
raw.json (every sample), and PNG plots.

Usage:
  python3 bench/report.py [--out DIR] [--runs N] [--quick] [--cases a,b,...]
                          [--vmm PATH] [--pc-kvm-runs N]

Cases: boot, boot-trivial, latency, typing, idle, timer, footprint, vmm-stats
(default: all). --quick is a smoke run: 2 runs, few keys, short windows.
Needs: qemu-system-x86_64 and matplotlib (pip install -r bench/requirements.txt).
A missing one is an error, never a skipped case.
"""
import argparse
import bisect
import datetime
import json
import os
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ALL_CASES = ["boot", "boot-trivial", "latency", "typing", "idle", "timer",
             "footprint", "vmm-stats"]
MEMORY_MIB = 32

# --------------------------------------------------------------------------
# machines


class Machine:
    """One way to run a PVH ELF: our VMM or a QEMU configuration."""

    def __init__(self, key, label, ours, argv_fn, keyboard, slow=False):
        self.key = key
        self.label = label
        self.ours = ours
        self.argv_fn = argv_fn
        self.keyboard = keyboard  # has an i8042 (QMP send-key reaches the guest)
        self.slow = slow  # QEMU pc + KVM: seconds of firmware on these hosts

    def argv(self, elf, cmdline="", qmp=None):
        return self.argv_fn(elf, cmdline, qmp)

    def exit_status(self, value=0):
        """Process exit status for a guest writing `value` to port 0xF4: our
        VMM exits with `value`, QEMU with (value << 1) | 1."""
        return value if self.ours else (value << 1) | 1


def make_machines(vmm):
    def ours(elf, cmdline, qmp):
        argv = [vmm, "--no-interactive", "--memory", str(MEMORY_MIB), "--kernel", elf]
        if cmdline:
            argv += ["--cmdline", cmdline]
        if qmp:
            argv += ["--qmp", f"unix:{qmp}"]
        return argv

    def qemu(machine, accel):
        def argv_fn(elf, cmdline, qmp):
            argv = ["qemu-system-x86_64", "-machine", machine, "-accel", accel,
                    "-m", str(MEMORY_MIB), "-display", "none", "-nodefaults",
                    "-serial", "stdio", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
                    "-kernel", elf]
            if cmdline:
                argv += ["-append", cmdline]
            if qmp:
                argv += ["-qmp", f"unix:{qmp},server=on,wait=off"]
            return argv
        return argv_fn

    return {
        "ours": Machine("ours", "vmm (KVM)", True, ours, True),
        "microvm-kvm": Machine("microvm-kvm", "QEMU microvm, KVM", False,
                               qemu("microvm", "kvm"), False),
        "pc-tcg": Machine("pc-tcg", "QEMU pc, TCG", False, qemu("pc", "tcg"), True),
        "pc-kvm": Machine("pc-kvm", "QEMU pc, KVM", False, qemu("pc", "kvm"), True, slow=True),
    }


# --------------------------------------------------------------------------
# the trivial PVH kernel


def trivial_pvh_elf(message=b"trivial pvh kernel\r\n"):
    """ELF64 with one PT_LOAD at 1 MiB and a PT_NOTE holding the Xen PVH
    entry note (type 18, name "Xen", 4-byte entry), as tests/common/pvh_elf.rs
    lays it out. 32-bit code: print `message` to COM1, write 0 to port 0xF4,
    halt."""
    load = 0x10_0000
    code = bytearray(b"\xfc")  # cld
    code += b"\xbe" + b"\0\0\0\0"  # mov esi, message (patched below)
    code += b"\x66\xba\xf8\x03"  # mov dx, 0x3f8
    loop = len(code)
    code += b"\xac"  # lodsb
    code += b"\x84\xc0"  # test al, al
    code += b"\x74\x03"  # jz done
    code += b"\xee"  # out dx, al
    code += b"\xeb" + bytes([(loop - (len(code) + 2)) & 0xFF])  # jmp loop
    code += b"\x66\xba\xf4\x00"  # done: mov dx, 0xf4
    code += b"\x31\xc0"  # xor eax, eax
    code += b"\xef"  # out dx, eax
    code += b"\xf4\xeb\xfd"  # hlt; jmp hlt
    code[2:6] = struct.pack("<I", load + len(code))
    code += message + b"\0"
    note = struct.pack("<III", 4, 4, 18) + b"Xen\0" + struct.pack("<I", load)
    phnum = 2
    code_off = 64 + 56 * phnum
    note_off = code_off + len(code)
    ehdr = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    ehdr += struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, load, 64, 0, 0, 64, 56, phnum, 0, 0, 0)
    phdrs = b""
    for kind, off, addr, size in [(1, code_off, load, len(code)), (4, note_off, 0, len(note))]:
        phdrs += struct.pack("<IIQQQQQQ", kind, 7, off, addr, addr, size, size, 4)
    return ehdr + phdrs + bytes(code) + note


# --------------------------------------------------------------------------
# processes and the serial output


def proc_cpu_ns(pid):
    """On-CPU nanoseconds of all the process's live threads (schedstat)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except FileNotFoundError:
            pass
    return total


def proc_context_switches(pid):
    """(voluntary, involuntary) context switches summed over all threads."""
    vol = invol = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches:"):
                        vol += int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches:"):
                        invol += int(line.split()[1])
        except FileNotFoundError:
            pass
    return vol, invol


def proc_vm_hwm_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None


class Process:
    """A child process whose stdout (COM1) a blocking reader thread reads and
    timestamps chunk by chunk as it arrives; stderr goes to a file."""

    def __init__(self, argv, workdir):
        self.argv = argv
        self.stderr_file = tempfile.TemporaryFile(dir=workdir)
        self.data = bytearray()
        self.ends = []  # end offset of each chunk read
        self.times = []  # perf_counter when that chunk was read
        self.cond = threading.Condition()
        self.eof = False
        self.rusage = None
        self.status = None
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self.stderr_file, start_new_session=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    @property
    def pid(self):
        return self.proc.pid

    def _read(self):
        fd = self.proc.stdout.fileno()
        while True:
            try:
                chunk = os.read(fd, 65536)  # blocks until bytes arrive
            except OSError:
                chunk = b""
            now = time.perf_counter()
            with self.cond:
                if not chunk:
                    self.eof = True
                    self.cond.notify_all()
                    return
                self.data += chunk
                self.ends.append(len(self.data))
                self.times.append(now)
                self.cond.notify_all()

    def exited(self):
        """Whether the process has exited (without reaping it: `reap` wants
        its rusage)."""
        if self.status is not None:
            return True
        return os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None

    def mark(self):
        with self.cond:
            return len(self.data)

    def time_of(self, offset):
        """When the byte at `offset` was read."""
        with self.cond:
            return self.times[bisect.bisect_right(self.ends, offset)]

    def wait_for(self, needle, start=0, timeout=10.0):
        """(end offset, arrival time of the needle's last byte), or None."""
        deadline = time.perf_counter() + timeout
        with self.cond:
            while True:
                found = self.data.find(needle, start)
                if found >= 0:
                    end = found + len(needle)
                    return end, self.times[bisect.bisect_right(self.ends, end - 1)]
                left = deadline - time.perf_counter()
                if left <= 0 or (self.eof and self.exited()):
                    return None
                self.cond.wait(min(left, 0.5))

    def must(self, needle, start=0, timeout=10.0):
        hit = self.wait_for(needle, start, timeout)
        if hit is None:
            raise BenchError(f"{os.path.basename(self.argv[0])}: no {needle!r} within "
                             f"{timeout:.0f} s; output tail {bytes(self.data[-300:])!r}; "
                             f"stderr {self.stderr()[-300:]!r}")
        return hit

    def reap(self, timeout=None):
        """Waits for the exit (killing after `timeout`); (status, rusage, wall)."""
        if self.status is None:
            deadline = None if timeout is None else time.perf_counter() + timeout
            while True:
                pid, status, rusage = os.wait4(self.pid, os.WNOHANG if deadline else 0)
                if pid:
                    break
                if time.perf_counter() > deadline:
                    self.kill()
                    pid, status, rusage = os.wait4(self.pid, 0)
                    break
                time.sleep(0.0005)
            self.wall = time.perf_counter() - self.started
            self.status = os.waitstatus_to_exitcode(status)
            self.proc.returncode = self.status
            self.rusage = rusage
            self.reader.join(2)
        return self.status, self.rusage, self.wall

    def kill(self):
        if not self.exited():
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def stderr(self):
        self.stderr_file.seek(0)
        return self.stderr_file.read().decode(errors="replace")

    def close(self):
        self.kill()
        self.reap()
        self.proc.stdout.close()
        self.stderr_file.close()


class BenchError(Exception):
    pass


_SUBREAPER = False


def peak_rss_run(argv, limit):
    """Runs argv to its exit and returns (exit status, peak RSS in MiB), the
    peak as `wait4`'s `ru_maxrss` of that process alone.

    Not from a child Python forks: Linux keeps in `ru_maxrss` the high-water
    mark of the memory a process had before `exec`, and a child forked (or
    vforked) from this Python starts with this Python's pages, 40-50 MiB.
    So /bin/sh (small after its exec) starts the command in the background and
    exits; this process, a child subreaper, inherits the command and waits
    for it itself."""
    global _SUBREAPER
    if not _SUBREAPER:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(36, 1, 0, 0, 0) != 0:  # PR_SET_CHILD_SUBREAPER
            raise BenchError("prctl(PR_SET_CHILD_SUBREAPER) failed")
        _SUBREAPER = True
    sh = subprocess.run(["/bin/sh", "-c", '"$@" </dev/null >/dev/null 2>&1 & echo $!', "sh",
                         *argv], stdout=subprocess.PIPE, check=True)
    pid = int(sh.stdout)
    deadline = time.perf_counter() + limit
    while True:
        got, status, rusage = os.wait4(pid, os.WNOHANG)
        if got:
            return os.waitstatus_to_exitcode(status), rusage.ru_maxrss / 1024
        if time.perf_counter() > deadline:
            os.kill(pid, signal.SIGKILL)
            _, status, rusage = os.wait4(pid, 0)
            return None, rusage.ru_maxrss / 1024
        time.sleep(0.001)


# --------------------------------------------------------------------------
# QMP: one synchronous client for both sides


class Qmp:
    def __init__(self, path, timeout=30.0):
        deadline = time.perf_counter() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.perf_counter() > deadline:
                    raise BenchError(f"no QMP socket at {path}")
                time.sleep(0.005)
        self.sock.settimeout(30)
        self.file = self.sock.makefile("rb")
        json.loads(self.file.readline())  # greeting
        self.execute("qmp_capabilities")

    def execute(self, command, arguments=None):
        """Sends one command; (reply, seconds from send to the reply)."""
        message = {"execute": command}
        if arguments is not None:
            message["arguments"] = arguments
        raw = json.dumps(message).encode() + b"\n"
        sent = time.perf_counter()
        self.sock.sendall(raw)
        while True:
            line = self.file.readline()
            if not line:
                raise BenchError(f"QMP closed during {command}")
            reply = json.loads(line)
            if "return" in reply or "error" in reply:
                if "error" in reply:
                    raise BenchError(f"QMP {command}: {reply['error']}")
                return reply, time.perf_counter() - sent

    def send_key(self, qcode, hold_ms=1):
        return self.execute("send-key", {"keys": [{"type": "qcode", "data": qcode}],
                                         "hold-time": hold_ms})

    def send_combo(self, qcodes, hold_ms=1):
        return self.execute("send-key", {"keys": [{"type": "qcode", "data": q} for q in qcodes],
                                         "hold-time": hold_ms})

    def key_event(self, qcode, down):
        return self.execute("input-send-event", {"events": [
            {"type": "key", "data": {"down": down, "key": {"type": "qcode", "data": qcode}}}]})

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def qcode(ch):
    if ch == " ":
        return "spc"
    if ch == "\n":
        return "ret"
    if ch.isalnum() and ch.isascii():
        return ch.lower()
    raise ValueError(f"no qcode for {ch!r}")


# --------------------------------------------------------------------------
# a booted guest at its prompt


class Session:
    """The guest booted on `machine`, at its prompt, with a QMP connection."""

    def __init__(self, bench, machine, extra=()):
        self.bench = bench
        self.machine = machine
        self.qmp_path = os.path.join(bench.work, f"qmp-{machine.key}-{bench.next_id()}.sock")
        argv = machine.argv(bench.guest_elf, qmp=self.qmp_path) + list(extra)
        self.process = Process(argv, bench.work)
        self.qmp = None
        try:
            _, self.prompt_time = self.process.must(b"> ", 0, 90 if machine.slow else 30)
            self.prompt_offset = self.process.mark()
            self.qmp = Qmp(self.qmp_path)
        except BaseException:
            self.close()
            raise

    def type_echoed(self, text, gap=0.002):
        """Types `text` key by key, each after the previous one's echo."""
        for ch in text:
            mark = self.process.mark()
            self.qmp.send_key(qcode(ch))
            self.process.must(b"\n" if ch == "\n" else ch.encode(), mark, 10)
            time.sleep(gap)

    def command(self, line):
        """Types `line` and Enter; the time Enter was sent and the offset after it."""
        self.type_echoed(line)
        mark = self.process.mark()
        sent = time.perf_counter()
        self.qmp.send_key("ret")
        return sent, mark

    def clear_line(self):
        """Ctrl+C: drops whatever a lossy run left on the line; a new prompt."""
        mark = self.process.mark()
        self.qmp.send_combo(["ctrl", "c"])
        end, _ = self.process.must(b"^C", mark, 10)
        self.process.must(b"> ", end, 10)
        time.sleep(0.05)

    def stats(self):
        """Runs `stats` with Enter held until it printed, so the Enter's break
        code is counted by the next `stats`; {name: value}."""
        self.type_echoed("stats")
        mark = self.process.mark()
        self.qmp.key_event("ret", True)
        end, _ = self.process.must(b"halts:", mark, 20)
        self.process.must(b"> ", end, 20)
        self.qmp.key_event("ret", False)
        text = self.process.data[mark:].decode(errors="replace")
        return {k: int(v) for k, v in re.findall(r"\n(\w+): (\d+)", text)}

    def close(self):
        if self.qmp:
            self.qmp.close()
        self.process.close()


# --------------------------------------------------------------------------
# statistics


def pct(values, p):
    """Percentile by linear interpolation (p in 0..100)."""
    v = sorted(values)
    if not v:
        return float("nan")
    k = (len(v) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def summary(values, spread="minmax"):
    if not values:
        return None
    return {"median": statistics.median(values),
            "lo": min(values) if spread == "minmax" else pct(values, 10),
            "hi": max(values) if spread == "minmax" else pct(values, 90),
            "spread": "min-max" if spread == "minmax" else "p10-p90",
            "n": len(values)}


# --------------------------------------------------------------------------
# the benchmark


class Bench:
    def __init__(self, args):
        self.args = args
        self.quick = args.quick
        self.runs = args.runs
        self.pc_kvm_runs = min(args.pc_kvm_runs, self.runs)
        self.work = tempfile.mkdtemp(prefix="vmm-bench-")
        self.counter = 0
        self.machines = make_machines(args.vmm)
        self.selected = args.machines
        self.guest_elf = os.path.join(self.work, "guest.elf")
        subprocess.run([args.vmm, "--export-guest", self.guest_elf], check=True)
        self.trivial_elf = os.path.join(self.work, "trivial.elf")
        with open(self.trivial_elf, "wb") as f:
            f.write(trivial_pvh_elf())
        self.raw = {}  # case -> machine -> data
        self.notes = {}  # case -> list of notes
        self.rows = []  # table rows

    def next_id(self):
        self.counter += 1
        return self.counter

    def log(self, message):
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    def runs_for(self, machine, runs=None):
        runs = self.runs if runs is None else runs
        return min(runs, self.pc_kvm_runs) if machine.slow else runs

    def alternate(self, machines, fn, runs=None):
        """Calls fn(machine, run) for every run, alternating the machines
        (order reversed on odd runs); returns {key: [results]}."""
        machines = [m for m in machines if m.key in self.selected]
        results = {m.key: [] for m in machines}
        runs = self.runs if runs is None else runs
        for run in range(runs):
            order = machines if run % 2 == 0 else list(reversed(machines))
            for m in order:
                if run >= self.runs_for(m, runs):
                    continue
                self.log(f"{fn.__name__} {m.key} run {run + 1}")
                results[m.key].append(fn(m, run))
        return results

    def note(self, case, text):
        self.notes.setdefault(case, []).append(text)

    def row(self, case, metric, unit, better, values, spread="minmax", cells=None):
        """values: {machine key: [samples]} or None per machine; cells overrides text."""
        self.rows.append({"case": case, "metric": metric, "unit": unit, "better": better,
                          "stats": {k: (summary(v, spread) if isinstance(v, list) else v)
                                    for k, v in values.items()},
                          "cells": cells or {}})

    # ---- boot to exit ---------------------------------------------------

    def boot_once(self, machine, elf, cmdline, detect, value=0):
        """One boot to exit: wall ms, then peak RSS of a second identical boot
        (see peak_rss_run), or None when `detect` and the guest did not exit
        (no support for the cmdline)."""
        p = Process(machine.argv(elf, cmdline), self.work)
        try:
            limit = (40 if machine.slow else 10)
            if detect:
                # Not supported: the guest shows its prompt and stays there.
                hit = p.wait_for(b"> ", 0, limit)
                if hit is not None:
                    deadline = time.perf_counter() + 2.0
                    while not p.exited() and time.perf_counter() < deadline:
                        time.sleep(0.005)
                    if not p.exited():
                        return None
            status, rusage, wall = p.reap(timeout=limit)
            if status != machine.exit_status(value):
                if detect:
                    return None
                raise BenchError(f"{machine.label}: exit status {status}, expected "
                                 f"{machine.exit_status(value)}; stderr {p.stderr()[-300:]!r}")
        finally:
            p.close()
        rss_status, maxrss = peak_rss_run(machine.argv(elf, cmdline), limit)
        if rss_status != machine.exit_status(value):
            raise BenchError(f"{machine.label}: exit status {rss_status} in the RSS run")
        return {"wall_ms": wall * 1000, "maxrss_mib": maxrss, "status": status}

    def case_boot(self):
        ms = [self.machines[k] for k in ("ours", "microvm-kvm", "pc-tcg", "pc-kvm")]
        supported = {}

        def boot_guest(m, run):
            if supported.get(m.key) is False:
                return None
            r = self.boot_once(m, self.guest_elf, "run=exit 0", detect=True)
            supported[m.key] = r is not None
            return r
        res = self.alternate(ms, boot_guest)
        self.raw["boot"] = res
        self._boot_rows("boot", res, "guest `run=exit 0`")

    def case_boot_trivial(self):
        ms = [self.machines[k] for k in ("ours", "microvm-kvm", "pc-tcg", "pc-kvm")]

        def boot_trivial(m, run):
            return self.boot_once(m, self.trivial_elf, "", detect=False)
        res = self.alternate(ms, boot_trivial)
        self.raw["boot-trivial"] = res
        self._boot_rows("boot-trivial", res, "trivial PVH kernel")
        # Where our few milliseconds go: the process alone (exec, dynamic
        # loading, argument parsing) and the boot without the seccomp filters
        # (compiled and installed in each of the VMM's threads).
        ours = self.machines["ours"]

        def wall_ms(argv):
            p = Process(argv, self.work)
            try:
                status, _, wall = p.reap(timeout=10)
            finally:
                p.close()
            if status != 0:
                raise BenchError(f"{argv}: exit status {status}")
            return wall * 1000
        version, unfiltered = [], []
        for _ in range(self.runs):
            version.append(wall_ms([self.args.vmm, "--version"]))
            unfiltered.append(wall_ms(ours.argv(self.trivial_elf, "") + ["--no-seccomp"]))
        self.raw["boot-trivial-breakdown"] = {"version_ms": version, "no_seccomp_ms": unfiltered}
        self.row("boot-trivial", "ours: `vmm --version` (exec, loading, arguments), start to exit",
                 "ms", "lower", {"ours": version})
        self.row("boot-trivial", "ours: trivial PVH kernel with `--no-seccomp`, start to exit",
                 "ms", "lower", {"ours": unfiltered})

    def _boot_rows(self, case, res, what):
        unsupported = {k: "not supported by this guest" for k, v in res.items()
                       if v and all(x is None for x in v)}
        walls = {k: [x["wall_ms"] for x in v if x] for k, v in res.items()}
        rss = {k: [x["maxrss_mib"] for x in v if x] for k, v in res.items()}
        self.row(case, f"{what}: process start to exit", "ms", "lower", walls,
                 cells=unsupported)
        self.row(case, f"{what}: peak RSS", "MiB", "lower", rss, cells=unsupported)

    # ---- key to echo ----------------------------------------------------

    def case_latency(self):
        keys = 20 if self.quick else self.args.keys
        ms = [self.machines[k] for k in ("ours", "pc-tcg", "pc-kvm")]
        letters = "abcdefghijklmnopqrstuvwxyz"
        warmup = 5

        def latency(m, run):
            # Ours also times each key inside the VMM, from the press reaching
            # the keyboard model to the echo leaving the UART: in its exit
            # record, written when QMP `quit` ends the session.
            record = os.path.join(self.work, f"exit-record-{self.next_id()}.json")
            s = Session(self, m, ["--exit-record", record] if m.ours else [])
            try:
                time.sleep(0.2)
                echo, reply = [], []
                for i in range(warmup + keys):
                    letter = letters[i % 26]
                    mark = s.process.mark()
                    sent = time.perf_counter()
                    _, rtt = s.qmp.send_key(letter)
                    _, arrived = s.process.must(letter.encode(), mark, 10)
                    if i >= warmup:
                        echo.append((arrived - sent) * 1000)
                        reply.append(rtt * 1000)
                    time.sleep(0.005)
                result = {"echo_ms": echo, "reply_ms": reply}
                if m.ours:
                    s.qmp.execute("quit")
                    s.process.reap(10)
                    with open(record) as f:
                        inside = json.load(f)["stats"]["key_echo"]
                    # The warm-up keys are in it too: it covers every key.
                    result["inside_p50_ms"] = inside["p50_us"] / 1000
                    result["inside_p99_ms"] = inside["p99_us"] / 1000
                    result["inside_keys"] = inside["count"]
                return result
            finally:
                s.close()
        res = self.alternate(ms, latency)
        self.raw["latency"] = res
        echo = {k: [x for r in v for x in r["echo_ms"]] for k, v in res.items()}
        reply = {k: [x for r in v for x in r["reply_ms"]] for k, v in res.items()}
        p99 = {k: {"median": pct(v, 99), "lo": None, "hi": None, "n": len(v),
                   "spread": ""} for k, v in echo.items()}
        self.row("latency", "key to echo, p50 of all keys", "ms", "lower", echo, spread="p10-p90")
        self.rows.append({"case": "latency", "metric": "key to echo, p99 of all keys", "unit": "ms",
                          "better": "lower", "stats": p99, "cells": {}})
        self.row("latency", "QMP send-key reply time, p50", "ms", "lower", reply, spread="p10-p90")
        ours = res.get("ours", [])
        if ours and "inside_p50_ms" in ours[0]:
            self.row("latency", "inside our VMM: key press to echo byte, p50 per run", "ms", "lower",
                     {"ours": [r["inside_p50_ms"] for r in ours]})
            self.row("latency", "inside our VMM: key press to echo byte, p99 per run", "ms", "lower",
                     {"ours": [r["inside_p99_ms"] for r in ours]})
            self.note("latency", "inside our VMM: from the press reaching the keyboard model "
                      "(`VmHandle::key_event`, under the machine lock) to the next byte the guest "
                      "transmits on COM1, timed by the VMM on its monotonic clock (10 µs buckets), "
                      "every key of the session (warm-up included), read from `--exit-record`'s "
                      "`stats.key_echo` after QMP `quit`. The rest of the host-measured figure is "
                      "the QMP command's way in and the serial output's way out.")
        self.note("latency", f"{keys} keys per run after {warmup} warm-up keys (not counted), "
                  "letters a-z in turn, `send-key` with `hold-time` 1 ms, 5 ms after each echo.")

    # ---- typing throughput ----------------------------------------------

    def _ours_typing(self, n):
        line = "".join(chr(ord("a") + i % 26) for i in range(n))
        stats = 'type stats\npress ret\nexpect halts: 20s\nrelease ret\nexpect "> " 20s\n'
        script = (f'expect "> " 60s\n{stats}type {line}\\n\n'
                  f'expect "unknown command: " 600s\nexpect "> " 20s\n{stats}type exit 0\\n\n')
        path = os.path.join(self.work, f"type-{self.next_id()}.keys")
        with open(path, "w") as f:
            f.write(script)
        m = self.machines["ours"]
        argv = m.argv(self.guest_elf) + ["--keys", path, "--timeout", str(60 + n * 0.02)]
        p = Process(argv, self.work)
        try:
            status, _, _ = p.reap()
            if status != 0:
                raise BenchError(f"typing script: status {status}; {p.stderr()[-500:]}")
            # The script starts the line once the prompt after the first
            # `stats` shows; the host sees that prompt at (nearly) that time.
            halts, _ = p.must(b"halts:", 0, 1)
            prompt_end, start = p.must(b"> ", halts, 1)
            _, end = p.must(b"unknown command: ", prompt_end, 1)
            text = p.data.decode(errors="replace")
            values = [int(x) for x in re.findall(r"\nscancodes: (\d+)", text)]
            dropped = [int(x) for x in re.findall(r"\nscancodes_dropped: (\d+)", text)]
            expected = 1 + 2 * (n + 1 + 5) + 1
            lost = expected - (values[-1] - values[0]) + dropped[-1]
            return {"chars_per_s": (n + 1) / (end - start), "lost": lost,
                    "dropped": dropped[-1]}
        finally:
            p.close()

    def _qemu_typing(self, s, n, gap):
        """Types n letters and Enter through QMP at `gap` seconds per key."""
        line = "".join(chr(ord("a") + i % 26) for i in range(n))
        s.clear_line()
        before = s.stats()
        time.sleep(0.05)
        mark = s.process.mark()
        start = time.perf_counter()
        for i, ch in enumerate(line + "\n"):
            target = start + i * gap
            now = time.perf_counter()
            if target > now:
                time.sleep(target - now)
            s.qmp.send_key(qcode(ch))
        hit = s.process.wait_for(b"unknown command: ", mark, 3)
        if hit is None:
            return {"chars_per_s": None, "lost": None, "dropped": None, "gap_ms": gap * 1000}
        _, end = hit
        s.process.must(b"> ", hit[0], 20)
        after = s.stats()
        expected = 1 + 2 * (n + 1 + 5) + 1
        lost = expected - (after["scancodes"] - before["scancodes"]) + \
            after["scancodes_dropped"] - before["scancodes_dropped"]
        return {"chars_per_s": (n + 1) / (end - start), "lost": lost,
                "dropped": after["scancodes_dropped"], "gap_ms": gap * 1000}

    def case_typing(self):
        n = 300 if self.quick else self.args.chars
        search_n = min(n, 2000)
        # 0: back to back, each send-key as soon as the previous one was answered.
        gaps = [0.0, 0.001, 0.002, 0.003, 0.004, 0.006, 0.008, 0.012, 0.016, 0.024]
        ms = [self.machines[k] for k in ("ours", "pc-tcg", "pc-kvm")]
        chosen, searched = {}, {}

        slow_n = min(n, 2000)

        def typing(m, run):
            if m.ours:
                return self._ours_typing(n)
            count = slow_n if m.slow else n
            s = Session(self, m)
            try:
                if m.key not in chosen:
                    trials = []
                    for gap in gaps:
                        self.log(f"  {m.key}: {search_n} chars at {gap * 1000:.0f} ms")
                        r = self._qemu_typing(s, search_n, gap)
                        trials.append(r)
                        if r["lost"] == 0:
                            break
                    searched[m.key] = trials
                    good = [r for r in trials if r["lost"] == 0]
                    chosen[m.key] = good[0]["gap_ms"] / 1000 if good else None
                if chosen[m.key] is None:
                    return None
                return self._qemu_typing(s, count, chosen[m.key])
            finally:
                s.close()
        res = self.alternate(ms, typing)
        self.raw["typing"] = {"runs": res, "gap_search": searched}
        rates = {k: [r["chars_per_s"] for r in v if r and r["chars_per_s"]] for k, v in res.items()}
        lost = {k: [r["lost"] for r in v if r and r["lost"] is not None] for k, v in res.items()}
        cells = {k: "loses keys at every gap tried" for k, g in chosen.items() if g is None}
        for k, v in res.items():
            failed = sum(1 for r in v if r and r["lost"] is None)
            if failed:
                self.note("typing", f"{self.machines[k].label}: in {failed} of {len(v)} runs the "
                          "line's Enter was lost (no reply): left out of the rate and loss rows.")
        self.row("typing", f"{n} lowercase chars + Enter, chars/s", "chars/s", "higher", rates,
                 cells=cells)
        self.row("typing", "scancodes lost in those runs (max)", "", "lower",
                 {k: {"median": max(v), "lo": None, "hi": None, "n": len(v), "spread": ""}
                  if v else None for k, v in lost.items()}, cells=cells)
        if "pc-kvm" in res and slow_n < n:
            self.note("typing", f"QEMU pc + KVM types {slow_n} characters per run, not {n} "
                      "(its lossless gap is long here; the rate is per character all the same).")
        for k, trials in searched.items():
            desc = ", ".join(f"{t['gap_ms']:.0f} ms: " + ("Enter lost or line not ended"
                             if t["lost"] is None else
                             f"{t['lost']} scancodes lost, {t['chars_per_s']:.0f} chars/s")
                             for t in trials)
            pick = chosen[k]
            self.note("typing", f"{self.machines[k].label}: gap search with {search_n} chars: "
                      f"{desc}; used {pick * 1000:.0f} ms." if pick is not None else
                      f"{self.machines[k].label}: gap search with {search_n} chars: {desc}; "
                      "no gap tried was lossless.")

    # ---- idle cost ------------------------------------------------------

    def case_idle(self):
        window = 5.0 if self.quick else self.args.idle
        ms = [self.machines[k] for k in ("ours", "pc-tcg", "pc-kvm")]

        def idle(m, run):
            s = Session(self, m)
            try:
                time.sleep(2.0 if m.slow else 1.0)
                pid = s.process.pid
                t0, c0, (v0, i0) = time.perf_counter(), proc_cpu_ns(pid), \
                    proc_context_switches(pid)
                time.sleep(window)
                t1, c1, (v1, i1) = time.perf_counter(), proc_cpu_ns(pid), \
                    proc_context_switches(pid)
                return {"cpu_pct": (c1 - c0) / 1e9 / (t1 - t0) * 100,
                        "wakeups_per_s": (v1 - v0) / (t1 - t0),
                        "involuntary_per_s": (i1 - i0) / (t1 - t0),
                        "vm_hwm_mib": proc_vm_hwm_kib(pid) / 1024}
            finally:
                s.close()
        res = self.alternate(ms, idle)
        self.raw["idle"] = res
        self.row("idle", "host CPU at the prompt, % of one CPU", "%", "lower",
                 {k: [r["cpu_pct"] for r in v] for k, v in res.items()})
        self.row("idle", "thread wake-ups (voluntary context switches) per s", "/s", "lower",
                 {k: [r["wakeups_per_s"] for r in v] for k, v in res.items()})
        self.note("idle", f"{window:.0f} s window, starting 1 s after the prompt (2 s for QEMU pc + KVM).")

    # ---- timer accuracy -------------------------------------------------

    def case_timer(self):
        timers = [2000, 1000, 500] if self.quick else [10000, 5000, 2500]
        ms = [self.machines[k] for k in ("ours", "pc-tcg", "pc-kvm")]

        def timer(m, run):
            s = Session(self, m)
            try:
                time.sleep(0.2)

                def enter_to_prompt(line):
                    sent, mark = s.command(line)
                    end, _ = s.process.must(b"\n", mark, 5)
                    _, prompt = s.process.must(b"> ", end, 10)
                    return (prompt - sent) * 1000

                def enter_to_text(ms_, marker):
                    sent, mark = s.command(f"timer {ms_} {marker}")
                    end, _ = s.process.must(b"> ", mark, 5)
                    return sent, end

                # The same paths with no wait: the key, the command and the
                # output, which the errors below are net of.
                sleep_base = enter_to_prompt("sleep 0")
                sleep_raw = enter_to_prompt("sleep 1000") - 1000
                sent, end = enter_to_text(0, "tmrz")
                _, fired = s.process.must(b"tmrz", end, 5)
                timer_base = (fired - sent) * 1000
                pending = []
                for i, ms_ in enumerate(timers):
                    marker = "tmr" + "abcdefgh"[i]
                    sent, end = enter_to_text(ms_, marker)
                    pending.append((marker, ms_, sent, end))
                raw = []
                for marker, ms_, sent, end in pending:
                    _, fired = s.process.must(marker.encode(), end, ms_ / 1000 + 10)
                    raw.append((fired - sent) * 1000 - ms_)
                return {"sleep_err_ms": sleep_raw - sleep_base, "sleep_raw_ms": sleep_raw,
                        "sleep_base_ms": sleep_base, "timer_err_ms": [e - timer_base for e in raw],
                        "timer_raw_ms": raw, "timer_base_ms": timer_base}
            finally:
                s.close()
        res = self.alternate(ms, timer)
        self.raw["timer"] = res
        self.row("timer", "`sleep 1000`: error net of `sleep 0`", "ms", "lower",
                 {k: [r["sleep_err_ms"] for r in v] for k, v in res.items()})
        self.row("timer", "`sleep 1000`: Enter to prompt minus 1000 ms", "ms", "lower",
                 {k: [r["sleep_raw_ms"] for r in v] for k, v in res.items()})
        self.row("timer", f"`timer` {'/'.join(map(str, timers))} ms: error net of `timer 0`", "ms",
                 "lower", {k: [x for r in v for x in r["timer_err_ms"]] for k, v in res.items()})
        self.row("timer", f"`timer` {'/'.join(map(str, timers))} ms: fired minus due", "ms",
                 "lower", {k: [x for r in v for x in r["timer_raw_ms"]] for k, v in res.items()})
        self.note("timer", "`sleep 0`, then `sleep 1000`, typed through QMP: host time from "
                  "sending Enter to the next prompt's arrival; the raw error is that minus 1000 ms, "
                  "and the net error subtracts the same for `sleep 0` in the same session (the "
                  "Enter's way to the shell, the command and the prompt's way out, which a "
                  "1000 ms sleep also pays and the latency case measures). Then `timer 0`, and "
                  f"three `timer` commands typed back to back ({', '.join(map(str, timers))} ms); "
                  "each raw error is the host time from sending its Enter to its text arriving, "
                  "minus the requested time; the net error subtracts `timer 0`'s. What the net "
                  "errors keep is the timer's own lateness: the deadline, the timer interrupt and "
                  "the guest's way from it to the waiting task. Positive = late.")

    # ---- footprint ------------------------------------------------------

    def case_footprint(self):
        ms = [self.machines[k] for k in ("ours", "pc-tcg", "pc-kvm")]

        def footprint(m, run):
            s = Session(self, m)
            try:
                s.type_echoed("echo hello\n")
                time.sleep(0.5)
                hwm = proc_vm_hwm_kib(s.process.pid) / 1024
            finally:
                s.close()
            return {"vm_hwm_mib": hwm}
        res = self.alternate(ms, footprint)
        self.raw["footprint"] = res
        self.row("footprint", f"peak RSS (VmHWM), guest at its prompt after `echo hello` "
                 f"({MEMORY_MIB} MiB RAM)", "MiB",
                 "lower", {k: [r["vm_hwm_mib"] for r in v] for k, v in res.items()})

    # ---- KVM's counters per keystroke and per idle second -------------

    def _counters(self, s):
        """KVM's per-vCPU counters (QMP `query-stats`, summed over vCPUs),
        the process's user and system CPU time and the host time, at once."""
        reply, _ = s.qmp.execute("query-stats", {"target": "vcpu"})
        counters = {}
        for entry in reply["return"]:
            for stat in entry["stats"]:
                if isinstance(stat["value"], int) and not isinstance(stat["value"], bool):
                    counters[stat["name"]] = counters.get(stat["name"], 0) + stat["value"]
        counters["cpu_us"] = proc_cpu_ns(s.process.pid) / 1000
        return time.perf_counter(), counters

    def case_vmm_stats(self):
        n = 100 if self.quick else self.args.keys
        window = 2.0 if self.quick else 10.0
        ms = [self.machines[k] for k in ("ours", "pc-kvm")]
        letters = "abcdefghijklmnopqrstuvwxyz"

        def vmm_stats(m, run):
            s = Session(self, m)
            try:
                time.sleep(2.0 if m.slow else 1.0)
                t0, c0 = self._counters(s)
                time.sleep(window)
                t1, c1 = self._counters(s)
                s.type_echoed("".join(letters[i % 26] for i in range(n)), gap=0.001)
                t2, c2 = self._counters(s)
                per_idle = {k: (c1[k] - c0[k]) / (t1 - t0) for k in c0}
                # Typing took t2 - t1 of host time; what an idle guest costs
                # in that time is not the keys' cost.
                per_key = {k: (c2[k] - c1[k] - per_idle[k] * (t2 - t1)) / n for k in c0}
                return {"per_key": per_key, "per_idle_s": per_idle}
            finally:
                s.close()
        res = self.alternate(ms, vmm_stats, runs=1 if self.quick else min(self.runs, 5))
        self.raw["vmm-stats"] = res
        for key, label, unit in [("exits", "KVM exits (`exits`)", ""),
                                 ("io_exits", "port I/O exits (`io_exits`)", ""),
                                 ("halt_exits", "halt exits (`halt_exits`)", ""),
                                 ("irq_injections", "interrupts injected (`irq_injections`)", ""),
                                 ("insn_emulation", "emulated instructions (`insn_emulation`)", ""),
                                 ("cpu_us", "process CPU time, all threads", "µs")]:
            for what, per in [("per keystroke", "per_key"), ("per idle second", "per_idle_s")]:
                values = {k: [r[per].get(key, float("nan")) for r in v] for k, v in res.items()}
                self.row("vmm-stats", f"{what}: {label}", unit, "lower", values)
        self.note("vmm-stats", f"one session per run: KVM's counters read by QMP `query-stats` "
                  "(target `vcpu`) 1 s after the prompt (2 s for QEMU pc + KVM), after "
                  f"{window:.0f} s idle, and after {n} letters typed with `send-key` (each after "
                  "the previous echo, 1 ms apart); per keystroke = the typing difference minus "
                  "the idle rate over the typing time, divided by the letters. Process CPU time "
                  "= the on-CPU time of every thread (/proc/PID/task/*/schedstat, ns), read at "
                  "the same moments. Both VMMs' "
                  "time includes their handling of the QMP commands.")

    # ---- driver ---------------------------------------------------------

    def run(self, cases):
        for case in cases:
            self.log(f"case {case}")
            started = time.perf_counter()
            getattr(self, "case_" + case.replace("-", "_"))()
            self.log(f"case {case} took {time.perf_counter() - started:.1f} s")


# --------------------------------------------------------------------------
# output


def fmt(x):
    if x is None or x != x:
        return "-"
    a = abs(x)
    if a >= 1000:
        return f"{x:,.0f}"
    if a >= 100:
        return f"{x:.0f}"
    if a >= 10:
        return f"{x:.1f}"
    if 0 < a < 0.01:
        return f"{x:.2g}"
    return f"{x:.2f}"


COLUMNS = ["ours", "microvm-kvm", "pc-tcg", "pc-kvm"]


def target_lines(bench, cases):
    """The performance issue's targets against this run's medians: one
    Markdown bullet each, met or missed by how much and why."""
    def median(case, prefix, machine):
        for r in bench.rows:
            if r["case"] == case and r["metric"].startswith(prefix):
                st = r["stats"].get(machine)
                return st["median"] if st else None
        return None

    def verdict(ok):
        return "**met**" if ok else "**missed**"

    lines = []
    w = lines.append
    per_key_insns = median("vmm-stats", "per keystroke: emulated", "ours")
    per_key_exits = median("vmm-stats", "per keystroke: KVM exits", "ours")
    qemu_key_insns = median("vmm-stats", "per keystroke: emulated", "pc-kvm")
    if "idle" in cases:
        ours = median("idle", "host CPU", "ours")
        tcg = median("idle", "host CPU", "pc-tcg")
        wake = median("idle", "thread wake-ups", "ours")
        if ours is not None:
            text = (f"- idle under 0.1 % of a CPU, no periodic wake-up: {verdict(ours < 0.1 and wake == 0)} "
                    f"(ours {fmt(ours)} %, {fmt(wake)} wake-ups/s)")
            if tcg is not None:
                text += (f"; 40x below QEMU pc + TCG: QEMU pc + TCG is at {fmt(tcg)} %"
                         + (f", ratio {tcg / ours:.0f}x: {verdict(tcg / ours >= 40)}" if ours > 0 else
                            (": both idle at zero, no ratio to take (the guest is tickless in "
                             "both)" if tcg == 0 else ": ours is zero")))
            w(text + ".")
    if "latency" in cases:
        ours = median("latency", "key to echo, p50", "ours")
        p99 = median("latency", "key to echo, p99", "ours")
        tcg = median("latency", "key to echo, p50", "pc-tcg")
        if ours is not None and tcg is not None:
            text = (f"- key-to-echo p50 3x below QEMU pc + TCG: {verdict(tcg / ours >= 3)} "
                    f"(ours {fmt(ours)} ms, TCG {fmt(tcg)} ms: {tcg / ours:.2f}x; 3x would be "
                    f"{fmt(tcg / 3)} ms)")
            if tcg / ours < 3 and per_key_insns is not None:
                text += (f". Why: each keystroke is {fmt(per_key_insns)} guest instructions "
                         f"that `kvm_pvm` emulates one by one (about 1.3 µs each) and "
                         f"{fmt(per_key_exits)} exits")
                if qemu_key_insns is not None:
                    text += (f"; QEMU pc + KVM's `insn_emulation` for the same guest is "
                             f"{fmt(qemu_key_insns)}: the count is the guest's, not the VMM's")
                text += ("; TCG translates those instructions to host code. "
                         "About 310 of them lie between the key's interrupt and the echo "
                         "(`bench/insn_profile.py`), about 0.4 ms on this host")
            w(text + ".")
        if ours is not None and p99 is not None:
            text = (f"- key-to-echo p99 under 2x our p50: {verdict(p99 < 2 * ours)} "
                    f"(p99 {fmt(p99)} ms, p50 {fmt(ours)} ms: {p99 / ours:.2f}x)")
            inside50 = median("latency", "inside our VMM: key press to echo byte, p50", "ours")
            inside99 = median("latency", "inside our VMM: key press to echo byte, p99", "ours")
            if p99 >= 2 * ours and inside50 and inside99:
                text += (f". Why: inside the VMM (press to echo byte) the p50 is {fmt(inside50)} ms "
                         f"and the median run's p99 {fmt(inside99)} ms "
                         f"({inside99 / inside50:.1f}x: the halted vCPU thread's wake-up and "
                         "the emulated guest); the rest of the tail is outside the machine, in "
                         "the host's thread hand-offs on the way in (QMP thread, key worker) and "
                         "out (the stdout writer thread, the reader), each a wake-up of a thread "
                         "that may wait for one of this host's 2 CPUs")
            w(text + ".")
    if "typing" in cases:
        ours = median("typing", f"{bench.args.chars if not bench.quick else 300} lowercase", "ours")
        lost = median("typing", "scancodes lost", "ours")
        best = [median("typing", f"{bench.args.chars if not bench.quick else 300} lowercase", k)
                for k in ("pc-tcg", "pc-kvm")]
        best = max([b for b in best if b], default=None)
        if ours is not None:
            text = (f"- typing at least 2,000 chars/s with zero loss: "
                    f"{verdict(ours >= 2000 and lost == 0)} ({fmt(ours)} chars/s, "
                    f"{fmt(lost)} scancodes lost at most)")
            if best:
                text += (f"; at least 5x QEMU's best lossless rate: {verdict(ours / best >= 5)} "
                         f"({fmt(best)} chars/s, {ours / best:.1f}x)")
            if ours < 2000 and per_key_insns is not None:
                text += (f". Why: a character costs {fmt(per_key_insns)} emulated guest "
                         f"instructions and {fmt(per_key_exits)} exits, about "
                         f"{per_key_insns * 1.3 / 1000 + per_key_exits * 0.008:.2f} ms of vCPU "
                         "time at about 1.3 µs per instruction and 8 µs per exit: typing is bound "
                         "by the emulated guest")
            w(text + ".")
    if "boot" in cases:
        ours = median("boot", "guest `run=exit 0`: process start", "ours")
        tcg = median("boot", "guest `run=exit 0`: process start", "pc-tcg")
        if ours and tcg:
            w(f"- boot 5x faster than QEMU pc + TCG: {verdict(tcg / ours >= 5)} "
              f"({fmt(ours)} ms against {fmt(tcg)} ms, {tcg / ours:.1f}x).")
    if "boot-trivial" in cases:
        ours = median("boot-trivial", "trivial PVH kernel: process start", "ours")
        micro = median("boot-trivial", "trivial PVH kernel: process start", "microvm-kvm")
        if ours and micro:
            text = (f"- the minimal PVH kernel 10x faster than QEMU microvm + KVM: "
                    f"{verdict(micro / ours >= 10)} ({fmt(ours)} ms against {fmt(micro)} ms, "
                    f"{micro / ours:.1f}x)")
            version = median("boot-trivial", "ours: `vmm --version`", "ours")
            unfiltered = median("boot-trivial", "ours: trivial PVH kernel with", "ours")
            if micro / ours < 10 and version and unfiltered:
                text += (f". Why: of our {fmt(ours)} ms, {fmt(version)} ms is the process "
                         "alone (`vmm --version`: exec, dynamic loading, argument parsing) and "
                         f"{fmt(ours - unfiltered)} ms the seccomp filters, compiled and installed "
                         f"in each of the VMM's threads (without them: {fmt(unfiltered)} ms, "
                         f"{micro / unfiltered:.1f}x); the rest is the KVM VM, memory and vCPU "
                         "set-up, the threads, the guest's 21 port writes and the teardown. The "
                         "sandbox stays on")
            w(text + ".")
    if "footprint" in cases:
        ours = median("footprint", "peak RSS", "ours")
        qemu = [median("footprint", "peak RSS", k) for k in ("pc-tcg", "pc-kvm")]
        qemu = min([q for q in qemu if q], default=None)
        if ours and qemu:
            w(f"- peak RSS at most 1/8 of QEMU's: {verdict(qemu / ours >= 8)} ({fmt(ours)} MiB "
              f"against QEMU's smallest {fmt(qemu)} MiB, 1/{qemu / ours:.1f})")
    if "timer" in cases:
        ours = median("timer", "`sleep 1000`: error net", "ours")
        raw = median("timer", "`sleep 1000`: Enter to prompt", "ours")
        timers = median("timer", "`timer` ", "ours")
        if ours is not None:
            text = (f"- `sleep 1000` within 1 ms: {verdict(abs(ours) <= 1)} (median error "
                    f"{fmt(ours)} ms net of `sleep 0`; {fmt(raw)} ms from the Enter to the "
                    "prompt, which includes the key's way to the shell and the prompt's way "
                    "out")
            if timers is not None:
                text += f"; `timer`s {fmt(timers)} ms net of `timer 0`"
            w(text + ").")
    return lines



def write_markdown(bench, path, cases, elapsed):
    m = bench.machines
    out = []
    w = out.append
    w(f"# VMM vs QEMU benchmark, {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC\n")
    qemu_version = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True,
                                  text=True).stdout.splitlines()[0]
    w(f"- host: {os.uname().nodename}, {os.cpu_count()} CPUs, Linux {os.uname().release}; "
      f"load average at the end {os.getloadavg()[0]:.2f}")
    w(f"- {qemu_version}; our VMM `{bench.args.vmm}`; the same guest ELF (`vmm --export-guest`) "
      f"and {MEMORY_MIB} MiB of guest RAM everywhere")
    w(f"- command: `python3 bench/report.py {' '.join(sys.argv[1:])}`"
      f"{' (QUICK: a smoke run, not a measurement)' if bench.quick else ''}")
    w(f"- runs per case: {bench.runs}, machines alternating run by run (order reversed every "
      f"other run); QEMU pc + KVM: {bench.pc_kvm_runs} run(s) only (seconds of firmware each); "
      f"took {elapsed:.0f} s\n")
    w("Each cell: median, then the spread in brackets (min-max over runs, or p10-p90 of all "
      "samples where the metric says p50), then `n=` samples; QEMU cells end with the ratio "
      "QEMU/ours of the medians. `better` says which direction is better.\n")
    columns = [k for k in COLUMNS if k in bench.selected]
    w("| case | metric | better | " + " | ".join(m[k].label for k in columns) + " |")
    w("| --- | --- | --- | " + " | ".join("---" for _ in columns) + " |")
    for r in bench.rows:
        if r["case"] not in cases:
            continue
        ours = r["stats"].get("ours")
        cells = []
        for k in columns:
            if k in r["cells"]:
                cells.append(r["cells"][k])
                continue
            st = r["stats"].get(k)
            if st is None:
                cells.append("" if k not in r["stats"] else "no data")
                continue
            text = fmt(st["median"]) + (f" {r['unit']}" if r["unit"] else "")
            if st["lo"] is not None:
                text += f" [{fmt(st['lo'])}-{fmt(st['hi'])}]"
            text += f" n={st['n']}"
            # A ratio of signed errors (timer) means nothing when either is <= 0.
            if k != "ours" and ours and ours["median"] > 0 and st["median"] > 0:
                text += f", ×{st['median'] / ours['median']:.2f}"
            cells.append(text)
        w(f"| {r['case']} | {r['metric']} | {r['better']} | " + " | ".join(cells) + " |")
    targets = target_lines(bench, cases)
    if targets:
        w("\n## The issue's targets\n")
        w("Ratios from the medians above, in this run. Why a target is missed, from this run's "
          "counters where it has them.\n")
        out.extend(targets)
    w("\n## How each number was measured\n")
    methods = {
        "boot": "`vmm --cmdline 'run=exit 0'` / QEMU `-append 'run=exit 0'` with the guest: wall time "
                "from just before `Popen` to `wait4` returning (whole process: start-up, firmware for "
                "QEMU pc, guest boot, the shell line, exit). Peak RSS from a second, identical boot "
                "in the same run: `ru_maxrss` from `wait4` of a process started by `/bin/sh` and "
                "inherited by the benchmark as child subreaper (a child forked from Python would "
                "count Python's own 40-50 MiB: Linux keeps the pre-`exec` high-water mark). "
                "Exit status checked (ours 0, QEMU 1). A guest that shows its prompt and does not exit "
                "within 2 s (or does not exit at all) lacks `run=`: the cell says so.",
        "boot-trivial": "the same with a 200-byte PVH kernel built by this script (one PT_LOAD at "
                        "1 MiB, the Xen PVH note; prints one line to COM1, writes 0 to port 0xF4): "
                        "the VMM's/QEMU's own cost without the guest's.",
        "latency": "guest booted with a QMP socket, stdout (COM1) read by a blocking reader thread "
                   "that timestamps every chunk as it arrives (`perf_counter`); after the prompt one "
                   "QMP `send-key` per letter from the same synchronous client for both; latency = "
                   "arrival of the echoed letter minus the moment the command was written to the "
                   "socket. QMP reply time = command written to reply read, reported apart (ours "
                   "answers at once; QEMU answers after queueing the key).",
        "typing": "ours: a `--keys` script (`stats` with Enter held until it printed, the line and "
                  "Enter, `stats` again), timed from the host's arrival of the prompt after which the "
                  "script types the line to the arrival of `unknown command: ` (the guest's reply to "
                  "the Enter ending the line; the shell echoes only the first 4096 characters of a "
                  "line). QEMU: the same through QMP `send-key` (hold-time 1 ms) at a fixed gap, "
                  "timed from the first key sent to the same reply (QEMU queues each key's release "
                  "1 ms after its press and later keys behind it, so it spaces keys by at least "
                  "1 ms itself; gap 0 = each `send-key` right after the previous reply). Lost scancodes = expected count "
                  "(2 per letter, Enter, `stats`) minus the guest's `scancodes` difference, plus "
                  "`scancodes_dropped`.",
        "idle": "guest at its prompt, no command running (tickless: no timer pending, so no "
                "timer interrupt): "
                "on-CPU time of all the process's threads (/proc/PID/task/*/schedstat, ns) over the "
                "window divided by wall time; wake-ups = voluntary context switches summed over "
                "/proc/PID/task/*/status.",
        "timer": "`sleep` and `timer` typed through QMP, timed on the host, each net of the "
                 "same command with 0 ms (below). The guest's clock is the TSC (no tick to "
                 "count), its one-shot timer the PIT.",
        "footprint": "peak RSS of the whole process: VmHWM from /proc/PID/status (the process's "
                     "own high-water mark since its exec, all threads) read 0.5 s after the guest "
                     "at its prompt ran `echo hello`, before the process is killed.",
        "vmm-stats": "KVM's own per-vCPU counters through QMP `query-stats` (ours and QEMU "
                     "pc + KVM offer the same statistics; TCG has none) and the process's CPU "
                     "time, per keystroke and per idle second, within one session per run.",
    }
    for case in cases:
        w(f"- **{case}**: {methods[case]}")
        for n in bench.notes.get(case, []):
            w(f"  {n}")
    w("\nRaw samples: `raw.json`. Plots: " + ", ".join(
        f"`{p}`" for p in sorted(os.listdir(os.path.dirname(path))) if p.endswith(".png")) + ".")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def write_plots(bench, out_dir):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    m = bench.machines
    colors = {"ours": "tab:blue", "microvm-kvm": "tab:purple", "pc-tcg": "tab:orange",
              "pc-kvm": "tab:green"}
    made = []
    if "latency" in bench.raw:
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
        for k, runs in bench.raw["latency"].items():
            echo = sorted(x for r in runs for x in r["echo_ms"])
            if not echo:
                continue
            ax1.plot(echo, [(i + 1) / len(echo) for i in range(len(echo))], color=colors[k],
                     label=f"{m[k].label} (p50 {pct(echo, 50):.2f}, p99 {pct(echo, 99):.2f} ms)")
        ax1.set_xlabel("QMP send-key to echoed byte on the host (ms)")
        ax1.set_ylabel("fraction of keys")
        ax1.set_title("Key-to-echo latency (CDF)")
        ax1.grid(alpha=0.3)
        ax1.legend(fontsize=8)
        keys = [k for k in bench.raw["latency"] if bench.raw["latency"][k]]
        ax2.boxplot([[x for r in bench.raw["latency"][k] for x in r["echo_ms"]] for k in keys])
        ax2.set_xticks(range(1, len(keys) + 1), [m[k].label for k in keys])
        ax2.set_ylabel("ms")
        ax2.set_title("Key-to-echo latency")
        ax2.grid(alpha=0.3, axis="y")
        fig.tight_layout()
        fig.savefig(os.path.join(out_dir, "latency.png"), dpi=110)
        plt.close(fig)
        made.append("latency.png")
    if "typing" in bench.raw:
        res = bench.raw["typing"]["runs"]
        search = bench.raw["typing"]["gap_search"]
        keys = [k for k in res if any(r and r.get("chars_per_s") for r in res[k])]
        fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.4))
        top = 0
        for i, k in enumerate(keys):
            vals = [r["chars_per_s"] for r in res[k] if r and r.get("chars_per_s")]
            lost = max(r["lost"] for r in res[k] if r and r.get("lost") is not None)
            med = statistics.median(vals)
            top = max(top, max(vals))
            ax.bar(i, med, color=colors[k], alpha=0.7)
            ax.scatter([i] * len(vals), vals, color="black", s=10, zorder=3)
            gap = next((r["gap_ms"] for r in res[k] if r and "gap_ms" in r), None)
            how = f"QMP, gap {gap:.0f} ms" if gap is not None else "--keys script"
            ax.text(i, med, f"{med:.0f}\n({how}; lost {lost})", ha="center", va="bottom",
                    fontsize=8)
        ax.set_ylim(0, top * 1.2 if top else 1)
        ax.set_xticks(range(len(keys)), [m[k].label for k in keys])
        ax.set_ylabel("characters per second")
        ax.set_title("Typing throughput (median, dots = runs)")
        ax.grid(alpha=0.3, axis="y")
        for k, trials in search.items():
            xs = [t["gap_ms"] for t in trials]
            ys = [t["lost"] if t["lost"] is not None else float("nan") for t in trials]
            ax2.plot(xs, ys, "o-", color=colors[k], label=m[k].label)
            for t in trials:
                if t["lost"] is None:
                    ax2.annotate("line lost", (t["gap_ms"], 0), fontsize=7, color=colors[k],
                                 rotation=90, va="bottom", ha="center")
        ax2.set_xlabel("gap between QMP send-key commands (ms)")
        ax2.set_ylabel("scancodes lost")
        ax2.set_title("QEMU gap search (stops at the first lossless gap)")
        ax2.grid(alpha=0.3)
        if search:
            ax2.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(os.path.join(out_dir, "typing.png"), dpi=110)
        plt.close(fig)
        made.append("typing.png")
    boots = [c for c in ("boot", "boot-trivial") if c in bench.raw]
    if boots:
        fig, axes = plt.subplots(1, len(boots), figsize=(6 * len(boots), 4.2), squeeze=False)
        for ax, c in zip(axes[0], boots):
            keys = [k for k, v in bench.raw[c].items() if any(v)]
            if keys:
                ax.boxplot([[x["wall_ms"] for x in bench.raw[c][k] if x] for k in keys])
                ax.set_xticks(range(1, len(keys) + 1),
                              [m[k].label.replace(", ", "\n") for k in keys])
                ax.set_yscale("log")
            else:
                ax.text(0.5, 0.5, "not supported by this guest", ha="center",
                        transform=ax.transAxes)
            ax.set_ylabel("ms, process start to exit (log)")
            ax.set_title({"boot": "boot to exit: the guest, `run=exit 0`",
                          "boot-trivial": "boot to exit: trivial PVH kernel"}[c])
            ax.grid(alpha=0.3, axis="y")
        fig.tight_layout()
        fig.savefig(os.path.join(out_dir, "boot.png"), dpi=110)
        plt.close(fig)
        made.append("boot.png")
    if "idle" in bench.raw:
        keys = list(bench.raw["idle"])
        fig, ax = plt.subplots(figsize=(7, 4.2))
        for i, k in enumerate(keys):
            vals = [r["cpu_pct"] for r in bench.raw["idle"][k]]
            ax.bar(i, statistics.median(vals), color=colors[k], alpha=0.7)
            ax.scatter([i] * len(vals), vals, color="black", s=10, zorder=3)
        ax.set_xticks(range(len(keys)), [m[k].label for k in keys])
        ax.set_ylabel("% of one CPU")
        ax.set_title("Idle guest at its prompt: host CPU")
        ax.grid(alpha=0.3, axis="y")
        fig.tight_layout()
        fig.savefig(os.path.join(out_dir, "idle.png"), dpi=110)
        plt.close(fig)
        made.append("idle.png")
    return made


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", help="report directory (default bench/results/DATE)")
    parser.add_argument("--runs", type=int, help="runs per case and machine (default 10, quick 2)")
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny counts and windows")
    parser.add_argument("--cases", default=",".join(ALL_CASES),
                        help=f"comma-separated subset of {','.join(ALL_CASES)}")
    parser.add_argument("--machines", default="ours,microvm-kvm,pc-tcg,pc-kvm",
                        help="comma-separated subset of ours,microvm-kvm,pc-tcg,pc-kvm "
                        "(default all; `ours` is always run)")
    parser.add_argument("--vmm", help="use this VMM binary and skip `cargo build --release`")
    parser.add_argument("--pc-kvm-runs", type=int, help="runs for QEMU pc + KVM (default 3, quick 1)")
    parser.add_argument("--keys", type=int, default=200, help="keys per latency run (default 200)")
    parser.add_argument("--chars", type=int, default=20000, help="typing line length (default 20000)")
    parser.add_argument("--idle", type=float, default=20.0, help="idle window in s (default 20)")
    args = parser.parse_args()
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    args.machines = ["ours"] + [k.strip() for k in args.machines.split(",")
                                if k.strip() and k.strip() != "ours"]
    for k in args.machines:
        if k not in ("ours", "microvm-kvm", "pc-tcg", "pc-kvm"):
            parser.error(f"unknown machine {k!r}")
    for c in cases:
        if c not in ALL_CASES:
            parser.error(f"unknown case {c!r}; cases: {', '.join(ALL_CASES)}")
    if args.runs is None:
        args.runs = 2 if args.quick else 10
    if args.pc_kvm_runs is None:
        args.pc_kvm_runs = 1 if args.quick else 3
    # Dependencies first: a missing one is an error, never a skipped case.
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        sys.exit("error: matplotlib is missing: pip install -r bench/requirements.txt")
    if shutil.which("qemu-system-x86_64") is None:
        sys.exit("error: qemu-system-x86_64 is missing: apt-get install qemu-system-x86")
    if args.vmm is None:
        subprocess.run(["cargo", "build", "--release"], cwd=ROOT, check=True)
        args.vmm = os.path.join(ROOT, "target", "release", "vmm")
    args.vmm = os.path.abspath(args.vmm)
    out = args.out or os.path.join(ROOT, "bench", "results",
                                   datetime.datetime.now().strftime("%Y-%m-%d-%H%M%S"))
    os.makedirs(out, exist_ok=True)

    # SIGTERM/SIGHUP unwind like Ctrl+C, so every `finally` kills its VMM or QEMU.
    def stop(signum, frame):
        raise SystemExit(f"stopped by signal {signum}")
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)
    started = time.perf_counter()
    bench = Bench(args)
    try:
        bench.run(cases)
    finally:
        shutil.rmtree(bench.work, ignore_errors=True)
    with open(os.path.join(out, "raw.json"), "w") as f:
        json.dump({"args": vars(args), "raw": bench.raw, "rows": bench.rows}, f, indent=1)
    write_plots(bench, out)
    report = os.path.join(out, "report.md")
    write_markdown(bench, report, cases, time.perf_counter() - started)
    print(open(report).read())
    print(f"report: {report}", file=sys.stderr)


if __name__ == "__main__":
    main()
