//! Intel 8042 keyboard controller with a PS/2 keyboard attached.
// API skeleton; the full model replaces this file.

/// The controller and its keyboard.
#[derive(Debug, Default)]
pub struct I8042 {}

impl I8042 {
    /// Power-on state.
    pub fn new() -> Self {
        Self {}
    }
    /// Guest read of 0x60 or 0x64.
    pub fn read(&mut self, _port: u16) -> u8 {
        0xff
    }
    /// Guest write of 0x60 or 0x64.
    pub fn write(&mut self, _port: u16, _value: u8) {}
    /// Host key event: a set-2 make code (with `0xE0` prefix for extended keys
    /// as `0xE0xx`), pressed or released.
    pub fn key_event(&mut self, _set2_code: u16, _down: bool) {}
    /// Level of IRQ1.
    pub fn irq1_level(&self) -> bool {
        false
    }
    /// Level of IRQ12.
    pub fn irq12_level(&self) -> bool {
        false
    }
    /// Whether the guest asked for a CPU reset (command 0xFE) since the last call.
    pub fn take_reset_request(&mut self) -> bool {
        false
    }
}
