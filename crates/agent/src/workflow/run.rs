//! Running a workflow: every node whose dependencies are done starts at once (up to
//! `max_parallel` steps in flight); tool steps go through the router, agent steps run
//! their agent; the first failure, the caller's cancellation or the deadline stop it.

use std::time::Duration;

use futures::{StreamExt, future::BoxFuture, stream::FuturesUnordered};
use serde_json::{Map, Value};
use tokio::time::Instant;
use toolmesh_core::{CallContext, CallToolResult, JsonObject, result_text};
use tracing::Instrument;

use super::{
    FailedTool, StepKind, StepOutcome, StepStatus, Workflow, WorkflowError, WorkflowResult,
    plan::{Action, DEFAULT_MAX_PARALLEL, Node},
};

/// What stopped a run early.
enum Stop {
    Failed { step: String, reason: String },
    Cancelled,
    Timeout,
}

impl Workflow {
    /// Runs the workflow on `input` (templates read it as `input`) within the deadline
    /// and cancellation of `ctx`; tool calls carry its principal (else
    /// `workflow:NAME`).
    ///
    /// # Errors
    ///
    /// [`WorkflowError::Step`] when a step fails (its tool and every fallback, its agent,
    /// or a template), [`WorkflowError::Cancelled`], [`WorkflowError::Timeout`],
    /// [`WorkflowError::Output`]; each keeps what ran until then.
    pub async fn run(
        &self,
        input: Value,
        ctx: &CallContext,
    ) -> Result<WorkflowResult, WorkflowError> {
        let span = tracing::info_span!("workflow_run", workflow = %self.inner.name);
        self.execute(input, ctx).instrument(span).await
    }

    async fn execute(
        &self,
        input: Value,
        ctx: &CallContext,
    ) -> Result<WorkflowResult, WorkflowError> {
        let inner = &*self.inner;
        let begun = Instant::now();
        let mut ctx = match inner.spec.timeout {
            Some(timeout) => ctx.capped(timeout),
            None => ctx.clone(),
        };
        if ctx.principal.is_none() {
            ctx = ctx.principal(format!("workflow:{}", inner.name));
        }
        let nodes = &inner.plan.nodes;
        let limit = inner
            .spec
            .max_parallel
            .unwrap_or(DEFAULT_MAX_PARALLEL)
            .max(1);
        let mut done: Vec<Option<StepOutcome>> = vec![None; nodes.len()];
        let mut started = vec![false; nodes.len()];
        // What templates see as `steps`: finished steps by id.
        let mut views = Map::new();
        let mut running: FuturesUnordered<BoxFuture<'_, (usize, StepOutcome)>> =
            FuturesUnordered::new();
        let stop = loop {
            // Start (or settle at once: skipped steps, groups) every node that is ready.
            let mut failure = None;
            let mut progressed = true;
            while progressed && failure.is_none() {
                progressed = false;
                for (i, node) in nodes.iter().enumerate() {
                    if started[i] || !node.deps.iter().all(|d| done[*d].is_some()) {
                        continue;
                    }
                    let calls = matches!(node.action, Action::Tool { .. } | Action::Agent { .. });
                    if calls && running.len() >= limit {
                        continue;
                    }
                    started[i] = true;
                    progressed = true;
                    let at = begun.elapsed();
                    let context = template_context(&input, &views);
                    match self.start(i, node, &done, &context, &ctx, at) {
                        Start::Settled(outcome) => {
                            let outcome = *outcome;
                            if outcome.status == StepStatus::Failed {
                                failure = Some(Stop::Failed {
                                    step: outcome.id.clone(),
                                    reason: outcome.error.clone().unwrap_or_default(),
                                });
                            }
                            settle(node, i, outcome, &mut done, &mut views);
                        }
                        Start::Running(future) => running.push(future),
                    }
                    if failure.is_some() {
                        break;
                    }
                }
            }
            if let Some(stop) = failure {
                break Some(stop);
            }
            if running.is_empty() {
                break None;
            }
            tokio::select! {
                biased;
                () = ctx.cancelled() => break Some(Stop::Cancelled),
                () = tokio::time::sleep_until(ctx.deadline) => break Some(Stop::Timeout),
                Some((i, outcome)) = running.next() => {
                    let failed = (outcome.status == StepStatus::Failed).then(|| Stop::Failed {
                        step: outcome.id.clone(),
                        reason: outcome.error.clone().unwrap_or_default(),
                    });
                    settle(&nodes[i], i, outcome, &mut done, &mut views);
                    if failed.is_some() {
                        break failed;
                    }
                }
            }
        };
        // Steps still in flight are abandoned (their calls cancelled) with the run.
        drop(running);
        let pending: Vec<&str> = inner
            .plan
            .report
            .iter()
            .filter(|&&i| done[i].is_none())
            .map(|&i| nodes[i].id.as_str())
            .collect();
        let pending = pending.join(", ");
        let why = match &stop {
            Some(Stop::Failed { step, .. }) => format!("step `{step}` failed"),
            Some(Stop::Cancelled) => "the workflow was cancelled".to_owned(),
            Some(Stop::Timeout) => "the workflow's deadline passed".to_owned(),
            None => "the workflow ended".to_owned(),
        };
        let steps = inner
            .plan
            .report
            .iter()
            .map(|&i| {
                done[i].clone().unwrap_or_else(|| {
                    let mut outcome = self.outcome(&nodes[i]);
                    // A group counts as started once one of its steps has.
                    let began = match &nodes[i].action {
                        Action::Close { children, .. } => children.iter().any(|c| started[*c]),
                        _ => started[i],
                    };
                    outcome.error = Some(if began {
                        format!("stopped before it finished: {why}")
                    } else {
                        format!("not run: {why}")
                    });
                    outcome
                })
            })
            .collect();
        let mut result = WorkflowResult {
            output: Value::Null,
            steps,
            latency: begun.elapsed(),
        };
        match stop {
            Some(Stop::Failed { step, reason }) => {
                return Err(WorkflowError::Step {
                    step,
                    reason,
                    result: Box::new(result),
                });
            }
            Some(Stop::Cancelled) => {
                return Err(WorkflowError::Cancelled {
                    result: Box::new(result),
                });
            }
            Some(Stop::Timeout) => {
                return Err(WorkflowError::Timeout {
                    pending,
                    result: Box::new(result),
                });
            }
            None => {}
        }
        result.output = match &inner.spec.output {
            Some(output) => {
                let context = template_context(&input, &views);
                match inner.templates.render_value(output, &context) {
                    Ok(output) => output,
                    Err(reason) => {
                        return Err(WorkflowError::Output {
                            reason,
                            result: Box::new(result),
                        });
                    }
                }
            }
            None => done[inner.plan.last]
                .as_ref()
                .map(|o| o.output.clone())
                .unwrap_or_default(),
        };
        Ok(result)
    }

    /// A node's outcome before anything happened.
    fn outcome(&self, node: &Node) -> StepOutcome {
        let kind = match node.action {
            Action::Tool { .. } => StepKind::Tool,
            Action::Agent { .. } => StepKind::Agent,
            Action::Open | Action::Close { .. } => StepKind::Parallel,
        };
        let group = node.group.map(|g| self.inner.plan.nodes[g].id.as_str());
        let mut outcome = StepOutcome::new(&node.id, kind, group);
        match &node.action {
            Action::Tool { tools, .. } => outcome.tool = tools.first().cloned(),
            Action::Agent { agent, .. } => outcome.agent = Some(agent.clone()),
            _ => {}
        }
        outcome
    }

    /// Starts node `i`, whose dependencies are done.
    fn start<'a>(
        &'a self,
        i: usize,
        node: &'a Node,
        done: &[Option<StepOutcome>],
        context: &minijinja::Value,
        ctx: &CallContext,
        at: Duration,
    ) -> Start<'a> {
        let inner = &*self.inner;
        let mut outcome = self.outcome(node);
        outcome.started = at;
        let group_skipped = node
            .group
            .and_then(|g| done[g].as_ref())
            .is_some_and(|g| g.status == StepStatus::Skipped);
        if group_skipped {
            outcome.error = node
                .group
                .map(|g| format!("its group `{}` was skipped", inner.plan.nodes[g].id));
            return settled(outcome);
        }
        if let Action::Close { open, children } = &node.action {
            return settled(close(outcome, *open, children, done, at));
        }
        if let Some(when) = &node.when {
            match inner.templates.condition(when, context) {
                Ok(true) => {}
                Ok(false) => {
                    outcome.error = Some(format!("when: `{when}` is false"));
                    return settled(outcome);
                }
                Err(reason) => return settled(failed(outcome, format!("when: {reason}"))),
            }
        }
        let step_ctx = match node.timeout {
            Some(timeout) => ctx.capped(timeout),
            None => ctx.clone(),
        };
        match &node.action {
            Action::Open => {
                outcome.status = StepStatus::Ok;
                settled(outcome)
            }
            Action::Close { .. } => settled(outcome),
            Action::Tool { tools, arguments } => {
                let arguments = match arguments
                    .as_ref()
                    .map(|a| inner.templates.render_value(a, context))
                    .transpose()
                {
                    Ok(None | Some(Value::Null)) => None,
                    Ok(Some(Value::Object(map))) => Some(map),
                    Ok(Some(other)) => {
                        let reason = format!(
                            "arguments: the template gave {other}, not a mapping of arguments"
                        );
                        return settled(failed(outcome, reason));
                    }
                    Err(reason) => {
                        return settled(failed(outcome, format!("arguments: {reason}")));
                    }
                };
                let begun = Instant::now();
                Start::Running(Box::pin(async move {
                    let outcome = self.call_tools(outcome, tools, arguments, &step_ctx).await;
                    (i, finish(outcome, begun))
                }))
            }
            Action::Agent { agent, task } => {
                let task = match inner.templates.render_text(task, context) {
                    Ok(task) => task,
                    Err(reason) => {
                        return settled(failed(outcome, format!("task: {reason}")));
                    }
                };
                let Some(agent) = inner.agents.get(agent).cloned() else {
                    let reason = format!("no agent named `{agent}`");
                    return settled(failed(outcome, reason));
                };
                let begun = Instant::now();
                Start::Running(Box::pin(async move {
                    let outcome = run_agent(outcome, agent, task, step_ctx.deadline).await;
                    (i, finish(outcome, begun))
                }))
            }
        }
    }

    /// Calls `tools` in order until one answers without `isError`.
    async fn call_tools(
        &self,
        mut outcome: StepOutcome,
        tools: &[String],
        arguments: Option<JsonObject>,
        ctx: &CallContext,
    ) -> StepOutcome {
        let registry = &self.inner.registry;
        for tool in tools {
            outcome.tool = Some(tool.clone());
            let error = match registry.call(tool, arguments.clone(), ctx).await {
                Ok(routed) => {
                    outcome.instance = routed.meta.instance.map(|i| i.to_string());
                    outcome.attempts = routed.meta.attempts;
                    outcome.failovers = routed.meta.failovers;
                    outcome.cache_hit = routed.meta.cache_hit;
                    outcome.text = result_text(&routed.result);
                    if routed.result.is_error != Some(true) {
                        outcome.output = output_of(&routed.result, &outcome.text);
                        outcome.status = StepStatus::Ok;
                        return outcome;
                    }
                    format!("the tool answered with an error: {}", outcome.text)
                }
                Err(e) => e.to_string(),
            };
            tracing::debug!(step = %outcome.id, %tool, %error, "workflow step: tool failed");
            outcome.fallbacks_tried.push(FailedTool {
                tool: tool.clone(),
                error,
            });
            // Past the deadline every further tool would time out at once.
            if ctx.remaining().is_zero() {
                break;
            }
        }
        let reason = match outcome.fallbacks_tried.as_slice() {
            [only] => format!("{}: {}", only.tool, only.error),
            all => format!(
                "every tool failed: {}",
                all.iter()
                    .map(|f| format!("{}: {}", f.tool, f.error))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        };
        failed(outcome, reason)
    }
}

/// How starting a node went.
enum Start<'a> {
    /// Done without waiting (skipped, a group, a template error).
    Settled(Box<StepOutcome>),
    /// Running.
    Running(BoxFuture<'a, (usize, StepOutcome)>),
}

fn settled<'a>(outcome: StepOutcome) -> Start<'a> {
    Start::Settled(Box::new(outcome))
}

/// Records node `i`'s outcome; a step's (not a group opening's) becomes `steps.ID`.
fn settle(
    node: &Node,
    i: usize,
    outcome: StepOutcome,
    done: &mut [Option<StepOutcome>],
    views: &mut Map<String, Value>,
) {
    if !matches!(node.action, Action::Open) {
        views.insert(node.id.clone(), outcome.view());
    }
    done[i] = Some(outcome);
}

/// A group's outcome once its steps are done: `{ID: output}` of each.
fn close(
    mut outcome: StepOutcome,
    open: usize,
    children: &[usize],
    done: &[Option<StepOutcome>],
    at: Duration,
) -> StepOutcome {
    let Some(opened) = done[open].as_ref() else {
        return outcome;
    };
    if opened.status == StepStatus::Skipped {
        outcome.error.clone_from(&opened.error);
        outcome.started = opened.started;
        return outcome;
    }
    let opened = opened.started;
    let outputs: Map<String, Value> = children
        .iter()
        .filter_map(|c| done[*c].as_ref())
        .map(|c| (c.id.clone(), c.output.clone()))
        .collect();
    outcome.status = StepStatus::Ok;
    outcome.started = opened;
    outcome.latency = at.saturating_sub(opened);
    outcome.text = Value::Object(outputs.clone()).to_string();
    outcome.output = Value::Object(outputs);
    outcome
}

/// Runs an agent step within `deadline`.
async fn run_agent(
    mut outcome: StepOutcome,
    agent: crate::Agent,
    task: String,
    deadline: Instant,
) -> StepOutcome {
    match tokio::time::timeout_at(deadline, agent.run(&task)).await {
        Ok(Ok(run)) => {
            outcome.attempts = u32::try_from(run.steps.len()).unwrap_or(u32::MAX);
            outcome.output = Value::String(run.answer.clone());
            outcome.text = run.answer;
            outcome.status = StepStatus::Ok;
            outcome
        }
        Ok(Err(e)) => failed(outcome, e.to_string()),
        Err(_) => failed(
            outcome,
            "the agent did not answer within the step's deadline".to_owned(),
        ),
    }
}

fn failed(mut outcome: StepOutcome, reason: String) -> StepOutcome {
    outcome.status = StepStatus::Failed;
    outcome.error = Some(reason);
    outcome
}

fn finish(mut outcome: StepOutcome, begun: Instant) -> StepOutcome {
    outcome.latency = begun.elapsed();
    outcome
}

/// A tool result as a step's output: its structured content, else its text (parsed when
/// it is a JSON object or array, as many servers write their results).
fn output_of(result: &CallToolResult, text: &str) -> Value {
    if let Some(structured) = &result.structured_content {
        return structured.clone();
    }
    match serde_json::from_str::<Value>(text) {
        Ok(parsed @ (Value::Object(_) | Value::Array(_))) => parsed,
        _ => Value::String(text.to_owned()),
    }
}

/// `{input, steps}` as templates see them.
fn template_context(input: &Value, views: &Map<String, Value>) -> minijinja::Value {
    minijinja::context! {
        input => minijinja::Value::from_serialize(input),
        steps => minijinja::Value::from_serialize(views),
    }
}
