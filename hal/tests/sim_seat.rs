//! Scenario tests of `SimSeat`: speed, limits, the maximum run time, and the interlock (an
//! opposite command stops first, never both directions).

use hal::sim::{SimSeat, SimSeatConfig, SimSeatError};
use hal::{Direction, Error as _, ErrorKind, Millis, Seat, SeatCommand, SeatFault};
use proptest::prelude::*;

fn seat(start_mm: u16) -> SimSeat {
    SimSeat::new(SimSeatConfig {
        travel_mm: 200,
        speed_mm_per_s: 25,
        max_run_ms: 10_000,
        position_sensor: true,
        start_mm,
    })
}

#[test]
fn moves_at_its_speed() {
    let mut s = seat(100);
    s.command(SeatCommand::Up, Millis(0)).expect("up");
    let st = s.poll(Millis(2000)).expect("poll");
    assert_eq!(st.position_mm, Some(150));
    assert_eq!(st.moving, Some(Direction::Up));
    s.command(SeatCommand::Stop, Millis(2000)).expect("stop");
    s.command(SeatCommand::Down, Millis(3000)).expect("down");
    let st = s.poll(Millis(3400)).expect("poll");
    assert_eq!(st.position_mm, Some(140));
}

#[test]
fn stops_at_the_top_limit_and_refuses_to_go_further() {
    let mut s = seat(100);
    s.command(SeatCommand::Up, Millis(0)).expect("up");
    // Polled late: the seat still stopped at the limit, after 4 s of travel.
    let st = s.poll(Millis(9000)).expect("poll");
    assert_eq!(
        (st.position_mm, st.moving, st.at_top, st.fault),
        (Some(200), None, true, None)
    );
    assert_eq!(s.driven_ms(), 4000);
    let err = s.command(SeatCommand::Up, Millis(9100)).expect_err("at limit");
    assert_eq!(err, SimSeatError::AtLimit(Direction::Up));
    assert_eq!(err.kind(), ErrorKind::LimitReached);
    s.command(SeatCommand::Down, Millis(9100)).expect("down is fine");
}

#[test]
fn stops_at_the_bottom_limit() {
    let mut s = seat(20);
    s.command(SeatCommand::Down, Millis(0)).expect("down");
    let st = s.poll(Millis(5000)).expect("poll");
    assert_eq!((st.position_mm, st.moving, st.at_bottom), (Some(0), None, true));
    assert_eq!(
        s.command(SeatCommand::Down, Millis(5000)).map_err(|e| e.kind()),
        Err(ErrorKind::LimitReached)
    );
}

#[test]
fn never_runs_longer_than_the_maximum_run_time_even_when_polled_late() {
    let mut s = SimSeat::new(SimSeatConfig {
        travel_mm: 1000,
        speed_mm_per_s: 10,
        max_run_ms: 5000,
        position_sensor: true,
        start_mm: 100,
    });
    s.command(SeatCommand::Up, Millis(0)).expect("up");
    let st = s.poll(Millis(60_000)).expect("poll");
    assert_eq!(st.moving, None);
    assert_eq!(st.fault, Some(SeatFault::RunTimeExceeded));
    assert_eq!(st.position_mm, Some(150));
    assert_eq!(s.driven_ms(), 5000);
    // The next command acknowledges the fault.
    s.command(SeatCommand::Stop, Millis(60_000)).expect("stop");
    assert_eq!(s.poll(Millis(60_001)).expect("poll").fault, None);
}

#[test]
fn repeating_up_does_not_extend_the_run() {
    let mut s = SimSeat::new(SimSeatConfig {
        travel_mm: 1000,
        max_run_ms: 5000,
        ..SimSeatConfig::default()
    });
    for t in [0, 2000, 4000] {
        s.command(SeatCommand::Up, Millis(t)).expect("up");
    }
    let st = s.poll(Millis(5000)).expect("poll");
    assert_eq!(st.moving, None);
    assert_eq!(st.fault, Some(SeatFault::RunTimeExceeded));
}

#[test]
fn up_then_down_stops_first() {
    let mut s = seat(100);
    s.command(SeatCommand::Up, Millis(0)).expect("up");
    s.command(SeatCommand::Down, Millis(400)).expect("down");
    let st = s.poll(Millis(1000)).expect("poll");
    assert_eq!(st.moving, None);
    assert_eq!(st.position_mm, Some(110));
    // A second Down now goes down.
    s.command(SeatCommand::Down, Millis(1000)).expect("down");
    assert_eq!(s.poll(Millis(1400)).expect("poll").position_mm, Some(100));
}

#[test]
fn go_to_needs_a_sensor_and_a_reachable_height() {
    let mut blind = SimSeat::new(SimSeatConfig {
        position_sensor: false,
        ..SimSeatConfig::default()
    });
    let err = blind.go_to(50, Millis(0)).expect_err("no sensor");
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(blind.poll(Millis(0)).expect("poll").position_mm, None);

    let mut s = seat(100);
    assert_eq!(
        s.go_to(201, Millis(0)).map_err(|e| e.kind()),
        Err(ErrorKind::InvalidInput)
    );
    s.go_to(50, Millis(0)).expect("go_to");
    assert_eq!(s.poll(Millis(1000)).expect("poll").moving, Some(Direction::Down));
    let st = s.poll(Millis(5000)).expect("poll");
    assert_eq!((st.position_mm, st.moving, st.fault), (Some(50), None, None));
    assert_eq!(s.driven_ms(), 2000);
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Up,
    Down,
    Stop,
    GoTo(u16),
    Poll,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        Just(Op::Up),
        Just(Op::Down),
        Just(Op::Stop),
        (0u16..=220).prop_map(Op::GoTo),
        Just(Op::Poll),
    ]
}

proptest! {
    /// Whatever is commanded and however irregularly it is polled: the seat stays within its
    /// travel, no run outlasts the maximum, and an opposite command never reverses directly.
    #[test]
    fn seat_safety_invariants(
        ops in proptest::collection::vec((op(), 0u64..4000), 1..60),
        start in 0u16..=200,
    ) {
        let max_run = 10_000;
        let mut s = seat(start);
        let mut now = 0u64;
        let mut run_started: Option<(Direction, u64)> = None;
        for (op, dt) in ops {
            now += dt;
            let before = s.poll(Millis(now)).expect("sim poll never fails");
            let _ = match op {
                Op::Up => s.command(SeatCommand::Up, Millis(now)),
                Op::Down => s.command(SeatCommand::Down, Millis(now)),
                Op::Stop => s.command(SeatCommand::Stop, Millis(now)),
                Op::GoTo(mm) => s.go_to(mm, Millis(now)),
                Op::Poll => Ok(()),
            };
            let after = s.poll(Millis(now)).expect("sim poll never fails");
            if let (Some(b), Some(a), Op::Up | Op::Down) = (before.moving, after.moving, op) {
                prop_assert_eq!(a, b, "a direction command must never reverse a running motor");
            }
            for st in [before, after] {
                let mm = st.position_mm.expect("sensor");
                prop_assert!(mm <= 200);
                prop_assert!(!(st.at_top && st.at_bottom));
            }
            // Track when the current run started, as an observer of the status would.
            run_started = match (after.moving, run_started) {
                (None, _) => None,
                (Some(d), Some((rd, t))) if d == rd && before.moving == Some(d) => Some((rd, t)),
                (Some(d), _) => Some((d, now)),
            };
            if let Some((_, t)) = run_started {
                prop_assert!(now - t < max_run, "a run outlasted the maximum run time");
            }
        }
        // However it ended, the motor stops within the maximum run time without any command.
        let st = s.poll(Millis(now + max_run)).expect("poll");
        prop_assert_eq!(st.moving, None);
    }
}

#[test]
fn repeated_go_to_in_the_same_direction_does_not_extend_the_run() {
    let mut s = SimSeat::new(SimSeatConfig {
        travel_mm: 1000,
        speed_mm_per_s: 10,
        max_run_ms: 5000,
        position_sensor: true,
        start_mm: 0,
    });
    for (t, mm) in [(0, 900), (2000, 950), (4000, 1000)] {
        s.go_to(mm, Millis(t)).expect("go_to");
    }
    let st = s.poll(Millis(20_000)).expect("poll");
    assert_eq!(
        (st.moving, st.fault, st.position_mm),
        (None, Some(SeatFault::RunTimeExceeded), Some(50))
    );
}
