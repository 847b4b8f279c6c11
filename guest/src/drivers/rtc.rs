//! The MC146818 real-time clock through its index and data ports
//! (0x70/0x71). Sampling and conversion are `time::calendar`'s; this module
//! only reads registers.

use shared::ports::{RTC_DATA, RTC_INDEX};
use shared::rtc::INDEX_MASK;
use x86_64::instructions::port::Port;

use crate::time::calendar::{self, DateTime};

/// Reads CMOS register `index` (NMI stays enabled: index bit 7 clear).
///
/// No interrupt handler uses the RTC, so none can change the index between
/// the write and the read.
fn read_register(index: u8) -> u8 {
    // SAFETY: port I/O to the RTC's own two ports touches no memory; reading
    // the time registers has no side effect (register C, whose read clears
    // its flags, is not read).
    unsafe {
        Port::<u8>::new(RTC_INDEX).write(index & INDEX_MASK);
        Port::<u8>::new(RTC_DATA).read()
    }
}

/// The RTC's current time, or `None` if it gives no consistent, valid one.
pub fn now() -> Option<DateTime> {
    DateTime::from_registers(&calendar::sample(read_register)?)
}
