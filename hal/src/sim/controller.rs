//! A simulated seat-and-lights controller that speaks Modbus RTU, so the real serial driver is
//! tested end to end over a pseudo-terminal.
//!
//! [`ControllerCore`] is the controller's logic on the virtual timeline (registers, a [`SimSeat`]
//! as the lift, its own maximum run time and communication watchdog, fault bits) and answers
//! frames as bytes; it is pure and deterministic. [`SimController::spawn`] runs a core on the
//! master end of a pty in a thread that reads the monotonic clock, because the driver on the
//! other end lives in real time. Faults are switched on through [`SimController`]'s handle:
//! silence, garbage instead of answers, corrupt CRCs, motor overcurrent, a lamp fault, unplug.
//! Deliberately no RS-485 direction switching, baud-rate timing or inter-character gaps: a pty
//! has none of them.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use serialport::SerialPort;

use super::{SimSeat, SimSeatConfig, SplitMix64};
use crate::modbus::{self, ParsedRequest, Request, exception, reg};
use crate::{Direction, Millis, Seat, SeatCommand};

/// The controller's logic: registers, lift and fault bits on the virtual timeline.
#[derive(Debug, Clone)]
pub struct ControllerCore {
    slave: u8,
    seat: SimSeat,
    cmd: u16,
    target_mm: u16,
    max_run_ds: u16,
    watchdog_ms: u16,
    lights: [u16; 3],
    faults: u16,
    run_started: Option<Millis>,
    last_request: Millis,
    overcurrent: bool,
    lamp_fault: bool,
    /// Total time the motor was driven, and the longest single run, for the safety assertions.
    longest_run_ms: u64,
}

impl ControllerCore {
    /// A controller at `slave` whose lift has these mechanics. The lift's own run limit is
    /// disabled: the controller enforces `MAX_RUN_DS` itself, as a real one does.
    pub fn new(slave: u8, lift: SimSeatConfig) -> ControllerCore {
        let seat = SimSeat::new(SimSeatConfig {
            max_run_ms: u64::MAX / 4,
            ..lift
        });
        ControllerCore {
            slave,
            seat,
            cmd: modbus::SEAT_STOP,
            target_mm: 0,
            max_run_ds: 100,
            watchdog_ms: 0,
            lights: [0; 3],
            faults: 0,
            run_started: None,
            last_request: Millis::ZERO,
            overcurrent: false,
            lamp_fault: false,
            longest_run_ms: 0,
        }
    }

    /// The light levels last written (left, right, background), permille.
    pub fn lights(&self) -> [u16; 3] {
        self.lights
    }

    /// Where the lift is going, if it moves.
    pub fn moving(&self) -> Option<Direction> {
        self.run_started
            .and(self.seat.clone().poll(Millis::ZERO).ok()?.moving)
    }

    /// The latched fault bits.
    pub fn faults(&self) -> u16 {
        self.faults
    }

    /// The longest run the motor made (so far, up to the last `advance`).
    pub fn longest_run_ms(&self) -> u64 {
        self.longest_run_ms
    }

    /// The lift's true height in µm.
    pub fn true_position_um(&self) -> u32 {
        self.seat.true_position_um()
    }

    /// Makes the motor draw overcurrent while driven (a blocked seat) until cleared.
    pub fn set_overcurrent(&mut self, on: bool) {
        self.overcurrent = on;
    }

    /// Sets or clears the lamp driver's fault.
    pub fn set_lamp_fault(&mut self, on: bool) {
        self.lamp_fault = on;
        if on {
            self.faults |= modbus::FAULT_LAMP;
        } else {
            self.faults &= !modbus::FAULT_LAMP;
        }
    }

    fn stop(&mut self, now: Millis) {
        let _ = self.seat.command(SeatCommand::Stop, now);
        if let Some(s) = self.run_started.take() {
            self.longest_run_ms = self.longest_run_ms.max(now.since(s));
        }
        self.cmd = modbus::SEAT_STOP;
    }

    /// Moves the lift to `now` and applies the controller's own safety rules.
    pub fn advance(&mut self, now: Millis) {
        let moving = self.seat.poll(now).map(|s| s.moving).unwrap_or(None);
        let Some(started) = self.run_started else {
            return;
        };
        if moving.is_none() {
            // Reached a limit or the target.
            self.longest_run_ms = self.longest_run_ms.max(now.since(started));
            self.run_started = None;
            self.cmd = modbus::SEAT_STOP;
            return;
        }
        let max_run = u64::from(self.max_run_ds) * 100;
        if now.since(started) >= max_run {
            self.stop(now);
            self.faults |= modbus::FAULT_RUN_TIME;
        } else if self.watchdog_ms > 0 && now.since(self.last_request) >= u64::from(self.watchdog_ms) {
            self.stop(now);
            self.faults |= modbus::FAULT_WATCHDOG;
        } else if self.overcurrent {
            self.stop(now);
            self.faults |= modbus::FAULT_OVERCURRENT;
        }
    }

    fn status_word(&mut self, now: Millis) -> [u16; 3] {
        let st = self.seat.poll(now).ok();
        let mut w = 0;
        if let Some(st) = st {
            match st.moving {
                Some(Direction::Up) => w |= modbus::STATUS_MOVING_UP,
                Some(Direction::Down) => w |= modbus::STATUS_MOVING_DOWN,
                None => {}
            }
            if st.at_top {
                w |= modbus::STATUS_AT_TOP;
            }
            if st.at_bottom {
                w |= modbus::STATUS_AT_BOTTOM;
            }
            if st.position_mm.is_some() {
                w |= modbus::STATUS_POSITION_VALID;
            }
        }
        [w, st.and_then(|s| s.position_mm).unwrap_or(0), self.faults]
    }

    fn read(&mut self, addr: u16, now: Millis) -> Option<u16> {
        let [status, pos, faults] = self.status_word(now);
        Some(match addr {
            reg::SEAT_CMD => self.cmd,
            reg::SEAT_TARGET_MM => self.target_mm,
            reg::MAX_RUN_DS => self.max_run_ds,
            reg::WATCHDOG_MS => self.watchdog_ms,
            reg::LIGHT_KEY_LEFT => self.lights[0],
            reg::LIGHT_KEY_RIGHT => self.lights[1],
            reg::LIGHT_BACKGROUND => self.lights[2],
            reg::STATUS => status,
            reg::POSITION_MM => pos,
            reg::FAULTS => faults,
            reg::IDENT => modbus::IDENT_VALUE,
            _ => return None,
        })
    }

    /// Checks a write without applying it: the exception code if it would be refused.
    fn check_write(&self, addr: u16, value: u16) -> Result<(), u8> {
        match addr {
            reg::SEAT_CMD if value > modbus::SEAT_GO_TO => Err(exception::ILLEGAL_DATA_VALUE),
            reg::SEAT_CMD if value != modbus::SEAT_STOP && self.faults & !modbus::FAULT_LAMP != 0 => {
                // A latched seat fault must be acknowledged (stop) before the seat moves again.
                Err(exception::SLAVE_DEVICE_FAILURE)
            }
            reg::SEAT_CMD | reg::SEAT_TARGET_MM | reg::MAX_RUN_DS | reg::WATCHDOG_MS => Ok(()),
            reg::LIGHT_KEY_LEFT | reg::LIGHT_KEY_RIGHT | reg::LIGHT_BACKGROUND if value <= 1000 => Ok(()),
            reg::LIGHT_KEY_LEFT | reg::LIGHT_KEY_RIGHT | reg::LIGHT_BACKGROUND => {
                Err(exception::ILLEGAL_DATA_VALUE)
            }
            _ => Err(exception::ILLEGAL_DATA_ADDRESS),
        }
    }

    fn write(&mut self, addr: u16, value: u16, now: Millis) {
        match addr {
            reg::SEAT_CMD => self.seat_command(value, now),
            reg::SEAT_TARGET_MM => self.target_mm = value,
            reg::MAX_RUN_DS => self.max_run_ds = value.max(1),
            reg::WATCHDOG_MS => self.watchdog_ms = value,
            reg::LIGHT_KEY_LEFT => self.lights[0] = value,
            reg::LIGHT_KEY_RIGHT => self.lights[1] = value,
            reg::LIGHT_BACKGROUND => self.lights[2] = value,
            _ => {}
        }
    }

    fn seat_command(&mut self, value: u16, now: Millis) {
        if value == modbus::SEAT_STOP {
            self.stop(now);
            // Acknowledge: clear the seat's latched faults (a lamp fault is a state, not a latch).
            self.faults &= modbus::FAULT_LAMP;
            return;
        }
        let r = match value {
            modbus::SEAT_UP => self.seat.command(SeatCommand::Up, now),
            modbus::SEAT_DOWN => self.seat.command(SeatCommand::Down, now),
            _ => self.seat.go_to(self.target_mm, now),
        };
        let moving = self.seat.poll(now).map(|s| s.moving).unwrap_or(None);
        if r.is_ok() && moving.is_some() {
            self.cmd = value;
            if self.run_started.is_none() {
                self.run_started = Some(now);
            }
        } else if moving.is_none() {
            self.run_started = None;
            self.cmd = modbus::SEAT_STOP;
        }
    }

    /// Answers one received frame at `now`. `None` when a real slave would stay silent: a bad
    /// CRC, a truncated frame, or a frame for another slave id.
    pub fn handle(&mut self, frame: &[u8], now: Millis) -> Option<Vec<u8>> {
        self.advance(now);
        let (slave, parsed) = Request::decode(frame)?;
        if slave != self.slave {
            return None;
        }
        // Only a valid request for us feeds the watchdog.
        self.last_request = now;
        let req = match parsed {
            ParsedRequest::Unsupported(f) => {
                return Some(modbus::encode_exception(slave, f, exception::ILLEGAL_FUNCTION));
            }
            ParsedRequest::Ok(r) => r,
        };
        let answer = match &req {
            Request::ReadHolding { addr, count } => {
                if *count == 0 || *count > 125 {
                    Err(exception::ILLEGAL_DATA_VALUE)
                } else {
                    (0..*count)
                        .map(|i| self.read(addr.wrapping_add(i), now))
                        .collect::<Option<Vec<u16>>>()
                        .ok_or(exception::ILLEGAL_DATA_ADDRESS)
                }
            }
            Request::WriteSingle { addr, value } => self.check_write(*addr, *value).map(|()| {
                self.write(*addr, *value, now);
                Vec::new()
            }),
            Request::WriteMultiple { addr, values } => {
                // All or nothing, as the standard asks; the command register last, so a go-to
                // written with its target in one frame sees the new target.
                let checked: Result<(), u8> = values
                    .iter()
                    .enumerate()
                    .try_for_each(|(i, v)| self.check_write(addr.wrapping_add(i as u16), *v));
                checked.map(|()| {
                    let mut writes: Vec<(u16, u16)> = values
                        .iter()
                        .enumerate()
                        .map(|(i, v)| (addr.wrapping_add(i as u16), *v))
                        .collect();
                    writes.sort_by_key(|(a, _)| *a == reg::SEAT_CMD);
                    for (a, v) in writes {
                        self.write(a, v, now);
                    }
                    Vec::new()
                })
            }
        };
        Some(match answer {
            Ok(regs) => modbus::encode_response(slave, &req, &regs),
            Err(code) => modbus::encode_exception(slave, req.function(), code),
        })
    }
}

/// How the simulated controller misbehaves on the line right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LineFaults {
    /// Hear nothing: requests are lost before the controller sees them (a cut cable), so its
    /// communication watchdog runs out.
    pub deaf: bool,
    /// Answer nothing (a dead controller or a cut A/B pair).
    pub silent: bool,
    /// Answer with random bytes of the right length (a bad ground, a wrong baud rate).
    pub garbage: bool,
    /// Answer with one byte flipped, so the CRC fails.
    pub corrupt_crc: bool,
}

#[derive(Debug)]
struct Shared {
    core: ControllerCore,
    line: LineFaults,
    rng: SplitMix64,
    frames: u64,
}

/// A handle to a simulated controller running on the master end of a pty.
#[derive(Debug)]
pub struct SimController {
    shared: Arc<Mutex<Shared>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SimController {
    /// Runs `core` on `port` (the master end of `TTYPort::pair()`) until the handle is dropped
    /// or [`SimController::unplug`] is called. `seed` drives the garbage bytes.
    pub fn spawn(port: Box<dyn SerialPort>, core: ControllerCore, seed: u64) -> SimController {
        let shared = Arc::new(Mutex::new(Shared {
            core,
            line: LineFaults::default(),
            rng: SplitMix64::new(seed),
            frames: 0,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (shared, stop) = (Arc::clone(&shared), Arc::clone(&stop));
            std::thread::Builder::new()
                .name("sim-modbus".into())
                .spawn(move || serve(port, &shared, &stop))
                .ok()
        };
        SimController { shared, stop, thread }
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets the line faults.
    pub fn set_line(&self, line: LineFaults) {
        self.lock().line = line;
    }

    /// Runs `f` on the controller's core (inject a motor or lamp fault, read its state).
    pub fn with_core<T>(&self, f: impl FnOnce(&mut ControllerCore) -> T) -> T {
        f(&mut self.lock().core)
    }

    /// Valid frames answered (or deliberately not) so far.
    pub fn frames(&self) -> u64 {
        self.lock().frames
    }

    /// Closes the controller's end of the pty, as a USB adapter pulled out: the driver's next
    /// read fails. Returns the core as it was at the unplug.
    pub fn unplug(&mut self) -> ControllerCore {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.lock().core.clone()
    }
}

impl Drop for SimController {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The controller thread: frames are delimited by a silence of one read timeout (2 ms), which
/// stands in for RTU's 3.5 character times.
// The thread plays a device in real time against a driver in real time, so it reads the
// monotonic clock; nothing in the product runs this.
#[allow(clippy::disallowed_methods)]
fn serve(mut port: Box<dyn SerialPort>, shared: &Mutex<Shared>, stop: &AtomicBool) {
    let start = std::time::Instant::now();
    if port.set_timeout(Duration::from_millis(2)).is_err() {
        return;
    }
    let mut frame = Vec::new();
    let mut buf = [0u8; 512];
    while !stop.load(Ordering::SeqCst) {
        let read = port.read(&mut buf);
        let now = Millis::from_duration(start.elapsed());
        let mut s = shared.lock().unwrap_or_else(|p| p.into_inner());
        s.core.advance(now);
        match read {
            Ok(0) => return,
            Ok(n) => {
                frame.extend_from_slice(&buf[..n]);
                if frame.len() > 4 * modbus::MAX_FRAME {
                    frame.clear();
                }
                continue;
            }
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return,
        }
        if frame.is_empty() {
            continue;
        }
        let request = std::mem::take(&mut frame);
        if s.line.deaf {
            continue;
        }
        let Some(mut answer) = s.core.handle(&request, now) else {
            continue;
        };
        s.frames += 1;
        let line = s.line;
        if line.silent {
            continue;
        }
        if line.garbage {
            for b in answer.iter_mut() {
                *b = (s.rng.next_u64() >> 56) as u8;
            }
        } else if line.corrupt_crc {
            let i = answer.len() / 2;
            answer[i] ^= 0x5A;
        }
        drop(s);
        if port.write_all(&answer).and_then(|()| port.flush()).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn core() -> ControllerCore {
        ControllerCore::new(
            3,
            SimSeatConfig {
                travel_mm: 100,
                speed_mm_per_s: 50,
                start_mm: 50,
                ..SimSeatConfig::default()
            },
        )
    }

    fn ask(c: &mut ControllerCore, r: &Request, now: u64) -> Result<Vec<u16>, modbus::FrameError> {
        let answer = c.handle(&r.encode(3), Millis(now)).unwrap_or_default();
        modbus::decode_response(3, r, &answer)
    }

    #[test]
    fn moves_reports_and_stops_at_its_own_run_limit_and_watchdog() {
        let mut c = core();
        let status = Request::ReadHolding {
            addr: reg::STATUS,
            count: 3,
        };
        assert_eq!(
            ask(
                &mut c,
                &Request::WriteMultiple {
                    addr: reg::MAX_RUN_DS,
                    values: vec![5, 0]
                },
                0
            ),
            Ok(vec![])
        );
        assert_eq!(
            ask(
                &mut c,
                &Request::WriteSingle {
                    addr: reg::SEAT_CMD,
                    value: modbus::SEAT_UP
                },
                0
            ),
            Ok(vec![])
        );
        let st = ask(&mut c, &status, 200).unwrap_or_default();
        assert_eq!(st[0] & modbus::STATUS_MOVING_UP, modbus::STATUS_MOVING_UP);
        assert_eq!(st[1], 60);
        // Reaches the top limit at 1 s: 50 mm at 50 mm/s.
        let st = ask(&mut c, &status, 1100).unwrap_or_default();
        assert_eq!(
            st[0] & (modbus::STATUS_AT_TOP | modbus::STATUS_MOVING_UP),
            modbus::STATUS_AT_TOP
        );
        // Down with a 0.5 s limit: stopped by the controller, fault latched, refused until stop.
        ask(
            &mut c,
            &Request::WriteSingle {
                addr: reg::SEAT_CMD,
                value: modbus::SEAT_DOWN,
            },
            2000,
        )
        .ok();
        let st = ask(&mut c, &status, 2600).unwrap_or_default();
        assert_eq!(
            (st[0] & modbus::STATUS_MOVING_DOWN, st[2]),
            (0, modbus::FAULT_RUN_TIME)
        );
        assert_eq!(
            ask(
                &mut c,
                &Request::WriteSingle {
                    addr: reg::SEAT_CMD,
                    value: modbus::SEAT_DOWN
                },
                2700
            ),
            Err(modbus::FrameError::Exception(exception::SLAVE_DEVICE_FAILURE))
        );
        // Watchdog: 300 ms of silence while moving stops it.
        ask(
            &mut c,
            &Request::WriteMultiple {
                addr: reg::SEAT_CMD,
                values: vec![0],
            },
            2800,
        )
        .ok();
        ask(
            &mut c,
            &Request::WriteMultiple {
                addr: reg::MAX_RUN_DS,
                values: vec![100, 300],
            },
            2800,
        )
        .ok();
        ask(
            &mut c,
            &Request::WriteSingle {
                addr: reg::SEAT_CMD,
                value: modbus::SEAT_DOWN,
            },
            2800,
        )
        .ok();
        c.advance(Millis(3099));
        assert_eq!(c.moving(), Some(Direction::Down));
        c.advance(Millis(3100));
        assert_eq!((c.moving(), c.faults()), (None, modbus::FAULT_WATCHDOG));
        // The longest was the first run, ended by the top limit at 1 s (seen at the 1.1 s request).
        assert!(c.longest_run_ms() <= 1100, "{}", c.longest_run_ms());
    }

    #[test]
    fn stays_silent_on_bad_crc_and_other_slaves_and_refuses_bad_addresses() {
        let mut c = core();
        let mut f = Request::ReadHolding { addr: 0, count: 1 }.encode(3);
        f[2] ^= 1;
        assert_eq!(c.handle(&f, Millis(0)), None);
        assert_eq!(
            c.handle(&Request::ReadHolding { addr: 0, count: 1 }.encode(4), Millis(0)),
            None
        );
        assert_eq!(
            ask(&mut c, &Request::ReadHolding { addr: 200, count: 1 }, 0),
            Err(modbus::FrameError::Exception(exception::ILLEGAL_DATA_ADDRESS))
        );
        assert_eq!(
            ask(
                &mut c,
                &Request::WriteSingle {
                    addr: reg::LIGHT_BACKGROUND,
                    value: 1001
                },
                0
            ),
            Err(modbus::FrameError::Exception(exception::ILLEGAL_DATA_VALUE))
        );
        assert_eq!(
            ask(
                &mut c,
                &Request::ReadHolding {
                    addr: reg::IDENT,
                    count: 1
                },
                0
            ),
            Ok(vec![modbus::IDENT_VALUE])
        );
    }
}
