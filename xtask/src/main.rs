//! `cargo xtask test` installs what the tests need, then runs the whole suite (the
//! MCP conformance suite last); `cargo xtask conformance` runs only that one;
//! `cargo xtask bench [name]` runs benchmarks in release mode.

mod conformance;
mod peers;
mod system;

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "toolmesh project tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install test prerequisites (pinned MCP peers) and run every test.
    Test {
        /// Extra arguments for the test runner (after `--`).
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Install the pinned npm and PyPI MCP servers into target/peers.
    Peers,
    /// Run the gateway (`toolmesh serve`), installing what building it needs (protoc)
    /// first; arguments after `--` go to `toolmesh serve`.
    Serve {
        /// Arguments for `toolmesh serve` (after `--`).
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Run the official MCP conformance suite against toolmesh's conformance server,
    /// the gateway in front of it, and toolmesh's client (results in target/conformance).
    Conformance(conformance::Options),
    /// Run benchmarks (release build); `transport` by default.
    Bench {
        /// Which benchmark: transport, pool, router, native, registry, gateway or agent.
        #[arg(default_value = "transport")]
        name: String,
    },
}

fn main() -> anyhow::Result<()> {
    let root = workspace_root()?;
    match Cli::parse().task {
        Task::Test { args } => test(&root, &args),
        Task::Peers => peers::install(&root).map(|_| ()),
        Task::Serve { args } => {
            system::install_build()?;
            run(cargo()
                .current_dir(&root)
                .args(["run", "-p", "toolmesh-cli", "--", "serve"])
                .args(args))
        }
        Task::Conformance(options) => conformance::run_all(&root, &options, false),
        Task::Bench { name } => bench(&root, &name),
    }
}

fn workspace_root() -> anyhow::Result<PathBuf> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .map(Path::to_path_buf)
        .context("xtask must live one level below the workspace root")
}

/// Runs `cmd`, failing with its command line when it does not succeed.
pub(crate) fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let shown = format!("{cmd:?}");
    eprintln!("xtask: {shown}");
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {shown}"))?;
    if !status.success() {
        bail!("{shown} failed with {status}");
    }
    Ok(())
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn has_nextest() -> bool {
    cargo()
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn test(root: &Path, extra: &[String]) -> anyhow::Result<()> {
    system::install()?;
    let peers = peers::install(root)?;
    // The fixture binary is spawned by tests of other crates: build it first.
    run(cargo()
        .current_dir(root)
        .args(["build", "--workspace", "--bins"]))?;
    let mut cmd = cargo();
    cmd.current_dir(root).env("TOOLMESH_PEERS_DIR", &peers);
    if has_nextest() {
        cmd.args(["nextest", "run", "--workspace", "--no-fail-fast"]);
    } else {
        cmd.args(["test", "--workspace", "--no-fail-fast"]);
    }
    cmd.args(extra);
    run(&mut cmd)?;
    // Doctests (nextest does not run them).
    run(cargo()
        .current_dir(root)
        .args(["test", "--workspace", "--doc"]))?;
    // The binaries under test were built above, in the same target directory.
    conformance::run_all(root, &conformance::Options::default(), true)
}

fn bench(root: &Path, name: &str) -> anyhow::Result<()> {
    system::install()?;
    // Every side-by-side benchmark spawns the fixture from target/release.
    run(cargo().current_dir(root).args([
        "build",
        "--release",
        "-p",
        "toolmesh-testkit",
        "--bin",
        "toolmesh-fixture",
    ]))?;
    let bench = |package: &str, target: &str| {
        run(cargo()
            .current_dir(root)
            .args(["bench", "-p", package, "--bench", target]))
    };
    match name {
        "transport" => bench("toolmesh-transport", "transport"),
        "pool" => {
            bench("toolmesh-resilience", "breaker")?;
            bench("toolmesh-pool", "pool")
        }
        "router" => bench("toolmesh-registry", "router"),
        "native" => bench("toolmesh", "native"),
        "registry" => bench("toolmesh", "registry"),
        "agent" => {
            // Narrowing ranks the real npm servers' tools, listed by running them.
            let peers = peers::install(root)?;
            run(cargo()
                .current_dir(root)
                .env("TOOLMESH_PEERS_DIR", &peers)
                .args(["bench", "-p", "toolmesh-agent", "--bench", "agent"]))
        }
        "gateway" => {
            // The benchmark spawns the release `toolmesh` binary.
            run(cargo().current_dir(root).args([
                "build",
                "--release",
                "-p",
                "toolmesh-cli",
                "--bin",
                "toolmesh",
            ]))?;
            bench("toolmesh-cli", "gateway")
        }
        other => bail!(
            "unknown benchmark `{other}`; available: transport, pool, router, native, registry, gateway, agent"
        ),
    }
}
