//! The routing of one call as `call` shows it: the router's own (`--config`), or what a
//! gateway reports in the result's `_meta` (`--url`); durations in milliseconds.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use toolmesh::{CallMeta, layers::core::CallToolResult};

use crate::output;

/// The `_meta` key under which the gateway returns a call's routing.
pub(crate) const META_KEY: &str = "io.toolmesh/routing";

/// What the router did for one call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Routing {
    service: Option<String>,
    instance: Option<String>,
    attempts: u32,
    failovers: u32,
    latency_ms: f64,
    strategy: Option<String>,
    cache_hit: bool,
    degraded: bool,
    tried: Vec<Tried>,
}

/// One failed attempt.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Tried {
    instance: Option<String>,
    kind: String,
    phase: String,
    error: String,
}

/// A serde enum's wire name (`round_robin`, `before_send`).
fn wire_name(value: impl Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(name)) => name,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

impl From<&CallMeta> for Routing {
    fn from(meta: &CallMeta) -> Self {
        Self {
            service: meta.service.as_ref().map(ToString::to_string),
            instance: meta.instance.as_ref().map(ToString::to_string),
            attempts: meta.attempts,
            failovers: meta.failovers,
            latency_ms: meta.latency.as_secs_f64() * 1000.0,
            strategy: meta.strategy.map(wire_name),
            cache_hit: meta.cache_hit,
            degraded: meta.degraded,
            tried: meta
                .tried
                .iter()
                .map(|t| Tried {
                    instance: t.instance.as_ref().map(ToString::to_string),
                    kind: t.kind.as_str().to_owned(),
                    phase: wire_name(t.phase),
                    error: t.error.clone(),
                })
                .collect(),
        }
    }
}

impl Routing {
    /// The routing a gateway put in `result`'s `_meta`, if any.
    pub(crate) fn from_result(result: &CallToolResult) -> Option<Self> {
        let value = result.meta.as_ref()?.0.get(META_KEY)?;
        match serde_json::from_value(value.clone()) {
            Ok(routing) => Some(routing),
            Err(e) => {
                tracing::debug!("ignoring a malformed `{META_KEY}` in the result: {e}");
                None
            }
        }
    }

    /// The lines for stderr: the route, then one per failed attempt.
    pub(crate) fn render(&self) -> String {
        let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_owned());
        let mut out = format!(
            "routed: service {} instance {} attempts {} failovers {} latency {}{}{}",
            or_dash(&self.service),
            or_dash(&self.instance),
            self.attempts,
            self.failovers,
            output::millis_f64(self.latency_ms),
            if self.cache_hit { " (cached)" } else { "" },
            if self.degraded {
                " (degraded: a stale cached answer)"
            } else {
                ""
            },
        );
        for tried in &self.tried {
            out.push_str(&format!(
                "\n  failed on {}: {} ({}): {}",
                or_dash(&tried.instance),
                tried.kind,
                tried.phase.replace('_', " "),
                tried.error
            ));
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use serde_json::json;
    use toolmesh::{
        ErrorKind, InstanceId, Phase, ServerId, Strategy, layers::registry::FailedAttempt,
    };

    use super::*;

    fn result_with(meta: Value) -> CallToolResult {
        serde_json::from_value(json!({
            "content": [{"type": "text", "text": "ok"}],
            "_meta": meta,
        }))
        .unwrap()
    }

    fn router_meta() -> CallMeta {
        CallMeta {
            service: Some(ServerId::new("fixture")),
            instance: Some(InstanceId::new("fixture-2")),
            attempts: 2,
            failovers: 1,
            latency: Duration::from_micros(2500),
            strategy: Some(Strategy::RoundRobin),
            tried: vec![FailedAttempt {
                instance: Some(InstanceId::new("fixture-1")),
                kind: ErrorKind::Connect,
                phase: Phase::BeforeSend,
                error: "connection refused".into(),
            }],
            ..CallMeta::default()
        }
    }

    #[test]
    fn the_gateway_meta_renders_as_the_router_meta_does() {
        let local = Routing::from(&router_meta());
        let wire = json!({
            "service": "fixture", "instance": "fixture-2", "attempts": 2, "failovers": 1,
            "latency_ms": 2.5, "strategy": "round_robin", "cache_hit": false,
            "degraded": false,
            "tried": [{"instance": "fixture-1", "kind": "connect", "phase": "before_send",
                       "error": "connection refused"}]
        });
        let result = result_with(json!({ META_KEY: wire, "other": 1 }));
        let remote = Routing::from_result(&result).unwrap();
        assert_eq!(remote, local);
        assert_eq!(
            remote.render(),
            "routed: service fixture instance fixture-2 attempts 2 failovers 1 latency 2.5ms\n  \
             failed on fixture-1: connect (before send): connection refused"
        );
        assert_eq!(serde_json::to_value(&local).unwrap(), wire);
    }

    #[test]
    fn no_routing_without_the_key() {
        let result: CallToolResult =
            serde_json::from_value(json!({"content": [{"type": "text", "text": "ok"}]})).unwrap();
        assert_eq!(Routing::from_result(&result), None);
        let result = result_with(json!({ META_KEY: "not an object" }));
        assert_eq!(Routing::from_result(&result), None);
    }
}
