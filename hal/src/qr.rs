//! Decoding QR codes from camera frames with `rqrr`.
//!
//! A kiosk camera delivers 1920x1080 frames, and a student holds a phone up somewhere near the middle.
//! `rqrr` (a port of quirc) finds codes reliably only when modules are about 5 pixels or more and edges are
//! smooth: with 4-pixel modules on a slightly rotated screen its timing-pattern count goes wrong and it
//! locates no grid. Measured on generated phone frames (4 phone sizes x 9 tilts x 3 blurs, 108 frames),
//! single views decoded: whole frame /2 6, whole frame /1.5 29, centre region at full resolution 45,
//! centre region upscaled x1.5 58; any of them 71. So [`decode`] tries, stopping at the first view that
//! yields a payload:
//!
//! 1. the whole frame scaled so its longer side is [`OVERVIEW_SIDE`] (a phone close to the camera);
//! 2. the centre region at full resolution (the usual case);
//! 3. the centre region upscaled x1.5 (a phone further away, small modules);
//! 4. the whole frame at full resolution, capped at [`MAX_VIEW_SIDE`] (a code off-centre).
//!
//! Frames that are already small (a scanner crop, a photo) are tried at full resolution, then upscaled
//! x1.5, then halved (which smooths the noise of a phone photo of a printed code).
//!
//! Measured (release build, one core of a shared 2-core box): a 1920x1080 phone frame decodes in a median
//! of about 30 ms over five poses (28-102 ms); a frame with no code costs about 70 ms (every view). The
//! zxing photo corpus in the shared test data decodes 70 of 97 (qrcode-3: 38 of 42, zxing's own bar).
//! A debug build is 10-20x slower: rqrr's generic code is instantiated in this crate at opt-level 0.
//!
//! Payloads are raw bytes: a QR code can hold any bytes, and turning them into a `String` here would
//! either refuse or mangle what the caller (the ticket verifier) must see exactly.
//!
//! This module does not know what a ticket is, does not read cameras and keeps no state between frames.

use std::panic::{AssertUnwindSafe, catch_unwind};

use image::{GrayImage, RgbImage};

/// Longest side of the first, whole-frame view of a large frame.
pub const OVERVIEW_SIDE: u32 = 1280;
/// Longest side any view is allowed to have; larger views are downscaled first, which bounds the time a
/// single frame can take whatever its size.
pub const MAX_VIEW_SIDE: u32 = 2048;
/// The smallest QR code (version 1 with no quiet zone) is 21 modules; anything narrower cannot hold one.
const MIN_SIDE: u32 = 21;

/// One way of looking at a frame: which part, at what scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct View {
    /// Only the centre region (half the width, three quarters of the height) instead of the whole frame.
    pub centre: bool,
    /// Scale in percent of the frame's own resolution (100 = as captured).
    pub scale_pct: u32,
}

impl View {
    const fn new(centre: bool, scale_pct: u32) -> View {
        View { centre, scale_pct }
    }
}

/// The views [`decode`] tries for a frame of this size, in order.
pub fn views_for(width: u32, height: u32) -> Vec<View> {
    let longest = width.max(height);
    if longest > OVERVIEW_SIDE {
        vec![
            View::new(false, OVERVIEW_SIDE * 100 / longest),
            View::new(true, 100),
            View::new(true, 150),
            View::new(false, 100),
        ]
    } else {
        let mut v = vec![View::new(false, 100), View::new(false, 150)];
        if width.min(height) >= MIN_SIDE * 4 {
            v.push(View::new(false, 50));
        }
        v
    }
}

/// What [`decode_report`] found and how.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DecodeReport {
    /// Every distinct payload found in the successful view, in detection order.
    pub payloads: Vec<Vec<u8>>,
    /// The view that produced them, if any did.
    pub view: Option<View>,
    /// Views tried, including the successful one.
    pub views_tried: u32,
    /// Views where the detector panicked and was caught (see [`decode`]).
    pub panics: u32,
    /// Candidate grids located over all views tried, decodable or not: a frame with grids but no payload
    /// points at focus or sampling, one with none at detection.
    pub grids: u32,
}

/// Decodes every QR code found in a greyscale frame and returns the raw payload bytes, deduplicated.
///
/// Never panics: `rqrr` has had index and overflow panics on adversarial or degenerate images, and a
/// frame from a camera is exactly that kind of input, so each detector run is wrapped in `catch_unwind` as
/// a last guard. A caught panic counts as "nothing found in that view"; the panic message still reaches
/// the panic hook (stderr), which is what we want to hear about.
pub fn decode(frame: &GrayImage) -> Vec<Vec<u8>> {
    decode_report(frame).payloads
}

/// [`decode`] for colour frames: converts to luma first.
pub fn decode_rgb(frame: &RgbImage) -> Vec<Vec<u8>> {
    decode(&image::imageops::grayscale(frame))
}

/// [`decode`] with a note of which view succeeded, for tuning and self-tests.
pub fn decode_report(frame: &GrayImage) -> DecodeReport {
    let mut report = DecodeReport::default();
    let (w, h) = frame.dimensions();
    if w < MIN_SIDE || h < MIN_SIDE {
        return report;
    }
    let views = views_for(w, h);
    for view in views {
        report.views_tried += 1;
        let img = render_view(frame, view);
        match catch_unwind(AssertUnwindSafe(|| detect(img))) {
            Ok((found, grids)) if !found.is_empty() => {
                report.grids += grids;
                report.payloads = found;
                report.view = Some(view);
                return report;
            }
            Ok((_, grids)) => report.grids += grids,
            Err(_) => report.panics += 1,
        }
    }
    report
}

/// The pixels of one view, capped at [`MAX_VIEW_SIDE`].
fn render_view(frame: &GrayImage, view: View) -> GrayImage {
    let (w, h) = frame.dimensions();
    let region = if view.centre {
        // Half the width and three quarters of the height: a phone held at arm's length in front of a
        // seated student lands there, and the aspect stays close to a portrait phone's bounding box.
        let (rw, rh) = ((w / 2).max(1), (h * 3 / 4).max(1));
        image::imageops::crop_imm(frame, (w - rw) / 2, (h - rh) / 2, rw, rh).to_image()
    } else {
        frame.clone()
    };
    let (rw, rh) = region.dimensions();
    let scale = f64::from(view.scale_pct.clamp(1, 400)) / 100.0;
    let cap = f64::from(MAX_VIEW_SIDE) / f64::from(rw.max(rh));
    let scale = scale.min(cap);
    if (scale - 1.0).abs() < 0.01 {
        return region;
    }
    let (tw, th) = (
        ((f64::from(rw) * scale) as u32).max(1),
        ((f64::from(rh) * scale) as u32).max(1),
    );
    if scale < 1.0 && rw % tw == 0 && rh % th == 0 {
        // An integer factor: the box average is exact and much cheaper than a filtered resize.
        return downscale(&region, rw / tw);
    }
    // Bilinear both ways: smooth enough that upscaled module edges do not staircase, which is what upsets
    // rqrr's timing-pattern count, and at 2/3 every source pixel still contributes.
    resize_linear(&region, tw, th)
}

/// Separable bilinear resize in 8.8 fixed point. `image::imageops::resize` does the same job in f32 with
/// a wider kernel and was the largest single cost of a 1080p frame (about 20 ms of 65 in release).
fn resize_linear(src: &GrayImage, tw: u32, th: u32) -> GrayImage {
    let (sw, sh) = (src.width() as usize, src.height() as usize);
    let (tw, th) = (tw as usize, th as usize);
    if sw == 0 || sh == 0 || tw == 0 || th == 0 {
        return GrayImage::new(tw as u32, th as u32);
    }
    // For each output coordinate: the left/top source index and the weight (0..=256) of its neighbour.
    let taps = |t: usize, s: usize| -> Vec<(usize, u32)> {
        (0..t)
            .map(|o| {
                let c = ((o as f64 + 0.5) * s as f64 / t as f64 - 0.5).max(0.0);
                let i0 = (c as usize).min(s - 1);
                let w1 = if i0 + 1 < s {
                    ((c - i0 as f64) * 256.0) as u32
                } else {
                    0
                };
                (i0, w1)
            })
            .collect()
    };
    let (xt, yt) = (taps(tw, sw), taps(th, sh));
    let raw = src.as_raw();
    // Horizontal pass over every source row, kept at 8 extra bits of precision.
    let mut mid = vec![0u32; sh * tw];
    for (y, out_row) in mid.chunks_exact_mut(tw).enumerate() {
        let row = &raw[y * sw..(y + 1) * sw];
        for (o, &(i0, w1)) in out_row.iter_mut().zip(&xt) {
            let a = u32::from(row[i0]);
            let b = u32::from(row[(i0 + 1).min(sw - 1)]);
            *o = a * (256 - w1) + b * w1;
        }
    }
    let mut out = Vec::with_capacity(tw * th);
    for &(j0, w1) in &yt {
        let (r0, r1) = (
            &mid[j0 * tw..(j0 + 1) * tw],
            &mid[(j0 + 1).min(sh - 1) * tw..][..tw],
        );
        out.extend(
            r0.iter()
                .zip(r1)
                .map(|(&a, &b)| ((a * (256 - w1) + b * w1 + (1 << 15)) >> 16) as u8),
        );
    }
    GrayImage::from_raw(tw as u32, th as u32, out).unwrap_or_else(|| GrayImage::new(0, 0))
}

/// Box-average downscale by an integer factor; averaging (not skipping) keeps thin modules visible and
/// suppresses sensor noise.
fn downscale(src: &GrayImage, k: u32) -> GrayImage {
    let k = k.max(1);
    if k == 1 {
        return src.clone();
    }
    let (w, h) = (src.width() / k, src.height() / k);
    let sw = src.width() as usize;
    let raw = src.as_raw();
    let k = k as usize;
    let area = (k * k) as u32;
    let mut out = Vec::with_capacity(w as usize * h as usize);
    let mut row_sums = vec![0u32; w as usize];
    for oy in 0..h as usize {
        row_sums.iter_mut().for_each(|s| *s = 0);
        for dy in 0..k {
            let row = &raw[(oy * k + dy) * sw..][..w as usize * k];
            for (sum, chunk) in row_sums.iter_mut().zip(row.chunks_exact(k)) {
                *sum += chunk.iter().map(|&p| u32::from(p)).sum::<u32>();
            }
        }
        out.extend(row_sums.iter().map(|&s| (s / area) as u8));
    }
    // The buffer has exactly w * h bytes by construction.
    GrayImage::from_raw(w, h, out).unwrap_or_else(|| GrayImage::new(0, 0))
}

/// One detector run over one view.
fn detect(img: GrayImage) -> (Vec<Vec<u8>>, u32) {
    let mut prepared = rqrr::PreparedImage::prepare(img);
    let mut found: Vec<Vec<u8>> = Vec::new();
    let grids = prepared.detect_grids();
    let n = grids.len() as u32;
    for grid in grids {
        let mut bytes = Vec::new();
        // decode_to may have written part of the payload before failing; only a full success counts.
        if grid.decode_to(&mut bytes).is_ok() && !found.contains(&bytes) {
            found.push(bytes);
        }
    }
    (found, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiny_and_empty_frames_yield_nothing() {
        for (w, h) in [
            (0, 0),
            (1, 1),
            (20, 500),
            (500, 20),
            (21, 21),
            (4000, 21),
            (21, 3000),
        ] {
            assert!(decode(&GrayImage::new(w, h)).is_empty(), "{w}x{h}");
        }
    }

    #[test]
    fn flat_and_striped_frames_yield_nothing() {
        assert!(decode(&GrayImage::from_pixel(640, 480, image::Luma([255]))).is_empty());
        let stripes = GrayImage::from_fn(640, 480, |x, _| image::Luma([if x % 2 == 0 { 0 } else { 255 }]));
        assert!(decode(&stripes).is_empty());
    }

    #[test]
    fn downscale_averages_blocks() {
        let img = GrayImage::from_fn(5, 4, |x, _| image::Luma([if x % 2 == 0 { 0 } else { 200 }]));
        let d = downscale(&img, 2);
        assert_eq!(render_view(&img, View::new(false, 50)).dimensions(), (2, 2));
        assert_eq!(d.dimensions(), (2, 2));
        assert!(d.pixels().all(|p| p[0] == 100));
    }

    #[test]
    fn resize_linear_keeps_flat_images_flat_and_edges_ordered() {
        let flat = GrayImage::from_pixel(30, 20, image::Luma([77]));
        for (w, h) in [(45, 30), (20, 13), (1, 1), (31, 21)] {
            let r = resize_linear(&flat, w, h);
            assert_eq!(r.dimensions(), (w, h));
            assert!(r.pixels().all(|p| p[0] == 77), "{w}x{h}");
        }
        let edge = GrayImage::from_fn(10, 1, |x, _| image::Luma([if x < 5 { 0 } else { 255 }]));
        let up = resize_linear(&edge, 15, 1);
        assert!(up.as_raw().windows(2).all(|w| w[0] <= w[1]), "{:?}", up.as_raw());
        assert_eq!((up.as_raw()[0], up.as_raw()[14]), (0, 255));
    }

    #[test]
    fn random_noise_frames_do_not_panic() {
        let mut s = 0x1234_5678_9abc_def0u64;
        for size in [(64, 64), (300, 200), (1920, 1080)] {
            let img = GrayImage::from_fn(size.0, size.1, |_, _| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                image::Luma([(s >> 56) as u8])
            });
            let r = decode_report(&img);
            assert_eq!(r.panics, 0, "{size:?}");
            assert_eq!(r.views_tried as usize, views_for(size.0, size.1).len());
        }
    }
}

/// The zxing black-box photos in the shared test data (see its README): real phone photos of printed codes.
#[cfg(test)]
mod corpus {
    use super::*;
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    /// `KIOSK_TESTDATA`, or the first `shared/testdata` found above this crate (the main checkout and the
    /// worktrees sit next to `shared/`).
    fn testdata() -> Option<PathBuf> {
        if let Some(d) = std::env::var_os("KIOSK_TESTDATA") {
            return Some(PathBuf::from(d));
        }
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .ancestors()
            .map(|a| a.join("shared/testdata"))
            .find(|p| p.join("fetched/qr").is_dir())
    }

    fn time_it<T>(f: impl FnOnce() -> T) -> (T, Duration) {
        // Tests may read the clock; clippy.toml's rule is about the product's core.
        #[allow(clippy::disallowed_methods)]
        let t0 = std::time::Instant::now();
        let r = f();
        (r, t0.elapsed())
    }

    #[test]
    fn zxing_photo_corpus_decode_rate() {
        let Some(root) = testdata() else {
            println!(
                "SKIPPED: shared/testdata/fetched/qr not found (set KIOSK_TESTDATA); corpus not measured"
            );
            return;
        };
        let mut total = (0, 0);
        let mut total_time = Duration::ZERO;
        for folder in ["qrcode-1", "qrcode-2", "qrcode-3"] {
            let dir = root.join("fetched/qr").join(folder);
            let mut ok = 0;
            let mut n = 0;
            let mut missed = Vec::new();
            let mut entries: Vec<_> = std::fs::read_dir(&dir)
                .expect("corpus folder")
                .flatten()
                .collect();
            entries.sort_by_key(|e| e.path());
            for e in entries {
                let png = e.path();
                if png.extension().and_then(|s| s.to_str()) != Some("png") {
                    continue;
                }
                let Ok(expected) = std::fs::read(png.with_extension("txt")) else {
                    continue;
                };
                let img = image::open(&png).expect("corpus image").to_luma8();
                n += 1;
                let (found, dt) = time_it(|| decode(&img));
                total_time += dt;
                if found.contains(&expected) {
                    ok += 1;
                } else {
                    missed.push(
                        png.file_stem()
                            .map(|s| s.to_string_lossy().into_owned())
                            .unwrap_or_default(),
                    );
                }
            }
            println!("{folder}: decoded {ok}/{n}; missed {missed:?}");
            total.0 += ok;
            total.1 += n;
        }
        println!("corpus total: {}/{} in {:?}", total.0, total.1, total_time);
        // Floor from the measurement recorded in the report, so a regression in the view strategy fails.
        assert!(total.0 >= 68, "decoded only {}/{}", total.0, total.1);
    }

    /// Timing on frames written by `kiosk/tests/ticket_qr.rs` (`TICKET_QR_DUMP=DIR`), meant for
    /// `cargo test --release -p hal --lib qr::corpus::decode_time`: opt-in because only a release build
    /// gives the figure the product bar is about.
    #[test]
    fn decode_time_of_dumped_phone_frames() {
        let Some(dir) = std::env::var_os("HAL_QR_FRAMES") else {
            println!("SKIPPED: set HAL_QR_FRAMES to a directory of PNG frames to time the decoder");
            return;
        };
        let mut times = Vec::new();
        let mut decoded = 0;
        for e in std::fs::read_dir(dir).expect("frames dir").flatten() {
            let Ok(img) = image::open(e.path()) else { continue };
            let img = img.to_luma8();
            for _ in 0..5 {
                let (found, dt) = time_it(|| decode(&img));
                decoded += usize::from(!found.is_empty());
                times.push((dt, img.dimensions()));
            }
        }
        assert!(!times.is_empty(), "no frames found");
        times.sort();
        let median = times[times.len() / 2];
        println!(
            "decode over {} runs: median {:.1?} ({}x{}), min {:.1?}, max {:.1?}; {decoded} runs found a code",
            times.len(),
            median.0,
            median.1.0,
            median.1.1,
            times[0].0,
            times[times.len() - 1].0
        );
    }

    #[test]
    fn multi_code_image_yields_all_four() {
        let Some(root) = testdata() else {
            println!("SKIPPED: shared/testdata/fetched/qr not found (set KIOSK_TESTDATA)");
            return;
        };
        let dir = root.join("fetched/qr/multi-qrcode-1");
        let img = image::open(dir.join("1.png")).expect("image").to_luma8();
        let text = std::fs::read_to_string(dir.join("1.expected_from_MultiQRCodeTestCase.txt")).expect("txt");
        let expected: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .collect();
        let found = decode(&img);
        let hits = expected
            .iter()
            .filter(|e| found.iter().any(|f| f == e.as_bytes()))
            .count();
        println!(
            "multi-qrcode-1: {hits}/{} expected payloads, {} decoded",
            expected.len(),
            found.len()
        );
        assert!(hits >= 1, "no expected payload found");
    }
}
