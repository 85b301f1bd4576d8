//! The schema, as an append-only list of migrations applied in order and counted in
//! `PRAGMA user_version` (the rusqlite_migration pattern, without the dependency).
//!
//! Rules: never edit or reorder a migration that has shipped; add a new one at the end. A file whose
//! `user_version` is beyond this list was written by a newer build and is refused, not "repaired".
//!
//! The schema itself carries the invariants that must hold whatever the Rust code does: `STRICT`
//! tables, `CHECK (shots_used <= shots_allowed + shots_granted)`, triggers that refuse lowering
//! `shots_used`, clearing `completed_at`, un-acking a job, and any change to the audit trail.
//! It deliberately has no column for a name, student number or ID digits.

use rusqlite::{Connection, TransactionBehavior};

use super::{APPLICATION_ID, StoreError};

/// Every migration, in order. Migration `i` (0-based) takes the file from `user_version = i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    // 1: tickets, sessions, shots and their check results.
    r#"
CREATE TABLE tickets (
    ticket_id         TEXT PRIMARY KEY CHECK (length(ticket_id) = 32),
    key_id            INTEGER NOT NULL,
    site              TEXT NOT NULL,
    issued_at         INTEGER NOT NULL,
    expires_at        INTEGER NOT NULL,
    shots_allowed     INTEGER NOT NULL CHECK (shots_allowed BETWEEN 0 AND 255),
    shots_granted     INTEGER NOT NULL DEFAULT 0 CHECK (shots_granted >= 0),
    shots_used        INTEGER NOT NULL DEFAULT 0 CHECK (shots_used >= 0),
    liveness_failures INTEGER NOT NULL DEFAULT 0 CHECK (liveness_failures >= 0),
    consecutive_fails INTEGER NOT NULL DEFAULT 0 CHECK (consecutive_fails >= 0),
    locked            INTEGER NOT NULL DEFAULT 0 CHECK (locked IN (0, 1)),
    lock_reason       TEXT,
    locked_at         INTEGER,
    cooldown_until    INTEGER,
    completed_at      INTEGER,
    first_seen        INTEGER NOT NULL,
    last_seen         INTEGER NOT NULL,
    -- shot numbers are a u8 in the API
    CHECK (shots_allowed + shots_granted <= 255),
    -- the one invariant the product is built around
    CHECK (shots_used <= shots_allowed + shots_granted),
    CHECK (locked = 0 OR (lock_reason IS NOT NULL AND locked_at IS NOT NULL))
) STRICT;

CREATE TRIGGER tickets_shots_never_back
BEFORE UPDATE OF shots_used ON tickets
WHEN NEW.shots_used < OLD.shots_used
BEGIN
    SELECT RAISE(ABORT, 'shots_used never decreases');
END;

CREATE TRIGGER tickets_completion_is_final
BEFORE UPDATE OF completed_at ON tickets
WHEN OLD.completed_at IS NOT NULL AND NEW.completed_at IS NOT OLD.completed_at
BEGIN
    SELECT RAISE(ABORT, 'completed_at is final');
END;

CREATE TABLE sessions (
    session_id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at INTEGER NOT NULL,
    ended_at   INTEGER,
    ticket_id  TEXT REFERENCES tickets (ticket_id),
    outcome    TEXT,
    CHECK ((ended_at IS NULL) = (outcome IS NULL))
) STRICT;

CREATE TABLE shots (
    ticket_id       TEXT NOT NULL REFERENCES tickets (ticket_id),
    shot_no         INTEGER NOT NULL CHECK (shot_no BETWEEN 1 AND 255),
    session_id      INTEGER NOT NULL REFERENCES sessions (session_id),
    taken_at        INTEGER NOT NULL,
    checked_at      INTEGER,
    passed          INTEGER CHECK (passed IN (0, 1)),
    liveness_failed INTEGER CHECK (liveness_failed IN (0, 1)),
    record_json     TEXT CHECK (record_json IS NULL OR json_valid(record_json)),
    PRIMARY KEY (ticket_id, shot_no),
    CHECK ((checked_at IS NULL) = (passed IS NULL)),
    CHECK ((checked_at IS NULL) = (liveness_failed IS NULL)),
    CHECK ((checked_at IS NULL) = (record_json IS NULL))
) STRICT;

CREATE INDEX shots_by_session ON shots (session_id);

CREATE TABLE check_results (
    ticket_id TEXT NOT NULL,
    shot_no   INTEGER NOT NULL,
    check_id  TEXT NOT NULL,
    status    TEXT NOT NULL,
    value     REAL,
    PRIMARY KEY (ticket_id, shot_no, check_id),
    FOREIGN KEY (ticket_id, shot_no) REFERENCES shots (ticket_id, shot_no)
) STRICT;

-- "how often does check X fail" without a table scan
CREATE INDEX check_results_by_check ON check_results (check_id, status);
"#,
    // 2: the upload outbox. Columns for leasing are here from the start so the uploader needs no
    // migration of its own.
    r#"
CREATE TABLE jobs (
    job_id          TEXT PRIMARY KEY CHECK (length(job_id) = 32),
    -- one job per ticket, ever: a second completion could file the student twice
    ticket_id       TEXT NOT NULL UNIQUE REFERENCES tickets (ticket_id),
    shot_no         INTEGER NOT NULL,
    spec_id         TEXT NOT NULL,
    meta_json       TEXT NOT NULL CHECK (json_valid(meta_json)),
    state           TEXT NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'leased', 'acked', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    created_at      INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    lease_owner     TEXT,
    lease_until     INTEGER,
    acked_at        INTEGER,
    last_error      TEXT,
    FOREIGN KEY (ticket_id, shot_no) REFERENCES shots (ticket_id, shot_no),
    CHECK (state <> 'leased' OR (lease_owner IS NOT NULL AND lease_until IS NOT NULL)),
    CHECK (state <> 'acked' OR acked_at IS NOT NULL)
) STRICT;

CREATE INDEX jobs_due ON jobs (state, next_attempt_at);

CREATE TRIGGER jobs_ack_is_final
BEFORE UPDATE OF state ON jobs
WHEN OLD.state = 'acked' AND NEW.state <> 'acked'
BEGIN
    SELECT RAISE(ABORT, 'an acked job stays acked');
END;

CREATE TABLE job_files (
    job_id TEXT NOT NULL REFERENCES jobs (job_id),
    role   TEXT NOT NULL,
    path   TEXT NOT NULL,
    sha256 TEXT NOT NULL CHECK (length(sha256) = 64),
    size   INTEGER NOT NULL CHECK (size >= 0),
    PRIMARY KEY (job_id, role)
) STRICT;
"#,
    // 3: the append-only audit trail; `id` is the operators' cursor, AUTOINCREMENT so it never reuses
    // a value even if rows are ever pruned.
    r#"
CREATE TABLE audit (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    event       TEXT NOT NULL,
    detail_json TEXT NOT NULL CHECK (json_valid(detail_json))
) STRICT;

CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN
    SELECT RAISE(ABORT, 'audit is append-only');
END;

CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
    SELECT RAISE(ABORT, 'audit is append-only');
END;
"#,
    // 4: retention. When the uploader deleted an acked job's local files; NULL while they are still on
    // disk. The partial index keeps the retention sweep a range scan over what is left to delete, not
    // a scan of every job ever acked.
    r#"
ALTER TABLE jobs ADD COLUMN files_deleted_at INTEGER CHECK (files_deleted_at IS NULL OR state = 'acked');

CREATE INDEX jobs_to_purge ON jobs (acked_at) WHERE state = 'acked' AND files_deleted_at IS NULL;

-- The uploader leases in (next_attempt_at, created_at, job_id) order; with only (state,
-- next_attempt_at) indexed, a backlog of jobs due at the same second was sorted in full for every
-- lease (10,000 queued jobs drained at a fifth of the speed). This index serves the order directly
-- and replaces the old one.
CREATE INDEX jobs_lease_order ON jobs (state, next_attempt_at, created_at, job_id);
DROP INDEX jobs_due;
"#,
];

/// The schema version a fully migrated file has.
pub const LATEST_VERSION: i64 = MIGRATIONS.len() as i64;

fn user_version(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.pragma_query_value(None, "user_version", |r| r.get(0))?)
}

/// Refuses a file written by a newer build.
pub(super) fn check_not_newer(conn: &Connection) -> Result<i64, StoreError> {
    let found = user_version(conn)?;
    if found > LATEST_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            known: LATEST_VERSION,
        });
    }
    Ok(found)
}

/// Brings the file to [`LATEST_VERSION`], all pending migrations in one transaction: a crash halfway
/// leaves the old version, never a half-built schema.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    migrate_to(conn, LATEST_VERSION)
}

fn migrate_to(conn: &mut Connection, target: i64) -> Result<(), StoreError> {
    if check_not_newer(conn)? >= target {
        return Ok(());
    }
    // IMMEDIATE, and read the version again inside: the uploader may be opening the same file now.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let from = check_not_newer(&tx)?;
    if from >= target {
        return Ok(()); // someone else migrated while we waited for the lock
    }
    for sql in &MIGRATIONS[from as usize..target as usize] {
        tx.execute_batch(sql)?;
    }
    tx.pragma_update(None, "user_version", target)?;
    tx.pragma_update(None, "application_id", APPLICATION_ID)?;
    tx.commit()?;
    Ok(())
}

/// Checks the migration list itself: applied one at a time to a fresh in-memory database, each
/// migration must succeed and advance the version, and the result must pass SQLite's integrity and
/// foreign-key checks. Run by the tests; cheap enough for a self-test too.
pub fn validate_migrations() -> Result<(), StoreError> {
    let mut conn = Connection::open_in_memory()?;
    conn.pragma_update(None, "foreign_keys", true)?;
    for target in 1..=LATEST_VERSION {
        migrate_to(&mut conn, target)?;
        let got = user_version(&conn)?;
        if got != target {
            return Err(StoreError::Corrupt(format!(
                "migration {target} left user_version at {got}"
            )));
        }
    }
    let ok: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    let fk_problems: i64 =
        conn.query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| r.get(0))?;
    if ok != "ok" || fk_problems != 0 {
        return Err(StoreError::Corrupt(format!(
            "after migrations: integrity {ok:?}, {fk_problems} fk problems"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_validate() {
        validate_migrations().unwrap();
    }

    #[test]
    fn every_intermediate_version_upgrades_to_latest() {
        for start in 0..LATEST_VERSION {
            let mut conn = Connection::open_in_memory().unwrap();
            migrate_to(&mut conn, start).unwrap();
            assert_eq!(user_version(&conn).unwrap(), start);
            migrate(&mut conn).unwrap();
            assert_eq!(user_version(&conn).unwrap(), LATEST_VERSION);
            // Idempotent: a second run changes nothing and does not fail on existing tables.
            migrate(&mut conn).unwrap();
            assert_eq!(user_version(&conn).unwrap(), LATEST_VERSION);
        }
    }

    #[test]
    fn newer_schema_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", LATEST_VERSION + 1)
            .unwrap();
        match migrate(&mut conn) {
            Err(StoreError::SchemaTooNew { found, known }) => {
                assert_eq!((found, known), (LATEST_VERSION + 1, LATEST_VERSION));
            }
            other => panic!("expected SchemaTooNew, got {other:?}"),
        }
    }
}
