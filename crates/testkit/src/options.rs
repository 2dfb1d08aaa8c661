//! [`FixtureOptions`]: the behaviour knobs of the `toolmesh-fixture` server.

use std::time::Duration;

/// Behaviour knobs shared by every transport of the fixture server.
///
/// The same struct is the fixture binary's command line (it derives
/// [`clap::Args`]) and the input of [`crate::FixtureServer::start`], so the
/// two cannot drift apart: [`FixtureOptions::args`] renders exactly the flags
/// the binary parses back into an equal value.
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct FixtureOptions {
    /// Instance id echoed as `"instance"` in every tool result's structured content.
    #[arg(long = "instance-id", value_name = "ID", default_value = "fixture")]
    pub instance_id: String,

    /// Every `tools/call` sleeps this many milliseconds before answering.
    #[arg(long = "latency-ms", value_name = "N", default_value_t = 0)]
    pub latency_ms: u64,

    /// Probability (0.0..=1.0) that a `tools/call` fails with an injected
    /// JSON-RPC internal error (-32603).
    #[arg(long = "fail-rate", value_name = "P", default_value_t = 0.0, value_parser = parse_probability)]
    pub fail_rate: f64,

    /// Exit the process abruptly (status 3, no reply) when the Nth
    /// `tools/call` arrives, counted from 1 across all sessions.
    #[arg(long = "crash-after", value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub crash_after: Option<u64>,

    /// Reject HTTP and WebSocket requests lacking `Authorization: Bearer TOKEN` with 401.
    #[arg(long = "require-bearer", value_name = "TOKEN")]
    pub require_bearer: Option<String>,

    /// After N `tools/call` calls have completed, add the tool `extra` and send
    /// `notifications/tools/list_changed` to the connected peers.
    #[arg(long = "tools-changed-after", value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub tools_changed_after: Option<u64>,
}

impl Default for FixtureOptions {
    fn default() -> Self {
        Self {
            instance_id: "fixture".to_owned(),
            latency_ms: 0,
            fail_rate: 0.0,
            crash_after: None,
            require_bearer: None,
            tools_changed_after: None,
        }
    }
}

impl FixtureOptions {
    /// Options with every knob at its default (instance id `"fixture"`, no faults).
    pub fn new() -> Self {
        Self::default()
    }

    /// Set the instance id reported in every tool result.
    pub fn instance_id(mut self, id: impl Into<String>) -> Self {
        self.instance_id = id.into();
        self
    }

    /// Delay every `tools/call` by `latency` (millisecond resolution).
    pub fn latency(mut self, latency: Duration) -> Self {
        self.latency_ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
        self
    }

    /// Delay every `tools/call` by `ms` milliseconds.
    pub fn latency_ms(mut self, ms: u64) -> Self {
        self.latency_ms = ms;
        self
    }

    /// Fail each `tools/call` with probability `p` (clamped to 0.0..=1.0).
    pub fn fail_rate(mut self, p: f64) -> Self {
        self.fail_rate = if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) };
        self
    }

    /// Crash the process when the `n`th `tools/call` arrives (`n` >= 1).
    pub fn crash_after(mut self, n: u64) -> Self {
        self.crash_after = Some(n.max(1));
        self
    }

    /// Require `Authorization: Bearer <token>` on HTTP and WebSocket requests.
    pub fn require_bearer(mut self, token: impl Into<String>) -> Self {
        self.require_bearer = Some(token.into());
        self
    }

    /// Add the `extra` tool and notify peers after `n` completed calls (`n` >= 1).
    pub fn tools_changed_after(mut self, n: u64) -> Self {
        self.tools_changed_after = Some(n.max(1));
        self
    }

    /// The command-line flags that make the fixture binary behave as `self`.
    ///
    /// Only non-default knobs are rendered, except `--instance-id`, which is
    /// always present so the process is easy to recognise in `ps`.
    pub fn args(&self) -> Vec<String> {
        let mut args = vec!["--instance-id".to_owned(), self.instance_id.clone()];
        if self.latency_ms != 0 {
            args.push("--latency-ms".to_owned());
            args.push(self.latency_ms.to_string());
        }
        if self.fail_rate != 0.0 {
            args.push("--fail-rate".to_owned());
            args.push(self.fail_rate.to_string());
        }
        if let Some(n) = self.crash_after {
            args.push("--crash-after".to_owned());
            args.push(n.to_string());
        }
        if let Some(token) = &self.require_bearer {
            args.push("--require-bearer".to_owned());
            args.push(token.clone());
        }
        if let Some(n) = self.tools_changed_after {
            args.push("--tools-changed-after".to_owned());
            args.push(n.to_string());
        }
        args
    }
}

fn parse_probability(s: &str) -> Result<f64, String> {
    let p: f64 = s
        .parse()
        .map_err(|e| format!("`{s}` is not a number: {e}"))?;
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(format!("`{s}` is not within 0.0..=1.0"))
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::FixtureOptions;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        opts: FixtureOptions,
    }

    fn roundtrip(opts: &FixtureOptions) -> FixtureOptions {
        let argv = std::iter::once("x".to_owned()).chain(opts.args());
        match Wrapper::try_parse_from(argv) {
            Ok(w) => w.opts,
            Err(e) => panic!("args did not parse back: {e}"),
        }
    }

    #[test]
    fn default_roundtrips() {
        let opts = FixtureOptions::default();
        assert_eq!(roundtrip(&opts), opts);
    }

    #[test]
    fn every_knob_roundtrips() {
        let opts = FixtureOptions::new()
            .instance_id("b-2")
            .latency_ms(25)
            .fail_rate(0.25)
            .crash_after(3)
            .require_bearer("s3cret")
            .tools_changed_after(2);
        assert_eq!(roundtrip(&opts), opts);
    }

    #[test]
    fn fail_rate_out_of_range_is_rejected() {
        assert!(Wrapper::try_parse_from(["x", "--fail-rate", "1.5"]).is_err());
        assert!(Wrapper::try_parse_from(["x", "--fail-rate", "nan"]).is_err());
        assert!(Wrapper::try_parse_from(["x", "--crash-after", "0"]).is_err());
    }
}
