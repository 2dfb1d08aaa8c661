//! System packages the tests need: etcd (the distributed registry's store, started by tests
//! on loopback) and protoc (etcd-client's build). Installed from Debian when missing; a
//! missing one that cannot be installed fails the run.

use std::process::Command;

use anyhow::{Context, bail};

use crate::run;

/// A program: (its name, its Debian package, the version prefix its `--version` prints).
type Need = (&'static str, &'static str, &'static str);

const ETCD: Need = ("etcd", "etcd-server", "etcd Version: 3.");
const PROTOC: Need = ("protoc", "protobuf-compiler", "libprotoc 3.");

/// What the tests need: etcd and protoc.
pub(crate) fn install() -> anyhow::Result<()> {
    ensure(&[ETCD, PROTOC])
}

/// What building needs: protoc (etcd-client compiles etcd's protocol at build time).
pub(crate) fn install_build() -> anyhow::Result<()> {
    ensure(&[PROTOC])
}

fn ensure(needed: &[Need]) -> anyhow::Result<()> {
    let missing: Vec<&str> = needed
        .iter()
        .filter(|(program, ..)| version(program).is_none())
        .map(|(_, package, _)| *package)
        .collect();
    if !missing.is_empty() {
        apt_install(&missing)?;
    }
    for (program, package, expected) in needed {
        match version(program) {
            Some(v) if v.starts_with(expected) => {}
            Some(v) => bail!(
                "{program} prints `{v}`, but the tests need `{expected}…`: install Debian's {package}"
            ),
            None => bail!(
                "{program} is still missing after installing {package}: install it by hand (apt-get install {package})"
            ),
        }
    }
    Ok(())
}

fn version(program: &str) -> Option<String> {
    let out = Command::new(program).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    out.status
        .success()
        .then(|| text.lines().next().unwrap_or_default().trim().to_owned())
}

fn apt_install(packages: &[&str]) -> anyhow::Result<()> {
    // Root installs directly; anyone else through sudo, without a prompt (CI has no stdin).
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    let apt = |args: &[&str]| {
        let mut cmd = if is_root {
            Command::new("apt-get")
        } else {
            let mut sudo = Command::new("sudo");
            sudo.args(["-n", "apt-get"]);
            sudo
        };
        cmd.env("DEBIAN_FRONTEND", "noninteractive").args(args);
        cmd
    };
    let mut install = apt(&["install", "-y", "--no-install-recommends"]);
    install.args(packages);
    if run(&mut install).is_err() {
        run(&mut apt(&["update"])).context("apt-get update failed")?;
        let mut again = apt(&["install", "-y", "--no-install-recommends"]);
        again.args(packages);
        run(&mut again).with_context(|| {
            format!(
                "cannot install {}: install them by hand",
                packages.join(" ")
            )
        })?;
    }
    Ok(())
}
