//! [`Agent`]: a loop over the router. Ask the model with the selected tools, run the
//! calls it asks for through [`Registry::call`] (concurrently when it asks for several),
//! feed every outcome back, stop at an answer or a limit.

mod call;
mod events;
mod limits;
mod progress;

use std::{sync::Arc, time::Duration};

use async_openai::types::chat::{
    ChatCompletionMessageToolCall, ChatCompletionMessageToolCalls,
    ChatCompletionRequestAssistantMessage, ChatCompletionRequestMessage,
    ChatCompletionRequestSystemMessage, ChatCompletionRequestToolMessage,
    ChatCompletionRequestUserMessage,
};
use futures::StreamExt;
use toolmesh_core::{CallContext, JsonObject};
use toolmesh_registry::{Registry, Routed};
use tracing::Instrument;

pub use events::AgentEvent;
use events::Events;
pub use limits::{DEFAULT_MAX_DEPTH, Limits};
use progress::Progress;

use crate::{
    AgentError, DynHooks, Hooks, Llm, LlmError, RunResult, ToolSelection, Transcript,
    hooks::NoHooks, tools::Toolset,
};

struct Inner {
    /// Capabilities every tool call asks the router for (`capability_match` services).
    capabilities: Vec<String>,
    /// The last catalog's selected tools (see [`Agent::toolset`]).
    toolset: std::sync::Mutex<Option<Arc<Toolset>>>,
    hooks: Arc<dyn DynHooks>,
    name: String,
    llm: Llm,
    model: String,
    registry: Registry,
    instructions: Option<String>,
    selection: ToolSelection,
    limits: Limits,
}

/// An LLM agent whose tool calls ride the mesh's call path. Cheap to clone.
#[derive(Clone)]
pub struct Agent {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("name", &self.inner.name)
            .field("model", &self.inner.model)
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

/// Builds an [`Agent`].
#[derive(Debug)]
pub struct AgentBuilder {
    capabilities: Vec<String>,
    hooks: Arc<dyn DynHooks>,
    llm: Llm,
    name: String,
    registry: Option<Registry>,
    instructions: Option<String>,
    selection: ToolSelection,
    limits: Limits,
}

impl AgentBuilder {
    /// Names the agent (the principal of its tool calls is `agent:NAME`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The mesh whose tools the agent uses; without one it has no tools.
    pub fn registry(mut self, registry: Registry) -> Self {
        self.registry = Some(registry);
        self
    }

    /// The system message.
    pub fn instructions(mut self, instructions: impl Into<String>) -> Self {
        self.instructions = Some(instructions.into());
        self
    }

    /// Which catalog tools the model may call (default: all).
    pub fn tools(mut self, selection: ToolSelection) -> Self {
        self.selection = selection;
        self
    }

    /// Model calls per run (default 10).
    pub fn max_steps(mut self, steps: u32) -> Self {
        self.limits.max_steps = steps;
        self
    }

    /// Tools offered per model call before narrowing by relevance (default 64).
    pub fn max_tools(mut self, tools: usize) -> Self {
        self.limits.max_tools = tools;
        self
    }

    /// Capabilities every tool call asks for: services routing by `capability_match` send
    /// the agent's calls to the instances that declare them (`gpu`, `eu`).
    pub fn capabilities<S: Into<String>>(
        mut self,
        capabilities: impl IntoIterator<Item = S>,
    ) -> Self {
        self.capabilities = capabilities.into_iter().map(Into::into).collect();
        self
    }

    /// Callbacks before tool calls, after results and after model responses.
    pub fn hooks(mut self, hooks: impl Hooks) -> Self {
        self.hooks = Arc::new(hooks);
        self
    }

    /// Every limit at once.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The agent.
    ///
    /// # Errors
    ///
    /// [`AgentError::NoModel`] when the LLM has no model; [`AgentError::Config`] for a
    /// zero limit.
    pub fn build(self) -> Result<Agent, AgentError> {
        let model = self.llm.model().ok_or(AgentError::NoModel)?.to_owned();
        self.limits.validate()?;
        let registry = match self.registry {
            Some(registry) => registry,
            None => Registry::new(Default::default()),
        };
        Ok(Agent {
            inner: Arc::new(Inner {
                capabilities: self.capabilities,
                toolset: std::sync::Mutex::new(None),
                hooks: self.hooks,
                name: self.name,
                llm: self.llm,
                model,
                registry,
                instructions: self.instructions,
                selection: self.selection,
                limits: self.limits,
            }),
        })
    }
}

impl Agent {
    /// Starts building an agent over `llm`.
    pub fn builder(llm: Llm) -> AgentBuilder {
        AgentBuilder {
            capabilities: Vec::new(),
            hooks: Arc::new(NoHooks),
            llm,
            name: "agent".into(),
            registry: None,
            instructions: None,
            selection: ToolSelection::all(),
            limits: Limits::default(),
        }
    }

    /// The agent's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The bounds of its runs.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// Runs `task` to an answer.
    ///
    /// # Errors
    ///
    /// [`AgentError::Llm`] when the model cannot be asked; [`AgentError::Limit`] (with
    /// the transcript so far) when a limit ends the run.
    pub async fn run(&self, task: &str) -> Result<RunResult, AgentError> {
        let mut history = Vec::new();
        self.chat(&mut history, task).await
    }

    /// One turn of a conversation: `message` is added to `history`, and so are the
    /// model's answers and tool results, so the next turn continues from them.
    ///
    /// # Errors
    ///
    /// As [`run`](Self::run); `history` keeps what happened until the error.
    pub async fn chat(
        &self,
        history: &mut Vec<ChatCompletionRequestMessage>,
        message: &str,
    ) -> Result<RunResult, AgentError> {
        self.turn(history, message, &Events::none(), None).await
    }

    /// Runs `task` as part of the call `ctx` (an MCP client's call to an exposed agent, a
    /// workflow step, another agent's tool call): the run ends by `ctx`'s deadline if that
    /// comes before the agent's own `run_timeout`; cancelling `ctx` cancels the model
    /// request and the tool calls in flight; `ctx`'s relay gets a progress notification
    /// per step and a log line per tool call; the run's tool calls are one level deeper
    /// than `ctx`.
    ///
    /// # Errors
    ///
    /// As [`run`](Self::run); [`AgentError::Cancelled`] when `ctx` is cancelled, and
    /// [`AgentError::TooDeep`] (before any model call) when `ctx` is nested
    /// `max_depth` levels deep already.
    pub async fn run_within(&self, task: &str, ctx: &CallContext) -> Result<RunResult, AgentError> {
        let max = self.inner.limits.max_depth;
        if ctx.depth >= max {
            metrics::counter!("toolmesh_agent_runs_total", "agent" => self.inner.name.clone(), "outcome" => "too_deep").increment(1);
            return Err(AgentError::TooDeep {
                depth: ctx.depth,
                max,
            });
        }
        self.turn(&mut Vec::new(), task, &Events::none(), Some(ctx))
            .await
    }

    /// Runs `task` streamed: text as the model writes it, each tool call as it starts and
    /// ends, each step; the last event is [`AgentEvent::Done`]. The run goes on in a task
    /// of its own; dropping the stream does not stop it.
    pub fn stream(&self, task: &str) -> impl futures::Stream<Item = AgentEvent> + Send + 'static {
        let (events, rx) = Events::channel();
        let (agent, task) = (self.clone(), task.to_owned());
        tokio::spawn(async move {
            let outcome = agent.turn(&mut Vec::new(), &task, &events, None).await;
            events.send(AgentEvent::Done(outcome));
        });
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (e, rx)) })
    }

    async fn turn(
        &self,
        history: &mut Vec<ChatCompletionRequestMessage>,
        message: &str,
        events: &Events,
        parent: Option<&CallContext>,
    ) -> Result<RunResult, AgentError> {
        if history.is_empty()
            && let Some(instructions) = &self.inner.instructions
        {
            history.push(ChatCompletionRequestMessage::System(
                ChatCompletionRequestSystemMessage::from(instructions.as_str()),
            ));
        }
        history.push(ChatCompletionRequestMessage::User(
            ChatCompletionRequestUserMessage::from(message),
        ));
        let mut transcript = Transcript {
            messages: std::mem::take(history),
            ..Transcript::default()
        };
        let span = tracing::info_span!("agent_run", agent = %self.inner.name, gen_ai.request.model = %self.inner.model);
        let drive = self.drive(&mut transcript, events, parent).instrument(span);
        let outcome = match parent.and_then(|p| p.cancel.as_ref()) {
            // Dropping the loop drops the model request and the tool calls in flight.
            Some(cancel) => tokio::select! {
                biased;
                () = cancel.cancelled() => Err(AgentError::Cancelled),
                outcome = drive => outcome,
            },
            None => drive.await,
        };
        // The conversation goes back to the caller; a limit's error keeps a copy.
        *history = match &outcome {
            Err(AgentError::Limit { .. }) => transcript.messages.clone(),
            _ => std::mem::take(&mut transcript.messages),
        };
        metrics::counter!("toolmesh_agent_runs_total", "agent" => self.inner.name.clone(), "outcome" => if outcome.is_ok() { "answered" } else { "failed" }).increment(1);
        match outcome {
            Ok(answer) => Ok(RunResult {
                answer,
                steps: transcript.steps,
                usage: transcript.usage,
                model_calls: transcript.model_calls,
                llm: transcript.llm,
            }),
            Err(AgentError::Limit { limit, value, .. }) => Err(AgentError::Limit {
                limit,
                value,
                transcript: Box::new(transcript),
            }),
            Err(other) => Err(other),
        }
    }

    /// Calls a catalog tool through the same path the model's calls take (explicit
    /// invocation), within the agent's per-call budget.
    ///
    /// # Errors
    ///
    /// The router's [`CallError`](toolmesh_core::CallError).
    pub async fn call_tool(
        &self,
        name: &str,
        arguments: Option<JsonObject>,
    ) -> Result<Routed, toolmesh_core::CallError> {
        let ctx = self.context(CallContext::with_timeout(self.inner.limits.tool_timeout));
        self.inner.registry.call(name, arguments, &ctx).await
    }

    /// The loop; returns the answer. Limit errors carry an empty transcript that the
    /// caller fills in.
    async fn drive(
        &self,
        transcript: &mut Transcript,
        events: &Events,
        parent: Option<&CallContext>,
    ) -> Result<String, AgentError> {
        let inner = &*self.inner;
        let limits = &inner.limits;
        let own = toolmesh_core::duration::deadline_after(limits.run_timeout);
        // The base of every tool call's context: one level below the caller's (a run
        // of its own is a caller at depth 0).
        let root = CallContext::with_deadline(own);
        let mut scope = parent.unwrap_or(&root).nested();
        scope.deadline = scope.deadline.min(own);
        let deadline = scope.deadline;
        let report = parent.and_then(|p| p.relay.clone()).map(Progress::new);
        let mut toolset = self.toolset();
        let mut invalid_calls = 0u64;
        loop {
            if transcript.model_calls >= limits.max_steps {
                return Err(limit("max_steps", limits.max_steps.into()));
            }
            // The catalog may have changed (list_changed, hot reload) since the last step.
            if !Arc::ptr_eq(&inner.registry.catalog(), &toolset.catalog) {
                toolset = self.toolset();
            }
            let used: Vec<&str> = transcript.steps.iter().map(|s| s.tool.as_str()).collect();
            let offered = toolset.offered(
                &conversation_text(&transcript.messages),
                limits.max_tools,
                &used,
            );
            // Borrowed: the conversation and the tools are serialized, not copied.
            let request = ChatRequest {
                model: &inner.model,
                messages: &transcript.messages,
                tools: &offered,
            };
            transcript.model_calls += 1;
            let step = transcript.model_calls;
            // One span per model call (GenAI conventions); tool calls get their own.
            let span = tracing::info_span!(
                "chat",
                gen_ai.operation.name = "chat",
                gen_ai.request.model = %inner.model,
                step,
                gen_ai.usage.input_tokens = tracing::field::Empty,
                gen_ai.usage.output_tokens = tracing::field::Empty,
                server.address = tracing::field::Empty,
            );
            let completion = async {
                match events.text_sink() {
                    Some(mut sink) => {
                        inner
                            .llm
                            .complete_streaming(&request, deadline, &mut sink)
                            .await
                    }
                    None => inner.llm.complete(&request, deadline).await,
                }
            }
            .instrument(span.clone())
            .await?;
            span.record("server.address", completion.endpoint.as_str());
            if let Some(usage) = &completion.response.usage {
                span.record("gen_ai.usage.input_tokens", usage.prompt_tokens);
                span.record("gen_ai.usage.output_tokens", usage.completion_tokens);
            }
            transcript.usage.add(completion.response.usage.as_ref());
            transcript.llm.push(crate::ModelCall {
                step,
                endpoint: completion.endpoint.clone(),
                attempts: completion.attempts,
                tried: completion.tried.clone(),
            });
            metrics::counter!("toolmesh_agent_steps_total", "agent" => inner.name.clone())
                .increment(1);
            metrics::counter!("toolmesh_agent_tokens_total", "agent" => inner.name.clone())
                .increment(
                    completion
                        .response
                        .usage
                        .as_ref()
                        .map_or(0, |u| u64::from(u.total_tokens)),
                );
            let Some(choice) = completion.response.choices.into_iter().next() else {
                return Err(LlmError::Malformed {
                    url: completion.endpoint,
                    reason: "the answer has no choices".into(),
                }
                .into());
            };
            let message = choice.message;
            inner.hooks.after_model_response_dyn(step, &message).await;
            let calls: Vec<ChatCompletionMessageToolCall> = message
                .tool_calls
                .clone()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|c| match c {
                    ChatCompletionMessageToolCalls::Function(f) => Some(f),
                    ChatCompletionMessageToolCalls::Custom(_) => None,
                })
                .collect();
            transcript
                .messages
                .push(ChatCompletionRequestMessage::Assistant(
                    ChatCompletionRequestAssistantMessage {
                        content: message.content.clone().map(Into::into),
                        tool_calls: message.tool_calls.clone().filter(|c| !c.is_empty()),
                        ..Default::default()
                    },
                ));
            if let Some(budget) = limits.token_budget
                && transcript.usage.total_tokens > budget
            {
                return Err(limit("token_budget", budget));
            }
            if calls.is_empty() {
                return Ok(message.content.unwrap_or_default());
            }
            let made = transcript.steps.len() as u64;
            if made + calls.len() as u64 > u64::from(limits.max_tool_calls) {
                return Err(limit("max_tool_calls", limits.max_tool_calls.into()));
            }
            for c in &calls {
                events.send(AgentEvent::ToolCall {
                    step,
                    call_id: c.id.clone(),
                    tool: c.function.name.clone(),
                });
            }
            if let Some(report) = &report {
                report.calling(step, &calls);
            }
            let outcomes = self.run_calls(&toolset, &calls, step, &scope).await;
            for (call, outcome) in calls.iter().zip(outcomes) {
                invalid_calls += u64::from(outcome.invalid);
                metrics::counter!("toolmesh_agent_tool_calls_total", "agent" => inner.name.clone(), "outcome" => if outcome.invalid { "invalid" } else if outcome.step.is_error { "error" } else { "ok" }).increment(1);
                transcript.messages.push(ChatCompletionRequestMessage::Tool(
                    ChatCompletionRequestToolMessage {
                        content: outcome.step.output.clone().into(),
                        tool_call_id: call.id.clone(),
                    },
                ));
                events.send(AgentEvent::ToolResult(outcome.step.clone()));
                transcript.steps.push(outcome.step);
            }
            events.send(AgentEvent::Step {
                step,
                usage: transcript.usage,
            });
            if let Some(report) = &report {
                report.step(step, limits.max_steps, &transcript.steps);
            }
            if invalid_calls > u64::from(limits.max_invalid_calls) {
                return Err(limit("max_invalid_calls", limits.max_invalid_calls.into()));
            }
        }
    }

    /// A tool call's context: the agent as principal, its capabilities asked for.
    fn context(&self, ctx: CallContext) -> CallContext {
        ctx.principal(format!("agent:{}", self.inner.name))
            .capabilities(self.inner.capabilities.iter().cloned())
    }

    /// The selected tools of the current catalog: built once per catalog snapshot and
    /// shared by the runs that follow.
    fn toolset(&self) -> Arc<Toolset> {
        let catalog = self.inner.registry.catalog();
        let mut cached = self.inner.toolset.lock().unwrap_or_else(|p| p.into_inner());
        match &*cached {
            Some(toolset) if Arc::ptr_eq(&toolset.catalog, &catalog) => toolset.clone(),
            _ => {
                let toolset = Arc::new(Toolset::build(catalog, &self.inner.selection));
                *cached = Some(toolset.clone());
                toolset
            }
        }
    }

    /// Runs one model message's calls concurrently (bounded); outcomes in call order.
    async fn run_calls(
        &self,
        toolset: &Toolset,
        calls: &[ChatCompletionMessageToolCall],
        step: u32,
        scope: &CallContext,
    ) -> Vec<call::Outcome> {
        let inner = &*self.inner;
        // Built before streaming: a closure inside the stream would make the future's
        // lifetimes too general to be `Send`.
        let pending: Vec<_> = calls
            .iter()
            .map(|c| {
                let ctx = self.context(scope.capped(inner.limits.tool_timeout));
                let span = tracing::info_span!("tool_call", gen_ai.tool.name = %c.function.name, gen_ai.tool.call.id = %c.id);
                call::run(
                    &inner.registry,
                    toolset,
                    &*inner.hooks,
                    call::Request {
                        step,
                        id: &c.id,
                        name: &c.function.name,
                        arguments: &c.function.arguments,
                    },
                    ctx,
                )
                .instrument(span)
            })
            .collect();
        futures::stream::iter(pending)
            .buffered(inner.limits.parallel_tool_calls.max(1))
            .collect()
            .await
    }
}

/// A chat request over the run's own messages and tools.
#[derive(serde::Serialize)]
struct ChatRequest<'a> {
    model: &'a str,
    messages: &'a [ChatCompletionRequestMessage],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    tools: &'a [async_openai::types::chat::ChatCompletionTools],
}

/// What narrowing ranks tools against: the user's messages, latest last.
fn conversation_text(messages: &[ChatCompletionRequestMessage]) -> String {
    use async_openai::types::chat::ChatCompletionRequestUserMessageContent as Content;
    messages
        .iter()
        .filter_map(|m| match m {
            ChatCompletionRequestMessage::User(u) => match &u.content {
                Content::Text(text) => Some(text.as_str()),
                Content::Array(_) => None,
            },
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn limit(limit: &'static str, value: u64) -> AgentError {
    AgentError::Limit {
        limit,
        value,
        transcript: Box::default(),
    }
}

/// The default per-call and per-run budgets.
pub(crate) const DEFAULT_TOOL_TIMEOUT: Duration = Duration::from_secs(60);
