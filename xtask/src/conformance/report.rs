//! The summary: scenario × target → outcome, as markdown for the terminal and
//! `summary.md`, plus what went wrong where it was not expected to.

use std::{collections::BTreeMap, fmt::Write};

use super::results::{ExpectedFailures, Outcome, Scenario};

type Results = anyhow::Result<BTreeMap<String, Scenario>>;

/// Results of one run of every target.
pub(crate) struct Report {
    expected: ExpectedFailures,
    expected_gateway: ExpectedFailures,
    fixture: Option<Results>,
    gateway: Option<Results>,
    client: Option<Results>,
}

/// One target's outcomes, or why it could not run.
struct Column {
    name: &'static str,
    outcomes: Result<BTreeMap<String, (Outcome, Vec<String>)>, String>,
}

impl Report {
    pub(crate) fn new(expected: ExpectedFailures, expected_gateway: ExpectedFailures) -> Self {
        Self {
            expected,
            expected_gateway,
            fixture: None,
            gateway: None,
            client: None,
        }
    }

    pub(crate) fn fixture(&mut self, results: Results) {
        self.fixture = Some(results);
    }

    pub(crate) fn gateway(&mut self, results: Results) {
        self.gateway = Some(results);
    }

    pub(crate) fn client(&mut self, results: Results) {
        self.client = Some(results);
    }

    fn columns(&self) -> [Column; 3] {
        [
            column("fixture", self.fixture.as_ref(), &self.expected.server),
            column(
                "gateway",
                self.gateway.as_ref(),
                &self.expected_gateway.server,
            ),
            column("client", self.client.as_ref(), &self.expected.client),
        ]
    }

    /// Whether any target could not run, failed unexpectedly or passed a listed failure.
    pub(crate) fn unexpected(&self) -> bool {
        self.columns().iter().any(|c| match &c.outcomes {
            Err(_) => true,
            Ok(outcomes) => outcomes.values().any(|(o, _)| o.is_unexpected()),
        })
    }

    pub(crate) fn render(&self) -> String {
        let [fixture, gateway, client] = self.columns();
        let mut out =
            String::from("# MCP conformance (@modelcontextprotocol/conformance 0.1.16)\n\n");
        out.push_str("## Server scenarios\n\n");
        table(&mut out, &[&fixture, &gateway]);
        out.push_str("\n## Client scenarios\n\n");
        table(&mut out, &[&client]);
        let mut problems = String::new();
        for c in [&fixture, &gateway, &client] {
            match &c.outcomes {
                Err(e) => {
                    let _ = writeln!(problems, "- {}: could not run: {e}", c.name);
                }
                Ok(outcomes) => {
                    for (scenario, (outcome, messages)) in outcomes {
                        if outcome.is_unexpected() {
                            let why = if messages.is_empty() {
                                "passes: remove it from the expected failures".to_owned()
                            } else {
                                messages.join("; ")
                            };
                            let _ = writeln!(problems, "- {} / {scenario}: {why}", c.name);
                        }
                    }
                }
            }
        }
        if !problems.is_empty() {
            out.push_str("\n## Unexpected\n\n");
            out.push_str(&problems);
        }
        out
    }
}

fn column(name: &'static str, results: Option<&Results>, expected: &[String]) -> Column {
    let outcomes = match results {
        None => Err("not run".to_owned()),
        Some(Err(e)) => Err(format!("{e:#}")),
        Some(Ok(found)) => Ok(found
            .iter()
            .map(|(scenario, result)| {
                let listed = expected.iter().any(|e| e == scenario);
                let outcome = Outcome::judge(result.failed, listed);
                (scenario.clone(), (outcome, result.problems.clone()))
            })
            .collect()),
    };
    Column { name, outcomes }
}

/// A markdown table: one row per scenario any column has, one column per target.
fn table(out: &mut String, columns: &[&Column]) {
    let mut scenarios: Vec<&String> = columns
        .iter()
        .filter_map(|c| c.outcomes.as_ref().ok())
        .flat_map(|o| o.keys())
        .collect();
    scenarios.sort();
    scenarios.dedup();
    let _ = write!(out, "| scenario |");
    for c in columns {
        let _ = write!(out, " {} |", c.name);
    }
    let _ = write!(out, "\n|---|");
    for _ in columns {
        out.push_str("---|");
    }
    out.push('\n');
    for scenario in scenarios {
        let _ = write!(out, "| {scenario} |");
        for c in columns {
            let cell = match &c.outcomes {
                Err(_) => "not run",
                Ok(outcomes) => outcomes.get(scenario).map_or("—", |(o, _)| o.label()),
            };
            let _ = write!(out, " {cell} |");
        }
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::{ExpectedFailures, Report, Scenario};

    fn scenario(failed: bool) -> Scenario {
        Scenario {
            failed,
            problems: if failed {
                vec!["FAILURE x: y".to_owned()]
            } else {
                vec![]
            },
        }
    }

    #[test]
    fn expected_failures_pass_and_others_do_not() {
        let gateway_expected = ExpectedFailures {
            server: vec!["b".to_owned()],
            client: vec![],
        };
        let mut report = Report::new(ExpectedFailures::default(), gateway_expected);
        report.fixture(Ok(BTreeMap::from([
            ("a".to_owned(), scenario(false)),
            ("b".to_owned(), scenario(false)),
        ])));
        report.gateway(Ok(BTreeMap::from([
            ("a".to_owned(), scenario(false)),
            ("b".to_owned(), scenario(true)),
        ])));
        report.client(Ok(BTreeMap::from([(
            "initialize".to_owned(),
            scenario(false),
        )])));
        assert!(!report.unexpected());
        let text = report.render();
        assert!(text.contains("| b | pass | fail (expected) |"), "{text}");

        report.gateway(Ok(BTreeMap::from([("a".to_owned(), scenario(true))])));
        assert!(report.unexpected());
        assert!(report.render().contains("- gateway / a: FAILURE x: y"));
    }
}
