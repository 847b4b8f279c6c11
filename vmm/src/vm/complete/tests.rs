//! Unit tests of instruction completion, one test per instruction and case.
use super::*;

const KERNEL: CpuView = CpuView {
    bitness: 64,
    cpl: 0,
    rip: 0x10_0000,
    rflags: 0x2,
    smap: true,
    numeric_error: true,
    x87_exception_pending: false,
};

fn user() -> CpuView {
    CpuView { cpl: 3, ..KERNEL }
}

/// Every gate a kernel sets up: DPL 0, except vector 3 and 0x80 at 3.
fn gates(vector: u8) -> Option<u8> {
    Some(if matches!(vector, 3 | 0x80) { 3 } else { 0 })
}

#[test]
fn int3_traps_after_itself() {
    let done = complete(&[0xcc, 0x48, 0x8b], &KERNEL, gates);
    assert_eq!(done, Ok(Completion::Trap { len: 1, vector: 3 }));
    // From user mode through a DPL-3 gate too; through a DPL-0 gate it
    // is a #GP with the gate's IDT selector.
    assert_eq!(
        complete(&[0xcc], &user(), gates),
        Ok(Completion::Trap { len: 1, vector: 3 })
    );
    let dpl0 = |_| Some(0);
    let gp = Completion::Fault {
        vector: 13,
        error_code: Some(3 * 8 + 2),
    };
    assert_eq!(complete(&[0xcc], &user(), dpl0), Ok(gp));
}

#[test]
fn int_n_checks_the_gate_and_goes_through_the_idt() {
    let done = complete(&[0xcd, 0x80], &user(), gates);
    assert_eq!(
        done,
        Ok(Completion::SoftwareInterrupt {
            len: 2,
            vector: 0x80
        })
    );
    let denied = complete(&[0xcd, 0x40], &user(), gates);
    let gp = Completion::Fault {
        vector: 13,
        error_code: Some(0x40 * 8 + 2),
    };
    assert_eq!(denied, Ok(gp));
    // The kernel may use any gate; one beyond the IDT faults.
    let kernel = complete(&[0xcd, 0x40], &KERNEL, gates);
    assert_eq!(
        kernel,
        Ok(Completion::SoftwareInterrupt {
            len: 2,
            vector: 0x40
        })
    );
    let short = complete(&[0xcd, 0xf0], &KERNEL, |v| (v < 0x30).then_some(0));
    assert!(matches!(short, Ok(Completion::Fault { vector: 13, .. })));
}

#[test]
fn into_traps_only_with_overflow_and_not_in_64_bit_mode() {
    let legacy = CpuView {
        bitness: 32,
        ..KERNEL
    };
    let clear = complete(&[0xce], &legacy, gates);
    assert_eq!(
        clear,
        Ok(Completion::Advance {
            len: 1,
            rflags: 0x2
        })
    );
    let overflow = CpuView {
        rflags: 0x2 | RFLAGS_OF,
        ..legacy
    };
    assert_eq!(
        complete(&[0xce], &overflow, gates),
        Ok(Completion::Trap { len: 1, vector: 4 })
    );
    assert!(
        complete(&[0xce], &KERNEL, gates).is_err(),
        "INTO is invalid in 64-bit mode"
    );
}

#[test]
fn int1_raises_debug() {
    assert_eq!(
        complete(&[0xf1], &KERNEL, gates),
        Ok(Completion::Trap { len: 1, vector: 1 })
    );
}

#[test]
fn clac_and_stac_change_ac_in_ring_0_with_smap() {
    let stac = complete(&[0x0f, 0x01, 0xcb], &KERNEL, gates);
    assert_eq!(
        stac,
        Ok(Completion::Advance {
            len: 3,
            rflags: 0x2 | RFLAGS_AC
        })
    );
    let with_ac = CpuView {
        rflags: 0x2 | RFLAGS_AC,
        ..KERNEL
    };
    let clac = complete(&[0x0f, 0x01, 0xca], &with_ac, gates);
    assert_eq!(
        clac,
        Ok(Completion::Advance {
            len: 3,
            rflags: 0x2
        })
    );
    let ud = Completion::Fault {
        vector: 6,
        error_code: None,
    };
    assert_eq!(complete(&[0x0f, 0x01, 0xca], &user(), gates), Ok(ud));
    let no_smap = CpuView {
        smap: false,
        ..KERNEL
    };
    assert_eq!(complete(&[0x0f, 0x01, 0xcb], &no_smap, gates), Ok(ud));
}

#[test]
fn fwait_faults_only_on_a_pending_unmasked_x87_error() {
    let done = complete(&[0x9b], &KERNEL, gates);
    assert_eq!(
        done,
        Ok(Completion::Advance {
            len: 1,
            rflags: 0x2
        })
    );
    let pending = CpuView {
        x87_exception_pending: true,
        ..KERNEL
    };
    let mf = Completion::Fault {
        vector: 16,
        error_code: None,
    };
    assert_eq!(complete(&[0x9b], &pending, gates), Ok(mf));
}

#[test]
fn other_instructions_are_left_alone() {
    // cmpxchg16b [rdi]
    let unhandled = complete(&[0x48, 0x0f, 0xc7, 0x0f], &KERNEL, gates);
    assert_eq!(unhandled, Err(Unhandled("Cmpxchg16b".into())));
    assert!(complete(&[0x0f], &KERNEL, gates).is_err(), "truncated");
}
