//! One module per subcommand.

mod agent;
mod agent_serve;
mod auth;
mod call;
mod config;
mod register;
mod serve;
mod status;
mod tools;
mod workflow;

use std::process::ExitCode;

use crate::cli::{AgentCommand, AuthCommand, Command, ConfigCommand, WorkflowCommand};

/// Runs `command`; the exit status on success (a tool error is a success of the
/// command but exits 1).
pub(crate) async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve(args) => serve::run(args).await.map(|()| ExitCode::SUCCESS),
        Command::Tools(args) => tools::run(args).await,
        Command::Call(args) => call::run(args).await,
        Command::Status(args) => status::run(args).await,
        Command::Config(ConfigCommand::Check { files, format }) => {
            config::check(&files, format).map(|()| ExitCode::SUCCESS)
        }
        Command::Agent(AgentCommand::Run(args)) => agent::run(args).await,
        Command::Agent(AgentCommand::Chat(args)) => agent::chat(args).await,
        Command::Agent(AgentCommand::Serve(args)) => agent_serve::run(args).await,
        Command::Workflow(WorkflowCommand::Run(args)) => workflow::run(args).await,
        Command::Auth(AuthCommand::HashKey(args)) => {
            auth::hash_key(&args).map(|()| ExitCode::SUCCESS)
        }
        Command::Register(args) => register::run(args).await,
    }
}

/// Resolves when the process is asked to stop (SIGINT or SIGTERM).
pub(crate) async fn stop_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
