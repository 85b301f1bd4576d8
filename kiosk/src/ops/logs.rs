//! Logging: `tracing` records to journald (under systemd) and to a local rolling store that operators
//! read from a cursor (`/v1/logs?since=`, `kioskctl logs`).
//!
//! The local store is its own small SQLite file (`logs.sqlite` next to the kiosk database), not files:
//! the cursor is the row id, readers in other processes (the API, `kioskctl`) see a consistent
//! snapshot, and "rolling" is deleting the oldest rows past a capacity. It is a separate file so that
//! a burst of logging can never hold the write lock the kiosk's shots and completions need.
//! Every message and field is passed through [`super::redact::scrub`] before it is stored.
//!
//! What it deliberately does not do: ship logs anywhere (fleets use systemd-journal-upload or Alloy
//! on the journal), or keep them for long (capacity is rows, default [`DEFAULT_CAPACITY`]).

use std::fmt::Write as _;
use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, params};
use serde::Serialize;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;

use super::redact::scrub;

/// Rows kept by default: at a few records a second while busy, days of a kiosk's life.
pub const DEFAULT_CAPACITY: i64 = 200_000;
/// Prune after this many inserts (pruning on every insert would double the writes).
const PRUNE_EVERY: u32 = 256;

/// Why the log store cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("log store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A level name that is not one of error, warn, info, debug, trace.
    #[error("unknown log level {0:?}")]
    Level(String),
}

/// One stored record.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LogRecord {
    /// Strictly increasing; pass the last one seen as the next `since`.
    pub cursor: i64,
    /// Unix seconds.
    pub at: i64,
    pub level: String,
    pub target: String,
    pub message: String,
    /// The event's other fields, as a JSON object.
    pub fields: serde_json::Value,
}

/// Levels as stored: a smaller number is more severe, so "at least warn" is `level <= 2`.
fn level_num(level: &Level) -> i64 {
    match *level {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        Level::TRACE => 5,
    }
}

fn level_name(n: i64) -> &'static str {
    match n {
        1 => "error",
        2 => "warn",
        3 => "info",
        4 => "debug",
        _ => "trace",
    }
}

/// Parses `error`/`warn`/`info`/`debug`/`trace` (case-insensitive) to the stored number.
pub fn parse_level(s: &str) -> Result<i64, LogError> {
    Ok(match s.to_ascii_lowercase().as_str() {
        "error" => 1,
        "warn" | "warning" => 2,
        "info" => 3,
        "debug" => 4,
        "trace" => 5,
        _ => return Err(LogError::Level(s.into())),
    })
}

/// The rolling store.
#[derive(Debug)]
pub struct LogStore {
    conn: Mutex<Connection>,
    capacity: i64,
    inserts: Mutex<u32>,
}

impl LogStore {
    /// Opens (creating) the store at `path`.
    pub fn open(path: &Path, capacity: i64) -> Result<LogStore, LogError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(2))?;
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))?;
        // Losing the last records on power loss is acceptable; an fsync per log line on an SD card is not.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS logs (
                seq     INTEGER PRIMARY KEY AUTOINCREMENT,
                at      INTEGER NOT NULL,
                level   INTEGER NOT NULL,
                target  TEXT NOT NULL,
                message TEXT NOT NULL,
                fields  TEXT NOT NULL
            ) STRICT;",
        )?;
        Ok(LogStore {
            conn: Mutex::new(conn),
            capacity: capacity.max(1),
            inserts: Mutex::new(0),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends one record (already scrubbed by the caller or not: it is scrubbed again here).
    pub fn append(
        &self,
        at: i64,
        level: &Level,
        target: &str,
        message: &str,
        fields: &serde_json::Value,
    ) -> Result<i64, LogError> {
        let fields_text = fields.to_string();
        let conn = self.conn();
        conn.prepare_cached(
            "INSERT INTO logs (at, level, target, message, fields) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            at,
            level_num(level),
            target,
            scrub(message).as_ref(),
            scrub(&fields_text).as_ref()
        ])?;
        let seq = conn.last_insert_rowid();
        let mut n = self.inserts.lock().unwrap_or_else(|p| p.into_inner());
        *n += 1;
        if *n >= PRUNE_EVERY {
            *n = 0;
            conn.execute("DELETE FROM logs WHERE seq <= ?1", [seq - self.capacity])?;
        }
        Ok(seq)
    }

    /// Records with cursor `> since`, at least as severe as `max_level` (1 error .. 5 trace), oldest
    /// first, at most `limit`.
    pub fn since(&self, since: i64, max_level: i64, limit: usize) -> Result<Vec<LogRecord>, LogError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT seq, at, level, target, message, fields FROM logs \
             WHERE seq > ?1 AND level <= ?2 ORDER BY seq LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![since, max_level, limit.min(100_000) as i64], |r| {
            let fields: String = r.get(5)?;
            Ok(LogRecord {
                cursor: r.get(0)?,
                at: r.get(1)?,
                level: level_name(r.get(2)?).into(),
                target: r.get(3)?,
                message: r.get(4)?,
                fields: serde_json::from_str(&fields).unwrap_or(serde_json::Value::Null),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The newest cursor (0 when empty).
    pub fn last_cursor(&self) -> Result<i64, LogError> {
        Ok(self
            .conn()
            .query_row("SELECT coalesce(max(seq), 0) FROM logs", [], |r| r.get(0))?)
    }
}

/// A `tracing` layer that appends every event to a [`LogStore`].
#[derive(Debug, Clone)]
pub struct StoreLayer {
    store: Arc<LogStore>,
}

impl StoreLayer {
    pub fn new(store: Arc<LogStore>) -> StoreLayer {
        StoreLayer { store }
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    rest: serde_json::Map<String, serde_json::Value>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let mut text = String::new();
        let _ = write!(text, "{value:?}");
        if field.name() == "message" {
            self.message = text;
        } else {
            self.rest.insert(field.name().into(), text.into());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.into();
        } else {
            self.rest.insert(field.name().into(), value.into());
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.rest.insert(field.name().into(), value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.rest.insert(field.name().into(), value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.rest.insert(field.name().into(), value.into());
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.rest.insert(field.name().into(), value.into());
    }
}

impl<S: Subscriber> Layer<S> for StoreLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let meta = event.metadata();
        // A log store that fails must not take the kiosk down, and must not log about itself (that
        // would recurse): the journal still has the record.
        let _ = self.store.append(
            crate::clock::unix_now(),
            meta.level(),
            meta.target(),
            &fields.message,
            &serde_json::Value::Object(fields.rest),
        );
    }
}

/// Whether stderr is connected to the journal (systemd sets `JOURNAL_STREAM=dev:inode` for it).
pub fn under_journald() -> bool {
    std::env::var_os("JOURNAL_STREAM").is_some_and(|v| !v.is_empty())
}

/// Installs the global subscriber for a long-running kiosk process: journald when under systemd
/// (else human-readable stderr), plus the local store when one is given. `filter` is an `EnvFilter`
/// directive such as `info` or `kiosk=debug,info`; `RUST_LOG` overrides it.
pub fn init(filter: &str, store: Option<Arc<LogStore>>) {
    use tracing_subscriber::prelude::*;
    let env = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter));
    let journald = if under_journald() {
        tracing_journald::layer().ok()
    } else {
        None
    };
    let stderr = journald
        .is_none()
        .then(|| tracing_subscriber::fmt::layer().with_writer(std::io::stderr));
    let _ = tracing_subscriber::registry()
        .with(env)
        .with(journald)
        .with(stderr)
        .with(store.map(StoreLayer::new))
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::redact::Pii;

    #[test]
    fn records_are_read_back_from_a_cursor_complete_and_scrubbed() {
        let dir = tempfile::tempdir().unwrap();
        use tracing_subscriber::prelude::*;
        let store = Arc::new(LogStore::open(&dir.path().join("logs.sqlite"), 1000).unwrap());
        let subscriber = tracing_subscriber::registry().with(StoreLayer::new(store.clone()));
        tracing::subscriber::with_default(subscriber, || {
            for i in 0..50 {
                tracing::info!(i, name = %Pii::name("测试学生"), "record {i}");
            }
            tracing::warn!("id 11010519491231002X seen");
        });
        let first = store.since(0, 5, 20).unwrap();
        assert_eq!(first.len(), 20);
        let rest = store.since(first.last().unwrap().cursor, 5, 1000).unwrap();
        assert_eq!(rest.len(), 31);
        let all: Vec<_> = first.iter().chain(&rest).collect();
        for (n, r) in all.iter().take(50).enumerate() {
            assert_eq!(r.message, format!("record {n}"));
            assert_eq!(r.fields["i"], n as i64);
        }
        let text = serde_json::to_string(&all).unwrap();
        assert!(
            !text.contains("测试学生") && !text.contains("11010519491231002X"),
            "{text}"
        );
        let warns = store.since(0, parse_level("warn").unwrap(), 100).unwrap();
        assert_eq!(warns.len(), 1);
        assert_eq!(warns[0].message, "id [redacted id] seen");
    }

    #[test]
    fn the_store_rolls_over_at_its_capacity() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::open(&dir.path().join("logs.sqlite"), 100).unwrap();
        for i in 0..600 {
            store
                .append(0, &Level::INFO, "t", &format!("m{i}"), &serde_json::json!({}))
                .unwrap();
        }
        let kept = store.since(0, 5, 10_000).unwrap();
        assert!(kept.len() <= 100 + PRUNE_EVERY as usize, "{}", kept.len());
        assert_eq!(kept.last().unwrap().message, "m599");
        assert_eq!(store.last_cursor().unwrap(), 600);
    }
}
