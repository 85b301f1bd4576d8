//! The real Modbus RTU seat-and-lights driver against the simulated controller over a real pty:
//! commands, status, CRC errors, timeouts, garbage, disconnect, the fail-safe stop and the
//! maximum run time.
//!
//! These run in real time (the driver and the controller thread talk through the kernel), so
//! every wait is short and bounded; the whole file takes a few seconds.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use hal::drivers::{ControllerSetup, ModbusConfig, ModbusLights, ModbusMaster, ModbusSeat, SharedMaster};
use hal::modbus;
use hal::sim::{ControllerCore, LineFaults, SimController, SimSeatConfig};
use hal::{
    Direction, Error as _, ErrorKind, LightMode, LightTable, Lights, Millis, Seat, SeatCommand, SeatFault,
};
use serialport::TTYPort;

/// `TTYPort::pair()` is documented as not thread-safe; the tests of this file run in parallel.
static PAIR: Mutex<()> = Mutex::new(());

struct Rig {
    sim: SimController,
    master: SharedMaster,
    seat: ModbusSeat,
    lights: ModbusLights,
    t0: Instant,
}

impl Rig {
    fn new(lift: SimSeatConfig, setup: ControllerSetup) -> Rig {
        let (m, s) = {
            let _g = PAIR.lock().unwrap_or_else(|p| p.into_inner());
            TTYPort::pair().expect("pty pair")
        };
        let sim = SimController::spawn(Box::new(m), ControllerCore::new(1, lift), 42);
        let config = ModbusConfig {
            slave: 1,
            timeout: Duration::from_millis(40),
            retries: 2,
        };
        let master = std::sync::Arc::new(Mutex::new(
            ModbusMaster::from_port(Box::new(s), config).expect("port"),
        ));
        let mut seat = ModbusSeat::new(master.clone(), setup);
        seat.probe().expect("controller answers and is ours");
        let lights = ModbusLights::new(master.clone(), LightTable::default());
        Rig {
            sim,
            master,
            seat,
            lights,
            t0: now_instant(),
        }
    }

    fn now(&self) -> Millis {
        Millis::from_duration(now_instant() - self.t0)
    }

    fn moving(&self) -> Option<Direction> {
        self.sim.with_core(|c| c.moving())
    }
}

// Tests may read the clock: the driver lives in real time against the controller thread.
#[allow(clippy::disallowed_methods)]
fn now_instant() -> Instant {
    Instant::now()
}

fn lift() -> SimSeatConfig {
    // Long travel, slow: no limit is reached in these tests unless they start next to one.
    SimSeatConfig {
        travel_mm: 1000,
        speed_mm_per_s: 100,
        start_mm: 500,
        ..SimSeatConfig::default()
    }
}

fn setup(max_run_ms: u64, watchdog_ms: u16) -> ControllerSetup {
    ControllerSetup {
        max_run_ms,
        watchdog_ms,
        travel_mm: 1000,
    }
}

#[test]
fn commands_status_and_lights_reach_the_controller() {
    let mut r = Rig::new(lift(), setup(5000, 1000));
    r.lights
        .set_mode(LightMode::ShootGlasses, r.now())
        .expect("lights");
    let t = LightTable::default().shoot_glasses;
    assert_eq!(
        r.sim.with_core(|c| c.lights()),
        [t.key_left, t.key_right, t.background]
    );
    assert_eq!(r.lights.levels(), t);

    r.seat.command(SeatCommand::Up, r.now()).expect("up");
    std::thread::sleep(Duration::from_millis(150));
    let st = r.seat.poll(r.now()).expect("status");
    assert_eq!(st.moving, Some(Direction::Up));
    assert!(st.position_mm.is_some_and(|p| p > 500), "{st:?}");
    // The opposite command only stops; a second one reverses.
    r.seat.command(SeatCommand::Down, r.now()).expect("down stops");
    assert_eq!(r.moving(), None);
    r.seat.command(SeatCommand::Down, r.now()).expect("down");
    assert_eq!(r.moving(), Some(Direction::Down));
    r.seat.command(SeatCommand::Stop, r.now()).expect("stop");
    assert_eq!(r.seat.poll(r.now()).expect("status").moving, None);
    // go_to hands the target to the controller, which stops there.
    r.seat.go_to(510, r.now()).expect("go to");
    std::thread::sleep(Duration::from_millis(300));
    let st = r.seat.poll(r.now()).expect("status");
    assert_eq!((st.moving, st.position_mm), (None, Some(510)));
    assert_eq!(
        r.seat.go_to(2000, r.now()).map_err(|e| e.kind()),
        Err(ErrorKind::InvalidInput)
    );
    assert!(r.master.lock().map(|m| m.stats().ok).unwrap_or(0) >= 10);
}

#[test]
fn a_closed_limit_is_refused_without_moving() {
    let mut r = Rig::new(
        SimSeatConfig {
            start_mm: 1000,
            ..lift()
        },
        setup(5000, 1000),
    );
    let e = r.seat.command(SeatCommand::Up, r.now()).map_err(|e| e.kind());
    assert_eq!(e, Err(ErrorKind::LimitReached));
    assert_eq!(r.moving(), None);
}

#[test]
fn crc_errors_are_retried_then_reported_and_the_seat_is_stopped() {
    let mut r = Rig::new(lift(), setup(5000, 1000));
    r.seat.command(SeatCommand::Up, r.now()).expect("up");
    r.sim.set_line(LineFaults {
        corrupt_crc: true,
        ..LineFaults::default()
    });
    let e = r.seat.poll(r.now()).map_err(|e| e.kind());
    assert_eq!(e, Err(ErrorKind::Other), "garbled answers are transient");
    // The fail-safe stop got through (the controller heard it even if its answer was corrupt).
    assert_eq!(r.moving(), None);
    let garbled = r.master.lock().map(|m| m.stats().garbled).unwrap_or(0);
    assert!(garbled >= 3, "each try counted: {garbled}");
    // The line heals: the next poll works and reports the seat stopped.
    r.sim.set_line(LineFaults::default());
    assert_eq!(r.seat.poll(r.now()).expect("status").moving, None);
}

#[test]
fn silence_is_a_timeout_and_garbage_resynchronises() {
    let mut r = Rig::new(lift(), setup(5000, 1000));
    r.sim.set_line(LineFaults {
        silent: true,
        ..LineFaults::default()
    });
    let t = now_instant();
    let e = r.seat.poll(r.now()).map_err(|e| e.kind());
    assert_eq!(e, Err(ErrorKind::Timeout));
    // Three tries of 40 ms: bounded, no hang.
    assert!(
        now_instant() - t < Duration::from_millis(600),
        "{:?}",
        now_instant() - t
    );
    r.sim.set_line(LineFaults {
        garbage: true,
        ..LineFaults::default()
    });
    assert!(r.seat.poll(r.now()).is_err());
    r.sim.set_line(LineFaults::default());
    assert!(r.seat.poll(r.now()).is_ok(), "the driver recovers after garbage");
}

#[test]
fn a_cut_line_stops_the_seat_by_the_controller_watchdog_within_one_period() {
    let watchdog = 300;
    let mut r = Rig::new(lift(), setup(5000, watchdog));
    r.seat.command(SeatCommand::Down, r.now()).expect("down");
    let cut = now_instant();
    r.sim.set_line(LineFaults {
        deaf: true,
        ..LineFaults::default()
    });
    // The driver's own poll fails and its stop is lost on the cut line.
    assert_eq!(
        r.seat.poll(r.now()).map_err(|e| e.kind()),
        Err(ErrorKind::Timeout)
    );
    while r.moving().is_some() && now_instant() - cut < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let stopped_after = now_instant() - cut;
    assert_eq!(r.moving(), None);
    assert!(
        stopped_after <= Duration::from_millis(u64::from(watchdog) + 100),
        "{stopped_after:?}"
    );
    assert_eq!(
        r.sim.with_core(|c| c.faults()) & modbus::FAULT_WATCHDOG,
        modbus::FAULT_WATCHDOG
    );
    // Line back: the driver sees the controller's fault; Stop acknowledges it.
    r.sim.set_line(LineFaults::default());
    assert_eq!(
        r.seat.poll(r.now()).expect("status").fault,
        Some(SeatFault::ControllerFault)
    );
    r.seat.command(SeatCommand::Stop, r.now()).expect("ack");
    assert_eq!(r.seat.poll(r.now()).expect("status").fault, None);
}

#[test]
fn a_motor_fault_stops_the_seat_and_is_reported() {
    let mut r = Rig::new(lift(), setup(5000, 1000));
    r.seat.command(SeatCommand::Up, r.now()).expect("up");
    r.sim.with_core(|c| c.set_overcurrent(true));
    std::thread::sleep(Duration::from_millis(20));
    let st = r.seat.poll(r.now()).expect("status");
    assert_eq!((st.moving, st.fault), (None, Some(SeatFault::MotorOverload)));
    assert_eq!(r.moving(), None);
}

#[test]
fn the_maximum_run_time_is_enforced_polled_or_not() {
    let max_run = 400;
    // Polled: the driver stops the run at the first poll past the maximum.
    let mut r = Rig::new(lift(), setup(max_run, 1000));
    r.seat.command(SeatCommand::Up, r.now()).expect("up");
    let mut st = r.seat.poll(r.now()).expect("status");
    for _ in 0..40 {
        if st.fault.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
        st = r.seat.poll(r.now()).expect("status");
    }
    assert_eq!((st.moving, st.fault), (None, Some(SeatFault::RunTimeExceeded)));
    let longest = r.sim.with_core(|c| c.longest_run_ms());
    assert!(
        (max_run - 50..=max_run + 100).contains(&longest),
        "ran {longest} ms"
    );

    // Not polled at all (the kiosk hung): the controller's copy of the maximum stops it.
    let mut r = Rig::new(lift(), setup(max_run, 5000));
    r.seat.command(SeatCommand::Down, r.now()).expect("down");
    std::thread::sleep(Duration::from_millis(max_run + 200));
    assert_eq!(r.moving(), None);
    assert_eq!(
        r.sim.with_core(|c| c.faults()) & modbus::FAULT_RUN_TIME,
        modbus::FAULT_RUN_TIME
    );
    assert!(r.sim.with_core(|c| c.longest_run_ms()) <= max_run + 50);
    assert_eq!(
        r.seat.poll(r.now()).expect("status").fault,
        Some(SeatFault::RunTimeExceeded)
    );
}

#[test]
fn an_unplugged_adapter_is_a_disconnect_and_never_hangs() {
    let mut r = Rig::new(lift(), setup(5000, 1000));
    r.seat.poll(r.now()).expect("status");
    let _core = r.sim.unplug();
    let t = now_instant();
    assert_eq!(
        r.seat.poll(r.now()).map_err(|e| e.kind()),
        Err(ErrorKind::Disconnected)
    );
    // The port is closed now: further calls fail at once, still as a disconnect.
    assert_eq!(
        r.seat.command(SeatCommand::Up, r.now()).map_err(|e| e.kind()),
        Err(ErrorKind::Disconnected)
    );
    assert_eq!(
        r.lights.set_mode(LightMode::Idle, r.now()).map_err(|e| e.kind()),
        Err(ErrorKind::Disconnected)
    );
    assert!(now_instant() - t < Duration::from_millis(500));
}

#[test]
fn opening_a_missing_port_names_it() {
    let e = ModbusMaster::open("/dev/ttyNOSUCH-kiosk", 9600, ModbusConfig::default()).map(|_| ());
    let e = e.expect_err("no such port");
    assert_eq!(e.kind(), ErrorKind::Disconnected);
    assert!(e.to_string().contains("/dev/ttyNOSUCH-kiosk"), "{e}");
}
