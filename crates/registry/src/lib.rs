#![doc = include_str!("../README.md")]

mod anomaly;
mod arguments;
mod audit;
mod catalog;
pub mod discovery;
mod error;
mod events;
mod limits;
mod name_glob;
mod policy;
mod registry;
mod report;
mod router;
mod spec;
mod strategy;

pub use anomaly::Anomaly;
pub use arguments::InvalidArguments;
pub use audit::{ArgumentsRecord, Audit, AuditConfig};
pub use catalog::{Catalog, CatalogEntry, CatalogProblem, PromptEntry, ResourceEntry};
pub use discovery::ServiceMatch;
pub use error::RegistryError;
pub use events::MeshEvent;
pub use limits::{RateLimits, RateRule, RateRuleError};
pub use policy::{Policy, PolicyError, RoleGrant};
pub use registry::{Registry, RegistryOptions};
pub use report::{HealthSummary, InstanceReport, MeshReport, ServiceReport};
pub use router::{CallMeta, FailedAttempt, NATIVE_INSTANCE, RouteDecision, Routed};
pub use spec::{InstanceSpec, NativeBackend, ServiceSpec, ToolPolicy};
pub use strategy::{Candidate, InFlight, LoadSnapshot, LoadStats, Picker, Strategy};
