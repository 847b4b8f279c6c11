//! Leaving the machine through the debug-exit port.
use x86_64::instructions::port::Port;

/// Writes `value` to the debug-exit port. Our VMM exits with `value`, QEMU
/// with `(value << 1) | 1`. Halts forever if no such device exists.
pub fn exit(value: u8) -> ! {
    // SAFETY: port I/O touches no memory; the write ends the machine, or
    // (no such device) does nothing and the loop below halts.
    unsafe { Port::<u32>::new(shared::ports::DEBUG_EXIT).write(u32::from(value)) };
    loop {
        x86_64::instructions::interrupts::disable();
        x86_64::instructions::hlt();
    }
}
