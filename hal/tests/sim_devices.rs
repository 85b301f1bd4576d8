//! The twins driven only through the traits, as the shell will drive the real devices: generic
//! consumers for lights, buttons and QR sources, and the camera-to-QR pipeline with a decoder
//! passed as a function pointer (the kiosk passes `hal::qr::decode`).

use hal::sim::{SimButtons, SimCamera, SimCameraConfig, SimLights, SimQrScanner};
use hal::{
    ButtonEvent, Buttons, Camera, CameraQr, ChannelLevels, LightMode, LightTable, Lights, Millis, QrSource,
    Switch,
};
use image::{GrayImage, Rgb, RgbImage};

/// A consumer that knows only the trait.
fn shoot_levels<L: Lights>(lights: &mut L, glasses: bool, now: Millis) -> ChannelLevels {
    let mode = if glasses {
        LightMode::ShootGlasses
    } else {
        LightMode::Shoot
    };
    lights
        .set_mode(mode, now)
        .map_err(|_| ())
        .expect("sim lights never fail");
    lights.levels()
}

#[test]
fn lights_apply_the_configured_table_per_mode() {
    let table = LightTable {
        shoot_glasses: ChannelLevels {
            key_left: 500,
            key_right: 520,
            background: 800,
        },
        ..LightTable::default()
    };
    let mut lights = SimLights::new(table);
    assert_eq!(shoot_levels(&mut lights, false, Millis(0)), table.shoot);
    assert_eq!(shoot_levels(&mut lights, true, Millis(10)), table.shoot_glasses);
    assert_eq!(
        lights.history(),
        &[
            (Millis(0), LightMode::Shoot),
            (Millis(10), LightMode::ShootGlasses)
        ]
    );
}

fn drain<B: Buttons>(b: &mut B, until: u64) -> Vec<ButtonEvent> {
    (0..=until)
        .step_by(50)
        .flat_map(|t| b.poll(Millis(t)).map_err(|_| ()).expect("sim buttons never fail"))
        .collect()
}

#[test]
fn service_key_on_and_off_are_events_like_buttons() {
    let mut b = SimButtons::new();
    b.press(Switch::ServiceKey, Millis(100), 1000);
    assert_eq!(
        drain(&mut b, 2000),
        vec![
            ButtonEvent::pressed(Switch::ServiceKey, Millis(100)),
            ButtonEvent::released(Switch::ServiceKey, Millis(1100)),
        ]
    );
}

fn first_scan<Q: QrSource>(q: &mut Q, until: u64) -> Option<(u64, Vec<u8>)> {
    (0..=until).step_by(10).find_map(|t| {
        q.poll(Millis(t))
            .map_err(|_| ())
            .expect("sim never fails")
            .map(|p| (t, p))
    })
}

/// Stands in for `hal::qr::decode`: "decodes" a frame whose top-left pixel is white.
fn fake_decode(img: &GrayImage) -> Vec<Vec<u8>> {
    if img.get_pixel(0, 0).0[0] > 200 {
        vec![b"TICKET".to_vec()]
    } else {
        vec![]
    }
}

#[test]
fn camera_frames_feed_camera_qr_and_a_code_is_reported_once() {
    let mut cam = SimCamera::new(SimCameraConfig {
        preview_width: 16,
        preview_height: 12,
        frame_interval_ms: 40,
        ..SimCameraConfig::default()
    });
    let blank = RgbImage::from_pixel(16, 12, Rgb([0, 0, 0]));
    let mut phone = blank.clone();
    phone.put_pixel(0, 0, Rgb([255, 255, 255]));
    cam.add_images("scan", vec![blank.clone(), blank, phone])
        .expect("add");
    cam.show_preview_set("scan", Millis(0)).expect("show");

    let mut qr = CameraQr::new(fake_decode);
    let mut scans = Vec::new();
    for t in (0..400).step_by(40) {
        let frame = cam.preview_frame(Millis(t)).expect("frame");
        qr.offer(&frame);
        if let Ok(Some(p)) = qr.poll(Millis(t)) {
            scans.push((t, p));
        }
    }
    // The phone frame is third in the cycle (t = 80, 200, 320); within 3 s it counts once.
    assert_eq!(scans, vec![(80, b"TICKET".to_vec())]);
}

#[test]
fn serial_scanner_twin_delivers_scripted_payloads() {
    let mut s = SimQrScanner::new();
    s.scan_at(Millis(250), b"TICKET".to_vec());
    assert_eq!(first_scan(&mut s, 1000), Some((250, b"TICKET".to_vec())));
    assert_eq!(first_scan(&mut s, 1000), None);
}
