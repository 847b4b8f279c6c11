//! Unit tests of instruction completion, one test per instruction and case.
use super::*;
use iced_x86::Register;

const KERNEL: CpuView = CpuView {
    bitness: 64,
    cpl: 0,
    rip: 0x10_0000,
    rflags: 0x2,
    smap: true,
    numeric_error: true,
    x87_exception_pending: false,
    sse: SseView {
        osfxsr: true,
        emulate: false,
        task_switched: false,
    },
};

fn user() -> CpuView {
    CpuView { cpl: 3, ..KERNEL }
}

/// A guest with registers, 64 KiB of identity-mapped memory at 0 and an
/// IDT whose gates have DPL 0, except vectors 3 and 0x80 at 3 and those at
/// or past `idt_end` missing.
#[derive(Default)]
struct Fake {
    registers: std::collections::HashMap<Register, u64>,
    memory: std::cell::RefCell<Vec<u8>>,
    idt_end: Option<u8>,
    /// Gates with DPL 3.
    user_gates: Vec<u8>,
    /// MXCSR.
    mxcsr: u32,
    /// MXCSR_MASK (0: not reported).
    mxcsr_mask: u32,
}

impl Fake {
    fn new() -> Self {
        Self {
            memory: std::cell::RefCell::new(vec![0; 0x1_0000]),
            user_gates: vec![3, 0x80],
            mxcsr: 0x1f80,
            mxcsr_mask: 0xffff,
            ..Self::default()
        }
    }

    fn with(mut self, register: Register, value: u64) -> Self {
        self.registers.insert(register, value);
        self
    }
}

impl GuestAccess for Fake {
    fn gate_dpl(&self, vector: u8) -> Option<u8> {
        if self.idt_end.is_some_and(|end| vector >= end) {
            return None;
        }
        Some(if self.user_gates.contains(&vector) {
            3
        } else {
            0
        })
    }

    fn register(&self, register: Register) -> u64 {
        self.registers.get(&register).copied().unwrap_or(0)
    }

    fn read(&self, address: u64, bytes: &mut [u8]) -> bool {
        let memory = self.memory.borrow();
        let start = address as usize;
        match memory.get(start..start + bytes.len()) {
            Some(source) => {
                bytes.copy_from_slice(source);
                true
            }
            None => false,
        }
    }

    fn mxcsr(&self) -> Option<u32> {
        Some(self.mxcsr)
    }

    fn mxcsr_mask(&self) -> Option<u32> {
        Some(self.mxcsr_mask)
    }
}

fn gates() -> Fake {
    Fake::new()
}

#[test]
fn int3_traps_after_itself() {
    let done = complete(&[0xcc, 0x48, 0x8b], &KERNEL, &gates());
    assert_eq!(done, Ok(Completion::Trap { len: 1, vector: 3 }));
    // From user mode through a DPL-3 gate too; through a DPL-0 gate it
    // is a #GP with the gate's IDT selector.
    assert_eq!(
        complete(&[0xcc], &user(), &gates()),
        Ok(Completion::Trap { len: 1, vector: 3 })
    );
    let dpl0 = Fake {
        user_gates: Vec::new(),
        ..Fake::new()
    };
    let gp = Completion::Fault {
        vector: 13,
        error_code: Some(3 * 8 + 2),
    };
    assert_eq!(complete(&[0xcc], &user(), &dpl0), Ok(gp));
}

#[test]
fn int_n_checks_the_gate_and_goes_through_the_idt() {
    let done = complete(&[0xcd, 0x80], &user(), &gates());
    assert_eq!(
        done,
        Ok(Completion::SoftwareInterrupt {
            len: 2,
            vector: 0x80
        })
    );
    let denied = complete(&[0xcd, 0x40], &user(), &gates());
    let gp = Completion::Fault {
        vector: 13,
        error_code: Some(0x40 * 8 + 2),
    };
    assert_eq!(denied, Ok(gp));
    // The kernel may use any gate; one beyond the IDT faults.
    let kernel = complete(&[0xcd, 0x40], &KERNEL, &gates());
    assert_eq!(
        kernel,
        Ok(Completion::SoftwareInterrupt {
            len: 2,
            vector: 0x40
        })
    );
    let short_idt = Fake {
        idt_end: Some(0x30),
        ..Fake::new()
    };
    let short = complete(&[0xcd, 0xf0], &KERNEL, &short_idt);
    assert!(matches!(short, Ok(Completion::Fault { vector: 13, .. })));
}

#[test]
fn into_traps_only_with_overflow_and_not_in_64_bit_mode() {
    let legacy = CpuView {
        bitness: 32,
        ..KERNEL
    };
    let clear = complete(&[0xce], &legacy, &gates());
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
        complete(&[0xce], &overflow, &gates()),
        Ok(Completion::Trap { len: 1, vector: 4 })
    );
    assert!(
        complete(&[0xce], &KERNEL, &gates()).is_err(),
        "INTO is invalid in 64-bit mode"
    );
}

#[test]
fn int1_raises_debug() {
    assert_eq!(
        complete(&[0xf1], &KERNEL, &gates()),
        Ok(Completion::Trap { len: 1, vector: 1 })
    );
}

#[test]
fn clac_and_stac_change_ac_in_ring_0_with_smap() {
    let stac = complete(&[0x0f, 0x01, 0xcb], &KERNEL, &gates());
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
    let clac = complete(&[0x0f, 0x01, 0xca], &with_ac, &gates());
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
    assert_eq!(
        complete(&[0x0f, 0x01, 0xca], &user(), &gates()),
        Ok(ud.clone())
    );
    let no_smap = CpuView {
        smap: false,
        ..KERNEL
    };
    assert_eq!(complete(&[0x0f, 0x01, 0xcb], &no_smap, &gates()), Ok(ud));
}

#[test]
fn fwait_faults_only_on_a_pending_unmasked_x87_error() {
    let done = complete(&[0x9b], &KERNEL, &gates());
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
    assert_eq!(complete(&[0x9b], &pending, &gates()), Ok(mf));
}

#[test]
fn other_instructions_are_left_alone() {
    // xsave [rdi]
    let unhandled = complete(&[0x0f, 0xae, 0x27], &KERNEL, &gates());
    assert_eq!(unhandled, Err(Unhandled("Xsave".into())));
    assert!(complete(&[0x0f], &KERNEL, &gates()).is_err(), "truncated");
}

#[test]
fn popcnt_counts_bits_into_the_destination_and_sets_zf_only_for_zero() {
    // popcnt ebx, eax (32-bit code): EBX zero-extended.
    let guest = gates()
        .with(Register::RAX, 0x0f0f_00ff)
        .with(Register::RBX, u64::MAX);
    let legacy = CpuView {
        bitness: 32,
        rflags: 0x2 | RFLAGS_CF | RFLAGS_ZF,
        ..KERNEL
    };
    let done = complete(&[0xf3, 0x0f, 0xb8, 0xd8], &legacy, &guest);
    let expected = Completion::Update {
        len: 4,
        rflags: 0x2,
        registers: vec![(Register::RBX, 16)],
        memory: None,
    };
    assert_eq!(done, Ok(expected));
    // popcnt rcx, [rdi + 8] with a zero source: ZF set, RCX = 0.
    let zero = gates().with(Register::RDI, 0x100).with(Register::RCX, 7);
    let done = complete(&[0xf3, 0x48, 0x0f, 0xb8, 0x4f, 0x08], &KERNEL, &zero);
    let expected = Completion::Update {
        len: 6,
        rflags: 0x2 | RFLAGS_ZF,
        registers: vec![(Register::RCX, 0)],
        memory: None,
    };
    assert_eq!(done, Ok(expected));
    // popcnt ax, bx keeps RAX's upper bits.
    let word = gates()
        .with(Register::RAX, 0xffff_0000_1234_ffff)
        .with(Register::RBX, 0x8001);
    let done = complete(&[0x66, 0xf3, 0x0f, 0xb8, 0xc3], &KERNEL, &word);
    let Ok(Completion::Update { registers, .. }) = done else {
        panic!("{done:?}");
    };
    assert_eq!(registers, [(Register::RAX, 0xffff_0000_1234_0002)]);
}

#[test]
fn cmpxchg16b_swaps_when_equal_and_loads_when_not() {
    // cmpxchg16b [rdi] with RDI = 0x40.
    let code = [0x48, 0x0f, 0xc7, 0x0f];
    let guest = gates()
        .with(Register::RDI, 0x40)
        .with(Register::RAX, 1)
        .with(Register::RDX, 2)
        .with(Register::RBX, 3)
        .with(Register::RCX, 4);
    guest.memory.borrow_mut()[0x40] = 1;
    guest.memory.borrow_mut()[0x48] = 2;
    let mut stored = vec![0u8; 16];
    stored[0] = 3;
    stored[8] = 4;
    let done = complete(&code, &KERNEL, &guest);
    let expected = Completion::Update {
        len: 4,
        rflags: 0x2 | RFLAGS_ZF,
        registers: Vec::new(),
        memory: Some((0x40, stored)),
    };
    assert_eq!(done, Ok(expected));
    // Different: RDX:RAX load the memory, ZF clear.
    guest.memory.borrow_mut()[0x40] = 9;
    let with_zf = CpuView {
        rflags: 0x2 | RFLAGS_ZF,
        ..KERNEL
    };
    let done = complete(&code, &with_zf, &guest);
    let expected = Completion::Update {
        len: 4,
        rflags: 0x2,
        registers: vec![(Register::RAX, 9), (Register::RDX, 2)],
        memory: None,
    };
    assert_eq!(done, Ok(expected));
    // A misaligned operand is a #GP(0).
    let misaligned = gates().with(Register::RDI, 0x48);
    let gp = Completion::Fault {
        vector: 13,
        error_code: Some(0),
    };
    assert_eq!(complete(&code, &KERNEL, &misaligned), Ok(gp));
}

/// `ldmxcsr [rsp+4]`, as Linux's `kernel_fpu_begin_mask` has it.
const LDMXCSR_RSP_4: [u8; 5] = [0x0f, 0xae, 0x54, 0x24, 0x04];
/// `stmxcsr [rax]`.
const STMXCSR_RAX: [u8; 3] = [0x0f, 0xae, 0x18];

fn with_sse(change: impl FnOnce(&mut SseView)) -> CpuView {
    let mut cpu = KERNEL;
    change(&mut cpu.sse);
    cpu
}

#[test]
fn ldmxcsr_loads_mxcsr_from_memory() {
    let mut guest = Fake::new().with(Register::RSP, 0x2000);
    guest.mxcsr = 0x1fbf;
    guest.memory.borrow_mut()[0x2004..0x2008].copy_from_slice(&0x1f80_u32.to_le_bytes());
    assert_eq!(
        complete(&LDMXCSR_RSP_4, &KERNEL, &guest),
        Ok(Completion::LoadMxcsr {
            len: 5,
            mxcsr: 0x1f80
        })
    );
}

#[test]
fn ldmxcsr_of_a_reserved_bit_is_a_general_protection_fault() {
    let guest = Fake::new().with(Register::RSP, 0x2000);
    // Bit 16 is reserved on every processor.
    guest.memory.borrow_mut()[0x2004..0x2008].copy_from_slice(&0x1_1f80_u32.to_le_bytes());
    assert_eq!(
        complete(&LDMXCSR_RSP_4, &KERNEL, &guest),
        Ok(Completion::Fault {
            vector: 13,
            error_code: Some(0)
        })
    );
}

#[test]
fn ldmxcsr_honours_mxcsr_mask_and_its_default() {
    let daz = |mask: u32| {
        let guest = Fake {
            mxcsr_mask: mask,
            ..Fake::new().with(Register::RSP, 0x2000)
        };
        guest.memory.borrow_mut()[0x2004..0x2008].copy_from_slice(&0x1fc0_u32.to_le_bytes());
        complete(&LDMXCSR_RSP_4, &KERNEL, &guest)
    };
    let gp = Ok(Completion::Fault {
        vector: 13,
        error_code: Some(0),
    });
    // DAZ (bit 6): allowed by a mask of 0xffff, reserved under 0xffbf and
    // under a mask of 0, which means the default 0xffbf.
    assert_eq!(
        daz(0xffff),
        Ok(Completion::LoadMxcsr {
            len: 5,
            mxcsr: 0x1fc0
        })
    );
    assert_eq!(daz(0xffbf), gp);
    assert_eq!(daz(0), gp);
}

#[test]
fn mxcsr_instructions_fault_as_the_sdm_orders_it() {
    let guest = Fake::new()
        .with(Register::RSP, 0x2000)
        .with(Register::RAX, 0x3000);
    let ud = Ok(Completion::Fault {
        vector: 6,
        error_code: None,
    });
    let nm = Ok(Completion::Fault {
        vector: 7,
        error_code: None,
    });
    for bytes in [&LDMXCSR_RSP_4[..], &STMXCSR_RAX[..]] {
        let no_osfxsr = with_sse(|sse| sse.osfxsr = false);
        assert_eq!(complete(bytes, &no_osfxsr, &guest), ud);
        // #UD (CR0.EM) comes before #NM (CR0.TS).
        let em_and_ts = with_sse(|sse| {
            sse.emulate = true;
            sse.task_switched = true;
        });
        assert_eq!(complete(bytes, &em_and_ts, &guest), ud);
        let ts = with_sse(|sse| sse.task_switched = true);
        assert_eq!(complete(bytes, &ts, &guest), nm);
    }
    // A LOCK prefix is #UD on hardware; the decoder already rejects the
    // encoding, so the VMM stops with the bytes rather than guess.
    assert!(matches!(
        complete(&[0xf0, 0x0f, 0xae, 0x18], &KERNEL, &guest),
        Err(Unhandled(_))
    ));
}

#[test]
fn stmxcsr_stores_mxcsr() {
    let mut guest = Fake::new().with(Register::RAX, 0x3000);
    guest.mxcsr = 0x1fa5;
    assert_eq!(
        complete(&STMXCSR_RAX, &KERNEL, &guest),
        Ok(Completion::Update {
            len: 3,
            rflags: KERNEL.rflags,
            registers: Vec::new(),
            memory: Some((0x3000, 0x1fa5_u32.to_le_bytes().to_vec())),
        })
    );
}

#[test]
fn ldmxcsr_from_unmapped_memory_is_not_completed() {
    let guest = Fake::new().with(Register::RSP, 0x10_0000);
    assert!(complete(&LDMXCSR_RSP_4, &KERNEL, &guest).is_err());
}
