//! The print layout sheet (排版照) for the print shop: copies of the standardized photo on a 6-inch
//! (4 x 6 in) sheet at 300 dpi, with gaps between them and cut marks at every corner.
//!
//! Two layouts: 8 one-inch copies (25 x 35 mm, 295 x 413 px) on a landscape sheet (1800 x 1200 px),
//! 4 x 2; and 4 two-inch copies (35 x 49 mm, 413 x 579 px) on a portrait sheet (1200 x 1800 px), 2 x 2.
//! Both print sizes are 5:7, narrower than the 3:4 file, so each copy is the photo with its sides
//! trimmed equally (11 px each side of a 480 x 640 photo) and resized: a crop and a resize, as the
//! standard allows, never a stretch. The sheet is white; nothing is drawn on a copy.
//!
//! This module only composes pixels and encodes the sheet; it does not decide what is printed or where
//! the file goes.

use image::{Rgb, RgbImage};

use super::standardize::{StandardizeError, encode_jpeg_full_chroma, resize_region};

/// Sheet resolution.
pub const DPI: u16 = 300;
/// JPEG quality of the sheet: it goes to a printer, not into a size window.
pub const SHEET_QUALITY: u8 = 95;
/// Space between two copies, and the least margin around the block of copies (px; 60 px = 5.1 mm).
pub const GAP_PX: u32 = 60;
/// Cut marks: how far from the copy's corner they start, how long and how thick they are (px).
pub const MARK_OFFSET_PX: u32 = 4;
pub const MARK_LEN_PX: u32 = 20;
// The gap holds the marks of both neighbours.
const _: () = assert!(2 * (MARK_OFFSET_PX + MARK_LEN_PX) <= GAP_PX);
const MARK_COLOUR: Rgb<u8> = Rgb([0, 0, 0]);
const PAPER: Rgb<u8> = Rgb([255, 255, 255]);

/// Which sheet to make.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayoutKind {
    /// 8 x 1-inch (25 x 35 mm).
    OneInch,
    /// 4 x 2-inch (35 x 49 mm).
    TwoInch,
}

/// The geometry of a sheet, in pixels at [`DPI`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SheetSpec {
    pub sheet: (u32, u32),
    pub copy: (u32, u32),
    pub cols: u32,
    pub rows: u32,
}

/// Millimetres to pixels at [`DPI`].
pub fn mm_to_px(mm: f64) -> u32 {
    (mm / 25.4 * f64::from(DPI)).round() as u32
}

impl LayoutKind {
    /// `1inch` or `2inch`.
    pub fn parse(s: &str) -> Option<LayoutKind> {
        match s {
            "1inch" => Some(LayoutKind::OneInch),
            "2inch" => Some(LayoutKind::TwoInch),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            LayoutKind::OneInch => "1inch",
            LayoutKind::TwoInch => "2inch",
        }
    }

    pub fn spec(self) -> SheetSpec {
        // 4 x 6 inches.
        let (short, long) = (4 * u32::from(DPI), 6 * u32::from(DPI));
        match self {
            LayoutKind::OneInch => SheetSpec {
                sheet: (long, short),
                copy: (mm_to_px(25.0), mm_to_px(35.0)),
                cols: 4,
                rows: 2,
            },
            LayoutKind::TwoInch => SheetSpec {
                sheet: (short, long),
                copy: (mm_to_px(35.0), mm_to_px(49.0)),
                cols: 2,
                rows: 2,
            },
        }
    }
}

impl SheetSpec {
    /// Where each copy goes, `(x, y, width, height)`, row by row: the block of copies with
    /// [`GAP_PX`] between them, centred on the sheet.
    pub fn placements(&self) -> Vec<(u32, u32, u32, u32)> {
        let (cw, ch) = self.copy;
        let block_w = self.cols * cw + (self.cols - 1) * GAP_PX;
        let block_h = self.rows * ch + (self.rows - 1) * GAP_PX;
        let x0 = (self.sheet.0 - block_w) / 2;
        let y0 = (self.sheet.1 - block_h) / 2;
        (0..self.rows)
            .flat_map(|r| {
                (0..self.cols).map(move |c| (x0 + c * (cw + GAP_PX), y0 + r * (ch + GAP_PX), cw, ch))
            })
            .collect()
    }
}

/// The part of a `w` x `h` photo that becomes a copy of `copy` size: the whole height and a centred
/// strip of the width when the photo is wider than the copy's aspect, else the whole width and a
/// centred band of the height.
pub fn copy_crop((w, h): (u32, u32), copy: (u32, u32)) -> (u32, u32, u32, u32) {
    let (cw, ch) = (u64::from(copy.0), u64::from(copy.1));
    let (w64, h64) = (u64::from(w), u64::from(h));
    if w64 * ch > h64 * cw {
        let keep = ((h64 * cw + ch / 2) / ch).clamp(1, w64) as u32;
        ((w - keep) / 2, 0, keep, h)
    } else {
        let keep = ((w64 * ch + cw / 2) / cw).clamp(1, h64) as u32;
        (0, (h - keep) / 2, w, keep)
    }
}

/// Composes the sheet: white paper, the copies, cut marks.
pub fn compose(photo: &RgbImage, kind: LayoutKind) -> RgbImage {
    let spec = kind.spec();
    let copy = resize_region(
        photo,
        copy_crop(photo.dimensions(), spec.copy),
        spec.copy.0,
        spec.copy.1,
    );
    let mut sheet = RgbImage::from_pixel(spec.sheet.0, spec.sheet.1, PAPER);
    for &(x, y, _, _) in &spec.placements() {
        image::imageops::replace(&mut sheet, &copy, i64::from(x), i64::from(y));
    }
    for &p in &spec.placements() {
        for (x, y, w, h) in cut_marks(p) {
            for yy in y..y + h {
                for xx in x..x + w {
                    if xx < sheet.width() && yy < sheet.height() {
                        sheet.put_pixel(xx, yy, MARK_COLOUR);
                    }
                }
            }
        }
    }
    sheet
}

/// The cut marks of one copy, as filled rectangles `(x, y, width, height)`: at each corner, the two
/// edges through it extended outwards by [`MARK_LEN_PX`] after a gap of [`MARK_OFFSET_PX`], two pixels
/// thick and centred on the cut. They lie in the gap, never on a copy: the gap holds the marks of both
/// neighbours (`2 * (MARK_OFFSET_PX + MARK_LEN_PX) <= GAP_PX`).
pub fn cut_marks((x, y, w, h): (u32, u32, u32, u32)) -> Vec<(u32, u32, u32, u32)> {
    let (o, l) = (MARK_OFFSET_PX, MARK_LEN_PX);
    let mut marks = Vec::with_capacity(8);
    for cx in [x, x + w] {
        // Vertical ticks above and below the copy, on the cut line between columns cx-1 and cx.
        marks.push((cx - 1, y - o - l, 2, l));
        marks.push((cx - 1, y + h + o, 2, l));
    }
    for cy in [y, y + h] {
        // Horizontal ticks left and right of the copy.
        marks.push((x - o - l, cy - 1, l, 2));
        marks.push((x + w + o, cy - 1, l, 2));
    }
    marks
}

/// The sheet as a JPEG with 300 dpi in its header, full-resolution chroma (a print, not a filing).
pub fn sheet_jpeg(photo: &RgbImage, kind: LayoutKind) -> Result<Vec<u8>, StandardizeError> {
    encode_jpeg_full_chroma(&compose(photo, kind), SHEET_QUALITY, DPI)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::standardize::jfif_density;

    /// A 480x640 picture with structure at every scale (so a copy placed a few pixels off, mirrored
    /// or stretched does not match) and no pure white (so paper and photo are told apart).
    fn photo() -> RgbImage {
        RgbImage::from_fn(480, 640, |x, y| {
            let r = 40 + (x * 180 / 480) as u8;
            let g = 40 + (y * 180 / 640) as u8;
            let b = if ((x / 24) + (y / 32)) % 2 == 0 { 60 } else { 200 };
            Rgb([r, g, b])
        })
    }

    fn mad(a: &RgbImage, (x, y): (u32, u32), b: &RgbImage) -> f64 {
        let mut sum = 0.0;
        for (bx, by, p) in b.enumerate_pixels() {
            let q = a.get_pixel(x + bx, y + by);
            for c in 0..3 {
                sum += (f64::from(p.0[c]) - f64::from(q.0[c])).abs();
            }
        }
        sum / (f64::from(b.width() * b.height()) * 3.0)
    }

    #[test]
    fn sheets_are_six_inch_at_300_dpi_with_the_copies_in_separate_cells() {
        for (kind, n, sheet, copy) in [
            (LayoutKind::OneInch, 8, (1800, 1200), (295, 413)),
            (LayoutKind::TwoInch, 4, (1200, 1800), (413, 579)),
        ] {
            let spec = kind.spec();
            assert_eq!(spec.sheet, sheet);
            assert_eq!(spec.copy, copy);
            let places = spec.placements();
            assert_eq!(places.len(), n);
            let (xs, ys): (Vec<u32>, Vec<u32>) = places.iter().map(|p| (p.0, p.1)).unzip();
            let (left, top) = (*xs.iter().min().unwrap(), *ys.iter().min().unwrap());
            let right = places.iter().map(|p| p.0 + p.2).max().unwrap();
            let bottom = places.iter().map(|p| p.1 + p.3).max().unwrap();
            // Centred, with at least a gap of margin on every side.
            assert!(left >= GAP_PX && top >= GAP_PX, "{kind:?}");
            assert!(left.abs_diff(sheet.0 - right) <= 1 && top.abs_diff(sheet.1 - bottom) <= 1);
            for (i, a) in places.iter().enumerate() {
                assert_eq!((a.2, a.3), copy);
                for b in &places[i + 1..] {
                    let apart_x = a.0 + a.2 + GAP_PX <= b.0 || b.0 + b.2 + GAP_PX <= a.0;
                    let apart_y = a.1 + a.3 + GAP_PX <= b.1 || b.1 + b.3 + GAP_PX <= a.1;
                    assert!(apart_x || apart_y, "{a:?} and {b:?} are closer than the gap");
                }
            }
            // Marks touch no copy (that both neighbours' marks fit in a gap is a compile-time assertion).
            for p in &places {
                for m in cut_marks(*p) {
                    for c in &places {
                        let overlap =
                            m.0 < c.0 + c.2 && c.0 < m.0 + m.2 && m.1 < c.1 + c.3 && c.1 < m.1 + m.3;
                        assert!(!overlap, "mark {m:?} lies on copy {c:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn copies_are_the_trimmed_photo_resized() {
        assert_eq!(copy_crop((480, 640), (295, 413)), (11, 0, 457, 640));
        assert_eq!(copy_crop((480, 640), (413, 579)), (11, 0, 457, 640));
        assert_eq!(copy_crop((600, 600), (295, 413)), (85, 0, 429, 600));
        assert_eq!(copy_crop((100, 400), (295, 413)), (0, 130, 100, 140));
    }

    #[test]
    fn each_copy_is_where_expected_and_equals_the_resized_photo() {
        let photo = photo();
        for kind in [LayoutKind::OneInch, LayoutKind::TwoInch] {
            let spec = kind.spec();
            let jpeg = sheet_jpeg(&photo, kind).unwrap();
            assert_eq!(jfif_density(&jpeg), Some((1, 300, 300)));
            let sheet = image::load_from_memory(&jpeg).unwrap().to_rgb8();
            assert_eq!(sheet.dimensions(), spec.sheet);
            // What each copy must be, computed apart from the sheet.
            let expected = resize_region(
                &photo,
                copy_crop(photo.dimensions(), spec.copy),
                spec.copy.0,
                spec.copy.1,
            );
            for &(x, y, w, h) in &spec.placements() {
                let here = mad(&sheet, (x, y), &expected);
                assert!(here < 2.5, "{kind:?} copy at ({x},{y}): {here:.2} levels off");
                // Two pixels off would not match: the comparison can fail.
                let shifted = mad(
                    &sheet,
                    (x + 2, y + 2),
                    &image::imageops::crop_imm(&expected, 0, 0, w - 2, h - 2).to_image(),
                );
                assert!(
                    shifted > 2.0 * here + 1.0,
                    "{kind:?}: shift {shifted:.2} vs {here:.2}"
                );
                // Paper just outside the copy (between the marks) is white.
                for (px, py) in [
                    (x + w / 2, y - GAP_PX / 2),
                    (x - GAP_PX / 2, y + h / 2),
                    (x + w / 2, y + h + 10),
                ] {
                    let p = sheet.get_pixel(px, py).0;
                    assert!(
                        p.iter().all(|&v| v > 235),
                        "{kind:?}: paper at ({px},{py}) is {p:?}"
                    );
                }
                // A cut mark on each corner's edges.
                for (mx, my, mw, mh) in cut_marks((x, y, w, h)) {
                    let p = sheet.get_pixel(mx + mw / 2, my + mh / 2).0;
                    let lum = p.iter().map(|&v| u32::from(v)).sum::<u32>() / 3;
                    assert!(lum < 110, "{kind:?}: mark at ({mx},{my}) is {p:?}");
                }
            }
        }
    }
}
