//! Supervision end to end in simulation: a camera unplugged in the middle of a session puts the
//! kiosk out of service with the reason on screen within 2 s, and it comes back by itself within
//! 5 s of the replug, with no restart. The kiosk is the real shell (`kiosk::shell::Kiosk`) with a
//! `FaultyCamera` around a `SimCamera`, stepped on a virtual timeline the way `kiosk demo` steps it.
//!
//! Needs `scripts/setup.sh` (the shell loads the face models); fails with that message without.

use std::time::Duration;

use hal::sim::{FaultyCamera, SimCamera, SimCameraConfig, SimLights, SimSeat, Window};
use hal::{LightTable, Millis};
use kiosk::config::KioskConfig;
use kiosk::session::{Input, StateKind};
use kiosk::shell::payment::NoGateway;
use kiosk::shell::{Kiosk, Parts, ShellEvent};
use kiosk::vision::analyze::Analyzer;
use tests::fixtures;
use ui::Intent;

const UNPLUG_AT_MS: u64 = 4_000;
const REPLUG_AT_MS: u64 = 9_000;

#[test]
fn a_camera_unplugged_mid_session_is_out_of_service_then_recovers_without_restart() {
    let fx = fixtures().join("demo");
    let config = KioskConfig::load(&fx.join("kiosk.toml")).expect("fixture config");
    let paths = kiosk::runtime::setup().expect("ONNX Runtime and models (run scripts/setup.sh)");
    let analyzer = Analyzer::new(&paths).expect("face models");
    let dir = tempfile::tempdir().expect("tempdir");

    let mut sim = SimCamera::new(SimCameraConfig::default());
    sim.load_set("scan", &fx.join("pass/scan")).expect("scan frames");
    sim.show_preview_set("scan", Millis::ZERO).expect("show");
    let camera =
        FaultyCamera::new(sim, 7).unplug(Window::between(Millis(UNPLUG_AT_MS), Millis(REPLUG_AT_MS)));

    let origin = kiosk::clock::monotonic();
    let parts = Parts::from_config(&config, dir.path().to_path_buf(), 1_780_000_000).expect("config");
    let seat = SimSeat::default();
    let lights = SimLights::new(LightTable::default());
    let mut k =
        Kiosk::new(parts, analyzer, Box::new(NoGateway), camera, seat, lights, origin).expect("kiosk");

    // A student starts a session; the kiosk scans for the ticket with the camera.
    k.input(origin + Duration::from_millis(500), Input::Ui(Intent::Start));
    assert_eq!(k.session().state(), StateKind::Scan, "a session is under way");

    let mut now = origin + Duration::from_millis(500);
    let end = origin + Duration::from_millis(REPLUG_AT_MS + 8_000);
    let mut down_at = None;
    let mut up_at = None;
    let mut reason = None;
    while now < end {
        k.tick(now);
        let t = (now - origin).as_millis() as u64;
        for e in k.take_events() {
            match e {
                ShellEvent::DeviceDown { device, reason: r } if device == "camera" => {
                    down_at.get_or_insert(t);
                    reason = Some(r);
                }
                ShellEvent::DeviceUp { device } if device == "camera" => {
                    up_at.get_or_insert(t);
                }
                _ => {}
            }
        }
        if (UNPLUG_AT_MS..REPLUG_AT_MS).contains(&t) && down_at.is_some() {
            assert_eq!(k.session().state(), StateKind::OutOfService, "at {t} ms");
            let view = k.session().view();
            let text = ui::text::render(&view);
            assert!(
                text.contains("摄像头已断开") && text.contains("USB"),
                "reason and hint on screen: {text}"
            );
            match &view.screen {
                ui::Screen::OutOfService {
                    reason_en, hint_en, ..
                } => {
                    assert_eq!(reason_en, "camera disconnected");
                    assert!(hint_en.contains("USB cable"), "{hint_en}");
                }
                other => panic!("expected the out-of-service screen, got {other:?}"),
            }
        }
        if up_at.is_some() && k.session().state() == StateKind::Attract {
            break;
        }
        now = k.next_wakeup(now).max(now + Duration::from_millis(1));
    }
    let down_at = down_at.expect("the unplug was noticed");
    let up_at = up_at.expect("the replug was noticed");
    println!(
        "camera unplugged at {UNPLUG_AT_MS} ms: out of service after {} ms; replugged at {REPLUG_AT_MS} ms: back after {} ms",
        down_at - UNPLUG_AT_MS,
        up_at - REPLUG_AT_MS
    );
    assert!(
        down_at - UNPLUG_AT_MS <= 2_000,
        "down after {} ms",
        down_at - UNPLUG_AT_MS
    );
    assert_eq!(reason.as_deref(), Some("camera disconnected"));
    assert!(
        up_at >= REPLUG_AT_MS && up_at - REPLUG_AT_MS <= 5_000,
        "up at {up_at}"
    );
    assert_eq!(
        k.session().state(),
        StateKind::Attract,
        "the kiosk takes students again"
    );
    // And the camera really works again: the preview is being fetched.
    let t = Millis::from_duration(now - origin);
    assert!(hal::Camera::preview_frame(k.camera_mut(), t).is_ok());
}

#[test]
fn a_kiosk_short_of_disk_space_refuses_sessions_with_a_reason() {
    let fx = fixtures().join("demo");
    let config = KioskConfig::load(&fx.join("kiosk.toml")).expect("fixture config");
    let paths = kiosk::runtime::setup().expect("ONNX Runtime and models (run scripts/setup.sh)");
    let analyzer = Analyzer::new(&paths).expect("face models");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut sim = SimCamera::new(SimCameraConfig::default());
    sim.load_set("scan", &fx.join("pass/scan")).expect("scan frames");
    sim.show_preview_set("scan", Millis::ZERO).expect("show");
    let mut parts = Parts::from_config(&config, dir.path().to_path_buf(), 1_780_000_000).expect("config");
    // No disk has this much free space: the threshold is always crossed.
    parts.min_free_bytes = u64::MAX;
    let origin = kiosk::clock::monotonic();
    let mut k = Kiosk::new(
        parts,
        analyzer,
        Box::new(NoGateway),
        sim,
        SimSeat::default(),
        SimLights::new(LightTable::default()),
        origin,
    )
    .expect("kiosk");
    k.tick(origin);
    assert_eq!(k.session().state(), StateKind::OutOfService);
    let text = ui::text::render(&k.session().view());
    assert!(text.contains("存储空间不足"), "{text}");
    // A touch or a ticket in front of the camera starts nothing.
    k.input(origin + Duration::from_millis(500), Input::Ui(Intent::Start));
    k.tick(origin + Duration::from_secs(2));
    assert_eq!(k.session().state(), StateKind::OutOfService);
    assert!(
        k.take_events()
            .iter()
            .any(|e| matches!(e, ShellEvent::DeviceDown { device, .. } if device == "storage"))
    );
}
