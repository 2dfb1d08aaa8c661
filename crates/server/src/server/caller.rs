//! Who is calling. The HTTP edge's authentication puts a [`Caller`] in the request's
//! extensions; stdio serving has the local user's (from [`ServerOptions`](crate::ServerOptions)).
//! Every request reads it, so the router's policy sees the caller's roles.

use std::sync::Arc;

use toolmesh_core::CallContext;

/// An authenticated caller: who (for limits and audit) and their roles (for the policy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// API key id, JWT subject, or the local user.
    pub principal: Arc<str>,
    /// The roles granted to it.
    pub roles: Arc<[String]>,
}

impl Caller {
    /// A caller `principal` with `roles`.
    pub fn new(principal: impl Into<Arc<str>>, roles: impl IntoIterator<Item = String>) -> Self {
        Self {
            principal: principal.into(),
            roles: roles.into_iter().collect(),
        }
    }

    /// The caller an HTTP request carries (rmcp keeps the request's parts, with their
    /// extensions, in the MCP request's extensions).
    pub(crate) fn of_request(extensions: &rmcp::model::Extensions) -> Option<Self> {
        extensions
            .get::<axum::http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Caller>())
            .or_else(|| extensions.get::<Caller>())
            .cloned()
    }

    /// Makes `ctx` a call of this caller.
    pub(crate) fn apply(&self, ctx: &mut CallContext) {
        ctx.principal = Some(self.principal.clone());
        ctx.roles = Some(self.roles.clone());
    }
}
