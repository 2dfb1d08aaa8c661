//! The audit log: one JSON line per call — who called what, and how it went — written by
//! the router, so it records every caller alike (gateway clients, exposed agents,
//! workflows, agents' own tool calls), refused and limited calls included. Arguments are
//! recorded as a digest or with their values redacted; no credential is ever written.

use std::{
    fs::{File, OpenOptions},
    io::{self, Write},
    path::{Path, PathBuf},
    sync::{Arc, Mutex, Weak},
    time::{Duration, SystemTime},
};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use toolmesh_core::{CallContext, CallError, JsonObject};

use crate::Routed;

/// Where audit lines go and what they hold (`gateway.audit`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// File the lines are appended to; when it reaches `max_bytes` it becomes `FILE.1`
    /// (and `FILE.1` becomes `FILE.2`, … up to `keep`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// Size at which the file is rotated (default 100 MiB).
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
    /// Rotated files kept (default 5).
    #[serde(default = "default_keep")]
    pub keep: u32,
    /// Also emit each line as an event of the tracing target `toolmesh::audit`.
    #[serde(default)]
    pub tracing: bool,
    /// How arguments are recorded (default `digest`).
    #[serde(default)]
    pub arguments: ArgumentsRecord,
    /// Lines are held in memory and written together at most this long after their call
    /// (and when 64 KiB are held, on a clean stop and on reload): one `write` for many
    /// calls. Unset (the default), each line is written as its call ends, so a crash of
    /// toolmesh loses none; with it, a crash loses at most this window.
    #[serde(
        default,
        with = "toolmesh_core::duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub flush_interval: Option<Duration>,
}

impl AuditConfig {
    /// What is wrong with `flush_interval`, if anything: a zero interval would write
    /// without pause.
    pub fn flush_interval_problem(&self) -> Option<&'static str> {
        (self.flush_interval == Some(Duration::ZERO)).then_some(
            "must be longer than 0 (e.g. 100ms); leave it out to write each line as its call ends",
        )
    }
}

fn default_max_bytes() -> u64 {
    100 * 1024 * 1024
}

fn default_keep() -> u32 {
    5
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            file: None,
            max_bytes: default_max_bytes(),
            keep: default_keep(),
            tracing: false,
            arguments: ArgumentsRecord::default(),
            flush_interval: None,
        }
    }
}

/// How a call's arguments appear in its audit line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArgumentsRecord {
    /// `sha256:<hex>` of their JSON: equal arguments are recognisable, none readable.
    #[default]
    Digest,
    /// Their keys, every value replaced by `"[redacted]"`.
    Redacted,
    /// Nothing.
    None,
}

/// Lines held past this are written at once, whatever the flush interval.
const HELD_BYTES: usize = 64 * 1024;

/// A size-rotated file.
struct Sink {
    path: PathBuf,
    file: File,
    written: u64,
    /// Lines not yet written (with `flush_interval`).
    held: Vec<u8>,
}

/// Writes audit lines. Set it on a registry with
/// [`Registry::set_audit`](crate::Registry::set_audit).
pub struct Audit {
    config: AuditConfig,
    sink: Option<Arc<Mutex<Sink>>>,
    /// The thread writing held lines (with `flush_interval`), woken to end.
    flusher: Option<std::thread::Thread>,
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Audit")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Audit {
    /// Opens (creating) the file of `config`, if any.
    ///
    /// # Errors
    ///
    /// When the file cannot be opened for appending; the error names it.
    pub fn new(config: AuditConfig) -> io::Result<Self> {
        if let Some(problem) = config.flush_interval_problem() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("gateway.audit.flush_interval {problem}"),
            ));
        }
        let mut flusher_thread = None;
        let sink = match &config.file {
            Some(path) => {
                let file = open(path)?;
                let written = file.metadata().map(|m| m.len()).unwrap_or(0);
                let sink = Arc::new(Mutex::new(Sink {
                    path: path.clone(),
                    file,
                    written,
                    held: Vec::new(),
                }));
                if let Some(every) = config.flush_interval {
                    flusher_thread = Some(flusher(Arc::downgrade(&sink), every, config.clone())?);
                }
                Some(sink)
            }
            None => None,
        };
        Ok(Self {
            config,
            sink,
            flusher: flusher_thread,
        })
    }

    /// Writes the lines held by `flush_interval` now.
    pub fn flush(&self) {
        if let Some(sink) = &self.sink {
            lock(sink).flush(&self.config);
        }
    }

    /// How `arguments` are recorded.
    pub(crate) fn arguments(&self, arguments: Option<&JsonObject>) -> Value {
        let Some(arguments) = arguments else {
            return Value::Null;
        };
        match self.config.arguments {
            ArgumentsRecord::Digest => {
                // Hashed as it is serialized: no copy of the arguments' text.
                let mut hashing = Hashing(Sha256::new());
                let _ = serde_json::to_writer(&mut hashing, arguments);
                let mut digest = String::with_capacity(71);
                digest.push_str("sha256:");
                hex(&hashing.0.finalize(), &mut digest);
                Value::String(digest)
            }
            ArgumentsRecord::Redacted => Value::Object(
                arguments
                    .keys()
                    .map(|k| (k.clone(), Value::from("[redacted]")))
                    .collect(),
            ),
            ArgumentsRecord::None => Value::Null,
        }
    }

    /// Records one call of `tool` under `ctx` that ended with `outcome`.
    pub(crate) fn record(
        &self,
        tool: &str,
        ctx: &CallContext,
        arguments: Value,
        outcome: &Result<Routed, CallError>,
        latency: Duration,
    ) {
        let (result, error_kind, meta) = match outcome {
            Ok(routed) if routed.result.is_error == Some(true) => {
                ("tool_error", None, Some(&routed.meta))
            }
            Ok(routed) => ("ok", None, Some(&routed.meta)),
            Err(e @ CallError::Denied { .. }) => ("denied", Some(e.kind()), None),
            Err(e @ CallError::RateLimited { .. }) => ("limited", Some(e.kind()), None),
            Err(e) => ("failed", Some(e.kind()), None),
        };
        let line = Line {
            time: humantime::format_rfc3339_millis(SystemTime::now()),
            request_id: ctx.request_id.as_ref(),
            principal: ctx.principal.as_deref(),
            roles: ctx.roles.as_deref(),
            tool,
            arguments: &arguments,
            outcome: result,
            error_kind: error_kind.map(|k| k.as_str()),
            instance: meta.and_then(|m| m.instance.as_ref()).map(|i| i.as_str()),
            attempts: meta.map_or(0, |m| m.attempts),
            latency_ms: latency.as_secs_f64() * 1000.0,
        };
        let mut bytes = line.to_json();
        if self.config.tracing {
            tracing::info!(target: "toolmesh::audit", "{}", String::from_utf8_lossy(&bytes));
        }
        if let Some(sink) = &self.sink {
            bytes.push(b'\n');
            let mut sink = lock(sink);
            if self.config.flush_interval.is_some() {
                sink.held.extend_from_slice(&bytes);
                if sink.held.len() >= HELD_BYTES {
                    sink.flush(&self.config);
                }
            } else if let Err(error) = sink.write(&bytes, &self.config) {
                tracing::warn!(file = %sink.path.display(), %error, "cannot write the audit log");
            }
        }
    }
}

impl Drop for Audit {
    /// A replaced or removed audit log writes what it holds.
    fn drop(&mut self) {
        if let Some(sink) = self.sink.take() {
            lock(&sink).flush(&self.config);
        }
        // Its sink is gone (or going): it ends when it wakes.
        if let Some(thread) = &self.flusher {
            thread.unpark();
        }
    }
}

fn lock(sink: &Mutex<Sink>) -> std::sync::MutexGuard<'_, Sink> {
    sink.lock().unwrap_or_else(|p| p.into_inner())
}

/// Writes the held lines of `sink` every `every` until the audit log is dropped.
fn flusher(
    sink: Weak<Mutex<Sink>>,
    every: Duration,
    config: AuditConfig,
) -> io::Result<std::thread::Thread> {
    let handle = std::thread::Builder::new()
        .name("toolmesh-audit".into())
        .spawn(move || {
            loop {
                std::thread::park_timeout(every);
                let Some(sink) = sink.upgrade() else { return };
                lock(&sink).flush(&config);
            }
        })?;
    Ok(handle.thread().clone())
}

/// One audit line.
struct Line<'a> {
    time: humantime::Rfc3339Timestamp,
    request_id: Option<&'a toolmesh_core::RequestId>,
    principal: Option<&'a str>,
    roles: Option<&'a [String]>,
    tool: &'a str,
    arguments: &'a Value,
    outcome: &'static str,
    error_kind: Option<&'static str>,
    instance: Option<&'a str>,
    attempts: u32,
    latency_ms: f64,
}

impl Line<'_> {
    /// The line as one JSON object. Written by hand: keys, the time and our own words
    /// need no escaping, so only the callers' and servers' strings go through
    /// `serde_json` (a third of the audit's cost was escaping what needs none).
    fn to_json(&self) -> Vec<u8> {
        use std::io::Write as _;
        fn value(out: &mut Vec<u8>, value: &impl Serialize) {
            // Writing to a Vec fails only on a serializer error, which these types lack.
            if serde_json::to_writer(&mut *out, value).is_err() {
                out.extend_from_slice(b"null");
            }
        }
        fn word(out: &mut Vec<u8>, word: Option<&'static str>) {
            match word {
                Some(word) => {
                    out.push(b'"');
                    out.extend_from_slice(word.as_bytes());
                    out.push(b'"');
                }
                None => out.extend_from_slice(b"null"),
            }
        }
        let mut out = Vec::with_capacity(320);
        let _ = write!(out, "{{\"time\":\"{}\",\"request_id\":", self.time);
        value(&mut out, &self.request_id);
        out.extend_from_slice(b",\"principal\":");
        value(&mut out, &self.principal);
        out.extend_from_slice(b",\"roles\":");
        value(&mut out, &self.roles);
        out.extend_from_slice(b",\"tool\":");
        value(&mut out, &self.tool);
        out.extend_from_slice(b",\"arguments\":");
        value(&mut out, self.arguments);
        out.extend_from_slice(b",\"outcome\":");
        word(&mut out, Some(self.outcome));
        out.extend_from_slice(b",\"error_kind\":");
        word(&mut out, self.error_kind);
        out.extend_from_slice(b",\"instance\":");
        value(&mut out, &self.instance);
        let _ = write!(out, ",\"attempts\":{},\"latency_ms\":", self.attempts);
        value(&mut out, &self.latency_ms);
        out.push(b'}');
        out
    }
}

impl Sink {
    /// Writes the held lines, if any.
    fn flush(&mut self, config: &AuditConfig) {
        if self.held.is_empty() {
            return;
        }
        let held = std::mem::take(&mut self.held);
        if let Err(error) = self.write(&held, config) {
            tracing::warn!(file = %self.path.display(), %error, "cannot write the audit log");
        }
        // Keep the allocation for the next lines.
        self.held = held;
        self.held.clear();
    }

    fn write(&mut self, bytes: &[u8], config: &AuditConfig) -> io::Result<()> {
        if self.written > 0 && self.written + bytes.len() as u64 > config.max_bytes {
            self.rotate(config.keep)?;
        }
        self.file.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// `FILE` becomes `FILE.1`, `FILE.1` becomes `FILE.2`, …; the oldest beyond `keep`
    /// goes.
    fn rotate(&mut self, keep: u32) -> io::Result<()> {
        let numbered = |n: u32| {
            let mut name = self.path.clone().into_os_string();
            name.push(format!(".{n}"));
            PathBuf::from(name)
        };
        if keep == 0 {
            std::fs::remove_file(&self.path)?;
        } else {
            for n in (1..keep).rev() {
                let from = numbered(n);
                if from.exists() {
                    std::fs::rename(&from, numbered(n + 1))?;
                }
            }
            std::fs::rename(&self.path, numbered(1))?;
        }
        self.file = open(&self.path)?;
        self.written = 0;
        Ok(())
    }
}

fn open(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("audit log {}: {e}", path.display())))
}

/// Appends `bytes` to `out` in lowercase hex.
fn hex(bytes: &[u8], out: &mut String) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
}

/// Feeds what is written to a SHA-256.
struct Hashing(Sha256);

impl Write for Hashing {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.update(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_json_whatever_its_strings_hold() {
        let roles = ["r\"1".to_owned(), "\u{1F600}".to_owned()];
        let id = toolmesh_core::RequestId::String("id\n\\x".into());
        let arguments = serde_json::json!({"a": "\u{0}"});
        let line = Line {
            time: humantime::format_rfc3339_millis(SystemTime::UNIX_EPOCH),
            request_id: Some(&id),
            principal: Some("key:\"quoted\""),
            roles: Some(&roles),
            tool: "fx__e\tcho",
            arguments: &arguments,
            outcome: "ok",
            error_kind: None,
            instance: None,
            attempts: 2,
            latency_ms: 1.25,
        };
        let parsed: Value = serde_json::from_slice(&line.to_json()).unwrap_or_default();
        assert_eq!(
            parsed,
            serde_json::json!({
                "time": "1970-01-01T00:00:00.000Z", "request_id": "id\n\\x",
                "principal": "key:\"quoted\"", "roles": ["r\"1", "\u{1F600}"],
                "tool": "fx__e\tcho", "arguments": {"a": "\u{0}"}, "outcome": "ok",
                "error_kind": null, "instance": null, "attempts": 2, "latency_ms": 1.25,
            })
        );
    }

    #[test]
    fn the_digest_is_the_sha256_of_the_arguments_json() {
        let audit = Audit::new(AuditConfig::default()).ok();
        let arguments = serde_json::json!({"message": "hi", "n": [1, 2]});
        let expected = {
            let mut hex_digest = String::from("sha256:");
            let text = serde_json::to_vec(&arguments).unwrap_or_default();
            hex(&Sha256::digest(&text), &mut hex_digest);
            hex_digest
        };
        assert_eq!(
            audit.map(|a| a.arguments(arguments.as_object())),
            Some(Value::String(expected))
        );
    }
}
