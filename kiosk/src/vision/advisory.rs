//! Measures for the checks beyond the labelled corpora's ids: gaze, glare on glasses, and the advisory
//! cues (hair over the eyebrows or the ears, a head covering, jewellery).
//!
//! Like [`super::measure`], everything here measures and nothing decides: the bands are the spec's
//! `[checks]` table and the grading is in [`super::checks`]. There are no labels for these in the
//! corpora, so the measures are deliberately simple and their bands were set from the corpora's
//! distributions (docs/checks.md says which images read what); the advisory ones never block.

use image::RgbImage;

use super::detect::{EyeLandmarks, Landmarks468, Point};
use super::measure::{idx, luma_lin};

/// Iris-model contour indices of the eye corners and the lid middles (as in `detect`).
const CORNER_A: usize = 0;
const CORNER_B: usize = 8;

fn sat(p: [u8; 3]) -> f64 {
    let mx = *p.iter().max().unwrap_or(&0) as f64;
    let mn = *p.iter().min().unwrap_or(&0) as f64;
    if mx < 1.0 { 0.0 } else { (mx - mn) / mx }
}

/// Pixels of an axis-aligned box `(x0, y0, x1, y1)` clipped to the image, sampled every `step`.
fn box_pixels(img: &RgbImage, (x0, y0, x1, y1): (f64, f64, f64, f64), step: usize) -> Vec<[u8; 3]> {
    let (w, h) = img.dimensions();
    let (x0, x1) = (x0.max(0.0) as u32, x1.min(w as f64).max(0.0) as u32);
    let (y0, y1) = (y0.max(0.0) as u32, y1.min(h as f64).max(0.0) as u32);
    let mut out = Vec::new();
    for y in (y0..y1).step_by(step.max(1)) {
        for x in (x0..x1).step_by(step.max(1)) {
            out.push(img.get_pixel(x, y).0);
        }
    }
    out
}

/// Horizontal gaze: where the iris centre sits between the eye corners, as a fraction of the eye's
/// width from the middle (0 = centred, +-0.5 = at a corner), signed along the image's x axis and
/// averaged over both eyes (they look the same way). Only the horizontal part: the iris' height between
/// the lids depends too much on the lids themselves to read a vertical gaze.
pub fn gaze(eyes: &[EyeLandmarks; 2]) -> Option<f64> {
    let mut sum = 0.0;
    for e in eyes {
        let (a, b) = (e.contour[CORNER_A], e.contour[CORNER_B]);
        let (mut ux, mut uy) = ((b.x - a.x) as f64, (b.y - a.y) as f64);
        let width = ux.hypot(uy);
        if width < 4.0 {
            return None;
        }
        if ux < 0.0 {
            (ux, uy) = (-ux, -uy);
        }
        let (mx, my) = ((a.x + b.x) as f64 / 2.0, (a.y + b.y) as f64 / 2.0);
        let c = e.iris[0];
        sum += ((c.x as f64 - mx) * ux + (c.y as f64 - my) * uy) / (width * width);
    }
    Some(sum / 2.0)
}

/// Glare on glasses: the fraction of the lens area around both eyes (1.8 eye widths wide, 1.2 high)
/// that is near white (every channel >= 235, little colour). An eye's own catch light is a few pixels;
/// a lens reflection covers a patch. `None` when the eyes are too small to judge.
pub fn glasses_glare(img: &RgbImage, eyes: &[EyeLandmarks; 2]) -> Option<f64> {
    let (mut white, mut total) = (0usize, 0usize);
    for e in eyes {
        let (a, b) = (e.contour[CORNER_A], e.contour[CORNER_B]);
        let width = ((b.x - a.x) as f64).hypot((b.y - a.y) as f64);
        if width < 6.0 {
            return None;
        }
        let (cx, cy) = ((a.x + b.x) as f64 / 2.0, (a.y + b.y) as f64 / 2.0);
        let px = box_pixels(
            img,
            (
                cx - 0.9 * width,
                cy - 0.6 * width,
                cx + 0.9 * width,
                cy + 0.6 * width,
            ),
            1,
        );
        total += px.len();
        white += px
            .iter()
            .filter(|p| *p.iter().min().unwrap_or(&0) >= 235 && sat(**p) <= 0.12)
            .count();
    }
    (total >= 50).then(|| white as f64 / total as f64)
}

/// Median linear luminance of the two cheeks (below the eyes, beside the nose): the skin reference of
/// the advisory measures.
fn cheek_lum(img: &RgbImage, lm: &Landmarks468, fw: f64) -> Option<f64> {
    let nose = lm.point(idx::NOSE_TIP);
    let mut v: Vec<f64> = Vec::new();
    for side in [-1.0, 1.0] {
        let cx = nose.x as f64 + side * 0.22 * fw;
        let cy = nose.y as f64 - 0.02 * fw;
        v.extend(
            box_pixels(
                img,
                (cx - 0.07 * fw, cy - 0.07 * fw, cx + 0.07 * fw, cy + 0.07 * fw),
                2,
            )
            .into_iter()
            .map(|p| luma_lin(p) as f64),
        );
    }
    if v.len() < 20 {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2]).filter(|&l| l > 1e-4)
}

/// Hair over the eyebrows: the fraction of the band just above each brow (from 0.03 to 0.12 face widths
/// above the upper brow line) that is much darker than the cheeks (< 0.3x), as dark hair is.
pub fn hair_over_brows(img: &RgbImage, lm: &Landmarks468, fw: f64) -> Option<f64> {
    const RIGHT_BROW: [usize; 5] = [70, 63, 105, 66, 107];
    const LEFT_BROW: [usize; 5] = [336, 296, 334, 293, 300];
    let skin = cheek_lum(img, lm, fw)?;
    let (mut dark, mut total) = (0usize, 0usize);
    for brow in [RIGHT_BROW, LEFT_BROW] {
        let pts: Vec<Point> = brow.iter().map(|&i| lm.point(i)).collect();
        let x0 = pts.iter().map(|p| p.x).fold(f32::MAX, f32::min) as f64;
        let x1 = pts.iter().map(|p| p.x).fold(f32::MIN, f32::max) as f64;
        let top = pts.iter().map(|p| p.y).fold(f32::MAX, f32::min) as f64;
        let px = box_pixels(img, (x0, top - 0.12 * fw, x1, top - 0.03 * fw), 1);
        total += px.len();
        dark += px.iter().filter(|&&p| (luma_lin(p) as f64) < 0.3 * skin).count();
    }
    (total >= 30).then(|| dark as f64 / total as f64)
}

/// Hair over the ears: beside each cheek edge (FaceMesh 234 and 454, the face oval at the ears), from
/// 0.02 to 0.14 face widths outwards and from the eye line to the nose tip, the fraction of pixels much
/// darker than the cheeks (< 0.3x), as dark hair is; the larger of the two sides. A visible ear reads
/// as skin, a bare neck and backdrop behind it as neither. Blond or grey hair is not seen (as for the
/// brows), which is one reason this only ever advises.
pub fn hair_over_ears(img: &RgbImage, lm: &Landmarks468, fw: f64) -> Option<f64> {
    let skin = cheek_lum(img, lm, fw)?;
    let nose = lm.point(idx::NOSE_TIP);
    let eye_y = (lm.point(33).y + lm.point(263).y) as f64 / 2.0;
    let (y0, y1) = (eye_y, nose.y as f64);
    if y1 - y0 < 4.0 {
        return None;
    }
    let mut worst: Option<f64> = None;
    for cheek in [idx::CHEEK_RIGHT, idx::CHEEK_LEFT] {
        let c = lm.point(cheek);
        let out = if c.x < nose.x { -1.0 } else { 1.0 };
        let (a, b) = (c.x as f64 + out * 0.02 * fw, c.x as f64 + out * 0.14 * fw);
        let px = box_pixels(img, (a.min(b), y0, a.max(b), y1), 1);
        if px.len() < 30 {
            continue;
        }
        let dark = px.iter().filter(|&&p| (luma_lin(p) as f64) < 0.3 * skin).count();
        let f = dark as f64 / px.len() as f64;
        worst = Some(worst.map_or(f, |w: f64| w.max(f)));
    }
    worst
}

/// A head covering: between the top of the head and the top of the forehead, over the middle of the
/// head, the fraction of pixels that look like fabric rather than hair or skin: light and colourless
/// (a white cap, a scarf) or strongly coloured. Grey or blond hair reads as light too, which is why this
/// is only ever an advisory.
pub fn head_covering(img: &RgbImage, lm: &Landmarks468, fw: f64, hair_top_y: Option<f64>) -> Option<f64> {
    let skin = cheek_lum(img, lm, fw)?;
    let top = hair_top_y?;
    let forehead = lm.point(idx::FOREHEAD);
    let bottom = forehead.y as f64 - 0.05 * fw;
    if bottom - top < 0.05 * fw {
        // Nothing above the forehead but backdrop: nothing covers the head.
        return Some(0.0);
    }
    let cx = forehead.x as f64;
    let px = box_pixels(img, (cx - 0.3 * fw, top, cx + 0.3 * fw, bottom), 2);
    if px.len() < 20 {
        return None;
    }
    let fabric = px
        .iter()
        .filter(|&&p| {
            let l = luma_lin(p) as f64;
            (l > 0.9 * skin && sat(p) < 0.2) || sat(p) > 0.75
        })
        .count();
    Some(fabric as f64 / px.len() as f64)
}

/// Jewellery: specular glints (near white, much brighter than the cheeks) at the earlobes and on the
/// neck just below the chin, as a fraction of those regions. A white collar can read as a glint too:
/// advisory only.
pub fn jewellery(img: &RgbImage, lm: &Landmarks468, fw: f64) -> Option<f64> {
    let skin = cheek_lum(img, lm, fw)?;
    let (r, l) = (lm.point(idx::CHEEK_RIGHT), lm.point(idx::CHEEK_LEFT));
    let nose = lm.point(idx::NOSE_TIP);
    let chin = lm.point(idx::CHIN);
    let mouth_y = (lm.point(idx::MOUTH_RIGHT).y + lm.point(idx::MOUTH_LEFT).y) as f64 / 2.0;
    let (ny, my) = (nose.y as f64, mouth_y + 0.2 * fw);
    let regions = [
        (r.x as f64 - 0.18 * fw, ny, r.x as f64 + 0.02 * fw, my),
        (l.x as f64 - 0.02 * fw, ny, l.x as f64 + 0.18 * fw, my),
        (
            chin.x as f64 - 0.3 * fw,
            chin.y as f64 + 0.1 * fw,
            chin.x as f64 + 0.3 * fw,
            chin.y as f64 + 0.45 * fw,
        ),
    ];
    let (mut glint, mut total) = (0usize, 0usize);
    for rect in regions {
        let px = box_pixels(img, rect, 2);
        total += px.len();
        glint += px
            .iter()
            .filter(|&&p| {
                *p.iter().min().unwrap_or(&0) >= 200 && sat(p) <= 0.2 && (luma_lin(p) as f64) > 1.5 * skin
            })
            .count();
    }
    (total >= 50).then(|| glint as f64 / total as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eye(a: (f32, f32), b: (f32, f32), iris: (f32, f32)) -> EyeLandmarks {
        let p = |(x, y): (f32, f32)| Point { x, y };
        let mut contour = vec![p(a); 71];
        contour[CORNER_B] = p(b);
        EyeLandmarks {
            contour,
            iris: [p(iris); 5],
        }
    }

    #[test]
    fn gaze_is_the_iris_offset_between_the_corners_in_image_x() {
        // Corners given in either order: the offset is along the image's x axis.
        let centred = [
            eye((100.0, 50.0), (140.0, 50.0), (120.0, 51.0)),
            eye((220.0, 50.0), (180.0, 50.0), (200.0, 49.0)),
        ];
        assert!(gaze(&centred).unwrap().abs() < 1e-6);
        let aside = [
            eye((100.0, 50.0), (140.0, 50.0), (128.0, 50.0)),
            eye((220.0, 50.0), (180.0, 50.0), (208.0, 50.0)),
        ];
        assert!((gaze(&aside).unwrap() - 0.2).abs() < 1e-6);
        assert_eq!(
            gaze(&[eye((0.0, 0.0), (1.0, 0.0), (0.5, 0.0)), aside[1].clone()]),
            None
        );
    }

    #[test]
    fn a_white_patch_on_the_lens_is_glare_a_catch_light_is_not() {
        let mut img = RgbImage::from_pixel(300, 120, image::Rgb([150, 110, 90]));
        let eyes = [
            eye((60.0, 60.0), (100.0, 60.0), (80.0, 60.0)),
            eye((200.0, 60.0), (240.0, 60.0), (220.0, 60.0)),
        ];
        // Catch lights: 2x2 white in each iris.
        for (x, y) in [
            (80, 58),
            (81, 58),
            (80, 59),
            (81, 59),
            (220, 58),
            (221, 58),
            (220, 59),
            (221, 59),
        ] {
            img.put_pixel(x, y, image::Rgb([255, 255, 255]));
        }
        let band = crate::vision::spec::PhotoSpec::builtin_by_id(crate::vision::spec::DEFAULT_SPEC)
            .unwrap()
            .checks
            .glasses_glare;
        let catch = glasses_glare(&img, &eyes).unwrap();
        assert!(catch <= band[0], "{catch}");
        // A lens reflection: a 20x12 white patch over one eye.
        for y in 45..57 {
            for x in 62..82 {
                img.put_pixel(x, y, image::Rgb([250, 252, 255]));
            }
        }
        let glare = glasses_glare(&img, &eyes).unwrap();
        assert!(glare >= band[1], "{glare}");
    }
}
