//! The clock: the TSC, read without any exit to the VMM, counted from the
//! moment [`init`] ran and converted exactly to nanoseconds and milliseconds
//! by [`clock::TscClock`]. Its frequency comes from CPUID when the CPU or
//! the hypervisor states it ([`frequency_from_cpuid`]), else from a
//! calibration against PIT channel 2 (`drivers::pit::calibrate_tsc`).
//!
//! Nothing here depends on timer interrupts: the timer interrupt (a PIT
//! one-shot, see `task::timer`) only wakes sleepers; the clock runs without it.

pub mod calendar;
pub mod clock;

use spin::Once;

use clock::TscClock;

/// Where the TSC frequency came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// The hypervisor's timing leaf 0x40000010 (EAX: TSC kHz), announced by
    /// leaf 0x40000000.
    Hypervisor,
    /// CPUID leaf 0x15 (TSC/crystal ratio and crystal frequency).
    Leaf15,
    /// Leaf 0x15's ratio with the crystal frequency derived from leaf 0x16's
    /// base frequency (leaf 0x15 gives none), as Linux does.
    Leaf15And16,
    /// Timed against PIT channel 2 at boot.
    Calibrated,
    /// Calibration failed (PIT channel 2 never reached terminal count): the
    /// frequency is a guess and the clock is wrong by an unknown factor.
    Assumed,
}

impl Method {
    /// How `stats` names the method.
    pub const fn describe(self) -> &'static str {
        match self {
            Self::Hypervisor => "cpuid 0x40000010",
            Self::Leaf15 => "cpuid 0x15",
            Self::Leaf15And16 => "cpuid 0x15 and 0x16",
            Self::Calibrated => "calibrated against pit channel 2",
            Self::Assumed => "assumed: calibration failed",
        }
    }
}

/// The frequency [`Method::Assumed`] takes.
pub const ASSUMED_HZ: u64 = 2_000_000_000;

/// The clock source: the TSC, its frequency and where that came from.
#[derive(Clone, Copy, Debug)]
pub struct Clocksource {
    /// Conversions for the TSC's frequency.
    pub clock: TscClock,
    /// How the frequency was found.
    pub method: Method,
    /// TSC value at which the clock reads 0.
    origin: u64,
}

static CLOCKSOURCE: Once<Clocksource> = Once::new();

/// The TSC.
#[inline]
pub fn rdtsc() -> u64 {
    // SAFETY: rdtsc reads a counter; it has no side effects and every x86_64
    // CPU has it.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Starts the clock at `origin` (a TSC value) with `hz` found by `method`.
/// Called once at boot, before interrupts are enabled and before anything
/// reads the clock; later calls change nothing.
pub fn init(origin: u64, hz: u64, method: Method) -> &'static Clocksource {
    CLOCKSOURCE.call_once(|| Clocksource {
        clock: TscClock::new(hz.max(1)),
        method,
        origin,
    })
}

/// The clock source, once [`init`] has run.
pub fn clocksource() -> Option<&'static Clocksource> {
    CLOCKSOURCE.get()
}

/// The clock's conversions. Before [`init`] (nothing reads the clock then)
/// those of an [`ASSUMED_HZ`] TSC.
pub fn clock() -> TscClock {
    match CLOCKSOURCE.get() {
        Some(source) => source.clock,
        None => TscClock::new(ASSUMED_HZ),
    }
}

/// TSC cycles since the clock started (0 before [`init`]). Monotonic: the
/// TSC is (KVM keeps it so; an invariant TSC is assumed on real hardware).
#[inline]
pub fn now() -> u64 {
    match CLOCKSOURCE.get() {
        Some(source) => rdtsc().saturating_sub(source.origin),
        None => 0,
    }
}

/// The least number of cycles lasting at least `ms` milliseconds.
pub fn ms_to_cycles(ms: u64) -> u64 {
    clock().ms_to_cycles(ms)
}

/// Milliseconds `cycles` last (rounded down).
pub fn cycles_to_ms(cycles: u64) -> u64 {
    clock().cycles_to_ms(cycles)
}

/// Microseconds `cycles` last (rounded down).
pub fn cycles_to_us(cycles: u64) -> u64 {
    clock().cycles_to_ns(cycles) / 1000
}

/// Milliseconds since the clock started (rounded down).
pub fn uptime_ms() -> u64 {
    cycles_to_ms(now())
}

/// Busy-waits until `ms` milliseconds have elapsed, without yielding to
/// other tasks. Interrupts stay as they are: the TSC runs without them.
pub fn spin(ms: u64) {
    let deadline = now().saturating_add(ms_to_cycles(ms));
    while now() < deadline {
        core::hint::spin_loop();
    }
}

/// The TSC frequency (Hz) and its source, if CPUID states it; `cpuid(leaf)`
/// returns `[eax, ebx, ecx, edx]` of sub-leaf 0.
///
/// The hypervisor's leaf 0x40000010 comes first: it is the rate of this
/// vCPU's TSC as the hypervisor set it (KVM's `KVM_GET_TSC_KHZ`, TSC scaling
/// included), while leaves 0x15/0x16 may be the host's, passed through. It
/// counts only if the hypervisor-present bit (leaf 1 ECX bit 31) is set and
/// leaf 0x40000000 announces it (EAX, the highest hypervisor leaf, is at
/// least 0x40000010 and sane: a CPU without hypervisor leaves answers with
/// the data of its highest basic leaf instead).
///
/// Leaf 0x15 (when the highest basic leaf reaches it): the TSC runs at the
/// crystal's Hz (ECX) times EBX / EAX; with no crystal frequency (ECX = 0),
/// the crystal is derived
/// from leaf 0x16's base MHz (EAX), which then is the TSC's frequency, as
/// Linux does. Leaf 0x16 alone gives only a nominal whole-MHz base
/// frequency, not the TSC's, and is not used without 0x15's ratio.
pub fn frequency_from_cpuid(cpuid: impl Fn(u32) -> [u32; 4]) -> Option<(u64, Method)> {
    const HYPERVISOR_PRESENT: u32 = 1 << 31;
    const HYPERVISOR_BASE: u32 = 0x4000_0000;
    const HYPERVISOR_TIMING: u32 = 0x4000_0010;
    let max_basic = cpuid(0)[0];
    if max_basic >= 1 && cpuid(1)[2] & HYPERVISOR_PRESENT != 0 {
        let max_hypervisor = cpuid(HYPERVISOR_BASE)[0];
        if (HYPERVISOR_TIMING..HYPERVISOR_BASE + 0x1_0000).contains(&max_hypervisor) {
            let khz = cpuid(HYPERVISOR_TIMING)[0];
            if khz != 0 {
                return Some((u64::from(khz) * 1000, Method::Hypervisor));
            }
        }
    }
    if max_basic >= 0x15 {
        let [denominator, numerator, crystal_hz, _] = cpuid(0x15);
        if denominator != 0 && numerator != 0 {
            let ratio = |crystal: u64| crystal * u64::from(numerator) / u64::from(denominator);
            if crystal_hz != 0 {
                return Some((ratio(u64::from(crystal_hz)), Method::Leaf15));
            }
            if max_basic >= 0x16 {
                let base_mhz = cpuid(0x16)[0] & 0xFFFF;
                if base_mhz != 0 {
                    // TSC = base; the crystal is base * den / num.
                    return Some((u64::from(base_mhz) * 1_000_000, Method::Leaf15And16));
                }
            }
        }
    }
    None
}

/// [`frequency_from_cpuid`] on this CPU.
pub fn frequency_from_this_cpu() -> Option<(u64, Method)> {
    frequency_from_cpuid(|leaf| {
        let r = core::arch::x86_64::__cpuid_count(leaf, 0);
        [r.eax, r.ebx, r.ecx, r.edx]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CPUID answering from `leaves` (leaf, [eax, ebx, ecx, edx]); an
    /// unlisted leaf gets the highest basic leaf's data, as Intel CPUs do.
    fn cpu(leaves: &[(u32, [u32; 4])]) -> impl Fn(u32) -> [u32; 4] + '_ {
        move |leaf| {
            let find = |l: u32| leaves.iter().find(|(n, _)| *n == l).map(|(_, r)| *r);
            find(leaf).unwrap_or_else(|| {
                let max = find(0).unwrap()[0];
                find(max).unwrap_or_default()
            })
        }
    }

    #[test]
    fn the_hypervisor_leaf_counts_only_when_announced() {
        let kvm = [
            (0, [0x10, 0, 0, 0]),
            (1, [0, 0, 1 << 31, 0]),
            (0x10, [0, 0, 0, 0]),
            (0x4000_0000, [0x4000_0010, 0x4b4d_564b, 0x564b_4d56, 0x4d]),
            (0x4000_0010, [1_996_248, 0, 0, 0]),
        ];
        assert_eq!(
            frequency_from_cpuid(cpu(&kvm)),
            Some((1_996_248_000, Method::Hypervisor))
        );
        // KVM without the timing leaf (QEMU's default): 0x40000001 at most.
        let mut plain = kvm;
        plain[3].1[0] = 0x4000_0001;
        assert_eq!(frequency_from_cpuid(cpu(&plain)), None);
        // No hypervisor bit: leaf 0x40000010 is not looked at.
        let mut bare = kvm;
        bare[1].1[2] = 0;
        assert_eq!(frequency_from_cpuid(cpu(&bare)), None);
        // TCG: the hypervisor bit, no hypervisor leaves (answers are leaf 0xd's).
        let tcg = [
            (0, [0xd, 0, 0, 0]),
            (1, [0, 0, 1 << 31, 0]),
            (0xd, [0x7, 0x240, 0x340, 0]),
        ];
        assert_eq!(frequency_from_cpuid(cpu(&tcg)), None);
    }

    #[test]
    fn leaf_15_with_or_without_the_crystal_frequency() {
        let intel = [
            (0, [0x16, 0, 0, 0]),
            (1, [0, 0, 0, 0]),
            (0x15, [2, 176, 24_000_000, 0]),
            (0x16, [2112, 4000, 100, 0]),
        ];
        assert_eq!(
            frequency_from_cpuid(cpu(&intel)),
            Some((2_112_000_000, Method::Leaf15))
        );
        let mut no_crystal = intel;
        no_crystal[2].1[2] = 0;
        assert_eq!(
            frequency_from_cpuid(cpu(&no_crystal)),
            Some((2_112_000_000, Method::Leaf15And16))
        );
        // Leaf 0x15 all zero (AMD): nothing, whatever 0x16 says.
        let amd = [
            (0, [0x16, 0, 0, 0]),
            (1, [0, 0, 0, 0]),
            (0x15, [0, 0, 0, 0]),
            (0x16, [2000, 0, 0, 0]),
        ];
        assert_eq!(frequency_from_cpuid(cpu(&amd)), None);
        // Leaf 0x15 beyond the highest basic leaf is not read.
        let old = [
            (0, [0xd, 0, 0, 0]),
            (1, [0; 4]),
            (0xd, [2, 176, 24_000_000, 0]),
        ];
        assert_eq!(frequency_from_cpuid(cpu(&old)), None);
    }
}
