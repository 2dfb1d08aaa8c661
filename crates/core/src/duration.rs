//! Durations in configuration files: `"1500ms"`, `"30s"`, `"5m"` or a number of seconds,
//! at most [`MAX`]; and deadlines that cannot overflow ([`deadline_after`]).

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer, de};
use tokio::time::Instant;

/// The longest duration a configuration may give: 365 days. Longer ones are typos (or
/// tests of the parser), and sums with such values overflow the clock.
pub const MAX: Duration = Duration::from_secs(365 * 24 * 3600);

/// How far ahead [`deadline_after`] puts a deadline at most: about 30 years.
const FAR_FUTURE: Duration = Duration::from_secs(30 * 365 * 24 * 3600);

/// The instant `after` from now; a duration too long for the clock gives a deadline
/// decades away instead of panicking as `Instant::now() + after` would.
pub fn deadline_after(after: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(after.min(FAR_FUTURE))
        .or_else(|| now.checked_add(Duration::from_secs(24 * 3600)))
        .unwrap_or(now)
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Raw {
    Seconds(f64),
    Text(String),
}

const FORM: &str = "a string like \"500ms\", \"30s\", \"5m\" or a number of seconds";

fn parse<E: de::Error>(raw: Raw) -> Result<Duration, E> {
    let duration = match raw {
        Raw::Seconds(s) if s.is_finite() && s >= 0.0 => {
            if s > MAX.as_secs_f64() {
                return Err(too_long(&format!("{s} seconds")));
            }
            Duration::from_secs_f64(s)
        }
        Raw::Seconds(s) => {
            return Err(E::custom(format!(
                "invalid duration {s}: expected a non-negative number of seconds or {FORM}"
            )));
        }
        Raw::Text(text) => {
            let trimmed = de::value::StrDeserializer::<de::value::Error>::new(text.trim());
            humantime_serde::deserialize(trimmed).map_err(|e| {
                E::custom(format!(
                    "invalid duration \"{text}\" ({e}): expected {FORM}"
                ))
            })?
        }
    };
    if duration > MAX {
        return Err(too_long(&humantime::format_duration(duration).to_string()));
    }
    Ok(duration)
}

fn too_long<E: de::Error>(found: &str) -> E {
    E::custom(format!(
        "the duration {found} is too long: at most 365 days (\"365d\") is allowed"
    ))
}

/// Deserializes a [`Duration`]; use with `#[serde(with = "toolmesh_core::duration")]`.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    parse(Raw::deserialize(d)?)
}

/// Serializes a [`Duration`] as a humantime string (`"1m 30s"`).
pub fn serialize<S: Serializer>(value: &Duration, s: S) -> Result<S::Ok, S::Error> {
    humantime_serde::serialize(value, s)
}

/// The same for `Option<Duration>`; use with `#[serde(default, with = "toolmesh_core::duration::option")]`.
pub mod option {
    use super::*;

    /// Deserializes an optional duration.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<Raw>::deserialize(d)?.map(parse).transpose()
    }

    /// Serializes an optional duration.
    pub fn serialize<S: Serializer>(value: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        humantime_serde::option::serialize(value, s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct T {
        #[serde(with = "super")]
        d: Duration,
    }

    fn parse_json(v: serde_json::Value) -> Result<Duration, serde_json::Error> {
        serde_json::from_value::<T>(serde_json::json!({ "d": v })).map(|t| t.d)
    }

    #[test]
    fn accepts_numbers_and_humantime() -> Result<(), serde_json::Error> {
        assert_eq!(parse_json(serde_json::json!(10))?, Duration::from_secs(10));
        assert_eq!(
            parse_json(serde_json::json!(0.5))?,
            Duration::from_millis(500)
        );
        assert_eq!(
            parse_json(serde_json::json!("1500ms"))?,
            Duration::from_millis(1500)
        );
        assert_eq!(
            parse_json(serde_json::json!("5m"))?,
            Duration::from_secs(300)
        );
        assert_eq!(parse_json(serde_json::json!("365d"))?, MAX);
        let err = parse_json(serde_json::json!("soon"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"30s\""), "{err}");
        assert!(parse_json(serde_json::json!(-1)).is_err());
        Ok(())
    }

    #[test]
    fn durations_past_a_year_are_refused_with_the_limit() {
        for huge in [
            serde_json::json!(1e20),
            serde_json::json!(f64::MAX),
            serde_json::json!(u64::MAX),
            serde_json::json!(MAX.as_secs() + 1),
            serde_json::json!("1000000000y"),
            serde_json::json!("366d"),
        ] {
            let err = parse_json(huge.clone()).unwrap_err().to_string();
            assert!(err.contains("at most 365 days"), "{huge}: {err}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn deadlines_saturate_instead_of_overflowing() {
        let now = Instant::now();
        assert_eq!(
            deadline_after(Duration::from_secs(5)),
            now + Duration::from_secs(5)
        );
        assert!(deadline_after(Duration::MAX) > now + MAX);
        let ctx = crate::CallContext::with_timeout(Duration::MAX);
        assert!(ctx.deadline > now + MAX);
        assert_eq!(ctx.capped(Duration::MAX).deadline, ctx.deadline);
    }
}
