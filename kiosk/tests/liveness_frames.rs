//! Liveness on real frames through the real models: a still photo repeated as the preview stream never
//! passes, whether the frames are identical (a still image fed as the stream) or the same photo under
//! changing sensor noise (a print held still to a real camera), and a camera frame of a face shows no
//! screen texture. The blink path is tested with scripted landmark sequences in `vision::liveness`: no
//! footage of a real blink under a usable licence exists in the test data, and eyes painted shut on the
//! hopper frame do not convince the Iris model (it reads them at 0.6-0.85 of the open level).
//!
//! The photo is the public-domain hopper frame of `shared/testdata/kiosk`. Needs `scripts/setup.sh`
//! (models) and the shared test data; fails saying so when they are missing.

use std::path::PathBuf;

use image::RgbImage;
use kiosk::vision::analyze::Analyzer;
use kiosk::vision::liveness::{Liveness, LivenessVerdict, SpoofCue};
use kiosk::vision::spec::{DEFAULT_SPEC, PhotoSpec};

fn analyzer() -> Analyzer {
    let paths = kiosk::runtime::setup().unwrap_or_else(|e| {
        panic!("this test needs ONNX Runtime and the models: run scripts/setup.sh.\n{e}")
    });
    Analyzer::new(&paths).unwrap_or_else(|e| panic!("{e}"))
}

fn open_frame() -> RgbImage {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let candidates = [
        root.join("../shared/testdata/kiosk/hopper__base.jpg"),
        root.join("../../shared/testdata/kiosk/hopper__base.jpg"),
    ];
    let path = candidates
        .iter()
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("shared test data not found (looked in {candidates:?})"));
    image::open(path).unwrap().to_rgb8()
}

/// The frame with deterministic sensor-like noise of +-2 levels: a real camera never repeats a frame.
fn noisy(img: &RgbImage, seed: u32) -> RgbImage {
    let mut out = img.clone();
    let mut s = seed.wrapping_mul(2_654_435_761).max(1);
    for p in out.pixels_mut() {
        for c in p.0.iter_mut() {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            *c = (*c as i32 + (s % 5) as i32 - 2).clamp(0, 255) as u8;
        }
    }
    out
}

fn run(analyzer: &mut Analyzer, frames: &[RgbImage]) -> (Liveness, u64) {
    let spec = PhotoSpec::builtin_by_id(DEFAULT_SPEC).unwrap();
    let mut l = Liveness::new(&spec.liveness);
    let mut t = 0;
    for f in frames {
        let (sample, roi) = analyzer.liveness_sample(f, t, l.roi()).unwrap();
        l.observe(sample, roi);
        t += 200;
    }
    (l, t - 200)
}

#[test]
fn a_still_photo_as_the_preview_stream_never_passes() {
    let mut a = analyzer();
    let open = open_frame();
    let (l, now) = run(&mut a, &vec![open.clone(); 6]);
    assert_eq!(l.verdict(now), LivenessVerdict::NotLive(SpoofCue::Frozen));
    // The same photo held still in front of a real sensor: every frame differs, the eyes never close.
    let frames: Vec<RgbImage> = (0..6).map(|k| noisy(&open, k + 1)).collect();
    let (l, now) = run(&mut a, &frames);
    let e = l.evidence(now);
    assert_eq!(e.face_frames, 6, "{e:?}");
    assert_eq!(l.verdict(now), LivenessVerdict::Undetermined, "{e:?}");
    assert!(e.moire_frac < 0.5, "a camera photo of a face is no screen: {e:?}");
}
