//! KVM's own per-vCPU counters, read through the binary statistics file
//! descriptor (`KVM_GET_STATS_FD`, Linux 5.14+): exits, halt exits, IRQ
//! injections, emulated instructions, emulation failures and the rest, as
//! the host kernel counts them. `--stats` prints them next to the VMM's own.
//!
//! The file holds a header, one descriptor per statistic (flags, size,
//! offset into the data block, and its name), and the data block of `u64`s;
//! the header and descriptors are fixed for the life of the fd, the data is
//! read afresh each time (`pread`, so no seek position is shared: any thread
//! may read, which QMP's `query-stats` does while the vCPU runs).
//!
//! The VM has such a file too (its fd from the same ioctl on the VM fd);
//! both are offered through [`crate::VmHandle::kvm_statistics`].
use std::fs::File;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::FileExt;

use std::os::fd::AsRawFd;

use kvm_bindings::KVMIO;
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
/// `KVM_STATS_UNIT_MASK`: the unit, in the descriptor flags.
const UNIT_MASK: u32 = 0xf << 4;
/// `KVM_STATS_UNIT_BOOLEAN`: the value is 0 or 1 (QEMU shows it as a
/// boolean).
const UNIT_BOOLEAN: u32 = 0x4 << 4;
/// Most `u64`s one statistic may hold (histograms have 32 buckets; the
/// kernel's size field is 16 bits, bounded here so a strange header cannot
/// make a read allocate much).
const MAX_VALUES: u16 = 1024;

/// Which of KVM's statistics files: QMP's `StatsTarget`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatsTarget {
    /// The VM's own statistics (`"vm"`).
    Vm,
    /// The vCPU's (`"vcpu"`).
    Vcpu,
}

/// One of KVM's statistics as read now, shaped as QEMU's `query-stats`
/// shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvmStatistic {
    /// The kernel's name for it (`exits`, `insn_emulation`, ...).
    pub name: String,
    /// Its value.
    pub value: KvmStatValue,
}

/// A statistic's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvmStatValue {
    /// One number: a counter, an instant value or a peak.
    Number(u64),
    /// One number in the boolean unit.
    Boolean(bool),
    /// Several numbers: a histogram's buckets.
    List(Vec<u64>),
}

/// One statistic the host kernel offers.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Descriptor {
    name: String,
    /// Byte offset of its first value in the data block.
    offset: u64,
    /// A counter (rather than an instant value, a peak or a histogram).
    cumulative: bool,
    /// In the boolean unit.
    boolean: bool,
    /// How many `u64`s it holds (1, or a histogram's bucket count).
    size: u16,
}

/// Reads one vCPU's (or the VM's) binary statistics.
pub(crate) struct KvmStats {
    file: File,
    data_offset: u64,
    descriptors: Vec<Descriptor>,
}

impl KvmStats {
    /// Opens the statistics of `owner`, a vCPU or VM fd; an error if the
    /// host kernel has none.
    pub fn open<F: AsRawFd>(owner: &F) -> io::Result<Self> {
        // SAFETY: KVM_GET_STATS_FD takes no argument and returns a new fd
        // (or -1); `owner` is a valid vCPU or VM fd.
        let fd = unsafe { ioctl(owner, KVM_GET_STATS_FD()) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned to us by the kernel and nothing else
        // owns it.
        let file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        Self::from_file(file)
    }

    /// Reads the header and descriptors of a statistics file.
    fn from_file(file: File) -> io::Result<Self> {
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

    /// Every statistic now (or those named in `names`, when given), in the
    /// kernel's order.
    pub fn statistics(&self, names: Option<&[String]>) -> io::Result<Vec<KvmStatistic>> {
        let wanted = |d: &&Descriptor| names.is_none_or(|names| names.contains(&d.name));
        let mut out = Vec::new();
        for descriptor in self.descriptors.iter().filter(wanted) {
            let mut raw = vec![0u8; 8 * usize::from(descriptor.size)];
            self.file
                .read_exact_at(&mut raw, self.data_offset + descriptor.offset)?;
            let values: Vec<u64> = raw
                .chunks_exact(8)
                .map(|word| u64::from_le_bytes(word.try_into().expect("8 bytes")))
                .collect();
            let value = match values.as_slice() {
                [one] if descriptor.boolean => KvmStatValue::Boolean(*one != 0),
                [one] => KvmStatValue::Number(*one),
                _ => KvmStatValue::List(values),
            };
            out.push(KvmStatistic {
                name: descriptor.name.clone(),
                value,
            });
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
            let size = u16::from_le_bytes([raw[6], raw[7]]).clamp(1, MAX_VALUES);
            let offset = u32::from_le_bytes([raw[8], raw[9], raw[10], raw[11]]);
            let name = &raw[DESC_SIZE..];
            let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
            Descriptor {
                name: String::from_utf8_lossy(&name[..end]).into_owned(),
                offset: u64::from(offset),
                cumulative: flags & TYPE_MASK == TYPE_CUMULATIVE,
                boolean: flags & UNIT_MASK == UNIT_BOOLEAN,
                size,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(flags: u32, offset: u32, name: &str, name_size: usize) -> Vec<u8> {
        desc_sized(flags, 1, offset, name, name_size)
    }

    fn desc_sized(flags: u32, size: u16, offset: u32, name: &str, name_size: usize) -> Vec<u8> {
        let mut raw = Vec::new();
        raw.extend_from_slice(&flags.to_le_bytes());
        raw.extend_from_slice(&0i16.to_le_bytes()); // exponent
        raw.extend_from_slice(&size.to_le_bytes());
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

    /// A whole statistics file as the kernel lays it out: header, id string,
    /// descriptors, data.
    #[test]
    fn statistics_read_numbers_booleans_and_histograms() {
        const NAME_SIZE: usize = 48;
        let mut descriptors = desc(0, 0, "exits", NAME_SIZE);
        descriptors.extend(desc(1 | UNIT_BOOLEAN, 8, "guest_mode", NAME_SIZE));
        descriptors.extend(desc_sized(4, 3, 16, "halt_wait_hist", NAME_SIZE));
        descriptors.extend(desc(2, 40, "peak", NAME_SIZE));
        let id = [b'k'; 48];
        let desc_offset = HEADER_SIZE + id.len();
        let data_offset = desc_offset + descriptors.len();
        let mut file = Vec::new();
        for word in [
            0u32,
            NAME_SIZE as u32,
            4,
            HEADER_SIZE as u32,
            desc_offset as u32,
            data_offset as u32,
        ] {
            file.extend_from_slice(&word.to_le_bytes());
        }
        file.extend_from_slice(&id);
        file.extend_from_slice(&descriptors);
        for value in [652u64, 1, 5, 6, 7, 99] {
            file.extend_from_slice(&value.to_le_bytes());
        }
        let path = std::env::temp_dir().join(format!("vmm-kvm-stats-{}", std::process::id()));
        std::fs::write(&path, &file).unwrap();
        let stats = KvmStats::from_file(File::open(&path).unwrap()).unwrap();
        std::fs::remove_file(&path).unwrap();

        let all = stats.statistics(None).unwrap();
        let shown: Vec<_> = all
            .iter()
            .map(|s| (s.name.as_str(), s.value.clone()))
            .collect();
        assert_eq!(
            shown,
            [
                ("exits", KvmStatValue::Number(652)),
                ("guest_mode", KvmStatValue::Boolean(true)),
                ("halt_wait_hist", KvmStatValue::List(vec![5, 6, 7])),
                ("peak", KvmStatValue::Number(99)),
            ]
        );
        let names = ["peak".to_string(), "nope".to_string()];
        let some = stats.statistics(Some(&names)).unwrap();
        assert_eq!(some.len(), 1);
        assert_eq!(some[0].name, "peak");
        assert_eq!(stats.counters().unwrap(), [("exits".to_string(), 652)]);
    }
}
