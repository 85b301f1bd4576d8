//! A simulated seat lift: travel, speed, limit switches, a maximum run time, a position sensor.
//!
//! It plays the part of driver and motor together, moving on the virtual timeline whenever it is
//! called, and it keeps the driver's safety rules exactly as the real drivers must (never both
//! directions, refuse a closed limit, stop after the maximum run time even if polled late).
//! Deliberately no acceleration, relay dead time or load: the session does not reason about them.

use thiserror::Error;

use crate::{Direction, ErrorKind, Millis, Seat, SeatCommand, SeatFault, SeatStatus};

/// The simulated lift's mechanics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimSeatConfig {
    /// Travel from the bottom to the top limit.
    pub travel_mm: u16,
    /// Speed in either direction.
    pub speed_mm_per_s: u16,
    /// The driver stops any run after this long and latches [`SeatFault::RunTimeExceeded`].
    pub max_run_ms: u64,
    /// Whether the lift reports its position (and so supports `go_to`).
    pub position_sensor: bool,
    /// The height at start.
    pub start_mm: u16,
}

impl Default for SimSeatConfig {
    /// 200 mm at 25 mm/s: a full sweep takes 8 s, inside a 10 s maximum run.
    fn default() -> Self {
        SimSeatConfig {
            travel_mm: 200,
            speed_mm_per_s: 25,
            max_run_ms: 10_000,
            position_sensor: true,
            start_mm: 100,
        }
    }
}

/// Why the simulated seat refused a request.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SimSeatError {
    /// Asked to move into a closed limit switch.
    #[error("the seat is already at its {0:?} limit")]
    AtLimit(Direction),
    /// `go_to` without a position sensor.
    #[error("this seat has no position sensor")]
    NoPositionSensor,
    /// `go_to` beyond the travel.
    #[error("position {requested_mm} mm is beyond the travel of {travel_mm} mm")]
    OutOfRange {
        /// What was asked.
        requested_mm: u16,
        /// The travel.
        travel_mm: u16,
    },
}

impl crate::Error for SimSeatError {
    fn kind(&self) -> ErrorKind {
        match self {
            SimSeatError::AtLimit(_) => ErrorKind::LimitReached,
            SimSeatError::NoPositionSensor | SimSeatError::OutOfRange { .. } => ErrorKind::InvalidInput,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Run {
    dir: Direction,
    started: Millis,
    target_um: Option<u32>,
}

/// A simulated seat lift.
#[derive(Debug, Clone)]
pub struct SimSeat {
    config: SimSeatConfig,
    /// Height in micrometres: mm/s times ms is exactly µm, so integer time steps never round.
    pos_um: u32,
    run: Option<Run>,
    last: Millis,
    fault: Option<SeatFault>,
    /// Total time the motor has been driven, for tests of the run-time bound.
    driven_ms: u64,
}

impl SimSeat {
    /// A seat with these mechanics, at rest at `start_mm` (clamped to the travel) at time 0.
    pub fn new(config: SimSeatConfig) -> SimSeat {
        let start = u32::from(config.start_mm.min(config.travel_mm)) * 1000;
        SimSeat {
            config,
            pos_um: start,
            run: None,
            last: Millis::ZERO,
            fault: None,
            driven_ms: 0,
        }
    }

    /// The true height in micrometres, whether or not a sensor reports it.
    pub fn true_position_um(&self) -> u32 {
        self.pos_um
    }

    /// How long the motor has been driven in total.
    pub fn driven_ms(&self) -> u64 {
        self.driven_ms
    }

    /// The mechanics.
    pub fn config(&self) -> SimSeatConfig {
        self.config
    }

    fn travel_um(&self) -> u32 {
        u32::from(self.config.travel_mm) * 1000
    }

    /// Moves the seat along the virtual timeline up to `now`.
    fn advance(&mut self, now: Millis) {
        let Some(run) = self.run else {
            self.last = self.last.max(now);
            return;
        };
        // The driver's own timer: the run ends at the deadline even if nobody polled then.
        let deadline = run.started.after_ms(self.config.max_run_ms);
        let until = now.min(deadline);
        let dt = until.since(self.last);
        let step = u32::try_from(u64::from(self.config.speed_mm_per_s) * dt).unwrap_or(u32::MAX);
        let (stop_at, limit) = match run.dir {
            Direction::Up => (run.target_um.unwrap_or(self.travel_um()), self.travel_um()),
            Direction::Down => (run.target_um.unwrap_or(0), 0),
        };
        let before = self.pos_um;
        let reached = match run.dir {
            Direction::Up => {
                let end = stop_at.min(limit);
                self.pos_um = self.pos_um.saturating_add(step).min(end);
                self.pos_um >= end
            }
            Direction::Down => {
                let end = stop_at.max(limit);
                self.pos_um = self.pos_um.saturating_sub(step).max(end);
                self.pos_um <= end
            }
        };
        if reached {
            // Charge only the time actually needed to get there (rounded up).
            let speed = u64::from(self.config.speed_mm_per_s).max(1);
            self.driven_ms += u64::from(before.abs_diff(self.pos_um)).div_ceil(speed);
            self.run = None;
        } else {
            self.driven_ms += dt;
            if now >= deadline {
                self.run = None;
                self.fault = Some(SeatFault::RunTimeExceeded);
            }
        }
        self.last = self.last.max(now);
    }

    fn status(&self) -> SeatStatus {
        SeatStatus {
            moving: self.run.map(|r| r.dir),
            position_mm: self
                .config
                .position_sensor
                .then(|| u16::try_from(self.pos_um / 1000).unwrap_or(u16::MAX)),
            at_top: self.pos_um >= self.travel_um(),
            at_bottom: self.pos_um == 0,
            fault: self.fault,
        }
    }

    fn start(&mut self, dir: Direction, target_um: Option<u32>, now: Millis) {
        self.fault = None;
        self.run = Some(Run {
            dir,
            started: now,
            target_um,
        });
    }
}

impl Default for SimSeat {
    fn default() -> Self {
        SimSeat::new(SimSeatConfig::default())
    }
}

impl Seat for SimSeat {
    type Error = SimSeatError;

    fn command(&mut self, cmd: SeatCommand, now: Millis) -> Result<(), SimSeatError> {
        self.advance(now);
        let dir = match cmd {
            SeatCommand::Stop => {
                self.run = None;
                self.fault = None;
                return Ok(());
            }
            SeatCommand::Up => Direction::Up,
            SeatCommand::Down => Direction::Down,
        };
        match self.run {
            // Never switch straight from one direction to the other: stop first.
            Some(run) if run.dir != dir => {
                self.run = None;
                return Ok(());
            }
            // Repeating the command must not restart the run timer, or a held button could
            // extend a run forever.
            Some(run) if run.target_um.is_none() => return Ok(()),
            _ => {}
        }
        let status = self.status();
        if (dir == Direction::Up && status.at_top) || (dir == Direction::Down && status.at_bottom) {
            return Err(SimSeatError::AtLimit(dir));
        }
        self.start(dir, None, now);
        Ok(())
    }

    fn poll(&mut self, now: Millis) -> Result<SeatStatus, SimSeatError> {
        self.advance(now);
        Ok(self.status())
    }

    fn go_to(&mut self, position_mm: u16, now: Millis) -> Result<(), SimSeatError> {
        if !self.config.position_sensor {
            return Err(SimSeatError::NoPositionSensor);
        }
        if position_mm > self.config.travel_mm {
            return Err(SimSeatError::OutOfRange {
                requested_mm: position_mm,
                travel_mm: self.config.travel_mm,
            });
        }
        self.advance(now);
        let target = u32::from(position_mm) * 1000;
        let dir = match target.cmp(&self.pos_um) {
            std::cmp::Ordering::Greater => Direction::Up,
            std::cmp::Ordering::Less => Direction::Down,
            std::cmp::Ordering::Equal => {
                self.run = None;
                return Ok(());
            }
        };
        match &mut self.run {
            // A new target in the same direction keeps the run's start, so an auto-height loop
            // calling go_to every frame cannot extend a run past the maximum run time.
            Some(run) if run.dir == dir => run.target_um = Some(target),
            _ => self.start(dir, Some(target), now),
        }
        Ok(())
    }
}
