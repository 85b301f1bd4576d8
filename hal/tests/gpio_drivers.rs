//! The GPIO seat, PWM lights and buttons through the pin seam with scripted fake pins: the
//! interlock (never up and down together), limit switches, the maximum run time, outputs
//! released on fault and on drop, debounced buttons.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use hal::drivers::gpio::{
    ButtonInput, GpioButtons, GpioError, GpioSeat, GpioSeatConfig, InputPin, OutputPin, PwmLights, PwmOut,
};
use hal::{
    ButtonEvent, Buttons, Direction, Error as _, ErrorKind, LightMode, LightTable, Lights, Millis, Seat,
    SeatCommand, SeatFault, Switch,
};
use proptest::prelude::*;

/// The wiring as the fakes see it. Relays are active-low and limits read high when tripped
/// (the default config).
#[derive(Debug, Default, Clone)]
struct Board {
    up_level: Option<bool>,
    down_level: Option<bool>,
    top_tripped: bool,
    bottom_tripped: bool,
    /// Every time both relays were energised at once.
    violations: u32,
    fail_next_read: bool,
    fail_writes: bool,
    writes: u32,
}

impl Board {
    fn energised(level: Option<bool>) -> bool {
        level == Some(false)
    }
    fn up_on(&self) -> bool {
        Board::energised(self.up_level)
    }
    fn down_on(&self) -> bool {
        Board::energised(self.down_level)
    }
}

type Shared = Arc<Mutex<Board>>;

/// A copy of the board, so that no lock is held across an assertion.
trait Peek {
    fn peek(&self) -> Board;
}

impl Peek for Shared {
    fn peek(&self) -> Board {
        self.lock().unwrap().clone()
    }
}

#[derive(Debug)]
struct Relay(Shared, bool);

impl OutputPin for Relay {
    fn set(&mut self, high: bool) -> Result<(), GpioError> {
        let mut b = self.0.lock().unwrap();
        b.writes += 1;
        // Scripted: the up relay's driver fails to release (high = released, active-low).
        if b.fail_writes && high && self.1 {
            return Err(GpioError::Pin {
                pin: 17,
                reason: "scripted failure".into(),
            });
        }
        if self.1 {
            b.up_level = Some(high);
        } else {
            b.down_level = Some(high);
        }
        if b.up_on() && b.down_on() {
            b.violations += 1;
        }
        Ok(())
    }
}

#[derive(Debug)]
struct Limit(Shared, bool);

impl InputPin for Limit {
    fn is_high(&mut self) -> Result<bool, GpioError> {
        let mut b = self.0.lock().unwrap();
        if std::mem::take(&mut b.fail_next_read) {
            return Err(GpioError::Pin {
                pin: 5,
                reason: "scripted read failure".into(),
            });
        }
        Ok(if self.1 { b.top_tripped } else { b.bottom_tripped })
    }
}

fn seat(board: &Shared, max_run_ms: u64) -> GpioSeat<Relay, Limit> {
    GpioSeat::new(
        Relay(board.clone(), true),
        Relay(board.clone(), false),
        Limit(board.clone(), true),
        Limit(board.clone(), false),
        GpioSeatConfig {
            max_run_ms,
            ..GpioSeatConfig::default()
        },
    )
    .expect("seat")
}

#[test]
fn relays_start_released_and_a_run_stops_at_its_limit() {
    let b = Shared::default();
    let mut s = seat(&b, 10_000);
    assert_eq!(
        (b.peek().up_level, b.peek().down_level),
        (Some(true), Some(true)),
        "released = high"
    );
    s.command(SeatCommand::Up, Millis(0)).expect("up");
    assert!(b.peek().up_on() && !b.peek().down_on());
    assert_eq!(s.poll(Millis(500)).expect("poll").moving, Some(Direction::Up));
    b.lock().unwrap().top_tripped = true;
    let st = s.poll(Millis(600)).expect("poll");
    assert_eq!((st.moving, st.at_top, st.fault), (None, true, None));
    assert!(!b.peek().up_on());
    assert_eq!(
        s.command(SeatCommand::Up, Millis(700)).map_err(|e| e.kind()),
        Err(ErrorKind::LimitReached)
    );
    assert!(!b.peek().up_on());
    assert_eq!(
        s.go_to(10, Millis(700)).map_err(|e| e.kind()),
        Err(ErrorKind::InvalidInput)
    );
}

#[test]
fn the_maximum_run_time_releases_the_relay_and_latches_a_fault() {
    let b = Shared::default();
    let mut s = seat(&b, 8000);
    s.command(SeatCommand::Down, Millis(1000)).expect("down");
    // A held button repeats the command: the run timer must not restart.
    s.command(SeatCommand::Down, Millis(5000)).expect("repeat");
    assert_eq!(s.poll(Millis(8999)).expect("poll").moving, Some(Direction::Down));
    let st = s.poll(Millis(9000)).expect("poll");
    assert_eq!((st.moving, st.fault), (None, Some(SeatFault::RunTimeExceeded)));
    assert!(!b.peek().down_on());
    // Refused until acknowledged with Stop.
    assert_eq!(
        s.command(SeatCommand::Down, Millis(9100)).map_err(|e| e.kind()),
        Err(ErrorKind::Fault)
    );
    s.command(SeatCommand::Stop, Millis(9200)).expect("ack");
    s.command(SeatCommand::Down, Millis(9300)).expect("down again");
    assert!(b.peek().down_on());
}

#[test]
fn contradictory_limits_and_pin_errors_release_everything() {
    let b = Shared::default();
    let mut s = seat(&b, 10_000);
    s.command(SeatCommand::Up, Millis(0)).expect("up");
    {
        let mut bb = b.lock().unwrap();
        bb.top_tripped = true;
        bb.bottom_tripped = true;
    }
    let st = s.poll(Millis(10)).expect("poll");
    assert_eq!(st.fault, Some(SeatFault::LimitSwitchConflict));
    assert!(!b.peek().up_on() && !b.peek().down_on());
    assert_eq!(
        s.command(SeatCommand::Down, Millis(20)).map_err(|e| e.kind()),
        Err(ErrorKind::Fault)
    );

    let b = Shared::default();
    let mut s = seat(&b, 10_000);
    s.command(SeatCommand::Down, Millis(0)).expect("down");
    b.lock().unwrap().fail_next_read = true;
    assert_eq!(s.poll(Millis(10)).map_err(|e| e.kind()), Err(ErrorKind::Fault));
    assert!(!b.peek().down_on(), "a failed read releases the relays");
    assert_eq!(s.poll(Millis(20)).expect("poll").moving, None);
}

#[test]
fn dropping_the_driver_releases_the_relays() {
    let b = Shared::default();
    let mut s = seat(&b, 10_000);
    s.command(SeatCommand::Up, Millis(0)).expect("up");
    assert!(b.peek().up_on());
    drop(s);
    assert!(!b.peek().up_on() && !b.peek().down_on());
}

#[test]
fn a_relay_that_cannot_be_released_is_never_paired_with_the_other() {
    let b = Shared::default();
    let mut s = seat(&b, 10_000);
    s.command(SeatCommand::Up, Millis(0)).expect("up");
    s.command(SeatCommand::Stop, Millis(10)).expect("stop");
    // Now the up relay's release fails: a Down must not energise the down relay.
    b.lock().unwrap().fail_writes = true;
    let r = s.command(SeatCommand::Down, Millis(20));
    assert_eq!(r.map_err(|e| e.kind()), Err(ErrorKind::Fault));
    assert!(!b.peek().down_on());
    assert_eq!(b.peek().violations, 0);
}

#[derive(Debug, Clone)]
enum Op {
    Cmd(u8),
    Poll,
    Limits(bool, bool),
}

proptest! {
    /// Over arbitrary commands, polls, limit-switch changes and times: the two relays are never
    /// energised together, no run outlives the maximum run time by more than one poll, and a
    /// run never continues into a tripped limit past the next poll.
    #[test]
    fn interlock_holds_for_any_sequence(
        ops in proptest::collection::vec(
            prop_oneof![
                (0u8..3).prop_map(Op::Cmd),
                Just(Op::Poll),
                (any::<bool>(), any::<bool>()).prop_map(|(a, b)| Op::Limits(a, b)),
            ],
            1..120,
        ),
        steps in proptest::collection::vec(0u64..700, 120),
    ) {
        let b = Shared::default();
        let max_run = 2000;
        let mut s = seat(&b, max_run);
        let mut t = 0;
        let mut run_start: Option<u64> = None;
        for (op, dt) in ops.iter().zip(&steps) {
            t += dt;
            let now = Millis(t);
            match op {
                Op::Cmd(0) => { let _ = s.command(SeatCommand::Up, now); }
                Op::Cmd(1) => { let _ = s.command(SeatCommand::Down, now); }
                Op::Cmd(_) => { let _ = s.command(SeatCommand::Stop, now); }
                Op::Poll => {
                    let st = s.poll(now);
                    if let Ok(st) = st {
                        if st.moving == Some(Direction::Up) { prop_assert!(!st.at_top); }
                        if st.moving == Some(Direction::Down) { prop_assert!(!st.at_bottom); }
                        if let Some(start) = run_start {
                            prop_assert!(st.moving.is_none() || t - start < max_run);
                        }
                    }
                }
                Op::Limits(top, bottom) => {
                    let mut bb = b.lock().unwrap();
                    bb.top_tripped = *top;
                    bb.bottom_tripped = *bottom;
                }
            }
            let on = b.peek().up_on() || b.peek().down_on();
            run_start = match (on, run_start) {
                (true, None) => Some(t),
                (true, s) => s,
                (false, _) => None,
            };
            prop_assert_eq!(b.peek().violations, 0);
        }
        drop(s);
        prop_assert!(!b.peek().up_on() && !b.peek().down_on());
    }
}

#[derive(Debug)]
struct Dimmer(Rc<RefCell<Vec<u16>>>, usize);

impl PwmOut for Dimmer {
    fn set_duty_permille(&mut self, permille: u16) -> Result<(), GpioError> {
        self.0.borrow_mut()[self.1] = permille;
        Ok(())
    }
}

#[test]
fn pwm_lights_apply_the_table() {
    let duty = Rc::new(RefCell::new(vec![999; 3]));
    let table = LightTable::default();
    let mut l = PwmLights::new(
        Dimmer(duty.clone(), 0),
        Dimmer(duty.clone(), 1),
        Dimmer(duty.clone(), 2),
        table,
    )
    .expect("lights");
    assert_eq!(*duty.borrow(), vec![0, 0, 0], "off at start");
    l.set_mode(LightMode::Shoot, Millis(0)).expect("shoot");
    assert_eq!(
        *duty.borrow(),
        vec![
            table.shoot.key_left,
            table.shoot.key_right,
            table.shoot.background
        ]
    );
    assert_eq!(l.levels(), table.shoot);
}

#[derive(Debug)]
struct ScriptedInput(Rc<RefCell<bool>>);

impl InputPin for ScriptedInput {
    fn is_high(&mut self) -> Result<bool, GpioError> {
        Ok(*self.0.borrow())
    }
}

#[test]
fn buttons_are_debounced() {
    let level = Rc::new(RefCell::new(true)); // pull-up: released reads high
    let mut buttons = GpioButtons::new(
        vec![ButtonInput {
            switch: Switch::SeatUp,
            pin: ScriptedInput(level.clone()),
            active_low: true,
        }],
        30,
    );
    let mut events = Vec::new();
    // Bounce until 9 ms (last edge at 9), then held to 109 ms, then released: each change is
    // reported 30 ms after its last edge.
    let script = |t: u64| match t {
        0..=9 => t.is_multiple_of(2),
        10..=109 => false,
        _ => true,
    };
    for t in 0..200 {
        *level.borrow_mut() = script(t);
        events.extend(buttons.poll(Millis(t)).expect("poll"));
    }
    assert_eq!(
        events,
        vec![
            ButtonEvent::pressed(Switch::SeatUp, Millis(39)),
            ButtonEvent::released(Switch::SeatUp, Millis(140))
        ]
    );
}

#[test]
fn rppal_off_a_raspberry_pi_is_a_disconnect() {
    // On a Pi this opens real pins; the CI machines are not Pis, where rppal answers at once.
    if std::env::var_os("KIOSK_HW_GPIO").is_some() {
        println!("KIOSK_HW_GPIO set: not probing rppal's error path on real hardware");
        return;
    }
    let e = hal::drivers::gpio::rpi::input_pullup(5)
        .map(|_| ())
        .expect_err("not a Pi");
    assert_eq!(e.kind(), ErrorKind::Disconnected, "{e}");
}

/// How long the tests below give the watchdog beyond the maximum run time: a loaded CI machine
/// may schedule its thread late, but never by seconds.
const WATCHDOG_SLACK: std::time::Duration = std::time::Duration::from_millis(1500);

#[test]
fn the_watchdog_releases_the_relays_when_the_caller_hangs() {
    let b = Shared::default();
    let mut s = seat(&b, 300);
    let (resume, hung) = std::sync::mpsc::channel::<()>();
    let caller = std::thread::spawn(move || {
        s.command(SeatCommand::Up, Millis(0)).expect("up");
        // The caller hangs: no poll, no stop, for as long as the test keeps it here.
        hung.recv().unwrap();
        // When it comes back, its next poll tells it what happened.
        let st = s.poll(Millis(100)).expect("poll");
        assert_eq!((st.moving, st.fault), (None, Some(SeatFault::RunTimeExceeded)));
        assert_eq!(
            s.command(SeatCommand::Up, Millis(110)).map_err(|e| e.kind()),
            Err(ErrorKind::Fault),
            "latched until acknowledged with Stop"
        );
        s
    });
    let started = kiosk_free_clock();
    while !b.peek().up_on() {
        assert!(started.elapsed() < WATCHDOG_SLACK, "the run started");
        std::thread::yield_now();
    }
    let energised = started.elapsed();
    while b.peek().up_on() {
        assert!(
            started.elapsed() < energised + std::time::Duration::from_millis(300) + WATCHDOG_SLACK,
            "the watchdog released the relay while the caller hung"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let ran = started.elapsed() - energised;
    assert!(
        ran >= std::time::Duration::from_millis(290),
        "not before the maximum run time: {ran:?}"
    );
    assert!(!b.peek().down_on());
    assert_eq!(b.peek().violations, 0);
    resume.send(()).unwrap();
    let s = caller.join().expect("caller");
    drop(s);
    assert!(!b.peek().up_on() && !b.peek().down_on());
}

#[test]
fn a_run_stopped_in_time_is_left_alone_by_the_watchdog() {
    let b = Shared::default();
    let mut s = seat(&b, 500);
    for i in 0..8u64 {
        // Runs of 100 ms, each well inside the limit, back to back (800 ms in all): the watchdog
        // times each run on its own, not their sum.
        s.command(SeatCommand::Down, Millis(i * 200)).expect("down");
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(b.peek().down_on(), "run {i} still on");
        s.command(SeatCommand::Stop, Millis(i * 200 + 100)).expect("stop");
    }
    std::thread::sleep(std::time::Duration::from_millis(600));
    assert_eq!(s.poll(Millis(2000)).expect("poll").fault, None);
}

#[test]
fn a_panicking_owner_releases_the_relays() {
    let b = Shared::default();
    let board = b.clone();
    let owner = std::thread::spawn(move || {
        let mut s = seat(&board, 10_000);
        s.command(SeatCommand::Down, Millis(0)).expect("down");
        assert!(board.peek().down_on());
        panic!("the main loop panics with the seat moving");
    });
    assert!(owner.join().is_err(), "the owner panicked");
    assert!(!b.peek().up_on() && !b.peek().down_on());
}

/// The tests time the watchdog with the standard clock; `kiosk::clock` is not a dependency of
/// `hal`, and these are tests, not the core.
#[allow(clippy::disallowed_methods)]
fn kiosk_free_clock() -> std::time::Instant {
    std::time::Instant::now()
}
