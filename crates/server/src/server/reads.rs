//! Prompts and resources of every upstream, served through the catalog.

use rmcp::{
    ErrorData,
    model::{
        CompleteRequestParams, CompleteResult, GetPromptRequestParams, GetPromptResult,
        ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult,
        ReadResourceRequestParams, ReadResourceResult,
    },
};
use toolmesh_core::{CallError, ErrorKind};

use super::CatalogServer;

impl CatalogServer {
    pub(super) fn prompt_list(&self) -> ListPromptsResult {
        ListPromptsResult::with_all_items(self.shared.registry.prompts())
    }

    pub(super) fn resource_list(&self) -> ListResourcesResult {
        ListResourcesResult::with_all_items(self.shared.registry.resources())
    }

    pub(super) fn template_list(&self) -> ListResourceTemplatesResult {
        ListResourceTemplatesResult::with_all_items(self.shared.registry.resource_templates())
    }

    pub(super) async fn completion(
        &self,
        request: CompleteRequestParams,
    ) -> Result<CompleteResult, ErrorData> {
        let ctx = self.context(None);
        self.shared
            .registry
            .complete(request, &ctx)
            .await
            .map_err(|e| {
                upstream_error(e, "prompt or resource template", ErrorData::invalid_params)
            })
    }

    /// Subscribes upstream, then remembers that this client follows `uri`.
    pub(super) async fn follow(&self, uri: &str) -> Result<(), ErrorData> {
        let ctx = self.context(None);
        self.shared
            .registry
            .subscribe_resource(uri, &ctx)
            .await
            .map_err(|e| upstream_error(e, "resource", ErrorData::resource_not_found))?;
        self.client.follow(uri, true);
        Ok(())
    }

    pub(super) async fn prompt(
        &self,
        request: GetPromptRequestParams,
    ) -> Result<GetPromptResult, ErrorData> {
        let ctx = self.context(None);
        self.shared
            .registry
            .get_prompt(&request.name, request.arguments, &ctx)
            .await
            .map_err(|e| upstream_error(e, "prompt", ErrorData::invalid_params))
    }

    pub(super) async fn resource(
        &self,
        request: ReadResourceRequestParams,
    ) -> Result<ReadResourceResult, ErrorData> {
        let ctx = self.context(None);
        self.shared
            .registry
            .read_resource(&request.uri, &ctx)
            .await
            .map_err(|e| upstream_error(e, "resource", ErrorData::resource_not_found))
    }
}

/// A failed read as the client should see it: unknown names with `not_found`'s code,
/// upstream JSON-RPC errors with their own code, the rest as internal errors.
fn upstream_error(
    error: CallError,
    what: &str,
    not_found: fn(String, Option<serde_json::Value>) -> ErrorData,
) -> ErrorData {
    match &error {
        CallError::ToolNotFound { tool, hint } => {
            not_found(format!("no {what} `{tool}`{hint}"), None)
        }
        CallError::Rpc { code, message, .. } => {
            ErrorData::new(rmcp::model::ErrorCode(*code), message.clone(), None)
        }
        _ if error.kind() == ErrorKind::InvalidRequest => {
            ErrorData::invalid_params(error.to_string(), None)
        }
        _ => ErrorData::internal_error(error.to_string(), None),
    }
}
