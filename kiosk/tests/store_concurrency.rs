//! Two connections on one file, as the kiosk and the uploader will have: committed state is visible
//! across them, and concurrent writers wait on the busy timeout instead of failing with SQLITE_BUSY.
//!
//! Threads stand in for processes here: each opens its own `Store` (its own connection), which is what
//! SQLite's locking sees either way. Crash tests with real processes belong to the shell's suite.

use std::collections::BTreeSet;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use kiosk::store::{CheckRow, ShotCheck, Store};
use kiosk::ticket::{Ticket, TicketId};
use rusqlite::Connection;

const T0: i64 = 1_780_000_000;

fn ticket(n: u8, shots_allowed: u8) -> Ticket {
    Ticket {
        id: TicketId([n; 16]),
        student_no: "s".into(),
        masked_name: "m".into(),
        school: "u".into(),
        id_last4: "0000".into(),
        site: "*".into(),
        photo_types: vec!["chsi-graduate".into()],
        shots_allowed,
        paid: false,
        issued_at: T0,
        expires_at: T0 + 86_400,
        key_id: 1,
    }
}

#[test]
fn a_second_connection_sees_committed_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kiosk.sqlite");
    let kiosk = Store::open(&path).unwrap();
    let uploader = Store::open(&path).unwrap();
    let t = ticket(1, 3);
    kiosk.admit_ticket(&t, T0).unwrap().unwrap();
    let session = kiosk.begin_session(T0).unwrap();
    kiosk.consume_shot(&t.id, session, T0).unwrap();
    assert_eq!(uploader.ticket_state(&t.id).unwrap().unwrap().shots_used, 1);
    // And the other way round.
    uploader.grant_shot(&t.id, 2, "tech", T0).unwrap();
    assert_eq!(kiosk.ticket_state(&t.id).unwrap().unwrap().shots_left(), 4);
}

#[test]
fn a_writer_waits_out_another_connections_write_lock() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kiosk.sqlite");
    let store = Store::open(&path).unwrap();
    let t = ticket(2, 3);
    store.admit_ticket(&t, T0).unwrap().unwrap();
    let session = store.begin_session(T0).unwrap();

    let holder_path = path.clone();
    let locked = Arc::new(Barrier::new(2));
    let locked2 = Arc::clone(&locked);
    let holder = std::thread::spawn(move || {
        let raw = Connection::open(holder_path).unwrap();
        raw.execute_batch("BEGIN IMMEDIATE").unwrap();
        locked2.wait();
        std::thread::sleep(Duration::from_millis(300));
        raw.execute_batch("COMMIT").unwrap();
    });
    locked.wait();
    // Without the busy timeout this fails at once with SQLITE_BUSY.
    assert_eq!(store.consume_shot(&t.id, session, T0).unwrap(), 1);
    holder.join().unwrap();
}

/// Two connections hammer the same ticket and their own tickets at once. Every call must succeed, the
/// shared ticket's shot numbers must be exactly 1..=N with no duplicate and no gap, and the file must
/// check clean afterwards.
#[test]
fn two_writers_hammering_never_see_busy_and_never_share_a_shot() {
    const PER_THREAD: usize = 100;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kiosk.sqlite");
    let shared = ticket(3, 2 * PER_THREAD as u8 + 10);
    Store::open(&path)
        .unwrap()
        .admit_ticket(&shared, T0)
        .unwrap()
        .unwrap();

    let start = Arc::new(Barrier::new(2));
    let workers: Vec<_> = (0..2u8)
        .map(|w| {
            let path = path.clone();
            let start = Arc::clone(&start);
            let shared = shared.clone();
            std::thread::spawn(move || {
                let store = Store::open(&path).unwrap();
                let own = ticket(10 + w, PER_THREAD as u8);
                store.admit_ticket(&own, T0).unwrap().unwrap();
                let session = store.begin_session(T0).unwrap();
                let rows = [CheckRow {
                    id: "pose".into(),
                    status: "fail".into(),
                    value: Some(9.0),
                }];
                let mut mine = Vec::new();
                start.wait();
                for i in 0..PER_THREAD {
                    let now = T0 + i as i64;
                    mine.push(store.consume_shot(&shared.id, session, now).unwrap());
                    let own_shot = store.consume_shot(&own.id, session, now).unwrap();
                    let check = ShotCheck {
                        passed: false,
                        liveness_failed: false,
                        record_json: "{}",
                        per_check: &rows,
                    };
                    store.record_check(&own.id, own_shot, &check, now).unwrap();
                    store
                        .audit("kiosk", "tick", &format!(r#"{{"w":{w},"i":{i}}}"#), now)
                        .unwrap();
                    store.admit_ticket(&shared, now).unwrap().unwrap();
                }
                store
                    .end_session(session, Some(&own.id), "done", T0 + 1000)
                    .unwrap();
                mine
            })
        })
        .collect();
    let mut all = BTreeSet::new();
    for w in workers {
        for shot in w.join().unwrap() {
            assert!(all.insert(shot), "shot {shot} handed out twice");
        }
    }
    let expected: BTreeSet<u8> = (1..=2 * PER_THREAD as u8).collect();
    assert_eq!(all, expected);

    let store = Store::open(&path).unwrap();
    assert_eq!(
        store.ticket_state(&shared.id).unwrap().unwrap().shots_used,
        2 * PER_THREAD as u8
    );
    for w in 0..2u8 {
        let own = store.ticket_state(&TicketId([10 + w; 16])).unwrap().unwrap();
        assert_eq!(
            (own.shots_used, own.consecutive_fails),
            (PER_THREAD as u8, PER_THREAD as u32)
        );
    }
    let ticks = store
        .audit_since(0, 10_000)
        .unwrap()
        .iter()
        .filter(|e| e.event == "tick")
        .count();
    assert_eq!(ticks, 2 * PER_THREAD);
    assert!(store.integrity_check().unwrap());
}
