//! Standardization: crop, resize and encode. Nothing else.
//!
//! The graduate-photo standard forbids mirroring, rotating, retouching, beautifying, borders and text,
//! so this module has no such operation. It turns a [`CropPlan`] into the filed JPEG: exactly the spec's
//! pixel size, the spec's dpi in the JFIF header, and the highest JPEG quality (at or above the spec's
//! floor) whose file lands inside the spec's size window.

use image::RgbImage;
use jpeg_encoder::{ColorType, Encoder, PixelDensity, SamplingFactor};

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
    Ok(resize_region(img, (x, y, w, h), out.width, out.height))
}

/// Fixed-point weights of one output sample: the first source index and one weight per tap, summing to
/// `1 << WEIGHT_BITS`.
#[derive(Debug)]
struct Taps {
    start: usize,
    weights: Vec<i32>,
}

const WEIGHT_BITS: u32 = 14;
/// Extra fractional bits kept between the horizontal and the vertical pass.
const MID_BITS: u32 = 6;

/// Catmull-Rom (the cubic with B = 0, C = 0.5), as `image`'s `FilterType::CatmullRom`.
fn catmull_rom(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 {
        1.5 * x * x * x - 2.5 * x * x + 1.0
    } else if x < 2.0 {
        -0.5 * x * x * x + 2.5 * x * x - 4.0 * x + 2.0
    } else {
        0.0
    }
}

/// The taps of each of `n_out` samples over `n_in` source samples. When reducing, the kernel is
/// widened by the reduction factor, so every source pixel contributes (an antialiased reduction, as
/// `image` and Pillow do it); samples outside `0..n_in` are left out and the rest renormalised.
fn taps(n_in: usize, n_out: usize) -> Vec<Taps> {
    let ratio = n_in as f64 / n_out as f64;
    let widen = ratio.max(1.0);
    let support = 2.0 * widen;
    (0..n_out)
        .map(|i| {
            let centre = (i as f64 + 0.5) * ratio;
            let first = ((centre - support).floor().max(0.0)) as usize;
            let last = ((centre + support).ceil() as usize).min(n_in);
            let raw: Vec<f64> = (first..last)
                .map(|j| catmull_rom((j as f64 + 0.5 - centre) / widen))
                .collect();
            let sum: f64 = raw.iter().sum();
            let one = (1i64 << WEIGHT_BITS) as f64;
            let mut weights: Vec<i32> = raw.iter().map(|w| (w / sum * one).round() as i32).collect();
            // Rounding may leave the sum off by a unit or two: give it to the largest weight, so flat
            // areas stay exactly flat.
            let err = (1i32 << WEIGHT_BITS) - weights.iter().sum::<i32>();
            if let Some(k) = (0..weights.len()).max_by_key(|&k| weights[k]) {
                weights[k] += err;
            }
            Taps {
                start: first,
                weights,
            }
        })
        .collect()
}

/// Crops `(x, y, w, h)` out of `img` and resamples it to `ow` x `oh` with a separable Catmull-Rom
/// filter in fixed point. Nothing else: no rotation, no flip, no colour change.
///
/// Written here rather than calling `image::imageops::resize`, which converts to `f32` images and took
/// most of the standardization time (measured: `cargo bench -p kiosk --bench stages -- resize`).
/// Panics if the crop does not lie inside the image (callers check: see [`crop_and_resize`]).
pub fn resize_region(img: &RgbImage, (x, y, w, h): (u32, u32, u32, u32), ow: u32, oh: u32) -> RgbImage {
    let (iw, _) = img.dimensions();
    let (x, y, w, h) = (x as usize, y as usize, w as usize, h as usize);
    let (ow, oh) = (ow as usize, oh as usize);
    let raw = img.as_raw();
    let stride = iw as usize * 3;
    let cols = taps(w, ow);
    let rows = taps(h, oh);

    // Horizontal pass over the crop's rows into `mid` (ow x h, 3 channels, MID_BITS of fraction).
    let mut mid = vec![0i16; ow * 3 * h];
    let shift = WEIGHT_BITS - MID_BITS;
    let round = 1i32 << (shift - 1);
    for (r, out) in mid.chunks_exact_mut(ow * 3).enumerate() {
        let row = &raw[(y + r) * stride + x * 3..(y + r) * stride + (x + w) * 3];
        for (t, px) in cols.iter().zip(out.chunks_exact_mut(3)) {
            let src = &row[t.start * 3..(t.start + t.weights.len()) * 3];
            let (mut a, mut b, mut c) = (0i32, 0i32, 0i32);
            for (wt, p) in t.weights.iter().zip(src.chunks_exact(3)) {
                a += wt * i32::from(p[0]);
                b += wt * i32::from(p[1]);
                c += wt * i32::from(p[2]);
            }
            // Catmull-Rom overshoots by at most ~10 % of the range: well inside i16 at 6 extra bits.
            px[0] = ((a + round) >> shift) as i16;
            px[1] = ((b + round) >> shift) as i16;
            px[2] = ((c + round) >> shift) as i16;
        }
    }

    // Vertical pass: whole rows at a time, which the compiler vectorises.
    let mut out = vec![0u8; ow * 3 * oh];
    let mut acc = vec![0i32; ow * 3];
    let shift = WEIGHT_BITS + MID_BITS;
    let round = 1i32 << (shift - 1);
    for (t, dst) in rows.iter().zip(out.chunks_exact_mut(ow * 3)) {
        acc.iter_mut().for_each(|a| *a = round);
        for (k, &wt) in t.weights.iter().enumerate() {
            let src = &mid[(t.start + k) * ow * 3..(t.start + k + 1) * ow * 3];
            for (a, &v) in acc.iter_mut().zip(src) {
                *a += wt * i32::from(v);
            }
        }
        for (d, &a) in dst.iter_mut().zip(&acc) {
            *d = (a >> shift).clamp(0, 255) as u8;
        }
    }
    RgbImage::from_raw(ow as u32, oh as u32, out).expect("buffer of the output size")
}

/// Encodes at one quality with the spec's dpi in the JFIF header, chroma subsampled 4:2:0.
pub fn encode_jpeg(img: &RgbImage, quality: u8, dpi: u16) -> Result<Vec<u8>, StandardizeError> {
    // 4:2:0 at every quality (libjpeg's default). The crate switches to 4:4:4 at 90 and above, which
    // makes the file size jump at 90 and would break the quality search's assumption that size grows
    // with quality.
    encode_jpeg_sampled(img, quality, dpi, SamplingFactor::F_2_2)
}

/// Encodes with full-resolution chroma (4:4:4): for print sheets, where thin marks and colour edges
/// matter more than bytes.
pub fn encode_jpeg_full_chroma(img: &RgbImage, quality: u8, dpi: u16) -> Result<Vec<u8>, StandardizeError> {
    encode_jpeg_sampled(img, quality, dpi, SamplingFactor::F_1_1)
}

fn encode_jpeg_sampled(
    img: &RgbImage,
    quality: u8,
    dpi: u16,
    sampling: SamplingFactor,
) -> Result<Vec<u8>, StandardizeError> {
    let (w, h) = img.dimensions();
    let (Ok(w16), Ok(h16)) = (u16::try_from(w), u16::try_from(h)) else {
        return Err(StandardizeError::Encode(format!("{w}x{h} is too large for JPEG")));
    };
    let mut buf = Vec::with_capacity(64 * 1024);
    // `jpeg-encoder` (AVX2 where the CPU has it): several times faster than `image`'s encoder.
    let mut enc = Encoder::new(&mut buf, quality);
    enc.set_density(PixelDensity::dpi(dpi));
    enc.set_sampling_factor(sampling);
    enc.encode(img.as_raw(), w16, h16, ColorType::Rgb)
        .map_err(|e| StandardizeError::Encode(e.to_string()))?;
    Ok(buf)
}

/// Where the quality search starts: near where 480x640 photos land in a 20-40 KB window.
const START_QUALITY: u8 = 80;
/// How fast ln(file size) grows per quality step around there, before two encodes have measured it.
const TYPICAL_LN_SLOPE: f64 = 0.035;

/// Encodes at the highest quality in the spec's range whose size is within the window.
///
/// A secant search on ln(size) over whole qualities, keeping a bracket (the highest quality known to
/// fit, the lowest known not to): file size grows with quality smoothly enough that the first guess
/// from one encode and the secant through two usually land on the answer, so a photo takes three or
/// four encodes instead of the eight a bisection over 60..95 with end checks did (each encode is
/// several milliseconds of the shutter-to-verdict budget).
pub fn encode_in_window(img: &RgbImage, out: &OutputSpec) -> Result<(Vec<u8>, u8), StandardizeError> {
    let max_bytes = out.size_max_kb as usize * 1024;
    let min_bytes = out.size_min_kb as usize * 1024;
    let kb = |len: usize| len as f64 / 1024.0;
    let (qmin, qmax) = (
        out.jpeg_quality_min,
        out.jpeg_quality_max.max(out.jpeg_quality_min),
    );
    // Highest quality known to fit (with its file), lowest known too large (with its size).
    let mut fits: Option<(u8, Vec<u8>)> = None;
    let mut too_large: Option<(u8, usize)> = None;
    let mut last: Option<(u8, usize)> = None;
    let mut q = START_QUALITY.clamp(qmin, qmax);
    loop {
        let jpeg = encode_jpeg(img, q, out.dpi)?;
        let len = jpeg.len();
        let prev = last.replace((q, len));
        if len <= max_bytes {
            if fits.as_ref().is_none_or(|(f, _)| q > *f) {
                fits = Some((q, jpeg));
            }
        } else if too_large.is_none_or(|(t, _)| q < t) {
            too_large = Some((q, len));
        }
        // The candidates not yet decided: above the best fit, below the smallest too large.
        let floor = fits.as_ref().map_or(qmin, |(f, _)| f + 1);
        let ceil = match too_large {
            Some((t, size)) if t == qmin => {
                return Err(StandardizeError::TooLarge {
                    size_kb: kb(size),
                    quality: qmin,
                    max_kb: out.size_max_kb,
                });
            }
            Some((t, _)) => t - 1,
            None => qmax,
        };
        if floor > ceil {
            break;
        }
        // Next guess: where the secant through the last two encodes (or the typical slope through
        // this one) reaches the limit, rounded towards fitting, kept inside the undecided range.
        let slope = match prev {
            Some((pq, plen)) if pq != q => {
                ((len as f64).ln() - (plen as f64).ln()) / (f64::from(q) - f64::from(pq))
            }
            _ => TYPICAL_LN_SLOPE,
        }
        .max(0.005);
        let predicted = f64::from(q) + ((max_bytes as f64).ln() - (len as f64).ln()) / slope;
        q = (predicted.floor().clamp(0.0, 255.0) as u8).clamp(floor, ceil);
    }
    // The loop only ends with a fitting quality (it returns TooLarge otherwise); kept as an error
    // rather than a panic all the same.
    let Some((quality, best)) = fits else {
        return Err(StandardizeError::Encode("no quality fits the size window".into()));
    };
    if best.len() < min_bytes {
        return Err(StandardizeError::TooSmall {
            size_kb: kb(best.len()),
            quality,
            min_kb: out.size_min_kb,
        });
    }
    Ok((best, quality))
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

    /// The secant search returns what trying every quality would: the highest one that fits.
    #[test]
    fn quality_search_finds_the_highest_fitting_quality() {
        let mut out = PhotoSpec::builtin_by_id("chsi-graduate").unwrap().output;
        let img = textured(1920, 1080);
        let resized = crop_and_resize(&img, &plan(600.0, 40.0, 720.0), &out).unwrap();
        let sizes: Vec<(u8, usize)> = (out.jpeg_quality_min..=out.jpeg_quality_max)
            .map(|q| (q, encode_jpeg(&resized, q, 300).unwrap().len()))
            .collect();
        for at in [61u8, 66, 72, 79, 80, 81, 88, 94] {
            let size = sizes.iter().find(|(q, _)| *q == at).unwrap().1;
            out.size_min_kb = 0;
            out.size_max_kb = (size / 1024) as u32 + 1;
            let want = sizes
                .iter()
                .filter(|(_, len)| *len <= out.size_max_kb as usize * 1024)
                .map(|(q, _)| *q)
                .max()
                .unwrap();
            let (jpeg, q) = encode_in_window(&resized, &out).unwrap();
            assert_eq!(q, want, "window up to {} KB", out.size_max_kb);
            assert!(jpeg.len() <= out.size_max_kb as usize * 1024);
        }
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
