//! Facts that the guest kernel and the VMM must agree on.
//!
//! Everything here is a plain constant, a fieldless `repr(u8)` enum of
//! command names or a `repr(C)` boot structure, so the crate is `no_std`, has
//! no dependencies and can be used from the guest, the VMM and the tests
//! alike. Nothing here may be defined a second time elsewhere.
//!
//! Modules: [`ports`], [`irq`], [`time`], [`exit`], [`boot`], [`status`]
//! below; [`pvh`] (boot structures), [`pit`] (8254), [`i8042`] (keyboard
//! controller), [`ps2`] (keyboard), [`rtc`] (MC146818), [`uart`] (16550A).
#![no_std]

pub mod i8042;
pub mod pit;
pub mod ps2;
pub mod pvh;
pub mod rtc;
pub mod uart;

/// Legacy PC I/O ports.
pub mod ports {
    /// 8259A master PIC: command (ICW1, OCW2, OCW3) and status (IRR/ISR).
    pub const PIC_MASTER_COMMAND: u16 = 0x20;
    /// 8259A master PIC: data (ICW2-4, OCW1 = IMR).
    pub const PIC_MASTER_DATA: u16 = 0x21;
    /// 8259A slave PIC: command.
    pub const PIC_SLAVE_COMMAND: u16 = 0xA0;
    /// 8259A slave PIC: data.
    pub const PIC_SLAVE_DATA: u16 = 0xA1;
    /// Edge/level control register for IRQ 0-7 (PIIX/ICH ELCR1).
    pub const ELCR_MASTER: u16 = 0x4D0;
    /// Edge/level control register for IRQ 8-15 (ELCR2).
    pub const ELCR_SLAVE: u16 = 0x4D1;

    /// 8254 PIT channel 0 data port (channels 1 and 2 follow at +1, +2).
    pub const PIT_CHANNEL0: u16 = 0x40;
    /// 8254 PIT channel 1 data port.
    pub const PIT_CHANNEL1: u16 = 0x41;
    /// 8254 PIT channel 2 data port.
    pub const PIT_CHANNEL2: u16 = 0x42;
    /// 8254 PIT mode/command register.
    pub const PIT_COMMAND: u16 = 0x43;
    /// NMI status and control ("port B"): PIT channel 2 gate (bit 0),
    /// speaker enable (bit 1), refresh toggle (bit 4) and channel 2 output (bit 5).
    pub const PORT_B: u16 = 0x61;

    /// i8042 data port (output buffer on read, input buffer on write).
    pub const I8042_DATA: u16 = 0x60;
    /// i8042 status register on read, controller command on write.
    pub const I8042_COMMAND: u16 = 0x64;

    /// First port of the 16550 UART on COM1.
    pub const COM1: u16 = 0x3F8;
    /// Number of ports a 16550 occupies.
    pub const COM_PORT_COUNT: u16 = 8;

    /// Debug-exit port, laid out like QEMU's `isa-debug-exit,iobase=0xf4,iosize=0x04`.
    pub const DEBUG_EXIT: u16 = 0xF4;
    /// Number of ports the debug-exit device occupies.
    pub const DEBUG_EXIT_SIZE: u16 = 4;

    /// MC146818 RTC / CMOS index register (bit 7: NMI disable).
    pub const RTC_INDEX: u16 = 0x70;
    /// MC146818 RTC / CMOS data register (the byte the index selects).
    pub const RTC_DATA: u16 = 0x71;
    /// Number of ports the RTC occupies.
    pub const RTC_PORT_COUNT: u16 = 2;
}

/// ISA IRQ lines (inputs of the 8259 pair).
pub mod irq {
    /// PIT channel 0.
    pub const TIMER: u8 = 0;
    /// i8042 keyboard port.
    pub const KEYBOARD: u8 = 1;
    /// Cascade input of the master PIC, wired to the slave's INT output.
    pub const CASCADE: u8 = 2;
    /// COM1 serial port.
    pub const COM1: u8 = 4;
    /// Lowest-priority master line; also the master's spurious IRQ.
    pub const SPURIOUS_MASTER: u8 = 7;
    /// MC146818 real-time clock.
    pub const RTC: u8 = 8;
    /// i8042 auxiliary (mouse) port.
    pub const MOUSE: u8 = 12;
    /// Lowest-priority slave line; also the slave's spurious IRQ.
    pub const SPURIOUS_SLAVE: u8 = 15;

    /// Interrupt vector the guest maps IRQ 0 to (ICW2 of the master PIC).
    pub const MASTER_VECTOR_BASE: u8 = 32;
    /// Interrupt vector the guest maps IRQ 8 to (ICW2 of the slave PIC).
    pub const SLAVE_VECTOR_BASE: u8 = MASTER_VECTOR_BASE + 8;
}

/// Timing facts.
pub mod time {
    /// Input clock of the 8254 PIT, in Hz.
    pub const PIT_FREQUENCY_HZ: u64 = 1_193_182;
}

/// Values the guest writes to the debug-exit port.
///
/// Our VMM exits with the value itself; QEMU's `isa-debug-exit` exits with
/// `(value << 1) | 1`, see [`qemu_exit_status`].
pub mod exit {
    /// Normal shutdown (`exit` with no argument).
    pub const SUCCESS: u8 = 0;
    /// An in-guest test run completed and every check passed.
    pub const TEST_PASSED: u8 = 0x10;
    /// An in-guest test run found a failing check.
    pub const TEST_FAILED: u8 = 0x11;
    /// The kernel panicked.
    pub const PANIC: u8 = 0x12;
    /// A CPU exception (fault) the kernel cannot recover from.
    pub const CPU_EXCEPTION: u8 = 0x13;
    /// The kernel could not start (bad boot information, no memory).
    pub const BOOT_FAILURE: u8 = 0x14;

    /// Process exit status QEMU's `isa-debug-exit` produces for `value`.
    pub const fn qemu_exit_status(value: u8) -> i32 {
        ((value as i32) << 1) | 1
    }
}

/// Boot protocol facts.
pub mod boot {
    /// Physical address the guest kernel is linked at (1 MiB).
    pub const KERNEL_LOAD_ADDRESS: u64 = 0x10_0000;
    /// First line the guest prints on COM1 once it runs Rust code.
    pub const BANNER: &str = "asyncos: interrupt-driven async kernel";
    /// The shell's prompt.
    pub const PROMPT: &str = "> ";
    /// Kernel command-line key that selects an in-guest test (`test=NAME`).
    pub const TEST_PARAM: &str = "test";
    /// Kernel command-line key whose value, the rest of the command line,
    /// is shell lines separated by `;` that the guest runs before its first
    /// prompt (`run=uptime; exit 0`).
    pub const RUN_PARAM: &str = "run";
    /// Longest kernel command line, in bytes, without the terminating NUL:
    /// the VMM accepts no longer one and the guest keeps one this long.
    pub const CMDLINE_MAX: usize = 4095;
}

/// VMM process exit statuses beyond the guest's own debug-exit values.
pub mod status {
    /// `--timeout` fired (as coreutils `timeout`).
    pub const TIMEOUT: i32 = 124;
    /// The guest triple-faulted (`KVM_EXIT_SHUTDOWN`) or KVM reported an internal error.
    pub const GUEST_CRASH: i32 = 125;
    /// A keystroke script failed: an `expect` timed out, or a line was still
    /// pending when the machine stopped.
    pub const EXPECT_FAILED: i32 = 126;
    /// The VMM could not start the guest (bad arguments, no KVM, bad kernel).
    pub const SETUP_ERROR: i32 = 1;
    /// A VMM thread made a system call its seccomp filter forbids (128 +
    /// SIGSYS, what a shell reports for a process killed by that signal).
    pub const SECCOMP_VIOLATION: i32 = 159;
}

#[cfg(test)]
mod tests {
    #[test]
    fn qemu_exit_status_is_shifted_or_one() {
        assert_eq!(super::exit::qemu_exit_status(3), 7);
        assert_eq!(super::exit::qemu_exit_status(0), 1);
    }
}
