//! Workflows: a small graph of steps, each a tool call through the router or an agent
//! run, with inputs templated (minijinja) from the workflow's input and earlier outputs,
//! fallback tools, parallel groups, per-step deadlines and `when:` conditions.
//!
//! A step without `needs:` runs after the one written before it; a step with `needs:`
//! waits only for those and for the steps its templates read (`steps.ID`), so
//! independent steps run at once. A `parallel:` group runs its steps concurrently (at most
//! `max_parallel` steps run at any time). The first failed step stops the run.

mod error;
mod plan;
mod result;
mod run;
mod spec;
mod template;
mod tool;

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use serde_json::Value;
use toolmesh_core::JsonObject;
use toolmesh_registry::Registry;

pub use error::WorkflowError;
pub use plan::Known;
pub use result::{FailedTool, StepKind, StepOutcome, StepStatus, WorkflowResult};
pub use spec::{Step, WorkflowSpec};
pub use tool::{WORKFLOWS_SERVICE, WorkflowTool, workflows_service};

use crate::Agent;
use plan::Plan;
use template::Templates;

struct Inner {
    name: String,
    spec: WorkflowSpec,
    plan: Plan,
    templates: Templates,
    registry: Registry,
    agents: BTreeMap<String, Agent>,
}

/// A checked workflow over a registry's tools and named agents. Cheap to clone.
#[derive(Clone)]
pub struct Workflow {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Workflow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workflow")
            .field("name", &self.inner.name)
            .field("steps", &self.inner.spec.steps.len())
            .finish_non_exhaustive()
    }
}

impl Workflow {
    /// Starts building the workflow `name` over `registry`'s tools.
    pub fn builder(name: impl Into<String>, registry: Registry) -> WorkflowBuilder {
        WorkflowBuilder {
            name: name.into(),
            registry,
            spec: WorkflowSpec::default(),
            agents: BTreeMap::new(),
        }
    }

    /// The workflow's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// What the workflow was built from.
    pub fn spec(&self) -> &WorkflowSpec {
        &self.inner.spec
    }
}

/// Builds a [`Workflow`]: steps in Rust, or a whole [`WorkflowSpec`] (from YAML).
#[derive(Debug)]
pub struct WorkflowBuilder {
    name: String,
    registry: Registry,
    spec: WorkflowSpec,
    agents: BTreeMap<String, Agent>,
}

impl WorkflowBuilder {
    /// Replaces everything set so far with `spec`.
    pub fn spec(mut self, spec: WorkflowSpec) -> Self {
        self.spec = spec;
        self
    }

    /// Adds a step.
    pub fn step(mut self, step: Step) -> Self {
        self.spec.steps.push(step);
        self
    }

    /// What the workflow does (its MCP tool's description).
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.spec.description = Some(description.into());
        self
    }

    /// The JSON Schema of the input (its MCP tool's input schema).
    pub fn input_schema(mut self, schema: JsonObject) -> Self {
        self.spec.input_schema = Some(schema);
        self
    }

    /// The answer: a value whose strings are templates (default: the last step's output).
    pub fn output(mut self, output: Value) -> Self {
        self.spec.output = Some(output);
        self
    }

    /// Steps running at once at most (default 8).
    pub fn max_parallel(mut self, steps: usize) -> Self {
        self.spec.max_parallel = Some(steps);
        self
    }

    /// Deadline of a whole run.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.spec.timeout = Some(timeout);
        self
    }

    /// An agent that `agent:` steps name as `name`.
    pub fn agent(mut self, name: impl Into<String>, agent: Agent) -> Self {
        self.agents.insert(name.into(), agent);
        self
    }

    /// The workflow, checked against the registry's catalog and the agents given.
    ///
    /// A tool of a registered service that lists no tools yet (down at start) is
    /// accepted: at run time its call fails over to the step's `fallback_tools`.
    ///
    /// # Errors
    ///
    /// [`WorkflowError::Invalid`] at the key path of the first mistake.
    pub fn build(self) -> Result<Workflow, WorkflowError> {
        let templates = Templates::default();
        let plan = Plan::new(
            &self.spec,
            &Catalogued {
                registry: &self.registry,
                agents: &self.agents,
            },
            &templates,
        )?;
        Ok(Workflow {
            inner: Arc::new(Inner {
                name: self.name,
                spec: self.spec,
                plan,
                templates,
                registry: self.registry,
                agents: self.agents,
            }),
        })
    }
}

/// The tools of a registry's catalog and the agents given to the builder.
struct Catalogued<'a> {
    registry: &'a Registry,
    agents: &'a BTreeMap<String, Agent>,
}

impl Known for Catalogued<'_> {
    fn tool(&self, tool: &str) -> Result<(), String> {
        let catalog = self.registry.catalog();
        if catalog.resolve(tool).is_some() {
            return Ok(());
        }
        let namespace = tool
            .split_once("__")
            .or_else(|| tool.split_once('/'))
            .map(|(ns, _)| ns);
        let unlisted = self.registry.services().into_iter().any(|id| {
            self.registry
                .spec(&id)
                .is_some_and(|s| Some(s.namespace.as_str()) == namespace)
                && catalog.entries().iter().all(|e| e.service != id)
        });
        if unlisted {
            return Ok(());
        }
        let close = crate::closest(tool, catalog.entries().iter().map(|e| e.rendered.as_str()));
        Err(format!(
            "no tool named `{tool}` in the catalog{}",
            crate::did_you_mean(&close)
        ))
    }

    fn agent(&self, agent: &str) -> Result<(), String> {
        if self.agents.contains_key(agent) {
            return Ok(());
        }
        Err(format!(
            "no agent named `{agent}`; {}",
            if self.agents.is_empty() {
                "none is defined (give one to the builder with `.agent(name, agent)`, or under `agents:`)".to_owned()
            } else {
                format!(
                    "agents are: {}",
                    self.agents.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            }
        ))
    }
}
