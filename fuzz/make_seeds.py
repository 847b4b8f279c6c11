#!/usr/bin/env python3
"""Writes the hand-picked seed inputs of the fuzz targets to fuzz/corpus/.

The device targets read their input with the `arbitrary` crate: a step list
is a sequence of (continue byte 1, u32 variant index scaled to the
enum's size, fields little-endian). This script encodes the guest's own
initialisation sequences and other interesting programs that way, so the
fuzzer starts from realistic machine states. The script, QMP and terminal
seeds are plain text; the ELF seeds are the real guest (copied by hand from
target/guest, stripped) and small PVH kernels built here.

Run from anywhere: python3 fuzz/make_seeds.py
"""
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def variant(index, count):
    """The u32 that `arbitrary`'s derive maps to variant `index` of `count`."""
    value = -((-index << 32) // count)  # ceil(index * 2^32 / count)
    assert (value * count) >> 32 == index
    return struct.pack("<I", value)


def u8(v):
    return struct.pack("<B", v & 0xFF)


def u16(v):
    return struct.pack("<H", v & 0xFFFF)


def u32(v):
    return struct.pack("<I", v & 0xFFFFFFFF)


def steps(items):
    """A take-rest step list: each step behind a continue byte."""
    return b"".join(b"\x01" + s for s in items) + b"\x00"


def write(target, name, data):
    os.makedirs(os.path.join(ROOT, target), exist_ok=True)
    with open(os.path.join(ROOT, target, name), "wb") as f:
        f.write(data)


# --- pic: Write(port index, value), Read(port index), Level(line, level),
# Acknowledge, Eoi(slave); ports 0x20 0x21 0xA0 0xA1 0x4D0 0x4D1 0x22.
def pic_write(port, value):
    return variant(0, 5) + u8(port) + u8(value)


def pic_read(port):
    return variant(1, 5) + u8(port)


def pic_level(line, level):
    return variant(2, 5) + u8(line) + u8(level)


PIC_ACK = variant(3, 5)


def pic_eoi(slave):
    return variant(4, 5) + u8(slave)


GUEST_PIC_INIT = [pic_write(p, v) for p, v in [(0, 0x11), (1, 32), (1, 4), (1, 1), (2, 0x11), (3, 40), (3, 2), (3, 1), (1, 0xF8), (3, 0xEF)]]
write("pic", "guest_init", b"\x00" + steps(GUEST_PIC_INIT + [
    pic_level(0, 1), pic_level(0, 0), pic_level(1, 1), pic_level(12, 1), PIC_ACK, PIC_ACK, pic_eoi(0), PIC_ACK,
    pic_eoi(1), pic_eoi(0), pic_write(0, 0x0B), pic_read(0), pic_write(0, 0x0A), pic_read(0), pic_read(1)]))
write("pic", "rotation_poll_smm", b"\x01" + steps([
    pic_level(3, 1), pic_level(5, 1), pic_level(9, 1), pic_write(0, 0xC4), PIC_ACK, pic_write(0, 0xA0), PIC_ACK,
    pic_write(0, 0x68), pic_write(1, 0x20), PIC_ACK, pic_write(0, 0x0C), pic_read(0), pic_write(2, 0x0C), pic_read(2),
    pic_write(0, 0xE5), pic_write(0, 0x48), pic_write(0, 0x80), pic_level(6, 0), pic_level(6, 1), PIC_ACK]))
write("pic", "aeoi_level_sfnm", b"\x00" + steps([pic_write(p, v) for p, v in [(0, 0x19), (1, 0x20), (1, 4), (1, 0x13), (2, 0x11), (3, 0x28), (3, 2), (3, 0x03), (4, 0xF8), (5, 0xDE)]] + [
    pic_level(10, 1), pic_level(11, 1), PIC_ACK, PIC_ACK, pic_level(10, 0), PIC_ACK, pic_read(4), pic_read(5), pic_write(0, 0x11), PIC_ACK]))

# --- pit: Program{channel, access, mode, bcd, count}, Latch{channel, micros},
# ReadBack{channel, micros}, Gate, RawWrite, RawRead, Advance, Collect,
# RunToDeadline.
def pit_program(channel, access, mode, bcd, count):
    # access is taken as `access % 3 + 1`
    return variant(0, 9) + u8(channel) + u8(access - 1) + u8(mode) + u8(bcd) + u16(count)


def pit_latch(channel, micros):
    return variant(1, 9) + u8(channel) + u16(micros)


def pit_readback(channel, micros):
    return variant(2, 9) + u8(channel) + u16(micros)


def pit_gate(high):
    return variant(3, 9) + u8(high)


def pit_raw_write(port, value):
    return variant(4, 9) + u8(port) + u8(value)


def pit_advance(n):
    return variant(6, 9) + u16(n)


PIT_COLLECT = variant(7, 9)
PIT_RUN = variant(8, 9)
# The guest: channel 0 one-shot (mode 0) per timer, channel 2 square wave
# calibration through port 0x61; a 1 kHz rate generator as Linux sets it.
write("pit", "guest_one_shot", steps([pit_program(0, 3, 0, 0, 1193), pit_latch(0, 300), PIT_RUN, PIT_COLLECT,
                                      pit_raw_write(0, 0xA9), pit_raw_write(0, 0x04), PIT_RUN]))
write("pit", "calibration", steps([pit_gate(0), pit_program(2, 3, 3, 0, 65534), pit_gate(1), pit_advance(3000),
                                   pit_readback(2, 100), pit_latch(2, 10), pit_gate(0), pit_latch(2, 10)]))
write("pit", "rate_1khz", steps([pit_program(0, 3, 2, 0, 1193)] + [PIT_RUN] * 5 + [pit_readback(0, 5), pit_latch(0, 7), pit_advance(20000), PIT_COLLECT]))
write("pit", "storm_bcd", steps([pit_program(0, 3, 2, 0, 1)] + [PIT_RUN] * 4 + [pit_program(1, 1, 3, 1, 0x99), pit_latch(1, 3),
                                pit_program(0, 2, 6, 1, 0x0100), PIT_RUN, pit_readback(0, 1), pit_program(0, 3, 4, 0, 10), PIT_RUN, PIT_RUN]))

# --- i8042: Key{code index, down}, RawKey{code, down}, WriteData, WriteCommand,
# ReadData, ReadStatus, KeyboardCommand(command, argument).
def kb_key(index, down):
    return variant(0, 7) + u8(index) + u8(down)


def kb_raw_key(code, down):
    return variant(1, 7) + u16(code) + u8(down)


def kb_data(v):
    return variant(2, 7) + u8(v)


def kb_command(v):
    return variant(3, 7) + u8(v)


KB_READ = variant(4, 7)
KB_STATUS = variant(5, 7)


def kb_kbd_command(c, a):
    return variant(6, 7) + u8(c) + u8(a)


# The guest's driver (guest/src/drivers/i8042.rs), with keys typed before
# and during it.
GUEST_KBD_INIT = [kb_command(0xAD), kb_command(0xA7), kb_command(0x20), KB_STATUS, KB_READ, kb_command(0x60), kb_data(0x00),
                  kb_command(0xAA), KB_READ, kb_command(0xAB), KB_READ, kb_command(0xAE), kb_data(0xFF), KB_READ, KB_READ,
                  kb_data(0xF0), KB_READ, kb_data(0x02), KB_READ, kb_data(0xF4), KB_READ, kb_command(0x60), kb_data(0x61)]
write("i8042", "guest_init", b"\x00" + steps([kb_key(0, 1), kb_key(0, 0)] + GUEST_KBD_INIT + [kb_key(1, 1), kb_key(1, 0), kb_key(13, 1), kb_key(13, 0)]
                                            + [KB_STATUS, KB_READ] * 12))
write("i8042", "commands_between_keys", b"\x01" + steps([kb_key(2, 1), kb_key(1, 1), KB_READ, kb_kbd_command(0xED, 0x07), KB_READ, KB_READ,
                                                        kb_key(1, 0), kb_data(0xF5), KB_READ, kb_key(10, 1), kb_data(0xF4), KB_READ, kb_command(0xAD),
                                                        KB_READ, kb_command(0xAE), KB_READ, kb_kbd_command(0xF0, 0x03), KB_READ, KB_READ, kb_key(11, 1),
                                                        KB_READ, KB_READ, kb_command(0xD2), kb_data(0x42), KB_READ, kb_command(0xD3), kb_data(0x43),
                                                        KB_STATUS, KB_READ, kb_command(0xFE), KB_READ, kb_raw_key(0xE114, 1), KB_READ, KB_READ]))

# --- rtc: (base u32, steps): Index, Set(register index, value), WriteData,
# ReadData, ReadIndexPort, ReadFlags, ReadTime, Advance, Collect, RunToDeadline.
# Set's register index: 0 sec, 1 sec alarm, 2 min, 3 min alarm, 4 hour,
# 5 hour alarm, 6 dow, 7 dom, 8 month, 9 year, 10 A, 11 B, 12 C, 13 D,
# 14 century, 15 PS/2 century.
def rtc_set(reg, v):
    return variant(1, 10) + u8(reg) + u8(v)


RTC_FLAGS = variant(5, 10)
RTC_TIME = variant(6, 10)


def rtc_advance(n):
    return variant(7, 10) + u16(n)


RTC_COLLECT = variant(8, 10)
RTC_RUN = variant(9, 10)
write("rtc", "guest_read_time", u32(1_767_225_599) + steps([RTC_TIME, rtc_advance(2000), RTC_TIME, rtc_set(11, 0x06), RTC_TIME, rtc_set(11, 0x00), RTC_TIME]))
write("rtc", "periodic_update_alarm", u32(1_700_000_000) + steps([rtc_set(10, 0x26), rtc_set(11, 0x42), RTC_RUN, RTC_FLAGS, RTC_RUN, RTC_FLAGS,
                                                             rtc_set(11, 0x32), rtc_set(1, 0xC0), rtc_set(3, 0xC0), rtc_set(5, 0xC0), RTC_RUN, RTC_FLAGS, rtc_advance(60000), RTC_COLLECT, RTC_FLAGS]))
write("rtc", "set_clock", u32(0) + steps([rtc_set(11, 0x82), rtc_set(0, 0x59), rtc_set(2, 0x59), rtc_set(4, 0x23), rtc_set(7, 0x31), rtc_set(8, 0x12),
                                         rtc_set(9, 0x99), rtc_set(14, 0x20), rtc_set(11, 0x02), RTC_TIME, rtc_advance(5000), RTC_TIME, rtc_set(10, 0x70), RTC_TIME, rtc_set(10, 0x20), rtc_advance(9000), RTC_TIME]))

# --- platform: Read(Port, Width), Write(Port, Width, u32), Key(code, down),
# Advance, Service(paused), RunToDeadline, Acknowledge, Init. Port: Known(index
# into the target's PORTS) or Any(u16); Width: byte, word, dword.
def port_known(i):
    return variant(0, 2) + u8(i)


def pf_read(port, width):
    return variant(0, 8) + port + variant(width, 3)


def pf_write(port, width, value):
    return variant(1, 8) + port + variant(width, 3) + u32(value)


def pf_key(code, down):
    return variant(2, 8) + u16(code) + u8(down)


PF_RUN = variant(5, 8)
PF_ACK = variant(6, 8)
PF_INIT = variant(7, 8)
EOI = pf_write(port_known(0), 0, 0x20)
write("platform", "guest_boot", steps([PF_INIT, PF_RUN, PF_ACK, EOI, pf_key(0x1C, 1), PF_ACK, pf_read(port_known(11), 0), EOI, pf_key(0x1C, 0),
                                      PF_ACK, pf_read(port_known(11), 0), EOI, pf_write(port_known(21), 0, 0x0C), pf_read(port_known(22), 0),
                                      pf_write(port_known(13), 0, 0x41), pf_read(port_known(18), 0), PF_RUN, PF_ACK, EOI]))
write("platform", "wide_and_reset", steps([PF_INIT, pf_write(port_known(6), 2, 0x11223344), pf_read(port_known(0), 1), pf_read(variant(1, 2) + u16(0x3F8), 2),
                                          pf_write(port_known(21), 1, 0x8B0B), pf_write(port_known(12), 0, 0xFE), PF_RUN, PF_ACK, pf_write(port_known(20), 2, 0)]))

# --- script, qmp, terminal: text.
for name in os.listdir(os.path.join(ROOT, "..", "..", "tests", "scripts")):
    with open(os.path.join(ROOT, "..", "..", "tests", "scripts", name), "rb") as f:
        write("script", name, f.read())
write("script", "errors", b"type caf\xc3\xa9\nkey ctrl--c\n")
write("script", "all_commands", b"# comment\r\npress shift\nrelease shift\nkey ctrl-alt-delete f1 kp_add\nwait 1.5s\nexpect \"a\\\"b\\r\" 250ms\ntype tab\\there\\\\\n\n")

qmp_session = (b'{"execute": "qmp_capabilities"}\n'
               b'{"execute": "query-commands", "id": 1}\n'
               b'{"execute": "send-key", "arguments": {"keys": [{"type": "qcode", "data": "ctrl"}, {"type": "number", "data": 30}], "hold-time": 50}}\n'
               b'{"execute": "input-send-event", "arguments": {"events": [{"type": "key", "data": {"down": true, "key": {"type": "qcode", "data": "a"}}}]}}\n'
               b'{"execute": "stop"}\n{"execute": "query-status"}\n{"execute": "cont"}\n{"execute": "system_reset"}\n'
               b'{"execute": "query-version"}\n{"execute": "quit"}\n')
write("qmp", "session", b"\x07" + qmp_session)
write("qmp", "errors", b"\x02" + b'{"execute": "stop"}\n{"execute": "qmp_capabilities", "arguments": {"enable": ["oob"]}}\n{"execute": "qmp_capabilities"}\n'
      b'{"execute": "nope"}\n[1, 2]\n{"execute": 1}\n{"bad json\n{"execute": "send-key", "arguments": {"keys": []}}\n12 34\n')

write("terminal", "keys", b"\x00\x03" + b"ls -l\r\x1b[A\x1b[B\x1b[1;5C\x1b[3~\x1bOP\x1b[[A\x1b[15~\x7f\x09\x1bx\x01\x01\x01h")
write("terminal", "lone_escape", b"\x01\x01" + b"\x1b\x1b[\x1b[99999999999999999999999A\x01x")


# --- elf_loader: small PVH kernels.
def elf(segments, notes, phentsize=56, machine=62):
    """ELF64 with PT_LOAD `segments` [(paddr, data, memsz)] and PT_NOTE `notes`."""
    note_blob = b""
    for name, kind, desc in notes:
        blob = struct.pack("<III", len(name), len(desc), kind) + name
        blob += b"\0" * (-len(blob) % 4) + desc
        blob += b"\0" * (-len(blob) % 4)
        note_blob += blob
    phnum = len(segments) + (1 if notes else 0)
    phoff = 64
    data_off = phoff + phnum * phentsize
    body = b""
    phdrs = b""
    for paddr, data, memsz in segments:
        phdrs += struct.pack("<IIQQQQQQ", 1, 7, data_off + len(body), paddr, paddr, len(data), memsz, 0x1000).ljust(phentsize, b"\0")
        body += data
    if notes:
        phdrs += struct.pack("<IIQQQQQQ", 4, 4, data_off + len(body), 0, 0, len(note_blob), len(note_blob), 4).ljust(phentsize, b"\0")
        body += note_blob
    header = b"\x7fELF\x02\x01\x01" + b"\0" * 9
    header += struct.pack("<HHIQQQIHHHHHH", 2, machine, 1, 0x100000, phoff, 0, 0, 64, phentsize, phnum, 64, 0, 0)
    return header + phdrs + body


PVH = (b"Xen\0", 18, struct.pack("<I", 0x100000))
write("elf_loader", "tiny_pvh", elf([(0x100000, b"\xf4" * 16, 0x2000)], [PVH]))
write("elf_loader", "two_segments_low", elf([(0x8000, b"\x90" * 8, 8), (0x200000, b"\xf4", 0x10)], [(b"GNU\0", 3, b"abcd"), PVH]))
write("elf_loader", "boot_data_overlap", elf([(0x6000, b"\xf4", 0x10)], [PVH]))
write("elf_loader", "no_note", elf([(0x100000, b"\xf4", 1)], []))
