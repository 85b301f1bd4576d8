//! The seat lift and the lights on one Modbus RTU controller (RS-485 or USB serial): [`ModbusSeat`]
//! and [`ModbusLights`] sharing a [`SharedMaster`].
//!
//! Safety is kept at two levels. The controller is given the kiosk's maximum run time and a
//! communication watchdog at start ([`ControllerSetup`]), so it stops the seat by itself if the
//! kiosk hangs or the cable is cut. The driver enforces the same maximum on every poll, and on any
//! failed exchange while the seat moves it sends a best-effort stop and forgets the run: "on any
//! fault the seat stops within one control period" (one poll, or the watchdog if the line is dead).
//! After a disconnect, polls try to reopen the port at most once per [`REOPEN_EVERY_MS`].
//! Deliberately no position control loop here: `go_to` hands the target to the controller.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::drivers::modbus_master::{ModbusError, ModbusMaster};
use crate::modbus::{self, reg};
use crate::{
    ChannelLevels, Direction, LightMode, LightTable, Lights, Millis, Seat, SeatCommand, SeatFault, SeatStatus,
};

/// How often a poll may try to reopen a disconnected port.
pub const REOPEN_EVERY_MS: u64 = 1000;

/// One master shared by the seat and the lights (they are on the same controller and bus).
pub type SharedMaster = Arc<Mutex<ModbusMaster>>;

/// Locks the master; a poisoned lock only means another device panicked mid-exchange, and the
/// next exchange clears the line anyway.
fn lock(master: &SharedMaster) -> MutexGuard<'_, ModbusMaster> {
    master.lock().unwrap_or_else(|p| p.into_inner())
}

/// What the kiosk writes to the controller at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControllerSetup {
    /// The maximum run time, enforced by the driver and (rounded up to 0.1 s) by the controller.
    pub max_run_ms: u64,
    /// The controller stops a moving seat after this long without a valid request. The kiosk
    /// polls the seat at least every 250 ms, so 1 s tolerates a lost frame or two.
    pub watchdog_ms: u16,
    /// The travel in mm, to refuse `go_to` beyond it before asking.
    pub travel_mm: u16,
}

impl Default for ControllerSetup {
    fn default() -> Self {
        ControllerSetup {
            max_run_ms: 10_000,
            watchdog_ms: 1000,
            travel_mm: 200,
        }
    }
}

/// Why a seat request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SerialSeatError {
    /// The exchange with the controller failed.
    #[error(transparent)]
    Bus(#[from] ModbusError),
    /// Asked to move into a closed limit switch.
    #[error("the seat is at its {0:?} limit")]
    AtLimit(Direction),
    /// The controller reports no position, so `go_to` is impossible.
    #[error("the seat controller has no position sensor")]
    NoPositionSensor,
    /// `go_to` beyond the travel.
    #[error("position {0} mm is beyond the travel")]
    OutOfRange(u16),
}

impl crate::Error for SerialSeatError {
    fn kind(&self) -> crate::ErrorKind {
        match self {
            SerialSeatError::Bus(e) => crate::Error::kind(e),
            SerialSeatError::AtLimit(_) => crate::ErrorKind::LimitReached,
            SerialSeatError::NoPositionSensor | SerialSeatError::OutOfRange(_) => {
                crate::ErrorKind::InvalidInput
            }
        }
    }
}

/// Decodes the three status registers (`STATUS`, `POSITION_MM`, `FAULTS`).
pub fn decode_status(regs: &[u16]) -> SeatStatus {
    let (st, pos, faults) = (
        regs.first().copied().unwrap_or(0),
        regs.get(1).copied().unwrap_or(0),
        regs.get(2).copied().unwrap_or(0),
    );
    let moving = match (
        st & modbus::STATUS_MOVING_UP != 0,
        st & modbus::STATUS_MOVING_DOWN != 0,
    ) {
        (true, false) => Some(Direction::Up),
        (false, true) => Some(Direction::Down),
        // Both bits: the controller is confused; report no direction, the fault decides.
        _ => None,
    };
    SeatStatus {
        moving,
        position_mm: (st & modbus::STATUS_POSITION_VALID != 0).then_some(pos),
        at_top: st & modbus::STATUS_AT_TOP != 0,
        at_bottom: st & modbus::STATUS_AT_BOTTOM != 0,
        fault: fault_from_bits(faults, st),
    }
}

/// The most serious latched fault in the `FAULTS` word.
pub fn fault_from_bits(faults: u16, status: u16) -> Option<SeatFault> {
    let both_dirs = status & modbus::STATUS_MOVING_UP != 0 && status & modbus::STATUS_MOVING_DOWN != 0;
    if faults & modbus::FAULT_LIMIT_CONFLICT != 0 {
        Some(SeatFault::LimitSwitchConflict)
    } else if faults & modbus::FAULT_OVERCURRENT != 0 {
        Some(SeatFault::MotorOverload)
    } else if faults & modbus::FAULT_RUN_TIME != 0 {
        Some(SeatFault::RunTimeExceeded)
    } else if faults & modbus::FAULT_WATCHDOG != 0 || both_dirs {
        Some(SeatFault::ControllerFault)
    } else {
        None
    }
}

/// The seat on the controller.
#[derive(Debug)]
pub struct ModbusSeat {
    master: SharedMaster,
    setup: ControllerSetup,
    /// The run the driver commanded, with its start on the caller's timeline.
    run: Option<(Direction, Millis)>,
    /// A fault the driver itself latched (run time exceeded); the controller's own are read.
    latched: Option<SeatFault>,
    last_reopen: Option<Millis>,
    configured: bool,
}

impl ModbusSeat {
    /// The seat on `master`. The controller is configured (maximum run, watchdog) on the first
    /// successful exchange, and again after every reopen.
    pub fn new(master: SharedMaster, setup: ControllerSetup) -> ModbusSeat {
        ModbusSeat {
            master,
            setup,
            run: None,
            latched: None,
            last_reopen: None,
            configured: false,
        }
    }

    /// Checks that the controller answers and identifies as ours, and configures it.
    pub fn probe(&mut self) -> Result<(), SerialSeatError> {
        let mut m = lock(&self.master);
        let ident = m.read_holding(reg::IDENT, 1)?.first().copied().unwrap_or(0);
        if ident != modbus::IDENT_VALUE {
            return Err(ModbusError::WrongDevice {
                slave: m.config().slave,
                ident,
            }
            .into());
        }
        drop(m);
        self.configure()
    }

    fn configure(&mut self) -> Result<(), SerialSeatError> {
        let ds = u16::try_from(self.setup.max_run_ms.div_ceil(100)).unwrap_or(u16::MAX);
        lock(&self.master).write_multiple(reg::MAX_RUN_DS, &[ds, self.setup.watchdog_ms.max(1)])?;
        self.configured = true;
        Ok(())
    }

    /// Reopens a closed port (rate-limited) and reconfigures the controller.
    fn ensure_open(&mut self, now: Millis) -> Result<(), SerialSeatError> {
        let open = lock(&self.master).is_open();
        if !open {
            if self.last_reopen.is_some_and(|t| now.since(t) < REOPEN_EVERY_MS) {
                return Err(ModbusError::Disconnected(std::io::Error::new(
                    std::io::ErrorKind::NotConnected,
                    "port closed; waiting to reopen",
                ))
                .into());
            }
            self.last_reopen = Some(now);
            lock(&self.master).reopen()?;
            self.configured = false;
        }
        if !self.configured {
            self.configure()?;
        }
        Ok(())
    }

    fn read_status(&mut self) -> Result<SeatStatus, SerialSeatError> {
        let regs = lock(&self.master).read_holding(reg::STATUS, 3)?;
        Ok(decode_status(&regs))
    }

    /// On any failure while a run is on: try once to stop, and forget the run either way, so the
    /// driver never believes in a run it cannot see. The controller's watchdog covers a dead line.
    fn fail_safe<T>(&mut self, r: Result<T, SerialSeatError>) -> Result<T, SerialSeatError> {
        if r.is_err() && self.run.take().is_some() {
            let _ = lock(&self.master).write_single(reg::SEAT_CMD, modbus::SEAT_STOP);
            tracing::warn!("seat exchange failed during a run; stop sent");
        }
        r
    }

    fn stop(&mut self) -> Result<(), SerialSeatError> {
        self.run = None;
        lock(&self.master).write_single(reg::SEAT_CMD, modbus::SEAT_STOP)?;
        Ok(())
    }

    fn command_inner(&mut self, cmd: SeatCommand, now: Millis) -> Result<(), SerialSeatError> {
        self.ensure_open(now)?;
        let dir = match cmd {
            SeatCommand::Stop => {
                self.latched = None;
                return self.stop();
            }
            SeatCommand::Up => Direction::Up,
            SeatCommand::Down => Direction::Down,
        };
        match self.run {
            // Never reverse in one step: the opposite command only stops.
            Some((running, _)) if running != dir => return self.stop(),
            // A repeat must not restart the run timer (a held button would run forever).
            Some(_) => return Ok(()),
            None => {}
        }
        let st = self.read_status()?;
        if (dir == Direction::Up && st.at_top) || (dir == Direction::Down && st.at_bottom) {
            return Err(SerialSeatError::AtLimit(dir));
        }
        let value = match dir {
            Direction::Up => modbus::SEAT_UP,
            Direction::Down => modbus::SEAT_DOWN,
        };
        self.latched = None;
        // Stop first so that a stale latched controller fault is cleared before the run.
        lock(&self.master).write_multiple(reg::SEAT_CMD, &[modbus::SEAT_STOP])?;
        lock(&self.master).write_single(reg::SEAT_CMD, value)?;
        self.run = Some((dir, now));
        Ok(())
    }

    fn poll_inner(&mut self, now: Millis) -> Result<SeatStatus, SerialSeatError> {
        self.ensure_open(now)?;
        let mut st = self.read_status()?;
        if let Some((_, started)) = self.run {
            if st.moving.is_none() || st.fault.is_some() {
                // The controller ended the run (limit, target, its own timer or a fault).
                self.run = None;
            } else if now.since(started) >= self.setup.max_run_ms {
                self.stop()?;
                self.latched = Some(SeatFault::RunTimeExceeded);
                st.moving = None;
            }
        }
        if st.fault.is_some() {
            // The controller has stopped itself; make sure it stays stopped.
            if st.moving.is_some() {
                self.stop()?;
                st.moving = None;
            }
        } else {
            st.fault = self.latched;
        }
        Ok(st)
    }
}

impl Seat for ModbusSeat {
    type Error = SerialSeatError;

    fn command(&mut self, cmd: SeatCommand, now: Millis) -> Result<(), SerialSeatError> {
        let r = self.command_inner(cmd, now);
        self.fail_safe(r)
    }

    fn poll(&mut self, now: Millis) -> Result<SeatStatus, SerialSeatError> {
        let r = self.poll_inner(now);
        self.fail_safe(r)
    }

    fn go_to(&mut self, position_mm: u16, now: Millis) -> Result<(), SerialSeatError> {
        if position_mm > self.setup.travel_mm {
            return Err(SerialSeatError::OutOfRange(position_mm));
        }
        let r = (|| {
            self.ensure_open(now)?;
            let st = self.read_status()?;
            let here = st.position_mm.ok_or(SerialSeatError::NoPositionSensor)?;
            let dir = match position_mm.cmp(&here) {
                std::cmp::Ordering::Greater => Direction::Up,
                std::cmp::Ordering::Less => Direction::Down,
                std::cmp::Ordering::Equal => return Ok(()),
            };
            // Target first, then the command, in one frame: the controller never sees a stale target.
            lock(&self.master).write_multiple(reg::SEAT_CMD, &[modbus::SEAT_GO_TO, position_mm])?;
            match self.run {
                // Same direction keeps the run's start, so an auto-height loop cannot extend it.
                Some((d, _)) if d == dir => {}
                _ => self.run = Some((dir, now)),
            }
            Ok(())
        })();
        self.fail_safe(r)
    }
}

/// The lights on the controller: one write of three levels per mode change.
#[derive(Debug)]
pub struct ModbusLights {
    master: SharedMaster,
    table: LightTable,
    levels: ChannelLevels,
}

impl ModbusLights {
    /// Lights on `master` with the calibrated `table`.
    pub fn new(master: SharedMaster, table: LightTable) -> ModbusLights {
        ModbusLights {
            master,
            table,
            levels: ChannelLevels::OFF,
        }
    }

    /// Reads the lamp fault bit: `Ok(true)` when a lamp driver reports a fault.
    pub fn lamp_fault(&self) -> Result<bool, ModbusError> {
        let f = lock(&self.master).read_holding(reg::FAULTS, 1)?;
        Ok(f.first().is_some_and(|f| f & modbus::FAULT_LAMP != 0))
    }
}

/// A lamp fault as an error of the lights (the write itself succeeded).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SerialLightsError {
    /// The exchange failed.
    #[error(transparent)]
    Bus(#[from] ModbusError),
}

impl crate::Error for SerialLightsError {
    fn kind(&self) -> crate::ErrorKind {
        match self {
            SerialLightsError::Bus(e) => crate::Error::kind(e),
        }
    }
}

impl Lights for ModbusLights {
    type Error = SerialLightsError;

    fn set_mode(&mut self, mode: LightMode, _now: Millis) -> Result<(), SerialLightsError> {
        let l = self.table.levels(mode);
        let mut m = lock(&self.master);
        if !m.is_open() {
            m.reopen()?;
        }
        m.write_multiple(
            reg::LIGHT_KEY_LEFT,
            &[
                l.key_left.min(1000),
                l.key_right.min(1000),
                l.background.min(1000),
            ],
        )?;
        self.levels = l;
        Ok(())
    }

    fn levels(&self) -> ChannelLevels {
        self.levels
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_bits_decode() {
        let st = decode_status(&[modbus::STATUS_MOVING_UP | modbus::STATUS_POSITION_VALID, 120, 0]);
        assert_eq!(st.moving, Some(Direction::Up));
        assert_eq!(st.position_mm, Some(120));
        assert_eq!(st.fault, None);
        let st = decode_status(&[
            modbus::STATUS_AT_TOP | modbus::STATUS_AT_BOTTOM,
            0,
            modbus::FAULT_LIMIT_CONFLICT,
        ]);
        assert_eq!(st.fault, Some(SeatFault::LimitSwitchConflict));
        assert_eq!(st.position_mm, None);
        let both = modbus::STATUS_MOVING_UP | modbus::STATUS_MOVING_DOWN;
        assert_eq!(
            decode_status(&[both, 0, 0]).fault,
            Some(SeatFault::ControllerFault)
        );
        assert_eq!(
            fault_from_bits(modbus::FAULT_OVERCURRENT | modbus::FAULT_RUN_TIME, 0),
            Some(SeatFault::MotorOverload)
        );
        assert_eq!(
            fault_from_bits(modbus::FAULT_LAMP, 0),
            None,
            "a lamp fault is not a seat fault"
        );
    }
}
