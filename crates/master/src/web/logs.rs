//! A bounded ring of recent log lines for the Logs tab, `/logs` and
//! `/api/v1/logs`.
//!
//! [`LogBuffer`] is a `tracing_subscriber::Layer`, so the binary installs it
//! beside its console output and the UI shows the same lines without reading
//! files. It keeps the newest lines only: memory stays bounded however long
//! the master runs.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context;

use crate::now_ms;

/// Lines kept when [`LogBuffer::default`] is used.
pub const DEFAULT_CAPACITY: usize = 1000;

/// The longest message kept, in bytes: a line may quote a stranger.
pub const MAX_LINE_BYTES: usize = 1024;

/// One line, as it may be shown: control characters escaped (no forged
/// lines, no terminal escapes) and at most [`MAX_LINE_BYTES`].
fn one_line(message: &str) -> String {
    let mut line = protocol::printable(message, MAX_LINE_BYTES);
    if line.len() > MAX_LINE_BYTES {
        let mut cut = MAX_LINE_BYTES - '…'.len_utf8();
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        line.truncate(cut);
        line.push('…');
    }
    line
}

/// One recorded event. `seq` grows by one per line, so a client can ask for
/// what came after the last line it saw.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogLine {
    pub seq: u64,
    pub time_ms: u64,
    pub level: String,
    /// The part of swarmer that logged it (`master`, `worker`, `script`…):
    /// the crate, never a Rust module path, or a target the code chose.
    pub target: String,
    pub message: String,
}

impl LogLine {
    /// Locust's `/logs` shape: one plain string per line.
    pub fn to_text(&self) -> String {
        let time = stats::csv::utc_timestamp(self.time_ms);
        format!("{time} {}/{}: {}", self.level, self.target, self.message)
    }
}

struct Ring {
    lines: VecDeque<LogLine>,
    capacity: usize,
    next_seq: u64,
}

/// Shared and cheap to clone: the binary keeps one clone as a layer and
/// hands another to the web server.
#[derive(Clone)]
pub struct LogBuffer {
    ring: Arc<Mutex<Ring>>,
}

impl Default for LogBuffer {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

impl std::fmt::Debug for LogBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogBuffer")
            .field("lines", &self.len())
            .finish()
    }
}

impl LogBuffer {
    pub fn new(capacity: usize) -> Self {
        let ring = Ring {
            lines: VecDeque::with_capacity(capacity.min(DEFAULT_CAPACITY)),
            capacity: capacity.max(1),
            next_seq: 1,
        };
        Self {
            ring: Arc::new(Mutex::new(ring)),
        }
    }

    /// Appends a line, dropping the oldest when full.
    pub fn push(&self, level: &str, target: &str, message: String) {
        // A poisoned lock only means another thread panicked mid-push; the
        // ring is still a valid ring, so keep logging.
        let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        let seq = ring.next_seq;
        ring.next_seq += 1;
        if ring.lines.len() >= ring.capacity {
            ring.lines.pop_front();
        }
        ring.lines.push_back(LogLine {
            seq,
            time_ms: now_ms(),
            level: level.to_string(),
            target: target.to_string(),
            message: one_line(&message),
        });
    }

    /// Lines with `seq > after`, oldest first, at most `limit` of the newest.
    pub fn since(&self, after: u64, limit: usize) -> Vec<LogLine> {
        let ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        let fresh: Vec<&LogLine> = ring.lines.iter().filter(|l| l.seq > after).collect();
        let skip = fresh.len().saturating_sub(limit);
        fresh.into_iter().skip(skip).cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.ring.lock().map(|r| r.lines.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Collects an event's message and its other fields as `key=value`.
#[derive(Default)]
struct Fields {
    message: String,
    extra: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.extra, " {}={value:?}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.extra, " {}={value:?}", field.name());
        }
    }
}

impl<S: Subscriber> tracing_subscriber::Layer<S> for LogBuffer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let meta = event.metadata();
        let text = fields.message + &fields.extra;
        let target = match meta.module_path() {
            // The default target is the module path: name the crate only.
            Some(module) if module == meta.target() => component(module),
            // A target chosen by the code (`swarmer::scale`, `script`) is a
            // name meant for readers: kept.
            _ => meta.target(),
        };
        self.push(meta.level().as_str(), target, text);
    }
}

/// `master::coordinator::run` → `master`: the reader of the Logs tab wants
/// to know which part spoke, not where in the source it sits.
fn component(target: &str) -> &str {
    target.split("::").next().unwrap_or(target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn keeps_only_the_newest_lines() {
        let buf = LogBuffer::new(3);
        for i in 0..5 {
            buf.push("INFO", "t", format!("line {i}"));
        }
        let lines = buf.since(0, 100);
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].message, "line 2");
        assert_eq!(lines[2].seq, 5);
        assert_eq!(buf.since(4, 100).len(), 1);
        assert_eq!(buf.since(0, 1)[0].message, "line 4");
    }

    #[test]
    fn lines_are_capped_and_cannot_forge_others() {
        let buf = LogBuffer::new(3);
        buf.push("WARN", "t", format!("id {}\nFORGED", "x".repeat(8 << 20)));
        buf.push("WARN", "t", "a\nb\u{1b}[31m".into());
        let lines = buf.since(0, 10);
        assert!(lines[0].message.len() <= MAX_LINE_BYTES);
        assert!(lines[0].message.ends_with('…'));
        assert_eq!(lines[1].message, "a\\nb\\u{1b}[31m");
    }

    #[test]
    fn records_tracing_events_with_fields() {
        let buf = LogBuffer::new(10);
        let subscriber = tracing_subscriber::registry().with(buf.clone());
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(from = 2, to = 4, "scaling workers");
        });
        let line = &buf.since(0, 10)[0];
        assert_eq!(line.level, "WARN");
        assert_eq!(line.message, "scaling workers from=2 to=4");
        assert!(line.to_text().contains("WARN/"));
        assert!(!line.target.contains("::"), "a module path: {line:?}");
    }
}
