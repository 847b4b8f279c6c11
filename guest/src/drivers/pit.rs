//! The 8254 PIT: channel 0 as the kernel's periodic timer interrupt (IRQ0).
//! The tick count it drives is kept in [`crate::time`].

use shared::pit::{control_word, Access, Mode, Select};
use shared::ports::{PIT_CHANNEL0, PIT_COMMAND};
use shared::time::TIMER_RELOAD;
use x86_64::instructions::port::Port;

/// Channel 0 as a binary rate generator, reload written low byte first.
const TIMER_CONTROL_WORD: u8 = control_word(
    Select::Channel0,
    Access::LowHigh,
    Mode::RateGenerator,
    false,
);

/// Programs PIT channel 0 for a periodic interrupt every `TIMER_RELOAD` cycles.
pub fn init() {
    let [low, high] = TIMER_RELOAD.to_le_bytes();
    // SAFETY: port I/O to the PIT's own ports touches no memory; only
    // channel 0, which nothing else in the kernel uses, is reprogrammed.
    unsafe {
        Port::<u8>::new(PIT_COMMAND).write(TIMER_CONTROL_WORD);
        let mut data = Port::<u8>::new(PIT_CHANNEL0);
        data.write(low);
        data.write(high);
    }
}
