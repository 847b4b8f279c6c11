//! x86_64 machinery: the PVH entry and long-mode switch, GDT/TSS, IDT and
//! interrupt entry stubs, page-table changes.

pub mod boot;
pub mod gdt;
pub mod interrupts;
pub mod paging;
