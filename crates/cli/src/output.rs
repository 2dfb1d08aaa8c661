//! Tables and result text.

use std::time::Duration;

use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use serde_json::Value;
use toolmesh::layers::core::ToolAnnotations;

/// Writes `text` and a newline to stdout. A closed pipe (`toolmesh tools | head`) is
/// not an error: nobody reads any more.
pub(crate) fn emit(text: &str) -> std::io::Result<()> {
    emit_raw(&format!("{text}\n"))
}

/// Buffered stdout for large output written piece by piece (a serializer's writer),
/// so no copy of the whole text is built first. Like [`emit`], a closed pipe is not
/// an error: the rest is dropped.
pub(crate) struct StdoutSink {
    out: std::io::BufWriter<std::io::StdoutLock<'static>>,
    closed: bool,
}

impl StdoutSink {
    pub(crate) fn new() -> Self {
        Self {
            out: std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock()),
            closed: false,
        }
    }

    /// `result`, with a closed pipe remembered and taken as success.
    fn tolerate(&mut self, result: std::io::Result<()>) -> std::io::Result<()> {
        match result {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            other => other,
        }
    }
}

impl std::io::Write for StdoutSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if !self.closed {
            let result = self.out.write_all(buf);
            self.tolerate(result)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.closed {
            return Ok(());
        }
        let result = self.out.flush();
        self.tolerate(result)
    }
}

/// Writes `text` to stdout as it is and flushes; a closed pipe is not an error.
pub(crate) fn emit_raw(text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// A table with the house style, its cells wrapped to fit the terminal: the width of
/// stdout's terminal, or `COLUMNS` when set (e.g. when piped).
pub(crate) fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.to_vec());
    if let Some(width) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<u16>().ok())
        .filter(|&w| w > 0)
    {
        table.set_width(width);
    }
    table
}

/// `read-only, idempotent` and friends, from a tool's hints.
pub(crate) fn annotations(hints: Option<&ToolAnnotations>) -> String {
    let Some(hints) = hints else {
        return String::new();
    };
    let mut words = Vec::new();
    if hints.read_only_hint == Some(true) {
        words.push("read-only");
    }
    if hints.idempotent_hint == Some(true) {
        words.push("idempotent");
    }
    if hints.destructive_hint == Some(true) {
        words.push("destructive");
    }
    if hints.open_world_hint == Some(true) {
        words.push("open-world");
    }
    words.join(", ")
}

pub(crate) use toolmesh::layers::core::result_text;

/// `1.2ms`, `340µs`, `2.5s`.
pub(crate) fn millis(duration: Duration) -> String {
    let micros = duration.as_micros();
    if micros < 1000 {
        format!("{micros}µs")
    } else if micros < 1_000_000 {
        format!("{:.1}ms", micros as f64 / 1000.0)
    } else {
        format!("{:.2}s", duration.as_secs_f64())
    }
}

/// `1.2ms` and friends, from milliseconds.
pub(crate) fn millis_f64(ms: f64) -> String {
    millis(Duration::try_from_secs_f64(ms / 1000.0).unwrap_or_default())
}

/// Rewrites every serialized `Duration` (`"p99_latency": {"secs": 1, "nanos": 0}`) in
/// `value` as milliseconds (`"p99_latency_ms": 1000.0`), a missing one (`null` under a
/// duration's name) as `"…_ms": null`.
pub(crate) fn durations_in_ms(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let keys: Vec<String> = map.keys().cloned().collect();
            for key in keys {
                let Some(mut inner) = map.remove(&key) else {
                    continue;
                };
                let ms = match &inner {
                    Value::Null if is_duration_name(&key) => Some(Value::Null),
                    Value::Object(_) => duration_ms(&inner).map(Value::from),
                    _ => None,
                };
                match ms {
                    Some(ms) => {
                        map.insert(format!("{key}_ms"), ms);
                    }
                    None => {
                        durations_in_ms(&mut inner);
                        map.insert(key, inner);
                    }
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(durations_in_ms),
        _ => {}
    }
}

/// The names the reports give durations.
fn is_duration_name(key: &str) -> bool {
    key.ends_with("latency") || key.ends_with("_age") || key == "retry_in"
}

/// A serialized `Duration` in milliseconds.
fn duration_ms(value: &Value) -> Option<f64> {
    let map = value.as_object().filter(|m| m.len() == 2)?;
    let secs = map.get("secs")?.as_u64()?;
    let nanos = map.get("nanos")?.as_u64()?;
    Some(secs as f64 * 1000.0 + nanos as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn durations_print_short() {
        assert_eq!(millis_f64(1.5), "1.5ms");
        assert_eq!(millis(Duration::from_micros(340)), "340µs");
        assert_eq!(millis(Duration::from_millis(2500)), "2.50s");
    }

    #[test]
    fn serialized_durations_become_milliseconds() {
        let mut report = json!({
            "instances": [{"load": {"calls": 2, "p99_latency": {"secs": 1, "nanos": 500_000},
                                    "mean_latency": null, "outstanding": 0}}],
            "services": [{"discovery_age": {"secs": 0, "nanos": 2_000_000}, "tools": 3}],
            "already_ms": {"latency_ms": 4.0}
        });
        durations_in_ms(&mut report);
        assert_eq!(
            report,
            json!({
                "instances": [{"load": {"calls": 2, "p99_latency_ms": 1000.5,
                                        "mean_latency_ms": null, "outstanding": 0}}],
                "services": [{"discovery_age_ms": 2.0, "tools": 3}],
                "already_ms": {"latency_ms": 4.0}
            })
        );
    }
}
