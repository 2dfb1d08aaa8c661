//! [`Session`]: one live MCP connection, whatever the wire, with a deadline on every call.

mod bounded;
mod classify;
mod events;
mod relays;

use std::{future::Future, sync::Arc, time::Duration};

use rmcp::{
    ClientHandler,
    model::{
        CallToolRequest, CallToolRequestParams, CallToolResult, CancelledNotificationParam,
        ClientRequest, CompleteRequestParams, CompleteResult, GetPromptRequestParams,
        GetPromptResult, JsonObject, Prompt, ProtocolVersion, ReadResourceRequestParams,
        ReadResourceResult, RequestId, Resource, ResourceTemplate, ServerPeerInfo, ServerResult,
        SubscribeRequestParams, SubscriptionFilter, Tool,
    },
    service::{
        ClientLifecycleMode, ClientServiceExt, PeerRequestOptions, RoleClient, RunningService,
        ServiceError,
    },
};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use toolmesh_core::{
    BoxFuture, CallContext, CallError, DEPTH_META_KEY, Invoker, Phase, Relay, ToolCall,
};

use bounded::bounded;
use events::EventHandler;
pub use events::ServerEvent;
use relays::Relays;

use crate::{Endpoint, ProtocolChoice, TransportKind, http, stdio, websocket};

/// Buffered notifications per subscriber before the slowest one starts missing some.
const EVENT_BUFFER: usize = 256;

/// How long `connect` waits for the server to answer the standalone GET stream, so that
/// nothing the server sends right after the handshake is lost.
const STANDALONE_STREAM_WAIT: Duration = Duration::from_secs(1);

/// Counts each `tools/call` by the upstream leg that carried it (`direct` or `rmcp`).
pub const UPSTREAM_CALLS: &str = "toolmesh_upstream_calls_total";

/// A connected MCP server. Cheap to clone; every clone is the same connection.
///
/// Dropping the last clone closes the connection; for stdio the child process (and its
/// process group) is killed and reaped.
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

struct Inner {
    label: Arc<str>,
    kind: TransportKind,
    service: RunningService<RoleClient, EventHandler>,
    info: Arc<ServerPeerInfo>,
    events: broadcast::Sender<ServerEvent>,
    relays: Arc<Relays>,
    call_timeout: Duration,
    /// How a stdio child ended, once it has.
    exit: Option<stdio::ExitWatch>,
    /// Held for its `Drop`: kills the child.
    child: Option<stdio::ChildGuard>,
    /// Cancelled when the session is dropped; stops helper tasks.
    closing: CancellationToken,
    /// The session as `tools/call` posts in it directly (streamable HTTP only).
    direct: Option<Arc<http::direct::Upstream>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.closing.cancel();
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("endpoint", &self.inner.label)
            .field("transport", &self.inner.kind)
            .field("protocol", &self.protocol_version().as_str())
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl Session {
    /// Connects to `endpoint` and runs the MCP handshake within its connect timeout.
    pub async fn connect(endpoint: &Endpoint) -> Result<Self, CallError> {
        let label: Arc<str> = endpoint.label().into();
        let kind = endpoint.validate().map_err(|e| CallError::InvalidRequest {
            reason: format!("endpoint {label}: {e}"),
        })?;
        let connect_timeout = endpoint
            .connect_timeout
            .unwrap_or(Endpoint::DEFAULT_CONNECT_TIMEOUT);
        let ctx = CallContext::with_timeout(connect_timeout);
        let choice = endpoint.protocol_version.unwrap_or_default();
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let relays = Arc::new(Relays::default());
        let handler = EventHandler {
            events: events.clone(),
            protocol_version: ProtocolVersion::V_2025_11_25,
            relays: relays.clone(),
        };
        let lifecycle = match choice {
            ProtocolChoice::V2025_11_25 => ClientLifecycleMode::Initialize,
            ProtocolChoice::V2026_07_28 => ClientLifecycleMode::Auto {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
                legacy_version: Some(ProtocolVersion::V_2025_11_25),
            },
        };

        let mut child = None;
        let mut exit = None;
        let mut standalone = None;
        let mut direct = None;
        let started = match kind {
            TransportKind::Stdio => {
                let spawned = stdio::spawn(endpoint, label.clone()).map_err(|e| {
                    let (program, _) = endpoint.argv().unwrap_or_default();
                    CallError::Connect {
                        target: label.clone(),
                        reason: format!(
                            "cannot start `{program}`: {e}; check `command`, `cwd` and PATH"
                        ),
                    }
                })?;
                child = Some(spawned.guard);
                exit = Some(spawned.exit);
                let transport = (spawned.stdout, spawned.stdin);
                bounded(
                    &label,
                    &ctx,
                    handler.serve_with_lifecycle(transport, lifecycle),
                )
                .await
            }
            TransportKind::StreamableHttp => {
                let url = endpoint.url.as_deref().unwrap_or_default();
                let client = http::shared_client().map_err(|e| CallError::Connect {
                    target: label.clone(),
                    reason: e.to_string(),
                })?;
                let transport = http::transport(client, endpoint, url).map_err(|e| {
                    CallError::InvalidRequest {
                        reason: format!("endpoint {label}: {e}"),
                    }
                })?;
                standalone = Some(transport.standalone);
                direct = Some(transport.upstream);
                bounded(
                    &label,
                    &ctx,
                    handler.serve_with_lifecycle(transport.rmcp, lifecycle),
                )
                .await
            }
            TransportKind::Websocket => {
                let url = endpoint.url.as_deref().unwrap_or_default();
                let req =
                    websocket::request(endpoint, url).map_err(|e| CallError::InvalidRequest {
                        reason: format!("endpoint {label}: {e}"),
                    })?;
                let connected = bounded(&label, &ctx, websocket::connect(req)).await?;
                let transport =
                    connected.map_err(|e| classify::transport(&label, &e, Phase::BeforeSend))?;
                bounded(
                    &label,
                    &ctx,
                    handler.serve_with_lifecycle(transport, lifecycle),
                )
                .await
            }
        };
        let service = match started {
            Ok(Ok(service)) => service,
            Ok(Err(e)) => {
                let mut err = classify::initialize(&label, e);
                if let (CallError::Connect { reason, .. }, Some(exit)) = (&mut err, &exit)
                    && let Some(how) = exit.how(Duration::from_secs(1)).await
                {
                    reason.push_str(&format!(" ({how}; see its stderr in the log)"));
                }
                return Err(err);
            }
            Err(CallError::Timeout { .. }) => {
                return Err(CallError::Connect {
                    target: label,
                    reason: format!(
                        "no answer to the MCP handshake within {connect_timeout:?}; is it an MCP server on this transport? (raise connect_timeout if it starts slowly)"
                    ),
                });
            }
            Err(e) => return Err(e),
        };
        let Some(info) = service.peer_info() else {
            return Err(CallError::Protocol {
                target: label,
                reason: "the handshake finished without server information".into(),
            });
        };
        if let Some(stream) = standalone
            && !stream.settled(STANDALONE_STREAM_WAIT).await
        {
            tracing::debug!(server = %label, "no answer to the standalone GET stream yet; going on without it");
        }
        let closing = CancellationToken::new();
        if let Some(exit) = exit.clone() {
            // A dead child closes the session at once, even if a grandchild keeps stdout open.
            let ct = service.cancellation_token();
            let closing = closing.clone();
            tokio::spawn(async move {
                tokio::select! {
                    () = exit.exited() => ct.cancel(),
                    () = closing.cancelled() => {}
                }
            });
        }
        let session = Self {
            inner: Arc::new(Inner {
                label,
                kind,
                service,
                info,
                events,
                relays,
                call_timeout: endpoint.call_timeout(),
                exit,
                child,
                closing,
                direct,
            }),
        };
        if session.protocol_version() >= &ProtocolVersion::V_2026_07_28 {
            session.listen_for_list_changes();
        }
        Ok(session)
    }

    /// From 2026-07-28 on, list-changed notifications come on a `subscriptions/listen` stream.
    fn listen_for_list_changes(&self) {
        let peer = self.inner.service.peer().clone();
        let events = self.inner.events.clone();
        let closing = self.inner.closing.clone();
        let label = self.inner.label.clone();
        tokio::spawn(async move {
            let filter = SubscriptionFilter::builder()
                .tools_list_changed()
                .resources_list_changed()
                .prompts_list_changed()
                .build();
            let mut sub = match peer.listen(filter).await {
                Ok(sub) => sub,
                Err(e) => {
                    tracing::debug!(server = %label, "no list-changed subscription: {e}");
                    return;
                }
            };
            loop {
                tokio::select! {
                    next = sub.next() => match next {
                        Ok(Some(n)) => {
                            if let Some(event) = ServerEvent::from_notification(n) {
                                let _ = events.send(event);
                            }
                        }
                        _ => break,
                    },
                    () = closing.cancelled() => break,
                }
            }
        });
    }

    /// The endpoint as named in errors.
    pub fn label(&self) -> &str {
        &self.inner.label
    }

    /// The wire in use.
    pub fn transport(&self) -> TransportKind {
        self.inner.kind
    }

    /// What the server said about itself in the handshake.
    pub fn server_info(&self) -> &ServerPeerInfo {
        &self.inner.info
    }

    /// The negotiated protocol revision.
    pub fn protocol_version(&self) -> &ProtocolVersion {
        &self.inner.info.protocol_version
    }

    /// Process id of a stdio server.
    pub fn pid(&self) -> Option<u32> {
        self.inner.child.as_ref().map(stdio::ChildGuard::pid)
    }

    /// Whether the connection is gone (child exited, transport closed); calls will fail.
    pub fn is_closed(&self) -> bool {
        self.inner.service.is_closed() || self.inner.service.peer().is_transport_closed()
    }

    /// Subscribes to the server's notifications from now on.
    pub fn events(&self) -> broadcast::Receiver<ServerEvent> {
        self.inner.events.subscribe()
    }

    /// A context with this endpoint's default call timeout.
    pub fn context(&self) -> CallContext {
        CallContext::with_timeout(self.inner.call_timeout)
    }

    /// Fails fast, before sending, when the session is known to be dead.
    fn ensure_open(&self) -> Result<(), CallError> {
        if self.is_closed() {
            return Err(CallError::Closed {
                target: self.inner.label.clone(),
                phase: Phase::BeforeSend,
                reason: "the session is closed".to_owned(),
            });
        }
        Ok(())
    }

    async fn request<T>(
        &self,
        ctx: &CallContext,
        fut: impl Future<Output = Result<T, ServiceError>>,
    ) -> Result<T, CallError> {
        self.ensure_open()?;
        match bounded(&self.inner.label, ctx, fut).await? {
            Ok(out) => Ok(out),
            Err(e) => {
                let err = classify::service(&self.inner.label, e, None);
                // The child may be reaped a moment after its stdout closed: name how it ended.
                match (&err, &self.inner.exit) {
                    (CallError::Closed { .. }, Some(exit)) => {
                        let how = exit.how(ctx.remaining().min(Duration::from_secs(1))).await;
                        Err(classify::service(
                            &self.inner.label,
                            ServiceError::TransportClosed,
                            how.as_deref(),
                        ))
                    }
                    _ => Err(err),
                }
            }
        }
    }

    /// Calls a tool by its name on this server.
    pub async fn call_tool(
        &self,
        name: &str,
        arguments: Option<JsonObject>,
        ctx: &CallContext,
    ) -> Result<CallToolResult, CallError> {
        let mut params = CallToolRequestParams::new(name.to_owned());
        params.arguments = arguments;
        if ctx.depth > 0 {
            let mut meta = rmcp::model::RequestMetaObject::new();
            meta.0.0.insert(DEPTH_META_KEY.to_owned(), ctx.depth.into());
            params.meta = Some(meta);
        }
        if let Some(served) = self.call_direct(&params, ctx).await {
            metrics::counter!(UPSTREAM_CALLS, "path" => "direct").increment(1);
            return served;
        }
        metrics::counter!(UPSTREAM_CALLS, "path" => "rmcp").increment(1);
        // Boxed: rmcp's request futures would size the direct path's too (and with it
        // every routed call's future, copied into its box per call).
        let call: BoxFuture<'_, _> = match &ctx.relay {
            None => Box::pin(self.request(ctx, self.inner.service.peer().call_tool(params))),
            Some(relay) => Box::pin(self.request(ctx, self.call_relayed(params, relay.clone()))),
        };
        call.await
    }

    /// `tools/call` posted straight in the session rmcp established
    /// ([`http::direct`]): streamable HTTP before 2026-07-28, once the session has an id.
    /// `None` when it does not apply or sent nothing (the server forgot the session):
    /// the call goes the rmcp way.
    async fn call_direct(
        &self,
        params: &CallToolRequestParams,
        ctx: &CallContext,
    ) -> Option<Result<CallToolResult, CallError>> {
        let upstream = self.inner.direct.as_ref()?;
        // 2026-07-28 adds per-request headers rmcp computes; earlier versions post alike.
        if !http::direct::enabled() || self.protocol_version() >= &ProtocolVersion::V_2026_07_28 {
            return None;
        }
        let attached = upstream.attached()?;
        if let Err(closed) = self.ensure_open() {
            return Some(Err(closed));
        }
        let client = http::shared_client().ok()?;
        let id = upstream.request_id();
        // As rmcp does, every call asks for progress: subscribers to `events` see it too.
        let token = http::direct::progress_token(&id);
        let mut sent = params.clone();
        sent.meta
            .get_or_insert_with(Default::default)
            .set_progress_token(token.clone());
        let _registered = ctx
            .relay
            .as_ref()
            .map(|relay| self.inner.relays.register(id.clone(), token, relay.clone()));
        let abandoned = CancelOnDrop {
            peer: self.inner.service.peer().clone(),
            id: Some(id.clone()),
        };
        let listeners = http::direct::Listeners {
            relay: ctx.relay.as_ref(),
            events: &self.inner.events,
        };
        let label = &self.inner.label;
        let call = http::direct::call(&client, &attached, id, sent, listeners, http::event_limit());
        let outcome = match bounded(label, ctx, call).await {
            Ok(outcome) => outcome,
            // Dropping `abandoned` armed tells the server.
            Err(e) => return Some(Err(e)),
        };
        abandoned.disarm();
        use http::direct::Outcome;
        Some(match outcome {
            Outcome::Answered(Ok(result)) => Ok(result),
            Outcome::Answered(Err(error)) => Err(classify::service(
                label,
                rmcp::service::ServiceError::McpError(error),
                None,
            )),
            Outcome::NotSent => return None,
            Outcome::Failed(e) => Err(classify::transport(label, &e, Phase::AfterSend)),
            Outcome::NoAnswer => Err(CallError::Closed {
                target: label.clone(),
                phase: Phase::AfterSend,
                reason: "the server ended the call's stream without answering".to_owned(),
            }),
        })
    }

    /// `tools/call` whose progress, logs and server requests go to `relay`.
    async fn call_relayed(
        &self,
        params: CallToolRequestParams,
        relay: Arc<dyn Relay>,
    ) -> Result<CallToolResult, ServiceError> {
        let peer = self.inner.service.peer();
        let request = ClientRequest::CallToolRequest(CallToolRequest::new(params));
        let handle = peer
            .send_request_with_option(request, PeerRequestOptions::no_options())
            .await?;
        let _registered =
            self.inner
                .relays
                .register(handle.id.clone(), handle.progress_token.clone(), relay);
        let abandoned = CancelOnDrop {
            peer: peer.clone(),
            id: Some(handle.id.clone()),
        };
        let answer = handle.await_response().await;
        abandoned.disarm();
        // rmcp runs notification handlers as tasks spawned before it hands over the
        // answer; let those run now so the call's last logs usually precede its answer
        // (later ones still reach the relay while it lingers).
        for _ in 0..2 {
            tokio::task::yield_now().await;
        }
        match answer? {
            ServerResult::CallToolResult(result) => Ok(result),
            _ => Err(ServiceError::UnexpectedResponse),
        }
    }

    /// Every tool, following pagination.
    pub async fn list_tools(&self, ctx: &CallContext) -> Result<Vec<Tool>, CallError> {
        self.request(ctx, self.inner.service.peer().list_all_tools())
            .await
    }

    /// Pings the server.
    pub async fn ping(&self, ctx: &CallContext) -> Result<(), CallError> {
        let peer = self.inner.service.peer();
        self.request(ctx, async {
            peer.send_request(rmcp::model::ClientRequest::PingRequest(Default::default()))
                .await
                .map(|_| ())
        })
        .await
    }

    /// Asks the server to send only logs at `level` or above (`logging/setLevel`).
    #[allow(deprecated)] // SEP-2577 deprecates logging; 2025-11-25 servers still honour it.
    pub async fn set_log_level(
        &self,
        level: rmcp::model::LoggingLevel,
        ctx: &CallContext,
    ) -> Result<(), CallError> {
        let peer = self.inner.service.peer();
        self.request(
            ctx,
            peer.set_level(rmcp::model::SetLevelRequestParams::new(level)),
        )
        .await
    }

    /// Every resource, following pagination.
    pub async fn list_resources(&self, ctx: &CallContext) -> Result<Vec<Resource>, CallError> {
        self.request(ctx, self.inner.service.peer().list_all_resources())
            .await
    }

    /// Reads a resource.
    pub async fn read_resource(
        &self,
        uri: &str,
        ctx: &CallContext,
    ) -> Result<ReadResourceResult, CallError> {
        let params = ReadResourceRequestParams::new(uri.to_owned());
        self.request(ctx, self.inner.service.read_resource(params))
            .await
    }

    /// Every resource template, following pagination.
    pub async fn list_resource_templates(
        &self,
        ctx: &CallContext,
    ) -> Result<Vec<ResourceTemplate>, CallError> {
        self.request(ctx, self.inner.service.peer().list_all_resource_templates())
            .await
    }

    /// Asks the server for completions of a prompt or resource-template argument.
    pub async fn complete(
        &self,
        params: CompleteRequestParams,
        ctx: &CallContext,
    ) -> Result<CompleteResult, CallError> {
        self.request(ctx, self.inner.service.peer().complete(params))
            .await
    }

    /// Asks to be told (as [`ServerEvent::ResourceUpdated`]) when `uri` changes.
    #[allow(deprecated, reason = "2025-11-25 servers take resources/subscribe")]
    pub async fn subscribe(&self, uri: &str, ctx: &CallContext) -> Result<(), CallError> {
        let params = SubscribeRequestParams::new(uri.to_owned());
        self.request(ctx, self.inner.service.peer().subscribe(params))
            .await
    }

    /// Every prompt, following pagination.
    pub async fn list_prompts(&self, ctx: &CallContext) -> Result<Vec<Prompt>, CallError> {
        self.request(ctx, self.inner.service.peer().list_all_prompts())
            .await
    }

    /// Renders a prompt.
    pub async fn get_prompt(
        &self,
        name: &str,
        arguments: Option<JsonObject>,
        ctx: &CallContext,
    ) -> Result<GetPromptResult, CallError> {
        let mut params = GetPromptRequestParams::new(name.to_owned());
        params.arguments = arguments;
        self.request(ctx, self.inner.service.get_prompt(params))
            .await
    }

    /// Closes the connection now, for every clone. A stdio child is killed and reaped
    /// before this returns (bounded by `timeout`).
    pub async fn close(&self, timeout: Duration) {
        self.inner.service.cancellation_token().cancel();
        if let Some(child) = &self.inner.child {
            child.kill();
        }
        if let Some(exit) = &self.inner.exit {
            let _ = tokio::time::timeout(timeout, exit.exited()).await;
        }
        // Let the service loop close its transport (the HTTP worker ends its session)
        // before returning: a runtime shut down under it logs "fail to close sink".
        let peer = self.inner.service.peer();
        let _ = tokio::time::timeout(timeout, async {
            while !peer.is_transport_closed() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
    }
}

/// Tells the server a request was abandoned (cancelled, timed out) before its answer.
struct CancelOnDrop {
    peer: rmcp::Peer<RoleClient>,
    id: Option<RequestId>,
}

impl CancelOnDrop {
    fn disarm(mut self) {
        self.id = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        let Some(id) = self.id.take() else { return };
        let peer = self.peer.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let reason = "request abandoned by the caller".to_owned();
                let params = CancelledNotificationParam::new(Some(id), Some(reason));
                let _ = peer.notify_cancelled(params).await;
            });
        }
    }
}

impl Invoker for Session {
    /// Calls `call.name.tool()` here; the namespace is the router's business.
    async fn invoke(&self, call: ToolCall, ctx: &CallContext) -> Result<CallToolResult, CallError> {
        self.call_tool(call.name.tool(), call.arguments, ctx).await
    }
}

// Keep the handler type private but assert it is a valid rmcp client.
const _: fn() = || {
    fn assert_handler<H: ClientHandler>() {}
    assert_handler::<EventHandler>();
};
