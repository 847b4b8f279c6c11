use super::*;

/// Every role's filter compiles (conditions in range, no duplicate keys).
#[test]
fn every_role_compiles() {
    for role in Role::ALL {
        let program = compile(role).unwrap_or_else(|e| panic!("{role:?}: {e}"));
        assert!(!program.is_empty());
    }
}

/// The vCPU ioctl numbers agree with the kernel's (as vmm-sys-util's
/// macros build them from the same definitions as kvm-ioctls).
#[test]
fn vcpu_ioctl_numbers_match_the_kernel() {
    use kvm_bindings::*;
    use vmm_sys_util::{ioctl_io_nr, ioctl_ior_nr, ioctl_iow_nr, ioctl_iowr_nr};
    ioctl_io_nr!(KVM_RUN, KVMIO, 0x80);
    ioctl_ior_nr!(KVM_GET_REGS, KVMIO, 0x81, kvm_regs);
    ioctl_iow_nr!(KVM_SET_SREGS, KVMIO, 0x84, kvm_sregs);
    ioctl_iowr_nr!(KVM_TRANSLATE, KVMIO, 0x85, kvm_translation);
    ioctl_iow_nr!(KVM_SET_XCRS, KVMIO, 0xa7, kvm_xcrs);
    let vcpu = allowed(Role::Vcpu)
        .into_iter()
        .find_map(|entry| match entry.only {
            Only::Ioctls(requests) if requests.iter().any(|(n, _)| *n == "KVM_RUN") => {
                Some(requests)
            }
            _ => None,
        })
        .unwrap();
    let number = |name: &str| {
        vcpu.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, nr)| u64::from(*nr))
            .unwrap()
    };
    assert_eq!(number("KVM_RUN"), KVM_RUN());
    assert_eq!(number("KVM_GET_REGS"), KVM_GET_REGS());
    assert_eq!(number("KVM_SET_SREGS"), KVM_SET_SREGS());
    assert_eq!(number("KVM_TRANSLATE"), KVM_TRANSLATE());
    assert_eq!(number("KVM_SET_XCRS"), KVM_SET_XCRS());
}

#[test]
fn syscall_names_by_number() {
    assert_eq!(syscall_name(libc::SYS_socket), "socket");
    assert_eq!(syscall_name(libc::SYS_ioctl), "ioctl");
    assert_eq!(syscall_name(libc::SYS_execve), "execve");
    assert_eq!(syscall_name(-1), "?");
    assert_eq!(syscall_name(100_000), "?");
}

/// Every name in the tables is the name the kernel gives that number.
#[test]
fn table_names_match_numbers() {
    for role in Role::ALL {
        for entry in allowed(role) {
            assert_eq!(syscall_name(entry.nr), entry.name(), "{role:?}");
        }
    }
}

#[test]
fn the_message_line_formats_numbers() {
    let mut line = Line::default();
    line.push("a ");
    line.number(0);
    line.push(" ");
    line.number(18_446_744_073_709_551_615);
    assert_eq!(&line.bytes[..line.len], b"a 0 18446744073709551615");
}

/// README's "Sandbox" table is the tables rendered.
#[test]
fn readme_lists_the_allowed_calls() {
    let readme = include_str!("../../../README.md");
    let table = markdown();
    assert!(
        readme.contains(&table),
        "README.md's sandbox table is out of date; it should read:\n{table}"
    );
}
