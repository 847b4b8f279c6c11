//! Builds the guest kernel (`../guest`, feature `kernel`, profile `kernel`)
//! for `x86_64-unknown-none` and embeds it: `GUEST_ELF_PATH` names the ELF
//! for `include_bytes!`.
//!
//! `VMM_GUEST_ELF=/path/to/elf` embeds a prebuilt kernel instead.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{exit, Command};

const GUEST_TARGET: &str = "x86_64-unknown-none";
/// The root workspace's profile for the kernel (see its Cargo.toml).
const GUEST_PROFILE: &str = "kernel";

fn main() {
    println!("cargo:rerun-if-env-changed=VMM_GUEST_ELF");
    if let Some(prebuilt) = env::var_os("VMM_GUEST_ELF") {
        let path = PathBuf::from(prebuilt);
        println!("cargo:rerun-if-changed={}", path.display());
        println!("cargo:rustc-env=GUEST_ELF_PATH={}", path.display());
        return;
    }

    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    if !target_installed(&rustc) {
        eprintln!(
            "error: the Rust target {GUEST_TARGET} is not installed; \
             add it with: rustup target add {GUEST_TARGET}"
        );
        exit(1);
    }

    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap();
    let guest_dir = root.join("guest");
    for watched in ["src", "Cargo.toml", "build.rs", "linker.ld", ".cargo"] {
        println!(
            "cargo:rerun-if-changed={}",
            guest_dir.join(watched).display()
        );
    }
    for watched in ["src", "Cargo.toml"] {
        println!(
            "cargo:rerun-if-changed={}",
            root.join("shared").join(watched).display()
        );
    }
    // The workspace's lock file and the `kernel` profile.
    for watched in ["Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }

    // The guest gets its own target directory so that the host build's lock
    // and flags never touch it.
    let target_dir = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("guest");

    let mut command = Command::new(&cargo);
    command
        .current_dir(&guest_dir)
        .args(["build", "--locked", "--target", GUEST_TARGET])
        .args(["--profile", GUEST_PROFILE, "--features", "kernel"])
        .arg("--target-dir")
        .arg(&target_dir);
    // A clean environment: nothing of the host build (flags, target,
    // jobserver, profile) may leak into the kernel build.
    for (key, _) in env::vars_os() {
        let key = key.to_string_lossy();
        let leaks = (key.starts_with("CARGO") && key != "CARGO_HOME")
            || key.starts_with("RUSTC")
            || key == "RUSTFLAGS"
            || key == "RUSTDOCFLAGS"
            || key == "TARGET"
            || key == "HOST"
            || key == "OPT_LEVEL"
            || key == "PROFILE"
            || key == "DEBUG"
            || key == "OUT_DIR"
            || key == "NUM_JOBS";
        if leaks {
            command.env_remove(key.as_ref());
        }
    }
    let status = command.status().unwrap_or_else(|error| {
        eprintln!("error: cannot run {cargo} to build the guest kernel: {error}");
        exit(1);
    });
    if !status.success() {
        eprintln!(
            "error: building the guest kernel in {} failed",
            guest_dir.display()
        );
        exit(1);
    }
    let elf = target_dir
        .join(GUEST_TARGET)
        .join(GUEST_PROFILE)
        .join("guest");
    println!("cargo:rustc-env=GUEST_ELF_PATH={}", elf.display());
}

/// Whether the standard library for the guest target is in the sysroot.
fn target_installed(rustc: &str) -> bool {
    let Ok(output) = Command::new(rustc).args(["--print", "sysroot"]).output() else {
        return true; // let cargo report the real problem
    };
    let sysroot = String::from_utf8_lossy(&output.stdout).trim().to_string();
    Path::new(&sysroot)
        .join("lib/rustlib")
        .join(GUEST_TARGET)
        .join("lib")
        .is_dir()
}
