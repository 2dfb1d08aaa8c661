//! Links the `toolmesh` binary with packed relative relocations (DT_RELR) where the
//! toolchain and C library support them: the position-independent binary's 2.5 MiB
//! relocation table, read whole at every start and resident from then on, becomes
//! ~40 KiB (docs/benchmarks.md, the gateway's memory).

use std::{io::Write, process::Command, process::Stdio};

const FLAG: &str = "-Wl,-z,pack-relative-relocs";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let target_gnu_linux = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu");
    if target_gnu_linux && links_with_relr() {
        println!("cargo:rustc-link-arg-bins={FLAG}");
    }
}

/// Whether `cc` links a program with the flag (binutils >= 2.38 and glibc >= 2.36).
fn links_with_relr() -> bool {
    let out = std::env::var("OUT_DIR").unwrap_or_else(|_| ".".to_owned());
    let program = std::path::Path::new(&out).join("relr-probe");
    let Ok(mut cc) = Command::new("cc")
        .args(["-x", "c", "-", FLAG, "-o"])
        .arg(&program)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    else {
        return false;
    };
    let written = cc
        .stdin
        .take()
        .is_some_and(|mut stdin| stdin.write_all(b"int main(void) { return 0; }\n").is_ok());
    let linked = cc.wait().is_ok_and(|status| status.success());
    written && linked && Command::new(&program).status().is_ok_and(|s| s.success())
}
