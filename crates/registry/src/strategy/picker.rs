//! The picker: orders the candidate instances of one priority tier for one call.

use std::cmp::{Ordering as CmpOrdering, Reverse};
use std::sync::atomic::{AtomicUsize, Ordering};

use rand::Rng;
use rand::seq::SliceRandom;

use super::Strategy;
use super::load::LoadStats;

/// One candidate instance as a picker sees it (all of one priority tier).
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    /// Relative share of calls under [`Strategy::Weighted`]; 0 = only when all are 0.
    pub weight: u32,
    /// The instance's live load and latency.
    pub load: &'a LoadStats,
    /// How many of the requested capabilities the instance's service declares
    /// (for [`Strategy::CapabilityMatch`]).
    pub capability_score: u32,
}

/// Orders candidates for one call. Synchronous and cheap (one pass plus a sort of the tier;
/// atomics and the thread-local RNG, no lock); shared across calls (`Send + Sync`).
///
/// | strategy | first (the pick) | then (failover order) |
/// |---|---|---|
/// | `RoundRobin` | call *i* → candidate *i* mod *n* | the rotation continues |
/// | `Weighted` | random, in proportion to `weight` | weighted random without replacement; weight 0 last, shuffled |
/// | `LeastOutstanding` | fewest calls in flight | ascending outstanding; ties rotate |
/// | `Random` | uniform | uniform shuffle |
/// | `Latency` | better of two choices by EWMA × (outstanding + 1) | ascending by that score |
/// | `CapabilityMatch` | highest `capability_score` | descending score, then fewest outstanding; ties rotate |
///
/// One picker may serve several candidate lists (every priority tier of a service, the
/// subsets of instances offering different tools): the rotation counter and the latency
/// strategy's remembered winner are kept per list, in the [`LoadStats`] of the list's
/// *first* candidate (its anchor), not in the picker. So each list rotates exactly on its
/// own, provided the caller passes the instances of a tier in a stable order. When the
/// anchor changes (the first instance became unusable), the rotation simply continues
/// from the new anchor's counter. Different lists with the same first instance share its
/// counter, so each of them rotates only approximately (a strictly alternating pattern of
/// two such lists of two could even pin each to one instance); the remembered latency
/// winner is a hint that is only used when it is among the candidates.
#[derive(Debug)]
pub struct Picker {
    strategy: Strategy,
}

/// Picker state of one candidate list, kept in the anchor's [`LoadStats`].
#[derive(Debug)]
pub(super) struct TierState {
    /// Orders so far: drives round-robin and the rotation of ties.
    turn: AtomicUsize,
    /// Address of the [`LoadStats`] of the last winner under `Latency`, or `NO_LEADER`.
    leader: AtomicUsize,
}

/// No remembered winner (latency strategy).
const NO_LEADER: usize = 0;

impl Default for TierState {
    fn default() -> Self {
        Self {
            turn: AtomicUsize::new(0),
            leader: AtomicUsize::new(NO_LEADER),
        }
    }
}

impl TierState {
    fn next_turn(&self) -> usize {
        // Wraps after usize::MAX orders; one uneven step then, harmless.
        self.turn.fetch_add(1, Ordering::Relaxed)
    }
}

/// Identity of an instance's stats (never `NO_LEADER`: references are not null).
fn address(load: &LoadStats) -> usize {
    std::ptr::from_ref(load).addr()
}

impl Picker {
    /// A picker for `strategy`.
    pub fn new(strategy: Strategy) -> Self {
        Self { strategy }
    }

    /// The strategy this picker follows.
    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// A permutation of `0..candidates.len()`: the first is the pick, the rest the failover
    /// order. Empty for no candidates, `[0]` for one.
    pub fn order(&self, candidates: &[Candidate<'_>]) -> Vec<usize> {
        let tier = match candidates {
            [] => return Vec::new(),
            [_] => return vec![0],
            [anchor, ..] => &anchor.load.tier,
        };
        match self.strategy {
            Strategy::RoundRobin => round_robin(tier, candidates.len()),
            Strategy::Weighted => weighted(candidates),
            Strategy::LeastOutstanding => least_outstanding(tier, candidates),
            Strategy::Random => random(candidates.len()),
            Strategy::Latency => latency(tier, candidates),
            Strategy::CapabilityMatch => capability_match(tier, candidates),
        }
    }
}

fn round_robin(tier: &TierState, n: usize) -> Vec<usize> {
    let start = tier.next_turn() % n;
    (0..n).map(|k| (start + k) % n).collect()
}

fn least_outstanding(tier: &TierState, candidates: &[Candidate<'_>]) -> Vec<usize> {
    // Read each counter once: keys must not change while sorting.
    let keys: Vec<usize> = candidates.iter().map(|c| c.load.outstanding()).collect();
    sorted_with_rotated_ties(&keys, tier.next_turn())
}

fn capability_match(tier: &TierState, candidates: &[Candidate<'_>]) -> Vec<usize> {
    let keys: Vec<(Reverse<u32>, usize)> = candidates
        .iter()
        .map(|c| (Reverse(c.capability_score), c.load.outstanding()))
        .collect();
    sorted_with_rotated_ties(&keys, tier.next_turn())
}

/// Power of two choices with memory: compare two distinct candidates, the previous winner
/// (when it is still among the candidates) and a random other one (else two random ones),
/// and pick the one with the lower [`latency_score`]. Plain P2C over three candidates sends
/// a third of the calls to the slower two whatever the latencies; remembering the winner
/// keeps the fast instance picked while every call still samples one challenger, so a
/// winner that became slower or more loaded is displaced at once. Equal scores are settled
/// by a coin flip so equal instances share the load.
fn latency(tier: &TierState, candidates: &[Candidate<'_>]) -> Vec<usize> {
    let n = candidates.len();
    let scores: Vec<(u128, usize)> = candidates.iter().map(|c| latency_score(c.load)).collect();
    let mut rng = rand::rng();

    let leader = tier.leader.load(Ordering::Relaxed);
    let first = candidates
        .iter()
        .position(|c| address(c.load) == leader)
        .unwrap_or_else(|| rng.random_range(0..n));
    let mut second = rng.random_range(0..n - 1);
    if second >= first {
        second += 1;
    }
    let winner = match scores[first].cmp(&scores[second]) {
        CmpOrdering::Less => first,
        CmpOrdering::Greater => second,
        CmpOrdering::Equal if rng.random_bool(0.5) => first,
        CmpOrdering::Equal => second,
    };
    tier.leader
        .store(address(candidates[winner].load), Ordering::Relaxed);

    let mut order: Vec<usize> = (0..n).filter(|&i| i != winner).collect();
    // Shuffle, then a stable sort: equal scores end up in random order.
    order.shuffle(&mut rng);
    order.sort_by_key(|&i| scores[i]);
    order.insert(0, winner);
    order
}

/// The latency strategy's score of an instance, lower is better: EWMA latency in
/// nanoseconds × (outstanding + 1), then outstanding.
///
/// An instance without latency data scores best while idle, so new instances get tried,
/// and worst while it has a call in flight, so it gets one probe at a time until its first
/// call completes instead of everything while its latency is unknown (among such instances
/// the one with fewer calls in flight wins).
fn latency_score(load: &LoadStats) -> (u128, usize) {
    let outstanding = load.outstanding();
    let score = match load.latency_ewma_nanos() {
        Some(nanos) => u128::from(nanos) * (outstanding as u128 + 1),
        None if outstanding == 0 => 0,
        None => u128::MAX,
    };
    (score, outstanding)
}

/// Weighted random order without replacement (Efraimidis–Spirakis): each candidate gets
/// the key `ln(u) / weight` for a uniform `u` in (0, 1], and the order is by descending key.
/// The first is thus picked with probability `weight / total`, and each following one in
/// proportion to its weight among those left. Weight 0 candidates come after all others, in
/// random order (so all-zero weights mean a uniform shuffle).
fn weighted(candidates: &[Candidate<'_>]) -> Vec<usize> {
    let mut rng = rand::rng();
    let mut keyed: Vec<(f64, usize)> = Vec::with_capacity(candidates.len());
    let mut zero: Vec<usize> = Vec::new();
    for (i, candidate) in candidates.iter().enumerate() {
        if candidate.weight == 0 {
            zero.push(i);
        } else {
            let u = 1.0 - rng.random::<f64>();
            keyed.push((u.ln() / f64::from(candidate.weight), i));
        }
    }
    keyed.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
    zero.shuffle(&mut rng);
    keyed.into_iter().map(|(_, i)| i).chain(zero).collect()
}

fn random(n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut rand::rng());
    order
}

/// Indices sorted by ascending key; each run of equal keys is rotated left by
/// `turn % run length`, so over consecutive turns equal candidates take turns exactly.
fn sorted_with_rotated_ties<K: Ord>(keys: &[K], turn: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..keys.len()).collect();
    // Stable: within a run, indices stay ascending before the rotation.
    order.sort_by(|&a, &b| keys[a].cmp(&keys[b]));
    let mut start = 0;
    while start < order.len() {
        let key = &keys[order[start]];
        let len = order[start..]
            .iter()
            .take_while(|&&i| keys[i] == *key)
            .count();
        order[start..start + len].rotate_left(turn % len);
        start += len;
    }
    order
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::strategy::InFlight;

    const MS: Duration = Duration::from_millis(1);

    const ALL: [Strategy; 6] = [
        Strategy::RoundRobin,
        Strategy::Weighted,
        Strategy::LeastOutstanding,
        Strategy::Random,
        Strategy::Latency,
        Strategy::CapabilityMatch,
    ];

    fn loads(n: usize) -> Vec<Arc<LoadStats>> {
        (0..n).map(|_| Arc::new(LoadStats::new())).collect()
    }

    fn candidates(loads: &[Arc<LoadStats>]) -> Vec<Candidate<'_>> {
        loads
            .iter()
            .map(|load| Candidate {
                weight: 1,
                load,
                capability_score: 0,
            })
            .collect()
    }

    /// How often each candidate comes first in `picks` orders.
    fn firsts(picker: &Picker, candidates: &[Candidate<'_>], picks: usize) -> Vec<usize> {
        let mut counts = vec![0; candidates.len()];
        for _ in 0..picks {
            let order = picker.order(candidates);
            assert_permutation(&order, candidates.len());
            counts[order[0]] += 1;
        }
        counts
    }

    fn assert_permutation(order: &[usize], n: usize) {
        let mut sorted = order.to_vec();
        sorted.sort_unstable();
        assert_eq!(
            sorted,
            (0..n).collect::<Vec<_>>(),
            "not a permutation: {order:?}"
        );
    }

    fn warm(load: &Arc<LoadStats>, latency: Duration, calls: usize) {
        for _ in 0..calls {
            load.begin().finish(latency, true);
        }
    }

    #[test]
    fn picker_is_send_sync_and_keeps_its_strategy() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Picker>();
        assert_send_sync::<Candidate<'static>>();
        for strategy in ALL {
            assert_eq!(Picker::new(strategy).strategy(), strategy);
        }
    }

    #[test]
    fn empty_and_single() {
        let loads = loads(1);
        let one = candidates(&loads);
        for strategy in ALL {
            let picker = Picker::new(strategy);
            assert!(picker.order(&[]).is_empty());
            for _ in 0..5 {
                assert_eq!(picker.order(&one), vec![0]);
            }
        }
    }

    #[test]
    fn round_robin_rotates_exactly() {
        let loads = loads(3);
        let cands = candidates(&loads);
        let picker = Picker::new(Strategy::RoundRobin);
        let mut counts = [0; 3];
        for i in 0..300 {
            let order = picker.order(&cands);
            assert_eq!(order, vec![i % 3, (i + 1) % 3, (i + 2) % 3]);
            counts[order[0]] += 1;
        }
        assert_eq!(counts, [100, 100, 100]);
    }

    #[test]
    fn round_robin_ignores_load() {
        let loads = loads(2);
        let _busy: Vec<InFlight> = (0..5).map(|_| loads[0].begin()).collect();
        let cands = candidates(&loads);
        assert_eq!(
            firsts(&Picker::new(Strategy::RoundRobin), &cands, 10),
            [5, 5]
        );
    }

    #[test]
    fn weighted_follows_the_weights() {
        let loads = loads(3);
        let mut cands = candidates(&loads);
        for (c, w) in cands.iter_mut().zip([1, 2, 7]) {
            c.weight = w;
        }
        let picks = 10_000;
        let counts = firsts(&Picker::new(Strategy::Weighted), &cands, picks);
        for (count, expected) in counts.iter().zip([0.1, 0.2, 0.7]) {
            let share = *count as f64 / picks as f64;
            assert!((share - expected).abs() < 0.03, "{counts:?}");
        }
    }

    #[test]
    fn weighted_failover_is_weighted_too() {
        // Second place, given the heavy one is first, follows the remaining weights 1:3.
        let loads = loads(3);
        let mut cands = candidates(&loads);
        for (c, w) in cands.iter_mut().zip([1, 3, 1_000_000]) {
            c.weight = w;
        }
        let picker = Picker::new(Strategy::Weighted);
        let mut second = [0usize; 3];
        for _ in 0..10_000 {
            let order = picker.order(&cands);
            if order[0] == 2 {
                second[order[1]] += 1;
            }
        }
        let total = (second[0] + second[1]) as f64;
        let share = second[1] as f64 / total;
        assert!((share - 0.75).abs() < 0.03, "{second:?}");
    }

    #[test]
    fn weighted_zero_is_never_first_while_others_are_not() {
        let loads = loads(3);
        let mut cands = candidates(&loads);
        for (c, w) in cands.iter_mut().zip([0, 1, 5]) {
            c.weight = w;
        }
        let picker = Picker::new(Strategy::Weighted);
        for _ in 0..10_000 {
            let order = picker.order(&cands);
            assert_permutation(&order, 3);
            assert_eq!(order[2], 0, "weight 0 must come last: {order:?}");
        }
    }

    #[test]
    fn weighted_all_zero_is_uniform() {
        let loads = loads(3);
        let mut cands = candidates(&loads);
        for c in &mut cands {
            c.weight = 0;
        }
        let counts = firsts(&Picker::new(Strategy::Weighted), &cands, 3_000);
        assert!(counts.iter().all(|&c| c > 800), "{counts:?}");
    }

    #[test]
    fn least_outstanding_prefers_the_idle_instance() {
        let loads = loads(3);
        let _a: Vec<InFlight> = (0..2).map(|_| loads[0].begin()).collect();
        let _b = loads[1].begin();
        let cands = candidates(&loads);
        let picker = Picker::new(Strategy::LeastOutstanding);
        for _ in 0..100 {
            assert_eq!(picker.order(&cands), vec![2, 1, 0]);
        }
    }

    #[test]
    fn least_outstanding_follows_live_load() {
        let loads = loads(2);
        let cands = candidates(&loads);
        let picker = Picker::new(Strategy::LeastOutstanding);
        // Each pick holds its guard: the picks alternate.
        let mut held = Vec::new();
        let mut counts = [0; 2];
        for _ in 0..10 {
            let first = picker.order(&cands)[0];
            counts[first] += 1;
            held.push(loads[first].begin());
        }
        assert_eq!(counts, [5, 5]);
        assert_eq!(loads[0].outstanding(), 5);
        // Dropping the guards of instance 0 makes it the pick.
        held.retain(|g| !Arc::ptr_eq(g.load(), &loads[0]));
        assert_eq!(loads[0].outstanding(), 0);
        assert_eq!(picker.order(&cands)[0], 0);
    }

    #[test]
    fn least_outstanding_spreads_ties() {
        let loads = loads(3);
        let cands = candidates(&loads);
        let picker = Picker::new(Strategy::LeastOutstanding);
        assert_eq!(firsts(&picker, &cands, 300), [100, 100, 100]);

        // One busy: the two idle ones alternate; the busy one is always last.
        let _busy = loads[0].begin();
        let mut counts = [0; 3];
        for _ in 0..100 {
            let order = picker.order(&cands);
            assert_eq!(order[2], 0);
            counts[order[0]] += 1;
        }
        assert_eq!(counts, [0, 50, 50]);
    }

    #[test]
    fn random_is_uniform() {
        let loads = loads(3);
        let cands = candidates(&loads);
        let picker = Picker::new(Strategy::Random);
        let mut seen = std::collections::HashSet::new();
        let mut counts = [0; 3];
        for _ in 0..3_000 {
            let order = picker.order(&cands);
            assert_permutation(&order, 3);
            counts[order[0]] += 1;
            seen.insert(order);
        }
        assert!(counts.iter().all(|&c| c > 800), "{counts:?}");
        assert_eq!(seen.len(), 6, "all orders of three appear");
    }

    #[test]
    fn latency_prefers_the_fast_instance() {
        let loads = loads(3);
        warm(&loads[0], MS, 10);
        warm(&loads[1], 20 * MS, 10);
        warm(&loads[2], 20 * MS, 10);
        let cands = candidates(&loads);
        let picker = Picker::new(Strategy::Latency);
        let counts = firsts(&picker, &cands, 1_000);
        assert!(counts[0] > 800, "{counts:?}");
    }

    #[test]
    fn latency_failover_ascends_by_score() {
        let loads = loads(3);
        warm(&loads[0], MS, 3);
        warm(&loads[1], 5 * MS, 3);
        warm(&loads[2], 20 * MS, 3);
        let cands = candidates(&loads);
        let picker = Picker::new(Strategy::Latency);
        for _ in 0..200 {
            let order = picker.order(&cands);
            // The slowest never wins a comparison; the others follow by score.
            assert_ne!(order[0], 2);
            let mut rest = order[1..].to_vec();
            rest.sort_unstable();
            assert_eq!(order[1..], rest[..], "{order:?}");
        }
        assert_eq!(picker.order(&cands), vec![0, 1, 2]);
    }

    #[test]
    fn latency_penalizes_outstanding_calls() {
        let loads = loads(2);
        warm(&loads[0], MS, 5);
        warm(&loads[1], 20 * MS, 5);
        let cands = candidates(&loads);
        let picker = Picker::new(Strategy::Latency);
        assert_eq!(picker.order(&cands), vec![0, 1]);
        // 1 ms × 30 in flight scores worse than 20 ms idle.
        let _busy: Vec<InFlight> = (0..30).map(|_| loads[0].begin()).collect();
        for _ in 0..20 {
            assert_eq!(picker.order(&cands), vec![1, 0]);
        }
    }

    #[test]
    fn latency_tries_an_instance_without_data() {
        let loads = loads(4);
        warm(&loads[0], MS, 10);
        warm(&loads[1], 20 * MS, 10);
        warm(&loads[2], 20 * MS, 10);
        let cands = candidates(&loads);
        let picker = Picker::new(Strategy::Latency);
        let counts = firsts(&picker, &cands, 1_000);
        assert!(counts[3] > 0, "never tried: {counts:?}");

        // Idle and unknown beats known...
        assert_eq!(picker.order(&cands[2..])[0], 1);
        // ...but while its first call is in flight it is a probe, not the pick.
        let probe = loads[3].begin();
        for _ in 0..20 {
            assert_eq!(picker.order(&cands[2..]), vec![0, 1]);
        }
        probe.finish(2 * MS, true);
        assert_eq!(picker.order(&cands[2..]), vec![1, 0]);
    }

    #[test]
    fn latency_spreads_equal_instances() {
        let loads = loads(3);
        for load in &loads {
            warm(load, 5 * MS, 3);
        }
        let cands = candidates(&loads);
        let counts = firsts(&Picker::new(Strategy::Latency), &cands, 3_000);
        assert!(counts.iter().all(|&c| c > 700), "{counts:?}");
    }

    #[test]
    fn latency_cold_start_spreads_by_outstanding() {
        // Nobody has data: each pick holds its guard, so every instance gets one probe
        // before any gets a second.
        let loads = loads(4);
        let cands = candidates(&loads);
        let picker = Picker::new(Strategy::Latency);
        let mut held = Vec::new();
        for _ in 0..4 {
            let first = picker.order(&cands)[0];
            held.push(loads[first].begin());
        }
        // P2C only compares two, so the spread is not exact; no instance got three.
        assert!(loads.iter().all(|l| l.outstanding() <= 2));
    }

    #[test]
    fn capability_match_prefers_the_best_declared_match() {
        let loads = loads(3);
        let mut cands = candidates(&loads);
        for (c, s) in cands.iter_mut().zip([1, 3, 3]) {
            c.capability_score = s;
        }
        let _busy = loads[1].begin();
        let picker = Picker::new(Strategy::CapabilityMatch);
        for _ in 0..50 {
            assert_eq!(picker.order(&cands), vec![2, 1, 0]);
        }
    }

    #[test]
    fn capability_match_rotates_ties() {
        let loads = loads(3);
        let mut cands = candidates(&loads);
        for (c, s) in cands.iter_mut().zip([2, 2, 1]) {
            c.capability_score = s;
        }
        let picker = Picker::new(Strategy::CapabilityMatch);
        let mut counts = [0; 3];
        for _ in 0..100 {
            let order = picker.order(&cands);
            assert_eq!(order[2], 2);
            counts[order[0]] += 1;
        }
        assert_eq!(counts, [50, 50, 0]);
    }

    #[test]
    fn one_picker_serves_several_tiers() {
        let loads = loads(5);
        let cands = candidates(&loads);
        let (tier1, tier2) = cands.split_at(2);
        let picker = Picker::new(Strategy::RoundRobin);
        let mut counts = [0; 5];
        for i in 0..60 {
            let a = picker.order(tier1);
            let b = picker.order(tier2);
            assert_eq!(a[0], i % 2);
            assert_eq!(b[0], i % 3);
            counts[a[0]] += 1;
            counts[2 + b[0]] += 1;
        }
        assert_eq!(counts, [30, 30, 20, 20, 20]);

        let picker = Picker::new(Strategy::LeastOutstanding);
        let mut counts = [0; 5];
        for _ in 0..60 {
            counts[picker.order(tier1)[0]] += 1;
            counts[2 + picker.order(tier2)[0]] += 1;
        }
        assert_eq!(counts, [30, 30, 20, 20, 20]);

        warm(&loads[0], 20 * MS, 3);
        warm(&loads[1], MS, 3);
        warm(&loads[2], MS, 3);
        warm(&loads[3], 20 * MS, 3);
        warm(&loads[4], 20 * MS, 3);
        let picker = Picker::new(Strategy::Latency);
        let mut fast = [0; 2];
        for _ in 0..1_000 {
            fast[0] += usize::from(picker.order(tier1)[0] == 1);
            fast[1] += usize::from(picker.order(tier2)[0] == 0);
        }
        assert_eq!(fast[0], 1_000);
        assert!(fast[1] > 800, "{fast:?}");
    }

    #[test]
    fn a_changed_list_keeps_working() {
        // The remembered latency winner leaves the list: a fresh pair is drawn.
        let loads = loads(4);
        warm(&loads[0], MS, 3);
        warm(&loads[1], MS, 3);
        warm(&loads[2], 20 * MS, 3);
        warm(&loads[3], 2 * MS, 3);
        let cands = candidates(&loads);
        let picker = Picker::new(Strategy::Latency);
        for _ in 0..20 {
            picker.order(&cands[..3]);
        }
        let shrunk = [cands[0], cands[2], cands[3]];
        let counts = firsts(&picker, &shrunk, 1_000);
        assert!(counts[0] > 800, "{counts:?}");
        // Round-robin over a list whose first instance dropped out: rotates on its own.
        let picker = Picker::new(Strategy::RoundRobin);
        assert_eq!(firsts(&picker, &cands[1..], 300), [100, 100, 100]);
    }

    #[test]
    fn rotated_ties() {
        assert_eq!(
            sorted_with_rotated_ties(&[1, 0, 1, 0, 1], 0),
            [1, 3, 0, 2, 4]
        );
        assert_eq!(
            sorted_with_rotated_ties(&[1, 0, 1, 0, 1], 1),
            [3, 1, 2, 4, 0]
        );
        assert_eq!(
            sorted_with_rotated_ties(&[1, 0, 1, 0, 1], 2),
            [1, 3, 4, 0, 2]
        );
        assert_eq!(sorted_with_rotated_ties::<u8>(&[], 7), Vec::<usize>::new());
    }

    #[test]
    fn order_is_always_a_permutation() {
        let mut rng = rand::rng();
        for trial in 0..2_000 {
            let n = rng.random_range(0..10);
            let loads = loads(n);
            let mut held = Vec::new();
            for load in &loads {
                if rng.random_bool(0.5) {
                    let latency = Duration::from_micros(rng.random_range(0..50_000));
                    for _ in 0..rng.random_range(1..4) {
                        load.begin().finish(latency, rng.random_bool(0.8));
                    }
                }
                for _ in 0..rng.random_range(0..3) {
                    held.push(load.begin());
                }
            }
            let cands: Vec<Candidate<'_>> = loads
                .iter()
                .map(|load| Candidate {
                    weight: rng.random_range(0..4),
                    load,
                    capability_score: rng.random_range(0..3),
                })
                .collect();
            for strategy in ALL {
                let picker = Picker::new(strategy);
                for _ in 0..3 {
                    let order = picker.order(&cands);
                    assert_permutation(&order, n);
                }
                // A shorter list than the picker saw before (stale memory, rotation).
                if n > 1 {
                    let order = picker.order(&cands[..n / 2 + trial % 2]);
                    assert_permutation(&order, n / 2 + trial % 2);
                }
            }
        }
    }

    #[test]
    fn concurrent_picks() {
        let loads = Arc::new(loads(5));
        let pickers = Arc::new(ALL.map(Picker::new));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let loads = loads.clone();
                let pickers = pickers.clone();
                std::thread::spawn(move || {
                    let cands = candidates(&loads);
                    for i in 0..500 {
                        for picker in pickers.iter() {
                            let order = picker.order(&cands);
                            assert_permutation(&order, cands.len());
                            let guard = loads[order[0]].begin();
                            if i % 4 != 0 {
                                guard.finish(Duration::from_micros(100 + order[0] as u64), true);
                            }
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(loads.iter().all(|l| l.outstanding() == 0));
    }
}
