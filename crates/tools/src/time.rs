//! `time_now`, `time_convert`, `time_parse`, `time_format`: dates and times in IANA zones.
//!
//! Four small tools rather than one with an `action` argument: each has a schema with
//! only the fields it needs, which models fill in more reliably.
//!
//! Timestamps are accepted as RFC 3339 (`2024-05-01T12:00:00+02:00`), RFC 2822, Unix
//! seconds (`1714557600`), or a local date-time without offset (`2024-05-01 12:00`,
//! `2024-05-01T12:00:00`, `2024-05-01`), which is read in the zone the tool names. Every
//! result describes the instant the same way: RFC 3339 in the zone, UTC, Unix seconds,
//! offset, abbreviation and weekday.

use std::fmt::Write as _;

use chrono::{
    DateTime, NaiveDate, NaiveDateTime, SecondsFormat, TimeZone, Utc,
    format::{Item, ParseErrorKind, StrftimeItems},
};
use chrono_tz::{TZ_VARIANTS, Tz};
use rmcp::model::{CallToolResult, JsonObject, Tool, ToolAnnotations};
use serde::Deserialize;
use toolmesh_core::{CallContext, CallError};

use crate::native::{NativeTool, answer, schema_for, tool_success};

const ZONE_HINT: &str = "use an IANA time zone name such as \"Europe/Paris\", \"America/New_York\", \
\"Asia/Tokyo\", \"Australia/Sydney\" or \"UTC\" (Area/City, with underscores for spaces: \
\"America/Los_Angeles\")";

const TIMESTAMP_HINT: &str = "use RFC 3339 (\"2024-05-01T12:00:00+02:00\" or \"2024-05-01T10:00:00Z\"), \
Unix seconds (\"1714557600\"), or a local time \"2024-05-01 12:00[:00]\" or date \"2024-05-01\"";

/// `time_now {timezone?}`: the current time in an IANA zone (default UTC).
#[derive(Debug, Clone, Copy, Default)]
pub struct TimeNow;

/// `time_convert {timestamp, to_timezone, from_timezone?}`: the same instant in another zone.
#[derive(Debug, Clone, Copy, Default)]
pub struct TimeConvert;

/// `time_parse {text, format?, timezone?}`: reads a date-time (RFC 3339 and friends, or a
/// strftime `format`) and describes the instant.
#[derive(Debug, Clone, Copy, Default)]
pub struct TimeParse;

/// `time_format {timestamp, format, timezone?}`: renders an instant with a strftime format.
#[derive(Debug, Clone, Copy, Default)]
pub struct TimeFormat;

/// Arguments of `time_now`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct NowArgs {
    /// IANA time zone, e.g. "Europe/Paris"; default "UTC".
    #[serde(default)]
    timezone: Option<String>,
}

/// Arguments of `time_convert`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct ConvertArgs {
    /// The instant: RFC 3339 ("2024-05-01T12:00:00+02:00"), Unix seconds, or a local
    /// date-time without offset ("2024-05-01 12:00"), read in `from_timezone`.
    timestamp: String,
    /// IANA zone to convert to, e.g. "Asia/Tokyo".
    to_timezone: String,
    /// IANA zone of a `timestamp` without offset; default "UTC".
    #[serde(default)]
    from_timezone: Option<String>,
}

/// Arguments of `time_parse`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct ParseArgs {
    /// The text to read, e.g. "2024-05-01T12:00:00Z" or "01/05/2024 14:30".
    text: String,
    /// strftime format of `text`, e.g. "%d/%m/%Y %H:%M"; without it RFC 3339, RFC 2822,
    /// Unix seconds and "YYYY-MM-DD[ HH:MM[:SS]]" are recognised.
    #[serde(default)]
    format: Option<String>,
    /// IANA zone for a text without offset, and for the answer; default "UTC".
    #[serde(default)]
    timezone: Option<String>,
}

/// Arguments of `time_format`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct FormatArgs {
    /// The instant: RFC 3339, Unix seconds, or a local date-time read in `timezone`.
    timestamp: String,
    /// strftime format, e.g. "%A %d %B %Y, %H:%M %Z".
    format: String,
    /// IANA zone to render in; default "UTC".
    #[serde(default)]
    timezone: Option<String>,
}

fn annotations() -> ToolAnnotations {
    ToolAnnotations::new()
        .read_only(true)
        .destructive(false)
        .idempotent(true)
        .open_world(false)
}

impl NativeTool for TimeNow {
    fn definition(&self) -> Tool {
        Tool::new(
            "time_now",
            "Current date and time in an IANA time zone (default UTC): RFC 3339, Unix seconds, \
             UTC offset, zone abbreviation and weekday.",
            schema_for::<NowArgs>(),
        )
        .with_title("Current time")
        // Not idempotent in the answer, but calling it again has no effect on anything.
        .with_annotations(annotations())
    }

    async fn call(
        &self,
        arguments: JsonObject,
        _ctx: &CallContext,
    ) -> Result<CallToolResult, CallError> {
        Ok(answer("time_now", arguments, |args: NowArgs| async move {
            let zone = zone_or_utc(args.timezone.as_deref(), "timezone")?;
            Ok(describe("Now", Utc::now(), zone))
        })
        .await)
    }
}

impl NativeTool for TimeConvert {
    fn definition(&self) -> Tool {
        Tool::new(
            "time_convert",
            format!(
                "Convert an instant to another IANA time zone. Timestamps: {TIMESTAMP_HINT}; \
                 one without offset is read in `from_timezone` (default UTC)."
            ),
            schema_for::<ConvertArgs>(),
        )
        .with_title("Convert time zone")
        .with_annotations(annotations())
    }

    async fn call(
        &self,
        arguments: JsonObject,
        _ctx: &CallContext,
    ) -> Result<CallToolResult, CallError> {
        Ok(
            answer("time_convert", arguments, |args: ConvertArgs| async move {
                let from = zone_or_utc(args.from_timezone.as_deref(), "from_timezone")?;
                let to = parse_zone(&args.to_timezone, "to_timezone")?;
                let instant = parse_timestamp(&args.timestamp, from)?;
                Ok(describe("Converted", instant, to))
            })
            .await,
        )
    }
}

impl NativeTool for TimeParse {
    fn definition(&self) -> Tool {
        Tool::new(
            "time_parse",
            format!(
                "Read a date/time text and describe the instant. With `format` (strftime, e.g. \
                 \"%d/%m/%Y %H:%M\") the text must match it; without, {TIMESTAMP_HINT}. A text \
                 without offset is read in `timezone` (default UTC)."
            ),
            schema_for::<ParseArgs>(),
        )
        .with_title("Parse time")
        .with_annotations(annotations())
    }

    async fn call(
        &self,
        arguments: JsonObject,
        _ctx: &CallContext,
    ) -> Result<CallToolResult, CallError> {
        Ok(
            answer("time_parse", arguments, |args: ParseArgs| async move {
                let zone = zone_or_utc(args.timezone.as_deref(), "timezone")?;
                let instant = match &args.format {
                    Some(format) => parse_with_format(&args.text, format, zone)?,
                    None => parse_timestamp(&args.text, zone)?,
                };
                Ok(describe("Parsed", instant, zone))
            })
            .await,
        )
    }
}

impl NativeTool for TimeFormat {
    fn definition(&self) -> Tool {
        Tool::new(
            "time_format",
            format!(
                "Render an instant with a strftime format (e.g. \"%A %d %B %Y, %H:%M %Z\") in an \
                 IANA time zone (default UTC). Timestamps: {TIMESTAMP_HINT}."
            ),
            schema_for::<FormatArgs>(),
        )
        .with_title("Format time")
        .with_annotations(annotations())
    }

    async fn call(
        &self,
        arguments: JsonObject,
        _ctx: &CallContext,
    ) -> Result<CallToolResult, CallError> {
        Ok(
            answer("time_format", arguments, |args: FormatArgs| async move {
                let zone = zone_or_utc(args.timezone.as_deref(), "timezone")?;
                let items = strftime_items(&args.format)?;
                let instant = parse_timestamp(&args.timestamp, zone)?;
                let local = instant.with_timezone(&zone);
                let mut text = String::new();
                write!(text, "{}", local.format_with_items(items.iter())).map_err(|_| {
                    format!(
                        "the format `{}` cannot render this instant; check its % specifiers",
                        args.format
                    )
                })?;
                let mut structured = description(instant, zone);
                structured.insert("formatted".into(), text.clone().into());
                structured.insert("format".into(), args.format.clone().into());
                Ok(tool_success(text, serde_json::Value::Object(structured)))
            })
            .await,
        )
    }
}

/// `name` as a zone, or UTC when absent.
fn zone_or_utc(name: Option<&str>, field: &str) -> Result<Tz, String> {
    match name.map(str::trim) {
        None | Some("") => Ok(Tz::UTC),
        Some(name) => parse_zone(name, field),
    }
}

/// An IANA zone by exact or case-insensitive name; the error suggests similar names.
fn parse_zone(name: &str, field: &str) -> Result<Tz, String> {
    let name = name.trim();
    if let Ok(zone) = name.parse::<Tz>() {
        return Ok(zone);
    }
    if let Some(zone) = TZ_VARIANTS
        .iter()
        .find(|zone| zone.name().eq_ignore_ascii_case(name))
    {
        return Ok(*zone);
    }
    let needle = name
        .rsplit('/')
        .next()
        .unwrap_or(name)
        .replace(' ', "_")
        .to_ascii_lowercase();
    let mut similar: Vec<&str> = Vec::new();
    if needle.len() >= 3 {
        similar = TZ_VARIANTS
            .iter()
            .map(|zone| zone.name())
            .filter(|zone| zone.to_ascii_lowercase().contains(&needle))
            .take(5)
            .collect();
        if similar.is_empty() {
            // Typos: the city part within two edits.
            similar = TZ_VARIANTS
                .iter()
                .map(|zone| zone.name())
                .filter(|zone| {
                    let city = zone.rsplit('/').next().unwrap_or(zone).to_ascii_lowercase();
                    edit_distance(&city, &needle) <= 2
                })
                .take(5)
                .collect();
        }
    }
    let suggestion = if similar.is_empty() {
        String::new()
    } else {
        format!(" (did you mean {}?)", similar.join(", "))
    };
    Err(format!(
        "unknown time zone `{name}` in `{field}`{suggestion}: {ZONE_HINT}"
    ))
}

/// Levenshtein distance of two short ASCII strings.
fn edit_distance(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.bytes().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

/// Reads a timestamp in the formats listed in [`TIMESTAMP_HINT`].
fn parse_timestamp(text: &str, zone: Tz) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(text) {
        return Ok(dt.with_timezone(&Utc));
    }
    if let Ok(seconds) = text.parse::<i64>() {
        return DateTime::from_timestamp(seconds, 0)
            .ok_or_else(|| format!("Unix time {seconds} is out of range"));
    }
    if let Ok(seconds) = text.parse::<f64>()
        && seconds.is_finite()
    {
        let whole = seconds.floor();
        // Saturating float-to-int casts; out-of-range values are refused just below.
        let nanos = ((seconds - whole) * 1e9) as u32;
        return DateTime::from_timestamp(whole as i64, nanos)
            .ok_or_else(|| format!("Unix time {seconds} is out of range"));
    }
    if let Ok(dt) = DateTime::parse_from_rfc2822(text) {
        return Ok(dt.with_timezone(&Utc));
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(text, format) {
            return localize(naive, zone);
        }
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return localize(date.and_time(chrono::NaiveTime::MIN), zone);
    }
    Err(format!(
        "cannot read `{text}` as a timestamp: {TIMESTAMP_HINT}"
    ))
}

/// Reads `text` with a strftime `format`; without an offset in it, the time is in `zone`.
fn parse_with_format(text: &str, format: &str, zone: Tz) -> Result<DateTime<Utc>, String> {
    strftime_items(format)?;
    let text = text.trim();
    let with_offset = match DateTime::parse_from_str(text, format) {
        Ok(dt) => return Ok(dt.with_timezone(&Utc)),
        Err(e) => e,
    };
    let naive = match NaiveDateTime::parse_from_str(text, format) {
        Ok(naive) => return localize(naive, zone),
        Err(e) => e,
    };
    let date = match NaiveDate::parse_from_str(text, format) {
        Ok(date) => return localize(date.and_time(chrono::NaiveTime::MIN), zone),
        Err(e) => e,
    };
    let reason = [with_offset, naive, date]
        .into_iter()
        .find(|e| e.kind() != ParseErrorKind::NotEnough)
        .map_or_else(
            || "the format does not give a full date (it needs year, month and day)".to_owned(),
            |e| e.to_string(),
        );
    Err(format!(
        "`{text}` does not match the format `{format}`: {reason}; check that every part of the text has a \
         specifier (e.g. \"%d/%m/%Y %H:%M\" for \"01/05/2024 14:30\")"
    ))
}

/// Validates a strftime format.
fn strftime_items(format: &str) -> Result<Vec<Item<'_>>, String> {
    StrftimeItems::new(format).parse().map_err(|_| {
        format!(
            "invalid strftime format `{format}`: use specifiers like %Y (year), %m (month), %d (day), \
             %H:%M:%S (time), %z (offset), %Z (zone abbreviation), %A (weekday), %B (month name); \
             write %% for a literal %"
        )
    })
}

/// The instant a local date-time names in `zone`.
fn localize(naive: NaiveDateTime, zone: Tz) -> Result<DateTime<Utc>, String> {
    match zone.from_local_datetime(&naive) {
        chrono::LocalResult::Single(dt) => Ok(dt.with_timezone(&Utc)),
        // A repeated hour (clocks going back): take the first occurrence.
        chrono::LocalResult::Ambiguous(first, _) => Ok(first.with_timezone(&Utc)),
        chrono::LocalResult::None => Err(format!(
            "{naive} does not exist in {} (skipped by a daylight-saving change); \
             give an RFC 3339 timestamp with an explicit offset instead",
            zone.name()
        )),
    }
}

/// The fields every time tool answers with.
fn description(instant: DateTime<Utc>, zone: Tz) -> JsonObject {
    let local = instant.with_timezone(&zone);
    let mut object = JsonObject::new();
    object.insert(
        "iso".into(),
        local.to_rfc3339_opts(SecondsFormat::AutoSi, false).into(),
    );
    object.insert("timezone".into(), zone.name().into());
    object.insert(
        "utc".into(),
        instant.to_rfc3339_opts(SecondsFormat::AutoSi, true).into(),
    );
    object.insert("unix_seconds".into(), instant.timestamp().into());
    object.insert("offset".into(), local.format("%:z").to_string().into());
    object.insert("abbreviation".into(), local.format("%Z").to_string().into());
    object.insert("weekday".into(), local.format("%A").to_string().into());
    object
}

fn describe(label: &str, instant: DateTime<Utc>, zone: Tz) -> CallToolResult {
    let local = instant.with_timezone(&zone);
    let text = format!(
        "{label}: {} ({}, {} {}; UTC {}; Unix {})",
        local.to_rfc3339_opts(SecondsFormat::AutoSi, false),
        local.format("%A"),
        zone.name(),
        local.format("%Z"),
        instant.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        instant.timestamp()
    );
    tool_success(text, serde_json::Value::Object(description(instant, zone)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_are_found_case_insensitively_and_suggested() -> Result<(), String> {
        assert_eq!(parse_zone("europe/paris", "timezone")?, Tz::Europe__Paris);
        let err = parse_zone("Paris", "timezone").unwrap_err();
        assert!(err.contains("Europe/Paris"), "{err}");
        let err = parse_zone("Europe/Pariss", "timezone").unwrap_err();
        assert!(err.contains("did you mean Europe/Paris"), "{err}");
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        let err = parse_zone("Mars/Olympus", "to_timezone").unwrap_err();
        assert!(
            err.contains("`to_timezone`") && err.contains("IANA"),
            "{err}"
        );
        Ok(())
    }

    #[test]
    fn local_times_in_a_dst_gap_are_refused() {
        let err = parse_timestamp("2024-03-31 02:30", Tz::Europe__Paris).unwrap_err();
        assert!(err.contains("daylight-saving"), "{err}");
    }
}
