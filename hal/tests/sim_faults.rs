//! Scenario tests of the fault injectors and the supervisor on a virtual timeline: camera
//! unplug and replug, seeded frame drops, a stalled seat, stuck limit switches, a stuck button.
//! The same seed must give the same run, step for step.

use hal::sim::{
    FaultyCamera, FaultySeat, SimButtons, SimCamera, SimCameraConfig, SimSeat, SimSeatConfig, StuckButton,
    Window,
};
use hal::{
    ButtonEvent, Buttons, Camera, DeviceEvent, DeviceId, Direction, Error as _, ErrorKind, Limit, Millis,
    Seat, SeatCommand, SeatFault, Supervisor, Switch,
};
use image::{Rgb, RgbImage};

fn camera() -> SimCamera {
    let mut cam = SimCamera::new(SimCameraConfig {
        preview_width: 8,
        preview_height: 6,
        frame_interval_ms: 40,
        ..SimCameraConfig::default()
    });
    let frames = (0..3)
        .map(|i| RgbImage::from_pixel(8, 6, Rgb([i * 80, 0, 0])))
        .collect();
    cam.add_images("live", frames).expect("add");
    cam.show_preview_set("live", Millis(0)).expect("show");
    cam
}

#[test]
fn unplug_then_replug_reports_down_then_up_after_reconnect() {
    let mut cam = FaultyCamera::new(camera(), 1).unplug(Window::between(Millis(1000), Millis(3000)));
    let mut sup = Supervisor::default();
    let mut events = Vec::new();
    // The shell's loop: a preview frame every 100 ms; while the camera is down, a reconnect
    // attempt every 500 ms.
    for t in (0..5000).step_by(100) {
        let now = Millis(t);
        if sup.is_up(DeviceId::Camera) {
            let r = cam.preview_frame(now);
            events.extend(sup.record(DeviceId::Camera, &r).map(|e| (t, e)));
        } else if t % 500 == 0 {
            let r = cam.reconnect(now);
            events.extend(sup.record(DeviceId::Camera, &r).map(|e| (t, e)));
        }
    }
    assert_eq!(
        events,
        vec![
            (
                1000,
                DeviceEvent::Down {
                    device: DeviceId::Camera,
                    kind: ErrorKind::Disconnected
                }
            ),
            (
                3000,
                DeviceEvent::Up {
                    device: DeviceId::Camera
                }
            ),
        ]
    );
    assert!(cam.is_connected());
}

#[test]
fn after_the_window_the_camera_stays_down_until_reconnected() {
    let mut cam = FaultyCamera::new(camera(), 1).unplug(Window::between(Millis(10), Millis(20)));
    assert!(cam.preview_frame(Millis(0)).is_ok());
    let err = cam.preview_frame(Millis(10)).expect_err("unplugged");
    assert_eq!(err.kind(), ErrorKind::Disconnected);
    assert!(!cam.is_connected());
    assert_eq!(
        cam.reconnect(Millis(15)).map_err(|e| e.kind()),
        Err(ErrorKind::Disconnected)
    );
    assert_eq!(
        cam.capture_still(Millis(25)).map_err(|e| e.kind()).err(),
        Some(ErrorKind::Disconnected)
    );
    assert_eq!(
        cam.lock_exposure(true).map_err(|e| e.kind()),
        Err(ErrorKind::Disconnected)
    );
    cam.reconnect(Millis(25)).expect("replugged");
    assert!(cam.preview_frame(Millis(26)).is_ok());
    cam.lock_exposure(true).expect("lock");
    assert!(cam.inner().exposure_locked());
}

fn drop_pattern(seed: u64) -> Vec<bool> {
    let mut cam = FaultyCamera::new(camera(), seed).drop_frames(300, false);
    (0..200)
        .map(|t| cam.preview_frame(Millis(t * 40)).is_ok())
        .collect()
}

#[test]
fn frame_drops_are_transient_and_deterministic_per_seed() {
    let a = drop_pattern(42);
    assert_eq!(a, drop_pattern(42));
    assert_ne!(a, drop_pattern(43));
    let dropped = a.iter().filter(|ok| !**ok).count();
    assert!((30..90).contains(&dropped), "{dropped} of 200 at 30 %");

    let mut cam = FaultyCamera::new(camera(), 42).drop_frames(1000, false);
    let err = cam.preview_frame(Millis(0)).expect_err("always drops");
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(err.kind().is_transient());
    // Stills are spared unless asked for.
    assert!(cam.capture_still(Millis(0)).is_ok());
    assert_eq!(cam.dropped(), 1);
}

#[test]
fn injectors_compose_and_can_wrap_a_borrowed_twin() {
    let mut sim = camera();
    {
        let mut cam = FaultyCamera::new(FaultyCamera::new(&mut sim, 7).drop_frames(1000, true), 8)
            .unplug(Window::between(Millis(100), Millis(200)));
        // The outer unplug wins inside its window; outside it the inner drops show through.
        assert_eq!(
            cam.preview_frame(Millis(150)).map_err(|e| e.kind()).err(),
            Some(ErrorKind::Disconnected)
        );
        cam.reconnect(Millis(200)).expect("reconnect");
        assert_eq!(
            cam.preview_frame(Millis(250)).map_err(|e| e.kind()).err(),
            Some(ErrorKind::Timeout)
        );
    }
    // The borrowed twin is still ours to inspect and script.
    assert_eq!(sim.showing(), Some("live"));
}

fn faulty_seat() -> FaultySeat<SimSeat> {
    let config = SimSeatConfig {
        max_run_ms: 10_000,
        ..SimSeatConfig::default()
    };
    FaultySeat::new(SimSeat::new(config), config.max_run_ms, 5)
}

#[test]
fn a_stalled_seat_reports_a_fault_after_the_maximum_run_time() {
    let mut seat = faulty_seat().stall(Window::between(Millis(0), Millis(5000)));
    let mut sup = Supervisor::default();
    seat.command(SeatCommand::Up, Millis(1000)).expect("up accepted");
    let st = seat.poll(Millis(6000)).expect("poll");
    assert_eq!(
        (st.moving, st.position_mm, st.fault),
        (Some(Direction::Up), Some(100), None)
    );
    let st = seat.poll(Millis(11_000)).expect("poll");
    assert_eq!((st.moving, st.position_mm), (None, Some(100)));
    assert_eq!(st.fault, Some(SeatFault::RunTimeExceeded));
    // The shell maps a latched fault to a Fault outcome for the supervisor.
    let outcome = st.health();
    assert_eq!(
        sup.observe(DeviceId::Seat, outcome),
        Some(DeviceEvent::Down {
            device: DeviceId::Seat,
            kind: ErrorKind::Fault
        })
    );
    // Acknowledge; outside the stall window the motor moves again.
    seat.command(SeatCommand::Stop, Millis(11_000)).expect("stop");
    seat.command(SeatCommand::Up, Millis(11_000)).expect("up");
    let st = seat.poll(Millis(12_000)).expect("poll");
    assert_eq!((st.position_mm, st.fault), (Some(125), None));
    assert_eq!(
        sup.observe(DeviceId::Seat, Ok(())),
        Some(DeviceEvent::Up {
            device: DeviceId::Seat
        })
    );
}

#[test]
fn a_stalled_run_still_obeys_stop_first() {
    let mut seat = faulty_seat().stall(Window::from(Millis(0)));
    seat.command(SeatCommand::Up, Millis(0)).expect("up");
    seat.command(SeatCommand::Down, Millis(100)).expect("down");
    assert_eq!(seat.poll(Millis(200)).expect("poll").moving, None);
}

#[test]
fn a_limit_switch_stuck_closed_refuses_that_direction() {
    let mut seat = faulty_seat().stuck_limit(Limit::Top, Window::from(Millis(1000)));
    seat.command(SeatCommand::Up, Millis(0)).expect("up");
    assert_eq!(seat.poll(Millis(400)).expect("poll").position_mm, Some(110));
    // The switch sticks: the run stops at the next poll, and Up is refused from then on.
    let st = seat.poll(Millis(1000)).expect("poll");
    assert_eq!((st.moving, st.at_top, st.position_mm), (None, true, Some(125)));
    let err = seat
        .command(SeatCommand::Up, Millis(1100))
        .expect_err("top reads closed");
    assert_eq!(err.kind(), ErrorKind::LimitReached);
    seat.command(SeatCommand::Down, Millis(1100))
        .expect("down is fine");
}

#[test]
fn both_limits_closed_is_a_fault() {
    let mut seat = faulty_seat()
        .stuck_limit(Limit::Top, Window::from(Millis(0)))
        .stuck_limit(Limit::Bottom, Window::from(Millis(0)));
    let st = seat.poll(Millis(0)).expect("poll");
    assert_eq!(st.fault, Some(SeatFault::LimitSwitchConflict));
    assert_eq!(
        seat.command(SeatCommand::Down, Millis(1)).map_err(|e| e.kind()),
        Err(ErrorKind::LimitReached)
    );
}

#[test]
fn seat_timeouts_are_deterministic_per_seed() {
    let pattern = |seed| {
        let config = SimSeatConfig::default();
        let mut seat = FaultySeat::new(SimSeat::new(config), config.max_run_ms, seed).timeouts(250);
        (0..100).map(|t| seat.poll(Millis(t)).is_ok()).collect::<Vec<_>>()
    };
    assert_eq!(pattern(3), pattern(3));
    assert_ne!(pattern(3), pattern(4));
}

#[test]
fn a_stuck_button_reads_pressed_for_its_window_then_the_truth() {
    let mut raw = SimButtons::new();
    raw.press(Switch::SeatUp, Millis(100), 100) // before: passes through
        .press(Switch::SeatUp, Millis(1500), 100) // inside: swallowed
        .press(Switch::SeatUp, Millis(1900), 500) // straddles the end: release seen at 2400
        .press(Switch::SeatDown, Millis(1200), 50); // another switch: untouched
    let mut b = StuckButton::new(raw, Switch::SeatUp, Window::between(Millis(1000), Millis(2000)));
    let mut got = Vec::new();
    for t in (0..3000).step_by(100) {
        got.extend(b.poll(Millis(t)).expect("infallible"));
    }
    use ButtonEvent as E;
    assert_eq!(
        got,
        vec![
            E::pressed(Switch::SeatUp, Millis(100)),
            E::released(Switch::SeatUp, Millis(200)),
            E::pressed(Switch::SeatUp, Millis(1000)),
            E::pressed(Switch::SeatDown, Millis(1200)),
            E::released(Switch::SeatDown, Millis(1250)),
            E::released(Switch::SeatUp, Millis(2400)),
        ]
    );
}

#[test]
fn a_dead_limit_switch_is_caught_by_the_maximum_run_time() {
    // Starts at 100 mm, 25 mm/s: the top (200 mm) is reached at 4 s, the run timer ends at 10 s.
    let mut seat = faulty_seat().dead_limit(Limit::Top, Window::from(Millis(0)));
    seat.command(SeatCommand::Up, Millis(0)).expect("up");
    let st = seat.poll(Millis(6000)).expect("poll");
    assert_eq!(
        (st.moving, st.at_top, st.position_mm),
        (Some(Direction::Up), false, Some(200))
    );
    let st = seat.poll(Millis(10_000)).expect("poll");
    assert_eq!((st.moving, st.fault), (None, Some(SeatFault::RunTimeExceeded)));
    // Up again at the end stop: accepted (the switch says nothing), and bounded again.
    seat.command(SeatCommand::Stop, Millis(10_000)).expect("stop");
    seat.command(SeatCommand::Up, Millis(10_000)).expect("up");
    assert_eq!(
        seat.poll(Millis(15_000)).expect("poll").moving,
        Some(Direction::Up)
    );
    let st = seat.poll(Millis(20_000)).expect("poll");
    assert_eq!((st.moving, st.fault), (None, Some(SeatFault::RunTimeExceeded)));
}
