//! The shell's side of service mode: executes what a technician asks for ([`ServiceCommand`]) against
//! the devices and the store, and answers with the page to show ([`Input::ServiceUpdate`]).
//!
//! The self-test and the calibration take seconds (a light cycle, the seat's full travel), so they
//! are small step machines advanced by [`Kiosk::tick`] on the same timeline as everything else, never a
//! blocking loop: the watchdog keeps being fed and the screen keeps showing progress. The checks are
//! those of `kioskctl selftest` (camera frame statistics, a light cycle, seat travel with limit
//! detection, the QR path) and of the operator's self-test (database, models, disk).
//!
//! What it deliberately does not do: decide which page is shown or whether a button means anything on
//! it (the session does), keep any name (masked names of tickets seen since start are held in memory
//! only, since the store has none), or move the seat beyond what the driver's own limits allow.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use hal::supervisor::DeviceId;
use hal::{Camera, Error as _, LightMode, Lights, Seat, SeatCommand, SeatStatus};
use image::RgbImage;
use ui::{GuidanceLine, SeatMotion, ServiceCheck, ServicePage, ServicePageKind, ServiceTicket};

use super::{Kiosk, Step};
use crate::session::{self, Input, ServiceCommand};
use crate::ticket::TicketId;
use crate::vision::background::Backdrop;
use crate::vision::measure::{delta_e, lab};
use crate::vision::spec::PhotoSpec;

/// Recent tickets listed on the tickets page.
const RECENT_TICKETS: usize = 20;
/// Masked names remembered (in memory only) for the tickets page.
const NAMES_KEPT: usize = 64;
/// How long each light mode is held in the self-test's light cycle: long enough for a technician to see.
const LIGHT_STEP: Duration = Duration::from_millis(300);
/// A travel that has not ended by itself after this long is stopped by the test. The driver's own
/// maximum run time (10 s on the shipped configurations) normally stops it first, as a fault.
const SEAT_TRAVEL_LIMIT: Duration = Duration::from_secs(30);
/// Free space below which the self-test reports the disk as failing.
const MIN_FREE_BYTES: u64 = 200 * 1024 * 1024;
/// China's offset from UTC: "today" on the counters page is the local calendar day.
const UTC_OFFSET_SECS: i64 = 8 * 3600;
/// Calibration: the share of the centre of an empty booth's frame that must look like the backdrop.
const BACKDROP_MIN_COVERAGE: f64 = 0.9;
/// Calibration: brightest and darkest third of the backdrop may differ by this factor at most (an
/// unevenly lit backdrop shows as a gradient behind the head).
const BACKDROP_MAX_UNEVENNESS: f64 = 1.15;
/// Calibration: share of clipped (or crushed) pixels allowed in the frame.
const MAX_CLIPPED: f64 = 0.01;

/// The light modes by the names the lights page uses ([`session::LIGHT_TEST_MODES`]).
fn light_mode(name: &str) -> Option<LightMode> {
    Some(match name {
        "off" => LightMode::Off,
        "idle" => LightMode::Idle,
        "preview" => LightMode::Preview,
        "preview-glasses" => LightMode::PreviewGlasses,
        "shoot" => LightMode::Shoot,
        "shoot-glasses" => LightMode::ShootGlasses,
        _ => return None,
    })
}

pub(super) fn light_name(mode: LightMode) -> &'static str {
    match mode {
        LightMode::Off => "off",
        LightMode::Idle => "idle",
        LightMode::Preview => "preview",
        LightMode::PreviewGlasses => "preview-glasses",
        LightMode::Shoot => "shoot",
        LightMode::ShootGlasses => "shoot-glasses",
    }
}

/// What the shell keeps for service mode.
#[derive(Debug, Default)]
pub(super) struct ServiceState {
    /// Masked names of tickets admitted since start, newest last (in memory only: the store keeps none).
    names: VecDeque<(TicketId, String)>,
    /// The self-test or calibration in progress.
    job: Option<Job>,
    /// The seat's last status, from the tick's poll.
    pub(super) seat: Option<SeatStatus>,
    /// The height of the top limit, learnt when the seat reached it with a position sensor.
    seat_top_mm: Option<u16>,
    /// The light mode last applied, by anyone.
    pub(super) light_mode: Option<LightMode>,
    /// The result of the last action on the tickets page.
    ticket_message: Option<GuidanceLine>,
    /// Why the last jog did not start (at a limit already, refused), until the next jog.
    seat_note: Option<String>,
}

impl ServiceState {
    pub(super) fn remember_name(&mut self, ticket: TicketId, masked_name: &str) {
        self.names.retain(|(t, _)| *t != ticket);
        if self.names.len() >= NAMES_KEPT {
            self.names.pop_front();
        }
        self.names.push_back((ticket, masked_name.to_string()));
    }

    fn name_of(&self, ticket: &TicketId) -> Option<&str> {
        self.names
            .iter()
            .find(|(t, _)| t == ticket)
            .map(|(_, n)| n.as_str())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum JobKind {
    SelfTest,
    Calibrate,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Cycling the lights; the index of the next mode and when to apply it.
    Lights {
        next: usize,
        at: Instant,
    },
    /// Travelling; since when.
    Seat {
        dir: hal::Direction,
        since: Instant,
    },
    Done,
}

#[derive(Debug)]
struct Job {
    kind: JobKind,
    checks: Vec<ServiceCheck>,
    phase: Phase,
    /// Travel results: (direction, milliseconds, how it stopped).
    travel: Vec<(hal::Direction, u64, String)>,
}

impl Job {
    fn set(&mut self, name: &str, ok: Option<bool>, detail: String) {
        match self.checks.iter_mut().find(|c| c.name == name) {
            Some(c) => {
                c.ok = ok;
                c.detail = detail;
            }
            None => self.checks.push(ServiceCheck {
                name: name.into(),
                ok,
                detail,
            }),
        }
    }

    fn page(&self) -> ServicePage {
        let running = self.phase != Phase::Done;
        let checks = self.checks.clone();
        match self.kind {
            JobKind::SelfTest => ServicePage::SelfTest { running, checks },
            JobKind::Calibrate => ServicePage::Calibrate { running, checks },
        }
    }
}

const LIGHT_CYCLE: [LightMode; 6] = [
    LightMode::Idle,
    LightMode::Preview,
    LightMode::PreviewGlasses,
    LightMode::Shoot,
    LightMode::ShootGlasses,
    LightMode::Idle,
];

fn service_page_kind(page: &ServicePage) -> ServicePageKind {
    session::page_kind(page)
}

impl<C: Camera, S: Seat, L: Lights> Kiosk<C, S, L> {
    /// Reads the PIN pad's wrong tries and lockout back from the audit trail, so a restart does not
    /// reset them: the wrong PINs since the last entry or lockout, and what is left of a lockout.
    pub(super) fn restore_pin_state(&mut self, now: Instant) {
        let cfg = self.session.service_config().clone();
        let wall = self.wall(now);
        let events = ["service_pin_wrong", "service_pin_locked", "service_entered"];
        let recent = match self.store.audit_latest(&events, usize::from(cfg.max_tries) + 1) {
            Ok(r) => r,
            Err(e) => return self.warn(format!("PIN lockout not restored: {e}")),
        };
        let failures = recent
            .iter()
            .take_while(|e| e.event == "service_pin_wrong")
            .count();
        let locked_for = recent
            .iter()
            .find(|e| e.event != "service_pin_wrong")
            .filter(|e| e.event == "service_pin_locked")
            .map(|e| e.at + i64::from(cfg.lockout_secs) - wall)
            .filter(|left| *left > 0)
            .map(|left| Duration::from_secs(left.unsigned_abs()));
        // Counting stops at the last entry or lockout: a lockout resets the count, as on the pad.
        let failures = u8::try_from(failures).unwrap_or(u8::MAX);
        self.session.restore_pin_state(now, failures, locked_for);
    }

    /// Executes one service command; the answer is the page's new content.
    pub(super) fn service_command(&mut self, now: Instant, cmd: ServiceCommand) -> Step {
        let t = self.millis(now);
        let page = match cmd {
            ServiceCommand::Load(kind) => self.service_page(now, kind),
            ServiceCommand::SelfTest => {
                self.start_self_test(now);
                self.service_page(now, ServicePageKind::SelfTest)
            }
            ServiceCommand::Calibrate => {
                self.start_calibration(now);
                self.service_page(now, ServicePageKind::Calibrate)
            }
            ServiceCommand::SeatJog(cmd) => {
                let hal_cmd = match cmd {
                    session::SeatCommand::Up => SeatCommand::Up,
                    session::SeatCommand::Down => SeatCommand::Down,
                    session::SeatCommand::Stop => SeatCommand::Stop,
                };
                let r = self.seat.command(hal_cmd, t);
                let fault = match &r {
                    Ok(()) => None,
                    // Driving into a closed limit is refused by the driver; say so, it is not a fault.
                    Err(e) if e.kind() == hal::ErrorKind::LimitReached => Some("at the limit already".into()),
                    Err(e) => Some(e.to_string()),
                };
                let kind = r.as_ref().map(|_| ()).map_err(|e| e.kind());
                if !matches!(kind, Err(hal::ErrorKind::LimitReached)) {
                    self.observe(now, DeviceId::Seat, kind);
                }
                self.service.seat_note = fault;
                self.poll_seat(now);
                self.seat_page()
            }
            ServiceCommand::Lights(name) => {
                if let Some(mode) = light_mode(&name) {
                    let r = self.lights.set_mode(mode, t).map_err(|e| e.kind());
                    if r.is_ok() {
                        self.service.light_mode = Some(mode);
                    }
                    self.observe(now, DeviceId::Lights, r);
                }
                self.lights_page()
            }
            ServiceCommand::Unlock(ticket) => {
                let wall = self.wall(now);
                let message = match parse_ticket(&ticket) {
                    Ok(id) => match self.store.unlock_ticket(&id, "technician", wall) {
                        Ok(()) => line("已解锁，可重新拍摄", "Unlocked: the student can shoot again"),
                        Err(e) => line("解锁失败", &format!("Unlock failed: {e}")),
                    },
                    Err(_) => line("票据编号无效", "Not a ticket id"),
                };
                self.service.ticket_message = Some(message);
                self.tickets_page(now)
            }
            ServiceCommand::GrantShot(ticket) => {
                let wall = self.wall(now);
                let message = match parse_ticket(&ticket) {
                    Ok(id) => match self.store.grant_shot(&id, 1, "technician", wall) {
                        Ok(s) => line(
                            &format!("已增加一次拍摄机会（剩余 {} 次）", s.shots_left()),
                            &format!("One more shot granted ({} left)", s.shots_left()),
                        ),
                        Err(e) => line("增加拍摄机会失败", &format!("Grant failed: {e}")),
                    },
                    Err(_) => line("票据编号无效", "Not a ticket id"),
                };
                self.service.ticket_message = Some(message);
                self.tickets_page(now)
            }
            ServiceCommand::RetryUploads => {
                let wall = self.wall(now);
                match self.store.retry_failed("technician", wall) {
                    Ok(n) => tracing::info!(jobs = n, "technician requeued failed uploads"),
                    Err(e) => self.warn(format!("retry uploads: {e}")),
                }
                self.uploads_page(now)
            }
            ServiceCommand::Leave => {
                self.service.job = None;
                self.service.ticket_message = None;
                // A seat left moving by a jog or a test stops; the session's exit sets the lights.
                if self.service.seat.is_some_and(|s| s.moving.is_some()) {
                    let r = self.seat.command(SeatCommand::Stop, t).map_err(|e| e.kind());
                    self.observe(now, DeviceId::Seat, r);
                }
                return Step::Done;
            }
        };
        Step::Answer(Input::ServiceUpdate(page))
    }

    /// Advances a running self-test or calibration and keeps the seat page live. Called by `tick`
    /// while service mode is shown.
    pub(super) fn service_tick(&mut self, now: Instant) {
        let ui::Screen::Service(shown) = self.session.view().screen else {
            return;
        };
        let kind = service_page_kind(&shown);
        // A test keeps running while the technician looks at another page; its page shows it on return.
        if self.service.job.is_some() {
            self.advance_job(now);
            if let Some(job) = &self.service.job {
                let page = job.page();
                if service_page_kind(&page) == kind && page != shown {
                    self.input(now, Input::ServiceUpdate(page));
                }
            }
        }
        if kind == ServicePageKind::Seat {
            let page = self.seat_page();
            if page != shown {
                self.input(now, Input::ServiceUpdate(page));
            }
        }
    }

    /// When the running job next needs a tick.
    pub(super) fn service_wakeup(&self, now: Instant) -> Option<Instant> {
        match self.service.job.as_ref()?.phase {
            Phase::Lights { at, .. } => Some(at),
            Phase::Seat { .. } => Some(now + Duration::from_millis(50)),
            Phase::Done => None,
        }
    }

    fn poll_seat(&mut self, now: Instant) {
        let t = self.millis(now);
        let r = self.seat.poll(t);
        if let Ok(status) = &r {
            self.note_seat(*status);
        }
        self.observe(now, DeviceId::Seat, r.map(|_| ()).map_err(|e| e.kind()));
    }

    pub(super) fn note_seat(&mut self, status: SeatStatus) {
        if status.at_top
            && let Some(mm) = status.position_mm
        {
            self.service.seat_top_mm = Some(mm);
        }
        self.service.seat = Some(status);
    }

    fn service_page(&mut self, now: Instant, kind: ServicePageKind) -> ServicePage {
        match kind {
            ServicePageKind::Menu => ServicePage::Menu,
            ServicePageKind::SelfTest | ServicePageKind::Calibrate => {
                let want = if kind == ServicePageKind::SelfTest {
                    JobKind::SelfTest
                } else {
                    JobKind::Calibrate
                };
                match &self.service.job {
                    Some(job) if job.kind == want => job.page(),
                    _ if kind == ServicePageKind::SelfTest => ServicePage::SelfTest {
                        running: false,
                        checks: Vec::new(),
                    },
                    _ => ServicePage::Calibrate {
                        running: false,
                        checks: Vec::new(),
                    },
                }
            }
            ServicePageKind::Seat => {
                self.poll_seat(now);
                self.seat_page()
            }
            ServicePageKind::Lights => self.lights_page(),
            ServicePageKind::Tickets => {
                self.service.ticket_message = None;
                self.tickets_page(now)
            }
            ServicePageKind::Uploads => self.uploads_page(now),
            ServicePageKind::Counters => self.counters_page(now),
        }
    }

    fn seat_page(&self) -> ServicePage {
        let st = self.service.seat;
        let motion = match st.and_then(|s| s.moving) {
            Some(hal::Direction::Up) => SeatMotion::Up,
            Some(hal::Direction::Down) => SeatMotion::Down,
            None => SeatMotion::Still,
        };
        let position_permille = match (st.and_then(|s| s.position_mm), self.service.seat_top_mm) {
            (Some(mm), Some(top)) if top > 0 => {
                Some(u16::try_from(u32::from(mm.min(top)) * 1000 / u32::from(top)).unwrap_or(1000))
            }
            _ => None,
        };
        ServicePage::Seat {
            motion,
            at_top: st.is_some_and(|s| s.at_top),
            at_bottom: st.is_some_and(|s| s.at_bottom),
            position_permille,
            fault: st
                .and_then(|s| s.fault)
                .map(|f| format!("{f:?}"))
                .or_else(|| self.service.seat_note.clone()),
        }
    }

    fn lights_page(&self) -> ServicePage {
        let levels = self.lights.levels();
        let pct = |permille: u16| u8::try_from((u32::from(permille) + 5) / 10).unwrap_or(100);
        ServicePage::Lights {
            mode: self
                .service
                .light_mode
                .map(light_name)
                .unwrap_or_default()
                .to_string(),
            levels: vec![
                ("key_left".into(), pct(levels.key_left)),
                ("key_right".into(), pct(levels.key_right)),
                ("background".into(), pct(levels.background)),
            ],
        }
    }

    fn tickets_page(&mut self, now: Instant) -> ServicePage {
        let wall = self.wall(now);
        let tickets = match self.store.recent_tickets(RECENT_TICKETS) {
            Ok(rows) => rows
                .into_iter()
                .map(|s| {
                    let status = if s.completed_at.is_some() {
                        "completed"
                    } else if s.locked.is_some() {
                        "locked"
                    } else if s.cooldown_until.is_some_and(|u| u > wall) {
                        "cooling-down"
                    } else if s.shots_left() == 0 {
                        "out-of-shots"
                    } else {
                        "open"
                    };
                    ServiceTicket {
                        ticket: s.ticket.to_string(),
                        // Known only for tickets admitted since start: the store keeps no name.
                        masked_name: self.service.name_of(&s.ticket).unwrap_or("—").to_string(),
                        shots_used: s.shots_used,
                        shots_total: s.shot_limit(),
                        status: status.into(),
                    }
                })
                .collect(),
            Err(e) => {
                self.warn(format!("recent tickets: {e}"));
                self.service.ticket_message =
                    Some(line("读取票据失败", &format!("Cannot read tickets: {e}")));
                Vec::new()
            }
        };
        ServicePage::Tickets {
            tickets,
            message: self.service.ticket_message.clone(),
        }
    }

    fn uploads_page(&mut self, now: Instant) -> ServicePage {
        let wall = self.wall(now);
        let counts = self.store.outbox_counts();
        let summary = self.store.upload_summary(start_of_day(wall));
        match (counts, summary) {
            (Ok(c), Ok(s)) => ServicePage::Uploads {
                queued: u32::try_from(c.pending + c.leased).unwrap_or(u32::MAX),
                failed: u32::try_from(c.failed).unwrap_or(u32::MAX),
                acked_today: u32::try_from(s.acked_since).unwrap_or(u32::MAX),
                oldest_age_s: c
                    .oldest_unacked_at
                    .map(|at| u64::try_from(wall - at).unwrap_or(0)),
                last_error: s.last_error,
            },
            (Err(e), _) | (_, Err(e)) => {
                self.warn(format!("upload backlog: {e}"));
                ServicePage::Uploads {
                    queued: 0,
                    failed: 0,
                    acked_today: 0,
                    oldest_age_s: None,
                    last_error: Some(format!("cannot read the outbox: {e}")),
                }
            }
        }
    }

    fn counters_page(&mut self, now: Instant) -> ServicePage {
        let wall = self.wall(now);
        let totals = self.store.stats_totals();
        let today = self.store.stats_by_day(start_of_day(wall), UTC_OFFSET_SECS);
        let (totals, today) = match (totals, today) {
            (Ok(t), Ok(d)) => (t, d.into_iter().last().unwrap_or_default()),
            (Err(e), _) | (_, Err(e)) => {
                self.warn(format!("counters: {e}"));
                return ServicePage::Counters {
                    rows: vec![(format!("error: {e}"), 0, 0)],
                };
            }
        };
        let sum = |m: &std::collections::BTreeMap<String, u64>| m.values().sum::<u64>();
        let get = |m: &std::collections::BTreeMap<String, u64>, k: &str| m.get(k).copied().unwrap_or(0);
        let mut rows = vec![
            (
                "sessions".to_string(),
                sum(&totals.sessions),
                sum(&today.sessions),
            ),
            (
                "completed".to_string(),
                get(&totals.sessions, "completed"),
                get(&today.sessions, "completed"),
            ),
            (
                "shots_checked".to_string(),
                totals.shots_checked,
                today.shots_checked,
            ),
            ("passes".to_string(), totals.shots_passed, today.shots_passed),
            (
                "failures".to_string(),
                totals.shots_checked - totals.shots_passed.min(totals.shots_checked),
                today.shots_checked - today.shots_passed.min(today.shots_checked),
            ),
        ];
        for (check, n) in &totals.failures_by_check {
            rows.push((format!("fail:{check}"), *n, get(&today.failures_by_check, check)));
        }
        ServicePage::Counters { rows }
    }

    // ----- self-test and calibration ----------------------------------------------------------------

    /// A new test starts from a still seat: a travel left running by an earlier test or a jog would
    /// otherwise turn the first command into a stop and the travel into a false failure.
    fn stop_seat_for_test(&mut self, now: Instant) {
        self.poll_seat(now);
        if self.service.seat.is_some_and(|s| s.moving.is_some()) {
            let t = self.millis(now);
            let r = self.seat.command(SeatCommand::Stop, t).map_err(|e| e.kind());
            self.observe(now, DeviceId::Seat, r);
        }
        self.service.seat_note = None;
    }

    fn start_self_test(&mut self, now: Instant) {
        self.stop_seat_for_test(now);
        let mut job = Job {
            kind: JobKind::SelfTest,
            checks: Vec::new(),
            phase: Phase::Lights { next: 0, at: now },
            travel: Vec::new(),
        };
        match self.store.integrity_check() {
            Ok(true) => job.set("database", Some(true), "integrity ok".into()),
            Ok(false) => job.set("database", Some(false), "integrity check failed".into()),
            Err(e) => job.set("database", Some(false), e.to_string()),
        }
        match crate::runtime::setup() {
            Ok(_) => job.set("models", Some(true), "ONNX Runtime and models present".into()),
            Err(e) => job.set("models", Some(false), e.to_string()),
        }
        match crate::outbox::disk::free_bytes(&self.data_dir) {
            Ok(free) => job.set(
                "disk",
                Some(free >= MIN_FREE_BYTES),
                format!("{} MiB free", free / (1024 * 1024)),
            ),
            Err(e) => job.set(
                "disk",
                Some(false),
                format!("cannot stat the data directory: {e}"),
            ),
        }
        let t = self.millis(now);
        let frame = self.camera.preview_frame(t);
        self.observe(
            now,
            DeviceId::Camera,
            frame.as_ref().map(|_| ()).map_err(|e| e.kind()),
        );
        match frame {
            Ok(f) => {
                let (mean, contrast) = luma_stats(&f.image);
                let still = self.camera.capture_still(t);
                // A black or flat frame means a covered lens, lights off or a dead sensor.
                let exposed = (8.0..=247.0).contains(&mean) && contrast >= 3.0;
                let still_text = match &still {
                    Ok(s) => format!("{}x{}", s.image.width(), s.image.height()),
                    Err(e) => format!("failed: {e}"),
                };
                job.set(
                    "camera",
                    Some(exposed && still.is_ok()),
                    format!(
                        "preview {}x{}, mean luma {mean:.0}, contrast {contrast:.0}; still {still_text}",
                        f.image.width(),
                        f.image.height()
                    ),
                );
                let codes = hal::qr::decode_rgb(&f.image).len();
                job.set(
                    "qr",
                    Some(true),
                    format!("camera decoding; {codes} code(s) in view now"),
                );
            }
            Err(e) => {
                job.set("camera", Some(false), format!("{e} ({})", e.kind()));
                job.set("qr", Some(false), "no camera frame to decode".into());
            }
        }
        job.set("lights", None, "cycling".into());
        job.set("seat", None, "waiting".into());
        self.service.job = Some(job);
    }

    fn start_calibration(&mut self, now: Instant) {
        self.stop_seat_for_test(now);
        let mut job = Job {
            kind: JobKind::Calibrate,
            checks: Vec::new(),
            phase: Phase::Done,
            travel: Vec::new(),
        };
        let t = self.millis(now);
        // The backdrop is judged as a shot would be: under the shoot lights, exposure locked.
        let lit = self.lights.set_mode(LightMode::Shoot, t).map_err(|e| e.kind());
        if lit.is_ok() {
            self.service.light_mode = Some(LightMode::Shoot);
        }
        self.observe(now, DeviceId::Lights, lit);
        if let Err(e) = self.camera.lock_exposure(true) {
            self.warn(format!("exposure lock: {e}"));
        }
        let still = self.camera.capture_still(t);
        let _ = self.camera.lock_exposure(false);
        self.observe(
            now,
            DeviceId::Camera,
            still.as_ref().map(|_| ()).map_err(|e| e.kind()),
        );
        match still {
            Ok(f) => {
                for (name, ok, detail) in calibrate_backdrop(&f.image, &self.guidance_spec) {
                    job.set(name, Some(ok), detail);
                }
            }
            Err(e) => job.set("backdrop", Some(false), format!("no still: {e}")),
        }
        job.set("seat_travel", None, "waiting".into());
        job.phase = self.start_travel(now, hal::Direction::Up, &mut job.travel);
        self.service.job = Some(job);
    }

    /// Starts the seat in `dir`; a seat already at that end records a zero-length travel and moves on.
    fn start_travel(
        &mut self,
        now: Instant,
        dir: hal::Direction,
        travel: &mut Vec<(hal::Direction, u64, String)>,
    ) -> Phase {
        let t = self.millis(now);
        let cmd = match dir {
            hal::Direction::Up => SeatCommand::Up,
            hal::Direction::Down => SeatCommand::Down,
        };
        match self.seat.command(cmd, t) {
            Ok(()) => {
                self.observe(now, DeviceId::Seat, Ok(()));
                Phase::Seat { dir, since: now }
            }
            Err(e) if e.kind() == hal::ErrorKind::LimitReached => {
                travel.push((dir, 0, "already at the limit".into()));
                match dir {
                    hal::Direction::Up => self.start_travel(now, hal::Direction::Down, travel),
                    hal::Direction::Down => Phase::Done,
                }
            }
            Err(e) => {
                travel.push((dir, 0, format!("refused: {e}")));
                self.observe(now, DeviceId::Seat, Err(e.kind()));
                Phase::Done
            }
        }
    }

    fn advance_job(&mut self, now: Instant) {
        let Some(mut job) = self.service.job.take() else {
            return;
        };
        let t = self.millis(now);
        match job.phase {
            Phase::Lights { next, at } if now >= at => {
                if let Some(&mode) = LIGHT_CYCLE.get(next) {
                    let r = self.lights.set_mode(mode, t);
                    match r {
                        Ok(()) => {
                            self.service.light_mode = Some(mode);
                            self.observe(now, DeviceId::Lights, Ok(()));
                            job.phase = Phase::Lights {
                                next: next + 1,
                                at: now + LIGHT_STEP,
                            };
                        }
                        Err(e) => {
                            job.set("lights", Some(false), format!("{}: {e}", light_name(mode)));
                            self.observe(now, DeviceId::Lights, Err(e.kind()));
                            job.phase = self.start_travel(now, hal::Direction::Up, &mut job.travel);
                            job.set("seat", None, "travelling up".into());
                        }
                    }
                } else {
                    job.set(
                        "lights",
                        Some(true),
                        format!(
                            "cycled {} modes, now {}",
                            LIGHT_CYCLE.len(),
                            light_name(LightMode::Idle)
                        ),
                    );
                    job.set("seat", None, "travelling up".into());
                    job.phase = self.start_travel(now, hal::Direction::Up, &mut job.travel);
                }
            }
            Phase::Seat { dir, since } => {
                let r = self.seat.poll(t);
                self.observe(now, DeviceId::Seat, r.as_ref().map(|_| ()).map_err(|e| e.kind()));
                let ms = u64::try_from((now - since).as_millis()).unwrap_or(u64::MAX);
                let ended = match r {
                    Ok(st) => {
                        self.note_seat(st);
                        if let Some(f) = st.fault {
                            let _ = self.seat.command(SeatCommand::Stop, t);
                            Some(format!("fault {f:?}"))
                        } else if st.moving.is_none() {
                            Some(
                                if st.at_top || st.at_bottom {
                                    "limit"
                                } else {
                                    "stopped"
                                }
                                .to_string(),
                            )
                        } else if now - since >= SEAT_TRAVEL_LIMIT {
                            let _ = self.seat.command(SeatCommand::Stop, t);
                            Some("test time limit".to_string())
                        } else {
                            None
                        }
                    }
                    Err(e) => Some(format!("error: {e}")),
                };
                if let Some(how) = ended {
                    job.travel.push((dir, ms, how));
                    job.phase = match dir {
                        hal::Direction::Up => {
                            job.set(self.travel_check(job.kind), None, "travelling down".into());
                            self.start_travel(now, hal::Direction::Down, &mut job.travel)
                        }
                        hal::Direction::Down => Phase::Done,
                    };
                }
            }
            _ => {}
        }
        if job.phase == Phase::Done && job.checks.iter().any(|c| c.ok.is_none()) {
            let name = self.travel_check(job.kind);
            let (ok, detail) = travel_verdict(&job.travel);
            job.set(name, Some(ok), detail);
            if job.kind == JobKind::SelfTest
                && job.checks.iter().any(|c| c.name == "lights" && c.ok.is_none())
            {
                job.set("lights", Some(false), "not completed".into());
            }
            let failed: Vec<&str> = job
                .checks
                .iter()
                .filter(|c| c.ok != Some(true))
                .map(|c| c.name.as_str())
                .collect();
            tracing::info!(kind = ?job.kind, failed = ?failed, "service test finished");
        }
        self.service.job = Some(job);
    }

    fn travel_check(&self, kind: JobKind) -> &'static str {
        match kind {
            JobKind::SelfTest => "seat",
            JobKind::Calibrate => "seat_travel",
        }
    }
}

/// Both ends must be reached by their limit switch, without a fault.
fn travel_verdict(travel: &[(hal::Direction, u64, String)]) -> (bool, String) {
    let text = |d: hal::Direction| {
        travel
            .iter()
            .find(|(dir, ..)| *dir == d)
            .map(|(_, ms, how)| format!("{:.1} s ({how})", *ms as f64 / 1000.0))
            .unwrap_or_else(|| "not run".into())
    };
    let ok = travel.len() == 2
        && travel
            .iter()
            .all(|(_, _, how)| how == "limit" || how == "already at the limit");
    (
        ok,
        format!(
            "up {}, down {}",
            text(hal::Direction::Up),
            text(hal::Direction::Down)
        ),
    )
}

/// A ticket id as the tickets page lists it (32 hex digits).
fn parse_ticket(hex_id: &str) -> Result<TicketId, ()> {
    let mut b = [0u8; 16];
    hex::decode_to_slice(hex_id, &mut b).map_err(|_| ())?;
    Ok(TicketId(b))
}

fn line(zh: &str, en: &str) -> GuidanceLine {
    GuidanceLine {
        zh: zh.into(),
        en: en.into(),
    }
}

/// The local (China) midnight before `wall`, in Unix seconds.
fn start_of_day(wall: i64) -> i64 {
    let local = wall + UTC_OFFSET_SECS;
    local - local.rem_euclid(86_400) - UTC_OFFSET_SECS
}

/// Mean luma and its standard deviation, as `kioskctl selftest` reports them.
pub(super) fn luma_stats(img: &RgbImage) -> (f64, f64) {
    let n = (img.width() as usize * img.height() as usize).max(1) as f64;
    let (mut sum, mut sq) = (0.0f64, 0.0f64);
    for p in img.pixels() {
        let y = 0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2]);
        sum += y;
        sq += y * y;
    }
    let mean = sum / n;
    (mean, (sq / n - mean * mean).max(0.0).sqrt())
}

/// The empty booth against the spec: how much of the frame's centre is backdrop, its colour difference
/// from the spec's (ΔE, the background check's limit), how evenly it is lit, and the exposure.
pub(super) fn calibrate_backdrop(img: &RgbImage, spec: &PhotoSpec) -> Vec<(&'static str, bool, String)> {
    let (w, h) = img.dimensions();
    let backdrop = Backdrop::new(spec.background.rgb);
    // The centre: what a portrait crop would keep behind a head.
    let (x0, x1, y0, y1) = (w / 5, w - w / 5, 0, h - h / 4);
    let mut n = 0u64;
    let mut bd = 0u64;
    let mut sum = [0f64; 3];
    // Luma of backdrop pixels per vertical third, for evenness.
    let mut thirds = [(0f64, 0u64); 3];
    for y in y0..y1 {
        for x in x0..x1 {
            let p = img.get_pixel(x, y).0;
            n += 1;
            if backdrop.is_backdrop(p) {
                bd += 1;
                for i in 0..3 {
                    sum[i] += f64::from(p[i]);
                }
                let third = (((x - x0) * 3) / (x1 - x0).max(1)).min(2) as usize;
                thirds[third].0 +=
                    0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2]);
                thirds[third].1 += 1;
            }
        }
    }
    let coverage = bd as f64 / n.max(1) as f64;
    let mut out = vec![(
        "backdrop_coverage",
        coverage >= BACKDROP_MIN_COVERAGE,
        format!(
            "{:.0}% of the centre is backdrop (need {:.0}%)",
            coverage * 100.0,
            BACKDROP_MIN_COVERAGE * 100.0
        ),
    )];
    if bd == 0 {
        out.push((
            "backdrop_colour",
            false,
            "no backdrop-coloured pixel in view".into(),
        ));
    } else {
        let mean = sum.map(|s| s / bd as f64);
        let target = spec.background.rgb.map(f64::from);
        let de = delta_e(lab(mean), lab(target));
        out.push((
            "backdrop_colour",
            de <= spec.background.max_delta_e,
            format!(
                "mean RGB({:.0},{:.0},{:.0}) vs spec RGB({},{},{}): ΔE {de:.1} (limit {:.1})",
                mean[0],
                mean[1],
                mean[2],
                spec.background.rgb[0],
                spec.background.rgb[1],
                spec.background.rgb[2],
                spec.background.max_delta_e
            ),
        ));
        let lumas: Vec<f64> = thirds
            .iter()
            .filter(|(_, k)| *k > 0)
            .map(|(s, k)| s / *k as f64)
            .collect();
        let (lo, hi) = lumas
            .iter()
            .fold((f64::MAX, 0f64), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        let ratio = if lo > 0.0 { hi / lo } else { f64::MAX };
        out.push((
            "backdrop_evenness",
            lumas.len() == 3 && ratio <= BACKDROP_MAX_UNEVENNESS,
            format!("left/centre/right luma ratio {ratio:.2} (limit {BACKDROP_MAX_UNEVENNESS:.2})"),
        ));
    }
    let total = (w as usize * h as usize).max(1) as f64;
    // Blown to white: every channel at the top (the spec's own backdrop has blue at 255, so one
    // saturated channel is not clipping).
    let clipped = img.pixels().filter(|p| p.0.iter().all(|&c| c >= 250)).count() as f64 / total;
    let crushed = img.pixels().filter(|p| p.0.iter().all(|&c| c <= 5)).count() as f64 / total;
    let (mean, _) = luma_stats(img);
    out.push((
        "exposure",
        clipped <= MAX_CLIPPED && crushed <= MAX_CLIPPED && (40.0..=230.0).contains(&mean),
        format!(
            "mean luma {mean:.0}, clipped {:.1}%, crushed {:.1}%",
            clipped * 100.0,
            crushed * 100.0
        ),
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> PhotoSpec {
        PhotoSpec::builtin_by_id(crate::vision::spec::DEFAULT_SPEC).unwrap()
    }

    #[test]
    fn an_even_backdrop_of_the_spec_colour_calibrates() {
        let s = spec();
        let img = RgbImage::from_fn(640, 480, |x, y| {
            let n = ((x * 7 + y * 13) % 5) as u8;
            image::Rgb([
                s.background.rgb[0] + n,
                s.background.rgb[1] - n,
                s.background.rgb[2] - n,
            ])
        });
        let out = calibrate_backdrop(&img, &s);
        assert!(out.iter().all(|(_, ok, _)| *ok), "{out:?}");
    }

    #[test]
    fn a_grey_wall_and_a_dark_frame_fail_with_reasons() {
        let s = spec();
        let grey = RgbImage::from_pixel(640, 480, image::Rgb([128, 128, 128]));
        let out = calibrate_backdrop(&grey, &s);
        assert!(
            out.iter().any(|(n, ok, _)| *n == "backdrop_coverage" && !ok),
            "{out:?}"
        );
        let dark = RgbImage::from_pixel(640, 480, image::Rgb([2, 2, 2]));
        let out = calibrate_backdrop(&dark, &s);
        assert!(out.iter().any(|(n, ok, _)| *n == "exposure" && !ok), "{out:?}");
        // Lit from one side: the colour may pass, the evenness does not.
        let uneven = RgbImage::from_fn(640, 480, |x, _| {
            let f = 0.7 + 0.3 * f64::from(x) / 640.0;
            image::Rgb(s.background.rgb.map(|c| (f64::from(c) * f) as u8))
        });
        let out = calibrate_backdrop(&uneven, &s);
        assert!(
            out.iter().any(|(n, ok, _)| *n == "backdrop_evenness" && !ok),
            "{out:?}"
        );
    }

    #[test]
    fn the_day_starts_at_local_midnight() {
        // 2026-11-21 10:00 +08:00 → 2026-11-21 00:00 +08:00.
        assert_eq!(start_of_day(1_795_226_400), 1_795_190_400);
    }
}
