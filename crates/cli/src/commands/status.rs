//! `toolmesh status`: every instance's health, breaker and performance.

use std::{io::IsTerminal, process::ExitCode, time::Duration};

use anyhow::Context;
use serde_json::Value;
use toolmesh::Mesh;

use super::stop_signal;
use crate::{cli::StatusArgs, output, target};

/// The gateway asked without --config or --url.
const DEFAULT_GATEWAY: &str = "http://127.0.0.1:8383";

/// How often `--watch` refreshes.
const REFRESH: Duration = Duration::from_secs(2);

/// Where the report comes from.
enum Source {
    Local(Mesh),
    Remote {
        client: reqwest::Client,
        status_url: String,
        bearer: Option<String>,
    },
}

impl Source {
    async fn report(&self) -> anyhow::Result<Value> {
        match self {
            Self::Local(mesh) => {
                let mut report = mesh.registry().report_json();
                output::durations_in_ms(&mut report);
                let reload = mesh.reload_status().borrow().clone();
                if let Some(object) = report.as_object_mut() {
                    object.insert(
                        "discovery".to_owned(),
                        serde_json::to_value(mesh.sources().status()).unwrap_or_default(),
                    );
                    object.insert(
                        "reload".to_owned(),
                        serde_json::json!({
                            "generation": reload.generation,
                            "last_error": reload.last_error,
                        }),
                    );
                }
                Ok(report)
            }
            Self::Remote {
                client,
                status_url,
                bearer,
            } => {
                let mut request = client.get(status_url);
                if let Some(token) = bearer {
                    request = request.bearer_auth(token);
                }
                let response = request
                    .send()
                    .await
                    .with_context(|| format!("cannot reach {status_url}"))?;
                let code = response.status();
                let body = response
                    .text()
                    .await
                    .with_context(|| format!("reading {status_url}"))?;
                let mut report: Value = serde_json::from_str(&body).with_context(|| {
                    format!("{status_url} answered HTTP {code} without a JSON status: {body:.200}")
                })?;
                output::durations_in_ms(&mut report);
                Ok(report)
            }
        }
    }
}

/// Shows the report; exit status 1 when no service has a healthy instance.
pub(crate) async fn run(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let source = if args.config.is_empty() {
        // Without --url: the gateway `toolmesh serve` runs by default.
        let url = args.url.as_deref().unwrap_or(DEFAULT_GATEWAY);
        Source::Remote {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()?,
            status_url: status_url(url),
            bearer: args.bearer.clone(),
        }
    } else {
        Source::Local(target::start_mesh(&args.config).await?)
    };
    let outcome = show(&source, &args).await;
    if let Source::Local(mesh) = source {
        mesh.shutdown().await;
    }
    outcome
}

async fn show(source: &Source, args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let clear = args.watch && std::io::stdout().is_terminal();
    loop {
        let report = source.report().await?;
        let down = is_down(&report);
        if clear {
            output::emit_raw("\x1b[2J\x1b[H")?;
        }
        if args.json {
            output::emit(&serde_json::to_string_pretty(&report)?)?;
        } else {
            output::emit_raw(&render(&report))?;
        }
        if !args.watch {
            if down {
                eprintln!(
                    "toolmesh: every service is down (no healthy instance); see the reasons above"
                );
                return Ok(ExitCode::FAILURE);
            }
            return Ok(ExitCode::SUCCESS);
        }
        tokio::select! {
            () = tokio::time::sleep(REFRESH) => {}
            () = stop_signal() => return Ok(ExitCode::SUCCESS),
        }
    }
}

/// Whether the report has services and none of them can serve.
fn is_down(report: &Value) -> bool {
    let summary = &report["summary"];
    summary["status"] == "down" && summary["services"].as_u64().is_some_and(|n| n > 0)
}

/// `<base>/status` for a gateway's MCP URL or base URL.
fn status_url(url: &str) -> String {
    let base = url.trim_end_matches('/');
    let base = base.strip_suffix("/mcp").unwrap_or(base);
    format!("{base}/status")
}

/// The summary line and the instance table of a report.
fn render(report: &Value) -> String {
    let mut out = String::new();
    let summary = &report["summary"];
    out.push_str(&format!(
        "{}: {}/{} services healthy, {}/{} instances healthy, {} tools\n",
        summary["status"].as_str().unwrap_or("unknown"),
        summary["services_healthy"],
        summary["services"],
        summary["instances_healthy"],
        summary["instances"],
        summary["tools"],
    ));
    if let Some(reload) = report.get("reload").filter(|r| !r.is_null()) {
        out.push_str(&format!(
            "configuration generation {}",
            reload["generation"]
        ));
        if let Some(error) = reload["last_error"].as_str() {
            out.push_str(&format!("; last reload failed: {error}"));
        }
        out.push('\n');
    }
    for source in report["discovery"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "discovery {}: {}, {} services, {} instances",
            source["source"].as_str().unwrap_or("?"),
            source["state"].as_str().unwrap_or("?"),
            source["services"],
            source["instances"],
        ));
        if let Some(error) = source["error"].as_str() {
            out.push_str(&format!(
                " (lost {}s ago: {error}; routing on the last known membership)",
                source["lost_for_secs"]
            ));
        }
        out.push('\n');
    }
    for problem in summary["problems"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "problem in {}: {}\n",
            problem["service"].as_str().unwrap_or("?"),
            problem["problem"].as_str().unwrap_or("?")
        ));
    }
    let mut table = output::table(&[
        "service", "instance", "healthy", "reason", "breaker", "calls", "success", "p99",
    ]);
    for instance in report["instances"].as_array().into_iter().flatten() {
        let load = &instance["load"];
        let calls = load["calls"].as_u64().unwrap_or(0);
        table.add_row(vec![
            text(&instance["service"]),
            text(&instance["instance"]),
            if instance["healthy"].as_bool() == Some(true) {
                "yes".to_owned()
            } else {
                "NO".to_owned()
            },
            text(&instance["reason"]),
            text(&instance["breaker"]),
            calls.to_string(),
            load["success_rate"]
                .as_f64()
                .filter(|_| calls > 0)
                .map_or("-".to_owned(), |rate| format!("{:.1}%", rate * 100.0)),
            load["p99_latency_ms"]
                .as_f64()
                .map_or("-".to_owned(), output::millis_f64),
        ]);
    }
    out.push_str(&table.to_string());
    out.push('\n');
    out
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn status_urls_from_mcp_or_base_urls() {
        assert_eq!(
            status_url("http://127.0.0.1:8383/mcp"),
            "http://127.0.0.1:8383/status"
        );
        assert_eq!(
            status_url("http://127.0.0.1:8383/"),
            "http://127.0.0.1:8383/status"
        );
    }

    #[test]
    fn renders_instances() {
        let report = json!({
            "summary": {"status": "degraded", "services": 1, "services_healthy": 0,
                        "instances": 2, "instances_healthy": 1, "tools": 8, "problems": []},
            "reload": {"generation": 2, "last_error": "bad file"},
            "discovery": [{"source": "etcd", "state": "lost", "error": "connection refused",
                           "lost_for_secs": 12, "services": 1, "instances": 2}],
            "instances": [{"service": "fx", "instance": "fx-1", "healthy": false,
                           "reason": "connection refused", "breaker": "open",
                           "load": {"calls": 10, "success_rate": 0.5,
                                    "p99_latency_ms": 2.0}},
                          {"service": "fx", "instance": "fx-2", "healthy": true,
                           "reason": "ok", "breaker": "closed",
                           "load": {"calls": 0, "success_rate": 1.0, "p99_latency_ms": null}}]
        });
        let text = render(&report);
        assert!(text.contains("degraded: 0/1 services healthy"), "{text}");
        assert!(text.contains("last reload failed: bad file"), "{text}");
        assert!(
            text.contains("discovery etcd: lost, 1 services, 2 instances (lost 12s ago: connection refused; routing on the last known membership)"),
            "{text}"
        );
        for cell in ["fx-1", "NO", "connection refused", "open", "50.0%", "2.0ms"] {
            assert!(text.contains(cell), "{cell} missing from {text}");
        }
        // No call yet: no success rate to show.
        let idle = text
            .lines()
            .find(|l| l.contains("fx-2"))
            .unwrap_or_default();
        assert!(!idle.contains("100.0%") && idle.contains(" - "), "{idle}");
    }
}
