//! `tools/call` on the direct upstream leg (streamable HTTP before 2026-07-28): which leg
//! carried each call (stdio, WebSocket and 2026-07-28 sessions go through rmcp) (`toolmesh_upstream_calls_total`, a process-wide recorder, so this
//! file holds a single test), and a server that forgot the session: the call is run
//! once, on a new session, never twice.

use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use serde_json::json;
use toolmesh_core::CallContext;
use toolmesh_testkit::{FixtureOptions, FixtureServer, stdio_command};
use toolmesh_transport::{Endpoint, ProtocolChoice, Session};

/// Calls counted per upstream leg, `(direct, rmcp)`. A snapshot gives what each counter
/// gained since the one before, so the totals are kept here.
#[derive(Default)]
struct Legs {
    seen: (u64, u64),
}

impl Legs {
    fn read(&mut self, snapshotter: &Snapshotter) -> (u64, u64) {
        for (key, _, _, value) in snapshotter.snapshot().into_vec() {
            if key.key().name() != toolmesh_transport::UPSTREAM_CALLS {
                continue;
            }
            let DebugValue::Counter(n) = value else {
                continue;
            };
            match key
                .key()
                .labels()
                .find(|l| l.key() == "path")
                .map(|l| l.value().to_owned())
            {
                Some(path) if path == "direct" => self.seen.0 += n,
                Some(path) if path == "rmcp" => self.seen.1 += n,
                _ => {}
            }
        }
        self.seen
    }
}

/// The fixture's `counter` result: how many times it has run in this server process.
async fn count(session: &Session) -> anyhow::Result<u64> {
    let ctx = CallContext::with_timeout(Duration::from_secs(10));
    let result = session.call_tool("counter", None, &ctx).await?;
    let structured = result
        .structured_content
        .ok_or_else(|| anyhow::anyhow!("counter gave no structured content"))?;
    structured["count"]
        .as_u64()
        .ok_or_else(|| anyhow::anyhow!("no count in {structured}"))
}

#[tokio::test]
async fn calls_go_direct_and_a_forgotten_session_runs_the_call_once_on_a_new_one()
-> anyhow::Result<()> {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install()?;
    let mut legs = Legs::default();

    let mut fixture = FixtureServer::start(FixtureOptions::new()).await?;
    let session = Session::connect(&Endpoint::url(fixture.http_url())).await?;
    assert_eq!(count(&session).await?, 1);
    assert_eq!(count(&session).await?, 2);
    assert_eq!(legs.read(&snapshotter), (2, 0), "both calls went direct");

    // Stdio has no direct leg.
    let (program, args) = stdio_command(&FixtureOptions::new());
    let stdio = Session::connect(&Endpoint::stdio(program.to_string_lossy(), args)).await?;
    let ctx = CallContext::with_timeout(Duration::from_secs(10));
    stdio
        .call_tool("echo", json!({"message": "x"}).as_object().cloned(), &ctx)
        .await?;
    assert_eq!(legs.read(&snapshotter), (2, 1));

    // Nor have WebSocket sessions and streamable-HTTP sessions on 2026-07-28.
    let ws = Session::connect(&Endpoint::url(fixture.ws_url())).await?;
    ws.call_tool("echo", json!({"message": "x"}).as_object().cloned(), &ctx)
        .await?;
    assert_eq!(legs.read(&snapshotter), (2, 2));
    let newer =
        Session::connect(&Endpoint::url(fixture.http_url()).protocol(ProtocolChoice::V2026_07_28))
            .await?;
    assert_eq!(newer.protocol_version().as_str(), "2026-07-28");
    newer
        .call_tool("echo", json!({"message": "x"}).as_object().cloned(), &ctx)
        .await?;
    assert_eq!(legs.read(&snapshotter), (2, 3));
    drop((ws, newer));

    // A new server process on the same port knows no session: the direct POST is
    // refused (404) before anything runs, and the call goes the rmcp way, which starts
    // a new session. The new process runs it exactly once.
    fixture.restart().await?;
    assert_eq!(count(&session).await?, 1, "run once by the new server");
    assert_eq!(
        legs.read(&snapshotter),
        (2, 4),
        "the refused call went the rmcp way"
    );
    // The new session is the direct leg's from then on.
    assert_eq!(count(&session).await?, 2);
    assert_eq!(legs.read(&snapshotter), (3, 4));
    Ok(())
}
