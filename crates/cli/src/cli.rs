//! The command line: what `toolmesh --help` shows.

use std::{net::SocketAddr, num::NonZeroUsize, path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};

const AFTER_HELP: &str = "\
Examples:
  toolmesh serve                                   native tools at http://127.0.0.1:8383/mcp
  toolmesh serve --config toolmesh.yaml            the configured MCP servers, reloaded on edit
  toolmesh serve --config toolmesh.yaml --stdio    the same over stdin/stdout (for MCP clients)
  toolmesh tools --config toolmesh.yaml            list the aggregated catalog
  toolmesh call fixture__echo '{\"message\": \"hi\"}' --config toolmesh.yaml
  toolmesh status --url http://127.0.0.1:8383/mcp --watch
  toolmesh config check toolmesh.yaml

Exit status: 0 on success; 1 when a call or connection fails, or when every server
is down (`tools`, `status`); 2 for an invalid configuration or command line.

Logs go to stderr; set RUST_LOG (e.g. RUST_LOG=toolmesh=debug) or use -v/-vv.";

/// toolmesh: hyper-available access to MCP tools.
///
/// One gateway in front of many MCP servers (several instances of each): it aggregates
/// their tools into one catalog, routes every call to a healthy instance, fails over
/// when one is slow or dies, and reports what it did.
#[derive(Debug, Parser)]
#[command(name = "toolmesh", version, after_help = AFTER_HELP, propagate_version = true)]
pub(crate) struct Cli {
    /// More log output on stderr: -v debug, -vv trace (RUST_LOG wins when set).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub(crate) verbose: u8,

    /// Only toolmesh's own errors on stderr (none from libraries).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub(crate) quiet: bool,

    /// Threads running toolmesh's async work. 1 runs it all on the main thread, which is
    /// faster where the gateway shares few CPUs with its upstreams and clients
    /// (docs/benchmarks.md). Default: one per CPU (the main thread alone on one CPU).
    #[arg(
        long,
        value_name = "N",
        global = true,
        env = "TOOLMESH_WORKER_THREADS",
        value_parser = thread_count
    )]
    pub(crate) worker_threads: Option<NonZeroUsize>,

    #[command(subcommand)]
    pub(crate) command: Command,
}

fn thread_count(text: &str) -> Result<NonZeroUsize, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("expected a number of threads, 1 or more (e.g. `1`), not `{text}`"))
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the gateway: the catalog as one MCP server over streamable HTTP (or stdio).
    #[command(after_help = SERVE_HELP)]
    Serve(ServeArgs),
    /// List the tools of the catalog (or of a running gateway or MCP server).
    #[command(after_help = TOOLS_HELP)]
    Tools(ToolsArgs),
    /// Call one tool and print its result.
    #[command(after_help = CALL_HELP)]
    Call(CallArgs),
    /// Show the health and performance of every instance.
    #[command(after_help = STATUS_HELP)]
    Status(StatusArgs),
    /// Work with configuration files.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Run an LLM agent whose tool calls go through the mesh.
    #[command(subcommand)]
    Agent(AgentCommand),
    /// Run a workflow of the configuration (`workflows:`).
    #[command(subcommand)]
    Workflow(WorkflowCommand),
    /// Credentials for the gateway's clients.
    #[command(subcommand)]
    Auth(AuthCommand),
    /// Keep an MCP server registered in the shared registry (etcd) while this runs.
    #[command(after_help = REGISTER_HELP)]
    Register(RegisterArgs),
}

const REGISTER_HELP: &str = "\
Every gateway following the same etcd (registry.etcd in its configuration) routes to the
instance within a moment; when this command stops (Ctrl-C, SIGTERM) the registration is
withdrawn at once, and when it dies the lease runs out after --ttl. Runs beside the server,
as a sidecar. Progress and errors go to stderr.

Examples:
  toolmesh register --etcd http://127.0.0.1:2379 --service search --url http://10.0.0.5:8080/mcp
  toolmesh register --etcd http://etcd:2379 --service search --url http://search-2:8080/mcp \\
      --id search-2 --ttl 10s --tier 2 --capability gpu";

#[derive(Debug, Args)]
pub(crate) struct RegisterArgs {
    /// etcd client URL(s), comma-separated.
    #[arg(long, value_name = "URL", value_delimiter = ',', required = true)]
    pub(crate) etcd: Vec<String>,
    /// The service the instance serves (its tools' namespace in the gateways' catalogs).
    #[arg(long, value_name = "NAME")]
    pub(crate) service: String,
    /// The instance's streamable-HTTP MCP endpoint, as the gateways reach it.
    #[arg(long, value_name = "MCP_URL")]
    pub(crate) url: String,
    /// Lease: how long the registration outlives this process if it dies.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub(crate) ttl: std::time::Duration,
    /// The instance's id, unique within the service; default: from the URL's host and port.
    #[arg(long, value_name = "ID")]
    pub(crate) id: Option<String>,
    /// Key prefix shared with the gateways (registry.etcd.prefix).
    #[arg(long, value_name = "PREFIX", default_value = "/toolmesh")]
    pub(crate) prefix: String,
    /// Priority tier: lower is preferred; higher tiers are backups.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub(crate) tier: u32,
    /// Share of traffic under the `weighted` strategy.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub(crate) weight: u32,
    /// What this instance can do beyond its service (repeatable), for `capability_match`.
    #[arg(long = "capability", value_name = "NAME")]
    pub(crate) capabilities: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum WorkflowCommand {
    /// Run a workflow once and print each step's outcome and timing, then its output.
    #[command(after_help = WORKFLOW_HELP)]
    Run(WorkflowRunArgs),
}

const WORKFLOW_HELP: &str = "\
Every tool step goes through the mesh's router (failover, cache, retry safety); the
native tools are available under their own names (calculator, time_now, ...). Agent
steps use `agents:` and the model of `llm:` (or OPENAI_BASE_URL, OPENAI_API_KEY and
TOOLMESH_MODEL).

Without --json, stdout has one line per step (status, id, tool @ instance, when it
started and how long it took, failed fallbacks), then a blank line and the output.
--json prints {output, steps, latency_ms}; durations in milliseconds.

Exit status: 0 when every step that ran succeeded; 1 when a step failed or the run was
stopped (the reason on stderr, with --json the steps so far on stdout); 2 for an
invalid configuration, workflow or input.

Examples:
  toolmesh workflow run research --config toolmesh.yaml --input '{\"topic\": \"MCP\"}'
  toolmesh workflow run research -c toolmesh.yaml --input '{\"topic\": \"MCP\"}' --json";

#[derive(Debug, Args)]
pub(crate) struct WorkflowRunArgs {
    /// The workflow, from `workflows:`.
    #[arg(value_name = "NAME")]
    pub(crate) name: String,

    /// The workflow's input, a JSON value (templates read it as `input`); default {}.
    #[arg(long, value_name = "JSON")]
    pub(crate) input: Option<String>,

    /// Configuration file with `workflows:` (and `servers:`, `agents:`); repeat to merge.
    #[arg(short, long = "config", value_name = "FILE", required = true)]
    pub(crate) config: Vec<PathBuf>,

    /// Print the whole result as JSON.
    #[arg(long)]
    pub(crate) json: bool,

    /// Deadline of the whole run.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    pub(crate) timeout: Duration,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AuthCommand {
    /// Make a new random API key; print it, its SHA-256 and the configuration entry.
    #[command(after_help = HASH_KEY_HELP)]
    HashKey(HashKeyArgs),
}

const HASH_KEY_HELP: &str = "\
The key is printed once: give it to the client, and put only its SHA-256 in the
configuration (gateway.auth.api_keys). Clients send it as `Authorization: Bearer KEY`
or `X-API-Key: KEY`.

Examples:
  toolmesh auth hash-key --id ci --role ops
  toolmesh auth hash-key --stdin < key.txt        the digest of a key you already have";

#[derive(Debug, Args)]
pub(crate) struct HashKeyArgs {
    /// The key's id in the configuration (the principal is `key:ID`).
    #[arg(long, value_name = "ID", default_value = "my-client")]
    pub(crate) id: String,

    /// A role of the key's holder; repeatable.
    #[arg(long = "role", value_name = "ROLE")]
    pub(crate) roles: Vec<String>,

    /// Hash the key read from stdin (first line) instead of making a new one.
    #[arg(long)]
    pub(crate) stdin: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AgentCommand {
    /// Run one task to an answer and print it.
    #[command(after_help = AGENT_HELP)]
    Run(AgentRunArgs),
    /// An interactive session: one message per line, history kept; Ctrl-D ends it.
    #[command(after_help = AGENT_HELP)]
    Chat(AgentArgs),
    /// Serve one agent as an MCP server: each of its `expose.capabilities` is a tool.
    #[command(after_help = AGENT_SERVE_HELP)]
    Serve(AgentServeArgs),
}

const AGENT_SERVE_HELP: &str = "\
The agent's tools come from `agents.NAME.expose.capabilities` (tool name: what it does),
under their own names unless `expose.prefix: true`; an agent without `expose:` is served
as one tool, `run`. Each call runs the agent: a
progress notification per step when the client sent a progress token, cancelling the
request stops the run, a failed run is an `isError` result with the reason, and the
result carries `{answer, steps}` as structured content.

Over HTTP it prints, once serving:
  toolmesh listening on http://127.0.0.1:8383/mcp

Examples:
  toolmesh agent serve --config toolmesh.yaml --agent mathematician
  toolmesh agent serve --config toolmesh.yaml --agent mathematician --listen 9000
  toolmesh agent serve --config toolmesh.yaml --agent mathematician --stdio   (Claude Desktop)";

#[derive(Debug, Args)]
pub(crate) struct AgentServeArgs {
    #[command(flatten)]
    pub(crate) choice: AgentChoice,

    #[command(flatten)]
    pub(crate) edge: EdgeArgs,

    /// On shutdown, how long to wait for runs in flight.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub(crate) drain_timeout: Duration,
}

const AGENT_HELP: &str = "\
The model is any OpenAI-compatible endpoint: `llm:` in the configuration, else
OPENAI_BASE_URL (default https://api.openai.com/v1) and OPENAI_API_KEY. The model name
comes from --model, then `llm.model` (or the agent's `model`), then TOOLMESH_MODEL.

Without --config the agent has toolmesh's native tools (calculator, time, http_fetch,
arxiv_search, ...); with it, every tool of the configured servers as well, each call
routed, retried and failed over like a gateway call. The native tools are always
available under their own names.

Exit status: 0 with an answer; 1 when the model cannot be reached or a limit ends the
run; 2 for an invalid configuration or command line (no model set, unknown agent).

Examples:
  OPENAI_API_KEY=sk-... toolmesh agent run --model gpt-4o-mini \"What is 17 * 23?\"
  toolmesh agent run --config toolmesh.yaml --agent researcher --json \"Find papers on MCP\"
  OPENAI_BASE_URL=http://localhost:11434/v1 toolmesh agent chat --model llama3.1";

/// Which agent, from which configuration, on which model: shared by the agent commands.
#[derive(Debug, Args)]
pub(crate) struct AgentChoice {
    /// Configuration file with `llm:`, `agents:` and `servers:`; repeat to merge.
    #[arg(short, long = "config", value_name = "FILE")]
    pub(crate) config: Vec<PathBuf>,

    /// The agent, from `agents:` (needed when several are configured).
    #[arg(long, value_name = "NAME")]
    pub(crate) agent: Option<String>,

    /// The model, overriding the configuration and TOOLMESH_MODEL.
    #[arg(long, value_name = "MODEL")]
    pub(crate) model: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct AgentArgs {
    #[command(flatten)]
    pub(crate) choice: AgentChoice,

    /// Model calls per run (default 10, or the agent's `max_steps`).
    #[arg(long, value_name = "N")]
    pub(crate) max_steps: Option<u32>,

    /// Print `{answer, steps, usage}` as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct AgentRunArgs {
    #[command(flatten)]
    pub(crate) agent: AgentArgs,

    /// Print the answer's text as the model writes it.
    #[arg(long, conflicts_with = "json")]
    pub(crate) stream: bool,

    /// What to do.
    #[arg(value_name = "TASK")]
    pub(crate) task: String,
}

const SERVE_HELP: &str = "\
Without --config the gateway serves toolmesh's native tools (calculator, time,
http_fetch, arxiv_search) under the namespace `native`. With --config it serves every
configured MCP server, and follows the file: a valid edit is applied without dropping
in-flight calls, an invalid one is logged and shown in /status (`reload.last_error`)
while the previous configuration stays in force.

Once the catalog is served it prints, on stdout:
  toolmesh listening on http://127.0.0.1:8383/mcp

HTTP endpoints: /mcp (MCP streamable HTTP), /healthz, /readyz (503 until the catalog
has a tool), /status (JSON), /metrics (Prometheus). SIGINT or SIGTERM stops accepting, waits for in-flight calls (up to
--drain-timeout), closes every upstream server and exits 0.

Clients authenticate when the configuration has `gateway.auth` (API keys by SHA-256,
JWTs from an issuer; see `toolmesh auth hash-key`): /mcp and /status answer 401 without
a valid credential. Without `gateway.auth` anyone who reaches the address could call
every tool with the credentials configured for the servers, so the gateway then
listens on loopback only, unless --allow-unauthenticated is given (otherwise exit 2).

Examples:
  toolmesh serve
  toolmesh serve --config toolmesh.yaml --listen 8383
  toolmesh serve --config with-gateway-auth.yaml --listen 0.0.0.0:8383 --allow-host mesh.internal
  toolmesh serve --config toolmesh.yaml --stdio
  RUST_LOG=toolmesh=debug toolmesh serve --config toolmesh.yaml --listen 127.0.0.1:0";

const TOOLS_HELP: &str = "\
Examples:
  toolmesh tools                                   the native tools
  toolmesh tools --config toolmesh.yaml            the configured servers' catalog
  toolmesh tools --url http://127.0.0.1:8383/mcp   a running gateway (or any MCP server)
  toolmesh tools --config toolmesh.yaml --json     name, service, description, schema";

const CALL_HELP: &str = "\
ARGS_JSON is a JSON object; omit it for a tool without arguments.

The result's text is printed on stdout; the routing (instance, attempts, latency) goes
to stderr: the router's with --config, the gateway's with --url when it reports one.
--json prints both, durations in milliseconds (`latency_ms`). A tool error (isError),
a failed call or connection exits 1 with the reason on stderr; arguments that do not
fit the tool's schema exit 2.

Examples:
  toolmesh call native__calculator '{\"expression\": \"2 * (3 + 4)\"}'
  toolmesh call search__web_search '{\"query\": \"mcp\"}' --config toolmesh.yaml --json
  toolmesh call fixture__echo '{\"message\": \"hi\"}' --url http://127.0.0.1:8383/mcp";

const STATUS_HELP: &str = "\
Columns: service, instance, healthy, reason, breaker (closed/open/half_open), calls,
success rate and p99 latency since start (`-` before the first call). --json gives
durations in milliseconds (`p99_latency_ms`). Exits 1 when no service has a healthy
instance.

Examples:
  toolmesh status --config toolmesh.yaml
  toolmesh status --url http://127.0.0.1:8383/mcp --watch
  toolmesh status --url http://127.0.0.1:8383 --json";

/// Where the tools come from.
#[derive(Debug, Clone, Args)]
pub(crate) struct TargetArgs {
    /// Configuration file (YAML, TOML, JSON or an mcpServers file); repeat to merge.
    #[arg(short, long = "config", value_name = "FILE", conflicts_with = "url")]
    pub(crate) config: Vec<PathBuf>,

    /// A running gateway or MCP server (streamable HTTP), e.g. http://127.0.0.1:8383/mcp.
    #[arg(short, long, value_name = "URL")]
    pub(crate) url: Option<String>,

    /// Bearer token sent with --url.
    #[arg(long, value_name = "TOKEN", requires = "url", env = "TOOLMESH_TOKEN")]
    pub(crate) bearer: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Configuration file (YAML, TOML, JSON or an mcpServers file); repeat to merge.
    /// Without it, the native tools are served.
    #[arg(short, long = "config", value_name = "FILE")]
    pub(crate) config: Vec<PathBuf>,

    #[command(flatten)]
    pub(crate) edge: EdgeArgs,

    /// Follow the configuration files and apply edits (the default with --config).
    #[arg(long, overrides_with = "no_watch")]
    pub(crate) watch: bool,

    /// Load the configuration once; ignore later edits.
    #[arg(long = "no-watch", overrides_with = "watch")]
    pub(crate) no_watch: bool,

    /// Deadline of each tool call (e.g. 30s, 2m).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub(crate) call_timeout: Duration,

    /// On shutdown, how long to wait for in-flight calls.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub(crate) drain_timeout: Duration,

    /// Answer each MCP request on its own, as JSON, without sessions: cheaper per call,
    /// but clients are not told when the tool list changes (2026-07-28 clients that
    /// use subscriptions/listen still are).
    #[arg(long, conflicts_with = "stdio")]
    pub(crate) stateless: bool,
    /// Serve every request through rmcp, without the gateway's `tools/call` fast path
    /// on either leg (on by default; `/metrics` counts each call's path in
    /// `toolmesh_gateway_calls_total` inbound and `toolmesh_upstream_calls_total` upstream).
    #[arg(long, conflicts_with = "stdio")]
    pub(crate) no_fast_path: bool,
}

/// Where and how an MCP server listens: shared by `serve` and `agent serve`.
#[derive(Debug, Args)]
pub(crate) struct EdgeArgs {
    /// Address to listen on: IP:PORT, localhost:PORT or a bare PORT (on 127.0.0.1);
    /// port 0 picks a free one. A non-loopback address needs `gateway.auth` in the
    /// configuration, or --allow-unauthenticated.
    #[arg(short, long, value_name = "ADDR", default_value = "127.0.0.1:8383", value_parser = parse_listen)]
    pub(crate) listen: SocketAddr,

    /// Listen on a non-loopback address without `gateway.auth`: only on a network where
    /// every client may call every tool.
    #[arg(long, conflicts_with = "stdio")]
    pub(crate) allow_unauthenticated: bool,

    /// Serve MCP over stdin/stdout instead of HTTP.
    #[arg(long, conflicts_with_all = ["listen", "allow_host"])]
    pub(crate) stdio: bool,

    /// Also accept this Host header (besides loopback names); repeatable. Needed when
    /// clients reach the server by a name, e.g. behind --listen 0.0.0.0:8383.
    #[arg(long, value_name = "HOST")]
    pub(crate) allow_host: Vec<String>,
}

impl ServeArgs {
    /// Whether to follow the configuration files.
    pub(crate) fn watching(&self) -> bool {
        !self.config.is_empty() && !self.no_watch
    }
}

#[derive(Debug, Args)]
pub(crate) struct ToolsArgs {
    #[command(flatten)]
    pub(crate) target: TargetArgs,

    /// Print JSON instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct CallArgs {
    /// The tool, as listed by `toolmesh tools` (`namespace__tool`).
    #[arg(value_name = "TOOL")]
    pub(crate) tool: String,

    /// Arguments as a JSON object, e.g. '{"message": "hi"}'.
    #[arg(value_name = "ARGS_JSON")]
    pub(crate) args: Option<String>,

    #[command(flatten)]
    pub(crate) target: TargetArgs,

    /// Print the whole result (and routing) as JSON.
    #[arg(long)]
    pub(crate) json: bool,

    /// Deadline of the call.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub(crate) timeout: Duration,
}

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// Configuration file to start and inspect; repeat to merge.
    #[arg(short, long = "config", value_name = "FILE", conflicts_with = "url")]
    pub(crate) config: Vec<PathBuf>,

    /// A running gateway: its MCP URL or base URL (`/status` is read); the default is
    /// http://127.0.0.1:8383 unless --config is given.
    #[arg(short, long, value_name = "URL")]
    pub(crate) url: Option<String>,

    /// Bearer token (an API key or a JWT) for a gateway with `gateway.auth`.
    #[arg(long, value_name = "TOKEN", env = "TOOLMESH_TOKEN")]
    pub(crate) bearer: Option<String>,

    /// Print JSON instead of a table.
    #[arg(long)]
    pub(crate) json: bool,

    /// Refresh every 2 seconds until Ctrl-C.
    #[arg(short, long)]
    pub(crate) watch: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Load and validate a configuration; print its services, normalized, or the errors.
    #[command(after_help = "\
Prints every server as the gateway runs it: defaults applied, instances numbered,
namespaces resolved (secrets are not printed). Exits 2 with the file, key path and
what to fix when the configuration is invalid.

Examples:
  toolmesh config check toolmesh.yaml
  toolmesh config check ~/.cursor/mcp.json --format json")]
    Check {
        /// The file (repeat to merge several, as `serve` does).
        #[arg(value_name = "FILE", required = true)]
        files: Vec<PathBuf>,

        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Yaml)]
        format: Format,
    },
}

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// YAML.
    Yaml,
    /// JSON.
    Json,
}

/// `IP:PORT`, `localhost:PORT` (127.0.0.1) or a bare `PORT` (on 127.0.0.1).
fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let port = text
        .strip_prefix("localhost:")
        .or_else(|| text.strip_prefix(':'))
        .unwrap_or(text);
    match port.parse::<u16>() {
        Ok(port) => Ok(SocketAddr::from(([127, 0, 0, 1], port))),
        Err(_) => Err(format!(
            "`{text}` is not an address to listen on; write IP:PORT (127.0.0.1:8383, \
             0.0.0.0:8383, [::1]:8383), localhost:PORT or a bare PORT"
        )),
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|e| format!("`{text}` is not a duration ({e}); write e.g. 500ms, 30s or 2m"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn watch_is_the_default_with_a_config() {
        let parse = |args: &[&str]| match Cli::try_parse_from(args).map(|c| c.command) {
            Ok(Command::Serve(serve)) => serve.watching(),
            other => panic!("unexpected {other:?}"),
        };
        assert!(!parse(&["toolmesh", "serve"]));
        assert!(parse(&["toolmesh", "serve", "--config", "a.yaml"]));
        assert!(!parse(&["toolmesh", "serve", "-c", "a.yaml", "--no-watch"]));
    }

    #[test]
    fn listen_accepts_localhost_and_a_bare_port() {
        let local = |port| SocketAddr::from(([127, 0, 0, 1], port));
        assert_eq!(parse_listen("localhost:9000"), Ok(local(9000)));
        assert_eq!(parse_listen("9001"), Ok(local(9001)));
        assert_eq!(parse_listen(":9002"), Ok(local(9002)));
        assert_eq!(
            parse_listen("0.0.0.0:8383"),
            Ok(SocketAddr::from(([0, 0, 0, 0], 8383)))
        );
        assert_eq!(
            parse_listen("[::1]:1").map(|a| a.ip().is_loopback()),
            Ok(true)
        );
        let error = parse_listen("mesh.internal:80").unwrap_err();
        assert!(error.contains("localhost:PORT or a bare PORT"), "{error}");
    }
}
