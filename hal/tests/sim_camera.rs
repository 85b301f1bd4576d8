//! Scenario tests of `SimCamera`: folders play in name order and cycle, stills come in order at
//! full resolution, scripts switch sets by phase, and broken files are named in the error.
//!
//! Uses small generated images in temp dirs. The shared kiosk corpus is used only when
//! `HAL_TESTDATA_DIR` points at it (opt-in, so CI without it is explicit, not silently skipped).

use std::path::Path;

use hal::sim::{FrameScript, PreviewFit, SimCamera, SimCameraConfig, SimCameraError};
use hal::{Camera, Error as _, ErrorKind, Millis};
use image::{Rgb, RgbImage};

const RED: Rgb<u8> = Rgb([255, 0, 0]);
const GREEN: Rgb<u8> = Rgb([0, 255, 0]);
const BLUE: Rgb<u8> = Rgb([0, 0, 255]);

fn small_config() -> SimCameraConfig {
    SimCameraConfig {
        preview_width: 32,
        preview_height: 24,
        fit: PreviewFit::Crop,
        frame_interval_ms: 100,
    }
}

fn write(dir: &Path, name: &str, w: u32, h: u32, colour: Rgb<u8>) {
    RgbImage::from_pixel(w, h, colour)
        .save(dir.join(name))
        .expect("write test image");
}

fn centre(frame: &hal::Frame) -> Rgb<u8> {
    let (w, h) = frame.image.dimensions();
    *frame.image.get_pixel(w / 2, h / 2)
}

/// Three colours written out of name order, plus a file that is not a frame.
fn three_colour_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "c.png", 64, 36, BLUE);
    write(dir.path(), "a.png", 64, 36, RED);
    write(dir.path(), "b.png", 64, 36, GREEN);
    std::fs::write(dir.path().join("README.md"), "not a frame").expect("write readme");
    dir
}

#[test]
fn preview_plays_the_folder_in_name_order_and_cycles() {
    let dir = three_colour_dir();
    let mut cam = SimCamera::new(small_config());
    assert_eq!(cam.load_set("framing", dir.path()).ok(), Some(3));
    cam.show_preview_set("framing", Millis(1000)).expect("show");

    let colours: Vec<_> = [1000, 1100, 1200, 1300, 1450]
        .into_iter()
        .map(|t| centre(&cam.preview_frame(Millis(t)).expect("frame")))
        .collect();
    assert_eq!(colours, vec![RED, GREEN, BLUE, RED, GREEN]);

    let f = cam.preview_frame(Millis(1500)).expect("frame");
    assert_eq!(f.image.dimensions(), (32, 24));
    assert_eq!(f.at, Millis(1500));
}

#[test]
fn same_frame_interval_gives_the_same_seq() {
    let dir = three_colour_dir();
    let mut cam = SimCamera::new(small_config());
    cam.load_set("s", dir.path()).expect("load");
    cam.show_preview_set("s", Millis(0)).expect("show");
    let a = cam.preview_frame(Millis(10)).expect("frame");
    let b = cam.preview_frame(Millis(90)).expect("frame");
    let c = cam.preview_frame(Millis(100)).expect("frame");
    assert_eq!(a.seq, b.seq);
    assert_eq!(a.at, Millis(0));
    assert_eq!(c.seq, a.seq + 1);
    assert_eq!(c.at, Millis(100));
}

#[test]
fn stills_come_in_order_at_full_resolution_and_wrap() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "still_01.png", 160, 90, RED);
    write(dir.path(), "still_02.png", 160, 90, GREEN);
    let mut cam = SimCamera::new(small_config());
    cam.load_set("stills", dir.path()).expect("load");
    cam.use_stills("stills", 0).expect("stills");
    let got: Vec<_> = (0..3)
        .map(|i| cam.capture_still(Millis(i * 10)).expect("still"))
        .collect();
    assert!(got.iter().all(|f| f.image.dimensions() == (160, 90)));
    assert_eq!(got.iter().map(centre).collect::<Vec<_>>(), vec![RED, GREEN, RED]);
    assert!(got[0].seq < got[1].seq && got[1].seq < got[2].seq);
}

#[test]
fn without_a_still_set_the_still_is_the_showing_frame_at_full_resolution() {
    let dir = three_colour_dir();
    let mut cam = SimCamera::new(small_config());
    cam.load_set("s", dir.path()).expect("load");
    cam.show_preview_set("s", Millis(0)).expect("show");
    let still = cam.capture_still(Millis(150)).expect("still");
    assert_eq!(still.image.dimensions(), (64, 36));
    assert_eq!(centre(&still), GREEN);
}

#[test]
fn script_switches_sets_per_phase_and_picks_still_k() {
    let root = tempfile::tempdir().expect("tempdir");
    for (sub, colour) in [("scan", RED), ("framing", GREEN)] {
        std::fs::create_dir(root.path().join(sub)).expect("mkdir");
        write(&root.path().join(sub), "0001.png", 64, 48, colour);
    }
    let stills = root.path().join("stills");
    std::fs::create_dir(&stills).expect("mkdir");
    for (i, colour) in [RED, GREEN, BLUE].into_iter().enumerate() {
        write(&stills, &format!("{i}.png"), 64, 48, colour);
    }

    let mut cam = SimCamera::new(small_config());
    assert_eq!(
        cam.load_sets(root.path()).expect("load sets"),
        vec!["framing", "scan", "stills"]
    );
    cam.set_script(
        FrameScript::new()
            .phase("scan", "scan")
            .phase("framing", "framing")
            .phase_with_still("shoot", "framing", "stills", 2),
    );

    cam.enter_phase("scan", Millis(0)).expect("scan");
    assert_eq!(centre(&cam.preview_frame(Millis(0)).expect("frame")), RED);
    cam.enter_phase("framing", Millis(500)).expect("framing");
    assert_eq!(centre(&cam.preview_frame(Millis(500)).expect("frame")), GREEN);
    cam.enter_phase("shoot", Millis(900)).expect("shoot");
    assert_eq!(centre(&cam.capture_still(Millis(900)).expect("still")), BLUE);
    assert_eq!(centre(&cam.capture_still(Millis(950)).expect("still")), RED);

    let err = cam.enter_phase("pay", Millis(1000)).expect_err("unknown phase");
    assert!(matches!(err, SimCameraError::UnknownPhase(ref p) if p == "pay"));
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(cam.showing(), Some("framing"));
}

#[test]
fn a_file_that_is_not_an_image_is_named_when_loading() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "0001.png", 8, 8, RED);
    std::fs::write(dir.path().join("0002_broken.jpg"), b"this is not a jpeg").expect("write");
    let mut cam = SimCamera::new(small_config());
    let err = cam.load_set("s", dir.path()).expect_err("broken file");
    assert!(matches!(err, SimCameraError::Decode { .. }));
    assert!(err.to_string().contains("0002_broken.jpg"), "{err}");
}

#[test]
fn a_truncated_file_is_named_when_first_played() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("0001_truncated.png");
    // A noisy image, so the PNG body is long enough to cut in half after the header.
    let img = RgbImage::from_fn(64, 64, |x, y| Rgb([(x * 7 + y * 13) as u8, (x * y) as u8, 3]));
    img.save(&path).expect("write");
    let bytes = std::fs::read(&path).expect("read");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).expect("truncate");

    let mut cam = SimCamera::new(small_config());
    cam.load_set("s", dir.path()).expect("header is fine");
    cam.show_preview_set("s", Millis(0)).expect("show");
    let err = cam.preview_frame(Millis(0)).expect_err("body is broken");
    assert!(err.to_string().contains("0001_truncated.png"), "{err}");
    assert_eq!(err.kind(), ErrorKind::Fault);
}

#[test]
fn empty_folder_and_unknown_set_are_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cam = SimCamera::new(small_config());
    assert!(matches!(
        cam.load_set("s", dir.path()),
        Err(SimCameraError::EmptySet { .. })
    ));
    assert!(matches!(
        cam.show_preview_set("nope", Millis(0)),
        Err(SimCameraError::UnknownSet(_))
    ));
    assert!(matches!(
        cam.preview_frame(Millis(0)),
        Err(SimCameraError::NothingShowing)
    ));
}

#[test]
fn a_16_9_jpeg_becomes_a_4_3_preview_by_centre_crop() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Sides that a 4:3 crop removes are red; the centre is blue.
    let img = RgbImage::from_fn(320, 180, |x, _| if (40..280).contains(&x) { BLUE } else { RED });
    img.save(dir.path().join("wide.jpg")).expect("write jpeg");
    let mut cam = SimCamera::default();
    cam.load_set("s", dir.path()).expect("load");
    cam.show_preview_set("s", Millis(0)).expect("show");
    let f = cam.preview_frame(Millis(0)).expect("frame");
    assert_eq!(f.image.dimensions(), (640, 480));
    for x in [4, 320, 635] {
        let p = f.image.get_pixel(x, 240).0;
        assert!(p[2] > 200 && p[0] < 60, "x={x} {p:?}");
    }
}

#[test]
fn in_memory_sets_play_like_folders() {
    let mut cam = SimCamera::new(small_config());
    assert!(cam.add_images("empty", vec![]).is_err());
    cam.add_images("m", vec![RgbImage::from_pixel(32, 24, GREEN)])
        .expect("add");
    cam.show_preview_set("m", Millis(0)).expect("show");
    assert_eq!(centre(&cam.preview_frame(Millis(0)).expect("frame")), GREEN);
    cam.lock_exposure(true).expect("lock");
    assert!(cam.exposure_locked());
}

/// Opt-in: `HAL_TESTDATA_DIR=/work/shared/testdata/kiosk cargo test -p hal` plays the shared
/// 1920x1080 kiosk corpus (README and labels.json are skipped as non-frames).
#[test]
fn shared_kiosk_corpus_plays_when_provided() {
    let Some(dir) = std::env::var_os("HAL_TESTDATA_DIR") else {
        eprintln!("HAL_TESTDATA_DIR not set: shared kiosk corpus not exercised");
        return;
    };
    let mut cam = SimCamera::default();
    let n = cam.load_set("corpus", Path::new(&dir)).expect("load corpus");
    assert!(n > 0);
    cam.show_preview_set("corpus", Millis(0)).expect("show");
    let f = cam.preview_frame(Millis(0)).expect("frame");
    assert_eq!(f.image.dimensions(), (640, 480));
    cam.use_stills("corpus", 0).expect("stills");
    let still = cam.capture_still(Millis(0)).expect("still");
    assert_eq!(still.image.dimensions(), (1920, 1080));
}
