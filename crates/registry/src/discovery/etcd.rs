//! The distributed registry in etcd: instances registered under a key prefix with a lease
//! (gone everywhere when their registrar stops renewing it), and gateways that load the
//! prefix and follow it from the loaded revision on.
//!
//! Layout: `<prefix>/services/<service>/instances/<id>` → [`MemberRecord`] as JSON.

mod follow;
mod options;
mod record;
mod registration;

pub use follow::EtcdMembership;
pub use options::{EtcdOptions, EtcdTls};
pub use record::MemberRecord;
pub use registration::{Member, Registration, RegistrationState};

/// Why etcd could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EtcdError {
    /// The settings are wrong.
    #[error("registry.etcd: {0}")]
    Invalid(String),
    /// etcd did not answer.
    #[error(
        "etcd at {endpoints} is unreachable: {reason}; is it running and are the endpoints right (registry.etcd.endpoints)?"
    )]
    Unreachable {
        /// The endpoints tried.
        endpoints: String,
        /// What failed.
        reason: String,
    },
    /// etcd answered and refused: wrong credentials, or a user without access to the prefix.
    #[error(
        "etcd at {endpoints} refused the request: {reason}; check registry.etcd.username and password (and that the user may read and write the prefix)"
    )]
    Refused {
        /// The endpoints tried.
        endpoints: String,
        /// What etcd said.
        reason: String,
    },
}

impl EtcdError {
    /// A failed request to etcd at `endpoints`, told apart by what etcd said.
    pub(crate) fn request(endpoints: String, reason: &dyn std::fmt::Display) -> Self {
        let reason = reason.to_string();
        if reason.contains("authentication failed") || reason.contains("permission denied") {
            Self::Refused { endpoints, reason }
        } else {
            Self::Unreachable { endpoints, reason }
        }
    }
}
