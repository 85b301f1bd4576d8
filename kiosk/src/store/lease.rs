//! The uploader's side of the outbox: lease due jobs, acknowledge, reschedule, give up, release, and
//! find acked jobs whose local files the retention window allows to delete.
//!
//! A lease is a time-limited claim (`lease_owner`, `lease_until`), not a lock: an uploader killed
//! mid-upload holds nothing once `lease_until` passes, and whoever leases the job next uploads it again
//! under the same job id, which the intake server dedupes. So every transition here is safe to lose or
//! to repeat, with one exception: the ack is committed with `synchronous=FULL`, because the files are
//! deleted after it and a lost ack would leave a pending job whose files are gone.
//!
//! What it deliberately does not do: decide backoff (the caller passes `next_attempt_at`), read the
//! clock, talk to the network, or delete files (it only records that the caller did).

use rusqlite::params;
use serde_json::json;

use super::outbox::load_job;
use super::{Durability, Job, JobFile, JobId, Store, StoreError, audit};

/// `last_error` is for operators; a server can answer with a long body, so we keep the start only.
const MAX_ERROR_CHARS: usize = 500;

/// An acked job whose local files may now be deleted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PurgeCandidate {
    pub id: JobId,
    pub acked_at: i64,
    pub files: Vec<JobFile>,
}

fn clip(error: &str) -> String {
    error.chars().take(MAX_ERROR_CHARS).collect()
}

impl Store {
    /// Leases up to `limit` jobs to `owner` until `now_unix + lease_secs`: pending jobs that are due,
    /// and leased jobs whose lease expired (their holder died). Oldest due first. One transaction, so
    /// two uploaders never lease the same job at the same moment.
    pub fn lease_jobs(
        &self,
        owner: &str,
        now_unix: i64,
        lease_secs: i64,
        limit: usize,
    ) -> Result<Vec<Job>, StoreError> {
        if owner.is_empty() || lease_secs <= 0 {
            return Err(StoreError::Invalid(
                "a lease needs an owner and a positive duration".into(),
            ));
        }
        self.write(Durability::Normal, |tx| {
            // Two index range scans rather than one OR: expired leases first (their holder died and
            // they have waited longest), then pending jobs in due order.
            let mut ids: Vec<String> = tx
                .prepare_cached(
                    "SELECT job_id FROM jobs WHERE state = 'leased' AND lease_until <= ?1 \
                     ORDER BY lease_until LIMIT ?2",
                )?
                .query_map(params![now_unix, audit::limit_sql(limit)], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            let rest = limit.saturating_sub(ids.len());
            if rest > 0 {
                let pending: Vec<String> = tx
                    .prepare_cached(
                        "SELECT job_id FROM jobs WHERE state = 'pending' AND next_attempt_at <= ?1 \
                         ORDER BY next_attempt_at, created_at, job_id LIMIT ?2",
                    )?
                    .query_map(params![now_unix, audit::limit_sql(rest)], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                ids.extend(pending);
            }
            let mut update = tx.prepare_cached(
                "UPDATE jobs SET state = 'leased', lease_owner = ?2, lease_until = ?3 WHERE job_id = ?1",
            )?;
            let mut jobs = Vec::with_capacity(ids.len());
            for id in ids {
                update.execute(params![id, owner, now_unix.saturating_add(lease_secs)])?;
                if let Some(job) = load_job(tx, &id)? {
                    jobs.push(job);
                }
            }
            Ok(jobs)
        })
    }

    /// Records that the server confirmed the job (stored and read back with the right hash). Final.
    /// Committed with `synchronous=FULL`: the caller deletes the files after this, so it must not be
    /// lost. Acks whoever holds the lease (the server's confirmation is what counts) and returns
    /// `false` if the job was already acked, e.g. by an uploader whose expired lease it outlived.
    pub fn ack_job(&self, id: &JobId, now_unix: i64) -> Result<bool, StoreError> {
        self.write(Durability::Full, |tx| {
            let id_text = id.to_string();
            let changed = tx
                .prepare_cached(
                    "UPDATE jobs SET state = 'acked', acked_at = ?2, lease_owner = NULL, \
                                     lease_until = NULL, last_error = NULL \
                     WHERE job_id = ?1 AND state <> 'acked'",
                )?
                .execute(params![id_text, now_unix])?;
            if changed == 0 {
                return match load_job(tx, &id_text)? {
                    Some(_) => Ok(false),
                    None => Err(StoreError::Invalid(format!("unknown job {id}"))),
                };
            }
            audit::append(tx, "uploader", "job_acked", &json!({ "job": id_text }), now_unix)?;
            Ok(true)
        })
    }

    /// An attempt failed in a way worth retrying: back to pending until `next_attempt_at`, one more
    /// attempt counted, the error kept for operators. Only if `owner` still holds the lease, so a slow
    /// uploader cannot push back a job someone else already took over (or acked). Returns whether it
    /// applied.
    pub fn retry_job(
        &self,
        id: &JobId,
        owner: &str,
        next_attempt_at: i64,
        error: &str,
    ) -> Result<bool, StoreError> {
        self.write(Durability::Normal, |tx| {
            let n = tx
                .prepare_cached(
                    "UPDATE jobs SET state = 'pending', attempts = attempts + 1, next_attempt_at = ?3, \
                                     last_error = ?4, lease_owner = NULL, lease_until = NULL \
                     WHERE job_id = ?1 AND state = 'leased' AND lease_owner = ?2",
                )?
                .execute(params![id.to_string(), owner, next_attempt_at, clip(error)])?;
            Ok(n == 1)
        })
    }

    /// Gives the lease back without counting an attempt (the uploader is stopping). Returns whether it
    /// applied.
    pub fn release_job(&self, id: &JobId, owner: &str) -> Result<bool, StoreError> {
        self.write(Durability::Normal, |tx| {
            let n = tx
                .prepare_cached(
                    "UPDATE jobs SET state = 'pending', lease_owner = NULL, lease_until = NULL \
                     WHERE job_id = ?1 AND state = 'leased' AND lease_owner = ?2",
                )?
                .execute(params![id.to_string(), owner])?;
            Ok(n == 1)
        })
    }

    /// The job cannot succeed by retrying (the server says its content conflicts, a local file is
    /// missing or altered): parked as failed for an operator, with the reason. Returns whether it
    /// applied.
    pub fn fail_job(&self, id: &JobId, owner: &str, error: &str, now_unix: i64) -> Result<bool, StoreError> {
        self.write(Durability::Normal, |tx| {
            let id_text = id.to_string();
            let n = tx
                .prepare_cached(
                    "UPDATE jobs SET state = 'failed', attempts = attempts + 1, last_error = ?3, \
                                     lease_owner = NULL, lease_until = NULL \
                     WHERE job_id = ?1 AND state = 'leased' AND lease_owner = ?2",
                )?
                .execute(params![id_text, owner, clip(error)])?;
            if n == 1 {
                audit::append(
                    tx,
                    "uploader",
                    "job_failed",
                    &json!({ "job": id_text, "error": clip(error) }),
                    now_unix,
                )?;
            }
            Ok(n == 1)
        })
    }

    /// An operator's "retry": a failed job goes back to pending, due now. Returns whether it applied.
    pub fn requeue_failed(&self, id: &JobId, actor: &str, now_unix: i64) -> Result<bool, StoreError> {
        self.write(Durability::Normal, |tx| {
            let id_text = id.to_string();
            let n = tx
                .prepare_cached(
                    "UPDATE jobs SET state = 'pending', next_attempt_at = ?2 \
                     WHERE job_id = ?1 AND state = 'failed'",
                )?
                .execute(params![id_text, now_unix])?;
            if n == 1 {
                audit::append(tx, actor, "job_requeued", &json!({ "job": id_text }), now_unix)?;
            }
            Ok(n == 1)
        })
    }

    /// When the uploader next has something to do: the earliest `next_attempt_at` of a pending job or
    /// `lease_until` of a leased one. `None` when the outbox holds nothing unfinished.
    pub fn next_due_at(&self) -> Result<Option<i64>, StoreError> {
        self.read(|tx| {
            Ok(tx
                .prepare_cached(
                    "SELECT min(t) FROM ( \
                        SELECT min(next_attempt_at) AS t FROM jobs WHERE state = 'pending' \
                        UNION ALL SELECT min(lease_until) FROM jobs WHERE state = 'leased')",
                )?
                .query_row([], |r| r.get(0))?)
        })
    }

    /// Up to `limit` acked jobs whose files are still on disk and were acked at or before
    /// `acked_before` (now minus the retention window), oldest first.
    pub fn purge_candidates(
        &self,
        acked_before: i64,
        limit: usize,
    ) -> Result<Vec<PurgeCandidate>, StoreError> {
        self.read(|tx| {
            let rows: Vec<(String, i64)> = tx
                .prepare_cached(
                    "SELECT job_id, acked_at FROM jobs \
                     WHERE state = 'acked' AND files_deleted_at IS NULL AND acked_at <= ?1 \
                     ORDER BY acked_at, job_id LIMIT ?2",
                )?
                .query_map(params![acked_before, audit::limit_sql(limit)], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?
                .collect::<Result<_, _>>()?;
            let mut out = Vec::with_capacity(rows.len());
            for (id, acked_at) in rows {
                if let Some(job) = load_job(tx, &id)? {
                    out.push(PurgeCandidate {
                        id: job.id,
                        acked_at,
                        files: job.files,
                    });
                }
            }
            Ok(out)
        })
    }

    /// Records that an acked job's local files are gone. Losing this on power loss only means the
    /// next sweep deletes files that are already deleted.
    pub fn mark_files_deleted(&self, id: &JobId, now_unix: i64) -> Result<bool, StoreError> {
        self.write(Durability::Normal, |tx| {
            let n = tx
                .prepare_cached(
                    "UPDATE jobs SET files_deleted_at = ?2 \
                     WHERE job_id = ?1 AND state = 'acked' AND files_deleted_at IS NULL",
                )?
                .execute(params![id.to_string(), now_unix])?;
            Ok(n == 1)
        })
    }

    /// Every file path any job still refers to (not yet deleted), so a spool sweep can tell sealed
    /// files that never made it into a job (the kiosk died between sealing and committing) from
    /// files that are waiting for upload.
    pub fn live_job_paths(&self) -> Result<Vec<String>, StoreError> {
        self.read(|tx| {
            Ok(tx
                .prepare_cached(
                    "SELECT f.path FROM job_files f JOIN jobs j ON j.job_id = f.job_id \
                     WHERE j.files_deleted_at IS NULL",
                )?
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?)
        })
    }
}
