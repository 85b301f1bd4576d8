//! Raspberry Pi GPIO drivers: the seat lift on two relays with two limit switches, the lights on
//! PWM, and the buttons, written against a small pin seam ([`OutputPin`], [`InputPin`],
//! [`PwmOut`]) that rppal implements on the device and scripted fakes implement in the tests.
//!
//! The seat's safety lives here and is tested through the seam: the up and down relays are never
//! driven together (the other relay is released, and confirmed released, before one is driven),
//! a run stops at its limit switch, at the maximum run time, on any pin error, on contradictory
//! limit switches, and both relays are released when the driver is dropped (on a clean exit, a
//! SIGTERM the kiosk turns into one, and a panic unwinding through the owner). The maximum run
//! time is checked on every poll, and again by a watchdog thread of the driver's own that needs
//! no poll: if a run outlives it because the caller hangs (a stuck device call, a deadlock), the
//! watchdog releases both relays and the next poll reports the fault. The limit switches wired in
//! series with the motor cover a process that is killed outright (see `docs/technician.md`).

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::{
    ButtonEvent, Buttons, ChannelLevels, Debouncer, Direction, ErrorKind, LightMode, LightTable, Lights,
    Millis, Seat, SeatCommand, SeatFault, SeatStatus, Switch,
};

/// A pin or PWM error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GpioError {
    /// The GPIO or PWM peripheral cannot be used (not a Raspberry Pi, no permission, pin busy).
    #[error("GPIO unavailable: {0}")]
    Unavailable(String),
    /// A pin operation failed.
    #[error("pin {pin}: {reason}")]
    Pin {
        /// BCM pin number (or PWM channel).
        pin: u8,
        /// Why.
        reason: String,
    },
}

impl crate::Error for GpioError {
    fn kind(&self) -> ErrorKind {
        match self {
            GpioError::Unavailable(_) => ErrorKind::Disconnected,
            GpioError::Pin { .. } => ErrorKind::Fault,
        }
    }
}

/// A digital output (a relay driver).
pub trait OutputPin {
    /// Drives the pin to `high`.
    fn set(&mut self, high: bool) -> Result<(), GpioError>;
}

/// A digital input (a limit switch, a button).
pub trait InputPin {
    /// Reads the pin level.
    fn is_high(&mut self) -> Result<bool, GpioError>;
}

/// A PWM output (a lamp dimmer input).
pub trait PwmOut {
    /// Sets the duty cycle in permille (0-1000).
    fn set_duty_permille(&mut self, permille: u16) -> Result<(), GpioError>;
}

/// Electrical conventions of the seat wiring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GpioSeatConfig {
    /// Relay boards for the Pi are mostly active-low: a low output energises the relay.
    pub relay_active_low: bool,
    /// Limit switches wired normally-closed to ground with a pull-up read high when *open*
    /// (tripped), which is fail-safe: a cut wire reads as "at the limit".
    pub limit_tripped_high: bool,
    /// The maximum run time.
    pub max_run_ms: u64,
}

impl Default for GpioSeatConfig {
    fn default() -> Self {
        GpioSeatConfig {
            relay_active_low: true,
            limit_tripped_high: true,
            max_run_ms: 10_000,
        }
    }
}

/// Why the GPIO seat refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GpioSeatError {
    /// A pin failed.
    #[error(transparent)]
    Gpio(#[from] GpioError),
    /// Asked to move into a closed limit.
    #[error("the seat is at its {0:?} limit")]
    AtLimit(Direction),
    /// Relays cannot position: no position sensor.
    #[error("the relay seat has no position sensor")]
    NoPositionSensor,
    /// A latched fault must be acknowledged with Stop before the seat moves again.
    #[error("the seat is in fault {0:?}")]
    Faulted(SeatFault),
}

impl crate::Error for GpioSeatError {
    fn kind(&self) -> ErrorKind {
        match self {
            GpioSeatError::Gpio(e) => crate::Error::kind(e),
            GpioSeatError::AtLimit(_) => ErrorKind::LimitReached,
            GpioSeatError::NoPositionSensor => ErrorKind::InvalidInput,
            GpioSeatError::Faulted(_) => ErrorKind::Fault,
        }
    }
}

/// The relay outputs, shared by the seat and its watchdog thread.
#[derive(Debug)]
struct Relays<O> {
    up: O,
    down: O,
    active_low: bool,
    /// A relay is energised (as far as the driver knows).
    running: bool,
    /// Counts runs, so the watchdog can tell a new run from the one it is timing.
    generation: u64,
    /// The watchdog released the relays; the seat latches the fault at its next call.
    tripped: bool,
    /// The seat is being dropped: the watchdog ends.
    shutdown: bool,
}

impl<O: OutputPin> Relays<O> {
    fn level(&self, energised: bool) -> bool {
        energised != self.active_low
    }

    /// Releases both relays. Tries both even if the first fails, then reports the first error.
    fn release_all(&mut self) -> Result<(), GpioError> {
        self.running = false;
        let off = self.level(false);
        let a = self.up.set(off);
        let b = self.down.set(off);
        a.and(b)
    }

    /// Drives one relay, releasing the other first: never both.
    fn drive(&mut self, dir: Direction) -> Result<(), GpioError> {
        let (off, on) = (self.level(false), self.level(true));
        match dir {
            Direction::Up => {
                self.down.set(off)?;
                self.start_run();
                self.up.set(on)?;
            }
            Direction::Down => {
                self.up.set(off)?;
                self.start_run();
                self.down.set(on)?;
            }
        }
        Ok(())
    }

    /// Marked before the relay is energised, so the watchdog never misses a run.
    fn start_run(&mut self) {
        self.running = true;
        self.generation += 1;
    }
}

#[derive(Debug)]
struct Shared<O> {
    relays: Mutex<Relays<O>>,
    /// Signalled on every change of `running`, `generation` or `shutdown`.
    changed: Condvar,
}

impl<O> Shared<O> {
    /// The relays, even after a panic while they were held: releasing them matters more then.
    fn lock(&self) -> MutexGuard<'_, Relays<O>> {
        self.relays.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The watchdog: times each run on its own (real) clock and releases both relays when one
/// outlives `max_run`, whatever the seat's caller is doing. It reads no clock: it sleeps on the
/// condition variable with the run's time limit.
fn watchdog<O: OutputPin>(shared: Arc<Shared<O>>, max_run: Duration) {
    let mut relays = shared.lock();
    loop {
        relays = shared
            .changed
            .wait_while(relays, |r| !r.shutdown && !r.running)
            .unwrap_or_else(|p| p.into_inner());
        if relays.shutdown {
            return;
        }
        let run = relays.generation;
        let (guard, wait) = shared
            .changed
            .wait_timeout_while(relays, max_run, |r| {
                !r.shutdown && r.running && r.generation == run
            })
            .unwrap_or_else(|p| p.into_inner());
        relays = guard;
        if relays.shutdown {
            return;
        }
        if wait.timed_out() && relays.running && relays.generation == run {
            let released = relays.release_all();
            relays.tripped = true;
            tracing::error!(
                max_run_ms = max_run.as_millis() as u64,
                released = released.is_ok(),
                "seat watchdog: a run outlived the maximum run time without a poll stopping it; \
                 relays released"
            );
        }
    }
}

/// A seat lift on two relays and two limit switches, with a watchdog thread that enforces the
/// maximum run time even when nobody polls.
#[derive(Debug)]
pub struct GpioSeat<O: OutputPin + Send + 'static, I: InputPin> {
    shared: Arc<Shared<O>>,
    watchdog: Option<JoinHandle<()>>,
    top: I,
    bottom: I,
    config: GpioSeatConfig,
    run: Option<(Direction, Millis)>,
    fault: Option<SeatFault>,
}

impl<O: OutputPin + Send + 'static, I: InputPin> GpioSeat<O, I> {
    /// A seat on these pins; both relays are released at once and the watchdog started.
    pub fn new(up: O, down: O, top: I, bottom: I, config: GpioSeatConfig) -> Result<Self, GpioSeatError> {
        let shared = Arc::new(Shared {
            relays: Mutex::new(Relays {
                up,
                down,
                active_low: config.relay_active_low,
                running: false,
                generation: 0,
                tripped: false,
                shutdown: false,
            }),
            changed: Condvar::new(),
        });
        let max_run = Duration::from_millis(config.max_run_ms);
        let watchdog = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("seat-watchdog".into())
                .spawn(move || watchdog(shared, max_run))
                .map_err(|e| GpioError::Unavailable(format!("cannot start the seat watchdog: {e}")))?
        };
        let mut s = GpioSeat {
            shared,
            watchdog: Some(watchdog),
            top,
            bottom,
            config,
            run: None,
            fault: None,
        };
        s.release_all()?;
        Ok(s)
    }

    /// Releases both relays.
    fn release_all(&mut self) -> Result<(), GpioError> {
        self.run = None;
        let r = self.shared.lock().release_all();
        self.shared.changed.notify_all();
        r
    }

    /// A run the watchdog ended becomes the fault a poll would have latched.
    fn take_watchdog_trip(&mut self) {
        let tripped = std::mem::take(&mut self.shared.lock().tripped);
        if tripped {
            self.run = None;
            self.fault = Some(SeatFault::RunTimeExceeded);
        }
    }

    fn limits(&mut self) -> Result<(bool, bool), GpioError> {
        let t = self.top.is_high()? == self.config.limit_tripped_high;
        let b = self.bottom.is_high()? == self.config.limit_tripped_high;
        Ok((t, b))
    }

    /// Drives one relay, releasing (and confirming) the other first: never both.
    fn drive(&mut self, dir: Direction, now: Millis) -> Result<(), GpioError> {
        let r = self.shared.lock().drive(dir);
        self.shared.changed.notify_all();
        r?;
        self.run = Some((dir, now));
        Ok(())
    }

    /// Any error: release everything (best effort) and pass the error on.
    fn fail_safe<T>(&mut self, r: Result<T, GpioSeatError>) -> Result<T, GpioSeatError> {
        if let Err(GpioSeatError::Gpio(_)) = &r {
            let _ = self.release_all();
        }
        r
    }

    fn command_inner(&mut self, cmd: SeatCommand, now: Millis) -> Result<(), GpioSeatError> {
        self.take_watchdog_trip();
        let dir = match cmd {
            SeatCommand::Stop => {
                self.fault = None;
                return Ok(self.release_all()?);
            }
            SeatCommand::Up => Direction::Up,
            SeatCommand::Down => Direction::Down,
        };
        match self.run {
            Some((running, _)) if running != dir => return Ok(self.release_all()?),
            Some(_) => return Ok(()),
            None => {}
        }
        if let Some(f) = self.fault {
            return Err(GpioSeatError::Faulted(f));
        }
        let (top, bottom) = self.limits()?;
        if top && bottom {
            self.fault = Some(SeatFault::LimitSwitchConflict);
            self.release_all()?;
            return Err(GpioSeatError::Faulted(SeatFault::LimitSwitchConflict));
        }
        if (dir == Direction::Up && top) || (dir == Direction::Down && bottom) {
            return Err(GpioSeatError::AtLimit(dir));
        }
        Ok(self.drive(dir, now)?)
    }

    fn poll_inner(&mut self, now: Millis) -> Result<SeatStatus, GpioSeatError> {
        self.take_watchdog_trip();
        let (top, bottom) = self.limits()?;
        if top && bottom {
            if self.run.is_some() || self.fault.is_none() {
                self.release_all()?;
            }
            self.fault = Some(SeatFault::LimitSwitchConflict);
        }
        if let Some((dir, started)) = self.run {
            let at_limit = match dir {
                Direction::Up => top,
                Direction::Down => bottom,
            };
            if at_limit {
                self.release_all()?;
            } else if now.since(started) >= self.config.max_run_ms {
                self.release_all()?;
                self.fault = Some(SeatFault::RunTimeExceeded);
            }
        }
        Ok(SeatStatus {
            moving: self.run.map(|(d, _)| d),
            position_mm: None,
            at_top: top,
            at_bottom: bottom,
            fault: self.fault,
        })
    }
}

impl<O: OutputPin + Send + 'static, I: InputPin> Seat for GpioSeat<O, I> {
    type Error = GpioSeatError;

    fn command(&mut self, cmd: SeatCommand, now: Millis) -> Result<(), GpioSeatError> {
        let r = self.command_inner(cmd, now);
        self.fail_safe(r)
    }

    fn poll(&mut self, now: Millis) -> Result<SeatStatus, GpioSeatError> {
        let r = self.poll_inner(now);
        self.fail_safe(r)
    }

    fn go_to(&mut self, _position_mm: u16, _now: Millis) -> Result<(), GpioSeatError> {
        Err(GpioSeatError::NoPositionSensor)
    }
}

impl<O: OutputPin + Send + 'static, I: InputPin> Drop for GpioSeat<O, I> {
    fn drop(&mut self) {
        // On process exit, SIGTERM (the kiosk ends its loop and drops its devices) or a panic
        // unwinding through the owner, the motor must not keep running.
        let _ = self.release_all();
        self.shared.lock().shutdown = true;
        self.shared.changed.notify_all();
        if let Some(w) = self.watchdog.take() {
            let _ = w.join();
        }
    }
}

/// The three lights on PWM outputs (dimmer control inputs).
#[derive(Debug)]
pub struct PwmLights<P: PwmOut> {
    key_left: P,
    key_right: P,
    background: P,
    table: LightTable,
    levels: ChannelLevels,
}

impl<P: PwmOut> PwmLights<P> {
    /// Lights on these channels with the calibrated `table`, switched off at once.
    pub fn new(key_left: P, key_right: P, background: P, table: LightTable) -> Result<Self, GpioError> {
        let mut l = PwmLights {
            key_left,
            key_right,
            background,
            table,
            levels: ChannelLevels::OFF,
        };
        l.apply(ChannelLevels::OFF)?;
        Ok(l)
    }

    fn apply(&mut self, l: ChannelLevels) -> Result<(), GpioError> {
        self.key_left.set_duty_permille(l.key_left.min(1000))?;
        self.key_right.set_duty_permille(l.key_right.min(1000))?;
        self.background.set_duty_permille(l.background.min(1000))?;
        self.levels = l;
        Ok(())
    }
}

impl<P: PwmOut> Lights for PwmLights<P> {
    type Error = GpioError;

    fn set_mode(&mut self, mode: LightMode, _now: Millis) -> Result<(), GpioError> {
        let l = self.table.levels(mode);
        self.apply(l)
    }

    fn levels(&self) -> ChannelLevels {
        self.levels
    }
}

/// One button input and how it is wired.
#[derive(Debug)]
pub struct ButtonInput<I: InputPin> {
    /// Which switch.
    pub switch: Switch,
    /// The pin.
    pub pin: I,
    /// Pressed reads low (a button to ground with a pull-up, the usual wiring).
    pub active_low: bool,
}

/// Buttons on GPIO inputs, each through a [`Debouncer`].
#[derive(Debug)]
pub struct GpioButtons<I: InputPin> {
    inputs: Vec<(ButtonInput<I>, Debouncer)>,
}

/// The debounce window: mechanical buttons bounce for a few ms; 30 ms is well under what a
/// person notices.
pub const DEBOUNCE_MS: u64 = 30;

impl<I: InputPin> GpioButtons<I> {
    /// Buttons on these inputs, all taken as released at start.
    pub fn new(inputs: Vec<ButtonInput<I>>, window_ms: u64) -> GpioButtons<I> {
        GpioButtons {
            inputs: inputs
                .into_iter()
                .map(|i| (i, Debouncer::new(window_ms, false)))
                .collect(),
        }
    }
}

impl<I: InputPin> Buttons for GpioButtons<I> {
    type Error = GpioError;

    fn poll(&mut self, now: Millis) -> Result<Vec<ButtonEvent>, GpioError> {
        let mut out = Vec::new();
        for (input, db) in &mut self.inputs {
            let pressed = input.pin.is_high()? != input.active_low;
            if let Some(p) = db.update(pressed, now) {
                out.push(ButtonEvent {
                    switch: input.switch,
                    pressed: p,
                    at: now,
                });
            }
        }
        Ok(out)
    }
}

/// The rppal implementations of the pin seam and constructors from BCM pin numbers.
pub mod rpi {
    use super::{GpioError, InputPin, OutputPin, PwmOut};

    fn pin_err(pin: u8) -> impl Fn(rppal::gpio::Error) -> GpioError {
        move |e| match e {
            rppal::gpio::Error::UnknownModel => GpioError::Unavailable(e.to_string()),
            other => GpioError::Pin {
                pin,
                reason: other.to_string(),
            },
        }
    }

    /// An rppal output with its BCM number (for errors).
    #[derive(Debug)]
    pub struct RpiOutput(pub rppal::gpio::OutputPin);

    impl OutputPin for RpiOutput {
        fn set(&mut self, high: bool) -> Result<(), GpioError> {
            if high {
                self.0.set_high();
            } else {
                self.0.set_low();
            }
            Ok(())
        }
    }

    /// An rppal input.
    #[derive(Debug)]
    pub struct RpiInput(pub rppal::gpio::InputPin);

    impl InputPin for RpiInput {
        fn is_high(&mut self) -> Result<bool, GpioError> {
            Ok(self.0.is_high())
        }
    }

    /// Opens BCM `pin` as an output at `initial_high`.
    pub fn output(pin: u8, initial_high: bool) -> Result<RpiOutput, GpioError> {
        let gpio = rppal::gpio::Gpio::new().map_err(pin_err(pin))?;
        let p = gpio.get(pin).map_err(pin_err(pin))?;
        Ok(RpiOutput(if initial_high {
            p.into_output_high()
        } else {
            p.into_output_low()
        }))
    }

    /// Opens BCM `pin` as an input with the pull-up enabled (switches to ground).
    pub fn input_pullup(pin: u8) -> Result<RpiInput, GpioError> {
        let gpio = rppal::gpio::Gpio::new().map_err(pin_err(pin))?;
        Ok(RpiInput(gpio.get(pin).map_err(pin_err(pin))?.into_input_pullup()))
    }

    /// A PWM output: a hardware channel (0-3) or, for a third light on a Pi 4 with two
    /// hardware channels, software PWM on a GPIO pin.
    #[derive(Debug)]
    pub enum RpiPwm {
        /// Hardware PWM.
        Hardware {
            /// The channel.
            pwm: rppal::pwm::Pwm,
            /// The channel number, for errors.
            channel: u8,
        },
        /// Software PWM on a GPIO output (jitter is invisible at a dimmer's input filter).
        Software {
            /// The pin.
            pin: rppal::gpio::OutputPin,
            /// The frequency in Hz.
            hz: f64,
        },
    }

    impl PwmOut for RpiPwm {
        fn set_duty_permille(&mut self, permille: u16) -> Result<(), GpioError> {
            let duty = f64::from(permille.min(1000)) / 1000.0;
            match self {
                RpiPwm::Hardware { pwm, channel } => pwm.set_duty_cycle(duty).map_err(|e| GpioError::Pin {
                    pin: *channel,
                    reason: e.to_string(),
                }),
                RpiPwm::Software { pin, hz } => {
                    let p = pin.pin();
                    pin.set_pwm_frequency(*hz, duty).map_err(|e| GpioError::Pin {
                        pin: p,
                        reason: e.to_string(),
                    })
                }
            }
        }
    }

    /// Hardware PWM channel 0-3 at `hz`, enabled at 0 duty.
    pub fn hardware_pwm(channel: u8, hz: f64) -> Result<RpiPwm, GpioError> {
        use rppal::pwm::{Channel, Polarity, Pwm};
        let ch = match channel {
            0 => Channel::Pwm0,
            1 => Channel::Pwm1,
            2 => Channel::Pwm2,
            3 => Channel::Pwm3,
            _ => {
                return Err(GpioError::Pin {
                    pin: channel,
                    reason: "hardware PWM channels are 0-3".into(),
                });
            }
        };
        let pwm = Pwm::with_frequency(ch, hz, 0.0, Polarity::Normal, true)
            .map_err(|e| GpioError::Unavailable(format!("PWM channel {channel}: {e}")))?;
        Ok(RpiPwm::Hardware { pwm, channel })
    }

    /// Software PWM on BCM `pin` at `hz`.
    pub fn software_pwm(pin: u8, hz: f64) -> Result<RpiPwm, GpioError> {
        Ok(RpiPwm::Software {
            pin: output(pin, false)?.0,
            hz,
        })
    }
}
