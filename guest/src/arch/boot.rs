//! PVH entry: the Xen `PHYS32_ENTRY` note, the 32-bit entry point and the
//! switch to long mode.
//!
//! The PVH ABI starts us in 32-bit protected mode with paging off, flat
//! segments, `EBX` = physical address of `hvm_start_info` and an undefined
//! `ESP`. The identity map of the first 4 GiB (2 MiB pages) is built by the
//! assembler into `.data`, so the loader brings it; the entry enables long
//! mode, far-returns into 64-bit code, zeroes `.bss` (8 bytes at a time; the
//! boot stack lies outside it) and calls [`crate::kernel::kernel_main`] with
//! the start-info address.

use core::arch::global_asm;

/// Bytes of the boot stack, used until the executor runs (and after: the
/// kernel never switches stacks except for the IST exception stacks). A
/// multiple of 4 KiB: the page below it is the guard page.
pub const BOOT_STACK_SIZE: usize = 64 * 1024;

extern "C" {
    /// The 4 KiB page right below the boot stack (see `paging.rs`).
    static boot_stack_guard: u8;
}

/// Address of the stack guard page.
pub fn stack_guard_page() -> u64 {
    core::ptr::addr_of!(boot_stack_guard) as u64
}

global_asm!(
    r#"
    .section .note.Xen, "a"
    .balign 4
    .long 4                 /* name size: "Xen\0" */
    .long 4                 /* descriptor size */
    .long 18                /* XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .balign 4
    .long _start
    .balign 4

    /* The boot page tables, built by the assembler and loaded with the
       image (the loader copies them, at boot and at every reset): no guest
       instructions build them. PML4[0] -> PDPT, PDPT[0..4] -> four page
       directories of 2 MiB pages: 2048 entries, physical address i * 2 MiB,
       present | writable | huge. paging.rs splits two of them later. */
    .section .data.boot_tables, "aw"
    .balign 4096
boot_pml4:
    .quad boot_pdpt + 0x3
    .fill 511, 8, 0
boot_pdpt:
    .quad boot_pd + 0x3
    .quad boot_pd + 0x1000 + 0x3
    .quad boot_pd + 0x2000 + 0x3
    .quad boot_pd + 0x3000 + 0x3
    .fill 508, 8, 0
boot_pd:
    .set boot_pd_index, 0
    .rept 2048
    .quad (boot_pd_index << 21) | 0x83
    .set boot_pd_index, boot_pd_index + 1
    .endr

    /* The stack is not part of .bss (see linker.ld): it need not be zeroed. */
    .section .boot_stack, "aw", @nobits
    /* Unmapped by paging.rs once in Rust: a stack overflow faults here. */
    .balign 4096
.global boot_stack_guard
boot_stack_guard:
    .skip 4096
boot_stack_bottom:
    .skip {stack_size}
.global boot_stack_top
boot_stack_top:

    .section .rodata.boot, "a"
    .balign 16
boot_gdt:
    .quad 0                      /* null */
    .quad 0x00AF9A000000FFFF     /* 0x08: 64-bit code, DPL 0 */
    .quad 0x00CF92000000FFFF     /* 0x10: data, DPL 0 */
boot_gdt_end:
boot_gdt_pointer:
    .word boot_gdt_end - boot_gdt - 1
    .quad boot_gdt

    .section .text.boot, "ax"
    .code32
.global _start
_start:
    cli
    cld
    mov esi, ebx                 /* keep hvm_start_info in ESI */

    mov esp, offset boot_stack_top

    /* CR4.PAE (and OSFXSR is not needed: the target is soft-float). */
    mov eax, cr4
    or eax, 1 << 5
    mov cr4, eax

    mov eax, offset boot_pml4
    mov cr3, eax

    /* EFER.LME | EFER.NXE */
    mov ecx, 0xC0000080
    rdmsr
    or eax, (1 << 8) | (1 << 11)
    wrmsr

    /* CR0.PG | CR0.WP | CR0.PE */
    mov eax, cr0
    or eax, (1 << 31) | (1 << 16) | 1
    mov cr0, eax

    lgdt [boot_gdt_pointer]
    mov eax, offset long_mode_entry
    push 0x08
    push eax
    retf

    .code64
long_mode_entry:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    xor eax, eax
    mov fs, ax
    mov gs, ax
    mov rsp, offset boot_stack_top

    /* Zero .bss, 8 bytes per iteration (linker.ld aligns both ends): an
       emulating hypervisor runs a `rep stos` one iteration at a time, so
       the fewer the better. Our VMM and QEMU zero it when they load the
       image, but a loader need not. */
    mov rdi, offset __bss_start
    mov rcx, offset __bss_end
    sub rcx, rdi
    shr rcx, 3
    rep stosq

    mov edi, esi                 /* zero-extends: first argument = start_info */
    xor ebp, ebp
    call {main}
4:
    cli
    hlt
    jmp 4b
"#,
    stack_size = const BOOT_STACK_SIZE,
    main = sym crate::kernel::kernel_main,
);
