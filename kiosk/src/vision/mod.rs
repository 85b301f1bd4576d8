//! On-device photo analysis: face detection with ONNX Runtime, the checks of the photo spec, and
//! standardization (crop + resize + encode only).
//!
//! Nothing here touches devices, the store or the UI; the shell hands in decoded frames and gets a
//! [`Verdict`] and the standardized JPEG back.

pub mod advisory;
pub mod analyze;
pub mod background;
pub mod checks;
pub mod detect;
pub mod geometry;
pub mod guidance;
pub mod layout;
pub mod liveness;
pub mod measure;
pub mod spec;
pub mod standardize;
mod verdict;

pub use detect::{
    BBox, DetectError, DetectorConfig, Face, FaceDetector, FaceMesh, Keypoint, Landmarks468, Point, Roi,
};
pub use verdict::{CheckResult, CheckStatus, Verdict};
