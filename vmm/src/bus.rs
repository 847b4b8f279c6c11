//! Port I/O bus: maps guest port ranges to devices.
//!
//! Ranges are registered once at machine creation (the port map in
//! `vm::platform`), kept sorted and looked up by binary search (a handful of
//! entries: a few comparisons per access). The bus names what sits at a
//! port (`T`, a small `Copy` value) and the offset inside its range; the
//! platform turns that into a call of the device's `PortDevice` methods.
use std::fmt;

/// A range of ports overlaps one already registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("port range {base:#x}+{len} overlaps an existing range")]
pub struct OverlapError {
    /// First port of the rejected range.
    pub base: u16,
    /// Number of ports in the rejected range.
    pub len: u16,
}

/// Port ranges and the device (`T`, typically a small `Copy` enum) at each.
pub struct PortBus<T> {
    /// `(first port, last port, device)`, sorted and disjoint.
    ranges: Vec<(u16, u16, T)>,
}

impl<T: Copy + fmt::Debug> PortBus<T> {
    /// An empty bus.
    pub fn new() -> Self {
        Self { ranges: Vec::new() }
    }

    /// Registers `len` ports from `base` for `device`.
    pub fn insert(&mut self, base: u16, len: u16, device: T) -> Result<(), OverlapError> {
        let overlap = OverlapError { base, len };
        let last = len
            .checked_sub(1)
            .and_then(|n| base.checked_add(n))
            .ok_or(overlap.clone())?;
        let index = self.ranges.partition_point(|&(first, _, _)| first < base);
        let clashes_before = index > 0 && self.ranges[index - 1].1 >= base;
        let clashes_after = index < self.ranges.len() && self.ranges[index].0 <= last;
        if clashes_before || clashes_after {
            return Err(overlap);
        }
        self.ranges.insert(index, (base, last, device));
        Ok(())
    }

    /// The device at `port` and the port's offset in its range.
    pub fn lookup(&self, port: u16) -> Option<(T, u16)> {
        let index = self.ranges.partition_point(|&(first, _, _)| first <= port);
        let &(first, last, device) = self.ranges.get(index.checked_sub(1)?)?;
        (port <= last).then_some((device, port - first))
    }
}

impl<T: Copy + fmt::Debug> Default for PortBus<T> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Dev {
        A,
        B,
        C,
    }

    #[test]
    fn lookup_finds_device_and_offset() {
        let mut bus = PortBus::new();
        bus.insert(0x3f8, 8, Dev::A).unwrap();
        bus.insert(0x20, 2, Dev::B).unwrap();
        bus.insert(0xffff, 1, Dev::C).unwrap();
        assert_eq!(bus.lookup(0x3f8), Some((Dev::A, 0)));
        assert_eq!(bus.lookup(0x3ff), Some((Dev::A, 7)));
        assert_eq!(bus.lookup(0x400), None);
        assert_eq!(bus.lookup(0x3f7), None);
        assert_eq!(bus.lookup(0x21), Some((Dev::B, 1)));
        assert_eq!(bus.lookup(0x1f), None);
        assert_eq!(bus.lookup(0), None);
        assert_eq!(bus.lookup(0xffff), Some((Dev::C, 0)));
    }

    #[test]
    fn rejects_overlaps_and_bad_ranges() {
        let mut bus = PortBus::new();
        bus.insert(0x40, 4, Dev::A).unwrap();
        assert!(bus.insert(0x43, 1, Dev::B).is_err());
        assert!(bus.insert(0x3e, 3, Dev::B).is_err());
        assert!(bus.insert(0x3c, 4, Dev::B).is_ok());
        assert!(bus.insert(0x44, 0, Dev::B).is_err());
        assert!(bus.insert(0xfffe, 3, Dev::B).is_err());
    }
}
