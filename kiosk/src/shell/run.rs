//! `kiosk run`: the headless real-time main loop. The same [`Kiosk`] the demo drives on a virtual
//! timeline, driven here by the monotonic clock: tick, execute, sleep until `next_wakeup`, repeat.
//!
//! It also does what a service does: sends systemd `READY=1` once the database is open and the first
//! frame was handled, `WATCHDOG=1` from this loop (never from another thread, so a hung loop is
//! restarted), refreshes the status the operator API shows, executes operator commands between two
//! ticks, and logs what happens without a name or ID digit in it (screen texts are not logged: the
//! Confirm screen shows the student's masked name and ID digits).
//!
//! With `--sim --frames DIR` the devices are the simulated twins and the camera shows the fixture
//! folder's frames (the scan set while waiting for a ticket, the framing set during a session); with
//! `--sim-hang-at/--sim-hang-for` the loop freezes once, as a hung device call would, which is how the
//! watchdog is tested. What it deliberately does not do yet: open real devices (the drivers join with
//! the hardware configuration) or draw the touchscreen (the Slint UI); nobody touches the simulated
//! screen, so sessions time out back to Attract.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hal::sim::{PreviewFit, SimCamera, SimCameraConfig, SimLights, SimSeat, SimSeatConfig};
use hal::{Camera, Lights, Seat};

use super::demo::Scenario;
use super::payment::NoGateway;
use super::{Kiosk, Parts, ShellEvent};
use crate::config::KioskConfig;
use crate::ops::logs::LogStore;
use crate::ops::notify::{Notifier, Watchdog};
use crate::ops::{Command, SelfTestItem, SelfTestReport, Shared, Status, api};
use crate::runtime;
use crate::session::StateKind;
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
}

/// The configuration or the command line cannot work, so restarting will not help: the binary exits
/// with [`EXIT_CONFIG`] and `kiosk.service` does not restart on it (`RestartPreventExitStatus=`), so a
/// bad configuration cannot turn into a reboot loop through the start-limit escalation.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unrunnable(pub String);

/// `EX_CONFIG` of sysexits.h.
pub const EXIT_CONFIG: u8 = 78;

/// Free space below which the self-test fails: photos are spooled until the upload is confirmed.
const MIN_FREE_BYTES: u64 = 200 * 1024 * 1024;

/// Runs the kiosk until killed (or `run_for` elapses).
pub fn run(opts: &RunOptions) -> anyhow::Result<()> {
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
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        site = %config.site,
        simulated = opts.sim_frames.is_some(),
        watchdog_ms = watchdog.interval().map(|d| d.as_millis() as u64),
        "kiosk starting"
    );
    let Some(frames) = &opts.sim_frames else {
        return Err(Unrunnable(
            "real device drivers are not wired into `kiosk run` yet; run with --sim --frames DIR \
             (simulated devices)"
                .into(),
        )
        .into());
    };
    let (camera, scenario, framing) = sim_camera(frames)?;
    let wall_origin = match &scenario.at {
        Some(at) => time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
            .with_context(|| format!("scenario.toml: at = {at:?} is not RFC 3339"))?
            .unix_timestamp(),
        None => crate::clock::unix_now(),
    };
    let paths = runtime::setup().context("ONNX Runtime or the models are missing")?;
    let analyzer = Analyzer::new(&paths).context("loading the face models")?;
    let parts = Parts::from_config(&config, data_dir.clone(), wall_origin).map_err(anyhow::Error::msg)?;
    let seat = SimSeat::new(SimSeatConfig::default());
    let lights = SimLights::new(hal::LightTable::default());
    let start = crate::clock::monotonic();
    let gateway: Box<dyn super::payment::PaymentGateway> = match &config.payment_gateway {
        Some(g) => Box::new(super::payment_http::HttpGateway::new(g).map_err(|e| anyhow::anyhow!(e))?),
        None => Box::new(NoGateway),
    };
    let kiosk = Kiosk::new(parts, analyzer, gateway, camera, seat, lights, start)
        .context("opening the kiosk database")?;

    let (shared, commands) = Shared::new(Status {
        site: config.site.clone(),
        version: env!("CARGO_PKG_VERSION").into(),
        started_at: crate::clock::unix_now(),
        simulated: true,
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
    let _ = main.notifier.stopping();
    tracing::info!("kiosk stopping");
    Ok(())
}

/// The simulated camera loaded with a fixture folder, its scenario, and the set to show while framing.
fn sim_camera(frames: &Path) -> anyhow::Result<(SimCamera, Scenario, Option<&'static str>)> {
    if !frames.is_dir() {
        bail!("frames folder {} does not exist", frames.display());
    }
    let scenario_path = frames.join("scenario.toml");
    let scenario: Scenario = if scenario_path.exists() {
        let text = std::fs::read_to_string(&scenario_path)?;
        toml::from_str(&text).with_context(|| scenario_path.display().to_string())?
    } else {
        Scenario::default()
    };
    let mut camera = SimCamera::new(SimCameraConfig {
        preview_width: 1920,
        preview_height: 1080,
        fit: PreviewFit::Crop,
        frame_interval_ms: 40,
    });
    let scan = frames.join("scan");
    camera
        .load_set("scan", &scan)
        .with_context(|| format!("loading {}", scan.display()))?;
    let mut framing = None;
    for (dir, set) in [("shots", "shots"), ("framing", "framing")] {
        let path = frames.join(dir);
        if path.is_dir() {
            camera
                .load_set(set, &path)
                .with_context(|| format!("loading {}", path.display()))?;
            framing = Some(set);
        }
    }
    if camera.set_len("shots").is_some() {
        camera.use_stills("shots", 0)?;
    }
    camera.show_preview_set("scan", hal::Millis::ZERO)?;
    Ok((camera, scenario, framing))
}

/// What is in front of the simulated camera.
#[derive(Debug)]
struct SimWorld {
    framing: Option<&'static str>,
}

impl SimWorld {
    fn update(&self, kiosk: &mut Kiosk<SimCamera, SimSeat, SimLights>, t: hal::Millis) {
        let showing = match kiosk.session().state() {
            StateKind::Attract | StateKind::Scan | StateKind::Verify | StateKind::Rejected => Some("scan"),
            _ => self.framing,
        };
        if let Some(set) = showing
            && kiosk.camera_mut().showing() != Some(set)
            && let Err(e) = kiosk.camera_mut().show_preview_set(set, t)
        {
            tracing::warn!(error = %e, "simulated camera");
        }
    }
}

struct MainLoop<C: Camera, S: Seat, L: Lights> {
    kiosk: Kiosk<C, S, L>,
    world: SimWorld,
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

impl MainLoop<SimCamera, SimSeat, SimLights> {
    fn run(&mut self, start: Instant, run_for: Option<Duration>, hang: Option<(Duration, Duration)>) {
        let mut hang = hang;
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
            self.world
                .update(&mut self.kiosk, hal::Millis::from_duration(now - start));
            self.kiosk.tick(now);
            self.report_events();
            self.iterations += 1;
            self.publish();
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
            if run_for.is_some_and(|d| now >= start + d) {
                return;
            }
            let now = crate::clock::monotonic();
            let mut wake = self.kiosk.next_wakeup(now);
            if let Some(w) = self.watchdog.next_due(now) {
                wake = wake.min(w);
            }
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
