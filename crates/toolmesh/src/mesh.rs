//! [`Mesh`]: a configuration brought to life — its services registered with what the
//! discovery sources add (the shared registry in etcd), and optionally its files followed so
//! that edits apply without dropping in-flight calls.

mod compose;
mod sources;

use std::{panic::AssertUnwindSafe, sync::Arc};

use futures::FutureExt as _;
use tokio::{sync::watch, task::JoinHandle};
use toolmesh_registry::{
    Registry, RegistryError, RegistryOptions, ServiceSpec, discovery::etcd::EtcdError,
};

pub use sources::SourceViews;

use crate::{Config, ConfigError, ConfigLoader, ConfigWatcher, config::NATIVE_SERVICE};
use compose::Composer;
use sources::Sources;

/// Why a mesh could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A service could not be registered.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// An exposed agent could not be built.
    #[error(transparent)]
    Agent(#[from] toolmesh_agent::AgentError),
    /// An exposed workflow could not be built.
    #[error(transparent)]
    Workflow(#[from] toolmesh_agent::workflow::WorkflowError),
    /// The shared registry could not be used.
    #[error(transparent)]
    Etcd(#[from] EtcdError),
    /// `registry.mcp_registry` cannot work.
    #[error(transparent)]
    McpRegistry(#[from] toolmesh_registry::discovery::mcp_registry::McpRegistryError),
}

/// The outcome of the latest reload, for status pages and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadStatus {
    /// Configurations applied since start (the initial one is 0).
    pub generation: u64,
    /// Why the latest edit was not applied (the previous configuration stays in force).
    pub last_error: Option<String>,
}

/// The services of a configuration, running.
pub struct Mesh {
    registry: Registry,
    status: watch::Receiver<ReloadStatus>,
    follower: Option<JoinHandle<()>>,
    composer: Arc<Composer>,
    views: SourceViews,
    discovery: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Mesh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mesh")
            .field("registry", &self.registry)
            .field("reloading", &self.follower.is_some())
            .finish()
    }
}

impl Mesh {
    /// Registers every service of `config` and what its discovery sources hold (loaded
    /// before the first call is routed), then follows the sources.
    pub async fn start(config: &Config) -> Result<Self, Error> {
        let mut sources = Sources::start(config).await?;
        let servers = config.services()?;
        let specs =
            toolmesh_registry::discovery::merge(servers.clone(), &sources.views.discovered());
        let registry = Registry::from_specs(specs, RegistryOptions::default()).await?;
        config.apply_gateway(&registry)?;
        let mut configured = servers.clone();
        for spec in agent_services(config, &registry)? {
            registry.add_service(spec.clone()).await?;
            configured.push(spec);
        }
        // Exposed workflows last: their steps may call the exposed agents.
        if let Some(spec) = config.exposed_workflows(&registry)? {
            registry.add_service(spec.clone()).await?;
            configured.push(spec);
        }
        sources.publish(&config.registry, &servers).await?;
        let views = sources.views.clone();
        let composer = Arc::new(Composer::new(registry.clone(), configured, sources));
        let discovery =
            (!views.is_empty()).then(|| tokio::spawn(follow(views.clone(), composer.clone())));
        Ok(Self {
            registry,
            status: watch::channel(ReloadStatus::default()).1,
            follower: None,
            composer,
            views,
            discovery,
        })
    }

    /// The discovery sources' views, for status pages.
    pub fn sources(&self) -> SourceViews {
        self.views.clone()
    }

    /// Loads the configuration, starts it, and follows its files: each valid edit is
    /// applied as a diff (added, changed and removed services; in-flight calls finish);
    /// an invalid edit is reported in [`reload_status`](Self::reload_status) and ignored.
    pub async fn start_watching(loader: ConfigLoader) -> Result<Self, Error> {
        // Watch before the first load, so an edit in between is not missed.
        let mut watcher = ConfigWatcher::new(loader.clone())?;
        let mut mesh = Self::start(&loader.load()?).await?;
        let (tx, rx) = watch::channel(ReloadStatus::default());
        let composer = mesh.composer.clone();
        mesh.status = rx;
        mesh.follower = Some(tokio::spawn(async move {
            loop {
                let outcome = reload_once(&mut watcher, &composer).await;
                tx.send_modify(|status| match outcome {
                    Ok(()) => {
                        status.generation += 1;
                        status.last_error = None;
                    }
                    Err(e) => {
                        tracing::warn!("configuration not reloaded: {e}");
                        status.last_error = Some(e);
                    }
                });
            }
        }));
        Ok(mesh)
    }

    /// The registry: catalog, calls, reports.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Follows reloads (see [`start_watching`](Self::start_watching)).
    pub fn reload_status(&self) -> watch::Receiver<ReloadStatus> {
        self.status.clone()
    }

    /// Stops following the files and sources, withdraws what it published, drains and
    /// closes every service.
    pub async fn shutdown(mut self) {
        for task in [self.follower.take(), self.discovery.take()]
            .into_iter()
            .flatten()
        {
            task.abort();
        }
        self.composer.close().await;
        self.registry.shutdown().await;
    }
}

/// The services beside the servers: the native tools every agent and workflow has (under
/// their own names), and the agents with `expose:` over `registry`'s tools.
fn agent_services(config: &Config, registry: &Registry) -> Result<Vec<ServiceSpec>, Error> {
    let mut specs = Vec::new();
    let runs_agents = !config.agents.is_empty() || !config.workflows.is_empty();
    if runs_agents && !config.servers.contains_key(NATIVE_SERVICE) {
        specs.push(config.agent_native_service()?);
    }
    specs.extend(config.exposed_agents(registry)?);
    Ok(specs)
}

/// Applies every change of the sources' views (a burst of changes is one apply: the views
/// hold only the latest state). A failed apply keeps the previous services.
async fn follow(mut views: SourceViews, composer: Arc<Composer>) {
    loop {
        views.changed().await;
        if let Err(e) = composer.recompose().await {
            tracing::warn!("discovered services not applied (the previous ones stay): {e}");
        }
    }
}

/// Waits for the next edit and applies it. A panic while loading or applying is caught
/// and reported like any other error: the follower must outlive every bad edit.
async fn reload_once(watcher: &mut ConfigWatcher, composer: &Composer) -> Result<(), String> {
    let attempt = async {
        let config = watcher.next().await.map_err(|e| e.to_string())?;
        let registry = composer.registry();
        let servers = config.services().map_err(|e| e.to_string())?;
        config.apply_gateway(registry).map_err(|e| e.to_string())?;
        let mut specs = servers.clone();
        specs.extend(agent_services(&config, registry).map_err(|e| e.to_string())?);
        specs.extend(
            config
                .exposed_workflows(registry)
                .map_err(|e| e.to_string())?,
        );
        composer
            .reconfigure(specs, &config.registry, &servers)
            .await
            .map_err(|e| e.to_string())
    };
    match AssertUnwindSafe(attempt).catch_unwind().await {
        Ok(outcome) => outcome,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".to_owned());
            tracing::error!("applying the configuration panicked: {what}");
            Err(format!(
                "applying the configuration failed unexpectedly ({what}); the previous configuration stays in force: fix the last edit, or report this as a bug"
            ))
        }
    }
}

impl Drop for Mesh {
    fn drop(&mut self) {
        for task in [self.follower.take(), self.discovery.take()]
            .into_iter()
            .flatten()
        {
            task.abort();
        }
    }
}
