//! CPU models, QEMU-style: what CPUID the guest is given, as a named model
//! plus feature toggles (`--cpu host`, `--cpu baseline,+popcnt`,
//! `--cpu host,-xsave,-cx16`).
//!
//! A model only ever narrows what KVM supports (`KVM_GET_SUPPORTED_CPUID`):
//! a `+feature` KVM does not support is an error, not a lie to the guest.
//!
//! What a model controls: the CPUID the guest's *kernel* sees. Under
//! `kvm_pvm` a ring-0 `cpuid` goes through KVM's table (ours), but a `cpuid`
//! executed in guest user mode runs on the host CPU and reports the host's
//! bits (measured: XSAVE, AVX, AVX-512, SMAP shown to user space although
//! they were not in the table); no VMM can hide those there. The guest
//! kernel decides which instructions it uses from its own view, which is
//! what matters for the emulator's gaps (XSAVE, CMPXCHG16B).
use kvm_bindings::kvm_cpuid_entry2;

/// A CPUID output register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reg {
    Eax,
    Ebx,
    Ecx,
    Edx,
}

/// A named CPUID feature: bits of one register of one leaf (subleaf 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Feature {
    /// QEMU's name for it.
    pub name: &'static str,
    leaf: u32,
    reg: Reg,
    mask: u32,
}

const fn feature(name: &'static str, leaf: u32, reg: Reg, bit: u32) -> Feature {
    Feature {
        name,
        leaf,
        reg,
        mask: 1 << bit,
    }
}

/// The KVM paravirtual feature leaf (`KVM_CPUID_FEATURES`): EAX bits.
pub const KVM_FEATURES_LEAF: u32 = 0x4000_0001;

/// The features `--cpu` toggles know, by QEMU's names.
pub const FEATURES: &[Feature] = &[
    feature("sse3", 1, Reg::Ecx, 0),
    feature("pclmulqdq", 1, Reg::Ecx, 1),
    feature("monitor", 1, Reg::Ecx, 3),
    feature("ssse3", 1, Reg::Ecx, 9),
    feature("fma", 1, Reg::Ecx, 12),
    feature("cx16", 1, Reg::Ecx, 13),
    feature("pcid", 1, Reg::Ecx, 17),
    feature("sse4.1", 1, Reg::Ecx, 19),
    feature("sse4.2", 1, Reg::Ecx, 20),
    feature("movbe", 1, Reg::Ecx, 22),
    feature("popcnt", 1, Reg::Ecx, 23),
    feature("aes", 1, Reg::Ecx, 25),
    feature("xsave", 1, Reg::Ecx, 26),
    feature("avx", 1, Reg::Ecx, 28),
    feature("f16c", 1, Reg::Ecx, 29),
    feature("rdrand", 1, Reg::Ecx, 30),
    feature("hypervisor", 1, Reg::Ecx, 31),
    feature("pge", 1, Reg::Edx, 13),
    feature("mtrr", 1, Reg::Edx, 12),
    feature("clflush", 1, Reg::Edx, 19),
    feature("fsgsbase", 7, Reg::Ebx, 0),
    feature("bmi1", 7, Reg::Ebx, 3),
    feature("avx2", 7, Reg::Ebx, 5),
    feature("smep", 7, Reg::Ebx, 7),
    feature("bmi2", 7, Reg::Ebx, 8),
    feature("erms", 7, Reg::Ebx, 9),
    feature("invpcid", 7, Reg::Ebx, 10),
    feature("avx512f", 7, Reg::Ebx, 16),
    feature("rdseed", 7, Reg::Ebx, 18),
    feature("adx", 7, Reg::Ebx, 19),
    feature("smap", 7, Reg::Ebx, 20),
    feature("clflushopt", 7, Reg::Ebx, 23),
    feature("umip", 7, Reg::Ecx, 2),
    feature("pku", 7, Reg::Ecx, 3),
    feature("lahf-lm", 0x8000_0001, Reg::Ecx, 0),
    feature("abm", 0x8000_0001, Reg::Ecx, 5),
    feature("syscall", 0x8000_0001, Reg::Edx, 11),
    feature("nx", 0x8000_0001, Reg::Edx, 20),
    feature("pdpe1gb", 0x8000_0001, Reg::Edx, 26),
    feature("rdtscp", 0x8000_0001, Reg::Edx, 27),
    feature("invtsc", 0x8000_0007, Reg::Edx, 8),
    Feature {
        name: "kvmclock",
        leaf: KVM_FEATURES_LEAF,
        reg: Reg::Eax,
        // KVM_FEATURE_CLOCKSOURCE and KVM_FEATURE_CLOCKSOURCE2, as QEMU.
        mask: 1 << 0 | 1 << 3,
    },
    feature("kvm-nopiodelay", KVM_FEATURES_LEAF, Reg::Eax, 1),
    feature("kvm-asyncpf", KVM_FEATURES_LEAF, Reg::Eax, 4),
    feature("kvm-steal-time", KVM_FEATURES_LEAF, Reg::Eax, 5),
    feature("kvm-pv-eoi", KVM_FEATURES_LEAF, Reg::Eax, 6),
    feature("kvm-pv-unhalt", KVM_FEATURES_LEAF, Reg::Eax, 7),
    feature("kvm-poll-control", KVM_FEATURES_LEAF, Reg::Eax, 12),
    feature("kvm-asyncpf-int", KVM_FEATURES_LEAF, Reg::Eax, 14),
    feature("kvmclock-stable-bit", KVM_FEATURES_LEAF, Reg::Eax, 24),
];

/// The base of a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Base {
    /// Everything KVM supports (minus what the machine lacks: the local APIC).
    #[default]
    Host,
    /// A conservative model after QEMU's `qemu64`: the x86-64 baseline
    /// (SSE2, CX16, SSE3, NX, SYSCALL, LAHF) and nothing newer: no leaf 7
    /// features (SMEP, SMAP, AVX2, ...), no XSAVE (leaf 0xD), no POPCNT, no
    /// invariant-TSC bit. KVM's paravirtual leaves are kept, as QEMU keeps
    /// them with `-cpu qemu64 -accel kvm`.
    Baseline,
}

/// A CPU model: a base and feature toggles applied in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CpuModel {
    /// The model the toggles start from.
    pub base: Base,
    /// `(feature, on)` in command-line order.
    pub toggles: Vec<(Feature, bool)>,
}

/// Why a `--cpu` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CpuModelError {
    /// Not `host` or `baseline`.
    #[error("unknown CPU model {0:?}: expected host or baseline")]
    UnknownModel(String),
    /// A toggle without `+` or `-`.
    #[error("{0:?}: a feature toggle is +NAME or -NAME")]
    BadToggle(String),
    /// A toggle naming no feature in [`FEATURES`].
    #[error("unknown CPU feature {0:?}")]
    UnknownFeature(String),
    /// `+NAME` for a feature KVM does not support on this host.
    #[error("the host's KVM does not support CPU feature {0}")]
    Unsupported(&'static str),
}

impl std::str::FromStr for CpuModel {
    type Err = CpuModelError;

    /// `MODEL[,+FEATURE|,-FEATURE]...`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut parts = text.split(',');
        let base = match parts.next().unwrap_or_default() {
            "host" => Base::Host,
            "baseline" => Base::Baseline,
            other => return Err(CpuModelError::UnknownModel(other.into())),
        };
        let toggles = parts
            .map(|part| {
                let (on, name) = match part.split_at_checked(1) {
                    Some(("+", name)) => (true, name),
                    Some(("-", name)) => (false, name),
                    _ => return Err(CpuModelError::BadToggle(part.into())),
                };
                let feature = FEATURES
                    .iter()
                    .find(|f| f.name == name)
                    .ok_or_else(|| CpuModelError::UnknownFeature(name.into()))?;
                Ok((*feature, on))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { base, toggles })
    }
}

/// `qemu64`'s CPUID.1 EDX (QEMU's `PPRO_FEATURES | MTRR | CLFLUSH | MCA |
/// PSE36`): FPU DE PSE TSC MSR PAE MCE CX8 APIC SEP MTRR PGE MCA CMOV PAT
/// PSE36 CLFLUSH MMX FXSR SSE SSE2.
const BASELINE_1_EDX: u32 = 1 << 0 // FPU
    | 1 << 2 // DE
    | 1 << 3 // PSE
    | 1 << 4 // TSC
    | 1 << 5 // MSR
    | 1 << 6 // PAE
    | 1 << 7 // MCE
    | 1 << 8 // CX8
    | 1 << 9 // APIC (then cleared: the machine has none)
    | 1 << 11 // SEP
    | 1 << 12 // MTRR
    | 1 << 13 // PGE
    | 1 << 14 // MCA
    | 1 << 15 // CMOV
    | 1 << 16 // PAT
    | 1 << 17 // PSE36
    | 1 << 19 // CLFLUSH
    | 1 << 23 // MMX
    | 1 << 24 // FXSR
    | 1 << 25 // SSE
    | 1 << 26; // SSE2
/// `qemu64`'s CPUID.1 ECX: SSE3, CX16; plus the hypervisor bit, which QEMU
/// sets for every model under KVM.
const BASELINE_1_ECX: u32 = 1 << 0 | 1 << 13 | 1 << 31;
/// `qemu64`'s CPUID.8000_0001 EDX: SYSCALL, NX, LM.
const BASELINE_EXT_EDX: u32 = 1 << 11 | 1 << 20 | 1 << 29;
/// `qemu64`'s CPUID.8000_0001 ECX: LAHF_LM (its SVM bit is left out: no
/// nested virtualisation here).
const BASELINE_EXT_ECX: u32 = 1 << 0;

fn reg_mut(entry: &mut kvm_cpuid_entry2, reg: Reg) -> &mut u32 {
    match reg {
        Reg::Eax => &mut entry.eax,
        Reg::Ebx => &mut entry.ebx,
        Reg::Ecx => &mut entry.ecx,
        Reg::Edx => &mut entry.edx,
    }
}

fn reg(entry: &kvm_cpuid_entry2, reg: Reg) -> u32 {
    match reg {
        Reg::Eax => entry.eax,
        Reg::Ebx => entry.ebx,
        Reg::Ecx => entry.ecx,
        Reg::Edx => entry.edx,
    }
}

fn find(entries: &[kvm_cpuid_entry2], leaf: u32) -> Option<&kvm_cpuid_entry2> {
    entries.iter().find(|e| e.function == leaf && e.index == 0)
}

fn find_mut(entries: &mut [kvm_cpuid_entry2], leaf: u32) -> Option<&mut kvm_cpuid_entry2> {
    entries
        .iter_mut()
        .find(|e| e.function == leaf && e.index == 0)
}

impl CpuModel {
    /// Narrows `entries` (KVM's supported CPUID) to this model.
    pub fn apply(&self, entries: &mut Vec<kvm_cpuid_entry2>) -> Result<(), CpuModelError> {
        let supported = entries.clone();
        if self.base == Base::Baseline {
            // Leaf 0xD describes XSAVE state, which the model does not have.
            entries.retain(|e| e.function != 0xd);
            for entry in entries.iter_mut() {
                match (entry.function, entry.index) {
                    (1, _) => {
                        entry.ecx &= BASELINE_1_ECX;
                        entry.edx &= BASELINE_1_EDX;
                    }
                    // Structured extended features: none (EAX keeps the
                    // number of subleaves).
                    (7, _) => (entry.ebx, entry.ecx, entry.edx) = (0, 0, 0),
                    (0x8000_0001, _) => {
                        entry.ecx &= BASELINE_EXT_ECX;
                        entry.edx &= BASELINE_EXT_EDX;
                    }
                    // Power management: no invariant TSC.
                    (0x8000_0007, _) => entry.edx = 0,
                    _ => {}
                }
            }
        }
        for (feature, on) in &self.toggles {
            let host = find(&supported, feature.leaf).map_or(0, |e| reg(e, feature.reg));
            if *on && host & feature.mask != feature.mask {
                return Err(CpuModelError::Unsupported(feature.name));
            }
            if *on && feature.name == "xsave" && !entries.iter().any(|e| e.function == 0xd) {
                entries.extend(supported.iter().filter(|e| e.function == 0xd).copied());
            }
            if !on && feature.name == "xsave" {
                entries.retain(|e| e.function != 0xd);
            }
            if let Some(entry) = find_mut(entries, feature.leaf) {
                let bits = reg_mut(entry, feature.reg);
                if *on {
                    *bits |= feature.mask;
                } else {
                    *bits &= !feature.mask;
                }
            }
        }
        Ok(())
    }
}

/// Whether `entries` offer `feature` (all of its bits).
pub fn has(entries: &[kvm_cpuid_entry2], feature: &str) -> bool {
    FEATURES
        .iter()
        .find(|f| f.name == feature)
        .and_then(|f| Some((f, find(entries, f.leaf)?)))
        .is_some_and(|(f, e)| reg(e, f.reg) & f.mask == f.mask)
}

#[cfg(test)]
mod tests;
