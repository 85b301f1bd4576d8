//! The audit trail: an append-only table of who did what to which ticket or job, with an increasing
//! id that operators use as a cursor ("events since 1234").
//!
//! The store writes its own entries inside the transaction that makes the change (a lock, a grant, a
//! completion), so the trail can never claim something that was rolled back or miss something that
//! was committed. Details are JSON and must stay pseudonymous: ticket and job ids, never names.
//! It does not ship events anywhere; the operator API reads them with [`Store::audit_since`].

use rusqlite::{Connection, params};

use super::{Durability, Store, StoreError};

/// One audit entry.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditEvent {
    /// Strictly increasing; the cursor for [`Store::audit_since`].
    pub id: i64,
    /// Unix seconds.
    pub at: i64,
    /// Who: "kiosk", "uploader", or a technician's id.
    pub actor: String,
    /// What, as a stable snake_case code (e.g. "ticket_locked").
    pub event: String,
    /// Details as JSON text.
    pub detail_json: String,
}

/// Appends an entry inside the caller's transaction.
pub(super) fn append(
    conn: &Connection,
    actor: &str,
    event: &str,
    detail: &serde_json::Value,
    now_unix: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO audit (at, actor, event, detail_json) VALUES (?1, ?2, ?3, ?4)",
        params![now_unix, actor, event, detail.to_string()],
    )?;
    Ok(())
}

impl Store {
    /// Appends an audit entry on its own. `detail_json` must be valid JSON (the schema checks).
    /// Returns the entry's id.
    pub fn audit(
        &self,
        actor: &str,
        event: &str,
        detail_json: &str,
        now_unix: i64,
    ) -> Result<i64, StoreError> {
        self.write(Durability::Normal, |tx| {
            tx.execute(
                "INSERT INTO audit (at, actor, event, detail_json) VALUES (?1, ?2, ?3, ?4)",
                params![now_unix, actor, event, detail_json],
            )?;
            Ok(tx.last_insert_rowid())
        })
    }

    /// Entries with `id > cursor`, oldest first, at most `limit`. Start with cursor 0; pass the last id
    /// seen to continue.
    pub fn audit_since(&self, cursor: i64, limit: usize) -> Result<Vec<AuditEvent>, StoreError> {
        self.read(|tx| {
            let mut stmt = tx.prepare_cached(
                "SELECT id, at, actor, event, detail_json FROM audit WHERE id > ?1 ORDER BY id LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![cursor, limit_sql(limit)], |r| {
                Ok(AuditEvent {
                    id: r.get(0)?,
                    at: r.get(1)?,
                    actor: r.get(2)?,
                    event: r.get(3)?,
                    detail_json: r.get(4)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }
}

/// A `LIMIT` value; SQLite takes an i64 and treats negatives as "no limit", so saturate instead.
pub(super) fn limit_sql(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}
