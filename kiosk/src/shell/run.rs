//! `kiosk run`: the real-time main loop. The same [`Kiosk`] the demo drives on a virtual
//! timeline, driven here by the monotonic clock: tick, execute, sleep until `next_wakeup`, repeat.
//!
//! It also does what a service does: sends systemd `READY=1` once the database is open and the first
//! frame was handled, `WATCHDOG=1` from this loop (never from another thread, so a hung loop is
//! restarted), refreshes the status the operator API shows, executes operator commands between two
//! ticks, and logs what happens without a name or ID digit in it (screen texts are not logged: the
//! Confirm screen shows the student's masked name and ID digits).
//!
//! The devices are the ones `[devices]` selects (`devices::build_deferred`): a real device that
//! cannot be opened at start does not stop the kiosk, which comes up out of service with that
//! device's reason and recovers when it appears (reopened every second; lights that are down are
//! probed, since nothing else calls them out of service). Buttons and a serial scanner are polled
//! every iteration: seat buttons and the service key become the touchscreen's intents
//! ([`ButtonRouter`]; a stuck one is reported, not obeyed), scanner lines become `Input::Qr`.
//! With `--sim --frames DIR` every device is its simulated twin and the camera shows the fixture
//! folder's frames (the scan set while waiting for a ticket, the framing set during a session); with
//! `--sim-hang-at/--sim-hang-for` the loop freezes once, as a hung device call would, which is how the
//! watchdog is tested.
//!
//! A screen is a [`ui::Frontend`] handed to [`run_with`]: its intents are drained into the session
//! before every tick, the view is presented after a tick that changed it, and while one is attached
//! the loop wakes at least every [`FRONTEND_FRAME`] so a 25 fps preview can flow. [`run`] is headless:
//! nobody touches the screen, so sessions time out back to Attract. The loop ends when `run_for`
//! elapses or `stop` is raised (SIGTERM, SIGINT, a closed window), so devices are dropped (relays
//! released) on the way out. What it deliberately does not do: decide anything (the session does),
//! or keep a device's own reconnect logic (each driver reopens its device after an unplug).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use std::collections::{BTreeMap, BTreeSet};

use hal::supervisor::DeviceId;
use hal::{Buttons, ErrorKind, Lights, QrSource, Switch};
use ui::Intent;

use super::demo::Scenario;
use super::payment::NoGateway;
use super::{Kiosk, Parts, ShellEvent};
use crate::config::KioskConfig;
use crate::devices::{
    self, AnyButtons, AnyCamera, AnyLights, AnyQr, AnySeat, CameraConfig, Deferred, DeferredDevices,
    DeviceError, DevicesConfig,
};
use crate::ops::logs::LogStore;
use crate::ops::notify::{Notifier, Watchdog};
use crate::ops::{Command, SelfTestItem, SelfTestReport, Shared, Status, api};
use crate::runtime;
use crate::session::{Input, StateKind};
use crate::store::Store;
use crate::vision::analyze::Analyzer;

/// Options of `kiosk run`.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    pub config: PathBuf,
    /// Overrides the configuration's `data_dir`.
    pub data_dir: Option<PathBuf>,
    /// Simulated devices showing this fixture folder (`scan/`, `shots/`, `framing/`, `scenario.toml`).
    pub sim_frames: Option<PathBuf>,
    /// Stop after this long (smoke tests); `None` runs until killed.
    pub run_for: Option<Duration>,
    /// Simulated hang: after this long, the loop freezes for the second duration, once.
    pub sim_hang: Option<(Duration, Duration)>,
    /// Raised by anyone (a signal handler, the window being closed, a test) to end the loop cleanly.
    /// `run` also raises it on SIGTERM and SIGINT.
    pub stop: Option<Arc<AtomicBool>>,
    /// Pacing figures, filled by the loop (ticks, presents) and by a frontend that wants to (the
    /// frames it drew); `kiosk run --stats` prints them at exit.
    pub stats: Option<Arc<Mutex<RunStats>>>,
    /// With simulated devices: a scripted student plays every session by touch (the demo's student,
    /// in real time), sitting in front of the live preview this long before each shot.
    pub autoplay: Option<Duration>,
}

/// How the loop (and a frontend) kept pace.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct RunStats {
    /// Ticks of the kiosk.
    pub ticks: u64,
    /// Total and longest time spent in a tick (checks included), in milliseconds.
    pub tick_ms_total: f64,
    pub tick_ms_max: f64,
    /// Views handed to the frontend.
    pub presents: u64,
    /// Frames a frontend drew, and the longest gap between two, in milliseconds (the frontend
    /// fills these; zero when headless).
    pub frames_drawn: u64,
    pub frame_gap_ms_max: f64,
    /// From process start to the first frame drawn (the window is up), when a window reports frames.
    pub first_frame_ms: Option<f64>,
    /// From process start to the first frame drawn after the kiosk presented its first view (cold
    /// start to the Attract screen: models loaded, database open, devices opened).
    pub first_view_ms: Option<f64>,
    /// Peak resident set size of the process in MiB (Linux `VmHWM`), read when the loop ends.
    pub peak_rss_mib: Option<f64>,
    /// Frame pacing while a screen showing the live camera (Scan, Framing) was up: how long it was
    /// up, the preview pictures the loop handed over, the frames the window drew that showed a new
    /// one (`preview_fps` is those per second), and the gaps between those frames (median, 95th
    /// percentile, longest) in milliseconds.
    pub camera_screen_ms: f64,
    pub preview_pictures: u64,
    pub preview_frames_drawn: u64,
    pub preview_fps: Option<f64>,
    pub preview_gap_ms_p50: Option<f64>,
    pub preview_gap_ms_p95: Option<f64>,
    pub preview_gap_ms_max: Option<f64>,
    /// Sessions the loop saw start.
    pub sessions: u64,
    /// Whether a camera screen is presented now, since when, and the last frame drawn during it.
    #[serde(skip)]
    pub camera_since: Option<Instant>,
    #[serde(skip)]
    pub last_preview_frame: Option<Instant>,
    /// The last frame drawn at all.
    #[serde(skip)]
    pub last_frame: Option<Instant>,
    #[serde(skip)]
    pub preview_gaps_ms: Vec<f64>,
    /// `preview_pictures` when the last frame with a new picture was drawn.
    #[serde(skip)]
    pub pictures_drawn: u64,
}

impl RunStats {
    /// The loop presented a view: `camera` says whether it shows the live camera.
    pub fn screen_presented(&mut self, now: Instant, camera: bool) {
        match (self.camera_since, camera) {
            (None, true) => self.camera_since = Some(now),
            (Some(since), false) => {
                self.camera_screen_ms += (now - since).as_secs_f64() * 1000.0;
                self.camera_since = None;
                self.last_preview_frame = None;
            }
            _ => {}
        }
    }

    /// The window drew a frame at `now` (the process began at `process_start`). It counts for the
    /// preview when a camera screen is up and a preview picture arrived since the last such frame
    /// (the window also redraws for other reasons).
    pub fn frame_drawn(&mut self, process_start: Instant, now: Instant) {
        let since_start = (now - process_start).as_secs_f64() * 1000.0;
        if self.frames_drawn == 0 {
            self.first_frame_ms = Some(since_start);
        }
        if self.presents > 0 && self.first_view_ms.is_none() {
            self.first_view_ms = Some(since_start);
        }
        self.frames_drawn += 1;
        if let Some(prev) = self.last_frame {
            self.frame_gap_ms_max = self.frame_gap_ms_max.max((now - prev).as_secs_f64() * 1000.0);
        }
        self.last_frame = Some(now);
        if self.camera_since.is_none() || self.preview_pictures == self.pictures_drawn {
            return;
        }
        self.pictures_drawn = self.preview_pictures;
        self.preview_frames_drawn += 1;
        if let Some(prev) = self.last_preview_frame {
            self.preview_gaps_ms.push((now - prev).as_secs_f64() * 1000.0);
        }
        self.last_preview_frame = Some(now);
    }

    /// Closes an open camera-screen interval at `now` and computes the pacing figures.
    pub fn finish(&mut self, now: Instant) {
        self.screen_presented(now, false);
        if self.camera_screen_ms > 0.0 && self.preview_frames_drawn > 0 {
            self.preview_fps = Some(self.preview_frames_drawn as f64 / (self.camera_screen_ms / 1000.0));
        }
        let mut gaps = self.preview_gaps_ms.clone();
        gaps.sort_by(f64::total_cmp);
        let pick = |q: f64| {
            gaps.get(((gaps.len() as f64 - 1.0) * q).round() as usize)
                .copied()
        };
        if !gaps.is_empty() {
            self.preview_gap_ms_p50 = pick(0.5);
            self.preview_gap_ms_p95 = pick(0.95);
            self.preview_gap_ms_max = gaps.last().copied();
        }
    }
}

/// The process's peak resident set size in MiB (`VmHWM` of `/proc/self/status`); `None` off Linux.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// While a frontend is attached the loop wakes at least this often: 25 frames a second.
pub const FRONTEND_FRAME: Duration = Duration::from_millis(40);

/// The configuration or the command line cannot work, so restarting will not help: the binary exits
/// with [`EXIT_CONFIG`] and `kiosk.service` does not restart on it (`RestartPreventExitStatus=`), so a
/// bad configuration cannot turn into a reboot loop through the start-limit escalation.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unrunnable(pub String);

/// `EX_CONFIG` of sysexits.h.
pub const EXIT_CONFIG: u8 = 78;

/// The longest the loop sleeps without looking at the stop flag.
const STOP_POLL: Duration = Duration::from_millis(250);

/// Free space below which the self-test fails: photos are spooled until the upload is confirmed.
const MIN_FREE_BYTES: u64 = 200 * 1024 * 1024;

/// Runs the kiosk headless until stopped (or `run_for` elapses).
pub fn run(opts: &RunOptions) -> anyhow::Result<()> {
    run_with(opts, None)
}

/// Runs the kiosk with `frontend` as its screen (or headless with `None`) until stopped.
pub fn run_with(opts: &RunOptions, frontend: Option<Box<dyn ui::Frontend + Send>>) -> anyhow::Result<()> {
    let config = KioskConfig::load(&opts.config).map_err(|e| Unrunnable(e.to_string()))?;
    let data_dir = opts
        .data_dir
        .clone()
        .or_else(|| config.data_dir.clone())
        .ok_or_else(|| {
            Unrunnable("no data directory: set data_dir in the configuration or pass --data-dir".into())
        })?;
    std::fs::create_dir_all(&data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    let logs = Arc::new(
        LogStore::open(&data_dir.join("logs.sqlite"), config.logging.capacity)
            .context("opening the local log store")?,
    );
    crate::ops::logs::init(&config.logging.filter, Some(logs.clone()));
    let notifier = Notifier::from_env().context("NOTIFY_SOCKET is set but unusable")?;
    let watchdog = Watchdog::from_env();
    // --sim: every device is its simulated twin, the camera showing the fixture folder. Otherwise
    // `[devices]` decides, real drivers or simulated twins (config/sim.toml).
    let devices_config = match &opts.sim_frames {
        Some(frames) => {
            if !frames.is_dir() {
                return Err(Unrunnable(format!("--frames {}: not a folder", frames.display())).into());
            }
            DevicesConfig {
                camera: CameraConfig::Sim {
                    frames: Some(frames.clone()),
                },
                ..DevicesConfig::default()
            }
        }
        None => config.devices.clone(),
    };
    let frames = match &devices_config.camera {
        CameraConfig::Sim { frames } => frames.clone(),
        CameraConfig::V4l2 { .. } => None,
    };
    let scenario = match &frames {
        Some(dir) => load_scenario(dir)?,
        None => Scenario::default(),
    };
    if opts.autoplay.is_some() && opts.sim_frames.is_none() {
        return Err(
            Unrunnable("--autoplay plays the simulated student: it needs --sim --frames".into()).into(),
        );
    }
    let student = opts
        .autoplay
        .map(|hold| super::demo::Student::holding_framing(scenario.clone(), hold));
    let simulated = matches!(devices_config.camera, CameraConfig::Sim { .. });
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        site = %config.site,
        simulated,
        watchdog_ms = watchdog.interval().map(|d| d.as_millis() as u64),
        "kiosk starting"
    );
    let wall_origin = match &scenario.at {
        Some(at) => time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
            .with_context(|| format!("scenario.toml: at = {at:?} is not RFC 3339"))?
            .unix_timestamp(),
        None => crate::clock::unix_now(),
    };
    let paths = runtime::setup().context("ONNX Runtime or the models are missing")?;
    let analyzer = Analyzer::new(&paths).context("loading the face models")?;
    let parts = Parts::from_config(&config, data_dir.clone(), wall_origin).map_err(anyhow::Error::msg)?;
    // A real device that is not there does not stop the kiosk: it comes up out of service saying
    // which, and recovers when the device appears. Only a configuration that cannot work exits.
    let devices = devices::build_deferred(&devices_config, hal::LightTable::default())
        .map_err(|e| Unrunnable(e.to_string()))?;
    let DeferredDevices {
        camera,
        seat,
        lights,
        buttons,
        qr,
    } = devices;
    let framing = match camera.device() {
        Some(AnyCamera::Sim(cam)) if cam.set_len("framing").is_some() => Some("framing"),
        Some(AnyCamera::Sim(cam)) if cam.set_len("shots").is_some() => Some("shots"),
        _ => None,
    };
    // Physical buttons are sampled often enough for their debouncer to see a short press; a serial
    // scanner's line waits at most a tenth of a second. Simulated ones need no sampling.
    let poll_every = [
        matches!(buttons.device(), Some(AnyButtons::Gpio(_)) | None).then_some(BUTTON_POLL),
        matches!(qr.device(), Some(AnyQr::Serial(_)) | None).then_some(SCANNER_POLL),
    ]
    .into_iter()
    .flatten()
    .min();
    let start = crate::clock::monotonic();
    let gateway: Box<dyn super::payment::PaymentGateway> = match &config.payment_gateway {
        Some(g) => Box::new(super::payment_http::HttpGateway::new(g).map_err(|e| anyhow::anyhow!(e))?),
        None => Box::new(NoGateway),
    };
    let mut kiosk = Kiosk::new(parts, analyzer, gateway, camera, seat, lights, start)
        .context("opening the kiosk database")?;
    if opts.sim_frames.is_some() {
        // As in `kiosk demo`: the simulated camera plays still photographs, which cannot blink, so an
        // undetermined liveness is shown as an advisory instead of blocking every shot. Real cameras
        // always require it.
        kiosk.set_liveness_required(false);
    }

    let (shared, commands) = Shared::new(Status {
        site: config.site.clone(),
        version: env!("CARGO_PKG_VERSION").into(),
        started_at: crate::clock::unix_now(),
        simulated,
        ..Status::default()
    });
    let shared = Arc::new(shared);
    // Bound before READY so that a unit that is "started" also answers its operators.
    let _api = match &config.ops.api {
        Some(api_config) => {
            let store = Arc::new(Store::open(data_dir.join("kiosk.db")).context("API database connection")?);
            let ctx = api::ApiContext {
                store,
                logs: Some(logs.clone()),
                shared: shared.clone(),
                data_dir: data_dir.clone(),
            };
            Some(api::start(api_config, Path::new(""), ctx).context("starting the operator API")?)
        }
        None => None,
    };
    // SIGTERM (systemd stopping the unit) and SIGINT end the loop between two ticks, so the devices
    // are dropped and release their outputs instead of the process vanishing mid-run.
    let stop = opts.stop.clone().unwrap_or_default();
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&stop)).context("installing signal handler")?;
    }
    // The fleet heartbeat, when configured: "online" every interval, "offline" when dropped at return
    // (or the broker's last will if the process dies).
    let _mqtt = match &config.ops.mqtt {
        Some(mqtt_config) => {
            let store = Arc::new(Store::open(data_dir.join("kiosk.db")).context("MQTT database connection")?);
            Some(
                crate::ops::mqtt::start(mqtt_config, shared.clone(), Some(store))
                    .context("starting the MQTT heartbeat")?,
            )
        }
        None => None,
    };
    let mut main = MainLoop {
        kiosk,
        world: SimWorld { framing },
        buttons,
        qr,
        router: ButtonRouter::default(),
        poll_every,
        next_tick: start,
        stats: opts.stats.clone(),
        last_lights_probe: None,
        frontend,
        student,
        presented: None,
        stop,
        shared,
        commands,
        notifier,
        watchdog,
        data_dir,
        last_screen: String::new(),
        sessions: 0,
        iterations: 0,
        ready: false,
    };
    main.run(start, opts.run_for, opts.sim_hang);
    if let Some(stats) = &opts.stats {
        let mut st = stats.lock().unwrap_or_else(|p| p.into_inner());
        st.sessions = main.sessions;
        st.finish(crate::clock::monotonic());
    }
    let _ = main.notifier.stopping();
    tracing::info!("kiosk stopping");
    Ok(())
}

/// The optional `scenario.toml` of a frames folder (the demo's): its `at` pins the simulated wall
/// clock so the fixture tickets are valid.
fn load_scenario(frames: &Path) -> anyhow::Result<Scenario> {
    let path = frames.join("scenario.toml");
    if !path.exists() {
        return Ok(Scenario::default());
    }
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    toml::from_str(&text).with_context(|| path.display().to_string())
}

/// What is in front of the simulated camera.
#[derive(Debug)]
struct SimWorld {
    framing: Option<&'static str>,
}

impl SimWorld {
    /// Shows the scan frames while a ticket is awaited and the framing frames after, when the camera
    /// is the simulated one (a real camera sees what is really there).
    fn update(&self, kiosk: &mut RunKiosk, t: hal::Millis) {
        let showing = match kiosk.session().state() {
            StateKind::Attract | StateKind::Scan | StateKind::Verify | StateKind::Rejected => Some("scan"),
            _ => self.framing,
        };
        let Some(AnyCamera::Sim(camera)) = kiosk.camera_mut().device_mut() else {
            return;
        };
        if let Some(set) = showing
            && camera.set_len(set).is_some()
            && camera.showing() != Some(set)
            && let Err(e) = camera.show_preview_set(set, t)
        {
            tracing::warn!(error = %e, "simulated camera");
        }
    }
}

/// The kiosk as `kiosk run` drives it: every device opened now or as soon as it appears.
type RunKiosk = Kiosk<Deferred<AnyCamera>, Deferred<AnySeat>, Deferred<AnyLights>>;

/// A seat button held this long is taken as stuck: the seat is stopped and the buttons reported
/// down until it is released. Far longer than any real adjustment (the seat's own maximum run is
/// 10 s by default), short enough that a jammed button is not obeyed for long.
pub const STUCK_BUTTON_MS: u64 = 20_000;

/// How often real buttons are sampled: a few samples inside the 30 ms debounce window.
const BUTTON_POLL: Duration = Duration::from_millis(10);
/// How often a real serial scanner is read.
const SCANNER_POLL: Duration = Duration::from_millis(100);

/// Turns debounced button events into the touchscreen's intents and watches for stuck buttons.
///
/// A seat button moves the seat while held (press: `SeatUp`/`SeatDown`, release: `SeatStop`); the
/// service key turned on opens service mode without the PIN (the key is the credential). A seat button held past [`STUCK_BUTTON_MS`] is
/// stuck: the seat is stopped, the button is ignored and the buttons are reported down (a fault,
/// so the kiosk goes out of service saying "check the buttons' wiring") until it is released.
#[derive(Debug, Default)]
pub struct ButtonRouter {
    /// Seat buttons pressed and since when.
    held: BTreeMap<Switch, hal::Millis>,
    /// Buttons held past [`STUCK_BUTTON_MS`]: ignored until released.
    stuck: BTreeSet<Switch>,
}

impl ButtonRouter {
    /// The intents of one poll's events at `now`, and the buttons' health to report.
    pub fn route(
        &mut self,
        now: hal::Millis,
        polled: Result<Vec<hal::ButtonEvent>, ErrorKind>,
    ) -> (Vec<Input>, Result<(), ErrorKind>) {
        let mut intents = Vec::new();
        let mut health = polled.as_ref().map(|_| ()).map_err(|k| *k);
        for event in polled.unwrap_or_default() {
            let intent = match (event.switch, event.pressed) {
                (Switch::SeatUp | Switch::SeatDown, true) => {
                    self.held.insert(event.switch, event.at);
                    Some(Input::Ui(if event.switch == Switch::SeatUp {
                        Intent::SeatUp
                    } else {
                        Intent::SeatDown
                    }))
                }
                (Switch::SeatUp | Switch::SeatDown, false) => {
                    self.held.remove(&event.switch);
                    // A stuck button's run was stopped when it was found stuck.
                    (!self.stuck.remove(&event.switch)).then_some(Input::Ui(Intent::SeatStop))
                }
                // The key is the technician's credential: service mode without the PIN.
                (Switch::ServiceKey, true) => Some(Input::ServiceKey),
                (Switch::ServiceKey, false) => None,
            };
            intents.extend(intent);
        }
        let newly_stuck: Vec<Switch> = self
            .held
            .iter()
            .filter(|(s, since)| now.since(**since) >= STUCK_BUTTON_MS && !self.stuck.contains(s))
            .map(|(s, _)| *s)
            .collect();
        for switch in newly_stuck {
            tracing::warn!(?switch, ms = STUCK_BUTTON_MS, "button stuck: no longer obeyed");
            self.stuck.insert(switch);
            intents.push(Input::Ui(Intent::SeatStop));
        }
        if health.is_ok() && !self.stuck.is_empty() {
            health = Err(ErrorKind::Fault);
        }
        (intents, health)
    }
}

/// How often lights that are down are asked whether they are back (nothing else calls them while
/// the kiosk is out of service).
const LIGHTS_PROBE_EVERY: Duration = Duration::from_secs(1);

struct MainLoop {
    kiosk: RunKiosk,
    world: SimWorld,
    buttons: Deferred<AnyButtons>,
    qr: Deferred<AnyQr>,
    router: ButtonRouter,
    /// The loop wakes at least this often to sample the buttons and the scanner.
    poll_every: Option<Duration>,
    /// When the kiosk (or the screen) next has work: the next tick, unless an input comes first.
    next_tick: Instant,
    stats: Option<Arc<Mutex<RunStats>>>,
    last_lights_probe: Option<Instant>,
    frontend: Option<Box<dyn ui::Frontend + Send>>,
    /// `--autoplay`: the scripted student touching the screen.
    student: Option<super::demo::Student>,
    /// The view the frontend was last given.
    presented: Option<ui::View>,
    stop: Arc<AtomicBool>,
    shared: Arc<Shared>,
    commands: Receiver<Command>,
    notifier: Notifier,
    watchdog: Watchdog,
    data_dir: PathBuf,
    last_screen: String,
    sessions: u64,
    iterations: u64,
    /// READY was sent; STATUS updates only follow it (the protocol's first word is READY).
    ready: bool,
}

impl MainLoop {
    fn run(&mut self, start: Instant, run_for: Option<Duration>, hang: Option<(Duration, Duration)>) {
        let mut hang = hang;
        self.report_unopened(start);
        loop {
            let now = crate::clock::monotonic();
            if let Some((at, len)) = hang
                && now >= start + at
            {
                // A device call that never returns, as far as the loop can tell.
                tracing::warn!(ms = len.as_millis() as u64, "simulated hang of the main loop");
                std::thread::sleep(len);
                hang = None;
                continue;
            }
            while let Ok(command) = self.commands.try_recv() {
                self.command(now, command);
            }
            let t = hal::Millis::from_duration(now - start);
            // Inputs are sampled every iteration (buttons need it for their debouncer); the tick,
            // which polls the seat (a bus transaction on a Modbus controller), runs when the kiosk
            // or the screen has work due, or right after an input.
            let touched = self.touches(now) | self.autoplay(now);
            let pressed = self.buttons(now, t);
            let scanned = self.scanner(now, t);
            self.probe_lights(now, t);
            if touched || pressed || scanned || !self.ready || now >= self.next_tick {
                if touched || pressed || scanned {
                    // What the input led to is on the screen before the tick: when that is a waiting
                    // screen (Verifying, Finishing...), the tick is where its slow step runs.
                    self.present();
                }
                self.world.update(&mut self.kiosk, t);
                self.kiosk.tick(now);
                self.report_events();
                self.present();
                self.iterations += 1;
                self.publish();
                let after = crate::clock::monotonic();
                if let Some(stats) = &self.stats {
                    let ms = (after - now).as_secs_f64() * 1000.0;
                    let mut st = stats.lock().unwrap_or_else(|p| p.into_inner());
                    st.ticks += 1;
                    st.tick_ms_total += ms;
                    st.tick_ms_max = st.tick_ms_max.max(ms);
                }
                self.next_tick = self.kiosk.next_wakeup(after);
                if self.frontend.is_some() {
                    self.next_tick = self.next_tick.min(after + FRONTEND_FRAME);
                }
                if let Some(at) = self.student.as_ref().and_then(|s| s.next_at) {
                    self.next_tick = self.next_tick.min(at.max(after));
                }
            }
            if !self.ready {
                self.ready = true;
                self.shared.update(|s| s.ready = true);
                let state = format!("{:?}", self.kiosk.session().state());
                if let Err(e) = self
                    .notifier
                    .ready(&format!("database open, first frame handled; {state}"))
                {
                    tracing::error!(error = %e, "READY notification failed");
                }
                tracing::info!(state, "kiosk ready");
            }
            if self.watchdog.due(now)
                && let Err(e) = self.notifier.watchdog()
            {
                tracing::warn!(error = %e, "watchdog notification failed");
            }
            if run_for.is_some_and(|d| now >= start + d) || self.stop.load(Ordering::Relaxed) {
                return;
            }
            let now = crate::clock::monotonic();
            let mut wake = self.next_tick;
            if let Some(w) = self.watchdog.next_due(now) {
                wake = wake.min(w);
            }
            if let Some(every) = self.poll_every {
                wake = wake.min(now + every);
            }
            // A raised stop flag is seen within this bound even by a headless loop with nothing to do.
            wake = wake.min(now + STOP_POLL);
            if let Some(d) = run_for {
                wake = wake.min(start + d);
            }
            // Sleeping on the command channel: an operator's command wakes the loop at once.
            match self.commands.recv_timeout(wake.saturating_duration_since(now)) {
                Ok(command) => self.command(crate::clock::monotonic(), command),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    std::thread::sleep(wake.saturating_duration_since(now))
                }
            }
        }
    }

    /// Devices that could not be opened at start are reported down before the first tick, so the
    /// kiosk comes up out of service saying which (the seat, camera and lights are also asked again
    /// by the kiosk's own calls; the buttons and the scanner by this loop).
    fn report_unopened(&mut self, now: Instant) {
        let mut unopened: Vec<(DeviceId, DeviceError)> = Vec::new();
        if let Some(e) = self.kiosk.camera_mut().open_error() {
            unopened.push((DeviceId::Camera, e.clone()));
        }
        if let Some(e) = self.kiosk.seat_mut().open_error() {
            unopened.push((DeviceId::Seat, e.clone()));
        }
        if let Some(e) = self.kiosk.lights().open_error() {
            unopened.push((DeviceId::Lights, e.clone()));
        }
        if let Some(e) = self.buttons.open_error() {
            unopened.push((DeviceId::Buttons, e.clone()));
        }
        if let Some(e) = self.qr.open_error() {
            unopened.push((DeviceId::QrScanner, e.clone()));
        }
        for (device, e) in unopened {
            tracing::warn!(device = device.as_str(), error = %e, "device not open at start");
            self.kiosk.report_device(now, device, Err(e.kind));
        }
        self.report_events();
    }

    /// Physical buttons become the same intents as the touchscreen's (see [`ButtonRouter`]).
    /// Returns whether they produced any intent.
    fn buttons(&mut self, now: Instant, t: hal::Millis) -> bool {
        let polled = self.buttons.poll(t).map_err(|e| e.kind);
        let (intents, health) = self.router.route(t, polled);
        let any = !intents.is_empty();
        for input in intents {
            tracing::info!(?input, "button");
            self.kiosk.input(now, input);
        }
        self.kiosk.report_device(now, DeviceId::Buttons, health);
        self.report_events();
        any
    }

    /// A serial scanner's line is a scanned ticket, as a QR read from the camera would be.
    /// Returns whether a line was read.
    fn scanner(&mut self, now: Instant, t: hal::Millis) -> bool {
        let polled = self.qr.poll(t);
        let health = polled.as_ref().map(|_| ()).map_err(|e| e.kind);
        self.kiosk.report_device(now, DeviceId::QrScanner, health);
        let mut any = false;
        if let Ok(Some(payload)) = polled {
            tracing::info!(bytes = payload.len(), "scanner line");
            self.kiosk.input(now, Input::Qr(payload));
            any = true;
        }
        self.report_events();
        any
    }

    /// Lights that are down are only called again when the session changes the light mode, which
    /// it does not while out of service; so they are asked here, with the idle mode out of service
    /// shows, at most every [`LIGHTS_PROBE_EVERY`].
    fn probe_lights(&mut self, now: Instant, t: hal::Millis) {
        let down = self
            .kiosk
            .device_health()
            .iter()
            .any(|(d, h)| *d == DeviceId::Lights.as_str() && h != "up");
        if !down
            || self
                .last_lights_probe
                .is_some_and(|l| now < l + LIGHTS_PROBE_EVERY)
        {
            return;
        }
        self.last_lights_probe = Some(now);
        let r = self
            .kiosk
            .lights_mut()
            .set_mode(hal::LightMode::Idle, t)
            .map_err(|e| e.kind);
        self.kiosk.report_device(now, DeviceId::Lights, r);
        self.report_events();
    }

    /// Feeds the touches since the last tick to the session, oldest first.
    /// Returns whether there were any.
    fn touches(&mut self, now: Instant) -> bool {
        let Some(frontend) = self.frontend.as_mut() else {
            return false;
        };
        let intents = frontend.intents();
        let any = !intents.is_empty();
        for intent in intents {
            self.kiosk.input(now, Input::Ui(intent));
        }
        self.report_events();
        any
    }

    /// `--autoplay`: the scripted student looks at the screen and touches it when it is time.
    /// Returns whether it touched.
    fn autoplay(&mut self, now: Instant) -> bool {
        use super::demo::ScreenName;
        let Some(student) = self.student.as_mut() else {
            return false;
        };
        let view = self.kiosk.session().view();
        if let Some(screen) = view.screen_name_changed(&mut student.last_screen) {
            student.on_new_screen(now, &screen);
        }
        if student.next_at.is_none_or(|at| now < at) {
            return false;
        }
        let Some(intent) = student.act(now, &view.screen) else {
            return false;
        };
        tracing::info!(?intent, "autoplay touch");
        self.kiosk.input(now, Input::Ui(intent));
        self.report_events();
        true
    }

    /// Hands the frontend the view when it changed, or when there are new pictures; returns
    /// whether it did.
    fn present(&mut self) -> bool {
        let Some(frontend) = self.frontend.as_mut() else {
            return false;
        };
        // The first call switches the shell's pictures on: headless runs never pay for them.
        let pictures = self.kiosk.take_pictures();
        let view = self.kiosk.session().view();
        if self.presented.as_ref() != Some(&view) || !pictures.is_empty() {
            if let Some(stats) = &self.stats {
                let camera = matches!(view.screen, ui::Screen::Scan | ui::Screen::Framing { .. });
                let mut st = stats.lock().unwrap_or_else(|p| p.into_inner());
                st.screen_presented(crate::clock::monotonic(), camera);
                st.presents += 1;
                st.preview_pictures += pictures
                    .iter()
                    .filter(|p| matches!(p, ui::Picture::Preview(_)))
                    .count() as u64;
            }
            frontend.present(&view, pictures);
            self.presented = Some(view);
            return true;
        }
        false
    }

    fn command(&mut self, now: Instant, command: Command) {
        match command {
            Command::OutOfService { reason, reply } => {
                tracing::warn!(
                    reason = reason.as_deref().unwrap_or(""),
                    back = reason.is_none(),
                    "operator changed service state"
                );
                self.kiosk.set_operator_out_of_service(now, reason);
                self.report_events();
                self.publish();
                let _ = reply.send(Ok(format!("{:?}", self.kiosk.session().state())));
            }
            Command::SelfTest { reply } => {
                let report = self.self_test();
                tracing::info!(ok = report.ok, "self-test");
                let _ = reply.send(report);
            }
        }
    }

    fn self_test(&self) -> SelfTestReport {
        let mut items = Vec::new();
        let mut item = |name: &str, ok: bool, detail: String| {
            items.push(SelfTestItem {
                name: name.into(),
                ok,
                detail,
            })
        };
        match self.kiosk.store().integrity_check() {
            Ok(ok) => item(
                "database",
                ok,
                if ok {
                    "integrity ok".into()
                } else {
                    "integrity check failed".into()
                },
            ),
            Err(e) => item("database", false, e.to_string()),
        }
        for (device, health) in self.kiosk.device_health() {
            item(device, health == "up", health);
        }
        match runtime::setup() {
            Ok(_) => item("models", true, "ONNX Runtime and models present".into()),
            Err(e) => item("models", false, e.to_string()),
        }
        match api::disk(&self.data_dir) {
            Some((free, _)) => item(
                "disk",
                free >= MIN_FREE_BYTES,
                format!("{} MiB free", free / (1024 * 1024)),
            ),
            None => item("disk", false, "cannot stat the data directory".into()),
        }
        SelfTestReport {
            ok: items.iter().all(|i| i.ok),
            items,
        }
    }

    fn publish(&self) {
        let state = self.kiosk.session().state();
        let out_of_service = match self.kiosk.session().view().screen {
            ui::Screen::OutOfService { reason_en, .. } => Some(reason_en),
            _ => None,
        };
        let devices = self
            .kiosk
            .device_health()
            .into_iter()
            .map(|(d, h)| (d.to_string(), h))
            .collect();
        let (iterations, sessions) = (self.iterations, self.sessions);
        self.shared.update(|s| {
            s.state = format!("{state:?}");
            s.out_of_service = out_of_service;
            s.devices = devices;
            s.last_loop_at = crate::clock::unix_now();
            s.loop_iterations = iterations;
            s.sessions_since_start = sessions;
        });
    }

    /// Logs the shell's events. Deliberately only ids, codes and numbers: see the module doc.
    fn report_events(&mut self) {
        for event in self.kiosk.take_events() {
            match event {
                ShellEvent::Screen { screen, .. } => {
                    let name = screen
                        .split([' ', '{', '('])
                        .next()
                        .unwrap_or_default()
                        .to_string();
                    if name != self.last_screen {
                        tracing::info!(screen = %name, "screen");
                        if self.ready
                            && let Err(e) = self.notifier.status(&name)
                        {
                            tracing::debug!(error = %e, "STATUS notification failed");
                        }
                        self.last_screen = name;
                    }
                }
                ShellEvent::TicketRejected { code, .. } => tracing::info!(code, "ticket refused"),
                ShellEvent::TicketAccepted { ticket, shots_used } => {
                    tracing::info!(ticket, shots_used, "ticket accepted")
                }
                ShellEvent::ShotConsumed { shot_no } => tracing::info!(shot_no, "shot consumed"),
                ShellEvent::Verdict(v) => tracing::info!(
                    shot_no = v.shot_no,
                    passed = v.passed,
                    failed = %v.failed.join(","),
                    ms = v.ms,
                    "verdict"
                ),
                ShellEvent::Enqueued { job_id } => tracing::info!(job_id, "job committed"),
                ShellEvent::SessionEnded { ticket, outcome } => {
                    self.sessions += 1;
                    tracing::info!(
                        ticket = ticket.as_deref().unwrap_or("-"),
                        outcome,
                        "session ended"
                    );
                }
                ShellEvent::DeviceDown { device, reason } => tracing::warn!(device, reason, "device down"),
                ShellEvent::DeviceUp { device } => tracing::info!(device, "device up"),
                // Already logged by the shell when it happened.
                ShellEvent::Warning { .. } => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hal::sim::{SimButtons, StuckButton, Window};
    use hal::{Error as _, Millis};

    /// Polls `buttons` every 10 ms from `from` to `until` through `router`; returns the intents with
    /// their times and the last health reported.
    fn drive<B: Buttons>(
        router: &mut ButtonRouter,
        buttons: &mut B,
        from: u64,
        until: u64,
    ) -> (Vec<(u64, Input)>, Result<(), ErrorKind>) {
        let mut out = Vec::new();
        let mut health = Ok(());
        for ms in (from..=until).step_by(10) {
            let polled = buttons.poll(Millis(ms)).map_err(|e| e.kind());
            let (intents, h) = router.route(Millis(ms), polled);
            out.extend(intents.into_iter().map(|i| (ms, i)));
            health = h;
        }
        (out, health)
    }

    #[test]
    fn test_buttons_press_moves_release_stops_service_key_asks() {
        let mut sim = SimButtons::new();
        sim.press(Switch::SeatUp, Millis(100), 800);
        sim.press(Switch::SeatDown, Millis(2000), 300);
        sim.press(Switch::ServiceKey, Millis(3000), 5000);
        let mut router = ButtonRouter::default();
        let (intents, health) = drive(&mut router, &mut sim, 0, 9000);
        assert_eq!(
            intents,
            vec![
                (100, Input::Ui(Intent::SeatUp)),
                (900, Input::Ui(Intent::SeatStop)),
                (2000, Input::Ui(Intent::SeatDown)),
                (2300, Input::Ui(Intent::SeatStop)),
                (3000, Input::ServiceKey),
            ]
        );
        assert_eq!(health, Ok(()));
    }

    #[test]
    fn test_buttons_stuck_button_is_stopped_reported_and_back_when_released() {
        // The seat-up button sticks at 1 s and comes free at 30 s.
        let mut stuck = StuckButton::new(
            SimButtons::new(),
            Switch::SeatUp,
            Window::between(Millis(1000), Millis(30_000)),
        );
        let mut router = ButtonRouter::default();
        let (intents, health) = drive(&mut router, &mut stuck, 0, 1000 + STUCK_BUTTON_MS - 10);
        assert_eq!(
            intents,
            vec![(1000, Input::Ui(Intent::SeatUp))],
            "obeyed while it could be a person"
        );
        assert_eq!(health, Ok(()));
        let (intents, health) = drive(
            &mut router,
            &mut stuck,
            1000 + STUCK_BUTTON_MS,
            1000 + STUCK_BUTTON_MS,
        );
        assert_eq!(
            intents,
            vec![(1000 + STUCK_BUTTON_MS, Input::Ui(Intent::SeatStop))],
            "then stopped"
        );
        assert_eq!(health, Err(ErrorKind::Fault), "and reported");
        // Still held: reported, never obeyed again, no second stop.
        let (intents, health) = drive(&mut router, &mut stuck, 21_010, 29_990);
        assert_eq!(intents, vec![]);
        assert_eq!(health, Err(ErrorKind::Fault));
        // Released: healthy again, with no stray stop (the run was stopped already); the button
        // works as before.
        let (intents, health) = drive(&mut router, &mut stuck, 30_000, 30_100);
        assert_eq!(intents, vec![]);
        assert_eq!(health, Ok(()));
        stuck.inner_mut().press(Switch::SeatUp, Millis(31_000), 500);
        let (intents, health) = drive(&mut router, &mut stuck, 30_110, 32_000);
        assert_eq!(
            intents,
            vec![
                (31_000, Input::Ui(Intent::SeatUp)),
                (31_500, Input::Ui(Intent::SeatStop))
            ]
        );
        assert_eq!(health, Ok(()));
    }

    #[test]
    fn test_buttons_poll_error_is_reported_as_is() {
        let mut router = ButtonRouter::default();
        let (intents, health) = router.route(Millis(0), Err(ErrorKind::Disconnected));
        assert!(intents.is_empty());
        assert_eq!(health, Err(ErrorKind::Disconnected));
    }
}
