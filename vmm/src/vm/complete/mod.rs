//! Completing instructions the host's KVM cannot emulate.
//!
//! On this project's hosts KVM (`kvm_pvm`) runs every ring-0 guest
//! instruction through its instruction emulator, which gives up on some
//! instructions the CPU would run: software interrupts outside real mode
//! (`INT3`, `INT n`, `INTO`, `INT1`: KVM's `emulate_int` handles real mode
//! only), `CLAC`/`STAC`, `FWAIT`. The run then ends with
//! `KVM_EXIT_INTERNAL_ERROR` (emulation failure) carrying the instruction
//! bytes. This module decodes them (with `iced-x86`) and says what the
//! architecture does, given the little CPU state each needs
//! ([`CpuView`]); the vCPU loop applies it (RIP, RFLAGS, an event queued
//! with `KVM_SET_VCPU_EVENTS` that KVM delivers through the guest's IDT)
//! and the guest runs on. Anything else is [`Unhandled`] and still ends the
//! run with the bytes named.
//!
//! Pure code: unit-tested on instruction bytes, no KVM needed.
use iced_x86::{Code, Decoder, DecoderOptions};

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
    /// #MF, x87 floating-point error.
    pub const X87: u8 = 16;
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
}

/// What completes the instruction, architecturally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// What the architecture does for the instruction at the start of `bytes`.
/// `gate_dpl(n)` reads the DPL of IDT gate `n` (`None`: beyond the IDT's
/// limit or unreadable), for the privilege check of `INT n`, `INT3` and
/// `INTO`.
pub fn complete(
    bytes: &[u8],
    cpu: &CpuView,
    gate_dpl: impl Fn(u8) -> Option<u8>,
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
    let software = |vector: u8, completion: Completion| match gate_dpl(vector) {
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
        other => return Err(Unhandled(format!("{:?}", other.mnemonic()))),
    })
}

#[cfg(test)]
mod tests;
