//! `kiosk run` with a device from `[devices]` that is not there at start: the kiosk comes up (no
//! exit), out of service with the device's own reason and hint, and recovers by itself when the
//! device appears; the recovered serial scanner's lines then reach the session as scanned tickets.
//!
//! The device is the serial barcode scanner: its path is a symlink the test creates to a pty
//! (`serialport::TTYPort::pair()`) after start, which is what udev does when a scanner is plugged
//! in. The camera is the simulated one showing a face without any QR code, so the ticket can only
//! come through the scanner. Needs `scripts/setup.sh` (ONNX Runtime and the models).

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kiosk::clock::monotonic;
use kiosk::shell::run::{RunOptions, run_with};
use serialport::SerialPort;
use ui::{Frontend, Intent, Picture, Screen, View};

fn demo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/demo")
}

/// A screen nobody touches: it records what it is shown.
struct Recorder(Arc<Mutex<Vec<(Instant, View)>>>);

impl Frontend for Recorder {
    fn present(&mut self, view: &View, _pictures: Vec<Picture>) {
        self.0.lock().unwrap().push((monotonic(), view.clone()));
    }
    fn intents(&mut self) -> Vec<Intent> {
        Vec::new()
    }
}

/// Waits up to `within` for a presented view that `pred` accepts; returns when it was shown.
fn wait_for(
    views: &Mutex<Vec<(Instant, View)>>,
    within: Duration,
    what: &str,
    pred: impl Fn(&Screen) -> bool,
) -> Instant {
    let deadline = monotonic() + within;
    loop {
        if let Some((t, _)) = views.lock().unwrap().iter().find(|(_, v)| pred(&v.screen)) {
            return *t;
        }
        assert!(
            monotonic() < deadline,
            "{what} not shown within {within:?}: {:?}",
            views
                .lock()
                .unwrap()
                .iter()
                .map(|(_, v)| &v.screen)
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_scanner_absent_at_start_is_out_of_service_then_recovers_and_scans() {
    let dir = tempfile::tempdir().unwrap();
    // The camera sees a seated student and no ticket.
    let frames = dir.path().join("frames");
    std::fs::create_dir_all(frames.join("scan")).unwrap();
    std::fs::copy(demo().join("pass/shots/2.jpg"), frames.join("scan/01-face.jpg")).unwrap();
    std::fs::copy(demo().join("pass/scenario.toml"), frames.join("scenario.toml")).unwrap();
    // What the scanner will read: the fixture ticket's QR text, decoded from the fixture photo.
    let phone = image::open(demo().join("pass/scan/01-phone.jpg"))
        .unwrap()
        .to_rgb8();
    let payload = hal::qr::decode_rgb(&phone)
        .into_iter()
        .next()
        .expect("the fixture QR decodes");

    let scanner = dir.path().join("kiosk-scanner");
    let base = std::fs::read_to_string(demo().join("kiosk.toml")).unwrap();
    let config = dir.path().join("kiosk.toml");
    std::fs::write(
        &config,
        format!(
            "{base}\n[devices.camera]\ndriver = \"sim\"\nframes = {:?}\n\
             [devices.qr]\ndriver = \"serial\"\npath = {:?}\n",
            frames.display().to_string(),
            scanner.display().to_string()
        ),
    )
    .unwrap();

    let views: Arc<Mutex<Vec<(Instant, View)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let opts = RunOptions {
        config,
        data_dir: Some(dir.path().join("data")),
        run_for: Some(Duration::from_secs(180)),
        stop: Some(stop.clone()),
        ..RunOptions::default()
    };
    let kiosk = {
        let views = views.clone();
        std::thread::spawn(move || run_with(&opts, Some(Box::new(Recorder(views)))))
    };

    // Up, out of service, saying which device and what to check.
    let out = wait_for(&views, Duration::from_secs(120), "OutOfService", |s| {
        matches!(s, Screen::OutOfService { .. })
    });
    let (reason_en, hint_en) = views
        .lock()
        .unwrap()
        .iter()
        .find_map(|(_, v)| match &v.screen {
            Screen::OutOfService {
                reason_en, hint_en, ..
            } => Some((reason_en.clone(), hint_en.clone())),
            _ => None,
        })
        .unwrap();
    assert_eq!(reason_en, "barcode scanner disconnected");
    assert!(hint_en.contains("scanner"), "{hint_en}");
    assert!(!kiosk.is_finished(), "the kiosk did not exit");

    // The scanner is plugged in: udev's symlink appears.
    let (mut master, slave) = serialport::TTYPort::pair().unwrap();
    std::os::unix::fs::symlink(slave.name().unwrap(), &scanner).unwrap();
    let plugged = monotonic();
    let back = wait_for(&views, Duration::from_secs(10), "Attract after the plug", |s| {
        matches!(s, Screen::Attract)
    });
    assert!(back > out);
    let recovery = back.saturating_duration_since(plugged);
    eprintln!("back in service {recovery:?} after the scanner appeared");
    assert!(recovery < Duration::from_secs(3), "{recovery:?}");

    // A scan: the ticket line reaches the session and the student is asked to confirm.
    master.write_all(&payload).unwrap();
    master.write_all(b"\r\n").unwrap();
    wait_for(&views, Duration::from_secs(10), "Confirm after the scan", |s| {
        matches!(s, Screen::Confirm { .. })
    });

    stop.store(true, Ordering::Relaxed);
    kiosk.join().unwrap().expect("kiosk run ends cleanly");
    drop(slave);
}
