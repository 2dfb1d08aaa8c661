//! Durations in configuration files: `"1500ms"`, `"30s"`, `"5m"` or a number of seconds.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer, de};

#[derive(Deserialize)]
#[serde(untagged)]
enum Raw {
    Seconds(f64),
    Text(String),
}

fn parse<E: de::Error>(raw: Raw) -> Result<Duration, E> {
    match raw {
        Raw::Seconds(s) if s.is_finite() && s >= 0.0 => Ok(Duration::from_secs_f64(s)),
        Raw::Seconds(s) => Err(E::custom(format!(
            "invalid duration {s}: expected a non-negative number of seconds or a string like \"30s\""
        ))),
        Raw::Text(text) => humantime::parse_duration(text.trim()).map_err(|e| {
            E::custom(format!(
                "invalid duration \"{text}\" ({e}): expected a string like \"500ms\", \"30s\", \"5m\" or a number of seconds"
            ))
        }),
    }
}

/// Deserializes a [`Duration`]; use with `#[serde(with = "toolmesh_core::duration")]`.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    parse(Raw::deserialize(d)?)
}

/// Serializes a [`Duration`] as a humantime string (`"1m 30s"`).
pub fn serialize<S: Serializer>(value: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&humantime::format_duration(*value).to_string())
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
        match value {
            Some(v) => super::serialize(v, s),
            None => s.serialize_none(),
        }
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
        let err = parse_json(serde_json::json!("soon"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"30s\""), "{err}");
        assert!(parse_json(serde_json::json!(-1)).is_err());
        Ok(())
    }
}
