//! The uploader's loop against a scripted in-process target on a virtual clock: what it does with
//! success, a transient failure with and without Retry-After, a permanent failure, and the retention
//! window. No network: the HTTPS target and real faults are in `tests/tests/faults.rs`.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kiosk::outbox::{DeliveryError, Spool, Uploader};
use kiosk::store::{JobId, JobState, Store};

mod support;
use support::{NOW, PHOTO_AND_RECORD, Scripted, T0, now, upload_settings};

/// A completed ticket `n` (valid from T0) whose job, with two sealed files, is queued at `now()`.
fn enqueue(store: &Store, spool: &Spool, n: u8) -> JobId {
    support::enqueue_sealed(store, spool, n, T0, now(), PHOTO_AND_RECORD)
}

/// Runs the uploader until `done` says so (or 10 s pass), then stops it.
fn run_until(uploader: &Uploader<'_>, done: impl Fn() -> bool) {
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let h = s.spawn(|| uploader.run(&stop, now));
        for _ in 0..1000 {
            if done() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        stop.store(true, Ordering::SeqCst);
        h.join().unwrap().unwrap();
    });
    assert!(done(), "condition not reached");
}

fn exists(p: &Path) -> bool {
    p.exists()
}

/// One test, not several: the virtual clock is process-wide.
#[test]
fn outcomes_backoff_and_retention_on_a_virtual_clock() {
    // `_dir` (not `_`) keeps the temp dir alive to the end of the test.
    let support::StoreRig { _dir, store, spool } = support::store_rig();
    let a = enqueue(&store, &spool, 1);
    let target = Scripted::default();
    target.script.lock().unwrap().extend([
        Err(DeliveryError::Transient {
            reason: "HTTP 429".into(),
            retry_after: Some(30),
        }),
        Err(DeliveryError::transient("reset")),
    ]);
    let uploader = Uploader::new(&store, &target, upload_settings(3600), None).unwrap();
    let job = |id: &JobId| store.job(id).unwrap().unwrap();

    // 429 with Retry-After 30: the job waits at least 30 s, not the 2-4 s backoff.
    run_until(&uploader, || job(&a).attempts == 1);
    let j = job(&a);
    assert_eq!(j.state, JobState::Pending);
    assert!(j.next_attempt_at >= T0 + 31, "{}", j.next_attempt_at);
    // Not due: nothing happens however long the loop runs.
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(target.seen.lock().unwrap().len(), 1);

    // Due: the second failure backs off by the exponential schedule (attempt 1: 4..=8 s).
    NOW.store(j.next_attempt_at, Ordering::SeqCst);
    run_until(&uploader, || job(&a).attempts == 2);
    let j2 = job(&a);
    let delay = j2.next_attempt_at - j.next_attempt_at;
    assert!((5..=9).contains(&delay), "delay {delay}");

    // Then success: acked, files kept for the retention window, then deleted by the sweep.
    NOW.store(j2.next_attempt_at, Ordering::SeqCst);
    run_until(&uploader, || job(&a).state == JobState::Acked);
    let files = job(&a).files;
    assert!(
        files.iter().all(|f| exists(&f.path)),
        "deleted inside the retention window"
    );
    NOW.store(j2.next_attempt_at + 3600, Ordering::SeqCst);
    run_until(&uploader, || files.iter().all(|f| !exists(&f.path)));
    assert!(
        !files[0].path.parent().unwrap().exists(),
        "job directory left behind"
    );
    assert!(store.purge_candidates(now(), 10).unwrap().is_empty());

    // A permanent failure parks the job for an operator and is not retried.
    let b = enqueue(&store, &spool, 2);
    target
        .script
        .lock()
        .unwrap()
        .push_back(Err(DeliveryError::Permanent("HTTP 409".into())));
    run_until(&uploader, || job(&b).state == JobState::Failed);
    NOW.store(now() + 100_000, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        target.seen.lock().unwrap().iter().filter(|&&id| id == b).count(),
        1
    );
    assert_eq!(job(&b).last_error.as_deref(), Some("HTTP 409"));
    let stats = uploader.stats();
    assert_eq!(
        (
            stats.acked.load(Ordering::SeqCst),
            stats.retried.load(Ordering::SeqCst),
            stats.failed.load(Ordering::SeqCst),
            stats.purged.load(Ordering::SeqCst)
        ),
        (1, 2, 1, 1)
    );
}
