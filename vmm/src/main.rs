//! `vmm`: boots the embedded asyncos guest (or any PVH kernel) on KVM.
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::thread;
use std::time::Duration;

use clap::Parser;
use shared::{exit, status};
use vmm::input::ScriptFailure;
use vmm::record::{ExitRecord, StatsRecord, StdoutCounters};
use vmm::sandbox;
use vmm::stdout_sink::StdoutSink;
use vmm::vm::boot::{read_kernel, Image};
use vmm::vm::memory;
use vmm::vm::{HostStop, MachineEvent, ResetCause};
use vmm::{ExitReason, Vm, VmConfig};

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
       --timeout or --qmp value, a --serial file or socket that cannot be opened
  2    command-line usage error (unknown flag, missing or malformed value)
  124  --timeout fired
  125  the guest crashed (triple fault, KVM internal error, failed entry)
  126  a keystroke script failed: an expect timed out, or a script line was
       still pending when the machine stopped
  159  a VMM thread made a system call its seccomp filter forbids (the
       message names the thread and the call; --no-seccomp turns the filter off)";

/// `vmm keys --help`'s closing text: its exit statuses.
const KEYS_AFTER_HELP: &str = "\
Exit statuses:
  0    every script line is done (the machine runs on)
  1    bad option or script, no QMP server or serial output at the path,
       a greeting that is not QEMU's, a QMP error reply
  2    command-line usage error (unknown flag, missing or malformed value)
  126  an expect timed out, or a script line was still pending when the
       machine stopped (QMP SHUTDOWN, QMP or serial socket closed) or
       --timeout expired";

/// Boots a PVH kernel (by default the embedded asyncos guest) on KVM with
/// userspace-emulated PC devices; the guest's COM1 is on stdout.
#[derive(Parser, Debug)]
#[command(version, about, after_help = AFTER_HELP)]
// `vmm [FLAGS]` boots as before; `vmm keys ...` is the subcommand, whose
// flags (`--qmp`, `--timeout`) are its own, not the VMM's.
#[command(args_conflicts_with_subcommands = true, disable_help_subcommand = true)]
struct Cli {
    /// A subcommand instead of booting.
    #[command(subcommand)]
    command: Option<Subcommand>,

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
    /// to stderr; `--stats=json` prints them as one JSON object.
    #[arg(long, value_name = "FORMAT", num_args = 0..=1, require_equals = true,
          default_missing_value = "text")]
    stats: Option<StatsFormat>,

    /// When the VMM stops, write one JSON object to PATH: why it stopped,
    /// the guest's exit value, the failing script line, run time and the
    /// --stats counters.
    #[arg(long, value_name = "PATH")]
    exit_record: Option<PathBuf>,

    /// Exit (status 0) when the guest asks for a reset instead of rebooting
    /// it, like QEMU's -no-reboot.
    #[arg(long)]
    no_reboot: bool,

    /// Log every device access (trace level; RUST_LOG works too).
    #[arg(long)]
    trace: bool,

    /// Run without the seccomp filters that confine each VMM thread to the
    /// system calls it needs (on by default).
    #[arg(long)]
    no_seccomp: bool,

    /// Test the filter: the vCPU thread makes a forbidden call (socket)
    /// once confined, which must end the VMM with status 159.
    #[arg(long, hide = true)]
    seccomp_self_test: bool,

    /// Write the embedded guest kernel ELF to PATH (`-`: stdout) and exit.
    #[arg(long, value_name = "PATH")]
    export_guest: Option<PathBuf>,

    /// Where COM1 is connected: stdio (stdout), file:PATH (output to a
    /// file), unix:PATH (a socket the VMM listens on, both directions, as
    /// QEMU's -serial unix:PATH,server=on,wait=off) or none.
    #[arg(
        long,
        value_name = "stdio|file:PATH|unix:PATH|none",
        default_value = "stdio"
    )]
    serial: vmm::serial_backend::SerialBackend,

    /// Keyboard input: --keys, --type, --qmp, --interactive.
    #[command(flatten)]
    input: vmm::input::InputArgs,
}

/// `vmm`'s subcommands.
#[derive(clap::Subcommand, Debug)]
enum Subcommand {
    /// Run a keystroke script against any QMP machine (QEMU, or vmm --qmp):
    /// keys through QMP, expect on its serial output.
    #[command(after_help = KEYS_AFTER_HELP)]
    Keys(vmm::input::remote::KeysArgs),
}

/// How `--stats` prints the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum StatsFormat {
    /// Lines for people (`--stats`).
    Text,
    /// One JSON object (`--stats=json`), the same as the exit record's `stats`.
    Json,
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
    /// `--serial` could not be opened.
    #[error(transparent)]
    Serial(#[from] vmm::serial_backend::OpenError),
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
    /// The seccomp sandbox could not be set up.
    #[error(transparent)]
    Sandbox(#[from] vmm::sandbox::Error),
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

    if let Some(Subcommand::Keys(args)) = &cli.command {
        return match vmm::input::remote::run(args) {
            Ok(status) => ExitCode::from(status as u8),
            Err(error) => {
                eprintln!("vmm: {error}");
                ExitCode::from(status::SETUP_ERROR as u8)
            }
        };
    }
    // Created now, written at the end: once the machine runs, the main
    // thread's seccomp filter allows no `open`.
    let mut record_file = match &cli.exit_record {
        Some(path) => match std::fs::File::create(path) {
            Ok(file) => Some((path.clone(), file)),
            Err(error) => {
                eprintln!("vmm: --exit-record {}: {error}", path.display());
                return ExitCode::from(status::SETUP_ERROR as u8);
            }
        },
        None => None,
    };
    let (status, record) = match run(cli) {
        Ok((status, record)) => (status, record),
        Err(error) => {
            eprintln!("vmm: {error}");
            let record = ExitRecord::setup_error(status::SETUP_ERROR, error.to_string());
            (status::SETUP_ERROR, Some(record))
        }
    };
    if let (Some((path, file)), Some(record)) = (&mut record_file, record) {
        // The status stays the run's: a harness notices the missing record.
        if let Err(error) = file.write_all((record.to_json() + "\n").as_bytes()) {
            eprintln!(
                "vmm: cannot write the exit record {}: {error}",
                path.display()
            );
        }
    }
    ExitCode::from(status as u8)
}

/// Runs the command: the exit status and the exit record (none for
/// `--export-guest`), or a setup error.
fn run(cli: Cli) -> Result<(i32, Option<ExitRecord>), Error> {
    if let Some(path) = &cli.export_guest {
        let written = if path.as_os_str() == "-" {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(vmm::guest::ELF)
                .and_then(|()| stdout.flush())
        } else {
            std::fs::write(path, vmm::guest::ELF)
        };
        written.map_err(|error| Error::ExportGuest(path.clone(), error))?;
        return Ok((0, None));
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
    // Before any thread starts: each confines itself once set up.
    if !cli.no_seccomp {
        vmm::sandbox::enable()?;
    }
    if cli.seccomp_self_test {
        vmm::sandbox::request_self_test();
    }
    // Scripts are parsed and the QMP socket opened before the guest starts.
    let input = cli.input.prepare()?;
    let kernel = match &cli.kernel {
        Some(path) => {
            Image::from(read_kernel(path).map_err(|error| Error::ReadKernel(path.clone(), error))?)
        }
        None => Image::from_static(vmm::guest::ELF),
    };
    let initrd = match &cli.initrd {
        Some(path) => Some(Image::from(
            std::fs::read(path).map_err(|error| Error::ReadInitrd(path.clone(), error))?,
        )),
        None => None,
    };
    let kernel_name = cli
        .kernel
        .as_ref()
        .map_or("the embedded guest".into(), |p| p.display().to_string());
    let serial = cli.serial.open()?;
    let serial_sink = serial.sink.clone();
    let config = VmConfig {
        kernel,
        cmdline: cli.cmdline.clone(),
        initrd,
        cpu: cli.cpu.clone(),
        memory_mib,
        serial_to_stdout: serial.to_stdout,
        serial_sink: serial_sink.clone(),
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
                sandbox::confine_or_exit(sandbox::Role::Timeout);
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

    let machine: std::sync::Arc<dyn vmm::input::MachineControl> =
        std::sync::Arc::new(handle.clone());
    let serial_socket = serial.start(machine.clone())?;
    let input = input.start(machine)?;

    // Resets are reported on stderr as they happen. The thread ends with the
    // machine's last event, published when `run` returns; joining it then
    // makes sure every line is out before the exit.
    let machine_events = handle.subscribe();
    let reset_log = thread::Builder::new()
        .name("reset-log".into())
        .spawn(move || {
            sandbox::confine_or_exit(sandbox::Role::ResetLog);
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
    // (Only if COM1 went to stdout: starting the sink now would make a
    // thread, which the main thread's seccomp filter forbids.)
    let stdout = StdoutSink::stdout_if_started();
    if let Some(sink) = stdout {
        if !sink.flush(StdoutSink::EXIT_GRACE) {
            log::debug!(
                "stdout: {} bytes of COM1 output not written",
                sink.pending()
            );
        }
    }
    // The same for `--serial file:`/`unix:` output.
    if let Some(sink) = &serial_sink {
        if !sink.flush(StdoutSink::EXIT_GRACE) {
            log::debug!(
                "--serial: {} bytes of COM1 output not written",
                sink.pending()
            );
        }
    }
    if let Some(path) = &serial_socket {
        vmm::serial_backend::remove_socket(path);
    }
    let failure = input.vm_stopped(&report.exit);
    match &report.exit.reason {
        ExitReason::GuestExit(_) | ExitReason::Host(_) => {}
        reason => eprintln!("vmm: {reason}"),
    }
    if let Some(ScriptFailure::Pending(pending)) = &failure {
        eprintln!("vmm: {pending}");
    }
    let stdout_counters = stdout.map(|sink| StdoutCounters {
        dropped: sink.dropped(),
        unwritten: sink.pending() as u64,
    });
    let stats = StatsRecord::new(&report, stdout_counters.clone());
    match cli.stats {
        Some(StatsFormat::Text) => {
            eprintln!("{}", report.summary());
            if let Some(counters) = &stdout_counters {
                eprintln!(
                    "  COM1 to stdout: {} bytes dropped (queue full), {} unwritten at exit",
                    counters.dropped, counters.unwritten
                );
            }
        }
        Some(StatsFormat::Json) => eprintln!("{}", stats.to_json()),
        None => {}
    }
    if let Some(hint) = boot_failure_hint(cli.kernel.is_none(), &report.exit.reason) {
        eprintln!("vmm: {hint}");
    }
    let status = match failure {
        Some(_) => status::EXPECT_FAILED,
        None => report.exit.status,
    };
    let script = failure.as_ref().map(ScriptFailure::script_line);
    let record = ExitRecord::from_run(&report.exit, status, script, stats);
    Ok((status, Some(record)))
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
