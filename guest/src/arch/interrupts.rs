//! IDT, interrupt entry stubs and the dispatcher for exceptions and IRQs.
//!
//! Stable Rust has no `extern "x86-interrupt"`, so every vector gets a naked
//! stub: it pushes a dummy error code when the CPU pushes none (so all frames
//! look alike), then the vector number, and jumps to [`trap_common`], which
//! saves all 15 general-purpose registers (the target is soft-float: there is
//! no FPU/SSE state to save), calls [`trap_dispatch`] with a pointer to the
//! resulting [`TrapFrame`], restores the registers and returns with `iretq`.
//!
//! Hardware IRQs (vectors 32..47) take a shorter path, as they are the hot
//! one (keystrokes and timer one-shots, and under an emulating KVM every
//! guest instruction costs a microsecond or more): the stub puts the IRQ line
//! in EAX and jumps to [`irq_common`], which saves only the 9 caller-saved
//! registers and calls [`irq_dispatch`]; that function, like any `extern "C"`
//! function, preserves the other 6 itself. No IRQ handler looks at the
//! interrupted registers.
//!
//! Stack alignment: in 64-bit mode the CPU aligns RSP to 16 bytes before
//! pushing its frame; 5 frame words + error code + vector + 15 registers make
//! 22 words (IRQs: 5 frame words + 9 registers make 14), so RSP is 16-byte
//! aligned at the `call`, as the ABI requires.

use core::arch::naked_asm;
use core::fmt;
use core::sync::atomic::{AtomicU8, Ordering};

use shared::irq::{COM1, KEYBOARD, MASTER_VECTOR_BASE, SPURIOUS_MASTER, SPURIOUS_SLAVE, TIMER};
use spin::Once;
use x86_64::registers::control::Cr2;
use x86_64::structures::idt::InterruptDescriptorTable;
use x86_64::VirtAddr;

use super::gdt;
use crate::drivers::{i8042, serial};
use crate::stats;
use crate::task::timer;

/// Registers saved by the entry stubs, lowest address first.
#[repr(C)]
#[derive(Debug)]
pub struct TrapFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    /// Pushed by the stub.
    pub vector: u64,
    /// Pushed by the CPU for some exceptions, else 0 (pushed by the stub).
    pub error_code: u64,
    // The interrupt stack frame the CPU pushed.
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

/// Common part of every entry stub.
#[unsafe(naked)]
unsafe extern "C" fn trap_common() {
    naked_asm!(
        "push rax",
        "push rbx",
        "push rcx",
        "push rdx",
        "push rsi",
        "push rdi",
        "push rbp",
        "push r8",
        "push r9",
        "push r10",
        "push r11",
        "push r12",
        "push r13",
        "push r14",
        "push r15",
        "mov rdi, rsp",
        // The ABI wants DF clear at calls; the interrupted code may have set it.
        "cld",
        "call {dispatch}",
        "pop r15",
        "pop r14",
        "pop r13",
        "pop r12",
        "pop r11",
        "pop r10",
        "pop r9",
        "pop r8",
        "pop rbp",
        "pop rdi",
        "pop rsi",
        "pop rdx",
        "pop rcx",
        "pop rbx",
        "pop rax",
        // Vector and error code.
        "add rsp, 16",
        "iretq",
        dispatch = sym trap_dispatch,
    );
}

/// Common part of the IRQ entry stubs; the IRQ line is in EAX (whose old
/// value the stub pushed).
#[unsafe(naked)]
unsafe extern "C" fn irq_common() {
    naked_asm!(
        "push rcx",
        "push rdx",
        "push rsi",
        "push rdi",
        "push r8",
        "push r9",
        "push r10",
        "push r11",
        "mov edi, eax",
        // The ABI wants DF clear at calls; the interrupted code may have set it.
        "cld",
        "call {dispatch}",
        "pop r11",
        "pop r10",
        "pop r9",
        "pop r8",
        "pop rdi",
        "pop rsi",
        "pop rdx",
        "pop rcx",
        "pop rax",
        "iretq",
        dispatch = sym irq_dispatch,
    );
}

macro_rules! stub {
    ($name:ident, $vector:literal, irq) => {
        #[unsafe(naked)]
        unsafe extern "C" fn $name() {
            naked_asm!(
                "push rax",
                "mov eax, {line}",
                "jmp {common}",
                line = const $vector - MASTER_VECTOR_BASE as u32,
                common = sym irq_common,
            );
        }
    };
    ($name:ident, $vector:literal, no_error_code) => {
        #[unsafe(naked)]
        unsafe extern "C" fn $name() {
            naked_asm!("push 0", "push {v}", "jmp {common}", v = const $vector, common = sym trap_common);
        }
    };
    ($name:ident, $vector:literal, error_code) => {
        #[unsafe(naked)]
        unsafe extern "C" fn $name() {
            naked_asm!("push {v}", "jmp {common}", v = const $vector, common = sym trap_common);
        }
    };
}

stub!(vector_0, 0, no_error_code);
stub!(vector_1, 1, no_error_code);
stub!(vector_2, 2, no_error_code);
stub!(vector_3, 3, no_error_code);
stub!(vector_4, 4, no_error_code);
stub!(vector_5, 5, no_error_code);
stub!(vector_6, 6, no_error_code);
stub!(vector_7, 7, no_error_code);
stub!(vector_8, 8, error_code);
stub!(vector_9, 9, no_error_code);
stub!(vector_10, 10, error_code);
stub!(vector_11, 11, error_code);
stub!(vector_12, 12, error_code);
stub!(vector_13, 13, error_code);
stub!(vector_14, 14, error_code);
stub!(vector_15, 15, no_error_code);
stub!(vector_16, 16, no_error_code);
stub!(vector_17, 17, error_code);
stub!(vector_18, 18, no_error_code);
stub!(vector_19, 19, no_error_code);
stub!(vector_20, 20, no_error_code);
stub!(vector_21, 21, error_code);
stub!(vector_22, 22, no_error_code);
stub!(vector_23, 23, no_error_code);
stub!(vector_24, 24, no_error_code);
stub!(vector_25, 25, no_error_code);
stub!(vector_26, 26, no_error_code);
stub!(vector_27, 27, no_error_code);
stub!(vector_28, 28, no_error_code);
stub!(vector_29, 29, error_code);
stub!(vector_30, 30, error_code);
stub!(vector_31, 31, no_error_code);
stub!(vector_32, 32, irq);
stub!(vector_33, 33, irq);
stub!(vector_34, 34, irq);
stub!(vector_35, 35, irq);
stub!(vector_36, 36, irq);
stub!(vector_37, 37, irq);
stub!(vector_38, 38, irq);
stub!(vector_39, 39, irq);
stub!(vector_40, 40, irq);
stub!(vector_41, 41, irq);
stub!(vector_42, 42, irq);
stub!(vector_43, 43, irq);
stub!(vector_44, 44, irq);
stub!(vector_45, 45, irq);
stub!(vector_46, 46, irq);
stub!(vector_47, 47, irq);

/// Entry stubs of vectors 0..48 (the 32 exceptions and the 16 PIC IRQs).
const STUBS: [unsafe extern "C" fn(); 48] = [
    vector_0, vector_1, vector_2, vector_3, vector_4, vector_5, vector_6, vector_7, vector_8,
    vector_9, vector_10, vector_11, vector_12, vector_13, vector_14, vector_15, vector_16,
    vector_17, vector_18, vector_19, vector_20, vector_21, vector_22, vector_23, vector_24,
    vector_25, vector_26, vector_27, vector_28, vector_29, vector_30, vector_31, vector_32,
    vector_33, vector_34, vector_35, vector_36, vector_37, vector_38, vector_39, vector_40,
    vector_41, vector_42, vector_43, vector_44, vector_45, vector_46, vector_47,
];

static IDT: Once<InterruptDescriptorTable> = Once::new();

/// Builds and loads the IDT. Every exception vector is handled (a report
/// rather than a triple fault); the double fault runs on its IST stack.
pub fn init() {
    let idt = IDT.call_once(|| {
        let mut idt = InterruptDescriptorTable::new();
        let address = |vector: usize| VirtAddr::new(STUBS[vector] as usize as u64);
        // SAFETY: every stub is a valid interrupt entry point that ends in
        // iretq (or never returns) and preserves all registers.
        unsafe {
            idt.divide_error.set_handler_addr(address(0));
            idt.debug.set_handler_addr(address(1));
            idt.non_maskable_interrupt.set_handler_addr(address(2));
            idt.breakpoint.set_handler_addr(address(3));
            idt.overflow.set_handler_addr(address(4));
            idt.bound_range_exceeded.set_handler_addr(address(5));
            idt.invalid_opcode.set_handler_addr(address(6));
            idt.device_not_available.set_handler_addr(address(7));
            idt.double_fault
                .set_handler_addr(address(8))
                .set_stack_index(gdt::DOUBLE_FAULT_IST_INDEX);
            idt.invalid_tss.set_handler_addr(address(10));
            idt.segment_not_present.set_handler_addr(address(11));
            idt.stack_segment_fault.set_handler_addr(address(12));
            idt.general_protection_fault.set_handler_addr(address(13));
            idt.page_fault.set_handler_addr(address(14));
            idt.x87_floating_point.set_handler_addr(address(16));
            idt.alignment_check.set_handler_addr(address(17));
            idt.machine_check.set_handler_addr(address(18));
            idt.simd_floating_point.set_handler_addr(address(19));
            idt.virtualization.set_handler_addr(address(20));
            idt.cp_protection_exception.set_handler_addr(address(21));
            idt.hv_injection_exception.set_handler_addr(address(28));
            idt.vmm_communication_exception
                .set_handler_addr(address(29));
            idt.security_exception.set_handler_addr(address(30));
            for vector in 32..48 {
                idt[vector as u8].set_handler_addr(address(vector));
            }
        }
        idt
    });
    idt.load();
}

/// What a fatal exception should do instead of failing (set by in-guest tests).
pub const EXPECT_NOTHING: u8 = 0;
/// A double fault is the expected outcome: exit with TEST_PASSED.
pub const EXPECT_DOUBLE_FAULT: u8 = 1;
static EXPECTED: AtomicU8 = AtomicU8::new(EXPECT_NOTHING);

/// Declares which fatal exception a test provokes on purpose.
pub fn expect_fault(what: u8) {
    EXPECTED.store(what, Ordering::SeqCst);
}

extern "C" fn trap_dispatch(frame: &mut TrapFrame) {
    match frame.vector {
        0..=31 => exception(frame),
        _ => fatal(frame),
    }
}

/// A test's hook, run at the start of every IRQ before the normal
/// handling (set once; see [`set_irq_hook`]).
static IRQ_HOOK: Once<fn(u8)> = Once::new();

/// Makes every IRQ call `hook(line)` first, in interrupt context, before
/// its handler (no EOI: the PICs run in AEOI mode): hostile-guest tests use it to act in the middle of
/// an interrupt. Only the first call sets a hook.
pub fn set_irq_hook(hook: fn(u8)) {
    IRQ_HOOK.call_once(|| hook);
}

/// IRQ `line` (0..16), from [`irq_common`]. The PICs run in automatic EOI
/// mode (see `drivers::pic`): no handler sends an EOI.
extern "C" fn irq_dispatch(line: u32) {
    let line = line as u8;
    if let Some(hook) = IRQ_HOOK.get() {
        hook(line);
    }
    match line {
        TIMER => timer::on_interrupt(),
        KEYBOARD => i8042::on_interrupt(),
        COM1 => serial::on_interrupt(),
        // With AEOI nothing is ever in service, so the PICs' spurious IRQ7
        // and IRQ15 cannot be told from real ones on those lines, which we
        // keep masked: spurious.
        SPURIOUS_MASTER | SPURIOUS_SLAVE => stats::SPURIOUS_IRQS.inc(),
        // A line we keep masked.
        _ => stats::UNEXPECTED_IRQS.inc(),
    }
}

fn exception(frame: &mut TrapFrame) {
    match frame.vector {
        3 => {
            // int3 is a trap: RIP already points after it, so just resume.
            stats::BREAKPOINTS.inc();
            println!("EXCEPTION: breakpoint at rip={:#x}; resuming", frame.rip);
        }
        8 if EXPECTED.load(Ordering::SeqCst) == EXPECT_DOUBLE_FAULT => {
            emergency_println!("{}", Report(frame));
            let on_ist = gdt::on_double_fault_stack(&raw const *frame as u64);
            let guard = super::boot::stack_guard_page();
            let overflowed = (guard..guard + 4096 + 512).contains(&frame.rsp);
            emergency_println!(
                "[test] double fault handled on the IST stack: {on_ist}; faulting rsp {:#x} at the stack guard page {guard:#x}: {overflowed}",
                frame.rsp
            );
            let verdict = if on_ist && overflowed {
                shared::exit::TEST_PASSED
            } else {
                shared::exit::TEST_FAILED
            };
            crate::drivers::debug_exit::exit(verdict)
        }
        _ => fatal(frame),
    }
}

fn fatal(frame: &TrapFrame) -> ! {
    emergency_println!("{}", Report(frame));
    crate::drivers::debug_exit::exit(shared::exit::CPU_EXCEPTION)
}

fn exception_name(vector: u64) -> &'static str {
    match vector {
        0 => "divide error (#DE)",
        1 => "debug (#DB)",
        2 => "non-maskable interrupt",
        3 => "breakpoint (#BP)",
        4 => "overflow (#OF)",
        5 => "bound range exceeded (#BR)",
        6 => "invalid opcode (#UD)",
        7 => "device not available (#NM)",
        8 => "double fault (#DF)",
        10 => "invalid TSS (#TS)",
        11 => "segment not present (#NP)",
        12 => "stack-segment fault (#SS)",
        13 => "general protection fault (#GP)",
        14 => "page fault (#PF)",
        16 => "x87 floating-point exception (#MF)",
        17 => "alignment check (#AC)",
        18 => "machine check (#MC)",
        19 => "SIMD floating-point exception (#XM)",
        20 => "virtualization exception (#VE)",
        21 => "control protection exception (#CP)",
        28 => "hypervisor injection exception (#HV)",
        29 => "VMM communication exception (#VC)",
        30 => "security exception (#SX)",
        _ => "unexpected vector",
    }
}

/// A readable report of a fatal exception.
struct Report<'a>(&'a TrapFrame);

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.0;
        writeln!(
            f,
            "EXCEPTION: {} (vector {})",
            exception_name(t.vector),
            t.vector
        )?;
        writeln!(f, "  error code: {:#x}", t.error_code)?;
        if t.vector == 14 {
            let cr2 = Cr2::read_raw();
            let e = t.error_code;
            writeln!(
                f,
                "  cr2={cr2:#x}: {} on {} in {} mode{}",
                if e & 1 != 0 {
                    "protection violation"
                } else {
                    "page not present"
                },
                if e & 16 != 0 {
                    "instruction fetch"
                } else if e & 2 != 0 {
                    "write"
                } else {
                    "read"
                },
                if e & 4 != 0 { "user" } else { "kernel" },
                if e & 8 != 0 {
                    " (reserved bit set)"
                } else {
                    ""
                },
            )?;
            let guard = super::boot::stack_guard_page();
            if (guard..guard + 4096).contains(&cr2) {
                writeln!(
                    f,
                    "  the address is in the stack guard page: kernel stack overflow"
                )?;
            } else if cr2 < 4096 {
                writeln!(f, "  the address is in page 0: null pointer dereference")?;
            }
        }
        if matches!(t.vector, 10..=13) && t.error_code != 0 {
            writeln!(
                f,
                "  selector index {:#x}{}{}",
                (t.error_code >> 3) & 0x1fff,
                if t.error_code & 2 != 0 { " (IDT)" } else { "" },
                if t.error_code & 1 != 0 {
                    " (external)"
                } else {
                    ""
                },
            )?;
        }
        writeln!(
            f,
            "  rip={:#018x} cs={:#06x} rflags={:#010x}",
            t.rip, t.cs, t.rflags
        )?;
        writeln!(f, "  rsp={:#018x} ss={:#06x}", t.rsp, t.ss)?;
        writeln!(
            f,
            "  rax={:#018x} rbx={:#018x} rcx={:#018x}",
            t.rax, t.rbx, t.rcx
        )?;
        writeln!(
            f,
            "  rdx={:#018x} rsi={:#018x} rdi={:#018x}",
            t.rdx, t.rsi, t.rdi
        )?;
        writeln!(
            f,
            "  rbp={:#018x} r8 ={:#018x} r9 ={:#018x}",
            t.rbp, t.r8, t.r9
        )?;
        writeln!(
            f,
            "  r10={:#018x} r11={:#018x} r12={:#018x}",
            t.r10, t.r11, t.r12
        )?;
        write!(
            f,
            "  r13={:#018x} r14={:#018x} r15={:#018x}",
            t.r13, t.r14, t.r15
        )
    }
}
