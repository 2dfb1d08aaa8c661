//! From configuration files to the registry's `ServiceSpec`s: instances, defaults and
//! per-server overrides, the seed format, MCP client files, and the errors. The
//! environment is always injected.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use tempfile::TempDir;
use toolmesh::{Config, ConfigError, ConfigLoader, config::Format};
use toolmesh_core::{InstanceId, ServerId};
use toolmesh_pool::{HealthCheckConfig, HealthCheckMethod, InstanceConfig, PoolConfig};
use toolmesh_registry::{InstanceSpec, ServiceSpec, Strategy, ToolPolicy};
use toolmesh_resilience::{BreakerConfig, BulkheadConfig};
use toolmesh_transport::{CommandLine, Endpoint, TransportKind};

fn write(dir: &TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn load_text(name: &str, text: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let dir = TempDir::new().unwrap();
    let path = write(&dir, name, text);
    ConfigLoader::new()
        .file(&path)
        .env_vars(vars.iter().copied())
        .load()
}

fn services(name: &str, text: &str, vars: &[(&str, &str)]) -> Vec<ServiceSpec> {
    load_text(name, text, vars)
        .unwrap_or_else(|e| panic!("{name} does not load: {e}"))
        .services()
        .unwrap()
}

/// Loads one file that must fail; returns the message, which must name the file.
fn fail(name: &str, text: &str) -> String {
    let dir = TempDir::new().unwrap();
    let path = write(&dir, name, text);
    let err = ConfigLoader::new()
        .file(&path)
        .env_vars([("UNUSED", "")])
        .load()
        .expect_err("loading should fail");
    let message = err.to_string();
    assert!(
        message.starts_with(&format!("{}: ", path.display())),
        "message does not name the file: {message}"
    );
    message
}

fn assert_contains(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(message.contains(part), "expected {part:?} in:\n{message}");
    }
}

/// The example of the brief, with per-server overrides on `search`.
const YAML: &str = r#"
defaults:                      # apply to every server unless overridden
  timeout: 30s
  strategy: round_robin
  max_failover_attempts: 3
  circuit_breaker: { failure_threshold: 5, recovery_timeout: 60s, half_open_max_calls: 3 }
  pool: { min_sessions: 1, max_sessions: 4 }
  health_check: { interval: 30s, method: ping }
  bulkhead: { max_concurrent: 64 }
servers:
  search:
    namespace: search
    capabilities: [search, web_search]
    tags: [production]
    metadata: { region: eu-west-1 }
    instances:
      - url: http://127.0.0.1:9001/mcp
      - url: http://127.0.0.1:9002/mcp
        weight: 2
      - url: http://127.0.0.1:9003/mcp
        priority: 2
    tools:
      web_search: { idempotent: true, cache_ttl: 5m }
    strategy: weighted         # per-server overrides
    timeout: 10s
    pool: { max_sessions: 8 }
  compute:
    command: [toolmesh-fixture, --stdio]
    replicas: 3
"#;

const TOML: &str = r#"
[defaults]
timeout = "30s"
strategy = "round_robin"
max_failover_attempts = 3
circuit_breaker = { failure_threshold = 5, recovery_timeout = "60s", half_open_max_calls = 3 }
pool = { min_sessions = 1, max_sessions = 4 }
health_check = { interval = "30s", method = "ping" }
bulkhead = { max_concurrent = 64 }

[servers.search]
namespace = "search"
capabilities = ["search", "web_search"]
tags = ["production"]
metadata = { region = "eu-west-1" }
strategy = "weighted"
timeout = "10s"
pool = { max_sessions = 8 }

[[servers.search.instances]]
url = "http://127.0.0.1:9001/mcp"

[[servers.search.instances]]
url = "http://127.0.0.1:9002/mcp"
weight = 2

[[servers.search.instances]]
url = "http://127.0.0.1:9003/mcp"
priority = 2

[servers.search.tools]
web_search = { idempotent = true, cache_ttl = "5m" }

[servers.compute]
command = ["toolmesh-fixture", "--stdio"]
replicas = 3
"#;

const JSON: &str = r#"{
  "defaults": {
    "timeout": "30s",
    "strategy": "round_robin",
    "max_failover_attempts": 3,
    "circuit_breaker": { "failure_threshold": 5, "recovery_timeout": "60s", "half_open_max_calls": 3 },
    "pool": { "min_sessions": 1, "max_sessions": 4 },
    "health_check": { "interval": "30s", "method": "ping" },
    "bulkhead": { "max_concurrent": 64 }
  },
  "servers": {
    "search": {
      "namespace": "search",
      "capabilities": ["search", "web_search"],
      "tags": ["production"],
      "metadata": { "region": "eu-west-1" },
      "instances": [
        { "url": "http://127.0.0.1:9001/mcp" },
        { "url": "http://127.0.0.1:9002/mcp", "weight": 2 },
        { "url": "http://127.0.0.1:9003/mcp", "priority": 2 }
      ],
      "tools": { "web_search": { "idempotent": true, "cache_ttl": "5m" } },
      "strategy": "weighted",
      "timeout": "10s",
      "pool": { "max_sessions": 8 }
    },
    "compute": { "command": ["toolmesh-fixture", "--stdio"], "replicas": 3 }
  }
}"#;

/// The services the example stands for, written out.
fn example_services() -> Vec<ServiceSpec> {
    let defaults = InstanceConfig {
        pool: PoolConfig {
            min_sessions: 1,
            max_sessions: 4,
            ..PoolConfig::default()
        },
        health_check: HealthCheckConfig {
            interval: Duration::from_secs(30),
            method: HealthCheckMethod::Ping,
            ..HealthCheckConfig::default()
        },
        circuit_breaker: BreakerConfig {
            failure_threshold: 5,
            recovery_timeout: Duration::from_secs(60),
            half_open_max_calls: 3,
            ..BreakerConfig::default()
        },
        bulkhead: BulkheadConfig {
            max_concurrent: 64,
            ..BulkheadConfig::default()
        },
    };
    let instance = |id: &str, endpoint: Endpoint, weight: u32, priority: u32| InstanceSpec {
        id: InstanceId::new(id),
        endpoint,
        weight,
        priority,
        capabilities: Vec::new(),
    };
    let search_endpoint =
        |port: u16| Endpoint::url(format!("http://127.0.0.1:{port}/mcp")).named("search");
    let search = ServiceSpec {
        id: ServerId::new("search"),
        namespace: "search".into(),
        prefix: true,
        capabilities: vec!["search".into(), "web_search".into()],
        tags: vec!["production".into()],
        metadata: BTreeMap::from([("region".into(), "eu-west-1".into())]),
        instances: vec![
            instance("search-1", search_endpoint(9001), 1, 1),
            instance("search-2", search_endpoint(9002), 2, 1),
            instance("search-3", search_endpoint(9003), 1, 2),
        ],
        tools: BTreeMap::from([(
            "web_search".into(),
            ToolPolicy {
                idempotent: Some(true),
                cache_ttl: Some(Duration::from_secs(300)),
                ..ToolPolicy::default()
            },
        )]),
        strategy: Strategy::Weighted,
        max_failover_attempts: 3,
        timeout: Duration::from_secs(10),
        instance_config: InstanceConfig {
            pool: PoolConfig {
                max_sessions: 8,
                ..defaults.pool.clone()
            },
            ..defaults.clone()
        },
        enabled: true,
        native: None,
    };
    let fixture = Endpoint {
        command: Some(CommandLine::Argv(vec![
            "toolmesh-fixture".into(),
            "--stdio".into(),
        ])),
        ..Endpoint::default().named("compute")
    };
    let compute = ServiceSpec {
        id: ServerId::new("compute"),
        namespace: "compute".into(),
        prefix: true,
        capabilities: Vec::new(),
        tags: Vec::new(),
        metadata: BTreeMap::new(),
        instances: (1..=3)
            .map(|n| instance(&format!("compute-{n}"), fixture.clone(), 1, 1))
            .collect(),
        tools: BTreeMap::new(),
        strategy: Strategy::RoundRobin,
        max_failover_attempts: 3,
        timeout: Duration::from_secs(30),
        instance_config: defaults,
        enabled: true,
        native: None,
    };
    vec![compute, search]
}

#[test]
fn yaml_toml_and_json_give_the_same_services() {
    let yaml = services("toolmesh.yaml", YAML, &[]);
    assert_eq!(yaml, example_services());
    assert_eq!(services("toolmesh.toml", TOML, &[]), yaml);
    assert_eq!(services("toolmesh.json", JSON, &[]), yaml);

    // Spelled out what the comparison covers.
    let search = &yaml[1];
    let ids: Vec<&str> = search.instances.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["search-1", "search-2", "search-3"]);
    let weights: Vec<(u32, u32)> = search
        .instances
        .iter()
        .map(|i| (i.weight, i.priority))
        .collect();
    assert_eq!(weights, [(1, 1), (2, 1), (1, 2)]);
    assert_eq!(search.instance_config.pool.max_sessions, 8, "server's own");
    assert_eq!(search.instance_config.pool.min_sessions, 1, "from defaults");
    let compute = &yaml[0];
    assert_eq!(
        compute.namespace, "compute",
        "namespace defaults to the name"
    );
    let ids: Vec<&str> = compute.instances.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["compute-1", "compute-2", "compute-3"]);
    assert!(
        compute
            .instances
            .iter()
            .all(|i| i.endpoint.validate() == Ok(TransportKind::Stdio))
    );
}

#[test]
fn overrides_merge_key_by_key_over_defaults() {
    let text = r#"
defaults:
  timeout: 20s
  strategy: latency
  max_failover_attempts: 5
  pool: { min_sessions: 2, max_sessions: 6, acquire_timeout: 3s }
  health_check: { interval: 15s, method: list_tools }
  circuit_breaker: { failure_threshold: 4, recovery_timeout: 45s }
  bulkhead: { max_concurrent: 32 }
servers:
  plain: { url: "http://127.0.0.1:9001/mcp" }
  tuned:
    url: http://127.0.0.1:9002/mcp
    timeout: 5s
    strategy: random
    max_failover_attempts: 1
    pool: { max_sessions: 8, reconnect: { max_backoff: 1m } }
    health_check: { interval: 5s }
    circuit_breaker: { half_open_max_calls: 1 }
    bulkhead: { max_wait: 100ms }
"#;
    let config = load_text("toolmesh.yaml", text, &[]).unwrap();
    let [plain, tuned] = <[ServiceSpec; 2]>::try_from(config.services().unwrap()).unwrap();

    let defaults = config.defaults.instance_config();
    assert_eq!(plain.instance_config, defaults);
    assert_eq!(plain.strategy, Strategy::Latency);
    assert_eq!(plain.max_failover_attempts, 5);
    assert_eq!(plain.timeout, Duration::from_secs(20));
    assert_eq!(
        plain.instances[0].endpoint.timeout, None,
        "the registry applies the service's timeout to endpoints without one"
    );

    let mut expected = defaults.clone();
    expected.pool.max_sessions = 8;
    expected.pool.reconnect.max_backoff = Duration::from_secs(60);
    expected.health_check.interval = Duration::from_secs(5);
    expected.circuit_breaker.half_open_max_calls = 1;
    expected.bulkhead.max_wait = Duration::from_millis(100);
    assert_eq!(tuned.instance_config, expected);
    // Spelled out: what the server does not set stays as in `defaults`.
    let ic = &tuned.instance_config;
    assert_eq!(ic.pool.min_sessions, 2);
    assert_eq!(ic.pool.acquire_timeout, Duration::from_secs(3));
    assert_eq!(ic.health_check.method, HealthCheckMethod::ListTools);
    assert_eq!(ic.circuit_breaker.failure_threshold, 4);
    assert_eq!(ic.circuit_breaker.recovery_timeout, Duration::from_secs(45));
    assert_eq!(ic.bulkhead.max_concurrent, 32);
    assert_eq!(tuned.strategy, Strategy::Random);
    assert_eq!(tuned.max_failover_attempts, 1);
    assert_eq!(tuned.timeout, Duration::from_secs(5));
    assert_eq!(
        tuned.instances[0].endpoint.timeout,
        Some(Duration::from_secs(5))
    );

    // An override that conflicts with a default is named at the server.
    let message = fail(
        "toolmesh.yaml",
        "defaults:\n  pool: { min_sessions: 3 }\nservers:\n  a:\n    url: http://h/mcp\n    pool: { max_sessions: 2 }\n",
    );
    assert_contains(
        &message,
        &["toolmesh.yaml: servers.a.pool: min_sessions (3) is greater than max_sessions (2)"],
    );
}

#[test]
fn environment_overrides_reach_the_new_keys() {
    let dir = TempDir::new().unwrap();
    let path = write(&dir, "toolmesh.yaml", YAML);
    let config = ConfigLoader::new()
        .file(&path)
        .env_vars([
            ("TOOLMESH_DEFAULTS__STRATEGY", "latency"),
            ("TOOLMESH_DEFAULTS__POOL__MIN_SESSIONS", "2"),
            ("TOOLMESH_SERVERS__SEARCH__MAX_FAILOVER_ATTEMPTS", "7"),
            (
                "TOOLMESH_SERVERS__SEARCH__TOOLS__WEB_SEARCH__HEDGE_AFTER",
                "250ms",
            ),
            ("TOOLMESH_SERVERS__COMPUTE__REPLICAS", "2"),
            ("TOOLMESH_SERVERS__COMPUTE__ENABLED", "false"),
        ])
        .load()
        .unwrap();
    assert_eq!(config.defaults.strategy, Strategy::Latency);
    let [compute, search] = <[ServiceSpec; 2]>::try_from(config.services().unwrap()).unwrap();
    assert_eq!(compute.strategy, Strategy::Latency);
    assert_eq!(search.strategy, Strategy::Weighted, "the server's own wins");
    assert_eq!(search.instance_config.pool.min_sessions, 2);
    assert_eq!(search.instance_config.pool.max_sessions, 8);
    assert_eq!(search.max_failover_attempts, 7);
    assert_eq!(
        search.tools["web_search"].hedge_after,
        Some(Duration::from_millis(250))
    );
    assert_eq!(search.tools["web_search"].idempotent, Some(true));
    assert_eq!(compute.instances.len(), 2);
    assert!(!compute.enabled);

    let err = ConfigLoader::new()
        .file(&path)
        .env_vars([("TOOLMESH_DEFAULTS__STRATEGY", "fastest")])
        .load()
        .unwrap_err();
    assert_contains(
        &err.to_string(),
        &[
            "environment: TOOLMESH_DEFAULTS__STRATEGY: unknown value `fastest`; expected one of round_robin, weighted, least_outstanding, random, latency, capability_match",
        ],
    );
}

/// The configuration of seed 001 (`multi_server_config.yaml`).
const SEED: &str = r#"
servers:
  weather_primary:
    url: "http://127.0.0.1:8001/mcp"
    transport: "streamable-http"
    priority: 1
    namespace: "weather"
    enabled: true
    health_check_interval: 30
    max_retries: 3
    timeout: 10
    auth:
      type: "bearer"
      token: "${WEATHER_API_TOKEN}"
  weather_backup:
    url: "http://127.0.0.1:8002/mcp"
    transport: "streamable-http"
    priority: 2
    namespace: "weather"
    enabled: true
    health_check_interval: 60
    max_retries: 2
    timeout: 15
  database:
    url: "http://127.0.0.1:8003/mcp"
    transport: "streamable-http"
    priority: 1
    namespace: "db"
    enabled: false

global_settings:
  default_timeout: 25
  max_concurrent_connections: 10
  health_check_enabled: true
  reconnect_delay: 5
  log_level: "INFO"
  metrics_enabled: true
  circuit_breaker:
    failure_threshold: 4
    recovery_timeout: 90
    half_open_max_calls: 2
"#;

#[test]
fn seed_001_configuration_maps_onto_services() {
    let config = load_text(
        "multi_server_config.yaml",
        SEED,
        &[("WEATHER_API_TOKEN", "w-token")],
    )
    .unwrap();
    let d = &config.defaults;
    assert_eq!(d.timeout, Duration::from_secs(25));
    assert_eq!(d.bulkhead.max_concurrent, 10);
    assert!(d.health_check.enabled);
    assert_eq!(d.pool.reconnect.initial_backoff, Duration::from_secs(5));
    assert_eq!(d.circuit_breaker.failure_threshold, 4);
    assert_eq!(d.circuit_breaker.recovery_timeout, Duration::from_secs(90));
    assert_eq!(d.circuit_breaker.half_open_max_calls, 2);
    assert_eq!(
        d.circuit_breaker.success_threshold,
        BreakerConfig::default().success_threshold
    );

    // In name order.
    let [database, backup, primary] =
        <[ServiceSpec; 3]>::try_from(config.services().unwrap()).unwrap();
    // Same namespace, separate services: the catalog reports the collision.
    assert_eq!(
        (primary.id.as_str(), primary.namespace.as_str()),
        ("weather_primary", "weather")
    );
    assert_eq!(
        (backup.id.as_str(), backup.namespace.as_str()),
        ("weather_backup", "weather")
    );
    assert_eq!(primary.instances.len(), 1);
    let instance = &primary.instances[0];
    assert_eq!(instance.id.as_str(), "weather_primary-1");
    assert_eq!((instance.weight, instance.priority), (1, 1));
    assert_eq!(backup.instances[0].priority, 2);
    assert_eq!(
        instance.endpoint,
        Endpoint {
            transport: Some(TransportKind::StreamableHttp),
            timeout: Some(Duration::from_secs(10)),
            ..Endpoint::url("http://127.0.0.1:8001/mcp")
                .named("weather_primary")
                .bearer("w-token")
        }
    );
    assert_eq!(primary.timeout, Duration::from_secs(10));
    assert_eq!(primary.max_failover_attempts, 3);
    assert_eq!(backup.max_failover_attempts, 2);
    assert_eq!(
        primary.instance_config.health_check.interval,
        Duration::from_secs(30)
    );
    assert_eq!(
        backup.instance_config.health_check.interval,
        Duration::from_secs(60)
    );
    assert_eq!(primary.instance_config.bulkhead.max_concurrent, 10);
    assert_eq!(primary.instance_config.circuit_breaker.failure_threshold, 4);
    assert_eq!(
        primary.instance_config.pool.reconnect.initial_backoff,
        Duration::from_secs(5)
    );
    assert!(primary.enabled && backup.enabled);
    assert!(!database.enabled);
    assert_eq!(database.timeout, Duration::from_secs(25), "default_timeout");

    // `defaults` wins over `global_settings` where both set the same thing.
    let both = format!("{SEED}\ndefaults:\n  timeout: 40s\n  bulkhead: {{ max_wait: 1s }}\n");
    let config = load_text("both.yaml", &both, &[("WEATHER_API_TOKEN", "t")]).unwrap();
    assert_eq!(config.defaults.timeout, Duration::from_secs(40));
    assert_eq!(config.defaults.bulkhead.max_concurrent, 10);
    assert_eq!(config.defaults.bulkhead.max_wait, Duration::from_secs(1));

    let message = fail(
        "multi_server_config.yaml",
        "global_settings:\n  max_concurrent_connections: 0\n",
    );
    assert_contains(
        &message,
        &[
            "multi_server_config.yaml: global_settings.max_concurrent_connections: max_concurrent must be at least 1",
        ],
    );
    let message = fail(
        "multi_server_config.yaml",
        "global_settings:\n  log_levl: INFO\n",
    );
    assert_contains(
        &message,
        &[
            "multi_server_config.yaml: global_settings: unknown key `log_levl`",
            "(did you mean `log_level`?)",
        ],
    );
}

#[test]
fn mcp_client_entries_become_single_instance_services() {
    let text = r#"{
      "mcpServers": {
        "files": { "command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"] },
        "github.com/acme tools": { "url": "https://example.com/mcp" }
      }
    }"#;
    let config = Config::from_mcp_servers_json(text, "claude_desktop_config.json").unwrap();
    let services = config.services().unwrap();
    let files = &services[0];
    assert_eq!(files.id.as_str(), "files");
    assert_eq!(files.namespace, "files");
    assert_eq!(files.instances.len(), 1);
    assert_eq!(files.instances[0].id.as_str(), "files-1");
    assert_eq!(
        files.instances[0].endpoint,
        Endpoint::stdio(
            "npx",
            ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"]
        )
        .named("files")
    );
    assert_eq!(files.instance_config, InstanceConfig::default());
    // A name that cannot be a namespace gets one with `_` for the other characters.
    let odd = &services[1];
    assert_eq!(odd.id.as_str(), "github.com/acme tools");
    assert_eq!(odd.namespace, "github_com_acme_tools");
}

#[test]
fn unknown_keys_inside_instances_tools_and_sections_name_their_path() {
    let message = fail(
        "toolmesh.yaml",
        "servers:\n  search:\n    instances:\n      - url: http://h/mcp\n      - urll: http://h/mcp\n",
    );
    assert_contains(
        &message,
        &[
            "toolmesh.yaml: servers.search.instances[1]: unknown key `urll`; expected one of name, transport, url, command",
            "id, weight, priority, capabilities (did you mean `url`?)",
        ],
    );

    let message = fail(
        "toolmesh.toml",
        "[servers.search]\nurl = \"http://h/mcp\"\n[servers.search.tools.web_search]\nidempotent = true\ncache_tll = \"5m\"\n",
    );
    assert_contains(
        &message,
        &[
            "toolmesh.toml: servers.search.tools.web_search: unknown key `cache_tll`; expected one of idempotent, cache_ttl, hedge_after, timeout (did you mean `cache_ttl`?)",
        ],
    );

    let message = fail(
        "toolmesh.json",
        r#"{ "servers": { "search": { "url": "http://h/mcp", "pool": { "max_session": 3 } } } }"#,
    );
    assert_contains(
        &message,
        &[
            "toolmesh.json: servers.search.pool: unknown key `max_session`",
            "(did you mean `max_sessions`?)",
        ],
    );

    let message = fail(
        "toolmesh.yaml",
        "defaults:\n  circuit_breaker: { failure_treshold: 3 }\n",
    );
    assert_contains(
        &message,
        &[
            "toolmesh.yaml: defaults.circuit_breaker: unknown key `failure_treshold`",
            "(did you mean `failure_threshold`?)",
        ],
    );

    let message = fail(
        "toolmesh.yaml",
        "servers:\n  a:\n    url: http://h/mcp\n    replica: 2\n",
    );
    assert_contains(
        &message,
        &[
            "toolmesh.yaml: servers.a: unknown key `replica`",
            "(did you mean `replicas`?)",
        ],
    );
}

#[test]
fn instances_and_single_instance_keys_do_not_mix() {
    let message = fail(
        "toolmesh.yaml",
        "servers:\n  search:\n    url: http://h/mcp\n    instances: [{ url: http://h/mcp }]\n",
    );
    assert_contains(
        &message,
        &[
            "toolmesh.yaml: servers.search.url: `url` belongs to a single-instance server, but this server lists `instances`",
        ],
    );

    let message = fail(
        "toolmesh.yaml",
        "servers:\n  search:\n    weight: 2\n    instances: [{ url: http://h/mcp }]\n",
    );
    assert_contains(
        &message,
        &["servers.search.weight: `weight` belongs to a single-instance server"],
    );

    let message = fail(
        "toolmesh.yaml",
        "servers:\n  compute:\n    replicas: 3\n    instances: [{ command: [toolmesh-fixture] }]\n",
    );
    assert_contains(
        &message,
        &[
            "toolmesh.yaml: servers.compute.replicas: `replicas` copies a single-instance server",
            "list every instance instead",
        ],
    );

    // `timeout` is the service's deadline: allowed with `instances`.
    let config = load_text(
        "toolmesh.yaml",
        "servers:\n  s:\n    timeout: 4s\n    instances: [{ url: http://h/mcp }, { url: http://h/mcp, timeout: 2s, id: fast }]\n",
        &[],
    )
    .unwrap();
    let s = &config.services().unwrap()[0];
    assert_eq!(s.timeout, Duration::from_secs(4));
    assert_eq!(s.instances[0].endpoint.timeout, None);
    assert_eq!(
        s.instances[1].endpoint.timeout,
        Some(Duration::from_secs(2))
    );
    assert_eq!(s.instances[1].id.as_str(), "fast");

    let message = fail("toolmesh.yaml", "servers:\n  a:\n    instances: []\n");
    assert_contains(
        &message,
        &["toolmesh.yaml: servers.a.instances: the list is empty"],
    );

    let message = fail(
        "toolmesh.yaml",
        "servers:\n  a:\n    command: x\n    replicas: 0\n",
    );
    assert_contains(
        &message,
        &["toolmesh.yaml: servers.a.replicas: expected between 1 and 1024 copies, found 0"],
    );

    let message = fail("toolmesh.yaml", "servers:\n  a:\n    namespace: a\n");
    assert_contains(
        &message,
        &[
            "toolmesh.yaml: servers.a: missing `url` or `command`",
            "or list the endpoints under `instances`",
        ],
    );
}

#[test]
fn namespaces_must_be_usable_tool_prefixes() {
    let message = fail(
        "toolmesh.yaml",
        "servers:\n  search:\n    url: http://h/mcp\n    namespace: web search\n",
    );
    assert_contains(
        &message,
        &[
            "toolmesh.yaml: servers.search.namespace: `web search` is not a valid namespace: use 1-64 characters of A-Z, a-z, 0-9, `_` and `-`",
        ],
    );
    let long = "n".repeat(65);
    let message = fail(
        "toolmesh.yaml",
        &format!("servers:\n  search:\n    url: http://h/mcp\n    namespace: {long}\n"),
    );
    assert_contains(
        &message,
        &["servers.search.namespace:", "is not a valid namespace"],
    );

    let message = fail(
        "toolmesh.yaml",
        "servers:\n  web search:\n    url: http://h/mcp\n",
    );
    assert_contains(
        &message,
        &[
            "toolmesh.yaml: servers.web search: the server name `web search` cannot be its namespace",
            "set `namespace: web_search`",
        ],
    );
    // An explicit namespace makes such a name usable.
    let services = services(
        "toolmesh.yaml",
        "servers:\n  web search:\n    url: http://h/mcp\n    namespace: web_search\n",
        &[],
    );
    assert_eq!(services[0].namespace, "web_search");
}

#[test]
fn instance_problems_name_the_instance() {
    let message = fail(
        "toolmesh.yaml",
        "servers:\n  search:\n    instances: [{ url: http://h/mcp }, { url: http://h/mcp }, { url: ftp://h/mcp }]\n",
    );
    assert_contains(
        &message,
        &[
            "toolmesh.yaml: servers.search.instances[2].url: `ftp://h/mcp` does not start with http:// or https://",
        ],
    );

    let message = fail(
        "toolmesh.yaml",
        "servers:\n  search:\n    instances: [{ url: http://h/mcp, weight: heavy }]\n",
    );
    assert_contains(
        &message,
        &[
            "toolmesh.yaml: servers.search.instances[0].weight: expected a whole number, found \"heavy\"",
        ],
    );

    let message = fail(
        "toolmesh.yaml",
        "servers:\n  a:\n    instances: [{ url: http://h/mcp, id: x }]\n  b:\n    instances: [{ url: http://h/mcp, id: x }]\n",
    );
    assert_contains(
        &message,
        &[
            "toolmesh.yaml: servers.b.instances[0].id: instance id `x` is also the id of an instance of server `a`; instance ids must be unique",
        ],
    );
    // A default id taken by an explicit one elsewhere is named at the server.
    let message = fail(
        "toolmesh.yaml",
        "servers:\n  a:\n    instances: [{ url: http://h/mcp, id: b-1 }]\n  b:\n    url: http://h/mcp\n",
    );
    assert_contains(
        &message,
        &[
            "toolmesh.yaml: servers.b: instance id `b-1` is also the id of an instance of server `a`",
        ],
    );
    let message = fail(
        "toolmesh.yaml",
        "servers:\n  a:\n    instances: [{ url: http://h/mcp, id: a-2 }, { url: http://h/mcp }]\n",
    );
    assert_contains(
        &message,
        &[
            "toolmesh.yaml: servers.a.instances[1]: instance id `a-2` is also the id of another instance of this server",
        ],
    );

    let message = fail("toolmesh.yaml", "servers:\n  a:\n    instances: [5]\n");
    assert_contains(
        &message,
        &["toolmesh.yaml: servers.a.instances[0]: expected instance settings like"],
    );

    let message = fail(
        "toolmesh.yaml",
        "servers:\n  a:\n    url: http://h/mcp\n    strategy: fastest\n",
    );
    assert_contains(
        &message,
        &[
            "toolmesh.yaml: servers.a.strategy: unknown value `fastest`; expected one of round_robin, weighted",
        ],
    );
}

#[test]
fn services_of_a_config_changed_in_code_are_checked_too() {
    let mut config = ConfigLoader::new()
        .text("toolmesh.yaml", Format::Yaml, YAML)
        .without_env_overrides()
        .load()
        .unwrap();
    config.servers.get_mut("search").unwrap().namespace = Some("bad ns".into());
    let err = config.services().unwrap_err();
    assert!(
        matches!(&err, ConfigError::Invalid { origin, key, .. } if origin == "configuration" && key == "servers.search.namespace"),
        "{err:?}"
    );
}

#[test]
fn prefix_false_exposes_upstream_names_and_is_checked() {
    let specs = services(
        "toolmesh.yaml",
        "servers:\n  only:\n    url: http://127.0.0.1:9/mcp\n    prefix: false\n  other:\n    url: http://127.0.0.1:10/mcp\n",
        &[],
    );
    let prefix: Vec<(String, bool)> = specs.iter().map(|s| (s.id.to_string(), s.prefix)).collect();
    assert_eq!(
        prefix,
        [("only".to_owned(), false), ("other".to_owned(), true)]
    );
    let message = fail(
        "toolmesh.yaml",
        "servers:\n  only:\n    url: http://127.0.0.1:9/mcp\n    prefix: sometimes\n",
    );
    assert_contains(&message, &["servers.only.prefix", "true or false"]);
}

#[test]
fn instances_declare_their_own_capabilities() {
    let services = services(
        "toolmesh.yaml",
        "servers:\n  model:\n    strategy: capability_match\n    capabilities: [inference]\n    instances:\n      - url: http://h1/mcp\n      - url: http://h2/mcp\n        capabilities: [gpu, eu]\n",
        &[],
    );
    let caps: Vec<&[String]> = services[0]
        .instances
        .iter()
        .map(|i| i.capabilities.as_slice())
        .collect();
    assert_eq!(caps, [&[][..], &["gpu".to_owned(), "eu".to_owned()][..]]);
    assert_eq!(services[0].capabilities, ["inference"]);
}
