//! `cargo xtask bench agent`:
//! - overhead: one agent step (a model call plus the tool call it asks for, through the
//!   agent) against the same model request and the same tool call made by hand, side by
//!   side against the testkit's scripted LLM (instant answers) and the native calculator;
//! - narrowing: recall@k of the intended tool for 60 tasks over a 600-tool catalog, and
//!   the time to rank 1,000 and 10,000 tools.
//!
//! Writes `target/bench/agent.json`.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use toolmesh_agent::{
    Agent, AgentError, Llm, LlmEndpoint,
    narrow::Index,
    openai::{
        ChatCompletionRequestMessage, ChatCompletionRequestUserMessage, CreateChatCompletionRequest,
    },
};
use toolmesh_core::{CallContext, JsonObject, ServerId};
use toolmesh_registry::{NativeBackend, Registry, RegistryOptions, ServiceSpec};
use toolmesh_testkit::{
    Reply, ScriptedCall, ScriptedLlm,
    bench::{self, Caller},
};
use toolmesh_tools::{Toolbox, ToolsConfig};

fn expression() -> JsonObject {
    json!({ "expression": "(2 + 3) * 4" })
        .as_object()
        .cloned()
        .unwrap_or_default()
}

/// The baseline: the model request and the tool call, by hand.
#[derive(Clone)]
struct ByHand {
    llm: Llm,
    registry: Registry,
    request: CreateChatCompletionRequest,
}

impl Caller for ByHand {
    async fn call(&self) -> bool {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        if self.llm.complete(&self.request, deadline).await.is_err() {
            return false;
        }
        let ctx = CallContext::with_timeout(Duration::from_secs(30));
        self.registry
            .call("calculator", Some(expression()), &ctx)
            .await
            .is_ok_and(|r| r.result.is_error != Some(true))
    }
}

/// The subject: one agent step (the run stops at its one-step limit after the call).
#[derive(Clone)]
struct OneStep(Agent);

impl Caller for OneStep {
    async fn call(&self) -> bool {
        match self.0.run("What is (2 + 3) * 4?").await {
            Err(AgentError::Limit { transcript, .. }) => {
                transcript.steps.len() == 1 && !transcript.steps[0].is_error
            }
            _ => false,
        }
    }
}

async fn overhead() -> anyhow::Result<Vec<Value>> {
    let toolbox = Toolbox::default_tools(&ToolsConfig::default())?;
    let mut spec = ServiceSpec::native(
        ServerId::new("native"),
        NativeBackend {
            tools: toolbox.definitions(),
            invoker: std::sync::Arc::new(toolbox),
            prefer: true,
        },
    );
    spec.prefix = false;
    let registry = Registry::from_specs(vec![spec], RegistryOptions::default()).await?;
    let call = Reply::ToolCalls(vec![ScriptedCall::new(
        "calculator",
        Value::Object(expression()),
    )]);
    let scripted = ScriptedLlm::start([Reply::Repeat(Box::new(call))]).await?;
    let llm = Llm::new([LlmEndpoint::new(scripted.base_url(), None)])?.with_model("scripted");
    let agent = Agent::builder(llm.clone())
        .registry(registry.clone())
        .max_steps(1)
        .build()?;
    // The same request the agent sends: the task and every tool offered.
    let tools = agent_tools(&scripted, &agent).await?;
    let request = CreateChatCompletionRequest {
        model: "scripted".into(),
        messages: vec![ChatCompletionRequestMessage::User(
            ChatCompletionRequestUserMessage::from("What is (2 + 3) * 4?"),
        )],
        tools: Some(tools),
        ..Default::default()
    };
    let by_hand = ByHand {
        llm,
        registry,
        request,
    };
    let mut rows = Vec::new();
    for inflight in [1, 8] {
        rows.push(
            bench::compare(
                &format!(
                    "agent step, {inflight} in flight (baseline: same request + call by hand)"
                ),
                &by_hand,
                &OneStep(agent.clone()),
                inflight,
            )
            .await,
        );
    }
    Ok(rows)
}

/// The tools the agent offers, read off the request it sends.
async fn agent_tools(
    scripted: &ScriptedLlm,
    agent: &Agent,
) -> anyhow::Result<Vec<toolmesh_agent::openai::ChatCompletionTools>> {
    let _ = agent.run("What is (2 + 3) * 4?").await;
    let sent = scripted.requests().pop().unwrap_or_default();
    Ok(serde_json::from_value(sent["tools"].clone())?)
}

const SYSTEMS: [&str; 20] = [
    "github",
    "gitlab",
    "jira",
    "slack",
    "stripe",
    "postgres",
    "s3",
    "calendar",
    "gmail",
    "notion",
    "salesforce",
    "zendesk",
    "kubernetes",
    "docker",
    "sentry",
    "datadog",
    "shopify",
    "twilio",
    "dropbox",
    "figma",
];
const OBJECTS: [&str; 6] = ["issue", "invoice", "message", "file", "user", "report"];
const VERBS: [(&str, &str, &str); 5] = [
    ("create", "Create a new {o} in {s}", "make a new {o} in {s}"),
    (
        "delete",
        "Delete a {o} from {s}; this cannot be undone",
        "remove the {o} from {s}",
    ),
    (
        "list",
        "List every {o} in {s}, newest first, with paging",
        "show me all the {o}s we have in {s}",
    ),
    (
        "get",
        "Get one {o} from {s} by its id",
        "look up {o} 42 in {s}",
    ),
    (
        "update",
        "Update the fields of a {o} in {s}",
        "change the title of the {o} in {s}",
    ),
];

/// Tool documents (name, description, argument names) as the agent indexes them.
fn catalog(copies: usize) -> Vec<(String, String)> {
    let mut tools = Vec::new();
    for copy in 0..copies {
        for s in SYSTEMS {
            for o in OBJECTS {
                for (verb, description, _) in VERBS {
                    let name = if copy == 0 {
                        format!("{s}__{verb}_{o}")
                    } else {
                        format!("{s}{copy}__{verb}_{o}")
                    };
                    let text = description.replace("{o}", o).replace("{s}", s);
                    tools.push((name.clone(), format!("{name} {text} id {o}_id fields")));
                }
            }
        }
    }
    tools
}

/// 60 tasks, every verb among them: tools `k * 10 + k % 5`, asked in other words than
/// their descriptions.
fn tasks() -> Vec<(String, String)> {
    let mut all = Vec::new();
    for s in SYSTEMS {
        for o in OBJECTS {
            for (verb, _, ask) in VERBS {
                all.push((
                    format!("{s}__{verb}_{o}"),
                    ask.replace("{o}", o).replace("{s}", s),
                ));
            }
        }
    }
    (0..60).map(|k| all[k * 10 + k % 5].clone()).collect()
}

fn narrowing() -> Vec<Value> {
    let tools = catalog(1);
    let index = Index::new(tools.iter().map(|(_, doc)| doc.as_str()));
    let tasks = tasks();
    let mut rows = Vec::new();
    let mut recall = serde_json::Map::new();
    for k in [1, 5, 16, 64] {
        let hits = tasks
            .iter()
            .filter(|(want, task)| index.top(task, k).iter().any(|&i| &tools[i].0 == want))
            .count();
        recall.insert(
            format!("recall_at_{k}"),
            json!((hits as f64 / tasks.len() as f64 * 1000.0).round() / 1000.0),
        );
    }
    println!(
        "narrowing: {} tasks over {} tools: {recall:?}",
        tasks.len(),
        tools.len()
    );
    rows.push(json!({ "case": "narrowing recall", "tools": tools.len(), "tasks": tasks.len(), "recall": recall }));
    for copies in [2, 17] {
        let tools = catalog(copies);
        let built = Instant::now();
        let index = Index::new(tools.iter().map(|(_, doc)| doc.as_str()));
        let build_us = built.elapsed().as_micros();
        let rounds = 200;
        let started = Instant::now();
        for (i, (_, task)) in tasks.iter().cycle().take(rounds).enumerate() {
            std::hint::black_box(index.top(task, 64 + i % 2));
        }
        let per_us = started.elapsed().as_secs_f64() * 1e6 / rounds as f64;
        println!(
            "narrowing {} tools: {per_us:.0} us per ranking (index built in {build_us} us)",
            tools.len()
        );
        rows.push(json!({ "case": "narrowing time", "tools": tools.len(), "rank_us": per_us.round(), "index_build_us": build_us }));
    }
    rows
}

fn main() -> anyhow::Result<()> {
    bench::run("agent", || async {
        let mut rows = narrowing();
        rows.extend(overhead().await?);
        Ok(rows)
    })
}
