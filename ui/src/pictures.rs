//! Pictures for the Slint window: the kiosk's RGB frames as `slint::Image`s, and the payment QR code
//! drawn from the order URL.
//!
//! Nothing here is written to disk, and nothing decides what is shown: the view does.

use crate::RgbImage;
use slint::{Image, Rgb8Pixel, SharedPixelBuffer};

/// Pixels per QR module; the window scales the code up further with pixelated rendering.
const QR_MODULE_PX: u32 = 8;

/// The picture as a Slint image, or `None` when its buffer does not hold `width * height * 3` bytes
/// (a broken frame is skipped, not drawn as garbage).
pub fn to_image(picture: &RgbImage) -> Option<Image> {
    let expected = picture.width as usize * picture.height as usize * 3;
    if picture.width == 0 || picture.height == 0 || picture.pixels.len() != expected {
        return None;
    }
    let buffer = SharedPixelBuffer::<Rgb8Pixel>::clone_from_slice(
        picture.pixels.as_slice(),
        picture.width,
        picture.height,
    );
    Some(Image::from_rgb8(buffer))
}

/// The payment QR code of `url`: black modules on white with the quiet zone, as RGB pixels.
pub fn qr_rgb(url: &str) -> Result<RgbImage, qrcode::types::QrError> {
    let code = qrcode::QrCode::new(url.as_bytes())?;
    let luma = code
        .render::<image::Luma<u8>>()
        .module_dimensions(QR_MODULE_PX, QR_MODULE_PX)
        .quiet_zone(true)
        .build();
    let (width, height) = luma.dimensions();
    let pixels = luma.into_raw().into_iter().flat_map(|v| [v, v, v]).collect();
    Ok(RgbImage {
        width,
        height,
        pixels: std::sync::Arc::new(pixels),
    })
}

/// The payment QR code of `url` as a Slint image.
pub fn qr_image(url: &str) -> Result<Image, qrcode::types::QrError> {
    let rgb = qr_rgb(url)?;
    Ok(to_image(&rgb).expect("qr_rgb builds a consistent buffer"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_to_image_refuses_a_short_buffer() {
        let bad = RgbImage {
            width: 4,
            height: 4,
            pixels: std::sync::Arc::new(vec![0; 47]),
        };
        assert!(to_image(&bad).is_none());
        let good = RgbImage {
            width: 4,
            height: 4,
            pixels: std::sync::Arc::new(vec![0; 48]),
        };
        let image = to_image(&good).expect("a 4x4 picture");
        assert_eq!((image.size().width, image.size().height), (4, 4));
    }

    #[test]
    fn test_payment_qr_decodes_back_to_the_order_url() {
        let url = "weixin://wxpay/bizpayurl?pr=Fictional0rder42";
        let rgb = qr_rgb(url).expect("encodable");
        let grey: Vec<u8> = rgb.pixels.chunks(3).map(|p| p[0]).collect();
        let mut prepared =
            rqrr::PreparedImage::prepare_from_greyscale(rgb.width as usize, rgb.height as usize, |x, y| {
                grey[y * rgb.width as usize + x]
            });
        let grids = prepared.detect_grids();
        assert_eq!(grids.len(), 1);
        let (_, content) = grids[0].decode().expect("decodes");
        assert_eq!(content, url);
    }
}
