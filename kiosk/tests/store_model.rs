//! Random sequences of every ticket operation against a plain in-test model, on a real file.
//!
//! The property the product stands on: `shots_used` never exceeds `shots_allowed + shots_granted`,
//! never goes down, and every refusal is the one the model predicts. The model is deliberately
//! simple; it does not model sessions or the audit trail (the API tests cover those).

use std::collections::BTreeSet;

use kiosk::store::{CheckRow, JobFile, NewJob, ShotCheck, Store, StoreError, TicketState};
use kiosk::ticket::{Rejection, Ticket, TicketId};
use proptest::prelude::*;

const T0: i64 = 1_780_000_000;

#[derive(Clone, Debug)]
enum Op {
    Admit,
    Consume,
    Grant(u8),
    Check {
        pick: usize,
        passed: bool,
        liveness_failed: bool,
    },
    Lock,
    Unlock,
    Cooldown(i64),
    Complete {
        pick: usize,
    },
    Wait(i64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => Just(Op::Admit),
        6 => Just(Op::Consume),
        2 => (1u8..=3).prop_map(Op::Grant),
        5 => (any::<usize>(), any::<bool>(), any::<bool>())
            .prop_map(|(pick, passed, l)| Op::Check { pick, passed, liveness_failed: l && !passed }),
        1 => Just(Op::Lock),
        1 => Just(Op::Unlock),
        1 => (1i64..200).prop_map(Op::Cooldown),
        1 => any::<usize>().prop_map(|pick| Op::Complete { pick }),
        2 => (0i64..150).prop_map(Op::Wait),
    ]
}

#[derive(Debug, Default)]
struct Model {
    allowed: u8,
    granted: u8,
    used: u8,
    locked: bool,
    cooldown_until: Option<i64>,
    completed: bool,
    checked: BTreeSet<u8>,
    candidates: BTreeSet<u8>,
    liveness_failures: u32,
    consecutive_fails: u32,
}

impl Model {
    fn common_refusal(&self, now: i64) -> Option<Rejection> {
        if self.completed {
            Some(Rejection::AlreadyCompleted)
        } else if self.locked {
            Some(Rejection::Locked)
        } else {
            self.cooldown_until
                .filter(|&u| u > now)
                .map(|until| Rejection::CoolingDown { until })
        }
    }

    fn limit(&self) -> u8 {
        self.allowed + self.granted
    }

    fn assert_matches(&self, s: &TicketState) {
        assert_eq!(s.shots_used, self.used);
        assert_eq!(s.shots_granted, self.granted);
        assert_eq!(s.shots_allowed, self.allowed);
        assert!(s.shots_used <= s.shot_limit());
        assert_eq!(s.locked.is_some(), self.locked);
        assert_eq!(s.completed_at.is_some(), self.completed);
        assert_eq!(s.liveness_failures, self.liveness_failures);
        assert_eq!(s.consecutive_fails, self.consecutive_fails);
        let candidates: BTreeSet<u8> = s.candidates.iter().map(|c| c.shot_no).collect();
        assert_eq!(candidates, self.candidates);
    }
}

fn refused(r: Result<impl std::fmt::Debug, StoreError>) -> Option<Rejection> {
    match r {
        Err(StoreError::Refused(rej)) => Some(rej),
        Ok(_) => None,
        Err(other) => panic!("unexpected error {other}"),
    }
}

fn run(shots_allowed: u8, ops: &[Op]) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("model.sqlite")).unwrap();
    let t = Ticket {
        id: TicketId([0x42; 16]),
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
    };
    let mut now = T0;
    let mut m = Model {
        allowed: shots_allowed,
        ..Model::default()
    };
    let admitted = store.admit_ticket(&t, now).unwrap();
    assert_eq!(admitted.is_ok(), shots_allowed > 0);
    let session = store.begin_session(now).unwrap();
    let rows = [CheckRow {
        id: "pose".into(),
        status: "pass".into(),
        value: Some(1.0),
    }];

    for op in ops {
        now += 1;
        match op {
            Op::Admit => {
                let expected = m.common_refusal(now).or_else(|| {
                    (m.used >= m.limit() && m.candidates.is_empty()).then_some(Rejection::NoShotsLeft)
                });
                assert_eq!(store.admit_ticket(&t, now).unwrap().err(), expected);
            }
            Op::Consume => {
                let expected = m
                    .common_refusal(now)
                    .or_else(|| (m.used >= m.limit()).then_some(Rejection::NoShotsLeft));
                let got = store.consume_shot(&t.id, session, now);
                match expected {
                    Some(rej) => assert_eq!(refused(got), Some(rej)),
                    None => {
                        m.used += 1;
                        assert_eq!(got.unwrap(), m.used);
                    }
                }
            }
            Op::Grant(n) => {
                let got = store.grant_shot(&t.id, *n, "tech", now);
                if m.completed {
                    assert_eq!(refused(got), Some(Rejection::AlreadyCompleted));
                } else if u16::from(m.limit()) + u16::from(*n) > 255 {
                    assert!(matches!(got, Err(StoreError::Invalid(_))));
                } else {
                    m.granted += n;
                    m.assert_matches(&got.unwrap());
                }
            }
            Op::Check {
                pick,
                passed,
                liveness_failed,
            } => {
                let shot_no = if m.used == 0 {
                    1
                } else {
                    (pick % usize::from(m.used)) as u8 + 1
                };
                let check = ShotCheck {
                    passed: *passed,
                    liveness_failed: *liveness_failed,
                    record_json: "{}",
                    per_check: &rows,
                };
                let got = store.record_check(&t.id, shot_no, &check, now);
                if shot_no > m.used {
                    assert!(matches!(got, Err(StoreError::UnknownShot { .. })));
                } else if !m.checked.insert(shot_no) {
                    assert!(matches!(got, Err(StoreError::ShotAlreadyChecked { .. })));
                } else {
                    if *passed {
                        m.candidates.insert(shot_no);
                        m.consecutive_fails = 0;
                    } else {
                        m.consecutive_fails += 1;
                    }
                    m.liveness_failures += u32::from(*liveness_failed);
                    m.assert_matches(&got.unwrap());
                }
            }
            Op::Lock => {
                store.lock_ticket(&t.id, "liveness", now).unwrap();
                m.locked = true;
            }
            Op::Unlock => {
                store.unlock_ticket(&t.id, "tech", now).unwrap();
                m.locked = false;
                m.cooldown_until = None;
                m.liveness_failures = 0;
                m.consecutive_fails = 0;
            }
            Op::Cooldown(d) => {
                store.set_cooldown(&t.id, now + d, now).unwrap();
                m.cooldown_until = Some(now + d);
            }
            Op::Complete { pick } => {
                let shot_no = if m.used == 0 {
                    1
                } else {
                    (pick % usize::from(m.used)) as u8 + 1
                };
                let job = NewJob {
                    ticket: t.id,
                    shot_no,
                    spec_id: "chsi-graduate".into(),
                    files: vec![JobFile {
                        role: "standard".into(),
                        path: "/x".into(),
                        sha256: "0".repeat(64),
                        size: 1,
                    }],
                    meta_json: "{}".into(),
                };
                let got = store.enqueue_and_complete(&job, now);
                if m.completed {
                    assert_eq!(refused(got), Some(Rejection::AlreadyCompleted));
                } else if m.locked {
                    assert_eq!(refused(got), Some(Rejection::Locked));
                } else if !m.candidates.contains(&shot_no) {
                    assert!(matches!(
                        got,
                        Err(StoreError::UnknownShot { .. } | StoreError::NotACandidate { .. })
                    ));
                } else {
                    got.unwrap();
                    m.completed = true;
                }
            }
            Op::Wait(d) => now += d,
        }
        m.assert_matches(&store.ticket_state(&t.id).unwrap().unwrap());
    }
    let counts = store.outbox_counts().unwrap();
    assert_eq!(counts.pending, u64::from(m.completed));
    assert!(store.integrity_check().unwrap());
}

proptest! {
    // Each case is a real file with an fsync per shot; 64 cases keep this file to seconds.
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn shots_never_exceed_the_limit_and_refusals_match_the_model(
        shots_allowed in 0u8..=4,
        ops in proptest::collection::vec(op(), 1..60),
    ) {
        run(shots_allowed, &ops);
    }
}

/// Grants near the 255-shot ceiling: the sum stays representable and consumption stops exactly there.
#[test]
fn ceiling_of_255_shots() {
    run(250, &[Op::Grant(3), Op::Grant(2), Op::Grant(1)]);
    let mut ops = vec![Op::Grant(3), Op::Grant(2)];
    ops.extend(std::iter::repeat_n(Op::Consume, 256));
    run(250, &ops);
}
