//! The UVC camera over V4L2 with nokhwa: 1080p MJPEG stream, previews downscaled from it, stills
//! at full resolution, exposure and white balance held while shooting, reopening with backoff after
//! an unplug.
//!
//! What can be tested without a camera is pure and tested here: MJPEG decoding (a corrupt frame
//! is a transient error, never a panic), the preview fit, and the reconnect [`Backoff`]. Opening
//! the device is exercised only with `KIOSK_HW_CAMERA=<index>` on a machine with a camera.
//! Deliberately no format negotiation beyond "this resolution in MJPEG, else the closest": the
//! kiosk's camera is chosen for 1080p MJPEG, and a camera that cannot is reported at start.

use image::RgbImage;
use nokhwa::pixel_format::RgbFormat;
use nokhwa::utils::{
    CameraFormat, CameraIndex, ControlValueSetter, FrameFormat, KnownCameraControl, RequestedFormat,
    RequestedFormatType, Resolution,
};

use crate::sim::PreviewFit;
use crate::{Camera, ErrorKind, Frame, Millis};

/// What the camera driver is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct V4l2Config {
    /// `/dev/videoN`.
    pub index: u32,
    /// Stream (and still) width.
    pub width: u32,
    /// Stream (and still) height.
    pub height: u32,
    /// Frames per second requested.
    pub fps: u32,
    /// Preview width handed to the checks and the QR decoder.
    pub preview_width: u32,
    /// Preview height.
    pub preview_height: u32,
}

impl Default for V4l2Config {
    fn default() -> Self {
        V4l2Config {
            index: 0,
            width: 1920,
            height: 1080,
            fps: 30,
            preview_width: 1920,
            preview_height: 1080,
        }
    }
}

/// Why the camera failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CameraError {
    /// The device could not be opened or its stream started (absent, unplugged, busy).
    #[error("camera /dev/video{index}: {reason}")]
    Open {
        /// The index.
        index: u32,
        /// nokhwa's words.
        reason: String,
    },
    /// The stream failed: the device went away.
    #[error("camera stream failed: {0}")]
    Stream(String),
    /// A frame arrived but could not be decoded (a torn MJPEG frame).
    #[error("camera frame undecodable: {0}")]
    Decode(String),
    /// A control (exposure, white balance) could not be written.
    #[error("camera control {control}: {reason}")]
    Control {
        /// Which.
        control: &'static str,
        /// Why.
        reason: String,
    },
    /// Not reconnecting yet: the backoff has not elapsed.
    #[error("camera disconnected; next reopen attempt in {0} ms")]
    Waiting(u64),
}

impl crate::Error for CameraError {
    fn kind(&self) -> ErrorKind {
        match self {
            CameraError::Open { .. } | CameraError::Stream(_) | CameraError::Waiting(_) => {
                ErrorKind::Disconnected
            }
            CameraError::Decode(_) => ErrorKind::Timeout,
            CameraError::Control { .. } => ErrorKind::Other,
        }
    }
}

/// Exponential backoff for reopening: first try at once, then 250 ms, doubling up to `max_ms`.
/// The cap is what bounds "back within seconds of the replug".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    min_ms: u64,
    max_ms: u64,
    delay_ms: u64,
    next_at: Option<Millis>,
}

impl Backoff {
    /// A backoff from `min_ms` doubling to `max_ms`.
    pub fn new(min_ms: u64, max_ms: u64) -> Backoff {
        Backoff {
            min_ms,
            max_ms: max_ms.max(min_ms),
            delay_ms: min_ms,
            next_at: None,
        }
    }

    /// Whether an attempt may be made at `now`; if not, how long to wait.
    pub fn ready(&self, now: Millis) -> Result<(), u64> {
        match self.next_at {
            Some(at) if now < at => Err(at.since(now)),
            _ => Ok(()),
        }
    }

    /// An attempt at `now` failed: wait longer before the next.
    pub fn failed(&mut self, now: Millis) {
        self.next_at = Some(now.after_ms(self.delay_ms));
        self.delay_ms = (self.delay_ms * 2).min(self.max_ms);
    }

    /// An attempt succeeded: the next failure starts again from the minimum.
    pub fn succeeded(&mut self) {
        self.delay_ms = self.min_ms;
        self.next_at = None;
    }
}

/// Decodes one MJPEG frame. Any corrupt input is an error, never a panic.
pub fn decode_mjpeg(bytes: &[u8]) -> Result<RgbImage, CameraError> {
    let decoded =
        std::panic::catch_unwind(|| image::load_from_memory_with_format(bytes, image::ImageFormat::Jpeg));
    match decoded {
        Ok(Ok(img)) => Ok(img.to_rgb8()),
        Ok(Err(e)) => Err(CameraError::Decode(e.to_string())),
        Err(_) => Err(CameraError::Decode("decoder panicked".into())),
    }
}

/// The camera.
pub struct V4l2Camera {
    config: V4l2Config,
    cam: Option<nokhwa::Camera>,
    backoff: Backoff,
    seq: u64,
    locked: bool,
}

impl std::fmt::Debug for V4l2Camera {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("V4l2Camera")
            .field("config", &self.config)
            .field("open", &self.cam.is_some())
            .field("seq", &self.seq)
            .finish()
    }
}

impl V4l2Camera {
    /// Opens the camera and starts its stream.
    pub fn open(config: V4l2Config) -> Result<V4l2Camera, CameraError> {
        let mut c = V4l2Camera {
            config,
            cam: None,
            backoff: Backoff::new(250, 2000),
            seq: 0,
            locked: false,
        };
        c.cam = Some(c.open_device()?);
        Ok(c)
    }

    fn open_device(&self) -> Result<nokhwa::Camera, CameraError> {
        let c = self.config;
        let err = |e: nokhwa::NokhwaError| CameraError::Open {
            index: c.index,
            reason: e.to_string(),
        };
        let wanted = CameraFormat::new(Resolution::new(c.width, c.height), FrameFormat::MJPEG, c.fps);
        let format = RequestedFormat::new::<RgbFormat>(RequestedFormatType::Closest(wanted));
        let mut cam = nokhwa::Camera::new(CameraIndex::Index(c.index), format).map_err(err)?;
        cam.open_stream().map_err(err)?;
        Ok(cam)
    }

    fn grab(&mut self, now: Millis) -> Result<RgbImage, CameraError> {
        let Some(cam) = self.cam.as_mut() else {
            return Err(CameraError::Waiting(self.backoff.ready(now).err().unwrap_or(0)));
        };
        let buf = match cam.frame() {
            Ok(b) => b,
            Err(e) => {
                // An unplugged UVC device fails its dequeue; drop it so reconnect reopens it.
                self.cam = None;
                return Err(CameraError::Stream(e.to_string()));
            }
        };
        if buf.source_frame_format() == FrameFormat::MJPEG {
            decode_mjpeg(buf.buffer())
        } else {
            buf.decode_image::<RgbFormat>()
                .map_err(|e| CameraError::Decode(e.to_string()))
        }
    }

    fn set_auto(
        &mut self,
        control: KnownCameraControl,
        name: &'static str,
        hold: bool,
    ) -> Result<(), CameraError> {
        let Some(cam) = self.cam.as_mut() else {
            return Ok(());
        };
        let err = |e: nokhwa::NokhwaError| CameraError::Control {
            control: name,
            reason: e.to_string(),
        };
        // Holding = writing back the value the automatic loop has settled on, which UVC cameras
        // take as a manual setting; releasing = asking for the automatic mode again.
        let current = cam.camera_control(control).map_err(err)?;
        let value = if hold {
            current.value()
        } else {
            ControlValueSetter::Boolean(true)
        };
        cam.set_camera_control(control, value).map_err(err)
    }
}

impl Camera for V4l2Camera {
    type Error = CameraError;

    fn preview_frame(&mut self, now: Millis) -> Result<Frame, CameraError> {
        let full = self.grab(now)?;
        let image = crate::sim::fit_preview(
            &full,
            self.config.preview_width,
            self.config.preview_height,
            PreviewFit::Crop,
        );
        self.seq += 1;
        Ok(Frame {
            image,
            seq: self.seq,
            at: now,
        })
    }

    fn capture_still(&mut self, now: Millis) -> Result<Frame, CameraError> {
        // The stream runs at full resolution: the still is the next frame, so there is no mode
        // switch (and no exposure jump) between preview and shot.
        let image = self.grab(now)?;
        self.seq += 1;
        Ok(Frame {
            image,
            seq: self.seq,
            at: now,
        })
    }

    fn lock_exposure(&mut self, locked: bool) -> Result<(), CameraError> {
        if self.locked == locked {
            return Ok(());
        }
        self.set_auto(KnownCameraControl::Exposure, "exposure", locked)?;
        self.set_auto(KnownCameraControl::WhiteBalance, "white_balance", locked)?;
        self.locked = locked;
        Ok(())
    }

    fn reconnect(&mut self, now: Millis) -> Result<(), CameraError> {
        if self.cam.is_some() {
            return Ok(());
        }
        self.backoff.ready(now).map_err(CameraError::Waiting)?;
        match self.open_device() {
            Ok(cam) => {
                self.cam = Some(cam);
                self.backoff.succeeded();
                self.locked = false;
                Ok(())
            }
            Err(e) => {
                self.backoff.failed(now);
                Err(e)
            }
        }
    }

    fn is_connected(&self) -> bool {
        self.cam.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error as _;

    #[test]
    fn backoff_doubles_to_its_cap_and_resets() {
        let mut b = Backoff::new(250, 2000);
        assert_eq!(b.ready(Millis(0)), Ok(()));
        b.failed(Millis(0));
        assert_eq!(b.ready(Millis(100)), Err(150));
        assert_eq!(b.ready(Millis(250)), Ok(()));
        let mut t = 250;
        let mut waits = Vec::new();
        for _ in 0..6 {
            b.failed(Millis(t));
            let w = b.ready(Millis(t)).err().unwrap_or(0);
            waits.push(w);
            t += w;
        }
        assert_eq!(waits, vec![500, 1000, 2000, 2000, 2000, 2000]);
        b.succeeded();
        assert_eq!(b.ready(Millis(t)), Ok(()));
    }

    #[test]
    fn mjpeg_decodes_and_garbage_is_a_transient_error() {
        let img = RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8 * 4, y as u8 * 5, 128]));
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
            .encode_image(&img)
            .unwrap_or_default();
        let back = decode_mjpeg(&jpeg).map(|i| i.dimensions());
        assert_eq!(back.ok(), Some((64, 48)));
        let torn = &jpeg[..jpeg.len() / 2];
        // A torn frame either decodes partially or fails; it never panics, and failure is transient.
        if let Err(e) = decode_mjpeg(torn) {
            assert_eq!(e.kind(), ErrorKind::Timeout);
        }
        assert_eq!(
            decode_mjpeg(b"\xff\xd8garbage").map_err(|e| e.kind()).err(),
            Some(ErrorKind::Timeout)
        );
    }

    #[test]
    fn opening_a_missing_camera_is_a_disconnect() {
        if let Some(ix) = std::env::var_os("KIOSK_HW_CAMERA") {
            // Opt-in on a machine with a camera: a frame must arrive at the configured size.
            let index = ix.to_string_lossy().parse().unwrap_or(0);
            let mut cam = V4l2Camera::open(V4l2Config {
                index,
                ..V4l2Config::default()
            })
            .expect("camera opens");
            let f = cam.capture_still(Millis(0)).expect("a still");
            assert_eq!(f.image.dimensions(), (1920, 1080));
            return;
        }
        println!(
            "KIOSK_HW_CAMERA not set: the real camera is not exercised; checking the absent-device path"
        );
        let e = V4l2Camera::open(V4l2Config {
            index: 97,
            ..V4l2Config::default()
        })
        .expect_err("no /dev/video97 here");
        assert_eq!(e.kind(), ErrorKind::Disconnected);
        assert!(e.to_string().contains("video97"), "{e}");
    }
}
