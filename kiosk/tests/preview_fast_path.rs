//! The preview fast path (`Analyzer::preview`) on 640x480 frames made from the in-repo demo fixture:
//! the tracked face agrees with the full detector, advice goes through the hysteresis (it neither
//! appears nor vanishes on one frame), and a gap in the frames starts a new episode.
//!
//! Needs ONNX Runtime and the models from `scripts/setup.sh` (fails saying so when they are missing).

use std::path::PathBuf;
use std::time::Duration;

use image::RgbImage;
use kiosk::vision::analyze::Analyzer;
use kiosk::vision::spec::{DEFAULT_SPEC, PhotoSpec};

const SIT: &str = "Please sit in front of the camera";

/// The clean demo still as 640x480 preview frames (letterboxed 16:9), shifted a few pixels from
/// frame to frame as a seated student sways.
fn frames() -> Vec<RgbImage> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/demo/pass/shots/2.jpg");
    let still = image::open(&path)
        .unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
        .into_rgb8();
    let small = image::imageops::resize(&still, 640, 360, image::imageops::FilterType::Triangle);
    [
        (0i64, 0i64),
        (3, 1),
        (6, 2),
        (4, 4),
        (1, 3),
        (-2, 1),
        (-4, -1),
        (-1, -2),
        (2, 0),
        (5, 1),
    ]
    .iter()
    .map(|&(dx, dy)| {
        let mut f = RgbImage::new(640, 480);
        image::imageops::replace(&mut f, &small, dx, 60 + dy);
        f
    })
    .collect()
}

fn analyzer() -> Analyzer {
    let paths = kiosk::runtime::setup().unwrap_or_else(|e| {
        panic!("this test needs ONNX Runtime and the models: run scripts/setup.sh.\n{e}")
    });
    Analyzer::new(&paths).unwrap_or_else(|e| panic!("{e}"))
}

fn says(g: &ui::Guidance, en: &str) -> bool {
    g.lines.iter().any(|l| l.en == en)
}

#[test]
fn tracked_preview_follows_the_face_holds_advice_and_restarts_after_a_gap() {
    let spec = PhotoSpec::builtin_by_id(DEFAULT_SPEC).unwrap();
    let mut a = analyzer();
    let frames = frames();
    let t0 = kiosk::clock::monotonic();
    let at = |i: usize| t0 + Duration::from_millis(200) * i as u32;

    // A student sits and sways: every frame has the face, and the tracked (and smoothed) eye line
    // stays within 25 thousandths (12 px) of what the full detector finds on that frame alone.
    for (i, f) in frames.iter().enumerate() {
        let g = a.preview(at(i), f, &spec).unwrap();
        let full = a.guidance(f, &spec).unwrap();
        assert!(!says(&g, SIT), "frame {i}: {g:?}");
        let (e, ef) = (
            g.eye_line.expect("eye line"),
            full.eye_line.expect("full eye line"),
        );
        assert!(
            e.y_permille.abs_diff(ef.y_permille) <= 25,
            "frame {i}: tracked eye line {} vs full detector {}",
            e.y_permille,
            ef.y_permille
        );
    }

    // The student leaves: the backdrop alone. One empty frame changes nothing on screen; the second
    // asks them to sit; the eye line is held through two empty frames and gone at the third.
    let empty = RgbImage::from_pixel(640, 480, image::Rgb(spec.background.rgb));
    let n = frames.len();
    let g1 = a.preview(at(n), &empty, &spec).unwrap();
    assert!(!says(&g1, SIT) && g1.eye_line.is_some(), "{g1:?}");
    let g2 = a.preview(at(n + 1), &empty, &spec).unwrap();
    assert!(says(&g2, SIT) && g2.eye_line.is_some(), "{g2:?}");
    let g3 = a.preview(at(n + 2), &empty, &spec).unwrap();
    assert!(says(&g3, SIT) && g3.eye_line.is_none(), "{g3:?}");

    // The student comes back after a pause: a new episode, whose first frame is shown as the full
    // analysis of that frame sees it (nothing is carried over to flicker from).
    let later = at(n + 2) + Duration::from_secs(5);
    let g = a.preview(later, &frames[0], &spec).unwrap();
    assert_eq!(g, a.guidance(&frames[0], &spec).unwrap());
    assert!(!says(&g, SIT));
}
