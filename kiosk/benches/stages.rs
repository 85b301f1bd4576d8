//! Criterion benches of the shutter-to-verdict path, one per stage (decode, detect, landmarks, checks,
//! encode), plus the whole still path and the 640x480 preview fast path, on the demo fixture frame
//! (`tests/fixtures/demo/pass/shots/2.jpg`, 1920x1080 JPEG of the public-domain hopper frame).
//!
//! Run: `scripts/setup.sh` once, then
//! `CARGO_TARGET_DIR=... cargo bench -p kiosk --bench stages`.
//! It needs ONNX Runtime and the models (it says so and stops if they are missing); it does not measure
//! accuracy (that is `kioskctl eval`).

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use image::RgbImage;
use kiosk::vision::analyze::Analyzer;
use kiosk::vision::checks::face_checks;
use kiosk::vision::geometry::{HeadGeometry, plan_crop};
use kiosk::vision::measure::measure_face;
use kiosk::vision::spec::{DEFAULT_SPEC, PhotoSpec};
use kiosk::vision::standardize::standardize;
use kiosk::vision::{FaceDetector, FaceMesh, Verdict};

fn fixture() -> (Vec<u8>, RgbImage) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/demo/pass/shots/2.jpg");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("bench fixture {}: {e}", path.display()));
    let img = image::load_from_memory(&bytes)
        .expect("fixture decodes")
        .to_rgb8();
    (bytes, img)
}

fn stages(c: &mut Criterion) {
    let paths = kiosk::runtime::setup().expect("ONNX Runtime and models (run scripts/setup.sh)");
    let models = paths.models().expect("model manifest");
    let spec = PhotoSpec::builtin_by_id(DEFAULT_SPEC).expect("built-in spec");
    let (bytes, img) = fixture();
    let mut detector = FaceDetector::new(models.path("face_detection_full_range").expect("detector"))
        .expect("detector loads");
    let mut mesh = FaceMesh::new(models.path("face_landmark").expect("mesh")).expect("mesh loads");

    c.bench_function("decode_1080p_jpeg", |b| {
        b.iter(|| {
            image::load_from_memory(black_box(&bytes))
                .expect("decodes")
                .to_rgb8()
        })
    });
    c.bench_function("detect_1080p", |b| {
        b.iter(|| detector.detect(black_box(&img)).expect("detects"))
    });
    let faces = detector.detect(&img).expect("detects");
    let face = *faces.first().expect("the fixture has a face");
    c.bench_function("landmarks_two_pass", |b| {
        b.iter(|| mesh.landmarks(black_box(&img), &face).expect("landmarks"))
    });
    let lm = mesh.landmarks(&img, &face).expect("landmarks");
    let (r, l) = (lm.point(33), lm.point(263));
    let eye_mid = (((r.x + l.x) / 2.0) as f64, ((r.y + l.y) / 2.0) as f64);
    let fw = ((lm.point(454).x - lm.point(234).x) as f64).abs();
    let plan = plan_crop(
        &HeadGeometry {
            eye_mid,
            face_width: fw,
            hair_top_y: lm.point(10).y as f64 - 0.35 * fw,
        },
        img.dimensions(),
        &spec.geometry,
        &spec.output,
    )
    .expect("the fixture can be framed");
    c.bench_function("checks_measure_and_grade", |b| {
        b.iter(|| {
            let m = measure_face(
                black_box(&img),
                &lm,
                (plan.x, plan.y, plan.width, plan.height),
                plan.scale,
                spec.background.rgb,
                Some(plan.y + spec.geometry.hair_top_px[0] / plan.scale),
            );
            let mut v = Verdict::default();
            face_checks(&mut v, Some(&m), &spec);
            v
        })
    });
    c.bench_function("encode_standardized", |b| {
        b.iter(|| standardize(black_box(&img), &plan, &spec.output).expect("standardizes"))
    });

    let mut analyzer = Analyzer::new(&paths).expect("analyzer");
    c.bench_function("shutter_to_verdict_1080p_jpeg", |b| {
        b.iter(|| {
            let img = image::load_from_memory(black_box(&bytes))
                .expect("decodes")
                .to_rgb8();
            analyzer.analyze(&img, &spec).expect("analyzes")
        })
    });
    let preview = image::imageops::resize(&img, 640, 360, image::imageops::FilterType::Triangle);
    // A 640x480 preview: the 16:9 picture letterboxed into the 4:3 sensor mode.
    let mut preview_43 = RgbImage::new(640, 480);
    image::imageops::replace(&mut preview_43, &preview, 0, 60);
    c.bench_function("preview_fast_path_640x480", |b| {
        b.iter(|| {
            analyzer
                .guidance(black_box(&preview_43), &spec)
                .expect("guidance")
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = stages
}
criterion_main!(benches);
