//! Loading configuration files: formats, merging, environment, `${VAR}`, MCP client
//! files, and the error messages. The environment is always injected.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Duration,
};

use tempfile::TempDir;
use toolmesh::{Config, ConfigError, ConfigLoader};
use toolmesh_transport::{Auth, CommandLine, Endpoint, TransportKind};

fn write(dir: &TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn load(files: &[&Path], vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    files
        .iter()
        .fold(ConfigLoader::new(), |loader, file| loader.file(file))
        .env_vars(vars.iter().copied())
        .load()
}

/// Loads one file that must fail; returns the error and its message.
fn fail(name: &str, text: &str, vars: &[(&str, &str)]) -> (ConfigError, String) {
    let dir = TempDir::new().unwrap();
    let path = write(&dir, name, text);
    let err = load(&[&path], vars).expect_err("loading should fail");
    let message = err.to_string();
    assert!(
        message.contains(&path.display().to_string()),
        "message does not name the file: {message}"
    );
    (err, message)
}

/// Each server's single-instance endpoint, by name.
fn endpoints(config: &Config) -> BTreeMap<String, Endpoint> {
    config
        .servers
        .iter()
        .map(|(name, server)| (name.clone(), server.endpoint()))
        .collect()
}

fn assert_contains(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(message.contains(part), "expected {part:?} in:\n{message}");
    }
}

const YAML: &str = r#"
servers:
  fixture:                 # server name
    command: [toolmesh-fixture, --stdio]
  search:
    url: http://127.0.0.1:9001/mcp
    headers: { X-Team: core }
    auth: { type: bearer, token: "${SEARCH_TOKEN}" }
    timeout: 10s
"#;

const TOML: &str = r#"
[servers.fixture]
command = ["toolmesh-fixture", "--stdio"]

[servers.search]
url = "http://127.0.0.1:9001/mcp"
headers = { X-Team = "core" }
auth = { type = "bearer", token = "${SEARCH_TOKEN}" }
timeout = "10s"
"#;

const JSON: &str = r#"{
  "servers": {
    "fixture": { "command": ["toolmesh-fixture", "--stdio"] },
    "search": {
      "url": "http://127.0.0.1:9001/mcp",
      "headers": { "X-Team": "core" },
      "auth": { "type": "bearer", "token": "${SEARCH_TOKEN}" },
      "timeout": "10s"
    }
  }
}"#;

const TOKEN: (&str, &str) = ("SEARCH_TOKEN", "s3cret");

#[test]
fn yaml_toml_and_json_give_the_same_config() {
    let dir = TempDir::new().unwrap();
    let yaml = load(&[&write(&dir, "config.yaml", YAML)], &[TOKEN]).unwrap();
    let yml = load(&[&write(&dir, "config.yml", YAML)], &[TOKEN]).unwrap();
    let toml = load(&[&write(&dir, "config.toml", TOML)], &[TOKEN]).unwrap();
    let json = load(&[&write(&dir, "config.json", JSON)], &[TOKEN]).unwrap();
    assert_eq!(yaml, toml);
    assert_eq!(yaml, json);
    assert_eq!(yaml, yml);

    let fixture = &yaml.servers["fixture"];
    assert_eq!(fixture.name.as_deref(), Some("fixture"));
    assert_eq!(
        fixture.command,
        Some(CommandLine::Argv(vec![
            "toolmesh-fixture".into(),
            "--stdio".into()
        ]))
    );
    assert_eq!(fixture.endpoint().validate(), Ok(TransportKind::Stdio));

    let search = &yaml.servers["search"];
    let expected = Endpoint {
        timeout: Some(Duration::from_secs(10)),
        ..Endpoint::url("http://127.0.0.1:9001/mcp")
            .named("search")
            .header("X-Team", "core")
            .bearer("s3cret")
    };
    assert_eq!(search.endpoint(), expected);
}

#[test]
fn config_load_reads_one_file() {
    let dir = TempDir::new().unwrap();
    let path = write(
        &dir,
        "config.yaml",
        "servers:\n  a:\n    url: https://example.com/mcp\n",
    );
    let config = Config::load(&path).unwrap();
    assert_eq!(
        config.servers["a"].endpoint(),
        Endpoint::url("https://example.com/mcp").named("a")
    );
}

#[test]
fn environment_overrides_nested_keys() {
    let dir = TempDir::new().unwrap();
    let path = write(&dir, "config.yaml", YAML);
    let config = load(
        &[&path],
        &[
            TOKEN,
            ("TOOLMESH_SERVERS__SEARCH__TIMEOUT", "5s"),
            ("TOOLMESH_SERVERS__SEARCH__HEADERS__X_TRACE", "on"),
            ("TOOLMESH_SERVERS__EXTRA__URL", "http://127.0.0.1:9002/mcp"),
            // Not configuration: the first level is no top-level key.
            ("TOOLMESH_FIXTURE_BIN", "/usr/bin/false"),
            // Another prefix.
            ("OTHER_SERVERS__SEARCH__TIMEOUT", "1s"),
        ],
    )
    .unwrap();
    let search = &config.servers["search"];
    assert_eq!(search.timeout, Some(Duration::from_secs(5)));
    assert_eq!(search.url.as_deref(), Some("http://127.0.0.1:9001/mcp"));
    assert_eq!(
        search.headers.get("x_trace").map(String::as_str),
        Some("on")
    );
    assert_eq!(
        search.headers.get("X-Team").map(String::as_str),
        Some("core")
    );
    assert_eq!(
        config.servers["extra"].url.as_deref(),
        Some("http://127.0.0.1:9002/mcp")
    );

    let custom = ConfigLoader::new()
        .file(&path)
        .env_prefix("APP_")
        .env_vars([
            TOKEN,
            ("APP_SERVERS__SEARCH__TIMEOUT", "7s"),
            ("TOOLMESH_SERVERS__SEARCH__TIMEOUT", "5s"),
        ])
        .load()
        .unwrap();
    assert_eq!(
        custom.servers["search"].timeout,
        Some(Duration::from_secs(7))
    );

    let off = ConfigLoader::new()
        .file(&path)
        .without_env_overrides()
        .env_vars([TOKEN, ("TOOLMESH_SERVERS__SEARCH__TIMEOUT", "5s")])
        .load()
        .unwrap();
    assert_eq!(off.servers["search"].timeout, Some(Duration::from_secs(10)));
}

#[test]
fn bad_environment_override_names_the_variable() {
    let dir = TempDir::new().unwrap();
    let path = write(&dir, "config.yaml", YAML);
    let err = load(
        &[&path],
        &[TOKEN, ("TOOLMESH_SERVERS__SEARCH__TIMEOUT", "soon")],
    )
    .unwrap_err();
    let message = err.to_string();
    assert_contains(
        &message,
        &[
            "environment: TOOLMESH_SERVERS__SEARCH__TIMEOUT: invalid duration \"soon\"",
            "\"30s\"",
        ],
    );

    // figment reads `123` as a number; the message says how to pass a string.
    let err = load(
        &[&path],
        &[TOKEN, ("TOOLMESH_SERVERS__SEARCH__HEADERS__X_ID", "123")],
    )
    .unwrap_err();
    assert_contains(
        &err.to_string(),
        &[
            "environment: TOOLMESH_SERVERS__SEARCH__HEADERS__X_ID: expected a string, found 123",
            "double quotes",
        ],
    );
    let config = load(
        &[&path],
        &[
            TOKEN,
            ("TOOLMESH_SERVERS__SEARCH__HEADERS__X_ID", "\"123\""),
        ],
    )
    .unwrap();
    assert_eq!(
        config.servers["search"]
            .headers
            .get("x_id")
            .map(String::as_str),
        Some("123")
    );
}

#[test]
fn expands_variables_defaults_and_dollars() {
    let text = r#"
servers:
  local:
    command: "${BIN_DIR:-/usr/local/bin}/server"
    args: ["--price=$$5", "--user=${USER_NAME:-anon}", "--home=$HOME", "--lit=$${NOT_A_VAR}"]
    env:
      PORT: "${PORT}"
      MODE: "${EMPTY:-fallback}"
      BLANK: "${EMPTY}"
      VSCODE_STYLE: "${env:PORT}"
  remote:
    url: "http://${HOST:-127.0.0.1}:${PORT}/mcp"
"#;
    let dir = TempDir::new().unwrap();
    let path = write(&dir, "config.yaml", text);
    let config = load(
        &[&path],
        &[("PORT", "9001"), ("EMPTY", ""), ("USER_NAME", "ada")],
    )
    .unwrap();
    let local = &config.servers["local"];
    assert_eq!(
        local.command,
        Some(CommandLine::Program("/usr/local/bin/server".into()))
    );
    assert_eq!(
        local.args,
        [
            "--price=$5",
            "--user=ada",
            "--home=$HOME",
            "--lit=${NOT_A_VAR}"
        ]
    );
    let env: BTreeMap<&str, &str> = local
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        env,
        BTreeMap::from([
            ("BLANK", ""),
            ("MODE", "fallback"),
            ("PORT", "9001"),
            ("VSCODE_STYLE", "9001")
        ])
    );
    assert_eq!(
        config.servers["remote"].url.as_deref(),
        Some("http://127.0.0.1:9001/mcp")
    );
}

#[test]
fn undefined_variable_names_file_key_and_variable() {
    let (err, message) = fail("config.yaml", YAML, &[]);
    assert!(
        matches!(&err, ConfigError::UndefinedVariable { key, var, .. }
        if key == "servers.search.auth.token" && var == "SEARCH_TOKEN"),
        "{err:?}"
    );
    assert_contains(
        &message,
        &[
            "config.yaml: servers.search.auth.token:",
            "`SEARCH_TOKEN` is not set",
            "export SEARCH_TOKEN=",
            "${SEARCH_TOKEN:-default}",
        ],
    );

    let (_, message) = fail(
        "config.toml",
        "[servers.a]\ncommand = \"x\"\nargs = [\"ok\", \"${MISSING}\"]\n",
        &[],
    );
    assert_contains(&message, &["config.toml: servers.a.args[1]:", "`MISSING`"]);

    let (_, message) = fail(
        "config.yaml",
        "servers:\n  a:\n    command: \"${unclosed\"\n",
        &[],
    );
    assert_contains(
        &message,
        &["config.yaml: servers.a.command:", "unclosed `${`", "$${"],
    );
}

#[test]
fn unknown_keys_name_file_path_and_key() {
    let text = "servers:\n  search:\n    urll: http://127.0.0.1:9001/mcp\n";
    let (err, message) = fail("config.yaml", text, &[]);
    assert!(
        matches!(&err, ConfigError::UnknownKey { key, unknown, .. } if key == "servers.search" && unknown == "urll")
    );
    assert_contains(
        &message,
        &[
            "config.yaml: servers.search: unknown key `urll`; expected one of",
            "url, command, args",
            "(did you mean `url`?)",
        ],
    );

    let (_, message) = fail("config.json", r#"{"server": {}}"#, &[]);
    assert_contains(
        &message,
        &[
            "config.json: unknown top-level key `server`; expected one of defaults, servers, global_settings, native_tools, llm, agents, workflows, gateway, registry (did you mean `servers`?)",
        ],
    );

    let text = "[servers.a]\nurl = \"http://h/mcp\"\nauth = { type = \"bearer\", tokn = \"x\" }\n";
    let (_, message) = fail("config.toml", text, &[]);
    assert_contains(
        &message,
        &[
            "config.toml: servers.a.auth: unknown key `tokn`",
            "(did you mean `token`?)",
        ],
    );
}

#[test]
fn wrong_types_name_file_path_and_expected_form() {
    let (err, message) = fail(
        "config.yaml",
        "servers:\n  search:\n    url: http://h/mcp\n    timeout: [1]\n",
        &[],
    );
    assert!(matches!(&err, ConfigError::Invalid { key, .. } if key == "servers.search.timeout"));
    assert_contains(
        &message,
        &[
            "config.yaml: servers.search.timeout: expected a duration like \"30s\" or a number of seconds, found a list [1]",
        ],
    );

    let (_, message) = fail(
        "config.yaml",
        "servers:\n  fixture:\n    command: prog\n    args: 5\n",
        &[],
    );
    assert_contains(
        &message,
        &["config.yaml: servers.fixture.args: expected a list of strings like [--stdio], found 5"],
    );

    let (_, message) = fail("config.toml", "[servers.a]\ncommand = 5\n", &[]);
    assert_contains(
        &message,
        &[
            "config.toml: servers.a.command: expected a program name or a list",
            "found 5",
        ],
    );

    let (_, message) = fail(
        "config.yaml",
        "servers:\n  a:\n    url: http://h/mcp\n    transport: carrier-pigeon\n",
        &[],
    );
    assert_contains(
        &message,
        &[
            "servers.a.transport: unknown value `carrier-pigeon`; expected one of stdio, streamable-http, websocket",
        ],
    );

    let (_, message) = fail(
        "config.yaml",
        "servers:\n  a:\n    url: http://h/mcp\n    auth: { type: basic }\n",
        &[],
    );
    assert_contains(
        &message,
        &["config.yaml: servers.a.auth.type: unknown value `basic`; expected `bearer`"],
    );

    let (_, message) = fail("config.yaml", "servers: [a, b]\n", &[]);
    assert_contains(
        &message,
        &[
            "config.yaml: servers: expected a map from server names to server settings, found a list",
        ],
    );
}

#[test]
fn servers_without_url_or_command_are_rejected() {
    let (err, message) = fail(
        "config.yaml",
        "servers:\n  search:\n    headers: { X-Team: core }\n",
        &[],
    );
    assert!(matches!(&err, ConfigError::Invalid { key, .. } if key == "servers.search"));
    assert_contains(
        &message,
        &["config.yaml: servers.search: missing `url` or `command`: give `url:"],
    );

    let (_, message) = fail(
        "config.yaml",
        "servers:\n  search:\n    url: ftp://h/mcp\n",
        &[],
    );
    assert_contains(
        &message,
        &["config.yaml: servers.search.url: `ftp://h/mcp` does not start with http:// or https://"],
    );

    let (_, message) = fail(
        "config.yaml",
        "servers:\n  s:\n    url: http://h/mcp\n    auth: { type: bearer }\n",
        &[],
    );
    assert_contains(
        &message,
        &["config.yaml: servers.s.auth: bearer auth needs a non-empty `token`"],
    );
}

const CLAUDE: &str = r#"{
  "globalShortcut": "Ctrl+Space",
  "mcpServers": {
    "files": {
      "command": "npx",
      "args": ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"],
      "env": { "DEBUG": "1", "TOKEN": "${FILES_TOKEN:-none}" },
      "autoApprove": ["read_file"],
      "alwaysAllow": [],
      "timeout": 60000
    },
    "remote": {
      "type": "http",
      "url": "https://example.com/mcp",
      "headers": { "X-Key": "k" }
    },
    "legacy": { "url": "http://127.0.0.1:9/sse", "type": "sse" },
    "off": { "command": "old-server", "disabled": true, "env": { "X": "${NOT_SET}" } },
    "on": { "command": "new-server", "disabled": false }
  }
}"#;

fn claude_expected() -> BTreeMap<String, Endpoint> {
    let files = Endpoint {
        env: BTreeMap::from([
            ("DEBUG".into(), "1".into()),
            ("TOKEN".into(), "none".into()),
        ]),
        ..Endpoint::stdio(
            "npx",
            ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"],
        )
        .named("files")
    };
    let remote = Endpoint {
        transport: Some(TransportKind::StreamableHttp),
        ..Endpoint::url("https://example.com/mcp")
            .named("remote")
            .header("X-Key", "k")
    };
    let legacy = Endpoint {
        transport: Some(TransportKind::StreamableHttp),
        ..Endpoint::url("http://127.0.0.1:9/sse").named("legacy")
    };
    let on = Endpoint::stdio("new-server", Vec::<String>::new()).named("on");
    [files, remote, legacy, on]
        .into_iter()
        .map(|e| (e.name.clone().unwrap(), e))
        .collect()
}

#[test]
fn claude_desktop_and_cursor_mcp_servers_files_load() {
    let dir = TempDir::new().unwrap();
    let path = write(&dir, "claude_desktop_config.json", CLAUDE);
    let config = load(&[&path], &[]).unwrap();
    assert_eq!(endpoints(&config), claude_expected());
    assert!(
        !config.servers.contains_key("off"),
        "disabled entries are skipped"
    );

    let from_text = Config::from_mcp_servers_json(CLAUDE, "claude_desktop_config.json").unwrap();
    assert_eq!(endpoints(&from_text), claude_expected());
}

#[test]
fn vscode_mcp_json_loads() {
    let text = r#"{
      "inputs": [{ "type": "promptString", "id": "key", "description": "API key", "password": true }],
      "servers": {
        "memory": { "type": "stdio", "command": "npx", "args": ["-y", "@modelcontextprotocol/server-memory"], "env": { "A": "b" }, "envFile": "${workspaceFolder}/.env" },
        "github": { "type": "http", "url": "https://api.githubcopilot.com/mcp/", "headers": { "X-Team": "core" } },
        "events": { "type": "sse", "url": "http://127.0.0.1:8080/sse" }
      }
    }"#;
    let expected: BTreeMap<String, Endpoint> = [
        Endpoint {
            transport: Some(TransportKind::Stdio),
            env: BTreeMap::from([("A".into(), "b".into())]),
            ..Endpoint::stdio("npx", ["-y", "@modelcontextprotocol/server-memory"]).named("memory")
        },
        Endpoint {
            transport: Some(TransportKind::StreamableHttp),
            ..Endpoint::url("https://api.githubcopilot.com/mcp/")
                .named("github")
                .header("X-Team", "core")
        },
        Endpoint {
            transport: Some(TransportKind::StreamableHttp),
            ..Endpoint::url("http://127.0.0.1:8080/sse").named("events")
        },
    ]
    .into_iter()
    .map(|e| (e.name.clone().unwrap(), e))
    .collect();

    let dir = TempDir::new().unwrap();
    let config = load(&[&write(&dir, "mcp.json", text)], &[]).unwrap();
    assert_eq!(endpoints(&config), expected);
    assert_eq!(
        endpoints(&Config::from_mcp_servers_json(text, ".vscode/mcp.json").unwrap()),
        expected
    );
}

#[test]
fn mcp_servers_errors_use_the_files_own_key_paths() {
    let text = r#"{ "mcpServers": { "files": { "comand": "npx" } } }"#;
    let (_, message) = fail("claude.json", text, &[]);
    assert_contains(
        &message,
        &[
            "claude.json: mcpServers.files: unknown key `comand`",
            "(did you mean `command`?)",
        ],
    );

    let text = r#"{ "mcpServers": { "files": { "command": "npx", "args": 5 } } }"#;
    let (_, message) = fail("cursor.json", text, &[]);
    assert_contains(
        &message,
        &["cursor.json: mcpServers.files.args: expected a list of strings"],
    );

    let text =
        r#"{ "mcpServers": { "r": { "url": "https://h/mcp", "headers": { "X": "${KEY}" } } } }"#;
    let (_, message) = fail("cursor.json", text, &[]);
    assert_contains(
        &message,
        &["cursor.json: mcpServers.r.headers.X:", "`KEY` is not set"],
    );

    let text = r#"{ "mcpServers": { "r": { "type": "carrier-pigeon", "url": "https://h/mcp" } } }"#;
    let (_, message) = fail("cursor.json", text, &[]);
    assert_contains(
        &message,
        &[
            "mcpServers.r.type:",
            "carrier-pigeon",
            "one of stdio, http, streamable-http, sse",
        ],
    );

    let (_, message) = fail(
        "claude.json",
        r#"{ "mcpServers": {}, "mcpServer": {} }"#,
        &[],
    );
    assert_contains(
        &message,
        &["claude.json: unknown top-level key `mcpServer`; expected `mcpServers`"],
    );

    let (_, message) = fail("claude.json", r#"{ "mcpServers": { "x": { } } }"#, &[]);
    assert_contains(
        &message,
        &["claude.json: mcpServers.x: missing `url` or `command`"],
    );

    let err = Config::from_mcp_servers_json(r#"{ "other": 1 }"#, "pasted.json")
        .unwrap_err()
        .to_string();
    assert_contains(&err, &["pasted.json", "`mcpServers`"]);
}

#[test]
fn later_files_override_earlier_ones() {
    let dir = TempDir::new().unwrap();
    let base = write(&dir, "base.yaml", YAML);
    let local = write(
        &dir,
        "local.toml",
        "[servers.search]\nurl = \"http://127.0.0.1:9100/mcp\"\n\n[servers.extra]\ncommand = [\"extra\"]\n",
    );
    let config = load(&[&base, &local], &[TOKEN]).unwrap();
    let search = &config.servers["search"];
    assert_eq!(search.url.as_deref(), Some("http://127.0.0.1:9100/mcp"));
    assert_eq!(
        search.timeout,
        Some(Duration::from_secs(10)),
        "keys the later file does not set are kept"
    );
    assert!(
        matches!(search.auth, Some(Auth::Bearer { ref token, .. }) if token.as_deref() == Some("s3cret"))
    );
    assert_eq!(
        config.servers.keys().collect::<Vec<_>>(),
        ["extra", "fixture", "search"]
    );

    let reversed = load(&[&local, &base], &[TOKEN]).unwrap();
    assert_eq!(
        reversed.servers["search"].url.as_deref(),
        Some("http://127.0.0.1:9001/mcp")
    );
}

#[test]
fn file_problems_name_the_file() {
    let dir = TempDir::new().unwrap();
    let missing = dir.path().join("missing.yaml");
    let err = load(&[&missing], &[]).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }));
    assert_contains(
        &err.to_string(),
        &[
            "missing.yaml: cannot read the configuration file:",
            "No such file",
        ],
    );

    let ini = write(&dir, "config.ini", "[servers]");
    let err = load(&[&ini], &[]).unwrap_err().to_string();
    assert_contains(
        &err,
        &[
            "config.ini: unknown configuration format",
            ".yaml, *.yml, *.toml or *.json",
        ],
    );

    let (err, message) = fail("config.yaml", "servers:\n  a: [\n", &[]);
    assert!(matches!(err, ConfigError::Parse { .. }), "{err:?}");
    assert_contains(&message, &["invalid YAML"]);

    let (_, message) = fail("config.json", "{ \"servers\": ", &[]);
    assert_contains(&message, &["invalid JSON"]);
}

#[test]
fn odd_documents_give_errors_not_panics() {
    let cases = [
        ("a.yaml", ""),
        ("b.yaml", "[1, 2]"),
        ("c.yaml", "servers: 5"),
        ("d.yaml", "servers:\n  a: 5"),
        ("e.yaml", "servers:\n  a: ~"),
        ("f.yaml", "servers:\n  '': { url: 'http://h/mcp' }"),
        (
            "g.yaml",
            "servers:\n  a.b: { url: 'http://h/mcp', timeout: [] }",
        ),
        ("h.json", "null"),
        ("i.json", r#"{"mcpServers": 5}"#),
        ("j.json", r#"{"mcpServers": {"a": 5}}"#),
        (
            "k.json",
            r#"{"mcpServers": {"a": {"disabled": "yes", "command": "x"}}}"#,
        ),
        ("l.json", r#"{"servers": {"a": {"type": 5}}, "inputs": []}"#),
        ("m.toml", "servers = \"x\""),
        ("n.yaml", "servers:\n  a:\n    command: []"),
        (
            "o.yaml",
            "servers:\n  a:\n    command: x\n    protocol_version: 1999",
        ),
        (
            "p.yaml",
            "servers:\n  a:\n    command: '${A:-${B:-${C:-${D:-${E:-${F:-${G:-${H:-${I:-${J:-x}}}}}}}}}}'",
        ),
    ];
    let dir = TempDir::new().unwrap();
    for (name, text) in cases {
        let path = write(&dir, name, text);
        match load(&[&path], &[]) {
            Ok(config) => assert!(
                config
                    .servers
                    .values()
                    .all(|s| s.endpoint().validate().is_ok())
                    && config.services().is_ok(),
                "{name}"
            ),
            Err(err) => {
                let message = err.to_string();
                assert!(message.contains(name), "{name}: {message}");
            }
        }
    }
}

#[test]
fn defaults_configure_pool_breaker_and_health_with_seed_aliases() {
    let dir = TempDir::new().unwrap();
    let path = write(
        &dir,
        "toolmesh.yaml",
        r#"
defaults:
  pool: { min_connections: 2, max_sessions: 6, acquire_timeout: 2s }
  circuit_breaker: { failure_threshold: 3, recovery_timeout: 30s }
  health_check: { interval: 10s, method: list_tools }
servers:
  a: { url: http://127.0.0.1:1/mcp }
"#,
    );
    let config = load(&[&path], &[("TOOLMESH_DEFAULTS__POOL__MAX_SESSIONS", "8")]).unwrap();
    assert_eq!(config.defaults.pool.min_sessions, 2);
    assert_eq!(config.defaults.pool.max_sessions, 8, "environment wins");
    assert_eq!(config.defaults.pool.acquire_timeout, Duration::from_secs(2));
    assert_eq!(config.defaults.circuit_breaker.failure_threshold, 3);
    assert_eq!(
        config.defaults.circuit_breaker.recovery_timeout,
        Duration::from_secs(30)
    );
    assert_eq!(
        config.defaults.health_check.method,
        toolmesh_pool::HealthCheckMethod::ListTools
    );
}

#[test]
fn invalid_defaults_name_file_section_and_fix() {
    let (_, message) = fail(
        "toolmesh.yaml",
        "defaults:\n  pool: { min_sessions: 5, max_sessions: 2 }\n",
        &[],
    );
    assert_contains(
        &message,
        &[
            "toolmesh.yaml: defaults.pool: min_sessions (5) is greater than max_sessions (2)",
            "raise max_sessions",
        ],
    );
    let (_, message) = fail(
        "toolmesh.yaml",
        "defaults:\n  pool: { min_sesions: 1 }\n",
        &[],
    );
    assert_contains(&message, &["defaults.pool", "min_sesions", "min_sessions"]);
}
