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

    /// Whether a pixel looks like the backdrop.
    pub fn is_backdrop(&self, px: [u8; 3]) -> bool {
        let m = px[self.dominant];
        if m < self.min_level || px.iter().any(|&c| c > m) {
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
}
