//! Server-to-client notifications, fanned out to every subscriber of a session.

// Logging is deprecated by SEP-2577 but servers on 2025-11-25 still send it.
#![allow(deprecated)]

use rmcp::{
    ClientHandler,
    model::{
        ClientConfig, Implementation, LoggingMessageNotificationParam, ProgressNotificationParam,
        ProtocolVersion, ServerNotification,
    },
    service::{NotificationContext, RoleClient},
};
use tokio::sync::broadcast;

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

/// The client side of a session: identifies toolmesh and forwards notifications.
#[derive(Debug, Clone)]
pub(crate) struct EventHandler {
    pub(crate) events: broadcast::Sender<ServerEvent>,
    pub(crate) protocol_version: ProtocolVersion,
}

impl EventHandler {
    fn emit(&self, event: ServerEvent) {
        // No subscriber is fine: events are advisory.
        let _ = self.events.send(event);
    }
}

impl ClientHandler for EventHandler {
    fn get_info(&self) -> ClientConfig {
        let mut config = ClientConfig::default();
        config.protocol_version = self.protocol_version.clone();
        config.client_info = Implementation::new("toolmesh", env!("CARGO_PKG_VERSION"));
        config
    }

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _: NotificationContext<RoleClient>,
    ) {
        self.emit(ServerEvent::Progress(params));
    }

    async fn on_logging_message(
        &self,
        params: LoggingMessageNotificationParam,
        _: NotificationContext<RoleClient>,
    ) {
        self.emit(ServerEvent::Log(params));
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
