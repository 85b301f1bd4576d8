//! Tickets, sessions, shots and check results: what the kiosk remembers about each shooting ticket
//! between scans, and the refusals that follow from it (completed, locked, cooling down, no shots).
//!
//! The ticket row holds only what the signed ticket says about limits (site, key id, shots allowed,
//! validity) plus counters; never the masked name, student number, school or ID digits (PIPL).
//! This module does not verify signatures (`kiosk::ticket` does) and does not decide policy: it counts
//! liveness failures and consecutive fails, and the session decides when to call `lock_ticket` or
//! `set_cooldown`.

use std::fmt;

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::json;

use super::{Durability, Store, StoreError, audit, ticket_id_from_sql};
use crate::ticket::{Rejection, Ticket, TicketId};

/// A kiosk session (scan to done or timeout), numbered by the database; never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub i64);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Why and when a ticket was locked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockInfo {
    /// Stable code, e.g. "liveness".
    pub reason: String,
    /// Unix seconds.
    pub at: i64,
}

/// A checked, passing shot the student may still choose.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CandidateRow {
    /// 1-based.
    pub shot_no: u8,
    /// The session that took it (a candidate survives into a later session of the same ticket).
    pub session_id: SessionId,
    /// Unix seconds of the shutter.
    pub taken_at: i64,
    /// Unix seconds of the verdict.
    pub checked_at: i64,
}

/// What the store knows about a ticket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TicketState {
    pub ticket: TicketId,
    pub key_id: u32,
    pub site: String,
    /// From the signed ticket.
    pub shots_allowed: u8,
    /// Extra shots granted by technicians.
    pub shots_granted: u8,
    /// Shots consumed so far; never decreases.
    pub shots_used: u8,
    /// Shots whose liveness check failed, since the last unlock.
    pub liveness_failures: u32,
    /// Failed shots in a row; reset by a passing shot or an unlock.
    pub consecutive_fails: u32,
    pub locked: Option<LockInfo>,
    /// Unix seconds; shooting is refused while this is in the future.
    pub cooldown_until: Option<i64>,
    /// Unix seconds of the completion (job queued); a completed ticket is never admitted again.
    pub completed_at: Option<i64>,
    pub issued_at: i64,
    pub expires_at: i64,
    pub first_seen: i64,
    pub last_seen: i64,
    /// Passing shots, in shot order.
    pub candidates: Vec<CandidateRow>,
}

impl TicketState {
    /// `shots_allowed + shots_granted`.
    pub fn shot_limit(&self) -> u8 {
        // The schema keeps the sum within 255.
        self.shots_allowed.saturating_add(self.shots_granted)
    }

    /// Shots that can still be taken.
    pub fn shots_left(&self) -> u8 {
        self.shot_limit().saturating_sub(self.shots_used)
    }

    /// Why this ticket may not start a session at `now_unix`, if it may not. A ticket with no shots left
    /// is still admitted while it has a candidate, so the student can choose it.
    pub fn admission_refusal(&self, now_unix: i64) -> Option<Rejection> {
        self.common_refusal(now_unix).or_else(|| {
            (self.shots_left() == 0 && self.candidates.is_empty()).then_some(Rejection::NoShotsLeft)
        })
    }

    /// Why no further shot may be taken at `now_unix`, if none may.
    pub fn shooting_refusal(&self, now_unix: i64) -> Option<Rejection> {
        self.common_refusal(now_unix)
            .or_else(|| (self.shots_left() == 0).then_some(Rejection::NoShotsLeft))
    }

    fn common_refusal(&self, now_unix: i64) -> Option<Rejection> {
        if self.completed_at.is_some() {
            Some(Rejection::AlreadyCompleted)
        } else if self.locked.is_some() {
            Some(Rejection::Locked)
        } else {
            match self.cooldown_until {
                Some(until) if until > now_unix => Some(Rejection::CoolingDown { until }),
                _ => None,
            }
        }
    }
}

/// One check's result for one shot, as stored for statistics.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckRow {
    /// Stable check id, e.g. "head_roll".
    pub id: String,
    /// "pass", "fail", "advisory" or "undetermined".
    pub status: String,
    /// The measured value, when there is one.
    pub value: Option<f64>,
}

/// The verdict on one shot, as [`Store::record_check`] stores it.
#[derive(Clone, Copy, Debug)]
pub struct ShotCheck<'a> {
    /// The shot passed every blocking check: it becomes a candidate.
    pub passed: bool,
    /// The liveness (anti-re-photography) check failed; counted towards a lock.
    pub liveness_failed: bool,
    /// The full check record as JSON (what the vision module produced); no personal data.
    pub record_json: &'a str,
    /// One row per check, for statistics; check ids must be unique within the shot.
    pub per_check: &'a [CheckRow],
}

const TICKET_COLUMNS: &str = "ticket_id, key_id, site, shots_allowed, shots_granted, shots_used, \
     liveness_failures, consecutive_fails, locked, lock_reason, locked_at, cooldown_until, completed_at, \
     issued_at, expires_at, first_seen, last_seen";

/// Loads a ticket's state with its candidates, inside the caller's transaction.
pub(super) fn load_state(conn: &Connection, ticket: &TicketId) -> Result<Option<TicketState>, StoreError> {
    let id = ticket.to_string();
    let row = conn
        .prepare_cached(&format!(
            "SELECT {TICKET_COLUMNS} FROM tickets WHERE ticket_id = ?1"
        ))?
        .query_row([&id], |r| {
            let locked: bool = r.get(8)?;
            let lock = if locked {
                Some(LockInfo {
                    reason: r.get(9)?,
                    at: r.get(10)?,
                })
            } else {
                None
            };
            Ok((
                r.get::<_, String>(0)?,
                TicketState {
                    ticket: *ticket,
                    key_id: r.get(1)?,
                    site: r.get(2)?,
                    shots_allowed: r.get(3)?,
                    shots_granted: r.get(4)?,
                    shots_used: r.get(5)?,
                    liveness_failures: r.get(6)?,
                    consecutive_fails: r.get(7)?,
                    locked: lock,
                    cooldown_until: r.get(11)?,
                    completed_at: r.get(12)?,
                    issued_at: r.get(13)?,
                    expires_at: r.get(14)?,
                    first_seen: r.get(15)?,
                    last_seen: r.get(16)?,
                    candidates: Vec::new(),
                },
            ))
        })
        .optional()?;
    let Some((stored_id, mut state)) = row else {
        return Ok(None);
    };
    // Cheap guard against a hand-edited row whose id does not round-trip.
    if ticket_id_from_sql(&stored_id)? != *ticket {
        return Err(StoreError::Corrupt(format!("ticket row {stored_id:?}")));
    }
    let mut stmt = conn.prepare_cached(
        "SELECT shot_no, session_id, taken_at, checked_at FROM shots \
         WHERE ticket_id = ?1 AND passed = 1 ORDER BY shot_no",
    )?;
    state.candidates = stmt
        .query_map([&id], |r| {
            Ok(CandidateRow {
                shot_no: r.get(0)?,
                session_id: SessionId(r.get(1)?),
                taken_at: r.get(2)?,
                checked_at: r.get(3)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(Some(state))
}

pub(super) fn require_state(conn: &Connection, ticket: &TicketId) -> Result<TicketState, StoreError> {
    load_state(conn, ticket)?.ok_or(StoreError::UnknownTicket(*ticket))
}

impl Store {
    /// Records that a verified ticket was scanned (inserting it on first sight, refreshing `last_seen`
    /// otherwise) and says whether it may start a session.
    ///
    /// The outer `Result` is the database; the inner one is the store's verdict: `Ok(state)` to go on,
    /// or the refusal the student sees (`AlreadyCompleted`, `Locked`, `CoolingDown`, `NoShotsLeft`).
    /// The caller has already checked signature, expiry and site. `shots_allowed` only ever grows, to
    /// the largest value any validly signed copy of this ticket carried.
    pub fn admit_ticket(
        &self,
        t: &Ticket,
        now_unix: i64,
    ) -> Result<Result<TicketState, Rejection>, StoreError> {
        // NORMAL is enough: losing this on power loss only loses a last_seen, and a new row has zero
        // counters. Any later FULL commit (the first shot) makes it durable too.
        self.write(Durability::Normal, |tx| {
            tx.prepare_cached(
                "INSERT INTO tickets (ticket_id, key_id, site, shots_allowed, issued_at, expires_at, \
                                      first_seen, last_seen) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7) \
                 ON CONFLICT (ticket_id) DO UPDATE SET \
                    last_seen = excluded.last_seen, \
                    shots_allowed = max(shots_allowed, excluded.shots_allowed)",
            )?
            .execute(params![
                t.id.to_string(),
                t.key_id,
                t.site,
                t.shots_allowed,
                t.issued_at,
                t.expires_at,
                now_unix
            ])?;
            let state = require_state(tx, &t.id)?;
            Ok(match state.admission_refusal(now_unix) {
                Some(refusal) => Err(refusal),
                None => Ok(state),
            })
        })
    }

    /// The stored state of a ticket, or `None` if it was never admitted here.
    pub fn ticket_state(&self, ticket: &TicketId) -> Result<Option<TicketState>, StoreError> {
        self.read(|tx| load_state(tx, ticket))
    }

    /// Consumes one shot the moment the shutter fires and returns its 1-based number. Committed with
    /// `synchronous=FULL` before it returns; nothing ever gives the shot back.
    ///
    /// Refused with [`StoreError::Refused`] if the ticket is completed, locked, cooling down or has no
    /// shots left (even with candidates: choosing one does not need a shot).
    pub fn consume_shot(
        &self,
        ticket: &TicketId,
        session: SessionId,
        now_unix: i64,
    ) -> Result<u8, StoreError> {
        self.write(Durability::Full, |tx| {
            let state = require_state(tx, ticket)?;
            if let Some(refusal) = state.shooting_refusal(now_unix) {
                return Err(StoreError::Refused(refusal));
            }
            require_open_session(tx, session)?;
            let id = ticket.to_string();
            // The WHERE repeats the limit so the database, not only the check above, enforces it.
            let changed = tx
                .prepare_cached(
                    "UPDATE tickets SET shots_used = shots_used + 1 \
                     WHERE ticket_id = ?1 AND shots_used < shots_allowed + shots_granted",
                )?
                .execute([&id])?;
            if changed != 1 {
                return Err(StoreError::Refused(Rejection::NoShotsLeft));
            }
            let shot_no = state.shots_used + 1;
            tx.prepare_cached(
                "INSERT INTO shots (ticket_id, shot_no, session_id, taken_at) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![id, shot_no, session.0, now_unix])?;
            audit::append(
                tx,
                "kiosk",
                "shot_consumed",
                &json!({ "ticket": id, "shot_no": shot_no, "session": session.0 }),
                now_unix,
            )?;
            Ok(shot_no)
        })
    }

    /// Stores the verdict on a consumed shot: the JSON record, one `check_results` row per check, the
    /// candidate mark if it passed, and the counters (`consecutive_fails` reset by a pass, incremented
    /// by a fail; `liveness_failures` incremented by a liveness failure). Returns the updated state so
    /// the session can apply its lock and cool-down policy.
    ///
    /// Committed with FULL: a liveness failure that vanished on power loss would let a re-photography
    /// attempt escape the lock, and a vanished pass would cost the student a paid-for candidate.
    pub fn record_check(
        &self,
        ticket: &TicketId,
        shot_no: u8,
        check: &ShotCheck<'_>,
        now_unix: i64,
    ) -> Result<TicketState, StoreError> {
        if check.passed && check.liveness_failed {
            return Err(StoreError::Invalid(
                "a shot cannot pass with a failed liveness check".into(),
            ));
        }
        self.write(Durability::Full, |tx| {
            let id = ticket.to_string();
            let checked: Option<Option<i64>> = tx
                .prepare_cached("SELECT checked_at FROM shots WHERE ticket_id = ?1 AND shot_no = ?2")?
                .query_row(params![id, shot_no], |r| r.get(0))
                .optional()?;
            match checked {
                None => {
                    return Err(StoreError::UnknownShot {
                        ticket: *ticket,
                        shot_no,
                    });
                }
                Some(Some(_)) => {
                    return Err(StoreError::ShotAlreadyChecked {
                        ticket: *ticket,
                        shot_no,
                    });
                }
                Some(None) => {}
            }
            tx.prepare_cached(
                "UPDATE shots SET checked_at = ?3, passed = ?4, liveness_failed = ?5, record_json = ?6 \
                 WHERE ticket_id = ?1 AND shot_no = ?2",
            )?
            .execute(params![
                id,
                shot_no,
                now_unix,
                check.passed,
                check.liveness_failed,
                check.record_json
            ])?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO check_results (ticket_id, shot_no, check_id, status, value) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for row in check.per_check {
                insert.execute(params![id, shot_no, row.id, row.status, row.value])?;
            }
            tx.prepare_cached(
                "UPDATE tickets SET \
                    consecutive_fails = CASE WHEN ?2 THEN 0 ELSE consecutive_fails + 1 END, \
                    liveness_failures = liveness_failures + ?3 \
                 WHERE ticket_id = ?1",
            )?
            .execute(params![id, check.passed, i64::from(check.liveness_failed)])?;
            require_state(tx, ticket)
        })
    }

    /// The stored per-check rows of one shot, in check-id order.
    pub fn check_results(&self, ticket: &TicketId, shot_no: u8) -> Result<Vec<CheckRow>, StoreError> {
        self.read(|tx| {
            let mut stmt = tx.prepare_cached(
                "SELECT check_id, status, value FROM check_results \
                 WHERE ticket_id = ?1 AND shot_no = ?2 ORDER BY check_id",
            )?;
            let rows = stmt.query_map(params![ticket.to_string(), shot_no], |r| {
                Ok(CheckRow {
                    id: r.get(0)?,
                    status: r.get(1)?,
                    value: r.get(2)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// Locks a ticket until a technician unlocks it. Locking a locked ticket keeps the first reason and
    /// time. Committed with FULL so a power cut does not unlock it.
    pub fn lock_ticket(&self, ticket: &TicketId, reason: &str, now_unix: i64) -> Result<(), StoreError> {
        self.write(Durability::Full, |tx| {
            let state = require_state(tx, ticket)?;
            if state.locked.is_some() {
                return Ok(());
            }
            let id = ticket.to_string();
            tx.execute(
                "UPDATE tickets SET locked = 1, lock_reason = ?2, locked_at = ?3 WHERE ticket_id = ?1",
                params![id, reason, now_unix],
            )?;
            audit::append(
                tx,
                "kiosk",
                "ticket_locked",
                &json!({ "ticket": id, "reason": reason }),
                now_unix,
            )
        })
    }

    /// A technician unlocks a ticket. This also clears the cool-down and resets `liveness_failures` and
    /// `consecutive_fails`: otherwise the very next failure would re-lock it, and the technician's
    /// decision is a fresh start (the history stays in the audit trail and `check_results`).
    pub fn unlock_ticket(&self, ticket: &TicketId, actor: &str, now_unix: i64) -> Result<(), StoreError> {
        self.write(Durability::Full, |tx| {
            let state = require_state(tx, ticket)?;
            let id = ticket.to_string();
            tx.execute(
                "UPDATE tickets SET locked = 0, lock_reason = NULL, locked_at = NULL, cooldown_until = NULL, \
                    liveness_failures = 0, consecutive_fails = 0 \
                 WHERE ticket_id = ?1",
                [&id],
            )?;
            let was = state.locked.map(|l| l.reason);
            audit::append(
                tx,
                actor,
                "ticket_unlocked",
                &json!({ "ticket": id, "was_locked": was }),
                now_unix,
            )
        })
    }

    /// A technician grants `n` extra shots. Refused on a completed ticket, and when the total would pass
    /// 255 shots. Returns the new state.
    pub fn grant_shot(
        &self,
        ticket: &TicketId,
        n: u8,
        actor: &str,
        now_unix: i64,
    ) -> Result<TicketState, StoreError> {
        if n == 0 {
            return Err(StoreError::Invalid("a grant must be at least one shot".into()));
        }
        self.write(Durability::Full, |tx| {
            let state = require_state(tx, ticket)?;
            if state.completed_at.is_some() {
                return Err(StoreError::Refused(Rejection::AlreadyCompleted));
            }
            if u16::from(state.shot_limit()) + u16::from(n) > 255 {
                return Err(StoreError::Invalid(format!(
                    "granting {n} would exceed 255 shots"
                )));
            }
            let id = ticket.to_string();
            tx.execute(
                "UPDATE tickets SET shots_granted = shots_granted + ?2 WHERE ticket_id = ?1",
                params![id, n],
            )?;
            audit::append(
                tx,
                actor,
                "shot_granted",
                &json!({ "ticket": id, "n": n }),
                now_unix,
            )?;
            require_state(tx, ticket)
        })
    }

    /// Refuses shooting on this ticket until `until_unix` ("可于 … 后重新拍摄"). A later call replaces the
    /// time. `until_unix` must be after `now_unix`.
    pub fn set_cooldown(&self, ticket: &TicketId, until_unix: i64, now_unix: i64) -> Result<(), StoreError> {
        if until_unix <= now_unix {
            return Err(StoreError::Invalid("a cool-down must end in the future".into()));
        }
        self.write(Durability::Full, |tx| {
            require_state(tx, ticket)?;
            let id = ticket.to_string();
            tx.execute(
                "UPDATE tickets SET cooldown_until = ?2 WHERE ticket_id = ?1",
                params![id, until_unix],
            )?;
            audit::append(
                tx,
                "kiosk",
                "cooldown_set",
                &json!({ "ticket": id, "until": until_unix }),
                now_unix,
            )
        })
    }

    /// Starts a session and returns its id.
    pub fn begin_session(&self, now_unix: i64) -> Result<SessionId, StoreError> {
        self.write(Durability::Normal, |tx| {
            tx.prepare_cached("INSERT INTO sessions (started_at) VALUES (?1)")?
                .execute([now_unix])?;
            Ok(SessionId(tx.last_insert_rowid()))
        })
    }

    /// Ends a session with its outcome (a stable code, e.g. "completed", "timeout", "cancelled") and the
    /// ticket it served, if one was admitted. A session ends once.
    pub fn end_session(
        &self,
        session: SessionId,
        ticket: Option<&TicketId>,
        outcome: &str,
        now_unix: i64,
    ) -> Result<(), StoreError> {
        self.write(Durability::Normal, |tx| {
            require_open_session(tx, session)?;
            if let Some(t) = ticket {
                require_state(tx, t)?;
            }
            tx.execute(
                "UPDATE sessions SET ended_at = ?2, ticket_id = ?3, outcome = ?4 WHERE session_id = ?1",
                params![session.0, now_unix, ticket.map(|t| t.to_string()), outcome],
            )?;
            Ok(())
        })
    }

    /// At start-up, ends every session a crash left open with outcome "abandoned"; returns how many.
    pub fn abandon_open_sessions(&self, now_unix: i64) -> Result<usize, StoreError> {
        self.write(Durability::Normal, |tx| {
            Ok(tx.execute(
                "UPDATE sessions SET ended_at = ?1, outcome = 'abandoned' WHERE ended_at IS NULL",
                [now_unix],
            )?)
        })
    }
}

fn require_open_session(conn: &Connection, session: SessionId) -> Result<(), StoreError> {
    let ended: Option<Option<i64>> = conn
        .prepare_cached("SELECT ended_at FROM sessions WHERE session_id = ?1")?
        .query_row([session.0], |r| r.get(0))
        .optional()?;
    match ended {
        None => Err(StoreError::UnknownSession(session)),
        Some(Some(_)) => Err(StoreError::SessionEnded(session)),
        Some(None) => Ok(()),
    }
}
