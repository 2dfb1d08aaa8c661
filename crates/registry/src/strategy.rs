//! Routing strategies: how one instance is picked among the usable instances of a
//! priority tier, and in which order the others are tried after it.

//!
//! A [`Picker`] orders the [`Candidate`]s of a tier for one call; the caller then
//! [`begin`](LoadStats::begin)s the call on the chosen instance's [`LoadStats`] and holds the
//! returned [`InFlight`] guard until the call ends, which feeds the load (outstanding calls)
//! and latency (EWMA, mean, p99) that the pickers and reports read.

use serde::{Deserialize, Serialize};

mod ewma;
mod load;
mod picker;

pub use load::{InFlight, LoadSnapshot, LoadStats};
pub use picker::{Candidate, Picker};

/// How an instance is picked within a priority tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// In turn.
    #[default]
    RoundRobin,
    /// In proportion to each instance's `weight`.
    Weighted,
    /// The instance with the fewest calls in flight.
    LeastOutstanding,
    /// Uniformly at random.
    Random,
    /// Lowest recent latency (EWMA), by power-of-two-choices.
    Latency,
    /// The instance whose service declares most of the requested capabilities.
    CapabilityMatch,
}
