//! [`CatalogServer`]: the registry's catalog as one MCP server.

// Logging is deprecated by SEP-2577; 2025-11-25 clients still use it.
#![allow(deprecated)]

mod caller;
mod peers;
mod reads;
pub(crate) mod relay;
mod routing;

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use rmcp::{
    ErrorData, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, CompleteRequestParams,
        CompleteResult, ContentBlock, CustomRequest, CustomResult, ErrorCode,
        GetPromptRequestParams, GetPromptResponse, Implementation, ListPromptsResult,
        ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
        ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities, ServerConfig,
        SetLevelRequestParams, SubscribeRequestParams, SubscriptionFilter, Tool,
        UnsubscribeRequestParams,
    },
    service::{NotificationContext, RequestContext, SubscriptionContext},
};
use serde_json::Value;
use tokio::sync::Notify;
use tokio_util::sync::{CancellationToken, DropGuard};
use toolmesh_core::{CallContext, CallError, DEPTH_META_KEY, JsonObject};
use toolmesh_registry::{MeshEvent, Registry, Routed};

use crate::ServerError;

pub use caller::Caller;
pub(crate) use peers::Client;
use peers::Peers;
use relay::Downstream;
pub(crate) use relay::{ClientState, DROPPED_METRIC};
pub use routing::ROUTING_META_KEY;

/// How a [`CatalogServer`] runs calls.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerOptions {
    /// Deadline of each `tools/call` (the service's own timeout still applies when shorter).
    pub call_timeout: Duration,
    /// Name reported in `serverInfo`.
    pub name: String,
    /// Text sent as the server's `instructions`; none by default.
    pub instructions: Option<String>,
    /// Who calls when a request carries no authenticated caller (the local user over
    /// stdio); `None`: such calls are not subject to the policy.
    pub default_caller: Option<Caller>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            call_timeout: Self::DEFAULT_CALL_TIMEOUT,
            name: "toolmesh".to_owned(),
            instructions: None,
            default_caller: None,
        }
    }
}

impl ServerOptions {
    /// The per-call deadline unless configured: 60 s.
    pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(60);

    /// Sets the per-call deadline.
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// Sets the `instructions` text.
    pub fn instructions(mut self, text: impl Into<String>) -> Self {
        self.instructions = Some(text.into());
        self
    }
}

struct Shared {
    registry: Registry,
    options: ServerOptions,
    peers: Arc<Peers>,
    in_flight: AtomicUsize,
    idle: Notify,
    /// Stops the catalog follower when the last clone goes.
    _follower: DropGuard,
}

/// The aggregated catalog of a [`Registry`] served as one MCP server.
///
/// - `tools/list` answers every catalog tool under its rendered name (`namespace__tool`);
/// - `tools/call` checks the arguments against the tool's input schema (JSON Schema,
///   compiled once per catalog) and routes the
///   call through [`Registry::call`] with a deadline and the request's cancellation;
///   the result carries what the router did in `_meta` under [`ROUTING_META_KEY`];
/// - when the catalog changes, every connected client gets
///   `notifications/tools/list_changed` (2026-07-28 clients through
///   `subscriptions/listen`).
///
/// # Errors, and why they look the way they do
///
/// An unknown tool or arguments that do not fit the schema are the caller's mistake and
/// nothing was called: they are JSON-RPC errors (`-32602` invalid params) whose message
/// names the tool or the field. Every other failure (all instances down, a timeout, an
/// upstream JSON-RPC error) happened while serving a valid call: it is a tool result
/// with `isError: true` and the router's message as text, because MCP clients show tool
/// results to the model (which can then try something else) while they often render
/// protocol errors opaquely.
///
/// Cheap to clone: every clone (one per HTTP session) shares the same state.
#[derive(Clone)]
pub struct CatalogServer {
    shared: Arc<Shared>,
    /// What this client (HTTP session or stdio connection) asked for itself.
    client: Arc<ClientState>,
}

impl std::fmt::Debug for CatalogServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatalogServer")
            .field("registry", &self.shared.registry)
            .field("options", &self.shared.options)
            .field("in_flight", &self.in_flight())
            .finish()
    }
}

/// Decrements the in-flight count when a call ends, however it ends.
struct InFlight<'a>(&'a Shared);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl CatalogServer {
    /// Serves `registry` with default options. Must be called inside a Tokio runtime
    /// (it starts the task that follows catalog changes).
    pub fn new(registry: Registry) -> Self {
        Self::with_options(registry, ServerOptions::default())
    }

    /// Serves `registry` with `options`. Must be called inside a Tokio runtime.
    pub fn with_options(registry: Registry, options: ServerOptions) -> Self {
        let peers = Arc::new(Peers::default());
        let closing = CancellationToken::new();
        tokio::spawn(peers::follow_catalog(
            registry.subscribe(),
            Arc::downgrade(&peers),
            closing.clone(),
        ));
        // Compiled now, so that no call waits for it.
        registry.warm_argument_checks();
        Self {
            shared: Arc::new(Shared {
                registry,
                options,
                peers,
                in_flight: AtomicUsize::new(0),
                idle: Notify::new(),
                _follower: closing.drop_guard(),
            }),
            client: Arc::default(),
        }
    }

    /// A handle for one more client connection: the same catalog and calls, its own
    /// preferences (log level).
    pub fn for_client(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            client: Arc::default(),
        }
    }

    /// The registry calls go to.
    pub fn registry(&self) -> &Registry {
        &self.shared.registry
    }

    /// The options it runs with.
    pub fn options(&self) -> &ServerOptions {
        &self.shared.options
    }

    /// `tools/call` requests being served now.
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::Acquire)
    }

    /// Clients connected with a session (streamable HTTP or stdio).
    pub fn connected_clients(&self) -> usize {
        self.shared.peers.live().len()
    }

    /// Waits until no `tools/call` is in flight or `timeout` has passed; `true` when
    /// idle. New calls are not refused meanwhile: stop accepting them first.
    pub async fn drain(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let idle = self.shared.idle.notified();
            if self.in_flight() == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, idle).await.is_err() {
                return self.in_flight() == 0;
            }
        }
    }

    /// Tells every connected client that the tool list changed (done automatically on
    /// [`MeshEvent::CatalogChanged`]).
    pub async fn notify_tool_list_changed(&self) {
        self.shared.peers.notify_list_changed().await;
    }

    /// Every catalog tool as clients see it.
    pub fn tools(&self) -> Vec<Tool> {
        self.shared
            .registry
            .catalog()
            .entries()
            .iter()
            .map(|entry| entry.public_tool())
            .collect()
    }

    /// The caller of a request: authenticated at the edge, else the default one.
    fn caller(&self, extensions: &rmcp::model::Extensions) -> Option<Caller> {
        Caller::of_request(extensions).or_else(|| self.shared.options.default_caller.clone())
    }

    /// Whether `caller` may see the catalog name `rendered` (own name `bare`).
    fn visible(&self, caller: Option<&Caller>, rendered: &str, bare: &str) -> bool {
        self.shared
            .registry
            .permits(caller.map(|c| &*c.roles), rendered, bare)
            .is_ok()
    }

    /// A context for one call: the configured deadline and `cancel`.
    pub fn context(&self, cancel: Option<CancellationToken>) -> CallContext {
        let mut ctx = CallContext::with_timeout(self.shared.options.call_timeout);
        ctx.cancel = cancel;
        ctx
    }

    /// [`context`](Self::context) for a call to `name`: a tool with a timeout of its own
    /// (an exposed agent's run, `tools.NAME.timeout`) gets that instead of the default.
    fn context_for(&self, name: &str, cancel: Option<CancellationToken>) -> CallContext {
        let own = self
            .shared
            .registry
            .catalog()
            .resolve(name)
            .and_then(|entry| entry.policy.timeout);
        let mut ctx = CallContext::with_timeout(own.unwrap_or(self.shared.options.call_timeout));
        ctx.cancel = cancel;
        ctx
    }

    /// Checks `arguments` against the input schema of `name`, if it is a catalog tool.
    ///
    /// # Errors
    ///
    /// [`ServerError::InvalidArguments`] naming the first argument that does not fit, by
    /// JSON pointer, with the schema's complaint.
    pub fn check_arguments(
        &self,
        name: &str,
        arguments: Option<&JsonObject>,
    ) -> Result<(), ServerError> {
        let value = Value::Object(arguments.cloned().unwrap_or_default());
        self.check_value(name, &value)
    }

    /// [`check_arguments`](Self::check_arguments) of arguments already a JSON value.
    fn check_value(&self, name: &str, arguments: &Value) -> Result<(), ServerError> {
        self.shared
            .registry
            .check_argument_value(name, arguments)
            .map_err(|invalid| ServerError::InvalidArguments {
                tool: invalid.tool,
                field: invalid.field,
                pointer: invalid.pointer,
                message: invalid.message,
            })
    }

    /// Runs one call as `tools/call` does: arguments checked, then routed under `ctx`;
    /// the routing metadata comes back with the result.
    ///
    /// # Errors
    ///
    /// [`ServerError::InvalidArguments`] before any upstream call, or
    /// [`ServerError::Call`] with the router's error.
    pub async fn call_routed(
        &self,
        name: &str,
        arguments: Option<JsonObject>,
        ctx: &CallContext,
    ) -> Result<Routed, ServerError> {
        self.shared.in_flight.fetch_add(1, Ordering::AcqRel);
        let _guard = InFlight(&self.shared);
        // Refused callers learn nothing of the tool, not even its schema.
        self.shared
            .registry
            .authorize(name, arguments.as_ref(), ctx)?;
        // Validated as a JSON value without copying the arguments; none are `{}`.
        let given = arguments.is_some();
        let value = Value::Object(arguments.unwrap_or_default());
        self.check_value(name, &value)?;
        let arguments = match value {
            Value::Object(object) if given => Some(object),
            _ => None,
        };
        Ok(self.shared.registry.call(name, arguments, ctx).await?)
    }

    /// Runs one call and answers as `tools/call` does: JSON-RPC errors (invalid params)
    /// for an unknown tool or arguments that do not fit, `isError` results for every
    /// other failure (see the type's docs); a result carries the routing metadata in
    /// `_meta` under [`ROUTING_META_KEY`].
    pub async fn call(
        &self,
        name: &str,
        arguments: Option<JsonObject>,
        cancel: Option<CancellationToken>,
    ) -> Result<CallToolResult, ErrorData> {
        self.answer(name, arguments, &self.context(cancel)).await
    }

    /// [`call`](Self::call) under a given context.
    async fn answer(
        &self,
        name: &str,
        arguments: Option<JsonObject>,
        ctx: &CallContext,
    ) -> Result<CallToolResult, ErrorData> {
        match self.call_routed(name, arguments, ctx).await {
            Ok(routed) => Ok(routing::with_routing(routed)),
            Err(ServerError::InvalidArguments {
                tool,
                field,
                pointer,
                message,
            }) => Err(ErrorData::invalid_params(
                message,
                Some(serde_json::json!({ "tool": tool, "field": field, "pointer": pointer })),
            )),
            Err(ServerError::Call(e @ CallError::ToolNotFound { .. })) => Err(
                ErrorData::invalid_params(e.to_string(), Some(serde_json::json!({ "tool": name }))),
            ),
            Err(ServerError::Call(e @ CallError::Denied { .. })) => Err(denied(&e, name)),
            Err(e) => {
                tracing::debug!(tool = name, "call failed: {e}");
                Ok(CallToolResult::error(vec![ContentBlock::text(match e {
                    ServerError::Call(call) => call.to_string(),
                    other => other.to_string(),
                })]))
            }
        }
    }
}

/// The streamable-HTTP session header.
const SESSION_HEADER: &str = "mcp-session-id";

/// One `tools/call` the HTTP edge's fast path hands over: what the rmcp path reads
/// from the request and its context, read from the envelope instead.
pub(crate) struct FastCall {
    /// The tool's catalog name.
    pub(crate) name: String,
    /// Its arguments, as sent.
    pub(crate) arguments: Option<JsonObject>,
    /// How deep the call is nested (`_meta` under [`DEPTH_META_KEY`]).
    pub(crate) depth: u32,
    /// The client's JSON-RPC id of the request.
    pub(crate) request_id: rmcp::model::RequestId,
    /// Who calls, as the edge's authentication established it.
    pub(crate) caller: Option<Caller>,
}

impl CatalogServer {
    /// The client of the streamable-HTTP session `session`, once initialized and while
    /// connected.
    pub(crate) fn session_client(&self, session: &str) -> Option<Client> {
        self.shared.peers.session(session)
    }

    /// Runs one call for the fast path exactly as [`ServerHandler::call_tool`] does:
    /// the same context (deadline, depth, request id, caller, cancellation, relay) and
    /// the same answer.
    pub(crate) async fn fast_call(
        &self,
        call: FastCall,
        cancel: CancellationToken,
        relay: Arc<dyn toolmesh_core::Relay>,
    ) -> Result<CallToolResult, ErrorData> {
        let caller = call
            .caller
            .or_else(|| self.shared.options.default_caller.clone());
        let mut ctx = self.context_for(&call.name, Some(cancel));
        ctx.depth = call.depth;
        ctx.request_id = Some(call.request_id);
        if let Some(caller) = &caller {
            caller.apply(&mut ctx);
        }
        ctx.relay = Some(relay);
        self.answer(&call.name, call.arguments, &ctx).await
    }
}

/// JSON-RPC code of a call the policy refused (implementation-defined server error).
pub const DENIED_CODE: i32 = -32003;

/// A refused call as the client sees it: the tool and the missing grant.
pub(crate) fn denied(error: &CallError, name: &str) -> ErrorData {
    let reason = match error {
        CallError::Denied { reason, .. } => reason.as_str(),
        _ => "",
    };
    ErrorData::new(
        ErrorCode(DENIED_CODE),
        error.to_string(),
        Some(serde_json::json!({ "tool": name, "missing_grant": reason })),
    )
}

impl ServerHandler for CatalogServer {
    fn get_info(&self) -> ServerConfig {
        let mut config = ServerConfig::new(
            ServerCapabilities::builder()
                .enable_logging()
                .enable_completions()
                .enable_prompts()
                .enable_prompts_list_changed()
                .enable_resources()
                .enable_resources_list_changed()
                .enable_resources_subscribe()
                .enable_tools()
                .enable_tool_list_changed()
                .build(),
        )
        .with_server_info(Implementation::new(
            self.shared.options.name.clone(),
            env!("CARGO_PKG_VERSION"),
        ));
        if let Some(text) = &self.shared.options.instructions {
            config = config.with_instructions(text.clone());
        }
        config
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        // Over streamable HTTP, the session id names this client for the fast path.
        if let Some(session) = context
            .extensions
            .get::<axum::http::request::Parts>()
            .and_then(|parts| parts.headers.get(SESSION_HEADER))
            .and_then(|value| value.to_str().ok())
        {
            self.shared
                .peers
                .register_session(session, (context.peer.clone(), self.client.clone()));
        }
        self.shared
            .peers
            .register(context.peer, self.client.clone());
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.client.set_log_level(request.level);
        Ok(())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        Ok(self.prompt_list(self.caller(&context.extensions).as_ref()))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let caller = self.caller(&context.extensions);
        self.prompt(request, caller.as_ref())
            .await
            .map(GetPromptResponse::from)
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        Ok(self.resource_list(self.caller(&context.extensions).as_ref()))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let caller = self.caller(&context.extensions);
        self.resource(request, caller.as_ref())
            .await
            .map(ReadResourceResponse::from)
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(self.template_list())
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        self.completion(request).await
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.follow(&request.uri).await
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        // Upstream subscriptions stay: other clients may follow the same resource.
        self.client.follow(&request.uri, false);
        Ok(())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let caller = self.caller(&context.extensions);
        let tools = self
            .shared
            .registry
            .catalog()
            .entries()
            .iter()
            .filter(|e| self.visible(caller.as_ref(), &e.rendered, e.name.tool()))
            .map(|entry| entry.public_tool())
            .collect();
        Ok(ListToolsResult::with_all_items(tools))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.shared
            .registry
            .catalog()
            .resolve(name)
            .map(|entry| entry.public_tool())
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let downstream = Downstream {
            peer: context.peer.clone(),
            progress_token: context.meta.get_progress_token(),
            client: self.client.clone(),
        };
        // A call made by an agent elsewhere says how deep it is nested.
        let depth = context
            .meta
            .0
            .0
            .get(DEPTH_META_KEY)
            .and_then(Value::as_u64)
            .map_or(0, |depth| u32::try_from(depth).unwrap_or(u32::MAX));
        let caller = self.caller(&context.extensions);
        let mut ctx = self.context_for(&request.name, Some(context.ct));
        ctx.depth = depth;
        ctx.request_id = Some(context.id.clone());
        if let Some(caller) = &caller {
            caller.apply(&mut ctx);
        }
        relay::relayed(downstream, |relay| {
            ctx.relay = Some(relay);
            async move { self.answer(&request.name, request.arguments, &ctx).await }
        })
        .await
        .map(CallToolResponse::from)
    }

    async fn on_custom_request(
        &self,
        request: CustomRequest,
        _context: RequestContext<RoleServer>,
    ) -> Result<CustomResult, ErrorData> {
        Err(ErrorData::new(
            ErrorCode::METHOD_NOT_FOUND,
            format!("method not found: {}", request.method),
            Some(serde_json::json!({ "method": request.method })),
        ))
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        let mut accepted = SubscriptionFilter::new();
        accepted.tools_list_changed = requested.tools_list_changed;
        Some(accepted)
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), ErrorData> {
        if context.accepted().tools_list_changed != Some(true) {
            context.cancelled().await;
            return Ok(());
        }
        let mut events = self.shared.registry.subscribe();
        loop {
            tokio::select! {
                () = context.cancelled() => return Ok(()),
                event = events.recv() => match event {
                    Ok(MeshEvent::CatalogChanged { .. })
                    | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        if context.sink().notify_tool_list_changed().await.is_err() {
                            return Ok(());
                        }
                    }
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return Ok(()),
                },
            }
        }
    }
}
