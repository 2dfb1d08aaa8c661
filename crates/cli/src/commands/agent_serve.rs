//! `toolmesh agent serve`: one configured agent as an MCP server.

use std::process::ExitCode;

use tokio_util::sync::CancellationToken;
use toolmesh::{
    Config, Mesh,
    agent::{ExposeAsMcpServer, ExposeOptions},
};
use toolmesh_server::{GatewayState, HttpOptions, HttpServer};

use super::{
    serve::{
        announce, authenticator, bind_error, exit_on_second_signal, install_metrics,
        refuse_unauthenticated, stdio_identity,
    },
    stop_signal,
};
use crate::cli::AgentServeArgs;

pub(crate) async fn run(args: AgentServeArgs) -> anyhow::Result<ExitCode> {
    let config = args.choice.config()?;
    if !args.edge.stdio {
        refuse_unauthenticated(
            args.edge.listen,
            args.edge.allow_unauthenticated,
            Some(&config),
        )?;
    }
    let mesh = Mesh::start(&config).await?;
    let served = serve(&args, &config, &mesh).await;
    mesh.shutdown().await;
    served.map(|()| ExitCode::SUCCESS)
}

async fn serve(args: &AgentServeArgs, config: &Config, mesh: &Mesh) -> anyhow::Result<()> {
    let agent = config.agent(args.choice.agent.as_deref(), mesh.registry().clone())?;
    let options = match config
        .agents
        .get(agent.name())
        .and_then(|a| a.expose.as_ref())
    {
        Some(expose) => expose.options(),
        None => ExposeOptions::new().capability(
            "run",
            format!(
                "Run a task with agent `{}` and get its answer.",
                agent.name()
            ),
        ),
    };
    let server = agent.expose_as_mcp_server(options).await?;
    // Calls of the agent itself are checked, limited and audited like its tools' calls.
    config.apply_gateway(server.catalog_server().registry())?;
    let shutdown = CancellationToken::new();
    if args.edge.stdio {
        let server = server.with_default_caller(stdio_identity(Some(config)).caller());
        let served = tokio::select! {
            served = server.serve_stdio(shutdown.clone()) => served,
            () = stop_signal() => Ok(()),
        };
        server.catalog_server().drain(args.drain_timeout).await;
        return Ok(served?);
    }
    let metrics = install_metrics()?;
    let listener = HttpServer::bind(args.edge.listen)
        .await
        .map_err(|e| bind_error(args.edge.listen, e))?;
    let url = listener.mcp_url_for(config.gateway.tls.is_some());
    let mut http = HttpOptions::default().drain_timeout(args.drain_timeout);
    if let Some(tls) = &config.gateway.tls {
        http = http.tls(tls.clone());
    }
    for host in &args.edge.allow_host {
        http = http.allow_host(host.clone());
    }
    if let Some(auth) = authenticator(Some(config), &url, args.edge.listen)? {
        http = http.authenticate(auth);
    }
    let state = GatewayState::ready(server.catalog_server().clone(), http).with_metrics(metrics);
    announce(&url, server.catalog_server().registry())?;
    let mut serving = tokio::spawn(listener.serve(state, shutdown.clone()));
    let ended = tokio::select! {
        () = stop_signal() => None,
        ended = &mut serving => Some(ended),
    };
    let ended = match ended {
        Some(ended) => ended,
        None => {
            exit_on_second_signal();
            shutdown.cancel();
            serving.await
        }
    };
    Ok(ended??)
}
