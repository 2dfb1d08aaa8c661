//! [`ConformanceHandler`]: one MCP session of the conformance fixture server.

#![allow(
    deprecated,
    reason = "logging and resources/subscribe are deprecated by SEP-2577 and 2026-07-28, but the 2025-11-25 conformance scenarios exercise them"
)]

use std::{
    collections::BTreeSet,
    sync::{Arc, Mutex, MutexGuard},
};

use rmcp::{
    ErrorData, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, CompleteRequestParams, CompleteResult,
        GetPromptRequestParams, GetPromptResponse, Implementation, ListPromptsResult,
        ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, LoggingLevel,
        PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse,
        ServerCapabilities, ServerConfig, SetLevelRequestParams, SubscribeRequestParams, Tool,
        UnsubscribeRequestParams,
    },
    service::RequestContext,
};

use super::{prompts, resources, streams::ReconnectingSessions, tools};

/// One session's handler: the suite's tools, resources, prompts, completion and logging.
///
/// Sessions share only the [`ReconnectingSessions`] that `test_reconnection` uses to
/// close its own stream; the log level and resource subscriptions are per session.
#[derive(Debug, Clone)]
pub struct ConformanceHandler {
    pub(super) sessions: Arc<ReconnectingSessions>,
    session: Arc<Mutex<SessionState>>,
}

#[derive(Debug)]
struct SessionState {
    /// Least severe level still sent (`logging/setLevel`).
    level: LoggingLevel,
    subscriptions: BTreeSet<String>,
}

impl ConformanceHandler {
    pub(crate) fn new(sessions: Arc<ReconnectingSessions>) -> Self {
        Self {
            sessions,
            session: Arc::new(Mutex::new(SessionState {
                level: LoggingLevel::Debug,
                subscriptions: BTreeSet::new(),
            })),
        }
    }

    fn session(&self) -> MutexGuard<'_, SessionState> {
        self.session
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether a message at `level` passes the level the client set.
    pub(super) fn logs(&self, level: LoggingLevel) -> bool {
        severity(level) >= severity(self.session().level)
    }
}

/// The MCP log levels, least severe first (RFC 5424 order).
const LEVELS: [LoggingLevel; 8] = [
    LoggingLevel::Debug,
    LoggingLevel::Info,
    LoggingLevel::Notice,
    LoggingLevel::Warning,
    LoggingLevel::Error,
    LoggingLevel::Critical,
    LoggingLevel::Alert,
    LoggingLevel::Emergency,
];

fn severity(level: LoggingLevel) -> usize {
    LEVELS.iter().position(|l| *l == level).unwrap_or(0)
}

impl ServerHandler for ConformanceHandler {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
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
            "toolmesh-conformance-server",
            env!("CARGO_PKG_VERSION"),
        ))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(tools::list()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        tools::list().into_iter().find(|tool| tool.name == name)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        tools::call(self, request, context).await.map(Into::into)
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        Ok(ListResourcesResult::with_all_items(resources::list()))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(ListResourceTemplatesResult::with_all_items(
            resources::templates(),
        ))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        resources::read(&request.uri).map(Into::into)
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        resources::check_subscribable(&request.uri)?;
        self.session().subscriptions.insert(request.uri);
        Ok(())
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.session().subscriptions.remove(&request.uri);
        Ok(())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        Ok(ListPromptsResult::with_all_items(prompts::list()))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        prompts::get(&request.name, request.arguments.as_ref()).map(Into::into)
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        prompts::complete(&request)
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.session().level = request.level;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::{sync::Arc, time::Duration};

    use rmcp::model::LoggingLevel;

    use super::{ConformanceHandler, ReconnectingSessions};

    #[test]
    fn the_log_level_filters_less_severe_messages() {
        let handler =
            ConformanceHandler::new(Arc::new(ReconnectingSessions::new(Duration::from_secs(1))));
        assert!(handler.logs(LoggingLevel::Debug));
        handler.session().level = LoggingLevel::Warning;
        assert!(!handler.logs(LoggingLevel::Info));
        assert!(handler.logs(LoggingLevel::Error));
    }
}
