//! Criterion benches of the shutter-to-verdict path, one per stage (decode, detect, landmarks, checks,
//! resize, encode), the whole still path (`shutter_to_verdict`: a 1920x1080 JPEG in, the verdict and
//! the standardized JPEG out), and the 640x480 preview fast path (`preview_fast_path`: the stateful
//! tracker plus the guidance hysteresis, as the shell runs it while framing), on the demo fixture frame
//! (`tests/fixtures/demo/pass/shots/2.jpg`, 1920x1080 JPEG of the public-domain hopper frame).
//!
//! Run: `scripts/setup.sh` once, then
//! `CARGO_TARGET_DIR=... cargo bench -p kiosk --bench stages` (all), or name one, e.g.
//! `cargo bench -p kiosk --bench stages -- shutter_to_verdict`. The preview bar is for one core:
//! `taskset -c 1 cargo bench -p kiosk --bench stages -- preview_fast_path` (its throughput line is
//! frames per second).
//! It needs ONNX Runtime and the models (it says so and stops if they are missing); it does not measure
//! accuracy (that is `kioskctl eval`).

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use image::RgbImage;
use kiosk::vision::analyze::Analyzer;
use kiosk::vision::checks::face_checks;
use kiosk::vision::geometry::{HeadGeometry, plan_crop};
use kiosk::vision::measure::measure_face;
use kiosk::vision::spec::{DEFAULT_SPEC, PhotoSpec};
use kiosk::vision::standardize::{crop_and_resize, encode_in_window, standardize};
use kiosk::vision::{FaceDetector, FaceMesh, Verdict};

fn fixture() -> (Vec<u8>, RgbImage) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/demo/pass/shots/2.jpg");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("bench fixture {}: {e}", path.display()));
    let img = image::load_from_memory(&bytes)
        .expect("fixture decodes")
        .into_rgb8();
    (bytes, img)
}

/// 640x480 preview frames: the 16:9 picture letterboxed into the 4:3 sensor mode, shifted by a few
/// pixels from frame to frame as a seated student sways, so the tracker has to follow.
fn preview_frames(img: &RgbImage) -> Vec<RgbImage> {
    let small = image::imageops::resize(img, 640, 360, image::imageops::FilterType::Triangle);
    [
        (0i64, 0i64),
        (3, 1),
        (6, 2),
        (4, 4),
        (1, 3),
        (-2, 1),
        (-4, -1),
        (-1, -2),
    ]
    .iter()
    .map(|&(dx, dy)| {
        let mut frame = RgbImage::new(640, 480);
        image::imageops::replace(&mut frame, &small, dx, 60 + dy);
        frame
    })
    .collect()
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
                .into_rgb8()
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
    c.bench_function("resize_standardized", |b| {
        b.iter(|| crop_and_resize(black_box(&img), &plan, &spec.output).expect("crops"))
    });
    let resized = crop_and_resize(&img, &plan, &spec.output).expect("crops");
    c.bench_function("jpeg_quality_search", |b| {
        b.iter(|| encode_in_window(black_box(&resized), &spec.output).expect("fits the window"))
    });
    c.bench_function("encode_standardized", |b| {
        b.iter(|| standardize(black_box(&img), &plan, &spec.output).expect("standardizes"))
    });

    let mut analyzer = Analyzer::new(&paths).expect("analyzer");
    // Exactly the kiosk's path from the shutter: the still arrives as a 1920x1080 JPEG, is decoded
    // once, analysed, and the standardized JPEG (480x640, 300 dpi, inside the size window) is made.
    let check = analyzer.analyze(&img, &spec).expect("analyzes");
    assert!(
        check.standardized.is_some(),
        "the fixture must standardize, or the bench would time a shorter path"
    );
    c.bench_function("shutter_to_verdict", |b| {
        b.iter(|| {
            let img = image::load_from_memory(black_box(&bytes))
                .expect("decodes")
                .into_rgb8();
            let a = analyzer.analyze(&img, &spec).expect("analyzes");
            assert!(a.standardized.is_some());
            a
        })
    });

    let frames = preview_frames(&img);
    c.bench_function("preview_guidance_stateless_640x480", |b| {
        b.iter(|| analyzer.guidance(black_box(&frames[0]), &spec).expect("guidance"))
    });
    let mut group = c.benchmark_group("preview");
    // One frame per iteration: the throughput line reads in frames per second.
    group.throughput(Throughput::Elements(1));
    let start = kiosk::clock::monotonic();
    let mut n = 0u64;
    group.bench_function("preview_fast_path", |b| {
        b.iter(|| {
            // Virtual time five frames a second apart, as the shell calls it: one framing episode.
            let now = start + Duration::from_millis(200) * n as u32;
            let frame = &frames[(n % frames.len() as u64) as usize];
            n += 1;
            analyzer.preview(now, black_box(frame), &spec).expect("guidance")
        })
    });
    // The liveness sample the shell takes with each guidance update (FaceMesh in the tracked crop,
    // then Iris on both eyes), and the two together: what one guidance tick of the shell costs.
    let mut roi = None;
    let mut k = 0u64;
    group.bench_function("liveness_sample", |b| {
        b.iter(|| {
            let frame = &frames[(k % frames.len() as u64) as usize];
            k += 1;
            let (sample, next) = analyzer
                .liveness_sample(black_box(frame), k * 200, roi)
                .expect("liveness");
            roi = next;
            sample
        })
    });
    let mut roi = None;
    group.bench_function("guidance_tick", |b| {
        b.iter(|| {
            let now = start + Duration::from_millis(200) * n as u32;
            let frame = &frames[(n % frames.len() as u64) as usize];
            n += 1;
            let (sample, next) = analyzer
                .liveness_sample(black_box(frame), n * 200, roi)
                .expect("liveness");
            roi = next;
            (
                sample,
                analyzer.preview(now, black_box(frame), &spec).expect("guidance"),
            )
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = stages
}
criterion_main!(benches);
