//! Prompts and resources: reads, so any instance of the owning service may answer and a
//! failed instance is simply skipped.

use std::{future::Future, sync::Arc};

use toolmesh_core::{CallContext, CallError, JsonObject, Phase};
use toolmesh_transport::{GetPromptResult, Prompt, ReadResourceResult, Resource, Session};

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
        let catalog = self.catalog();
        let entry = catalog
            .resource(uri)
            .cloned()
            .ok_or_else(|| CallError::ToolNotFound {
                tool: uri.to_owned(),
                hint: format!("; {} resources are registered", catalog.resources().len()),
            })?;
        self.read_through(&entry.service, ctx, |s| async move {
            s.read_resource(uri, ctx).await
        })
        .await
    }

    /// Tries the service's instances in routing order until one answers.
    async fn read_through<T, F, Fut>(
        &self,
        service: &toolmesh_core::ServerId,
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
        let (order, _) = Self::candidates(&service, "");
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
