//! Standardization: crop, resize and encode. Nothing else.
//!
//! The graduate-photo standard forbids mirroring, rotating, retouching, beautifying, borders and text,
//! so this module has no such operation. It turns a [`CropPlan`] into the filed JPEG: exactly the spec's
//! pixel size, the spec's dpi in the JFIF header, and the highest JPEG quality (at or above the spec's
//! floor) whose file lands inside the spec's size window.

use image::codecs::jpeg::{JpegEncoder, PixelDensity};
use image::imageops::{self, FilterType};
use image::{ExtendedColorType, ImageEncoder, RgbImage};

use super::geometry::CropPlan;
use super::spec::OutputSpec;

/// The filed photo.
#[derive(Clone, Debug, PartialEq)]
pub struct Standardized {
    pub jpeg: Vec<u8>,
    pub quality: u8,
    pub width: u32,
    pub height: u32,
    /// The crop actually taken, in whole capture pixels (x, y, width, height).
    pub crop: (u32, u32, u32, u32),
}

/// Why a photo could not be standardized.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum StandardizeError {
    /// The crop does not lie inside the capture.
    #[error("crop {0:?} lies outside the {1}x{2} capture")]
    CropOutside((u32, u32, u32, u32), u32, u32),
    /// Even at the lowest allowed quality the file is larger than the window.
    #[error("JPEG is {size_kb:.1} KB at the minimum quality {quality}, above the {max_kb} KB limit")]
    TooLarge { size_kb: f64, quality: u8, max_kb: u32 },
    /// Even at the highest allowed quality the file is smaller than the window.
    #[error("JPEG is {size_kb:.1} KB at the maximum quality {quality}, below the {min_kb} KB minimum")]
    TooSmall { size_kb: f64, quality: u8, min_kb: u32 },
    /// The encoder failed (should not happen for in-memory RGB).
    #[error("JPEG encoding failed: {0}")]
    Encode(String),
}

/// The crop rounded to whole pixels; the aspect error this introduces is under one output pixel.
pub fn crop_rect(plan: &CropPlan) -> (u32, u32, u32, u32) {
    let x = plan.x.round().max(0.0) as u32;
    let y = plan.y.round().max(0.0) as u32;
    (x, y, plan.width.round() as u32, plan.height.round() as u32)
}

/// Crops and resizes the capture to the spec's pixel size (no encoding).
pub fn crop_and_resize(
    img: &RgbImage,
    plan: &CropPlan,
    out: &OutputSpec,
) -> Result<RgbImage, StandardizeError> {
    let (x, y, w, h) = crop_rect(plan);
    let (iw, ih) = img.dimensions();
    if w == 0 || h == 0 || x.saturating_add(w) > iw || y.saturating_add(h) > ih {
        return Err(StandardizeError::CropOutside((x, y, w, h), iw, ih));
    }
    let view = imageops::crop_imm(img, x, y, w, h);
    // Catmull-Rom: sharp enough for a face at about 2x reduction, and a fraction of Lanczos3's time.
    Ok(imageops::resize(
        &*view,
        out.width,
        out.height,
        FilterType::CatmullRom,
    ))
}

/// Encodes at one quality with the spec's dpi in the JFIF header.
pub fn encode_jpeg(img: &RgbImage, quality: u8, dpi: u16) -> Result<Vec<u8>, StandardizeError> {
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut enc = JpegEncoder::new_with_quality(&mut buf, quality);
    enc.set_pixel_density(PixelDensity::dpi(dpi));
    enc.write_image(img.as_raw(), img.width(), img.height(), ExtendedColorType::Rgb8)
        .map_err(|e| StandardizeError::Encode(e.to_string()))?;
    Ok(buf)
}

/// Encodes at the highest quality in the spec's range whose size is within the window (binary search:
/// file size grows with quality).
pub fn encode_in_window(img: &RgbImage, out: &OutputSpec) -> Result<(Vec<u8>, u8), StandardizeError> {
    let max_bytes = out.size_max_kb as usize * 1024;
    let min_bytes = out.size_min_kb as usize * 1024;
    let kb = |b: &Vec<u8>| b.len() as f64 / 1024.0;
    let (mut lo, mut hi) = (out.jpeg_quality_min, out.jpeg_quality_max);
    let top = encode_jpeg(img, hi, out.dpi)?;
    if top.len() <= max_bytes {
        if top.len() < min_bytes {
            return Err(StandardizeError::TooSmall {
                size_kb: kb(&top),
                quality: hi,
                min_kb: out.size_min_kb,
            });
        }
        return Ok((top, hi));
    }
    let bottom = encode_jpeg(img, lo, out.dpi)?;
    if bottom.len() > max_bytes {
        return Err(StandardizeError::TooLarge {
            size_kb: kb(&bottom),
            quality: lo,
            max_kb: out.size_max_kb,
        });
    }
    // Invariant: `lo` fits, `hi` does not. File size grows roughly linearly with quality in this range,
    // so one interpolated guess and its neighbour usually settle it in two encodes instead of five or six
    // halvings (each encode is ~10 ms of the shutter-to-verdict budget).
    let mut best = bottom;
    let (lo_len, hi_len) = (best.len() as f64, top.len() as f64);
    let frac = ((max_bytes as f64 - lo_len) / (hi_len - lo_len).max(1.0)).clamp(0.0, 1.0);
    let guess = (lo as f64 + frac * (hi - lo) as f64).floor() as u8;
    if guess > lo && guess < hi {
        let candidate = encode_jpeg(img, guess, out.dpi)?;
        if candidate.len() <= max_bytes {
            lo = guess;
            best = candidate;
            if lo + 1 < hi {
                let next = encode_jpeg(img, lo + 1, out.dpi)?;
                if next.len() <= max_bytes {
                    lo += 1;
                    best = next;
                } else {
                    hi = lo + 1;
                }
            }
        } else {
            hi = guess;
        }
    }
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        let candidate = encode_jpeg(img, mid, out.dpi)?;
        if candidate.len() <= max_bytes {
            lo = mid;
            best = candidate;
        } else {
            hi = mid;
        }
    }
    if best.len() < min_bytes {
        return Err(StandardizeError::TooSmall {
            size_kb: kb(&best),
            quality: lo,
            min_kb: out.size_min_kb,
        });
    }
    Ok((best, lo))
}

/// Crop, resize and encode.
pub fn standardize(
    img: &RgbImage,
    plan: &CropPlan,
    out: &OutputSpec,
) -> Result<Standardized, StandardizeError> {
    let resized = crop_and_resize(img, plan, out)?;
    let (jpeg, quality) = encode_in_window(&resized, out)?;
    Ok(Standardized {
        jpeg,
        quality,
        width: out.width,
        height: out.height,
        crop: crop_rect(plan),
    })
}

/// Reads the JFIF density from a JPEG header: `(unit, x, y)` where unit 1 is dots per inch.
pub fn jfif_density(jpeg: &[u8]) -> Option<(u8, u16, u16)> {
    // SOI, then an APP0 segment "JFIF\0" with version, units, Xdensity, Ydensity.
    let app0 = jpeg.get(2..20)?;
    if app0[0..2] != [0xFF, 0xE0] || &app0[4..9] != b"JFIF\0" {
        return None;
    }
    Some((
        app0[11],
        u16::from_be_bytes([app0[12], app0[13]]),
        u16::from_be_bytes([app0[14], app0[15]]),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::spec::PhotoSpec;

    /// A textured test picture, so the JPEG size depends on quality the way a photo's does.
    fn textured(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            let v = ((x * 7 + y * 13) ^ (x * y / 5)) as u8;
            image::Rgb([v, v.wrapping_mul(3), 255 - v / 2])
        })
    }

    fn plan(x: f64, y: f64, w: f64) -> CropPlan {
        CropPlan {
            x,
            y,
            width: w,
            height: w * 4.0 / 3.0,
            scale: 480.0 / w,
            hair_top_out: 0.0,
            eye_line_out: 0.0,
            face_width_out: 0.0,
            slack: 0.0,
        }
    }

    #[test]
    fn output_has_spec_size_dpi_and_a_size_inside_the_window() {
        let mut out = PhotoSpec::builtin_by_id("chsi-graduate").unwrap().output;
        let img = textured(1920, 1080);
        let resized = crop_and_resize(&img, &plan(600.0, 40.0, 720.0), &out).unwrap();
        // Pick a window this synthetic picture can meet, around its size at quality 80.
        let at80 = encode_jpeg(&resized, 80, 300).unwrap().len() as u32 / 1024;
        out.size_min_kb = at80 / 2;
        out.size_max_kb = at80 + 1;
        let s = standardize(&img, &plan(600.0, 40.0, 720.0), &out).unwrap();
        let decoded = image::load_from_memory(&s.jpeg).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (480, 640));
        assert_eq!(jfif_density(&s.jpeg), Some((1, 300, 300)));
        let kb = s.jpeg.len() as u32 / 1024;
        assert!(
            kb >= out.size_min_kb && s.jpeg.len() <= out.size_max_kb as usize * 1024,
            "{kb} KB"
        );
        assert!(
            s.quality >= 80 && s.quality >= out.jpeg_quality_min,
            "highest fitting quality: {}",
            s.quality
        );
    }

    #[test]
    fn impossible_windows_and_crops_are_errors() {
        let mut out = PhotoSpec::builtin_by_id("chsi-graduate").unwrap().output;
        let img = textured(1920, 1080);
        out.size_max_kb = 1;
        out.size_min_kb = 0;
        assert!(matches!(
            standardize(&img, &plan(0.0, 0.0, 720.0), &out),
            Err(StandardizeError::TooLarge { .. })
        ));
        out.size_max_kb = 5000;
        out.size_min_kb = 4000;
        assert!(matches!(
            standardize(&img, &plan(0.0, 0.0, 720.0), &out),
            Err(StandardizeError::TooSmall { .. })
        ));
        assert!(matches!(
            standardize(&img, &plan(1500.0, 0.0, 720.0), &out),
            Err(StandardizeError::CropOutside(..))
        ));
    }
}
