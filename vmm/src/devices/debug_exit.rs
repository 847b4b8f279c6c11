//! Debug-exit port, laid out like QEMU's `isa-debug-exit`.
//!
//! A write of any width (1, 2 or 4 bytes) to any of its ports asks the VMM to
//! exit; the value written (little-endian) becomes the process exit status.
//! Unlike QEMU, which exits with `(v << 1) | 1`, the status is `v` itself.
//! Reads return all ones.
use crate::device::{Change, MachineRequest, PortDevice};

/// The debug-exit device: remembers the first exit request.
#[derive(Debug, Default)]
pub struct DebugExit {
    request: Option<u32>,
}

impl DebugExit {
    /// A device with no pending request.
    pub fn new() -> Self {
        Self::default()
    }

    /// Guest write of `data` (1 to 4 bytes, little-endian) at any of its ports.
    pub fn write(&mut self, data: &[u8]) {
        let mut bytes = [0u8; 4];
        let len = data.len().min(4);
        bytes[..len].copy_from_slice(&data[..len]);
        self.request.get_or_insert(u32::from_le_bytes(bytes));
    }

    /// Guest read: the port reads as all ones.
    pub fn read(&self, data: &mut [u8]) {
        data.fill(0xff);
    }

    /// The value the guest wrote, once, if it asked to exit.
    pub fn take_request(&mut self) -> Option<u32> {
        self.request.take()
    }
}

impl PortDevice for DebugExit {
    fn name(&self) -> &'static str {
        "debug-exit"
    }

    fn read(&mut self, _offset: u16, data: &mut [u8]) -> Change {
        DebugExit::read(self, data);
        Change::NONE
    }

    fn write(&mut self, _offset: u16, data: &[u8]) -> Change {
        DebugExit::write(self, data);
        match self.take_request() {
            Some(value) => Change::request(MachineRequest::Exit(value)),
            None => Change::NONE,
        }
    }

    fn reset(&mut self) {
        *self = Self::new();
    }

    /// A 2- or 4-byte write is one exit value, as with QEMU's device.
    fn wide_access(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_and_dword_writes_give_the_value() {
        let mut dev = DebugExit::new();
        assert_eq!(dev.take_request(), None);
        dev.write(&[5]);
        assert_eq!(dev.take_request(), Some(5));
        dev.write(&0x10u32.to_le_bytes());
        assert_eq!(dev.take_request(), Some(0x10));
        assert_eq!(dev.take_request(), None);
    }

    #[test]
    fn reads_all_ones() {
        let dev = DebugExit::new();
        let mut data = [0u8; 4];
        dev.read(&mut data);
        assert_eq!(data, [0xff; 4]);
    }
}
