//! `kiosk demo`: a scripted graduate goes through one complete session on simulated hardware, with the
//! real store (SQLite file), the real ticket verification, the real QR decoding of camera frames and the
//! real checks (ONNX Runtime).
//!
//! The demo runs on a virtual timeline: the student "thinks" for a second on each screen and the seat
//! moves at its simulated speed, but no real time is waited, so a 40-second session takes as long as its
//! computation. What is in front of the camera is scripted by a fixture folder:
//!
//! ```text
//! FRAMES/scenario.toml   optional: simulated wall clock, glasses, seat adjustment
//! FRAMES/scan/           frames of the student holding the phone with the ticket QR up to the camera
//! FRAMES/framing/        preview frames of the seated student (optional: defaults to the shots)
//! FRAMES/shots/          the stills, in order: shot 1, shot 2, ...
//! ```
//!
//! It does not decide anything the session decides; it only plays the student and the world.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hal::sim::{PreviewFit, SimCamera, SimCameraConfig, SimLights, SimSeat, SimSeatConfig};
use serde::{Deserialize, Serialize};
use ui::{Intent, Screen};

use super::payment::NoGateway;
use super::{Kiosk, Parts, ShellEvent, ShotVerdict};
use crate::config::KioskConfig;
use crate::runtime;
use crate::session::{Input, StateKind};
use crate::vision::analyze::Analyzer;

/// How long the scripted student looks at a screen before touching it.
const THINK: Duration = Duration::from_millis(1200);
/// The demo gives up after this much virtual time (a session has its own timeouts well inside it).
const MAX_VIRTUAL: Duration = Duration::from_secs(15 * 60);

/// Options of `kiosk demo`.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    pub config: PathBuf,
    pub frames: PathBuf,
    /// Where the database and the photos go; a fresh directory when `None`.
    pub data_dir: Option<PathBuf>,
    /// Print every screen as the student sees it (stderr).
    pub show_screens: bool,
}

/// The optional `scenario.toml` of a frames folder.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// The simulated wall clock at the start (RFC 3339). Committed fixtures pin it so that their tickets'
    /// validity windows hold whenever the demo runs; without it the real clock is used.
    #[serde(default)]
    pub at: Option<String>,
    /// Whether the student wears glasses (chooses the glasses lighting mode).
    #[serde(default = "yes")]
    pub glasses: bool,
    /// Seat adjustment before the first shot: positive raises, negative lowers, in milliseconds of
    /// holding the button.
    #[serde(default)]
    pub seat_ms: i64,
}

fn yes() -> bool {
    true
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            at: None,
            glasses: true,
            seat_ms: 800,
        }
    }
}

/// The demo's result: the last line of `kiosk demo` is this as one JSON object.
#[derive(Clone, Debug, Serialize)]
pub struct DemoReport {
    /// Ticket id (hex), when a ticket was accepted.
    pub ticket: Option<String>,
    pub shots_used: u8,
    pub verdicts: Vec<ShotVerdict>,
    /// The shot filed.
    pub chosen: Option<u8>,
    pub job_id: Option<String>,
    /// Wall time of the whole run on this machine (start-up, models, every check).
    pub elapsed_ms: u64,
    /// Time the student spent at the kiosk on the virtual timeline.
    pub kiosk_time_ms: u64,
    /// How the session ended (`completed`, `rejected:expired`, `out_of_shots`, ...).
    pub outcome: String,
    /// The reason shown to the student when the session did not complete.
    pub reason: Option<String>,
    pub data_dir: String,
}

impl DemoReport {
    pub fn completed(&self) -> bool {
        self.outcome == "completed" && self.job_id.is_some()
    }
}

/// The simulated kiosk the demo drives.
pub type SimKiosk = Kiosk<SimCamera, SimSeat, SimLights>;

/// Runs one scripted session. `on_screen` sees every screen text as it appears.
pub fn run(opts: &DemoOptions, mut on_screen: impl FnMut(Duration, &str)) -> anyhow::Result<DemoReport> {
    let started = crate::clock::monotonic();
    let config = KioskConfig::load(&opts.config)?;
    let scenario = load_scenario(&opts.frames)?;
    let wall_origin = match &scenario.at {
        Some(at) => time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
            .with_context(|| format!("scenario.toml: at = {at:?} is not RFC 3339"))?
            .unix_timestamp(),
        None => crate::clock::unix_now(),
    };
    let data_dir = match &opts.data_dir {
        Some(d) => d.clone(),
        None => fresh_data_dir()?,
    };

    let paths = runtime::setup().context("ONNX Runtime or the models are missing")?;
    let analyzer = Analyzer::new(&paths).context("loading the face models")?;

    let mut camera = SimCamera::new(SimCameraConfig {
        // A UVC kiosk camera streams 1080p MJPEG; the QR on a phone needs those pixels, and the guidance
        // path scales frames down itself.
        preview_width: 1920,
        preview_height: 1080,
        fit: PreviewFit::Crop,
        frame_interval_ms: 40,
    });
    // Frames of a live camera are never pixel-identical (a frozen stream reads as a held-up photo).
    camera.set_sensor_noise(true);
    let scan = opts.frames.join("scan");
    let shots = opts.frames.join("shots");
    let framing = opts.frames.join("framing");
    camera
        .load_set("scan", &scan)
        .with_context(|| format!("loading {}", scan.display()))?;
    let have_shots = shots.is_dir();
    if have_shots {
        camera
            .load_set("shots", &shots)
            .with_context(|| format!("loading {}", shots.display()))?;
        camera.use_stills("shots", 0)?;
    }
    let framing_set = if framing.is_dir() {
        camera
            .load_set("framing", &framing)
            .with_context(|| format!("loading {}", framing.display()))?;
        Some("framing")
    } else if have_shots {
        Some("shots")
    } else {
        None
    };
    let origin = crate::clock::monotonic();
    camera.show_preview_set("scan", hal::Millis::ZERO)?;

    let parts = Parts::from_config(&config, data_dir.clone(), wall_origin).map_err(anyhow::Error::msg)?;
    let seat = SimSeat::new(SimSeatConfig::default());
    let lights = SimLights::new(hal::LightTable::default());
    let mut kiosk = Kiosk::new(parts, analyzer, Box::new(NoGateway), camera, seat, lights, origin)?;
    // The simulated camera plays still photographs: they cannot blink, so liveness stays undetermined and
    // is shown as an advisory here instead of blocking every shot.
    kiosk.set_liveness_required(false);

    let mut student = Student::new(scenario);
    let mut now = origin;
    let mut report = DemoReport {
        ticket: None,
        shots_used: 0,
        verdicts: Vec::new(),
        chosen: None,
        job_id: None,
        elapsed_ms: 0,
        kiosk_time_ms: 0,
        outcome: "unfinished".into(),
        reason: None,
        data_dir: data_dir.display().to_string(),
    };
    let mut ended_at: Option<Instant> = None;
    loop {
        for event in kiosk.take_events() {
            match event {
                ShellEvent::Screen { text, .. } => on_screen(now - origin, &text),
                ShellEvent::TicketAccepted { ticket, shots_used } => {
                    report.ticket = Some(ticket);
                    report.shots_used = shots_used;
                }
                ShellEvent::TicketRejected { code, message_en } => {
                    report.reason = Some(format!("{code}: {message_en}"));
                }
                ShellEvent::ShotConsumed { shot_no } => report.shots_used = report.shots_used.max(shot_no),
                ShellEvent::Verdict(v) => report.verdicts.push(v),
                ShellEvent::Enqueued { job_id } => report.job_id = Some(job_id),
                ShellEvent::SessionEnded { outcome, .. } => {
                    report.outcome = outcome;
                    ended_at.get_or_insert(now);
                }
                ShellEvent::DeviceDown { device, reason } => {
                    report.reason = Some(format!("{device} down: {reason}"));
                }
                ShellEvent::DeviceUp { .. } | ShellEvent::Warning { .. } => {}
            }
        }
        // The session is over; let the last screen (Done, the refusal, the end notice) show briefly.
        if let Some(end) = ended_at
            && now >= end + THINK
        {
            break;
        }
        if now - origin > MAX_VIRTUAL {
            bail!(
                "the demo session did not end within {} s of kiosk time",
                MAX_VIRTUAL.as_secs()
            );
        }

        // The world: what the camera sees follows what the student is doing.
        let state = kiosk.session().state();
        let showing = match state {
            StateKind::Attract | StateKind::Scan | StateKind::Verify | StateKind::Rejected => Some("scan"),
            _ => framing_set,
        };
        if let Some(set) = showing
            && kiosk.camera_mut().showing() != Some(set)
        {
            let t = hal::Millis::from_duration(now - origin);
            kiosk.camera_mut().show_preview_set(set, t)?;
        }

        let view = kiosk.session().view();
        if let Some(screen) = &view.screen_name_changed(&mut student.last_screen) {
            student.on_new_screen(now, screen);
        }
        if let Some(at) = student.next_at
            && at <= now
            && let Some(intent) = student.act(now, &view.screen)
        {
            match (&view.screen, &intent) {
                (_, Intent::Choose(shot)) => report.chosen = Some(*shot),
                (
                    Screen::Result {
                        passed: true,
                        shot_no,
                        ..
                    },
                    Intent::UseThis,
                ) => report.chosen = Some(*shot_no),
                _ => {}
            }
            kiosk.input(now, Input::Ui(intent));
            continue;
        }
        kiosk.tick(now);
        let mut next = kiosk.next_wakeup(now);
        if let Some(at) = student.next_at {
            next = next.min(at.max(now));
        }
        if let Some(end) = ended_at {
            next = next.min(end + THINK);
        }
        // Always move forward a little so a device that wants "now" again cannot stall the timeline.
        now = next.max(now + Duration::from_millis(1));
    }
    report.kiosk_time_ms = (ended_at.unwrap_or(now) - origin).as_millis() as u64;
    report.elapsed_ms = (crate::clock::monotonic() - started).as_millis() as u64;
    if report.outcome != "completed" && report.reason.is_none() {
        report.reason = Some(match report.verdicts.last() {
            Some(v) if !v.passed => format!("{}: last shot failed {}", report.outcome, v.failed.join(", ")),
            _ => report.outcome.clone(),
        });
    }
    Ok(report)
}

fn load_scenario(frames: &Path) -> anyhow::Result<Scenario> {
    if !frames.is_dir() {
        bail!("frames folder {} does not exist", frames.display());
    }
    let path = frames.join("scenario.toml");
    if !path.exists() {
        return Ok(Scenario::default());
    }
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("{}", path.display()))
}

fn fresh_data_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "kiosk-demo-{}-{}",
        std::process::id(),
        crate::clock::unix_now()
    ));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// The scripted graduate: reads each screen for a moment, then does what a compliant student does.
/// `kiosk demo` plays it on a virtual timeline; `kiosk run --sim --autoplay` in real time, in front of
/// the window, so a whole session (and the frame pacing of its preview) runs without a mouse.
#[derive(Debug)]
pub(crate) struct Student {
    scenario: Scenario,
    pub(crate) last_screen: String,
    pub(crate) next_at: Option<Instant>,
    /// Framing steps already done for the current shot: 0 nothing, 1 seat moving, 2 seat stopped.
    framing_step: u8,
    adjusted_seat: bool,
    /// How long the student sits in front of the live preview before each shot (after the seat).
    hold_framing: Duration,
    framing_since: Option<Instant>,
}

impl Student {
    pub(crate) fn new(scenario: Scenario) -> Student {
        Student::holding_framing(scenario, Duration::ZERO)
    }

    /// A student who looks at the live preview for `hold` before every shot.
    pub(crate) fn holding_framing(scenario: Scenario, hold: Duration) -> Student {
        Student {
            scenario,
            last_screen: String::new(),
            next_at: None,
            framing_step: 0,
            adjusted_seat: false,
            hold_framing: hold,
            framing_since: None,
        }
    }

    pub(crate) fn on_new_screen(&mut self, now: Instant, screen: &str) {
        self.next_at = Some(now + THINK);
        if screen == "Framing" {
            self.framing_since = Some(now);
        } else {
            self.framing_step = 0;
            self.framing_since = None;
        }
    }

    /// What to touch on this screen, if anything; schedules the next look.
    pub(crate) fn act(&mut self, now: Instant, screen: &Screen) -> Option<Intent> {
        self.next_at = None;
        let intent = match screen {
            Screen::Attract => Intent::Start,
            Screen::Confirm { .. } => Intent::Confirm,
            Screen::PhotoType { .. } => Intent::Next,
            Screen::Lighting { .. } => Intent::Lighting {
                glasses: self.scenario.glasses,
            },
            Screen::Rules => Intent::AcceptRules,
            Screen::Framing { .. } => {
                let ms = self.scenario.seat_ms;
                if !self.adjusted_seat && ms != 0 {
                    match self.framing_step {
                        0 => {
                            self.framing_step = 1;
                            self.next_at = Some(now + Duration::from_millis(ms.unsigned_abs()));
                            return Some(if ms > 0 { Intent::SeatUp } else { Intent::SeatDown });
                        }
                        _ => {
                            self.adjusted_seat = true;
                            self.next_at = Some(now + THINK);
                            return Some(Intent::SeatStop);
                        }
                    }
                }
                if let Some(since) = self.framing_since
                    && now < since + self.hold_framing
                {
                    self.next_at = Some(since + self.hold_framing);
                    return None;
                }
                Intent::Shoot
            }
            Screen::Result { passed: true, .. } => Intent::UseThis,
            Screen::Result {
                retake_enabled: true,
                shots_left,
                ..
            } if *shots_left > 0 => Intent::Retake,
            Screen::Result { shots_left: 0, .. } => Intent::Continue,
            Screen::Result { retake_in, .. } => {
                // The calm period (冷静期) is still running: look again when it is over.
                self.next_at = Some(now + Duration::from_secs(u64::from(retake_in.unwrap_or(1).max(1))));
                return None;
            }
            Screen::Choose { candidates } => Intent::Choose(*candidates.first()?),
            Screen::Rejected { .. } | Screen::Ended { .. } => Intent::Continue,
            Screen::Locked { has_drafts: true } | Screen::CoolingDown { has_drafts: true, .. } => {
                Intent::OpenDrafts
            }
            Screen::Locked { .. } | Screen::CoolingDown { .. } => Intent::Continue,
            // Waiting for the kiosk (scan, verify, countdown, capture, checks, commit), paying, done, or out
            // of service: nothing to touch.
            _ => return None,
        };
        Some(intent)
    }
}

/// Tracks screen changes by variant name.
pub(crate) trait ScreenName {
    fn screen_name_changed(&self, last: &mut String) -> Option<String>;
}

impl ScreenName for ui::View {
    fn screen_name_changed(&self, last: &mut String) -> Option<String> {
        let name = format!("{:?}", self.screen);
        let name = name.split([' ', '{', '(']).next().unwrap_or_default().to_string();
        // Result screens of different shots count as different screens.
        let key = match &self.screen {
            Screen::Result {
                shot_no,
                retake_enabled,
                ..
            } => format!("{name}{shot_no}{retake_enabled}"),
            Screen::Framing { shot_no, .. } => format!("{name}{shot_no}"),
            _ => name.clone(),
        };
        if *last == key {
            return None;
        }
        *last = key;
        Some(name)
    }
}
