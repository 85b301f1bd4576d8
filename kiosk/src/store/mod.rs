//! The kiosk's one SQLite database (PRODUCT.md section 6): tickets and the shots they used, sessions,
//! per-shot check results, the upload outbox and the audit trail.
//!
//! What it guarantees:
//! - A consumed shot is never given back: `consume_shot` commits with `synchronous=FULL` before it
//!   returns, and a trigger refuses any update that lowers `shots_used`.
//! - "完成" is gated on `enqueue_and_complete`, one `synchronous=FULL` transaction that inserts the
//!   upload job and marks the ticket completed; either both are on disk or neither is.
//! - No name, student number or ID digits are ever written (PIPL): a ticket is stored by its random id
//!   only, which the issuing backend can map back to the student on its side.
//!
//! What it deliberately does not do: decide policy (how many liveness failures lock a ticket, how long a
//! cool-down lasts; the session decides and calls `lock_ticket` / `set_cooldown`), read the clock (every
//! method that needs time takes `now_unix`), touch photo files (it stores their paths and hashes), or
//! upload anything (`lease` holds the uploader's transitions: lease, ack, retry, fail, purge).
//!
//! Two processes share the file (the kiosk and the uploader): WAL mode, a busy timeout, and every write
//! in a `BEGIN IMMEDIATE` transaction so that a writer waits for the lock instead of failing with
//! `SQLITE_BUSY` when it upgrades a read.

mod audit;
mod lease;
mod migrations;
mod outbox;
mod queue_admin;
mod service;
mod stats;
mod tickets;

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, Transaction, TransactionBehavior};

use crate::ticket::{Rejection, TicketId};

pub use audit::AuditEvent;
pub use lease::PurgeCandidate;
pub use migrations::{LATEST_VERSION, MIGRATIONS, validate_migrations};
pub use outbox::{Job, JobFile, JobId, JobState, NewJob, OutboxCounts};
pub use service::UploadSummary;
pub use stats::{DayStats, Totals};
pub use tickets::{CandidateRow, CheckRow, LockInfo, SessionId, ShotCheck, TicketState};

/// How long a writer waits for another connection's write lock before giving up with `SQLITE_BUSY`.
/// Every write transaction here is a handful of rows, so a wait this long means something is wrong.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Bytes of WAL kept after a checkpoint (`PRAGMA journal_size_limit`).
const JOURNAL_SIZE_LIMIT: i64 = 4 * 1024 * 1024;

/// `PRAGMA application_id` of our files ("KIOS"), so that `open` refuses some other program's database
/// instead of migrating tables into it.
pub const APPLICATION_ID: i32 = 0x4B49_4F53;

/// Errors from the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite reported an error (I/O, a constraint the schema enforces, a busy timeout that expired).
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The file was written by a newer build; opening it with this one could corrupt it, so we refuse.
    #[error("database schema version {found} is newer than this build knows ({known}); refusing to open")]
    SchemaTooNew {
        /// `PRAGMA user_version` found in the file.
        found: i64,
        /// The latest version this build can migrate to.
        known: i64,
    },
    /// The file is an SQLite database of some other application.
    #[error("not a kiosk database (application_id {0:#010x})")]
    NotOurDatabase(i32),
    /// The file system refused WAL mode (the journal mode actually in effect is carried).
    #[error("WAL journal mode unavailable on this file system (got {0:?})")]
    WalUnavailable(String),
    /// No row for this ticket: it was never admitted on this kiosk.
    #[error("unknown ticket {0}")]
    UnknownTicket(TicketId),
    /// The ticket's stored state forbids the operation (completed, locked, cooling down, no shots left).
    /// Carries the same refusal the student would see at admission.
    #[error("refused: {0}")]
    Refused(Rejection),
    /// No such shot was consumed on this ticket.
    #[error("ticket {ticket} has no shot {shot_no}")]
    UnknownShot {
        /// The ticket.
        ticket: TicketId,
        /// The 1-based shot number asked for.
        shot_no: u8,
    },
    /// The shot's check results are already recorded; recording twice would count failures twice.
    #[error("shot {shot_no} of ticket {ticket} is already checked")]
    ShotAlreadyChecked {
        /// The ticket.
        ticket: TicketId,
        /// The 1-based shot number.
        shot_no: u8,
    },
    /// Only a checked, passing shot (a candidate) can be queued for upload.
    #[error("shot {shot_no} of ticket {ticket} is not a passing candidate")]
    NotACandidate {
        /// The ticket.
        ticket: TicketId,
        /// The 1-based shot number.
        shot_no: u8,
    },
    /// No such session.
    #[error("unknown session {0}")]
    UnknownSession(SessionId),
    /// The session already ended; its outcome is not overwritten.
    #[error("session {0} already ended")]
    SessionEnded(SessionId),
    /// The caller passed something the store will not record (a zero grant, a malformed hash, a
    /// non-UTF-8 path, ...). The text says which.
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// A stored value could not be decoded (e.g. a ticket id that is not 32 hex digits); the file was
    /// edited by hand or is damaged.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The operating system's random source failed while making a job id.
    #[error("random source: {0}")]
    Random(getrandom::Error),
}

/// When commits reach the disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SyncPolicy {
    /// `synchronous=NORMAL`, raised to `FULL` around each commit that must survive power loss (shots,
    /// check outcomes, locks, grants, completion). In WAL mode a `FULL` commit also makes every earlier
    /// `NORMAL` commit durable, since the log is synced in order.
    #[default]
    Mixed,
    /// `synchronous=FULL` for every commit. Costs one extra fsync on the cheap writes (admission,
    /// sessions, audit); for a kiosk that writes a few rows a minute that is affordable too.
    AlwaysFull,
}

/// How durable one write transaction must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Durability {
    /// Losing it on power loss is harmless (it is redone or only bookkeeping).
    Normal,
    /// Losing it would give something back: a shot, a lock, a completion.
    Full,
}

/// The kiosk database. Cheap to share behind an `Arc`: one connection behind a mutex, since SQLite
/// serialises writers anyway and the kiosk writes a few rows per session.
#[derive(Debug)]
pub struct Store {
    conn: Mutex<Connection>,
    policy: SyncPolicy,
}

impl Store {
    /// Opens (creating if needed) the database at `path`, in WAL mode, and migrates it to the latest
    /// schema. Refuses a file from a newer build or from another application.
    pub fn open(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        Self::open_with(path, SyncPolicy::default())
    }

    /// [`Store::open`] with an explicit [`SyncPolicy`].
    pub fn open_with(path: impl AsRef<Path>, policy: SyncPolicy) -> Result<Store, StoreError> {
        Self::setup(Connection::open(path)?, policy, true)
    }

    /// A private in-memory database with the full schema, for tests of callers. Nothing is durable.
    pub fn open_in_memory() -> Result<Store, StoreError> {
        Self::setup(Connection::open_in_memory()?, SyncPolicy::default(), false)
    }

    fn setup(mut conn: Connection, policy: SyncPolicy, file: bool) -> Result<Store, StoreError> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // Look before touching anything: a foreign or newer file must come out exactly as it went in.
        let app_id: i32 = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
        if app_id != 0 && app_id != APPLICATION_ID {
            return Err(StoreError::NotOurDatabase(app_id));
        }
        migrations::check_not_newer(&conn)?;
        if file {
            let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(StoreError::WalUnavailable(mode));
            }
        }
        // After a checkpoint, truncate a WAL that a long reader let grow, so a busy day cannot leave a
        // large file on the kiosk's (often SD-card) storage.
        conn.pragma_update(None, "journal_size_limit", JOURNAL_SIZE_LIMIT)?;
        // Per connection, not stored in the file: every connection must turn it on.
        conn.pragma_update(None, "foreign_keys", true)?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        migrations::migrate(&mut conn)?;
        if policy == SyncPolicy::Mixed {
            conn.pragma_update(None, "synchronous", "NORMAL")?;
        }
        Ok(Store {
            conn: Mutex::new(conn),
            policy,
        })
    }

    /// The policy this store was opened with.
    pub fn sync_policy(&self) -> SyncPolicy {
        self.policy
    }

    /// `PRAGMA integrity_check` and `PRAGMA foreign_key_check`: true when both find nothing wrong.
    /// Problems found are logged (without row contents) so an operator can see what failed.
    pub fn integrity_check(&self) -> Result<bool, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare("PRAGMA integrity_check")?;
        let lines: Vec<String> = stmt.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
        let integrity_ok = lines.len() == 1 && lines[0] == "ok";
        if !integrity_ok {
            tracing::error!(problems = lines.len(), first = %lines.first().map(String::as_str).unwrap_or(""), "integrity_check failed");
        }
        let mut stmt = conn.prepare("PRAGMA foreign_key_check")?;
        let fk_tables: Vec<String> = stmt.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
        if !fk_tables.is_empty() {
            tracing::error!(violations = fk_tables.len(), table = %fk_tables[0], "foreign_key_check failed");
        }
        Ok(integrity_ok && fk_tables.is_empty())
    }

    /// The connection. A panic while it was held cannot leave a transaction open (a dropped
    /// `Transaction` rolls back), so a poisoned mutex is safe to take over.
    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction and commits it, with `synchronous=FULL` around the
    /// commit when `durability` asks for it. Any error rolls everything back.
    fn write<T>(
        &self,
        durability: Durability,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn();
        // Switch outside the transaction, where the pragma is certain to apply to this commit.
        let raise = durability == Durability::Full && self.policy == SyncPolicy::Mixed;
        if raise {
            conn.pragma_update(None, "synchronous", "FULL")?;
        }
        let result = (|| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let value = f(&tx)?;
            tx.commit()?;
            Ok(value)
        })();
        if raise && let Err(e) = conn.pragma_update(None, "synchronous", "NORMAL") {
            // The commit already happened; failing the call now would make the caller think it did not.
            // Staying at FULL is only slower, never less safe.
            tracing::warn!(error = %e, "could not lower synchronous back to NORMAL; staying at FULL");
        }
        result
    }

    /// Runs `f` in a deferred (read) transaction so multi-query reads see one snapshot.
    fn read<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let value = f(&tx)?;
        tx.commit()?;
        Ok(value)
    }
}

/// Parses a stored 32-hex-digit id.
fn parse_id16(hex_text: &str, what: &str) -> Result<[u8; 16], StoreError> {
    let mut out = [0u8; 16];
    hex::decode_to_slice(hex_text, &mut out)
        .map_err(|_| StoreError::Corrupt(format!("{what} {hex_text:?}")))?;
    Ok(out)
}

/// Reads a stored ticket id.
fn ticket_id_from_sql(text: &str) -> Result<TicketId, StoreError> {
    parse_id16(text, "ticket id").map(TicketId)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn synchronous(conn: &Connection) -> i64 {
        conn.pragma_query_value(None, "synchronous", |r| r.get(0))
            .unwrap()
    }

    const NORMAL: i64 = 1;
    const FULL: i64 = 2;

    /// The Mixed policy really commits FULL writes at FULL and returns to NORMAL afterwards, also when
    /// the transaction fails; AlwaysFull never leaves FULL.
    #[test]
    fn durability_switches_around_the_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("k.sqlite")).unwrap();
        assert_eq!(synchronous(&store.conn()), NORMAL);
        let inside = store.write(Durability::Full, |tx| Ok(synchronous(tx))).unwrap();
        assert_eq!(inside, FULL);
        assert_eq!(synchronous(&store.conn()), NORMAL);
        let failed: Result<(), _> =
            store.write(Durability::Full, |_| Err(StoreError::Invalid("test".into())));
        assert!(failed.is_err());
        assert_eq!(synchronous(&store.conn()), NORMAL);
        let inside = store.write(Durability::Normal, |tx| Ok(synchronous(tx))).unwrap();
        assert_eq!(inside, NORMAL);
        drop(store);

        let store = Store::open_with(dir.path().join("k.sqlite"), SyncPolicy::AlwaysFull).unwrap();
        assert_eq!(
            store.write(Durability::Normal, |tx| Ok(synchronous(tx))).unwrap(),
            FULL
        );
        assert_eq!(synchronous(&store.conn()), FULL);
    }

    #[test]
    fn file_connections_are_wal_with_foreign_keys_and_busy_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("k.sqlite")).unwrap();
        let conn = store.conn();
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        let fk: bool = conn
            .pragma_query_value(None, "foreign_keys", |r| r.get(0))
            .unwrap();
        let timeout: i64 = conn
            .pragma_query_value(None, "busy_timeout", |r| r.get(0))
            .unwrap();
        assert_eq!(
            (mode.as_str(), fk, timeout),
            ("wal", true, BUSY_TIMEOUT.as_millis() as i64)
        );
    }
}
