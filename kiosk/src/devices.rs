//! The `[devices]` section of the kiosk's TOML: which driver each device uses and its parameters,
//! validated at start with errors that name the key, and the factory that builds the devices.
//!
//! The factory returns one enum per device ([`AnyCamera`], [`AnySeat`], ...) so the shell stays
//! generic over the hal traits and a simulated kiosk and a real one run the same code. Errors of
//! every driver are reduced to [`DeviceError`] (a message and a `hal::ErrorKind`). [`build`] opens
//! every device now and fails on the first that is missing (`kioskctl selftest`); [`build_deferred`]
//! wraps each real device in a [`Deferred`] that is opened now or as soon as it appears (`kiosk
//! run`, which must come up out of service rather than exit). Deliberately
//! not here: supervision (the shell's), calibration of the light table (the `[lights]` table of a
//! later issue; the defaults are used), the simulated frame scripts (the demo's).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hal::drivers::camera::{V4l2Camera, V4l2Config};
use hal::drivers::gpio::{self, GpioButtons, GpioSeat, GpioSeatConfig, PwmLights};
use hal::drivers::{ControllerSetup, ModbusConfig, ModbusLights, ModbusMaster, ModbusSeat, SerialScanner};
use hal::sim::{SimButtons, SimCamera, SimCameraConfig, SimLights, SimQrScanner, SimSeat, SimSeatConfig};
use hal::{
    ButtonEvent, Buttons, Camera, ChannelLevels, ErrorKind, Frame, LightMode, LightTable, Lights, Millis,
    QrSource, Seat, SeatCommand, SeatStatus,
};
use serde::Deserialize;

/// `[devices]`: every device defaults to its simulated twin, so a config without the section runs
/// a full simulation.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DevicesConfig {
    #[serde(default)]
    pub camera: CameraConfig,
    #[serde(default)]
    pub seat: SeatConfig,
    #[serde(default)]
    pub lights: LightsConfig,
    #[serde(default)]
    pub buttons: ButtonsConfig,
    #[serde(default)]
    pub qr: QrConfig,
    /// `[devices.controller]`: the Modbus RTU seat-and-lights controller, needed when the seat or
    /// the lights use `driver = "modbus"`.
    #[serde(default)]
    pub controller: Option<ControllerConfig>,
}

/// `[devices.camera]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(tag = "driver", rename_all = "snake_case", deny_unknown_fields)]
pub enum CameraConfig {
    /// Frames from image folders (`frames`: a folder of sets, see `SimCamera::load_sets`).
    Sim {
        #[serde(default)]
        frames: Option<PathBuf>,
    },
    /// A UVC camera at `/dev/video{index}`.
    V4l2 {
        #[serde(default)]
        index: u32,
        #[serde(default = "d_width")]
        width: u32,
        #[serde(default = "d_height")]
        height: u32,
        #[serde(default = "d_fps")]
        fps: u32,
    },
}

fn d_width() -> u32 {
    1920
}
fn d_height() -> u32 {
    1080
}
fn d_fps() -> u32 {
    30
}

impl Default for CameraConfig {
    fn default() -> Self {
        CameraConfig::Sim { frames: None }
    }
}

/// `[devices.seat]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(tag = "driver", rename_all = "snake_case", deny_unknown_fields)]
pub enum SeatConfig {
    Sim {
        #[serde(default = "d_max_run")]
        max_run_ms: u64,
    },
    /// Two relays and two limit switches, BCM pin numbers.
    Gpio {
        up_pin: u8,
        down_pin: u8,
        top_limit_pin: u8,
        bottom_limit_pin: u8,
        #[serde(default = "yes")]
        relay_active_low: bool,
        #[serde(default = "yes")]
        limit_tripped_high: bool,
        #[serde(default = "d_max_run")]
        max_run_ms: u64,
    },
    /// On the Modbus controller of `[devices.controller]`.
    Modbus {
        #[serde(default = "d_max_run")]
        max_run_ms: u64,
        #[serde(default = "d_watchdog")]
        watchdog_ms: u16,
        #[serde(default = "d_travel")]
        travel_mm: u16,
    },
}

fn d_max_run() -> u64 {
    10_000
}
fn d_watchdog() -> u16 {
    1000
}
fn d_travel() -> u16 {
    200
}
fn yes() -> bool {
    true
}

impl Default for SeatConfig {
    fn default() -> Self {
        SeatConfig::Sim {
            max_run_ms: d_max_run(),
        }
    }
}

/// One PWM output: a hardware channel (0-3) or software PWM on a BCM pin.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PwmOutput {
    #[serde(default)]
    pub channel: Option<u8>,
    #[serde(default)]
    pub pin: Option<u8>,
}

/// `[devices.lights]`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(tag = "driver", rename_all = "snake_case", deny_unknown_fields)]
pub enum LightsConfig {
    #[default]
    Sim,
    Pwm {
        key_left: PwmOutput,
        key_right: PwmOutput,
        background: PwmOutput,
        #[serde(default = "d_pwm_hz")]
        frequency_hz: f64,
    },
    Modbus,
}

fn d_pwm_hz() -> f64 {
    1000.0
}

/// `[devices.buttons]`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(tag = "driver", rename_all = "snake_case", deny_unknown_fields)]
pub enum ButtonsConfig {
    #[default]
    Sim,
    /// Buttons to ground with the pull-up enabled, BCM pin numbers.
    Gpio {
        seat_up_pin: u8,
        seat_down_pin: u8,
        service_key_pin: u8,
        #[serde(default = "d_debounce")]
        debounce_ms: u64,
    },
}

fn d_debounce() -> u64 {
    gpio::DEBOUNCE_MS
}

/// `[devices.qr]`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(tag = "driver", rename_all = "snake_case", deny_unknown_fields)]
pub enum QrConfig {
    /// Decode QR codes from the camera's preview frames.
    #[default]
    Camera,
    /// A USB CDC scanner that sends lines.
    Serial {
        path: String,
        #[serde(default = "d_baud")]
        baud: u32,
        #[serde(default = "d_max_line")]
        max_line: usize,
    },
    /// Scripted scans.
    Sim,
}

fn d_baud() -> u32 {
    9600
}
fn d_max_line() -> usize {
    hal::drivers::scanner::DEFAULT_MAX_LINE
}

/// `[devices.controller]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ControllerConfig {
    pub path: String,
    #[serde(default = "d_baud")]
    pub baud: u32,
    #[serde(default = "d_slave")]
    pub slave_id: u8,
    #[serde(default = "d_timeout")]
    pub timeout_ms: u64,
    #[serde(default = "d_retries")]
    pub retries: u8,
}

fn d_slave() -> u8 {
    1
}
fn d_timeout() -> u64 {
    100
}
fn d_retries() -> u8 {
    2
}

const BAUDS: [u32; 8] = [1200, 2400, 4800, 9600, 19_200, 38_400, 57_600, 115_200];

/// A `[devices]` key with a bad value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct InvalidDevice {
    /// The full key, e.g. `devices.seat.up_pin`.
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

fn bad(key: &str, reason: impl Into<String>) -> InvalidDevice {
    InvalidDevice {
        key: key.into(),
        reason: reason.into(),
    }
}

impl DevicesConfig {
    /// Checks every value; the first problem is returned with its key.
    pub fn validate(&self) -> Result<(), InvalidDevice> {
        let mut pins: BTreeMap<u8, String> = BTreeMap::new();
        let mut pin = |key: &str, p: u8| -> Result<(), InvalidDevice> {
            // BCM 0-1 are the HAT EEPROM's I2C; 2-27 are the header's GPIOs.
            if !(2..=27).contains(&p) {
                return Err(bad(key, format!("BCM pin {p} is not a header GPIO (2-27)")));
            }
            if let Some(other) = pins.insert(p, key.to_owned()) {
                return Err(bad(key, format!("BCM pin {p} is already used by {other}")));
            }
            Ok(())
        };
        let max_run = |key: &str, ms: u64| {
            if (1000..=60_000).contains(&ms) {
                Ok(())
            } else {
                Err(bad(key, format!("{ms} ms is outside 1000..=60000")))
            }
        };
        match &self.camera {
            CameraConfig::Sim { .. } => {}
            CameraConfig::V4l2 {
                index,
                width,
                height,
                fps,
            } => {
                if *index > 63 {
                    return Err(bad("devices.camera.index", "must be 0..=63"));
                }
                if !(320..=4096).contains(width) {
                    return Err(bad("devices.camera.width", "must be 320..=4096"));
                }
                if !(240..=3072).contains(height) {
                    return Err(bad("devices.camera.height", "must be 240..=3072"));
                }
                if !(1..=60).contains(fps) {
                    return Err(bad("devices.camera.fps", "must be 1..=60"));
                }
            }
        }
        let mut needs_controller = None;
        match &self.seat {
            SeatConfig::Sim { max_run_ms } => max_run("devices.seat.max_run_ms", *max_run_ms)?,
            SeatConfig::Gpio {
                up_pin,
                down_pin,
                top_limit_pin,
                bottom_limit_pin,
                max_run_ms,
                ..
            } => {
                pin("devices.seat.up_pin", *up_pin)?;
                pin("devices.seat.down_pin", *down_pin)?;
                pin("devices.seat.top_limit_pin", *top_limit_pin)?;
                pin("devices.seat.bottom_limit_pin", *bottom_limit_pin)?;
                max_run("devices.seat.max_run_ms", *max_run_ms)?;
            }
            SeatConfig::Modbus {
                max_run_ms,
                watchdog_ms,
                travel_mm,
            } => {
                max_run("devices.seat.max_run_ms", *max_run_ms)?;
                if !(100..=5000).contains(watchdog_ms) {
                    return Err(bad("devices.seat.watchdog_ms", "must be 100..=5000"));
                }
                if *travel_mm == 0 {
                    return Err(bad("devices.seat.travel_mm", "must be above 0"));
                }
                needs_controller = Some("devices.seat.driver");
            }
        }
        match &self.lights {
            LightsConfig::Sim => {}
            LightsConfig::Modbus => needs_controller = needs_controller.or(Some("devices.lights.driver")),
            LightsConfig::Pwm {
                key_left,
                key_right,
                background,
                frequency_hz,
            } => {
                let mut channels = Vec::new();
                for (name, out) in [
                    ("key_left", key_left),
                    ("key_right", key_right),
                    ("background", background),
                ] {
                    let key = format!("devices.lights.{name}");
                    match (out.channel, out.pin) {
                        (Some(c), None) if c <= 3 => {
                            if channels.contains(&c) {
                                return Err(bad(&key, format!("PWM channel {c} is used twice")));
                            }
                            channels.push(c);
                        }
                        (Some(_), None) => return Err(bad(&key, "hardware PWM channels are 0-3")),
                        (None, Some(p)) => pin(&key, p)?,
                        _ => {
                            return Err(bad(
                                &key,
                                "give exactly one of `channel` (hardware PWM) or `pin` (software PWM)",
                            ));
                        }
                    }
                }
                if !(100.0..=40_000.0).contains(frequency_hz) {
                    return Err(bad("devices.lights.frequency_hz", "must be 100..=40000"));
                }
            }
        }
        if let ButtonsConfig::Gpio {
            seat_up_pin,
            seat_down_pin,
            service_key_pin,
            debounce_ms,
        } = &self.buttons
        {
            pin("devices.buttons.seat_up_pin", *seat_up_pin)?;
            pin("devices.buttons.seat_down_pin", *seat_down_pin)?;
            pin("devices.buttons.service_key_pin", *service_key_pin)?;
            if !(5..=500).contains(debounce_ms) {
                return Err(bad("devices.buttons.debounce_ms", "must be 5..=500"));
            }
        }
        if let QrConfig::Serial { path, baud, max_line } = &self.qr {
            if path.trim().is_empty() {
                return Err(bad("devices.qr.path", "must not be empty"));
            }
            if !BAUDS.contains(baud) {
                return Err(bad("devices.qr.baud", format!("must be one of {BAUDS:?}")));
            }
            if !(16..=8192).contains(max_line) {
                return Err(bad("devices.qr.max_line", "must be 16..=8192"));
            }
        }
        match (&self.controller, needs_controller) {
            (None, Some(who)) => {
                return Err(bad(
                    "devices.controller",
                    format!("missing, but {who} = \"modbus\" needs it"),
                ));
            }
            (Some(c), _) => {
                if c.path.trim().is_empty() {
                    return Err(bad("devices.controller.path", "must not be empty"));
                }
                if !BAUDS.contains(&c.baud) {
                    return Err(bad(
                        "devices.controller.baud",
                        format!("must be one of {BAUDS:?}"),
                    ));
                }
                if !(1..=247).contains(&c.slave_id) {
                    return Err(bad("devices.controller.slave_id", "must be 1..=247"));
                }
                if !(10..=2000).contains(&c.timeout_ms) {
                    return Err(bad("devices.controller.timeout_ms", "must be 10..=2000"));
                }
                if c.retries > 5 {
                    return Err(bad("devices.controller.retries", "must be 0..=5"));
                }
            }
            (None, None) => {}
        }
        Ok(())
    }
}

/// Any device's error, reduced to a message and its kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DeviceError {
    pub kind: ErrorKind,
    pub message: String,
}

impl hal::Error for DeviceError {
    fn kind(&self) -> ErrorKind {
        self.kind
    }
}

fn dev<E: hal::Error>(e: E) -> DeviceError {
    DeviceError {
        kind: e.kind(),
        message: e.to_string(),
    }
}

/// Why a device could not be built; names the config key of the device.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {source}")]
pub struct BuildError {
    pub key: &'static str,
    pub source: DeviceError,
}

fn build_err<E: hal::Error>(key: &'static str) -> impl Fn(E) -> BuildError {
    move |e| BuildError { key, source: dev(e) }
}

/// The camera of either kind.
#[derive(Debug)]
pub enum AnyCamera {
    Sim(Box<SimCamera>),
    V4l2(Box<V4l2Camera>),
}

impl Camera for AnyCamera {
    type Error = DeviceError;
    fn preview_frame(&mut self, now: Millis) -> Result<Frame, DeviceError> {
        match self {
            AnyCamera::Sim(c) => c.preview_frame(now).map_err(dev),
            AnyCamera::V4l2(c) => c.preview_frame(now).map_err(dev),
        }
    }
    fn capture_still(&mut self, now: Millis) -> Result<Frame, DeviceError> {
        match self {
            AnyCamera::Sim(c) => c.capture_still(now).map_err(dev),
            AnyCamera::V4l2(c) => c.capture_still(now).map_err(dev),
        }
    }
    fn lock_exposure(&mut self, locked: bool) -> Result<(), DeviceError> {
        match self {
            AnyCamera::Sim(c) => c.lock_exposure(locked).map_err(dev),
            AnyCamera::V4l2(c) => c.lock_exposure(locked).map_err(dev),
        }
    }
    fn reconnect(&mut self, now: Millis) -> Result<(), DeviceError> {
        match self {
            AnyCamera::Sim(c) => c.reconnect(now).map_err(dev),
            AnyCamera::V4l2(c) => c.reconnect(now).map_err(dev),
        }
    }
    fn is_connected(&self) -> bool {
        match self {
            AnyCamera::Sim(c) => c.is_connected(),
            AnyCamera::V4l2(c) => c.is_connected(),
        }
    }
}

type RpiSeat = GpioSeat<gpio::rpi::RpiOutput, gpio::rpi::RpiInput>;

/// The seat of any kind.
#[derive(Debug)]
pub enum AnySeat {
    Sim(SimSeat),
    Gpio(Box<RpiSeat>),
    Modbus(ModbusSeat),
}

impl Seat for AnySeat {
    type Error = DeviceError;
    fn command(&mut self, cmd: SeatCommand, now: Millis) -> Result<(), DeviceError> {
        match self {
            AnySeat::Sim(s) => s.command(cmd, now).map_err(dev),
            AnySeat::Gpio(s) => s.command(cmd, now).map_err(dev),
            AnySeat::Modbus(s) => s.command(cmd, now).map_err(dev),
        }
    }
    fn poll(&mut self, now: Millis) -> Result<SeatStatus, DeviceError> {
        match self {
            AnySeat::Sim(s) => s.poll(now).map_err(dev),
            AnySeat::Gpio(s) => s.poll(now).map_err(dev),
            AnySeat::Modbus(s) => s.poll(now).map_err(dev),
        }
    }
    fn go_to(&mut self, mm: u16, now: Millis) -> Result<(), DeviceError> {
        match self {
            AnySeat::Sim(s) => s.go_to(mm, now).map_err(dev),
            AnySeat::Gpio(s) => s.go_to(mm, now).map_err(dev),
            AnySeat::Modbus(s) => s.go_to(mm, now).map_err(dev),
        }
    }
}

/// The lights of any kind.
#[derive(Debug)]
pub enum AnyLights {
    Sim(SimLights),
    Pwm(PwmLights<gpio::rpi::RpiPwm>),
    Modbus(ModbusLights),
}

impl Lights for AnyLights {
    type Error = DeviceError;
    fn set_mode(&mut self, mode: LightMode, now: Millis) -> Result<(), DeviceError> {
        match self {
            AnyLights::Sim(l) => l.set_mode(mode, now).map_err(dev),
            AnyLights::Pwm(l) => l.set_mode(mode, now).map_err(dev),
            AnyLights::Modbus(l) => l.set_mode(mode, now).map_err(dev),
        }
    }
    fn levels(&self) -> ChannelLevels {
        match self {
            AnyLights::Sim(l) => l.levels(),
            AnyLights::Pwm(l) => l.levels(),
            AnyLights::Modbus(l) => l.levels(),
        }
    }
}

/// The buttons of any kind.
#[derive(Debug)]
pub enum AnyButtons {
    Sim(SimButtons),
    Gpio(GpioButtons<gpio::rpi::RpiInput>),
}

impl Buttons for AnyButtons {
    type Error = DeviceError;
    fn poll(&mut self, now: Millis) -> Result<Vec<ButtonEvent>, DeviceError> {
        match self {
            AnyButtons::Sim(b) => b.poll(now).map_err(dev),
            AnyButtons::Gpio(b) => b.poll(now).map_err(dev),
        }
    }
}

/// Where QR payloads come from: the camera path (decoded by the shell from preview frames) or a
/// device of its own.
#[derive(Debug)]
pub enum AnyQr {
    /// The camera's frames; the shell's `CameraQr` does the work.
    Camera,
    Serial(SerialScanner),
    Sim(SimQrScanner),
}

impl QrSource for AnyQr {
    type Error = DeviceError;
    fn poll(&mut self, now: Millis) -> Result<Option<Vec<u8>>, DeviceError> {
        match self {
            AnyQr::Camera => Ok(None),
            AnyQr::Serial(s) => s.poll(now).map_err(dev),
            AnyQr::Sim(s) => s.poll(now).map_err(dev),
        }
    }
}

/// Every device of the kiosk.
#[derive(Debug)]
pub struct Devices {
    pub camera: AnyCamera,
    pub seat: AnySeat,
    pub lights: AnyLights,
    pub buttons: AnyButtons,
    pub qr: AnyQr,
}

/// Builds the devices `config` selects (validate it first). Real devices are opened here, so a
/// missing device fails at start with its key; the simulated camera loads its frame sets when
/// `frames` is given. `kioskctl selftest` uses this; `kiosk run` uses [`build_deferred`].
pub fn build(config: &DevicesConfig, table: LightTable) -> Result<Devices, BuildError> {
    let controller = Controller::new(config);
    Ok(Devices {
        camera: open_camera(&config.camera)?,
        seat: open_seat(&config.seat, &controller)?,
        lights: open_lights(&config.lights, &controller, table)?,
        buttons: open_buttons(&config.buttons)?,
        qr: open_qr(&config.qr)?,
    })
}

/// The Modbus controller, opened by whichever of the seat and the lights needs it first and then
/// shared by both (one port, one master).
#[derive(Clone, Debug)]
struct Controller {
    config: Option<ControllerConfig>,
    master: Arc<Mutex<Option<SharedMaster>>>,
}

type SharedMaster = Arc<Mutex<ModbusMaster>>;

impl Controller {
    fn new(config: &DevicesConfig) -> Controller {
        let used = matches!(config.seat, SeatConfig::Modbus { .. }) || config.lights == LightsConfig::Modbus;
        Controller {
            config: config.controller.clone().filter(|_| used),
            master: Arc::default(),
        }
    }

    fn master(&self) -> Result<SharedMaster, BuildError> {
        let Some(c) = &self.config else {
            return Err(BuildError {
                key: "devices.controller",
                source: DeviceError {
                    kind: ErrorKind::InvalidInput,
                    message: "missing".into(),
                },
            });
        };
        let mut slot = self.master.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = slot.as_ref() {
            // A port closed by a failed first exchange is reopened for the next attempt.
            let mut master = m.lock().unwrap_or_else(|p| p.into_inner());
            if !master.is_open() {
                master.reopen().map_err(build_err("devices.controller.path"))?;
            }
            drop(master);
            return Ok(m.clone());
        }
        let m = ModbusMaster::open(
            &c.path,
            c.baud,
            ModbusConfig {
                slave: c.slave_id,
                timeout: Duration::from_millis(c.timeout_ms),
                retries: c.retries,
            },
        )
        .map_err(build_err("devices.controller.path"))?;
        let m = Arc::new(Mutex::new(m));
        *slot = Some(m.clone());
        Ok(m)
    }
}

/// The simulated camera with the frame sets of `frames`, laid out as the demo fixtures are
/// (`scan/`, `shots/`, `framing/`): 1080p previews like the real camera's (so the QR path sees
/// what it would see), stills from `shots` when there is such a set, and `scan` shown first.
fn sim_camera(frames: Option<&std::path::Path>) -> Result<SimCamera, BuildError> {
    let mut cam = SimCamera::new(SimCameraConfig {
        preview_width: 1920,
        preview_height: 1080,
        fit: hal::sim::PreviewFit::Crop,
        frame_interval_ms: 33, // 30 fps, like the kiosk camera (config/pi.toml)
    });
    // A live camera's frames are never pixel-identical; a replayed file without noise would read
    // as a photo held up to the camera (a frozen stream) to the liveness check.
    cam.set_sensor_noise(true);
    if let Some(dir) = frames {
        let key = "devices.camera.frames";
        let sets = cam.load_sets(dir).map_err(build_err(key))?;
        if cam.set_len("shots").is_some() {
            cam.use_stills("shots", 0).map_err(build_err(key))?;
        }
        let first = if cam.set_len("scan").is_some() {
            Some("scan")
        } else {
            sets.first().map(String::as_str)
        };
        if let Some(first) = first {
            cam.show_preview_set(first, Millis::ZERO)
                .map_err(build_err(key))?;
        }
    }
    Ok(cam)
}

fn open_camera(config: &CameraConfig) -> Result<AnyCamera, BuildError> {
    Ok(match config {
        CameraConfig::Sim { frames } => AnyCamera::Sim(Box::new(sim_camera(frames.as_deref())?)),
        CameraConfig::V4l2 {
            index,
            width,
            height,
            fps,
        } => AnyCamera::V4l2(Box::new(
            V4l2Camera::open(V4l2Config {
                index: *index,
                width: *width,
                height: *height,
                fps: *fps,
                preview_width: *width,
                preview_height: *height,
            })
            .map_err(build_err("devices.camera"))?,
        )),
    })
}

fn open_seat(config: &SeatConfig, controller: &Controller) -> Result<AnySeat, BuildError> {
    Ok(match config {
        SeatConfig::Sim { max_run_ms } => AnySeat::Sim(SimSeat::new(SimSeatConfig {
            max_run_ms: *max_run_ms,
            ..SimSeatConfig::default()
        })),
        SeatConfig::Gpio {
            up_pin,
            down_pin,
            top_limit_pin,
            bottom_limit_pin,
            relay_active_low,
            limit_tripped_high,
            max_run_ms,
        } => {
            // Relays open released: the released level is high for active-low boards.
            let up =
                gpio::rpi::output(*up_pin, *relay_active_low).map_err(build_err("devices.seat.up_pin"))?;
            let down = gpio::rpi::output(*down_pin, *relay_active_low)
                .map_err(build_err("devices.seat.down_pin"))?;
            let top =
                gpio::rpi::input_pullup(*top_limit_pin).map_err(build_err("devices.seat.top_limit_pin"))?;
            let bottom = gpio::rpi::input_pullup(*bottom_limit_pin)
                .map_err(build_err("devices.seat.bottom_limit_pin"))?;
            let cfg = GpioSeatConfig {
                relay_active_low: *relay_active_low,
                limit_tripped_high: *limit_tripped_high,
                max_run_ms: *max_run_ms,
            };
            AnySeat::Gpio(Box::new(
                GpioSeat::new(up, down, top, bottom, cfg).map_err(build_err("devices.seat"))?,
            ))
        }
        SeatConfig::Modbus {
            max_run_ms,
            watchdog_ms,
            travel_mm,
        } => {
            let mut seat = ModbusSeat::new(
                controller.master()?,
                ControllerSetup {
                    max_run_ms: *max_run_ms,
                    watchdog_ms: *watchdog_ms,
                    travel_mm: *travel_mm,
                },
            );
            seat.probe().map_err(build_err("devices.controller"))?;
            AnySeat::Modbus(seat)
        }
    })
}

fn open_lights(
    config: &LightsConfig,
    controller: &Controller,
    table: LightTable,
) -> Result<AnyLights, BuildError> {
    Ok(match config {
        LightsConfig::Sim => AnyLights::Sim(SimLights::new(table)),
        LightsConfig::Modbus => AnyLights::Modbus(ModbusLights::new(controller.master()?, table)),
        LightsConfig::Pwm {
            key_left,
            key_right,
            background,
            frequency_hz,
        } => {
            let open = |key: &'static str, o: &PwmOutput| match (o.channel, o.pin) {
                (Some(c), _) => gpio::rpi::hardware_pwm(c, *frequency_hz).map_err(build_err(key)),
                (None, Some(p)) => gpio::rpi::software_pwm(p, *frequency_hz).map_err(build_err(key)),
                (None, None) => Err(BuildError {
                    key,
                    source: DeviceError {
                        kind: ErrorKind::InvalidInput,
                        message: "no channel or pin".into(),
                    },
                }),
            };
            let l = open("devices.lights.key_left", key_left)?;
            let r = open("devices.lights.key_right", key_right)?;
            let b = open("devices.lights.background", background)?;
            AnyLights::Pwm(PwmLights::new(l, r, b, table).map_err(build_err("devices.lights"))?)
        }
    })
}

fn open_buttons(config: &ButtonsConfig) -> Result<AnyButtons, BuildError> {
    Ok(match config {
        ButtonsConfig::Sim => AnyButtons::Sim(SimButtons::new()),
        ButtonsConfig::Gpio {
            seat_up_pin,
            seat_down_pin,
            service_key_pin,
            debounce_ms,
        } => {
            let input = |key: &'static str, switch, pin: u8| {
                Ok::<_, BuildError>(gpio::ButtonInput {
                    switch,
                    pin: gpio::rpi::input_pullup(pin).map_err(build_err(key))?,
                    active_low: true,
                })
            };
            AnyButtons::Gpio(GpioButtons::new(
                vec![
                    input("devices.buttons.seat_up_pin", hal::Switch::SeatUp, *seat_up_pin)?,
                    input(
                        "devices.buttons.seat_down_pin",
                        hal::Switch::SeatDown,
                        *seat_down_pin,
                    )?,
                    input(
                        "devices.buttons.service_key_pin",
                        hal::Switch::ServiceKey,
                        *service_key_pin,
                    )?,
                ],
                *debounce_ms,
            ))
        }
    })
}

fn open_qr(config: &QrConfig) -> Result<AnyQr, BuildError> {
    Ok(match config {
        QrConfig::Camera => AnyQr::Camera,
        QrConfig::Sim => AnyQr::Sim(SimQrScanner::new()),
        QrConfig::Serial { path, baud, max_line } => {
            AnyQr::Serial(SerialScanner::open(path, *baud, *max_line).map_err(build_err("devices.qr.path"))?)
        }
    })
}

/// How often a device that could not be opened is tried again.
pub const REOPEN_EVERY_MS: u64 = 1000;

type Opener<T> = Box<dyn FnMut() -> Result<T, BuildError> + Send>;

/// A device opened when it can be: at start if it is there, later if not. Until it is open every
/// call fails with the reason it could not be opened (as `Disconnected`, so the supervisor puts
/// the kiosk out of service at once and says which device), and a call at most every
/// [`REOPEN_EVERY_MS`] tries to open it again; once open, calls go straight to the device, whose
/// driver handles its own unplugs from then on.
pub struct Deferred<T> {
    device: Option<T>,
    open: Opener<T>,
    last_try: Option<Millis>,
    error: Option<DeviceError>,
}

impl<T: std::fmt::Debug> std::fmt::Debug for Deferred<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deferred")
            .field("device", &self.device)
            .field("error", &self.error)
            .finish()
    }
}

impl<T> Deferred<T> {
    /// A device that is already open.
    pub fn open(device: T) -> Deferred<T> {
        Deferred {
            device: Some(device),
            open: Box::new(|| unreachable_open()),
            last_try: None,
            error: None,
        }
    }

    /// Tries `open` now; if it fails, keeps trying on later calls.
    pub fn opening(mut open: impl FnMut() -> Result<T, BuildError> + Send + 'static) -> Deferred<T> {
        let (device, error) = match open() {
            Ok(d) => (Some(d), None),
            Err(e) => (None, Some(not_open(e))),
        };
        Deferred {
            device,
            open: Box::new(open),
            last_try: Some(Millis::ZERO),
            error,
        }
    }

    /// The device, when it is open.
    pub fn device(&self) -> Option<&T> {
        self.device.as_ref()
    }

    /// The device, when it is open.
    pub fn device_mut(&mut self) -> Option<&mut T> {
        self.device.as_mut()
    }

    /// Why the device is not open (the last attempt's error), or `None` when it is.
    pub fn open_error(&self) -> Option<&DeviceError> {
        self.device.is_none().then_some(self.error.as_ref()).flatten()
    }

    /// The open device, opening it first if it is time to try again.
    fn get(&mut self, now: Millis) -> Result<&mut T, DeviceError> {
        if self.device.is_none() && self.last_try.is_none_or(|t| now.since(t) >= REOPEN_EVERY_MS) {
            self.last_try = Some(now);
            match (self.open)() {
                Ok(d) => {
                    tracing::info!("device opened after start");
                    self.device = Some(d);
                    self.error = None;
                }
                Err(e) => self.error = Some(not_open(e)),
            }
        }
        match &mut self.device {
            Some(d) => Ok(d),
            None => Err(self.error.clone().unwrap_or(DeviceError {
                kind: ErrorKind::Disconnected,
                message: "not open".into(),
            })),
        }
    }
}

fn unreachable_open<T>() -> Result<T, BuildError> {
    // Never called: a device built open has no opener; should it be asked, it says so.
    Err(BuildError {
        key: "devices",
        source: DeviceError {
            kind: ErrorKind::Disconnected,
            message: "device was handed in open and cannot be reopened".into(),
        },
    })
}

/// An open failure as the supervisor must see it: a device that is not there is down, never a
/// transient hiccup or a caller error (either would leave the kiosk waiting for a device it lacks).
fn not_open(e: BuildError) -> DeviceError {
    let kind = match e.source.kind {
        ErrorKind::Fault => ErrorKind::Fault,
        _ => ErrorKind::Disconnected,
    };
    DeviceError {
        kind,
        message: format!("cannot open {}: {}", e.key, e.source.message),
    }
}

impl<T: Camera<Error = DeviceError>> Camera for Deferred<T> {
    type Error = DeviceError;
    fn preview_frame(&mut self, now: Millis) -> Result<Frame, DeviceError> {
        self.get(now)?.preview_frame(now)
    }
    fn capture_still(&mut self, now: Millis) -> Result<Frame, DeviceError> {
        self.get(now)?.capture_still(now)
    }
    fn lock_exposure(&mut self, locked: bool) -> Result<(), DeviceError> {
        match &mut self.device {
            Some(d) => d.lock_exposure(locked),
            None => Ok(()),
        }
    }
    fn reconnect(&mut self, now: Millis) -> Result<(), DeviceError> {
        let was_open = self.device.is_some();
        let d = self.get(now)?;
        if was_open { d.reconnect(now) } else { Ok(()) }
    }
    fn is_connected(&self) -> bool {
        self.device.as_ref().is_some_and(|d| d.is_connected())
    }
}

impl<T: Seat<Error = DeviceError>> Seat for Deferred<T> {
    type Error = DeviceError;
    fn command(&mut self, cmd: SeatCommand, now: Millis) -> Result<(), DeviceError> {
        self.get(now)?.command(cmd, now)
    }
    fn poll(&mut self, now: Millis) -> Result<SeatStatus, DeviceError> {
        self.get(now)?.poll(now)
    }
    fn go_to(&mut self, mm: u16, now: Millis) -> Result<(), DeviceError> {
        self.get(now)?.go_to(mm, now)
    }
}

impl<T: Lights<Error = DeviceError>> Lights for Deferred<T> {
    type Error = DeviceError;
    fn set_mode(&mut self, mode: LightMode, now: Millis) -> Result<(), DeviceError> {
        self.get(now)?.set_mode(mode, now)
    }
    fn levels(&self) -> ChannelLevels {
        self.device.as_ref().map_or(ChannelLevels::OFF, |d| d.levels())
    }
}

impl<T: Buttons<Error = DeviceError>> Buttons for Deferred<T> {
    type Error = DeviceError;
    fn poll(&mut self, now: Millis) -> Result<Vec<ButtonEvent>, DeviceError> {
        self.get(now)?.poll(now)
    }
}

impl<T: QrSource<Error = DeviceError>> QrSource for Deferred<T> {
    type Error = DeviceError;
    fn poll(&mut self, now: Millis) -> Result<Option<Vec<u8>>, DeviceError> {
        self.get(now)?.poll(now)
    }
}

/// Every device of the kiosk, each opened now or as soon as it appears.
#[derive(Debug)]
pub struct DeferredDevices {
    pub camera: Deferred<AnyCamera>,
    pub seat: Deferred<AnySeat>,
    pub lights: Deferred<AnyLights>,
    pub buttons: Deferred<AnyButtons>,
    pub qr: Deferred<AnyQr>,
}

/// Builds the devices `config` selects for `kiosk run`: a real device that cannot be opened does
/// not stop the kiosk (it comes up out of service saying which, and recovers when the device
/// appears), while a simulated one that cannot be built (a frames folder that does not exist) is
/// a configuration error, returned with its key.
pub fn build_deferred(config: &DevicesConfig, table: LightTable) -> Result<DeferredDevices, BuildError> {
    let controller = Controller::new(config);
    let camera = match &config.camera {
        CameraConfig::Sim { .. } => Deferred::open(open_camera(&config.camera)?),
        real => {
            let real = real.clone();
            Deferred::opening(move || open_camera(&real))
        }
    };
    let seat = match &config.seat {
        SeatConfig::Sim { .. } => Deferred::open(open_seat(&config.seat, &controller)?),
        real => {
            let (real, controller) = (real.clone(), controller.clone());
            Deferred::opening(move || open_seat(&real, &controller))
        }
    };
    let lights = match &config.lights {
        LightsConfig::Sim => Deferred::open(open_lights(&config.lights, &controller, table)?),
        real => {
            let real = real.clone();
            Deferred::opening(move || open_lights(&real, &controller, table))
        }
    };
    let buttons = match &config.buttons {
        ButtonsConfig::Sim => Deferred::open(open_buttons(&config.buttons)?),
        real => {
            let real = real.clone();
            Deferred::opening(move || open_buttons(&real))
        }
    };
    let qr = match &config.qr {
        QrConfig::Camera | QrConfig::Sim => Deferred::open(open_qr(&config.qr)?),
        real => {
            let real = real.clone();
            Deferred::opening(move || open_qr(&real))
        }
    };
    Ok(DeferredDevices {
        camera,
        seat,
        lights,
        buttons,
        qr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A scanner that is not there for the first `missing` attempts to open it.
    fn late_scanner(missing: u32, attempts: Arc<AtomicU32>) -> Deferred<AnyQr> {
        Deferred::opening(move || {
            let n = attempts.fetch_add(1, Ordering::Relaxed);
            if n < missing {
                Err(BuildError {
                    key: "devices.qr.path",
                    source: DeviceError {
                        // What a missing port says; a not-yet-answering device may say Timeout.
                        kind: if n == 0 {
                            ErrorKind::Disconnected
                        } else {
                            ErrorKind::Timeout
                        },
                        message: "No such file or directory".into(),
                    },
                })
            } else {
                Ok(AnyQr::Sim(SimQrScanner::new()))
            }
        })
    }

    #[test]
    fn a_deferred_device_is_down_until_it_opens_and_is_retried_once_a_second() {
        let attempts = Arc::new(AtomicU32::new(0));
        let mut qr = late_scanner(2, attempts.clone());
        assert_eq!(attempts.load(Ordering::Relaxed), 1, "tried at once");
        let e = qr.open_error().expect("not open").clone();
        assert_eq!(e.kind, ErrorKind::Disconnected);
        assert!(e.message.contains("devices.qr.path"), "{e}");
        // Polled every 100 ms: one attempt per second, and a transient-looking failure to open
        // still reads as disconnected (the supervisor must not wait for three of them).
        for ms in (100..2000).step_by(100) {
            let r = qr.poll(Millis(ms));
            assert_eq!(r.map_err(|e| e.kind), Err(ErrorKind::Disconnected), "{ms}");
        }
        assert_eq!(attempts.load(Ordering::Relaxed), 2);
        assert_eq!(qr.poll(Millis(2000)), Ok(None), "opened on the third attempt");
        assert_eq!(attempts.load(Ordering::Relaxed), 3);
        assert!(qr.open_error().is_none());
        assert_eq!(qr.poll(Millis(5000)), Ok(None));
        assert_eq!(attempts.load(Ordering::Relaxed), 3, "never reopened once open");
    }

    #[test]
    fn build_deferred_keeps_simulated_devices_and_fails_on_a_bad_frames_folder() {
        let d = build_deferred(&DevicesConfig::default(), LightTable::default()).expect("sim");
        assert!(d.camera.device().is_some() && d.seat.device().is_some());
        let bad = DevicesConfig {
            camera: CameraConfig::Sim {
                frames: Some("/nonexistent/frames".into()),
            },
            ..DevicesConfig::default()
        };
        let e = build_deferred(&bad, LightTable::default()).expect_err("a configuration error");
        assert_eq!(e.key, "devices.camera.frames");
    }
}
