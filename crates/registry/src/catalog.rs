//! The aggregated catalog: every tool of every enabled service under one LLM-safe name,
//! `namespace{sep}tool`. Built as an immutable snapshot; rebuilt on any change.

mod uri_template;

use std::{collections::HashMap, sync::Arc};

use serde::Serialize;
use tokio::time::Instant;
use toolmesh_core::{NameTable, ServerId, Tool, ToolName, ToolNaming};
use toolmesh_transport::{Prompt, Resource, ResourceTemplate};

use crate::{ToolPolicy, registry::service::Service};

/// One routable tool.
#[derive(Debug, Clone)]
pub struct CatalogEntry {
    /// Namespace and upstream name.
    pub name: ToolName,
    /// The name clients and LLMs use.
    pub rendered: String,
    /// The service that serves it.
    pub service: ServerId,
    /// The tool as its server describes it (upstream name).
    pub tool: Arc<Tool>,
    /// The configured policy.
    pub policy: ToolPolicy,
    /// Safe to repeat: configured, or annotated idempotent or read-only.
    pub idempotent: bool,
    /// Annotated read-only.
    pub read_only: bool,
}

impl CatalogEntry {
    /// The tool as clients should see it: renamed to [`rendered`](Self::rendered).
    pub fn public_tool(&self) -> Tool {
        let mut tool = (*self.tool).clone();
        tool.name = self.rendered.clone().into();
        tool
    }
}

/// One routable prompt.
#[derive(Debug, Clone)]
pub struct PromptEntry {
    /// Namespace and upstream name.
    pub name: ToolName,
    /// The name clients use.
    pub rendered: String,
    /// The service that serves it.
    pub service: ServerId,
    /// The prompt as its server describes it.
    pub prompt: Prompt,
}

impl PromptEntry {
    /// The prompt as clients should see it: renamed to [`rendered`](Self::rendered).
    pub fn public_prompt(&self) -> Prompt {
        let mut prompt = self.prompt.clone();
        prompt.name = self.rendered.clone();
        prompt
    }
}

/// One routable resource; URIs are global, so they keep their names.
#[derive(Debug, Clone)]
pub struct ResourceEntry {
    /// The service that serves it.
    pub service: ServerId,
    /// The resource as its server describes it.
    pub resource: Resource,
}

/// One resource template; like resources, templates keep their URIs.
#[derive(Debug, Clone)]
pub struct TemplateEntry {
    /// The service that serves it.
    pub service: ServerId,
    /// The template as its server describes it.
    pub template: ResourceTemplate,
    /// The template compiled for matching URIs; `None` when malformed.
    pattern: Option<uri_template::UriTemplate>,
}

/// A problem found while building the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CatalogProblem {
    /// The service concerned.
    pub service: ServerId,
    /// What is wrong, in words.
    pub problem: String,
}

/// All routable tools at one moment.
#[derive(Debug)]
pub struct Catalog {
    entries: HashMap<String, Arc<CatalogEntry>>,
    ordered: Vec<Arc<CatalogEntry>>,
    names: NameTable,
    problems: Vec<CatalogProblem>,
    prompts: HashMap<String, Arc<PromptEntry>>,
    prompt_order: Vec<Arc<PromptEntry>>,
    resources: HashMap<String, Arc<ResourceEntry>>,
    resource_order: Vec<Arc<ResourceEntry>>,
    templates: Vec<Arc<TemplateEntry>>,
    built_at: Instant,
}

impl Catalog {
    pub(crate) fn empty(naming: ToolNaming) -> Self {
        Self {
            entries: HashMap::new(),
            ordered: Vec::new(),
            names: NameTable::new(naming),
            problems: Vec::new(),
            prompts: HashMap::new(),
            prompt_order: Vec::new(),
            resources: HashMap::new(),
            resource_order: Vec::new(),
            templates: Vec::new(),
            built_at: Instant::now(),
        }
    }

    /// Builds from services in order; on a name clash the earlier service keeps the name.
    pub(crate) fn build(naming: &ToolNaming, services: &[Arc<Service>]) -> Self {
        let mut catalog = Self::empty(naming.clone());
        let mut owner: HashMap<ToolName, ServerId> = HashMap::new();
        for service in services.iter().filter(|s| s.is_enabled()) {
            let Some(tools) = service.tools() else {
                continue;
            };
            for tool in tools.iter() {
                let problem = |problem: String| CatalogProblem {
                    service: service.spec.id.clone(),
                    problem,
                };
                let name = match ToolName::new(&service.spec.namespace, &tool.name) {
                    Ok(name) => name,
                    Err(e) => {
                        catalog.problems.push(problem(format!("tool skipped: {e}")));
                        continue;
                    }
                };
                if let Some(first) = owner.get(&name) {
                    catalog.problems.push(problem(format!(
                        "tool `{}` collides with the same name from service `{first}` (namespace `{}`); give one of them another `namespace`",
                        tool.name, service.spec.namespace
                    )));
                    continue;
                }
                let rendered = if service.spec.prefix {
                    match catalog.names.insert(name.clone()) {
                        Ok(rendered) => rendered,
                        Err(e) => {
                            catalog.problems.push(problem(format!("tool skipped: {e}")));
                            continue;
                        }
                    }
                } else {
                    tool.name.to_string()
                };
                if let Some(first) = catalog.entries.get(&rendered) {
                    catalog.problems.push(problem(format!(
                        "tool `{}` is exposed as `{rendered}`, which service `{}` already uses; give one of them `prefix: true` or another `namespace`",
                        tool.name, first.service
                    )));
                    continue;
                }
                owner.insert(name.clone(), service.spec.id.clone());
                let policy = service
                    .spec
                    .tools
                    .get(tool.name.as_ref())
                    .cloned()
                    .unwrap_or_default();
                let hints = tool.annotations.as_ref();
                let read_only = hints.and_then(|a| a.read_only_hint).unwrap_or(false);
                let idempotent = policy.idempotent.unwrap_or_else(|| {
                    read_only || hints.and_then(|a| a.idempotent_hint).unwrap_or(false)
                });
                let entry = Arc::new(CatalogEntry {
                    name,
                    rendered: rendered.clone(),
                    service: service.spec.id.clone(),
                    tool: tool.clone(),
                    policy,
                    idempotent,
                    read_only,
                });
                catalog.entries.insert(rendered, entry.clone());
                catalog.ordered.push(entry);
            }
        }
        catalog.add_prompts_and_resources(naming, services);
        for problem in &catalog.problems {
            tracing::warn!(service = %problem.service, "{}", problem.problem);
        }
        catalog
    }

    fn add_prompts_and_resources(&mut self, naming: &ToolNaming, services: &[Arc<Service>]) {
        let mut names = NameTable::new(naming.clone());
        for service in services.iter().filter(|s| s.is_enabled()) {
            let problem = |problem: String| CatalogProblem {
                service: service.spec.id.clone(),
                problem,
            };
            for prompt in service.prompts().iter().flat_map(|p| p.iter()) {
                let rendered = match ToolName::new(&service.spec.namespace, &prompt.name)
                    .map_err(|e| e.to_string())
                    .and_then(|name| {
                        if !service.spec.prefix {
                            return Ok((name, prompt.name.clone()));
                        }
                        names
                            .insert(name.clone())
                            .map(|r| (name, r))
                            .map_err(|e| e.to_string())
                    }) {
                    Ok(named) => named,
                    Err(e) => {
                        self.problems
                            .push(problem(format!("prompt `{}` skipped: {e}", prompt.name)));
                        continue;
                    }
                };
                if self.prompts.contains_key(&rendered.1) {
                    self.problems.push(problem(format!(
                        "prompt `{}` collides with another service's",
                        prompt.name
                    )));
                    continue;
                }
                let entry = Arc::new(PromptEntry {
                    name: rendered.0,
                    rendered: rendered.1.clone(),
                    service: service.spec.id.clone(),
                    prompt: prompt.clone(),
                });
                self.prompts.insert(rendered.1, entry.clone());
                self.prompt_order.push(entry);
            }
            for resource in service.resources().iter().flat_map(|r| r.iter()) {
                if let Some(first) = self.resources.get(&resource.uri) {
                    self.problems.push(problem(format!(
                        "resource `{}` is also served by `{}`; the first service keeps it",
                        resource.uri, first.service
                    )));
                    continue;
                }
                let entry = Arc::new(ResourceEntry {
                    service: service.spec.id.clone(),
                    resource: resource.clone(),
                });
                self.resources.insert(resource.uri.clone(), entry.clone());
                self.resource_order.push(entry);
            }
            for template in service.templates().iter().flat_map(|t| t.iter()) {
                self.templates.push(Arc::new(TemplateEntry {
                    service: service.spec.id.clone(),
                    template: template.clone(),
                    pattern: uri_template::UriTemplate::compile(&template.uri_template),
                }));
            }
        }
    }

    /// A prompt by its rendered name.
    pub fn prompt(&self, name: &str) -> Option<&Arc<PromptEntry>> {
        self.prompts.get(name)
    }

    /// Every prompt, in service order.
    pub fn prompts(&self) -> &[Arc<PromptEntry>] {
        &self.prompt_order
    }

    /// A resource by URI.
    pub fn resource(&self, uri: &str) -> Option<&Arc<ResourceEntry>> {
        self.resources.get(uri)
    }

    /// Every resource, in service order.
    pub fn resources(&self) -> &[Arc<ResourceEntry>] {
        &self.resource_order
    }

    /// Every resource template, in service order.
    pub fn templates(&self) -> &[Arc<TemplateEntry>] {
        &self.templates
    }

    /// The service that serves `uri`: the one listing it, else the first whose
    /// template it fits.
    pub fn resource_owner(&self, uri: &str) -> Option<&ServerId> {
        self.resources.get(uri).map(|r| &r.service).or_else(|| {
            self.templates
                .iter()
                .find(|t| t.pattern.as_ref().is_some_and(|p| p.matches(uri)))
                .map(|t| &t.service)
        })
    }

    /// The service serving the template `uri_template`, exactly as listed.
    pub fn template_owner(&self, uri_template: &str) -> Option<&ServerId> {
        self.templates
            .iter()
            .find(|t| t.template.uri_template == uri_template)
            .map(|t| &t.service)
    }

    /// Looks a tool up by its rendered name (`search__web_search`) or `namespace/tool`.
    pub fn resolve(&self, name: &str) -> Option<&Arc<CatalogEntry>> {
        if let Some(entry) = self.entries.get(name) {
            return Some(entry);
        }
        let (namespace, tool) = name.split_once('/')?;
        let qualified = ToolName::new(namespace, tool).ok()?;
        self.ordered.iter().find(|e| e.name == qualified)
    }

    /// Every entry, in service order.
    pub fn entries(&self) -> &[Arc<CatalogEntry>] {
        &self.ordered
    }

    /// Collisions and invalid names found while building.
    pub fn problems(&self) -> &[CatalogProblem] {
        &self.problems
    }

    /// Number of tools.
    pub fn len(&self) -> usize {
        self.ordered.len()
    }

    /// Whether there are no tools.
    pub fn is_empty(&self) -> bool {
        self.ordered.is_empty()
    }

    /// When it was built.
    pub fn age(&self) -> std::time::Duration {
        self.built_at.elapsed()
    }

    /// A "did you mean" hint for an unknown name.
    pub(crate) fn hint(&self, name: &str) -> String {
        let wanted = name.to_ascii_lowercase();
        let tail = wanted
            .rsplit(['/', '_'])
            .next()
            .unwrap_or(&wanted)
            .to_owned();
        let close: Vec<&str> = self
            .ordered
            .iter()
            .map(|e| e.rendered.as_str())
            .filter(|r| !tail.is_empty() && r.to_ascii_lowercase().contains(&tail))
            .take(5)
            .collect();
        if close.is_empty() {
            format!(
                "; {} tools are registered (list them to see their names)",
                self.ordered.len()
            )
        } else {
            format!("; did you mean {}?", close.join(", "))
        }
    }
}
