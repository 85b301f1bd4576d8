//! The motorised seat lift: up, down, stop, and where it is.
//!
//! Shaped for two real drivers: GPIO relays via rppal (up/down relays interlocked, top and bottom
//! limit switches) and a lift controller on RS-485 (Modbus RTU) via serialport. Whatever the
//! hardware, the driver itself owns safety: it refuses to drive into a closed limit, never drives
//! both directions at once, and stops on its own after a maximum run time, so a seat never runs
//! away even if the caller stops polling. Deliberately no relay, pin or register in the API.

use crate::{Error, Millis};

/// A direction of travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Raising the seat.
    Up,
    /// Lowering the seat.
    Down,
}

impl Direction {
    /// The other direction.
    pub fn opposite(self) -> Direction {
        match self {
            Direction::Up => Direction::Down,
            Direction::Down => Direction::Up,
        }
    }
}

/// One end of travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    /// The top limit switch.
    Top,
    /// The bottom limit switch.
    Bottom,
}

/// What the caller asks the seat to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SeatCommand {
    /// Start moving up. While moving down this only stops: reversing takes a second command,
    /// so the motor is never switched straight from one direction to the other.
    Up,
    /// Start moving down; symmetric to `Up`.
    Down,
    /// Stop now. Also acknowledges (clears) a latched fault.
    Stop,
}

/// A fault the seat driver latched; cleared by the next command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SeatFault {
    /// The motor ran for the maximum run time without reaching its target or a limit: stalled,
    /// blocked, or far too slow. The driver stopped it.
    RunTimeExceeded,
    /// Both limit switches read closed at once; a switch is stuck or miswired. The driver
    /// refuses to move.
    LimitSwitchConflict,
    /// The motor drew too much current (stalled or blocked); the controller stopped it.
    MotorOverload,
    /// The lift controller reports a fault of its own (its communication watchdog stopped the
    /// seat, or it drives both directions at once).
    ControllerFault,
}

/// The seat as the driver sees it at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SeatStatus {
    /// The direction the motor is driven in, if any.
    pub moving: Option<Direction>,
    /// The height above the bottom of travel, where a position sensor exists.
    pub position_mm: Option<u16>,
    /// The top limit switch is closed.
    pub at_top: bool,
    /// The bottom limit switch is closed.
    pub at_bottom: bool,
    /// A latched fault, if any.
    pub fault: Option<SeatFault>,
}

impl SeatStatus {
    /// The status as a health outcome for [`crate::Supervisor::observe`]: a latched fault is an
    /// `ErrorKind::Fault`, because the driver answered but the lift is not usable.
    pub fn health(&self) -> Result<(), crate::ErrorKind> {
        match self.fault {
            Some(_) => Err(crate::ErrorKind::Fault),
            None => Ok(()),
        }
    }
}

/// A motorised seat lift.
pub trait Seat {
    /// The driver's error.
    type Error: Error;

    /// Starts or stops the motor. `Up` at the top limit (or `Down` at the bottom) is an
    /// `ErrorKind::LimitReached` error.
    fn command(&mut self, cmd: SeatCommand, now: Millis) -> Result<(), Self::Error>;

    /// Advances the driver to `now` (stopping at limits, targets and the maximum run time) and
    /// reports the status.
    fn poll(&mut self, now: Millis) -> Result<SeatStatus, Self::Error>;

    /// Moves to a height and stops there. Without a position sensor this is an
    /// `ErrorKind::InvalidInput` error.
    fn go_to(&mut self, position_mm: u16, now: Millis) -> Result<(), Self::Error>;
}

impl<T: Seat + ?Sized> Seat for &mut T {
    type Error = T::Error;

    fn command(&mut self, cmd: SeatCommand, now: Millis) -> Result<(), Self::Error> {
        T::command(self, cmd, now)
    }

    fn poll(&mut self, now: Millis) -> Result<SeatStatus, Self::Error> {
        T::poll(self, now)
    }

    fn go_to(&mut self, position_mm: u16, now: Millis) -> Result<(), Self::Error> {
        T::go_to(self, position_mm, now)
    }
}
