//! The client side: what `toolmesh-conformance-client <url>` does for each scenario the
//! suite names in `MCP_CONFORMANCE_SCENARIO`, through toolmesh's own
//! [`Session`](toolmesh_transport::Session).

mod defaults;

use std::{sync::Arc, time::Duration};

use anyhow::{Context, bail};
use serde_json::json;
use toolmesh_core::CallContext;
use toolmesh_transport::{Endpoint, Session};

/// Environment variable in which the suite names the scenario.
pub const SCENARIO_ENV: &str = "MCP_CONFORMANCE_SCENARIO";

/// The client scenarios this client plays.
pub const SCENARIOS: &[&str] = &[
    "initialize",
    "tools_call",
    "sse-retry",
    "elicitation-sep1034-client-defaults",
];

/// Deadline of each request; the suite gives a whole scenario 30 s.
const CALL_TIMEOUT: Duration = Duration::from_secs(20);

/// Plays `scenario` against the suite's server at `url`.
///
/// # Errors
///
/// For an unknown scenario, or when the server cannot be reached or answers wrongly.
pub async fn run(scenario: &str, url: &str) -> anyhow::Result<()> {
    let session = Session::connect(&Endpoint::url(url))
        .await
        .with_context(|| format!("cannot connect to {url}"))?;
    let outcome = play(scenario, &session).await;
    session.close(Duration::from_secs(2)).await;
    outcome
}

async fn play(scenario: &str, session: &Session) -> anyhow::Result<()> {
    let ctx = || CallContext::with_timeout(CALL_TIMEOUT);
    match scenario {
        // Connect (the handshake is what is checked), then use the session once.
        "initialize" => {
            session.list_tools(&ctx()).await?;
        }
        "tools_call" => {
            let tools = session.list_tools(&ctx()).await?;
            if !tools.iter().any(|tool| tool.name == "add_numbers") {
                bail!("the server offers no add_numbers tool");
            }
            let arguments = json!({ "a": 5, "b": 3 });
            let result = session
                .call_tool("add_numbers", arguments.as_object().cloned(), &ctx())
                .await?;
            if result.is_error == Some(true) {
                bail!("add_numbers failed: {:?}", result.content);
            }
        }
        // The server closes the call's stream mid-call: the session must reconnect
        // (after the `retry` it was told) and still get the answer.
        "sse-retry" => {
            session.call_tool("test_reconnection", None, &ctx()).await?;
        }
        // The server asks for a form with defaults while the call runs: accept it as
        // pre-filled, through the call's relay.
        "elicitation-sep1034-client-defaults" => {
            let tool = "test_client_elicitation_defaults";
            let tools = session.list_tools(&ctx()).await?;
            if !tools.iter().any(|t| t.name == tool) {
                bail!("the server offers no {tool} tool");
            }
            let relayed = ctx().relay_to(Arc::new(defaults::AcceptDefaults));
            let result = session.call_tool(tool, None, &relayed).await?;
            if result.is_error == Some(true) {
                bail!("{tool} failed: {:?}", result.content);
            }
        }
        other => bail!(
            "unknown scenario `{other}`; this client plays {}",
            SCENARIOS.join(", ")
        ),
    }
    Ok(())
}
