#![doc = include_str!("../README.md")]

pub mod balancer;
pub mod bench;
pub mod conformance;
pub mod etcd;
pub mod fixture;
mod harness;
pub mod llm;
mod options;
pub mod peers;
pub mod process;
pub mod replay;

pub use etcd::{EtcdServer, EtcdServerTls};
pub use harness::{FixtureServer, fixture_bin, stdio_command, try_fixture_bin};
pub use llm::{Reply, ScriptedCall, ScriptedLlm, ScriptedLlmBuilder};
pub use options::FixtureOptions;
