//! KVM's own per-vCPU counters, read through the binary statistics file
//! descriptor (`KVM_GET_STATS_FD`, Linux 5.14+): exits, halt exits, IRQ
//! injections, emulated instructions, emulation failures and the rest, as
//! the host kernel counts them. `--stats` prints them next to the VMM's own.
//!
//! The file holds a header, one descriptor per statistic (flags, size,
//! offset into the data block, and its name), and the data block of `u64`s;
//! the header and descriptors are fixed for the life of the fd, the data is
//! read afresh each time (`pread`, so no seek position is shared).
use std::fs::File;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::FileExt;

use kvm_bindings::KVMIO;
use kvm_ioctls::VcpuFd;
use vmm_sys_util::ioctl::ioctl;
use vmm_sys_util::ioctl_io_nr;

ioctl_io_nr!(KVM_GET_STATS_FD, KVMIO, 0xce);

/// Size of `struct kvm_stats_header`.
const HEADER_SIZE: usize = 24;
/// Size of `struct kvm_stats_desc` without its name.
const DESC_SIZE: usize = 16;
/// `KVM_STATS_TYPE_MASK`: the statistic's type, in the descriptor flags.
const TYPE_MASK: u32 = 0xf;
/// `KVM_STATS_TYPE_CUMULATIVE`: a counter that only grows.
const TYPE_CUMULATIVE: u32 = 0;

/// One statistic the host kernel offers.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Descriptor {
    name: String,
    /// Byte offset of its first value in the data block.
    offset: u64,
    /// A counter (rather than an instant value, a peak or a histogram).
    cumulative: bool,
}

/// Reads one vCPU's binary statistics.
pub(crate) struct KvmStats {
    file: File,
    data_offset: u64,
    descriptors: Vec<Descriptor>,
}

impl KvmStats {
    /// Opens `vcpu`'s statistics; an error if the host kernel has none.
    pub fn open(vcpu: &VcpuFd) -> io::Result<Self> {
        // SAFETY: KVM_GET_STATS_FD takes no argument and returns a new fd
        // (or -1); `vcpu` is a valid vCPU fd.
        let fd = unsafe { ioctl(vcpu, KVM_GET_STATS_FD()) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned to us by the kernel and nothing else
        // owns it.
        let file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        let mut header = [0u8; HEADER_SIZE];
        file.read_exact_at(&mut header, 0)?;
        let word =
            |i: usize| u32::from_le_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
        let (name_size, count, desc_offset, data_offset) = (word(4), word(8), word(16), word(20));
        let entry = DESC_SIZE + name_size as usize;
        let mut table = vec![0u8; entry.saturating_mul(count as usize)];
        file.read_exact_at(&mut table, u64::from(desc_offset))?;
        Ok(Self {
            file,
            data_offset: u64::from(data_offset),
            descriptors: parse_descriptors(&table, entry),
        })
    }

    /// The cumulative counters now, by name, in the kernel's order.
    pub fn counters(&self) -> io::Result<Vec<(String, u64)>> {
        let mut out = Vec::new();
        for descriptor in self.descriptors.iter().filter(|d| d.cumulative) {
            let mut value = [0u8; 8];
            self.file
                .read_exact_at(&mut value, self.data_offset + descriptor.offset)?;
            out.push((descriptor.name.clone(), u64::from_le_bytes(value)));
        }
        Ok(out)
    }
}

/// Splits the descriptor block into descriptors of `entry` bytes each.
fn parse_descriptors(table: &[u8], entry: usize) -> Vec<Descriptor> {
    if entry <= DESC_SIZE {
        return Vec::new();
    }
    table
        .chunks_exact(entry)
        .map(|raw| {
            let flags = u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]);
            let offset = u32::from_le_bytes([raw[8], raw[9], raw[10], raw[11]]);
            let name = &raw[DESC_SIZE..];
            let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
            Descriptor {
                name: String::from_utf8_lossy(&name[..end]).into_owned(),
                offset: u64::from(offset),
                cumulative: flags & TYPE_MASK == TYPE_CUMULATIVE,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(flags: u32, offset: u32, name: &str, name_size: usize) -> Vec<u8> {
        let mut raw = Vec::new();
        raw.extend_from_slice(&flags.to_le_bytes());
        raw.extend_from_slice(&0i16.to_le_bytes()); // exponent
        raw.extend_from_slice(&1u16.to_le_bytes()); // size
        raw.extend_from_slice(&offset.to_le_bytes());
        raw.extend_from_slice(&0u32.to_le_bytes()); // bucket size
        let mut padded = name.as_bytes().to_vec();
        padded.resize(name_size, 0);
        raw.extend_from_slice(&padded);
        raw
    }

    #[test]
    fn descriptors_name_their_counters() {
        let mut table = desc(0, 0, "exits", 48);
        table.extend(desc(1, 8, "halt_poll_fail_hist", 48)); // instant: skipped by counters
        table.extend(desc(0x100, 16, "insn_emulation", 48));
        let parsed = parse_descriptors(&table, DESC_SIZE + 48);
        let names: Vec<_> = parsed
            .iter()
            .map(|d| (d.name.as_str(), d.offset, d.cumulative))
            .collect();
        assert_eq!(
            names,
            [
                ("exits", 0, true),
                ("halt_poll_fail_hist", 8, false),
                ("insn_emulation", 16, true)
            ]
        );
        assert!(parse_descriptors(&table, DESC_SIZE).is_empty());
    }
}
