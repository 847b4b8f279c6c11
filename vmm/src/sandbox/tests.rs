use super::*;

use seccompiler::{
    SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
    TargetArch,
};

/// `AUDIT_ARCH_I386`: what an `int 0x80` from a 64-bit process carries.
const AUDIT_ARCH_I386: u32 = 3 | 0x4000_0000;

/// The reference: `role`'s rules compiled by seccompiler (a linear chain),
/// as this module did before [`bpf`].
fn seccompiler_program(role: Role) -> BpfProgram {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for (nr, rule) in super::rules(role) {
        let conditions = match rule {
            Rule::Always => Vec::new(),
            Rule::AnyOf(checks) => checks
                .iter()
                .map(|c| {
                    let op = if c.mask == u32::MAX {
                        SeccompCmpOp::Eq
                    } else {
                        SeccompCmpOp::MaskedEq(u64::from(c.mask))
                    };
                    let condition =
                        SeccompCondition::new(c.arg, SeccompCmpArgLen::Dword, op, c.value.into())
                            .unwrap();
                    SeccompRule::new(vec![condition]).unwrap()
                })
                .collect(),
        };
        rules.insert(nr.into(), conditions);
    }
    SeccompFilter::new(
        rules,
        SeccompAction::Trap,
        SeccompAction::Allow,
        TargetArch::x86_64,
    )
    .unwrap()
    .try_into()
    .unwrap()
}

/// A `struct seccomp_data`.
fn data(arch: u32, nr: u32, args: [u64; 6]) -> [u8; 64] {
    let mut d = [0; 64];
    d[0..4].copy_from_slice(&nr.to_le_bytes());
    d[4..8].copy_from_slice(&arch.to_le_bytes());
    for (i, arg) in args.iter().enumerate() {
        d[16 + 8 * i..24 + 8 * i].copy_from_slice(&arg.to_le_bytes());
    }
    d
}

/// What `rules` say of a call, straight from the rules.
fn expected(rules: &BTreeMap<u32, Rule>, arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    if arch != bpf::AUDIT_ARCH_X86_64 {
        return libc::SECCOMP_RET_KILL_PROCESS;
    }
    let allowed = match rules.get(&nr) {
        None => false,
        Some(Rule::Always) => true,
        Some(Rule::AnyOf(checks)) => checks
            .iter()
            .any(|c| (args[usize::from(c.arg)] as u32) & c.mask == c.value & c.mask),
    };
    if allowed {
        libc::SECCOMP_RET_ALLOW
    } else {
        libc::SECCOMP_RET_TRAP
    }
}

/// Argument lists to try against `rules`: each value any check names
/// (with and without its mask's complement, with high bits set or clear)
/// in each argument position, others zero or all ones.
fn argument_lists(rules: &BTreeMap<u32, Rule>) -> Vec<[u64; 6]> {
    let mut values = vec![0u64, 1, 2, 0xdead, u32::MAX.into(), u64::MAX];
    for rule in rules.values() {
        if let Rule::AnyOf(checks) = rule {
            for c in checks {
                let v = u64::from(c.value);
                values.extend([v, v | (1 << 32), v | u64::from(!c.mask), v ^ 1]);
            }
        }
    }
    values.sort_unstable();
    values.dedup();
    let mut lists = Vec::new();
    for arg in 0..6 {
        for &v in &values {
            for background in [0, u64::MAX] {
                let mut args = [background; 6];
                args[arg] = v;
                lists.push(args);
            }
        }
    }
    lists
}

/// Every role's filter gives the rules' verdict, and seccompiler's, on
/// every system call number (x32 and out-of-range ones too), both
/// architectures and every argument value the rules name.
#[test]
fn every_role_filter_follows_its_rules_and_agrees_with_seccompiler() {
    for role in Role::ALL {
        let rules = super::rules(role);
        let ours = compile(role);
        let reference = seccompiler_program(role);
        let lists = argument_lists(&rules);
        let numbers = (0..=460u32).chain([0x4000_0000, 0x4000_0001, 0x4000_0000 | 16, u32::MAX]);
        for nr in numbers {
            for arch in [bpf::AUDIT_ARCH_X86_64, AUDIT_ARCH_I386] {
                // Every argument list for the numbers with rules; a few
                // for the rest (no argument matters there).
                let tried = if rules.contains_key(&nr) {
                    &lists[..]
                } else {
                    &lists[..2]
                };
                for &args in tried {
                    let d = data(arch, nr, args);
                    let want = expected(&rules, arch, nr, args);
                    assert_eq!(
                        bpf::run(&ours, &d).0,
                        want,
                        "{role:?} nr {nr} arch {arch:#x} args {args:x?}"
                    );
                    assert_eq!(
                        bpf::run(&reference, &d).0,
                        want,
                        "seccompiler: {role:?} nr {nr} args {args:x?}"
                    );
                }
            }
        }
    }
}

/// What the tree is for: the kernel runs a filter once per system call
/// number when installing it, and the VMM's threads at every call. Every
/// number takes a path of about `2 log2(calls)` instructions, where
/// seccompiler's chain walks past every allowed number before trapping.
#[test]
fn every_call_number_takes_a_short_path() {
    for role in Role::ALL {
        let rules = super::rules(role);
        let depth = usize::BITS - rules.len().leading_zeros();
        let ours = compile(role);
        let reference = seccompiler_program(role);
        let mut longest = 0;
        for nr in 0..=460u32 {
            let d = data(bpf::AUDIT_ARCH_X86_64, nr, [0; 6]);
            // Through the tree, then at most the rule's own checks.
            let checks = match rules.get(&nr) {
                Some(Rule::AnyOf(checks)) => 2 * checks.len() + 2,
                _ => 0,
            };
            let steps = bpf::run(&ours, &d).1;
            assert!(
                steps <= 4 + 3 * depth as usize + 2 + checks,
                "{role:?}: nr {nr} took {steps} instructions ({} rules)",
                rules.len()
            );
            if checks == 0 {
                longest = longest.max(steps);
            }
        }
        let trapped = bpf::run(&reference, &data(bpf::AUDIT_ARCH_X86_64, 460, [0; 6])).1;
        assert!(
            longest * 4 < trapped,
            "{role:?}: the tree's {longest} instructions against the chain's {trapped}"
        );
    }
}

/// Conditional jumps reach 255 instructions: a rule list long enough to
/// need longer jumps still compiles to a filter that follows it.
#[test]
fn far_jumps_are_lengthened() {
    let mut rules = BTreeMap::new();
    for nr in 0..120u32 {
        let rule = if nr % 3 == 0 {
            Rule::Always
        } else {
            Rule::AnyOf(
                (0..(nr % 7) * 10)
                    .map(|v| bpf::Check {
                        arg: (nr % 6) as u8,
                        mask: if v % 5 == 0 { 0xff0 } else { u32::MAX },
                        value: v * 17 + nr,
                    })
                    .collect(),
            )
        };
        rules.insert(nr * 2, rule);
    }
    let program = bpf::compile(&rules, libc::SECCOMP_RET_ALLOW, libc::SECCOMP_RET_TRAP);
    assert!(
        program.iter().any(|insn| insn.code == 0x05 && insn.k > 255),
        "the test needs far jumps"
    );
    let lists = argument_lists(&rules);
    for nr in 0..250u32 {
        let tried = if rules.contains_key(&nr) {
            &lists[..]
        } else {
            &lists[..2]
        };
        for &args in tried {
            let d = data(bpf::AUDIT_ARCH_X86_64, nr, args);
            assert_eq!(
                bpf::run(&program, &d).0,
                expected(&rules, bpf::AUDIT_ARCH_X86_64, nr, args),
                "nr {nr} args {args:x?}"
            );
        }
    }
}

/// The kernel's limit is 4096 instructions a filter.
#[test]
fn every_role_filter_fits_the_kernel_limit() {
    for role in Role::ALL {
        let program = compile(role);
        assert!(program.len() <= 4096, "{role:?}: {}", program.len());
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

/// Rule sets of any shape: numbers anywhere in 0..600 (sparse or dense),
/// rules always allowing or with 1-150 checks on any argument, masked or
/// not, so that the tree and the check lists cross the 255-instruction
/// reach of a conditional jump in every arrangement.
fn rule_set() -> impl proptest::strategy::Strategy<Value = BTreeMap<u32, Rule>> {
    use proptest::prelude::*;
    let check =
        (0u8..6, any::<bool>(), any::<u32>(), 0u32..8).prop_map(|(arg, masked, mask, value)| {
            bpf::Check {
                arg,
                mask: if masked { mask | 1 } else { u32::MAX },
                value,
            }
        });
    let rule = prop_oneof![
        1 => Just(Rule::Always),
        3 => proptest::collection::vec(check, 1..150).prop_map(Rule::AnyOf),
    ];
    proptest::collection::btree_map(0u32..600, rule, 0..40)
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

    /// Any rule set compiles to a filter that gives the rules' verdict on
    /// every number, with each argument taking each value a check names
    /// (and its neighbours), whatever the layout had to lengthen.
    #[test]
    fn any_rule_set_compiles_to_a_filter_that_follows_it(rules in rule_set()) {
        let program = bpf::compile(&rules, libc::SECCOMP_RET_ALLOW, libc::SECCOMP_RET_TRAP);
        let unruled = argument_lists(&BTreeMap::new());
        for nr in 0..=600u32 {
            // A number's own checks' values are the ones that matter to it.
            let lists = match rules.get(&nr) {
                Some(rule) => argument_lists(&BTreeMap::from([(nr, rule.clone())])),
                None => unruled[..2].to_vec(),
            };
            for &args in &lists {
                let d = data(bpf::AUDIT_ARCH_X86_64, nr, args);
                proptest::prop_assert_eq!(
                    bpf::run(&program, &d).0,
                    expected(&rules, bpf::AUDIT_ARCH_X86_64, nr, args),
                    "nr {} args {:x?}", nr, args
                );
            }
        }
    }
}
