//! Tables and result text.

use std::time::Duration;

use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use serde_json::Value;
use toolmesh::layers::core::{CallToolResult, ToolAnnotations};

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

/// A table with the house style.
pub(crate) fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.to_vec());
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

/// The text of a result: text blocks as they are, anything else as JSON; the structured
/// content when there is no text.
pub(crate) fn result_text(result: &CallToolResult) -> String {
    let mut parts: Vec<String> = result
        .content
        .iter()
        .map(|block| match serde_json::to_value(block) {
            Ok(Value::Object(map)) if map.get("type") == Some(&Value::from("text")) => map
                .get("text")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            Ok(other) => other.to_string(),
            Err(e) => format!("<unprintable content: {e}>"),
        })
        .collect();
    if parts.is_empty()
        && let Some(structured) = &result.structured_content
    {
        parts.push(structured.to_string());
    }
    parts.join("\n")
}

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

/// A serialized `Duration` (`{"secs": 1, "nanos": 0}`) back as a `Duration`.
pub(crate) fn duration_of(value: &Value) -> Option<Duration> {
    let secs = value.get("secs")?.as_u64()?;
    let nanos = value.get("nanos")?.as_u64()?;
    Some(Duration::new(secs, u32::try_from(nanos).ok()?))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn durations_read_back_and_print_short() {
        let d = duration_of(&json!({"secs": 0, "nanos": 1_500_000})).map(millis);
        assert_eq!(d.as_deref(), Some("1.5ms"));
        assert_eq!(millis(Duration::from_micros(340)), "340µs");
        assert_eq!(millis(Duration::from_millis(2500)), "2.50s");
        assert_eq!(duration_of(&Value::Null), None);
    }
}
