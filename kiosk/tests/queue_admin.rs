//! Operator actions on the upload queue (`Store::retry_failed`, `Store::purge_acked`) on a real SQLite
//! file with real sealed spool files: a retried job is delivered by the real uploader loop, a job that
//! is not acknowledged is never purged whatever the window, and every action is audited.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kiosk::outbox::{DeliveryError, Uploader};
use kiosk::store::{Job, JobId, JobState, Store, StoreError};
use kiosk::ticket::TicketId;

mod support;
// Only the uploader test moves the virtual clock `NOW`.
use support::{NOW, PHOTO_AND_RECORD, Scripted, StoreRig as Rig, T0, now, store_rig as rig, upload_settings};

/// A completed ticket `n` with its job and two sealed files in the spool, all at `at`.
fn enqueue(r: &Rig, n: u8, at: i64) -> JobId {
    support::enqueue_sealed(&r.store, &r.spool, n, at, at, PHOTO_AND_RECORD)
}

fn job(r: &Rig, id: &JobId) -> Option<Job> {
    r.store.job(id).unwrap()
}

fn events(store: &Store, event: &str) -> Vec<serde_json::Value> {
    store
        .audit_since(0, 10_000)
        .unwrap()
        .into_iter()
        .filter(|e| e.event == event)
        .map(|e| {
            let mut v: serde_json::Value = serde_json::from_str(&e.detail_json).unwrap();
            v["actor"] = e.actor.into();
            v
        })
        .collect()
}

/// Leases `id` as `owner` and parks it as failed, as the uploader does on a permanent error.
fn park(r: &Rig, id: &JobId, at: i64) {
    let leased = r.store.lease_jobs("u-test", at, 30, 100).unwrap();
    assert!(leased.iter().any(|j| j.id == *id));
    for j in &leased {
        if j.id == *id {
            assert!(r.store.fail_job(id, "u-test", "HTTP 409", at).unwrap());
        } else {
            assert!(r.store.release_job(&j.id, "u-test").unwrap());
        }
    }
}

#[test]
fn a_retried_job_is_picked_up_and_delivered_by_the_uploader() {
    let r = rig();
    let a = enqueue(&r, 1, now());
    let target = Scripted::default();
    target
        .script
        .lock()
        .unwrap()
        .push_back(Err(DeliveryError::Permanent("HTTP 409 conflict".into())));
    let uploader = Uploader::new(&r.store, &target, upload_settings(3600), None).unwrap();
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let h = s.spawn(|| uploader.run(&stop, now));
        let wait_for = |what: &str, cond: &dyn Fn() -> bool| {
            for _ in 0..1000 {
                if cond() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            panic!("timed out waiting for {what}");
        };
        wait_for("the job to be parked", &|| {
            job(&r, &a).unwrap().state == JobState::Failed
        });
        // Parked jobs stay parked, however long the loop runs.
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(target.seen.lock().unwrap().len(), 1);

        NOW.store(T0 + 500, Ordering::SeqCst);
        assert_eq!(r.store.retry_failed("api:ops-alice", now()).unwrap(), 1);
        wait_for("the retried job to be acked", &|| {
            job(&r, &a).unwrap().state == JobState::Acked
        });
        stop.store(true, Ordering::SeqCst);
        h.join().unwrap().unwrap();
    });
    assert_eq!(*target.seen.lock().unwrap(), vec![a, a]);
    let j = job(&r, &a).unwrap();
    assert_eq!(j.attempts, 1, "the failed attempt stays on record");
    assert_eq!(j.acked_at, Some(T0 + 500));
    let retried = events(&r.store, "jobs_retried");
    assert_eq!(retried.len(), 1);
    assert_eq!(retried[0]["actor"], "api:ops-alice");
    assert_eq!(retried[0]["count"], 1);
    assert_eq!(retried[0]["jobs"][0], a.to_string());
}

#[test]
fn retry_failed_requeues_only_failed_jobs_due_now_and_keeps_attempts() {
    let r = rig();
    let failed1 = enqueue(&r, 1, T0);
    let failed2 = enqueue(&r, 2, T0);
    let pending = enqueue(&r, 3, T0);
    park(&r, &failed1, T0 + 1);
    park(&r, &failed2, T0 + 2);
    // A pending job in backoff is the uploader's business, not an operator retry's.
    let leased = r.store.lease_jobs("u-test", T0 + 3, 30, 1).unwrap();
    assert_eq!(leased[0].id, pending);
    assert!(
        r.store
            .retry_job(&pending, "u-test", T0 + 900, "HTTP 503")
            .unwrap()
    );

    assert!(matches!(
        r.store.retry_failed("", T0 + 10),
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(r.store.retry_failed("kiosk-service", T0 + 10).unwrap(), 2);
    for id in [failed1, failed2] {
        let j = job(&r, &id).unwrap();
        assert_eq!(
            (j.state, j.attempts, j.next_attempt_at, j.last_error.as_deref()),
            (JobState::Pending, 1, T0 + 10, Some("HTTP 409"))
        );
    }
    let p = job(&r, &pending).unwrap();
    assert_eq!((p.state, p.next_attempt_at), (JobState::Pending, T0 + 900));
    // Due now: the next lease at T0 + 10 takes exactly the two retried jobs.
    let mut due: Vec<JobId> = r
        .store
        .lease_jobs("u2", T0 + 10, 30, 10)
        .unwrap()
        .iter()
        .map(|j| j.id)
        .collect();
    due.sort();
    let mut want = vec![failed1, failed2];
    want.sort();
    assert_eq!(due, want);
    // Nothing failed any more: no change and no audit entry.
    assert_eq!(r.store.retry_failed("kiosk-service", T0 + 11).unwrap(), 0);
    assert_eq!(events(&r.store, "jobs_retried").len(), 1);
}

#[test]
fn purge_removes_only_acked_jobs_past_the_window_with_their_files() {
    let r = rig();
    let old = enqueue(&r, 1, T0);
    let young = enqueue(&r, 2, T0);
    let pending = enqueue(&r, 3, T0);
    let failed = enqueue(&r, 4, T0);
    let leased = enqueue(&r, 5, T0);
    // Ack `old` at T0+10 and `young` at T0+5000 through the uploader's own transitions.
    for (id, at) in [(old, T0 + 10), (young, T0 + 5000)] {
        let l = r.store.lease_jobs("u", at, 30, 10).unwrap();
        for j in &l {
            if j.id != id {
                r.store.release_job(&j.id, "u").unwrap();
            }
        }
        assert!(r.store.ack_job(&id, at).unwrap());
    }
    park(&r, &failed, T0 + 6000);
    let l = r.store.lease_jobs("u", T0 + 6001, 1_000_000, 10).unwrap();
    for j in &l {
        if j.id != leased {
            r.store.release_job(&j.id, "u").unwrap();
        }
    }
    let files = |id: &JobId| job(&r, id).unwrap().files;
    let old_files = files(&old);
    let keep: Vec<_> = [young, pending, failed, leased].iter().flat_map(files).collect();
    assert!(old_files.iter().chain(&keep).all(|f| f.path.exists()));

    assert!(matches!(
        r.store.purge_acked(-1, "op", T0 + 7000),
        Err(StoreError::Invalid(_))
    ));
    // A one-hour window at T0 + 7000: `old` (acked 6990 s ago) goes, `young` (2000 s ago) stays.
    assert_eq!(r.store.purge_acked(3600, "api:ops-alice", T0 + 7000).unwrap(), 1);
    assert!(job(&r, &old).is_none(), "row removed");
    assert!(old_files.iter().all(|f| !f.path.exists()), "sealed files removed");
    assert!(
        !old_files[0].path.parent().unwrap().exists(),
        "job directory removed"
    );
    assert!(
        keep.iter().all(|f| f.path.exists()),
        "other jobs' files untouched"
    );
    for id in [young, pending, failed, leased] {
        assert!(job(&r, &id).is_some());
    }

    // Window 0, far in the future: every acked job goes, and nothing else ever does.
    assert_eq!(r.store.purge_acked(0, "op", T0 + 10_000_000).unwrap(), 1);
    assert!(job(&r, &young).is_none());
    for (id, state) in [
        (pending, JobState::Pending),
        (failed, JobState::Failed),
        (leased, JobState::Leased),
    ] {
        let j = job(&r, &id).unwrap();
        assert_eq!(j.state, state);
        assert!(
            j.files.iter().all(|f| f.path.exists()),
            "{state:?} job's files deleted"
        );
    }
    assert_eq!(r.store.purge_acked(0, "op", T0 + 10_000_000).unwrap(), 0);

    let purged = events(&r.store, "jobs_purged");
    assert_eq!(purged.len(), 2);
    assert_eq!(purged[0]["actor"], "api:ops-alice");
    assert_eq!(purged[0]["jobs"][0], old.to_string());
    assert_eq!(purged[1]["jobs"][0], young.to_string());
    let counts = r.store.outbox_counts().unwrap();
    assert_eq!(
        (counts.pending, counts.leased, counts.acked, counts.failed),
        (1, 1, 0, 1)
    );
    // The ticket stays completed after its job row is gone: it cannot be filed a second time.
    let t = r.store.ticket_state(&TicketId([1; 16])).unwrap().unwrap();
    assert!(t.completed_at.is_some());
}

#[test]
fn purge_finishes_a_job_whose_files_the_sweep_already_deleted() {
    let r = rig();
    let a = enqueue(&r, 1, T0);
    r.store.lease_jobs("u", T0, 30, 1).unwrap();
    r.store.ack_job(&a, T0 + 1).unwrap();
    for f in job(&r, &a).unwrap().files {
        std::fs::remove_file(&f.path).unwrap();
    }
    assert!(r.store.mark_files_deleted(&a, T0 + 2).unwrap());
    assert_eq!(r.store.purge_acked(0, "op", T0 + 3).unwrap(), 1);
    assert!(job(&r, &a).is_none());
}

/// Many jobs in random states, purged with random windows at random times: a job that is not acked
/// is never removed and never loses a file; an acked job is removed exactly when it is old enough.
#[test]
fn random_queues_never_lose_an_unacknowledged_job() {
    let r = rig();
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut rand = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut jobs = Vec::new();
    for n in 1..=60u8 {
        let at = T0 + i64::from(n);
        let id = enqueue(&r, n, at);
        let l = r.store.lease_jobs("u", at, 30, 100).unwrap();
        let fate = rand(4);
        for j in &l {
            if j.id == id && fate == 1 {
                r.store.ack_job(&id, at + rand(10_000) as i64).unwrap();
            } else if j.id == id && fate == 2 {
                r.store.fail_job(&id, "u", "HTTP 409", at).unwrap();
            } else if j.id == id && fate == 3 {
                // stays leased
            } else {
                r.store.release_job(&j.id, "u").unwrap();
            }
        }
        jobs.push(id);
    }
    for round in 0..20 {
        let at = T0 + 100 + rand(12_000) as i64;
        let window = rand(5_000) as i64;
        let before: Vec<Job> = jobs.iter().filter_map(|id| job(&r, id)).collect();
        let expected = before
            .iter()
            .filter(|j| j.state == JobState::Acked && j.acked_at.unwrap() <= at - window)
            .count() as u64;
        assert_eq!(
            r.store.purge_acked(window, "op", at).unwrap(),
            expected,
            "round {round}"
        );
        for j in &before {
            let after = job(&r, &j.id);
            let should_go = j.state == JobState::Acked && j.acked_at.unwrap() <= at - window;
            assert_eq!(after.is_none(), should_go, "round {round}: {:?}", j.state);
            if j.state != JobState::Acked {
                assert!(j.files.iter().all(|f| f.path.exists()));
            }
        }
    }
}
