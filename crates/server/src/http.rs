//! The HTTP edge: MCP at `/mcp` (streamable HTTP) and the operational endpoints
//! `/healthz`, `/readyz`, `/status` and `/metrics`; with authentication, the
//! protected-resource metadata under `/.well-known/oauth-protected-resource`.

pub mod auth;
mod fast_path;
mod guard;
mod requests;
mod sessions;
mod status;
mod tls;

use std::{
    net::SocketAddr,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{
    Router,
    body::Body,
    extract::{Request, State},
    http::{Method, StatusCode, header},
    middleware::{Next, from_fn_with_state},
    response::{IntoResponse, Response},
    routing::get,
    serve::ListenerExt,
};
use futures::StreamExt;
use metrics_exporter_prometheus::PrometheusHandle;
use rmcp::transport::{
    StreamableHttpServerConfig, StreamableHttpService,
    streamable_http_server::session::local::LocalSessionManager,
};
use tokio::{
    net::{TcpListener, TcpSocket},
    sync::Notify,
};
use tokio_util::sync::CancellationToken;
use tower_http::limit::RequestBodyLimitLayer;

use crate::{CatalogServer, ServerError};
use tls::TlsListener;
pub use tls::{TlsConfig, TlsError};

/// The outcome of the latest configuration reload, as `/status` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReloadSnapshot {
    /// Configurations applied since start (the initial one is 0).
    pub generation: u64,
    /// Why the latest edit was not applied; the previous configuration stays in force.
    pub last_error: Option<String>,
    /// The discovery sources (the shared registry in etcd): whether each is live, and
    /// what it contributes. `/status` shows them under `discovery`.
    #[serde(skip)]
    pub discovery: Vec<toolmesh_registry::discovery::SourceStatus>,
}

/// Reads the current [`ReloadSnapshot`] (for instance from `toolmesh::Mesh::reload_status`).
pub type ReloadSource = Arc<dyn Fn() -> ReloadSnapshot + Send + Sync>;

/// Settings of the HTTP edge.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HttpOptions {
    /// Largest request body accepted; larger ones get `413 Payload Too Large`. 4 MiB.
    pub max_body_bytes: usize,
    /// Host names accepted in the `Host` header besides loopback (`localhost`,
    /// `127.0.0.1`, `::1`), which guards local servers against DNS rebinding. Add the
    /// names clients use when listening on a public interface.
    pub extra_allowed_hosts: Vec<String>,
    /// How long a shutdown waits for in-flight tool calls before closing sessions.
    pub drain_timeout: Duration,
    /// Serve without sessions: every POST is answered on its own with a JSON body (no
    /// SSE), which costs less per call, but clients get no server-pushed
    /// `notifications/tools/list_changed` (2026-07-28 clients still can, through
    /// `subscriptions/listen`). Off by default.
    pub stateless: bool,
    /// Serve `tools/call` on established sessions through the gateway's own data plane
    /// (an envelope parse and the router; no rmcp server machinery for the request),
    /// falling back to rmcp for anything else. On by default; `/metrics` counts the
    /// path each call took in `toolmesh_gateway_calls_total{path,reason}`.
    pub fast_path: bool,
    /// Serve HTTPS with this certificate and key; plain HTTP when `None`.
    pub tls: Option<TlsConfig>,
    /// Who may call: `/mcp` and `/status` need a credential it accepts. `None` (the
    /// default): no authentication, for loopback listeners.
    pub auth: Option<auth::Authenticator>,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            max_body_bytes: Self::DEFAULT_MAX_BODY_BYTES,
            extra_allowed_hosts: Vec::new(),
            drain_timeout: Duration::from_secs(10),
            stateless: false,
            fast_path: true,
            tls: None,
            auth: None,
        }
    }
}

impl HttpOptions {
    /// 4 MiB.
    pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
    /// Where the gateway listens unless told otherwise.
    pub const DEFAULT_LISTEN: SocketAddr =
        SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8383);

    /// Sets the largest request body accepted.
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// Also accepts `host` (a name, or `name:port`) in the `Host` header.
    pub fn allow_host(mut self, host: impl Into<String>) -> Self {
        self.extra_allowed_hosts.push(host.into());
        self
    }

    /// Serves without sessions (see [`stateless`](Self::stateless)).
    pub fn stateless(mut self, stateless: bool) -> Self {
        self.stateless = stateless;
        self
    }

    /// Serves `tools/call` on the fast path when it applies (see
    /// [`fast_path`](Self::fast_path)); `false` sends every request through rmcp.
    pub fn fast_path(mut self, on: bool) -> Self {
        self.fast_path = on;
        self
    }

    /// Serves HTTPS with the certificate and key of `tls` (re-read when they change).
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Authenticates every request to `/mcp` and `/status` with `auth`.
    pub fn authenticate(mut self, auth: auth::Authenticator) -> Self {
        self.auth = Some(auth);
        self
    }

    /// Sets how long a shutdown waits for in-flight tool calls.
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }
}

struct Inner {
    server: OnceLock<CatalogServer>,
    reload: OnceLock<ReloadSource>,
    metrics: OnceLock<PrometheusHandle>,
    options: HttpOptions,
    draining: AtomicBool,
    /// Cancelled to end every MCP session (and its streams) at shutdown.
    sessions: CancellationToken,
    /// POST requests to `/mcp` whose response has not been sent in full.
    posts: AtomicUsize,
    /// Notified when `posts` drops to zero.
    idle: Notify,
    /// Callers of verified TLS client certificates, by connection.
    client_callers: tls::ClientCallers,
}

/// What the HTTP edge serves. Starts *not ready* (`/readyz` 503, `/mcp` 503) unless
/// built with [`ready`](Self::ready); [`set_ready`](Self::set_ready) hands it the
/// catalog once the mesh has started. Cheap to clone.
#[derive(Clone)]
pub struct GatewayState {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for GatewayState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayState")
            .field("ready", &self.is_ready())
            .field("options", &self.inner.options)
            .finish()
    }
}

impl Default for GatewayState {
    fn default() -> Self {
        Self::new(HttpOptions::default())
    }
}

impl GatewayState {
    /// A gateway still starting.
    pub fn new(options: HttpOptions) -> Self {
        Self {
            inner: Arc::new(Inner {
                server: OnceLock::new(),
                reload: OnceLock::new(),
                metrics: OnceLock::new(),
                options,
                draining: AtomicBool::new(false),
                sessions: CancellationToken::new(),
                posts: AtomicUsize::new(0),
                idle: Notify::new(),
                client_callers: Arc::default(),
            }),
        }
    }

    /// A gateway serving `server` at once.
    pub fn ready(server: CatalogServer, options: HttpOptions) -> Self {
        let state = Self::new(options);
        let _ = state.inner.server.set(server);
        state
    }

    /// Serves `/metrics` from `handle` (the binary installs the recorder); set once.
    pub fn with_metrics(self, handle: PrometheusHandle) -> Self {
        let _ = self.inner.metrics.set(handle);
        self
    }

    /// Starts serving `server`: `/readyz` turns 200 and `/mcp` answers.
    ///
    /// # Errors
    ///
    /// [`ServerError::AlreadyReady`] when a catalog is served already.
    pub fn set_ready(&self, server: CatalogServer) -> Result<(), ServerError> {
        self.inner
            .server
            .set(server)
            .map_err(|_| ServerError::AlreadyReady)
    }

    /// Shows `reload` in `/status` (set once; later calls are ignored).
    pub fn set_reload_source(&self, reload: impl Fn() -> ReloadSnapshot + Send + Sync + 'static) {
        let _ = self.inner.reload.set(Arc::new(reload));
    }

    /// Whether a catalog is served and no shutdown has begun.
    pub fn is_ready(&self) -> bool {
        self.inner.server.get().is_some() && !self.inner.draining.load(Ordering::Relaxed)
    }

    /// The catalog server, once ready.
    pub fn server(&self) -> Option<&CatalogServer> {
        self.inner.server.get()
    }

    /// The options it runs with.
    pub fn options(&self) -> &HttpOptions {
        &self.inner.options
    }

    /// Marks the gateway as shutting down: `/readyz` answers 503 from now on.
    pub fn set_draining(&self) {
        self.inner.draining.store(true, Ordering::Relaxed);
    }

    /// MCP requests (POSTs to `/mcp`) whose answer has not been sent in full.
    pub fn requests_in_flight(&self) -> usize {
        self.inner.posts.load(Ordering::Acquire)
    }

    /// Waits until no MCP request is in flight or `timeout` has passed; `true` when idle.
    pub async fn drain(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let idle = self.inner.idle.notified();
            if self.requests_in_flight() == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, idle).await.is_err() {
                return self.requests_in_flight() == 0;
            }
        }
    }

    /// Ends every MCP session and its streams.
    pub fn close_sessions(&self) {
        self.inner.sessions.cancel();
    }

    fn reload(&self) -> Option<ReloadSnapshot> {
        self.inner.reload.get().map(|source| source())
    }
}

/// The whole HTTP application: `/mcp`, `/healthz`, `/readyz`, `/status`, `/metrics`,
/// with the body limit of [`HttpOptions::max_body_bytes`]. `/mcp` and `/status` answer
/// only allowed `Host` (and `Origin`) names; `/status?detail=full` needs the peer
/// address of the connection (served by [`HttpServer::serve`]) to be loopback.
pub fn router(state: GatewayState) -> Router {
    let options = &state.inner.options;
    let mut config = StreamableHttpServerConfig::default()
        .with_cancellation_token(state.inner.sessions.child_token())
        .with_max_request_body_bytes(options.max_body_bytes);
    if options.stateless {
        config = config
            .with_legacy_session_mode(false)
            .with_json_response(true);
    }
    let mut hosts = config.allowed_hosts.clone();
    hosts.extend(options.extra_allowed_hosts.iter().cloned());
    let allowed = guard::AllowedHosts::new(&hosts);
    config = config.with_allowed_hosts(hosts);
    let factory_state = state.clone();
    let sessions = Arc::new(LocalSessionManager::default());
    let mcp: StreamableHttpService<CatalogServer, LocalSessionManager> = StreamableHttpService::new(
        move || {
            factory_state
                .server()
                .map(CatalogServer::for_client)
                .ok_or_else(|| {
                    std::io::Error::other("toolmesh is starting: no catalog to serve yet")
                })
        },
        sessions.clone(),
        config,
    );
    let fast = fast_path::FastPath::new(state.clone(), sessions.clone());
    // Identified (client certificate, then credentials) before anything else is done
    // for the request (its body is not even read), after the Host check: one layer.
    let edge = Edge {
        callers: state.inner.client_callers.clone(),
        auth: options.auth.clone(),
    };
    let mcp = McpEdge(Arc::new(McpSteps {
        hosts: allowed.clone(),
        edge: edge.clone(),
        state: state.clone(),
        max_body: options.max_body_bytes,
        owners: sessions::Owners::new(sessions.clone()),
        fast,
        sessions,
        mcp,
    }));
    // Every path under `/mcp` too, as the nested service it was before.
    let mcp = Router::new()
        .route_service("/mcp", mcp.clone())
        .route_service("/mcp/", mcp.clone())
        .route_service("/mcp/{*rest}", mcp);
    let status = Router::new()
        .route("/status", get(status::status))
        .with_state(state.clone())
        .layer(from_fn_with_state(edge, identify_layer))
        .layer(from_fn_with_state(allowed, guard::layer));
    let mut open = Router::new()
        .route("/healthz", get(status::healthz))
        .route("/readyz", get(status::readyz))
        .route("/metrics", get(status::metrics))
        .with_state(state.clone());
    if let Some(auth) = &options.auth {
        for path in auth.metadata_paths() {
            let auth = auth.clone();
            open = open.route(path, get(move || async move { auth.metadata_response() }));
        }
    }
    open.merge(status)
        .layer(RequestBodyLimitLayer::new(options.max_body_bytes))
        .merge(mcp)
}

/// What `/mcp` runs for a request, in order; each step may answer instead of the next.
struct McpSteps {
    /// The `Host`/`Origin` rule.
    hosts: guard::AllowedHosts,
    /// The caller: TLS client certificate, then credentials.
    edge: Edge,
    /// `503` until ready; POSTs counted in flight.
    state: GatewayState,
    /// Version header and body checks: reads POST bodies itself, with this limit (a
    /// body-limit layer's error mid-stream would surface as a 500).
    max_body: usize,
    /// Each session bound to its creator.
    owners: sessions::Owners,
    /// `tools/call` on the data plane; after the checks above (the session's owner
    /// among them), so it sees only requests rmcp would serve.
    fast: fast_path::FastPath,
    /// `DELETE` answered as clients expect.
    sessions: Arc<LocalSessionManager>,
    /// rmcp's service, for everything else.
    mcp: StreamableHttpService<CatalogServer, LocalSessionManager>,
}

/// `/mcp`: the steps composed in one future, boxed once per request. (As a stack of
/// `from_fn` layers each step boxed its future and its `Next`, and cloned every layer
/// beneath it, per request.)
#[derive(Clone)]
struct McpEdge(Arc<McpSteps>);

impl McpSteps {
    /// The edge's checks of any request, then [`Self::in_session`].
    async fn serve(&self, request: Request) -> Response {
        guard::guard(&self.hosts, request, async |request| {
            identify(&self.edge, request, async |request| {
                require_ready(&self.state, request, async |request| {
                    requests::check(self.max_body, request, async |request| {
                        self.in_session(request).await
                    })
                    .await
                })
                .await
            })
            .await
        })
        .await
    }

    /// A checked request in its session: the owner's, then the fast path, `DELETE`, or
    /// rmcp.
    async fn in_session(&self, request: Request) -> Response {
        sessions::bind(&self.owners, request, async |request| {
            fast_path::serve(&self.fast, request, async |request| {
                self.not_fast(request).await
            })
            .await
        })
        .await
    }

    /// `DELETE`, or rmcp. Boxed: inline, rmcp's future (~6 KB) sized every request's,
    /// which is moved into its box per request.
    fn not_fast(&self, request: Request) -> toolmesh_core::BoxFuture<'_, Response> {
        Box::pin(sessions::delete(&self.sessions, request, async |request| {
            self.mcp.handle(request).await.map(Body::new)
        }))
    }
}

impl tower::Service<Request> for McpEdge {
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = toolmesh_core::BoxFuture<'static, Result<Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let steps = self.0.clone();
        Box::pin(async move { Ok(steps.serve(request).await) })
    }
}

/// What the identifying layer needs: the callers of verified client certificates, by
/// connection, and the authenticator when `gateway.auth` is set.
#[derive(Clone)]
struct Edge {
    callers: tls::ClientCallers,
    auth: Option<auth::Authenticator>,
}

/// The caller of the connection's verified client certificate, if any, into the request
/// (as [`ClientCertificate`] and as the [`Caller`](crate::Caller)); then, with
/// `gateway.auth`, the request's credentials checked ([`auth::admit`]).
async fn identify(
    edge: &Edge,
    mut request: Request,
    next: impl AsyncFnOnce(Request) -> Response,
) -> Response {
    let certificate = request
        .extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .and_then(|axum::extract::ConnectInfo(peer)| edge.callers.get(peer).map(|c| c.clone()));
    if let Some(caller) = &certificate {
        request
            .extensions_mut()
            .insert(ClientCertificate(caller.clone()));
        request.extensions_mut().insert(caller.clone());
    }
    match &edge.auth {
        Some(auth) => auth::admit(auth, certificate.as_ref(), request, next).await,
        None => next(request).await,
    }
}

/// [`identify`] as a middleware layer.
async fn identify_layer(State(edge): State<Edge>, request: Request, next: Next) -> Response {
    identify(&edge, request, async |request| next.run(request).await).await
}

/// The caller a verified TLS client certificate names (`cert:COMMON-NAME`).
#[derive(Debug, Clone)]
pub struct ClientCertificate(pub crate::Caller);

/// `/mcp` answers 503 until a catalog is served.
async fn require_ready(
    state: &GatewayState,
    request: Request,
    next: impl AsyncFnOnce(Request) -> Response,
) -> Response {
    if state.server().is_none() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "1")],
            "toolmesh is starting; retry shortly\n",
        )
            .into_response();
    }
    if request.method() != Method::POST {
        // GET holds the long-lived notification stream: not a request to drain.
        return next(request).await;
    }
    // A POST is in flight until its response body (an SSE stream carrying the
    // result) has been sent in full or dropped.
    let guard = Posting::begin(&state.inner);
    let (parts, body) = next(request).await.into_parts();
    let body = Body::from_stream(body.into_data_stream().map(move |chunk| {
        let _in_flight = &guard;
        chunk
    }));
    Response::from_parts(parts, body)
}

/// One POST to `/mcp` in flight.
struct Posting(Arc<Inner>);

impl Posting {
    fn begin(inner: &Arc<Inner>) -> Self {
        inner.posts.fetch_add(1, Ordering::AcqRel);
        Self(inner.clone())
    }
}

impl Drop for Posting {
    fn drop(&mut self) {
        if self.0.posts.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// A bound listener, ready to [`serve`](Self::serve).
#[derive(Debug)]
pub struct HttpServer {
    listener: TcpListener,
    local_addr: SocketAddr,
}

impl HttpServer {
    /// Binds `addr` (port 0 picks a free port).
    ///
    /// # Errors
    ///
    /// [`ServerError::Bind`] when the address cannot be bound.
    pub async fn bind(addr: SocketAddr) -> Result<Self, ServerError> {
        let bind = || -> std::io::Result<TcpListener> {
            let socket = if addr.is_ipv4() {
                TcpSocket::new_v4()?
            } else {
                TcpSocket::new_v6()?
            };
            socket.set_reuseaddr(true)?;
            socket.bind(addr)?;
            socket.listen(1024)
        };
        let listener = bind().map_err(|source| ServerError::Bind { addr, source })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| ServerError::Bind { addr, source })?;
        Ok(Self {
            listener,
            local_addr,
        })
    }

    /// The address bound (the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The MCP endpoint's URL over `https` when `tls`, else `http`.
    pub fn mcp_url_for(&self, tls: bool) -> String {
        format!(
            "{}://{}/mcp",
            if tls { "https" } else { "http" },
            self.local_addr
        )
    }

    /// The MCP endpoint's URL, `http://127.0.0.1:8383/mcp`.
    pub fn mcp_url(&self) -> String {
        format!("http://{}/mcp", self.local_addr)
    }

    /// Serves [`router`] until `shutdown` is cancelled, then stops accepting, marks the
    /// gateway draining, waits up to [`HttpOptions::drain_timeout`] for in-flight MCP
    /// requests (their answers included), closes the MCP sessions and returns once the connections are closed
    /// (bounded too). Accepted sockets get `TCP_NODELAY`.
    ///
    /// # Errors
    ///
    /// [`ServerError::Http`] when the server fails.
    pub async fn serve(
        self,
        state: GatewayState,
        shutdown: CancellationToken,
    ) -> Result<(), ServerError> {
        let app = router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
        let stop = shutdown.clone();
        let mut server = match state.options().tls.clone() {
            Some(tls) => {
                // Tapped only for axum's connect info (the peer's address).
                let listener =
                    TlsListener::new(self.listener, tls, state.inner.client_callers.clone())
                        .map_err(|e| ServerError::Tls(e.to_string()))?
                        .tap_io(|_| {});
                tokio::spawn(
                    axum::serve(listener, app)
                        .with_graceful_shutdown(stop.cancelled_owned())
                        .into_future(),
                )
            }
            None => {
                let listener = self.listener.tap_io(|tcp| {
                    if let Err(error) = tcp.set_nodelay(true) {
                        tracing::debug!(%error, "failed to set TCP_NODELAY");
                    }
                });
                tokio::spawn(
                    axum::serve(listener, app)
                        .with_graceful_shutdown(stop.cancelled_owned())
                        .into_future(),
                )
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => {}
            ended = &mut server => {
                state.close_sessions();
                return match ended {
                    Ok(result) => result.map_err(ServerError::Http),
                    Err(join) => Err(ServerError::Http(std::io::Error::other(join))),
                };
            }
        }
        state.set_draining();
        let drain = state.options().drain_timeout;
        if !state.drain(drain).await {
            tracing::warn!(
                in_flight = state.requests_in_flight(),
                "MCP requests still running after {drain:?}; closing sessions anyway"
            );
        }
        state.close_sessions();
        match tokio::time::timeout(Duration::from_secs(5), &mut server).await {
            Ok(Ok(result)) => result.map_err(ServerError::Http),
            Ok(Err(join)) => Err(ServerError::Http(std::io::Error::other(join))),
            Err(_) => {
                tracing::warn!("HTTP connections still open 5 s after shutdown; dropping them");
                server.abort();
                Ok(())
            }
        }
    }
}

/// Binds `addr` and serves `state` there until `shutdown` (see [`HttpServer::serve`]).
///
/// # Errors
///
/// When the address cannot be bound or the server fails.
pub async fn serve_http(
    addr: SocketAddr,
    state: GatewayState,
    shutdown: CancellationToken,
) -> Result<(), ServerError> {
    HttpServer::bind(addr).await?.serve(state, shutdown).await
}
