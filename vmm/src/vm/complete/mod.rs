//! Completing instructions the host's KVM cannot emulate.
//!
//! On this project's hosts KVM (`kvm_pvm`) runs every ring-0 guest
//! instruction through its instruction emulator, which gives up on some
//! instructions the CPU would run: software interrupts outside real mode
//! (`INT3`, `INT n`, `INTO`, `INT1`: KVM's `emulate_int` handles real mode
//! only), `CLAC`/`STAC`, `FWAIT`, `POPCNT`, `CMPXCHG16B`, `LDMXCSR`/`STMXCSR`
//! (every `kernel_fpu_begin` of a Linux kernel loads MXCSR). The run then ends with
//! `KVM_EXIT_INTERNAL_ERROR` (emulation failure) carrying the instruction
//! bytes. This module decodes them (with `iced-x86`) and says what the
//! architecture does, given the little CPU state each needs
//! ([`CpuView`]); the vCPU loop applies it (RIP, RFLAGS, an event queued
//! with `KVM_SET_VCPU_EVENTS` that KVM delivers through the guest's IDT)
//! and the guest runs on. Anything else is [`Unhandled`] and still ends the
//! run with the bytes named.
//!
//! Pure code: unit-tested on instruction bytes, no KVM needed.
use iced_x86::{Code, Decoder, DecoderOptions, Instruction, OpKind, Register};

/// RFLAGS.CF.
const RFLAGS_CF: u64 = 1 << 0;
/// RFLAGS.PF.
const RFLAGS_PF: u64 = 1 << 2;
/// RFLAGS.AF.
const RFLAGS_AF: u64 = 1 << 4;
/// RFLAGS.ZF.
const RFLAGS_ZF: u64 = 1 << 6;
/// RFLAGS.SF.
const RFLAGS_SF: u64 = 1 << 7;
/// RFLAGS.OF.
const RFLAGS_OF: u64 = 1 << 11;
/// RFLAGS.AC: alignment check / SMAP override.
pub const RFLAGS_AC: u64 = 1 << 18;

/// Exception vectors.
mod vector {
    /// #DB, debug (`INT1`).
    pub const DEBUG: u8 = 1;
    /// #BP, breakpoint (`INT3`).
    pub const BREAKPOINT: u8 = 3;
    /// #OF, overflow (`INTO`).
    pub const OVERFLOW: u8 = 4;
    /// #UD, invalid opcode.
    pub const INVALID_OPCODE: u8 = 6;
    /// #GP, general protection.
    pub const GENERAL_PROTECTION: u8 = 13;
    /// #NM, device not available (CR0.TS with an x87/SSE instruction).
    pub const DEVICE_NOT_AVAILABLE: u8 = 7;
    /// #MF, x87 floating-point error.
    pub const X87: u8 = 16;
}

/// The state SSE control instructions (`LDMXCSR`, `STMXCSR`) depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SseView {
    /// CR4.OSFXSR: the OS supports FXSAVE/FXRSTOR and SSE.
    pub osfxsr: bool,
    /// CR0.EM: x87/SSE instructions raise #UD.
    pub emulate: bool,
    /// CR0.TS: the next x87/SSE instruction raises #NM.
    pub task_switched: bool,
}

impl SseView {
    /// MXCSR_MASK when the FXSAVE image says 0 (processors without it):
    /// all but DAZ (bit 6) and bits 16..31 (SDM vol. 1, 11.6.6).
    pub const DEFAULT_MXCSR_MASK: u32 = 0xffbf;
}

/// The CPU state the handled instructions depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuView {
    /// Code size: 16, 32 or 64 (CS.L, CS.D).
    pub bitness: u32,
    /// Current privilege level (CS.RPL).
    pub cpl: u8,
    /// RIP of the instruction.
    pub rip: u64,
    /// RFLAGS.
    pub rflags: u64,
    /// CR4.SMAP.
    pub smap: bool,
    /// CR0.NE: x87 errors are reported as #MF (not through FERR#).
    pub numeric_error: bool,
    /// An unmasked x87 exception is pending (FSW's exception bits not
    /// masked by FCW).
    pub x87_exception_pending: bool,
    /// SSE control state.
    pub sse: SseView,
}

/// What the completion reads of the guest beyond [`CpuView`].
pub trait GuestAccess {
    /// The DPL of IDT gate `vector` (`None`: beyond the IDT's limit or
    /// unreadable), for the privilege check of software interrupts.
    fn gate_dpl(&self, vector: u8) -> Option<u8>;
    /// The 64-bit value of a general-purpose register (`RAX`..`R15`), or
    /// the base of a segment register (`ES`..`GS`).
    fn register(&self, register: Register) -> u64;
    /// Reads guest memory at linear address `address`; false if any byte
    /// is not mapped to RAM.
    fn read(&self, address: u64, bytes: &mut [u8]) -> bool;
    /// MXCSR (`None`: unreadable). Asked only by `STMXCSR`: reading it
    /// costs the VMM the vCPU's whole XSAVE image.
    fn mxcsr(&self) -> Option<u32>;
    /// MXCSR_MASK from the vCPU's FXSAVE image (`None`: unreadable): the
    /// MXCSR bits `LDMXCSR` may set; the rest are reserved. 0 means the
    /// processor does not report one ([`SseView::DEFAULT_MXCSR_MASK`]
    /// applies).
    fn mxcsr_mask(&self) -> Option<u32>;
}

/// What completes the instruction, architecturally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completion {
    /// RIP moves past the instruction (`len` bytes); RFLAGS becomes
    /// `rflags`.
    Advance {
        /// Instruction length.
        len: u64,
        /// RFLAGS after it.
        rflags: u64,
    },
    /// RIP moves past the instruction, then exception `vector` is
    /// delivered (a trap: the handler returns after the instruction).
    Trap {
        /// Instruction length.
        len: u64,
        /// Exception vector.
        vector: u8,
    },
    /// RIP moves past the instruction, then interrupt `vector` is
    /// delivered through its IDT gate (`INT n`, privilege already checked).
    SoftwareInterrupt {
        /// Instruction length.
        len: u64,
        /// Interrupt vector.
        vector: u8,
    },
    /// RIP moves past the instruction; registers, RFLAGS and possibly
    /// memory take new values.
    Update {
        /// Instruction length.
        len: u64,
        /// RFLAGS after it.
        rflags: u64,
        /// Full 64-bit registers to write, with their new values.
        registers: Vec<(Register, u64)>,
        /// Bytes to write at a linear address.
        memory: Option<(u64, Vec<u8>)>,
    },
    /// RIP moves past the instruction; MXCSR becomes `mxcsr`.
    LoadMxcsr {
        /// Instruction length.
        len: u64,
        /// The new MXCSR.
        mxcsr: u32,
    },
    /// A fault: RIP stays on the instruction; exception `vector` with
    /// `error_code` if it has one.
    Fault {
        /// Exception vector.
        vector: u8,
        /// Error code pushed by the exception, if any.
        error_code: Option<u32>,
    },
}

/// An instruction this module does not complete (its mnemonic, or
/// "invalid").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the VMM does not complete {0}")]
pub struct Unhandled(pub String);

/// What the architecture does for the instruction at the start of `bytes`,
/// reading what else it needs through `guest`.
pub fn complete(
    bytes: &[u8],
    cpu: &CpuView,
    guest: &dyn GuestAccess,
) -> Result<Completion, Unhandled> {
    let mut decoder = Decoder::with_ip(cpu.bitness, bytes, cpu.rip, DecoderOptions::NONE);
    let instruction = decoder.decode();
    if instruction.is_invalid() {
        return Err(Unhandled("an invalid or truncated instruction".into()));
    }
    let len = instruction.len() as u64;
    let gp = |selector_vector: u8| Completion::Fault {
        vector: vector::GENERAL_PROTECTION,
        // IDT index, IDT bit (2) set.
        error_code: Some(u32::from(selector_vector) * 8 + 2),
    };
    // A software interrupt from a ring above the gate's DPL faults (#GP
    // with the gate's selector); an IDT too short for the vector too.
    let software = |vector: u8, completion: Completion| match guest.gate_dpl(vector) {
        Some(dpl) if cpu.cpl <= dpl => completion,
        _ => gp(vector),
    };
    let ud = Completion::Fault {
        vector: vector::INVALID_OPCODE,
        error_code: None,
    };
    Ok(match instruction.code() {
        Code::Int3 => software(
            vector::BREAKPOINT,
            Completion::Trap {
                len,
                vector: vector::BREAKPOINT,
            },
        ),
        Code::Int_imm8 => {
            let vector = instruction.immediate8();
            software(vector, Completion::SoftwareInterrupt { len, vector })
        }
        // INTO does not exist in 64-bit mode (the decoder says invalid);
        // elsewhere it traps only with OF set.
        Code::Into if cpu.rflags & RFLAGS_OF == 0 => Completion::Advance {
            len,
            rflags: cpu.rflags,
        },
        Code::Into => software(
            vector::OVERFLOW,
            Completion::Trap {
                len,
                vector: vector::OVERFLOW,
            },
        ),
        // INT1 (ICEBP) raises #DB without the gate's privilege check.
        Code::Int1 => Completion::Trap {
            len,
            vector: vector::DEBUG,
        },
        Code::Clac | Code::Stac if cpu.cpl > 0 || !cpu.smap => ud,
        Code::Clac => Completion::Advance {
            len,
            rflags: cpu.rflags & !RFLAGS_AC,
        },
        Code::Stac => Completion::Advance {
            len,
            rflags: cpu.rflags | RFLAGS_AC,
        },
        Code::Wait if cpu.x87_exception_pending && cpu.numeric_error => Completion::Fault {
            vector: vector::X87,
            error_code: None,
        },
        Code::Wait => Completion::Advance {
            len,
            rflags: cpu.rflags,
        },
        Code::Popcnt_r16_rm16 | Code::Popcnt_r32_rm32 | Code::Popcnt_r64_rm64 => {
            popcnt(&instruction, cpu, guest)?
        }
        Code::Cmpxchg16b_m128 => cmpxchg16b(&instruction, cpu, guest)?,
        Code::Ldmxcsr_m32 | Code::Stmxcsr_m32 => mxcsr(&instruction, cpu, guest)?,
        other => return Err(Unhandled(format!("{:?}", other.mnemonic()))),
    })
}

/// The value of `register` as the instruction sees it (its width).
fn register_value(guest: &dyn GuestAccess, register: Register) -> u64 {
    if register.is_segment_register() {
        return guest.register(register);
    }
    let full = guest.register(register.full_register());
    match register.size() {
        1 if register.is_gpr8()
            && matches!(
                register,
                Register::AH | Register::CH | Register::DH | Register::BH
            ) =>
        {
            (full >> 8) & 0xff
        }
        1 => full & 0xff,
        2 => full & 0xffff,
        4 => full & 0xffff_ffff,
        _ => full,
    }
}

/// The linear address of memory operand `operand`.
fn memory_address(instruction: &Instruction, operand: u32, guest: &dyn GuestAccess) -> Option<u64> {
    instruction.virtual_address(operand, 0, |register, _, _| {
        Some(register_value(guest, register))
    })
}

/// `register` (of any width) set to `value` in its full 64-bit register:
/// 32-bit writes zero-extend, 16-bit writes keep the upper bits.
fn write_register(guest: &dyn GuestAccess, register: Register, value: u64) -> (Register, u64) {
    let full = register.full_register();
    let old = guest.register(full);
    let new = match register.size() {
        2 => (old & !0xffff) | (value & 0xffff),
        4 => value & 0xffff_ffff,
        _ => value,
    };
    (full, new)
}

/// POPCNT: the number of set bits of the source into the destination; ZF
/// when the source is zero, CF, PF, AF, SF and OF cleared.
fn popcnt(
    instruction: &Instruction,
    cpu: &CpuView,
    guest: &dyn GuestAccess,
) -> Result<Completion, Unhandled> {
    let destination = instruction.op0_register();
    let size = destination.size();
    let source = match instruction.op1_kind() {
        OpKind::Register => register_value(guest, instruction.op1_register()),
        OpKind::Memory => {
            let address = memory_address(instruction, 1, guest)
                .ok_or_else(|| Unhandled("POPCNT with an unresolvable address".into()))?;
            let mut bytes = [0u8; 8];
            if !guest.read(address, &mut bytes[..size]) {
                return Err(Unhandled(format!("POPCNT reading unmapped {address:#x}")));
            }
            u64::from_le_bytes(bytes)
        }
        _ => return Err(Unhandled("POPCNT with an odd operand".into())),
    };
    let mut rflags =
        cpu.rflags & !(RFLAGS_CF | RFLAGS_PF | RFLAGS_AF | RFLAGS_ZF | RFLAGS_SF | RFLAGS_OF);
    if source == 0 {
        rflags |= RFLAGS_ZF;
    }
    Ok(Completion::Update {
        len: instruction.len() as u64,
        rflags,
        registers: vec![write_register(
            guest,
            destination,
            u64::from(source.count_ones()),
        )],
        memory: None,
    })
}

/// CMPXCHG16B m128: if RDX:RAX equals the 16 bytes at the (16-byte
/// aligned) operand, store RCX:RBX there and set ZF; else load them into
/// RDX:RAX and clear ZF. A misaligned operand is a #GP(0). (One vCPU: no
/// other CPU can see the read and the write apart.)
fn cmpxchg16b(
    instruction: &Instruction,
    cpu: &CpuView,
    guest: &dyn GuestAccess,
) -> Result<Completion, Unhandled> {
    let address = memory_address(instruction, 0, guest)
        .ok_or_else(|| Unhandled("CMPXCHG16B with an unresolvable address".into()))?;
    if address % 16 != 0 {
        return Ok(Completion::Fault {
            vector: vector::GENERAL_PROTECTION,
            error_code: Some(0),
        });
    }
    let mut bytes = [0u8; 16];
    if !guest.read(address, &mut bytes) {
        return Err(Unhandled(format!(
            "CMPXCHG16B reading unmapped {address:#x}"
        )));
    }
    let low = u64::from_le_bytes(bytes[..8].try_into().unwrap_or_default());
    let high = u64::from_le_bytes(bytes[8..].try_into().unwrap_or_default());
    let len = instruction.len() as u64;
    let (rax, rdx) = (guest.register(Register::RAX), guest.register(Register::RDX));
    if (low, high) == (rax, rdx) {
        let mut new = Vec::with_capacity(16);
        new.extend_from_slice(&guest.register(Register::RBX).to_le_bytes());
        new.extend_from_slice(&guest.register(Register::RCX).to_le_bytes());
        Ok(Completion::Update {
            len,
            rflags: cpu.rflags | RFLAGS_ZF,
            registers: Vec::new(),
            memory: Some((address, new)),
        })
    } else {
        Ok(Completion::Update {
            len,
            rflags: cpu.rflags & !RFLAGS_ZF,
            registers: vec![(Register::RAX, low), (Register::RDX, high)],
            memory: None,
        })
    }
}

/// LDMXCSR m32 / STMXCSR m32: MXCSR from or to memory. #UD with CR0.EM
/// set or CR4.OSFXSR clear, then #NM with CR0.TS set (a LOCK prefix, #UD
/// too, never gets here: the decoder rejects the encoding);
/// LDMXCSR of a value with a bit outside MXCSR_MASK is a #GP(0) (SDM vol. 2,
/// LDMXCSR, "Protected Mode Exceptions").
fn mxcsr(
    instruction: &Instruction,
    cpu: &CpuView,
    guest: &dyn GuestAccess,
) -> Result<Completion, Unhandled> {
    let sse = &cpu.sse;
    if sse.emulate || !sse.osfxsr {
        return Ok(Completion::Fault {
            vector: vector::INVALID_OPCODE,
            error_code: None,
        });
    }
    if sse.task_switched {
        return Ok(Completion::Fault {
            vector: vector::DEVICE_NOT_AVAILABLE,
            error_code: None,
        });
    }
    let mnemonic = format!("{:?}", instruction.mnemonic()).to_uppercase();
    let address = memory_address(instruction, 0, guest)
        .ok_or_else(|| Unhandled(format!("{mnemonic} with an unresolvable address")))?;
    let len = instruction.len() as u64;
    let unreadable = || Unhandled(format!("{mnemonic} with the vCPU's SSE state unreadable"));
    if instruction.code() == Code::Stmxcsr_m32 {
        let mxcsr = guest.mxcsr().ok_or_else(unreadable)?;
        return Ok(Completion::Update {
            len,
            rflags: cpu.rflags,
            registers: Vec::new(),
            memory: Some((address, mxcsr.to_le_bytes().to_vec())),
        });
    }
    let mut bytes = [0u8; 4];
    if !guest.read(address, &mut bytes) {
        return Err(Unhandled(format!(
            "{mnemonic} reading unmapped {address:#x}"
        )));
    }
    let value = u32::from_le_bytes(bytes);
    let mask = match guest.mxcsr_mask().ok_or_else(unreadable)? {
        0 => SseView::DEFAULT_MXCSR_MASK,
        mask => mask,
    };
    if value & !mask != 0 {
        return Ok(Completion::Fault {
            vector: vector::GENERAL_PROTECTION,
            error_code: Some(0),
        });
    }
    Ok(Completion::LoadMxcsr { len, mxcsr: value })
}

#[cfg(test)]
mod tests;
