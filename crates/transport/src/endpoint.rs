//! Where an MCP server lives and how to reach it: the endpoint definition of config files.

use std::{collections::BTreeMap, fmt, path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize};

/// Which wire a session uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TransportKind {
    /// A child process speaking newline-delimited JSON-RPC on stdin/stdout.
    Stdio,
    /// MCP streamable HTTP (`http://` or `https://`). `http` and `sse` are accepted aliases.
    #[serde(
        alias = "http",
        alias = "sse",
        alias = "streamable_http",
        alias = "streamableHttp"
    )]
    StreamableHttp,
    /// One JSON-RPC message per WebSocket text frame (`ws://` or `wss://`).
    #[serde(alias = "ws")]
    Websocket,
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TransportKind::Stdio => "stdio",
            TransportKind::StreamableHttp => "streamable-http",
            TransportKind::Websocket => "websocket",
        })
    }
}

/// A command line: `"uvx my-server"`-style strings are not split (no shell); give
/// either a program name with `args`, or the whole argv as a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CommandLine {
    /// The program; arguments come from `args`.
    Program(String),
    /// Program followed by its first arguments.
    Argv(Vec<String>),
}

/// How to authenticate to an HTTP or WebSocket endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Auth {
    /// `Authorization: Bearer <token>`; the token is given inline (usually `${VAR}`)
    /// or read from the environment variable named by `token_env`.
    Bearer {
        /// The token itself.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
        /// Name of an environment variable holding the token.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token_env: Option<String>,
    },
}

/// MCP protocol revision to negotiate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ProtocolChoice {
    /// `initialize` handshake at 2025-11-25 (the default; every server speaks it).
    #[default]
    #[serde(rename = "2025-11-25")]
    V2025_11_25,
    /// `server/discover` at 2026-07-28, falling back to 2025-11-25 for older servers.
    #[serde(rename = "2026-07-28")]
    V2026_07_28,
}

/// One MCP endpoint: a URL or a command, plus how to talk to it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// Name used in logs and errors (the config key when loaded from a file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The wire; inferred from `url` or `command` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<TransportKind>,
    /// `http(s)://…` for streamable HTTP, `ws(s)://…` for WebSocket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Program to start for stdio (no shell is involved).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandLine>,
    /// Arguments after the program.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Extra environment variables for the child (it inherits the rest).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Working directory of the child.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<PathBuf>,
    /// Extra HTTP headers sent with every request (HTTP and WebSocket).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<Auth>,
    /// Default deadline of one call (`"30s"` or seconds); 30 s when absent.
    #[serde(
        default,
        with = "toolmesh_core::duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<Duration>,
    /// Deadline to connect and initialize; 10 s when absent.
    #[serde(
        default,
        with = "toolmesh_core::duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub connect_timeout: Option<Duration>,
    /// Protocol revision to negotiate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol_version: Option<ProtocolChoice>,
}

/// A definition that cannot work, with what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct EndpointError {
    /// The offending key (`url`, `command`, `auth.token_env`, …).
    pub field: &'static str,
    /// What is wrong and how to fix it.
    pub message: String,
}

fn invalid(field: &'static str, message: impl Into<String>) -> EndpointError {
    EndpointError {
        field,
        message: message.into(),
    }
}

impl Endpoint {
    /// Default per-call deadline.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
    /// Default connect + initialize deadline.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

    /// A streamable HTTP or WebSocket endpoint (by scheme).
    pub fn url(url: impl Into<String>) -> Self {
        Self {
            url: Some(url.into()),
            ..Self::default()
        }
    }

    /// A stdio endpoint running `program args…`.
    pub fn stdio(
        program: impl Into<String>,
        args: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            command: Some(CommandLine::Program(program.into())),
            args: args.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }

    /// Sets the display name.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Uses a bearer token.
    pub fn bearer(mut self, token: impl Into<String>) -> Self {
        self.auth = Some(Auth::Bearer {
            token: Some(token.into()),
            token_env: None,
        });
        self
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.insert(name.into(), value.into());
        self
    }

    /// Sets the protocol revision.
    pub fn protocol(mut self, choice: ProtocolChoice) -> Self {
        self.protocol_version = Some(choice);
        self
    }

    /// The wire this endpoint uses, explicit or inferred.
    pub fn transport_kind(&self) -> Result<TransportKind, EndpointError> {
        if let Some(kind) = self.transport {
            return Ok(kind);
        }
        match (&self.url, &self.command) {
            (Some(_), Some(_)) => Err(invalid(
                "url",
                "both `url` and `command` are set; keep `url` for a remote server or `command` for a local process",
            )),
            (None, Some(_)) => Ok(TransportKind::Stdio),
            (Some(url), None) if url.starts_with("ws://") || url.starts_with("wss://") => {
                Ok(TransportKind::Websocket)
            }
            (Some(_), None) => Ok(TransportKind::StreamableHttp),
            (None, None) => Err(invalid(
                "url",
                "missing `url` or `command`: give `url: http://host:port/mcp` for a remote server or `command: [program, args...]` for a local one",
            )),
        }
    }

    /// Checks the definition and returns the wire to use.
    pub fn validate(&self) -> Result<TransportKind, EndpointError> {
        let kind = self.transport_kind()?;
        match kind {
            TransportKind::Stdio => {
                let (program, _) = self.argv()?;
                if program.trim().is_empty() {
                    return Err(invalid("command", "the program name is empty"));
                }
                if self.url.is_some() {
                    return Err(invalid(
                        "url",
                        "a stdio endpoint takes `command`, not `url`",
                    ));
                }
            }
            TransportKind::StreamableHttp | TransportKind::Websocket => {
                let url = self
                    .url
                    .as_deref()
                    .ok_or_else(|| invalid("url", format!("transport `{kind}` needs `url`")))?;
                let schemes: &[&str] = if kind == TransportKind::Websocket {
                    &["ws://", "wss://"]
                } else {
                    &["http://", "https://"]
                };
                if !schemes.iter().any(|s| url.starts_with(s)) {
                    return Err(invalid(
                        "url",
                        format!(
                            "`{url}` does not start with {} as transport `{kind}` needs",
                            schemes.join(" or ")
                        ),
                    ));
                }
                url.parse::<http::Uri>()
                    .map_err(|e| invalid("url", format!("`{url}` is not a valid URL: {e}")))?;
                if self.command.is_some() {
                    return Err(invalid(
                        "command",
                        format!("transport `{kind}` takes `url`, not `command`"),
                    ));
                }
            }
        }
        for (name, value) in &self.headers {
            http::HeaderName::try_from(name.as_str()).map_err(|_| {
                invalid(
                    "headers",
                    format!("`{name}` is not a valid HTTP header name"),
                )
            })?;
            http::HeaderValue::try_from(value.as_str()).map_err(|_| {
                invalid(
                    "headers",
                    format!("the value of header `{name}` has characters HTTP does not allow"),
                )
            })?;
        }
        if kind != TransportKind::Stdio {
            self.bearer_token()?;
        }
        Ok(kind)
    }

    /// Program and arguments of a stdio endpoint.
    pub fn argv(&self) -> Result<(String, Vec<String>), EndpointError> {
        match &self.command {
            Some(CommandLine::Program(p)) => Ok((p.clone(), self.args.clone())),
            Some(CommandLine::Argv(argv)) => {
                let (program, rest) = argv.split_first().ok_or_else(|| {
                    invalid(
                        "command",
                        "the command list is empty; give at least the program",
                    )
                })?;
                Ok((
                    program.clone(),
                    rest.iter().chain(&self.args).cloned().collect(),
                ))
            }
            None => Err(invalid("command", "a stdio endpoint needs `command`")),
        }
    }

    /// The bearer token, resolved from the environment when configured that way.
    pub fn bearer_token(&self) -> Result<Option<String>, EndpointError> {
        match &self.auth {
            None => Ok(None),
            Some(Auth::Bearer {
                token: Some(t),
                token_env: None,
            }) if !t.is_empty() => Ok(Some(t.clone())),
            Some(Auth::Bearer {
                token: None,
                token_env: Some(var),
            }) => match std::env::var(var) {
                Ok(t) if !t.is_empty() => Ok(Some(t)),
                _ => Err(invalid(
                    "auth.token_env",
                    format!(
                        "environment variable `{var}` is not set or empty; export it with the bearer token"
                    ),
                )),
            },
            Some(Auth::Bearer {
                token: Some(_),
                token_env: Some(_),
            }) => Err(invalid(
                "auth",
                "set either `token` or `token_env`, not both",
            )),
            Some(Auth::Bearer { .. }) => Err(invalid(
                "auth.token",
                "bearer auth needs a non-empty `token` (e.g. \"${API_TOKEN}\") or `token_env: API_TOKEN`",
            )),
        }
    }

    /// Per-call deadline.
    pub fn call_timeout(&self) -> Duration {
        self.timeout.unwrap_or(Self::DEFAULT_TIMEOUT)
    }

    /// A short description for errors: the name, else the URL or command.
    pub fn label(&self) -> String {
        let place = match (&self.url, &self.command) {
            (Some(url), _) => url.clone(),
            (None, Some(CommandLine::Program(p))) => format!("stdio: {p}"),
            (None, Some(CommandLine::Argv(argv))) => {
                format!("stdio: {}", argv.first().map(String::as_str).unwrap_or(""))
            }
            (None, None) => "unconfigured endpoint".to_owned(),
        };
        match &self.name {
            Some(name) => format!("server `{name}` ({place})"),
            None => place,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infers_transport_from_url_and_command() {
        assert_eq!(
            Endpoint::url("http://127.0.0.1:1/mcp").validate(),
            Ok(TransportKind::StreamableHttp)
        );
        assert_eq!(
            Endpoint::url("ws://127.0.0.1:1/ws").validate(),
            Ok(TransportKind::Websocket)
        );
        assert_eq!(
            Endpoint::stdio("server", ["--x"]).validate(),
            Ok(TransportKind::Stdio)
        );
        let err = Endpoint::default().validate().unwrap_err();
        assert_eq!(err.field, "url");
        assert!(err.message.contains("missing `url` or `command`"));
    }

    #[test]
    fn rejects_mismatched_scheme_and_bad_headers() {
        let mut e = Endpoint::url("ws://h/ws");
        e.transport = Some(TransportKind::StreamableHttp);
        assert!(
            e.validate()
                .unwrap_err()
                .message
                .contains("http:// or https://")
        );
        let e = Endpoint::url("http://h/mcp").header("bad header", "x");
        assert_eq!(e.validate().unwrap_err().field, "headers");
    }

    #[test]
    fn argv_list_form_prepends_to_args() -> Result<(), EndpointError> {
        let e = Endpoint {
            command: Some(CommandLine::Argv(vec!["prog".into(), "--a".into()])),
            args: vec!["--b".into()],
            ..Endpoint::default()
        };
        assert_eq!(
            e.argv()?,
            ("prog".to_owned(), vec!["--a".to_owned(), "--b".to_owned()])
        );
        Ok(())
    }

    #[test]
    fn token_env_must_exist() {
        let e = Endpoint {
            url: Some("http://h/mcp".into()),
            auth: Some(Auth::Bearer {
                token: None,
                token_env: Some("TOOLMESH_TEST_SURELY_UNSET_VAR".into()),
            }),
            ..Endpoint::default()
        };
        let err = e.validate().unwrap_err();
        assert_eq!(err.field, "auth.token_env");
        assert!(err.message.contains("TOOLMESH_TEST_SURELY_UNSET_VAR"));
    }
}
