//! Logs on stderr: `RUST_LOG` when set, else a level from -v/-q; traces to an OTLP/HTTP
//! collector when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (feature `otel`).

use tracing_subscriber::{EnvFilter, Layer, layer::SubscriberExt, util::SubscriberInitExt};

#[cfg(feature = "otel")]
mod otel;

/// Flushes what is still to be exported when dropped: keep it until the process ends.
pub(crate) struct Guard {
    #[cfg(feature = "otel")]
    _otel: Option<otel::Exporting>,
}

/// Installs the subscriber. `default` is toolmesh's level without -v/-q (`info` for the
/// gateway, `warn` for one-shot commands).
pub(crate) fn init(verbose: u8, quiet: bool, default: &str) -> Guard {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(directives(verbose, quiet, default)));
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_filter(filter);
    let registry = tracing_subscriber::registry().with(logs);
    #[cfg(feature = "otel")]
    {
        let (layer, exporting) = otel::layer();
        let _ = registry.with(layer).try_init();
        Guard { _otel: exporting }
    }
    #[cfg(not(feature = "otel"))]
    {
        let _ = registry.try_init();
        Guard {}
    }
}

/// The filter without RUST_LOG. Dependencies stay quieter than toolmesh itself: rmcp
/// logs every JSON-RPC error it sends (a client's typo is not ours) and, for a one-shot
/// command, errors toolmesh reports itself in its own words; -v shows them.
fn directives(verbose: u8, quiet: bool, default: &str) -> String {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => default,
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    let (others, rmcp) = match verbose {
        // Only toolmesh's own errors.
        _ if quiet => ("off", "off"),
        0 if default == "info" => ("warn", "error"),
        0 => ("warn", "off"),
        1 => ("warn", "warn"),
        _ => (level, level),
    };
    let ours = [
        "toolmesh",
        "toolmesh_server",
        "toolmesh_agent",
        "toolmesh_registry",
        "toolmesh_pool",
        "toolmesh_transport",
        "toolmesh_tools",
    ]
    .map(|krate| format!(",{krate}={level}"))
    .concat();
    format!("{others},rmcp={rmcp}{ours}")
}

#[cfg(test)]
mod tests {
    use super::directives;

    #[test]
    fn quiet_silences_libraries_and_one_shot_commands_silence_rmcp() {
        assert!(directives(0, true, "info").starts_with("off,rmcp=off,toolmesh=error,"));
        assert!(directives(0, false, "warn").starts_with("warn,rmcp=off,"));
        assert!(directives(0, false, "info").starts_with("warn,rmcp=error,"));
        assert!(directives(1, false, "warn").contains("rmcp=warn,toolmesh=debug"));
    }
}
