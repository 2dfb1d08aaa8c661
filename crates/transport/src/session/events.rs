//! Server-to-client notifications, fanned out to every subscriber of a session.

// Logging is deprecated by SEP-2577 but servers on 2025-11-25 still send it.
#![allow(deprecated)]

use std::sync::Arc;

use rmcp::{
    ClientHandler, ErrorData,
    model::{
        ClientCapabilities, ClientConfig, ClientResult, CreateMessageRequest,
        CreateMessageRequestParams, CreateMessageResult, ElicitRequest, ElicitRequestParams,
        ElicitResult, ElicitationCapability, Implementation, ListRootsRequest, ListRootsResult,
        LoggingMessageNotificationParam, NotificationMetaObject, ProgressNotificationParam,
        ProtocolVersion, ServerNotification, ServerRequest,
    },
    service::{InboundStreamOrigin, NotificationContext, RequestContext, RoleClient},
};
use tokio::sync::broadcast;

use super::relays::{About, Relays};

/// A notification from the server.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ServerEvent {
    /// Progress of a request; `progress_token` tells which.
    Progress(ProgressNotificationParam),
    /// A log message.
    Log(LoggingMessageNotificationParam),
    /// The tool list changed: list the tools again.
    ToolsChanged,
    /// The resource list changed.
    ResourcesChanged,
    /// The prompt list changed.
    PromptsChanged,
    /// A subscribed resource changed.
    ResourceUpdated {
        /// The resource's URI.
        uri: String,
    },
}

impl ServerEvent {
    /// Maps an rmcp notification; `None` for those toolmesh does not surface.
    pub(crate) fn from_notification(n: ServerNotification) -> Option<Self> {
        Some(match n {
            ServerNotification::ProgressNotification(n) => Self::Progress(n.params),
            ServerNotification::LoggingMessageNotification(n) => Self::Log(n.params),
            ServerNotification::ToolListChangedNotification(_) => Self::ToolsChanged,
            ServerNotification::ResourceListChangedNotification(_) => Self::ResourcesChanged,
            ServerNotification::PromptListChangedNotification(_) => Self::PromptsChanged,
            ServerNotification::ResourceUpdatedNotification(n) => {
                Self::ResourceUpdated { uri: n.params.uri }
            }
            _ => return None,
        })
    }
}

/// The client side of a session: identifies toolmesh, fans notifications out to
/// subscribers, and hands what concerns one call to that call's relay.
#[derive(Clone)]
pub(crate) struct EventHandler {
    pub(crate) events: broadcast::Sender<ServerEvent>,
    pub(crate) protocol_version: ProtocolVersion,
    pub(crate) relays: Arc<Relays>,
}

impl EventHandler {
    fn emit(&self, event: ServerEvent) {
        // No subscriber is fine: events are advisory.
        let _ = self.events.send(event);
    }

    /// Hands a server request to the relay of the call it belongs to.
    async fn relay(
        &self,
        request: ServerRequest,
        context: &RequestContext<RoleClient>,
    ) -> Result<ClientResult, ErrorData> {
        let origin = context.extensions.get::<InboundStreamOrigin>();
        let Some(relay) = self.relays.owner(origin) else {
            return Err(ErrorData::invalid_request(
                "toolmesh cannot tell which client's call this request belongs to (no call \
                 with a client to ask is in flight, or several are on this connection)",
                None,
            ));
        };
        relay.request(request).await
    }
}

impl ClientHandler for EventHandler {
    fn get_info(&self) -> ClientConfig {
        let mut config = ClientConfig::default();
        config.protocol_version = self.protocol_version.clone();
        config.client_info = Implementation::new("toolmesh", env!("CARGO_PKG_VERSION"));
        // Sampling and elicitation go to the client whose call asked (through its relay).
        let mut capabilities = ClientCapabilities::default();
        capabilities.sampling = Some(Default::default());
        let mut elicitation = ElicitationCapability::new();
        elicitation.form = Some(Default::default());
        capabilities.elicitation = Some(elicitation);
        config.capabilities = capabilities;
        config
    }

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _: NotificationContext<RoleClient>,
    ) {
        if let Some(relay) = self.relays.by_token(&params.progress_token) {
            relay.progress(params.clone());
        }
        self.emit(ServerEvent::Progress(params));
    }

    async fn on_logging_message(
        &self,
        params: LoggingMessageNotificationParam,
        context: NotificationContext<RoleClient>,
    ) {
        // rmcp 3.9 leaves a notification's `_meta` among the context's extensions.
        let in_extensions = context.extensions.get::<NotificationMetaObject>();
        let about = About::from_meta(
            [Some(&context.meta), in_extensions, params.meta.as_ref()]
                .into_iter()
                .flatten()
                .map(|m| &m.0.0),
        );
        if let Some(relay) = self.relays.log_owner(&about) {
            relay.log(params.clone());
        }
        self.emit(ServerEvent::Log(params));
    }

    async fn create_message(
        &self,
        params: CreateMessageRequestParams,
        context: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, ErrorData> {
        let request = ServerRequest::CreateMessageRequest(CreateMessageRequest::new(params));
        match self.relay(request, &context).await? {
            ClientResult::CreateMessageResult(result) => Ok(*result),
            _ => Err(unexpected("sampling/createMessage")),
        }
    }

    async fn create_elicitation(
        &self,
        params: ElicitRequestParams,
        context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        let request = ServerRequest::ElicitRequest(ElicitRequest::new(params));
        match self.relay(request, &context).await? {
            ClientResult::ElicitResult(result) => Ok(result),
            _ => Err(unexpected("elicitation/create")),
        }
    }

    async fn list_roots(
        &self,
        context: RequestContext<RoleClient>,
    ) -> Result<ListRootsResult, ErrorData> {
        let request = ServerRequest::ListRootsRequest(ListRootsRequest::default());
        match self.relay(request, &context).await {
            Ok(ClientResult::ListRootsResult(result)) => Ok(result),
            // No client to ask: no roots, as when roots are not supported.
            _ => Ok(ListRootsResult::default()),
        }
    }

    async fn on_tool_list_changed(&self, _: NotificationContext<RoleClient>) {
        self.emit(ServerEvent::ToolsChanged);
    }

    async fn on_resource_list_changed(&self, _: NotificationContext<RoleClient>) {
        self.emit(ServerEvent::ResourcesChanged);
    }

    async fn on_prompt_list_changed(&self, _: NotificationContext<RoleClient>) {
        self.emit(ServerEvent::PromptsChanged);
    }

    async fn on_resource_updated(
        &self,
        params: rmcp::model::ResourceUpdatedNotificationParam,
        _: NotificationContext<RoleClient>,
    ) {
        self.emit(ServerEvent::ResourceUpdated { uri: params.uri });
    }
}

fn unexpected(method: &str) -> ErrorData {
    ErrorData::internal_error(
        format!("the client answered {method} with another result type"),
        None,
    )
}
