//! Linux on our devices (issue 12): a small Linux 6.1 kernel and a busybox
//! initramfs, both built by `scripts/linux/build.sh` (cached between runs),
//! booted in our VMM on KVM and, as the reference, in QEMU `pc` + TCG with
//! the same kernel, command line and initramfs. The checks read Linux's own
//! output: the i8042 and atkbd probe, IRQ 0 and 1 counting on the XT-PIC,
//! the TSC calibrated against our PIT, rtc_cmos setting the clock, keys
//! typed by `--keys` arriving as Linux key codes, `reboot -f` through the
//! i8042 and an exit status through port 0xF4. Every kernel log line that
//! mentions one of our devices must be one the test expects.
//!
//! These tests are `#[ignore]`d: they build a kernel (minutes, once) and
//! boot Linux under emulation (about a minute here). Run them with
//! `cargo test --release --test linux_boot -- --ignored --test-threads 1`;
//! `.ci/run` does.
mod common;
#[path = "common/script_qemu.rs"]
mod script_qemu;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::qmp::Qmp;
use common::*;
use script_qemu::QemuTarget;
use vmm::input::script::{self, Script};

/// The kernel command line, every flag justified in the README ("Linux in
/// the VMM"). `initaction=` is for the initramfs's /init.
const CMDLINE: &str = "console=ttyS0 noapic nolapic noxsave tsc=reliable";

/// The `--cpu` model for our VMM: the host's, kvmclock included. Without
/// kvmclock Linux calibrates the TSC against the PIT, which fails under
/// emulation here ("tsc: Unable to calibrate against PIT": its loop wants
/// 5000 port reads in 50 ms, QEMU TCG on this machine fails it too), marks
/// the TSC unstable and runs on jiffies. XSAVE cannot be hidden on this host:
/// `noxsave` on the command line instead (README).
const CPU: &str = "host";

/// How long a boot to the init milestones may take in our VMM.
const BOOT_TIMEOUT: Duration = Duration::from_secs(600);

/// The kernel and initramfs: the directory `scripts/linux/build.sh` prints.
fn artifacts() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/linux/build.sh");
        let output = Command::new(&script)
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", script.display()));
        assert!(
            output.status.success(),
            "{} failed ({}):\n{}",
            script.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8(output.stdout).unwrap();
        PathBuf::from(
            stdout
                .lines()
                .last()
                .expect("the script prints its directory"),
        )
    })
}

fn kernel() -> PathBuf {
    artifacts().join("vmlinux")
}

fn initramfs() -> PathBuf {
    artifacts().join("initramfs.cpio")
}

/// The host's TSC frequency in kHz, as KVM gives it to a vCPU.
fn host_tsc_khz() -> u32 {
    let kvm = kvm_ioctls::Kvm::new().expect("open /dev/kvm");
    let vm = kvm.create_vm().expect("create a VM");
    let vcpu = vm.create_vcpu(0).expect("create a vCPU");
    vcpu.get_tsc_khz().expect("KVM_GET_TSC_KHZ")
}

/// The key script: waits for evkeys, then letters, Shift, Enter, Backspace,
/// Ctrl, arrows, and Esc (which ends evkeys).
const KEYS: &str = "\
expect \"init: ready for keys\" 600s
expect \"evkeys: reading\" 60s
key a z shift-b ret backspace ctrl-c up down left right
key esc
";

/// The Linux key codes (linux/input-event-codes.h) and values the script
/// gives: 1 down, 0 up.
const EXPECTED_KEYS: &[(u32, i32)] = &[
    (30, 1), // KEY_A
    (30, 0),
    (44, 1), // KEY_Z
    (44, 0),
    (42, 1), // KEY_LEFTSHIFT
    (48, 1), // KEY_B
    (48, 0),
    (42, 0),
    (28, 1), // KEY_ENTER
    (28, 0),
    (14, 1), // KEY_BACKSPACE
    (14, 0),
    (29, 1), // KEY_LEFTCTRL
    (46, 1), // KEY_C
    (46, 0),
    (29, 0),
    (103, 1), // KEY_UP
    (103, 0),
    (108, 1), // KEY_DOWN
    (108, 0),
    (105, 1), // KEY_LEFT
    (105, 0),
    (106, 1), // KEY_RIGHT
    (106, 0),
    (1, 1), // KEY_ESC
    (1, 0),
];

/// Kernel log lines about our devices: each line of Linux's log that
/// mentions one of them must match one of these (a substring), and the
/// `required` ones must appear. A device line matching none fails the test:
/// that is how a new warning from a driver is caught.
struct Expected {
    text: &'static str,
    required: bool,
}

const DEVICE_LINES: &[Expected] = &[
    Expected {
        text: "Command line: console=ttyS0",
        required: true,
    },
    Expected {
        text: "Kernel command line: console=ttyS0",
        required: true,
    },
    Expected {
        text: "APIC: Keep in PIC mode(8259)",
        required: true,
    },
    Expected {
        text: "Serial: 8250/16550 driver, 4 ports, IRQ sharing disabled",
        required: true,
    },
    Expected {
        text: "serial8250: ttyS0 at I/O 0x3f8 (irq = 4, base_baud = 115200) is a 16550A",
        required: true,
    },
    Expected {
        text: "serio: i8042 KBD port at 0x60,0x64 irq 1",
        required: true,
    },
    Expected {
        text: "serio: i8042 AUX port at 0x60,0x64 irq 12",
        required: true,
    },
    Expected {
        text: "input: AT Translated Set 2 keyboard as /devices/platform/i8042/serio0/input/input",
        required: true,
    },
    Expected {
        text: "platform rtc_cmos: registered platform RTC device (no PNP device found)",
        required: true,
    },
    Expected {
        text: "rtc_cmos rtc_cmos: registered as rtc0",
        required: true,
    },
    Expected {
        text: "rtc_cmos rtc_cmos: setting system clock to ",
        required: true,
    },
    Expected {
        text: "rtc_cmos rtc_cmos: alarms up to one day, 114 bytes nvram",
        required: true,
    },
    Expected {
        text: "clocksource: refined-jiffies: mask:",
        required: false,
    },
    Expected {
        text: "clocksource: jiffies: mask:",
        required: false,
    },
    Expected {
        text: "clocksource: kvm-clock: mask:",
        required: false,
    },
    Expected {
        text: "clocksource: tsc-early: mask:",
        required: false,
    },
    Expected {
        text: "clocksource: tsc: mask:",
        required: false,
    },
    Expected {
        text: "clocksource: Switched to clocksource ",
        required: false,
    },
    Expected {
        text: "tsc: Detected ",
        required: false,
    },
    // PIT-based TSC calibration: it succeeds in QEMU TCG on a quiet host
    // (1996.236 MHz against the host's 1996.248), fails under load or
    // emulation (the next lines); with kvmclock (ours) Linux skips it.
    Expected {
        text: "tsc: Fast TSC calibration using PIT",
        required: false,
    },
    Expected {
        text: "tsc: Fast TSC calibration failed",
        required: false,
    },
    Expected {
        text: "tsc: Unable to calibrate against PIT",
        required: false,
    },
    Expected {
        text: "tsc: No reference (HPET/PMTIMER) available",
        required: false,
    },
    Expected {
        text: "tsc: Marking TSC unstable due to could not calculate TSC khz",
        required: false,
    },
    Expected {
        text: "[Firmware Bug]: TSC doesn't count with P0 frequency!",
        required: false,
    },
];

/// Words that make a log line one about our devices.
const DEVICE_WORDS: &[&str] = &[
    "8259",
    "pic",
    "i8042",
    "serio",
    "atkbd",
    "keyboard",
    "rtc",
    "cmos",
    "serial",
    "ttys",
    "16550",
    "8250",
    "pit",
    "i8253",
    "8254",
    "tsc",
    "clocksource",
    "clockevent",
    "irq",
    "spurious",
];

/// The kernel's log lines (before /init's own output) that mention one of
/// our devices.
fn device_lines(serial: &str) -> Vec<&str> {
    let log = serial.split("init: mounted").next().unwrap_or(serial);
    log.lines()
        .map(|line| line.trim_end_matches('\r'))
        .filter(|line| {
            let lower = line.to_ascii_lowercase();
            DEVICE_WORDS.iter().any(|word| {
                lower
                    .split(|c: char| !c.is_ascii_alphanumeric())
                    .any(|token| token == *word || token.starts_with(word) && *word == "8250")
            })
        })
        .collect()
}

/// Fails on any device line the expectations do not cover, or a required
/// line missing.
fn check_device_lines(machine: &str, serial: &str) {
    let lines = device_lines(serial);
    let unexpected: Vec<&&str> = lines
        .iter()
        .filter(|line| !DEVICE_LINES.iter().any(|e| line.contains(e.text)))
        .collect();
    assert!(
        unexpected.is_empty(),
        "{machine}: Linux log lines about our devices that the test does not expect:\n{}\n\nwhole output:\n{serial}",
        unexpected.iter().map(|l| format!("  {l}")).collect::<Vec<_>>().join("\n")
    );
    for expected in DEVICE_LINES.iter().filter(|e| e.required) {
        assert!(
            lines.iter().any(|line| line.contains(expected.text)),
            "{machine}: Linux did not log {:?}\n\nwhole output:\n{serial}",
            expected.text
        );
    }
}

/// `/proc/interrupts` rows printed by /init (the last block): IRQ -> (count,
/// chip).
fn interrupts(serial: &str) -> Vec<(String, u64, String)> {
    let block = serial
        .rsplit("init: interrupts begin")
        .next()
        .and_then(|rest| rest.split("init: interrupts end").next())
        .unwrap_or_default();
    block
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let irq = words.next()?.strip_suffix(':')?.to_string();
            let count = words.next()?.parse().ok()?;
            let chip = words.next().unwrap_or_default().to_string();
            Some((irq, count, chip))
        })
        .collect()
}

/// The value after `prefix` on the first line starting with it (after any
/// printk timestamp).
fn field<'a>(serial: &'a str, prefix: &str) -> Option<&'a str> {
    serial.lines().find_map(|line| {
        let at = line.find(prefix)?;
        Some(line[at + prefix.len()..].trim())
    })
}

/// The timer and keyboard count on the XT-PIC; the keyboard took at least
/// a byte per key; no spurious-interrupt storm (`ERR`/`SPU` rows).
fn check_interrupts(machine: &str, serial: &str, keys: bool) {
    let rows = interrupts(serial);
    let row = |irq: &str| rows.iter().find(|(name, _, _)| name == irq);
    // Linux 6.1 without an APIC lists no IRQ 0 row here (seen in QEMU too).
    if let Some(timer) = row("0") {
        assert_eq!(timer.2, "XT-PIC", "{machine}: IRQ 0's chip");
    }
    let keyboard = row("1").unwrap_or_else(|| panic!("{machine}: no IRQ 1 row:\n{serial}"));
    assert_eq!(keyboard.2, "XT-PIC", "{machine}: IRQ 1's chip");
    if keys {
        // 26 events, at least one byte (one interrupt) each.
        assert!(
            keyboard.1 >= EXPECTED_KEYS.len() as u64,
            "{machine}: IRQ 1 counted {} times for {} key events",
            keyboard.1,
            EXPECTED_KEYS.len()
        );
    }
    for name in ["ERR", "SPU"] {
        if let Some(row) = row(name) {
            assert!(row.1 < 5, "{machine}: {name} counted {} times", row.1);
        }
    }
}

/// The key events evkeys printed, in order.
fn key_events(serial: &str) -> Vec<(u32, i32)> {
    serial
        .lines()
        .filter_map(|line| {
            let rest = line.trim_end_matches('\r').strip_prefix("evkey ")?;
            let mut words = rest.split_whitespace();
            Some((words.next()?.parse().ok()?, words.next()?.parse().ok()?))
        })
        .collect()
}

/// Linux's TSC frequency (`tsc: Detected 2999.998 MHz processor`) in kHz.
fn detected_tsc_khz(serial: &str) -> f64 {
    let text = field(serial, "tsc: Detected ").expect("tsc: Detected line");
    let mhz: f64 = text
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("cannot read the TSC frequency in {text:?}"));
    mhz * 1000.0
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Milestones, as seconds from the process start.
#[derive(Debug, Default)]
struct Milestones {
    first_line: Option<Duration>,
    keyboard: Option<Duration>,
    init: Option<Duration>,
}

/// Watches `output` for the milestones until /init runs (or `timeout`).
fn watch_milestones(output: &Output, start: Instant, timeout: Duration) -> Milestones {
    let mut milestones = Milestones::default();
    type Slot = fn(&mut Milestones) -> &mut Option<Duration>;
    let steps: [(&[u8], Slot); 3] = [
        (b"Linux version", |m| &mut m.first_line),
        (b"AT Translated Set 2 keyboard as", |m| &mut m.keyboard),
        (b"Run /init as init process", |m| &mut m.init),
    ];
    for (needle, slot) in steps {
        let left = timeout.saturating_sub(start.elapsed());
        if output.wait_for(0, needle, left).is_ok() {
            *slot(&mut milestones) = Some(start.elapsed());
        }
    }
    milestones
}

fn print_milestones(machine: &str, m: &Milestones) {
    let show = |d: Option<Duration>| d.map_or("-".into(), |d| format!("{:.2} s", d.as_secs_f64()));
    eprintln!(
        "{machine}: first log line {}, keyboard registered {}, /init {}",
        show(m.first_line),
        show(m.keyboard),
        show(m.init)
    );
}

fn vmm_command(initaction: &str) -> Command {
    require_kvm();
    let mut command = Command::new(vmm_binary());
    command
        .arg("--kernel")
        .arg(kernel())
        .arg("--initrd")
        .arg(initramfs())
        .args(["--memory", "128", "--cpu", CPU])
        .arg("--cmdline")
        .arg(format!("{CMDLINE} initaction={initaction}"));
    command
}

fn qemu_linux_command(initaction: &str) -> Command {
    let mut command = Command::new(qemu_binary());
    command
        .args(["-machine", "pc", "-accel", "tcg", "-m", "128"])
        .args(["-display", "none", "-nodefaults", "-no-reboot"])
        .args(["-serial", "stdio"])
        .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"])
        .arg("-kernel")
        .arg(kernel())
        .arg("-initrd")
        .arg(initramfs())
        .arg("-append")
        .arg(format!("{CMDLINE} initaction={initaction}"));
    command
}

/// Checks `date` (printed by /init as `init: date SECONDS`) against the host
/// clock read when the line arrived.
fn check_date(machine: &str, output: &Output) {
    let at = output
        .wait_for(0, b"init: date ", BOOT_TIMEOUT)
        .unwrap_or_else(|_| panic!("{machine}: no date line:\n{}", output.text()));
    let end = output
        .wait_for(at, b"\n", Duration::from_secs(30))
        .expect("the date line ends");
    let host = unix_now();
    let text = output.text();
    let guest: i64 = text[at..end]
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{machine}: bad date line {:?}", &text[at..end]));
    assert!(
        (guest - host).abs() <= 2,
        "{machine}: Linux's date {guest} is more than 2 s from the host's {host}"
    );
}

/// Checks the RTC's time as Linux set it (`setting system clock to ...
/// (SECONDS)`) against the host clock `host` read when the line arrived.
fn check_rtc_time(machine: &str, serial: &str, host: i64) {
    let line = field(serial, "rtc_cmos rtc_cmos: setting system clock to ")
        .unwrap_or_else(|| panic!("{machine}: no RTC line:\n{serial}"));
    let seconds: i64 = line
        .rsplit('(')
        .next()
        .and_then(|rest| rest.trim_end_matches(['\r', ')']).parse().ok())
        .unwrap_or_else(|| panic!("{machine}: cannot read {line:?}"));
    assert!(
        (seconds - host).abs() <= 2,
        "{machine}: Linux set its clock to {seconds}, the host said {host}"
    );
}

/// Our VMM on this host: Linux boots through every driver of our devices
/// to `/init` (i8042 and atkbd, 8250, rtc-cmos setting the clock from our
/// RTC, the TSC frequency from kvmclock within 1 % of the host's), every
/// log line about our devices is expected, and the boot then stops where
/// `kvm_pvm` stops it: /init's first system call lands on
/// `entry_SYSCALL_64` in user mode and faults (the host's PVM runs a guest's
/// user mode natively and supports only PVM-aware guest kernels there), so
/// the kernel panics "Attempted to kill init". On a host that runs guest
/// user mode, /init's own checks (keys, interrupts, date) run instead.
#[test]
#[ignore = "builds and boots Linux: minutes; run by .ci/run"]
fn linux_boots_to_init_in_our_vmm() {
    let tsc_khz = host_tsc_khz();
    let start = Instant::now();
    let mut command = vmm_command("keys");
    command.arg("--stats").args(["--timeout", "900"]);
    let vm = Machine::spawn(command);
    // The host's time when Linux logs the clock it read from our RTC,
    // taken by a watcher as the line arrives (the milestones may be waited
    // for in another order).
    let rtc_watch = {
        let output = vm.stdout.clone();
        std::thread::spawn(move || {
            let at = output
                .wait_for(
                    0,
                    b"rtc_cmos rtc_cmos: setting system clock to ",
                    BOOT_TIMEOUT,
                )
                .ok()?;
            output.wait_for(at, b"\n", Duration::from_secs(10)).ok()?;
            Some(unix_now())
        })
    };
    let milestones = watch_milestones(&vm.stdout, start, BOOT_TIMEOUT);
    let init = vm
        .stdout
        .wait_for(0, b"Run /init as init process", BOOT_TIMEOUT)
        .unwrap_or_else(|_| {
            panic!(
                "vmm: Linux did not reach /init:\n{}\n{}",
                vm.stdout.text(),
                vm.stderr.text()
            )
        });
    let run_init = start.elapsed();
    let end = vm
        .stdout
        .wait_for(init, b"Attempted to kill init", Duration::from_secs(120))
        .or_else(|_| {
            vm.stdout
                .wait_for(init, b"init: ready for keys", Duration::from_secs(1))
        });
    let serial = vm.stdout.text();
    print_milestones("vmm", &milestones);
    eprintln!("vmm: Run /init {:.2} s", run_init.as_secs_f64());
    check_device_lines("vmm", &serial);
    // Every paravirtual feature CPUID offers works: a refused MSR write
    // (KVM's async page faults need an in-kernel local APIC) is an
    // "unchecked MSR access error" with a stack trace.
    assert!(
        !serial.contains("unchecked MSR access error"),
        "vmm: Linux wrote an MSR our machine refuses:\n{serial}"
    );
    let host_time = rtc_watch
        .join()
        .unwrap()
        .unwrap_or_else(|| panic!("vmm: no RTC line:\n{serial}"));
    check_rtc_time("vmm", &serial, host_time);
    let detected = detected_tsc_khz(&serial);
    let error = (detected - f64::from(tsc_khz)).abs() / f64::from(tsc_khz);
    eprintln!(
        "vmm: TSC {detected:.0} kHz, host {tsc_khz} kHz, off by {:.3} %",
        error * 100.0
    );
    assert!(
        error < 0.01,
        "vmm: Linux's TSC {detected} kHz vs the host's {tsc_khz} kHz"
    );
    assert!(
        end.is_ok(),
        "vmm: neither /init nor its known failure:\n{serial}"
    );
    if serial.contains("Attempted to kill init") {
        assert!(
            serial.contains("init[1]: segfault at ffffffff81200040 ip ffffffff81200040"),
            "vmm: /init died otherwise than at its first system call:\n{serial}"
        );
        eprintln!("vmm: /init's first system call faults under kvm_pvm (known host limit)");
    }
    drop(vm);
}

/// The reference: the same kernel, command line and initramfs in QEMU `pc`
/// with TCG. /init runs: keys typed through QMP by a keystroke script reach
/// Linux's input layer as the right key codes, the keyboard and the other
/// devices count on the XT-PIC, `date` is within 2 s of the host, and
/// `reboot -f` ends QEMU (`-no-reboot`) through the i8042.
#[test]
#[ignore = "builds and boots Linux: minutes; run by .ci/run"]
fn linux_reference_in_qemu_pc_tcg() {
    let socket = scratch_path("qemu-qmp.sock");
    let start = Instant::now();
    let mut command = qemu_linux_command("keys,reboot");
    command
        .arg("-qmp")
        .arg(format!("unix:{},server=on,wait=off", socket.display()));
    let mut qemu = Machine::spawn(command);
    let qmp = Qmp::connect(&socket, Duration::from_secs(20));
    let target = QemuTarget::new(qmp, &qemu.stdout);
    let parsed = Script::parse("linux.keys", KEYS).expect("the key script parses");
    let milestones = watch_milestones(&qemu.stdout, start, BOOT_TIMEOUT);
    check_date("qemu", &qemu.stdout);
    script::run(&parsed, &target)
        .unwrap_or_else(|e| panic!("qemu: key script: {e}\n{}", qemu.stdout.text()));
    drop(target);
    let status = qemu.wait(BOOT_TIMEOUT);
    let serial = qemu.stdout.text();
    print_milestones("qemu pc tcg", &milestones);
    assert_eq!(
        status.code(),
        Some(0),
        "qemu: status\n{serial}\n{}",
        qemu.stderr.text()
    );
    assert!(serial.contains("reboot: Restarting system"), "{serial}");
    check_device_lines("qemu", &serial);
    check_interrupts("qemu", &serial, true);
    assert_eq!(
        key_events(&serial),
        EXPECTED_KEYS,
        "qemu: key events\n{serial}"
    );
}
