//! Fault injectors: wrappers that implement a device trait by forwarding to another
//! implementation and breaking it on a script (smoltcp's `FaultInjector` pattern).
//!
//! Faults happen in time [`Window`]s on the virtual timeline or at a seeded random rate, so a
//! scenario replays exactly. Wrappers compose (a `FaultyCamera` around a `FaultyCamera`) and wrap
//! a `&mut` device so a test can still inspect the inner twin. Each injector models what the
//! *driver* would report under the fault (a stalled motor is seen as a run that never ends until
//! the maximum run time), not the physics behind it. Deliberately no faults nobody handles yet
//! (corrupted pixels, slow frames).

use thiserror::Error;

use super::SplitMix64;
use crate::{
    ButtonEvent, Buttons, Camera, Direction, ErrorKind, Frame, Limit, Millis, Seat, SeatCommand, SeatFault,
    SeatStatus, Switch,
};

/// A half-open stretch of virtual time `[from, until)`; `until: None` lasts forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Window {
    /// The first instant inside.
    pub from: Millis,
    /// The first instant after, if the window ends.
    pub until: Option<Millis>,
}

impl Window {
    /// `[from, until)`.
    pub fn between(from: Millis, until: Millis) -> Window {
        Window {
            from,
            until: Some(until),
        }
    }

    /// `[from, forever)`.
    pub fn from(from: Millis) -> Window {
        Window { from, until: None }
    }

    /// Whether `t` is inside.
    pub fn contains(&self, t: Millis) -> bool {
        t >= self.from && self.until.is_none_or(|u| t < u)
    }
}

/// An error from a fault injector: either injected, or the wrapped device's own.
#[derive(Debug, Error)]
pub enum InjectedError<E> {
    /// A fault the injector made up.
    #[error("injected {0} fault")]
    Injected(ErrorKind),
    /// The wrapped device's error, passed through.
    #[error(transparent)]
    Inner(E),
}

impl<E: crate::Error + 'static> crate::Error for InjectedError<E> {
    fn kind(&self) -> ErrorKind {
        match self {
            InjectedError::Injected(kind) => *kind,
            InjectedError::Inner(e) => e.kind(),
        }
    }
}

/// A camera that gets unplugged and drops frames.
///
/// Inside an unplug window every call fails with `Disconnected`. After the window the camera
/// stays disconnected until a `reconnect` succeeds, as a real V4L2 device must be reopened.
/// Outside unplug windows, preview frames fail with a transient `Timeout` at a seeded rate.
#[derive(Debug)]
pub struct FaultyCamera<C> {
    inner: C,
    rng: SplitMix64,
    unplugged: Vec<Window>,
    drop_permille: u16,
    drop_stills: bool,
    connected: bool,
    dropped: u64,
}

impl<C: Camera> FaultyCamera<C> {
    /// Wraps `inner` with no faults yet; `seed` drives the frame drops.
    pub fn new(inner: C, seed: u64) -> FaultyCamera<C> {
        FaultyCamera {
            inner,
            rng: SplitMix64::new(seed),
            unplugged: Vec::new(),
            drop_permille: 0,
            drop_stills: false,
            connected: true,
            dropped: 0,
        }
    }

    /// Unplugs the camera during `window` (can be called several times).
    pub fn unplug(mut self, window: Window) -> FaultyCamera<C> {
        self.unplugged.push(window);
        self
    }

    /// Drops preview frames with probability `permille`/1000; stills too if `stills`.
    pub fn drop_frames(mut self, permille: u16, stills: bool) -> FaultyCamera<C> {
        self.drop_permille = permille.min(1000);
        self.drop_stills = stills;
        self
    }

    /// How many frames were dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The wrapped camera.
    pub fn inner(&self) -> &C {
        &self.inner
    }

    /// The wrapped camera, mutably (to script it).
    pub fn inner_mut(&mut self) -> &mut C {
        &mut self.inner
    }

    /// Unwraps.
    pub fn into_inner(self) -> C {
        self.inner
    }

    fn is_unplugged(&self, now: Millis) -> bool {
        self.unplugged.iter().any(|w| w.contains(now))
    }

    fn check_plugged(&mut self, now: Millis) -> Result<(), InjectedError<C::Error>> {
        if self.is_unplugged(now) {
            if self.connected {
                tracing::debug!(at = now.0, "injected camera unplug");
            }
            self.connected = false;
        }
        if self.connected {
            Ok(())
        } else {
            Err(InjectedError::Injected(ErrorKind::Disconnected))
        }
    }

    fn maybe_drop(&mut self, applies: bool) -> Result<(), InjectedError<C::Error>> {
        // Draw on every call, whether or not drops apply, so that adding still drops does not
        // shift which preview frames drop for the same seed.
        let hit = self.rng.chance_permille(self.drop_permille);
        if applies && hit {
            self.dropped += 1;
            return Err(InjectedError::Injected(ErrorKind::Timeout));
        }
        Ok(())
    }
}

// `'static` because the injected error exposes the inner one as its `source()`.
impl<C: Camera> Camera for FaultyCamera<C>
where
    C::Error: 'static,
{
    type Error = InjectedError<C::Error>;

    fn preview_frame(&mut self, now: Millis) -> Result<Frame, Self::Error> {
        self.check_plugged(now)?;
        self.maybe_drop(true)?;
        self.inner.preview_frame(now).map_err(InjectedError::Inner)
    }

    fn capture_still(&mut self, now: Millis) -> Result<Frame, Self::Error> {
        self.check_plugged(now)?;
        self.maybe_drop(self.drop_stills)?;
        self.inner.capture_still(now).map_err(InjectedError::Inner)
    }

    fn lock_exposure(&mut self, locked: bool) -> Result<(), Self::Error> {
        if !self.connected {
            return Err(InjectedError::Injected(ErrorKind::Disconnected));
        }
        self.inner.lock_exposure(locked).map_err(InjectedError::Inner)
    }

    fn reconnect(&mut self, now: Millis) -> Result<(), Self::Error> {
        if self.is_unplugged(now) {
            self.connected = false;
            return Err(InjectedError::Injected(ErrorKind::Disconnected));
        }
        self.inner.reconnect(now).map_err(InjectedError::Inner)?;
        self.connected = true;
        Ok(())
    }

    fn is_connected(&self) -> bool {
        self.connected && self.inner.is_connected()
    }
}

/// A seat whose motor stalls, whose limit switches stick closed or open, or whose controller
/// times out.
///
/// * Stall: a run commanded inside a stall window does not move; the wrapper reports it moving
///   until `max_run_ms`, then stopped with [`SeatFault::RunTimeExceeded`], which is what a driver
///   with a run timer sees of a stalled motor.
/// * Stuck limit: inside the window the switch reads closed: moving into it is refused with
///   `LimitReached`, a run towards it stops, and both stuck at once latch
///   [`SeatFault::LimitSwitchConflict`].
/// * Dead limit (switch stuck open): inside the window the switch never reads closed, so the
///   driver keeps pushing against the end stop; the wrapper reports the run going on until
///   `max_run_ms`, then [`SeatFault::RunTimeExceeded`]. The maximum run time is the only thing
///   that stops it, which is why every driver must have one.
/// * Timeouts: any call fails with a transient `Timeout` at a seeded rate (a serial controller
///   that did not answer).
#[derive(Debug)]
pub struct FaultySeat<S> {
    inner: S,
    rng: SplitMix64,
    max_run_ms: u64,
    stalls: Vec<Window>,
    stuck: Vec<(Limit, Window)>,
    dead: Vec<(Limit, Window)>,
    /// The run the inner seat is making, as last seen, with its start.
    inner_run: Option<(Direction, Millis)>,
    timeout_permille: u16,
    stalled_run: Option<(Direction, Millis)>,
    fault: Option<SeatFault>,
}

impl<S: Seat> FaultySeat<S> {
    /// Wraps `inner`, whose driver stops runs after `max_run_ms`; `seed` drives the timeouts.
    pub fn new(inner: S, max_run_ms: u64, seed: u64) -> FaultySeat<S> {
        FaultySeat {
            inner,
            rng: SplitMix64::new(seed),
            max_run_ms,
            stalls: Vec::new(),
            stuck: Vec::new(),
            dead: Vec::new(),
            inner_run: None,
            timeout_permille: 0,
            stalled_run: None,
            fault: None,
        }
    }

    /// Stalls the motor for runs commanded during `window`.
    pub fn stall(mut self, window: Window) -> FaultySeat<S> {
        self.stalls.push(window);
        self
    }

    /// Sticks a limit switch closed during `window`.
    pub fn stuck_limit(mut self, limit: Limit, window: Window) -> FaultySeat<S> {
        self.stuck.push((limit, window));
        self
    }

    /// Sticks a limit switch open (it never trips) during `window`.
    pub fn dead_limit(mut self, limit: Limit, window: Window) -> FaultySeat<S> {
        self.dead.push((limit, window));
        self
    }

    /// Fails calls with `Timeout` with probability `permille`/1000.
    pub fn timeouts(mut self, permille: u16) -> FaultySeat<S> {
        self.timeout_permille = permille.min(1000);
        self
    }

    /// The wrapped seat.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The wrapped seat, mutably.
    pub fn inner_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps.
    pub fn into_inner(self) -> S {
        self.inner
    }

    fn stalled_at(&self, now: Millis) -> bool {
        self.stalls.iter().any(|w| w.contains(now))
    }

    fn stuck_at(&self, limit: Limit, now: Millis) -> bool {
        self.stuck.iter().any(|(l, w)| *l == limit && w.contains(now))
    }

    fn dead_at(&self, limit: Limit, now: Millis) -> bool {
        self.dead.iter().any(|(l, w)| *l == limit && w.contains(now))
    }

    /// Remembers when the inner seat's current run began, so a dead limit can be charged
    /// from the real start of the run.
    fn track_inner_run(&mut self, moving: Option<Direction>, now: Millis) {
        self.inner_run = match (moving, self.inner_run) {
            (Some(d), Some((r, t))) if d == r => Some((r, t)),
            (Some(d), _) => Some((d, now)),
            (None, _) => None,
        };
    }

    fn maybe_timeout(&mut self) -> Result<(), InjectedError<S::Error>> {
        if self.rng.chance_permille(self.timeout_permille) {
            return Err(InjectedError::Injected(ErrorKind::Timeout));
        }
        Ok(())
    }

    fn limit_for(dir: Direction) -> Limit {
        match dir {
            Direction::Up => Limit::Top,
            Direction::Down => Limit::Bottom,
        }
    }

    fn start(&mut self, dir: Direction, now: Millis) -> Result<(), InjectedError<S::Error>> {
        if self.stuck_at(Self::limit_for(dir), now) {
            return Err(InjectedError::Injected(ErrorKind::LimitReached));
        }
        if let Some((running, _)) = self.stalled_run {
            // Same rules as a healthy driver: an opposite command only stops, a repeat is a no-op.
            if running != dir {
                self.stalled_run = None;
            }
            return Ok(());
        }
        if self.stalled_at(now) {
            self.inner
                .command(SeatCommand::Stop, now)
                .map_err(InjectedError::Inner)?;
            self.fault = None;
            self.stalled_run = Some((dir, now));
            return Ok(());
        }
        Ok(())
    }
}

impl<S: Seat> Seat for FaultySeat<S>
where
    S::Error: 'static,
{
    type Error = InjectedError<S::Error>;

    fn command(&mut self, cmd: SeatCommand, now: Millis) -> Result<(), Self::Error> {
        self.maybe_timeout()?;
        let dir = match cmd {
            SeatCommand::Stop => {
                self.stalled_run = None;
                self.inner_run = None;
                self.fault = None;
                return self.inner.command(cmd, now).map_err(InjectedError::Inner);
            }
            SeatCommand::Up => Direction::Up,
            SeatCommand::Down => Direction::Down,
        };
        let was_stalled = self.stalled_run.is_some();
        self.start(dir, now)?;
        if was_stalled || self.stalled_run.is_some() {
            return Ok(());
        }
        match self.inner.command(cmd, now) {
            // The inner seat is at that end, but the switch is dead: the driver would not know
            // and would push against the end stop.
            Err(e)
                if crate::Error::kind(&e) == ErrorKind::LimitReached
                    && self.dead_at(Self::limit_for(dir), now) =>
            {
                self.fault = None;
                self.stalled_run = Some((dir, now));
                Ok(())
            }
            Err(e) => Err(InjectedError::Inner(e)),
            Ok(()) => {
                let moving = self.inner.poll(now).map_err(InjectedError::Inner)?.moving;
                self.track_inner_run(moving, now);
                Ok(())
            }
        }
    }

    fn poll(&mut self, now: Millis) -> Result<SeatStatus, Self::Error> {
        self.maybe_timeout()?;
        let mut st = self.inner.poll(now).map_err(InjectedError::Inner)?;
        // A run that the inner seat ended at a dead limit goes on, as far as the driver knows.
        if let Some((dir, started)) = self.inner_run
            && st.moving.is_none()
            && self.stalled_run.is_none()
            && self.dead_at(Self::limit_for(dir), now)
            && match dir {
                Direction::Up => st.at_top,
                Direction::Down => st.at_bottom,
            }
        {
            self.stalled_run = Some((dir, started));
        }
        self.track_inner_run(st.moving, now);
        for (limit, dead) in [(Limit::Top, &mut st.at_top), (Limit::Bottom, &mut st.at_bottom)] {
            if self.dead_at(limit, now) {
                *dead = false;
            }
        }
        if let Some((dir, started)) = self.stalled_run {
            if now.since(started) >= self.max_run_ms {
                self.stalled_run = None;
                self.fault = Some(SeatFault::RunTimeExceeded);
            } else {
                st.moving = Some(dir);
            }
        }
        for (limit, dir) in [(Limit::Top, Direction::Up), (Limit::Bottom, Direction::Down)] {
            if !self.stuck_at(limit, now) {
                continue;
            }
            match limit {
                Limit::Top => st.at_top = true,
                Limit::Bottom => st.at_bottom = true,
            }
            if st.moving == Some(dir) {
                self.inner
                    .command(SeatCommand::Stop, now)
                    .map_err(InjectedError::Inner)?;
                self.stalled_run = None;
                st.moving = None;
            }
        }
        if st.at_top && st.at_bottom {
            if st.moving.is_some() {
                self.inner
                    .command(SeatCommand::Stop, now)
                    .map_err(InjectedError::Inner)?;
                self.stalled_run = None;
                st.moving = None;
            }
            self.fault = Some(SeatFault::LimitSwitchConflict);
        }
        if let Some(f) = self.fault {
            st.fault = Some(f);
        }
        Ok(st)
    }

    fn go_to(&mut self, position_mm: u16, now: Millis) -> Result<(), Self::Error> {
        self.maybe_timeout()?;
        let here = self.inner.poll(now).map_err(InjectedError::Inner)?.position_mm;
        let Some(here) = here else {
            // No sensor: let the inner driver refuse it in its own words.
            return self.inner.go_to(position_mm, now).map_err(InjectedError::Inner);
        };
        let dir = match position_mm.cmp(&here) {
            std::cmp::Ordering::Greater => Direction::Up,
            std::cmp::Ordering::Less => Direction::Down,
            std::cmp::Ordering::Equal => return Ok(()),
        };
        if self.stuck_at(Self::limit_for(dir), now) {
            return Err(InjectedError::Injected(ErrorKind::LimitReached));
        }
        if let Some((running, _)) = self.stalled_run {
            // Same direction keeps the stalled run's start (see `SimSeat::go_to`).
            if running == dir {
                return Ok(());
            }
            self.stalled_run = None;
        }
        if self.stalled_at(now) {
            return self.start(dir, now);
        }
        self.inner.go_to(position_mm, now).map_err(InjectedError::Inner)?;
        let moving = self.inner.poll(now).map_err(InjectedError::Inner)?.moving;
        self.track_inner_run(moving, now);
        Ok(())
    }
}

/// Buttons with one input stuck pressed (or a key switch stuck on) during a window.
///
/// Inside the window the consumer sees the switch pressed whatever really happens; when the
/// window ends it sees the switch's real state again. Never two presses in a row.
#[derive(Debug)]
pub struct StuckButton<B> {
    inner: B,
    switch: Switch,
    window: Window,
    started: bool,
    ended: bool,
    really_pressed: bool,
    reported_pressed: bool,
}

impl<B: Buttons> StuckButton<B> {
    /// Sticks `switch` of `inner` pressed during `window`.
    pub fn new(inner: B, switch: Switch, window: Window) -> StuckButton<B> {
        StuckButton {
            inner,
            switch,
            window,
            started: false,
            ended: false,
            really_pressed: false,
            reported_pressed: false,
        }
    }

    /// The wrapped buttons.
    pub fn inner_mut(&mut self) -> &mut B {
        &mut self.inner
    }
}

impl<B: Buttons> Buttons for StuckButton<B> {
    type Error = B::Error;

    fn poll(&mut self, now: Millis) -> Result<Vec<ButtonEvent>, B::Error> {
        enum Item {
            Real(ButtonEvent),
            StuckOn,
            StuckOff,
        }
        let mut items: Vec<(Millis, Item)> = self
            .inner
            .poll(now)?
            .into_iter()
            .map(|e| (e.at, Item::Real(e)))
            .collect();
        if !self.started && now >= self.window.from {
            items.push((self.window.from, Item::StuckOn));
        }
        if let Some(until) = self.window.until
            && !self.ended
            && now >= until
        {
            items.push((until, Item::StuckOff));
        }
        // Stable sort: at equal times the real events (pushed first) come before the fault.
        items.sort_by_key(|(at, _)| *at);
        let mut out = Vec::new();
        for (at, item) in items {
            let report = match item {
                Item::Real(e) if e.switch != self.switch => {
                    out.push(e);
                    continue;
                }
                Item::Real(e) => {
                    self.really_pressed = e.pressed;
                    let stuck = self.started && !self.ended;
                    (!stuck).then_some(e.pressed)
                }
                Item::StuckOn => {
                    self.started = true;
                    Some(true)
                }
                Item::StuckOff => {
                    self.ended = true;
                    Some(self.really_pressed)
                }
            };
            if let Some(pressed) = report
                && pressed != self.reported_pressed
            {
                self.reported_pressed = pressed;
                out.push(ButtonEvent {
                    switch: self.switch,
                    pressed,
                    at,
                });
            }
        }
        Ok(out)
    }
}
