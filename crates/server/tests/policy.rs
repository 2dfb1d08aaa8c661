//! The policy in front of a real fixture server: a caller's roles decide which tools it
//! sees and may call; a refused call is a JSON-RPC error and never reaches the server.

use std::{collections::BTreeMap, time::Duration};

use axum::{extract::Request, middleware::Next};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use toolmesh_core::{CallContext, ServerId};
use toolmesh_registry::{Policy, Registry, RegistryOptions, RoleGrant, ServiceSpec};
use toolmesh_server::{Caller, CatalogServer, DENIED_CODE, GatewayState, HttpOptions};
use toolmesh_testkit::{FixtureOptions, FixtureServer};
use toolmesh_transport::{Endpoint, Session};

fn ctx() -> CallContext {
    CallContext::with_timeout(Duration::from_secs(10))
}

/// Serves `server` with every request authenticated as `caller`.
async fn serve_as(
    server: CatalogServer,
    caller: Caller,
) -> anyhow::Result<(String, CancellationToken)> {
    let state = GatewayState::ready(server, HttpOptions::default());
    let app = toolmesh_server::router(state).layer(axum::middleware::from_fn(
        move |mut request: Request, next: Next| {
            request.extensions_mut().insert(caller.clone());
            next.run(request)
        },
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/mcp", listener.local_addr()?);
    let stop = CancellationToken::new();
    let shutdown = stop.clone();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
    });
    Ok((url, stop))
}

#[tokio::test]
async fn roles_decide_what_a_caller_sees_and_calls() -> anyhow::Result<()> {
    let fixture = FixtureServer::start(FixtureOptions::new()).await?;
    let spec = ServiceSpec::single(ServerId::new("fx"), Endpoint::url(fixture.http_url()));
    let registry = Registry::from_specs(vec![spec], RegistryOptions::default()).await?;
    let roles: BTreeMap<String, RoleGrant> = serde_json::from_value(json!({
        "reader": { "allow": ["fx__echo", "add", "fx__counter"], "deny": ["*counter*"] },
    }))?;
    registry.set_policy(Some(Policy::new(&roles)?));
    let (url, stop) = serve_as(
        CatalogServer::new(registry.clone()),
        Caller::new("alice", ["reader".to_owned()]),
    )
    .await?;
    let session = Session::connect(&Endpoint::url(url)).await?;

    let mut listed: Vec<String> = session
        .list_tools(&ctx())
        .await?
        .into_iter()
        .map(|t| t.name.into_owned())
        .collect();
    listed.sort();
    assert_eq!(listed, ["fx__add", "fx__echo"], "deny wins over allow");

    let echoed = session
        .call_tool(
            "fx__echo",
            json!({"message": "hi"}).as_object().cloned(),
            &ctx(),
        )
        .await?;
    assert_ne!(echoed.is_error, Some(true));

    let refused = session
        .call_tool("fx__counter", None, &ctx())
        .await
        .expect_err("a reader may not count");
    let message = refused.to_string();
    assert!(
        message.contains(&DENIED_CODE.to_string())
            && message.contains("fx__counter")
            && message.contains("`alice`")
            && message.contains("role `reader` denies it"),
        "{message}"
    );
    // The refused call never reached the fixture: its counter starts at 1 now.
    let counted = registry.call("fx__counter", None, &ctx()).await?;
    assert_eq!(
        counted.result.structured_content.unwrap_or_default()["count"],
        1
    );

    // A caller with no role that grants anything sees nothing.
    let (url, stop_guest) = serve_as(
        CatalogServer::new(registry.clone()),
        Caller::new("guest", Vec::new()),
    )
    .await?;
    let guest = Session::connect(&Endpoint::url(url)).await?;
    assert!(guest.list_tools(&ctx()).await?.is_empty());

    stop.cancel();
    stop_guest.cancel();
    registry.shutdown().await;
    Ok(())
}
