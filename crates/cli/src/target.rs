//! Where one-shot commands find tools: a configuration started here, the native tools,
//! or a running gateway (any MCP server) reached over HTTP.

use std::{path::PathBuf, time::Duration};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use toolmesh::{Config, ConfigLoader, Endpoint, Mesh, Registry, Session};

use crate::{cli::TargetArgs, native};

/// An opened source of tools.
pub(crate) enum Target {
    /// A configuration, started in this process.
    Mesh(Mesh),
    /// The native tools only.
    Native(Registry),
    /// A remote MCP server.
    Remote(Session),
}

impl Target {
    /// Opens what `args` name; the native tools when they name nothing.
    pub(crate) async fn open(args: &TargetArgs) -> anyhow::Result<Self> {
        if let Some(url) = &args.url {
            let mut endpoint = Endpoint::url(url.clone());
            if let Some(token) = &args.bearer {
                endpoint = endpoint.bearer(token.clone());
            }
            let spinner = spinner(format!("connecting to {url}"));
            let session = Session::connect(&endpoint).await;
            spinner.finish_and_clear();
            // The error names the URL and what failed there.
            return Ok(Self::Remote(session?));
        }
        if args.config.is_empty() {
            return Ok(Self::Native(native::native_registry().await?));
        }
        Ok(Self::Mesh(start_mesh(&args.config).await?))
    }

    /// The registry, for a local target.
    pub(crate) fn registry(&self) -> Option<&Registry> {
        match self {
            Self::Mesh(mesh) => Some(mesh.registry()),
            Self::Native(registry) => Some(registry),
            Self::Remote(_) => None,
        }
    }

    /// Closes what was opened: upstream servers are drained and stopped.
    pub(crate) async fn close(self) {
        match self {
            Self::Mesh(mesh) => mesh.shutdown().await,
            Self::Native(registry) => registry.shutdown().await,
            Self::Remote(session) => session.close(Duration::from_secs(2)).await,
        }
    }
}

/// What agents and workflows run on: the configured servers, started here, and the
/// native tools under their own names (`calculator`).
pub(crate) struct AgentTools {
    mesh: Mesh,
    pub(crate) registry: Registry,
}

impl AgentTools {
    /// Starts `config`'s servers (with a spinner); the mesh adds the native tools (every
    /// agent's and workflow's, under their own names) and the exposed agents.
    pub(crate) async fn start(config: &Config) -> anyhow::Result<Self> {
        let spinner = (!config.servers.is_empty())
            .then(|| spinner(format!("starting {} MCP server(s)", config.servers.len())));
        let mesh = Mesh::start(config).await;
        if let Some(spinner) = spinner {
            spinner.finish_and_clear();
        }
        let mesh = mesh?;
        let registry = mesh.registry().clone();
        Ok(Self { mesh, registry })
    }

    /// Stops the servers.
    pub(crate) async fn close(self) {
        self.mesh.shutdown().await;
    }
}

/// Services that cannot serve (no healthy instance) and why, one line each:
/// `fixture: fixture-1 (http://…/mcp): connection refused`.
pub(crate) fn down_services(registry: &Registry) -> Vec<(String, String)> {
    let instances = registry.instance_reports();
    registry
        .service_reports()
        .into_iter()
        .filter(|s| s.status == "down")
        .map(|s| {
            let reasons: Vec<String> = instances
                .iter()
                .filter(|i| i.service == s.service)
                .map(|i| format!("{} ({}): {}", i.instance, i.endpoint, i.reason))
                .collect();
            (
                s.namespace,
                format!("{}: {}", s.service, reasons.join("; ")),
            )
        })
        .collect()
}

/// Loads and starts a configuration, with a spinner on stderr while its servers connect.
pub(crate) async fn start_mesh(files: &[PathBuf]) -> anyhow::Result<Mesh> {
    let config = loader(files).load()?;
    let spinner = spinner(format!(
        "starting {} MCP server{}",
        config.servers.len(),
        if config.servers.len() == 1 { "" } else { "s" }
    ));
    let mesh = Mesh::start(&config).await;
    spinner.finish_and_clear();
    Ok(mesh?)
}

/// The loader of `files`, merged in order.
pub(crate) fn loader(files: &[PathBuf]) -> ConfigLoader {
    files
        .iter()
        .fold(ConfigLoader::new(), |loader, file| loader.file(file))
}

/// A spinner on stderr; hidden when stderr is not a terminal.
pub(crate) fn spinner(message: String) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(message);
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}
