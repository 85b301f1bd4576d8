//! Rendering a ticket as a QR image, and compositing that QR into a camera frame as a phone screen held up
//! to the kiosk camera, for the demo, the simulated camera and the scan tests.
//!
//! This is the issuer's and the simulator's side; it does not decode anything (that is `hal::qr`) and it
//! does not try to be a faithful camera model: a rotated phone with a bright screen, mild blur and sensor
//! noise is enough to exercise the decoder's search and thresholding.

use image::{GrayImage, Luma, Rgb, RgbImage};
use qrcode::{EcLevel, QrCode};

/// The text does not fit in any QR code, even at the lowest error correction.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("text of {len} bytes does not fit in a QR code: {reason}")]
pub struct QrTooLong {
    pub len: usize,
    pub reason: String,
}

/// Renders `text` as a QR code with ECC level M and the standard 4-module quiet zone, each module
/// `module_px` pixels (at least 1). Black modules are 0, light ones 255.
///
/// All-alphanumeric text (any ticket from `issue`) is encoded in alphanumeric mode automatically.
pub fn try_qr_image(text: &str, module_px: u32) -> Result<GrayImage, QrTooLong> {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M).map_err(|e| QrTooLong {
        len: text.len(),
        reason: e.to_string(),
    })?;
    let px = module_px.max(1);
    Ok(code
        .render::<Luma<u8>>()
        .quiet_zone(true)
        .module_dimensions(px, px)
        .build())
}

/// [`try_qr_image`] for text known to fit, such as every ticket `issue` returns (at most
/// `MAX_TEXT_LEN` characters, a version 15 code at ECC M).
///
/// # Panics
/// If the text exceeds QR capacity (2,331 bytes of binary data at ECC M). Use [`try_qr_image`] for text
/// from elsewhere.
pub fn qr_image(text: &str, module_px: u32) -> GrayImage {
    match try_qr_image(text, module_px) {
        Ok(img) => img,
        Err(e) => panic!("qr_image: {e}"),
    }
}

/// Where and how the phone appears in the frame.
#[derive(Clone, Debug, PartialEq)]
pub struct PhonePose {
    /// Centre of the phone as fractions of the frame width and height.
    pub centre: (f32, f32),
    /// Height of the phone body as a fraction of the frame height.
    pub height_frac: f32,
    /// In-plane rotation in degrees, clockwise; people rarely hold a phone straight.
    pub tilt_deg: f32,
    /// Grey level of the screen's white as the camera sees it; screens are dimmer than a lit card.
    pub screen_white: u8,
    /// Box-blur radius in pixels over the phone, for focus and motion; 0 is sharp.
    pub blur_px: u32,
    /// Uniform sensor noise amplitude added to every pixel of the frame; 0 is none.
    pub noise: u8,
    /// Seed of the noise, so a frame is reproducible.
    pub seed: u64,
}

impl Default for PhonePose {
    fn default() -> Self {
        PhonePose {
            centre: (0.5, 0.5),
            height_frac: 0.62,
            tilt_deg: 7.0,
            screen_white: 236,
            blur_px: 1,
            noise: 6,
            seed: 1,
        }
    }
}

/// Composites `qr` as shown on a phone screen held up in front of `background`.
///
/// The phone is a dark rounded body with a white screen, a mini-program header bar, the QR in the upper
/// middle and a few grey text lines below it, rotated by `pose.tilt_deg`. The result has the size of the
/// background.
pub fn phone_frame(background: &RgbImage, qr: &GrayImage, pose: &PhonePose) -> RgbImage {
    let mut out = background.clone();
    let (fw, fh) = (out.width() as f32, out.height() as f32);
    if out.width() == 0 || out.height() == 0 || qr.width() == 0 || qr.height() == 0 {
        return out;
    }
    let body_h = (pose.height_frac.clamp(0.05, 2.0) * fh).max(8.0);
    let body_w = body_h * 0.48;
    let (cx, cy) = (pose.centre.0 * fw, pose.centre.1 * fh);
    let radius = body_w * 0.09;
    let screen_half_w = body_w * 0.5 - body_w * 0.04;
    let screen_top = -body_h * 0.5 + body_h * 0.06;
    let screen_bottom = body_h * 0.5 - body_h * 0.06;
    let header_bottom = screen_top + body_h * 0.07;
    let qr_side = screen_half_w * 2.0 * 0.9;
    let qr_top = header_bottom + body_h * 0.08;
    let qr_left = -qr_side * 0.5;

    // Resample the QR once to its on-screen size with a proper filter, then sample it bilinearly; sampling
    // the original directly would alias when the phone is small in the frame.
    let side_px = qr_side.round().max(1.0) as u32;
    let qr_small = image::imageops::resize(qr, side_px, side_px, image::imageops::FilterType::Triangle);

    let white = f32::from(pose.screen_white);
    let screen_rgb = |lum: f32| -> Rgb<u8> {
        // Emissive screens read slightly blue against a 5500 K lit scene; dark modules never reach 0.
        let l = 26.0 + (white - 26.0) * (lum / 255.0);
        Rgb([(l * 0.96) as u8, (l * 0.98) as u8, l as u8])
    };

    let (sin, cos) = pose.tilt_deg.to_radians().sin_cos();
    let half_diag = (body_w * body_w + body_h * body_h).sqrt() * 0.5 + 2.0;
    let x0 = (cx - half_diag).floor().max(0.0) as u32;
    let y0 = (cy - half_diag).floor().max(0.0) as u32;
    let x1 = ((cx + half_diag).ceil().max(0.0) as u32).min(out.width());
    let y1 = ((cy + half_diag).ceil().max(0.0) as u32).min(out.height());

    for y in y0..y1 {
        for x in x0..x1 {
            let (dx, dy) = (x as f32 + 0.5 - cx, y as f32 + 0.5 - cy);
            // Into the phone's own coordinates (undo the clockwise tilt).
            let u = dx * cos + dy * sin;
            let v = -dx * sin + dy * cos;
            if !inside_rounded_rect(u, v, body_w * 0.5, body_h * 0.5, radius) {
                continue;
            }
            let px = if u.abs() <= screen_half_w && v >= screen_top && v <= screen_bottom {
                if v < header_bottom {
                    // The mini-program's title bar.
                    Rgb([40, 160, 90])
                } else if u >= qr_left && u < qr_left + qr_side && v >= qr_top && v < qr_top + qr_side {
                    let s = bilinear(&qr_small, u - qr_left, v - qr_top);
                    screen_rgb(s)
                } else if is_text_line(v, qr_top + qr_side, body_h) && u.abs() < screen_half_w * 0.7 {
                    screen_rgb(170.0)
                } else {
                    screen_rgb(255.0)
                }
            } else {
                Rgb([22, 22, 26])
            };
            out.put_pixel(x, y, px);
        }
    }

    if pose.blur_px > 0 {
        box_blur_region(&mut out, x0, y0, x1, y1, pose.blur_px);
    }
    if pose.noise > 0 {
        add_noise(&mut out, pose.noise, pose.seed);
    }
    out
}

fn inside_rounded_rect(u: f32, v: f32, hw: f32, hh: f32, r: f32) -> bool {
    let (au, av) = (u.abs(), v.abs());
    if au > hw || av > hh {
        return false;
    }
    let (cu, cv) = (au - (hw - r), av - (hh - r));
    !(cu > 0.0 && cv > 0.0 && cu * cu + cv * cv > r * r)
}

/// Three grey "text" lines under the QR, as the mini-program's caption.
fn is_text_line(v: f32, below: f32, body_h: f32) -> bool {
    let rel = (v - below) / body_h;
    (0.04..0.2).contains(&rel) && (rel / 0.05).fract() < 0.35
}

fn bilinear(img: &GrayImage, x: f32, y: f32) -> f32 {
    let (w, h) = (img.width() as i64, img.height() as i64);
    let (fx, fy) = (x - 0.5, y - 0.5);
    let (ix, iy) = (fx.floor() as i64, fy.floor() as i64);
    let (tx, ty) = (fx - ix as f32, fy - iy as f32);
    let at =
        |xx: i64, yy: i64| f32::from(img.get_pixel(xx.clamp(0, w - 1) as u32, yy.clamp(0, h - 1) as u32)[0]);
    let top = at(ix, iy) * (1.0 - tx) + at(ix + 1, iy) * tx;
    let bottom = at(ix, iy + 1) * (1.0 - tx) + at(ix + 1, iy + 1) * tx;
    top * (1.0 - ty) + bottom * ty
}

/// Separable box blur of radius `r` over the rectangle (clamped at its edges), leaving the rest alone.
fn box_blur_region(img: &mut RgbImage, x0: u32, y0: u32, x1: u32, y1: u32, r: u32) {
    // A phone placed entirely off the frame gives an empty (or inverted) rectangle.
    let (w, h) = (x1.saturating_sub(x0) as usize, y1.saturating_sub(y0) as usize);
    if w == 0 || h == 0 {
        return;
    }
    let r = r as usize;
    let mut buf = vec![0f32; w * h * 3];
    for y in 0..h {
        for x in 0..w {
            let p = img.get_pixel(x0 + x as u32, y0 + y as u32);
            for c in 0..3 {
                buf[(y * w + x) * 3 + c] = f32::from(p[c]);
            }
        }
    }
    let mut tmp = buf.clone();
    // Horizontal then vertical: two 1-D passes cost 2r per pixel instead of r squared.
    blur_pass(&buf, &mut tmp, w, h, r, true);
    blur_pass(&tmp, &mut buf, w, h, r, false);
    for y in 0..h {
        for x in 0..w {
            let i = (y * w + x) * 3;
            let px = Rgb([buf[i] as u8, buf[i + 1] as u8, buf[i + 2] as u8]);
            img.put_pixel(x0 + x as u32, y0 + y as u32, px);
        }
    }
}

fn blur_pass(src: &[f32], dst: &mut [f32], w: usize, h: usize, r: usize, horizontal: bool) {
    let (len, lines) = if horizontal { (w, h) } else { (h, w) };
    let idx = |line: usize, k: usize| if horizontal { line * w + k } else { k * w + line };
    for line in 0..lines {
        for k in 0..len {
            let lo = k.saturating_sub(r);
            let hi = (k + r).min(len - 1);
            let n = (hi - lo + 1) as f32;
            for c in 0..3 {
                let s: f32 = (lo..=hi).map(|j| src[idx(line, j) * 3 + c]).sum();
                dst[idx(line, k) * 3 + c] = s / n;
            }
        }
    }
}

fn add_noise(img: &mut RgbImage, amplitude: u8, seed: u64) {
    let mut state = seed ^ 0x9E37_79B9_7F4A_7C15;
    let span = u64::from(amplitude) * 2 + 1;
    let a = i16::from(amplitude);
    for v in img.iter_mut() {
        // xorshift64*: cheap, deterministic, and plenty for sensor noise.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let r = state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32;
        let n = (r % span) as i16 - a;
        *v = (i16::from(*v) + n).clamp(0, 255) as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qr_image_has_quiet_zone_and_module_size() {
        let img = qr_image("GK1:HELLO", 3);
        // Version 1 is 21 modules plus 4 quiet modules each side.
        assert_eq!(img.width(), (21 + 8) * 3);
        assert_eq!(img.get_pixel(0, 0)[0], 255);
        assert_eq!(
            img.get_pixel(12, 12)[0],
            0,
            "top-left finder starts after the quiet zone"
        );
    }

    #[test]
    fn too_long_text_is_an_error_not_a_panic() {
        let long = "A".repeat(5000);
        assert!(try_qr_image(&long, 1).is_err());
    }

    #[test]
    fn phone_frame_keeps_size_and_handles_degenerate_inputs() {
        let bg = RgbImage::from_pixel(64, 48, Rgb([120, 120, 120]));
        let qr = qr_image("GK1:X", 2);
        assert_eq!(
            phone_frame(&bg, &qr, &PhonePose::default()).dimensions(),
            (64, 48)
        );
        let off = PhonePose {
            centre: (5.0, -3.0),
            ..PhonePose::default()
        };
        assert_eq!(phone_frame(&bg, &qr, &off).dimensions(), (64, 48));
        let empty = RgbImage::new(0, 0);
        assert_eq!(
            phone_frame(&empty, &qr, &PhonePose::default()).dimensions(),
            (0, 0)
        );
    }
}
