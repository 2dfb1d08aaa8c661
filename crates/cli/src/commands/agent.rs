//! `toolmesh agent run` and `toolmesh agent chat`: an LLM agent over the mesh's tools.

use std::{io::BufRead, process::ExitCode};

use anyhow::Context;
use futures::StreamExt;
use toolmesh::{Agent, Config, RunResult, agent::AgentEvent};

use crate::{
    cli::{AgentArgs, AgentChoice, AgentRunArgs},
    output::{emit, emit_raw},
    target::{AgentTools, loader, spinner},
};

/// The agent and what it runs on; [`close`](Self::close) stops the servers.
struct Session {
    agent: Agent,
    tools: AgentTools,
}

impl AgentChoice {
    /// The configuration (empty without `--config`) with a default agent when it names
    /// none, and `--model` applied to every agent.
    pub(super) fn config(&self) -> anyhow::Result<Config> {
        let mut config = if self.config.is_empty() {
            Config::default()
        } else {
            loader(&self.config).load()?
        };
        if config.agents.is_empty() {
            config
                .agents
                .insert("agent".into(), toolmesh::config::AgentConfig::default());
        }
        if let Some(model) = &self.model {
            for agent in config.agents.values_mut() {
                agent.model = Some(model.clone());
            }
        }
        Ok(config)
    }
}

impl Session {
    async fn open(args: &AgentArgs) -> anyhow::Result<Self> {
        let mut config = args.choice.config()?;
        if let Some(steps) = args.max_steps {
            for agent in config.agents.values_mut() {
                agent.max_steps = Some(steps);
            }
        }
        // After the agents are settled: exposed agents are built when the mesh starts.
        let tools = AgentTools::start(&config).await?;
        let agent = config.agent(args.choice.agent.as_deref(), tools.registry.clone());
        match agent {
            Ok(agent) => Ok(Self { agent, tools }),
            Err(e) => {
                tools.close().await;
                Err(e.into())
            }
        }
    }

    async fn close(self) {
        self.tools.close().await;
    }
}

/// Runs one task and prints the answer (or the run as JSON); a spinner on stderr shows
/// the step and the tool being called.
pub(crate) async fn run(args: AgentRunArgs) -> anyhow::Result<ExitCode> {
    let session = Session::open(&args.agent).await?;
    let spinner = spinner(format!(
        "agent `{}`: step 1, asking the model",
        session.agent.name()
    ));
    let mut events = std::pin::pin!(session.agent.stream(&args.task));
    let mut outcome = None;
    while let Some(event) = events.next().await {
        match event {
            AgentEvent::Text(text) if args.stream => spinner.suspend(|| emit_raw(&text))?,
            AgentEvent::ToolCall { step, tool, .. } => {
                spinner.set_message(format!("step {step}: calling {tool}"));
            }
            AgentEvent::Step { step, .. } => {
                spinner.set_message(format!("step {}: asking the model", step + 1));
            }
            AgentEvent::Done(done) => outcome = Some(done),
            _ => {}
        }
    }
    spinner.finish_and_clear();
    session.close().await;
    let run = outcome.context("the agent's run ended without an outcome")??;
    if args.stream {
        emit("")?;
    } else {
        print(&run, args.agent.json)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads messages from stdin, one per line, and answers each with the history kept.
pub(crate) async fn chat(args: AgentArgs) -> anyhow::Result<ExitCode> {
    let session = Session::open(&args).await?;
    let mut history = Vec::new();
    let mut outcome = Ok(ExitCode::SUCCESS);
    for line in std::io::stdin().lock().lines() {
        let line = line.context("cannot read stdin")?;
        let message = line.trim();
        if message.is_empty() {
            continue;
        }
        if matches!(message, "/exit" | "/quit") {
            break;
        }
        match session.agent.chat(&mut history, message).await {
            Ok(run) => print(&run, args.json)?,
            Err(e) => {
                // A failed turn is reported; the conversation goes on.
                eprintln!("toolmesh: {e}");
                outcome = Ok(ExitCode::FAILURE);
            }
        }
    }
    session.close().await;
    outcome
}

fn print(run: &RunResult, json: bool) -> anyhow::Result<()> {
    if json {
        emit(&serde_json::to_string_pretty(run)?)?;
    } else {
        emit(&run.answer)?;
    }
    Ok(())
}
