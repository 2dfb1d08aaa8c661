//! `toolmesh call`: one tool call.

use std::process::ExitCode;

use serde_json::{Value, json};
use toolmesh::{
    CallContext, CallError,
    layers::core::{CallToolResult, JsonObject},
};
use toolmesh_server::{CatalogServer, ServerError, ServerOptions};

use crate::{
    cli::CallArgs,
    failure::Usage,
    output,
    routing::Routing,
    target::{self, Target},
};

pub(crate) async fn run(args: CallArgs) -> anyhow::Result<ExitCode> {
    let arguments = parse_arguments(args.args.as_deref())?;
    let target = Target::open(&args.target).await?;
    let outcome = call(&target, &args, arguments).await;
    target.close().await;
    let (result, routing) = outcome?;

    if args.json {
        let mut out = json!({ "result": result });
        if let Some(routing) = &routing {
            out["meta"] = serde_json::to_value(routing)?;
        }
        output::emit(&serde_json::to_string_pretty(&out)?)?;
    } else {
        let text = output::result_text(&result);
        if result.is_error != Some(true) && !text.is_empty() {
            output::emit(&text)?;
        }
        if let Some(routing) = &routing {
            eprintln!("{}", routing.render());
        }
    }
    if result.is_error == Some(true) {
        let text = output::result_text(&result);
        let reason = text.lines().next().unwrap_or("the tool reported an error");
        eprintln!("toolmesh: `{}` failed: {reason}", args.tool);
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

async fn call(
    target: &Target,
    args: &CallArgs,
    arguments: Option<JsonObject>,
) -> anyhow::Result<(CallToolResult, Option<Routing>)> {
    let ctx = CallContext::with_timeout(args.timeout);
    if let Some(registry) = target.registry() {
        let server = CatalogServer::with_options(
            registry.clone(),
            ServerOptions::default().call_timeout(args.timeout),
        );
        return match server.call_routed(&args.tool, arguments, &ctx).await {
            Ok(routed) => Ok((routed.result, Some(Routing::from(&routed.meta)))),
            Err(e @ ServerError::Call(CallError::ToolNotFound { .. })) => {
                match down_server_of(registry, &args.tool) {
                    Some(why) => Err(anyhow::anyhow!(
                        "`{}` cannot be called: its server is down: {why}; fix the server or \
                         its configuration (`toolmesh status --config …` shows every instance)",
                        args.tool
                    )),
                    None => Err(e.into()),
                }
            }
            Err(e) => Err(e.into()),
        };
    }
    let Target::Remote(session) = target else {
        anyhow::bail!("no target to call");
    };
    let result = session.call_tool(&args.tool, arguments, &ctx).await?;
    let routing = Routing::from_result(&result);
    Ok((result, routing))
}

/// Why the server whose namespace `tool` is in cannot serve, if it is down (e.g. it
/// failed to start, so its tools never reached the catalog).
fn down_server_of(registry: &toolmesh::Registry, tool: &str) -> Option<String> {
    target::down_services(registry)
        .into_iter()
        .find(|(namespace, _)| {
            tool.strip_prefix(namespace.as_str())
                .is_some_and(|rest| rest.starts_with("__") || rest.starts_with('/'))
        })
        .map(|(_, why)| why)
}

/// ARGS_JSON as a JSON object; absent or `null` means no arguments.
fn parse_arguments(text: Option<&str>) -> Result<Option<JsonObject>, Usage> {
    let Some(text) = text else {
        return Ok(None);
    };
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(Some(map)),
        Ok(Value::Null) => Ok(None),
        Ok(other) => Err(Usage(format!(
            "ARGS_JSON must be a JSON object such as '{{\"message\": \"hi\"}}', got {}",
            match other {
                Value::Array(_) => "an array",
                Value::String(_) => "a string",
                Value::Number(_) => "a number",
                _ => "a boolean",
            }
        ))),
        Err(e) => Err(Usage(format!(
            "ARGS_JSON is not valid JSON ({e}); quote it for the shell, e.g. '{{\"message\": \"hi\"}}'"
        ))),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn arguments_must_be_an_object() {
        assert_eq!(parse_arguments(None).unwrap(), None);
        assert_eq!(parse_arguments(Some("null")).unwrap(), None);
        assert_eq!(
            parse_arguments(Some(r#"{"a": 1}"#)).unwrap().unwrap().len(),
            1
        );
        let err = parse_arguments(Some("[1]")).unwrap_err();
        assert!(err.0.contains("got an array"), "{err}");
        let err = parse_arguments(Some("{message: hi}")).unwrap_err();
        assert!(err.0.starts_with("ARGS_JSON is not valid JSON"), "{err}");
    }
}
