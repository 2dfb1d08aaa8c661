//! What the suite wrote (`<out>/<prefix><scenario>-<timestamp>/checks.json`), judged
//! as the suite judges it, against the expected failures of a target.

use std::{collections::BTreeMap, fs, path::Path};

use anyhow::Context;
use serde::Deserialize;
use serde_json::Value;

/// Length of the suite's result-directory timestamp, e.g. `2026-11-21T23-55-28-093Z`.
const TIMESTAMP_LEN: usize = 24;

/// The expected-failures file: scenario names per side, as the suite reads it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExpectedFailures {
    #[serde(default)]
    pub(crate) server: Vec<String>,
    #[serde(default)]
    pub(crate) client: Vec<String>,
}

impl ExpectedFailures {
    pub(crate) fn load(path: &Path) -> anyhow::Result<Self> {
        let text =
            fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        // An empty file (or one of comments only) expects nothing.
        let parsed: Option<Self> = serde_yaml::from_str(&text).with_context(|| {
            format!("{} is not `server: [..]` / `client: [..]`", path.display())
        })?;
        Ok(parsed.unwrap_or_default())
    }
}

/// How one scenario went on one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    Pass,
    /// Failed, and listed as expected to.
    ExpectedFail,
    /// Failed without being expected to.
    Fail,
    /// Passed although listed as expected to fail: the list is out of date.
    Stale,
}

impl Outcome {
    pub(crate) fn judge(failed: bool, expected: bool) -> Self {
        match (failed, expected) {
            (false, false) => Self::Pass,
            (true, true) => Self::ExpectedFail,
            (true, false) => Self::Fail,
            (false, true) => Self::Stale,
        }
    }

    /// Whether the run must fail because of this outcome.
    pub(crate) fn is_unexpected(&self) -> bool {
        matches!(self, Self::Fail | Self::Stale)
    }

    pub(crate) fn label(&self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::ExpectedFail => "fail (expected)",
            Self::Fail => "FAIL",
            Self::Stale => "pass (listed as expected failure)",
        }
    }
}

/// One scenario's verdict and the messages of its failed checks.
#[derive(Debug, Clone)]
pub(crate) struct Scenario {
    pub(crate) failed: bool,
    pub(crate) problems: Vec<String>,
}

/// Every scenario found under `out` whose directory starts with `prefix`, by name.
/// A scenario fails when any check is `FAILURE` or `WARNING` (the suite's baseline rule).
pub(crate) fn read(out: &Path, prefix: &str) -> anyhow::Result<BTreeMap<String, Scenario>> {
    let mut scenarios = BTreeMap::new();
    let Ok(entries) = fs::read_dir(out) else {
        return Ok(scenarios);
    };
    for entry in entries {
        let dir = entry?.path();
        let Some(name) = dir
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| scenario_name(n, prefix))
        else {
            continue;
        };
        let file = dir.join("checks.json");
        let text =
            fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
        let checks: Vec<Value> = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a list of checks", file.display()))?;
        scenarios.insert(name.to_owned(), judge(&checks));
    }
    Ok(scenarios)
}

/// `tools-list` from `server-tools-list-2026-11-21T23-55-28-093Z` (prefix `server-`).
fn scenario_name<'a>(dir: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = dir.strip_prefix(prefix)?;
    let cut = rest.len().checked_sub(TIMESTAMP_LEN + 1)?;
    (rest.get(cut..=cut) == Some("-")).then(|| &rest[..cut])
}

fn judge(checks: &[Value]) -> Scenario {
    let mut problems = Vec::new();
    for check in checks {
        let status = check["status"].as_str().unwrap_or_default();
        if status == "FAILURE" || status == "WARNING" {
            let what = check["errorMessage"]
                .as_str()
                .or_else(|| check["description"].as_str())
                .unwrap_or("(no message)");
            let id = check["id"].as_str().unwrap_or("?");
            problems.push(format!("{status} {id}: {what}"));
        }
    }
    Scenario {
        failed: !problems.is_empty(),
        problems,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{Outcome, judge, scenario_name};

    #[test]
    fn names_come_from_result_directories() {
        let dir = "server-tools-call-simple-text-2026-11-21T23-55-28-093Z";
        assert_eq!(
            scenario_name(dir, "server-"),
            Some("tools-call-simple-text")
        );
        assert_eq!(
            scenario_name("sse-retry-2026-11-21T23-55-28-093Z", ""),
            Some("sse-retry")
        );
        assert_eq!(scenario_name("server-x", "server-"), None);
        assert_eq!(
            scenario_name("other-2026-11-21T23-55-28-093Z", "server-"),
            None
        );
    }

    #[test]
    fn warnings_fail_a_scenario_and_info_does_not() {
        let ok = judge(&[
            json!({ "id": "a", "status": "SUCCESS" }),
            json!({ "id": "b", "status": "INFO" }),
        ]);
        assert!(!ok.failed);
        let warned = judge(&[json!({ "id": "c", "status": "WARNING", "errorMessage": "late" })]);
        assert!(warned.failed);
        assert_eq!(warned.problems, ["WARNING c: late"]);
        assert_eq!(Outcome::judge(false, true), Outcome::Stale);
        assert!(Outcome::judge(true, false).is_unexpected());
        assert!(!Outcome::judge(true, true).is_unexpected());
    }
}
