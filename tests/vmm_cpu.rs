//! `--cpu`: what a CPU model controls on this host. A hand-made PVH kernel
//! executes `cpuid` leaf 1 in ring 0 (the view a guest kernel decides by)
//! and exits through port 0xF4 with bit 0 = CX16 and bit 1 = XSAVE.
mod common;

use std::process::Command;
use std::time::Duration;

use common::pvh_elf::PvhElf;
use common::*;

/// Where the kernel loads.
const LOAD: u64 = 0x10_0000;

/// 32-bit code: `cpuid` leaf 1, then `out 0xf4` with
/// `((ecx >> 13) & 1) | ((ecx >> 25) & 2)`: CX16 (bit 13), XSAVE (bit 26).
const CPUID_EXIT: &[u8] = &[
    0xb8, 0x01, 0x00, 0x00, 0x00, // mov eax, 1
    0x31, 0xc9, // xor ecx, ecx
    0x0f, 0xa2, // cpuid
    0x89, 0xc8, // mov eax, ecx
    0xc1, 0xe8, 0x0d, // shr eax, 13
    0x83, 0xe0, 0x01, // and eax, 1
    0xc1, 0xe9, 0x19, // shr ecx, 25
    0x83, 0xe1, 0x02, // and ecx, 2
    0x09, 0xc8, // or eax, ecx
    0xe6, 0xf4, // out 0xf4, al
    0xf4, // hlt
];

/// The exit status of the kernel under `--cpu model` (None: no `--cpu`).
fn cpuid_bits(model: Option<&str>) -> (i32, String) {
    require_kvm();
    let path = scratch_path("cpuid.elf");
    std::fs::write(&path, PvhElf::new(LOAD, CPUID_EXIT).build()).unwrap();
    let mut command = Command::new(vmm_binary());
    command.arg("--kernel").arg(&path).args(["--timeout", "20"]);
    if let Some(model) = model {
        command.args(["--cpu", model]);
    }
    let mut vm = Machine::spawn(command);
    let status = vm.wait(Duration::from_secs(40));
    (status.code().unwrap_or(-1), vm.stderr.text())
}

/// CX16 is in KVM's supported CPUID (on the CI machine kind too): the default
/// model and `host` give it, `-cx16` hides it, `baseline` (qemu64) has it.
///
/// XSAVE is where this host differs: `kvm_pvm`'s supported CPUID leaves it
/// out, yet the guest's `cpuid` reports the host CPU's bit, whatever the
/// table says. The VMM then refuses `+xsave` (not supported) and cannot hide
/// XSAVE with `-xsave`; this test pins that down so the README's statement
/// stays true. Where KVM does support XSAVE, `-xsave` must hide it.
#[test]
fn toggles_hide_what_kvm_supports() {
    const CX16: i32 = 1;
    const XSAVE: i32 = 2;
    let cases = [
        (None, CX16),
        (Some("host"), CX16),
        (Some("host,-cx16"), 0),
        (Some("host,-xsave"), CX16),
        (Some("host,-xsave,-cx16"), 0),
        (Some("baseline"), CX16),
        (Some("baseline,-cx16"), 0),
    ];
    let (plus_xsave, stderr) = cpuid_bits(Some("baseline,+xsave"));
    let kvm_has_xsave = plus_xsave != 1;
    if !kvm_has_xsave {
        assert!(
            stderr.contains("the host's KVM does not support CPU feature xsave"),
            "{stderr}"
        );
    }
    let host_xsave = cpuid_bits(None).0 & XSAVE;
    let seen: Vec<_> = cases
        .iter()
        .map(|(model, _)| cpuid_bits(*model).0)
        .collect();
    let expected: Vec<_> = cases
        .iter()
        .map(|(model, cx16)| {
            let xsave = match model {
                // Hidden where KVM supports it, the host's bit otherwise.
                Some(m) if m.contains("-xsave") || m.starts_with("baseline") => {
                    if kvm_has_xsave {
                        0
                    } else {
                        host_xsave
                    }
                }
                _ => host_xsave,
            };
            cx16 | xsave
        })
        .collect();
    assert_eq!(
        seen, expected,
        "models {cases:?}, KVM supports XSAVE: {kvm_has_xsave}"
    );
}
/// A bad model is a usage error naming it; a feature the host lacks is a
/// setup error.
#[test]
fn bad_models_are_refused_with_one_line() {
    let mut vm = Machine::spawn({
        let mut command = Command::new(vmm_binary());
        command.args(["--cpu", "pentium"]);
        command
    });
    let status = vm.wait(Duration::from_secs(20));
    assert_eq!(status.code(), Some(2));
    assert!(
        vm.stderr
            .text()
            .contains("unknown CPU model \"pentium\": expected host or baseline"),
        "{}",
        vm.stderr.text()
    );
    let mut vm = Machine::spawn({
        let mut command = Command::new(vmm_binary());
        command.args(["--cpu", "host,-nosuch"]);
        command
    });
    assert_eq!(vm.wait(Duration::from_secs(20)).code(), Some(2));
    assert!(vm.stderr.text().contains("unknown CPU feature \"nosuch\""));
}

/// 32-bit code: `cpuid` leaf 0x40000001 (KVM's paravirtual features), then
/// `out 0xf4` with bit 0 = poll control (EAX bit 12), bit 1 = async page
/// faults as an interrupt (bit 14), bit 2 = kvmclock, second version (bit 3,
/// to show the leaf is KVM's).
const KVM_FEATURES_EXIT: &[u8] = &[
    0xb8, 0x01, 0x00, 0x00, 0x40, // mov eax, 0x40000001
    0x0f, 0xa2, // cpuid
    0x89, 0xc1, // mov ecx, eax
    0xc1, 0xe8, 0x0c, // shr eax, 12
    0x83, 0xe0, 0x01, // and eax, 1
    0x89, 0xca, // mov edx, ecx
    0xc1, 0xea, 0x0d, // shr edx, 13
    0x83, 0xe2, 0x02, // and edx, 2
    0x09, 0xd0, // or eax, edx
    0xc1, 0xe9, 0x01, // shr ecx, 1
    0x83, 0xe1, 0x04, // and ecx, 4
    0x09, 0xc8, // or eax, ecx
    0xe6, 0xf4, // out 0xf4, al
    0xf4, // hlt
];

/// The paravirtual features that need KVM's in-kernel irqchip are never
/// offered, in any model: async page faults as an interrupt (KVM refuses
/// its MSR without an in-kernel local APIC, and Linux logs the fault) and
/// poll control. kvmclock stays.
#[test]
fn kvm_features_needing_an_in_kernel_irqchip_are_left_out() {
    require_kvm();
    let path = scratch_path("kvm-features.elf");
    std::fs::write(&path, PvhElf::new(LOAD, KVM_FEATURES_EXIT).build()).unwrap();
    for model in ["host", "baseline"] {
        let mut command = Command::new(vmm_binary());
        command
            .arg("--kernel")
            .arg(&path)
            .args(["--timeout", "20", "--cpu", model]);
        let mut vm = Machine::spawn(command);
        let status = vm.wait(Duration::from_secs(40));
        assert_eq!(
            status.code(),
            Some(4),
            "--cpu {model}: {}",
            vm.stderr.text()
        );
    }
}
