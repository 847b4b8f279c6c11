//! What several fuzz targets share: the reference 8259A arbitration.

/// A reference model of one 8259A's arbitration, computed from its
/// registers ([`vmm::devices::pic::ChipState`]) by the datasheet's rules,
/// independently of the model under test.
pub mod pic_ref {
    use shared::irq::CASCADE;
    use vmm::devices::pic::ChipState;

    /// The line of highest priority among `mask`'s bits when `highest` has
    /// the highest priority (the datasheet's rotation).
    pub fn best(mask: u8, highest: u8) -> Option<u8> {
        (0..8)
            .map(|i| (highest + i) & 7)
            .find(|line| mask & (1 << line) != 0)
    }

    /// Priority level of `line` (0 highest).
    pub fn level(line: u8, highest: u8) -> u8 {
        line.wrapping_sub(highest) & 7
    }

    /// The line this chip interrupts for, if any: the best unmasked request,
    /// if its priority beats everything in service (fully nested mode), where
    /// special mask mode ignores masked lines in service and special fully
    /// nested mode lets the master's cascade line through again.
    pub fn pending(chip: &ChipState, is_master: bool) -> Option<u8> {
        let candidate = best(chip.irr & !chip.imr, chip.highest_priority)?;
        let mut in_service = chip.isr;
        if chip.special_mask {
            in_service &= !chip.imr;
        }
        if chip.special_fully_nested && is_master {
            in_service &= !(1 << CASCADE);
        }
        match best(in_service, chip.highest_priority) {
            Some(served)
                if level(served, chip.highest_priority)
                    <= level(candidate, chip.highest_priority) =>
            {
                None
            }
            _ => Some(candidate),
        }
    }
}
