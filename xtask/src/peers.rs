//! Pinned real MCP servers for interop tests, installed once into `target/peers`:
//! npm packages from `tests/peers/package-lock.json` and a Python venv from
//! `tests/peers/requirements.lock.txt`. Never `npx -y`: offline it hangs.

use std::{fs, path::Path, path::PathBuf, process::Command};

use anyhow::Context;

use crate::run;

/// Installs (or reuses) the peers and returns their directory.
pub(crate) fn install(root: &Path) -> anyhow::Result<PathBuf> {
    let src = root.join("tests/peers");
    let dest = root.join("target/peers");
    fs::create_dir_all(&dest).with_context(|| format!("cannot create {}", dest.display()))?;
    npm(&src, &dest)?;
    python(&src, &dest)?;
    for script in ["fastmcp_peer.py", "py_client.py"] {
        fs::copy(src.join(script), dest.join(script))
            .with_context(|| format!("cannot copy {script}"))?;
    }
    Ok(dest)
}

/// Whether `dest/stamp` records exactly `content` (the lock file installed last time).
fn up_to_date(dest: &Path, stamp: &str, content: &str) -> bool {
    fs::read_to_string(dest.join(stamp)).is_ok_and(|s| s == content)
}

fn npm(src: &Path, dest: &Path) -> anyhow::Result<()> {
    let lock = fs::read_to_string(src.join("package-lock.json"))
        .context("tests/peers/package-lock.json")?;
    if up_to_date(dest, ".npm-installed", &lock)
        && dest
            .join("node_modules/.bin/mcp-server-everything")
            .exists()
    {
        return Ok(());
    }
    fs::copy(src.join("package.json"), dest.join("package.json"))?;
    fs::write(dest.join("package-lock.json"), &lock)?;
    run(Command::new("npm").current_dir(dest).args([
        "ci",
        "--no-audit",
        "--no-fund",
        "--loglevel=error",
    ]))
    .context("installing npm MCP peers needs node and npm on PATH")?;
    fs::write(dest.join(".npm-installed"), &lock)?;
    Ok(())
}

fn python(src: &Path, dest: &Path) -> anyhow::Result<()> {
    let lock = fs::read_to_string(src.join("requirements.lock.txt"))
        .context("tests/peers/requirements.lock.txt")?;
    let venv = dest.join("pyenv");
    if up_to_date(dest, ".pip-installed", &lock) && venv.join("bin/python").exists() {
        return Ok(());
    }
    if !venv.join("bin/python").exists() {
        run(Command::new("python3").arg("-m").arg("venv").arg(&venv))
            .context("creating the Python venv needs python3 with the venv module")?;
    }
    run(Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
        .arg(src.join("requirements.lock.txt")))?;
    fs::write(dest.join(".pip-installed"), &lock)?;
    Ok(())
}
