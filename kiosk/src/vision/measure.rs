//! Pixel and landmark measurements of one face for the photo checks: head pose, eye and mouth opening,
//! teeth, focus, exposure against the backdrop, left/right light, specular hot spots, red eye, the
//! backdrop in the crop and the clothing against it.
//!
//! Everything here measures; nothing decides. The limits and the pass/fail/undetermined logic are in
//! [`super::checks`] and the spec. Each measure is `None` when it cannot be taken on this image (the
//! region is off the frame, too small, or the landmarks are missing), so a check can say "undetermined"
//! instead of guessing. No models run here: the landmarks come in from the analyzer.

// Channel loops (`for c in 0..3`) index two or three arrays in step; iterators would hide that.
#![allow(clippy::needless_range_loop)]

use std::sync::OnceLock;

use image::RgbImage;
use serde::Serialize;

use super::detect::{Landmarks468, Point};

/// FaceMesh indices (MediaPipe canonical mesh). "Right"/"left" are the subject's.
pub(crate) mod idx {
    pub const FACE_OVAL: [usize; 36] = [
        10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148,
        176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
    ];
    pub const RIGHT_EYE: [usize; 16] = [
        33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7,
    ];
    pub const LEFT_EYE: [usize; 16] = [
        263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249,
    ];
    pub const OUTER_LIPS: [usize; 20] = [
        61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146,
    ];
    /// Right eye: outer corner, inner corner, two upper-lid and two lower-lid points (paired).
    pub const RIGHT_EAR: [usize; 6] = [33, 133, 160, 144, 158, 153];
    pub const LEFT_EAR: [usize; 6] = [263, 362, 387, 373, 385, 380];
    pub const CHEEK_RIGHT: usize = 234;
    pub const CHEEK_LEFT: usize = 454;
    pub const NOSE_TIP: usize = 1;
    pub const FOREHEAD: usize = 10;
    pub const CHIN: usize = 152;
    pub const MOUTH_RIGHT: usize = 61;
    pub const MOUTH_LEFT: usize = 291;
    pub const LIP_UPPER_INNER: usize = 13;
    pub const LIP_LOWER_INNER: usize = 14;
    pub const BROW_RIGHT: usize = 105;
    pub const BROW_LEFT: usize = 334;
}

/// Everything measured on the main face; `None` where it could not be measured.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct FaceMeasures {
    /// Head turn from the 3D cheek points, degrees (positive: the subject's left cheek is nearer).
    pub yaw_deg: Option<f64>,
    /// Head nod from the 3D forehead-chin line, degrees, with the canonical face's lean removed.
    pub pitch_deg: Option<f64>,
    /// Eye aspect ratios (lid gap over eye width), the smaller of the two eyes and each eye.
    pub eye_open_min: Option<f64>,
    pub eye_open: Option<(f64, f64)>,
    /// Per eye (subject's right, left): fraction of the eye contour's pixels much darker than the skin
    /// (iris, pupil): an open eye shows them, a closed lid does not.
    pub eye_dark: Option<(f64, f64)>,
    /// Iris-model lid gap over eye width, per eye (subject's right, left), and the smaller.
    pub iris_open: Option<(f64, f64)>,
    pub iris_open_min: Option<f64>,
    /// Roll from the two iris centres, degrees (for comparison with the eye-contour roll).
    pub roll_iris_deg: Option<f64>,
    /// Roll of the head in 3D (FaceMesh depth): the eye line's tilt about the face's own axis, which a
    /// turned or nodding head does not fake the way the image-plane eye line does.
    pub roll_3d_deg: Option<f64>,
    /// Inner-lip gap over mouth width.
    pub mouth_gap: Option<f64>,
    /// Fraction of the inner-lip area that looks like teeth (bright, unsaturated).
    pub teeth_frac: Option<f64>,
    /// Fraction of the lip area that is dark like an open mouth's cavity.
    pub mouth_dark_frac: Option<f64>,
    /// Focus: fine-to-coarse detail ratio around the eyes at output scale (higher is sharper).
    pub sharpness: Option<f64>,
    /// Camera exposure from the backdrop against the spec colour, EV (linear light).
    pub exposure_ev: Option<f64>,
    /// Dynamic range of the face: entropy of the histogram of its 8-bit luma over the whole face oval
    /// (features included), in bits (ISO/IEC 29794-5's measure; 8 is the most a histogram can hold).
    /// A foggy lens, flat light or an exposure error squeezes the face into few tones.
    pub dynamic_range_bits: Option<f64>,
    /// Fraction of skin pixels clipped (any channel >= 250) and crushed (luma <= 10).
    pub skin_clipped: Option<f64>,
    pub skin_crushed: Option<f64>,
    /// Brighter over darker cheek, linear light.
    pub cheek_ratio: Option<f64>,
    /// Fraction of skin pixels that are specular hot spots (near white and well above the skin median).
    pub highlight_frac: Option<f64>,
    /// Fraction of pupil pixels (inner half of the Iris model's iris) that are strongly red.
    pub red_eye_frac: Option<f64>,
    /// Backdrop: CIE76 distance of its median colour in the crop from the spec colour, the fraction of
    /// the crop covered by foreign things (not backdrop, not connected to the person) and the unevenness
    /// (1 - darkest/median luminance of backdrop blocks).
    pub backdrop_delta_e: Option<f64>,
    pub backdrop_foreign: Option<f64>,
    pub backdrop_unevenness: Option<f64>,
    /// Fraction of the clothing area that looks like the backdrop.
    pub clothing_like_backdrop: Option<f64>,
    /// Horizontal gaze: iris offset from the middle of the eye, in eye widths, both eyes averaged.
    pub gaze: Option<f64>,
    /// Fraction of the lens area around the eyes that is near white (reflections on glasses).
    pub glasses_glare: Option<f64>,
    /// Fraction of the band above the brows that is dark like hair.
    pub hair_over_brows: Option<f64>,
    /// Fraction of the bands beside the cheeks at ear height that is dark like hair (the larger side).
    pub hair_over_ears: Option<f64>,
    /// Fraction of the head above the forehead that looks like fabric (white/grey or vivid).
    pub head_covering: Option<f64>,
    /// Fraction of the earlobe and neck regions that are specular glints.
    pub jewellery: Option<f64>,
}

impl FaceMeasures {
    /// Takes the eye openness from the Iris model's lids and measures red eye in the pupils it found.
    pub fn set_eyes(&mut self, img: &RgbImage, eyes: &[super::detect::EyeLandmarks; 2]) {
        let (mut red, mut total) = (0u32, 0u32);
        for e in eyes {
            let c = e.iris[0];
            let r = e.iris[1..]
                .iter()
                .map(|p| ((p.x - c.x) as f64).hypot((p.y - c.y) as f64))
                .sum::<f64>()
                / 4.0;
            // The pupil: the inner half of the iris, where a flash's retinal reflection shows.
            let pr = (r * 0.5).max(1.0);
            let (w, h) = img.dimensions();
            let (cx, cy) = (c.x as f64, c.y as f64);
            let mut y = (cy - pr).floor().max(0.0);
            while y <= (cy + pr).min(h as f64 - 1.0) {
                let mut x = (cx - pr).floor().max(0.0);
                while x <= (cx + pr).min(w as f64 - 1.0) {
                    if (x - cx).hypot(y - cy) <= pr {
                        let p = img.get_pixel(x as u32, y as u32).0;
                        total += 1;
                        if p[0] > 100 && p[0] as f64 > 1.8 * p[1] as f64 && p[0] as f64 > 1.8 * p[2] as f64 {
                            red += 1;
                        }
                    }
                    x += 1.0;
                }
                y += 1.0;
            }
        }
        if total >= 8 {
            self.red_eye_frac = Some(red as f64 / total as f64);
        }
        self.gaze = super::advisory::gaze(eyes);
        self.glasses_glare = super::advisory::glasses_glare(img, eyes);
        let (r, l) = (eyes[0].openness() as f64, eyes[1].openness() as f64);
        self.iris_open = Some((r, l));
        self.iris_open_min = Some(r.min(l));
        let (a, b) = (eyes[0].iris[0], eyes[1].iris[0]);
        self.roll_iris_deg = Some(((b.y - a.y) as f64).atan2((b.x - a.x) as f64).to_degrees());
    }
}

fn lut() -> &'static [f32; 256] {
    static LUT: OnceLock<[f32; 256]> = OnceLock::new();
    LUT.get_or_init(|| {
        let mut t = [0.0f32; 256];
        for (i, v) in t.iter_mut().enumerate() {
            let c = i as f32 / 255.0;
            *v = if c <= 0.04045 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            };
        }
        t
    })
}

/// sRGB byte to linear light in 0..1.
pub fn linear(c: u8) -> f32 {
    lut()[c as usize]
}

pub(crate) fn luma_lin(p: [u8; 3]) -> f32 {
    0.2126 * linear(p[0]) + 0.7152 * linear(p[1]) + 0.0722 * linear(p[2])
}

/// CIE L*a*b* (D65) of an sRGB colour given as floats in 0..255.
pub fn lab(rgb: [f64; 3]) -> [f64; 3] {
    let lin = |c: f64| {
        let c = (c / 255.0).clamp(0.0, 1.0);
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    let (r, g, b) = (lin(rgb[0]), lin(rgb[1]), lin(rgb[2]));
    let x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047;
    let y = 0.2126 * r + 0.7152 * g + 0.0722 * b;
    let z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883;
    let f = |t: f64| {
        if t > 216.0 / 24389.0 {
            t.cbrt()
        } else {
            (24389.0 / 27.0 * t + 16.0) / 116.0
        }
    };
    let (fx, fy, fz) = (f(x), f(y), f(z));
    [116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)]
}

/// CIE76 colour difference.
pub fn delta_e(a: [f64; 3], b: [f64; 3]) -> f64 {
    let (p, q) = (lab(a), lab(b));
    ((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2) + (p[2] - q[2]).powi(2)).sqrt()
}

fn dist(a: Point, b: Point) -> f64 {
    ((a.x - b.x) as f64).hypot((a.y - b.y) as f64)
}

pub(crate) fn polygon(lm: &Landmarks468, ids: &[usize]) -> Vec<(f64, f64)> {
    ids.iter()
        .map(|&i| {
            let p = lm.point(i);
            (p.x as f64, p.y as f64)
        })
        .collect()
}

fn inside(poly: &[(f64, f64)], x: f64, y: f64) -> bool {
    let mut c = false;
    let n = poly.len();
    let mut j = n - 1;
    for i in 0..n {
        let (xi, yi) = poly[i];
        let (xj, yj) = poly[j];
        if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
            c = !c;
        }
        j = i;
    }
    c
}

/// Pixels inside a polygon, sampled with `step`, clipped to the image.
pub(crate) fn pixels_in(img: &RgbImage, poly: &[(f64, f64)], step: u32) -> Vec<[u8; 3]> {
    let (w, h) = img.dimensions();
    let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for &(x, y) in poly {
        x0 = x0.min(x);
        y0 = y0.min(y);
        x1 = x1.max(x);
        y1 = y1.max(y);
    }
    let clamp = |v: f64, hi: u32| v.clamp(0.0, hi.saturating_sub(1) as f64) as u32;
    let (x0, x1, y0, y1) = (clamp(x0, w), clamp(x1, w), clamp(y0, h), clamp(y1, h));
    let mut out = Vec::new();
    let mut y = y0;
    while y <= y1 {
        let mut x = x0;
        while x <= x1 {
            if inside(poly, x as f64 + 0.5, y as f64 + 0.5) {
                out.push(img.get_pixel(x, y).0);
            }
            x += step.max(1);
        }
        y += step.max(1);
    }
    out
}

fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

fn quantile(v: &mut [f64], q: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[((v.len() - 1) as f64 * q).round() as usize])
}

/// The crop the backdrop and clothing are judged in, in capture pixels: `(x, y, w, h)`.
pub type Rect = (f64, f64, f64, f64);

/// Measures the face with its landmarks. `crop` is the planned (or nominal) 3:4 crop, `out_scale` the
/// output pixels per capture pixel, `backdrop_rgb` the spec colour, `hair_top_y` the top of the head.
pub fn measure_face(
    img: &RgbImage,
    lm: &Landmarks468,
    crop: Rect,
    out_scale: f64,
    backdrop_rgb: [u8; 3],
    hair_top_y: Option<f64>,
) -> FaceMeasures {
    let fw = dist(lm.point(idx::CHEEK_RIGHT), lm.point(idx::CHEEK_LEFT));
    let mut m = FaceMeasures::default();
    if !(fw.is_finite() && fw > 20.0) {
        return m;
    }
    pose(lm, &mut m);
    eyes_and_mouth(img, lm, fw, &mut m);
    m.sharpness = sharpness(img, lm, fw, out_scale);
    skin(img, lm, fw, &mut m);
    let reference = backdrop_reference(img, lm, crop, fw, hair_top_y, backdrop_rgb);
    if let Some(r) = reference {
        m.exposure_ev = exposure_ev(r, backdrop_rgb);
    }
    backdrop_and_clothing(img, lm, crop, fw, reference, backdrop_rgb, &mut m);
    m.hair_over_brows = super::advisory::hair_over_brows(img, lm, fw);
    m.hair_over_ears = super::advisory::hair_over_ears(img, lm, fw);
    m.head_covering = super::advisory::head_covering(img, lm, fw, hair_top_y);
    m.jewellery = super::advisory::jewellery(img, lm, fw);
    m
}

/// Head pose (yaw, pitch, 3D roll) from the FaceMesh depth; also used per preview frame by liveness.
pub(crate) fn pose(lm: &Landmarks468, m: &mut FaceMeasures) {
    let p = |i: usize| lm.points[i];
    let centre = |ids: &[usize]| {
        let mut c = [0.0f64; 3];
        for &i in ids {
            for k in 0..3 {
                c[k] += lm.points[i][k] as f64 / ids.len() as f64;
            }
        }
        c
    };
    let (re, le) = (centre(&idx::RIGHT_EYE), centre(&idx::LEFT_EYE));
    let mut x = [le[0] - re[0], le[1] - re[1], le[2] - re[2]];
    let (f3, c3) = (p(idx::FOREHEAD), p(idx::CHIN));
    let mut y = [
        (c3[0] - f3[0]) as f64,
        (c3[1] - f3[1]) as f64,
        (c3[2] - f3[2]) as f64,
    ];
    let norm = |v: &mut [f64; 3]| {
        let n = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt().max(1e-9);
        v.iter_mut().for_each(|c| *c /= n);
    };
    norm(&mut x);
    let d = x[0] * y[0] + x[1] * y[1] + x[2] * y[2];
    for k in 0..3 {
        y[k] -= d * x[k];
    }
    norm(&mut y);
    // Head rotation = yaw * pitch * roll (intrinsic): the roll is atan2 of the head axes' vertical parts.
    m.roll_3d_deg = Some(x[1].atan2(y[1]).to_degrees());
    let (r, l) = (p(idx::CHEEK_RIGHT), p(idx::CHEEK_LEFT));
    // The cheek line's depth slope is the turn; FaceMesh's z is in the same pixel scale as x.
    m.yaw_deg = Some(
        ((l[2] - r[2]) as f64)
            .atan2(((l[0] - r[0]) as f64).hypot((l[1] - r[1]) as f64))
            .to_degrees(),
    );
    let (f, c) = (p(idx::FOREHEAD), p(idx::CHIN));
    let raw = ((c[2] - f[2]) as f64)
        .atan2(((c[1] - f[1]) as f64).hypot((c[0] - f[0]) as f64))
        .to_degrees();
    // The forehead point sits further back than the chin on an upright face; this is that lean, the
    // median over the eight base photos of the two labelled corpora (their own range 0.5-11 deg shows
    // why pitch cannot be decided to 5 deg from one photo), removed so 0 means level.
    m.pitch_deg = Some(raw - PITCH_NEUTRAL_DEG);
}

/// Forehead-chin lean of an upright face in FaceMesh coordinates (see [`pose`]).
const PITCH_NEUTRAL_DEG: f64 = 5.0;

fn eye_ratio(lm: &Landmarks468, ids: [usize; 6]) -> f64 {
    let p = |i: usize| lm.point(ids[i]);
    let width = dist(p(0), p(1)).max(1e-3);
    (dist(p(2), p(3)) + dist(p(4), p(5))) / (2.0 * width)
}

fn eyes_and_mouth(img: &RgbImage, lm: &Landmarks468, fw: f64, m: &mut FaceMeasures) {
    let (r, l) = (eye_ratio(lm, idx::RIGHT_EAR), eye_ratio(lm, idx::LEFT_EAR));
    m.eye_open = Some((r, l));
    m.eye_open_min = Some(r.min(l));
    let width = dist(lm.point(idx::MOUTH_RIGHT), lm.point(idx::MOUTH_LEFT)).max(1e-3);
    m.mouth_gap = Some(dist(lm.point(idx::LIP_UPPER_INNER), lm.point(idx::LIP_LOWER_INNER)) / width);

    // Teeth: inside the outer lip contour (FaceMesh often closes the inner contour over a toothy smile),
    // pixels much brighter and less saturated than the lips around them.
    let step = ((fw / 160.0).round() as u32).max(1);
    let outer = pixels_in(img, &polygon(lm, &idx::OUTER_LIPS), step);
    if outer.len() < 20 {
        return;
    }
    let sat = |p: [u8; 3]| {
        let mx = *p.iter().max().unwrap_or(&0) as f64;
        let mn = *p.iter().min().unwrap_or(&0) as f64;
        if mx < 1.0 { 0.0 } else { (mx - mn) / mx }
    };
    let mut lums: Vec<f64> = outer.iter().map(|&p| luma_lin(p) as f64).collect();
    let lip_lum = median(&mut lums).unwrap_or(0.0);
    let mut sats: Vec<f64> = outer.iter().map(|&p| sat(p)).collect();
    let lip_sat = median(&mut sats).unwrap_or(0.0);
    // Teeth are near white: red barely above green, unlike a lip however pale (a pale lower lip on dark
    // skin is brighter than the lip median but still pink), and brighter than the lips.
    let _ = lip_sat;
    let teeth = outer
        .iter()
        .filter(|&&p| {
            let l = luma_lin(p) as f64;
            let (r, g) = (p[0] as f64, p[1] as f64);
            l > lip_lum * 1.3 && l > 0.1 && (r - g) < 0.12 * r && sat(p) < 0.35
        })
        .count();
    m.teeth_frac = Some(teeth as f64 / outer.len() as f64);
    let dark = outer
        .iter()
        .filter(|&&p| (luma_lin(p) as f64) < lip_lum * 0.3)
        .count();
    m.mouth_dark_frac = Some(dark as f64 / outer.len() as f64);
}

/// How far below the eye corners the focus band reaches, in face widths: the lower lids and the
/// creases under them, not the smooth cheeks down to the nose tip, where sensor noise and JPEG blocks
/// are most of what there is to measure (a small effect on the corpora: 0.01-0.02 of the ratio).
const SHARPNESS_BELOW_EYES: f64 = 0.2;

/// Focus around the eyes at the output's scale: the mean absolute Laplacian over the mean absolute
/// gradient. Both grow with contrast, so the ratio follows only how fine the edges are.
fn sharpness(img: &RgbImage, lm: &Landmarks468, fw: f64, out_scale: f64) -> Option<f64> {
    let (re, le) = (lm.point(33), lm.point(263));
    let brow_y = lm.point(idx::BROW_RIGHT).y.min(lm.point(idx::BROW_LEFT).y) as f64;
    let eye_y = re.y.max(le.y) as f64;
    let x0 = re.x.min(le.x) as f64 - 0.08 * fw;
    let x1 = re.x.max(le.x) as f64 + 0.08 * fw;
    let (y0, y1) = (brow_y - 0.05 * fw, eye_y + SHARPNESS_BELOW_EYES * fw);
    let (w, h) = img.dimensions();
    if x0 < 0.0 || y0 < 0.0 || x1 >= w as f64 || y1 >= h as f64 || x1 - x0 < 16.0 || y1 - y0 < 8.0 {
        return None;
    }
    let s = out_scale.clamp(0.05, 1.0);
    let (ow, oh) = (((x1 - x0) * s) as usize, ((y1 - y0) * s) as usize);
    if ow < 12 || oh < 8 {
        return None;
    }
    // Resampled with the standardized photo's own filter (Catmull-Rom), so the measure sees what the
    // filed photo will show. An area average instead blurs a reduction close to 1 (each output pixel
    // straddling two source pixels): a sharp face filmed small, reduced by 0.96, read as out of focus.
    let region = (x0 as u32, y0 as u32, (x1 - x0) as u32, (y1 - y0) as u32);
    let small = super::standardize::resize_region(img, region, ow as u32, oh as u32);
    let g: Vec<f64> = small
        .pixels()
        .map(|p| 0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64)
        .collect();
    let (mut lap, mut grad) = (0.0, 0.0);
    for y in 1..oh - 1 {
        for x in 1..ow - 1 {
            let c = g[y * ow + x];
            let (l, r, u, d) = (
                g[y * ow + x - 1],
                g[y * ow + x + 1],
                g[(y - 1) * ow + x],
                g[(y + 1) * ow + x],
            );
            lap += (l + r + u + d - 4.0 * c).abs();
            grad += ((r - l) / 2.0).abs() + ((d - u) / 2.0).abs();
        }
    }
    if grad <= 1e-6 { None } else { Some(lap / grad) }
}

/// Shannon entropy of a histogram, in bits.
fn entropy_bits(hist: &[u32]) -> f64 {
    let n: f64 = hist.iter().map(|&c| c as f64).sum();
    if n <= 0.0 {
        return 0.0;
    }
    hist.iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

/// Skin statistics on the face oval without eyes, brows and mouth: clipping, crushing, cheek light,
/// specular hot spots and red eye.
fn skin(img: &RgbImage, lm: &Landmarks468, fw: f64, m: &mut FaceMeasures) {
    let step = ((fw / 120.0).round() as u32).max(1);
    let oval = polygon(lm, &idx::FACE_OVAL);
    let holes = [
        polygon(lm, &idx::RIGHT_EYE),
        polygon(lm, &idx::LEFT_EYE),
        polygon(lm, &idx::OUTER_LIPS),
    ];
    let (w, h) = img.dimensions();
    let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for &(x, y) in &oval {
        x0 = x0.min(x);
        y0 = y0.min(y);
        x1 = x1.max(x);
        y1 = y1.max(y);
    }
    let mut px = Vec::new();
    let mut coords = Vec::new();
    // Luma histogram of the whole oval, eyes, brows and mouth included, for the dynamic range.
    let mut hist = [0u32; 256];
    let mut y = y0.max(0.0) as u32;
    while (y as f64) <= y1.min(h as f64 - 1.0) {
        let mut x = x0.max(0.0) as u32;
        while (x as f64) <= x1.min(w as f64 - 1.0) {
            let (fx, fy) = (x as f64 + 0.5, y as f64 + 0.5);
            if inside(&oval, fx, fy) {
                let p = img.get_pixel(x, y).0;
                let l = 0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64;
                hist[(l.round() as usize).min(255)] += 1;
                if !holes.iter().any(|q| inside(q, fx, fy)) {
                    px.push(p);
                    coords.push((fx, fy));
                }
            }
            x += step;
        }
        y += step;
    }
    if px.len() < 100 {
        return;
    }
    m.dynamic_range_bits = Some(entropy_bits(&hist));
    let n = px.len() as f64;
    // Clipped in any channel: warm skin saturating in red alone counts too (it loses detail), which is
    // why the band allows a little of it.
    m.skin_clipped = Some(px.iter().filter(|p| p.iter().any(|&c| c >= 250)).count() as f64 / n);
    m.skin_crushed = Some(px.iter().filter(|&&p| luma_lin(p) <= linear(10)).count() as f64 / n);
    let mut lums: Vec<f64> = px.iter().map(|&p| luma_lin(p) as f64).collect();
    let skin_lum = median(&mut lums).unwrap_or(0.0);
    // A hot spot is near white (every channel high, little colour) and far above the skin's median: warm
    // skin saturating in red alone is not a specular highlight.
    let hot = px
        .iter()
        .filter(|&&p| {
            let mn = *p.iter().min().unwrap_or(&0);
            let mx = *p.iter().max().unwrap_or(&0);
            mn >= 225 && (mx - mn) <= 40 && luma_lin(p) as f64 > skin_lum * 1.6
        })
        .count();
    m.highlight_frac = Some(hot as f64 / n);

    // Left/right light: the skin between the eye line and the mouth, beside the nose, one median per
    // side, in the face's own axes (so a tilted head still splits at its nose).
    let (er, el) = (lm.point(33), lm.point(263));
    let ang = ((el.y - er.y) as f64).atan2((el.x - er.x) as f64);
    let (sn, cs) = ang.sin_cos();
    let nose = lm.point(idx::NOSE_TIP);
    let eye_y = (er.y + el.y) as f64 / 2.0;
    let mouth_y = (lm.point(idx::MOUTH_RIGHT).y + lm.point(idx::MOUTH_LEFT).y) as f64 / 2.0;
    let (v0, v1) = (
        (eye_y - nose.y as f64) * cs + 0.08 * fw,
        (mouth_y - nose.y as f64) * cs,
    );
    let (mut right, mut left) = (Vec::new(), Vec::new());
    for (p, &(x, y)) in px.iter().zip(&coords) {
        let (dx, dy) = (x - nose.x as f64, y - nose.y as f64);
        let u = dx * cs + dy * sn;
        let v = -dx * sn + dy * cs;
        if v < v0 || v > v1 || u.abs() < 0.1 * fw || u.abs() > 0.36 * fw {
            continue;
        }
        let l = luma_lin(*p) as f64;
        // Skin only: hair or a beard over the cheek is much darker than the face's median.
        if l < skin_lum * 0.25 {
            continue;
        }
        if u < 0.0 { right.push(l) } else { left.push(l) }
    }
    if right.len() >= 30
        && left.len() >= 30
        && let (Some(a), Some(b)) = (median(&mut right), median(&mut left))
        && a > 1e-4
        && b > 1e-4
    {
        m.cheek_ratio = Some(a.max(b) / a.min(b));
    }

    // Eyes: iris and pupil are much darker than the skin; a closed lid is skin.
    let dark_in = |poly: &[(f64, f64)]| {
        let e = pixels_in(img, poly, 1);
        if e.len() < 12 {
            return None;
        }
        let d = e
            .iter()
            .filter(|&&p| (luma_lin(p) as f64) < skin_lum * 0.3)
            .count();
        Some(d as f64 / e.len() as f64)
    };
    if let (Some(r), Some(l)) = (dark_in(&holes[0]), dark_in(&holes[1])) {
        m.eye_dark = Some((r, l));
    }
}

/// The backdrop's colour in the crop, from the candidate regions that should be bare backdrop (the band
/// above the head, the crop's upper corners): the median colour of the candidate closest in chromaticity
/// to the spec colour, so hair, a cap or an object in one of them does not become the reference.
/// Chromaticity survives an exposure error, which is what this reference is used to measure. `None`
/// when no candidate region lies in the frame.
fn backdrop_reference(
    img: &RgbImage,
    lm: &Landmarks468,
    crop: Rect,
    fw: f64,
    hair_top: Option<f64>,
    spec: [u8; 3],
) -> Option<[f64; 3]> {
    let (cx, cy, cw, ch) = crop;
    let face_x = lm.point(idx::NOSE_TIP).x as f64;
    let top = hair_top.unwrap_or(lm.point(idx::FOREHEAD).y as f64 - 0.4 * fw);
    let candidates = [
        (cx, cy.max(top - fw), cx + cw, top - 0.04 * fw),
        (cx, cy, cx + 0.2 * cw, cy + 0.25 * ch),
        (cx + 0.8 * cw, cy, cx + cw, cy + 0.25 * ch),
        (cx, cy, (face_x - 0.9 * fw).min(cx + cw), cy + 0.4 * ch),
        ((face_x + 0.9 * fw).max(cx), cy, cx + cw, cy + 0.4 * ch),
    ];
    let ssum = spec.iter().map(|&c| c as f64).sum::<f64>().max(1.0);
    let mut best: Option<(f64, [f64; 3])> = None;
    for (x0, y0, x1, y1) in candidates {
        if x1 - x0 < 12.0 || y1 - y0 < 6.0 {
            continue;
        }
        let mut v: [Vec<f64>; 3] = Default::default();
        sample_rect(img, (x0, y0, x1, y1), 4, &mut v);
        if v[0].len() < 20 {
            continue;
        }
        let Some(c) = median_rgb(&mut v) else { continue };
        let sum = c.iter().sum::<f64>().max(1.0);
        let d = (0..3)
            .map(|i| (c[i] / sum - spec[i] as f64 / ssum).abs())
            .fold(0.0, f64::max);
        if best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

fn sample_rect(img: &RgbImage, (x0, y0, x1, y1): (f64, f64, f64, f64), step: usize, v: &mut [Vec<f64>; 3]) {
    let (w, h) = img.dimensions();
    let (x0, x1) = (x0.max(0.0) as u32, (x1.min(w as f64)) as u32);
    let (y0, y1) = (y0.max(0.0) as u32, (y1.min(h as f64)) as u32);
    for y in (y0..y1).step_by(step) {
        for x in (x0..x1).step_by(step) {
            let p = img.get_pixel(x, y).0;
            for c in 0..3 {
                v[c].push(p[c] as f64);
            }
        }
    }
}

fn median_rgb(v: &mut [Vec<f64>; 3]) -> Option<[f64; 3]> {
    Some([median(&mut v[0])?, median(&mut v[1])?, median(&mut v[2])?])
}

/// Exposure in EV from the backdrop: the measured over the spec colour in linear light, averaged over the
/// channels that are neither clipped nor too dark to read (the lit backdrop's level is the kiosk's
/// exposure reference).
fn exposure_ev(measured: [f64; 3], spec: [u8; 3]) -> Option<f64> {
    let lin = |c: f64| linear(c.round().clamp(0.0, 255.0) as u8) as f64;
    let mut evs = Vec::new();
    for c in 0..3 {
        let (m, s) = (measured[c], spec[c] as f64);
        if !(30.0..245.0).contains(&s) || m < 8.0 {
            continue;
        }
        // A clipped reading only bounds the exposure from below.
        let ev = (lin(m) / lin(s)).log2();
        evs.push(if m >= 250.0 { ev.max(0.0) } else { ev });
    }
    if evs.is_empty() {
        return None;
    }
    Some(evs.iter().sum::<f64>() / evs.len() as f64)
}

/// The backdrop in the crop, in blocks: blocks whose colour is close to the reference backdrop colour
/// (chromaticity and level) are backdrop; non-backdrop blocks connected to the face are the person;
/// the rest is foreign (an object, a second person). Clothing is the person below the chin.
fn backdrop_and_clothing(
    img: &RgbImage,
    lm: &Landmarks468,
    crop: Rect,
    fw: f64,
    reference: Option<[f64; 3]>,
    spec_rgb: [u8; 3],
    m: &mut FaceMeasures,
) {
    let Some(reference) = reference else { return };
    let (w, h) = img.dimensions();
    let (cx, cy, cw, ch) = crop;
    let (x0, y0) = (cx.max(0.0), cy.max(0.0));
    let (x1, y1) = ((cx + cw).min(w as f64), (cy + ch).min(h as f64));
    const NX: usize = 24;
    if x1 - x0 < NX as f64 * 2.0 || y1 - y0 < 32.0 {
        return;
    }
    let bs = (x1 - x0) / NX as f64;
    let ny = ((y1 - y0) / bs).floor() as usize;
    if ny < 4 {
        return;
    }
    let ref_sum = reference.iter().sum::<f64>().max(1.0);
    let ref_chroma = reference.map(|c| c / ref_sum);
    let ref_lum = reference
        .iter()
        .zip([0.299, 0.587, 0.114])
        .map(|(c, k)| c * k)
        .sum::<f64>()
        .max(1.0);
    let mut means = vec![[0.0f64; 3]; NX * ny];
    let mut is_bg = vec![false; NX * ny];
    let mut lum = vec![0.0f64; NX * ny];
    for by in 0..ny {
        for bx in 0..NX {
            let (bx0, by0) = (x0 + bx as f64 * bs, y0 + by as f64 * bs);
            let mut acc = [0.0f64; 3];
            let mut n = 0.0f64;
            let mut all_bg = true;
            let st = (bs / 4.0).max(1.0);
            let mut yy = by0;
            while yy < by0 + bs && (yy as u32) < h {
                let mut xx = bx0;
                while xx < bx0 + bs && (xx as u32) < w {
                    let p = img.get_pixel(xx as u32, yy as u32).0.map(|c| c as f64);
                    let s = p.iter().sum::<f64>().max(1.0);
                    let l = 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2];
                    let chroma_d = (0..3)
                        .map(|c| (p[c] / s - ref_chroma[c]).abs())
                        .fold(0.0, f64::max);
                    // A pixel is backdrop-like by colour; its level may drop (a shadow) but not vanish.
                    if chroma_d > 0.045 || l < ref_lum * 0.45 || l > ref_lum * 1.25 {
                        all_bg = false;
                    }
                    for c in 0..3 {
                        acc[c] += p[c];
                    }
                    n += 1.0;
                    xx += st;
                }
                yy += st;
            }
            let i = by * NX + bx;
            means[i] = acc.map(|a| a / n.max(1.0));
            lum[i] = 0.299 * means[i][0] + 0.587 * means[i][1] + 0.114 * means[i][2];
            is_bg[i] = all_bg;
        }
    }
    // The person: flood fill of non-backdrop blocks from the face and from the bottom row under it.
    let mut person = vec![false; NX * ny];
    let nose = lm.point(idx::NOSE_TIP);
    let seed_x = (((nose.x as f64 - x0) / bs) as usize).min(NX - 1);
    let seed_y = (((nose.y as f64 - y0) / bs).max(0.0) as usize).min(ny - 1);
    let mut stack = vec![(seed_x, seed_y), (seed_x, ny - 1)];
    while let Some((x, y)) = stack.pop() {
        let i = y * NX + x;
        if person[i] || is_bg[i] {
            continue;
        }
        person[i] = true;
        if x > 0 {
            stack.push((x - 1, y));
        }
        if x + 1 < NX {
            stack.push((x + 1, y));
        }
        if y > 0 {
            stack.push((x, y - 1));
        }
        if y + 1 < ny {
            stack.push((x, y + 1));
        }
    }
    let total = (NX * ny) as f64;
    let foreign = (0..NX * ny).filter(|&i| !is_bg[i] && !person[i]).count();
    m.backdrop_foreign = Some(foreign as f64 / total);
    let mut bg_l: Vec<f64> = (0..NX * ny).filter(|&i| is_bg[i]).map(|i| lum[i]).collect();
    let mut bg_c: [Vec<f64>; 3] = Default::default();
    for i in (0..NX * ny).filter(|&i| is_bg[i]) {
        for c in 0..3 {
            bg_c[c].push(means[i][c]);
        }
    }
    if bg_l.len() >= 8 {
        let med = median(&mut bg_l).unwrap_or(1.0).max(1.0);
        let lo = quantile(&mut bg_l, 0.02).unwrap_or(med);
        let hi = quantile(&mut bg_l, 0.98).unwrap_or(med);
        m.backdrop_unevenness = Some((1.0 - lo / med).max(hi / med - 1.0));
        if let Some(c) = median_rgb(&mut bg_c) {
            m.backdrop_delta_e = Some(delta_e(c, spec_rgb.map(|v| v as f64)));
        }
    }

    // Clothing: the chest below the collar, under the chin, down to the crop's bottom. Not the full
    // shoulder width: beside a narrow or turned torso that would be the backdrop itself (a white shirt
    // on a turned body read 0.27 "like the backdrop" over +-0.9 face widths).
    let chin = lm.point(idx::CHIN);
    let (mut ty0, mut ty1) = (chin.y as f64 + 0.35 * fw, y1);
    let (tx0, tx1) = (chin.x as f64 - 0.6 * fw, chin.x as f64 + 0.6 * fw);
    if ty1 - ty0 < 0.1 * fw {
        // The chest is below the crop (a face too large or too low to place): judge the collar and
        // shoulders that the frame does show, from just under the chin to the frame's bottom. The neck
        // in that band reads as "not backdrop", which a blue top still outweighs (0.4-1.0 against a
        // limit of 0.2-0.35). Without even that much below the chin, the clothing is undetermined.
        (ty0, ty1) = (chin.y as f64 + 0.12 * fw, h as f64);
        if ty1 - ty0 < 0.06 * fw {
            return;
        }
    }
    let (mut n, mut like) = (0u32, 0u32);
    let st = (fw / 60.0).max(1.0);
    let mut yy = ty0;
    while yy < ty1 && (yy as u32) < h {
        let mut xx = tx0.max(0.0);
        while xx < tx1 && (xx as u32) < w {
            let p = img.get_pixel(xx as u32, yy as u32).0.map(|c| c as f64);
            let s = p.iter().sum::<f64>().max(1.0);
            let l = 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2];
            let chroma_d = (0..3)
                .map(|c| (p[c] / s - ref_chroma[c]).abs())
                .fold(0.0, f64::max);
            n += 1;
            if chroma_d < 0.06 && l > ref_lum * 0.35 && l < ref_lum * 1.3 {
                like += 1;
            }
            xx += st;
        }
        yy += st;
    }
    if n > 50 {
        m.clothing_like_backdrop = Some(like as f64 / n as f64);
    }
}
