#![doc = include_str!("../README.md")]

mod config;
mod health;
mod metrics;
mod pool;

pub use config::{
    HealthCheckConfig, HealthCheckMethod, InstanceConfig, PoolConfig, ReconnectConfig,
};
pub use health::{Health, HealthStatus};
pub use metrics::{Counts, PoolSnapshot};
pub use pool::{InstancePool, PoolEvent};
