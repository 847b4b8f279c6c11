//! `vmm`: boots the embedded asyncos guest (or any PVH kernel) on KVM.
use std::borrow::Cow;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::thread;
use std::time::Duration;

use clap::Parser;
use shared::{exit, status};
use vmm::stdout_sink::StdoutSink;
use vmm::vm::memory;
use vmm::vm::{HostStop, MachineEvent, ResetCause};
use vmm::{ExitReason, Vm, VmConfig};

/// The guest kernel built from `guest/` and embedded at build time.
static GUEST_ELF: &[u8] = include_bytes!(env!("GUEST_ELF_PATH"));

/// `--help`'s closing text: the terminal's Ctrl+A keys and every exit status.
const AFTER_HELP: &str = "\
Keys in interactive mode (--interactive, the default when stdin is a terminal):
  Ctrl+A X       quit the VMM (status 0)
  Ctrl+A H       print these keys
  Ctrl+A Ctrl+A  send Ctrl+A to the guest

Exit statuses:
  V    the guest wrote V to the debug-exit port 0xF4 (low 8 bits); the embedded
       guest: 0 exit, 16 tests passed, 17 a test failed, 18 panic,
       19 CPU exception, 20 boot failure (e.g. too little --memory)
  0    also: --no-reboot and the guest asked for a reset; Ctrl+A X; QMP quit
  1    setup error: no KVM, unreadable or bad kernel, bad script, bad --memory,
       --timeout or --qmp value
  2    command-line usage error (unknown flag, missing or malformed value)
  124  --timeout fired
  125  the guest crashed (triple fault, KVM internal error, failed entry)
  126  a keystroke script failed: an expect timed out, or a script line was
       still pending when the machine stopped";

/// Boots a PVH kernel (by default the embedded asyncos guest) on KVM with
/// userspace-emulated PC devices; the guest's COM1 is on stdout.
#[derive(Parser, Debug)]
#[command(version, about, after_help = AFTER_HELP)]
struct Cli {
    /// Boot this PVH ELF kernel instead of the embedded guest.
    #[arg(long, value_name = "PATH")]
    kernel: Option<PathBuf>,

    /// Kernel command line.
    #[arg(long, value_name = "STR", default_value = "")]
    cmdline: String,

    /// CPU model: host (what KVM supports) or baseline (after QEMU's qemu64),
    /// then feature toggles, e.g. host,-xsave,-cx16.
    #[arg(long, value_name = "MODEL", default_value = "host")]
    cpu: vmm::vm::CpuModel,

    /// Initial RAM disk for the kernel (a Linux initramfs), passed as the
    /// PVH boot module at the top of RAM, like QEMU's -initrd.
    #[arg(long, value_name = "PATH")]
    initrd: Option<PathBuf>,

    /// Guest RAM in MiB, 3 to 3072 (the embedded guest needs 3).
    #[arg(long, value_name = "MiB", default_value_t = memory::DEFAULT_MIB.into(),
          allow_negative_numbers = true)]
    memory: i64,

    /// Stop the VM after SECS seconds (exit status 124, as coreutils timeout).
    #[arg(long, value_name = "SECS", allow_negative_numbers = true)]
    timeout: Option<f64>,

    /// On exit, print exit counts, injected interrupts, resets and run time
    /// to stderr.
    #[arg(long)]
    stats: bool,

    /// Exit (status 0) when the guest asks for a reset instead of rebooting
    /// it, like QEMU's -no-reboot.
    #[arg(long)]
    no_reboot: bool,

    /// Log every device access (trace level; RUST_LOG works too).
    #[arg(long)]
    trace: bool,

    /// Write the embedded guest kernel ELF to PATH (`-`: stdout) and exit.
    #[arg(long, value_name = "PATH")]
    export_guest: Option<PathBuf>,

    /// Keyboard input: --keys, --type, --qmp, --interactive.
    #[command(flatten)]
    input: vmm::input::InputArgs,
}

/// Why the VMM could not run the guest: one line on stderr after `vmm: `,
/// exit status [`status::SETUP_ERROR`].
#[derive(Debug, thiserror::Error)]
enum Error {
    /// `--export-guest` could not write the file (or stdout, for `-`).
    #[error("cannot write {path}: {1}", path = .0.display())]
    ExportGuest(PathBuf, #[source] std::io::Error),
    /// `--timeout` is not a positive number of seconds.
    #[error("--timeout {0}: expected a positive number of seconds")]
    Timeout(f64),
    /// `--memory` is out of range (negative numbers too reach this message,
    /// not the argument parser's).
    #[error("--memory: {0} is out of range, not in {min}..={max} MiB", min = memory::MIN_MIB, max = memory::MAX_MIB)]
    Memory(i64),
    /// The input sources could not be set up or started.
    #[error(transparent)]
    Input(#[from] vmm::input::InputError),
    /// `--kernel` could not be read.
    #[error("cannot read kernel {path}: {1}", path = .0.display())]
    ReadKernel(PathBuf, #[source] std::io::Error),
    /// `--initrd` could not be read.
    #[error("cannot read initrd {path}: {1}", path = .0.display())]
    ReadInitrd(PathBuf, #[source] std::io::Error),
    /// The kernel (named as in messages) does not boot.
    #[error("{0}: {1}")]
    Boot(String, #[source] vmm::vm::BootError),
    /// The machine could not be built or run.
    #[error(transparent)]
    Vm(#[from] vmm::vm::Error),
    /// A host-side thread could not be created.
    #[error("cannot start the {0} thread: {1}")]
    Spawn(&'static str, #[source] std::io::Error),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut logger =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"));
    if cli.trace {
        logger.filter_module("vmm", log::LevelFilter::Trace);
    }
    logger.target(env_logger::Target::Stderr).init();

    match run(cli) {
        Ok(status) => ExitCode::from(status as u8),
        Err(error) => {
            eprintln!("vmm: {error}");
            ExitCode::from(status::SETUP_ERROR as u8)
        }
    }
}

/// Runs the command: the exit status, or a setup error.
fn run(cli: Cli) -> Result<i32, Error> {
    if let Some(path) = &cli.export_guest {
        let written = if path.as_os_str() == "-" {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(GUEST_ELF).and_then(|()| stdout.flush())
        } else {
            std::fs::write(path, GUEST_ELF)
        };
        written.map_err(|error| Error::ExportGuest(path.clone(), error))?;
        return Ok(0);
    }
    let timeout = match cli.timeout {
        Some(secs) => Some(
            Duration::try_from_secs_f64(secs)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or(Error::Timeout(secs))?,
        ),
        None => None,
    };
    let memory_mib = u32::try_from(cli.memory)
        .ok()
        .filter(|mib| (memory::MIN_MIB..=memory::MAX_MIB).contains(mib))
        .ok_or(Error::Memory(cli.memory))?;
    // Scripts are parsed and the QMP socket opened before the guest starts.
    let input = cli.input.prepare()?;
    let kernel = match &cli.kernel {
        Some(path) => {
            Cow::Owned(std::fs::read(path).map_err(|error| Error::ReadKernel(path.clone(), error))?)
        }
        None => Cow::Borrowed(GUEST_ELF),
    };
    let initrd = match &cli.initrd {
        Some(path) => Some(Cow::Owned(
            std::fs::read(path).map_err(|error| Error::ReadInitrd(path.clone(), error))?,
        )),
        None => None,
    };
    let kernel_name = cli
        .kernel
        .as_ref()
        .map_or("the embedded guest".into(), |p| p.display().to_string());
    let config = VmConfig {
        kernel,
        cmdline: cli.cmdline.clone(),
        initrd,
        cpu: cli.cpu.clone(),
        memory_mib,
        serial_to_stdout: true,
        no_reboot: cli.no_reboot,
    };
    let vm = Vm::new(&config).map_err(|error| match error {
        vmm::vm::Error::Boot(error) => Error::Boot(kernel_name, error),
        error => Error::Vm(error),
    })?;
    let handle = vm.handle();

    // Host-side drivers of the VM run on their own threads with a handle.
    if let Some(timeout) = timeout {
        let handle = handle.clone();
        thread::Builder::new()
            .name("timeout".into())
            .spawn(move || {
                if handle.wait_exit_timeout(timeout).is_none() {
                    eprintln!(
                        "vmm: timeout after {:.3} s, stopping the guest",
                        timeout.as_secs_f64()
                    );
                    handle.shutdown_by(status::TIMEOUT, HostStop::Timeout);
                }
            })
            .map_err(|error| Error::Spawn("timeout", error))?;
    }

    let input = input.start(std::sync::Arc::new(handle.clone()))?;

    // Resets are reported on stderr as they happen. The thread ends with the
    // machine's last event, published when `run` returns; joining it then
    // makes sure every line is out before the exit.
    let machine_events = handle.subscribe();
    let reset_log = thread::Builder::new()
        .name("reset-log".into())
        .spawn(move || {
            for event in machine_events {
                match event {
                    MachineEvent::Reset(ResetCause::Guest) => eprintln!("vmm: guest reset"),
                    MachineEvent::Reset(ResetCause::Host) => {
                        eprintln!("vmm: system reset (QMP)")
                    }
                    MachineEvent::Stop | MachineEvent::Resume | MachineEvent::Shutdown(_) => {}
                }
            }
        })
        .map_err(|error| Error::Spawn("reset-log", error))?;

    let report = vm.run()?;
    if reset_log.join().is_err() {
        log::warn!("the reset-log thread panicked");
    }
    // COM1 output still queued for stdout goes out before the exit, unless
    // stdout is stuck (its writer makes no progress for a second).
    let stdout = StdoutSink::stdout();
    if let Some(sink) = stdout {
        if !sink.flush(StdoutSink::EXIT_GRACE) {
            log::debug!(
                "stdout: {} bytes of COM1 output not written",
                sink.pending()
            );
        }
    }
    let pending = input.vm_stopped(&report.exit);
    match &report.exit.reason {
        ExitReason::GuestExit(_) | ExitReason::Host(_) => {}
        reason => eprintln!("vmm: {reason}"),
    }
    if let Some(pending) = &pending {
        eprintln!("vmm: {pending}");
    }
    if cli.stats {
        eprintln!("{}", report.summary());
        if let Some(sink) = stdout {
            eprintln!(
                "  COM1 to stdout: {} bytes dropped (queue full), {} unwritten at exit",
                sink.dropped(),
                sink.pending()
            );
        }
    }
    if let Some(hint) = boot_failure_hint(cli.kernel.is_none(), &report.exit.reason) {
        eprintln!("vmm: {hint}");
    }
    Ok(match pending {
        Some(_) => status::EXPECT_FAILED,
        None => report.exit.status,
    })
}

/// The line the VMM adds when the embedded guest stops with
/// [`shared::exit::BOOT_FAILURE`] (its own message on COM1 says why); other
/// kernels' exit values mean what they mean to them.
fn boot_failure_hint(embedded: bool, reason: &ExitReason) -> Option<String> {
    match reason {
        ExitReason::GuestExit(value)
            if embedded && (*value & 0xff) == u32::from(exit::BOOT_FAILURE) =>
        {
            Some(format!(
                "the guest could not boot (status {}, BOOT_FAILURE): see its message above; \
                 the embedded guest needs --memory {} or more",
                exit::BOOT_FAILURE,
                memory::MIN_MIB
            ))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_failure_hint_only_for_the_embedded_guest() {
        let failed = ExitReason::GuestExit(exit::BOOT_FAILURE.into());
        let hint = boot_failure_hint(true, &failed).unwrap();
        assert_eq!(
            hint,
            "the guest could not boot (status 20, BOOT_FAILURE): see its message above; \
             the embedded guest needs --memory 3 or more"
        );
        assert_eq!(boot_failure_hint(false, &failed), None);
        assert_eq!(boot_failure_hint(true, &ExitReason::GuestExit(0)), None);
    }
}
