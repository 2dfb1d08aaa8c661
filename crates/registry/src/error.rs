//! Registry errors: what could not be added, changed or found.

use toolmesh_core::ServerId;

/// Why a registry change was refused.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// A service of that name exists.
    #[error("service `{0}` is already registered; remove it first or pick another name")]
    DuplicateService(ServerId),
    /// No service of that name.
    #[error("no service named `{0}`")]
    UnknownService(ServerId),
    /// No instance of that id.
    #[error("no instance `{instance}` in service `{service}`")]
    UnknownInstance {
        /// The service.
        service: ServerId,
        /// The instance asked for.
        instance: String,
    },
    /// The spec cannot work.
    #[error("service `{service}`: {reason}")]
    InvalidSpec {
        /// The service.
        service: ServerId,
        /// What to fix.
        reason: String,
    },
}
