//! The full checks on frames a real booth produces when something is off: the exposure far from the
//! backdrop's level (so the backdrop no longer has the spec colour) and a student sitting so low that
//! the chest is below the frame. Each still has a decided answer for the checks that do not depend on
//! what is off: the head can still be placed in an over- or underexposed frame, and the clothing can
//! still be judged from the collar and shoulders.
//!
//! Made from the in-repo demo still (a compliant frame). Needs ONNX Runtime and the models from
//! `scripts/setup.sh` (fails saying so when they are missing).

use std::path::PathBuf;

use image::{Rgb, RgbImage};
use kiosk::vision::CheckStatus;
use kiosk::vision::analyze::{Analysis, Analyzer};
use kiosk::vision::spec::{DEFAULT_SPEC, PhotoSpec};

fn still() -> RgbImage {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/demo/pass/shots/2.jpg");
    image::open(&path)
        .unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
        .into_rgb8()
}

fn analyzer() -> Analyzer {
    let paths = kiosk::runtime::setup().unwrap_or_else(|e| {
        panic!("this test needs ONNX Runtime and the models: run scripts/setup.sh.\n{e}")
    });
    Analyzer::new(&paths).unwrap_or_else(|e| panic!("{e}"))
}

fn status(a: &Analysis, id: &str) -> (CheckStatus, Option<f64>) {
    let c = a
        .verdict
        .checks
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no {id} check in {:?}", a.verdict));
    (c.status, c.value)
}

/// The exposure changed by `gain` in linear light, clipping at white, as a camera would record it.
fn exposed(img: &RgbImage, gain: f64) -> RgbImage {
    let to_lin = |c: u8| {
        let c = c as f64 / 255.0;
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    let to_srgb = |l: f64| {
        let l = l.clamp(0.0, 1.0);
        let c = if l <= 0.0031308 {
            l * 12.92
        } else {
            1.055 * l.powf(1.0 / 2.4) - 0.055
        };
        (c * 255.0).round() as u8
    };
    let lut: Vec<u8> = (0..=255u8).map(|c| to_srgb(to_lin(c) * gain)).collect();
    let mut out = img.clone();
    for p in out.pixels_mut() {
        p.0 = p.0.map(|c| lut[c as usize]);
    }
    out
}

/// The frame moved down by `dy` rows (the bottom leaves the frame), the top filled with the backdrop
/// as the frame's top-left corner shows it.
fn shifted_down(img: &RgbImage, dy: u32) -> RgbImage {
    let fill = *img.get_pixel(8, 8);
    let mut out = RgbImage::from_pixel(img.width(), img.height(), fill);
    image::imageops::replace(&mut out, img, 0, dy as i64);
    out
}

#[test]
fn an_over_or_underexposed_frame_is_still_placed_and_fails_on_exposure() {
    let spec = PhotoSpec::builtin_by_id(DEFAULT_SPEC).unwrap();
    let mut a = analyzer();
    let clean = a.analyze(&still(), &spec).unwrap();
    assert_eq!(
        status(&clean, "framing").0,
        CheckStatus::Pass,
        "{:?}",
        clean.verdict
    );
    assert_eq!(
        status(&clean, "exposure").0,
        CheckStatus::Pass,
        "{:?}",
        clean.verdict
    );

    // +0.9 EV clips the backdrop's green and blue, -1 EV darkens it: either way it is not the spec
    // colour any more, which once made the whole frame "not backdrop" and the hair top the top edge.
    for gain in [1.87, 0.5] {
        let r = a.analyze(&exposed(&still(), gain), &spec).unwrap();
        let (framing, slack) = status(&r, "framing");
        assert_eq!(framing, CheckStatus::Pass, "gain {gain}: {:?}", r.verdict);
        assert!(
            slack.unwrap() > 0.0,
            "gain {gain}: the same head, the same placement"
        );
        assert_eq!(
            status(&r, "exposure").0,
            CheckStatus::Fail,
            "gain {gain}: {:?}",
            r.verdict
        );
        assert!(!r.verdict.passed());
    }
}

#[test]
fn clothing_below_a_low_crop_is_judged_from_the_shoulders_the_frame_shows() {
    let spec = PhotoSpec::builtin_by_id(DEFAULT_SPEC).unwrap();
    let mut a = analyzer();
    let low = shifted_down(&still(), 216);
    let r = a.analyze(&low, &spec).unwrap();
    assert_eq!(
        status(&r, "framing").0,
        CheckStatus::Fail,
        "too low to place: {:?}",
        r.verdict
    );
    let (clothing, v) = status(&r, "clothing_contrast");
    assert_eq!(clothing, CheckStatus::Pass, "navy jacket on blue: {v:?}");

    // The same student in a top of the backdrop's colour: the jacket and tie painted with the backdrop.
    let head = r.head.expect("head measured");
    let below = head.eye_mid.1 + 0.8 * head.face_width;
    let backdrop = *low.get_pixel(8, 8);
    let mut blue = low.clone();
    for (_, y, p) in blue.enumerate_pixels_mut() {
        let l = 0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64;
        if y as f64 > below && l < 70.0 {
            *p = Rgb(backdrop.0);
        }
    }
    let r = a.analyze(&blue, &spec).unwrap();
    let (clothing, v) = status(&r, "clothing_contrast");
    assert_ne!(clothing, CheckStatus::Pass, "a top like the backdrop: {v:?}");
    assert!(v.unwrap() >= 0.2, "{v:?}");
}

#[test]
fn a_fogged_lens_fails_dynamic_range_and_a_clear_one_passes() {
    let spec = PhotoSpec::builtin_by_id(DEFAULT_SPEC).unwrap();
    let mut a = analyzer();
    let clean = a.analyze(&still(), &spec).unwrap();
    let (status_clean, bits_clean) = status(&clean, "dynamic_range");
    assert_eq!(status_clean, CheckStatus::Pass, "{bits_clean:?}");

    // Fog: every level pulled most of the way to a light grey, as a misted lens or a veil of flare
    // does. The face keeps its place and shape (still found and placed) but holds a handful of tones.
    let mut fog = still();
    for p in fog.pixels_mut() {
        p.0 = p.0.map(|c| (170.0 + (c as f64 - 170.0) * 0.08).round() as u8);
    }
    let r = a.analyze(&fog, &spec).unwrap();
    let (status_fog, bits_fog) = status(&r, "dynamic_range");
    eprintln!("dynamic range: clear {bits_clean:?} bits, fogged {bits_fog:?} bits");
    assert_eq!(
        status_fog,
        CheckStatus::Fail,
        "{bits_fog:?} bits (clear: {bits_clean:?})"
    );
    assert!(!r.verdict.passed());
}
