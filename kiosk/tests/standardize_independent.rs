//! The filed photo is a crop and a resize of the capture and nothing else: the standardized JPEG of the
//! demo frame is compared with an independent crop and area-average resize written here (not the
//! `image` crate's filter), within JPEG and resampling-filter error. Also: 480x640, 300 dpi in the
//! header, inside the spec's size window.
//!
//! Uses only the in-repo fixture (no models): the crop is planned from fixed head geometry.

use std::path::PathBuf;

use image::RgbImage;
use kiosk::vision::geometry::{HeadGeometry, plan_crop};
use kiosk::vision::spec::{DEFAULT_SPEC, PhotoSpec};
use kiosk::vision::standardize::{jfif_density, standardize};

fn frame() -> RgbImage {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/demo/pass/shots/2.jpg");
    image::open(&path)
        .unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
        .to_rgb8()
}

/// Area-average resampling of the crop `(x, y, w, h)` to `ow` x `oh`: each output pixel is the mean of
/// the capture area it covers, with fractional pixel weights at the edges.
fn reference_crop_resize(
    img: &RgbImage,
    (x, y, w, h): (u32, u32, u32, u32),
    ow: u32,
    oh: u32,
) -> Vec<[f64; 3]> {
    let (sx, sy) = (w as f64 / ow as f64, h as f64 / oh as f64);
    let mut out = Vec::with_capacity((ow * oh) as usize);
    for oy in 0..oh {
        let (y0, y1) = (y as f64 + oy as f64 * sy, y as f64 + (oy + 1) as f64 * sy);
        for ox in 0..ow {
            let (x0, x1) = (x as f64 + ox as f64 * sx, x as f64 + (ox + 1) as f64 * sx);
            let mut acc = [0.0; 3];
            let mut wsum = 0.0;
            let mut py = y0.floor() as u32;
            while (py as f64) < y1 {
                let wy = (y1.min(py as f64 + 1.0) - y0.max(py as f64)).max(0.0);
                let mut px = x0.floor() as u32;
                while (px as f64) < x1 {
                    let wx = (x1.min(px as f64 + 1.0) - x0.max(px as f64)).max(0.0);
                    let p = img.get_pixel(px, py).0;
                    for c in 0..3 {
                        acc[c] += p[c] as f64 * wx * wy;
                    }
                    wsum += wx * wy;
                    px += 1;
                }
                py += 1;
            }
            out.push(acc.map(|a| a / wsum));
        }
    }
    out
}

#[test]
fn standardized_jpeg_is_a_crop_and_resize_of_the_capture() {
    let spec = PhotoSpec::builtin_by_id(DEFAULT_SPEC).unwrap();
    let img = frame();
    // Head geometry of the clean hopper frame (face ~360 px, eye line ~470 px, cap top ~150 px).
    let plan = plan_crop(
        &HeadGeometry {
            eye_mid: (960.0, 470.0),
            face_width: 360.0,
            hair_top_y: 150.0,
        },
        img.dimensions(),
        &spec.geometry,
        &spec.output,
    )
    .expect("the clean frame can be framed");
    let s = standardize(&img, &plan, &spec.output).expect("standardizes");
    assert_eq!((s.width, s.height), (480, 640));
    assert_eq!(
        jfif_density(&s.jpeg),
        Some((1, 300, 300)),
        "300 dpi in the JFIF header"
    );
    let kb = s.jpeg.len() as f64 / 1024.0;
    assert!(
        kb >= spec.output.size_min_kb as f64 && kb <= spec.output.size_max_kb as f64,
        "{kb:.1} KB outside the size window"
    );
    let filed = image::load_from_memory(&s.jpeg).unwrap().to_rgb8();
    assert_eq!(filed.dimensions(), (480, 640));
    let reference = reference_crop_resize(&img, s.crop, 480, 640);
    let (mut sum, mut sq, mut worst_block) = (0.0, 0.0, 0.0f64);
    for (i, p) in filed.pixels().enumerate() {
        for (c, r) in reference[i].iter().enumerate() {
            let d = p.0[c] as f64 - r;
            sum += d.abs();
            sq += d * d;
        }
    }
    let n = (480 * 640 * 3) as f64;
    let mad = sum / n;
    let psnr = 10.0 * (255.0f64.powi(2) / (sq / n)).log10();
    // 16x16 block means must match closely: a flip, a rotation, a shift or retouching would not.
    for by in 0..40 {
        for bx in 0..30 {
            let (mut a, mut b) = (0.0, 0.0);
            for y in by * 16..by * 16 + 16 {
                for x in bx * 16..bx * 16 + 16 {
                    let p = filed.get_pixel(x, y).0;
                    let r = reference[(y * 480 + x) as usize];
                    a += p.iter().map(|&v| v as f64).sum::<f64>();
                    b += r.iter().sum::<f64>();
                }
            }
            worst_block = worst_block.max((a - b).abs() / (256.0 * 3.0));
        }
    }
    assert!(mad < 3.0, "mean absolute difference {mad:.2} levels");
    assert!(psnr > 32.0, "PSNR {psnr:.1} dB");
    assert!(
        worst_block < 3.0,
        "a 16x16 block differs by {worst_block:.2} levels on average"
    );

    // And a mirrored filing would be caught by the same comparison.
    let mirrored = image::imageops::flip_horizontal(&filed);
    let mad_mirror = mirrored
        .pixels()
        .enumerate()
        .map(|(i, p)| {
            (0..3)
                .map(|c| (p.0[c] as f64 - reference[i][c]).abs())
                .sum::<f64>()
        })
        .sum::<f64>()
        / n;
    assert!(
        mad_mirror > 3.0 * mad,
        "the comparison must be able to tell a mirror image ({mad_mirror:.2})"
    );
}
