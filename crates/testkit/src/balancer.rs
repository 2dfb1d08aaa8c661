//! A small HTTP load balancer on loopback, for tests of several gateway replicas: round
//! robin per request, or pinned by `Mcp-Session-Id` (the session goes back to the replica
//! that created it). Bodies, SSE streams included, are relayed as they arrive.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

use axum::{
    Router,
    body::Body,
    extract::{Request, State},
    http::{HeaderName, StatusCode},
    response::{IntoResponse, Response},
};
use futures::TryStreamExt as _;
use tokio_util::sync::CancellationToken;

const SESSION: &str = "mcp-session-id";

/// How requests are spread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Balance {
    /// Each request to the next replica.
    RoundRobin,
    /// Requests of a session to the replica that answered its `initialize`; others round
    /// robin.
    PinnedBySession,
}

/// A running balancer; stops on drop.
#[derive(Debug)]
pub struct Balancer {
    addr: SocketAddr,
    stop: CancellationToken,
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    backends: Vec<String>,
    balance: Balance,
    next: AtomicUsize,
    pinned: Mutex<HashMap<String, usize>>,
    served: Vec<AtomicUsize>,
    http: reqwest::Client,
}

impl Balancer {
    /// Listens on a free loopback port in front of `backends` (base URLs,
    /// `http://127.0.0.1:PORT`).
    ///
    /// # Errors
    ///
    /// When it cannot listen.
    pub async fn start(backends: Vec<String>, balance: Balance) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            served: backends.iter().map(|_| AtomicUsize::new(0)).collect(),
            backends,
            balance,
            next: AtomicUsize::new(0),
            pinned: Mutex::new(HashMap::new()),
            http: reqwest::Client::builder().build()?,
        });
        let app = Router::new().fallback(relay).with_state(shared.clone());
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(stopped.cancelled_owned())
                .await;
        });
        Ok(Self { addr, stop, shared })
    }

    /// `http://127.0.0.1:PORT` of the balancer.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How many requests each backend got, in the order given.
    pub fn served(&self) -> Vec<usize> {
        self.shared
            .served
            .iter()
            .map(|n| n.load(Ordering::Relaxed))
            .collect()
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn relay(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    match forward(&shared, request).await {
        Ok(response) => response,
        Err(e) => (StatusCode::BAD_GATEWAY, format!("balancer: {e}\n")).into_response(),
    }
}

async fn forward(shared: &Shared, request: Request) -> anyhow::Result<Response> {
    let session = request
        .headers()
        .get(SESSION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let pinned = match (shared.balance, &session) {
        (Balance::PinnedBySession, Some(id)) => {
            shared.pinned.lock().ok().and_then(|p| p.get(id).copied())
        }
        _ => None,
    };
    let index = pinned
        .unwrap_or_else(|| shared.next.fetch_add(1, Ordering::Relaxed) % shared.backends.len());
    shared.served[index].fetch_add(1, Ordering::Relaxed);
    let (parts, body) = request.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let url = format!("{}{path}", shared.backends[index]);
    let body = axum::body::to_bytes(body, 16 * 1024 * 1024).await?;
    let mut upstream = shared.http.request(parts.method, url).body(body);
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" {
            upstream = upstream.header(name, value);
        }
    }
    let answer = upstream.send().await?;
    if let Some(id) = answer.headers().get(SESSION).and_then(|v| v.to_str().ok())
        && let Ok(mut pinned) = shared.pinned.lock()
    {
        pinned.insert(id.to_owned(), index);
    }
    let mut response = Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        if name != HeaderName::from_static("content-length") && name != "transfer-encoding" {
            response = response.header(name, value);
        }
    }
    let stream = answer.bytes_stream().map_err(std::io::Error::other);
    Ok(response.body(Body::from_stream(stream))?)
}
