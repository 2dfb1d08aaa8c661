//! The `toolmesh-conformance-server` command line.

use std::net::IpAddr;

/// Command line of the `toolmesh-conformance-server` binary.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "toolmesh-conformance-server",
    about = "The fixtures the MCP conformance suite's server scenarios call, over streamable HTTP",
    after_help = "Once listening it prints one line on stdout:\n  \
                  TOOLMESH_FIXTURE_READY http=http://127.0.0.1:PORT/mcp ws=- pid=PID"
)]
pub struct ServerCli {
    /// Port to listen on; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    pub port: u16,

    /// Address to listen on. The suite's DNS-rebinding scenario needs a loopback URL.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::ServerCli;

    #[test]
    fn defaults_to_a_free_loopback_port() -> anyhow::Result<()> {
        let cli = ServerCli::try_parse_from(["toolmesh-conformance-server"])?;
        assert_eq!(cli.port, 0);
        assert!(cli.host.is_loopback());
        assert!(ServerCli::try_parse_from(["x", "--port", "70000"]).is_err());
        Ok(())
    }
}
