//! The router's account of a call, handed to gateway clients in the result's `_meta`
//! under [`ROUTING_META_KEY`], beside whatever `_meta` the upstream result carried.

use rmcp::model::CallToolResult;
use serde_json::{Value, json};
use toolmesh_registry::{CallMeta, Routed};

/// The `_meta` key of the routing metadata: an object with `service`, `instance`,
/// `attempts`, `failovers`, `latency_ms`, `strategy`, `cache_hit`, `degraded` and
/// `tried` (`[{instance, kind, phase, error}]`, one per failed attempt).
pub const ROUTING_META_KEY: &str = "io.toolmesh/routing";

/// The result of `routed` with its routing metadata added to `_meta`.
pub(crate) fn with_routing(routed: Routed) -> CallToolResult {
    let Routed { mut result, meta } = routed;
    result
        .meta
        .get_or_insert_with(Default::default)
        .insert(ROUTING_META_KEY.to_owned(), routing(&meta));
    result
}

fn routing(meta: &CallMeta) -> Value {
    let tried: Vec<Value> = meta
        .tried
        .iter()
        .map(|attempt| {
            json!({
                "instance": attempt.instance,
                "kind": attempt.kind,
                "phase": attempt.phase,
                "error": attempt.error,
            })
        })
        .collect();
    json!({
        "service": meta.service,
        "instance": meta.instance,
        "attempts": meta.attempts,
        "failovers": meta.failovers,
        "latency_ms": meta.latency.as_nanos() as f64 / 1_000_000.0,
        "strategy": meta.strategy,
        "cache_hit": meta.cache_hit,
        "degraded": meta.degraded,
        "tried": tried,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use rmcp::model::{ContentBlock, MetaObject};
    use toolmesh_core::{ErrorKind, InstanceId, Phase, ServerId};
    use toolmesh_registry::{FailedAttempt, Strategy};

    use super::*;

    #[test]
    fn routing_joins_the_upstream_meta() {
        let mut result = CallToolResult::success(vec![ContentBlock::text("hi")]);
        result.meta = Some(MetaObject(
            json!({"upstream": "kept"}).as_object().cloned().unwrap(),
        ));
        let meta = CallMeta {
            service: Some(ServerId::new("fx")),
            instance: Some(InstanceId::new("b")),
            attempts: 2,
            failovers: 1,
            latency: Duration::from_micros(1500),
            strategy: Some(Strategy::default()),
            tried: vec![FailedAttempt {
                instance: Some(InstanceId::new("a")),
                kind: ErrorKind::Connect,
                phase: Phase::BeforeSend,
                error: "connection refused".to_owned(),
            }],
            ..CallMeta::default()
        };
        let result = with_routing(Routed { result, meta });
        let meta = result.meta.unwrap();
        assert_eq!(meta["upstream"], "kept");
        let routing = &meta[ROUTING_META_KEY];
        assert_eq!(routing["service"], "fx");
        assert_eq!(routing["instance"], "b");
        assert_eq!(routing["attempts"], 2);
        assert_eq!(routing["failovers"], 1);
        assert_eq!(routing["latency_ms"], 1.5);
        assert_eq!(routing["cache_hit"], false);
        assert_eq!(routing["degraded"], false);
        assert!(routing["strategy"].is_string(), "{routing}");
        assert_eq!(
            routing["tried"],
            json!([{
                "instance": "a",
                "kind": "connect",
                "phase": "before_send",
                "error": "connection refused"
            }])
        );
    }
}
