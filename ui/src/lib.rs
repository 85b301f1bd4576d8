//! View models of the kiosk's screens and their renderers. Decides nothing.
//!
//! The session engine (in `kiosk::session`) builds a [`View`] from its state; renderers turn it into
//! pixels or text. Everything here is plain data (Clone, Debug, PartialEq, Serialize) so a renderer can be
//! swapped (the plain-text one in [`text`] for the headless demo, the Slint window of [`SlintFrontend`]
//! with its markup in `ui/slint/` and its adapters in [`adapters`]) and so tests can compare views.
//!
//! What this crate deliberately does not do: decide transitions, read the clock, or know about tickets,
//! the store or devices. It must not depend on `kiosk` (the dependency goes the other way). Texts of fixed
//! screens live here ([`strings`]); texts that come with data (a ticket rejection, a check's message, a
//! device fault) arrive in both languages inside the view.

use serde::{Deserialize, Serialize};

pub mod adapters;
pub mod pictures;
mod slint_frontend;
pub mod strings;
pub mod text;

/// The Slint runtime, for a host that runs the event loop (the `kiosk run --window` binary).
pub use slint;
pub use slint_frontend::SlintFrontend;

/// The compiled Slint markup (`ui/slint/*.slint`): the `KioskWindow` component and the `Kiosk` global.
/// Slint's generated code carries `todo!()` for a feature we do not use (Rust components embedded in
/// markup); the workspace's lints do not apply to code we do not write.
#[allow(
    missing_debug_implementations,
    unreachable_pub,
    clippy::all,
    clippy::todo,
    clippy::unimplemented,
    clippy::disallowed_methods
)]
pub mod generated {
    slint::include_modules!();
}
pub use generated::KioskWindow;

/// Display language. Chinese is the default: the kiosk's users read Chinese first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Lang {
    #[default]
    #[serde(rename = "zh-CN")]
    Zh,
    #[serde(rename = "en")]
    En,
}

impl Lang {
    /// The other language, for the language toggle.
    pub fn toggled(self) -> Lang {
        match self {
            Lang::Zh => Lang::En,
            Lang::En => Lang::Zh,
        }
    }

    /// Picks the string of this language from a pair.
    pub fn pick<'a>(self, zh: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Zh => zh,
            Lang::En => en,
        }
    }
}

/// What the student (or a physical button wired through the shell) asks for. Renderers emit these; the
/// session decides what they mean in its current state and ignores the ones that mean nothing there.
/// Deserialize lets a headless demo script them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Intent {
    /// Touch on the attract screen.
    Start,
    /// Leave the session (every screen with a cancel button).
    Cancel,
    /// "确认" on the identity screen.
    Confirm,
    /// "信息有误" on the identity screen.
    WrongInfo,
    /// Highlight a photo type (spec id) on the photo-type screen.
    SelectPhotoType(String),
    /// Go on from a screen with a selection (photo type).
    Next,
    /// Pick a lighting mode: glasses or not.
    Lighting {
        glasses: bool,
    },
    /// "我已阅读" on the rules screen.
    AcceptRules,
    SeatUp,
    SeatDown,
    SeatStop,
    /// Start the countdown.
    Shoot,
    /// Shoot again after a result (uses a new shot).
    Retake,
    /// Use the photo just shown on the result screen.
    UseThis,
    /// "去草稿箱": open the stored passing shots.
    OpenDrafts,
    /// Pick a stored candidate by its shot number.
    Choose(u8),
    /// Dismiss a notice ("确定").
    Continue,
    /// Switch between Chinese and English.
    ToggleLanguage,
    /// The hidden long-press (top-left corner, 3 s) on any idle screen: asks for the service PIN.
    ServiceRequest,
    /// Service mode (technicians only); see [`ServiceView`].
    Service(ServiceIntent),
}

/// What a technician asks for in service mode. Entering it needs the PIN (or the physical service key,
/// which the shell maps to [`Intent::ServiceRequest`] plus an accepted PIN).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServiceIntent {
    /// One digit on the PIN pad.
    PinDigit(u8),
    /// Delete the last digit.
    PinBackspace,
    /// Open one page of service mode.
    Open(ServicePageKind),
    /// Back to the service menu.
    Back,
    /// Leave service mode (back to Attract, or OutOfService while a device is down).
    Exit,
    /// Run the self-test of every device.
    RunSelfTest,
    /// Seat jog: move while held, stop on release.
    SeatJogUp,
    SeatJogDown,
    SeatJogStop,
    /// Lights test: put the lights in this mode (`idle`, `preview`, `shoot`, `shoot-glasses`, `off`).
    LightsMode(String),
    /// Unlock the ticket of this row of the recent-tickets page (clears a liveness lock or a cool-down).
    Unlock {
        ticket: String,
    },
    /// Give this ticket one more shot (a capture failed, a student was treated unfairly).
    GrantShot {
        ticket: String,
    },
    /// Ask the uploader to retry failed jobs now.
    RetryUploads,
    /// Measure the empty backdrop and the exposure against the spec, and time the seat's full travel.
    RunCalibration,
}

/// The pages of service mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServicePageKind {
    Menu,
    SelfTest,
    Seat,
    Lights,
    Tickets,
    Uploads,
    Counters,
    Calibrate,
}

/// One device or resource in the self-test.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ServiceCheck {
    /// `camera`, `seat`, `lights`, `scanner`, `database`, `models`, `disk`...
    pub name: String,
    /// `None` while running or not run yet.
    pub ok: Option<bool>,
    /// Measured detail in plain technician language ("1920x1080 MJPEG, mean 112", "up 3.1 s, top limit").
    pub detail: String,
}

/// One recent ticket a technician can act on. Only masked data: the issuer masks the name already.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ServiceTicket {
    /// Ticket id (hex), used by the unlock and grant intents.
    pub ticket: String,
    pub masked_name: String,
    pub shots_used: u8,
    pub shots_total: u8,
    /// `locked` (liveness), `cooling-down`, `out-of-shots`, `completed`, `open`.
    pub status: String,
}

/// What service mode shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum ServicePage {
    /// The PIN pad; `entered` digits so far (shown as dots), `wrong` after a refused PIN, `locked_for`
    /// seconds after too many wrong PINs.
    Pin {
        entered: u8,
        wrong: bool,
        locked_for: Option<u32>,
    },
    Menu,
    SelfTest {
        running: bool,
        checks: Vec<ServiceCheck>,
    },
    /// Seat jog with the limit switches and the position where a sensor exists.
    Seat {
        motion: SeatMotion,
        at_top: bool,
        at_bottom: bool,
        position_permille: Option<u16>,
        fault: Option<String>,
    },
    /// Lights test: the current mode and each channel's level in percent.
    Lights {
        mode: String,
        levels: Vec<(String, u8)>,
    },
    /// Recent tickets (newest first) and the result of the last action, in both languages.
    Tickets {
        tickets: Vec<ServiceTicket>,
        message: Option<GuidanceLine>,
    },
    /// Upload backlog: queued, failed (with the newest error), acknowledged today.
    Uploads {
        queued: u32,
        failed: u32,
        acked_today: u32,
        oldest_age_s: Option<u64>,
        last_error: Option<String>,
    },
    /// Counters since install and today.
    Counters {
        rows: Vec<(String, u64, u64)>,
    },
    /// Calibration: the empty backdrop and the exposure against the spec, the seat's full travel.
    Calibrate {
        running: bool,
        checks: Vec<ServiceCheck>,
    },
}

/// An RGB8 picture handed to a renderer, row-major, `width * height * 3` bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RgbImage {
    pub width: u32,
    pub height: u32,
    pub pixels: std::sync::Arc<Vec<u8>>,
}

/// Pictures travel beside the [`View`] (views compare exactly and stay small): the live preview and the
/// standardized photos of the session's shots. Never written to disk by a renderer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Picture {
    /// The newest preview frame (scan and framing screens), already downscaled for the screen.
    Preview(RgbImage),
    /// The standardized photo of a shot as it would be filed (result and choose screens).
    Shot { shot_no: u8, image: RgbImage },
    /// A session ended: forget every shot picture.
    ClearShots,
}

/// A screen the kiosk's main loop drives: the Slint window, or nothing when headless. The main loop
/// calls `present` after every tick with the current view (only when it changed, or when pictures are
/// new), and drains `intents` before the next tick.
pub trait Frontend {
    fn present(&mut self, view: &View, pictures: Vec<Picture>);
    /// Touches since the last call, oldest first.
    fn intents(&mut self) -> Vec<Intent>;
}

/// Everything a renderer needs to draw the current screen.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct View {
    pub screen: Screen,
    pub lang: Lang,
    /// Shot counter (used, total) once a ticket is known; "第 k/N 次" shows `used + 1`.
    pub shots: Option<(u8, u8)>,
    /// Whole seconds before this screen moves on by itself (countdown, pay QR validity, back to the attract
    /// screen), when the screen shows it.
    pub seconds_left: Option<u32>,
    /// Whether a cancel button is offered on this screen.
    pub can_cancel: bool,
}

/// One photo type the student can pick.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PhotoTypeOption {
    /// Spec id, e.g. `chsi-graduate`.
    pub id: String,
    pub name_zh: String,
    pub name_en: String,
}

/// One short live-guidance message ("请坐高一点").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuidanceLine {
    pub zh: String,
    pub en: String,
}

/// Where the eye line sits in the preview relative to the target band, in thousandths of the frame
/// height from the top (integers so views compare exactly).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EyeLine {
    pub y_permille: u16,
    pub band_top_permille: u16,
    pub band_bottom_permille: u16,
}

/// Live guidance from the preview analysis, shown on the framing screen.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Guidance {
    /// Messages, most important first; empty means "looks good".
    pub lines: Vec<GuidanceLine>,
    /// `None` when no face is seen.
    pub eye_line: Option<EyeLine>,
    /// Ask the student to blink (liveness evidence is still missing); the framing screen shows a prompt.
    #[serde(default)]
    pub blink_prompt: bool,
}

/// Which way the seat was last told to move.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub enum SeatMotion {
    #[default]
    Still,
    Up,
    Down,
}

/// One line of the check result: a blocking check or an advisory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CheckLine {
    pub id: String,
    /// `true` for a failed or undetermined check, `false` for an advisory.
    pub blocking: bool,
    pub message_zh: String,
    pub message_en: String,
    pub guidance_zh: String,
    pub guidance_en: String,
}

/// The payment order shown as a QR code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PayOrder {
    pub order_id: String,
    pub qr_url: String,
}

/// Why a session ended on a fixed notice screen before going back to the attract screen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum EndReason {
    /// "信息有误": the student is told to contact the staff.
    WrongInfo,
    /// Prepaid mode and the ticket is not paid.
    Unpaid,
    /// No shots left and no stored candidate.
    OutOfShots,
    /// None of the ticket's photo types is configured on this kiosk.
    NoPhotoType,
    PaymentDeclined,
    PaymentFailed,
    PaymentTimedOut,
}

/// One variant per screen, carrying what that screen shows.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum Screen {
    /// Idle: "请扫描拍摄二维码".
    Attract,
    /// Shows where to hold the phone.
    Scan,
    /// The ticket is being verified.
    Verifying,
    /// The ticket was refused; the reason comes from the ticket verifier or the store.
    Rejected {
        code: String,
        message_zh: String,
        message_en: String,
    },
    /// Identity check; the name is already masked by the issuer.
    Confirm {
        masked_name: String,
        school: String,
        id_last4: String,
    },
    PhotoType {
        options: Vec<PhotoTypeOption>,
        selected: String,
    },
    /// `glasses` is the mode chosen earlier in this session, if any.
    Lighting {
        glasses: Option<bool>,
    },
    Rules,
    /// Live preview with guidance and seat buttons; `shot_no` is the shot the next press will use.
    Framing {
        shot_no: u8,
        guidance: Guidance,
        seat: SeatMotion,
        drafts: u8,
    },
    Countdown {
        shot_no: u8,
    },
    Capturing {
        shot_no: u8,
    },
    /// The camera did not deliver the still. The shot stays used; a technician can grant one.
    CaptureFailed {
        shot_no: u8,
        shots_left: u8,
        drafts: u8,
    },
    Checking {
        shot_no: u8,
    },
    Result {
        shot_no: u8,
        passed: bool,
        /// The liveness check failed (shown with a fixed text; it never comes with the verdict lines).
        liveness_failed: bool,
        items: Vec<CheckLine>,
        shots_left: u8,
        retake_enabled: bool,
        /// Seconds of the calm period (冷静期) left before retake is enabled.
        retake_in: Option<u32>,
        drafts: u8,
    },
    /// Repeated liveness failures locked the ticket.
    Locked {
        has_drafts: bool,
    },
    /// Repeated check failures imposed a cool-down.
    CoolingDown {
        minutes: u32,
        has_drafts: bool,
    },
    /// Stored passing shots (草稿箱) by shot number.
    Choose {
        candidates: Vec<u8>,
    },
    /// `order` is `None` while the order is being created.
    Pay {
        amount_fen: u32,
        order: Option<PayOrder>,
    },
    /// The job is being committed; never says 完成.
    Finishing,
    /// Shown only after the job is durably queued.
    Done {
        job_id: String,
        masked_name: String,
    },
    Ended {
        reason: EndReason,
    },
    OutOfService {
        reason_zh: String,
        reason_en: String,
        hint_zh: String,
        hint_en: String,
    },
    /// Technician service mode (PIN first).
    Service(ServicePage),
}

impl View {
    /// A view of `screen` in `lang` with nothing else shown; handy for renderers' tests.
    pub fn bare(screen: Screen, lang: Lang) -> View {
        View {
            screen,
            lang,
            shots: None,
            seconds_left: None,
            can_cancel: false,
        }
    }
}
