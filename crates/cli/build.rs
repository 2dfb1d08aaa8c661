//! Link settings of the `toolmesh` binary that keep its resident memory small
//! (docs/benchmarks.md, the gateway's memory):
//! - packed relative relocations (DT_RELR) where the toolchain and C library support
//!   them: the position-independent binary's 2.5 MiB relocation table, read whole at
//!   every start and resident from then on, becomes ~40 KiB;
//! - in release builds, the functions a serving gateway runs, then those only start-up runs,
//!   laid out together (`link/text-order.txt`, made by `link/text-order.py`): the kernel
//!   maps code in 64 KiB windows around each page touched, so scattered hot functions
//!   kept ~19 MiB of the 30 MiB of code resident. The list's names become section
//!   patterns of a linker script (`link/script.rs`) with their crate hashes left open: the
//!   hashes change with the features a build unifies (`cargo build -p toolmesh-cli`
//!   and `cargo bench` differ), LTO's numeric suffixes with any code change;
//! - in release builds, a position-dependent executable (`-no-pie`): a position-independent
//!   one has the loader write every pointer of its 1.9 MiB of read-only data (vtables,
//!   string tables) at start, which keeps all of it resident; linked at a fixed address,
//!   those pages are read from the file only where used. The cost is the executable's
//!   own address randomization (libraries, heap and stacks keep theirs):
//!   `TOOLMESH_LINK_PIE=1` at build time keeps it.

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

#[path = "link/script.rs"]
mod script;

const RELR: &str = "-Wl,-z,pack-relative-relocs";
const ORDER_FILE: &str = "link/text-order.txt";
const NO_PIE: &str = "-no-pie";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed={ORDER_FILE}");
    println!("cargo:rerun-if-changed=link/script.rs");
    println!("cargo:rerun-if-env-changed=TOOLMESH_LINK_PIE");
    println!("cargo:rustc-check-cfg=cfg(toolmesh_text_order)");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_else(|_| ".".to_owned()));
    let target_gnu_linux = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu");
    if target_gnu_linux && cc_links_with_relr(&out) {
        println!("cargo:rustc-link-arg-bins={RELR}");
    }
    let release = std::env::var("PROFILE").as_deref() == Ok("release");
    if release && target_gnu_linux {
        let order = Path::new(env!("CARGO_MANIFEST_DIR")).join(ORDER_FILE);
        let ld = out.join("text-order.ld");
        let written = std::fs::read_to_string(&order)
            .and_then(|list| std::fs::write(&ld, script::linker_script(&list)));
        let flag = format!("-Wl,-T,{}", ld.display());
        if written.is_ok() && rustc_links_with(&out, std::slice::from_ref(&flag)) {
            println!("cargo:rustc-link-arg-bins={flag}");
            // `memory::release_startup_text` may trust the markers' order.
            println!("cargo:rustc-cfg=toolmesh_text_order");
        }
        let keep_pie = std::env::var_os("TOOLMESH_LINK_PIE").is_some_and(|v| v != "0");
        if !keep_pie && rustc_links_with(&out, &[NO_PIE.to_owned()]) {
            println!("cargo:rustc-link-arg-bins={NO_PIE}");
        }
    }
}

/// Whether `cc` links a program with RELR (binutils >= 2.38 and glibc >= 2.36).
fn cc_links_with_relr(out: &Path) -> bool {
    let program = out.join("relr-probe");
    let mut cc = Command::new("cc");
    cc.args(["-x", "c", "-", RELR, "-o"]).arg(&program);
    succeeds(&mut cc, b"int main(void) { return 0; }\n")
        && Command::new(&program).status().is_ok_and(|s| s.success())
}

/// Whether rustc, with this build's flags, links a program with `flags` (the symbol
/// ordering needs lld or mold, rustc's default linker here; GNU ld refuses it).
fn rustc_links_with(out: &Path, flags: &[String]) -> bool {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let program = out.join("order-probe");
    let mut command = Command::new(rustc);
    command.args([
        "-",
        "--crate-name",
        "order_probe",
        "--crate-type",
        "bin",
        "-o",
    ]);
    command.arg(&program);
    if let Ok(target) = std::env::var("TARGET") {
        command.args(["--target", &target]);
    }
    let rustflags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    command.args(rustflags.split('\x1f').filter(|f| !f.is_empty()));
    for flag in flags {
        command.arg(format!("-Clink-arg={flag}"));
    }
    succeeds(&mut command, b"fn main() {}\n")
}

/// Whether `command` succeeds given `source` on its standard input (output discarded).
fn succeeds(command: &mut Command, source: &[u8]) -> bool {
    let Ok(mut child) = command
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    else {
        return false;
    };
    let written = child
        .stdin
        .take()
        .is_some_and(|mut stdin| stdin.write_all(source).is_ok());
    written && child.wait().is_ok_and(|status| status.success())
}
