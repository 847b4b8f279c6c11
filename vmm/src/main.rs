//! `vmm`: boots the embedded asyncos guest (or any PVH kernel) on KVM.
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// The guest kernel built from `guest/` and embedded at build time.
static GUEST_ELF: &[u8] = include_bytes!(env!("GUEST_ELF_PATH"));

#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// Write the embedded guest kernel ELF to PATH and exit.
    #[arg(long, value_name = "PATH")]
    export_guest: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(path) = cli.export_guest {
        if let Err(error) = std::fs::write(&path, GUEST_ELF) {
            eprintln!("vmm: cannot write {}: {error}", path.display());
            return ExitCode::from(1);
        }
        return ExitCode::SUCCESS;
    }
    eprintln!("vmm: booting guests is not implemented yet");
    ExitCode::from(1)
}
