#!/usr/bin/env python3
"""Start-up, key-to-echo latency and idle host CPU: our VMM against QEMU.

Boots the same guest ELF (exported from the VMM) in `vmm`, QEMU `pc` + TCG
and QEMU `pc` + KVM, and for each measures:
  - process start to the shell prompt on the serial output;
  - key to echo: a QMP `send-key` of one letter until that letter is echoed
    (median and p90 over --keys presses, 20 ms apart);
  - idle host CPU: utime + stime from /proc/PID/stat over --idle seconds with
    the guest at its prompt.

Usage: python3 bench/compare.py [--vmm target/release/vmm] [--keys 30] [--idle 5]
       [--only vmm,qemu-tcg,qemu-kvm]
Needs: a built VMM (cargo build --release), qemu-system-x86_64, and the qemu.qmp
package (pip install -r tests/requirements.txt). Not part of the test suite:
the numbers depend on the host (see README, "Measurements").
"""
import argparse
import asyncio
import os
import statistics
import subprocess
import tempfile
import time

from qemu.qmp import QMPClient


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Serial:
    """Non-blocking reader of a child's stdout with substring waits."""

    def __init__(self, process):
        self.fd = process.stdout.fileno()
        os.set_blocking(self.fd, False)
        self.data = b""

    async def wait_for(self, needle, since=0, timeout=30.0):
        deadline = time.monotonic() + timeout
        while True:
            try:
                chunk = os.read(self.fd, 65536)
                self.data += chunk
            except BlockingIOError:
                chunk = None
            found = self.data.find(needle, since)
            if found >= 0:
                return found + len(needle)
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {needle!r} in {self.data[-200:]!r}")
            if chunk is None:
                await asyncio.sleep(0.0002)


async def measure(name, command, socket_path, keys, idle, prompt_settle):
    if os.path.exists(socket_path):
        os.unlink(socket_path)
    started = time.monotonic()
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        serial = Serial(process)
        position = await serial.wait_for(b"> ", timeout=60)
        to_prompt = time.monotonic() - started
        # QEMU + KVM spends seconds in firmware first; let any boot work settle.
        await asyncio.sleep(prompt_settle)
        before = cpu_seconds(process.pid)
        await asyncio.sleep(idle)
        idle_cpu = (cpu_seconds(process.pid) - before) / idle

        while not os.path.exists(socket_path):
            await asyncio.sleep(0.001)
        qmp = QMPClient(name)
        await qmp.connect(socket_path)
        latencies = []
        for i in range(keys):
            letter = "ab"[i % 2]
            sent = time.monotonic()
            await qmp.execute("send-key", {"keys": [{"type": "qcode", "data": letter}],
                                           "hold-time": 1})
            position = await serial.wait_for(letter.encode(), position)
            latencies.append((time.monotonic() - sent) * 1000)
            await asyncio.sleep(0.02)
        try:
            await qmp.execute("quit")
        except Exception:  # the peer may close before answering
            pass
        try:
            await qmp.disconnect()
        except Exception:
            pass
    finally:
        process.kill()
        process.wait()
    latencies.sort()
    return {
        "prompt_ms": to_prompt * 1000,
        "echo_median_ms": statistics.median(latencies),
        "echo_p90_ms": latencies[int(len(latencies) * 0.9) - 1],
        "idle_cpu_pct": idle_cpu * 100,
    }


async def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vmm", default="target/release/vmm")
    parser.add_argument("--keys", type=int, default=30)
    parser.add_argument("--idle", type=float, default=5.0)
    parser.add_argument("--only", default="vmm,qemu-tcg,qemu-kvm")
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="vmm-bench-")
    elf = os.path.join(work, "guest.elf")
    subprocess.run([args.vmm, "--export-guest", elf], check=True)
    qemu = ["qemu-system-x86_64", "-machine", "pc", "-display", "none", "-nodefaults",
            "-serial", "stdio", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
            "-kernel", elf]
    machines = {
        "vmm": ([args.vmm, "--no-interactive", "--qmp", f"unix:{work}/vmm.sock"],
                f"{work}/vmm.sock", 1.0),
        "qemu-tcg": (qemu + ["-accel", "tcg", "-qmp", f"unix:{work}/tcg.sock,server=on,wait=off"],
                     f"{work}/tcg.sock", 1.0),
        "qemu-kvm": (qemu + ["-accel", "kvm", "-qmp", f"unix:{work}/kvm.sock,server=on,wait=off"],
                     f"{work}/kvm.sock", 1.0),
    }
    print(f"{'machine':<10} {'to prompt':>10} {'echo median':>12} {'echo p90':>9} {'idle CPU':>9}")
    for name in args.only.split(","):
        command, socket_path, settle = machines[name]
        result = await measure(name, command, socket_path, args.keys, args.idle, settle)
        print(f"{name:<10} {result['prompt_ms']:>8.0f}ms {result['echo_median_ms']:>10.2f}ms "
              f"{result['echo_p90_ms']:>7.2f}ms {result['idle_cpu_pct']:>8.1f}%")


if __name__ == "__main__":
    asyncio.run(main())
