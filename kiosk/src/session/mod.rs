//! The session state machine (PRODUCT.md section 2). Pure: time is passed in, effects come out, no IO.
//!
//! Shaped like quinn-proto's connection: [`Session::handle`] takes an [`Input`] at `now`,
//! [`Session::handle_timeout`] is called when [`Session::poll_timeout`] says so, and both return the
//! [`Effect`]s the shell must execute in order. After every call the shell renders [`Session::view`].
//!
//! What it deliberately does not do: read the clock, touch devices, the store or the network, generate
//! ids, or hold texts of fixed screens (those live in `ui::strings`). Two invariants are kept here and
//! tested in `tests.rs`: a shot is consumed (`Effect::ConsumeShot`) before the shutter fires and never
//! given back, and the Done screen exists only after the store answered `Input::Enqueued`.
//!
//! Service mode (PRODUCT.md section 7) is a state of the same machine: entered from an idle screen only
//! (Attract, OutOfService, Ended), by the PIN pad or the service key, so it can never interrupt a
//! student; its pages are filled by the shell ([`Effect::Service`] answered by
//! [`Input::ServiceUpdate`]); no session starts and no shot is consumed while it is shown.
//!
//! A "session" starts when someone leaves the attract screen (a touch or a scanned code) and ends with
//! exactly one `Effect::SessionEnded`, emitted when its outcome is decided (notice screens that follow it,
//! like a rejection, belong to no session any more).

mod config;
mod effect;
mod input;
#[cfg(test)]
mod tests;

use std::time::{Duration, Instant};

use serde::Serialize;
use ui::{
    CheckLine, EndReason, Lang, PayOrder, PhotoTypeOption, Screen, SeatMotion, ServiceIntent, ServicePage,
    ServicePageKind, View,
};

pub use config::{PaymentMode, PhotoTypeConfig, PinHash, ServiceConfig, SessionConfig, Timeouts};
pub use effect::{Effect, LightMode, Outcome, PreviewPurpose, SeatCommand, ServiceCommand};
pub use input::{
    Candidate, Device, EyeLine, Guidance, GuidanceLine, Input, Intent, OrderStatus, TicketStatus,
};

use crate::ticket::{Ticket, TicketId};
use crate::vision::{CheckResult, CheckStatus, Verdict};
use config::secs;

/// The state without its data, for tests, status output and logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum StateKind {
    Attract,
    Scan,
    Verify,
    /// A refused ticket, shown for a few seconds.
    Rejected,
    Confirm,
    PhotoType,
    Lighting,
    Rules,
    Framing,
    Countdown,
    Capture,
    /// The still failed; the shot stays used.
    CaptureFailed,
    Checking,
    Result,
    /// Locked after repeated liveness failures; drafts offered.
    Locked,
    /// Cool-down after repeated check failures; drafts offered.
    CoolingDown,
    Choose,
    Pay,
    /// The job is being committed.
    Finishing,
    Done,
    /// A fixed end notice (wrong info, unpaid, out of shots, payment failed ...).
    Ended,
    OutOfService,
    /// Technician service mode (PIN pad first); no student session runs meanwhile.
    Service,
}

#[derive(Clone, Debug)]
enum State {
    Attract,
    Scan,
    Verify,
    Rejected {
        code: String,
        message_zh: String,
        message_en: String,
    },
    Confirm,
    PhotoType {
        selected: String,
    },
    Lighting,
    Rules,
    Framing,
    Countdown,
    Capture,
    CaptureFailed,
    Checking,
    Result {
        passed: bool,
        liveness_failed: bool,
        items: Vec<CheckLine>,
        calm_until: Option<Instant>,
    },
    Locked,
    CoolingDown,
    Choose,
    Pay {
        order: Option<PayOrder>,
        poll_at: Option<Instant>,
    },
    Finishing,
    Done {
        job_id: String,
    },
    Ended(EndReason),
    OutOfService,
    Service(ServicePage),
}

impl State {
    fn kind(&self) -> StateKind {
        match self {
            State::Attract => StateKind::Attract,
            State::Scan => StateKind::Scan,
            State::Verify => StateKind::Verify,
            State::Rejected { .. } => StateKind::Rejected,
            State::Confirm => StateKind::Confirm,
            State::PhotoType { .. } => StateKind::PhotoType,
            State::Lighting => StateKind::Lighting,
            State::Rules => StateKind::Rules,
            State::Framing => StateKind::Framing,
            State::Countdown => StateKind::Countdown,
            State::Capture => StateKind::Capture,
            State::CaptureFailed => StateKind::CaptureFailed,
            State::Checking => StateKind::Checking,
            State::Result { .. } => StateKind::Result,
            State::Locked => StateKind::Locked,
            State::CoolingDown => StateKind::CoolingDown,
            State::Choose => StateKind::Choose,
            State::Pay { .. } => StateKind::Pay,
            State::Finishing => StateKind::Finishing,
            State::Done { .. } => StateKind::Done,
            State::Ended(_) => StateKind::Ended,
            State::OutOfService => StateKind::OutOfService,
            State::Service(_) => StateKind::Service,
        }
    }
}

/// What the session knows about the ticket in hand.
#[derive(Clone, Debug)]
struct TicketCtx {
    ticket: Ticket,
    /// Counted up at every `ConsumeShot`, never down.
    shots_used: u8,
    shots_total: u8,
    liveness_failures: u8,
    failures_in_a_row: u8,
    candidates: Vec<Candidate>,
    /// Photo types offered: the ticket's types that the config knows, in config order.
    offered: Vec<PhotoTypeConfig>,
    /// The chosen spec id.
    spec: String,
    glasses: Option<bool>,
    /// The shot in flight (Capture, Checking) or just checked (Result).
    current_shot: u8,
    /// The candidate being paid for or filed.
    chosen: Option<Candidate>,
}

impl TicketCtx {
    fn shots_left(&self) -> u8 {
        self.shots_total.saturating_sub(self.shots_used)
    }

    fn drafts(&self) -> u8 {
        u8::try_from(self.candidates.len()).unwrap_or(u8::MAX)
    }
}

/// A device fault as the out-of-service screen shows it.
#[derive(Clone, Debug)]
struct Fault {
    device: Device,
    reason_zh: String,
    reason_en: String,
    hint_zh: String,
    hint_en: String,
}

/// The kiosk's session engine. See the module documentation.
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    state: State,
    /// When the current state gives up (or, in Countdown, fires the shutter).
    deadline: Option<Instant>,
    /// The latest time handed in; views are computed against it.
    now: Instant,
    lang: Lang,
    /// Active device faults, oldest first; the newest is shown.
    faults: Vec<Fault>,
    /// A session is in progress and its `SessionEnded` is still owed.
    open: bool,
    ticket: Option<TicketCtx>,
    seat: SeatMotion,
    guidance: Guidance,
    /// Outcome to record if a session that hit a lockout is then left without filing.
    sticky_outcome: Option<Outcome>,
    /// Digits typed on the service PIN pad so far (never shown, never logged).
    pin_entry: Vec<u8>,
    /// Wrong PINs in a row; kept across visits to the pad so walking away does not reset the count.
    pin_failures: u8,
    /// The pad refuses digits until then.
    pin_locked_until: Option<Instant>,
    /// Effects of the call in progress.
    fx: Vec<Effect>,
}

impl Session {
    /// A session engine on the attract screen. The shell should also apply [`Session::startup_effects`].
    pub fn new(config: SessionConfig, now: Instant) -> Session {
        Session {
            config,
            state: State::Attract,
            deadline: None,
            now,
            lang: Lang::default(),
            faults: Vec::new(),
            open: false,
            ticket: None,
            seat: SeatMotion::Still,
            guidance: Guidance::default(),
            sticky_outcome: None,
            pin_entry: Vec::new(),
            pin_failures: 0,
            pin_locked_until: None,
            fx: Vec::new(),
        }
    }

    /// Service mode's settings (PIN, lockout, idle timeout).
    pub fn service_config(&self) -> &ServiceConfig {
        &self.config.service
    }

    /// Carries the PIN pad's state over a restart (the shell reads it back from the audit trail), so
    /// that switching the kiosk off and on is no way around the lockout: `failures` wrong PINs in a row
    /// so far, and how much of a lockout is left.
    pub fn restore_pin_state(&mut self, now: Instant, failures: u8, locked_for: Option<Duration>) {
        self.now = self.now.max(now);
        self.pin_failures = failures;
        self.pin_locked_until = locked_for.filter(|d| !d.is_zero()).map(|d| self.now + d);
    }

    /// The effects that put the devices into the attract state; `new` cannot return effects.
    pub fn startup_effects(&self) -> Vec<Effect> {
        vec![
            Effect::SetLights(LightMode::Idle),
            Effect::StartPreview(PreviewPurpose::QrScan),
        ]
    }

    pub fn state(&self) -> StateKind {
        self.state.kind()
    }

    /// The ticket of the session in progress, for the shell's logs and status output.
    pub fn ticket_id(&self) -> Option<TicketId> {
        self.ctx().map(|c| c.ticket.id)
    }

    /// When [`Session::handle_timeout`] should be called next, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let poll_at = match &self.state {
            State::Pay { poll_at, .. } => *poll_at,
            _ => None,
        };
        [self.deadline, poll_at, self.display_tick()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Feeds one input at `now`; returns the effects to execute in order.
    pub fn handle(&mut self, now: Instant, input: Input) -> Vec<Effect> {
        self.now = self.now.max(now);
        match input {
            Input::Ui(Intent::ToggleLanguage) => self.lang = self.lang.toggled(),
            Input::Ui(Intent::Cancel) => self.on_cancel(),
            Input::DeviceFault {
                device,
                reason_zh,
                reason_en,
                hint_zh,
                hint_en,
            } => self.on_fault(Fault {
                device,
                reason_zh,
                reason_en,
                hint_zh,
                hint_en,
            }),
            Input::DeviceRecovered { device } => self.on_recovered(device),
            other => self.on_input(other),
        }
        std::mem::take(&mut self.fx)
    }

    /// Advances timers to `now`: countdown, calm period, payment polling, state timeouts.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<Effect> {
        self.now = self.now.max(now);
        let poll_every = self.poll_every();
        if let State::Pay {
            order: Some(order),
            poll_at: Some(at),
        } = &mut self.state
            && *at <= self.now
        {
            *at = self.now + poll_every;
            self.fx.push(Effect::PollOrder {
                order_id: order.order_id.clone(),
            });
        }
        if self.deadline.is_some_and(|d| d <= self.now) {
            self.deadline = None;
            self.on_deadline();
        }
        std::mem::take(&mut self.fx)
    }

    // ----- transitions -------------------------------------------------------------------------------

    fn on_input(&mut self, input: Input) {
        let kind = self.state.kind();
        match (kind, input) {
            (StateKind::Attract, Input::Ui(Intent::Start)) => {
                self.open = true;
                self.go(State::Scan);
            }
            (StateKind::Attract | StateKind::Scan, Input::Qr(bytes)) => {
                self.open = true;
                self.fx.push(Effect::VerifyTicket(bytes));
                self.go(State::Verify);
            }
            (StateKind::Verify, Input::TicketVerified(Ok(status))) => self.on_verified(status),
            (StateKind::Verify, Input::TicketVerified(Err(rejection))) => {
                self.end(Outcome::Rejected(rejection.code()));
                self.go(State::Rejected {
                    code: rejection.code().to_string(),
                    message_zh: rejection.message_zh(),
                    message_en: rejection.message_en(),
                });
            }
            (StateKind::Confirm, Input::Ui(Intent::Confirm)) => self.on_confirmed(),
            (StateKind::Confirm, Input::Ui(Intent::WrongInfo)) => self.end_with_notice(EndReason::WrongInfo),
            (StateKind::PhotoType, Input::Ui(Intent::SelectPhotoType(id))) => {
                let offered = self.ctx().is_some_and(|c| c.offered.iter().any(|p| p.id == id));
                if let (true, State::PhotoType { selected }) = (offered, &mut self.state) {
                    *selected = id;
                }
            }
            (StateKind::PhotoType, Input::Ui(Intent::Next)) => {
                let State::PhotoType { selected } = &self.state else {
                    return;
                };
                let selected = selected.clone();
                if let Some(ctx) = self.ticket.as_mut() {
                    ctx.spec = selected;
                    self.go(State::Lighting);
                }
            }
            (StateKind::Lighting, Input::Ui(Intent::Lighting { glasses })) => {
                if let Some(ctx) = self.ticket.as_mut() {
                    ctx.glasses = Some(glasses);
                }
                self.fx.push(Effect::SetLights(preview_lights(glasses)));
                self.go(State::Rules);
            }
            (StateKind::Rules, Input::Ui(Intent::AcceptRules)) => self.enter_framing(),
            (StateKind::Framing, Input::Guidance(guidance)) => self.guidance = guidance,
            (StateKind::Framing, Input::Ui(Intent::SeatUp)) => self.seat(SeatMotion::Up),
            (StateKind::Framing, Input::Ui(Intent::SeatDown)) => self.seat(SeatMotion::Down),
            (StateKind::Framing, Input::Ui(Intent::SeatStop)) => self.seat(SeatMotion::Still),
            (StateKind::Framing, Input::Ui(Intent::Shoot))
                if self.ctx().is_some_and(|c| c.shots_left() > 0) =>
            {
                // The seat must not move under a student who is holding still for the shutter.
                self.seat(SeatMotion::Still);
                self.go(State::Countdown);
            }
            (
                StateKind::Framing
                | StateKind::CaptureFailed
                | StateKind::Result
                | StateKind::Locked
                | StateKind::CoolingDown,
                Input::Ui(Intent::OpenDrafts),
            ) if self.ctx().is_some_and(|c| !c.candidates.is_empty()) => {
                self.seat(SeatMotion::Still);
                self.go(State::Choose);
            }
            (StateKind::Capture, Input::Captured { shot_no }) => {
                if let Some(ctx) = self.ctx().filter(|c| c.current_shot == shot_no) {
                    let glasses = ctx.glasses.unwrap_or(false);
                    let spec = ctx.spec.clone();
                    self.fx.push(Effect::SetLights(preview_lights(glasses)));
                    self.fx.push(Effect::RunChecks { shot_no, spec });
                    self.go(State::Checking);
                }
            }
            // The reason is the shell's to log; the student is told the shot still counts.
            (StateKind::Capture, Input::CaptureFailed { reason: _ }) => self.go(State::CaptureFailed),
            (StateKind::CaptureFailed, Input::Ui(Intent::Retake))
                if self.ctx().is_some_and(|c| c.shots_left() > 0) =>
            {
                self.enter_framing();
            }
            (StateKind::CaptureFailed, Input::Ui(Intent::Continue))
                if self.ctx().is_some_and(|c| c.shots_left() == 0) =>
            {
                self.after_last_shot();
            }
            (
                StateKind::Checking,
                Input::Checked {
                    shot_no,
                    verdict,
                    liveness_failed,
                },
            ) if self.ctx().is_some_and(|c| c.current_shot == shot_no) => {
                self.on_checked(&verdict, liveness_failed);
            }
            (StateKind::Result, Input::Ui(intent)) => self.on_result_intent(intent),
            (StateKind::Locked | StateKind::CoolingDown, Input::Ui(Intent::Continue)) => {
                let outcome = self.sticky_outcome.take().unwrap_or(Outcome::Cancelled);
                self.abandon(outcome);
            }
            (StateKind::Choose, Input::Ui(Intent::Choose(shot_no))) => {
                let found = self
                    .ctx()
                    .and_then(|c| c.candidates.iter().find(|k| k.shot_no == shot_no).cloned());
                if let Some(candidate) = found {
                    self.proceed_with(candidate);
                }
            }
            (StateKind::Pay, Input::OrderCreated { order_id, qr_url }) => {
                let next_poll = self.now + self.poll_every();
                match &mut self.state {
                    State::Pay {
                        order: order @ None,
                        poll_at,
                    } => {
                        *order = Some(PayOrder { order_id, qr_url });
                        *poll_at = Some(next_poll);
                    }
                    // A second order for the same payment: close it so it cannot be paid.
                    _ => self.fx.push(Effect::CancelOrder { order_id }),
                }
            }
            (StateKind::Pay, Input::OrderStatus { order_id, status })
                if self.current_order_id().as_deref() == Some(order_id.as_str()) =>
            {
                match status {
                    OrderStatus::Pending => {}
                    OrderStatus::Paid => self.finish(Some(order_id)),
                    OrderStatus::Declined | OrderStatus::Closed => {
                        self.end_with_notice(EndReason::PaymentDeclined)
                    }
                }
            }
            (StateKind::Pay, Input::OrderFailed { reason: _ }) => {
                self.end_with_notice(EndReason::PaymentFailed)
            }
            // An order created after its session was left: nobody will pay it, so close it.
            (_, Input::OrderCreated { order_id, .. }) => self.fx.push(Effect::CancelOrder { order_id }),
            (StateKind::Finishing, Input::Enqueued { job_id }) => {
                self.end(Outcome::Completed);
                self.go(State::Done { job_id });
            }
            (StateKind::Finishing, Input::EnqueueFailed { reason: _ }) => {
                self.end(Outcome::EnqueueFailed);
                self.store_failed();
            }
            (StateKind::Rejected | StateKind::Ended | StateKind::Done, Input::Ui(Intent::Continue)) => {
                self.go_attract()
            }
            // Service mode only from an idle screen: never in the middle of a student's session.
            (
                StateKind::Attract | StateKind::OutOfService | StateKind::Ended,
                Input::Ui(Intent::ServiceRequest),
            ) if self.config.service.pin_hash.is_some() => self.enter_service(false),
            (StateKind::Attract | StateKind::OutOfService | StateKind::Ended, Input::ServiceKey) => {
                self.enter_service(true)
            }
            (StateKind::Service, Input::ServiceKey) => {
                if matches!(self.state, State::Service(ServicePage::Pin { .. })) {
                    self.pin_entry.clear();
                    self.audit("service_entered", serde_json::json!({ "via": "key" }));
                    self.go_service(ServicePage::Menu);
                }
            }
            (StateKind::Service, Input::Ui(Intent::Service(intent))) => self.on_service(intent),
            (StateKind::Service, Input::ServiceUpdate(page)) => {
                if let State::Service(current) = &mut self.state
                    && !matches!(current, ServicePage::Pin { .. } | ServicePage::Menu)
                    && page_kind(current) == page_kind(&page)
                {
                    *current = page;
                }
            }
            // Everything else means nothing in this state: late answers, a second QR while verifying,
            // buttons of a screen that is gone.
            _ => {}
        }
    }

    fn on_result_intent(&mut self, intent: Intent) {
        let State::Result {
            passed, calm_until, ..
        } = &self.state
        else {
            return;
        };
        let (passed, calm_over) = (*passed, calm_until.is_none_or(|t| t <= self.now));
        let Some(ctx) = self.ctx() else { return };
        let shots_left = ctx.shots_left();
        let this_shot = ctx
            .candidates
            .iter()
            .find(|c| c.shot_no == ctx.current_shot)
            .cloned();
        match intent {
            Intent::Retake if shots_left > 0 && calm_over => self.enter_framing(),
            Intent::UseThis if passed => {
                if let Some(candidate) = this_shot {
                    self.proceed_with(candidate);
                }
            }
            Intent::Continue if shots_left == 0 && !passed => self.after_last_shot(),
            _ => {}
        }
    }

    fn on_verified(&mut self, status: TicketStatus) {
        let TicketStatus {
            ticket,
            shots_used,
            shots_granted,
            liveness_failures,
            failures_in_a_row,
            candidates,
        } = status;
        let allowed = if ticket.shots_allowed == 0 {
            self.config.default_shots
        } else {
            ticket.shots_allowed
        };
        let offered: Vec<PhotoTypeConfig> = self
            .config
            .photo_types
            .iter()
            .filter(|p| ticket.photo_types.contains(&p.id))
            .cloned()
            .collect();
        let spec = offered
            .iter()
            .find(|p| p.id == self.config.default_photo_type)
            .or(offered.first())
            .map(|p| p.id.clone())
            .unwrap_or_default();
        self.ticket = Some(TicketCtx {
            ticket,
            shots_used,
            shots_total: allowed.saturating_add(shots_granted),
            liveness_failures,
            failures_in_a_row,
            candidates,
            offered,
            spec,
            glasses: None,
            current_shot: 0,
            chosen: None,
        });
        if self.ctx().is_some_and(|c| c.offered.is_empty()) {
            self.end_with_notice(EndReason::NoPhotoType);
        } else {
            self.go(State::Confirm);
        }
    }

    fn on_confirmed(&mut self) {
        let Some(ctx) = self.ctx() else { return };
        // Checked here, before any shot is used, rather than at the pay step: an unpaid student must not
        // burn a shot on a photo that cannot be filed.
        if self.config.payment == PaymentMode::Prepaid && !ctx.ticket.paid {
            self.end_with_notice(EndReason::Unpaid);
        } else if ctx.shots_left() == 0 {
            self.after_last_shot();
        } else {
            let selected = ctx.spec.clone();
            self.go(State::PhotoType { selected });
        }
    }

    fn enter_framing(&mut self) {
        let glasses = self.ctx().and_then(|c| c.glasses).unwrap_or(false);
        self.guidance = Guidance::default();
        self.fx.push(Effect::StartPreview(PreviewPurpose::Framing));
        self.fx.push(Effect::SetLights(preview_lights(glasses)));
        self.go(State::Framing);
    }

    fn seat(&mut self, motion: SeatMotion) {
        let command = match motion {
            SeatMotion::Up => SeatCommand::Up,
            SeatMotion::Down => SeatCommand::Down,
            // Stopping a seat that is not moving is noise on the bus; skip it.
            SeatMotion::Still if self.seat == SeatMotion::Still => return,
            SeatMotion::Still => SeatCommand::Stop,
        };
        self.seat = motion;
        self.fx.push(Effect::Seat(command));
    }

    /// Countdown is over: consume the shot durably, then light and fire.
    fn fire(&mut self) {
        let Some(ctx) = self.ticket.as_mut() else {
            return self.go_attract();
        };
        ctx.shots_used = ctx.shots_used.saturating_add(1);
        let shot_no = ctx.shots_used;
        ctx.current_shot = shot_no;
        let (ticket, glasses) = (ctx.ticket.id, ctx.glasses.unwrap_or(false));
        self.fx.push(Effect::ConsumeShot { ticket, shot_no });
        self.fx.push(Effect::SetLights(if glasses {
            LightMode::ShootGlasses
        } else {
            LightMode::Shoot
        }));
        self.fx.push(Effect::Capture { shot_no });
        self.go(State::Capture);
    }

    fn on_checked(&mut self, verdict: &Verdict, liveness_failed: bool) {
        let (liveness_limit, fail_limit) = (self.config.liveness_limit, self.config.fail_limit);
        let minutes = self.config.cooldown_minutes;
        let calm_until = Some(self.now + secs(self.config.calm_secs));
        let Some(ctx) = self.ticket.as_mut() else { return };
        let (ticket, shot_no) = (ctx.ticket.id, ctx.current_shot);
        // A shot that fooled the checks but not the liveness test is never a candidate.
        let passed = verdict.passed() && !liveness_failed;
        let result = State::Result {
            passed,
            liveness_failed,
            items: check_lines(verdict),
            calm_until: None,
        };
        let next = if passed {
            let spec = ctx.spec.clone();
            ctx.candidates.push(Candidate {
                shot_no,
                spec: spec.clone(),
            });
            ctx.failures_in_a_row = 0;
            self.fx.push(Effect::StoreCandidate {
                ticket,
                shot_no,
                spec,
            });
            result
        } else if liveness_failed {
            // A liveness failure counts towards the lock only, even when other checks failed too: it
            // is the graver finding and must not be diluted into a cool-down.
            ctx.liveness_failures = ctx.liveness_failures.saturating_add(1);
            self.fx.push(Effect::RecordLivenessFailure { ticket, shot_no });
            if liveness_limit > 0 && ctx.liveness_failures >= liveness_limit {
                self.fx.push(Effect::LockTicket { ticket });
                self.sticky_outcome = Some(Outcome::Locked);
                State::Locked
            } else {
                with_calm(result, calm_until)
            }
        } else {
            ctx.failures_in_a_row = ctx.failures_in_a_row.saturating_add(1);
            self.fx.push(Effect::RecordCheckFailure { ticket, shot_no });
            // A cool-down only means something while shots remain: with none left the student is told
            // they are out of shots, not to come back at a time when they still could not shoot.
            if fail_limit > 0 && ctx.failures_in_a_row >= fail_limit && ctx.shots_left() > 0 {
                // The store resets its count with the cool-down; mirror it.
                ctx.failures_in_a_row = 0;
                self.fx.push(Effect::StartCooldown { ticket, minutes });
                self.sticky_outcome = Some(Outcome::CoolingDown);
                State::CoolingDown
            } else {
                with_calm(result, calm_until)
            }
        };
        self.go(next);
    }

    /// No shot left: the drafts if there are any, else the end.
    fn after_last_shot(&mut self) {
        if self.ctx().is_some_and(|c| !c.candidates.is_empty()) {
            self.go(State::Choose);
        } else {
            self.end_with_notice(EndReason::OutOfShots);
        }
    }

    /// A candidate is chosen: pay if the mode asks for it, then file.
    fn proceed_with(&mut self, candidate: Candidate) {
        let Some(ctx) = self.ticket.as_mut() else { return };
        ctx.chosen = Some(candidate.clone());
        let (ticket, paid) = (ctx.ticket.id, ctx.ticket.paid);
        match self.config.payment {
            PaymentMode::None => self.finish(None),
            // Normally stopped at Confirm; a ticket that reaches here unpaid is still not filed.
            PaymentMode::Prepaid if !paid => self.end_with_notice(EndReason::Unpaid),
            PaymentMode::Prepaid => self.finish(None),
            PaymentMode::Gateway { amount_fen, .. } => {
                self.fx.push(Effect::CreateOrder {
                    ticket,
                    shot_no: candidate.shot_no,
                    amount_fen,
                });
                self.go(State::Pay {
                    order: None,
                    poll_at: None,
                });
            }
        }
    }

    fn finish(&mut self, order_id: Option<String>) {
        let Some(ctx) = self.ctx() else { return };
        let Some(chosen) = ctx.chosen.clone() else { return };
        self.fx.push(Effect::Enqueue {
            ticket: ctx.ticket.id,
            shot_no: chosen.shot_no,
            spec: chosen.spec,
            order_id,
        });
        self.go(State::Finishing);
    }

    fn on_deadline(&mut self) {
        match self.state.kind() {
            StateKind::Attract | StateKind::OutOfService => {}
            StateKind::Service => self.leave_service("timeout"),
            StateKind::Countdown => self.fire(),
            StateKind::Rejected | StateKind::Ended | StateKind::Done => self.go_attract(),
            StateKind::Locked | StateKind::CoolingDown => {
                let outcome = self.sticky_outcome.take().unwrap_or(Outcome::TimedOut);
                self.abandon(outcome);
            }
            // The order is closed by `end_with_notice`, so a payment arriving later files nothing.
            StateKind::Pay => self.end_with_notice(EndReason::PaymentTimedOut),
            // The store neither committed nor failed in time: the kiosk cannot promise anything, so it
            // says nothing of completion and stops taking students.
            StateKind::Finishing => {
                self.end(Outcome::EnqueueFailed);
                self.store_failed();
            }
            _ => {
                let outcome = self.sticky_outcome.take().unwrap_or(Outcome::TimedOut);
                self.abandon(outcome);
            }
        }
    }

    fn on_cancel(&mut self) {
        match self.state.kind() {
            // Nothing to cancel; or an answer that decides what was consumed or filed is in flight
            // (a shutter, the checks of a used shot, the commit): those last seconds and end by
            // themselves or by their timeout.
            StateKind::Attract
            | StateKind::OutOfService
            | StateKind::Service
            | StateKind::Capture
            | StateKind::Checking
            | StateKind::Finishing => {}
            StateKind::Rejected | StateKind::Ended | StateKind::Done => self.go_attract(),
            _ => {
                let outcome = self.sticky_outcome.take().unwrap_or(Outcome::Cancelled);
                self.abandon(outcome);
            }
        }
    }

    fn on_fault(&mut self, fault: Fault) {
        let device = fault.device;
        self.faults.retain(|f| f.device != device);
        self.faults.push(fault);
        match self.state.kind() {
            // A technician in service mode is often the cause (a cable pulled to test) and the cure: the
            // fault is remembered and shown when service mode is left.
            StateKind::OutOfService | StateKind::Service => {}
            // The commit is in flight and decides what the student is told; wait for it unless the
            // store itself is what failed. Done leads to out of service once the receipt was seen.
            StateKind::Finishing if device != Device::Store => {}
            StateKind::Done => {}
            _ => {
                self.release_devices();
                self.end(Outcome::Fault(device));
                self.go_out_of_service();
            }
        }
    }

    fn on_recovered(&mut self, device: Device) {
        self.faults.retain(|f| f.device != device);
        if self.faults.is_empty() && self.state.kind() == StateKind::OutOfService {
            self.go_attract();
        }
    }

    // ----- helpers -----------------------------------------------------------------------------------

    fn ctx(&self) -> Option<&TicketCtx> {
        self.ticket.as_ref()
    }

    fn poll_every(&self) -> Duration {
        match self.config.payment {
            PaymentMode::Gateway { poll_every_secs, .. } => secs(poll_every_secs.max(1)),
            _ => Duration::from_secs(1),
        }
    }

    fn current_order_id(&self) -> Option<String> {
        match &self.state {
            State::Pay {
                order: Some(order), ..
            } => Some(order.order_id.clone()),
            _ => None,
        }
    }

    fn timeout_of(&self, state: &State) -> Option<Duration> {
        let t = &self.config.timeouts;
        let s = match state {
            State::Attract | State::OutOfService => return None,
            State::Service(_) => self.config.service.idle_secs,
            State::Scan => t.scan,
            State::Verify => t.verify,
            State::Rejected { .. } => t.rejected,
            State::Confirm => t.confirm,
            State::PhotoType { .. } => t.photo_type,
            State::Lighting => t.lighting,
            State::Rules => t.rules,
            State::Framing => t.framing,
            State::Countdown => self.config.countdown_secs,
            State::Capture => t.capture,
            State::CaptureFailed | State::Result { .. } => t.result,
            State::Checking => t.checking,
            State::Locked | State::CoolingDown | State::Ended(_) => t.notice,
            State::Choose => t.choose,
            State::Pay { .. } => t.pay,
            State::Finishing => t.finishing,
            State::Done { .. } => t.done,
        };
        Some(secs(s))
    }

    fn go(&mut self, state: State) {
        self.deadline = self.timeout_of(&state).map(|d| self.now + d);
        self.state = state;
    }

    /// Emits `SessionEnded` if a session is open; a no-op otherwise, which is what keeps it exactly once.
    fn end(&mut self, outcome: Outcome) {
        if std::mem::take(&mut self.open) {
            let ticket = self.ctx().map(|c| c.ticket.id);
            self.fx.push(Effect::SessionEnded { ticket, outcome });
        }
    }

    fn end_with_notice(&mut self, reason: EndReason) {
        let outcome = match reason {
            EndReason::WrongInfo => Outcome::WrongInfo,
            EndReason::Unpaid => Outcome::Unpaid,
            EndReason::OutOfShots => Outcome::OutOfShots,
            EndReason::NoPhotoType => Outcome::NoPhotoType,
            EndReason::PaymentDeclined => Outcome::PaymentDeclined,
            EndReason::PaymentFailed => Outcome::PaymentFailed,
            EndReason::PaymentTimedOut => Outcome::PaymentTimedOut,
        };
        self.release_devices();
        self.end(outcome);
        self.go(State::Ended(reason));
    }

    /// Stops what a session may have left running: a moving seat, an open payment order.
    fn release_devices(&mut self) {
        self.seat(SeatMotion::Still);
        if let Some(order_id) = self.current_order_id() {
            self.fx.push(Effect::CancelOrder { order_id });
            self.state = State::Pay {
                order: None,
                poll_at: None,
            };
        }
    }

    fn abandon(&mut self, outcome: Outcome) {
        self.release_devices();
        self.end(outcome);
        self.go_attract();
    }

    fn clear_session(&mut self) {
        self.ticket = None;
        self.guidance = Guidance::default();
        self.sticky_outcome = None;
        self.lang = Lang::default();
    }

    fn go_attract(&mut self) {
        if !self.faults.is_empty() {
            return self.go_out_of_service();
        }
        self.clear_session();
        self.fx.push(Effect::SetLights(LightMode::Idle));
        self.fx.push(Effect::StartPreview(PreviewPurpose::QrScan));
        self.go(State::Attract);
    }

    fn go_out_of_service(&mut self) {
        self.clear_session();
        self.fx.push(Effect::StopPreview);
        self.fx.push(Effect::SetLights(LightMode::Idle));
        self.go(State::OutOfService);
    }

    fn store_failed(&mut self) {
        let (text, hint) = (ui::strings::STORE_FAILED, ui::strings::STORE_FAILED_HINT);
        self.on_fault(Fault {
            device: Device::Store,
            reason_zh: text.zh.into(),
            reason_en: text.en.into(),
            hint_zh: hint.zh.into(),
            hint_en: hint.en.into(),
        });
    }

    /// The instant whose remaining whole seconds the screen shows, if any.
    fn display_target(&self) -> Option<Instant> {
        match &self.state {
            State::Result { calm_until, .. } => calm_until.filter(|t| *t > self.now),
            State::Service(ServicePage::Pin { .. }) => self.pin_locked_until.filter(|t| *t > self.now),
            State::Countdown
            | State::Pay { order: Some(_), .. }
            | State::Done { .. }
            | State::Rejected { .. }
            | State::Ended(_)
            | State::Locked
            | State::CoolingDown => self.deadline,
            _ => None,
        }
    }

    /// The next instant at which the shown number of seconds changes, so the view can be refreshed.
    fn display_tick(&self) -> Option<Instant> {
        let target = self.display_target()?;
        let left = whole_seconds_left(target, self.now);
        if left == 0 {
            return None;
        }
        Some(target - Duration::from_secs(u64::from(left - 1)))
    }

    // ----- service mode ------------------------------------------------------------------------------

    /// From an idle screen only (the caller's match guarantees it): no session is open, nothing of a
    /// student's is in hand.
    fn enter_service(&mut self, by_key: bool) {
        debug_assert!(!self.open, "service mode never starts inside a session");
        self.release_devices();
        self.clear_session();
        self.pin_entry.clear();
        // No QR scanning while a technician works: a code shown now must not start a session.
        self.fx.push(Effect::StopPreview);
        if by_key {
            self.audit("service_entered", serde_json::json!({ "via": "key" }));
            self.go_service(ServicePage::Menu);
        } else {
            self.go_service(ServicePage::Pin {
                entered: 0,
                wrong: false,
                locked_for: None,
            });
        }
    }

    fn go_service(&mut self, page: ServicePage) {
        if let Some(kind) = loads(&page) {
            self.fx.push(Effect::Service(ServiceCommand::Load(kind)));
        }
        self.go(State::Service(page));
    }

    fn leave_service(&mut self, why: &'static str) {
        self.pin_entry.clear();
        let entered = !matches!(self.state, State::Service(ServicePage::Pin { .. }));
        self.fx.push(Effect::Service(ServiceCommand::Leave));
        if entered {
            self.audit("service_exited", serde_json::json!({ "why": why }));
        }
        self.go_attract();
    }

    fn audit(&mut self, event: &'static str, detail: serde_json::Value) {
        self.fx.push(Effect::Audit {
            event,
            detail: detail.to_string(),
        });
    }

    fn on_service(&mut self, intent: ServiceIntent) {
        // Every touch keeps service mode open for another idle period.
        self.deadline = Some(self.now + secs(self.config.service.idle_secs));
        let State::Service(page) = &self.state else { return };
        if intent == ServiceIntent::Exit {
            return self.leave_service("exit");
        }
        if let ServicePage::Pin { .. } = page {
            return self.on_pin(intent);
        }
        let page_is = |k: ServicePageKind| page_kind(page) == k;
        let command = match intent {
            ServiceIntent::Open(kind) => {
                self.stop_jog();
                return self.go_service(empty_page(kind));
            }
            ServiceIntent::Back => {
                self.stop_jog();
                return self.go_service(ServicePage::Menu);
            }
            ServiceIntent::RunSelfTest if page_is(ServicePageKind::SelfTest) => ServiceCommand::SelfTest,
            ServiceIntent::SeatJogUp if page_is(ServicePageKind::Seat) => {
                ServiceCommand::SeatJog(SeatCommand::Up)
            }
            ServiceIntent::SeatJogDown if page_is(ServicePageKind::Seat) => {
                ServiceCommand::SeatJog(SeatCommand::Down)
            }
            ServiceIntent::SeatJogStop if page_is(ServicePageKind::Seat) => {
                ServiceCommand::SeatJog(SeatCommand::Stop)
            }
            ServiceIntent::LightsMode(mode)
                if page_is(ServicePageKind::Lights) && LIGHT_TEST_MODES.contains(&mode.as_str()) =>
            {
                ServiceCommand::Lights(mode)
            }
            ServiceIntent::Unlock { ticket } if listed(page, &ticket) => ServiceCommand::Unlock(ticket),
            ServiceIntent::GrantShot { ticket } if listed(page, &ticket) => ServiceCommand::GrantShot(ticket),
            ServiceIntent::RetryUploads if page_is(ServicePageKind::Uploads) => ServiceCommand::RetryUploads,
            ServiceIntent::RunCalibration if page_is(ServicePageKind::Calibrate) => ServiceCommand::Calibrate,
            // A button of another page, or a digit outside the pad.
            _ => return,
        };
        if let State::Service(page) = &mut self.state {
            match (page, &command) {
                (ServicePage::SelfTest { running, .. }, _) | (ServicePage::Calibrate { running, .. }, _) => {
                    *running = true
                }
                (ServicePage::Seat { motion, .. }, ServiceCommand::SeatJog(cmd)) => {
                    *motion = match cmd {
                        SeatCommand::Up => SeatMotion::Up,
                        SeatCommand::Down => SeatMotion::Down,
                        SeatCommand::Stop => SeatMotion::Still,
                    }
                }
                _ => {}
            }
        }
        self.fx.push(Effect::Service(command));
    }

    /// Leaving the seat page stops a jog whose release the screen may never send.
    fn stop_jog(&mut self) {
        if let State::Service(ServicePage::Seat { motion, .. }) = &self.state
            && *motion != SeatMotion::Still
        {
            self.fx
                .push(Effect::Service(ServiceCommand::SeatJog(SeatCommand::Stop)));
        }
    }

    fn on_pin(&mut self, intent: ServiceIntent) {
        let locked = self.pin_locked_until.is_some_and(|t| t > self.now);
        if !locked && self.pin_locked_until.take().is_some() {
            // The lockout is over: a fresh set of tries.
            self.pin_failures = 0;
        }
        match intent {
            ServiceIntent::PinDigit(d) if d <= 9 && !locked => {
                self.pin_entry.push(b'0' + d);
                if self.pin_entry.len() >= usize::from(self.config.service.pin_digits.max(1)) {
                    self.check_pin();
                } else if let State::Service(ServicePage::Pin { wrong, .. }) = &mut self.state {
                    *wrong = false;
                }
            }
            ServiceIntent::PinBackspace => {
                self.pin_entry.pop();
            }
            _ => {}
        }
    }

    fn check_pin(&mut self) {
        let entry = std::mem::take(&mut self.pin_entry);
        let ok = self
            .config
            .service
            .pin_hash
            .as_deref()
            .and_then(|h| PinHash::parse(h).ok())
            .is_some_and(|h| h.matches(&entry));
        if ok {
            self.pin_failures = 0;
            self.audit("service_entered", serde_json::json!({ "via": "pin" }));
            return self.go_service(ServicePage::Menu);
        }
        self.pin_failures = self.pin_failures.saturating_add(1);
        let tries = self.pin_failures;
        self.audit("service_pin_wrong", serde_json::json!({ "tries": tries }));
        if tries >= self.config.service.max_tries.max(1) {
            let lockout = self.config.service.lockout_secs;
            self.pin_locked_until = Some(self.now + secs(lockout));
            self.audit(
                "service_pin_locked",
                serde_json::json!({ "tries": tries, "seconds": lockout }),
            );
        }
        if let State::Service(ServicePage::Pin { wrong, .. }) = &mut self.state {
            *wrong = true;
        }
    }

    // ----- view --------------------------------------------------------------------------------------

    /// The view model of the current screen, as of the latest `now` handed in.
    pub fn view(&self) -> View {
        let ctx = self.ctx();
        let next_shot = ctx.map(|c| c.shots_used.saturating_add(1)).unwrap_or(1);
        let current = ctx.map(|c| c.current_shot).unwrap_or(0);
        let shots_left = ctx.map(TicketCtx::shots_left).unwrap_or(0);
        let drafts = ctx.map(TicketCtx::drafts).unwrap_or(0);
        let screen = match &self.state {
            State::Attract => Screen::Attract,
            State::Scan => Screen::Scan,
            State::Verify => Screen::Verifying,
            State::Rejected {
                code,
                message_zh,
                message_en,
            } => Screen::Rejected {
                code: code.clone(),
                message_zh: message_zh.clone(),
                message_en: message_en.clone(),
            },
            State::Confirm => Screen::Confirm {
                masked_name: ctx.map(|c| c.ticket.masked_name.clone()).unwrap_or_default(),
                school: ctx.map(|c| c.ticket.school.clone()).unwrap_or_default(),
                id_last4: ctx.map(|c| c.ticket.id_last4.clone()).unwrap_or_default(),
            },
            State::PhotoType { selected } => Screen::PhotoType {
                options: ctx
                    .map(|c| {
                        c.offered
                            .iter()
                            .map(|p| PhotoTypeOption {
                                id: p.id.clone(),
                                name_zh: p.name_zh.clone(),
                                name_en: p.name_en.clone(),
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                selected: selected.clone(),
            },
            State::Lighting => Screen::Lighting {
                glasses: ctx.and_then(|c| c.glasses),
            },
            State::Rules => Screen::Rules,
            State::Framing => Screen::Framing {
                shot_no: next_shot,
                guidance: self.guidance.clone(),
                seat: self.seat,
                drafts,
            },
            State::Countdown => Screen::Countdown { shot_no: next_shot },
            State::Capture => Screen::Capturing { shot_no: current },
            State::CaptureFailed => Screen::CaptureFailed {
                shot_no: current,
                shots_left,
                drafts,
            },
            State::Checking => Screen::Checking { shot_no: current },
            State::Result {
                passed,
                liveness_failed,
                items,
                calm_until,
            } => {
                let retake_in = calm_until
                    .map(|t| whole_seconds_left(t, self.now))
                    .filter(|s| *s > 0);
                Screen::Result {
                    shot_no: current,
                    passed: *passed,
                    liveness_failed: *liveness_failed,
                    items: items.clone(),
                    shots_left,
                    retake_enabled: shots_left > 0 && retake_in.is_none(),
                    retake_in: if shots_left > 0 { retake_in } else { None },
                    drafts,
                }
            }
            State::Locked => Screen::Locked {
                has_drafts: drafts > 0,
            },
            State::CoolingDown => Screen::CoolingDown {
                minutes: self.config.cooldown_minutes,
                has_drafts: drafts > 0,
            },
            State::Choose => Screen::Choose {
                candidates: ctx
                    .map(|c| c.candidates.iter().map(|k| k.shot_no).collect())
                    .unwrap_or_default(),
            },
            State::Pay { order, .. } => Screen::Pay {
                amount_fen: match self.config.payment {
                    PaymentMode::Gateway { amount_fen, .. } => amount_fen,
                    _ => 0,
                },
                order: order.clone(),
            },
            State::Finishing => Screen::Finishing,
            State::Done { job_id } => Screen::Done {
                job_id: job_id.clone(),
                masked_name: ctx.map(|c| c.ticket.masked_name.clone()).unwrap_or_default(),
            },
            State::Ended(reason) => Screen::Ended { reason: *reason },
            State::Service(ServicePage::Pin { wrong, .. }) => Screen::Service(ServicePage::Pin {
                entered: u8::try_from(self.pin_entry.len()).unwrap_or(u8::MAX),
                wrong: *wrong,
                locked_for: self
                    .pin_locked_until
                    .map(|t| whole_seconds_left(t, self.now))
                    .filter(|s| *s > 0),
            }),
            State::Service(page) => Screen::Service(page.clone()),
            State::OutOfService => match self.faults.last() {
                Some(f) => Screen::OutOfService {
                    reason_zh: f.reason_zh.clone(),
                    reason_en: f.reason_en.clone(),
                    hint_zh: f.hint_zh.clone(),
                    hint_en: f.hint_en.clone(),
                },
                None => Screen::OutOfService {
                    reason_zh: String::new(),
                    reason_en: String::new(),
                    hint_zh: String::new(),
                    hint_en: String::new(),
                },
            },
        };
        let kind = self.state.kind();
        let seconds_left = match &self.state {
            State::Result { .. } => None,
            _ => self.display_target().map(|t| whole_seconds_left(t, self.now)),
        };
        let shots = ctx.map(|c| (c.shots_used, c.shots_total));
        let can_cancel = !matches!(
            kind,
            StateKind::Attract
                | StateKind::OutOfService
                | StateKind::Service
                | StateKind::Capture
                | StateKind::Checking
                | StateKind::Finishing
        );
        View {
            screen,
            lang: self.lang,
            shots,
            seconds_left,
            can_cancel,
        }
    }
}

/// The light modes a technician can test, as the lights page names them.
pub const LIGHT_TEST_MODES: [&str; 6] = [
    "off",
    "idle",
    "preview",
    "preview-glasses",
    "shoot",
    "shoot-glasses",
];

/// The kind of a service page.
pub fn page_kind(page: &ServicePage) -> ServicePageKind {
    match page {
        // The pad is reached only through `ServiceRequest`; as a kind it is the menu's gate.
        ServicePage::Pin { .. } | ServicePage::Menu => ServicePageKind::Menu,
        ServicePage::SelfTest { .. } => ServicePageKind::SelfTest,
        ServicePage::Seat { .. } => ServicePageKind::Seat,
        ServicePage::Lights { .. } => ServicePageKind::Lights,
        ServicePage::Tickets { .. } => ServicePageKind::Tickets,
        ServicePage::Uploads { .. } => ServicePageKind::Uploads,
        ServicePage::Counters { .. } => ServicePageKind::Counters,
        ServicePage::Calibrate { .. } => ServicePageKind::Calibrate,
    }
}

/// A page as it opens, before the shell has filled it.
fn empty_page(kind: ServicePageKind) -> ServicePage {
    match kind {
        ServicePageKind::Menu => ServicePage::Menu,
        ServicePageKind::SelfTest => ServicePage::SelfTest {
            running: false,
            checks: Vec::new(),
        },
        ServicePageKind::Seat => ServicePage::Seat {
            motion: SeatMotion::Still,
            at_top: false,
            at_bottom: false,
            position_permille: None,
            fault: None,
        },
        ServicePageKind::Lights => ServicePage::Lights {
            mode: String::new(),
            levels: Vec::new(),
        },
        ServicePageKind::Tickets => ServicePage::Tickets {
            tickets: Vec::new(),
            message: None,
        },
        ServicePageKind::Uploads => ServicePage::Uploads {
            queued: 0,
            failed: 0,
            acked_today: 0,
            oldest_age_s: None,
            last_error: None,
        },
        ServicePageKind::Counters => ServicePage::Counters { rows: Vec::new() },
        ServicePageKind::Calibrate => ServicePage::Calibrate {
            running: false,
            checks: Vec::new(),
        },
    }
}

/// Pages whose content comes from the shell.
fn loads(page: &ServicePage) -> Option<ServicePageKind> {
    match page {
        ServicePage::Pin { .. } | ServicePage::Menu => None,
        other => Some(page_kind(other)),
    }
}

/// Whether `ticket` is a row of the tickets page (a technician acts only on what is shown).
fn listed(page: &ServicePage, ticket: &str) -> bool {
    matches!(page, ServicePage::Tickets { tickets, .. } if tickets.iter().any(|t| t.ticket == ticket))
}

fn with_calm(state: State, until: Option<Instant>) -> State {
    match state {
        State::Result {
            passed,
            liveness_failed,
            items,
            ..
        } => State::Result {
            passed,
            liveness_failed,
            items,
            calm_until: until,
        },
        other => other,
    }
}

fn preview_lights(glasses: bool) -> LightMode {
    if glasses {
        LightMode::PreviewGlasses
    } else {
        LightMode::Preview
    }
}

/// Seconds left until `target`, rounded up, so "3" shows for the whole first second of a countdown.
fn whole_seconds_left(target: Instant, now: Instant) -> u32 {
    let left = target.saturating_duration_since(now);
    let whole = left.as_secs() + u64::from(left.subsec_nanos() > 0);
    u32::try_from(whole).unwrap_or(u32::MAX)
}

/// The lines of the result screen: blocking checks first, then advisories.
fn check_lines(verdict: &Verdict) -> Vec<CheckLine> {
    let line = |c: &CheckResult| CheckLine {
        id: c.id.to_string(),
        blocking: matches!(c.status, CheckStatus::Fail | CheckStatus::Undetermined),
        message_zh: c.message_zh.clone(),
        message_en: c.message_en.clone(),
        guidance_zh: c.guidance_zh.clone(),
        guidance_en: c.guidance_en.clone(),
    };
    let blocking = verdict.blocking().map(line);
    let advisory = verdict
        .checks
        .iter()
        .filter(|c| c.status == CheckStatus::Advisory)
        .map(line);
    blocking.chain(advisory).collect()
}
