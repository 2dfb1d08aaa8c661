//! `toolmesh serve`: the gateway.

use std::{io::ErrorKind, io::Write, net::SocketAddr, time::Duration};

use anyhow::Context;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio_util::sync::CancellationToken;
use toolmesh::{
    Config, ConfigLoader, Mesh, Registry,
    config::{AuthConfig, DEFAULT_STDIO_ROLE},
};
use toolmesh_server::{
    CatalogServer, GatewayState, HttpOptions, HttpServer, ReloadSnapshot, ServerError,
    ServerOptions,
    auth::{Authenticator, Identity},
};

use super::stop_signal;
use crate::{cli::ServeArgs, failure::Usage, native, target};

/// What serves the catalog: a configuration, or the native tools.
enum Services {
    Mesh(Mesh),
    Native(Registry),
}

impl Services {
    /// Starts the configuration (following its files when `watch`), or the native tools
    /// when there is none.
    async fn start(loader: Option<ConfigLoader>, watch: bool) -> anyhow::Result<Self> {
        let Some(loader) = loader else {
            return Ok(Self::Native(native::native_registry().await?));
        };
        let mesh = if watch {
            Mesh::start_watching(loader).await?
        } else {
            Mesh::start(&loader.load()?).await?
        };
        Ok(Self::Mesh(mesh))
    }

    fn registry(&self) -> &Registry {
        match self {
            Self::Mesh(mesh) => mesh.registry(),
            Self::Native(registry) => registry,
        }
    }

    /// Drains and closes every upstream server, within `deadline`.
    async fn shutdown(self, deadline: Duration) {
        let closing = async {
            match self {
                Self::Mesh(mesh) => mesh.shutdown().await,
                Self::Native(registry) => registry.shutdown().await,
            }
        };
        if tokio::time::timeout(deadline, closing).await.is_err() {
            tracing::warn!("upstream servers not closed within {deadline:?}; exiting anyway");
        }
    }
}

pub(crate) async fn run(args: ServeArgs) -> anyhow::Result<()> {
    // A bad configuration stops here, before anything listens.
    let loader = (!args.config.is_empty()).then(|| target::loader(&args.config));
    let config = match &loader {
        Some(loader) => {
            let config = loader.load()?;
            tracing::info!(
                servers = config.servers.len(),
                "configuration loaded from {}",
                args.config
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            Some(config)
        }
        None => None,
    };
    if !args.edge.stdio {
        refuse_unauthenticated(
            args.edge.listen,
            args.edge.allow_unauthenticated,
            config.as_ref(),
        )?;
    }
    let metrics = install_metrics()?;
    let options = ServerOptions::default().call_timeout(args.call_timeout);
    if args.edge.stdio {
        let identity = stdio_identity(config.as_ref());
        return serve_stdio(&args, loader, options, identity).await;
    }

    let listener = HttpServer::bind(args.edge.listen)
        .await
        .map_err(|e| bind_error(args.edge.listen, e))?;
    let tls = config.as_ref().and_then(|c| c.gateway.tls.clone());
    let url = listener.mcp_url_for(tls.is_some());
    // `--no-fast-path` keeps both legs on rmcp: the inbound edge and the upstream call.
    toolmesh::layers::transport::set_direct_calls(!args.no_fast_path);
    let mut http = HttpOptions::default()
        .drain_timeout(args.drain_timeout)
        .stateless(args.stateless)
        .fast_path(!args.no_fast_path);
    if let Some(tls) = tls {
        http = http.tls(tls);
    }
    for host in &args.edge.allow_host {
        http = http.allow_host(host.clone());
    }
    if let Some(auth) = authenticator(config.as_ref(), &url, args.edge.listen)? {
        http = http.authenticate(auth);
    }
    let state = GatewayState::new(http).with_metrics(metrics);
    let shutdown = CancellationToken::new();
    let mut serving = tokio::spawn(listener.serve(state.clone(), shutdown.clone()));
    tracing::info!("bound {url}; starting the services");

    let services = tokio::select! {
        started = Services::start(loader, args.watching()) => match started {
            Ok(services) => services,
            Err(e) => {
                shutdown.cancel();
                let _ = serving.await;
                return Err(e);
            }
        },
        () = stop_signal() => {
            shutdown.cancel();
            let _ = serving.await;
            return Ok(());
        }
    };
    if let Services::Mesh(mesh) = &services {
        let reload = mesh.reload_status();
        let sources = mesh.sources();
        state.set_reload_source(move || {
            let status = reload.borrow();
            ReloadSnapshot {
                generation: status.generation,
                last_error: status.last_error.clone(),
                discovery: sources.status(),
            }
        });
    }
    let registry = services.registry().clone();
    state.set_ready(CatalogServer::with_options(registry.clone(), options))?;
    announce(&url, &registry)?;
    crate::memory::release_startup_text();

    let served = tokio::select! {
        () = stop_signal() => None,
        ended = &mut serving => Some(ended),
    };
    let served = match served {
        Some(ended) => ended,
        None => {
            tracing::info!("stopping: no new connections; draining in-flight calls");
            exit_on_second_signal();
            shutdown.cancel();
            serving.await
        }
    };
    services.shutdown(args.drain_timeout).await;
    tracing::info!("stopped");
    served.context("the HTTP server task panicked")??;
    Ok(())
}

/// Without `gateway.auth` a non-loopback address would let anyone who reaches it call
/// every tool with the servers' credentials.
pub(super) fn refuse_unauthenticated(
    listen: SocketAddr,
    allowed: bool,
    config: Option<&Config>,
) -> Result<(), Usage> {
    let authenticated = config.is_some_and(|c| c.gateway.auth.is_some());
    if listen.ip().is_loopback() || allowed || authenticated {
        return Ok(());
    }
    Err(Usage(format!(
        "refusing to listen on {}: without `gateway.auth` in the configuration the gateway \
         does not authenticate its clients, so anyone who reaches this address could call \
         every tool with the credentials configured for its servers; add `gateway.auth` \
         (API keys: `toolmesh auth hash-key`; or JWTs), listen on loopback (127.0.0.1, the \
         default), or pass --allow-unauthenticated on a network where every client may do \
         that",
        listen
    )))
}

/// The HTTP edge's authentication from `gateway.auth`; the gateway's own URL is the
/// resource tokens must name unless the configuration says otherwise.
pub(super) fn authenticator(
    config: Option<&Config>,
    url: &str,
    listen: SocketAddr,
) -> anyhow::Result<Option<Authenticator>> {
    let Some(config) = config else {
        return Ok(None);
    };
    let Some(settings) = config.auth_settings(url)? else {
        return Ok(None);
    };
    let named = config
        .gateway
        .auth
        .as_ref()
        .is_some_and(|auth| auth.resource.is_some());
    if !named && !listen.ip().is_loopback() {
        tracing::warn!(
            "gateway.auth.resource is not set: JWTs must name {url} as their audience and \
             clients are pointed to it; set it to the URL clients use"
        );
    }
    let auth = Authenticator::new(settings).map_err(|e| Usage(e.to_string()))?;
    tracing::info!(metadata = auth.metadata_url(), "clients must authenticate");
    Ok(Some(auth))
}

/// Who calls over stdio: the local user, with `gateway.auth.stdio_role`.
pub(super) fn stdio_identity(config: Option<&Config>) -> Identity {
    config.and_then(|c| c.gateway.auth.as_ref()).map_or_else(
        || Identity::local_user(DEFAULT_STDIO_ROLE),
        AuthConfig::stdio_identity,
    )
}

/// A bind failure with the hint that fits what the operating system said.
pub(super) fn bind_error(addr: SocketAddr, error: ServerError) -> anyhow::Error {
    let ServerError::Bind { source, .. } = &error else {
        return error.into();
    };
    let hint = match source.kind() {
        ErrorKind::AddrInUse => {
            "another process is using the port; stop it or pick another port with --listen"
        }
        ErrorKind::AddrNotAvailable => {
            "this machine has no such address; listen on 127.0.0.1, or on one of its own \
             addresses (0.0.0.0 for all of them)"
        }
        ErrorKind::PermissionDenied => {
            "ports below 1024 need privileges; pick a port above 1023 with --listen"
        }
        _ => "check the address given to --listen",
    };
    anyhow::anyhow!("cannot listen on {addr}: {source}; {hint}")
}

/// Prints the line scripts and tests wait for, then logs what is served.
pub(super) fn announce(url: &str, registry: &Registry) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "toolmesh listening on {url}")?;
    stdout.flush()?;
    let report = registry.health_summary();
    tracing::info!(
        services = report.services,
        instances = report.instances,
        healthy = report.instances_healthy,
        tools = report.tools,
        "serving {url}"
    );
    Ok(())
}

async fn serve_stdio(
    args: &ServeArgs,
    loader: Option<ConfigLoader>,
    options: ServerOptions,
    identity: Identity,
) -> anyhow::Result<()> {
    let services = Services::start(loader, args.watching()).await?;
    let mut options = options;
    options.default_caller = Some(identity.caller());
    let server = CatalogServer::with_options(services.registry().clone(), options);
    let shutdown = CancellationToken::new();
    let outcome = tokio::select! {
        served = toolmesh_server::serve_stdio(server.clone(), shutdown.clone()) => served,
        () = stop_signal() => {
            shutdown.cancel();
            Ok(())
        }
    };
    server.drain(args.drain_timeout).await;
    services.shutdown(args.drain_timeout).await;
    Ok(outcome?)
}

/// Installs the Prometheus recorder every `metrics` call in the libraries reports to,
/// and keeps its histograms trimmed.
pub(super) fn install_metrics() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .install_recorder()
        .context("cannot install the Prometheus metrics recorder")?;
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            upkeep.run_upkeep();
        }
    });
    Ok(handle)
}

/// A second Ctrl-C (or SIGTERM) while draining exits at once.
pub(super) fn exit_on_second_signal() {
    tokio::spawn(async {
        stop_signal().await;
        eprintln!("toolmesh: stopping now (second signal)");
        std::process::exit(130);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_public_address_needs_auth_or_the_flag() {
        let public: SocketAddr = ([0, 0, 0, 0], 8383).into();
        let mut config = Config::default();
        assert!(refuse_unauthenticated(public, false, None).is_err());
        assert!(refuse_unauthenticated(public, false, Some(&config)).is_err());
        assert!(refuse_unauthenticated(public, true, Some(&config)).is_ok());
        assert!(refuse_unauthenticated(HttpOptions::DEFAULT_LISTEN, false, None).is_ok());
        config.gateway.auth = Some(AuthConfig::default());
        assert!(refuse_unauthenticated(public, false, Some(&config)).is_ok());
    }
}
