//! `toolmesh workflow run`: one run of a configured workflow over the mesh.

use std::process::ExitCode;

use serde_json::Value;
use tokio_util::sync::CancellationToken;
use toolmesh::{CallContext, WorkflowResult};

use crate::{
    cli::WorkflowRunArgs,
    failure::Usage,
    output::emit,
    target::{AgentTools, loader, spinner},
};

pub(crate) async fn run(args: WorkflowRunArgs) -> anyhow::Result<ExitCode> {
    let input: Value = match &args.input {
        Some(text) => serde_json::from_str(text).map_err(|e| {
            Usage(format!(
                "--input is not JSON ({e}); write e.g. --input '{{\"topic\": \"MCP\"}}'"
            ))
        })?,
        None => Value::Object(Default::default()),
    };
    let config = loader(&args.config).load()?;
    let tools = AgentTools::start(&config).await?;
    let workflow = match config.workflow(&args.name, tools.registry.clone()) {
        Ok(workflow) => workflow,
        Err(e) => {
            tools.close().await;
            return Err(e.into());
        }
    };
    let cancel = CancellationToken::new();
    let ctx = CallContext::with_timeout(args.timeout).cancel_with(cancel.clone());
    let spinner = spinner(format!("workflow `{}`", workflow.name()));
    // Ctrl-C cancels the run: steps in flight are abandoned, the steps so far reported.
    let interrupt = tokio::spawn({
        let cancel = cancel.clone();
        async move {
            super::stop_signal().await;
            cancel.cancel();
        }
    });
    let outcome = workflow.run(input, &ctx).await;
    interrupt.abort();
    spinner.finish_and_clear();
    tools.close().await;
    match outcome {
        Ok(result) => {
            print(&result, args.json)?;
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            if let Some(result) = error.result() {
                if args.json {
                    emit(&serde_json::to_string_pretty(result)?)?;
                } else {
                    eprintln!("{}", result.summary());
                }
            }
            Err(error.into())
        }
    }
}

fn print(result: &WorkflowResult, json: bool) -> anyhow::Result<()> {
    if json {
        emit(&serde_json::to_string_pretty(result)?)?;
        return Ok(());
    }
    let output = match &result.output {
        Value::String(text) => text.clone(),
        other => serde_json::to_string_pretty(other)?,
    };
    emit(&format!("{}\n\n{output}", result.summary()))?;
    Ok(())
}
