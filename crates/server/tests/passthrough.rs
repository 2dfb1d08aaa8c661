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
use toolmesh_core::{BoxFuture, CallContext, JsonObject, Relay, ServerId};
use toolmesh_registry::{Registry, RegistryOptions, ServiceSpec};
use toolmesh_server::{CatalogServer, GatewayState, HttpOptions, HttpServer};
use toolmesh_testkit::{FixtureOptions, FixtureServer, stdio_command};
use toolmesh_transport::{Endpoint, Session};

/// A client that records what reaches it and answers requests like a user would.
#[derive(Default)]
struct Recorder {
    progress: Mutex<Vec<ProgressNotificationParam>>,
    logs: Mutex<Vec<LoggingMessageNotificationParam>>,
    asked: Mutex<Vec<String>>,
    /// Answers only once every client sharing it was asked (bounded).
    meet: Option<Arc<tokio::sync::Barrier>>,
}

impl Recorder {
    fn meeting(meet: &Arc<tokio::sync::Barrier>) -> Self {
        Self {
            meet: Some(meet.clone()),
            ..Self::default()
        }
    }

    fn logs(&self) -> Vec<String> {
        self.logs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|l| l.data.as_str().unwrap_or_default().to_owned())
            .collect()
    }

    fn progressed(&self) -> Vec<f64> {
        self.progress
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|p| p.progress)
            .collect()
    }

    fn asked(&self) -> Vec<String> {
        self.asked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
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
        let meet = self.meet.clone();
        Box::pin(async move {
            if let Some(meet) = meet {
                tokio::time::timeout(Duration::from_secs(5), meet.wait())
                    .await
                    .map_err(|_| {
                        ErrorData::internal_error("the other client was never asked", None)
                    })?;
            }
            answer
        })
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

/// A gateway over one fixture service `fx`, reached at `endpoint`; returns its `/mcp` URL.
async fn serve_gateway(
    endpoint: Endpoint,
) -> anyhow::Result<(String, Registry, CancellationToken)> {
    let spec = ServiceSpec::single(ServerId::new("fx"), endpoint);
    let registry = Registry::from_specs(vec![spec], RegistryOptions::default()).await?;
    let state = GatewayState::ready(CatalogServer::new(registry.clone()), HttpOptions::default());
    let server = HttpServer::bind("127.0.0.1:0".parse()?).await?;
    let url = format!("http://{}/mcp", server.local_addr());
    let shutdown = CancellationToken::new();
    tokio::spawn(server.serve(state, shutdown.clone()));
    Ok((url, registry, shutdown))
}

/// A gateway over one fixture service `fx`, reached at `endpoint`; returns the client.
async fn gateway(endpoint: Endpoint) -> anyhow::Result<(Session, Registry, CancellationToken)> {
    let (url, registry, shutdown) = serve_gateway(endpoint).await?;
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
    assert_eq!(
        recorder.progressed(),
        [1.0, 2.0, 3.0],
        "progress of the call, in order"
    );
    assert_eq!(recorder.logs(), ["step 1/3", "step 2/3", "step 3/3"]);

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
    let asked = recorder.asked();
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

/// `step 1/n` … `step n/n`: the logs of one `progress` call of `n` steps.
fn steps(n: u32) -> Vec<String> {
    (1..=n).map(|k| format!("step {k}/{n}")).collect()
}

/// Waits (bounded) until `recorder` has heard of its call.
async fn heard_from(recorder: &Recorder) -> anyhow::Result<()> {
    tokio::time::timeout(Duration::from_secs(10), async {
        while recorder.progressed().is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .map_err(|_| anyhow::anyhow!("no progress of the relayed call"))
}

/// Logs of a call without a relay never reach the one call that has one, though it is
/// the only call relayed while they arrive: a log goes only to the call it names.
async fn logs_reach_only_the_call_they_name(upstream: Endpoint) -> anyhow::Result<()> {
    let session = Session::connect(&upstream).await?;
    let recorder = Arc::new(Recorder::default());
    let relayed = {
        let session = session.clone();
        let ctx = CallContext::with_timeout(Duration::from_secs(20)).relay_to(recorder.clone());
        tokio::spawn(async move {
            session
                .call_tool("progress", args(json!({ "steps": 60 })), &ctx)
                .await
        })
    };
    heard_from(&recorder).await?;
    let plain = CallContext::with_timeout(Duration::from_secs(20));
    let other = session
        .call_tool("progress", args(json!({ "steps": 3 })), &plain)
        .await?;
    assert_eq!(text(&other), "done 3 steps");
    assert!(
        recorder.progressed().len() < 60,
        "the relayed call was still running while the other one logged"
    );
    let done = relayed.await??;
    assert_eq!(text(&done), "done 60 steps");
    assert_eq!(
        recorder.logs(),
        steps(60),
        "only the relayed call's own logs"
    );
    Ok(())
}

#[tokio::test]
async fn logs_reach_only_the_call_they_name_over_http() -> anyhow::Result<()> {
    let fixture = FixtureServer::start(FixtureOptions::new()).await?;
    logs_reach_only_the_call_they_name(Endpoint::url(fixture.http_url())).await
}

#[tokio::test]
async fn logs_reach_only_the_call_they_name_over_stdio() -> anyhow::Result<()> {
    let (program, argv) = stdio_command(&FixtureOptions::new());
    logs_reach_only_the_call_they_name(Endpoint::stdio(program.display().to_string(), argv)).await
}

/// Two clients call through the gateway at once, each with its own progress token: each
/// gets its own call's progress, logs and elicitation, and nothing of the other's.
#[tokio::test]
async fn concurrent_clients_each_get_only_their_own_messages() -> anyhow::Result<()> {
    let fixture = FixtureServer::start(FixtureOptions::new()).await?;
    let (url, registry, shutdown) = serve_gateway(Endpoint::url(fixture.http_url())).await?;
    let alice = Session::connect(&Endpoint::url(url.clone())).await?;
    let bob = Session::connect(&Endpoint::url(url)).await?;
    let meet = Arc::new(tokio::sync::Barrier::new(2));
    let (to_alice, to_bob) = (
        Arc::new(Recorder::meeting(&meet)),
        Arc::new(Recorder::meeting(&meet)),
    );
    let ctx = |recorder: &Arc<Recorder>| {
        CallContext::with_timeout(Duration::from_secs(20)).relay_to(recorder.clone())
    };

    // Progress and logs: Bob's call starts while Alice's runs.
    let alice_call = {
        let (alice, ctx) = (alice.clone(), ctx(&to_alice));
        tokio::spawn(async move {
            alice
                .call_tool("fx__progress", args(json!({ "steps": 40 })), &ctx)
                .await
        })
    };
    heard_from(&to_alice).await?;
    let bob_done = bob
        .call_tool("fx__progress", args(json!({ "steps": 7 })), &ctx(&to_bob))
        .await?;
    assert!(
        to_alice.progressed().len() < 40,
        "Alice's call was still running during Bob's"
    );
    let alice_done = alice_call.await??;
    assert_eq!(
        (text(&alice_done), text(&bob_done)),
        ("done 40 steps".to_owned(), "done 7 steps".to_owned())
    );
    let counted = |n: u32| (1..=n).map(f64::from).collect::<Vec<_>>();
    assert_eq!(to_alice.progressed(), counted(40));
    assert_eq!(to_bob.progressed(), counted(7));
    assert_eq!(to_alice.logs(), steps(40));
    assert_eq!(to_bob.logs(), steps(7));

    // Elicitation: neither answers until both were asked, so both calls are in flight.
    let ask = |who: &Session, recorder: &Arc<Recorder>, message: &str| {
        let (who, ctx) = (who.clone(), ctx(recorder));
        let arguments = args(json!({ "kind": "elicit", "message": message }));
        async move { who.call_tool("fx__ask", arguments, &ctx).await }
    };
    let (alice_answer, bob_answer) = tokio::join!(
        ask(&alice, &to_alice, "Alice, your name?"),
        ask(&bob, &to_bob, "Bob, your name?")
    );
    for answer in [alice_answer?, bob_answer?] {
        assert!(text(&answer).contains("Ada"), "{answer:?}");
    }
    let (alice_asked, bob_asked) = (to_alice.asked(), to_bob.asked());
    assert!(
        alice_asked.len() == 1 && alice_asked[0].contains("Alice, your name?"),
        "{alice_asked:?}"
    );
    assert!(
        bob_asked.len() == 1 && bob_asked[0].contains("Bob, your name?"),
        "{bob_asked:?}"
    );

    shutdown.cancel();
    registry.shutdown().await;
    Ok(())
}

/// `toolmesh_gateway_calls_total` served on the fast path so far, from the process's
/// recorder (installed once; each test runs in its own process under nextest).
fn fast_calls() -> u64 {
    static HANDLE: std::sync::OnceLock<Option<metrics_exporter_prometheus::PrometheusHandle>> =
        std::sync::OnceLock::new();
    let handle = HANDLE.get_or_init(|| {
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .install_recorder()
            .ok()
    });
    let Some(handle) = handle else { return 0 };
    handle
        .render()
        .lines()
        .filter(|l| l.starts_with("toolmesh_gateway_calls_total{") && l.contains("path=\"fast\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// Once its session is known to the fast path, a client's calls are served there with
/// the same relays: progress and logs of its own call, elicitation and sampling.
#[tokio::test]
async fn the_fast_path_relays_everything_to_the_calling_client() -> anyhow::Result<()> {
    fast_calls();
    let fixture = FixtureServer::start(FixtureOptions::new()).await?;
    let (client, registry, shutdown) = gateway(Endpoint::url(fixture.http_url())).await?;
    let plain = CallContext::with_timeout(Duration::from_secs(20));
    tokio::time::timeout(Duration::from_secs(10), async {
        while fast_calls() == 0 {
            client
                .call_tool("fx__echo", args(json!({ "message": "hi" })), &plain)
                .await?;
        }
        anyhow::Ok(())
    })
    .await
    .map_err(|_| anyhow::anyhow!("no call took the fast path"))??;
    let before = fast_calls();

    let recorder = Arc::new(Recorder::default());
    let ctx = || CallContext::with_timeout(Duration::from_secs(20)).relay_to(recorder.clone());
    let done = client
        .call_tool("fx__progress", args(json!({ "steps": 3 })), &ctx())
        .await?;
    assert_eq!(text(&done), "done 3 steps");
    assert_eq!(recorder.progressed(), [1.0, 2.0, 3.0]);
    tokio::time::timeout(Duration::from_secs(10), async {
        while recorder.logs().len() < 3 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .map_err(|_| anyhow::anyhow!("logs missing: {:?}", recorder.logs()))?;
    assert_eq!(recorder.logs(), steps(3));
    for (kind, expected) in [("elicit", "Ada"), ("sample", "forty-two")] {
        let answer = client
            .call_tool(
                "fx__ask",
                args(json!({ "kind": kind, "message": "?" })),
                &ctx(),
            )
            .await?;
        assert!(text(&answer).contains(expected), "{kind}: {answer:?}");
    }
    assert_eq!(fast_calls() - before, 3, "all three on the fast path");
    shutdown.cancel();
    registry.shutdown().await;
    Ok(())
}
