//! `vmm`: boots the embedded asyncos guest (or any PVH kernel) on KVM.
use std::borrow::Cow;
use std::path::PathBuf;
use std::process::ExitCode;
use std::thread;
use std::time::Duration;

use clap::Parser;
use shared::status;
use vmm::stdout_sink::StdoutSink;
use vmm::vm::memory;
use vmm::{ExitReason, Vm, VmConfig};

/// The guest kernel built from `guest/` and embedded at build time.
static GUEST_ELF: &[u8] = include_bytes!(env!("GUEST_ELF_PATH"));

/// Boots a PVH kernel (by default the embedded asyncos guest) on KVM with
/// userspace-emulated PC devices; the guest's COM1 is on stdout.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// Boot this PVH ELF kernel instead of the embedded guest.
    #[arg(long, value_name = "PATH")]
    kernel: Option<PathBuf>,

    /// Kernel command line.
    #[arg(long, value_name = "STR", default_value = "")]
    cmdline: String,

    /// Guest RAM in MiB.
    #[arg(long, value_name = "MiB", default_value_t = memory::DEFAULT_MIB)]
    memory: u32,

    /// Stop the VM after SECS seconds (exit status 124, as coreutils timeout).
    #[arg(long, value_name = "SECS")]
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

    /// Write the embedded guest kernel ELF to PATH and exit.
    #[arg(long, value_name = "PATH")]
    export_guest: Option<PathBuf>,

    /// Keyboard input: --keys, --type, --qmp, --interactive.
    #[command(flatten)]
    input: vmm::input::InputArgs,
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
        Err(message) => {
            eprintln!("vmm: {message}");
            ExitCode::from(status::SETUP_ERROR as u8)
        }
    }
}

/// Runs the command; `Err` is a one-line setup error.
fn run(cli: Cli) -> Result<i32, String> {
    if let Some(path) = &cli.export_guest {
        std::fs::write(path, GUEST_ELF)
            .map_err(|error| format!("cannot write {}: {error}", path.display()))?;
        return Ok(0);
    }
    let timeout = match cli.timeout {
        Some(secs) => Some(
            Duration::try_from_secs_f64(secs)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    format!("--timeout {secs}: expected a positive number of seconds")
                })?,
        ),
        None => None,
    };
    // Scripts are parsed and the QMP socket opened before the guest starts.
    let input = cli.input.prepare().map_err(|error| error.to_string())?;
    let kernel = match &cli.kernel {
        Some(path) => Cow::Owned(
            std::fs::read(path)
                .map_err(|error| format!("cannot read kernel {}: {error}", path.display()))?,
        ),
        None => Cow::Borrowed(GUEST_ELF),
    };
    let kernel_name = cli
        .kernel
        .as_ref()
        .map_or("the embedded guest".into(), |p| p.display().to_string());
    let config = VmConfig {
        kernel,
        cmdline: cli.cmdline.clone(),
        memory_mib: cli.memory,
        serial_to_stdout: true,
        no_reboot: cli.no_reboot,
    };
    let vm = Vm::new(&config).map_err(|error| match error {
        vmm::vm::Error::Boot(error) => format!("{kernel_name}: {error}"),
        error => error.to_string(),
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
                    handle.shutdown(status::TIMEOUT);
                }
            })
            .map_err(|error| format!("cannot start the timeout thread: {error}"))?;
    }

    let input = input
        .start(std::sync::Arc::new(handle.clone()))
        .map_err(|error| error.to_string())?;

    let notify_qmp = input.reset_notifier();
    handle.on_reset(move |cause| {
        match cause {
            vmm::vm::ResetCause::Guest => eprintln!("vmm: guest reset"),
            vmm::vm::ResetCause::Host => eprintln!("vmm: system reset (QMP)"),
        }
        notify_qmp(cause);
    });

    let report = vm.run().map_err(|error| error.to_string())?;
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
    input.vm_stopped(&report.exit.reason);
    match &report.exit.reason {
        ExitReason::GuestExit(_) | ExitReason::Host => {}
        reason => eprintln!("vmm: {reason}"),
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
    Ok(report.exit.status)
}
