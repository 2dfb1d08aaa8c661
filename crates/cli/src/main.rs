#![doc = include_str!("../README.md")]

mod cli;
mod commands;
mod failure;
// The build script's linker script, tested with the binary.
#[cfg(test)]
#[path = "../link/script.rs"]
mod link_script;
mod logging;
mod memory;
mod native;
mod output;
mod routing;
mod target;

use std::{num::NonZeroUsize, process::ExitCode};

use clap::Parser;

// A gateway call makes many small allocations (and tokio's aligned task allocations) on
// both MCP legs: mimalloc took a fifth off the gateway's CPU per call against glibc's
// malloc (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The async runtime: `worker_threads` threads when given (1: the current-thread runtime,
/// on the main thread), else one per CPU (tokio's default; `TOKIO_WORKER_THREADS` sets it).
fn runtime(worker_threads: Option<NonZeroUsize>) -> std::io::Result<tokio::runtime::Runtime> {
    let threads = worker_threads.map(NonZeroUsize::get).or_else(|| {
        // On one CPU (a 1-CPU container, `taskset -c N`) a work-stealing scheduler only
        // adds cross-thread wake-ups: measured 5-10% faster as a current-thread runtime.
        let one_cpu = std::thread::available_parallelism().is_ok_and(|n| n.get() == 1);
        one_cpu.then_some(1)
    });
    let mut builder = match threads {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        Some(n) => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(n);
            builder
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    builder.enable_all().build()
}

fn main() -> ExitCode {
    memory::without_huge_pages();
    memory::purge_freed_pages_at_once();
    let cli = cli::Cli::parse();
    let default_level = match cli.command {
        cli::Command::Serve(_) => "info",
        _ => "warn",
    };
    let _traces = logging::init(cli.verbose, cli.quiet, default_level);
    let runtime = match runtime(cli.worker_threads) {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("toolmesh: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(commands::run(cli.command));
    // Background tasks (health checks, watchers) must not keep the process alive.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match outcome {
        Ok(code) => code,
        Err(error) => failure::report(&error),
    }
}
