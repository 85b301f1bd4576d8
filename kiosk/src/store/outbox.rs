//! The upload outbox: one job per completed ticket, created in the same transaction that marks the
//! ticket completed, so "完成" is shown only once the job is durably on disk.
//!
//! The job id is 128 random bits and is the idempotency key the intake server dedupes on, so a job
//! retried after a crash is filed once. Rows carry everything the uploader needs (state, attempts,
//! backoff time, lease owner and expiry, ack time, last error); this module creates and reads jobs but
//! deliberately does not lease, ack or retry them (the uploader owns those transitions).
//! `meta_json` must stay pseudonymous (ticket id, spec, check summary): the issuing backend maps the
//! ticket id to the student, so the kiosk never needs to hold a name or ID number.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::json;

use super::audit::{self, limit_sql};
use super::tickets::require_state;
use super::{Durability, Store, StoreError, parse_id16, ticket_id_from_sql};
use crate::ticket::{Rejection, TicketId};

/// A job's id: 16 random bytes, shown as 32 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(pub [u8; 16]);

impl JobId {
    /// A fresh id from the operating system's random source.
    pub fn random() -> Result<JobId, StoreError> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).map_err(StoreError::Random)?;
        Ok(JobId(bytes))
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JobId({self})")
    }
}

impl FromStr for JobId {
    type Err = StoreError;

    /// Parses 32 hex digits (as `kioskctl` users will type them).
    fn from_str(s: &str) -> Result<JobId, StoreError> {
        parse_id16(s, "job id")
            .map(JobId)
            .map_err(|_| StoreError::Invalid(format!("job id {s:?}")))
    }
}

/// Where a job is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JobState {
    /// Waiting for the uploader (possibly until `next_attempt_at`).
    Pending,
    /// An uploader holds it until `lease_until`.
    Leased,
    /// The server confirmed it; final.
    Acked,
    /// Given up on; needs an operator.
    Failed,
}

impl JobState {
    /// The value stored in `jobs.state`.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::Leased => "leased",
            JobState::Acked => "acked",
            JobState::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Result<JobState, StoreError> {
        Ok(match s {
            "pending" => JobState::Pending,
            "leased" => JobState::Leased,
            "acked" => JobState::Acked,
            "failed" => JobState::Failed,
            other => return Err(StoreError::Corrupt(format!("job state {other:?}"))),
        })
    }
}

/// One file of a job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobFile {
    /// What the file is, unique within the job: e.g. "standard", "original", "record", "layout".
    pub role: String,
    /// Where it is on the kiosk; must be valid UTF-8.
    pub path: PathBuf,
    /// SHA-256 of the file as written, 64 lowercase hex digits; the uploader verifies the read-back.
    pub sha256: String,
    /// Bytes.
    pub size: u64,
}

/// What the shell hands to [`Store::enqueue_and_complete`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewJob {
    pub ticket: TicketId,
    /// The chosen candidate.
    pub shot_no: u8,
    /// Photo spec id, e.g. "chsi-graduate".
    pub spec_id: String,
    /// At least one file.
    pub files: Vec<JobFile>,
    /// Upload metadata as JSON text; pseudonymous only.
    pub meta_json: String,
}

/// A stored job with its files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    pub id: JobId,
    pub ticket: TicketId,
    pub shot_no: u8,
    pub spec_id: String,
    pub meta_json: String,
    pub state: JobState,
    pub attempts: u32,
    pub created_at: i64,
    pub next_attempt_at: i64,
    pub lease_owner: Option<String>,
    pub lease_until: Option<i64>,
    pub acked_at: Option<i64>,
    pub last_error: Option<String>,
    /// In role order.
    pub files: Vec<JobFile>,
}

/// How many jobs are in each state, for status screens and `/metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    pub pending: u64,
    pub leased: u64,
    pub acked: u64,
    pub failed: u64,
    /// `created_at` of the oldest job not yet acked (pending, leased or failed): the backlog's age.
    pub oldest_unacked_at: Option<i64>,
}

fn validate(job: &NewJob) -> Result<(), StoreError> {
    if job.files.is_empty() {
        return Err(StoreError::Invalid("a job needs at least one file".into()));
    }
    for f in &job.files {
        let hex_ok = f.sha256.len() == 64 && f.sha256.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !hex_ok {
            return Err(StoreError::Invalid(format!(
                "sha256 of {:?} is not 64 lowercase hex digits",
                f.role
            )));
        }
        if f.path.to_str().is_none() {
            return Err(StoreError::Invalid(format!("path of {:?} is not UTF-8", f.role)));
        }
        if i64::try_from(f.size).is_err() {
            return Err(StoreError::Invalid(format!(
                "size of {:?} is out of range",
                f.role
            )));
        }
    }
    Ok(())
}

impl Store {
    /// Queues the upload of the chosen candidate and marks the ticket completed, in one transaction
    /// committed with `synchronous=FULL`: when this returns `Ok`, both survive power loss; when it
    /// returns `Err`, neither happened. Only then may the kiosk show "完成".
    ///
    /// Refused if the ticket is already completed (one job per ticket: nothing is filed twice) or
    /// locked, or if the shot is not a passing candidate. A cool-down does not block it: choosing an
    /// existing candidate takes no new shot.
    pub fn enqueue_and_complete(&self, job: &NewJob, now_unix: i64) -> Result<JobId, StoreError> {
        validate(job)?;
        let job_id = JobId::random()?;
        self.write(Durability::Full, |tx| {
            let state = require_state(tx, &job.ticket)?;
            if state.completed_at.is_some() {
                return Err(StoreError::Refused(Rejection::AlreadyCompleted));
            }
            if state.locked.is_some() {
                return Err(StoreError::Refused(Rejection::Locked));
            }
            if !state.candidates.iter().any(|c| c.shot_no == job.shot_no) {
                return Err(if job.shot_no == 0 || job.shot_no > state.shots_used {
                    StoreError::UnknownShot {
                        ticket: job.ticket,
                        shot_no: job.shot_no,
                    }
                } else {
                    StoreError::NotACandidate {
                        ticket: job.ticket,
                        shot_no: job.shot_no,
                    }
                });
            }
            let id = job_id.to_string();
            let ticket = job.ticket.to_string();
            tx.prepare_cached(
                "INSERT INTO jobs (job_id, ticket_id, shot_no, spec_id, meta_json, state, attempts, \
                                   created_at, next_attempt_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, 'pending', 0, ?6, ?6)",
            )?
            .execute(params![
                id,
                ticket,
                job.shot_no,
                job.spec_id,
                job.meta_json,
                now_unix
            ])?;
            let mut insert_file = tx.prepare_cached(
                "INSERT INTO job_files (job_id, role, path, sha256, size) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for f in &job.files {
                // Both checked in `validate`.
                let path = f.path.to_str().unwrap_or_default();
                let size = i64::try_from(f.size).unwrap_or(i64::MAX);
                insert_file.execute(params![id, f.role, path, f.sha256, size])?;
            }
            tx.prepare_cached("UPDATE tickets SET completed_at = ?2 WHERE ticket_id = ?1")?
                .execute(params![ticket, now_unix])?;
            audit::append(
                tx,
                "kiosk",
                "ticket_completed",
                &json!({ "ticket": ticket, "job": id, "shot_no": job.shot_no, "spec": job.spec_id }),
                now_unix,
            )?;
            Ok(job_id)
        })
    }

    /// Up to `limit` pending jobs, the ones due soonest first.
    pub fn pending_jobs(&self, limit: usize) -> Result<Vec<Job>, StoreError> {
        self.read(|tx| {
            let ids: Vec<String> = tx
                .prepare_cached(
                    "SELECT job_id FROM jobs WHERE state = 'pending' \
                     ORDER BY next_attempt_at, created_at, job_id LIMIT ?1",
                )?
                .query_map([limit_sql(limit)], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            let mut jobs = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(job) = load_job(tx, &id)? {
                    jobs.push(job);
                }
            }
            Ok(jobs)
        })
    }

    /// One job with its files, or `None`.
    pub fn job(&self, id: &JobId) -> Result<Option<Job>, StoreError> {
        self.read(|tx| load_job(tx, &id.to_string()))
    }

    /// Jobs per state and the age of the backlog.
    pub fn outbox_counts(&self) -> Result<OutboxCounts, StoreError> {
        self.read(|tx| {
            let mut counts = OutboxCounts::default();
            let mut stmt = tx.prepare_cached("SELECT state, count(*) FROM jobs GROUP BY state")?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            for row in rows {
                let (state, n) = row?;
                let n = n.unsigned_abs(); // a count is never negative
                match JobState::parse(&state)? {
                    JobState::Pending => counts.pending = n,
                    JobState::Leased => counts.leased = n,
                    JobState::Acked => counts.acked = n,
                    JobState::Failed => counts.failed = n,
                }
            }
            counts.oldest_unacked_at = tx
                .prepare_cached("SELECT min(created_at) FROM jobs WHERE state <> 'acked'")?
                .query_row([], |r| r.get(0))?;
            Ok(counts)
        })
    }
}

pub(super) fn load_job(conn: &Connection, id: &str) -> Result<Option<Job>, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT ticket_id, shot_no, spec_id, meta_json, state, attempts, created_at, next_attempt_at, \
                    lease_owner, lease_until, acked_at, last_error \
             FROM jobs WHERE job_id = ?1",
        )?
        .query_row([id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, u8>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, u32>(5)?,
                r.get::<_, i64>(6)?,
                r.get::<_, i64>(7)?,
                r.get::<_, Option<String>>(8)?,
                r.get::<_, Option<i64>>(9)?,
                r.get::<_, Option<i64>>(10)?,
                r.get::<_, Option<String>>(11)?,
            ))
        })
        .optional()?;
    let Some((
        ticket,
        shot_no,
        spec_id,
        meta_json,
        state,
        attempts,
        created_at,
        next_attempt_at,
        lo,
        lu,
        ack,
        err,
    )) = row
    else {
        return Ok(None);
    };
    let files = conn
        .prepare_cached("SELECT role, path, sha256, size FROM job_files WHERE job_id = ?1 ORDER BY role")?
        .query_map([id], |r| {
            Ok(JobFile {
                role: r.get(0)?,
                path: PathBuf::from(r.get::<_, String>(1)?),
                sha256: r.get(2)?,
                // The schema's CHECK (size >= 0) makes this lossless.
                size: r.get::<_, i64>(3)?.unsigned_abs(),
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(Some(Job {
        id: parse_id16(id, "job id").map(JobId)?,
        ticket: ticket_id_from_sql(&ticket)?,
        shot_no,
        spec_id,
        meta_json,
        state: JobState::parse(&state)?,
        attempts,
        created_at,
        next_attempt_at,
        lease_owner: lo,
        lease_until: lu,
        acked_at: ack,
        last_error: err,
        files,
    }))
}
