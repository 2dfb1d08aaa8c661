//! `workflows:` (named workflows over the mesh's tools and the agents of `agents:`),
//! checked at load with key paths, built over a running registry.

use std::collections::BTreeMap;

use toolmesh_agent::workflow::{Known, Step, Workflow, WorkflowError, WorkflowSpec};
use toolmesh_registry::Registry;
use toolmesh_tools::{Toolbox, ToolsConfig};

use super::{Config, services::Problem};

/// `workflows:` by name.
pub type Workflows = BTreeMap<String, WorkflowSpec>;

/// Checks every workflow against what the configuration declares: steps, references,
/// cycles, templates, agents of `agents:`, and tools of configured namespaces or the
/// native tools. A server's own tools are only known once it runs; they are checked again
/// when the workflow is built ([`Config::workflow`]).
pub(super) fn check(config: &Config) -> Result<(), Problem> {
    if config.workflows.is_empty() {
        return Ok(());
    }
    let declared = Declared::new(config);
    for (name, spec) in &config.workflows {
        spec.validate(&declared).map_err(|e| problem(name, e))?;
    }
    Ok(())
}

fn problem(name: &str, error: WorkflowError) -> Problem {
    let mut path = vec!["workflows".to_owned(), name.to_owned()];
    let message = match error {
        WorkflowError::Invalid {
            path: rest,
            message,
            ..
        } => {
            path.extend(rest);
            message
        }
        other => other.to_string(),
    };
    Problem {
        path,
        keep: 2,
        message,
    }
}

/// The tools and agents a configuration declares, before anything runs.
struct Declared<'a> {
    config: &'a Config,
    /// The native tools, under their own names (as agents and workflows see them).
    native: Vec<String>,
    /// Each server's namespace, and whether its tools keep their bare names.
    namespaces: Vec<(String, bool)>,
}

impl<'a> Declared<'a> {
    fn new(config: &'a Config) -> Self {
        let native = Toolbox::default_tools(&ToolsConfig::default())
            .map(|t| t.names().map(str::to_owned).collect())
            .unwrap_or_default();
        let namespaces = config
            .servers
            .iter()
            .map(|(name, server)| {
                (
                    server.namespace.clone().unwrap_or_else(|| name.clone()),
                    server.prefix == Some(false),
                )
            })
            .collect();
        Self {
            config,
            native,
            namespaces,
        }
    }

    /// Names to suggest for a bare `tool`: native tools, and `tool` under each namespace.
    fn suggestions(&self, tool: &str) -> Vec<String> {
        let mut names = self.native.clone();
        names.extend(
            self.namespaces
                .iter()
                .map(|(ns, _)| format!("{ns}__{tool}")),
        );
        names
    }
}

impl Known for Declared<'_> {
    fn tool(&self, tool: &str) -> Result<(), String> {
        if self.native.iter().any(|n| n == tool) {
            return Ok(());
        }
        let split = tool.split_once("__").or_else(|| tool.split_once('/'));
        let namespace = split.map(|(ns, _)| ns);
        if let Some(ns) = namespace
            && self.namespaces.iter().any(|(n, _)| n == ns)
        {
            return Ok(());
        }
        // A server with `prefix: false` may offer any bare name; known once it runs.
        if self.namespaces.iter().any(|(_, bare)| *bare) {
            return Ok(());
        }
        let why = match namespace {
            Some(ns) => format!("no server has the namespace `{ns}`"),
            None => {
                "it is not a native tool, and a server's tools are named `server__tool`".to_owned()
            }
        };
        // The same tool under the closest namespaces, else the closest names known.
        let close: Vec<String> = match split {
            Some((ns, rest)) => {
                toolmesh_agent::closest(ns, self.namespaces.iter().map(|(n, _)| n.as_str()))
                    .into_iter()
                    .map(|n| format!("{n}__{rest}"))
                    .collect()
            }
            None => {
                let names = self.suggestions(tool);
                toolmesh_agent::closest(tool, names.iter().map(String::as_str))
                    .into_iter()
                    .map(str::to_owned)
                    .collect()
            }
        };
        Err(format!(
            "unknown tool `{tool}`: {why}{}",
            toolmesh_agent::did_you_mean(&close)
        ))
    }

    fn agent(&self, agent: &str) -> Result<(), String> {
        if self.config.agents.contains_key(agent) {
            return Ok(());
        }
        Err(format!(
            "no agent named `{agent}` under `agents:`; {}",
            if self.config.agents.is_empty() {
                "none is configured (add one: `agents: { writer: { instructions: ... } }`)"
                    .to_owned()
            } else {
                format!(
                    "agents are: {}",
                    self.config
                        .agents
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        ))
    }
}

impl Config {
    /// The service serving the workflows with `expose: true` as tools
    /// (`workflows__NAME`), built over `registry`; `None` when none is exposed.
    ///
    /// # Errors
    ///
    /// As [`workflow`](Self::workflow).
    pub fn exposed_workflows(
        &self,
        registry: &Registry,
    ) -> Result<Option<toolmesh_registry::ServiceSpec>, WorkflowError> {
        let exposed: Vec<Workflow> = self
            .workflows
            .iter()
            .filter(|(_, spec)| spec.expose)
            .map(|(name, _)| self.workflow(name, registry.clone()))
            .collect::<Result<_, _>>()?;
        Ok((!exposed.is_empty()).then(|| toolmesh_agent::workflow::workflows_service(exposed)))
    }

    /// The workflow `name` over `registry`, with the agents its steps name built from
    /// `agents:` (and `llm:`), checked against the registry's catalog.
    ///
    /// # Errors
    ///
    /// [`WorkflowError::Invalid`] for an unknown name (listing the configured ones) or a
    /// step naming a tool the catalog does not have (at `workflows.NAME.steps[i].tool`,
    /// with the closest names); [`WorkflowError::Agent`] when an agent cannot be built
    /// (no model set, say).
    pub fn workflow(&self, name: &str, registry: Registry) -> Result<Workflow, WorkflowError> {
        let Some(spec) = self.workflows.get(name) else {
            return Err(WorkflowError::Invalid {
                at: String::new(),
                path: Vec::new(),
                message: format!(
                    "no workflow named `{name}`; {}",
                    if self.workflows.is_empty() {
                        "none is configured (add one under `workflows:`)".to_owned()
                    } else {
                        format!(
                            "workflows are: {}",
                            self.workflows
                                .keys()
                                .cloned()
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    }
                ),
            });
        };
        let mut builder = Workflow::builder(name, registry.clone()).spec(spec.clone());
        let mut agents = Vec::new();
        collect_agents(&spec.steps, &mut agents);
        agents.sort_unstable();
        agents.dedup();
        for agent in agents {
            // Unknown names are left to the builder, which says where they are used.
            if self.agents.contains_key(agent) {
                let built = self
                    .agent(Some(agent), registry.clone())
                    .map_err(|source| WorkflowError::Agent {
                        agent: agent.to_owned(),
                        source,
                    })?;
                builder = builder.agent(agent, built);
            }
        }
        builder.build().map_err(|e| e.nested(&["workflows", name]))
    }
}

/// The agents `steps` (and their groups) name.
fn collect_agents<'a>(steps: &'a [Step], agents: &mut Vec<&'a str>) {
    for step in steps {
        agents.extend(step.agent.as_deref());
        collect_agents(&step.parallel, agents);
    }
}
