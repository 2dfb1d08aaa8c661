//! Prompts and resources: reads, so any instance of the owning service may answer and a
//! failed instance is simply skipped.

use std::{future::Future, sync::Arc};

use toolmesh_core::{CallContext, CallError, JsonObject, Phase, ServerId};
use toolmesh_transport::{
    CompleteRequestParams, CompleteResult, GetPromptResult, Prompt, ReadResourceResult, Reference,
    Resource, ResourceTemplate, Session,
};

use crate::{Registry, registry::service::Service};

impl Registry {
    /// Every prompt of every enabled service, renamed `namespace__prompt`.
    pub fn prompts(&self) -> Vec<Prompt> {
        self.catalog()
            .prompts()
            .iter()
            .map(|p| p.public_prompt())
            .collect()
    }

    /// Every resource of every enabled service.
    pub fn resources(&self) -> Vec<Resource> {
        self.catalog()
            .resources()
            .iter()
            .map(|r| r.resource.clone())
            .collect()
    }

    /// Renders a prompt by its catalog name.
    pub async fn get_prompt(
        &self,
        name: &str,
        arguments: Option<JsonObject>,
        ctx: &CallContext,
    ) -> Result<GetPromptResult, CallError> {
        let catalog = self.catalog();
        let entry = catalog
            .prompt(name)
            .cloned()
            .ok_or_else(|| CallError::ToolNotFound {
                tool: name.to_owned(),
                hint: format!("; {} prompts are registered", catalog.prompts().len()),
            })?;
        let upstream = entry.name.tool().to_owned();
        self.admit(ctx, &entry.rendered, &upstream)?;
        self.read_through(&entry.service, ctx, |s| {
            let (upstream, arguments) = (upstream.clone(), arguments.clone());
            async move { s.get_prompt(&upstream, arguments, ctx).await }
        })
        .await
    }

    /// Reads a resource by URI from the service that serves it.
    pub async fn read_resource(
        &self,
        uri: &str,
        ctx: &CallContext,
    ) -> Result<ReadResourceResult, CallError> {
        let service = self.resource_owner(uri)?;
        self.admit(ctx, uri, uri)?;
        self.read_through(
            &service,
            ctx,
            |s| async move { s.read_resource(uri, ctx).await },
        )
        .await
    }

    /// Every resource template of every enabled service.
    pub fn resource_templates(&self) -> Vec<ResourceTemplate> {
        self.catalog()
            .templates()
            .iter()
            .map(|t| t.template.clone())
            .collect()
    }

    /// Asks the service owning the referenced prompt or resource template for argument
    /// completions; the prompt is named as the catalog names it.
    pub async fn complete(
        &self,
        mut params: CompleteRequestParams,
        ctx: &CallContext,
    ) -> Result<CompleteResult, CallError> {
        let catalog = self.catalog();
        let service = match &mut params.r#ref {
            Reference::Prompt(prompt) => {
                let entry =
                    catalog
                        .prompt(&prompt.name)
                        .ok_or_else(|| CallError::ToolNotFound {
                            tool: prompt.name.clone(),
                            hint: format!("; {} prompts are registered", catalog.prompts().len()),
                        })?;
                prompt.name = entry.name.tool().to_owned();
                entry.service.clone()
            }
            Reference::Resource(resource) => catalog
                .template_owner(&resource.uri)
                .or_else(|| catalog.resource_owner(&resource.uri))
                .cloned()
                .ok_or_else(|| CallError::ToolNotFound {
                    tool: resource.uri.clone(),
                    hint: format!(
                        "; {} resource templates are registered",
                        catalog.templates().len()
                    ),
                })?,
            other => {
                return Err(CallError::InvalidRequest {
                    reason: format!("completion/complete: unsupported reference {other:?}"),
                });
            }
        };
        self.read_through(&service, ctx, |s| {
            let params = params.clone();
            async move { s.complete(params, ctx).await }
        })
        .await
    }

    /// Subscribes to changes of `uri` at the service serving it; each change arrives
    /// as [`MeshEvent::ResourceUpdated`](crate::MeshEvent::ResourceUpdated).
    pub async fn subscribe_resource(&self, uri: &str, ctx: &CallContext) -> Result<(), CallError> {
        let service = self.resource_owner(uri)?;
        self.admit(ctx, uri, uri)?;
        self.read_through(
            &service,
            ctx,
            |s| async move { s.subscribe(uri, ctx).await },
        )
        .await
    }

    fn resource_owner(&self, uri: &str) -> Result<ServerId, CallError> {
        let catalog = self.catalog();
        catalog
            .resource_owner(uri)
            .cloned()
            .ok_or_else(|| CallError::ToolNotFound {
                tool: uri.to_owned(),
                hint: format!(
                    "; no service lists it or a template it fits ({} resources, {} templates)",
                    catalog.resources().len(),
                    catalog.templates().len()
                ),
            })
    }

    /// Tries the service's instances in routing order until one answers.
    async fn read_through<T, F, Fut>(
        &self,
        service: &ServerId,
        ctx: &CallContext,
        op: F,
    ) -> Result<T, CallError>
    where
        F: Fn(Session) -> Fut,
        Fut: Future<Output = Result<T, CallError>>,
    {
        let service: Arc<Service> = self
            .inner
            .state
            .load()
            .service(service)
            .cloned()
            .ok_or_else(|| CallError::ToolNotFound {
                tool: service.to_string(),
                hint: "; its service was just removed".into(),
            })?;
        let (order, _) = Self::candidates(&service, "", &[]);
        let mut tried = Vec::new();
        for instance in order
            .iter()
            .take(1 + service.spec.max_failover_attempts as usize)
        {
            match instance.pool.run(ctx, &op).await {
                Ok(out) => return Ok(out),
                Err(e) if e.is_retryable() && !ctx.remaining().is_zero() => {
                    tried.push(format!("{}: {e}", instance.spec.id));
                }
                Err(e) => return Err(e),
            }
        }
        Err(CallError::Exhausted {
            tool: service.spec.id.to_string(),
            tried,
            phase: Phase::AfterSend,
        })
    }
}
