//! The camera trait: a live preview stream plus full-resolution stills.
//!
//! Shaped for a UVC camera driven by nokhwa (MJPEG preview, a still at full resolution, exposure
//! and white balance locked while shooting) and for [`crate::sim::SimCamera`]. Deliberately says
//! nothing about formats, resolutions or V4L2 controls: frames arrive as RGB8 and the driver
//! chooses how to get them.

use image::RgbImage;

use crate::{Error, Millis};

/// One image from the camera.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// The pixels, RGB8.
    pub image: RgbImage,
    /// Increases by one for every distinct frame the camera delivers (preview and still share
    /// the counter), so a consumer can tell a new frame from the same one fetched twice.
    pub seq: u64,
    /// When the frame was exposed, on the caller's timeline.
    pub at: Millis,
}

/// A camera with a preview stream and still capture.
pub trait Camera {
    /// The driver's error.
    type Error: Error;

    /// The latest preview frame (downscaled, e.g. 640x480). Fetching twice within one frame
    /// interval returns the same `seq`.
    fn preview_frame(&mut self, now: Millis) -> Result<Frame, Self::Error>;

    /// A full-resolution still.
    fn capture_still(&mut self, now: Millis) -> Result<Frame, Self::Error>;

    /// Locks (or releases) automatic exposure and white balance, so that the still matches the
    /// preview the checks saw. Fallible because on real hardware it is a control write.
    fn lock_exposure(&mut self, locked: bool) -> Result<(), Self::Error>;

    /// Tries to reopen the device after a disconnect; cheap to call repeatedly.
    fn reconnect(&mut self, now: Millis) -> Result<(), Self::Error>;

    /// Whether the last call found the device present.
    fn is_connected(&self) -> bool;
}

/// Lets a caller lend a camera to a wrapper (fault injector) and keep inspecting it.
impl<T: Camera + ?Sized> Camera for &mut T {
    type Error = T::Error;

    fn preview_frame(&mut self, now: Millis) -> Result<Frame, Self::Error> {
        T::preview_frame(self, now)
    }

    fn capture_still(&mut self, now: Millis) -> Result<Frame, Self::Error> {
        T::capture_still(self, now)
    }

    fn lock_exposure(&mut self, locked: bool) -> Result<(), Self::Error> {
        T::lock_exposure(self, locked)
    }

    fn reconnect(&mut self, now: Millis) -> Result<(), Self::Error> {
        T::reconnect(self, now)
    }

    fn is_connected(&self) -> bool {
        T::is_connected(self)
    }
}
