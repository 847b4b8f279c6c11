//! A smoke run of the benchmark (`bench/report.py --quick`), so the command
//! the README documents cannot rot: it must run its cases against our VMM
//! and QEMU, write the Markdown report with a row per case, and the plots.
//! No timing is asserted. A missing dependency (QEMU, matplotlib, Python)
//! fails the test; nothing is skipped.
mod common;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use common::{qemu_binary, require_kvm, scratch_path, vmm_binary};

/// Every case, one run each with `--quick`'s tiny counts, against our VMM,
/// QEMU `microvm` + KVM and QEMU `pc` + TCG: about 50 s. QEMU `pc` + KVM is
/// left out (seconds of firmware per boot here); it runs the same code.
const CASES: &[&str] = &[
    "boot",
    "boot-trivial",
    "latency",
    "typing",
    "idle",
    "timer",
    "footprint",
    "vmm-stats",
];

#[test]
fn quick_benchmark_writes_report_and_plots() {
    require_kvm();
    qemu_binary();
    let out = scratch_path("bench-report");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/report.py");
    let start = Instant::now();
    let result = Command::new("python3")
        .arg(&script)
        .arg("--quick")
        .args(["--runs", "1", "--machines", "ours,microvm-kvm,pc-tcg"])
        .arg("--vmm")
        .arg(vmm_binary())
        .arg("--out")
        .arg(&out)
        .arg("--cases")
        .arg(CASES.join(","))
        .output()
        .expect("run python3 (required for the benchmark)");
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        result.status.success(),
        "bench/report.py --quick failed ({}):\n{stderr}",
        result.status
    );
    eprintln!("bench/report.py --quick took {:?}", start.elapsed());

    let report = std::fs::read_to_string(out.join("report.md")).expect("report.md written");
    for case in CASES {
        assert!(
            report
                .lines()
                .any(|l| l.starts_with(&format!("| {case} |"))),
            "no table row for case {case} in report.md:\n{report}"
        );
    }
    for plot in ["latency.png", "typing.png", "boot.png", "idle.png"] {
        let bytes = std::fs::read(out.join(plot)).unwrap_or_else(|e| panic!("{plot}: {e}"));
        assert!(bytes.starts_with(b"\x89PNG"), "{plot} is not a PNG");
    }
    assert!(out.join("raw.json").exists(), "raw.json written");
}
