//! `cargo xtask bench agent`:
//! - overhead: one agent step (a model call plus the tool call it asks for, through the
//!   agent) against the same model request and the same tool call made by hand, side by
//!   side against the testkit's scripted LLM (instant answers) and the native calculator;
//! - narrowing: recall@k of the intended tool over a catalog of the real npm servers' tools
//!   (server-everything, server-filesystem, server-memory, listed by the running servers)
//!   and 600 generated ones, for 60 generated tasks and 25 aimed at the real tools; and the
//!   time to rank 1,000 and 10,000 tools. Needs the pinned peers (`cargo xtask peers`).
//!
//! Writes `target/bench/agent.json`.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::bail;
use serde_json::{Value, json};
use toolmesh_agent::{
    Agent, AgentError, Llm, LlmEndpoint,
    narrow::{self, Index},
    openai::{
        ChatCompletionRequestMessage, ChatCompletionRequestUserMessage, CreateChatCompletionRequest,
    },
};
use toolmesh_core::{CallContext, JsonObject, ServerId, Tool};
use toolmesh_registry::{NativeBackend, Registry, RegistryOptions, ServiceSpec};
use toolmesh_testkit::{
    Reply, ScriptedCall, ScriptedLlm,
    bench::{self, Caller},
    peers::{server_everything, server_filesystem, server_memory},
};
use toolmesh_tools::{Toolbox, ToolsConfig};
use toolmesh_transport::Endpoint;

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
    let mut spec = ServiceSpec::native(ServerId::new("native"), NativeBackend::toolbox(toolbox));
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

/// Tasks for the real servers' tools, worded as a user would ask, not as the tool
/// describes itself.
const REAL_TASKS: [(&str, &str); 25] = [
    (
        "everything__echo",
        "echo this message back to me: hello from the mesh",
    ),
    ("everything__get-sum", "what do 19 and 23 add up to?"),
    (
        "everything__get-env",
        "print the environment variables the server is running with",
    ),
    (
        "everything__get-tiny-image",
        "send me a tiny image of the logo",
    ),
    (
        "everything__trigger-long-running-operation",
        "kick off a long operation that reports progress in 5 steps",
    ),
    (
        "everything__toggle-simulated-logging",
        "turn the simulated log messages on",
    ),
    (
        "everything__gzip-file-as-resource",
        "gzip this text into a file I can download",
    ),
    (
        "everything__simulate-research-query",
        "research the history of the transistor and summarise it",
    ),
    (
        "filesystem__read_text_file",
        "show me the first 20 lines of notes.txt",
    ),
    (
        "filesystem__write_file",
        "save this text into a new file called todo.md",
    ),
    (
        "filesystem__edit_file",
        "in config.toml, change the line debug = true to debug = false",
    ),
    (
        "filesystem__list_directory",
        "what's in the projects directory?",
    ),
    (
        "filesystem__directory_tree",
        "draw the folder structure of src as a tree",
    ),
    ("filesystem__move_file", "rename draft.txt to final.txt"),
    (
        "filesystem__search_files",
        "find every markdown file anywhere under docs",
    ),
    (
        "filesystem__get_file_info",
        "when was budget.csv last modified, and how big is it?",
    ),
    (
        "filesystem__create_directory",
        "make a folder called archive/2024",
    ),
    (
        "filesystem__list_allowed_directories",
        "which directories are you allowed to access?",
    ),
    (
        "filesystem__read_multiple_files",
        "read a.txt, b.txt and c.txt together so we can compare them",
    ),
    (
        "memory__create_entities",
        "remember that Alice is an engineer at Acme",
    ),
    (
        "memory__create_relations",
        "record in the knowledge graph that Alice works for Acme",
    ),
    (
        "memory__add_observations",
        "add a note to Alice's entity: prefers email over phone",
    ),
    (
        "memory__search_nodes",
        "search your memory for anything about kubernetes",
    ),
    ("memory__read_graph", "show me the whole knowledge graph"),
    (
        "memory__delete_entities",
        "forget Bob completely, delete him from the graph",
    ),
];

/// The tools of server-everything, server-filesystem (on a temp dir) and server-memory
/// under their catalog names, as the running servers list them. The servers are stopped
/// before this returns.
async fn real_tools() -> anyhow::Result<Vec<(String, Tool)>> {
    let dir = tempfile::tempdir()?;
    // The filesystem server resolves symlinks: give it the canonical path.
    let files = dir.path().canonicalize()?;
    let stdio = |id: &str, (program, args): (PathBuf, Vec<String>)| {
        let mut endpoint = Endpoint::stdio(program.to_string_lossy(), args).named(id);
        // A slow start on a busy machine is no failure.
        endpoint.connect_timeout = Some(Duration::from_secs(60));
        endpoint
    };
    let mut memory = stdio("memory", server_memory()?);
    memory.env.insert(
        "MEMORY_FILE_PATH".into(),
        files.join("memory.jsonl").to_string_lossy().into_owned(),
    );
    let specs = vec![
        ServiceSpec::single(
            ServerId::new("everything"),
            stdio("everything", server_everything(&[])?),
        ),
        ServiceSpec::single(
            ServerId::new("filesystem"),
            stdio("filesystem", server_filesystem(&[&files])?),
        ),
        ServiceSpec::single(ServerId::new("memory"), memory),
    ];
    let registry = Registry::new(RegistryOptions::default());
    let started = registry.apply(specs).await;
    let catalog = registry.catalog();
    registry.shutdown().await;
    started?;
    let tools: Vec<(String, Tool)> = catalog
        .entries()
        .iter()
        .map(|e| (e.rendered.clone(), (*e.tool).clone()))
        .collect();
    for server in ["everything", "filesystem", "memory"] {
        if !tools.iter().any(|(name, _)| {
            name.strip_prefix(server)
                .is_some_and(|n| n.starts_with("__"))
        }) {
            bail!("{server} listed no tools");
        }
    }
    Ok(tools)
}

/// Generated tools `{system}__{verb}_{object}` (`{system}{copy}__…` after the first copy),
/// with `id`, `{object}_id` and `fields` arguments.
fn generated(copies: usize) -> Vec<(String, Tool)> {
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
                    let properties: JsonObject =
                        ["id".to_owned(), format!("{o}_id"), "fields".into()]
                            .into_iter()
                            .map(|arg| (arg, json!({ "type": "string" })))
                            .collect();
                    let schema = json!({ "type": "object", "properties": properties });
                    let text = description.replace("{o}", o).replace("{s}", s);
                    let tool = Tool::new(
                        name.clone(),
                        text,
                        schema.as_object().cloned().unwrap_or_default(),
                    );
                    tools.push((name, tool));
                }
            }
        }
    }
    tools
}

/// The generated tools first, so that ties (kept in catalog order) do not favour the
/// real ones.
/// Returns the catalog names and the documents the agent indexes.
fn catalog(real: &[(String, Tool)], copies: usize) -> (Vec<String>, Vec<String>) {
    let mut tools = generated(copies);
    tools.extend_from_slice(real);
    tools
        .into_iter()
        .map(|(name, tool)| {
            let document = narrow::document(&name, &tool);
            (name, document)
        })
        .unzip()
}

/// 60 generated tasks, every verb among them: tools `k * 10 + k % 5`, asked in other
/// words than their descriptions.
fn generated_tasks() -> Vec<(String, String)> {
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

/// Recall@1/5/16/64 from the 0-based ranks of the intended tools.
fn recall(ranks: &[usize]) -> Value {
    let at = |k: usize| {
        let hits = ranks.iter().filter(|&&r| r < k).count();
        json!((hits as f64 / ranks.len() as f64 * 1000.0).round() / 1000.0)
    };
    json!({ "recall_at_1": at(1), "recall_at_5": at(5), "recall_at_16": at(16), "recall_at_64": at(64) })
}

fn narrowing(real: &[(String, Tool)]) -> anyhow::Result<Vec<Value>> {
    let (names, documents) = catalog(real, 1);
    let index = Index::new(documents.iter().map(String::as_str));
    let generated = generated_tasks();
    let real_tasks: Vec<(String, String)> = REAL_TASKS
        .iter()
        .map(|(tool, task)| ((*tool).to_owned(), (*task).to_owned()))
        .collect();
    let rank = |(want, task): &(String, String)| -> anyhow::Result<usize> {
        match index
            .top(task, names.len())
            .iter()
            .position(|&i| &names[i] == want)
        {
            Some(rank) => Ok(rank),
            None => bail!("the catalog has no {want}"),
        }
    };
    let generated_ranks = generated
        .iter()
        .map(rank)
        .collect::<anyhow::Result<Vec<_>>>()?;
    let real_ranks = real_tasks
        .iter()
        .map(rank)
        .collect::<anyhow::Result<Vec<_>>>()?;
    for ((want, task), rank) in real_tasks.iter().zip(&real_ranks) {
        println!("narrowing: {want} ranked {} for {task:?}", rank + 1);
    }
    let all_ranks = [generated_ranks.clone(), real_ranks.clone()].concat();
    let row = json!({
        "case": "narrowing recall",
        "tools": names.len(),
        "real_tools": real.len(),
        "tasks": all_ranks.len(),
        "real_tasks": real_ranks.len(),
        "recall": recall(&all_ranks),
        "recall_real": recall(&real_ranks),
        "recall_generated": recall(&generated_ranks),
    });
    println!(
        "narrowing: {} tasks ({} on real tools) over {} tools ({} real): all {}, real {}, generated {}",
        all_ranks.len(),
        real_ranks.len(),
        names.len(),
        real.len(),
        row["recall"],
        row["recall_real"],
        row["recall_generated"]
    );
    let mut rows = vec![row];
    let tasks = [generated, real_tasks].concat();
    for copies in [2, 17] {
        let (names, documents) = catalog(real, copies);
        let built = Instant::now();
        let index = Index::new(documents.iter().map(String::as_str));
        let build_us = built.elapsed().as_micros();
        let rounds = 200;
        let started = Instant::now();
        for (i, (_, task)) in tasks.iter().cycle().take(rounds).enumerate() {
            std::hint::black_box(index.top(task, 64 + i % 2));
        }
        let per_us = started.elapsed().as_secs_f64() * 1e6 / rounds as f64;
        println!(
            "narrowing {} tools: {per_us:.0} us per ranking (index built in {build_us} us)",
            names.len()
        );
        rows.push(json!({ "case": "narrowing time", "tools": names.len(), "rank_us": per_us.round(), "index_build_us": build_us }));
    }
    Ok(rows)
}

fn main() -> anyhow::Result<()> {
    bench::run("agent", || async {
        let mut rows = narrowing(&real_tools().await?)?;
        rows.extend(overhead().await?);
        Ok(rows)
    })
}
