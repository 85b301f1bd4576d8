//! The uploader's outbox transitions on a real SQLite file: leasing only what is due, lease expiry,
//! retries that only the lease holder may record, the final ack, parking and requeueing failed jobs,
//! and the retention bookkeeping (which files may be deleted when).
//!
//! The network side is covered by the crash and fault tests in `tests/`; this file is the store alone.

use std::path::PathBuf;

use kiosk::store::{JobFile, JobId, JobState, Store};

mod support;
use support::{T0, temp_store as open};

/// A completed ticket `n` (valid from T0) whose job, at `now`, names one spool file that does not
/// exist: this file tests the store alone.
fn enqueue(store: &Store, n: u8, now: i64) -> JobId {
    let t = support::ticket(n, T0);
    let shot = support::pass_one_shot(store, &t, now);
    let files = vec![JobFile {
        role: "standardized".into(),
        path: PathBuf::from(format!("/spool/{n}/standardized.age")),
        sha256: "a".repeat(64),
        size: 10,
    }];
    support::file_job(store, t.id, shot, files, now)
}

#[test]
fn lease_takes_due_jobs_once_and_expired_leases_come_back() {
    let (_dir, store) = open();
    let a = enqueue(&store, 1, T0);
    let b = enqueue(&store, 2, T0 + 1);
    assert!(
        store.lease_jobs("u1", T0 - 1, 30, 10).unwrap().is_empty(),
        "not due yet"
    );
    let leased = store.lease_jobs("u1", T0, 30, 10).unwrap();
    assert_eq!(leased.iter().map(|j| j.id).collect::<Vec<_>>(), vec![a]);
    assert_eq!(leased[0].state, JobState::Leased);
    assert_eq!(leased[0].lease_owner.as_deref(), Some("u1"));
    let second = store.lease_jobs("u2", T0 + 1, 30, 10).unwrap();
    assert_eq!(
        second.iter().map(|j| j.id).collect::<Vec<_>>(),
        vec![b],
        "a is held by u1"
    );
    assert!(store.lease_jobs("u2", T0 + 29, 30, 10).unwrap().is_empty());
    // u1 died: at lease_until the job is anyone's again.
    let taken = store.lease_jobs("u2", T0 + 30, 30, 10).unwrap();
    assert_eq!(taken.iter().map(|j| j.id).collect::<Vec<_>>(), vec![a]);
    assert_eq!(store.next_due_at().unwrap(), Some(T0 + 31));
    assert!(store.lease_jobs("", T0, 30, 1).is_err());
    assert!(store.lease_jobs("u", T0, 0, 1).is_err());
}

#[test]
fn only_the_holder_reschedules_and_the_ack_is_final() {
    let (_dir, store) = open();
    let a = enqueue(&store, 1, T0);
    store.lease_jobs("u1", T0, 30, 1).unwrap();
    assert!(!store.retry_job(&a, "u2", T0 + 5, "not mine").unwrap());
    assert!(store.retry_job(&a, "u1", T0 + 5, "HTTP 503").unwrap());
    let job = store.job(&a).unwrap().unwrap();
    assert_eq!(
        (
            job.state,
            job.attempts,
            job.next_attempt_at,
            job.last_error.as_deref()
        ),
        (JobState::Pending, 1, T0 + 5, Some("HTTP 503"))
    );
    assert!(
        store.lease_jobs("u1", T0 + 4, 30, 1).unwrap().is_empty(),
        "backoff holds"
    );
    assert_eq!(store.lease_jobs("u1", T0 + 5, 30, 1).unwrap().len(), 1);
    assert!(store.ack_job(&a, T0 + 6).unwrap());
    assert!(!store.ack_job(&a, T0 + 7).unwrap(), "second ack changes nothing");
    let job = store.job(&a).unwrap().unwrap();
    assert_eq!(
        (job.state, job.acked_at, job.lease_owner),
        (JobState::Acked, Some(T0 + 6), None)
    );
    // Nothing takes an acked job back: not a late retry, a release, a failure, or the schema itself.
    assert!(!store.retry_job(&a, "u1", T0 + 9, "late").unwrap());
    assert!(!store.release_job(&a, "u1").unwrap());
    assert!(!store.fail_job(&a, "u1", "late", T0 + 9).unwrap());
    assert!(store.lease_jobs("u1", T0 + 1000, 30, 10).unwrap().is_empty());
    assert!(store.ack_job(&JobId([9; 16]), T0).is_err(), "unknown job");
}

#[test]
fn failed_jobs_wait_for_an_operator_and_release_costs_no_attempt() {
    let (_dir, store) = open();
    let a = enqueue(&store, 1, T0);
    store.lease_jobs("u1", T0, 30, 1).unwrap();
    assert!(store.release_job(&a, "u1").unwrap());
    let job = store.job(&a).unwrap().unwrap();
    assert_eq!((job.state, job.attempts), (JobState::Pending, 0));
    store.lease_jobs("u1", T0, 30, 1).unwrap();
    let long_error = "x".repeat(5000);
    assert!(store.fail_job(&a, "u1", &long_error, T0).unwrap());
    let job = store.job(&a).unwrap().unwrap();
    assert_eq!(
        (job.state, job.last_error.map(|e| e.len())),
        (JobState::Failed, Some(500))
    );
    assert!(store.lease_jobs("u1", T0 + 10_000, 30, 1).unwrap().is_empty());
    assert_eq!(store.outbox_counts().unwrap().failed, 1);
    assert!(store.requeue_failed(&a, "tech-1", T0 + 100).unwrap());
    assert!(!store.requeue_failed(&a, "tech-1", T0 + 100).unwrap());
    assert_eq!(store.lease_jobs("u1", T0 + 100, 30, 1).unwrap().len(), 1);
}

#[test]
fn retention_lists_acked_files_after_the_window_once() {
    let (_dir, store) = open();
    let a = enqueue(&store, 1, T0);
    let b = enqueue(&store, 2, T0);
    assert_eq!(store.live_job_paths().unwrap().len(), 2);
    for (id, at) in [(a, T0 + 10), (b, T0 + 20)] {
        store.lease_jobs("u", at, 30, 1).unwrap();
        store.ack_job(&id, at).unwrap();
    }
    assert!(store.purge_candidates(T0 + 9, 10).unwrap().is_empty());
    let due = store.purge_candidates(T0 + 10, 10).unwrap();
    assert_eq!(due.iter().map(|c| c.id).collect::<Vec<_>>(), vec![a]);
    assert_eq!(due[0].files[0].path, PathBuf::from("/spool/1/standardized.age"));
    assert!(store.mark_files_deleted(&a, T0 + 11).unwrap());
    assert!(!store.mark_files_deleted(&a, T0 + 12).unwrap());
    let due = store.purge_candidates(T0 + 100, 10).unwrap();
    assert_eq!(due.iter().map(|c| c.id).collect::<Vec<_>>(), vec![b]);
    assert_eq!(
        store.live_job_paths().unwrap(),
        vec!["/spool/2/standardized.age".to_string()]
    );
    assert!(store.integrity_check().unwrap());
}
