//! Builds a workspace crate as a `wasm32-wasip2` component from a build script.
//!
//! Shared by the host's build script (the standard plugin) and the end-to-end
//! tests' build script (the misbehaving test plugin). It follows wasmtime's
//! `crates/test-programs/artifacts/build.rs`: a nested cargo with its own target
//! directory (so it never waits on the outer build's lock), without the outer
//! build's flags, and a `rerun-if-changed` for every source file the compiler read.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub const TARGET: &str = "wasm32-wasip2";
pub const PROFILE: &str = "plugin";

/// Builds `package` (a library crate at `<workspace>/<dir>`) as a component and
/// returns the path of the `.wasm` file.
pub fn build_component(package: &str) -> PathBuf {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir
        .parent()
        .expect("crates live one level below the workspace root");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    // OUT_DIR is <target>/<profile>/build/<crate>-<hash>/out: share one nested
    // target directory per outer profile, so `cargo build` and `cargo test` reuse it.
    let target_dir = out_dir
        .ancestors()
        .nth(3)
        .unwrap_or(&out_dir)
        .join("wasm-plugins");

    ensure_target();
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .args([
            "rustc",
            "--package",
            package,
            "--lib",
            "--target",
            TARGET,
            "--profile",
            PROFILE,
        ])
        .args(["--crate-type", "cdylib"])
        .env("CARGO_TARGET_DIR", &target_dir)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("RUSTC_WORKSPACE_WRAPPER");
    let status = match cmd.status() {
        Ok(status) => status,
        Err(e) => fail(&format!("failed to run cargo to build {package}: {e}")),
    };
    if !status.success() {
        fail(&format!(
            "failed to build {package} for {TARGET} ({status}); the compiler's errors are above"
        ));
    }

    let artifact = package.replace('-', "_");
    let out = target_dir.join(TARGET).join(PROFILE);
    let wasm = out.join(format!("{artifact}.wasm"));
    if !wasm.exists() {
        fail(&format!(
            "the build of {package} produced no {}",
            wasm.display()
        ));
    }
    rerun_for_sources(&out.join(format!("{artifact}.d")));
    println!("cargo:rerun-if-changed={}", workspace.join("wit").display());
    println!(
        "cargo:rerun-if-changed={}",
        workspace.join("Cargo.lock").display()
    );
    // The `plugin` profile lives in the workspace manifest.
    println!(
        "cargo:rerun-if-changed={}",
        workspace.join("Cargo.toml").display()
    );
    wasm
}

/// Reads the compiler's dep-info file (`target: dep dep ...`) and asks cargo to
/// rerun the build script when any of those files changes.
fn rerun_for_sources(dep_info: &Path) {
    let Ok(text) = fs::read_to_string(dep_info) else {
        return;
    };
    for line in text.lines() {
        let Some((_, deps)) = line.split_once(": ") else {
            continue;
        };
        // Paths with spaces are escaped as `\ `.
        let deps = deps.replace("\\ ", "\u{0}");
        for dep in deps.split_whitespace() {
            let dep = dep.replace('\u{0}', " ");
            if !dep.contains("/.cargo/registry/") && !dep.contains("/.rustup/") {
                println!("cargo:rerun-if-changed={dep}");
            }
        }
    }
}

/// Makes sure the compiler cargo runs has the standard library for [`TARGET`].
///
/// rustup installs the targets named in `rust-toolchain.toml` only when it
/// installs the toolchain itself; a machine that already had 1.95.0 lacks
/// `wasm32-wasip2` (rustup 1.29). A new user must not meet that as a compiler
/// error, so the build adds the target for the toolchain cargo runs with.
fn ensure_target() {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let Some(sysroot) = sysroot else {
        // Without a sysroot we cannot tell; the nested build will say what is wrong.
        return;
    };
    if sysroot
        .join("lib/rustlib")
        .join(TARGET)
        .join("lib")
        .is_dir()
    {
        return;
    }
    // rustup names the toolchain it runs in RUSTUP_TOOLCHAIN; the sysroot's
    // folder name is the same name when cargo was started another way.
    let toolchain = env::var("RUSTUP_TOOLCHAIN").ok().or_else(|| {
        sysroot
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
    });
    let Some(toolchain) = toolchain else {
        fail(&format!(
            "the Rust standard library for {TARGET} is missing in {}; install it with \
             `rustup target add {TARGET}`",
            sysroot.display()
        ));
    };
    // rustup reports its progress on stderr; its stdout must not reach cargo,
    // which reads a build script's stdout as instructions.
    let added = Command::new("rustup")
        .args(["target", "add", TARGET, "--toolchain", &toolchain])
        .stdout(Stdio::null())
        .status();
    match added {
        Ok(status) if status.success() => println!(
            "cargo:warning=the {TARGET} target was missing for toolchain {toolchain}; \
             added it with `rustup target add {TARGET} --toolchain {toolchain}`"
        ),
        Ok(status) => fail(&format!(
            "`rustup target add {TARGET} --toolchain {toolchain}` failed ({status}); \
             run it by hand, then build again"
        )),
        Err(_) => fail(&format!(
            "the Rust standard library for {TARGET} is missing and rustup is not on PATH; \
             install the target for the compiler at {} (with rustup: \
             `rustup target add {TARGET}`), then build again",
            sysroot.display()
        )),
    }
}

/// Stops the build script with one sentence instead of a panic and backtrace.
fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(1);
}
