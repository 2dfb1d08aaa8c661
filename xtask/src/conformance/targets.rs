//! The three things under test: the fixture server, the gateway in front of it, and
//! the client; each run of the suite gets a directory of its own.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use anyhow::bail;

use super::{
    process::Guarded,
    results::{self, Scenario},
};

/// How long a server may take to print where it listens.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound of one run of the server scenarios (about 30, a few seconds each).
const SERVER_SUITE_TIMEOUT: Duration = Duration::from_secs(600);
/// Bound of one client scenario (the suite gives the client 30 s).
const CLIENT_SCENARIO_TIMEOUT: Duration = Duration::from_secs(120);
/// First word of the fixture's READY line (`toolmesh_testkit::fixture::READY_PREFIX`).
const FIXTURE_READY: &str = "TOOLMESH_FIXTURE_READY";
/// What `toolmesh serve` prints once it listens, before the URL.
const GATEWAY_READY: &str = "toolmesh listening on ";
/// Name of the upstream server in the gateway's configuration.
const UPSTREAM: &str = "conf";

/// The client scenarios of the suite that `toolmesh-conformance-client` plays (the
/// `auth/*` ones need an OAuth client, which toolmesh does not have).
pub(crate) const CLIENT_SCENARIOS: &[&str] = &[
    "initialize",
    "tools_call",
    "sse-retry",
    "elicitation-sep1034-client-defaults",
];

/// The suite: Node, its script, and which server scenarios to run.
pub(crate) struct Suite {
    pub(crate) node: PathBuf,
    pub(crate) script: PathBuf,
    /// `active` (the default) or `all` (adds the pending scenarios).
    pub(crate) server_suite: String,
}

impl Suite {
    /// `node <suite> <side> --expected-failures <expected> -o <out>`.
    fn command(&self, side: &str, out: &Path, expected: &Path) -> Command {
        let mut cmd = Command::new(&self.node);
        cmd.arg(&self.script).arg(side);
        cmd.arg("--expected-failures").arg(expected);
        cmd.arg("-o").arg(out);
        cmd
    }

    /// Runs the server scenarios against `url`; results by scenario.
    pub(crate) fn servers(
        &self,
        url: &str,
        dir: &Path,
        expected: &Path,
    ) -> anyhow::Result<BTreeMap<String, Scenario>> {
        let out = dir.join("results");
        let mut cmd = self.command("server", &out, expected);
        cmd.args(["--url", url, "--suite", &self.server_suite]);
        let log = dir.join("suite.log");
        let status = Guarded::spawn("conformance suite (server)", &mut cmd, &log)?
            .wait(SERVER_SUITE_TIMEOUT)?;
        let found = results::read(&out, "server-")?;
        if found.is_empty() {
            bail!(
                "the suite ({status}) wrote no results; see {}",
                log.display()
            );
        }
        Ok(found)
    }

    /// Runs every client scenario with `client` as the client under test.
    pub(crate) fn clients(
        &self,
        client: &Path,
        dir: &Path,
        expected: &Path,
    ) -> anyhow::Result<BTreeMap<String, Scenario>> {
        let out = dir.join("results");
        for scenario in CLIENT_SCENARIOS {
            let mut cmd = self.command("client", &out, expected);
            cmd.args(["--scenario", scenario, "--command"]).arg(client);
            let log = dir.join(format!("{scenario}.log"));
            let name = format!("conformance suite (client {scenario})");
            // A hung scenario is reported as missing below; the others still run.
            if let Err(e) = Guarded::spawn(&name, &mut cmd, &log)?.wait(CLIENT_SCENARIO_TIMEOUT) {
                eprintln!("xtask: {e:#}");
            }
        }
        let mut found = results::read(&out, "")?;
        for scenario in CLIENT_SCENARIOS {
            found
                .entry((*scenario).to_owned())
                .or_insert_with(|| Scenario {
                    failed: true,
                    problems: vec!["no result: the scenario did not finish".to_owned()],
                });
        }
        Ok(found)
    }
}

/// A running server and where it serves MCP.
pub(crate) struct Server {
    pub(crate) url: String,
    _process: Guarded,
}

/// Starts `toolmesh-conformance-server` on a free loopback port.
pub(crate) fn start_fixture(bin: &Path, dir: &Path) -> anyhow::Result<Server> {
    let log = dir.join("server.log");
    let mut cmd = Command::new(bin);
    cmd.args(["--port", "0"]);
    let mut process = Guarded::spawn_piped("toolmesh-conformance-server", &mut cmd, &log)?;
    let url = process.await_line(STARTUP_TIMEOUT, &log, |line| {
        line.strip_prefix(FIXTURE_READY)?
            .split_whitespace()
            .find_map(|field| field.strip_prefix("http="))
            .map(str::to_owned)
    })?;
    Ok(Server {
        url,
        _process: process,
    })
}

/// Starts `toolmesh serve` in front of the fixture at `upstream`, serving its tools and
/// prompts under their own names (`prefix: false`), as the suite calls them.
pub(crate) fn start_gateway(toolmesh: &Path, upstream: &str, dir: &Path) -> anyhow::Result<Server> {
    let config = dir.join("toolmesh.yaml");
    fs::write(&config, gateway_config(upstream))?;
    let log = dir.join("gateway.log");
    let mut cmd = Command::new(toolmesh);
    cmd.arg("serve")
        .arg("--config")
        .arg(&config)
        .args(["--listen", "127.0.0.1:0", "--no-watch"]);
    let mut process = Guarded::spawn_piped("toolmesh serve", &mut cmd, &log)?;
    let url = process.await_line(STARTUP_TIMEOUT, &log, |line| {
        line.strip_prefix(GATEWAY_READY)
            .map(|url| url.trim().to_owned())
    })?;
    Ok(Server {
        url,
        _process: process,
    })
}

fn gateway_config(upstream: &str) -> String {
    format!(
        "# Written by `cargo xtask conformance`: the gateway in front of the conformance fixture.\n\
         servers:\n  {UPSTREAM}:\n    url: \"{upstream}\"\n    prefix: false\n"
    )
}

#[cfg(test)]
mod tests {
    use super::gateway_config;

    #[test]
    fn the_gateway_config_names_one_unprefixed_upstream() {
        let yaml = gateway_config("http://127.0.0.1:1/mcp");
        assert!(yaml.ends_with(
            "servers:\n  conf:\n    url: \"http://127.0.0.1:1/mcp\"\n    prefix: false\n"
        ));
    }
}
