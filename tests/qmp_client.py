#!/usr/bin/env python3
"""Drives the VMM's QMP socket with the real qemu.qmp client (PyPI).

Usage: qmp_client.py SOCKET

Connects, checks status, types "echo qmp ok" + Enter with send-key, checks a
few errors and stop/cont events, prints SENT, then waits for a line on stdin
before sending `quit` and checking the SHUTDOWN event. Exits non-zero on any
mismatch.
"""
import asyncio
import sys

from qemu.qmp import EventListener, ExecuteError, QMPClient

KEYS = {" ": "spc", "\n": "ret"}


async def main(path: str) -> None:
    qmp = QMPClient("vmm-test")
    await qmp.connect(path)
    assert "qemu" in qmp.greeting.QMP.version, qmp.greeting

    status = await qmp.execute("query-status")
    assert status["status"] == "running" and status["running"] is True, status

    for c in "echo qmp ok\n":
        key = KEYS.get(c, c)
        await qmp.execute("send-key", {"keys": [{"type": "qcode", "data": key}], "hold-time": 5})
    # A combination and a number key, as QEMU accepts them.
    await qmp.execute("send-key", {"keys": [{"type": "qcode", "data": "shift"},
                                            {"type": "number", "data": 0x1e}]})
    await qmp.execute("send-key", {"keys": [{"type": "qcode", "data": "backspace"}]})

    try:
        await qmp.execute("frobnicate")
        raise AssertionError("unknown command accepted")
    except ExecuteError as error:
        assert error.error_class == "CommandNotFound", error
    try:
        await qmp.execute("send-key", {"keys": [{"type": "qcode", "data": "nokey"}]})
        raise AssertionError("bad key accepted")
    except ExecuteError as error:
        assert error.error_class == "GenericError", error

    listener = EventListener(("STOP", "RESUME"))
    with qmp.listen(listener):
        await qmp.execute("stop")
        assert (await qmp.execute("query-status"))["status"] == "paused"
        await qmp.execute("cont")
        names = [(await listener.get()).get("event") for _ in range(2)]
        assert names == ["STOP", "RESUME"], names

    print("SENT", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)

    listener = EventListener("SHUTDOWN")
    with qmp.listen(listener):
        await qmp.execute("quit")
        event = await asyncio.wait_for(listener.get(), 10)
        assert event["data"] == {"guest": False, "reason": "host-qmp-quit"}, event
    try:
        await qmp.disconnect()
    except EOFError:
        # The VMM may exit (closing the socket) before we hang up; QEMU's own
        # test harness (qemu.machine) accepts the same after `quit`.
        pass
    print("DONE", flush=True)


asyncio.run(main(sys.argv[1]))
