//! The MCP Registry discovery source against recorded registry pages replayed over real
//! loopback HTTP, and a discovered remote called end to end on a real fixture server.

mod common;

use std::{
    collections::HashMap,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use axum::{
    Router,
    extract::{Query, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use common::*;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use toolmesh_core::CallError;
use toolmesh_registry::{
    ServiceSpec,
    discovery::{
        SourceHealth,
        mcp_registry::{
            AllowedPackage, META_NAME, META_STATUS, META_VERSION, McpRegistryError,
            McpRegistryOptions, McpRegistrySource,
        },
        merge,
    },
};
use toolmesh_testkit::{FixtureOptions, FixtureServer};

type Queries = Arc<Mutex<Vec<HashMap<String, String>>>>;

fn data(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/mcp_registry")
        .join(file)
}

/// The recorded page answering one query, as the official registry would.
fn page_for(query: &HashMap<String, String>) -> Option<&'static str> {
    if query.contains_key("updated_since") {
        return Some("updates.json");
    }
    match (
        query.get("search").map(String::as_str),
        query.get("cursor").map(String::as_str),
    ) {
        (Some("weather"), None) => Some("search-weather.json"),
        (Some("loop"), _) => Some("looping.json"),
        (None, None) => Some("page-1.json"),
        (None, Some("io.github.acme/search:1.4.0")) => Some("page-2.json"),
        _ => None,
    }
}

#[derive(Clone)]
struct Replay {
    queries: Queries,
    fixture_url: Arc<str>,
}

async fn servers(
    State(replay): State<Replay>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let page = page_for(&query);
    replay
        .queries
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(query);
    let Some(page) = page else {
        return (
            StatusCode::BAD_REQUEST,
            r#"{"title":"Bad Request","detail":"invalid cursor"}"#,
        )
            .into_response();
    };
    match std::fs::read_to_string(data(page)) {
        Ok(text) => (
            [(header::CONTENT_TYPE, "application/json")],
            text.replace("__FIXTURE_URL__", &replay.fixture_url),
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// A stand-in for the registry API replaying the recorded pages under `/registry`.
struct ReplayRegistry {
    addr: SocketAddr,
    replay: Replay,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl ReplayRegistry {
    /// Remote URLs `__FIXTURE_URL__` in the pages become `fixture_url`.
    async fn start(fixture_url: &str) -> anyhow::Result<Self> {
        let mut registry = Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            replay: Replay {
                queries: Queries::default(),
                fixture_url: fixture_url.into(),
            },
            stop: None,
            task: None,
        };
        registry.listen().await?;
        Ok(registry)
    }

    /// Serves on `self.addr` (again, after [`stop`](Self::stop)).
    async fn listen(&mut self) -> anyhow::Result<()> {
        let listener = TcpListener::bind(self.addr).await?;
        self.addr = listener.local_addr()?;
        let app = Router::new()
            .route("/registry/v0.1/servers", get(servers))
            .with_state(self.replay.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        self.stop = Some(stop);
        self.task = Some(tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        }));
        Ok(())
    }

    async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }

    fn base_url(&self) -> String {
        format!("http://{}/registry/", self.addr)
    }

    fn queries(&self) -> Vec<HashMap<String, String>> {
        self.replay
            .queries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for ReplayRegistry {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

const UNROUTABLE: &str = "http://127.0.0.1:9/mcp";

fn allow_fs() -> AllowedPackage {
    AllowedPackage {
        name: "io.github.acme/fs".into(),
        command: "npx".into(),
        args: vec!["-y".into(), "@acme/fs-mcp@1.2.3".into()],
        env: [("FS_READONLY".to_owned(), "true".to_owned())].into(),
    }
}

fn ids(services: &[ServiceSpec]) -> Vec<String> {
    services.iter().map(|s| s.id.to_string()).collect()
}

fn find<'a>(services: &'a [ServiceSpec], id: &str) -> &'a ServiceSpec {
    services
        .iter()
        .find(|s| s.id.as_str() == id)
        .unwrap_or_else(|| panic!("no service `{id}` in {:?}", ids(services)))
}

fn q<'a>(query: &'a HashMap<String, String>, key: &str) -> Option<&'a str> {
    query.get(key).map(String::as_str)
}

#[tokio::test]
async fn a_full_load_follows_the_cursor_and_keeps_only_what_can_be_used() -> anyhow::Result<()> {
    let mut replay = ReplayRegistry::start(UNROUTABLE).await?;
    let mut options = McpRegistryOptions::registry(replay.base_url());
    options.page_limit = 50;
    options.packages.push(allow_fs());
    let mut source = McpRegistrySource::new(options)?;
    let services = source.load().await?;

    let queries = replay.queries();
    assert_eq!(queries.len(), 2, "two pages: {queries:?}");
    assert_eq!(q(&queries[0], "cursor"), None);
    assert_eq!(q(&queries[0], "limit"), Some("50"));
    assert_eq!(q(&queries[0], "version"), Some("latest"));
    assert_eq!(q(&queries[0], "updated_since"), None);
    assert_eq!(
        q(&queries[1], "cursor"),
        Some("io.github.acme/search:1.4.0")
    );

    // Skipped: sse-only news-feed, malformed broken/thing, the nameless entry, db (its
    // package is not allow-listed) and the deleted old-tool.
    assert_eq!(ids(&services), ["fs", "search", "weather"]);

    let weather = find(&services, "weather");
    assert_eq!(weather.namespace, "weather");
    assert_eq!(weather.metadata[META_NAME], "io.github.acme/weather");
    assert_eq!(weather.metadata[META_VERSION], "1.3.0");
    let instances: Vec<_> = weather.instances.iter().map(|i| i.id.to_string()).collect();
    assert_eq!(instances, ["weather-remote-1", "weather-remote-2"]);
    assert_eq!(
        weather.instances[0].endpoint.url.as_deref(),
        Some(UNROUTABLE)
    );
    let eu = &weather.instances[1].endpoint;
    assert_eq!(
        eu.url.as_deref(),
        Some("https://weather-eu.acme.example/mcp")
    );
    assert_eq!(
        eu.headers.get("X-Region").map(String::as_str),
        Some("eu-west-1")
    );
    assert!(!eu.headers.contains_key("X-Trace"), "no value to send");

    let search = find(&services, "search");
    assert_eq!(search.metadata[META_STATUS], "deprecated");
    assert_eq!(search.instances.len(), 1, "remotes win over packages");

    let fs = find(&services, "fs");
    assert_eq!(fs.instances[0].id.as_str(), "fs-stdio");
    let (program, args) = fs.instances[0].endpoint.argv()?;
    assert_eq!(program, "npx");
    assert_eq!(args, ["-y", "@acme/fs-mcp@1.2.3"]);
    assert_eq!(fs.instances[0].endpoint.env["FS_READONLY"], "true");

    replay.stop().await;
    Ok(())
}

#[tokio::test]
async fn search_goes_to_the_registry_and_names_filter_and_aliases_apply() -> anyhow::Result<()> {
    let mut replay = ReplayRegistry::start(UNROUTABLE).await?;
    let mut options = McpRegistryOptions::registry(replay.base_url());
    options.search = Some("weather".into());
    let services = McpRegistrySource::new(options)?.load().await?;
    assert_eq!(q(&replay.queries()[0], "search"), Some("weather"));
    assert_eq!(ids(&services), ["weather"]);

    let mut options = McpRegistryOptions::registry(replay.base_url());
    options.names = vec!["io.github.acme/weather".into(), "io.github.acme/fs".into()];
    options.aliases = [("io.github.acme/weather".to_owned(), "forecast".to_owned())].into();
    options.packages.push(allow_fs());
    let services = McpRegistrySource::new(options)?.load().await?;
    assert_eq!(ids(&services), ["fs", "forecast"]);
    let forecast = find(&services, "forecast");
    assert_eq!(forecast.namespace, "forecast");
    assert_eq!(forecast.instances[0].id.as_str(), "forecast-remote-1");

    // Two names taking one service name: the second (by name order) is skipped.
    let mut options = McpRegistryOptions::registry(replay.base_url());
    options.aliases = [("io.github.acme/search".to_owned(), "weather".to_owned())].into();
    let services = McpRegistrySource::new(options)?.load().await?;
    let weather = find(&services, "weather");
    assert_eq!(weather.metadata[META_NAME], "io.github.acme/search");
    assert_eq!(ids(&services), ["weather"]);

    replay.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_second_load_asks_only_for_updates_and_applies_them() -> anyhow::Result<()> {
    let mut replay = ReplayRegistry::start(UNROUTABLE).await?;
    let mut options = McpRegistryOptions::registry(replay.base_url());
    options.packages.push(allow_fs());
    let mut source = McpRegistrySource::new(options)?;
    assert_eq!(ids(&source.load().await?), ["fs", "search", "weather"]);

    let services = source.load().await?;
    let queries = replay.queries();
    assert_eq!(queries.len(), 3, "{queries:?}");
    let update = &queries[2];
    assert_eq!(
        q(update, "updated_since"),
        Some("2025-10-03T08:15:30.123456Z"),
        "the newest updatedAt of the full load"
    );
    assert_eq!(q(update, "cursor"), None);
    assert_eq!(ids(&services), ["calendar", "fs", "weather"]);

    // The next one asks from the newest change of the update.
    source.load().await?;
    assert_eq!(
        q(&replay.queries()[3], "updated_since"),
        Some("2025-10-07T18:00:00Z")
    );
    replay.stop().await;
    Ok(())
}

#[tokio::test]
async fn local_server_json_files_work_like_registry_entries() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("weather.json");
    let write = |version: &str| {
        std::fs::write(
            &file,
            serde_json::json!({
                "name": "io.github.acme/weather",
                "version": version,
                "remotes": [{"type": "streamable-http", "url": "https://weather.local.example/mcp"}]
            })
            .to_string(),
        )
    };
    write("9.0.0")?;

    let mut replay = ReplayRegistry::start(UNROUTABLE).await?;
    let mut options = McpRegistryOptions::registry(replay.base_url());
    options.files = vec![data("local-server.json"), file.clone()];
    let mut source = McpRegistrySource::new(options)?;
    let services = source.load().await?;
    assert_eq!(
        ids(&services),
        ["ticket-desk", "search", "weather"],
        "by server name"
    );
    let tickets = find(&services, "ticket-desk");
    assert_eq!(
        tickets.instances[0]
            .endpoint
            .headers
            .get("X-Team")
            .map(String::as_str),
        Some("platform")
    );
    let weather = find(&services, "weather");
    assert_eq!(
        weather.metadata[META_VERSION], "9.0.0",
        "the file replaces the entry"
    );
    assert_eq!(weather.instances.len(), 1);

    write("9.1.0")?;
    let services = source.load().await?;
    assert_eq!(
        find(&services, "weather").metadata[META_VERSION],
        "9.1.0",
        "re-read"
    );

    let missing = McpRegistryOptions {
        files: vec![dir.path().join("absent.json")],
        ..McpRegistryOptions::default()
    };
    let err = McpRegistrySource::new(missing)?.load().await.unwrap_err();
    assert!(matches!(err, McpRegistryError::File { .. }), "{err}");
    assert!(err.to_string().contains("absent.json"), "{err}");

    replay.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_looping_cursor_and_a_wrong_url_fail_with_the_url() -> anyhow::Result<()> {
    let mut replay = ReplayRegistry::start(UNROUTABLE).await?;
    let mut options = McpRegistryOptions::registry(replay.base_url());
    options.search = Some("loop".into());
    let err = McpRegistrySource::new(options)?.load().await.unwrap_err();
    assert!(matches!(err, McpRegistryError::Pagination { .. }), "{err}");
    assert!(err.to_string().contains("`again`"), "{err}");
    assert_eq!(replay.queries().len(), 2, "stopped at the repeated cursor");

    let wrong = format!("http://{}/elsewhere", replay.addr);
    let err = McpRegistrySource::new(McpRegistryOptions::registry(&wrong))?
        .load()
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("HTTP 404"), "{text}");
    assert!(text.contains(&format!("{wrong}/v0.1/servers")), "{text}");

    let bad = McpRegistrySource::new(McpRegistryOptions::registry("ftp://registry.example"));
    assert!(matches!(bad, Err(McpRegistryError::InvalidOptions(_))));
    replay.stop().await;
    Ok(())
}

#[tokio::test]
async fn follow_keeps_the_last_services_while_the_registry_is_down() -> anyhow::Result<()> {
    let mut replay = ReplayRegistry::start(UNROUTABLE).await?;
    let mut options = McpRegistryOptions::registry(replay.base_url());
    options.refresh = Duration::from_millis(50);
    options.timeout = Duration::from_secs(2);
    let (mut rx, task) = McpRegistrySource::new(options)?.follow();

    wait_for("the first load", async || {
        rx.borrow().health == SourceHealth::Live
    })
    .await;
    // Later loads ask for updates: the recorded update adds calendar, deletes search.
    wait_for("the update to apply", async || {
        ids(&rx.borrow().services) == ["calendar", "weather"]
    })
    .await;
    let live = rx.borrow().services.clone();

    replay.stop().await;
    wait_for("the source to be lost", async || {
        matches!(rx.borrow().health, SourceHealth::Lost { .. })
    })
    .await;
    let (error, since) = match &rx.borrow().health {
        SourceHealth::Lost { error, since } => (error.clone(), *since),
        other => panic!("not lost: {other:?}"),
    };
    assert!(error.contains(&replay.base_url()), "{error}");
    assert_eq!(rx.borrow().services, live, "the last services stay");

    // Two more failed loads: `since` stays at the first failure.
    for _ in 0..2 {
        tokio::time::timeout(Duration::from_secs(10), rx.changed()).await??;
    }
    match &rx.borrow().health {
        SourceHealth::Lost { since: later, .. } => assert_eq!(*later, since),
        other => panic!("not lost: {other:?}"),
    }
    assert_eq!(rx.borrow().services, live);

    replay.listen().await?;
    wait_for("the source to be live again", async || {
        rx.borrow().health == SourceHealth::Live
    })
    .await;
    assert_eq!(rx.borrow().services, live);

    drop(rx);
    tokio::time::timeout(Duration::from_secs(10), task).await??;
    replay.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_discovered_remote_is_routable_through_the_registry() -> anyhow::Result<()> {
    let fixture =
        FixtureServer::start(FixtureOptions::new().instance_id("weather-remote-1")).await?;
    let mut replay = ReplayRegistry::start(fixture.http_url()).await?;
    let mut options = McpRegistryOptions::registry(replay.base_url());
    options.search = Some("weather".into());
    let services = McpRegistrySource::new(options)?.load().await?;

    let registry = registry(merge(vec![], &services)).await?;
    let routed = registry
        .call(
            "weather__echo",
            args(serde_json::json!({"message": "from the registry"})),
            &ctx(),
        )
        .await
        .map_err(|e: CallError| anyhow::anyhow!("call failed: {e}"))?;
    assert_eq!(answered_by(&routed), "weather-remote-1");
    assert_eq!(
        routed.meta.instance.as_ref().map(|i| i.as_str()),
        Some("weather-remote-1")
    );

    registry.shutdown().await;
    replay.stop().await;
    drop(fixture);
    Ok(())
}
