//! Read-only queries for the technician's service pages: the recent tickets, the upload backlog's last
//! error and today's acknowledgements.
//!
//! What it deliberately does not do: write anything (unlocks and grants are `tickets.rs`, retries are
//! `queue_admin.rs`), or return anything personal (the store has no names; ids and counters only).

use rusqlite::params;

use super::tickets::load_state;
use super::{AuditEvent, Store, StoreError, TicketState, audit::limit_sql, ticket_id_from_sql};

/// The upload backlog as the service page shows it, besides [`super::OutboxCounts`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UploadSummary {
    /// Jobs acknowledged at or after the `since` given.
    pub acked_since: u64,
    /// The error of the most recently attempted job that has one (failed or waiting for a retry).
    pub last_error: Option<String>,
}

impl Store {
    /// The `limit` tickets seen most recently on this kiosk, newest first, with their state.
    pub fn recent_tickets(&self, limit: usize) -> Result<Vec<TicketState>, StoreError> {
        self.read(|tx| {
            let mut stmt = tx.prepare_cached(
                "SELECT ticket_id FROM tickets ORDER BY last_seen DESC, rowid DESC LIMIT ?1",
            )?;
            let ids: Vec<String> = stmt
                .query_map([limit_sql(limit)], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                let id = ticket_id_from_sql(&id)?;
                if let Some(state) = load_state(tx, &id)? {
                    out.push(state);
                }
            }
            Ok(out)
        })
    }

    /// The newest audit entries whose event is one of `events`, newest first, at most `limit`.
    pub fn audit_latest(&self, events: &[&str], limit: usize) -> Result<Vec<AuditEvent>, StoreError> {
        self.read(|tx| {
            let mut stmt = tx.prepare_cached(
                "SELECT id, at, actor, event, detail_json FROM audit \
                 WHERE event IN (SELECT value FROM json_each(?1)) ORDER BY id DESC LIMIT ?2",
            )?;
            let wanted = serde_json::to_string(events).map_err(|e| StoreError::Invalid(e.to_string()))?;
            let rows = stmt.query_map(params![wanted, limit_sql(limit)], |r| {
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

    /// Acknowledgements since `since_unix` and the newest upload error still on record for a job that
    /// is not acknowledged.
    pub fn upload_summary(&self, since_unix: i64) -> Result<UploadSummary, StoreError> {
        self.read(|tx| {
            let acked: i64 = tx.query_row(
                "SELECT count(*) FROM jobs WHERE state = 'acked' AND acked_at >= ?1",
                params![since_unix],
                |r| r.get(0),
            )?;
            let last_error: Option<String> = tx
                .query_row(
                    "SELECT last_error FROM jobs WHERE state <> 'acked' AND last_error IS NOT NULL \
                     ORDER BY next_attempt_at DESC, created_at DESC LIMIT 1",
                    [],
                    |r| r.get(0),
                )
                .or_else(|e| match e {
                    rusqlite::Error::QueryReturnedNoRows => Ok(None),
                    e => Err(e),
                })?;
            Ok(UploadSummary {
                acked_since: acked.max(0).unsigned_abs(),
                last_error,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ticket::{Ticket, TicketId};

    fn ticket(n: u8) -> Ticket {
        Ticket {
            id: TicketId([n; 16]),
            student_no: "2022001".into(),
            masked_name: "张*明".into(),
            school: "某大学".into(),
            id_last4: "123X".into(),
            site: "S".into(),
            photo_types: vec!["chsi-graduate".into()],
            shots_allowed: 3,
            paid: true,
            issued_at: 0,
            expires_at: i64::MAX,
            key_id: 1,
        }
    }

    #[test]
    fn recent_tickets_are_newest_first_and_bounded() {
        let store = Store::open_in_memory().unwrap();
        for (n, at) in [(1u8, 100), (2, 300), (3, 200)] {
            store.admit_ticket(&ticket(n), at).unwrap().unwrap();
        }
        let ids: Vec<u8> = store
            .recent_tickets(10)
            .unwrap()
            .iter()
            .map(|t| t.ticket.0[0])
            .collect();
        assert_eq!(ids, vec![2, 3, 1]);
        assert_eq!(store.recent_tickets(2).unwrap().len(), 2);
        // Seen again: first again.
        store.admit_ticket(&ticket(1), 400).unwrap().unwrap();
        assert_eq!(store.recent_tickets(1).unwrap()[0].ticket.0[0], 1);
    }

    #[test]
    fn audit_latest_picks_events_newest_first() {
        let store = Store::open_in_memory().unwrap();
        for (event, at) in [("a", 1), ("b", 2), ("a", 3), ("c", 4)] {
            store.audit("t", event, "{}", at).unwrap();
        }
        let got: Vec<(String, i64)> = store
            .audit_latest(&["a", "c"], 10)
            .unwrap()
            .into_iter()
            .map(|e| (e.event, e.at))
            .collect();
        assert_eq!(got, vec![("c".into(), 4), ("a".into(), 3), ("a".into(), 1)]);
        assert_eq!(store.audit_latest(&["a"], 1).unwrap().len(), 1);
    }

    #[test]
    fn an_empty_outbox_has_no_error_and_no_acks() {
        let store = Store::open_in_memory().unwrap();
        assert_eq!(store.upload_summary(0).unwrap(), UploadSummary::default());
    }
}
