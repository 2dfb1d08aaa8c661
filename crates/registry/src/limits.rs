//! Rate limits by caller and tool (`gateway.rate_limits`): each rule names the callers
//! (`principal` glob) and the tools (`tool` glob) it covers and how often they may call.
//! With `principal` alone, each matching caller has one budget for every tool; with both,
//! one per (caller, tool); with `tool` alone, each matching tool has one budget that all
//! callers share.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use toolmesh_core::{CallContext, CallError};
use toolmesh_resilience::{RateLimitConfig, RateLimiter};

use crate::name_glob::NameGlob;

/// One rate limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateRule {
    /// Callers it covers (glob over the principal; each has its own budget); absent:
    /// a budget per tool, shared by every caller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// Tools it covers (glob over the catalog name or the tool's own name); absent: all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// Sustained calls per second.
    pub per_second: u32,
    /// Calls at once after being idle (default `per_second`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
}

/// A rule that cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
#[error("rate limit {index}: {reason}")]
pub struct RateRuleError {
    /// Its position in the list.
    pub index: usize,
    /// What to fix.
    pub reason: String,
}

struct Compiled {
    principal: Option<NameGlob>,
    tool: Option<NameGlob>,
    limiter: RateLimiter,
    label: Arc<str>,
}

/// The rate limits, compiled; checked by the router before a call is routed.
pub struct RateLimits {
    rules: Vec<Compiled>,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits")
            .field("rules", &self.rules.len())
            .finish()
    }
}

impl RateLimits {
    /// Compiles `rules`.
    ///
    /// # Errors
    ///
    /// [`RateRuleError`] for a glob that does not parse or a rate of zero.
    pub fn new(rules: &[RateRule]) -> Result<Self, RateRuleError> {
        let compiled = rules
            .iter()
            .enumerate()
            .map(|(index, rule)| {
                let pattern = |glob: &Option<String>| {
                    glob.as_deref()
                        .map(NameGlob::new)
                        .transpose()
                        .map_err(|e| RateRuleError {
                            index,
                            reason: format!(
                                "`{}` is not a valid glob: {e}",
                                glob.as_deref().unwrap_or_default()
                            ),
                        })
                };
                let config = RateLimitConfig {
                    per_second: rule.per_second,
                    burst: rule.burst.unwrap_or(rule.per_second),
                };
                config
                    .validate()
                    .map_err(|reason| RateRuleError { index, reason })?;
                Ok(Compiled {
                    principal: pattern(&rule.principal)?,
                    tool: pattern(&rule.tool)?,
                    limiter: RateLimiter::new(config),
                    label: format!(
                        "principal={} tool={}",
                        rule.principal.as_deref().unwrap_or("-"),
                        rule.tool.as_deref().unwrap_or("*")
                    )
                    .into(),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { rules: compiled })
    }

    /// Takes one call of `rendered` (own name `bare`) under `ctx` from every rule that
    /// covers it; the first exhausted one refuses it, saying when to retry.
    pub(crate) fn check(
        &self,
        ctx: &CallContext,
        rendered: &str,
        bare: &str,
    ) -> Result<(), CallError> {
        for rule in &self.rules {
            if rule
                .tool
                .as_ref()
                .is_some_and(|p| !p.matches(rendered) && !p.matches(bare))
            {
                continue;
            }
            let key = match (&rule.principal, &ctx.principal) {
                (Some(pattern), Some(principal)) if pattern.matches(principal) => {
                    match rule.tool {
                        // A budget per (caller, tool).
                        Some(_) => format!("{principal} {rendered}"),
                        // A budget per caller, over every tool.
                        None => principal.to_string(),
                    }
                }
                (Some(_), _) => continue,
                (None, _) => rendered.to_owned(),
            };
            if let Err(error) = rule.limiter.check(&key) {
                metrics::counter!("toolmesh_rate_limited_total", "rule" => rule.label.to_string())
                    .increment(1);
                return Err(match error {
                    CallError::RateLimited { retry_in, .. } => CallError::RateLimited {
                        key: format!("{} ({key})", rule.label).into(),
                        retry_in,
                    },
                    other => other,
                });
            }
        }
        Ok(())
    }
}
