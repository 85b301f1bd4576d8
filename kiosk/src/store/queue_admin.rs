//! Operator actions on the upload queue: list what needs attention, retry what the uploader gave up on,
//! and purge acknowledged jobs past their retention window. Called by the operator API
//! (`/v1/admin/queue/*`, hence `kioskctl queue retry|purge-acked`) and by the service screen.
//!
//! Unlike the rest of the store, `purge_acked` removes files: an acked job's row is what points at its
//! sealed payload, so deleting the row while the files stay would leave ciphertext nobody will ever
//! look for (the spool's orphan sweep would find it only much later). The files go first, then the
//! rows, so a crash in between leaves a row whose files are already gone, which the next purge (or the
//! uploader's retention sweep) finishes without complaint.
//!
//! What it deliberately does not do: touch a job that is not acknowledged (a pending, leased or failed
//! job holds the only copy of a student's photo on its way to the collection unit), reset a job's
//! attempt count (the record of how often it failed stays), or read the clock.

use std::path::{Path, PathBuf};

use rusqlite::params;
use serde_json::json;

use super::audit::limit_sql;
use super::outbox::load_job;
use super::{Durability, Job, Store, StoreError, audit};

/// Jobs removed per transaction by `purge_acked`, so a year of acked jobs does not hold the write lock
/// (and the kiosk's next commit) for seconds.
const PURGE_BATCH: usize = 200;

/// How many job ids one audit entry lists; beyond that the entry gives the count only.
const AUDIT_IDS: usize = 50;

impl Store {
    /// Every failed (parked) job becomes pending and due at `now_unix`, so the uploader picks it up at
    /// its next lease. `attempts` and `last_error` are kept for the record; the next attempt's outcome
    /// overwrites the error. One audited transaction; returns how many jobs were requeued (0 when none
    /// had failed, with no audit entry).
    pub fn retry_failed(&self, actor: &str, now_unix: i64) -> Result<u64, StoreError> {
        if actor.is_empty() {
            return Err(StoreError::Invalid("an operator action needs an actor".into()));
        }
        self.write(Durability::Normal, |tx| {
            let ids: Vec<String> = tx
                .prepare_cached("SELECT job_id FROM jobs WHERE state = 'failed' ORDER BY created_at, job_id")?
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            if ids.is_empty() {
                return Ok(0);
            }
            let n = tx
                .prepare_cached(
                    "UPDATE jobs SET state = 'pending', next_attempt_at = ?1, \
                                     lease_owner = NULL, lease_until = NULL \
                     WHERE state = 'failed'",
                )?
                .execute(params![now_unix])?;
            audit::append(
                tx,
                actor,
                "jobs_retried",
                &json!({ "count": n, "jobs": ids.iter().take(AUDIT_IDS).collect::<Vec<_>>() }),
                now_unix,
            )?;
            Ok(n as u64)
        })
    }

    /// Removes acknowledged jobs acked at least `older_than_secs` before `now_unix`: first their local
    /// (sealed) files and the job directory when it is left empty, then their rows, with one audit
    /// entry per batch. Only `state = 'acked'` rows are ever selected or deleted, and an acked job can
    /// never leave that state (a trigger), so nothing on its way to the collection unit is lost.
    /// Returns how many jobs were removed.
    ///
    /// A file that cannot be deleted (permissions, read-only file system) stops the purge with an
    /// error before that job's row is touched; jobs already removed stay removed.
    pub fn purge_acked(&self, older_than_secs: i64, actor: &str, now_unix: i64) -> Result<u64, StoreError> {
        if older_than_secs < 0 {
            return Err(StoreError::Invalid(
                "the retention window cannot be negative".into(),
            ));
        }
        if actor.is_empty() {
            return Err(StoreError::Invalid("an operator action needs an actor".into()));
        }
        let acked_before = now_unix.saturating_sub(older_than_secs);
        let mut removed = 0u64;
        loop {
            let batch: Vec<Job> = self.read(|tx| {
                let ids: Vec<String> = tx
                    .prepare_cached(
                        "SELECT job_id FROM jobs WHERE state = 'acked' AND acked_at <= ?1 \
                         ORDER BY acked_at, job_id LIMIT ?2",
                    )?
                    .query_map(params![acked_before, limit_sql(PURGE_BATCH)], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                let mut jobs = Vec::with_capacity(ids.len());
                for id in ids {
                    if let Some(job) = load_job(tx, &id)? {
                        jobs.push(job);
                    }
                }
                Ok(jobs)
            })?;
            if batch.is_empty() {
                return Ok(removed);
            }
            let mut done: Vec<&Job> = Vec::with_capacity(batch.len());
            let mut failure = None;
            for job in &batch {
                match remove_job_files(job) {
                    Ok(()) => done.push(job),
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
            removed += self.delete_acked_rows(&done, acked_before, actor, now_unix)?;
            if let Some(e) = failure {
                return Err(e);
            }
            if batch.len() < PURGE_BATCH {
                return Ok(removed);
            }
        }
    }

    /// Deletes the rows of jobs whose files are gone, re-checking in the transaction that each is still
    /// acked and old enough.
    fn delete_acked_rows(
        &self,
        jobs: &[&Job],
        acked_before: i64,
        actor: &str,
        now_unix: i64,
    ) -> Result<u64, StoreError> {
        if jobs.is_empty() {
            return Ok(0);
        }
        self.write(Durability::Normal, |tx| {
            let mut del_files = tx.prepare_cached(
                "DELETE FROM job_files WHERE job_id = ?1 AND EXISTS \
                 (SELECT 1 FROM jobs WHERE job_id = ?1 AND state = 'acked' AND acked_at <= ?2)",
            )?;
            let mut del_job = tx.prepare_cached(
                "DELETE FROM jobs WHERE job_id = ?1 AND state = 'acked' AND acked_at <= ?2",
            )?;
            let mut ids = Vec::with_capacity(jobs.len());
            for job in jobs {
                let id = job.id.to_string();
                del_files.execute(params![id, acked_before])?;
                if del_job.execute(params![id, acked_before])? == 1 {
                    ids.push(id);
                }
            }
            if !ids.is_empty() {
                audit::append(
                    tx,
                    actor,
                    "jobs_purged",
                    &json!({
                        "count": ids.len(),
                        "acked_before": acked_before,
                        "jobs": ids.iter().take(AUDIT_IDS).collect::<Vec<_>>(),
                    }),
                    now_unix,
                )?;
            }
            Ok(ids.len() as u64)
        })
    }

    /// Up to `limit` failed (parked) jobs, oldest first: what an operator looks at before a retry.
    pub fn failed_jobs(&self, limit: usize) -> Result<Vec<Job>, StoreError> {
        self.read(|tx| {
            let ids: Vec<String> = tx
                .prepare_cached(
                    "SELECT job_id FROM jobs WHERE state = 'failed' ORDER BY created_at, job_id LIMIT ?1",
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
}

/// Deletes a job's files (already gone is fine) and its directory when that is left empty, then syncs
/// the directories whose entries changed so the deletion is durable before the row goes.
fn remove_job_files(job: &Job) -> Result<(), StoreError> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    for f in &job.files {
        match std::fs::remove_file(&f.path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(StoreError::Invalid(format!(
                    "cannot delete {} of job {}: {e}",
                    f.path.display(),
                    job.id
                )));
            }
        }
        if let Some(parent) = f.path.parent()
            && !parent.as_os_str().is_empty()
            && !dirs.iter().any(|d| d == parent)
        {
            dirs.push(parent.to_path_buf());
        }
    }
    for dir in &dirs {
        // A directory someone put something else into is left, but its removed entries are synced.
        if std::fs::remove_dir(dir).is_err() {
            sync_dir(dir);
        } else if let Some(parent) = dir.parent() {
            sync_dir(parent);
        }
    }
    Ok(())
}

/// Best effort: a directory that cannot be opened for syncing is gone or unreadable, and either way
/// the next purge of the same job finds nothing left to delete.
fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir)
        && let Err(e) = d.sync_all()
    {
        tracing::warn!(dir = %dir.display(), error = %e, "could not sync a directory after deleting files");
    }
}
