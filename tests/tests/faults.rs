//! Upload fault test: the uploader (a child process running the `kiosk-uploader` service code)
//! drains a queue of sealed jobs into the reference receiver while it injects 500s (before and after
//! storing), 429 with Retry-After, connection resets, stalls longer than the client's timeout, slow
//! reads and truncated responses.
//!
//! Checked: every job is delivered exactly once; after every failed request the job's next request
//! comes no sooner than the backoff floor (1 s) or the Retry-After; the uploader's CPU, sampled each
//! second from `/proc`, stays bounded (it waits, it does not spin); SIGTERM stops it with exit 0.
//! Before uploading, the data directory is scanned as a thief would: no name, student number,
//! school or JPEG is readable in the database, its WAL or the spool.
//!
//! Run: `cargo test --release -p tests --test faults -- --nocapture`; ends with
//! `faults: jobs=N delivered=N retries=R max_cpu_pct=X`. `KIOSK_FAULT_JOBS` sets N (default 40).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use kiosk::outbox::Spool;
use kiosk::store::Store;
use tests::intake::{Fault, FaultPlan, Intake};
use tests::pipeline::{self, TOKEN};

const ROLE_ENV: &str = "KIOSK_UPLOAD_FAULT_CHILD";
/// The uploader's request timeout in this test; stalls last longer.
const REQUEST_TIMEOUT_SECS: u64 = 2;
const RETRY_AFTER_SECS: u64 = 2;
/// Backoff floor: `base_backoff_secs = 1` and equal jitter never wait less than the base.
const MIN_GAP: Duration = Duration::from_secs(1);
/// A spinning thread shows as ~100 %; a waiting uploader as a few percent.
const MAX_CPU_PCT: f64 = 50.0;

/// The child's body: only runs when the parent set `ROLE_ENV` to the config path.
#[test]
fn fault_child() {
    let Some(config) = std::env::var_os(ROLE_ENV) else {
        return;
    };
    pipeline::run_uploader_child(&PathBuf::from(config)).unwrap();
}

fn jobs_wanted() -> usize {
    std::env::var("KIOSK_FAULT_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40)
}

/// Whether the client saw this request fail (so the attempt ended and backoff applies).
fn failed(fault: Option<Fault>, status: u16) -> Option<Duration> {
    match fault {
        Some(Fault::TooMany) => Some(Duration::from_secs(RETRY_AFTER_SECS)),
        Some(Fault::Error500 | Fault::StoreThen500 | Fault::Reset | Fault::Stall | Fault::Truncate) => {
            Some(MIN_GAP)
        }
        _ if status >= 400 => Some(MIN_GAP),
        _ => None,
    }
}

#[test]
fn injected_faults_delay_but_never_lose_or_duplicate() {
    if std::env::var_os(ROLE_ENV).is_some() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let plan = FaultPlan {
        weights: vec![
            (Fault::Error500, 15),
            (Fault::StoreThen500, 10),
            (Fault::TooMany, 15),
            (Fault::Reset, 12),
            (Fault::Stall, 6),
            (Fault::SlowRead, 20),
            (Fault::Truncate, 12),
        ],
        retry_after_secs: RETRY_AFTER_SECS,
        stall: Duration::from_secs(REQUEST_TIMEOUT_SECS * 2),
        seed: 42,
    };
    let intake = Intake::start(TOKEN, plan).unwrap();
    let db = dir.join("kiosk.sqlite");
    let store = Store::open(&db).unwrap();
    let identity = age::x25519::Identity::generate();
    let spool = Spool::new(dir.join("spool"), &[identity.to_public().to_string()]).unwrap();
    let n = jobs_wanted();
    let now = kiosk::clock::unix_now();
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        ids.push(pipeline::accept_one(&store, &spool, now).unwrap().0);
    }
    // A stolen SD card after these sessions: no name, student number, school or photo in any file
    // (database, WAL, spool). Positive control first: the scan does find them in plaintext.
    let control = dir.join("control");
    std::fs::create_dir(&control).unwrap();
    let t = pipeline::fixture_ticket(kiosk::ticket::TicketId([0; 16]), 0);
    let mut plain = pipeline::payload(&t.id, "standardized");
    plain.extend(t.masked_name.as_bytes());
    plain.extend(t.student_no.as_bytes());
    plain.extend(t.school.as_bytes());
    std::fs::write(control.join("plain"), &plain).unwrap();
    assert_eq!(pipeline::scan_for_personal_data(&control).unwrap().len(), 4);
    std::fs::remove_dir_all(&control).unwrap();
    let leaks = pipeline::scan_for_personal_data(dir).unwrap();
    assert!(leaks.is_empty(), "personal data at rest: {leaks:?}");

    let config = pipeline::write_config(
        dir,
        &intake,
        &db,
        &dir.join("spool"),
        &format!(
            "concurrency = 4\nlease_secs = 10\nrequest_timeout_secs = {REQUEST_TIMEOUT_SECS}\n\
             connect_timeout_secs = 1\nbase_backoff_secs = 1\nmax_backoff_secs = 4\nretention_secs = 0\n\
             poll_ms = 200\nsweep_secs = 1\nbandwidth_kbps = 4000"
        ),
    )
    .unwrap();

    let started = kiosk::clock::monotonic();
    let log = std::fs::File::create(dir.join("uploader.log")).unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "fault_child", "--nocapture", "--test-threads=1"])
        .env(ROLE_ENV, &config)
        .env("RUST_LOG", "kiosk=info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let pid = child.id();
    let ticks_per_sec = pipeline::clock_ticks_per_sec() as f64;
    let mut max_cpu_pct: f64 = 0.0;
    let mut last = (kiosk::clock::monotonic(), pipeline::cpu_ticks(pid).unwrap_or(0));
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let ticks = pipeline::cpu_ticks(pid).unwrap_or(last.1);
        let at = kiosk::clock::monotonic();
        let pct = (ticks - last.1) as f64 / ticks_per_sec / at.duration_since(last.0).as_secs_f64() * 100.0;
        max_cpu_pct = max_cpu_pct.max(pct);
        last = (at, ticks);
        let c = store.outbox_counts().unwrap();
        if c.acked as usize == n {
            break;
        }
        assert_eq!(c.failed, 0, "a job failed permanently");
        assert!(
            child.try_wait().unwrap().is_none(),
            "uploader died:\n{}",
            std::fs::read_to_string(dir.join("uploader.log")).unwrap_or_default()
        );
        assert!(
            started.elapsed() < Duration::from_secs(150),
            "not drained in time: {c:?}"
        );
    }
    let drain_secs = started.elapsed().as_secs_f64();
    pipeline::sigterm(pid).unwrap();
    let stop_started = kiosk::clock::monotonic();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        // In-flight requests finish first; each is bounded by the request timeout.
        assert!(
            stop_started.elapsed() < Duration::from_secs(REQUEST_TIMEOUT_SECS * 3),
            "uploader did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit after SIGTERM: {status}");

    let retries: i64 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("SELECT coalesce(sum(attempts), 0) FROM jobs", [], |r| r.get(0))
        .unwrap();
    let state = intake.state();
    let delivered = ids
        .iter()
        .filter(|id| state.deliveries.get(&id.to_string()) == Some(&1))
        .count();
    let extra = state.deliveries.values().filter(|&&d| d != 1).count() + state.manifests.len() - delivered;
    let mut faults: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_job: HashMap<&str, Vec<(std::time::Instant, Option<Duration>)>> = HashMap::new();
    for r in &state.log {
        if let Some(f) = r.fault {
            *faults.entry(format!("{f:?}")).or_default() += 1;
        }
        if let Some(job) = &r.job {
            by_job
                .entry(job)
                .or_default()
                .push((r.at, failed(r.fault, r.status)));
        }
    }
    let mut violations = Vec::new();
    let mut min_gap_after_failure = Duration::MAX;
    for (job, reqs) in &mut by_job {
        reqs.sort_by_key(|(at, _)| *at);
        for pair in reqs.windows(2) {
            if let (Some(need), next_at) = (pair[0].1, pair[1].0) {
                let gap = next_at.duration_since(pair[0].0);
                min_gap_after_failure = min_gap_after_failure.min(gap);
                if gap < need {
                    violations.push(format!("{job}: retried after {gap:?}, needed {need:?}"));
                }
            }
        }
    }
    let requests = state.log.len();
    let conflicts = state.conflicts;
    drop(state);
    println!(
        "faults: injected {} over {requests} requests; min gap after a failure {min_gap_after_failure:?}; drain {drain_secs:.1} s",
        faults
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!("faults: jobs={n} delivered={delivered} retries={retries} max_cpu_pct={max_cpu_pct:.1}");
    assert_eq!(delivered, n, "not every job delivered exactly once");
    assert_eq!((extra, conflicts), (0, 0), "duplicate or conflicting deliveries");
    assert!(violations.is_empty(), "backoff not respected: {violations:?}");
    assert!(max_cpu_pct < MAX_CPU_PCT, "uploader used {max_cpu_pct:.1} % CPU");
    assert!(
        retries > 0 && faults.len() >= 6,
        "too few faults to prove anything: {faults:?}"
    );
}
