//! Capability-based discovery: which services can do something, by their declared
//! capabilities and by what their tools are called and say they do.

use std::sync::Arc;

use serde::Serialize;
use toolmesh_core::{ServerId, Tool};

use crate::Registry;

/// A service that matches requested capabilities.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceMatch {
    /// The service.
    pub service: ServerId,
    /// Requested capabilities it matched.
    pub matched: Vec<String>,
    /// Declared capabilities count double; tool names and descriptions once.
    pub score: u32,
    /// Catalog names of its tools.
    pub tools: Vec<String>,
}

impl Registry {
    /// Services able to do any of `capabilities`, best match first.
    pub fn discover(&self, capabilities: &[&str]) -> Vec<ServiceMatch> {
        let state = self.inner.state.load();
        let mut matches: Vec<ServiceMatch> = state
            .services
            .iter()
            .filter(|s| s.is_enabled())
            .filter_map(|s| {
                let tools = s.tools();
                let mut score = 0;
                let mut matched = Vec::new();
                for want in capabilities {
                    let points = match_score(
                        &s.spec.capabilities,
                        tools.as_deref().map(Vec::as_slice),
                        want,
                    );
                    if points > 0 {
                        score += points;
                        matched.push((*want).to_owned());
                    }
                }
                (score > 0).then(|| ServiceMatch {
                    service: s.spec.id.clone(),
                    matched,
                    score,
                    tools: state
                        .catalog
                        .entries()
                        .iter()
                        .filter(|e| e.service == s.spec.id)
                        .map(|e| e.rendered.clone())
                        .collect(),
                })
            })
            .collect();
        matches.sort_by(|a, b| {
            b.score
                .cmp(&a.score)
                .then_with(|| a.service.cmp(&b.service))
        });
        matches
    }

    /// The catalog names of every tool of the services matching `capabilities`: the set
    /// to expose to an agent that needs those capabilities.
    pub fn enable_tools(&self, capabilities: &[&str]) -> Vec<String> {
        self.discover(capabilities)
            .into_iter()
            .flat_map(|m| m.tools)
            .collect()
    }
}

/// How well one requested capability is met: 2 when `declared` names it, plus 1 when
/// a tool's name or description mentions it (case-insensitive); 0 for neither.
pub(crate) fn match_score<'a>(
    declared: impl IntoIterator<Item = &'a String>,
    tools: Option<&[Arc<Tool>]>,
    want: &str,
) -> u32 {
    let is_declared = declared.into_iter().any(|c| c.eq_ignore_ascii_case(want));
    let want_lc = want.to_ascii_lowercase();
    let offered = tools.is_some_and(|t| {
        t.iter().any(|tool| {
            tool.name.to_ascii_lowercase().contains(&want_lc)
                || tool
                    .description
                    .as_ref()
                    .is_some_and(|d| d.to_ascii_lowercase().contains(&want_lc))
        })
    });
    u32::from(is_declared) * 2 + u32::from(offered)
}
