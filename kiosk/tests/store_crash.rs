//! Crash test (the sled / redb pattern): re-run this test binary as a child that drives full sessions
//! against one database file, kill it with SIGKILL at a seeded random moment, reopen, check the
//! invariants, and repeat on the same file.
//!
//! The child appends a line to an acknowledgement log after each store call returns; anything
//! acknowledged must be in the database after the kill. SIGKILL tests atomicity and recovery of
//! process crashes; it cannot test power loss (the OS page cache survives), which is what the
//! synchronous=FULL commits are for and needs real hardware to exercise.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use kiosk::store::{CheckRow, JobFile, JobId, JobState, NewJob, ShotCheck, Store};
use kiosk::ticket::{Ticket, TicketId};
use rusqlite::Connection;

const T0: i64 = 1_780_000_000;
const CHILD_ENV: &str = "KIOSK_STORE_CRASH_CHILD_DIR";
const KILLS: u64 = 25;

fn ticket(run: u64, j: u32) -> Ticket {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&run.to_be_bytes());
    id[8..12].copy_from_slice(&j.to_be_bytes());
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

/// The child's body: sessions until killed. Only does anything when the parent set `CHILD_ENV`; run
/// directly it returns at once, since it is a helper of `kill_at_random_points_loses_nothing`.
#[test]
fn crash_child() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let dir = Path::new(&dir);
    let run: u64 = std::env::var("KIOSK_STORE_CRASH_RUN").unwrap().parse().unwrap();
    let store = Store::open(dir.join("kiosk.sqlite")).unwrap();
    store.abandon_open_sessions(T0).unwrap();
    // Unbuffered: each line is one write(2), in the page cache before the next store call starts.
    let mut acks = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("acks.log"))
        .unwrap();
    let rows = [CheckRow {
        id: "pose".into(),
        status: "pass".into(),
        value: Some(1.0),
    }];
    for j in 0.. {
        let t = ticket(run, j);
        let now = T0 + i64::from(j);
        store.admit_ticket(&t, now).unwrap().unwrap();
        let session = store.begin_session(now).unwrap();
        for passed in [false, true] {
            let shot = store.consume_shot(&t.id, session, now).unwrap();
            ack(&mut acks, format!("shot {} {shot}\n", t.id));
            let check = ShotCheck {
                passed,
                liveness_failed: false,
                record_json: "{}",
                per_check: &rows,
            };
            store.record_check(&t.id, shot, &check, now).unwrap();
        }
        let job = NewJob {
            ticket: t.id,
            shot_no: 2,
            spec_id: "chsi-graduate".into(),
            files: vec![JobFile {
                role: "standard".into(),
                path: "/x".into(),
                sha256: "0".repeat(64),
                size: 1,
            }],
            meta_json: "{}".into(),
        };
        let id = store.enqueue_and_complete(&job, now).unwrap();
        ack(&mut acks, format!("done {} {id}\n", t.id));
        store.end_session(session, Some(&t.id), "completed", now).unwrap();
    }
}

/// Appends one acknowledgement with a single `write` call: `writeln!` writes a line in pieces, and a
/// SIGKILL between them left a torn line that the next child's output then continued.
fn ack(acks: &mut std::fs::File, line: String) {
    acks.write_all(line.as_bytes()).unwrap();
}

fn check_invariants(dir: &Path) -> (usize, usize) {
    let store = Store::open(dir.join("kiosk.sqlite")).unwrap();
    assert!(store.integrity_check().unwrap());
    let acks = std::fs::read_to_string(dir.join("acks.log")).unwrap_or_default();
    let (mut shots, mut dones) = (0, 0);
    // A kill can land in the middle of writing a line: only the last line can be torn, and a torn line
    // acknowledges nothing (an acknowledgement is a complete line).
    let complete = acks.rfind('\n').map_or("", |i| &acks[..=i]);
    for line in complete.lines() {
        let parts: Vec<&str> = line.split(' ').collect();
        let [kind, ticket_hex, value] = parts[..] else {
            panic!("bad ack line {line:?}")
        };
        let mut id = [0u8; 16];
        hex::decode_to_slice(ticket_hex, &mut id).unwrap();
        let state = store
            .ticket_state(&TicketId(id))
            .unwrap()
            .expect("acknowledged ticket is stored");
        match kind {
            "shot" => {
                shots += 1;
                let n: u8 = value.parse().unwrap();
                assert!(state.shots_used >= n, "acknowledged shot {n} lost: {state:?}");
            }
            "done" => {
                dones += 1;
                let job = store
                    .job(&value.parse::<JobId>().unwrap())
                    .unwrap()
                    .expect("acknowledged job is stored");
                assert_eq!((job.ticket, job.state), (TicketId(id), JobState::Pending));
                assert!(state.completed_at.is_some());
            }
            other => panic!("bad ack kind {other:?}"),
        }
    }
    drop(store);
    // Whole-file invariants, acknowledged or not: counts match rows, completion iff job.
    let raw = Connection::open(dir.join("kiosk.sqlite")).unwrap();
    let bad: i64 = raw
        .query_row(
            "SELECT count(*) FROM tickets t WHERE \
               t.shots_used <> (SELECT count(*) FROM shots s WHERE s.ticket_id = t.ticket_id) \
               OR (t.completed_at IS NULL) <> (NOT EXISTS (SELECT 1 FROM jobs j WHERE j.ticket_id = t.ticket_id)) \
               OR t.shots_used > t.shots_allowed + t.shots_granted",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(bad, 0, "tickets whose counters, shots and jobs disagree");
    let orphans: i64 = raw
        .query_row("SELECT count(*) FROM jobs j WHERE NOT EXISTS (SELECT 1 FROM job_files f WHERE f.job_id = j.job_id)", [], |r| r.get(0))
        .unwrap();
    assert_eq!(orphans, 0, "jobs without files");
    (shots, dones)
}

#[test]
fn kill_at_random_points_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    // xorshift64, seeded: the same kill schedule on every run.
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    for run in 0..KILLS {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = Duration::from_millis(20 + seed % 80);
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .env("KIOSK_STORE_CRASH_RUN", run.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        child.kill().unwrap(); // SIGKILL
        let out = child.wait_with_output().unwrap();
        // If the child exited on its own before the kill, it failed: show why.
        assert!(
            out.status.code().is_none(),
            "child exited: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        check_invariants(dir.path());
    }
    let (shots, dones) = check_invariants(dir.path());
    println!("{KILLS} kills: {shots} acknowledged shots and {dones} acknowledged completions all present");
    assert!(
        dones > 0,
        "the child never got far enough to complete a ticket; the test proves nothing"
    );
}
