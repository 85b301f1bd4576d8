//! The uploader's loop against a scripted in-process target on a virtual clock: what it does with
//! success, a transient failure with and without Retry-After, a permanent failure, and the retention
//! window. No network: the HTTPS target and real faults are in `tests/tests/faults.rs`.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use kiosk::outbox::{Backoff, Delivery, DeliveryError, Spool, Target, Throttle, UploadSettings, Uploader};
use kiosk::store::{CheckRow, Job, JobId, JobState, NewJob, ShotCheck, Store};
use kiosk::ticket::{Ticket, TicketId};

const T0: i64 = 1_780_000_000;
/// The virtual clock the uploader reads through `now`.
static NOW: AtomicI64 = AtomicI64::new(T0);

fn now() -> i64 {
    NOW.load(Ordering::SeqCst)
}

/// Answers from a script, then success; records what it was asked.
#[derive(Default)]
struct Scripted {
    script: Mutex<VecDeque<Result<Delivery, DeliveryError>>>,
    seen: Mutex<Vec<JobId>>,
}

impl Target for Scripted {
    fn deliver(&self, job: &Job, _throttle: &Throttle) -> Result<Delivery, DeliveryError> {
        self.seen.lock().unwrap().push(job.id);
        self.script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Ok(Delivery::Created))
    }
}

fn enqueue(store: &Store, spool: &Spool, n: u8) -> JobId {
    let id = TicketId([n; 16]);
    let t = Ticket {
        id,
        student_no: "s".into(),
        masked_name: "m".into(),
        school: "u".into(),
        id_last4: "0000".into(),
        site: "*".into(),
        photo_types: vec!["chsi-graduate".into()],
        shots_allowed: 3,
        paid: true,
        issued_at: T0 - 60,
        expires_at: T0 + 86_400,
        key_id: 1,
    };
    store.admit_ticket(&t, now()).unwrap().unwrap();
    let session = store.begin_session(now()).unwrap();
    let shot = store.consume_shot(&id, session, now()).unwrap();
    let rows = [CheckRow {
        id: "pose".into(),
        status: "pass".into(),
        value: None,
    }];
    let check = ShotCheck {
        passed: true,
        liveness_failed: false,
        record_json: "{}",
        per_check: &rows,
    };
    store.record_check(&id, shot, &check, now()).unwrap();
    let files = spool
        .seal_job_files(&id.to_string(), &[("standardized", b"jpeg"), ("record", b"{}")])
        .unwrap();
    let job = NewJob {
        ticket: id,
        shot_no: shot,
        spec_id: "chsi-graduate".into(),
        files,
        meta_json: "{}".into(),
    };
    store.enqueue_and_complete(&job, now()).unwrap()
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

fn settings(retention_secs: i64) -> UploadSettings {
    UploadSettings {
        concurrency: 1,
        backoff: Backoff {
            base_secs: 4,
            max_secs: 60,
        },
        retention_secs,
        poll: Duration::from_millis(20),
        sweep_every: Duration::from_millis(20),
        ..UploadSettings::default()
    }
}

fn exists(p: &Path) -> bool {
    p.exists()
}

/// One test, not several: the virtual clock is process-wide.
#[test]
fn outcomes_backoff_and_retention_on_a_virtual_clock() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("kiosk.sqlite")).unwrap();
    let key = age::x25519::Identity::generate().to_public().to_string();
    let spool = Spool::new(dir.path().join("spool"), &[key]).unwrap();
    let a = enqueue(&store, &spool, 1);
    let target = Scripted::default();
    target.script.lock().unwrap().extend([
        Err(DeliveryError::Transient {
            reason: "HTTP 429".into(),
            retry_after: Some(30),
        }),
        Err(DeliveryError::transient("reset")),
    ]);
    let uploader = Uploader::new(&store, &target, settings(3600), None).unwrap();
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
