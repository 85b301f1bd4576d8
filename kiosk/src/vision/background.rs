//! The kiosk's physical backdrop, segmented by colour: which pixels are backdrop, and where the top of
//! the hair is (the first rows above the face that are not backdrop).
//!
//! This works because the kiosk shoots against a known, evenly lit backdrop (PRODUCT.md section 3); it is
//! no matting and no background replacement, and it knows nothing of faces beyond the band it is given.

use image::RgbImage;

/// Classifies pixels as backdrop by chromaticity relative to the spec colour, so the darker corners of
/// an unevenly lit backdrop still count while hair, skin and most clothing do not.
#[derive(Clone, Copy, Debug)]
pub struct Backdrop {
    /// The spec colour divided by its largest channel.
    chroma: [f32; 3],
    /// Index of the spec colour's largest channel.
    dominant: usize,
    tolerance: f32,
    min_level: u8,
}

impl Backdrop {
    pub fn new(rgb: [u8; 3]) -> Backdrop {
        let dominant = (0..3).max_by_key(|&i| rgb[i]).unwrap_or(2);
        let m = rgb[dominant].max(1) as f32;
        Backdrop {
            chroma: rgb.map(|c| c as f32 / m),
            dominant,
            tolerance: 0.13,
            // Backdrop pixels are lit; very dark pixels are hair or clothing whatever their hue.
            min_level: (rgb[dominant] as f32 * 0.45) as u8,
        }
    }

    /// The backdrop as this frame shows it: the median colour of the frame's top corners, the part of a
    /// kiosk frame that is bare backdrop, when it has the spec colour's hue; otherwise the spec colour.
    ///
    /// An exposure error changes the backdrop's level and, once a channel clips, its chromaticity too
    /// (the light-blue backdrop at +0.9 EV reads (130, 254, 254)): classified against the spec colour,
    /// none of it is backdrop and the top of the hair is "found" at the top edge. The hue test keeps a
    /// corner covered by hair, a cap or a coat from becoming the reference.
    pub fn observed(img: &RgbImage, spec: [u8; 3]) -> Backdrop {
        let (w, h) = img.dimensions();
        let (cw, ch) = (w / 8, h / 10);
        if cw < 4 || ch < 4 {
            return Backdrop::new(spec);
        }
        let spec_hue = hue(spec.map(f32::from));
        let best = [0, w - cw]
            .into_iter()
            .filter_map(|x0| {
                let mut v: [Vec<u8>; 3] = Default::default();
                for y in (0..ch).step_by(3) {
                    for x in (x0..x0 + cw).step_by(3) {
                        let p = img.get_pixel(x, y).0;
                        for c in 0..3 {
                            v[c].push(p[c]);
                        }
                    }
                }
                let med = v.map(|mut c| {
                    c.sort_unstable();
                    c[c.len() / 2]
                });
                let d = match (hue(med.map(f32::from)), spec_hue) {
                    (Some(a), Some(b)) => hue_distance(a, b),
                    // A grey or white backdrop against a grey or white spec.
                    (None, None) => 0.0,
                    _ => return None,
                };
                (d <= OBSERVED_HUE_TOLERANCE_DEG && med.iter().any(|&c| c >= 40)).then_some((d, med))
            })
            .min_by(|a, b| a.0.total_cmp(&b.0));
        match best {
            Some((_, med)) => Backdrop::new(med),
            None => Backdrop::new(spec),
        }
    }

    /// Whether a pixel looks like the backdrop.
    pub fn is_backdrop(&self, px: [u8; 3]) -> bool {
        // No test that the dominant channel is the largest: the chromaticity test below already rejects
        // another channel well above it, and a clipped backdrop (two channels at 255) or a white one
        // must not depend on which of its equal channels happens to be a level higher.
        let m = px[self.dominant];
        if m < self.min_level {
            return false;
        }
        let m = m as f32;
        (0..3).all(|i| (px[i] as f32 / m - self.chroma[i]).abs() <= self.tolerance)
    }

    /// The top of the hair above a face: scanning down from the top edge in a band of columns centred
    /// on `centre_x` (a third of the face width each side), the first row where most sampled pixels stop
    /// being backdrop and stay so for a few rows. `Some(0.0)` when the very first row is not backdrop
    /// (the head or something else reaches the top edge); `None` if nothing but backdrop lies above
    /// `below_y`.
    pub fn hair_top(&self, img: &RgbImage, centre_x: f64, face_width: f64, below_y: f64) -> Option<f64> {
        let (w, h) = img.dimensions();
        if w == 0 || h == 0 {
            return None;
        }
        let half = (face_width / 3.0).max(2.0);
        let x0 = (centre_x - half).clamp(0.0, (w - 1) as f64) as u32;
        let x1 = (centre_x + half).clamp(0.0, (w - 1) as f64) as u32;
        let y_end = below_y.clamp(0.0, h as f64) as u32;
        let step = ((x1 - x0) / 48).max(1);
        let row_is_head = |y: u32| {
            let (mut total, mut head) = (0u32, 0u32);
            let mut x = x0;
            while x <= x1 {
                total += 1;
                if !self.is_backdrop(img.get_pixel(x, y).0) {
                    head += 1;
                }
                x += step;
            }
            total > 0 && head * 2 > total
        };
        const RUN: u32 = 4;
        let mut y = 0;
        while y < y_end {
            if (y..(y + RUN).min(y_end)).all(row_is_head) {
                return Some(y as f64);
            }
            y += 1;
        }
        None
    }

    /// Fraction of the pixels in a rectangle that are backdrop (sampled), for the background check.
    pub fn fraction(&self, img: &RgbImage, x0: u32, y0: u32, x1: u32, y1: u32) -> f64 {
        let (w, h) = img.dimensions();
        let (x1, y1) = (x1.min(w), y1.min(h));
        let (mut total, mut bg) = (0u64, 0u64);
        for y in (y0..y1).step_by(3) {
            for x in (x0..x1).step_by(3) {
                total += 1;
                bg += self.is_backdrop(img.get_pixel(x, y).0) as u64;
            }
        }
        if total == 0 { 0.0 } else { bg as f64 / total as f64 }
    }
}

/// How far the hue of the frame's corners may be from the spec colour's for them to be taken as the
/// backdrop (degrees). The light-blue backdrop clipped at +0.9 EV moves 11 degrees.
const OBSERVED_HUE_TOLERANCE_DEG: f32 = 25.0;

/// Hue in degrees (HSV), or `None` for a grey (no hue).
fn hue([r, g, b]: [f32; 3]) -> Option<f32> {
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    let d = max - min;
    if d < 0.08 * max.max(1.0) {
        return None;
    }
    let h = if max == r {
        60.0 * ((g - b) / d)
    } else if max == g {
        60.0 * ((b - r) / d + 2.0)
    } else {
        60.0 * ((r - g) / d + 4.0)
    };
    Some(h.rem_euclid(360.0))
}

fn hue_distance(a: f32, b: f32) -> f32 {
    let d = (a - b).abs() % 360.0;
    d.min(360.0 - d)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLUE: [u8; 3] = [100, 197, 255];

    #[test]
    fn backdrop_and_its_darker_corners_are_backdrop_hair_and_skin_are_not() {
        let b = Backdrop::new(BLUE);
        assert!(b.is_backdrop(BLUE));
        assert!(b.is_backdrop([91, 179, 232]), "9 % darker corner");
        assert!(!b.is_backdrop([40, 30, 25]), "dark hair");
        assert!(!b.is_backdrop([220, 170, 140]), "skin");
        assert!(!b.is_backdrop([250, 250, 250]), "white cap");
        assert!(!b.is_backdrop([20, 40, 90]), "navy uniform is too dark");
    }

    #[test]
    fn hair_top_is_the_first_non_backdrop_rows_above_the_face() {
        let mut img = RgbImage::from_pixel(200, 300, image::Rgb(BLUE));
        for y in 80..300 {
            for x in 60..140 {
                img.put_pixel(x, y, image::Rgb([30, 25, 20]));
            }
        }
        let b = Backdrop::new(BLUE);
        assert_eq!(b.hair_top(&img, 100.0, 90.0, 200.0), Some(80.0));
        assert_eq!(
            b.hair_top(&img, 20.0, 12.0, 200.0),
            None,
            "only backdrop in that band"
        );
        let full = RgbImage::from_pixel(50, 50, image::Rgb([30, 25, 20]));
        assert_eq!(b.hair_top(&full, 25.0, 30.0, 40.0), Some(0.0));
    }

    /// A frame with `backdrop` everywhere and a dark head from row 80 down in the middle columns.
    fn head_on(backdrop: [u8; 3]) -> RgbImage {
        let mut img = RgbImage::from_pixel(400, 300, image::Rgb(backdrop));
        for y in 80..300 {
            for x in 150..250 {
                img.put_pixel(x, y, image::Rgb([30, 25, 20]));
            }
        }
        img
    }

    #[test]
    fn an_overexposed_backdrop_is_still_found_from_the_frame_corners() {
        // The light-blue backdrop at +0.9 EV: green and blue clip.
        let img = head_on([130, 254, 254]);
        assert!(
            !Backdrop::new(BLUE).is_backdrop([130, 254, 254]),
            "not the spec colour any more"
        );
        assert_eq!(
            Backdrop::new(BLUE).hair_top(&img, 200.0, 90.0, 200.0),
            Some(0.0),
            "against the spec colour the head seems to reach the top edge"
        );
        let b = Backdrop::observed(&img, BLUE);
        assert!(b.is_backdrop([130, 254, 254]) && b.is_backdrop([131, 255, 253]));
        assert!(!b.is_backdrop([250, 250, 250]) && !b.is_backdrop([220, 170, 140]));
        assert_eq!(b.hair_top(&img, 200.0, 90.0, 200.0), Some(80.0));
        // An underexposed one too.
        let dark = head_on([45, 100, 140]);
        assert_eq!(
            Backdrop::observed(&dark, BLUE).hair_top(&dark, 200.0, 90.0, 200.0),
            Some(80.0)
        );
    }

    #[test]
    fn corners_of_another_hue_do_not_become_the_backdrop() {
        // Something brown fills the top of the frame: the spec colour stays the reference.
        let img = head_on([120, 80, 50]);
        let b = Backdrop::observed(&img, BLUE);
        assert!(b.is_backdrop(BLUE) && !b.is_backdrop([120, 80, 50]));
        // One corner covered (a coat), the other bare: the bare one is taken.
        let mut img = head_on([130, 254, 254]);
        for y in 0..40 {
            for x in 0..60 {
                img.put_pixel(x, y, image::Rgb([200, 60, 40]));
            }
        }
        assert!(Backdrop::observed(&img, BLUE).is_backdrop([130, 254, 254]));
    }

    #[test]
    fn a_white_backdrop_is_backdrop_whichever_channel_is_highest() {
        let b = Backdrop::new([255, 255, 255]);
        for px in [[250, 252, 248], [252, 248, 250], [248, 250, 252]] {
            assert!(b.is_backdrop(px), "{px:?}");
        }
        assert!(!b.is_backdrop([220, 170, 140]), "skin");
        let img = head_on([235, 236, 233]);
        assert_eq!(
            Backdrop::observed(&img, [255, 255, 255]).hair_top(&img, 200.0, 90.0, 200.0),
            Some(80.0)
        );
    }
}
