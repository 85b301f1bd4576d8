//! Tests of the session state machine, one state at a time (STYLE.md habit 7): fixtures return the
//! machine in a named state, templates build inputs, and names read `test_<state>_<input>`.
//!
//! Time is virtual: one base `Instant` is taken once and every step adds a `Duration`. These tests do not
//! drive devices or the store; they check the effects the shell would execute.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::*;
use crate::ticket::{Rejection, TicketId};
use crate::vision::{CheckResult, CheckStatus, Verdict};

// ----- rig ---------------------------------------------------------------------------------------------

/// The one clock read of the test suite; everything else is an offset from it.
#[allow(clippy::disallowed_methods)]
fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

/// A session plus virtual time and a log of every effect it produced.
struct Rig {
    s: Session,
    now: Instant,
    log: Vec<Effect>,
}

impl Rig {
    fn new(config: SessionConfig) -> Rig {
        let now = base();
        Rig {
            s: Session::new(config, now),
            now,
            log: Vec::new(),
        }
    }

    fn input(&mut self, input: Input) -> Vec<Effect> {
        let fx = self.s.handle(self.now, input);
        self.log.extend(fx.iter().cloned());
        fx
    }

    fn ui(&mut self, intent: Intent) -> Vec<Effect> {
        self.input(Input::Ui(intent))
    }

    /// Steps virtual time forward by `d`, waking the session at every instant it asked for.
    fn advance(&mut self, d: Duration) -> Vec<Effect> {
        let target = self.now + d;
        let mut fx = Vec::new();
        for _ in 0..10_000 {
            match self.s.poll_timeout() {
                Some(t) if t <= target => {
                    assert!(t >= self.now, "poll_timeout went back in time");
                    self.now = t;
                    fx.extend(self.s.handle_timeout(t));
                }
                _ => {
                    self.now = target;
                    self.log.extend(fx.iter().cloned());
                    return fx;
                }
            }
        }
        panic!("the session kept asking for wakeups without time moving on");
    }

    /// Steps to the current state's deadline.
    fn expire(&mut self) -> Vec<Effect> {
        let deadline = self.s.deadline.expect("this state has a timeout");
        self.advance(deadline - self.now)
    }

    fn state(&self) -> StateKind {
        self.s.state()
    }

    fn screen(&self) -> Screen {
        self.s.view().screen
    }

    fn outcomes(&self) -> Vec<Outcome> {
        self.log
            .iter()
            .filter_map(|e| match e {
                Effect::SessionEnded { outcome, .. } => Some(outcome.clone()),
                _ => None,
            })
            .collect()
    }

    fn text(&self) -> String {
        ui::text::render(&self.s.view())
    }
}

// ----- templates ---------------------------------------------------------------------------------------

const TID: TicketId = TicketId([7; 16]);

fn ticket() -> Ticket {
    Ticket {
        id: TID,
        student_no: "2022001".into(),
        masked_name: "张*明".into(),
        school: "某大学".into(),
        id_last4: "123X".into(),
        site: "*".into(),
        photo_types: vec!["chsi-graduate".into()],
        shots_allowed: 3,
        paid: true,
        issued_at: 0,
        expires_at: i64::MAX,
        key_id: 1,
    }
}

fn status() -> TicketStatus {
    TicketStatus {
        ticket: ticket(),
        shots_used: 0,
        shots_granted: 0,
        liveness_failures: 0,
        failures_in_a_row: 0,
        candidates: Vec::new(),
    }
}

fn cfg() -> SessionConfig {
    SessionConfig::default()
}

fn gateway() -> SessionConfig {
    SessionConfig {
        payment: PaymentMode::Gateway {
            amount_fen: 2500,
            poll_every_secs: 2,
        },
        ..cfg()
    }
}

fn check(id: &'static str, status: CheckStatus) -> CheckResult {
    CheckResult {
        id,
        status,
        value: Some(1.0),
        limit: "<= 8 deg".into(),
        message_zh: format!("{id} 中文"),
        message_en: format!("{id} english"),
        guidance_zh: if status == CheckStatus::Pass {
            String::new()
        } else {
            "请摆正头部".into()
        },
        guidance_en: if status == CheckStatus::Pass {
            String::new()
        } else {
            "Keep your head level".into()
        },
    }
}

fn passing() -> Verdict {
    Verdict {
        checks: vec![
            check("single_face", CheckStatus::Pass),
            check("hair", CheckStatus::Advisory),
        ],
    }
}

fn failing() -> Verdict {
    Verdict {
        checks: vec![
            check("single_face", CheckStatus::Pass),
            check("roll", CheckStatus::Fail),
        ],
    }
}

fn checked(shot_no: u8, verdict: Verdict) -> Input {
    Input::Checked {
        shot_no,
        verdict,
        liveness_failed: false,
    }
}

fn liveness_fail(shot_no: u8) -> Input {
    Input::Checked {
        shot_no,
        verdict: passing(),
        liveness_failed: true,
    }
}

fn fault(device: Device) -> Input {
    Input::DeviceFault {
        device,
        reason_zh: "摄像头已断开".into(),
        reason_en: "Camera disconnected".into(),
        hint_zh: "请联系工作人员".into(),
        hint_en: "Please ask the staff".into(),
    }
}

fn candidate(shot_no: u8) -> Candidate {
    Candidate {
        shot_no,
        spec: "chsi-graduate".into(),
    }
}

// ----- fixtures: the machine in a named state ----------------------------------------------------------

fn session_in_attract() -> Rig {
    Rig::new(cfg())
}

fn session_in_scan() -> Rig {
    let mut r = session_in_attract();
    r.ui(Intent::Start);
    r
}

fn verify_in(config: SessionConfig) -> Rig {
    let mut r = Rig::new(config);
    r.input(Input::Qr(b"ticket".to_vec()));
    r
}

fn session_in_verify() -> Rig {
    verify_in(cfg())
}

fn confirm_with(config: SessionConfig, st: TicketStatus) -> Rig {
    let mut r = verify_in(config);
    r.input(Input::TicketVerified(Ok(st)));
    assert_eq!(r.state(), StateKind::Confirm);
    r
}

fn session_in_confirm() -> Rig {
    confirm_with(cfg(), status())
}

fn framing_with(config: SessionConfig, st: TicketStatus) -> Rig {
    let mut r = confirm_with(config, st);
    r.ui(Intent::Confirm);
    assert_eq!(r.state(), StateKind::PhotoType);
    r.ui(Intent::Next);
    r.ui(Intent::Lighting { glasses: false });
    r.ui(Intent::AcceptRules);
    assert_eq!(r.state(), StateKind::Framing);
    r
}

fn session_in_photo_type() -> Rig {
    let mut r = session_in_confirm();
    r.ui(Intent::Confirm);
    r
}

fn session_in_lighting() -> Rig {
    let mut r = session_in_photo_type();
    r.ui(Intent::Next);
    r
}

fn session_in_rules() -> Rig {
    let mut r = session_in_lighting();
    r.ui(Intent::Lighting { glasses: false });
    r
}

fn session_in_framing() -> Rig {
    framing_with(cfg(), status())
}

fn session_in_countdown() -> Rig {
    let mut r = session_in_framing();
    r.ui(Intent::Shoot);
    r
}

/// Fires the countdown and answers the capture: the machine is in Checking for shot `used + 1`.
fn shoot(r: &mut Rig) -> u8 {
    r.ui(Intent::Shoot);
    r.expire();
    assert_eq!(r.state(), StateKind::Capture);
    let shot_no = r.s.ticket.as_ref().unwrap().current_shot;
    r.input(Input::Captured { shot_no });
    assert_eq!(r.state(), StateKind::Checking);
    shot_no
}

fn session_in_capture() -> Rig {
    let mut r = session_in_countdown();
    r.expire();
    r
}

fn session_in_checking() -> Rig {
    let mut r = session_in_framing();
    shoot(&mut r);
    r
}

fn result_passed_with(config: SessionConfig, st: TicketStatus) -> Rig {
    let mut r = framing_with(config, st);
    let shot = shoot(&mut r);
    r.input(checked(shot, passing()));
    assert_eq!(r.state(), StateKind::Result);
    r
}

fn session_in_result_passed() -> Rig {
    result_passed_with(cfg(), status())
}

fn session_in_result_failed() -> Rig {
    let mut r = session_in_checking();
    r.input(checked(1, failing()));
    r
}

fn choose_with(config: SessionConfig) -> Rig {
    let mut r = confirm_with(
        config,
        TicketStatus {
            shots_used: 3,
            candidates: vec![candidate(2)],
            ..status()
        },
    );
    r.ui(Intent::Confirm);
    assert_eq!(r.state(), StateKind::Choose);
    r
}

fn session_in_choose() -> Rig {
    choose_with(cfg())
}

/// Gateway payment with the order created and its QR on screen.
fn session_in_pay() -> Rig {
    let mut r = choose_with(gateway());
    r.ui(Intent::Choose(2));
    r.input(Input::OrderCreated {
        order_id: "o-1".into(),
        qr_url: "weixin://wxpay/o-1".into(),
    });
    r
}

fn session_in_finishing() -> Rig {
    let mut r = session_in_choose();
    r.ui(Intent::Choose(2));
    assert_eq!(r.state(), StateKind::Finishing);
    r
}

fn session_in_done() -> Rig {
    let mut r = session_in_finishing();
    r.input(Input::Enqueued {
        job_id: "job-1".into(),
    });
    r
}

fn session_in_out_of_service() -> Rig {
    let mut r = session_in_attract();
    r.input(fault(Device::Camera));
    r
}

// ----- attract and scan --------------------------------------------------------------------------------

#[test]
fn test_attract_new_has_no_timeout_and_shows_scan_prompt() {
    let r = session_in_attract();
    assert_eq!(r.state(), StateKind::Attract);
    assert_eq!(r.s.poll_timeout(), None);
    assert!(r.text().contains("请扫描拍摄二维码"));
    assert_eq!(
        r.s.startup_effects(),
        vec![
            Effect::SetLights(LightMode::Idle),
            Effect::StartPreview(PreviewPurpose::QrScan)
        ]
    );
}

#[test]
fn test_attract_start() {
    let mut r = session_in_attract();
    assert!(r.ui(Intent::Start).is_empty());
    assert_eq!(r.state(), StateKind::Scan);
}

#[test]
fn test_attract_qr() {
    let mut r = session_in_attract();
    assert_eq!(
        r.input(Input::Qr(b"abc".to_vec())),
        vec![Effect::VerifyTicket(b"abc".to_vec())]
    );
    assert_eq!(r.state(), StateKind::Verify);
}

#[test]
fn test_scan_qr() {
    let mut r = session_in_scan();
    assert_eq!(
        r.input(Input::Qr(b"abc".to_vec())),
        vec![Effect::VerifyTicket(b"abc".to_vec())]
    );
    assert_eq!(r.state(), StateKind::Verify);
}

#[test]
fn test_scan_timeout() {
    let mut r = session_in_scan();
    let fx = r.expire();
    assert_eq!(r.state(), StateKind::Attract);
    assert!(fx.contains(&Effect::SessionEnded {
        ticket: None,
        outcome: Outcome::TimedOut
    }));
}

#[test]
fn test_scan_cancel() {
    let mut r = session_in_scan();
    r.ui(Intent::Cancel);
    assert_eq!(r.state(), StateKind::Attract);
    assert_eq!(r.outcomes(), vec![Outcome::Cancelled]);
}

// ----- verify ------------------------------------------------------------------------------------------

#[test]
fn test_verify_ticket_verified_ok() {
    let mut r = session_in_verify();
    r.input(Input::TicketVerified(Ok(status())));
    assert_eq!(
        r.screen(),
        Screen::Confirm {
            masked_name: "张*明".into(),
            school: "某大学".into(),
            id_last4: "123X".into()
        }
    );
    assert_eq!(r.s.view().shots, Some((0, 3)));
}

#[test]
fn test_verify_ticket_verified_rejected_shows_reason_then_attract() {
    let mut r = session_in_verify();
    let fx = r.input(Input::TicketVerified(Err(Rejection::Expired { expires_at: 0 })));
    assert_eq!(
        fx,
        vec![Effect::SessionEnded {
            ticket: None,
            outcome: Outcome::Rejected("expired")
        }]
    );
    match r.screen() {
        Screen::Rejected { code, message_zh, .. } => {
            assert_eq!(code, "expired");
            assert!(message_zh.contains("过期"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(r.s.view().seconds_left, Some(8));
    r.expire();
    assert_eq!(r.state(), StateKind::Attract);
    assert_eq!(r.outcomes().len(), 1);
}

#[test]
fn test_verify_ticket_verified_locked_or_cooling_down_from_store_just_shows() {
    for rejection in [Rejection::Locked, Rejection::CoolingDown { until: 0 }] {
        let mut r = session_in_verify();
        let code = rejection.code();
        r.input(Input::TicketVerified(Err(rejection)));
        assert_eq!(r.state(), StateKind::Rejected);
        assert_eq!(r.outcomes(), vec![Outcome::Rejected(code)]);
        assert!(
            !r.log
                .iter()
                .any(|e| matches!(e, Effect::LockTicket { .. } | Effect::StartCooldown { .. }))
        );
    }
}

#[test]
fn test_verify_qr_ignored_while_verifying() {
    let mut r = session_in_verify();
    assert!(r.input(Input::Qr(b"again".to_vec())).is_empty());
    assert_eq!(r.state(), StateKind::Verify);
}

#[test]
fn test_verify_timeout() {
    let mut r = session_in_verify();
    r.expire();
    assert_eq!(r.state(), StateKind::Attract);
    assert_eq!(r.outcomes(), vec![Outcome::TimedOut]);
}

#[test]
fn test_verify_cancel() {
    let mut r = session_in_verify();
    r.ui(Intent::Cancel);
    assert_eq!(r.state(), StateKind::Attract);
    // The late answer for an abandoned verification is ignored.
    r.input(Input::TicketVerified(Ok(status())));
    assert_eq!(r.state(), StateKind::Attract);
    assert_eq!(r.outcomes(), vec![Outcome::Cancelled]);
}

#[test]
fn test_verify_no_known_photo_type_ends() {
    let st = TicketStatus {
        ticket: Ticket {
            photo_types: vec!["passport".into()],
            ..ticket()
        },
        ..status()
    };
    let mut r = session_in_verify();
    r.input(Input::TicketVerified(Ok(st)));
    assert_eq!(
        r.screen(),
        Screen::Ended {
            reason: EndReason::NoPhotoType
        }
    );
    assert_eq!(r.outcomes(), vec![Outcome::NoPhotoType]);
}

// ----- confirm, photo type, lighting, rules ------------------------------------------------------------

#[test]
fn test_confirm_confirm() {
    let mut r = session_in_confirm();
    r.ui(Intent::Confirm);
    assert_eq!(r.state(), StateKind::PhotoType);
}

#[test]
fn test_confirm_wrong_info() {
    let mut r = session_in_confirm();
    r.ui(Intent::WrongInfo);
    assert_eq!(
        r.screen(),
        Screen::Ended {
            reason: EndReason::WrongInfo
        }
    );
    assert!(r.text().contains("联系"));
    assert_eq!(
        r.log.last(),
        Some(&Effect::SessionEnded {
            ticket: Some(TID),
            outcome: Outcome::WrongInfo
        })
    );
    r.expire();
    assert_eq!(r.state(), StateKind::Attract);
}

#[test]
fn test_photo_type_default_preselected_and_unknown_selection_ignored() {
    let config = SessionConfig {
        photo_types: vec![
            PhotoTypeConfig {
                id: "passport".into(),
                name_zh: "护照".into(),
                name_en: "Passport".into(),
            },
            cfg().photo_types[0].clone(),
        ],
        ..cfg()
    };
    let st = TicketStatus {
        ticket: Ticket {
            photo_types: vec!["chsi-graduate".into(), "passport".into()],
            ..ticket()
        },
        ..status()
    };
    let mut r = confirm_with(config, st);
    r.ui(Intent::Confirm);
    match r.screen() {
        Screen::PhotoType { options, selected } => {
            assert_eq!(selected, "chsi-graduate");
            assert_eq!(
                options.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(),
                ["passport", "chsi-graduate"]
            );
        }
        other => panic!("{other:?}"),
    }
    r.ui(Intent::SelectPhotoType("visa".into()));
    assert!(matches!(r.screen(), Screen::PhotoType { selected, .. } if selected == "chsi-graduate"));
    r.ui(Intent::SelectPhotoType("passport".into()));
    r.ui(Intent::Next);
    assert_eq!(r.state(), StateKind::Lighting);
    r.ui(Intent::Lighting { glasses: false });
    r.ui(Intent::AcceptRules);
    shoot(&mut r);
    assert!(r.log.contains(&Effect::RunChecks {
        shot_no: 1,
        spec: "passport".into()
    }));
}

#[test]
fn test_lighting_glasses_sets_glasses_lights_for_preview_and_shot() {
    let mut r = session_in_lighting();
    assert_eq!(
        r.ui(Intent::Lighting { glasses: true }),
        vec![Effect::SetLights(LightMode::PreviewGlasses)]
    );
    assert_eq!(r.state(), StateKind::Rules);
    r.ui(Intent::AcceptRules);
    r.ui(Intent::Shoot);
    let fx = r.expire();
    assert!(fx.contains(&Effect::SetLights(LightMode::ShootGlasses)));
}

#[test]
fn test_rules_accept_rules() {
    let mut r = session_in_rules();
    let fx = r.ui(Intent::AcceptRules);
    assert_eq!(r.state(), StateKind::Framing);
    assert_eq!(
        fx,
        vec![
            Effect::StartPreview(PreviewPurpose::Framing),
            Effect::SetLights(LightMode::Preview)
        ]
    );
}

/// Every pre-shot state times out to Attract and can be cancelled, ending the session once.
#[test]
fn test_pre_shot_states_timeout_and_cancel() {
    let fixtures: [(fn() -> Rig, StateKind); 5] = [
        (session_in_confirm, StateKind::Confirm),
        (session_in_photo_type, StateKind::PhotoType),
        (session_in_lighting, StateKind::Lighting),
        (session_in_rules, StateKind::Rules),
        (session_in_framing, StateKind::Framing),
    ];
    for (fixture, kind) in fixtures {
        let mut r = fixture();
        assert_eq!(r.state(), kind);
        assert!(r.s.view().can_cancel);
        r.expire();
        assert_eq!(r.state(), StateKind::Attract, "{kind:?} timeout");
        assert_eq!(r.outcomes(), vec![Outcome::TimedOut], "{kind:?}");

        let mut r = fixture();
        r.ui(Intent::Cancel);
        assert_eq!(r.state(), StateKind::Attract, "{kind:?} cancel");
        assert_eq!(r.outcomes(), vec![Outcome::Cancelled], "{kind:?}");
        assert!(!r.log.iter().any(|e| matches!(e, Effect::ConsumeShot { .. })));
    }
}

// ----- framing and countdown ---------------------------------------------------------------------------

#[test]
fn test_framing_guidance_shows() {
    let mut r = session_in_framing();
    let guidance = Guidance {
        lines: vec![GuidanceLine {
            zh: "请坐高一点".into(),
            en: "Sit higher".into(),
        }],
        eye_line: Some(EyeLine {
            y_permille: 600,
            band_top_permille: 300,
            band_bottom_permille: 450,
        }),
        blink_prompt: false,
    };
    r.input(Input::Guidance(guidance.clone()));
    assert_eq!(
        r.screen(),
        Screen::Framing {
            shot_no: 1,
            guidance,
            seat: SeatMotion::Still,
            drafts: 0
        }
    );
    assert!(r.text().contains("第 1/3 次拍摄"), "{}", r.text());
}

#[test]
fn test_framing_seat_intents() {
    let mut r = session_in_framing();
    assert_eq!(r.ui(Intent::SeatUp), vec![Effect::Seat(SeatCommand::Up)]);
    assert!(matches!(
        r.screen(),
        Screen::Framing {
            seat: SeatMotion::Up,
            ..
        }
    ));
    assert_eq!(r.ui(Intent::SeatDown), vec![Effect::Seat(SeatCommand::Down)]);
    assert_eq!(r.ui(Intent::SeatStop), vec![Effect::Seat(SeatCommand::Stop)]);
    assert!(
        r.ui(Intent::SeatStop).is_empty(),
        "a still seat is not told to stop again"
    );
}

#[test]
fn test_framing_shoot_stops_a_moving_seat() {
    let mut r = session_in_framing();
    r.ui(Intent::SeatUp);
    assert_eq!(r.ui(Intent::Shoot), vec![Effect::Seat(SeatCommand::Stop)]);
    assert_eq!(r.state(), StateKind::Countdown);
    // Seat buttons mean nothing during the countdown.
    assert!(r.ui(Intent::SeatUp).is_empty());
}

#[test]
fn test_framing_cancel_stops_a_moving_seat() {
    let mut r = session_in_framing();
    r.ui(Intent::SeatDown);
    let fx = r.ui(Intent::Cancel);
    assert_eq!(fx[0], Effect::Seat(SeatCommand::Stop));
    assert_eq!(r.state(), StateKind::Attract);
}

#[test]
fn test_countdown_ticks_each_second_then_captures_in_order() {
    let mut r = session_in_countdown();
    assert_eq!(r.s.view().seconds_left, Some(3));
    r.advance(Duration::from_millis(1000));
    assert_eq!(r.s.view().seconds_left, Some(2));
    r.advance(Duration::from_millis(1000));
    assert_eq!(r.s.view().seconds_left, Some(1));
    assert_eq!(r.state(), StateKind::Countdown);
    let fx = r.advance(Duration::from_millis(1000));
    assert_eq!(
        fx,
        vec![
            Effect::ConsumeShot {
                ticket: TID,
                shot_no: 1
            },
            Effect::SetLights(LightMode::Shoot),
            Effect::Capture { shot_no: 1 },
        ]
    );
    assert_eq!(r.state(), StateKind::Capture);
    assert_eq!(r.s.view().shots, Some((1, 3)));
}

#[test]
fn test_countdown_cancel_consumes_nothing() {
    let mut r = session_in_countdown();
    r.ui(Intent::Cancel);
    assert_eq!(r.state(), StateKind::Attract);
    assert!(!r.log.iter().any(|e| matches!(e, Effect::ConsumeShot { .. })));
    assert_eq!(r.outcomes(), vec![Outcome::Cancelled]);
}

// ----- capture and checking ----------------------------------------------------------------------------

#[test]
fn test_capture_captured() {
    let mut r = session_in_capture();
    assert!(
        r.input(Input::Captured { shot_no: 9 }).is_empty(),
        "another shot's answer is ignored"
    );
    let fx = r.input(Input::Captured { shot_no: 1 });
    assert_eq!(
        fx,
        vec![
            Effect::SetLights(LightMode::Preview),
            Effect::RunChecks {
                shot_no: 1,
                spec: "chsi-graduate".into()
            }
        ]
    );
    assert_eq!(r.state(), StateKind::Checking);
}

#[test]
fn test_capture_capture_failed_keeps_the_shot_used() {
    let mut r = session_in_capture();
    r.input(Input::CaptureFailed {
        reason: "timeout".into(),
    });
    assert_eq!(
        r.screen(),
        Screen::CaptureFailed {
            shot_no: 1,
            shots_left: 2,
            drafts: 0
        }
    );
    assert!(r.text().contains("已计入"), "{}", r.text());
    r.ui(Intent::Retake);
    assert_eq!(r.state(), StateKind::Framing);
    assert_eq!(r.s.view().shots, Some((1, 3)));
    assert!(matches!(r.screen(), Screen::Framing { shot_no: 2, .. }));
}

#[test]
fn test_capture_cancel_is_ignored_and_timeout_ends() {
    let mut r = session_in_capture();
    assert!(!r.s.view().can_cancel);
    assert!(r.ui(Intent::Cancel).is_empty());
    assert_eq!(r.state(), StateKind::Capture);
    r.expire();
    assert_eq!(r.state(), StateKind::Attract);
    assert_eq!(r.outcomes(), vec![Outcome::TimedOut]);
}

#[test]
fn test_checking_checked_pass_stores_candidate() {
    let mut r = session_in_checking();
    let fx = r.input(checked(1, passing()));
    assert_eq!(
        fx,
        vec![Effect::StoreCandidate {
            ticket: TID,
            shot_no: 1,
            spec: "chsi-graduate".into()
        }]
    );
    match r.screen() {
        Screen::Result {
            passed,
            items,
            shots_left,
            retake_enabled,
            drafts,
            ..
        } => {
            assert!(passed);
            assert_eq!(items.len(), 1, "the advisory is shown");
            assert!(!items[0].blocking);
            assert_eq!((shots_left, retake_enabled, drafts), (2, true, 1));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn test_checking_checked_fail_shows_reasons_and_calm_period() {
    let mut r = session_in_checking();
    let fx = r.input(checked(1, failing()));
    assert_eq!(
        fx,
        vec![Effect::RecordCheckFailure {
            ticket: TID,
            shot_no: 1
        }]
    );
    match r.screen() {
        Screen::Result {
            passed,
            items,
            retake_enabled,
            retake_in,
            shots_left,
            ..
        } => {
            assert!(!passed);
            assert_eq!(items[0].id, "roll");
            assert!(items[0].blocking);
            assert_eq!(items[0].guidance_zh, "请摆正头部");
            assert_eq!((retake_enabled, retake_in, shots_left), (false, Some(5), 2));
        }
        other => panic!("{other:?}"),
    }
    assert!(r.ui(Intent::Retake).is_empty());
    assert_eq!(
        r.state(),
        StateKind::Result,
        "retake is disabled during the calm period"
    );
    r.advance(Duration::from_secs(5));
    assert!(matches!(
        r.screen(),
        Screen::Result {
            retake_enabled: true,
            retake_in: None,
            ..
        }
    ));
    r.ui(Intent::Retake);
    assert_eq!(r.state(), StateKind::Framing);
}

#[test]
fn test_checking_checked_for_another_shot_is_ignored() {
    let mut r = session_in_checking();
    assert!(r.input(checked(2, passing())).is_empty());
    assert_eq!(r.state(), StateKind::Checking);
}

#[test]
fn test_checking_cancel_is_ignored_and_timeout_ends() {
    let mut r = session_in_checking();
    r.ui(Intent::Cancel);
    assert_eq!(
        r.state(),
        StateKind::Checking,
        "the verdict of a used shot must land"
    );
    r.expire();
    assert_eq!(r.state(), StateKind::Attract);
    assert_eq!(r.outcomes(), vec![Outcome::TimedOut]);
}

#[test]
fn test_checking_passing_verdict_with_liveness_failure_is_no_candidate() {
    let mut r = session_in_checking();
    let fx = r.input(liveness_fail(1));
    assert_eq!(
        fx,
        vec![Effect::RecordLivenessFailure {
            ticket: TID,
            shot_no: 1
        }]
    );
    assert!(matches!(
        r.screen(),
        Screen::Result {
            passed: false,
            liveness_failed: true,
            ..
        }
    ));
    assert!(r.text().contains("活体检测"));
}

// ----- result ------------------------------------------------------------------------------------------

#[test]
fn test_result_use_this() {
    let mut r = session_in_result_passed();
    let fx = r.ui(Intent::UseThis);
    assert_eq!(
        fx,
        vec![Effect::Enqueue {
            ticket: TID,
            shot_no: 1,
            spec: "chsi-graduate".into(),
            order_id: None
        }]
    );
    assert_eq!(r.state(), StateKind::Finishing);
}

#[test]
fn test_result_retake_uses_the_next_shot() {
    let mut r = session_in_result_passed();
    r.ui(Intent::Retake);
    let shot = shoot(&mut r);
    assert_eq!(shot, 2);
    let consumed: Vec<u8> = r
        .log
        .iter()
        .filter_map(|e| match e {
            Effect::ConsumeShot { shot_no, .. } => Some(*shot_no),
            _ => None,
        })
        .collect();
    assert_eq!(consumed, [1, 2]);
}

#[test]
fn test_result_timeout_and_cancel() {
    let mut r = session_in_result_failed();
    r.expire();
    assert_eq!(r.state(), StateKind::Attract);
    assert_eq!(r.outcomes(), vec![Outcome::TimedOut]);

    let mut r = session_in_result_passed();
    r.ui(Intent::Cancel);
    assert_eq!(r.state(), StateKind::Attract);
    assert_eq!(r.outcomes(), vec![Outcome::Cancelled]);
}

// ----- shots -------------------------------------------------------------------------------------------

#[test]
fn test_rescan_uses_the_stored_count_never_gives_a_shot_back() {
    // First session: one shot used, then the student walks away.
    let mut r = session_in_result_failed();
    r.ui(Intent::Cancel);
    assert_eq!(
        r.log
            .iter()
            .filter(|e| matches!(e, Effect::ConsumeShot { .. }))
            .count(),
        1
    );
    // The shell answers the rescan from the store, which counted the consumed shot.
    r.input(Input::Qr(b"ticket".to_vec()));
    r.input(Input::TicketVerified(Ok(TicketStatus {
        shots_used: 1,
        failures_in_a_row: 1,
        ..status()
    })));
    assert_eq!(r.s.view().shots, Some((1, 3)));
    r.ui(Intent::Confirm);
    r.ui(Intent::Next);
    r.ui(Intent::Lighting { glasses: false });
    r.ui(Intent::AcceptRules);
    assert!(matches!(r.screen(), Screen::Framing { shot_no: 2, .. }));
}

#[test]
fn test_shots_granted_and_ticket_default_add_up() {
    let st = TicketStatus {
        ticket: Ticket {
            shots_allowed: 0,
            ..ticket()
        },
        shots_granted: 1,
        ..status()
    };
    let r = confirm_with(cfg(), st);
    assert_eq!(r.s.view().shots, Some((0, 4)));
}

#[test]
fn test_result_last_shot_failed_without_candidates_is_out_of_shots() {
    let mut r = framing_with(
        cfg(),
        TicketStatus {
            shots_used: 2,
            ..status()
        },
    );
    let shot = shoot(&mut r);
    r.input(checked(shot, failing()));
    assert!(matches!(
        r.screen(),
        Screen::Result {
            shots_left: 0,
            retake_enabled: false,
            ..
        }
    ));
    r.ui(Intent::Continue);
    assert_eq!(
        r.screen(),
        Screen::Ended {
            reason: EndReason::OutOfShots
        }
    );
    assert_eq!(r.outcomes(), vec![Outcome::OutOfShots]);
    r.expire();
    assert_eq!(r.state(), StateKind::Attract);
}

#[test]
fn test_result_last_shot_failed_with_candidates_goes_to_choose() {
    let mut r = framing_with(
        cfg(),
        TicketStatus {
            shots_used: 2,
            candidates: vec![candidate(1)],
            ..status()
        },
    );
    let shot = shoot(&mut r);
    r.input(checked(shot, failing()));
    r.ui(Intent::Continue);
    assert_eq!(r.screen(), Screen::Choose { candidates: vec![1] });
}

#[test]
fn test_confirm_with_no_shots_left() {
    let mut r = confirm_with(
        cfg(),
        TicketStatus {
            shots_used: 3,
            ..status()
        },
    );
    r.ui(Intent::Confirm);
    assert_eq!(
        r.screen(),
        Screen::Ended {
            reason: EndReason::OutOfShots
        }
    );
    let r = session_in_choose();
    assert_eq!(r.screen(), Screen::Choose { candidates: vec![2] });
}

// ----- lockouts ----------------------------------------------------------------------------------------

#[test]
fn test_checking_liveness_limit_locks_and_offers_drafts() {
    let st = TicketStatus {
        liveness_failures: 1,
        candidates: vec![candidate(1)],
        shots_used: 1,
        ..status()
    };
    let mut r = framing_with(cfg(), st);
    let shot = shoot(&mut r);
    let fx = r.input(liveness_fail(shot));
    assert_eq!(
        fx,
        vec![
            Effect::RecordLivenessFailure {
                ticket: TID,
                shot_no: 2
            },
            Effect::LockTicket { ticket: TID }
        ]
    );
    assert_eq!(r.screen(), Screen::Locked { has_drafts: true });
    assert!(
        r.text().contains("多次未通过活体检测") && r.text().contains("草稿箱有照片"),
        "{}",
        r.text()
    );
    assert!(r.ui(Intent::Retake).is_empty(), "no more shooting once locked");
    r.ui(Intent::OpenDrafts);
    r.ui(Intent::Choose(1));
    r.input(Input::Enqueued { job_id: "j".into() });
    assert_eq!(r.outcomes(), vec![Outcome::Completed]);
}

#[test]
fn test_locked_timeout_without_drafts_records_locked() {
    let mut r = framing_with(
        cfg(),
        TicketStatus {
            liveness_failures: 1,
            ..status()
        },
    );
    let shot = shoot(&mut r);
    r.input(liveness_fail(shot));
    assert_eq!(r.screen(), Screen::Locked { has_drafts: false });
    assert!(r.ui(Intent::OpenDrafts).is_empty());
    r.expire();
    assert_eq!(r.state(), StateKind::Attract);
    assert_eq!(r.outcomes(), vec![Outcome::Locked]);
}

#[test]
fn test_checking_fail_limit_starts_cooldown() {
    let mut r = framing_with(
        cfg(),
        TicketStatus {
            failures_in_a_row: 2,
            ..status()
        },
    );
    let shot = shoot(&mut r);
    let fx = r.input(checked(shot, failing()));
    assert_eq!(
        fx,
        vec![
            Effect::RecordCheckFailure {
                ticket: TID,
                shot_no: 1
            },
            Effect::StartCooldown {
                ticket: TID,
                minutes: 30
            },
        ]
    );
    assert_eq!(
        r.screen(),
        Screen::CoolingDown {
            minutes: 30,
            has_drafts: false
        }
    );
    r.ui(Intent::Cancel);
    assert_eq!(r.state(), StateKind::Attract);
    assert_eq!(r.outcomes(), vec![Outcome::CoolingDown]);
}

#[test]
fn test_checking_fail_limit_on_the_last_shot_is_out_of_shots_not_a_cooldown() {
    let mut r = framing_with(
        cfg(),
        TicketStatus {
            shots_used: 2,
            failures_in_a_row: 2,
            ..status()
        },
    );
    let shot = shoot(&mut r);
    assert_eq!(shot, 3);
    let fx = r.input(checked(shot, failing()));
    assert!(
        !fx.iter().any(|e| matches!(e, Effect::StartCooldown { .. })),
        "no cool-down when nothing is left to shoot: {fx:?}"
    );
    assert_eq!(r.state(), StateKind::Result);
    r.ui(Intent::Continue);
    assert_eq!(r.outcomes(), vec![Outcome::OutOfShots]);
}

#[test]
fn test_result_pass_resets_failures_in_a_row() {
    let mut r = result_passed_with(
        cfg(),
        TicketStatus {
            failures_in_a_row: 2,
            ..status()
        },
    );
    r.ui(Intent::Retake);
    let shot = shoot(&mut r);
    r.input(checked(shot, failing()));
    assert_eq!(
        r.state(),
        StateKind::Result,
        "one failure after a pass is no cool-down"
    );
}

// ----- choose and payment ------------------------------------------------------------------------------

#[test]
fn test_choose_choose_without_payment_enqueues() {
    let mut r = session_in_choose();
    assert!(r.ui(Intent::Choose(9)).is_empty(), "not a candidate");
    let fx = r.ui(Intent::Choose(2));
    assert_eq!(
        fx,
        vec![Effect::Enqueue {
            ticket: TID,
            shot_no: 2,
            spec: "chsi-graduate".into(),
            order_id: None
        }]
    );
}

#[test]
fn test_choose_timeout_and_cancel() {
    let mut r = session_in_choose();
    r.expire();
    assert_eq!(r.outcomes(), vec![Outcome::TimedOut]);
    let mut r = session_in_choose();
    r.ui(Intent::Cancel);
    assert_eq!(r.outcomes(), vec![Outcome::Cancelled]);
    assert!(!r.log.iter().any(|e| matches!(e, Effect::Enqueue { .. })));
}

#[test]
fn test_confirm_prepaid_paid_files_without_order() {
    let config = SessionConfig {
        payment: PaymentMode::Prepaid,
        ..cfg()
    };
    let mut r = result_passed_with(config, status());
    r.ui(Intent::UseThis);
    assert_eq!(r.state(), StateKind::Finishing);
    assert!(!r.log.iter().any(|e| matches!(e, Effect::CreateOrder { .. })));
}

#[test]
fn test_confirm_prepaid_unpaid_ends_before_any_shot() {
    let config = SessionConfig {
        payment: PaymentMode::Prepaid,
        ..cfg()
    };
    let mut r = confirm_with(
        config,
        TicketStatus {
            ticket: Ticket {
                paid: false,
                ..ticket()
            },
            ..status()
        },
    );
    r.ui(Intent::Confirm);
    assert_eq!(
        r.screen(),
        Screen::Ended {
            reason: EndReason::Unpaid
        }
    );
    assert!(r.text().contains("小程序"));
    assert_eq!(r.outcomes(), vec![Outcome::Unpaid]);
    assert!(!r.log.iter().any(|e| matches!(e, Effect::ConsumeShot { .. })));
}

#[test]
fn test_choose_gateway_creates_order_and_polls() {
    let mut r = choose_with(gateway());
    assert_eq!(
        r.ui(Intent::Choose(2)),
        vec![Effect::CreateOrder {
            ticket: TID,
            shot_no: 2,
            amount_fen: 2500
        }]
    );
    assert_eq!(
        r.screen(),
        Screen::Pay {
            amount_fen: 2500,
            order: None
        }
    );
    r.input(Input::OrderCreated {
        order_id: "o-1".into(),
        qr_url: "weixin://wxpay/o-1".into(),
    });
    assert!(
        r.text().contains("25.00") && r.text().contains("weixin://wxpay/o-1"),
        "{}",
        r.text()
    );
    assert_eq!(r.s.view().seconds_left, Some(180));
    let fx = r.advance(Duration::from_secs(5));
    let polls = fx
        .iter()
        .filter(|e| {
            **e == Effect::PollOrder {
                order_id: "o-1".into(),
            }
        })
        .count();
    assert_eq!(polls, 2, "polled at 2 s and 4 s");
    assert_eq!(r.s.view().seconds_left, Some(175));
}

#[test]
fn test_pay_order_status_paid_enqueues_with_order() {
    let mut r = session_in_pay();
    assert!(
        r.input(Input::OrderStatus {
            order_id: "o-1".into(),
            status: OrderStatus::Pending
        })
        .is_empty()
    );
    assert!(
        r.input(Input::OrderStatus {
            order_id: "o-x".into(),
            status: OrderStatus::Paid
        })
        .is_empty()
    );
    let fx = r.input(Input::OrderStatus {
        order_id: "o-1".into(),
        status: OrderStatus::Paid,
    });
    assert_eq!(
        fx,
        vec![Effect::Enqueue {
            ticket: TID,
            shot_no: 2,
            spec: "chsi-graduate".into(),
            order_id: Some("o-1".into())
        }]
    );
}

#[test]
fn test_pay_order_status_declined_ends_without_filing() {
    let mut r = session_in_pay();
    r.input(Input::OrderStatus {
        order_id: "o-1".into(),
        status: OrderStatus::Declined,
    });
    assert_eq!(
        r.screen(),
        Screen::Ended {
            reason: EndReason::PaymentDeclined
        }
    );
    assert_eq!(r.outcomes(), vec![Outcome::PaymentDeclined]);
    assert!(!r.log.iter().any(|e| matches!(e, Effect::Enqueue { .. })));
}

#[test]
fn test_pay_order_failed() {
    let mut r = choose_with(gateway());
    r.ui(Intent::Choose(2));
    r.input(Input::OrderFailed { reason: "503".into() });
    assert_eq!(
        r.screen(),
        Screen::Ended {
            reason: EndReason::PaymentFailed
        }
    );
    assert_eq!(r.outcomes(), vec![Outcome::PaymentFailed]);
}

#[test]
fn test_pay_timeout_closes_order_and_ignores_late_payment() {
    let mut r = session_in_pay();
    let fx = r.expire();
    assert!(fx.contains(&Effect::CancelOrder {
        order_id: "o-1".into()
    }));
    assert_eq!(
        r.screen(),
        Screen::Ended {
            reason: EndReason::PaymentTimedOut
        }
    );
    assert_eq!(r.outcomes(), vec![Outcome::PaymentTimedOut]);
    assert!(
        r.input(Input::OrderStatus {
            order_id: "o-1".into(),
            status: OrderStatus::Paid
        })
        .is_empty()
    );
    r.expire();
    assert!(
        r.input(Input::OrderStatus {
            order_id: "o-1".into(),
            status: OrderStatus::Paid
        })
        .is_empty()
    );
    assert_eq!(r.state(), StateKind::Attract);
    assert!(!r.log.iter().any(|e| matches!(e, Effect::Enqueue { .. })));
}

#[test]
fn test_pay_cancel_closes_order_and_a_late_order_is_closed_too() {
    let mut r = session_in_pay();
    let fx = r.ui(Intent::Cancel);
    assert!(fx.contains(&Effect::CancelOrder {
        order_id: "o-1".into()
    }));
    assert_eq!(r.outcomes(), vec![Outcome::Cancelled]);

    let mut r = choose_with(gateway());
    r.ui(Intent::Choose(2));
    r.ui(Intent::Cancel);
    let fx = r.input(Input::OrderCreated {
        order_id: "o-2".into(),
        qr_url: "u".into(),
    });
    assert_eq!(
        fx,
        vec![Effect::CancelOrder {
            order_id: "o-2".into()
        }]
    );
}

// ----- finishing and done ------------------------------------------------------------------------------

#[test]
fn test_finishing_enqueued_shows_done() {
    let mut r = session_in_finishing();
    assert!(!r.text().contains("完成"));
    assert!(!r.s.view().can_cancel);
    assert!(
        r.ui(Intent::Cancel).is_empty(),
        "the commit decides; cancel waits for it"
    );
    let fx = r.input(Input::Enqueued {
        job_id: "job-1".into(),
    });
    assert_eq!(
        fx,
        vec![Effect::SessionEnded {
            ticket: Some(TID),
            outcome: Outcome::Completed
        }]
    );
    assert_eq!(
        r.screen(),
        Screen::Done {
            job_id: "job-1".into(),
            masked_name: "张*明".into()
        }
    );
    assert!(r.text().contains("完成") && r.text().contains("job-1"));
    assert_eq!(r.s.view().seconds_left, Some(15));
}

#[test]
fn test_finishing_enqueue_failed_never_shows_done() {
    let mut r = session_in_finishing();
    r.input(Input::EnqueueFailed {
        reason: "disk full".into(),
    });
    assert_eq!(r.state(), StateKind::OutOfService);
    assert!(!r.text().contains("完成"), "{}", r.text());
    assert_eq!(r.outcomes(), vec![Outcome::EnqueueFailed]);
    // A late success cannot turn the screen into Done.
    r.input(Input::Enqueued {
        job_id: "late".into(),
    });
    assert_eq!(r.state(), StateKind::OutOfService);
    r.input(Input::DeviceRecovered {
        device: Device::Store,
    });
    assert_eq!(r.state(), StateKind::Attract);
}

#[test]
fn test_finishing_timeout_goes_out_of_service() {
    let mut r = session_in_finishing();
    r.expire();
    assert_eq!(r.state(), StateKind::OutOfService);
    assert_eq!(r.outcomes(), vec![Outcome::EnqueueFailed]);
}

#[test]
fn test_done_timeout_and_continue() {
    let mut r = session_in_done();
    let fx = r.expire();
    assert_eq!(
        fx,
        vec![
            Effect::SetLights(LightMode::Idle),
            Effect::StartPreview(PreviewPurpose::QrScan)
        ]
    );
    assert_eq!(r.state(), StateKind::Attract);
    let mut r = session_in_done();
    r.ui(Intent::Continue);
    assert_eq!(r.state(), StateKind::Attract);
    assert_eq!(r.outcomes(), vec![Outcome::Completed]);
}

// ----- faults ------------------------------------------------------------------------------------------

#[test]
fn test_framing_device_fault_abandons_session() {
    let mut r = session_in_framing();
    r.ui(Intent::SeatUp);
    let fx = r.input(fault(Device::Camera));
    assert_eq!(
        fx,
        vec![
            Effect::Seat(SeatCommand::Stop),
            Effect::SessionEnded {
                ticket: Some(TID),
                outcome: Outcome::Fault(Device::Camera)
            },
            Effect::StopPreview,
            Effect::SetLights(LightMode::Idle),
        ]
    );
    assert_eq!(
        r.screen(),
        Screen::OutOfService {
            reason_zh: "摄像头已断开".into(),
            reason_en: "Camera disconnected".into(),
            hint_zh: "请联系工作人员".into(),
            hint_en: "Please ask the staff".into(),
        }
    );
    assert_eq!(r.s.poll_timeout(), None);
}

#[test]
fn test_attract_device_fault_and_recovery() {
    let mut r = session_in_out_of_service();
    assert!(r.outcomes().is_empty(), "no session was open");
    assert!(r.ui(Intent::Start).is_empty());
    assert!(r.input(Input::Qr(b"x".to_vec())).is_empty());
    r.input(fault(Device::Seat));
    r.input(Input::DeviceRecovered {
        device: Device::Camera,
    });
    assert_eq!(r.state(), StateKind::OutOfService, "the seat is still faulty");
    let fx = r.input(Input::DeviceRecovered { device: Device::Seat });
    assert_eq!(r.state(), StateKind::Attract);
    assert_eq!(
        fx,
        vec![
            Effect::SetLights(LightMode::Idle),
            Effect::StartPreview(PreviewPurpose::QrScan)
        ]
    );
}

#[test]
fn test_pay_device_fault_closes_order() {
    let mut r = session_in_pay();
    let fx = r.input(fault(Device::Lights));
    assert!(fx.contains(&Effect::CancelOrder {
        order_id: "o-1".into()
    }));
    assert_eq!(r.outcomes(), vec![Outcome::Fault(Device::Lights)]);
}

#[test]
fn test_checking_device_fault() {
    let mut r = session_in_checking();
    r.input(fault(Device::Vision));
    assert_eq!(r.state(), StateKind::OutOfService);
    assert_eq!(r.outcomes(), vec![Outcome::Fault(Device::Vision)]);
    assert!(
        r.input(checked(1, passing())).is_empty(),
        "a late verdict is ignored"
    );
}

#[test]
fn test_finishing_device_fault_waits_for_the_commit() {
    let mut r = session_in_finishing();
    assert!(r.input(fault(Device::Camera)).is_empty());
    assert_eq!(r.state(), StateKind::Finishing);
    r.input(Input::Enqueued {
        job_id: "job-1".into(),
    });
    assert_eq!(r.state(), StateKind::Done);
    r.expire();
    assert_eq!(r.state(), StateKind::OutOfService);
    assert_eq!(r.outcomes(), vec![Outcome::Completed]);
}

#[test]
fn test_finishing_store_fault_goes_out_of_service() {
    let mut r = session_in_finishing();
    r.input(fault(Device::Store));
    assert_eq!(r.state(), StateKind::OutOfService);
    assert_eq!(r.outcomes(), vec![Outcome::Fault(Device::Store)]);
}

#[test]
fn test_rejected_device_fault_does_not_end_twice() {
    let mut r = session_in_verify();
    r.input(Input::TicketVerified(Err(Rejection::BadSignature)));
    r.input(fault(Device::Camera));
    assert_eq!(r.state(), StateKind::OutOfService);
    assert_eq!(r.outcomes(), vec![Outcome::Rejected("bad_signature")]);
}

// ----- language ----------------------------------------------------------------------------------------

#[test]
fn test_any_state_toggle_language() {
    let fixtures: [fn() -> Rig; 8] = [
        session_in_attract,
        session_in_confirm,
        session_in_framing,
        session_in_checking,
        session_in_result_failed,
        session_in_pay,
        session_in_done,
        session_in_out_of_service,
    ];
    for fixture in fixtures {
        let mut r = fixture();
        let before = r.text();
        assert_eq!(r.s.view().lang, Lang::Zh);
        assert!(r.ui(Intent::ToggleLanguage).is_empty());
        assert_eq!(r.s.view().lang, Lang::En);
        assert_ne!(r.text(), before);
        r.ui(Intent::ToggleLanguage);
        assert_eq!(r.s.view().lang, Lang::Zh);
    }
}

#[test]
fn test_attract_language_resets_for_the_next_student() {
    let mut r = session_in_framing();
    r.ui(Intent::ToggleLanguage);
    r.ui(Intent::Cancel);
    assert_eq!(r.s.view().lang, Lang::Zh);
}

// ----- config ------------------------------------------------------------------------------------------

#[test]
fn test_config_deserializes_with_defaults() {
    let config: SessionConfig = toml::from_str(
        r#"
        countdown_secs = 5
        [timeouts]
        framing = 240
        [payment]
        mode = "gateway"
        amount_fen = 3000
        "#,
    )
    .unwrap();
    assert_eq!(config.countdown_secs, 5);
    assert_eq!(config.timeouts.framing, 240);
    assert_eq!(config.timeouts.scan, Timeouts::default().scan);
    assert_eq!(config.default_shots, 3);
    assert_eq!(
        config.payment,
        PaymentMode::Gateway {
            amount_fen: 3000,
            poll_every_secs: 2
        }
    );
    let empty: SessionConfig = toml::from_str("").unwrap();
    assert_eq!(empty, SessionConfig::default());
    assert!(
        toml::from_str::<SessionConfig>("countdown = 3").is_err(),
        "typos are refused"
    );
}

// ----- service mode ----------------------------------------------------------------------------------

const PIN: &str = "2048";

fn svc_cfg() -> SessionConfig {
    SessionConfig {
        service: ServiceConfig {
            pin_hash: Some(PinHash::make(b"test-salt-0001", PIN)),
            pin_digits: 4,
            max_tries: 5,
            lockout_secs: 300,
            idle_secs: 300,
        },
        ..cfg()
    }
}

fn svc(intent: ServiceIntent) -> Intent {
    Intent::Service(intent)
}

fn type_pin(r: &mut Rig, pin: &str) -> Vec<Effect> {
    let mut fx = Vec::new();
    for d in pin.bytes() {
        fx.extend(r.ui(svc(ServiceIntent::PinDigit(d - b'0'))));
    }
    fx
}

fn audits(fx: &[Effect]) -> Vec<&'static str> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Audit { event, .. } => Some(*event),
            _ => None,
        })
        .collect()
}

fn service_in_pin() -> Rig {
    let mut r = Rig::new(svc_cfg());
    let fx = r.ui(Intent::ServiceRequest);
    assert_eq!(r.state(), StateKind::Service);
    assert!(
        fx.contains(&Effect::StopPreview),
        "no QR scanning in service mode"
    );
    r
}

fn service_in_menu() -> Rig {
    let mut r = service_in_pin();
    type_pin(&mut r, PIN);
    assert_eq!(r.screen(), Screen::Service(ServicePage::Menu));
    r
}

#[test]
fn test_attract_service_request_shows_the_pin_pad() {
    let r = service_in_pin();
    assert_eq!(
        r.screen(),
        Screen::Service(ServicePage::Pin {
            entered: 0,
            wrong: false,
            locked_for: None
        })
    );
    assert!(!r.s.view().can_cancel);
}

#[test]
fn test_attract_service_request_without_a_pin_configured_is_ignored() {
    let mut r = session_in_attract();
    r.ui(Intent::ServiceRequest);
    assert_eq!(
        r.state(),
        StateKind::Attract,
        "only the key enters without a PIN hash"
    );
    r.input(Input::ServiceKey);
    assert_eq!(r.screen(), Screen::Service(ServicePage::Menu));
}

#[test]
fn test_service_entry_only_from_idle_screens() {
    let mid_session: Vec<fn(SessionConfig) -> Rig> = vec![
        |c| {
            let mut r = Rig::new(c);
            r.ui(Intent::Start);
            r
        },
        |c| confirm_with(c, status()),
        |c| framing_with(c, status()),
        |c| {
            let mut r = framing_with(c, status());
            r.ui(Intent::Shoot);
            r
        },
    ];
    for make in mid_session {
        for input in [Input::Ui(Intent::ServiceRequest), Input::ServiceKey] {
            let mut r = make(svc_cfg());
            let before = r.state();
            let fx = r.input(input.clone());
            assert_eq!(r.state(), before, "{input:?} in {before:?}");
            assert!(fx.is_empty(), "{fx:?}");
        }
    }
    // The idle screens: attract, out of service, and an end notice (its session is already recorded).
    let mut r = Rig::new(svc_cfg());
    r.input(fault(Device::Camera));
    assert_eq!(r.state(), StateKind::OutOfService);
    r.ui(Intent::ServiceRequest);
    assert_eq!(r.state(), StateKind::Service);
    let mut r = confirm_with(svc_cfg(), status());
    r.ui(Intent::WrongInfo);
    assert_eq!(r.state(), StateKind::Ended);
    assert_eq!(r.outcomes(), vec![Outcome::WrongInfo]);
    r.input(Input::ServiceKey);
    assert_eq!(r.screen(), Screen::Service(ServicePage::Menu));
    assert!(
        r.s.ticket.is_none(),
        "nothing of the student's is kept in service mode"
    );
    assert_eq!(r.outcomes().len(), 1);
}

#[test]
fn test_service_pin_right_enters_the_menu_and_is_audited() {
    let mut r = service_in_pin();
    let fx = type_pin(&mut r, &PIN[..3]);
    assert!(fx.is_empty());
    match r.screen() {
        Screen::Service(ServicePage::Pin { entered, .. }) => assert_eq!(entered, 3),
        other => panic!("{other:?}"),
    }
    r.ui(svc(ServiceIntent::PinBackspace));
    let fx = type_pin(&mut r, &PIN[2..]);
    assert_eq!(audits(&fx), vec!["service_entered"]);
    assert_eq!(r.screen(), Screen::Service(ServicePage::Menu));
    // The digits themselves are never in an effect.
    assert!(!format!("{:?}", r.log).contains(PIN));
}

#[test]
fn test_service_pin_wrong_five_times_locks_the_pad() {
    let mut r = service_in_pin();
    for i in 1..=4u8 {
        let fx = type_pin(&mut r, "1111");
        assert_eq!(audits(&fx), vec!["service_pin_wrong"], "try {i}");
        assert_eq!(
            r.screen(),
            Screen::Service(ServicePage::Pin {
                entered: 0,
                wrong: true,
                locked_for: None
            })
        );
    }
    let fx = type_pin(&mut r, "1111");
    assert_eq!(audits(&fx), vec!["service_pin_wrong", "service_pin_locked"]);
    assert!(matches!(
        r.screen(),
        Screen::Service(ServicePage::Pin {
            locked_for: Some(300),
            ..
        })
    ));
    // Locked: even the right PIN is not taken, and leaving the pad does not reset the lock.
    type_pin(&mut r, PIN);
    assert_eq!(r.state(), StateKind::Service);
    assert!(matches!(
        r.screen(),
        Screen::Service(ServicePage::Pin { entered: 0, .. })
    ));
    r.ui(svc(ServiceIntent::Exit));
    assert_eq!(r.state(), StateKind::Attract);
    r.advance(Duration::from_secs(100));
    r.ui(Intent::ServiceRequest);
    match r.screen() {
        Screen::Service(ServicePage::Pin { locked_for, .. }) => assert_eq!(locked_for, Some(200)),
        other => panic!("{other:?}"),
    }
    type_pin(&mut r, PIN);
    assert!(matches!(r.screen(), Screen::Service(ServicePage::Pin { .. })));
    // The lockout over, the right PIN works.
    r.advance(Duration::from_secs(200));
    let fx = type_pin(&mut r, PIN);
    assert_eq!(audits(&fx), vec!["service_entered"]);
    assert_eq!(r.screen(), Screen::Service(ServicePage::Menu));
}

#[test]
fn test_service_idle_timeout_leaves_service_mode() {
    let mut r = service_in_menu();
    r.advance(Duration::from_secs(200));
    // A touch keeps it open.
    r.ui(svc(ServiceIntent::Open(ServicePageKind::Counters)));
    r.advance(Duration::from_secs(200));
    assert_eq!(r.state(), StateKind::Service);
    let fx = r.advance(Duration::from_secs(101));
    assert_eq!(r.state(), StateKind::Attract);
    assert!(fx.contains(&Effect::Service(ServiceCommand::Leave)));
    assert_eq!(audits(&fx), vec!["service_exited"]);
    assert!(fx.contains(&Effect::StartPreview(PreviewPurpose::QrScan)));
    // The pad left alone times out too.
    let mut r = service_in_pin();
    r.expire();
    assert_eq!(r.state(), StateKind::Attract);
}

#[test]
fn test_service_exit_returns_to_attract_or_out_of_service() {
    let mut r = service_in_menu();
    let fx = r.ui(svc(ServiceIntent::Exit));
    assert_eq!(r.state(), StateKind::Attract);
    assert_eq!(audits(&fx), vec!["service_exited"]);
    assert!(fx.contains(&Effect::SetLights(LightMode::Idle)));
    // A device fails while the technician works: service mode stays, the exit shows the fault.
    let mut r = service_in_menu();
    r.input(fault(Device::Seat));
    assert_eq!(r.state(), StateKind::Service);
    r.ui(svc(ServiceIntent::Exit));
    assert_eq!(r.state(), StateKind::OutOfService);
    // Repaired in service mode: the exit goes back to students.
    let mut r = service_in_menu();
    r.input(fault(Device::Seat));
    r.input(Input::DeviceRecovered { device: Device::Seat });
    r.ui(svc(ServiceIntent::Exit));
    assert_eq!(r.state(), StateKind::Attract);
}

#[test]
fn test_service_no_student_session_starts() {
    let mut r = service_in_menu();
    for input in [
        Input::Qr(b"ticket".to_vec()),
        Input::Ui(Intent::Start),
        Input::TicketVerified(Ok(status())),
        Input::Ui(Intent::Shoot),
        Input::Ui(Intent::Cancel),
    ] {
        let fx = r.input(input);
        assert!(fx.is_empty(), "{fx:?}");
        assert_eq!(r.state(), StateKind::Service);
    }
    assert!(!r.s.open);
}

#[test]
fn test_service_pages_ask_the_shell_and_take_its_answers() {
    let mut r = service_in_menu();
    let fx = r.ui(svc(ServiceIntent::Open(ServicePageKind::Tickets)));
    assert_eq!(
        fx,
        vec![Effect::Service(ServiceCommand::Load(ServicePageKind::Tickets))]
    );
    // A button of another page means nothing here.
    assert!(r.ui(svc(ServiceIntent::RunSelfTest)).is_empty());
    // A ticket not listed cannot be acted on.
    assert!(
        r.ui(svc(ServiceIntent::Unlock { ticket: "ab".into() }))
            .is_empty()
    );
    let page = ServicePage::Tickets {
        tickets: vec![ui::ServiceTicket {
            ticket: "07".repeat(16),
            masked_name: "张*明".into(),
            shots_used: 3,
            shots_total: 3,
            status: "locked".into(),
        }],
        message: None,
    };
    r.input(Input::ServiceUpdate(page.clone()));
    assert_eq!(r.screen(), Screen::Service(page));
    let fx = r.ui(svc(ServiceIntent::GrantShot {
        ticket: "07".repeat(16),
    }));
    assert_eq!(
        fx,
        vec![Effect::Service(ServiceCommand::GrantShot("07".repeat(16)))]
    );
    // An update for another page is stale: ignored.
    r.input(Input::ServiceUpdate(ServicePage::Counters { rows: vec![] }));
    assert!(matches!(r.screen(), Screen::Service(ServicePage::Tickets { .. })));
    // The seat page: a jog, and leaving the page stops it.
    r.ui(svc(ServiceIntent::Back));
    r.ui(svc(ServiceIntent::Open(ServicePageKind::Seat)));
    let fx = r.ui(svc(ServiceIntent::SeatJogUp));
    assert_eq!(
        fx,
        vec![Effect::Service(ServiceCommand::SeatJog(SeatCommand::Up))]
    );
    let fx = r.ui(svc(ServiceIntent::Back));
    assert_eq!(
        fx,
        vec![Effect::Service(ServiceCommand::SeatJog(SeatCommand::Stop))]
    );
    // Lights: only the named test modes.
    r.ui(svc(ServiceIntent::Open(ServicePageKind::Lights)));
    assert!(r.ui(svc(ServiceIntent::LightsMode("disco".into()))).is_empty());
    assert_eq!(
        r.ui(svc(ServiceIntent::LightsMode("shoot-glasses".into()))),
        vec![Effect::Service(ServiceCommand::Lights("shoot-glasses".into()))]
    );
    // Self-test shows running until the shell says otherwise.
    r.ui(svc(ServiceIntent::Back));
    r.ui(svc(ServiceIntent::Open(ServicePageKind::SelfTest)));
    r.ui(svc(ServiceIntent::RunSelfTest));
    assert!(matches!(
        r.screen(),
        Screen::Service(ServicePage::SelfTest { running: true, .. })
    ));
}

// ----- invariants over random input sequences ----------------------------------------------------------

/// A deterministic random walk over inputs and time. Checks, after every step: `SessionEnded` at most
/// once per session and owed exactly when a session is open; `ConsumeShot` immediately followed by the
/// shoot lights and `Capture`; Done only right after `Enqueued`; shots used never go down.
#[test]
fn test_random_walk_invariants() {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut visited = std::collections::HashSet::new();
    for config in [
        svc_cfg(),
        gateway(),
        SessionConfig {
            payment: PaymentMode::Prepaid,
            ..cfg()
        },
    ] {
        let mut r = Rig::new(config);
        let mut started = 0usize;
        let mut ended = 0usize;
        let mut last_used = 0u8;
        for _ in 0..20_000 {
            let was_attract = matches!(r.state(), StateKind::Attract);
            let shot = r.s.ticket.as_ref().map(|c| c.current_shot).unwrap_or(1);
            let order = r.s.current_order_id().unwrap_or_else(|| "o-1".into());
            let input = match next() % 30 {
                0 => Input::Ui(Intent::Start),
                1 => Input::Qr(b"t".to_vec()),
                2 => Input::TicketVerified(Ok(TicketStatus {
                    shots_used: (next() % 4) as u8,
                    candidates: if next() % 2 == 0 {
                        vec![candidate(1)]
                    } else {
                        vec![]
                    },
                    ticket: Ticket {
                        paid: next() % 2 == 0,
                        ..ticket()
                    },
                    ..status()
                })),
                3 => Input::TicketVerified(Err(Rejection::Expired { expires_at: 0 })),
                4 => Input::Ui(Intent::Confirm),
                5 => Input::Ui(Intent::Next),
                6 => Input::Ui(Intent::Lighting {
                    glasses: next() % 2 == 0,
                }),
                7 => Input::Ui(Intent::AcceptRules),
                8 => Input::Ui(Intent::Shoot),
                9 => Input::Captured { shot_no: shot },
                10 => checked(shot, if next() % 2 == 0 { passing() } else { failing() }),
                11 => liveness_fail(shot),
                12 => Input::Ui(Intent::Retake),
                13 => Input::Ui(Intent::UseThis),
                14 => Input::Ui(Intent::Choose(1)),
                15 => Input::OrderCreated {
                    order_id: "o-1".into(),
                    qr_url: "u".into(),
                },
                16 => Input::OrderStatus {
                    order_id: order,
                    status: OrderStatus::Paid,
                },
                17 => Input::Enqueued { job_id: "j".into() },
                18 => Input::EnqueueFailed { reason: "x".into() },
                19 => Input::Ui(Intent::Cancel),
                20 => fault(if next() % 2 == 0 {
                    Device::Camera
                } else {
                    Device::Store
                }),
                21 => Input::DeviceRecovered {
                    device: if next() % 2 == 0 {
                        Device::Camera
                    } else {
                        Device::Store
                    },
                },
                22 => Input::Ui(Intent::Continue),
                23 => Input::Ui(Intent::OpenDrafts),
                24 => Input::Ui(Intent::ServiceRequest),
                25 => Input::ServiceKey,
                26 => Input::Ui(Intent::Service(ServiceIntent::PinDigit((next() % 10) as u8))),
                27 => Input::Ui(Intent::Service(ServiceIntent::Exit)),
                28 => Input::Ui(Intent::Service(ServiceIntent::Open(
                    [
                        ServicePageKind::Seat,
                        ServicePageKind::SelfTest,
                        ServicePageKind::Tickets,
                        ServicePageKind::Menu,
                    ][(next() % 4) as usize],
                ))),
                _ => Input::Ui(Intent::Service(ServiceIntent::SeatJogUp)),
            };
            let by_time = next() % 3 == 0;
            let enqueued = !by_time && matches!(input, Input::Enqueued { .. });
            let verified = !by_time && matches!(input, Input::TicketVerified(Ok(_)));
            let was_done = r.state() == StateKind::Done;
            let was_state = r.state();
            let was_open = r.s.open;
            visited.insert(r.state());
            let fx = if by_time {
                r.advance(Duration::from_secs(next() % 200))
            } else {
                r.input(input)
            };
            // Leaving the attract screen starts a session, unless it is for service mode (no session).
            if was_attract
                && !matches!(
                    r.state(),
                    StateKind::Attract | StateKind::OutOfService | StateKind::Service
                )
            {
                started += 1;
            }
            ended += fx
                .iter()
                .filter(|e| matches!(e, Effect::SessionEnded { .. }))
                .count();
            assert_eq!(
                ended + usize::from(r.s.open),
                started,
                "SessionEnded exactly once per session"
            );
            for (i, e) in fx.iter().enumerate() {
                if let Effect::ConsumeShot { shot_no, .. } = e {
                    assert!(matches!(
                        fx[i + 1],
                        Effect::SetLights(LightMode::Shoot | LightMode::ShootGlasses)
                    ));
                    assert_eq!(fx[i + 2], Effect::Capture { shot_no: *shot_no });
                }
            }
            if r.state() == StateKind::Service || was_state == StateKind::Service {
                assert!(
                    !fx.iter()
                        .any(|e| matches!(e, Effect::ConsumeShot { .. } | Effect::Capture { .. })),
                    "a shot consumed in service mode: {fx:?}"
                );
            }
            if r.state() == StateKind::Service {
                assert!(!r.s.open, "no student session runs in service mode");
                if was_state != StateKind::Service {
                    assert!(!was_open, "service mode entered mid-session");
                    assert!(
                        matches!(
                            was_state,
                            StateKind::Attract | StateKind::OutOfService | StateKind::Ended
                        ),
                        "service mode entered from {was_state:?}"
                    );
                }
            }
            let text = ui::text::render_in(&r.s.view(), Lang::Zh);
            if !matches!(r.state(), StateKind::Done | StateKind::Rejected) {
                assert!(!text.contains("完成"), "only Done says 完成: {text}");
            }
            if r.state() == StateKind::Done && !was_done {
                assert!(enqueued, "Done only right after Enqueued");
            }
            match r.s.ticket.as_ref() {
                // A new ticket status from the store: the walk's template may say anything.
                Some(ctx) if verified => last_used = ctx.shots_used,
                Some(ctx) => {
                    assert!(ctx.shots_used >= last_used, "a shot was given back");
                    last_used = ctx.shots_used;
                }
                None => last_used = 0,
            }
        }
        assert!(
            started > 10,
            "the walk should start many sessions, started {started}"
        );
    }
    assert!(
        visited.contains(&StateKind::Service),
        "the walk reaches service mode"
    );
}
