//! What to call and under which constraints.

use std::{sync::Arc, time::Duration};

use rmcp::model::JsonObject;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::{CallError, Relay, ToolName};

/// One tool invocation: a qualified name and its JSON arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    /// The tool to run.
    pub name: ToolName,
    /// Arguments matching the tool's input schema; `None` sends none.
    pub arguments: Option<JsonObject>,
}

impl ToolCall {
    /// A call without arguments.
    pub fn new(name: ToolName) -> Self {
        Self {
            name,
            arguments: None,
        }
    }

    /// Sets the arguments; they must be a JSON object.
    pub fn with_arguments(mut self, arguments: serde_json::Value) -> Result<Self, CallError> {
        match arguments {
            serde_json::Value::Object(map) => {
                self.arguments = Some(map);
                Ok(self)
            }
            serde_json::Value::Null => {
                self.arguments = None;
                Ok(self)
            }
            other => Err(CallError::InvalidRequest {
                reason: format!(
                    "arguments of `{}` must be a JSON object like {{\"key\": \"value\"}}, got {}",
                    self.name,
                    json_type(&other)
                ),
            }),
        }
    }
}

fn json_type(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// The constraints a call runs under; cheap to clone.
#[derive(Debug, Clone)]
pub struct CallContext {
    /// The call must have an answer by this instant, or fail with a timeout.
    pub deadline: Instant,
    /// Who the call is made for (user, API key, agent); used by limits and audit.
    pub principal: Option<Arc<str>>,
    /// The principal's roles, as authentication established them; the router's policy
    /// check grants tools by role. `None`: no authenticated caller (a local program).
    pub roles: Option<Arc<[String]>>,
    /// Cancelling it abandons the call; upstream servers are told. `None` (the default)
    /// leaves only the deadline, which costs nothing per call.
    pub cancel: Option<CancellationToken>,
    /// Overrides the tool's idempotency annotation for retry decisions.
    pub idempotent: Option<bool>,
    /// Receives the server's progress, logs and requests made while the call runs;
    /// `None` drops notifications and refuses requests.
    pub relay: Option<Arc<dyn Relay>>,
    /// What the call needs of the instance serving it (`gpu`, `eu`); the
    /// `capability_match` strategy prefers instances declaring or offering most of them.
    pub capabilities: Option<Arc<[String]>>,
    /// How many agent or workflow runs this call is nested in (0 for a client's call); it
    /// travels to remote servers as `_meta["io.toolmesh/depth"]` so agents calling each
    /// other cannot loop forever.
    pub depth: u32,
    /// The id of the request that asked for the call (the JSON-RPC id at the edge), for
    /// the audit log; kept as the id itself (cloning it allocates nothing).
    pub request_id: Option<rmcp::model::RequestId>,
}

/// The `_meta` key carrying [`CallContext::depth`] across MCP hops.
pub const DEPTH_META_KEY: &str = "io.toolmesh/depth";

impl CallContext {
    /// The default per-call budget when nothing else is configured.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

    /// A context whose deadline is `timeout` from now.
    pub fn with_timeout(timeout: Duration) -> Self {
        Self::with_deadline(crate::duration::deadline_after(timeout))
    }

    /// A context with an absolute deadline.
    pub fn with_deadline(deadline: Instant) -> Self {
        Self {
            deadline,
            principal: None,
            roles: None,
            cancel: None,
            idempotent: None,
            relay: None,
            capabilities: None,
            depth: 0,
            request_id: None,
        }
    }

    /// Sets the principal.
    pub fn principal(mut self, principal: impl Into<Arc<str>>) -> Self {
        self.principal = Some(principal.into());
        self
    }

    /// Marks the call as safe (or unsafe) to repeat, whatever the tool says.
    pub fn idempotent(mut self, idempotent: bool) -> Self {
        self.idempotent = Some(idempotent);
        self
    }

    /// Uses `token` for cancellation.
    pub fn cancel_with(mut self, token: CancellationToken) -> Self {
        self.cancel = Some(token);
        self
    }

    /// Asks for an instance with `capabilities` (under the `capability_match` strategy).
    pub fn capabilities<S: Into<String>>(
        mut self,
        capabilities: impl IntoIterator<Item = S>,
    ) -> Self {
        let wanted: Arc<[String]> = capabilities.into_iter().map(Into::into).collect();
        self.capabilities = (!wanted.is_empty()).then_some(wanted);
        self
    }

    /// The capabilities the call asks for; empty when none.
    pub fn requested_capabilities(&self) -> &[String] {
        self.capabilities.as_deref().unwrap_or_default()
    }

    /// Sends the server's messages about this call to `relay`.
    pub fn relay_to(mut self, relay: Arc<dyn Relay>) -> Self {
        self.relay = Some(relay);
        self
    }

    /// The context of a call made on behalf of this one, one level deeper: same deadline
    /// and principal, a child cancellation token (cancelling this call cancels it), no
    /// relay and no capabilities of its own.
    pub fn nested(&self) -> Self {
        let mut ctx = Self::with_deadline(self.deadline);
        ctx.principal = self.principal.clone();
        ctx.roles = self.roles.clone();
        ctx.request_id = self.request_id.clone();
        ctx.cancel = Some(
            self.cancel
                .as_ref()
                .map_or_else(CancellationToken::new, CancellationToken::child_token),
        );
        ctx.depth = self.depth.saturating_add(1);
        ctx
    }

    /// Resolves when the call is cancelled; never, without a token.
    pub async fn cancelled(&self) {
        match &self.cancel {
            Some(token) => token.cancelled().await,
            None => std::future::pending().await,
        }
    }

    /// Time left until the deadline (zero once it has passed).
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// The earlier of the current deadline and `timeout` from now.
    pub fn capped(&self, timeout: Duration) -> Self {
        let mut ctx = self.clone();
        ctx.deadline = ctx.deadline.min(crate::duration::deadline_after(timeout));
        ctx
    }
}

impl Default for CallContext {
    fn default() -> Self {
        Self::with_timeout(Self::DEFAULT_TIMEOUT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_must_be_an_object() -> Result<(), CallError> {
        let name = ToolName::new("ns", "tool")?;
        let err = ToolCall::new(name.clone())
            .with_arguments(serde_json::json!([1, 2]))
            .unwrap_err();
        assert!(err.to_string().contains("an array"), "{err}");
        let call = ToolCall::new(name).with_arguments(serde_json::json!({"a": 1}))?;
        assert_eq!(call.arguments.map(|a| a.len()), Some(1));
        Ok(())
    }

    #[test]
    fn nested_calls_are_one_level_deeper_and_cancelled_with_their_parent() {
        let parent = CallContext::default().cancel_with(CancellationToken::new());
        let child = parent.nested();
        assert_eq!((child.depth, child.nested().depth), (1, 2));
        assert_eq!(child.deadline, parent.deadline);
        assert!(child.relay.is_none());
        parent.cancel.as_ref().map(CancellationToken::cancel);
        assert!(
            child
                .cancel
                .as_ref()
                .is_some_and(CancellationToken::is_cancelled)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn capped_keeps_the_earlier_deadline() {
        let ctx = CallContext::with_timeout(Duration::from_secs(10));
        assert_eq!(ctx.capped(Duration::from_secs(60)).deadline, ctx.deadline);
        let short = ctx.capped(Duration::from_secs(1));
        assert!(short.deadline < ctx.deadline);
        tokio::time::advance(Duration::from_secs(20)).await;
        assert_eq!(ctx.remaining(), Duration::ZERO);
    }
}
