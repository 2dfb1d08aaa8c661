//! Any configuration the loader accepts runs: generated files with huge, negative, odd
//! and ordinary values in every duration and number key either fail to load with an
//! error, or start a mesh that answers a call, and nothing panics on the way (a panic
//! in a background task counts too).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::BTreeMap,
    sync::{
        Once,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use proptest::prelude::*;
use toolmesh::{CallContext, ConfigLoader, Format, Mesh};

/// Panics anywhere in the process since the hook was installed.
static PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            previous(info);
        }));
    });
}

const DURATIONS: &[&str] = &[
    "defaults.timeout",
    "defaults.pool.acquire_timeout",
    "defaults.pool.max_idle_time",
    "defaults.pool.drain_timeout",
    "defaults.pool.reconnect.initial_backoff",
    "defaults.pool.reconnect.max_backoff",
    "defaults.health_check.interval",
    "defaults.health_check.timeout",
    "defaults.circuit_breaker.recovery_timeout",
    "defaults.circuit_breaker.window",
    "defaults.bulkhead.max_wait",
    "native_tools.http_fetch.timeout",
    "native_tools.arxiv.timeout",
    "servers.math.timeout",
    "servers.math.tools.calculator.timeout",
    "servers.math.tools.calculator.cache_ttl",
    "servers.math.tools.calculator.hedge_after",
    "servers.math.pool.acquire_timeout",
    "servers.math.health_check.interval",
    "servers.math.bulkhead.max_wait",
    "servers.remote.timeout",
    "servers.remote.connect_timeout",
    "servers.remote.health_check_interval",
    "servers.remote.pool.max_idle_time",
    "servers.remote.pool.drain_timeout",
    "servers.remote.pool.reconnect.initial_backoff",
    "servers.remote.pool.reconnect.max_backoff",
    "servers.remote.circuit_breaker.recovery_timeout",
];

const NUMBERS: &[&str] = &[
    "defaults.max_failover_attempts",
    "defaults.pool.min_sessions",
    "defaults.pool.max_sessions",
    "defaults.pool.max_requests_per_session",
    "defaults.health_check.failure_threshold",
    "defaults.health_check.success_threshold",
    "defaults.circuit_breaker.failure_threshold",
    "defaults.circuit_breaker.half_open_max_calls",
    "defaults.circuit_breaker.success_threshold",
    "defaults.circuit_breaker.failure_rate",
    "defaults.circuit_breaker.min_calls",
    "defaults.bulkhead.max_concurrent",
    "native_tools.http_fetch.max_bytes",
    "servers.math.max_failover_attempts",
    "servers.math.bulkhead.max_concurrent",
    "servers.remote.weight",
    "servers.remote.priority",
    "servers.remote.replicas",
    "servers.remote.pool.max_sessions",
    "servers.remote.pool.max_requests_per_session",
];

/// A YAML scalar: extremes, odd forms and ordinary values.
fn value() -> impl Strategy<Value = String> {
    let odd = prop::sample::select(vec![
        "0",
        "-1",
        "1e20",
        "-1e20",
        "1e308",
        "1.7976931348623157e308",
        ".inf",
        "-.inf",
        ".nan",
        "-0.0",
        "4294967296",
        "18446744073709551615",
        "18446744073709551616",
        "9223372036854775807",
        "\"0s\"",
        "\"1ns\"",
        "\"365d\"",
        "\"366d\"",
        "\"1000000000y\"",
        "\"99999999999999999999y\"",
        "\"584542046091y\"",
        "\"soon\"",
        "\"\"",
        "null",
        "true",
        "[]",
    ])
    .prop_map(str::to_owned);
    prop_oneof![
        3 => odd,
        1 => any::<f64>().prop_map(|f| format!("{f:e}")),
        1 => any::<u64>().prop_map(|n| n.to_string()),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        2 => (0u64..5000).prop_map(|ms| format!("\"{ms}ms\"")),
        2 => (0u32..100).prop_map(|n| n.to_string()),
    ]
}

/// Some keys of both lists, each with a value.
fn settings() -> impl Strategy<Value = Vec<(&'static str, String)>> {
    let keys: Vec<&'static str> = DURATIONS.iter().chain(NUMBERS).copied().collect();
    prop::collection::vec((prop::sample::select(keys), value()), 0..12)
}

#[derive(Default)]
struct Tree(BTreeMap<String, Node>);

enum Node {
    Leaf(String),
    Map(Tree),
}

impl Tree {
    fn insert(&mut self, path: &[&str], value: &str) {
        let (first, rest) = path.split_first().expect("non-empty key path");
        if rest.is_empty() {
            self.0
                .insert((*first).to_owned(), Node::Leaf(value.to_owned()));
            return;
        }
        let node = self
            .0
            .entry((*first).to_owned())
            .or_insert_with(|| Node::Map(Tree::default()));
        if let Node::Leaf(_) = node {
            *node = Node::Map(Tree::default());
        }
        if let Node::Map(tree) = node {
            tree.insert(rest, value);
        }
    }

    fn render(&self, indent: usize, out: &mut String) {
        for (key, node) in &self.0 {
            out.push_str(&" ".repeat(indent));
            match node {
                Node::Leaf(value) => out.push_str(&format!("{key}: {value}\n")),
                Node::Map(tree) => {
                    out.push_str(&format!("{key}:\n"));
                    tree.render(indent + 2, out);
                }
            }
        }
    }
}

fn yaml(settings: &[(&str, String)]) -> String {
    let mut tree = Tree::default();
    tree.insert(&["servers", "math", "native"], "[calculator]");
    // Refused at once: its pool keeps reconnecting with the generated backoff.
    tree.insert(&["servers", "remote", "url"], "http://127.0.0.1:1/mcp");
    tree.insert(&["servers", "remote", "native"], "[time_now]");
    for (key, value) in settings {
        let path: Vec<&str> = key.split('.').collect();
        tree.insert(&path, value);
    }
    let mut out = String::new();
    tree.render(0, &mut out);
    out
}

fn run(text: &str) {
    let Ok(config) = ConfigLoader::new()
        .without_env_overrides()
        .text("generated.yaml", Format::Yaml, text)
        .load()
    else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let bound = Duration::from_secs(10);
        let Ok(Ok(mesh)) = tokio::time::timeout(bound, Mesh::start(&config)).await else {
            return;
        };
        let ctx = CallContext::with_timeout(Duration::from_secs(5));
        let arguments = serde_json::json!({"expression": "1 + 2"});
        let call = mesh
            .registry()
            .call("math__calculator", arguments.as_object().cloned(), &ctx);
        let _ = tokio::time::timeout(bound, call).await;
        let _ = tokio::time::timeout(bound, mesh.shutdown()).await;
    });
    runtime.shutdown_timeout(Duration::from_secs(5));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_accepted_config_runs_without_a_panic(settings in settings()) {
        count_panics();
        let text = yaml(&settings);
        let before = PANICS.load(Ordering::SeqCst);
        run(&text);
        prop_assert_eq!(PANICS.load(Ordering::SeqCst), before, "a panic with:\n{}", text);
    }
}

/// The values the issue found, each alone.
#[test]
fn the_reported_values_are_errors_naming_the_key() {
    for (key, value) in [
        ("servers.math.timeout", "1e20"),
        ("defaults.pool.max_idle_time", "\"1000000000y\""),
        ("native_tools.http_fetch.timeout", "1e20"),
    ] {
        let text = yaml(&[(key, value.to_owned())]);
        let err = ConfigLoader::new()
            .without_env_overrides()
            .text("generated.yaml", Format::Yaml, text)
            .load()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(key) && err.contains("at most 365 days"),
            "{err}"
        );
    }
}
