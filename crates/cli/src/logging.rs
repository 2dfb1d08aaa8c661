//! Logs on stderr: `RUST_LOG` when set, else a level from -v/-q.

use tracing_subscriber::EnvFilter;

/// Installs the subscriber. `default` is the level without -v/-q (`info` for the
/// gateway, `warn` for one-shot commands).
pub(crate) fn init(verbose: u8, quiet: bool, default: &str) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => default,
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        // Dependencies stay quieter than toolmesh itself.
        // rmcp warns about every JSON-RPC error it sends (a client's typo is not ours).
        let (others, rmcp) = if verbose >= 2 { (level, level) } else { ("warn", "error") };
        EnvFilter::new(format!("{others},rmcp={rmcp},toolmesh={level},toolmesh_agent={level},toolmesh_registry={level},toolmesh_pool={level},toolmesh_transport={level},toolmesh_tools={level}"))
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
