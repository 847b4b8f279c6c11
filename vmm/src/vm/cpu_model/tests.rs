use super::*;

fn entry(function: u32, index: u32, regs: [u32; 4]) -> kvm_cpuid_entry2 {
    kvm_cpuid_entry2 {
        function,
        index,
        eax: regs[0],
        ebx: regs[1],
        ecx: regs[2],
        edx: regs[3],
        ..Default::default()
    }
}

/// A host that supports everything in every feature leaf.
fn everything() -> Vec<kvm_cpuid_entry2> {
    vec![
        entry(0, 0, [0xd, 0, 0, 0]),
        entry(1, 0, [0x806f8, 0x800, !0, !0]),
        entry(7, 0, [1, !0, !0, !0]),
        entry(7, 1, [0, 0, 0, 0]),
        entry(0xd, 0, [0x7, 0x340, 0x340, 0]),
        entry(0xd, 1, [0xf, 0, 0, 0]),
        entry(0x8000_0001, 0, [0, 0, !0, !0]),
        entry(0x8000_0007, 0, [0, 0, 0, !0]),
        entry(KVM_FEATURES_LEAF, 0, [!0, 0, 0, 0]),
    ]
}

fn model(text: &str) -> CpuModel {
    text.parse().unwrap()
}

#[test]
fn parses_models_and_toggles() {
    assert_eq!(model("host"), CpuModel::default());
    let parsed = model("baseline,+popcnt,-cx16");
    assert_eq!(parsed.base, Base::Baseline);
    let toggles: Vec<_> = parsed.toggles.iter().map(|(f, on)| (f.name, *on)).collect();
    assert_eq!(toggles, [("popcnt", true), ("cx16", false)]);
    assert_eq!(
        "pentium".parse::<CpuModel>().unwrap_err().to_string(),
        "unknown CPU model \"pentium\": expected host or baseline"
    );
    assert_eq!(
        "host,cx16".parse::<CpuModel>().unwrap_err().to_string(),
        "\"cx16\": a feature toggle is +NAME or -NAME"
    );
    assert_eq!(
        "host,-cx17".parse::<CpuModel>().unwrap_err().to_string(),
        "unknown CPU feature \"cx17\""
    );
    assert!(matches!(
        "host,".parse::<CpuModel>(),
        Err(CpuModelError::BadToggle(_))
    ));
    assert!(matches!(
        "".parse::<CpuModel>(),
        Err(CpuModelError::UnknownModel(_))
    ));
}

#[test]
fn host_keeps_what_kvm_supports() {
    let mut entries = everything();
    model("host").apply(&mut entries).unwrap();
    assert!(entries == everything(), "host changed the table");
}

#[test]
fn toggles_clear_and_restore_bits() {
    let mut entries = everything();
    model("host,-cx16,-xsave,-kvm-poll-control")
        .apply(&mut entries)
        .unwrap();
    assert!(!has(&entries, "cx16"));
    assert!(!has(&entries, "xsave"));
    assert!(!has(&entries, "kvm-poll-control"));
    assert!(has(&entries, "popcnt") && has(&entries, "kvm-asyncpf"));
    // No XSAVE: no leaf describing its state either.
    assert!(!entries.iter().any(|e| e.function == 0xd));
    let cx16 = find(&entries, 1).unwrap().ecx;
    assert_eq!(cx16, !(1 << 13) & !(1 << 26));
    // kvmclock is two bits, as QEMU's kvmclock.
    let mut entries = everything();
    model("host,-kvmclock").apply(&mut entries).unwrap();
    assert_eq!(find(&entries, KVM_FEATURES_LEAF).unwrap().eax, !0b1001);
    // Later toggles win.
    let mut entries = everything();
    model("host,-cx16,+cx16").apply(&mut entries).unwrap();
    assert!(has(&entries, "cx16"));
}

#[test]
fn baseline_is_qemu64() {
    let mut entries = everything();
    model("baseline").apply(&mut entries).unwrap();
    let leaf1 = find(&entries, 1).unwrap();
    // qemu64: SSE3 CX16 (+ hypervisor) / FPU..SSE2 without VME, PSN, DS, ACPI, SS, HTT, TM, PBE.
    assert_eq!(leaf1.ecx, 0x8000_2001);
    assert_eq!(leaf1.edx, 0x078b_fbfd);
    let leaf7 = find(&entries, 7).unwrap();
    assert_eq!((leaf7.eax, leaf7.ebx, leaf7.ecx, leaf7.edx), (1, 0, 0, 0));
    let ext = find(&entries, 0x8000_0001).unwrap();
    assert_eq!((ext.ecx, ext.edx), (0x1, 0x2010_0800));
    assert!(!has(&entries, "invtsc"));
    assert!(!entries.iter().any(|e| e.function == 0xd));
    assert!(has(&entries, "kvmclock"));
    // A toggle brings back a host feature, XSAVE with its leaf.
    let mut entries = everything();
    model("baseline,+popcnt,+xsave")
        .apply(&mut entries)
        .unwrap();
    assert!(has(&entries, "popcnt") && has(&entries, "xsave"));
    assert_eq!(entries.iter().filter(|e| e.function == 0xd).count(), 2);
}

#[test]
fn baseline_never_adds_what_the_host_lacks() {
    let mut entries = vec![
        entry(1, 0, [0, 0, 1 << 31, 1]),
        entry(0x8000_0001, 0, [0, 0, 0, 1 << 29]),
    ];
    model("baseline").apply(&mut entries).unwrap();
    assert_eq!((entries[0].ecx, entries[0].edx), (1 << 31, 1));
    assert!(!has(&entries, "cx16") && !has(&entries, "nx"));
    let error = model("baseline,+cx16").apply(&mut entries).unwrap_err();
    assert_eq!(
        error.to_string(),
        "the host's KVM does not support CPU feature cx16"
    );
}
