//! Measures commit latency on a real file and prints the figures; asserts no time bound, because the
//! numbers depend on the disk (run with `--nocapture` to see them, and set `KIOSK_STORE_BENCH_DIR` to
//! measure on the kiosk's real storage instead of the temp dir).
//!
//! What it answers: how long the "完成" gate (`enqueue_and_complete`, synchronous=FULL) takes, and
//! what `SyncPolicy::AlwaysFull` would cost the writes that `Mixed` commits with NORMAL.

use std::path::PathBuf;
use std::time::Duration;

use kiosk::clock::monotonic;
use kiosk::store::{CheckRow, JobFile, NewJob, ShotCheck, Store, SyncPolicy};
use kiosk::ticket::{Ticket, TicketId};

const T0: i64 = 1_780_000_000;
const JOBS: u32 = 500;

fn ticket(i: u32) -> Ticket {
    let mut id = [0u8; 16];
    id[..4].copy_from_slice(&i.to_be_bytes());
    Ticket {
        id: TicketId(id),
        student_no: "s".into(),
        masked_name: "m".into(),
        school: "u".into(),
        id_last4: "0000".into(),
        site: "*".into(),
        photo_types: vec!["chsi-graduate".into()],
        shots_allowed: 3,
        paid: false,
        issued_at: T0,
        expires_at: T0 + 86_400,
        key_id: 1,
    }
}

fn bench_dir() -> tempfile::TempDir {
    match std::env::var_os("KIOSK_STORE_BENCH_DIR") {
        Some(dir) => tempfile::tempdir_in(PathBuf::from(dir)).unwrap(),
        None => tempfile::tempdir().unwrap(),
    }
}

/// Median, p99 and max, in microseconds.
fn summary(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize].as_micros();
    format!(
        "median {:>6} us  p99 {:>6} us  max {:>6} us  (n={})",
        at(0.5),
        at(0.99),
        at(1.0),
        samples.len()
    )
}

fn time<T>(samples: &mut Vec<Duration>, f: impl FnOnce() -> T) -> T {
    let start = monotonic();
    let value = f();
    samples.push(start.elapsed());
    value
}

struct Figures {
    admit: Vec<Duration>,
    session: Vec<Duration>,
    consume: Vec<Duration>,
    check: Vec<Duration>,
    enqueue: Vec<Duration>,
}

fn measure(policy: SyncPolicy) -> Figures {
    let dir = bench_dir();
    let store = Store::open_with(dir.path().join("bench.sqlite"), policy).unwrap();
    let rows: Vec<CheckRow> = (0..20)
        .map(|i| CheckRow {
            id: format!("check_{i:02}"),
            status: "pass".into(),
            value: Some(f64::from(i)),
        })
        .collect();
    let record = format!(
        r#"{{"checks":[{}]}}"#,
        vec![r#"{"id":"x","value":1.0}"#; 20].join(",")
    );
    let mut f = Figures {
        admit: vec![],
        session: vec![],
        consume: vec![],
        check: vec![],
        enqueue: vec![],
    };
    for i in 0..JOBS {
        let t = ticket(i);
        let now = T0 + i64::from(i);
        time(&mut f.admit, || store.admit_ticket(&t, now).unwrap().unwrap());
        let session = time(&mut f.session, || store.begin_session(now).unwrap());
        let shot = time(&mut f.consume, || {
            store.consume_shot(&t.id, session, now).unwrap()
        });
        let check = ShotCheck {
            passed: true,
            liveness_failed: false,
            record_json: &record,
            per_check: &rows,
        };
        time(&mut f.check, || {
            store.record_check(&t.id, shot, &check, now).unwrap()
        });
        let job = NewJob {
            ticket: t.id,
            shot_no: shot,
            spec_id: "chsi-graduate".into(),
            files: ["standard", "original", "record"]
                .iter()
                .map(|role| JobFile {
                    role: role.to_string(),
                    path: format!("/var/lib/kiosk/out/{}/{role}.sealed", t.id).into(),
                    sha256: "ab".repeat(32),
                    size: 30_000,
                })
                .collect(),
            meta_json: format!(r#"{{"ticket":"{}","spec":"chsi-graduate"}}"#, t.id),
        };
        time(&mut f.enqueue, || store.enqueue_and_complete(&job, now).unwrap());
    }
    assert_eq!(store.outbox_counts().unwrap().pending, u64::from(JOBS));
    f
}

#[test]
fn commit_latency_figures() {
    for policy in [SyncPolicy::Mixed, SyncPolicy::AlwaysFull] {
        let f = measure(policy);
        println!("--- {policy:?} ({JOBS} tickets, real file) ---");
        println!("admit_ticket          {}", summary(f.admit));
        println!("begin_session         {}", summary(f.session));
        println!("consume_shot (FULL)   {}", summary(f.consume));
        println!("record_check (FULL)   {}", summary(f.check));
        println!("enqueue_and_complete  {}", summary(f.enqueue));
    }
}
