//! Every public store operation on a real SQLite file: the happy path of a session, each refusal, the
//! operator actions, reopening after drop, the all-or-nothing completion, refusal of newer or foreign
//! files, and that no personal data reaches the file's bytes (PIPL).
//!
//! Concurrency, the shot-count model and latency figures have their own files (`store_concurrency.rs`,
//! `store_model.rs`, `store_latency.rs`).

use std::path::{Path, PathBuf};

use kiosk::store::{
    CheckRow, JobFile, JobId, JobState, LATEST_VERSION, NewJob, SessionId, ShotCheck, Store, StoreError,
};
use kiosk::ticket::{Rejection, Ticket, TicketId};
use rusqlite::Connection;

const T0: i64 = 1_780_000_000;

/// Personal data a fixture ticket carries; none of it may appear in the database.
const NAME: &str = "张*明";
const STUDENT_NO: &str = "2022117654321";
const ID_LAST4: &str = "437X";
const SCHOOL: &str = "北方示例理工大学";

fn ticket(n: u8, shots_allowed: u8) -> Ticket {
    Ticket {
        id: TicketId([n; 16]),
        student_no: STUDENT_NO.into(),
        masked_name: NAME.into(),
        school: SCHOOL.into(),
        id_last4: ID_LAST4.into(),
        site: "lib-lobby".into(),
        photo_types: vec!["chsi-graduate".into()],
        shots_allowed,
        paid: true,
        issued_at: T0 - 3600,
        expires_at: T0 + 86_400,
        key_id: 7,
    }
}

fn temp_db() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kiosk.sqlite");
    (dir, path)
}

fn pass<'a>(rows: &'a [CheckRow]) -> ShotCheck<'a> {
    ShotCheck {
        passed: true,
        liveness_failed: false,
        record_json: r#"{"verdict":"pass"}"#,
        per_check: rows,
    }
}

fn fail<'a>(liveness: bool) -> ShotCheck<'a> {
    ShotCheck {
        passed: false,
        liveness_failed: liveness,
        record_json: r#"{"verdict":"fail"}"#,
        per_check: &[],
    }
}

fn rows() -> Vec<CheckRow> {
    vec![
        CheckRow {
            id: "head_roll".into(),
            status: "pass".into(),
            value: Some(2.5),
        },
        CheckRow {
            id: "liveness".into(),
            status: "pass".into(),
            value: None,
        },
    ]
}

fn job_for(t: &TicketId, shot_no: u8) -> NewJob {
    NewJob {
        ticket: *t,
        shot_no,
        spec_id: "chsi-graduate".into(),
        files: vec![
            JobFile {
                role: "standard".into(),
                path: "/var/lib/kiosk/out/a.jpg.sealed".into(),
                sha256: "ab".repeat(32),
                size: 31_000,
            },
            JobFile {
                role: "original".into(),
                path: "/var/lib/kiosk/out/a.raw.sealed".into(),
                sha256: "cd".repeat(32),
                size: 900_000,
            },
        ],
        meta_json: format!(r#"{{"ticket":"{t}","spec":"chsi-graduate"}}"#),
    }
}

fn admitted(store: &Store, t: &Ticket, now: i64) -> kiosk::store::TicketState {
    store.admit_ticket(t, now).unwrap().unwrap()
}

/// A whole session: admit, shoot twice (fail, pass), choose, complete.
fn full_flow(store: &Store, t: &Ticket) -> JobId {
    let state = admitted(store, t, T0);
    assert_eq!(
        (state.shots_used, state.shots_allowed, state.first_seen),
        (0, 3, T0)
    );
    let session = store.begin_session(T0).unwrap();
    assert_eq!(store.consume_shot(&t.id, session, T0 + 10).unwrap(), 1);
    let s = store.record_check(&t.id, 1, &fail(false), T0 + 11).unwrap();
    assert_eq!(
        (s.consecutive_fails, s.liveness_failures, s.candidates.len()),
        (1, 0, 0)
    );
    assert_eq!(store.consume_shot(&t.id, session, T0 + 20).unwrap(), 2);
    let checks = rows();
    let s = store.record_check(&t.id, 2, &pass(&checks), T0 + 21).unwrap();
    assert_eq!(
        (s.consecutive_fails, s.candidates.len(), s.candidates[0].shot_no),
        (0, 1, 2)
    );
    let job = store.enqueue_and_complete(&job_for(&t.id, 2), T0 + 30).unwrap();
    store
        .end_session(session, Some(&t.id), "completed", T0 + 31)
        .unwrap();
    job
}

#[test]
fn full_flow_then_reopen_keeps_everything() {
    let (_dir, path) = temp_db();
    let t = ticket(1, 3);
    let job_id = {
        let store = Store::open(&path).unwrap();
        full_flow(&store, &t)
    };
    let store = Store::open(&path).unwrap();
    assert!(store.integrity_check().unwrap());
    let state = store.ticket_state(&t.id).unwrap().unwrap();
    assert_eq!(state.shots_used, 2);
    assert_eq!(state.completed_at, Some(T0 + 30));
    assert_eq!(state.candidates.len(), 1);
    assert_eq!(
        store.admit_ticket(&t, T0 + 100).unwrap(),
        Err(Rejection::AlreadyCompleted)
    );

    let job = store.job(&job_id).unwrap().unwrap();
    assert_eq!(job.state, JobState::Pending);
    assert_eq!(
        (job.ticket, job.shot_no, job.attempts, job.next_attempt_at),
        (t.id, 2, 0, T0 + 30)
    );
    assert_eq!(job.files.len(), 2);
    assert_eq!(job.files[0].role, "original"); // role order
    assert_eq!(job.files[1].path, Path::new("/var/lib/kiosk/out/a.jpg.sealed"));
    assert_eq!(job.files[1].size, 31_000);
    assert_eq!(store.pending_jobs(10).unwrap(), vec![job]);
    let counts = store.outbox_counts().unwrap();
    assert_eq!(
        (counts.pending, counts.leased, counts.acked, counts.failed),
        (1, 0, 0, 0)
    );
    assert_eq!(counts.oldest_unacked_at, Some(T0 + 30));

    let checks = store.check_results(&t.id, 2).unwrap();
    assert_eq!(checks, rows());
    assert!(store.check_results(&t.id, 1).unwrap().is_empty());

    let events: Vec<String> = store
        .audit_since(0, 100)
        .unwrap()
        .into_iter()
        .map(|e| e.event)
        .collect();
    assert_eq!(events, ["shot_consumed", "shot_consumed", "ticket_completed"]);
    // A second completion is refused: one job per ticket.
    match store.enqueue_and_complete(&job_for(&t.id, 2), T0 + 200) {
        Err(StoreError::Refused(Rejection::AlreadyCompleted)) => {}
        other => panic!("expected AlreadyCompleted, got {other:?}"),
    }
    assert_eq!(store.outbox_counts().unwrap().pending, 1);
}

#[test]
fn reopen_with_a_newer_schema_is_refused_and_left_alone() {
    let (_dir, path) = temp_db();
    drop(Store::open(&path).unwrap());
    let raw = Connection::open(&path).unwrap();
    raw.pragma_update(None, "user_version", LATEST_VERSION + 5)
        .unwrap();
    drop(raw);
    match Store::open(&path) {
        Err(StoreError::SchemaTooNew { found, known }) => {
            assert_eq!((found, known), (LATEST_VERSION + 5, LATEST_VERSION))
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
    let raw = Connection::open(&path).unwrap();
    let v: i64 = raw
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(v, LATEST_VERSION + 5);
}

#[test]
fn foreign_database_is_refused() {
    let (_dir, path) = temp_db();
    let raw = Connection::open(&path).unwrap();
    raw.pragma_update(None, "application_id", 0x1234_5678).unwrap();
    raw.execute_batch("CREATE TABLE theirs (x)").unwrap();
    drop(raw);
    assert!(matches!(
        Store::open(&path),
        Err(StoreError::NotOurDatabase(0x1234_5678))
    ));
}

#[test]
fn reopen_is_idempotent_and_file_is_wal() {
    let (_dir, path) = temp_db();
    for _ in 0..3 {
        let store = Store::open(&path).unwrap();
        assert!(store.integrity_check().unwrap());
    }
    let raw = Connection::open(&path).unwrap();
    let mode: String = raw
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    let v: i64 = raw
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!((mode.as_str(), v), ("wal", LATEST_VERSION));
}

#[test]
fn no_shots_left_refuses_only_without_a_candidate() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    let (a, b) = (ticket(2, 1), ticket(3, 1));
    let session = store.begin_session(T0).unwrap();
    for (t, passed) in [(&a, false), (&b, true)] {
        admitted(&store, t, T0);
        assert_eq!(store.consume_shot(&t.id, session, T0).unwrap(), 1);
        let checks = rows();
        let verdict = if passed { pass(&checks) } else { fail(false) };
        store.record_check(&t.id, 1, &verdict, T0).unwrap();
        match store.consume_shot(&t.id, session, T0) {
            Err(StoreError::Refused(Rejection::NoShotsLeft)) => {}
            other => panic!("expected NoShotsLeft, got {other:?}"),
        }
    }
    assert_eq!(
        store.admit_ticket(&a, T0 + 1).unwrap(),
        Err(Rejection::NoShotsLeft)
    );
    // b has a passing candidate: the student may come back and choose it.
    let state = admitted(&store, &b, T0 + 1);
    assert_eq!(
        (state.shots_left(), state.candidates.len(), state.last_seen),
        (0, 1, T0 + 1)
    );
    store.enqueue_and_complete(&job_for(&b.id, 1), T0 + 2).unwrap();
}

#[test]
fn lock_unlock_grant_and_cooldown() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    let t = ticket(4, 2);
    admitted(&store, &t, T0);
    let session = store.begin_session(T0).unwrap();
    store.consume_shot(&t.id, session, T0).unwrap();
    let s = store.record_check(&t.id, 1, &fail(true), T0).unwrap();
    assert_eq!((s.liveness_failures, s.consecutive_fails), (1, 1));

    store.lock_ticket(&t.id, "liveness", T0 + 1).unwrap();
    store.lock_ticket(&t.id, "other", T0 + 2).unwrap(); // keeps the first reason
    let s = store.ticket_state(&t.id).unwrap().unwrap();
    assert_eq!(
        s.locked.as_ref().map(|l| (l.reason.as_str(), l.at)),
        Some(("liveness", T0 + 1))
    );
    assert_eq!(store.admit_ticket(&t, T0 + 3).unwrap(), Err(Rejection::Locked));
    assert!(matches!(
        store.consume_shot(&t.id, session, T0 + 3),
        Err(StoreError::Refused(Rejection::Locked))
    ));

    store.unlock_ticket(&t.id, "tech-01", T0 + 4).unwrap();
    let s = admitted(&store, &t, T0 + 5);
    assert_eq!(
        (s.locked.clone(), s.liveness_failures, s.consecutive_fails),
        (None, 0, 0)
    );

    store.set_cooldown(&t.id, T0 + 600, T0 + 5).unwrap();
    assert_eq!(
        store.admit_ticket(&t, T0 + 6).unwrap(),
        Err(Rejection::CoolingDown { until: T0 + 600 })
    );
    assert!(matches!(
        store.consume_shot(&t.id, session, T0 + 6),
        Err(StoreError::Refused(Rejection::CoolingDown { until })) if until == T0 + 600
    ));
    assert!(matches!(
        store.set_cooldown(&t.id, T0, T0 + 6),
        Err(StoreError::Invalid(_))
    ));
    // The cool-down ends by itself.
    admitted(&store, &t, T0 + 600);
    assert_eq!(store.consume_shot(&t.id, session, T0 + 601).unwrap(), 2);
    assert!(matches!(
        store.consume_shot(&t.id, session, T0 + 602),
        Err(StoreError::Refused(Rejection::NoShotsLeft))
    ));

    let s = store.grant_shot(&t.id, 1, "tech-01", T0 + 603).unwrap();
    assert_eq!((s.shots_granted, s.shots_left()), (1, 1));
    assert_eq!(store.consume_shot(&t.id, session, T0 + 604).unwrap(), 3);
    assert!(matches!(
        store.grant_shot(&t.id, 0, "tech-01", T0),
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        store.grant_shot(&t.id, 253, "tech-01", T0),
        Err(StoreError::Invalid(_))
    ));

    let events: Vec<(String, String)> = store
        .audit_since(0, 100)
        .unwrap()
        .into_iter()
        .map(|e| (e.actor, e.event))
        .collect();
    let expected = [
        ("kiosk", "shot_consumed"),
        ("kiosk", "ticket_locked"),
        ("tech-01", "ticket_unlocked"),
        ("kiosk", "cooldown_set"),
        ("kiosk", "shot_consumed"),
        ("tech-01", "shot_granted"),
        ("kiosk", "shot_consumed"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(a, e)| (a.to_string(), e.to_string()))
        .collect();
    assert_eq!(events, expected);
}

#[test]
fn shot_and_session_errors_are_typed() {
    let store = Store::open_in_memory().unwrap();
    let t = ticket(5, 3);
    let unknown = TicketId([0xee; 16]);
    let session = store.begin_session(T0).unwrap();
    assert!(
        matches!(store.consume_shot(&unknown, session, T0), Err(StoreError::UnknownTicket(id)) if id == unknown)
    );
    admitted(&store, &t, T0);
    assert!(matches!(
        store.consume_shot(&t.id, SessionId(999), T0),
        Err(StoreError::UnknownSession(_))
    ));
    assert!(matches!(
        store.record_check(&t.id, 1, &fail(false), T0),
        Err(StoreError::UnknownShot { shot_no: 1, .. })
    ));
    store.consume_shot(&t.id, session, T0).unwrap();
    store.record_check(&t.id, 1, &fail(false), T0).unwrap();
    assert!(matches!(
        store.record_check(&t.id, 1, &fail(false), T0),
        Err(StoreError::ShotAlreadyChecked { shot_no: 1, .. })
    ));
    let contradictory = ShotCheck {
        passed: true,
        liveness_failed: true,
        record_json: "{}",
        per_check: &[],
    };
    assert!(matches!(
        store.record_check(&t.id, 1, &contradictory, T0),
        Err(StoreError::Invalid(_))
    ));
    // A failed shot is not a candidate; a shot never taken is unknown.
    assert!(matches!(
        store.enqueue_and_complete(&job_for(&t.id, 1), T0),
        Err(StoreError::NotACandidate { .. })
    ));
    assert!(matches!(
        store.enqueue_and_complete(&job_for(&t.id, 2), T0),
        Err(StoreError::UnknownShot { .. })
    ));
    // Duplicate check ids roll the whole verdict back: the shot stays unchecked.
    store.consume_shot(&t.id, session, T0).unwrap();
    let dup = [rows()[0].clone(), rows()[0].clone()];
    assert!(matches!(
        store.record_check(&t.id, 2, &pass(&dup), T0),
        Err(StoreError::Sqlite(_))
    ));
    store.record_check(&t.id, 2, &pass(&rows()), T0).unwrap();

    store
        .end_session(session, Some(&t.id), "cancelled", T0 + 5)
        .unwrap();
    assert!(matches!(
        store.end_session(session, None, "timeout", T0 + 6),
        Err(StoreError::SessionEnded(_))
    ));
    assert!(matches!(
        store.consume_shot(&t.id, session, T0 + 7),
        Err(StoreError::SessionEnded(_))
    ));
    assert!(matches!(
        store.end_session(SessionId(999), None, "timeout", T0),
        Err(StoreError::UnknownSession(_))
    ));
    let open = store.begin_session(T0 + 8).unwrap();
    assert_eq!(store.abandon_open_sessions(T0 + 9).unwrap(), 1);
    assert!(matches!(
        store.end_session(open, None, "timeout", T0 + 10),
        Err(StoreError::SessionEnded(_))
    ));
}

#[test]
fn bad_job_arguments_are_refused_before_the_database() {
    let store = Store::open_in_memory().unwrap();
    let t = ticket(6, 3);
    let mut job = job_for(&t.id, 1);
    job.files[0].sha256 = "AB".repeat(32);
    assert!(matches!(
        store.enqueue_and_complete(&job, T0),
        Err(StoreError::Invalid(_))
    ));
    job.files.clear();
    assert!(matches!(
        store.enqueue_and_complete(&job, T0),
        Err(StoreError::Invalid(_))
    ));
    let job = job_for(&t.id, 1);
    assert!(matches!(
        store.enqueue_and_complete(&job, T0),
        Err(StoreError::UnknownTicket(_))
    ));
    assert!("zz".parse::<JobId>().is_err());
}

/// Sets up a ticket with one passing candidate, ready to complete.
fn ready_to_complete(store: &Store, n: u8) -> Ticket {
    let t = ticket(n, 3);
    admitted(store, &t, T0);
    let session = store.begin_session(T0).unwrap();
    store.consume_shot(&t.id, session, T0).unwrap();
    store.record_check(&t.id, 1, &pass(&rows()), T0).unwrap();
    t
}

fn assert_not_completed(store: &Store, t: &Ticket) {
    let state = store.ticket_state(&t.id).unwrap().unwrap();
    assert_eq!(state.completed_at, None);
    let counts = store.outbox_counts().unwrap();
    assert_eq!((counts.pending, counts.oldest_unacked_at), (0, None));
    assert!(store.pending_jobs(10).unwrap().is_empty());
    assert!(
        store
            .audit_since(0, 100)
            .unwrap()
            .iter()
            .all(|e| e.event != "ticket_completed")
    );
}

#[test]
fn enqueue_is_all_or_nothing_on_a_duplicate_file_role() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    let t = ready_to_complete(&store, 7);
    let mut job = job_for(&t.id, 1);
    job.files[1].role = job.files[0].role.clone();
    assert!(matches!(
        store.enqueue_and_complete(&job, T0 + 1),
        Err(StoreError::Sqlite(_))
    ));
    assert_not_completed(&store, &t);
    drop(store);
    let store = Store::open(&path).unwrap();
    assert_not_completed(&store, &t);
    // The failed attempt left nothing behind that blocks a correct retry.
    store.enqueue_and_complete(&job_for(&t.id, 1), T0 + 2).unwrap();
}

#[test]
fn enqueue_is_all_or_nothing_when_the_last_statement_fails() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    let t = ready_to_complete(&store, 8);
    // Another connection makes the audit insert (the transaction's last statement) fail, after the job,
    // its files and the completion were written inside the transaction.
    let raw = Connection::open(&path).unwrap();
    raw.execute_batch(
        "CREATE TRIGGER inject_failure BEFORE INSERT ON audit WHEN NEW.event = 'ticket_completed' \
         BEGIN SELECT RAISE(ABORT, 'injected'); END;",
    )
    .unwrap();
    match store.enqueue_and_complete(&job_for(&t.id, 1), T0 + 1) {
        Err(StoreError::Sqlite(e)) => assert!(e.to_string().contains("injected"), "{e}"),
        other => panic!("expected the injected failure, got {other:?}"),
    }
    assert_not_completed(&store, &t);
    let files: i64 = raw
        .query_row("SELECT count(*) FROM job_files", [], |r| r.get(0))
        .unwrap();
    assert_eq!(files, 0);
    raw.execute_batch("DROP TRIGGER inject_failure").unwrap();
    store.enqueue_and_complete(&job_for(&t.id, 1), T0 + 2).unwrap();
    assert!(store.integrity_check().unwrap());
}

#[test]
fn schema_refuses_what_the_product_forbids() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    let t = ready_to_complete(&store, 9);
    store.enqueue_and_complete(&job_for(&t.id, 1), T0 + 1).unwrap();
    store.audit("tech-01", "note", r#"{"n":1}"#, T0).unwrap();
    assert!(matches!(
        store.audit("tech-01", "note", "not json", T0),
        Err(StoreError::Sqlite(_))
    ));
    let raw = Connection::open(&path).unwrap();
    let id = t.id.to_string();
    for sql in [
        format!("UPDATE tickets SET shots_used = 0 WHERE ticket_id = '{id}'"),
        format!("UPDATE tickets SET shots_used = 200 WHERE ticket_id = '{id}'"),
        format!("UPDATE tickets SET completed_at = NULL WHERE ticket_id = '{id}'"),
        "UPDATE audit SET actor = 'x'".to_string(),
        "DELETE FROM audit".to_string(),
    ] {
        assert!(raw.execute(&sql, []).is_err(), "schema accepted: {sql}");
    }
}

#[test]
fn audit_cursor_pages_through_everything() {
    let store = Store::open_in_memory().unwrap();
    let ids: Vec<i64> = (0..25)
        .map(|i| {
            store
                .audit("kiosk", "tick", &format!(r#"{{"i":{i}}}"#), T0 + i)
                .unwrap()
        })
        .collect();
    let mut seen = Vec::new();
    let mut cursor = 0;
    loop {
        let page = store.audit_since(cursor, 10).unwrap();
        let Some(last) = page.last() else { break };
        cursor = last.id;
        seen.extend(page.into_iter().map(|e| e.id));
    }
    assert_eq!(seen, ids);
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
}

/// PIPL: after a full flow, neither the database nor its WAL contains the name, student number,
/// school or ID digits the ticket carried, in any encoding SQLite would use (UTF-8 text).
#[test]
fn no_personal_data_in_the_file_bytes() {
    let (dir, path) = temp_db();
    let t = ticket(10, 3);
    let contains = |bytes: &[u8], needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
    let check_bytes = |dir: &Path| {
        let mut all = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let file = entry.unwrap().path();
            let bytes = std::fs::read(&file).unwrap();
            for needle in [NAME, STUDENT_NO, ID_LAST4, SCHOOL] {
                assert!(
                    !contains(&bytes, needle),
                    "{needle:?} found in {}",
                    file.display()
                );
            }
            all.extend(bytes);
        }
        // Control: text we do store is visible to this scan, so the absence above means something.
        assert!(contains(&all, "lib-lobby") && contains(&all, "tech-01"));
    };
    {
        let store = Store::open(&path).unwrap();
        full_flow(&store, &t);
        // Unlock and grant paths too, on a second ticket.
        let u = ticket(11, 1);
        admitted(&store, &u, T0);
        store.lock_ticket(&u.id, "liveness", T0).unwrap();
        store.unlock_ticket(&u.id, "tech-01", T0).unwrap();
        store.grant_shot(&u.id, 1, "tech-01", T0).unwrap();
        check_bytes(dir.path()); // with the WAL still holding the recent pages
    }
    check_bytes(dir.path()); // after the last connection checkpointed on close
}
