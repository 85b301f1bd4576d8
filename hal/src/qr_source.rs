//! Sources of QR payloads: a serial barcode scanner (lines) or codes decoded from camera frames.
//!
//! [`QrSource::poll`] yields one payload at a time. [`CameraQr`] adapts camera frames: the shell
//! offers it preview frames and it runs a decoder over the latest one; the decoder is a plain
//! function pointer (in the kiosk, `hal::qr::decode`) so this adapter does not depend on how
//! decoding is done. [`LineAssembler`] is the pure framing a serial scanner driver needs.
//! Deliberately not here: the serial port itself and ticket parsing (payloads are opaque bytes).

use std::collections::VecDeque;
use std::convert::Infallible;

use image::GrayImage;

use crate::{Error, Frame, Millis};

/// A source of scanned QR payloads.
pub trait QrSource {
    /// The driver's error.
    type Error: Error;

    /// The next payload scanned since the last poll, if any.
    fn poll(&mut self, now: Millis) -> Result<Option<Vec<u8>>, Self::Error>;
}

impl<T: QrSource + ?Sized> QrSource for &mut T {
    type Error = T::Error;

    fn poll(&mut self, now: Millis) -> Result<Option<Vec<u8>>, Self::Error> {
        T::poll(self, now)
    }
}

/// Decodes every QR code in a grayscale image; `hal::qr::decode` has this signature.
pub type QrDecoder = fn(&GrayImage) -> Vec<Vec<u8>>;

/// How long a payload must be out of view before it is reported again, by default. A phone held
/// to the camera stays in dozens of consecutive frames; the session wants it once.
pub const DEFAULT_REPEAT_AFTER_MS: u64 = 3000;

/// QR payloads decoded from camera frames the shell offers.
///
/// The adapter does not own the camera: the same preview frames feed the screen and the checks,
/// so the shell fetches them and offers them here. Only the latest offered frame is decoded, and
/// only when polled, so offering every frame costs a grayscale conversion and nothing more.
#[derive(Debug)]
pub struct CameraQr {
    decoder: QrDecoder,
    pending: Option<GrayImage>,
    queue: VecDeque<Vec<u8>>,
    /// Payloads seen recently and when they were last seen.
    seen: Vec<(Vec<u8>, Millis)>,
    repeat_after_ms: u64,
}

impl CameraQr {
    /// An adapter around `decoder` with the default repeat suppression.
    pub fn new(decoder: QrDecoder) -> CameraQr {
        CameraQr {
            decoder,
            pending: None,
            queue: VecDeque::new(),
            seen: Vec::new(),
            repeat_after_ms: DEFAULT_REPEAT_AFTER_MS,
        }
    }

    /// Sets how long a payload must be out of view before it is reported again.
    pub fn with_repeat_after_ms(mut self, ms: u64) -> CameraQr {
        self.repeat_after_ms = ms;
        self
    }

    /// Offers a frame; replaces any frame offered but not yet decoded.
    pub fn offer(&mut self, frame: &Frame) {
        self.pending = Some(image::imageops::grayscale(&frame.image));
    }

    /// Offers an already grayscale image.
    pub fn offer_gray(&mut self, image: GrayImage) {
        self.pending = Some(image);
    }

    /// Forgets what was seen, so the same code is reported again at once (e.g. a new session).
    pub fn reset(&mut self) {
        self.pending = None;
        self.queue.clear();
        self.seen.clear();
    }
}

impl QrSource for CameraQr {
    type Error = Infallible;

    fn poll(&mut self, now: Millis) -> Result<Option<Vec<u8>>, Infallible> {
        let repeat_after = self.repeat_after_ms;
        self.seen.retain(|(_, last)| now.since(*last) < repeat_after);
        if let Some(gray) = self.pending.take() {
            for payload in (self.decoder)(&gray) {
                // Each sighting refreshes the entry, so a code held in view is reported once.
                match self.seen.iter_mut().find(|(p, _)| *p == payload) {
                    Some(entry) => entry.1 = now,
                    None => {
                        self.seen.push((payload.clone(), now));
                        self.queue.push_back(payload);
                    }
                }
            }
        }
        Ok(self.queue.pop_front())
    }
}

/// Splits the byte stream of a serial barcode scanner into lines.
///
/// Lines end in CR, LF or CRLF; empty lines are dropped. A line longer than `max_len` is dropped
/// whole (and the rest of it up to the next terminator), so a noisy port cannot grow memory and a
/// truncated payload is never passed on as if it were complete.
#[derive(Debug, Clone)]
pub struct LineAssembler {
    buf: Vec<u8>,
    max_len: usize,
    overflowed: bool,
}

impl LineAssembler {
    /// An assembler that accepts lines of at most `max_len` bytes.
    pub fn new(max_len: usize) -> LineAssembler {
        LineAssembler {
            buf: Vec::new(),
            max_len,
            overflowed: false,
        }
    }

    /// The longest line accepted.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Feeds bytes read from the port; returns the lines they completed.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut lines = Vec::new();
        for &b in bytes {
            if b == b'\r' || b == b'\n' {
                if !self.overflowed && !self.buf.is_empty() {
                    lines.push(std::mem::take(&mut self.buf));
                }
                self.buf.clear();
                self.overflowed = false;
            } else if self.buf.len() >= self.max_len {
                self.overflowed = true;
                self.buf.clear();
            } else if !self.overflowed {
                self.buf.push(b);
            }
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Luma, RgbImage};

    /// A fake decoder: "sees" payload "A" in a frame whose first pixel is white, "B" as well when
    /// the second one is.
    fn fake_decoder(img: &GrayImage) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        if img.get_pixel(0, 0) == &Luma([255]) {
            out.push(b"A".to_vec());
        }
        if img.get_pixel(1, 0) == &Luma([255]) {
            out.push(b"B".to_vec());
        }
        out
    }

    fn frame(a: bool, b: bool) -> Frame {
        let mut image = RgbImage::new(2, 1);
        if a {
            image.put_pixel(0, 0, image::Rgb([255, 255, 255]));
        }
        if b {
            image.put_pixel(1, 0, image::Rgb([255, 255, 255]));
        }
        Frame {
            image,
            seq: 0,
            at: Millis::ZERO,
        }
    }

    #[test]
    fn code_in_view_is_reported_once_then_again_after_leaving() {
        let mut qr = CameraQr::new(fake_decoder).with_repeat_after_ms(1000);
        assert_eq!(qr.poll(Millis(0)), Ok(None));
        for t in (0..2000).step_by(100) {
            qr.offer(&frame(true, false));
            let got = qr.poll(Millis(t)).unwrap_or_default();
            assert_eq!(got, if t == 0 { Some(b"A".to_vec()) } else { None }, "t={t}");
        }
        // Out of view for 1 s, then back: reported again.
        qr.offer(&frame(true, false));
        assert_eq!(qr.poll(Millis(3000)), Ok(Some(b"A".to_vec())));
    }

    #[test]
    fn two_codes_in_one_frame_come_out_one_per_poll() {
        let mut qr = CameraQr::new(fake_decoder);
        qr.offer(&frame(true, true));
        assert_eq!(qr.poll(Millis(0)), Ok(Some(b"A".to_vec())));
        assert_eq!(qr.poll(Millis(1)), Ok(Some(b"B".to_vec())));
        assert_eq!(qr.poll(Millis(2)), Ok(None));
        qr.reset();
        qr.offer(&frame(false, true));
        assert_eq!(qr.poll(Millis(3)), Ok(Some(b"B".to_vec())));
    }

    #[test]
    fn lines_split_on_any_terminator_and_overlong_lines_are_dropped() {
        let mut la = LineAssembler::new(8);
        assert_eq!(la.push(b"abc"), Vec::<Vec<u8>>::new());
        assert_eq!(la.push(b"d\r\nef\n\n"), vec![b"abcd".to_vec(), b"ef".to_vec()]);
        assert_eq!(la.push(b"0123456789xyz\rok\r"), vec![b"ok".to_vec()]);
    }
}
