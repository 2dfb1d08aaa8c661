//! `toolmesh-conformance-client <server-url>`: the MCP conformance suite's client under
//! test, playing the scenario named in `MCP_CONFORMANCE_SCENARIO` with toolmesh's own
//! session.

use anyhow::Context;
use toolmesh_testkit::conformance::client::{SCENARIO_ENV, SCENARIOS, run};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            EnvFilter::try_from_env("TOOLMESH_CONFORMANCE_LOG")
                .unwrap_or_else(|_| EnvFilter::new("info,rmcp=warn")),
        )
        .init();
    let url = std::env::args()
        .nth(1)
        .context("usage: toolmesh-conformance-client <server-url> (the suite appends it)")?;
    let scenario = std::env::var(SCENARIO_ENV).with_context(|| {
        format!(
            "{SCENARIO_ENV} is not set; the suite sets it to one of: {}",
            SCENARIOS.join(", ")
        )
    })?;
    run(&scenario, &url).await
}
