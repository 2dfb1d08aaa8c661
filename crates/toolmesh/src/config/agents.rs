//! `llm:` (the model endpoints) and `agents:` (named agents over the mesh's tools).

use std::{collections::BTreeMap, time::Duration};

use serde::{Deserialize, Serialize};
use toolmesh_agent::{
    Agent, AgentError, Capability, ExposeOptions, Limits, Llm, LlmEndpoint, LlmError, ToolSelection,
};
use toolmesh_registry::{Registry, ServiceSpec};

/// The model: one endpoint (`base_url`, `api_key`) or several (`endpoints`), each with its
/// own breaker; unset keys come from `OPENAI_BASE_URL`, `OPENAI_API_KEY` and
/// `TOOLMESH_MODEL`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmConfig {
    /// Base URL of an OpenAI-compatible API (`https://api.openai.com/v1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// Its bearer key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    /// Several endpoints, tried in order; a failing one is skipped by its breaker.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<LlmEndpointConfig>,
    /// The model every agent uses unless it names its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Requests per model call across endpoints (default 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
}

/// One entry of `llm.endpoints`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmEndpointConfig {
    /// Base URL of the OpenAI-compatible API.
    pub base_url: String,
    /// Its bearer key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
}

/// A named agent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// The system message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    /// Globs over catalog names or bare tool names (`calculator`, `everything__*`);
    /// empty or absent: every tool.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<String>,
    /// The model, overriding `llm.model`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Capabilities every tool call asks for (`capability_match` services route by them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<String>,
    /// Model calls per run (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_steps: Option<u32>,
    /// Tool calls per run (default 50).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tool_calls: Option<u32>,
    /// Total tokens per run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_budget: Option<u64>,
    /// Deadline of each tool call (default 60s).
    #[serde(
        default,
        with = "toolmesh_core::duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub tool_timeout: Option<Duration>,
    /// Deadline of a whole run (default 10m).
    #[serde(
        default,
        with = "toolmesh_core::duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub run_timeout: Option<Duration>,
    /// How deeply runs may nest when agents call agents (default 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_depth: Option<u32>,
    /// Serve this agent as MCP tools (by `toolmesh serve`, beside the catalog).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expose: Option<ExposeConfig>,
}

/// `agents.NAME.expose`: the agent's capabilities, each one MCP tool
/// (`NAME__capability`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExposeConfig {
    /// Tool name → what it does (or `{description, timeout, input_schema}`).
    pub capabilities: BTreeMap<String, CapabilityConfig>,
    /// What the agent is for (the server's instructions when served alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Whether its tools carry the agent's name as namespace (default `true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<bool>,
}

/// One capability: its description, or the long form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CapabilityConfig {
    /// What it does.
    Description(String),
    /// What it does, and how.
    Full {
        /// What it does.
        description: String,
        /// Budget of one run (default the agent's `run_timeout`).
        #[serde(
            default,
            with = "toolmesh_core::duration::option",
            skip_serializing_if = "Option::is_none"
        )]
        timeout: Option<Duration>,
        /// Input schema; default `{task, context?}`. Must have a string `task`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        input_schema: Option<serde_json::Map<String, serde_json::Value>>,
    },
}

impl ExposeConfig {
    /// The options [`Agent::service`] takes.
    pub fn options(&self) -> ExposeOptions {
        let capabilities = self
            .capabilities
            .iter()
            .map(|(name, capability)| match capability {
                CapabilityConfig::Description(description) => Capability::new(name, description),
                CapabilityConfig::Full {
                    description,
                    timeout,
                    input_schema,
                } => Capability {
                    name: name.clone(),
                    description: description.clone(),
                    input_schema: input_schema.clone(),
                    timeout: *timeout,
                },
            })
            .collect();
        ExposeOptions {
            name: None,
            description: self.description.clone(),
            capabilities,
            prefix: self.prefix,
        }
    }
}

impl LlmConfig {
    /// Whether nothing is set (the environment decides everything).
    pub fn is_unset(&self) -> bool {
        self == &Self::default()
    }

    /// The model service this configures, environment filling the gaps.
    ///
    /// # Errors
    ///
    /// [`LlmError::Invalid`] for a base URL that is not http(s).
    pub fn build(&self) -> Result<Llm, LlmError> {
        let from_env = LlmEndpoint::from_env();
        let endpoints: Vec<LlmEndpoint> = if self.endpoints.is_empty() {
            vec![LlmEndpoint::new(
                self.base_url.clone().unwrap_or(from_env.base_url),
                self.api_key.clone().or(from_env.api_key),
            )]
        } else {
            self.endpoints
                .iter()
                .map(|e| LlmEndpoint::new(e.base_url.clone(), e.api_key.clone()))
                .collect()
        };
        let mut llm = Llm::new(endpoints)?;
        let model = self.model.clone().or_else(Llm::model_from_env);
        if let Some(model) = model {
            llm = llm.with_model(model);
        }
        if let Some(attempts) = self.max_attempts {
            llm = llm.with_retry(toolmesh_agent::LlmRetry {
                max_attempts: attempts.max(1),
                ..Default::default()
            });
        }
        Ok(llm)
    }
}

impl AgentConfig {
    /// The agent named `name` over `registry`'s tools, asking `llm`.
    ///
    /// # Errors
    ///
    /// [`AgentError::NoModel`] when neither the agent nor `llm` names a model;
    /// [`AgentError::Config`] for a bad glob or limit.
    pub fn build(&self, name: &str, llm: Llm, registry: Registry) -> Result<Agent, AgentError> {
        let llm = match &self.model {
            Some(model) => llm.with_model(model.clone()),
            None => llm,
        };
        let defaults = Limits::default();
        let limits = Limits {
            max_steps: self.max_steps.unwrap_or(defaults.max_steps),
            max_tool_calls: self.max_tool_calls.unwrap_or(defaults.max_tool_calls),
            token_budget: self.token_budget.or(defaults.token_budget),
            tool_timeout: self.tool_timeout.unwrap_or(defaults.tool_timeout),
            run_timeout: self.run_timeout.unwrap_or(defaults.run_timeout),
            max_depth: self.max_depth.unwrap_or(defaults.max_depth),
            ..defaults
        };
        let mut builder = Agent::builder(llm)
            .name(name)
            .registry(registry)
            .tools(ToolSelection::globs(&self.tools)?)
            .capabilities(self.capabilities.iter().cloned())
            .limits(limits);
        if let Some(instructions) = &self.instructions {
            builder = builder.instructions(instructions.clone());
        }
        builder.build()
    }
}

/// `agents:` by name.
pub type Agents = BTreeMap<String, AgentConfig>;

/// The service holding the native tools agents see under their own names.
pub const NATIVE_SERVICE: &str = "native";

impl super::Config {
    /// The agent `name` over `registry`: a configured one, the only one configured when
    /// `name` is `None`, or a default agent over every tool when none is configured.
    ///
    /// # Errors
    ///
    /// [`AgentError::Config`] for an unknown name (listing the configured ones), or any
    /// error of [`LlmConfig::build`] and [`AgentConfig::build`].
    pub fn agent(&self, name: Option<&str>, registry: Registry) -> Result<Agent, AgentError> {
        let default = AgentConfig::default();
        let (name, config) = match name {
            Some(name) => match self.agents.get(name) {
                Some(config) => (name, config),
                None => {
                    return Err(AgentError::Config(format!(
                        "no agent named `{name}`; configured: {}",
                        if self.agents.is_empty() {
                            "none (add one under `agents:`)".to_owned()
                        } else {
                            self.agents.keys().cloned().collect::<Vec<_>>().join(", ")
                        }
                    )));
                }
            },
            None => match self.agents.iter().next() {
                Some((name, config)) if self.agents.len() == 1 => (name.as_str(), config),
                Some(_) => {
                    return Err(AgentError::Config(format!(
                        "several agents are configured ({}): choose one with --agent NAME",
                        self.agents.keys().cloned().collect::<Vec<_>>().join(", ")
                    )));
                }
                None => ("agent", &default),
            },
        };
        config.build(name, self.llm.build()?, registry)
    }

    /// The native tools as agents see them: service `native`, under their own names
    /// (`calculator`), with `native_tools:` applied. [`Mesh`](crate::Mesh) registers it when
    /// agents are configured and no server is named `native`.
    ///
    /// # Errors
    ///
    /// [`AgentError::Config`] when `native_tools:` is not valid.
    pub fn agent_native_service(&self) -> Result<ServiceSpec, AgentError> {
        let toolbox = toolmesh_tools::Toolbox::default_tools(&self.native_tools)
            .map_err(|e| AgentError::Config(format!("native_tools: {e}")))?;
        let mut spec = ServiceSpec::native(
            toolmesh_core::ServerId::new(NATIVE_SERVICE),
            toolmesh_registry::NativeBackend::toolbox(toolbox),
        );
        spec.prefix = false;
        Ok(spec)
    }

    /// The services of the agents with `expose:`, over `registry`'s tools (register them
    /// in the same registry to serve them beside the catalog).
    ///
    /// # Errors
    ///
    /// [`AgentError::Config`] naming `agents.NAME.expose` for bad capabilities, and
    /// [`AgentError::NoModel`] when an exposed agent has no model.
    pub fn exposed_agents(&self, registry: &Registry) -> Result<Vec<ServiceSpec>, AgentError> {
        let exposed: Vec<_> = self
            .agents
            .iter()
            .filter_map(|(name, agent)| agent.expose.as_ref().map(|e| (name, agent, e)))
            .collect();
        if exposed.is_empty() {
            return Ok(Vec::new());
        }
        let llm = self.llm.build()?;
        exposed
            .into_iter()
            .map(|(name, config, expose)| {
                let within = |e: AgentError| match e {
                    AgentError::Config(message) => {
                        AgentError::Config(format!("agents.{name}.expose: {message}"))
                    }
                    AgentError::NoModel => AgentError::Config(format!(
                        "agents.{name}.expose: no model set for the agent; set llm.model, agents.{name}.model or TOOLMESH_MODEL"
                    )),
                    other => other,
                };
                let agent = config
                    .build(name, llm.clone(), registry.clone())
                    .map_err(within)?;
                agent.service(&expose.options()).map_err(within)
            })
            .collect()
    }

    /// Checks `agents:` without starting anything: a tool glob that does not parse is an
    /// error; one that can match no tool known here (the native tools, `server__*` of a
    /// configured server, tools named in a server's `tools:`) is a warning naming the
    /// closest names. Servers' other tools are only known once they run.
    ///
    /// # Errors
    ///
    /// [`AgentError::Config`] for a glob that does not parse.
    pub fn agent_warnings(&self, native_tools: &[&str]) -> Result<Vec<String>, AgentError> {
        let mut known: Vec<String> = native_tools.iter().map(|t| (*t).to_owned()).collect();
        for (name, server) in &self.servers {
            let namespace = server.namespace.clone().unwrap_or_else(|| name.clone());
            known.push(format!("{namespace}__"));
            known.extend(server.tools.keys().map(|t| format!("{namespace}__{t}")));
            known.extend(server.tools.keys().cloned());
        }
        let mut warnings = Vec::new();
        for (agent, config) in &self.agents {
            if let Some(expose) = &config.expose {
                expose
                    .options()
                    .validate(agent)
                    .map_err(|e| AgentError::Config(format!("agents.{agent}.expose: {e}")))?;
            }
            let selection = ToolSelection::globs(&config.tools)
                .map_err(|e| AgentError::Config(format!("agents.{agent}.tools: {e}")))?;
            let names: Vec<&str> = known.iter().map(String::as_str).collect();
            for glob in selection.unmatched(&names) {
                // `server__*` matches the `server__` stem of a configured server.
                if names
                    .iter()
                    .any(|n| n.ends_with("__") && glob.starts_with(n))
                {
                    continue;
                }
                let close = toolmesh_agent::closest(glob, names.iter().copied());
                warnings.push(format!(
                    "agents.{agent}.tools: `{glob}` matches no known tool{}",
                    toolmesh_agent::did_you_mean(&close)
                ));
            }
        }
        Ok(warnings)
    }
}
