//! Result cache on moka: per-entry TTL, one fetch for concurrent misses, and an optional
//! stale-if-error window that answers from the last good value while the source fails.

use std::{fmt, hash::Hash, sync::Arc, time::Duration};

use moka::{Expiry, future::Cache, ops::compute::Op};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// Settings of a [`ResultCache`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// Entries held at most (least recently and frequently used go first).
    pub max_entries: u64,
    /// How long after its TTL an entry may still answer when a fresh fetch fails;
    /// 0 (the default) turns this off.
    #[serde(with = "toolmesh_core::duration")]
    pub stale_if_error: Duration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            max_entries: 10_000,
            stale_if_error: Duration::ZERO,
        }
    }
}

impl CacheConfig {
    /// Checks the settings; the message names the field and what it must be.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_entries == 0 {
            return Err("max_entries must be at least 1".into());
        }
        Ok(())
    }
}

/// A value from [`ResultCache::get_or_fetch`] and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cached<V> {
    /// The value.
    pub value: V,
    /// `true` when this call did not run `fetch` itself: a cached value, or the result
    /// of a concurrent caller's fetch that this call joined.
    pub hit: bool,
    /// `true` when the value is past its TTL and served because a fresh fetch failed.
    pub stale: bool,
}

/// A cached value with its own lifetime, read on tokio's clock.
struct Stored<V> {
    value: V,
    inserted_at: Instant,
    ttl: Duration,
}

impl<V> Stored<V> {
    fn is_fresh(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.inserted_at) < self.ttl
    }

    fn usable_stale(&self, now: Instant, stale_if_error: Duration) -> bool {
        now.saturating_duration_since(self.inserted_at) < self.ttl.saturating_add(stale_if_error)
    }
}

/// moka expiry: each entry lives its own TTL, plus `extra`.
struct TtlExpiry {
    extra: Duration,
}

impl<K, V> Expiry<K, Arc<Stored<V>>> for TtlExpiry {
    fn expire_after_create(
        &self,
        _key: &K,
        value: &Arc<Stored<V>>,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(value.ttl.saturating_add(self.extra))
    }

    fn expire_after_update(
        &self,
        _key: &K,
        value: &Arc<Stored<V>>,
        _updated_at: std::time::Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(value.ttl.saturating_add(self.extra))
    }
}

/// A cache of fetched results with per-entry TTL; cloning shares it.
///
/// - Concurrent misses for one key run `fetch` once (moka's `or_try_insert_with`); every
///   waiter gets its result, or its error as an `Arc<E>` — so `E` need not be `Clone`
///   (for `CallError`, which is, `Arc::unwrap_or_clone` gives it back).
/// - Freshness is judged on tokio's clock, so `start_paused` tests work; moka evicts on
///   its own clock as a memory bound (`ttl`, or `ttl + stale_if_error` for the stale copy).
/// - With `stale_if_error` set, a second moka layer keeps the last good value of each key
///   until `ttl + stale_if_error`; when a refresh fails within that window every waiting
///   caller gets that value with `stale: true`.
pub struct ResultCache<K, V> {
    fresh: Cache<K, Arc<Stored<V>>>,
    last_good: Option<Cache<K, Arc<Stored<V>>>>,
    stale_if_error: Duration,
}

impl<K, V> Clone for ResultCache<K, V> {
    fn clone(&self) -> Self {
        Self {
            fresh: self.fresh.clone(),
            last_good: self.last_good.clone(),
            stale_if_error: self.stale_if_error,
        }
    }
}

impl<K, V> fmt::Debug for ResultCache<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResultCache")
            .field("entries", &self.fresh.entry_count())
            .field("stale_if_error", &self.stale_if_error)
            .finish_non_exhaustive()
    }
}

impl<K, V> ResultCache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// An empty cache. `max_entries` 0 is treated as 1.
    pub fn new(config: CacheConfig) -> Self {
        let capacity = config.max_entries.max(1);
        let fresh = Cache::builder()
            .max_capacity(capacity)
            .expire_after(TtlExpiry {
                extra: Duration::ZERO,
            })
            .build();
        let last_good = (!config.stale_if_error.is_zero()).then(|| {
            Cache::builder()
                .max_capacity(capacity)
                .expire_after(TtlExpiry {
                    extra: config.stale_if_error,
                })
                .build()
        });
        Self {
            fresh,
            last_good,
            stale_if_error: config.stale_if_error,
        }
    }

    /// The value for `key`: cached if younger than `ttl`, else from `fetch` (run once for
    /// all concurrent callers of this key) and cached for `ttl`. A failed fetch is not
    /// cached; within `stale_if_error` after the TTL the last good value answers instead
    /// (`stale: true`), after it the error does.
    pub async fn get_or_fetch<F, Fut, E>(
        &self,
        key: K,
        ttl: Duration,
        fetch: F,
    ) -> Result<Cached<V>, Arc<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
        E: Send + Sync + 'static,
    {
        let now = Instant::now();
        if let Some(stored) = self.fresh.get(&key).await {
            if stored.is_fresh(now) {
                return Ok(Cached {
                    value: stored.value.clone(),
                    hit: true,
                    stale: false,
                });
            }
            // Expired on tokio's clock but not yet on moka's (paused time in tests):
            // remove exactly this entry so the next step fetches.
            self.fresh
                .entry(key.clone())
                .and_compute_with(|current| {
                    let same = current.is_some_and(|e| Arc::ptr_eq(e.value(), &stored));
                    std::future::ready(if same { Op::Remove } else { Op::Nop })
                })
                .await;
        }
        let result = self
            .fresh
            .entry(key.clone())
            .or_try_insert_with(async {
                let value = fetch().await?;
                Ok(Arc::new(Stored {
                    value,
                    inserted_at: Instant::now(),
                    ttl,
                }))
            })
            .await;
        match result {
            Ok(entry) => {
                let fetched_here = entry.is_fresh();
                let stored = entry.into_value();
                if fetched_here && let Some(last_good) = &self.last_good {
                    last_good.insert(key, stored.clone()).await;
                }
                Ok(Cached {
                    value: stored.value.clone(),
                    hit: !fetched_here,
                    stale: false,
                })
            }
            Err(error) => {
                if let Some(last_good) = &self.last_good
                    && let Some(stored) = last_good.get(&key).await
                    && stored.usable_stale(Instant::now(), self.stale_if_error)
                {
                    return Ok(Cached {
                        value: stored.value.clone(),
                        hit: true,
                        stale: true,
                    });
                }
                Err(error)
            }
        }
    }

    /// Drops `key`, its stale copy included.
    pub async fn invalidate(&self, key: &K) {
        self.fresh.invalidate(key).await;
        if let Some(last_good) = &self.last_good {
            last_good.invalidate(key).await;
        }
    }

    /// Drops every entry.
    pub fn invalidate_all(&self) {
        self.fresh.invalidate_all();
        if let Some(last_good) = &self.last_good {
            last_good.invalidate_all();
        }
    }

    /// Keys with a value held (fresh, or kept for stale-if-error). Approximate: moka
    /// counts inserts and evictions lazily; [`run_pending_tasks`](Self::run_pending_tasks)
    /// brings it up to date.
    pub fn entry_count(&self) -> u64 {
        match &self.last_good {
            Some(last_good) => last_good.entry_count().max(self.fresh.entry_count()),
            None => self.fresh.entry_count(),
        }
    }

    /// Runs moka's pending maintenance (evictions, counts) now.
    pub async fn run_pending_tasks(&self) {
        self.fresh.run_pending_tasks().await;
        if let Some(last_good) = &self.last_good {
            last_good.run_pending_tasks().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[derive(Debug, PartialEq)]
    struct Down;

    fn cache(stale_if_error: Duration) -> ResultCache<String, u32> {
        ResultCache::new(CacheConfig {
            max_entries: 100,
            stale_if_error,
        })
    }

    const TTL: Duration = Duration::from_secs(10);

    #[tokio::test(start_paused = true)]
    async fn hit_after_miss() {
        let c = cache(Duration::ZERO);
        let first = c
            .get_or_fetch("k".into(), TTL, || async { Ok::<_, Down>(7) })
            .await
            .unwrap();
        assert_eq!((first.value, first.hit, first.stale), (7, false, false));
        let second = c
            .get_or_fetch("k".into(), TTL, || async { Ok::<_, Down>(8) })
            .await
            .unwrap();
        assert_eq!((second.value, second.hit, second.stale), (7, true, false));
        c.run_pending_tasks().await;
        assert_eq!(c.entry_count(), 1);
        c.invalidate(&"k".to_string()).await;
        let third = c
            .get_or_fetch("k".into(), TTL, || async { Ok::<_, Down>(9) })
            .await
            .unwrap();
        assert_eq!((third.value, third.hit), (9, false));
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_misses_fetch_once() {
        let c = cache(Duration::ZERO);
        let fetches = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let c = c.clone();
                let fetches = fetches.clone();
                tokio::spawn(async move {
                    c.get_or_fetch("k".into(), TTL, || async move {
                        fetches.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok::<_, Down>(42)
                    })
                    .await
                })
            })
            .collect();
        let mut misses = 0;
        for task in tasks {
            let cached = task.await.unwrap().unwrap();
            assert_eq!(cached.value, 42);
            misses += usize::from(!cached.hit);
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        assert_eq!(misses, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_failures_share_one_error() {
        let c = cache(Duration::ZERO);
        let fetches = Arc::new(AtomicUsize::new(0));
        let calls = (0..10).map(|_| {
            let fetches = fetches.clone();
            c.get_or_fetch("k".into(), TTL, || async move {
                fetches.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(50)).await;
                Err::<u32, _>(Down)
            })
        });
        for result in futures::future::join_all(calls).await {
            assert_eq!(*result.unwrap_err(), Down);
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn refetches_after_ttl() {
        let c = cache(Duration::ZERO);
        let v = c
            .get_or_fetch("k".into(), TTL, || async { Ok::<_, Down>(1) })
            .await
            .unwrap();
        assert_eq!(v.value, 1);
        tokio::time::advance(TTL - Duration::from_millis(1)).await;
        let v = c
            .get_or_fetch("k".into(), TTL, || async { Ok::<_, Down>(2) })
            .await
            .unwrap();
        assert_eq!((v.value, v.hit), (1, true));
        tokio::time::advance(Duration::from_millis(1)).await;
        let v = c
            .get_or_fetch("k".into(), TTL, || async { Ok::<_, Down>(2) })
            .await
            .unwrap();
        assert_eq!((v.value, v.hit), (2, false));
        // Without stale-if-error an expired entry does not cover for a failure.
        tokio::time::advance(TTL).await;
        let err = c
            .get_or_fetch("k".into(), TTL, || async { Err::<u32, _>(Down) })
            .await
            .unwrap_err();
        assert_eq!(*err, Down);
    }

    #[tokio::test(start_paused = true)]
    async fn stale_if_error_within_the_window_only() {
        let c = cache(Duration::from_secs(30));
        c.get_or_fetch("k".into(), TTL, || async { Ok::<_, Down>(1) })
            .await
            .unwrap();
        // 15s: past the TTL, within TTL + 30s.
        tokio::time::advance(Duration::from_secs(15)).await;
        let v = c
            .get_or_fetch("k".into(), TTL, || async { Err::<u32, _>(Down) })
            .await
            .unwrap();
        assert_eq!((v.value, v.hit, v.stale), (1, true, true));
        // The next call tries the source again (and may still get the stale value).
        let fetches = AtomicUsize::new(0);
        let v = c
            .get_or_fetch("k".into(), TTL, || async {
                fetches.fetch_add(1, Ordering::SeqCst);
                Err::<u32, _>(Down)
            })
            .await
            .unwrap();
        assert!(v.stale);
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        // 40s: past TTL + 30s: the error.
        tokio::time::advance(Duration::from_secs(25)).await;
        let err = c
            .get_or_fetch("k".into(), TTL, || async { Err::<u32, _>(Down) })
            .await
            .unwrap_err();
        assert_eq!(*err, Down);
        // A success refreshes both layers.
        let v = c
            .get_or_fetch("k".into(), TTL, || async { Ok::<_, Down>(5) })
            .await
            .unwrap();
        assert_eq!((v.value, v.stale), (5, false));
    }

    #[tokio::test(start_paused = true)]
    async fn per_entry_ttl() {
        let c = cache(Duration::ZERO);
        c.get_or_fetch("short".into(), Duration::from_secs(1), || async {
            Ok::<_, Down>(1)
        })
        .await
        .unwrap();
        c.get_or_fetch("long".into(), Duration::from_secs(60), || async {
            Ok::<_, Down>(2)
        })
        .await
        .unwrap();
        tokio::time::advance(Duration::from_secs(2)).await;
        let short = c
            .get_or_fetch("short".into(), Duration::from_secs(1), || async {
                Ok::<_, Down>(10)
            })
            .await
            .unwrap();
        let long = c
            .get_or_fetch("long".into(), Duration::from_secs(60), || async {
                Ok::<_, Down>(20)
            })
            .await
            .unwrap();
        assert_eq!((short.value, short.hit), (10, false));
        assert_eq!((long.value, long.hit), (2, true));
    }

    /// moka expires entries on its own (real) clock, per entry: this one runs in real
    /// time, briefly. (Its timer wheel then frees them within about a second.)
    #[tokio::test]
    async fn moka_expires_entries_per_entry_ttl_in_real_time() {
        let c = cache(Duration::from_millis(100));
        let key = "k".to_string();
        c.get_or_fetch(key.clone(), Duration::from_millis(50), || async {
            Ok::<_, Down>(1)
        })
        .await
        .unwrap();
        let last_good = c.last_good.as_ref().unwrap();
        c.run_pending_tasks().await;
        assert_eq!(c.entry_count(), 1);
        assert!(c.fresh.contains_key(&key) && last_good.contains_key(&key));
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert!(!c.fresh.contains_key(&key), "fresh layer expires at ttl");
        assert!(
            last_good.contains_key(&key),
            "stale copy lives ttl + stale_if_error"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!last_good.contains_key(&key));
    }
}
