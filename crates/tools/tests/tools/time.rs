use serde_json::json;
use toolmesh_tools::{TimeConvert, TimeFormat, TimeNow, TimeParse};

use crate::support::{call, ok, tool_err};

#[tokio::test]
async fn now_in_a_zone() -> anyhow::Result<()> {
    let result = call(&TimeNow, json!({ "timezone": "Asia/Tokyo" })).await?;
    let structured = ok(&result);
    assert_eq!(structured["timezone"], "Asia/Tokyo");
    assert_eq!(structured["offset"], "+09:00");
    let iso = structured["iso"].as_str().unwrap_or_default();
    assert!(iso.ends_with("+09:00"), "{iso}");
    let unix = structured["unix_seconds"].as_i64().unwrap_or_default();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    assert!(now.abs_diff(unix as u64) < 60, "{unix} vs {now}");

    let result = call(&TimeNow, json!({})).await?;
    assert_eq!(ok(&result)["timezone"], "UTC");
    Ok(())
}

#[tokio::test]
async fn invalid_zone_explains_how_to_spell_zones() -> anyhow::Result<()> {
    let result = call(&TimeNow, json!({ "timezone": "Mars/Olympus_Mons" })).await?;
    tool_err(
        &result,
        &[
            "unknown time zone `Mars/Olympus_Mons`",
            "Europe/Paris",
            "IANA",
        ],
    );
    let result = call(&TimeNow, json!({ "timezone": "Paris" })).await?;
    tool_err(&result, &["did you mean Europe/Paris"]);
    let result = call(
        &TimeConvert,
        json!({ "timestamp": "2024-01-15T12:00:00Z", "to_timezone": "CET+1" }),
    )
    .await?;
    tool_err(&result, &["`to_timezone`"]);
    Ok(())
}

#[tokio::test]
async fn converts_between_zones() -> anyhow::Result<()> {
    let result = call(
        &TimeConvert,
        json!({ "timestamp": "2024-01-15T12:00:00Z", "to_timezone": "America/New_York" }),
    )
    .await?;
    let structured = ok(&result);
    assert_eq!(structured["iso"], "2024-01-15T07:00:00-05:00");
    assert_eq!(structured["abbreviation"], "EST");
    assert_eq!(structured["weekday"], "Monday");

    // A local time without offset is read in from_timezone (summer: UTC+2).
    let result = call(
        &TimeConvert,
        json!({ "timestamp": "2024-07-01 09:00", "from_timezone": "Europe/Paris", "to_timezone": "utc" }),
    )
    .await?;
    assert_eq!(ok(&result)["iso"], "2024-07-01T07:00:00+00:00");

    // Unix seconds.
    let result = call(
        &TimeConvert,
        json!({ "timestamp": "0", "to_timezone": "Asia/Kolkata" }),
    )
    .await?;
    assert_eq!(ok(&result)["iso"], "1970-01-01T05:30:00+05:30");

    let result = call(
        &TimeConvert,
        json!({ "timestamp": "next tuesday", "to_timezone": "UTC" }),
    )
    .await?;
    tool_err(&result, &["cannot read `next tuesday`", "RFC 3339"]);
    Ok(())
}

#[tokio::test]
async fn parses_rfc3339_and_strftime() -> anyhow::Result<()> {
    let result = call(&TimeParse, json!({ "text": "2024-05-01T12:00:00+02:00" })).await?;
    let structured = ok(&result);
    assert_eq!(structured["utc"], "2024-05-01T10:00:00Z");
    assert_eq!(structured["unix_seconds"], 1_714_557_600);

    let result = call(
        &TimeParse,
        json!({ "text": "01/05/2024 14:30", "format": "%d/%m/%Y %H:%M", "timezone": "Europe/Paris" }),
    )
    .await?;
    let structured = ok(&result);
    assert_eq!(structured["utc"], "2024-05-01T12:30:00Z");
    assert_eq!(structured["iso"], "2024-05-01T14:30:00+02:00");

    let result = call(
        &TimeParse,
        json!({ "text": "2024-05-01 14:30 +0900", "format": "%Y-%m-%d %H:%M %z" }),
    )
    .await?;
    assert_eq!(ok(&result)["utc"], "2024-05-01T05:30:00Z");

    let result = call(
        &TimeParse,
        json!({ "text": "May 1st", "format": "%d/%m/%Y" }),
    )
    .await?;
    tool_err(&result, &["does not match the format `%d/%m/%Y`"]);

    let result = call(&TimeParse, json!({ "text": "1 May", "format": "%d %B" })).await?;
    tool_err(&result, &["full date"]);
    Ok(())
}

#[tokio::test]
async fn formats_with_strftime() -> anyhow::Result<()> {
    let result = call(
        &TimeFormat,
        json!({
            "timestamp": "2024-05-01T12:00:00Z",
            "format": "%A %d %B %Y, %H:%M %Z",
            "timezone": "Europe/Paris"
        }),
    )
    .await?;
    let structured = ok(&result);
    assert_eq!(structured["formatted"], "Wednesday 01 May 2024, 14:00 CEST");

    let result = call(
        &TimeFormat,
        json!({ "timestamp": "2024-05-01T12:00:00Z", "format": "%Y-%Q" }),
    )
    .await?;
    tool_err(&result, &["invalid strftime format `%Y-%Q`", "%Y"]);
    Ok(())
}
