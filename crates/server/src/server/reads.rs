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

use super::{CatalogServer, caller::Caller};

impl CatalogServer {
    pub(super) fn prompt_list(&self, caller: Option<&Caller>) -> ListPromptsResult {
        let prompts = self
            .shared
            .registry
            .catalog()
            .prompts()
            .iter()
            .filter(|p| self.visible(caller, &p.rendered, p.name.tool()))
            .map(|p| p.public_prompt())
            .collect();
        ListPromptsResult::with_all_items(prompts)
    }

    pub(super) fn resource_list(&self, caller: Option<&Caller>) -> ListResourcesResult {
        let resources = self
            .shared
            .registry
            .resources()
            .into_iter()
            .filter(|r| self.visible(caller, &r.uri, &r.uri))
            .collect();
        ListResourcesResult::with_all_items(resources)
    }

    /// A context for a read by `caller`.
    fn read_context(&self, caller: Option<&Caller>) -> toolmesh_core::CallContext {
        let mut ctx = self.context(None);
        if let Some(caller) = caller {
            caller.apply(&mut ctx);
        }
        ctx
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
        caller: Option<&Caller>,
    ) -> Result<GetPromptResult, ErrorData> {
        let ctx = self.read_context(caller);
        self.shared
            .registry
            .get_prompt(&request.name, request.arguments, &ctx)
            .await
            .map_err(|e| upstream_error(e, "prompt", ErrorData::invalid_params))
    }

    pub(super) async fn resource(
        &self,
        request: ReadResourceRequestParams,
        caller: Option<&Caller>,
    ) -> Result<ReadResourceResult, ErrorData> {
        let ctx = self.read_context(caller);
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
        CallError::Denied { tool, .. } => super::denied(&error, tool),
        CallError::Rpc { code, message, .. } => {
            ErrorData::new(rmcp::model::ErrorCode(*code), message.clone(), None)
        }
        _ if error.kind() == ErrorKind::InvalidRequest => {
            ErrorData::invalid_params(error.to_string(), None)
        }
        _ => ErrorData::internal_error(error.to_string(), None),
    }
}
