//! vCPU configuration: CPUID, the power-on state a reset returns to, and the
//! PVH entry register state.
use kvm_bindings::{
    kvm_cpuid_entry2, kvm_debugregs, kvm_fpu, kvm_msr_entry, kvm_regs, kvm_segment, kvm_sregs,
    kvm_vcpu_events, kvm_xcrs, CpuId, Msrs, KVM_MAX_CPUID_ENTRIES,
};
use kvm_ioctls::{Kvm, VcpuFd};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::boot::{BootEntry, GDT_ADDR};
use super::cpu_model::{CpuModel, CpuModelError, KVM_FEATURES_LEAF};

/// CPUID.1:ECX bit: x2APIC.
const CPUID1_ECX_X2APIC: u32 = 1 << 21;
/// CPUID.1:ECX bit: TSC deadline timer (a local APIC feature).
const CPUID1_ECX_TSC_DEADLINE: u32 = 1 << 24;
/// CPUID.1:EDX bit: on-chip local APIC.
const CPUID1_EDX_APIC: u32 = 1 << 9;

/// KVM's hypervisor CPUID leaf: the highest hypervisor leaf (EAX) and the
/// "KVMKVMKVM" signature.
const CPUID_HYPERVISOR_BASE: u32 = 0x4000_0000;
/// The hypervisor timing leaf (VMware's convention, which QEMU offers with
/// `vmware-cpuid-freq`): EAX the TSC frequency in kHz, EBX the local APIC
/// bus frequency in kHz (0: this machine has no APIC).
pub const CPUID_TIMING_LEAF: u32 = 0x4000_0010;

/// CR0.PE: protected mode.
const CR0_PE: u64 = 1 << 0;
/// CR0.ET: extension type (always 1 on 486 and later).
const CR0_ET: u64 = 1 << 4;

/// Gives the vCPU what KVM supports narrowed to `model` (see `cpu_model`),
/// minus the local APIC: this machine has none (no in-kernel irqchip), so
/// advertising one would be a lie; minus the KVM paravirtual features that
/// need KVM's in-kernel irqchip ([`KVM_FEATURE_POLL_CONTROL`],
/// [`KVM_FEATURE_ASYNC_PF_INT`]). Adds the hypervisor timing leaf with
/// the vCPU's TSC frequency (`KVM_GET_TSC_KHZ`), so a guest can use the TSC
/// as its clock without calibrating it against a slower device (an AMD host
/// has no CPUID leaf 0x15).
pub fn configure_cpuid(kvm: &Kvm, vcpu: &VcpuFd, model: &CpuModel) -> Result<(), CpuidError> {
    let supported = kvm
        .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
        .map_err(CpuidError::Kvm)?;
    let mut entries = supported.as_slice().to_vec();
    model.apply(&mut entries)?;
    let tsc_khz = vcpu.get_tsc_khz().ok().filter(|&khz| khz > 0);
    for entry in entries.iter_mut() {
        if entry.function == 1 {
            entry.ecx &= !(CPUID1_ECX_X2APIC | CPUID1_ECX_TSC_DEADLINE);
            entry.edx &= !CPUID1_EDX_APIC;
            // Initial APIC ID (bits 31:24) of our single vCPU.
            entry.ebx &= 0x00ff_ffff;
        }
        if entry.function == CPUID_HYPERVISOR_BASE && tsc_khz.is_some() {
            entry.eax = entry.eax.max(CPUID_TIMING_LEAF);
        }
        if entry.function == KVM_FEATURES_LEAF {
            entry.eax &= !(KVM_FEATURE_POLL_CONTROL | KVM_FEATURE_ASYNC_PF_INT);
        }
    }
    if let Some(khz) = tsc_khz {
        entries.push(kvm_cpuid_entry2 {
            function: CPUID_TIMING_LEAF,
            eax: khz,
            ..Default::default()
        });
    }
    // A full table (KVM_MAX_CPUID_ENTRIES) only loses the timing leaf;
    // guests then calibrate the TSC themselves.
    let entries = &entries[..entries.len().min(KVM_MAX_CPUID_ENTRIES)];
    let cpuid = CpuId::from_entries(entries)
        .map_err(|_| CpuidError::Kvm(kvm_ioctls::Error::new(libc::E2BIG)))?;
    vcpu.set_cpuid2(&cpuid).map_err(CpuidError::Kvm)
}

/// `KVM_FEATURE_POLL_CONTROL` (`KVM_CPUID_FEATURES` EAX bit 12): the guest
/// may turn off the host's halt polling through MSR 0x4b564d05.
///
/// Never offered: halt polling is the in-kernel irqchip's business, and
/// this machine's `HLT` exits to the VMM, so there is nothing to control.
const KVM_FEATURE_POLL_CONTROL: u32 = 1 << 12;

/// `KVM_FEATURE_ASYNC_PF_INT` (`KVM_CPUID_FEATURES` EAX bit 14): async page
/// faults whose "page ready" comes as an interrupt, set up through MSR
/// 0x4b564d06.
///
/// Never offered: KVM delivers that interrupt through its in-kernel local
/// APIC and refuses the MSR without one (`kvm_pv_enable_async_pf_int`), so a
/// Linux guest's write faults and it logs an "unchecked MSR access error"
/// stack trace (measured with the Linux test kernel and `--cpu host`: the
/// write of 0xf3 to 0x4b564d06 during boot; gone without this bit). Linux
/// uses async page faults only with this delivery, so it then uses none.
const KVM_FEATURE_ASYNC_PF_INT: u32 = 1 << 14;

/// Why the vCPU's CPUID could not be set.
#[derive(Debug, thiserror::Error)]
pub enum CpuidError {
    /// The `--cpu` model asks for something the host lacks.
    #[error("--cpu: {0}")]
    Model(#[from] CpuModelError),
    /// A KVM CPUID ioctl failed.
    #[error("KVM set CPUID failed: {0}")]
    Kvm(kvm_ioctls::Error),
}

/// MSRs a guest may change that a reset must restore (EFER is also in the
/// sregs): the SYSCALL/SYSENTER set, the segment bases, PAT. Only those KVM
/// lists are saved.
const RESET_MSRS: [u32; 12] = [
    0xc000_0080, // EFER
    0xc000_0081, // STAR
    0xc000_0082, // LSTAR
    0xc000_0083, // CSTAR
    0xc000_0084, // SFMASK
    0xc000_0100, // FS_BASE
    0xc000_0101, // GS_BASE
    0xc000_0102, // KERNEL_GS_BASE
    0x174,       // SYSENTER_CS
    0x175,       // SYSENTER_ESP
    0x176,       // SYSENTER_EIP
    0x277,       // PAT
];

/// The state KVM gives a new vCPU, saved before the first boot so that a
/// machine reset can return to it: special registers (control registers,
/// EFER, segments, descriptor tables, pending interrupt bitmap), the x87/SSE
/// state, the MSRs of [`RESET_MSRS`], and, where KVM supports them, pending
/// events, debug registers and XCR0. The PVH entry state
/// ([`configure_pvh_entry`]) is then applied on top, at boot and at reset.
pub struct PowerOnState {
    sregs: kvm_sregs,
    fpu: kvm_fpu,
    msrs: Msrs,
    events: Option<kvm_vcpu_events>,
    debug: Option<kvm_debugregs>,
    xcrs: Option<kvm_xcrs>,
}

impl PowerOnState {
    /// Saves the state of `vcpu`, which must not have run yet.
    pub fn capture(kvm: &Kvm, vcpu: &VcpuFd) -> Result<Self, SetupError> {
        let supported = kvm.get_msr_index_list().map_err(SetupError::Kvm)?;
        let entries: Vec<kvm_msr_entry> = RESET_MSRS
            .iter()
            .filter(|index| supported.as_slice().contains(index))
            .map(|&index| kvm_msr_entry {
                index,
                ..Default::default()
            })
            .collect();
        let mut msrs = Msrs::from_entries(&entries)
            .map_err(|_| SetupError::Kvm(kvm_ioctls::Error::new(libc::E2BIG)))?;
        let read = vcpu.get_msrs(&mut msrs).map_err(SetupError::Kvm)?;
        // KVM stops at the first MSR it cannot read: keep what it read.
        let msrs = Msrs::from_entries(&msrs.as_slice()[..read])
            .map_err(|_| SetupError::Kvm(kvm_ioctls::Error::new(libc::E2BIG)))?;
        Ok(Self {
            sregs: vcpu.get_sregs().map_err(SetupError::Kvm)?,
            fpu: vcpu.get_fpu().map_err(SetupError::Kvm)?,
            msrs,
            events: vcpu.get_vcpu_events().ok(),
            debug: vcpu.get_debug_regs().ok(),
            xcrs: vcpu.get_xcrs().ok(),
        })
    }

    /// Puts `vcpu` back into the saved state.
    pub fn restore(&self, vcpu: &VcpuFd) -> Result<(), SetupError> {
        vcpu.set_sregs(&self.sregs).map_err(SetupError::Kvm)?;
        vcpu.set_fpu(&self.fpu).map_err(SetupError::Kvm)?;
        let written = vcpu.set_msrs(&self.msrs).map_err(SetupError::Kvm)?;
        if written != self.msrs.as_slice().len() {
            let index = self.msrs.as_slice()[written].index;
            log::warn!("reset: KVM refused to restore MSR {index:#x}");
        }
        if let Some(events) = &self.events {
            vcpu.set_vcpu_events(events).map_err(SetupError::Kvm)?;
        }
        if let Some(debug) = &self.debug {
            vcpu.set_debug_regs(debug).map_err(SetupError::Kvm)?;
        }
        if let Some(xcrs) = &self.xcrs {
            vcpu.set_xcrs(xcrs).map_err(SetupError::Kvm)?;
        }
        Ok(())
    }
}

/// A flat 4 GiB segment descriptor (`type_`: 0xb code, 0x3 data).
fn flat_segment(selector: u16, type_: u8) -> kvm_segment {
    kvm_segment {
        base: 0,
        limit: 0xffff_ffff,
        selector,
        type_,
        present: 1,
        dpl: 0,
        db: 1,
        s: 1,
        l: 0,
        g: 1,
        avl: 0,
        unusable: 0,
        padding: 0,
    }
}

/// The busy 32-bit TSS the PVH entry state loads into TR (VMX requires a
/// usable TR; the guest installs its own before it needs one).
fn pvh_tss_segment() -> kvm_segment {
    kvm_segment {
        limit: 0x67,
        selector: 0x18,
        type_: 0xb,
        s: 0,
        db: 0,
        g: 0,
        ..flat_segment(0x08, 0xb)
    }
}

/// The 8-byte GDT descriptor encoding of `segment`.
fn gdt_entry(segment: &kvm_segment) -> u64 {
    let base = segment.base;
    let limit = if segment.g != 0 {
        u64::from(segment.limit >> 12)
    } else {
        u64::from(segment.limit)
    };
    let access = u64::from(segment.type_ & 0xf)
        | u64::from(segment.s & 1) << 4
        | u64::from(segment.dpl & 3) << 5
        | u64::from(segment.present & 1) << 7;
    let flags = u64::from(segment.avl & 1)
        | u64::from(segment.l & 1) << 1
        | u64::from(segment.db & 1) << 2
        | u64::from(segment.g & 1) << 3;
    (limit & 0xffff)
        | (base & 0xff_ffff) << 16
        | access << 40
        | ((limit >> 16) & 0xf) << 48
        | flags << 52
        | ((base >> 24) & 0xff) << 56
}

/// Puts the vCPU in the state the PVH ABI defines at the entry point:
/// 32-bit protected mode, paging off, flat 4 GiB `CS` (read/execute) and
/// `DS`/`ES`/`FS`/`GS`/`SS` (read/write), a 32-bit TSS in `TR`, `EFLAGS` with
/// only the reserved bit 1 set (interrupts off), `EBX` = the `hvm_start_info`
/// address. The descriptors are also written to a GDT in guest memory so a
/// kernel reloading a selector before installing its own GDT stays flat.
pub fn configure_pvh_entry(
    vcpu: &VcpuFd,
    mem: &GuestMemoryMmap,
    boot: BootEntry,
) -> Result<(), SetupError> {
    let code = flat_segment(0x08, 0xb);
    let data = flat_segment(0x10, 0x3);
    let tss = pvh_tss_segment();
    let gdt = [0, gdt_entry(&code), gdt_entry(&data), gdt_entry(&tss)];
    for (index, descriptor) in gdt.iter().enumerate() {
        mem.write_obj(*descriptor, GuestAddress(GDT_ADDR + 8 * index as u64))
            .map_err(SetupError::Memory)?;
    }

    let mut sregs = vcpu.get_sregs().map_err(SetupError::Kvm)?;
    sregs.cs = code;
    sregs.ds = data;
    sregs.es = data;
    sregs.fs = data;
    sregs.gs = data;
    sregs.ss = data;
    sregs.tr = tss;
    sregs.gdt.base = GDT_ADDR;
    sregs.gdt.limit = (gdt.len() * 8 - 1) as u16;
    sregs.idt.base = 0;
    sregs.idt.limit = 0;
    sregs.cr0 = CR0_PE | CR0_ET;
    sregs.cr3 = 0;
    sregs.cr4 = 0;
    sregs.efer = 0;
    vcpu.set_sregs(&sregs).map_err(SetupError::Kvm)?;

    let regs = kvm_regs {
        rip: u64::from(boot.entry),
        rbx: u64::from(boot.start_info),
        rflags: 0x2,
        ..Default::default()
    };
    vcpu.set_regs(&regs).map_err(SetupError::Kvm)
}

/// Why the vCPU could not be put in its entry state.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A KVM register ioctl failed.
    #[error("cannot set the vCPU registers: {0}")]
    Kvm(kvm_ioctls::Error),
    /// The GDT could not be written.
    #[error("cannot write the boot GDT: {0}")]
    Memory(vm_memory::GuestMemoryError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gdt_entries_match_the_classic_encodings() {
        assert_eq!(gdt_entry(&flat_segment(0x08, 0xb)), 0x00cf_9b00_0000_ffff);
        assert_eq!(gdt_entry(&flat_segment(0x10, 0x3)), 0x00cf_9300_0000_ffff);
        assert_eq!(gdt_entry(&pvh_tss_segment()), 0x0000_8b00_0000_0067);
    }
}
