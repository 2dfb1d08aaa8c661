//! What a client relies on besides tool results, through the gateway: progress and logs
//! of its own call, sampling and elicitation routed back to it, prompts and resources.
//! The client is toolmesh's own `Session` with a relay; upstream is the fixture over
//! streamable HTTP (the request names its call's stream) and over stdio (it does not).

#![allow(
    deprecated,
    reason = "logging and sampling are deprecated by SEP-2577 but still relayed"
)]

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use rmcp::{
    ErrorData,
    model::{
        ClientResult, ContentBlock, CreateMessageResult, ElicitResult, ElicitationAction,
        LoggingMessageNotificationParam, ProgressNotificationParam, SamplingMessage, ServerRequest,
    },
};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use toolmesh_agent::{CatalogServer, GatewayState, HttpOptions, HttpServer};
use toolmesh_core::{BoxFuture, CallContext, JsonObject, Relay, ServerId};
use toolmesh_registry::{Registry, RegistryOptions, ServiceSpec};
use toolmesh_testkit::{FixtureOptions, FixtureServer, stdio_command};
use toolmesh_transport::{Endpoint, Session};

/// A client that records what reaches it and answers requests like a user would.
#[derive(Default)]
struct Recorder {
    progress: Mutex<Vec<ProgressNotificationParam>>,
    logs: Mutex<Vec<LoggingMessageNotificationParam>>,
    asked: Mutex<Vec<String>>,
}

impl Relay for Recorder {
    fn progress(&self, progress: ProgressNotificationParam) {
        self.progress
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(progress);
    }

    fn log(&self, message: LoggingMessageNotificationParam) {
        self.logs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(message);
    }

    fn request(
        &self,
        request: ServerRequest,
    ) -> BoxFuture<'static, Result<ClientResult, ErrorData>> {
        let answer = match request {
            ServerRequest::ElicitRequest(r) => {
                self.asked
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(format!("elicit: {:?}", r.params));
                let answer = ElicitResult::new(ElicitationAction::Accept)
                    .with_content(json!({ "name": "Ada" }));
                Ok(ClientResult::ElicitResult(answer))
            }
            ServerRequest::CreateMessageRequest(r) => {
                self.asked
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(format!("sample: {:?}", r.params.messages));
                Ok(ClientResult::CreateMessageResult(Box::new(
                    CreateMessageResult::new(
                        SamplingMessage::assistant_text("forty-two"),
                        "scripted-model".into(),
                    ),
                )))
            }
            other => Err(ErrorData::method_not_found::<rmcp::model::PingRequestMethod>()).map_err(
                |e: ErrorData| ErrorData::new(e.code, format!("unexpected {other:?}"), None),
            ),
        };
        Box::pin(std::future::ready(answer))
    }
}

fn args(value: serde_json::Value) -> Option<JsonObject> {
    value.as_object().cloned()
}

fn text(result: &rmcp::model::CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| match c {
            ContentBlock::Text(t) => Some(t.text.clone()),
            _ => None,
        })
        .collect()
}

/// A gateway over one fixture service `fx`, reached at `endpoint`; returns the client.
async fn gateway(endpoint: Endpoint) -> anyhow::Result<(Session, Registry, CancellationToken)> {
    let spec = ServiceSpec::single(ServerId::new("fx"), endpoint);
    let registry = Registry::from_specs(vec![spec], RegistryOptions::default()).await?;
    let state = GatewayState::ready(CatalogServer::new(registry.clone()), HttpOptions::default());
    let server = HttpServer::bind("127.0.0.1:0".parse()?).await?;
    let url = format!("http://{}/mcp", server.local_addr());
    let shutdown = CancellationToken::new();
    tokio::spawn(server.serve(state, shutdown.clone()));
    Ok((
        Session::connect(&Endpoint::url(url)).await?,
        registry,
        shutdown,
    ))
}

async fn relays_everything_to_the_calling_client(upstream: Endpoint) -> anyhow::Result<()> {
    let (client, registry, shutdown) = gateway(upstream).await?;
    let recorder = Arc::new(Recorder::default());
    let ctx = || CallContext::with_timeout(Duration::from_secs(20)).relay_to(recorder.clone());

    let done = client
        .call_tool("fx__progress", args(json!({ "steps": 3 })), &ctx())
        .await?;
    assert_eq!(text(&done), "done 3 steps");
    let progress: Vec<f64> = recorder
        .progress
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .map(|p| p.progress)
        .collect();
    assert_eq!(progress, [1.0, 2.0, 3.0], "progress of the call, in order");
    let logs: Vec<String> = recorder
        .logs
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .map(|l| l.data.to_string())
        .collect();
    assert_eq!(logs, ["\"step 1/3\"", "\"step 2/3\"", "\"step 3/3\""]);

    let answer = client
        .call_tool(
            "fx__ask",
            args(json!({ "kind": "elicit", "message": "Your name?" })),
            &ctx(),
        )
        .await?;
    assert!(!answer.is_error.unwrap_or(false), "{answer:?}");
    assert!(
        text(&answer).contains("Ada"),
        "the client's answer reached the server: {answer:?}"
    );
    let answer = client
        .call_tool(
            "fx__ask",
            args(json!({ "kind": "sample", "message": "6 x 7?" })),
            &ctx(),
        )
        .await?;
    assert!(text(&answer).contains("forty-two"), "{answer:?}");
    let asked = recorder
        .asked
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    assert_eq!(asked.len(), 2, "{asked:?}");
    assert!(
        asked[0].contains("Your name?") && asked[1].contains("6 x 7?"),
        "{asked:?}"
    );

    // A call without a client to ask gets an error result, not a hang.
    let plain = CallContext::with_timeout(Duration::from_secs(20));
    let refused = client
        .call_tool(
            "fx__ask",
            args(json!({ "kind": "elicit", "message": "?" })),
            &plain,
        )
        .await?;
    assert_eq!(refused.is_error, Some(true), "{refused:?}");

    shutdown.cancel();
    registry.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn relays_to_the_calling_client_over_http_upstream() -> anyhow::Result<()> {
    let fixture = FixtureServer::start(FixtureOptions::new()).await?;
    relays_everything_to_the_calling_client(Endpoint::url(fixture.http_url())).await
}

#[tokio::test]
async fn relays_to_the_calling_client_over_stdio_upstream() -> anyhow::Result<()> {
    let (program, argv) = stdio_command(&FixtureOptions::new());
    relays_everything_to_the_calling_client(Endpoint::stdio(program.display().to_string(), argv))
        .await
}

#[tokio::test]
async fn prompts_and_resources_pass_through() -> anyhow::Result<()> {
    let fixture = FixtureServer::start(FixtureOptions::new()).await?;
    let (client, registry, shutdown) = gateway(Endpoint::url(fixture.http_url())).await?;
    let ctx = CallContext::with_timeout(Duration::from_secs(10));

    let prompts: Vec<String> = client
        .list_prompts(&ctx)
        .await?
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(prompts, ["fx__greet"]);
    let prompt = client
        .get_prompt("fx__greet", args(json!({ "name": "Ada" })), &ctx)
        .await?;
    assert!(
        format!("{:?}", prompt.messages).contains("Ada"),
        "{prompt:?}"
    );

    let resources = client.list_resources(&ctx).await?;
    assert_eq!(
        resources.iter().map(|r| r.uri.as_str()).collect::<Vec<_>>(),
        ["fixture://info"]
    );
    let read = client.read_resource("fixture://info", &ctx).await?;
    assert!(
        format!("{:?}", read.contents).contains("toolmesh fixture"),
        "{read:?}"
    );

    let missing = client
        .read_resource("fixture://nope", &ctx)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        missing.contains("-32002") && missing.contains("no resource `fixture://nope`"),
        "{missing}"
    );
    let unknown = client
        .get_prompt("fx__nope", None, &ctx)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        unknown.contains("-32602") && unknown.contains("no prompt `fx__nope`"),
        "{unknown}"
    );

    shutdown.cancel();
    registry.shutdown().await;
    Ok(())
}
