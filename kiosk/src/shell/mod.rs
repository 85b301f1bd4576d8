//! The shell: the one place with IO. It owns the devices, the store, the analyzer and the clock, feeds
//! the pure [`Session`] its inputs and executes the effects it returns, in order.
//!
//! Time comes in as an argument ([`Kiosk::input`], [`Kiosk::tick`]): the real main loop passes the
//! monotonic clock, the demo and the tests a virtual one, so the same code runs on both. Wall-clock
//! seconds (ticket validity, cool-downs, records) are derived from the same `now` and a wall origin fixed
//! at construction.
//!
//! What it deliberately does not do: decide anything the session decides (which screen, whether a shot
//! may be taken, when to lock). It executes, records and reports.

pub mod demo;
pub mod files;
pub mod payment;
pub mod payment_http;
pub mod run;
mod service;
pub mod window;

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hal::supervisor::{DeviceEvent, DeviceId, Supervisor, SupervisorConfig};
use hal::{Camera, Error as _, Lights, Millis, Seat};
use image::RgbImage;
use serde::Serialize;

use crate::session::{
    self, Candidate, Device, Effect, Input, Outcome, PreviewPurpose, Session, SessionConfig, StateKind,
    TicketStatus,
};
use crate::store::{CheckRow, NewJob, SessionId, ShotCheck, Store, StoreError};
use crate::ticket::format::{VerifyPolicy, verify};
use crate::ticket::keys::TrustedKeys;
use crate::ticket::{Rejection, Ticket, TicketId};
use crate::vision::CheckStatus;
use crate::vision::analyze::Analyzer;
use crate::vision::liveness::Liveness;
use crate::vision::spec::PhotoSpec;
use crate::vision::standardize::encode_jpeg;
use files::{Drafts, ROLE_ORIGINAL, ROLE_RECORD, ROLE_STANDARDIZED};
use payment::PaymentGateway;

/// How often a preview frame is analysed for guidance while framing. Detection on a preview frame is a
/// few milliseconds; five times a second is plenty for advice that must not flicker.
const GUIDANCE_EVERY: Duration = Duration::from_millis(200);
/// How often a preview frame is scanned for a QR code while waiting for a ticket.
const QR_EVERY: Duration = Duration::from_millis(100);
/// How often a camera that is down is asked to reconnect.
const RECONNECT_EVERY: Duration = Duration::from_millis(1000);
/// How often free space in the data directory is checked.
const DISK_CHECK_EVERY: Duration = Duration::from_secs(10);
/// Quality of the original capture kept for re-processing until the upload is confirmed.
const ORIGINAL_JPEG_QUALITY: u8 = 92;
/// How often the screen gets a new preview picture while it shows the camera: 30 frames a second,
/// the kiosk camera's rate (`[devices.camera] fps`).
const PICTURE_EVERY: Duration = Duration::from_millis(33);
/// When a due preview frame turns out to be one the screen already has, the camera is asked again
/// this much later.
const PICTURE_RETRY: Duration = Duration::from_millis(5);
/// Longest side of a preview picture handed to the screen; the camera's 1080p frames are halved.
pub const PICTURE_MAX_SIDE: u32 = 960;

/// What happened, for the demo's report, the tests and (later) the operator's log.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ShellEvent {
    Screen { screen: String, text: String },
    TicketRejected { code: String, message_en: String },
    TicketAccepted { ticket: String, shots_used: u8 },
    ShotConsumed { shot_no: u8 },
    Verdict(ShotVerdict),
    Enqueued { job_id: String },
    SessionEnded { ticket: Option<String>, outcome: String },
    DeviceDown { device: String, reason: String },
    DeviceUp { device: String },
    Warning { message: String },
}

/// One shot's verdict, as reported.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ShotVerdict {
    pub shot_no: u8,
    pub passed: bool,
    /// Ids of the checks that blocked a pass.
    pub failed: Vec<String>,
    /// Shutter-to-verdict time on this machine, standardized JPEG included.
    pub ms: f64,
}

/// Why the kiosk could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum ShellError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("data directory {path}: {source}")]
    DataDir { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Files(#[from] files::FilesError),
}

/// Everything the shell needs besides the devices.
#[derive(Debug)]
pub struct Parts {
    pub data_dir: PathBuf,
    pub session: SessionConfig,
    pub keys: TrustedKeys,
    pub policy: VerifyPolicy,
    pub specs: Vec<PhotoSpec>,
    /// Unix seconds at `origin`.
    pub wall_origin: i64,
    /// The collection unit's age public keys: photos are sealed to them the moment they are written.
    pub recipients: Vec<String>,
    /// Below this much free space in the data directory the kiosk refuses new sessions (OutOfService)
    /// rather than failing in the middle of one.
    pub min_free_bytes: u64,
}

impl Parts {
    /// Everything but the devices, from a validated configuration.
    pub fn from_config(
        config: &crate::config::KioskConfig,
        data_dir: PathBuf,
        wall_origin: i64,
    ) -> Result<Parts, String> {
        let mut session = config.session.clone();
        session.service = config.service.clone();
        Ok(Parts {
            data_dir,
            session,
            keys: config.trusted_keys()?,
            policy: config.verify_policy(),
            specs: config.specs()?,
            wall_origin,
            recipients: config.storage.recipients.clone(),
            min_free_bytes: config.storage.min_free_mb.saturating_mul(1024 * 1024),
        })
    }
}

/// Per-session state of the shell (the session machine has its own).
#[derive(Debug, Default)]
struct Current {
    store_session: Option<SessionId>,
    ticket: Option<Ticket>,
    stills: BTreeMap<u8, RgbImage>,
}

/// The kiosk: devices, store, analyzer and session, wired.
pub struct Kiosk<C: Camera, S: Seat, L: Lights> {
    origin: Instant,
    wall_origin: i64,
    session: Session,
    store: Store,
    keys: TrustedKeys,
    policy: VerifyPolicy,
    specs: Vec<PhotoSpec>,
    analyzer: Analyzer,
    gateway: Box<dyn PaymentGateway>,
    camera: C,
    seat: S,
    lights: L,
    supervisor: Supervisor,
    qr: hal::CameraQr,
    preview: Option<PreviewPurpose>,
    last_qr: Option<Instant>,
    last_guidance: Option<Instant>,
    last_reconnect: Option<Instant>,
    last_disk_check: Option<Instant>,
    min_free_bytes: u64,
    disk_low: bool,
    data_dir: PathBuf,
    drafts: Drafts,
    current: Current,
    /// The last view rendered and its text: a tick with an unchanged view renders nothing.
    last_view: Option<ui::View>,
    last_screen: Option<String>,
    /// The spec the framing guidance measures against, resolved once (every shipped spec shares the
    /// geometry; the photo type chosen in the session is carried by `RunChecks`).
    guidance_spec: PhotoSpec,
    /// Liveness evidence from the framing preview of the current session (reset at each scan).
    liveness: Liveness,
    /// Whether an undetermined liveness blocks a pass (always, except in the demo: see
    /// [`Kiosk::set_liveness_required`]).
    liveness_required: bool,
    events: Vec<ShellEvent>,
    /// Service mode's devices and data (`service.rs`).
    service: service::ServiceState,
    /// Pictures for the screen since the last [`Kiosk::take_pictures`]; at most one preview in it.
    pictures: Vec<ui::Picture>,
    /// Pictures are made only once a screen asked for them (headless runs and the demo pay nothing).
    pictures_wanted: bool,
    /// The slow step the session asked for (verify, capture, checks, enqueue) and the effects after
    /// it, left for the next tick so the screen that says "please wait" is presented first.
    deferred: VecDeque<Effect>,
    last_picture: Option<Instant>,
    /// Sequence number of the last preview frame turned into a picture (the same frame is not sent twice).
    last_picture_seq: Option<u64>,
    /// The camera was asked again shortly after returning a frame the screen already had; once per
    /// interval, so a camera that stops delivering new frames is not polled in a tight loop.
    picture_retried: bool,
}

impl<C: Camera, S: Seat, L: Lights> std::fmt::Debug for Kiosk<C, S, L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kiosk")
            .field("state", &self.session.state())
            .field("data_dir", &self.data_dir)
            .finish()
    }
}

impl<C: Camera, S: Seat, L: Lights> Kiosk<C, S, L> {
    /// Opens the store in `parts.data_dir` (creating it) and applies the session's start-up effects.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        parts: Parts,
        analyzer: Analyzer,
        gateway: Box<dyn PaymentGateway>,
        camera: C,
        seat: S,
        lights: L,
        now: Instant,
    ) -> Result<Kiosk<C, S, L>, ShellError> {
        std::fs::create_dir_all(&parts.data_dir).map_err(|source| ShellError::DataDir {
            path: parts.data_dir.clone(),
            source,
        })?;
        let store = Store::open(parts.data_dir.join("kiosk.db"))?;
        // Sessions a crash left open are closed as abandoned; their consumed shots stay consumed.
        store.abandon_open_sessions(parts.wall_origin)?;
        let session = Session::new(parts.session, now);
        let guidance_spec = match parts.specs.first() {
            Some(spec) => spec.clone(),
            None => {
                PhotoSpec::builtin_by_id(crate::vision::spec::DEFAULT_SPEC).expect("built-in spec exists")
            }
        };
        let liveness = Liveness::new(&guidance_spec.liveness);
        let mut kiosk = Kiosk {
            origin: now,
            wall_origin: parts.wall_origin,
            session,
            store,
            keys: parts.keys,
            policy: parts.policy,
            specs: parts.specs,
            analyzer,
            gateway,
            camera,
            seat,
            lights,
            supervisor: Supervisor::new(SupervisorConfig::default()),
            qr: hal::CameraQr::new(hal::qr::decode),
            preview: None,
            last_qr: None,
            last_guidance: None,
            last_reconnect: None,
            last_disk_check: None,
            min_free_bytes: parts.min_free_bytes,
            disk_low: false,
            drafts: Drafts::new(&parts.data_dir, &parts.recipients)?,
            data_dir: parts.data_dir,
            current: Current::default(),
            last_view: None,
            last_screen: None,
            guidance_spec,
            liveness,
            liveness_required: true,
            events: Vec::new(),
            service: service::ServiceState::default(),
            pictures: Vec::new(),
            pictures_wanted: false,
            deferred: VecDeque::new(),
            last_picture: None,
            last_picture_seq: None,
            picture_retried: false,
        };
        kiosk.restore_pin_state(now);
        let effects = kiosk.session.startup_effects();
        kiosk.execute(now, effects);
        Ok(kiosk)
    }

    pub fn session(&self) -> &Session {
        &self.session
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The camera, for a simulation that changes what is in front of it.
    pub fn camera_mut(&mut self) -> &mut C {
        &mut self.camera
    }

    pub fn seat_mut(&mut self) -> &mut S {
        &mut self.seat
    }

    pub fn lights(&self) -> &L {
        &self.lights
    }

    /// The lights, for a main loop that asks lights which are down whether they are back.
    pub fn lights_mut(&mut self) -> &mut L {
        &mut self.lights
    }

    /// The outcome of a call the main loop made to a device the kiosk does not drive itself
    /// (buttons, a serial scanner) or on its behalf (a probe): goes to the supervisor like the
    /// kiosk's own calls, so a device going down or coming back reaches the session.
    pub fn report_device(&mut self, now: Instant, device: DeviceId, result: Result<(), hal::ErrorKind>) {
        self.observe(now, device, result);
    }

    /// Every device's health as `up` or `down:<kind>`, for the operator's status.
    pub fn device_health(&self) -> Vec<(&'static str, String)> {
        [
            DeviceId::Camera,
            DeviceId::Seat,
            DeviceId::Lights,
            DeviceId::Buttons,
            DeviceId::QrScanner,
        ]
        .into_iter()
        .map(|d| {
            let h = match self.supervisor.health(d) {
                hal::supervisor::Health::Up => "up".to_string(),
                hal::supervisor::Health::Down(kind) => format!("down:{}", kind.as_str()),
            };
            (d.as_str(), h)
        })
        .collect()
    }

    /// An operator takes the kiosk out of service (`Some(reason)`) or puts it back (`None`). Goes
    /// through the session's fault path, so a session in progress ends as it would on a fault and the
    /// screen shows the reason.
    pub fn set_operator_out_of_service(&mut self, now: Instant, reason: Option<String>) {
        let input = match reason {
            Some(reason_en) => Input::DeviceFault {
                device: Device::Operator,
                reason_zh: "设备维护中".into(),
                reason_en,
                hint_zh: "由运维人员暂停服务".into(),
                hint_en: "Taken out of service by an operator".into(),
            },
            None => Input::DeviceRecovered {
                device: Device::Operator,
            },
        };
        self.input(now, input);
    }

    /// Pictures for the screen since the last call, oldest first: the newest preview frame (downscaled to
    /// at most [`PICTURE_MAX_SIDE`], at most one per call, at most 30 a second) while the screen shows
    /// the camera (Scan, Framing); the standardized photo of a checked shot ([`ui::Picture::Shot`],
    /// decoded from the in-memory JPEG before it is sealed); [`ui::Picture::ClearShots`] when a session
    /// ends. The first call switches pictures on: until a screen asks, none are made.
    pub fn take_pictures(&mut self) -> Vec<ui::Picture> {
        self.pictures_wanted = true;
        std::mem::take(&mut self.pictures)
    }

    /// Whether the student is in front of the camera before a shot (framing, countdown): the only time
    /// guidance and liveness are worth computing.
    fn before_shot(&self) -> bool {
        matches!(self.session.state(), StateKind::Framing | StateKind::Countdown)
    }

    /// Whether the current screen shows the live camera.
    fn shows_camera(&self) -> bool {
        matches!(self.session.state(), StateKind::Scan | StateKind::Framing)
    }

    fn picture_due(&self, now: Instant) -> bool {
        self.pictures_wanted
            && self.preview.is_some()
            && self.shows_camera()
            && self.last_picture.is_none_or(|l| now >= l + PICTURE_EVERY)
    }

    /// Hands the screen this preview frame, replacing a preview it has not taken yet.
    /// Returns whether the frame was new (not yet offered).
    fn offer_picture(&mut self, frame: &hal::Frame) -> bool {
        if self.last_picture_seq == Some(frame.seq) {
            return false;
        }
        self.last_picture_seq = Some(frame.seq);
        let image = downscale(&frame.image, PICTURE_MAX_SIDE);
        self.pictures.retain(|p| !matches!(p, ui::Picture::Preview(_)));
        self.pictures.push(ui::Picture::Preview(image));
        true
    }

    fn push_picture(&mut self, picture: ui::Picture) {
        if !self.pictures_wanted {
            return;
        }
        if picture == ui::Picture::ClearShots {
            // Shots nobody has taken yet are forgotten anyway: keep the queue bounded when the screen lags.
            self.pictures.retain(|p| matches!(p, ui::Picture::Preview(_)));
        }
        self.pictures.push(picture);
    }

    /// Events since the last call.
    pub fn take_events(&mut self) -> Vec<ShellEvent> {
        std::mem::take(&mut self.events)
    }

    /// Unix seconds at `now`.
    pub fn wall(&self, now: Instant) -> i64 {
        self.wall_origin + now.saturating_duration_since(self.origin).as_secs() as i64
    }

    fn millis(&self, now: Instant) -> Millis {
        Millis::from_duration(now.saturating_duration_since(self.origin))
    }

    /// A touch, a button or any other input. A slow step still waiting for its tick runs first, so
    /// the session sees its answer before this input, as if it had never waited.
    pub fn input(&mut self, now: Instant, input: Input) {
        while !self.deferred.is_empty() {
            self.run_deferred(now);
        }
        let effects = self.session.handle(now, input);
        self.execute(now, effects);
    }

    /// When [`Kiosk::tick`] next has work to do on its own: the session's timer, or the next preview frame.
    pub fn next_wakeup(&self, now: Instant) -> Instant {
        if !self.deferred.is_empty() {
            return now;
        }
        let preview = match self.preview {
            Some(PreviewPurpose::QrScan) => Some(self.last_qr.map_or(now, |t| t + QR_EVERY)),
            Some(PreviewPurpose::Framing) if self.before_shot() => {
                Some(self.last_guidance.map_or(now, |t| t + GUIDANCE_EVERY))
            }
            Some(PreviewPurpose::Framing) => None,
            None => None,
        };
        let reconnect = (!self.supervisor.is_up(DeviceId::Camera))
            .then(|| self.last_reconnect.map_or(now, |t| t + RECONNECT_EVERY));
        let picture = (self.pictures_wanted && self.preview.is_some() && self.shows_camera())
            .then(|| self.last_picture.map_or(now, |t| t + PICTURE_EVERY));
        [
            self.session.poll_timeout(),
            preview,
            picture,
            self.service_wakeup(now),
            reconnect,
            Some(now + Duration::from_millis(250)),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(now)
        .max(now)
    }

    /// The main loop's body: session timers, the seat, the camera preview (QR or guidance), reconnects.
    pub fn tick(&mut self, now: Instant) {
        if !self.deferred.is_empty() {
            // The waiting screen has been presented: do the slow step now, and nothing else this tick
            // (the screen it leads to is presented before anything more happens).
            self.run_deferred(now);
            return;
        }
        if self.session.poll_timeout().is_some_and(|t| t <= now) {
            let effects = self.session.handle_timeout(now);
            self.execute(now, effects);
            if !self.deferred.is_empty() {
                // A slow step is next (the order was paid: the job is committed): its waiting screen
                // is presented first, and nothing (a guidance update, say) may run it early.
                self.note_screen();
                return;
            }
        }
        if self.last_disk_check.is_none_or(|l| now >= l + DISK_CHECK_EVERY) {
            self.last_disk_check = Some(now);
            self.check_disk(now);
        }
        let t = self.millis(now);
        let seat = self.seat.poll(t);
        if let Ok(status) = &seat {
            self.note_seat(*status);
        }
        self.observe(
            now,
            DeviceId::Seat,
            seat.as_ref().map(|_| ()).map_err(|e| e.kind()),
        );
        if self.session.state() == StateKind::Service {
            self.service_tick(now);
        }
        if !self.supervisor.is_up(DeviceId::Camera) {
            if self.last_reconnect.is_none_or(|l| now >= l + RECONNECT_EVERY) {
                self.last_reconnect = Some(now);
                let r = self.camera.reconnect(t).map_err(|e| e.kind());
                self.observe(now, DeviceId::Camera, r);
            }
            return;
        }
        // The screen's picture goes alone: a QR scan or the guidance due at the same time waits for the
        // next tick (right after this one is presented), so a preview frame is never held back behind
        // 10-30 ms of decoding or models.
        let picture_due = self.picture_due(now);
        let qr_due = !picture_due
            && self.preview == Some(PreviewPurpose::QrScan)
            && self.last_qr.is_none_or(|l| now >= l + QR_EVERY);
        // Guidance and liveness look at the student before the shot (framing and the countdown); the
        // session keeps the framing preview running until the student leaves, which the screens after
        // the shot (checking, result, choose, pay) do not need analysed.
        let guidance_due = !picture_due
            && self.before_shot()
            && self.preview == Some(PreviewPurpose::Framing)
            && self.last_guidance.is_none_or(|l| now >= l + GUIDANCE_EVERY);
        if qr_due || guidance_due || picture_due {
            // One frame serves every consumer due at this tick. The times are set first so that a failing
            // camera is asked again at the usual pace, not in a tight loop.
            if qr_due {
                self.last_qr = Some(now);
            }
            if guidance_due {
                self.last_guidance = Some(now);
            }
            if picture_due {
                // Keep the cadence: the next picture is due one interval after this one was due, not
                // after this (possibly late) tick, unless the loop fell a whole interval behind.
                let due = self.last_picture.map_or(now, |l| l + PICTURE_EVERY);
                self.last_picture = Some(if now.saturating_duration_since(due) < PICTURE_EVERY {
                    due
                } else {
                    now
                });
            }
            let frame = self.camera.preview_frame(t);
            let ok = frame.as_ref().map(|_| ()).map_err(|e| e.kind());
            self.observe(now, DeviceId::Camera, ok);
            if let Ok(frame) = frame {
                if picture_due {
                    let new = self.offer_picture(&frame);
                    if !new
                        && !self.picture_retried
                        && let Some(retry) = (now + PICTURE_RETRY).checked_sub(PICTURE_EVERY)
                    {
                        // The camera has no new frame yet: look again shortly rather than a whole
                        // interval later, which would drop this frame from the screen.
                        self.last_picture = Some(retry);
                        self.picture_retried = true;
                    } else {
                        self.picture_retried = false;
                    }
                }
                if qr_due {
                    self.qr.offer(&frame);
                    if let Ok(Some(payload)) = hal::QrSource::poll(&mut self.qr, t) {
                        self.input(now, Input::Qr(payload));
                    }
                }
                if guidance_due {
                    match self
                        .analyzer
                        .liveness_sample(&frame.image, t.0, self.liveness.roi())
                    {
                        Ok((sample, roi)) => self.liveness.observe(sample, roi),
                        Err(e) => self.warn(format!("liveness: {e}")),
                    }
                    match self.analyzer.preview(now, &frame.image, &self.guidance_spec) {
                        Ok(mut g) => {
                            g.blink_prompt = self.liveness.wants_blink(t.0);
                            self.input(now, Input::Guidance(g))
                        }
                        Err(e) => self.warn(format!("guidance: {e}")),
                    }
                }
            }
        }
        self.note_screen();
    }

    /// Feeds a device call's outcome to the supervisor and turns a transition into a session input.
    fn observe(&mut self, now: Instant, device: DeviceId, result: Result<(), hal::ErrorKind>) {
        let Some(event) = self.supervisor.observe(device, result) else {
            return;
        };
        let input = match event {
            DeviceEvent::Down { device, kind } => {
                let reason = hal::supervisor::reason(device, kind);
                let hint = hal::supervisor::hint(device, kind);
                self.events.push(ShellEvent::DeviceDown {
                    device: device.as_str().into(),
                    reason: reason.en.clone(),
                });
                Input::DeviceFault {
                    device: session_device(device),
                    reason_zh: reason.zh,
                    reason_en: reason.en,
                    hint_zh: hint.zh.into(),
                    hint_en: hint.en.into(),
                }
            }
            DeviceEvent::Up { device } => {
                self.events.push(ShellEvent::DeviceUp {
                    device: device.as_str().into(),
                });
                Input::DeviceRecovered {
                    device: session_device(device),
                }
            }
        };
        self.input(now, input);
    }

    /// Below the free-space threshold the store is reported down, so the session goes (or stays) out of
    /// service with a reason a technician can act on, and comes back by itself when space is freed.
    fn check_disk(&mut self, now: Instant) {
        let low = match crate::outbox::disk::low_space(&self.data_dir, self.min_free_bytes) {
            Ok(free) => free.is_some(),
            Err(e) => {
                self.warn(format!("free space unknown: {e}"));
                return;
            }
        };
        if low == self.disk_low {
            return;
        }
        self.disk_low = low;
        let input = if low {
            self.events.push(ShellEvent::DeviceDown {
                device: "storage".into(),
                reason: "disk almost full".into(),
            });
            Input::DeviceFault {
                device: Device::Store,
                reason_zh: "存储空间不足".into(),
                reason_en: "storage almost full".into(),
                hint_zh: "检查网络与上传服务，待照片上传后空间会自动释放；或清理数据目录".into(),
                hint_en: "Check the network and the uploader: space is freed once photos are uploaded; or clean the data directory".into(),
            }
        } else {
            self.events.push(ShellEvent::DeviceUp {
                device: "storage".into(),
            });
            Input::DeviceRecovered {
                device: Device::Store,
            }
        };
        self.input(now, input);
    }

    fn warn(&mut self, message: String) {
        tracing::warn!("{message}");
        self.events.push(ShellEvent::Warning { message });
    }

    fn note_screen(&mut self) {
        if !self.shows_camera() {
            // A preview nobody took before the camera left the screen must not flash on the next one.
            self.pictures.retain(|p| !matches!(p, ui::Picture::Preview(_)));
        }
        let view = self.session.view();
        if self.last_view.as_ref() == Some(&view) {
            return;
        }
        let text = ui::text::render(&view);
        self.last_view = Some(view);
        if self.last_screen.as_deref() != Some(text.as_str()) {
            self.last_screen = Some(text.clone());
            let screen = format!("{:?}", self.session.state());
            self.events.push(ShellEvent::Screen { screen, text });
        }
    }

    /// Executes effects in order, feeding answers back to the session until it has nothing more to say.
    fn execute(&mut self, now: Instant, effects: Vec<Effect>) {
        self.execute_queue(now, effects.into(), false);
    }

    /// Runs the deferred slow step and what follows it (up to the next slow step).
    fn run_deferred(&mut self, now: Instant) {
        let queue = std::mem::take(&mut self.deferred);
        self.execute_queue(now, queue, true);
    }

    /// Runs `queue` in order, with the session's answers appended as they come. A slow step (see
    /// [`is_slow`]) is not run here but left with the rest of the queue for the next tick, so the
    /// waiting screen the session is on is shown while it runs; `first_is_due` runs the first effect
    /// regardless (it is the deferred step itself).
    fn execute_queue(&mut self, now: Instant, mut queue: VecDeque<Effect>, first_is_due: bool) {
        let mut due = first_is_due;
        while let Some(effect) = queue.pop_front() {
            if !std::mem::take(&mut due) && is_slow(&effect) {
                queue.push_front(effect);
                // A device event inside one of this batch's effects may have deferred a step of its
                // own meanwhile: it comes after what this batch still has to do.
                queue.extend(std::mem::take(&mut self.deferred));
                self.deferred = queue;
                break;
            }
            match self.run(now, effect) {
                Step::Done => {}
                Step::Answer(input) => queue.extend(self.session.handle(now, input)),
                // The rest of this batch must not run (e.g. no capture after a shot that was not
                // recorded): hand the failure to the session and continue with what it says instead.
                Step::Abort(input) => {
                    queue.clear();
                    queue.extend(self.session.handle(now, input));
                }
            }
        }
        self.note_screen();
    }

    fn store_fault(&mut self, what: &str, e: &dyn std::fmt::Display) -> Input {
        self.warn(format!("{what}: {e}"));
        Input::DeviceFault {
            device: Device::Store,
            reason_zh: "数据存储故障".into(),
            reason_en: format!("storage fault ({what})"),
            hint_zh: "检查存储卡是否已满或损坏，查看日志".into(),
            hint_en: "Check whether the storage card is full or damaged; read the log".into(),
        }
    }

    fn run(&mut self, now: Instant, effect: Effect) -> Step {
        let t = self.millis(now);
        let wall = self.wall(now);
        match effect {
            Effect::SetLights(mode) => {
                let r = self.lights.set_mode(hal_light(mode), t).map_err(|e| e.kind());
                if r.is_ok() {
                    self.service.light_mode = Some(hal_light(mode));
                }
                self.observe(now, DeviceId::Lights, r);
                Step::Done
            }
            Effect::StartPreview(purpose) => {
                // A new scan is a new person: liveness evidence starts over.
                if purpose == PreviewPurpose::QrScan {
                    self.liveness.reset();
                }
                self.preview = Some(purpose);
                self.qr.reset();
                self.last_qr = None;
                self.last_guidance = None;
                Step::Done
            }
            Effect::StopPreview => {
                self.preview = None;
                Step::Done
            }
            Effect::Seat(cmd) => {
                let r = self.seat.command(hal_seat(cmd), t).map_err(|e| e.kind());
                self.observe(now, DeviceId::Seat, r);
                Step::Done
            }
            Effect::VerifyTicket(payload) => Step::Answer(self.verify(wall, &payload)),
            Effect::ConsumeShot { ticket, shot_no } => {
                let sid = match self.store_session(wall) {
                    Ok(sid) => sid,
                    Err(e) => return Step::Abort(self.store_fault("begin session", &e)),
                };
                match self.store.consume_shot(&ticket, sid, wall) {
                    Ok(n) => {
                        if n != shot_no {
                            self.warn(format!("store numbered the shot {n}, the session {shot_no}"));
                        }
                        self.events.push(ShellEvent::ShotConsumed { shot_no: n });
                        Step::Done
                    }
                    Err(e) => Step::Abort(self.store_fault("consume shot", &e)),
                }
            }
            Effect::Capture { shot_no } => {
                // Exposure and white balance stay fixed for the still, so the lights' shoot mode decides them.
                if let Err(e) = self.camera.lock_exposure(true) {
                    self.warn(format!("exposure lock: {e}"));
                }
                let still = self.camera.capture_still(t);
                let _ = self.camera.lock_exposure(false);
                match still {
                    Ok(frame) => {
                        self.observe(now, DeviceId::Camera, Ok(()));
                        self.current.stills.insert(shot_no, frame.image);
                        Step::Answer(Input::Captured { shot_no })
                    }
                    Err(e) => {
                        let reason = e.to_string();
                        self.observe(now, DeviceId::Camera, Err(e.kind()));
                        Step::Answer(Input::CaptureFailed { reason })
                    }
                }
            }
            Effect::RunChecks { shot_no, spec } => self.run_checks(wall, t.0, shot_no, &spec),
            // The store counts candidates, liveness failures and failures in a row when the verdict is
            // recorded (`record_check`), in the same transaction as the verdict itself; these effects
            // only confirm what is already durable.
            Effect::StoreCandidate { .. }
            | Effect::RecordLivenessFailure { .. }
            | Effect::RecordCheckFailure { .. } => Step::Done,
            Effect::LockTicket { ticket } => match self.store.lock_ticket(&ticket, "liveness", wall) {
                Ok(_) => Step::Done,
                Err(e) => Step::Answer(self.store_fault("lock ticket", &e)),
            },
            Effect::StartCooldown { ticket, minutes } => {
                match self
                    .store
                    .set_cooldown(&ticket, wall + i64::from(minutes) * 60, wall)
                {
                    Ok(_) => Step::Done,
                    Err(e) => Step::Answer(self.store_fault("cool-down", &e)),
                }
            }
            Effect::CreateOrder {
                ticket,
                shot_no,
                amount_fen,
            } => match self.gateway.create_order(&ticket, shot_no, amount_fen) {
                Ok(o) => Step::Answer(Input::OrderCreated {
                    order_id: o.order_id,
                    qr_url: o.qr_url,
                }),
                Err(e) => Step::Answer(Input::OrderFailed {
                    reason: e.to_string(),
                }),
            },
            Effect::PollOrder { order_id } => match self.gateway.poll(&order_id) {
                Ok(status) => Step::Answer(Input::OrderStatus { order_id, status }),
                Err(e) => Step::Answer(Input::OrderFailed {
                    reason: e.to_string(),
                }),
            },
            Effect::CancelOrder { order_id } => {
                if let Err(e) = self.gateway.cancel(&order_id) {
                    self.warn(format!("cancel order {order_id}: {e}"));
                }
                Step::Done
            }
            Effect::Enqueue {
                ticket,
                shot_no,
                spec,
                order_id,
            } => Step::Answer(self.enqueue(wall, ticket, shot_no, &spec, order_id)),
            Effect::Service(cmd) => self.service_command(now, cmd),
            Effect::Audit { event, detail } => {
                if let Err(e) = self.store.audit("technician", event, &detail, wall) {
                    self.warn(format!("audit {event}: {e}"));
                }
                Step::Done
            }
            Effect::SessionEnded { ticket, outcome } => {
                self.push_picture(ui::Picture::ClearShots);
                self.end_session(wall, ticket, &outcome);
                Step::Done
            }
        }
    }

    fn store_session(&mut self, wall: i64) -> Result<SessionId, StoreError> {
        if let Some(sid) = self.current.store_session {
            return Ok(sid);
        }
        let sid = self.store.begin_session(wall)?;
        self.current.store_session = Some(sid);
        Ok(sid)
    }

    fn verify(&mut self, wall: i64, payload: &[u8]) -> Input {
        if let Err(e) = self.store_session(wall) {
            return self.store_fault("begin session", &e);
        }
        let ticket = match verify(payload, &self.keys, &self.policy, wall) {
            Ok(t) => t,
            Err(rejection) => return self.rejected(rejection),
        };
        match self.store.admit_ticket(&ticket, wall) {
            Err(e) => self.store_fault("admit ticket", &e),
            Ok(Err(rejection)) => self.rejected(rejection),
            Ok(Ok(state)) => {
                self.events.push(ShellEvent::TicketAccepted {
                    ticket: ticket.id.to_string(),
                    shots_used: state.shots_used,
                });
                self.current.ticket = Some(ticket.clone());
                self.service.remember_name(ticket.id, &ticket.masked_name);
                // A draft records the spec it passed against; it is filed under that spec.
                let spec_of = |shot_no: u8| {
                    self.drafts
                        .spec_of(&ticket.id, shot_no)
                        .unwrap_or_else(|| crate::vision::spec::DEFAULT_SPEC.to_string())
                };
                let candidates = state
                    .candidates
                    .iter()
                    .map(|c| Candidate {
                        shot_no: c.shot_no,
                        spec: spec_of(c.shot_no),
                    })
                    .collect();
                Input::TicketVerified(Ok(TicketStatus {
                    ticket,
                    shots_used: state.shots_used,
                    shots_granted: state.shots_granted,
                    liveness_failures: state.liveness_failures.min(255) as u8,
                    failures_in_a_row: state.consecutive_fails.min(255) as u8,
                    candidates,
                }))
            }
        }
    }

    fn rejected(&mut self, rejection: Rejection) -> Input {
        tracing::info!(code = rejection.code(), "ticket refused: {rejection}");
        self.events.push(ShellEvent::TicketRejected {
            code: rejection.code().into(),
            message_en: rejection.message_en(),
        });
        Input::TicketVerified(Err(rejection))
    }

    /// With `false`, a shot whose liveness stays undetermined (no blink seen) is not blocked: the check is
    /// reported as an advisory. Only `kiosk demo` does this, because its simulated camera plays still
    /// photographs, which cannot blink; a frozen stream or screen texture still fails. A kiosk always
    /// requires liveness.
    pub fn set_liveness_required(&mut self, required: bool) {
        self.liveness_required = required;
    }

    fn run_checks(&mut self, wall: i64, now_ms: u64, shot_no: u8, spec_id: &str) -> Step {
        let Some(ticket) = self.current.ticket.clone() else {
            return Step::Answer(Input::CaptureFailed {
                reason: "no ticket in hand".into(),
            });
        };
        let Some(still) = self.current.stills.get(&shot_no) else {
            return Step::Answer(Input::CaptureFailed {
                reason: format!("no still for shot {shot_no}"),
            });
        };
        let spec = match self.specs.iter().find(|s| s.id == spec_id) {
            Some(s) => s.clone(),
            None => {
                self.warn(format!("unknown spec {spec_id:?}"));
                return Step::Answer(Input::DeviceFault {
                    device: Device::Vision,
                    reason_zh: "照片规格配置错误".into(),
                    reason_en: format!("photo spec {spec_id:?} is not configured"),
                    hint_zh: "检查配置文件中的照片规格".into(),
                    hint_en: "Check the photo specs in the configuration".into(),
                });
            }
        };
        let started = crate::clock::monotonic();
        let analysis = match self.analyzer.analyze(still, &spec) {
            Ok(a) => a,
            Err(e) => {
                self.warn(format!("checks failed to run: {e}"));
                return Step::Answer(Input::DeviceFault {
                    device: Device::Vision,
                    reason_zh: "照片检测模块故障".into(),
                    reason_en: format!("photo checks cannot run: {e}"),
                    hint_zh: "运行 scripts/setup.sh 检查模型文件".into(),
                    hint_en: "Run scripts/setup.sh to check the model files".into(),
                });
            }
        };
        let ms = (crate::clock::monotonic() - started).as_secs_f64() * 1000.0;
        // The screen shows the photo as it would be filed, decoded here from the JPEG still in memory:
        // the sealed draft below cannot be read back, and nothing is written in clear for the screen.
        let shot_picture = match &analysis.standardized {
            Some(std) if self.pictures_wanted => Some(
                image::load_from_memory_with_format(&std.jpeg, image::ImageFormat::Jpeg)
                    .map(|img| rgb_picture(img.into_rgb8())),
            ),
            _ => None,
        };
        let mut verdict = analysis.verdict;
        // Liveness from the framing preview before this shot: not live fails the shot and counts towards
        // the lock; undetermined (no blink seen) blocks the pass without counting.
        let mut liveness = self.liveness.check(now_ms);
        if !self.liveness_required && liveness.status == CheckStatus::Undetermined {
            liveness.status = CheckStatus::Advisory;
        }
        let liveness_failed = liveness.status == CheckStatus::Fail;
        verdict.checks.push(liveness);
        let passed = verdict.passed() && analysis.standardized.is_some();
        let record = serde_json::json!({
            "shot_no": shot_no,
            "spec": spec.id,
            "passed": passed,
            "checks": verdict.checks,
            "times_ms": analysis.times,
        });
        let record_json = record.to_string();
        let rows: Vec<CheckRow> = verdict
            .checks
            .iter()
            .map(|c| CheckRow {
                id: c.id.to_string(),
                status: status_str(c.status).into(),
                value: c.value,
            })
            .collect();
        if passed {
            // The draft is sealed on disk before the store calls the shot a candidate.
            let original = match encode_jpeg(still, ORIGINAL_JPEG_QUALITY, spec.output.dpi) {
                Ok(j) => j,
                Err(e) => {
                    return Step::Answer(self.store_fault("encode original", &e));
                }
            };
            let standardized = analysis
                .standardized
                .as_ref()
                .map(|s| s.jpeg.as_slice())
                .unwrap_or_default();
            let files = [
                (ROLE_STANDARDIZED, standardized),
                (ROLE_ORIGINAL, &original[..]),
                (ROLE_RECORD, record_json.as_bytes()),
            ];
            if let Err(e) = self.drafts.save(&ticket.id, shot_no, &spec.id, &files) {
                return Step::Answer(self.store_fault("save draft", &e));
            }
        }
        let check = ShotCheck {
            passed,
            liveness_failed,
            record_json: &record_json,
            per_check: &rows,
        };
        if let Err(e) = self.store.record_check(&ticket.id, shot_no, &check, wall) {
            return Step::Answer(self.store_fault("record check", &e));
        }
        match shot_picture {
            Some(Ok(image)) => self.push_picture(ui::Picture::Shot { shot_no, image }),
            Some(Err(e)) => self.warn(format!("standardized photo of shot {shot_no} not shown: {e}")),
            None => {}
        }
        let failed = verdict.blocking().map(|c| c.id.to_string()).collect();
        self.events.push(ShellEvent::Verdict(ShotVerdict {
            shot_no,
            passed,
            failed,
            ms: (ms * 10.0).round() / 10.0,
        }));
        Step::Answer(Input::Checked {
            shot_no,
            verdict,
            liveness_failed,
        })
    }

    fn enqueue(
        &mut self,
        wall: i64,
        ticket: TicketId,
        shot_no: u8,
        spec: &str,
        order_id: Option<String>,
    ) -> Input {
        let fail = |kiosk: &mut Self, reason: String| {
            kiosk.warn(format!("enqueue: {reason}"));
            Input::EnqueueFailed { reason }
        };
        let spooled = match self.drafts.spool_draft(&ticket, shot_no) {
            Ok(s) => s,
            Err(e) => return fail(self, format!("cannot spool the photo of shot {shot_no}: {e}")),
        };
        let meta = serde_json::json!({ "ticket": ticket.to_string(), "shot_no": shot_no, "spec": spec, "order_id": order_id });
        let job = NewJob {
            ticket,
            shot_no,
            spec_id: spec.to_string(),
            files: spooled,
            meta_json: meta.to_string(),
        };
        match self.store.enqueue_and_complete(&job, wall) {
            Ok(job_id) => {
                // The job is durable; the drafts are no longer needed.
                if let Err(e) = self.drafts.remove_ticket(&ticket) {
                    self.warn(format!("drafts of {ticket} not removed: {e}"));
                }
                self.events.push(ShellEvent::Enqueued {
                    job_id: job_id.to_string(),
                });
                Input::Enqueued {
                    job_id: job_id.to_string(),
                }
            }
            Err(e) => fail(self, e.to_string()),
        }
    }

    fn end_session(&mut self, wall: i64, ticket: Option<TicketId>, outcome: &Outcome) {
        let outcome_str = outcome_code(outcome);
        let sid = match self.store_session(wall) {
            Ok(sid) => Some(sid),
            Err(e) => {
                self.warn(format!("session not recorded: {e}"));
                None
            }
        };
        if let Some(sid) = sid
            && let Err(e) = self.store.end_session(sid, ticket.as_ref(), &outcome_str, wall)
        {
            self.warn(format!("session end not recorded: {e}"));
        }
        self.events.push(ShellEvent::SessionEnded {
            ticket: ticket.map(|t| t.to_string()),
            outcome: outcome_str,
        });
        self.current = Current::default();
    }
}

/// Effects that take long enough (a ticket signature and the database, a still from the camera, the
/// photo checks, a durable commit) that the session's waiting screen (Verifying, Capturing, Checking,
/// Finishing) must be on the screen while they run.
fn is_slow(effect: &Effect) -> bool {
    matches!(
        effect,
        Effect::VerifyTicket(_) | Effect::Capture { .. } | Effect::RunChecks { .. } | Effect::Enqueue { .. }
    )
}

enum Step {
    Done,
    Answer(Input),
    Abort(Input),
}

/// An image as a picture for the screen.
fn rgb_picture(img: RgbImage) -> ui::RgbImage {
    ui::RgbImage {
        width: img.width(),
        height: img.height(),
        pixels: std::sync::Arc::new(img.into_raw()),
    }
}

/// A cheap downscale for the screen: the smallest whole factor that brings the longest side to at most
/// `max_side` (a 1080p frame is exactly halved), each output pixel the mean of its area (a box filter).
/// Done by `fast_image_resize` (SIMD, ~1 ms for a 1080p frame): `image`'s generic thumbnail filter
/// took over half of the main loop's time at 25 pictures a second.
pub fn downscale(img: &RgbImage, max_side: u32) -> ui::RgbImage {
    use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer, images::Image};
    let (w, h) = img.dimensions();
    let longest = w.max(h).max(1);
    let f = longest.div_ceil(max_side.max(1)).max(1);
    if f == 1 {
        return rgb_picture(img.clone());
    }
    let (ow, oh) = ((w / f).max(1), (h / f).max(1));
    let mut dst = Image::new(ow, oh, PixelType::U8x3);
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Box));
    match Resizer::new().resize(img, &mut dst, &options) {
        Ok(()) => ui::RgbImage {
            width: ow,
            height: oh,
            pixels: std::sync::Arc::new(dst.into_vec()),
        },
        // Only a buffer/size mismatch can fail, which the sizes above rule out; stay correct anyway.
        Err(_) => rgb_picture(image::imageops::thumbnail(img, ow, oh)),
    }
}

fn status_str(s: CheckStatus) -> &'static str {
    match s {
        CheckStatus::Pass => "pass",
        CheckStatus::Fail => "fail",
        CheckStatus::Advisory => "advisory",
        CheckStatus::Undetermined => "undetermined",
    }
}

/// The outcome as a short stable code for the store and reports.
pub fn outcome_code(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Rejected(code) => format!("rejected:{code}"),
        Outcome::Fault(device) => format!("fault:{device:?}").to_lowercase(),
        other => {
            let s = format!("{other:?}");
            // CamelCase to snake_case.
            let mut out = String::new();
            for (i, ch) in s.chars().enumerate() {
                if ch.is_uppercase() && i > 0 {
                    out.push('_');
                }
                out.push(ch.to_ascii_lowercase());
            }
            out
        }
    }
}

fn session_device(d: DeviceId) -> Device {
    match d {
        DeviceId::Camera => Device::Camera,
        DeviceId::Seat | DeviceId::Buttons => Device::Seat,
        DeviceId::Lights => Device::Lights,
        DeviceId::QrScanner => Device::QrScanner,
    }
}

fn hal_light(m: session::LightMode) -> hal::LightMode {
    match m {
        session::LightMode::Idle => hal::LightMode::Idle,
        session::LightMode::Preview => hal::LightMode::Preview,
        session::LightMode::PreviewGlasses => hal::LightMode::PreviewGlasses,
        session::LightMode::Shoot => hal::LightMode::Shoot,
        session::LightMode::ShootGlasses => hal::LightMode::ShootGlasses,
    }
}

fn hal_seat(c: session::SeatCommand) -> hal::SeatCommand {
    match c {
        session::SeatCommand::Up => hal::SeatCommand::Up,
        session::SeatCommand::Down => hal::SeatCommand::Down,
        session::SeatCommand::Stop => hal::SeatCommand::Stop,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downscale_halves_a_1080p_frame_with_each_pixel_the_mean_of_its_block() {
        // A pattern with sharp 1-pixel detail: any filter other than the 2x2 mean gets it wrong.
        let img = RgbImage::from_fn(1920, 1080, |x, y| {
            image::Rgb([
                ((x * 7 + y * 3) % 256) as u8,
                if (x + y) % 2 == 0 { 250 } else { 10 },
                ((x / 3 + y / 5) * 11 % 256) as u8,
            ])
        });
        let out = downscale(&img, PICTURE_MAX_SIDE);
        assert_eq!((out.width, out.height), (960, 540));
        assert_eq!(out.pixels.len(), 960 * 540 * 3);
        let mut worst = 0i32;
        for (ox, oy) in [(0, 0), (1, 0), (17, 33), (480, 270), (959, 539), (300, 500)] {
            for c in 0..3 {
                let sum: u32 = [(0, 0), (1, 0), (0, 1), (1, 1)]
                    .iter()
                    .map(|(dx, dy)| u32::from(img.get_pixel(ox * 2 + dx, oy * 2 + dy)[c]))
                    .sum();
                let want = (sum as f64 / 4.0).round() as i32;
                let got = i32::from(out.pixels[((oy * 960 + ox) * 3) as usize + c]);
                worst = worst.max((got - want).abs());
            }
        }
        assert!(worst <= 1, "off by {worst} from the 2x2 mean");
        // Small frames are passed through unchanged.
        let small = RgbImage::from_pixel(640, 480, image::Rgb([1, 2, 3]));
        let same = downscale(&small, PICTURE_MAX_SIDE);
        assert_eq!((same.width, same.height), (640, 480));
        assert_eq!(&same.pixels[..3], &[1, 2, 3]);
    }
}
