//! Machine reset on real KVM: a guest reset request (i8042 0xFE) reboots the
//! machine (kernel reloaded, `.bss` zeroed, boot data and vCPU state as at
//! the first boot; RAM outside the kernel survives), `--no-reboot` exits
//! instead, and QMP `system_reset` reboots the embedded guest to a working
//! shell, with QEMU's `RESET` events.
mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::pvh_elf::PvhElf;
use common::qmp::Qmp;
use common::*;
use serde_json::json;
use shared::boot;

/// Where the hand-built kernel loads.
const LOAD: u32 = 0x10_0000;
/// Its boot counter: RAM outside its segments, which a reset leaves alone.
const COUNTER: u32 = 0x20_0000;
/// Zero-filled memory the segment has beyond its file bytes.
const BSS_SIZE: u32 = 0x1000;
/// Exit value of a second boot that found everything as at the first.
const SECOND_BOOT_OK: i32 = 0x21;
/// Exit value of a boot that found something wrong.
const BOOT_WRONG: i32 = 0x22;

/// 32-bit code with forward jumps to labels, patched at the end.
#[derive(Default)]
struct Asm {
    code: Vec<u8>,
    /// (position of the rel8 byte, label)
    fixups: Vec<(usize, &'static str)>,
    labels: Vec<(&'static str, usize)>,
}

impl Asm {
    fn emit(&mut self, bytes: &[u8]) -> &mut Self {
        self.code.extend_from_slice(bytes);
        self
    }
    /// A short conditional or unconditional jump (`op` 0x74, 0x75, 0xeb).
    fn jump(&mut self, op: u8, label: &'static str) -> &mut Self {
        self.code.push(op);
        self.fixups.push((self.code.len(), label));
        self.code.push(0);
        self
    }
    fn label(&mut self, name: &'static str) -> &mut Self {
        self.labels.push((name, self.code.len()));
        self
    }
    fn addr(&self) -> u32 {
        LOAD + self.code.len() as u32
    }
    fn finish(mut self) -> Vec<u8> {
        for (at, name) in &self.fixups {
            let target = self.labels.iter().find(|(n, _)| n == name).unwrap().1;
            let rel = target as isize - (*at as isize + 1);
            self.code[*at] = i8::try_from(rel).expect("short jump") as u8;
        }
        self.code
    }
}

/// A PVH kernel that counts its boots at [`COUNTER`] and prints the count on
/// COM1. Every boot checks what a reset must restore: its initialised data
/// byte, a `.bss` byte (zero), `EBX` = `hvm_start_info`, `EFER.SCE` and
/// `CR4.PAE` clear; then dirties all of them. The first boot asks for a reset
/// (i8042 0xFE), after reading one key when `wait_key` (so a test can connect
/// first); the second exits with [`SECOND_BOOT_OK`].
fn reset_kernel(wait_key: bool) -> Vec<u8> {
    // The data byte follows the code; the .bss follows the data byte.
    let mut a = Asm::default();
    let data_fixups = |a: &Asm| a.code.len();
    let mut data_refs = Vec::new();
    let mut bss_refs = Vec::new();
    a.emit(&[0xa1]).emit(&COUNTER.to_le_bytes()); // mov eax, [COUNTER]
    a.emit(&[0x40]); // inc eax
    a.emit(&[0xa3]).emit(&COUNTER.to_le_bytes()); // mov [COUNTER], eax
    a.emit(&[0x89, 0xc6]); // mov esi, eax
    a.emit(&[0xba, 0xf8, 0x03, 0, 0]); // mov edx, 0x3f8
    a.emit(&[0x04, b'0', 0xee]); // add al, '0'; out dx, al
    a.emit(&[0x80, 0x3d]); // cmp byte [DATA], 0x11
    data_refs.push(data_fixups(&a));
    a.emit(&[0, 0, 0, 0, 0x11]).jump(0x75, "fail");
    a.emit(&[0x80, 0x3d]); // cmp byte [BSS], 0
    bss_refs.push(a.code.len());
    a.emit(&[0, 0, 0, 0, 0x00]).jump(0x75, "fail");
    a.emit(&[0x81, 0xfb, 0x00, 0x60, 0, 0]).jump(0x75, "fail"); // cmp ebx, 0x6000
    a.emit(&[0xb9, 0x80, 0, 0, 0xc0, 0x0f, 0x32]); // mov ecx, EFER; rdmsr
    a.emit(&[0xa8, 0x01]).jump(0x75, "fail"); // test al, 1 (SCE)
    a.emit(&[0x0f, 0x20, 0xe0, 0xa8, 0x20]).jump(0x75, "fail"); // mov eax, cr4; test al, PAE
    a.emit(&[0xc6, 0x05]); // mov byte [DATA], 0x22
    data_refs.push(a.code.len());
    a.emit(&[0, 0, 0, 0, 0x22]);
    a.emit(&[0xc6, 0x05]); // mov byte [BSS], 0x33
    bss_refs.push(a.code.len());
    a.emit(&[0, 0, 0, 0, 0x33]);
    a.emit(&[0xb9, 0x80, 0, 0, 0xc0, 0x0f, 0x32]); // mov ecx, EFER; rdmsr
    a.emit(&[0x0c, 0x01, 0x0f, 0x30]); // or al, 1; wrmsr
    a.emit(&[0x0f, 0x20, 0xe0, 0x0c, 0x20, 0x0f, 0x22, 0xe0]); // cr4 |= PAE
    a.emit(&[0x83, 0xfe, 0x01]).jump(0x75, "second"); // cmp esi, 1
    if wait_key {
        a.emit(&[0xb0, 0xf4, 0xe6, 0x60]); // keyboard: enable scanning
        for wait in ["ack", "key"] {
            a.label(wait);
            a.emit(&[0xe4, 0x64, 0xa8, 0x01]).jump(0x74, wait); // until OBF
            a.emit(&[0xe4, 0x60]); // in al, 0x60
        }
    }
    a.emit(&[0xb0, 0xfe, 0xe6, 0x64]); // i8042: pulse reset
    a.label("hang").emit(&[0xf4]).jump(0xeb, "hang");
    a.label("second");
    a.emit(&[0xb0, SECOND_BOOT_OK as u8, 0xe6, 0xf4, 0xf4]);
    a.label("fail");
    a.emit(&[0xb0, BOOT_WRONG as u8, 0xe6, 0xf4, 0xf4]);
    let data = a.addr();
    let bss = data + 1 + 0x10;
    let mut code = a.finish();
    for at in data_refs {
        code[at..at + 4].copy_from_slice(&data.to_le_bytes());
    }
    for at in bss_refs {
        code[at..at + 4].copy_from_slice(&bss.to_le_bytes());
    }
    code.push(0x11); // DATA
    PvhElf::new(LOAD.into(), &code).bss(BSS_SIZE.into()).build()
}

fn write_kernel(name: &str, wait_key: bool) -> PathBuf {
    let path = scratch_path(name);
    std::fs::write(&path, reset_kernel(wait_key)).unwrap();
    path
}

/// The default: a guest reset reboots the machine as at power-on; the
/// second boot finds everything restored and exits with its own status.
#[test]
fn guest_reset_reboots_as_at_power_on() {
    require_kvm();
    let kernel = write_kernel("reset.elf", false);
    let mut command = Command::new(vmm_binary());
    command
        .arg("--kernel")
        .arg(&kernel)
        .args(["--timeout", "20", "--stats"]);
    let mut vm = Machine::spawn(command);
    let status = vm.wait(Duration::from_secs(30));
    let (stdout, stderr) = (vm.stdout.text(), vm.stderr.text());
    assert_eq!(
        status.code(),
        Some(SECOND_BOOT_OK),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert_eq!(stdout, "12", "one digit per boot");
    assert_eq!(stderr.matches("vmm: guest reset\n").count(), 1, "{stderr}");
    assert!(stderr.contains("  resets: 1\n"), "{stderr}");
}

/// `--no-reboot`: a guest reset request ends the VMM with status 0.
#[test]
fn no_reboot_exits_on_a_guest_reset() {
    require_kvm();
    let kernel = write_kernel("reset-no-reboot.elf", false);
    let mut command = Command::new(vmm_binary());
    command
        .arg("--kernel")
        .arg(&kernel)
        .args(["--no-reboot", "--timeout", "20"]);
    let mut vm = Machine::spawn(command);
    let status = vm.wait(Duration::from_secs(30));
    let (stdout, stderr) = (vm.stdout.text(), vm.stderr.text());
    assert_eq!(
        status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert_eq!(stdout, "1");
    assert!(stderr.contains("requested a reset"), "{stderr}");
    assert!(!stderr.contains("vmm: guest reset"), "{stderr}");
}

/// A guest-requested reset is announced to QMP clients as QEMU does.
#[test]
fn guest_reset_sends_the_qmp_reset_event() {
    require_kvm();
    let kernel = write_kernel("reset-qmp.elf", true);
    let socket = scratch_path("vmm-reset-guest.sock");
    let mut command = Command::new(vmm_binary());
    command
        .arg("--kernel")
        .arg(&kernel)
        .arg("--qmp")
        .arg(format!("unix:{}", socket.display()))
        .args(["--timeout", "20"]);
    let mut vm = Machine::spawn(command);
    let deadline = Instant::now() + Duration::from_secs(10);
    let stream = loop {
        match UnixStream::connect(&socket) {
            Ok(stream) => break stream,
            Err(error) => {
                assert!(Instant::now() < deadline, "connect: {error}");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    // The first boot resets after reading one key; the second exits, which
    // closes the connection: read everything until then.
    writer
        .write_all(
            concat!(
                r#"{"execute":"qmp_capabilities"}"#,
                "\n",
                r#"{"execute":"send-key","arguments":{"keys":[{"type":"qcode","data":"a"}]}}"#,
                "\n"
            )
            .as_bytes(),
        )
        .unwrap();
    let messages: Vec<serde_json::Value> = BufReader::new(stream)
        .lines()
        .map_while(Result::ok)
        .map(|line| serde_json::from_str(&line).unwrap())
        .collect();
    let reset: Vec<_> = messages.iter().filter(|m| m["event"] == "RESET").collect();
    assert_eq!(reset.len(), 1, "{messages:?}");
    assert_eq!(
        reset[0]["data"],
        json!({"guest": true, "reason": "guest-reset"})
    );
    let status = vm.wait(Duration::from_secs(30));
    assert_eq!(
        status.code(),
        Some(SECOND_BOOT_OK),
        "stdout:\n{}\nstderr:\n{}",
        vm.stdout.text(),
        vm.stderr.text()
    );
}

/// QMP `system_reset` reboots the embedded guest: banner and prompt again,
/// and the shell works.
#[test]
fn qmp_system_reset_reboots_the_guest_to_a_working_shell() {
    require_kvm();
    let socket = scratch_path("vmm-reset-host.sock");
    let mut command = Command::new(vmm_binary());
    command
        .arg("--qmp")
        .arg(format!("unix:{}", socket.display()))
        .args(["--timeout", "60"]);
    let mut vm = Machine::spawn(command);
    vm.stdout.expect(boot::PROMPT, Duration::from_secs(20));
    let mut qmp = Qmp::connect(&socket, Duration::from_secs(10));
    qmp.type_text("echo before\n");
    vm.stdout.expect("\r\nbefore\r\n", Duration::from_secs(10));
    let banners = vm.stdout.text().matches(boot::BANNER).count();
    assert_eq!(banners, 1);

    let started = Instant::now();
    assert_eq!(qmp.execute("system_reset", None), Ok(json!({})));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = vm.stdout.text();
        if text.matches(boot::BANNER).count() == 2
            && text
                .rsplit(boot::BANNER)
                .next()
                .unwrap()
                .contains(boot::PROMPT)
        {
            break;
        }
        assert!(Instant::now() < deadline, "no second prompt:\n{text}");
        std::thread::sleep(Duration::from_millis(1));
    }
    eprintln!("system_reset to prompt: {:?}", started.elapsed());
    let reset = qmp.events.iter().find(|e| e["event"] == "RESET");
    assert_eq!(
        reset.map(|e| &e["data"]),
        Some(&json!({"guest": false, "reason": "host-qmp-system-reset"})),
        "{:?}",
        qmp.events
    );
    qmp.type_text("echo after reset\n");
    vm.stdout
        .expect("\r\nafter reset\r\n", Duration::from_secs(10));
    qmp.type_text("exit 4\n");
    let status = vm.wait(Duration::from_secs(20));
    let stderr = vm.stderr.text();
    assert_eq!(status.code(), Some(4), "stderr:\n{stderr}");
    assert!(stderr.contains("vmm: system reset (QMP)\n"), "{stderr}");
}
