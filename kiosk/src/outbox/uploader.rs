//! The uploader's loop: lease a due job, deliver it, then acknowledge it, reschedule it with backoff,
//! or park it as failed; and, beside that, delete local files once they are confirmed and past the
//! retention window.
//!
//! Crash safety comes from the order of durable steps, not from anything held in memory: a job is
//! acked (synchronous=FULL) only after the target verified it, and its files are deleted only after
//! the ack. A kill at any point leaves either a lease that expires (the job is delivered again under
//! the same id, which the target dedupes) or an acked job whose files the next sweep deletes.
//!
//! What it deliberately does not do: read the clock (the caller passes `now`; the binary passes
//! `kiosk::clock::unix_now`), install signal handlers (it watches a flag the binary sets on SIGTERM),
//! or know any protocol (that is the [`Target`]'s).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use super::backoff::Backoff;
use super::spool::{Spool, SpoolError, sync_dir};
use super::target::{Delivery, DeliveryError, Target, Throttle};
use crate::store::{Job, PurgeCandidate, Store, StoreError};

/// How the uploader behaves.
#[derive(Clone, Debug)]
pub struct UploadSettings {
    /// Jobs in flight at once (worker threads).
    pub concurrency: usize,
    /// Total bandwidth cap for request bodies in kilobytes per second; `None` for none.
    pub bandwidth_kbps: Option<u64>,
    /// How long a lease lasts; a dead uploader's jobs come back after this.
    pub lease_secs: i64,
    /// Retry delays.
    pub backoff: Backoff,
    /// Local files are kept this long after the upload was confirmed.
    pub retention_secs: i64,
    /// How often to look for new jobs when idle (the kiosk enqueues from another process).
    pub poll: Duration,
    /// How often to run the retention sweep.
    pub sweep_every: Duration,
    /// Spool directories no job refers to are removed once this old (see [`Spool::remove_orphans`]).
    pub orphan_age_secs: i64,
}

impl Default for UploadSettings {
    fn default() -> Self {
        UploadSettings {
            concurrency: 2,
            bandwidth_kbps: None,
            lease_secs: 300,
            backoff: Backoff::default(),
            retention_secs: 7 * 86_400,
            poll: Duration::from_secs(1),
            sweep_every: Duration::from_secs(60),
            orphan_age_secs: 86_400,
        }
    }
}

/// Errors that stop the uploader. Delivery failures do not: they are recorded on the job.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The database failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The spool sweep failed.
    #[error("spool: {0}")]
    Spool(#[from] SpoolError),
    /// The operating system's random source failed (jitter, lease owner id).
    #[error("random source: {0}")]
    Random(getrandom::Error),
}

/// Counters since start, for logs and tests.
#[derive(Debug, Default)]
pub struct UploadStats {
    /// Jobs acknowledged.
    pub acked: AtomicU64,
    /// Of which the target already held (a retry after a lost ack).
    pub already_stored: AtomicU64,
    /// Attempts rescheduled.
    pub retried: AtomicU64,
    /// Jobs parked as failed.
    pub failed: AtomicU64,
    /// Jobs whose local files were deleted.
    pub purged: AtomicU64,
}

/// Drains the outbox into a target.
pub struct Uploader<'a> {
    store: &'a Store,
    target: &'a dyn Target,
    settings: UploadSettings,
    spool: Option<&'a Spool>,
    owner: String,
    stats: UploadStats,
}

impl std::fmt::Debug for Uploader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Uploader")
            .field("owner", &self.owner)
            .field("settings", &self.settings)
            .finish()
    }
}

fn random_u64() -> Result<u64, UploadError> {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).map_err(UploadError::Random)?;
    Ok(u64::from_le_bytes(b))
}

/// Sleeps up to `total`, waking early when `stop` is set. Slices of 100 ms: ten wake-ups a second
/// is nothing for the CPU and makes SIGTERM take effect quickly.
fn nap(stop: &AtomicBool, total: Duration) {
    let slice = Duration::from_millis(100);
    let mut left = total;
    while !stop.load(Ordering::Relaxed) && !left.is_zero() {
        let step = left.min(slice);
        std::thread::sleep(step);
        left -= step;
    }
}

impl<'a> Uploader<'a> {
    /// An uploader with a fresh lease-owner id (pid and random bits, so a restarted process never
    /// mistakes a dead predecessor's lease for its own). `spool` enables the orphan sweep.
    pub fn new(
        store: &'a Store,
        target: &'a dyn Target,
        settings: UploadSettings,
        spool: Option<&'a Spool>,
    ) -> Result<Uploader<'a>, UploadError> {
        let owner = format!("uploader-{}-{:08x}", std::process::id(), random_u64()? as u32);
        Ok(Uploader {
            store,
            target,
            settings,
            spool,
            owner,
            stats: UploadStats::default(),
        })
    }

    /// Counters since start.
    pub fn stats(&self) -> &UploadStats {
        &self.stats
    }

    /// This process's lease owner id.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Runs until `stop` is set: `concurrency` workers deliver jobs while this thread sweeps.
    /// In-flight deliveries finish (each bounded by the target's timeouts) before it returns.
    pub fn run(&self, stop: &AtomicBool, now: fn() -> i64) -> Result<(), UploadError> {
        let workers = self.settings.concurrency.max(1);
        let per_worker = self
            .settings
            .bandwidth_kbps
            .filter(|&k| k > 0)
            .map(|k| (k * 1000 / workers as u64).max(1));
        let throttle = Throttle {
            bytes_per_sec: per_worker,
        };
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..workers)
                .map(|_| s.spawn(|| self.worker(stop, now, &throttle)))
                .collect();
            let swept = self.sweeper(stop, now);
            // Whatever happened here, the workers must stop too before we return.
            stop.store(true, Ordering::Relaxed);
            let mut result = swept;
            for h in handles {
                // A worker that panicked held at most one lease, which expires; say so, but let
                // the others' shutdown finish.
                let r = h.join().unwrap_or_else(|_| {
                    tracing::error!("an upload worker panicked");
                    Ok(())
                });
                if result.is_ok() {
                    result = r;
                }
            }
            result
        })
    }

    fn sweeper(&self, stop: &AtomicBool, now: fn() -> i64) -> Result<(), UploadError> {
        while !stop.load(Ordering::Relaxed) {
            if let Err(e) = self.sweep(now()) {
                // A full or read-only disk must not stop uploads; the next sweep tries again.
                tracing::warn!(error = %e, "retention sweep failed");
            }
            nap(stop, self.settings.sweep_every);
        }
        Ok(())
    }

    /// Deletes the files of acked jobs past the retention window, then spool directories no job
    /// refers to. Returns how many jobs' files were deleted.
    pub fn sweep(&self, now_unix: i64) -> Result<usize, UploadError> {
        let acked_before = now_unix.saturating_sub(self.settings.retention_secs);
        let mut purged = 0;
        loop {
            let batch = self.store.purge_candidates(acked_before, 100)?;
            if batch.is_empty() {
                break;
            }
            for job in batch {
                self.purge(&job, now_unix)?;
                purged += 1;
            }
        }
        if let Some(spool) = self.spool {
            let live = self.store.live_job_paths()?;
            let removed = spool.remove_orphans(&live, now_unix, self.settings.orphan_age_secs)?;
            if removed > 0 {
                tracing::info!(removed, "removed orphaned spool directories");
            }
        }
        Ok(purged)
    }

    /// Deletes one acked job's files and directory, then records it.
    fn purge(&self, job: &PurgeCandidate, now_unix: i64) -> Result<(), UploadError> {
        tracing::debug!(phase = "delete", job = %job.id, "deleting local files");
        let mut dirs: Vec<PathBuf> = Vec::new();
        for f in &job.files {
            match std::fs::remove_file(&f.path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(SpoolError::Io {
                        path: f.path.clone(),
                        source: e,
                    }
                    .into());
                }
            }
            if let Some(parent) = f.path.parent()
                && !dirs.iter().any(|d| d == parent)
            {
                dirs.push(parent.to_path_buf());
            }
        }
        for dir in &dirs {
            // The job directory goes too when it is empty; a non-empty one (someone put something
            // else there) is left alone, but its changed entries are still made durable.
            if std::fs::remove_dir(dir).is_err() && dir.exists() {
                sync_dir(dir)?;
            } else if let Some(parent) = dir.parent() {
                sync_dir(parent)?;
            }
        }
        self.store.mark_files_deleted(&job.id, now_unix)?;
        self.stats.purged.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn worker(&self, stop: &AtomicBool, now: fn() -> i64, throttle: &Throttle) -> Result<(), UploadError> {
        while !stop.load(Ordering::Relaxed) {
            tracing::trace!(phase = "lease", "leasing");
            let leased = match self
                .store
                .lease_jobs(&self.owner, now(), self.settings.lease_secs, 1)
            {
                Ok(jobs) => jobs,
                Err(e) => {
                    // SQLITE_BUSY past the timeout, a full disk: wait and try again rather than die.
                    tracing::warn!(error = %e, "leasing failed");
                    nap(stop, self.settings.poll);
                    continue;
                }
            };
            let Some(job) = leased.into_iter().next() else {
                self.idle(stop, now);
                continue;
            };
            if let Err(e) = self.attempt(&job, now, throttle) {
                // The outcome could not be recorded (database busy or full). The lease expires and
                // the job is delivered again under the same id, which the target dedupes.
                tracing::warn!(job = %job.id, error = %e, "could not record the outcome");
                nap(stop, self.settings.poll);
            }
        }
        Ok(())
    }

    /// Waits for the next due job, or one poll interval, whichever is first.
    fn idle(&self, stop: &AtomicBool, now: fn() -> i64) {
        tracing::trace!(phase = "idle", "nothing due");
        let wait = match self.store.next_due_at() {
            Ok(Some(due)) => {
                let secs = due.saturating_sub(now()).max(0).unsigned_abs();
                Duration::from_secs(secs).min(self.settings.poll)
            }
            _ => self.settings.poll,
        };
        // At least a short nap: a due time in the past that we failed to lease (another uploader
        // took it) must not turn into a busy loop.
        nap(stop, wait.max(Duration::from_millis(50)));
    }

    fn attempt(&self, job: &Job, now: fn() -> i64, throttle: &Throttle) -> Result<(), UploadError> {
        tracing::debug!(phase = "upload", job = %job.id, attempts = job.attempts, "delivering");
        match self.target.deliver(job, throttle) {
            Ok(delivery) => {
                tracing::debug!(phase = "ack", job = %job.id, "acknowledging");
                if self.store.ack_job(&job.id, now())? {
                    self.stats.acked.fetch_add(1, Ordering::Relaxed);
                    if delivery == Delivery::AlreadyStored {
                        self.stats.already_stored.fetch_add(1, Ordering::Relaxed);
                    }
                    tracing::info!(job = %job.id, ?delivery, "uploaded and verified");
                }
                if self.settings.retention_secs <= 0 {
                    // No retention window: delete now rather than at the next sweep.
                    let done = PurgeCandidate {
                        id: job.id,
                        acked_at: now(),
                        files: job.files.clone(),
                    };
                    self.purge(&done, now())?;
                }
            }
            Err(DeliveryError::Transient { reason, retry_after }) => {
                let at =
                    self.settings
                        .backoff
                        .next_attempt_at(now(), job.attempts, retry_after, random_u64()?);
                if self.store.retry_job(&job.id, &self.owner, at, &reason)? {
                    self.stats.retried.fetch_add(1, Ordering::Relaxed);
                }
                tracing::info!(job = %job.id, attempts = job.attempts + 1, retry_at = at, %reason, "will retry");
            }
            Err(DeliveryError::Permanent(reason)) => {
                if self.store.fail_job(&job.id, &self.owner, &reason, now())? {
                    self.stats.failed.fetch_add(1, Ordering::Relaxed);
                }
                tracing::error!(job = %job.id, %reason, "upload failed; needs an operator");
            }
        }
        Ok(())
    }
}
