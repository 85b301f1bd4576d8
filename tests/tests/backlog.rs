//! Backlog: a kiosk that was offline for days queues thousands of jobs, then the network comes back.
//! Measures the latency of the commit that gates "完成" (`enqueue_and_complete`, synchronous=FULL)
//! over the whole queue, then drains it through the uploader process into the reference receiver.
//!
//! Jobs share a few sealed file sets (sealing each one would measure age and fsync, not the queue);
//! retention is long, so nothing is deleted under a job that still needs its files.
//!
//! Run: `KIOSK_BACKLOG_JOBS=10000 cargo test --release -p tests --test backlog -- --nocapture`
//! (default 1000 jobs, for CI in debug); ends with
//! `backlog: jobs=N drained=N drain_secs=S enqueue_p50_ms=A enqueue_p99_ms=B`.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use kiosk::outbox::Spool;
use kiosk::store::Store;
use tests::intake::{FaultPlan, Intake};
use tests::pipeline::{self, ROLES, TOKEN};

const ROLE_ENV: &str = "KIOSK_UPLOAD_BACKLOG_CHILD";
/// PRODUCT.md's bar for the commit the student waits on.
const ENQUEUE_P99_BAR_MS: f64 = 20.0;

#[test]
fn backlog_child() {
    let Some(config) = std::env::var_os(ROLE_ENV) else {
        return;
    };
    pipeline::run_uploader_child(&PathBuf::from(config)).unwrap();
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[test]
fn ten_thousand_queued_jobs_drain_and_enqueue_stays_fast() {
    if std::env::var_os(ROLE_ENV).is_some() {
        return;
    }
    let n: usize = std::env::var("KIOSK_BACKLOG_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let db = dir.join("kiosk.sqlite");
    let store = Store::open(&db).unwrap();
    let identity = age::x25519::Identity::generate();
    let spool = Spool::new(dir.join("spool"), &[identity.to_public().to_string()]).unwrap();
    let sets: Vec<_> = (0..16)
        .map(|i| {
            let t = kiosk::ticket::TicketId([i; 16]);
            let payloads: Vec<(&str, Vec<u8>)> =
                ROLES.iter().map(|r| (*r, pipeline::payload(&t, r))).collect();
            let refs: Vec<(&str, &[u8])> = payloads.iter().map(|(r, p)| (*r, p.as_slice())).collect();
            spool.seal_job_files(&format!("set{i}"), &refs).unwrap()
        })
        .collect();
    let now = kiosk::clock::unix_now();
    let mut latencies_ms = Vec::with_capacity(n);
    let queued_started = kiosk::clock::monotonic();
    for i in 0..n {
        let (ticket, shot, session) = pipeline::shoot_one(&store, now).unwrap();
        let job = pipeline::new_job(ticket, shot, sets[i % sets.len()].clone());
        let t = kiosk::clock::monotonic();
        store.enqueue_and_complete(&job, now).unwrap();
        latencies_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        store
            .end_session(session, Some(&ticket), "completed", now)
            .unwrap();
    }
    let queue_secs = queued_started.elapsed().as_secs_f64();
    latencies_ms.sort_by(f64::total_cmp);
    let (p50, p99, max) = (
        percentile(&latencies_ms, 0.5),
        percentile(&latencies_ms, 0.99),
        latencies_ms[n - 1],
    );

    let intake = Intake::start(TOKEN, FaultPlan::none()).unwrap();
    let config = pipeline::write_config(
        dir,
        &intake,
        &db,
        &dir.join("spool"),
        "concurrency = 4\nlease_secs = 60\nrequest_timeout_secs = 10\nretention_secs = 86400\npoll_ms = 200",
    )
    .unwrap();
    let drain_started = kiosk::clock::monotonic();
    let log = std::fs::File::create(dir.join("uploader.log")).unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "backlog_child", "--nocapture", "--test-threads=1"])
        .env(ROLE_ENV, &config)
        .env("RUST_LOG", "kiosk=warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let counts = loop {
        std::thread::sleep(Duration::from_millis(250));
        let c = store.outbox_counts().unwrap();
        if c.acked as usize == n || c.failed > 0 {
            break c;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "uploader died:\n{}",
            std::fs::read_to_string(dir.join("uploader.log")).unwrap_or_default()
        );
        assert!(
            drain_started.elapsed() < Duration::from_secs(900),
            "not drained: {c:?}"
        );
    };
    let drain_secs = drain_started.elapsed().as_secs_f64();
    pipeline::sigterm(child.id()).unwrap();
    assert!(child.wait().unwrap().success());
    let delivered = intake.state().deliveries.values().filter(|&&d| d == 1).count();
    println!(
        "backlog: queued {n} in {queue_secs:.1} s; enqueue_and_complete max {max:.2} ms; drain {:.0} jobs/s",
        n as f64 / drain_secs
    );
    println!(
        "backlog: jobs={n} drained={delivered} drain_secs={drain_secs:.1} enqueue_p50_ms={p50:.2} enqueue_p99_ms={p99:.2}"
    );
    assert_eq!((counts.failed, delivered), (0, n));
    assert!(store.integrity_check().unwrap());
    // The bar is for the shipped (release) build on an otherwise idle kiosk. A debug build on a busy
    // CI machine measures the scheduler as much as the commit, so it only guards against the
    // pathological (a full-table scan or an extra fsync per row shows up far above this).
    let bar = if cfg!(debug_assertions) {
        5.0 * ENQUEUE_P99_BAR_MS
    } else {
        ENQUEUE_P99_BAR_MS
    };
    assert!(p99 < bar, "enqueue p99 {p99:.2} ms (bar {bar} ms)");
}
