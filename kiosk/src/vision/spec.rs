//! Photo specs: the numbers a photo must meet (size, dpi, file-size window, geometry, backdrop, pose
//! limits), loaded from TOML so a collection centre's other bounds are configuration, not code.
//!
//! The built-in specs live in `kiosk/specs/*.toml` and are compiled in; a kiosk may load more from a
//! directory. This module only describes limits; the checks and standardization apply them.

use std::path::Path;

use serde::Deserialize;

/// A photo type's full requirements.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PhotoSpec {
    pub id: String,
    pub name_zh: String,
    pub name_en: String,
    pub output: OutputSpec,
    pub geometry: GeometrySpec,
    pub background: BackgroundSpec,
    pub pose: PoseSpec,
    pub checks: ChecksSpec,
    pub liveness: LivenessSpec,
}

/// The file that is filed: pixel size, header dpi, JPEG quality floor and file-size window.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    pub width: u32,
    pub height: u32,
    pub dpi: u16,
    pub jpeg_quality_min: u8,
    pub jpeg_quality_max: u8,
    pub size_min_kb: u32,
    pub size_max_kb: u32,
}

/// Where the head must sit in the output, in output pixels from the top edge.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GeometrySpec {
    pub hair_top_px: [f64; 2],
    pub eye_line_px: [f64; 2],
    pub face_width_px: [f64; 2],
    /// How much the crop may enlarge the capture (1.0: never upscale).
    pub max_upscale: f64,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BackgroundSpec {
    pub rgb: [u8; 3],
    pub max_delta_e: f64,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PoseSpec {
    pub max_roll_deg: f64,
    pub max_yaw_deg: f64,
    pub max_pitch_deg: f64,
}

/// Limits of the pixel and landmark checks. Each is a band `[a, b]`: for a measure where lower is
/// better, `<= a` passes, `>= b` fails and between is undetermined (too close to call from one photo);
/// where higher is better, `<= a` fails and `>= b` passes. The bands were set on the labelled corpora
/// (see `kioskctl eval`), not guessed; the comments in the spec files say on what.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ChecksSpec {
    /// Degrees beyond the yaw limit that still count as "too close to call".
    pub pose_margin_deg: f64,
    /// Pitch beyond the limit by less than this is only an advisory: the face's own forehead-chin lean
    /// varies by about +-5 deg between people, so a 5 deg nod cannot be decided from one photo.
    pub pitch_margin_deg: f64,
    /// Eye aspect ratio (lid gap over eye width), higher is better: `[fail_max, pass_min]`.
    pub eye_open: [f64; 2],
    /// Inner-lip gap over mouth width, lower is better.
    pub mouth_gap: [f64; 2],
    /// Fraction of the lip area that looks like teeth, lower is better.
    pub teeth: [f64; 2],
    /// Focus ratio around the eyes at output scale, higher is better.
    pub sharpness: [f64; 2],
    /// |EV| of the exposure measured on the backdrop, lower is better.
    pub exposure_ev: [f64; 2],
    /// Entropy of the face's luma histogram in bits (dynamic range), higher is better.
    pub dynamic_range_bits: [f64; 2],
    /// Fraction of clipped skin, lower is better.
    pub skin_clipped: [f64; 2],
    /// Fraction of crushed (near-black) skin, lower is better.
    pub skin_crushed: [f64; 2],
    /// Brighter over darker cheek (linear light), lower is better.
    pub cheek_ratio: [f64; 2],
    /// Fraction of skin that is a specular hot spot, lower is better.
    pub highlights: [f64; 2],
    /// Fraction of the crop covered by foreign objects, lower is better.
    pub backdrop_foreign: [f64; 2],
    /// Unevenness of the backdrop (shadow, gradient), lower is better.
    pub backdrop_unevenness: [f64; 2],
    /// Fraction of the clothing that looks like the backdrop, lower is better.
    pub clothing_like_backdrop: [f64; 2],
    /// Fraction of the eye area that is red-eye red, lower is better.
    pub red_eye: [f64; 2],
    /// |Horizontal iris offset| in eye widths, lower is better.
    pub gaze: [f64; 2],
    /// Fraction of the lens area that is near white (reflections on glasses), lower is better.
    pub glasses_glare: [f64; 2],
    /// Advisory limit (never blocks): at or below passes, above is an advisory. Fraction of the band
    /// above the brows that is dark like hair.
    pub hair_over_brows: f64,
    /// Advisory limit: fraction of the bands beside the cheeks at ear height that is dark like hair.
    pub hair_over_ears: f64,
}

/// Limits of the liveness tracker over the framing preview (see [`crate::vision::liveness`]).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LivenessSpec {
    /// Only preview frames this recent count, milliseconds before the shutter.
    pub window_ms: u64,
    /// The open level (upper quartile of the larger eye's lid gap / width) must reach this.
    pub min_open: f64,
    /// The dark-iris channel is used only when its open level (fraction of the eye contour) reaches this.
    pub min_dark: f64,
    /// Closed: openness at or below this fraction of the open level; reopened: at or above `reopen_ratio`.
    pub closed_ratio: f64,
    pub reopen_ratio: f64,
    /// A blink is over within this long (from the last open frame to the first open one after it).
    pub max_blink_ms: u64,
    /// This many pixel-identical frames in a row are a frozen stream (a still image, not a camera).
    pub frozen_frames: usize,
    /// Periodic texture score at or above which a frame shows a screen or a print.
    pub moire: f64,
    /// Fraction of face frames over the texture limit that makes the stream a screen or a print,
    /// counted once at least `min_face_frames` frames showed a face.
    pub moire_frames: f64,
    pub min_face_frames: usize,
}

/// Why a spec could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The file could not be read.
    #[error("cannot read spec {path}: {source}")]
    Io { path: String, source: std::io::Error },
    /// The TOML is invalid or a key is missing or unknown; the message names the key.
    #[error("invalid spec {path}: {source}")]
    Parse {
        path: String,
        source: Box<toml::de::Error>,
    },
    /// The numbers contradict each other (e.g. a minimum above its maximum).
    #[error("invalid spec {id}: {reason}")]
    Invalid { id: String, reason: String },
    /// No spec with this id is known.
    #[error("unknown photo spec {0:?}")]
    Unknown(String),
}

const BUILTIN: &[(&str, &str)] = &[
    (
        "chsi-graduate.toml",
        include_str!("../../specs/chsi-graduate.toml"),
    ),
    (
        "chsi-graduate-white.toml",
        include_str!("../../specs/chsi-graduate-white.toml"),
    ),
];

/// The id of the default spec (高等院校毕业生照).
pub const DEFAULT_SPEC: &str = "chsi-graduate";

impl PhotoSpec {
    /// Parses and validates one spec; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<PhotoSpec, SpecError> {
        let spec: PhotoSpec = toml::from_str(text).map_err(|e| SpecError::Parse {
            path: origin.to_string(),
            source: Box::new(e),
        })?;
        spec.validate()?;
        Ok(spec)
    }

    /// Reads one spec file.
    pub fn load(path: &Path) -> Result<PhotoSpec, SpecError> {
        let text = std::fs::read_to_string(path).map_err(|source| SpecError::Io {
            path: path.display().to_string(),
            source,
        })?;
        PhotoSpec::from_toml(&text, &path.display().to_string())
    }

    /// The specs compiled into the binary.
    pub fn builtin() -> Vec<PhotoSpec> {
        BUILTIN
            .iter()
            .map(|(name, text)| PhotoSpec::from_toml(text, name).expect("built-in specs are valid (tested)"))
            .collect()
    }

    /// A built-in spec by id.
    pub fn builtin_by_id(id: &str) -> Result<PhotoSpec, SpecError> {
        PhotoSpec::builtin()
            .into_iter()
            .find(|s| s.id == id)
            .ok_or_else(|| SpecError::Unknown(id.into()))
    }

    fn validate(&self) -> Result<(), SpecError> {
        let bad = |reason: String| {
            Err(SpecError::Invalid {
                id: self.id.clone(),
                reason,
            })
        };
        let o = &self.output;
        if o.width == 0 || o.height == 0 || o.width > 4000 || o.height > 4000 {
            return bad(format!("output size {}x{} out of range", o.width, o.height));
        }
        if !(1..=100).contains(&o.jpeg_quality_min) || o.jpeg_quality_min > o.jpeg_quality_max {
            return bad("jpeg_quality_min must be 1..=jpeg_quality_max".into());
        }
        if o.jpeg_quality_max > 100 {
            return bad("jpeg_quality_max must be at most 100".into());
        }
        if o.size_min_kb > o.size_max_kb {
            return bad("size_min_kb is above size_max_kb".into());
        }
        let g = &self.geometry;
        for (name, [lo, hi]) in [
            ("hair_top_px", g.hair_top_px),
            ("eye_line_px", g.eye_line_px),
            ("face_width_px", g.face_width_px),
        ] {
            if !(lo.is_finite() && hi.is_finite() && 0.0 <= lo && lo <= hi) {
                return bad(format!(
                    "geometry.{name} must be [low, high] with 0 <= low <= high"
                ));
            }
        }
        if g.eye_line_px[1] > o.height as f64 || g.face_width_px[1] > o.width as f64 {
            return bad("geometry bands exceed the output size".into());
        }
        if g.hair_top_px[0] >= g.eye_line_px[1] {
            return bad("hair_top_px must lie above eye_line_px".into());
        }
        if !(g.max_upscale.is_finite() && g.max_upscale >= 1.0) {
            return bad("geometry.max_upscale must be >= 1.0".into());
        }
        let c = &self.checks;
        for (name, [a, b]) in [
            ("eye_open", c.eye_open),
            ("mouth_gap", c.mouth_gap),
            ("teeth", c.teeth),
            ("sharpness", c.sharpness),
            ("exposure_ev", c.exposure_ev),
            ("dynamic_range_bits", c.dynamic_range_bits),
            ("skin_clipped", c.skin_clipped),
            ("skin_crushed", c.skin_crushed),
            ("cheek_ratio", c.cheek_ratio),
            ("highlights", c.highlights),
            ("backdrop_foreign", c.backdrop_foreign),
            ("backdrop_unevenness", c.backdrop_unevenness),
            ("clothing_like_backdrop", c.clothing_like_backdrop),
            ("red_eye", c.red_eye),
            ("gaze", c.gaze),
            ("glasses_glare", c.glasses_glare),
        ] {
            if !(a.is_finite() && b.is_finite() && a <= b) {
                return bad(format!("checks.{name} must be [a, b] with a <= b"));
            }
        }
        if !(c.pose_margin_deg.is_finite() && c.pose_margin_deg >= 0.0 && c.pitch_margin_deg >= 0.0) {
            return bad("checks.pose_margin_deg must be >= 0".into());
        }
        let l = &self.liveness;
        if !(0.0 < l.closed_ratio && l.closed_ratio < l.reopen_ratio && l.reopen_ratio <= 1.0) {
            return bad("liveness: need 0 < closed_ratio < reopen_ratio <= 1".into());
        }
        if l.frozen_frames < 2 || l.window_ms == 0 || !(0.0..=1.0).contains(&l.moire_frames) {
            return bad("liveness: frozen_frames >= 2, window_ms > 0, moire_frames in 0..=1".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_specs_parse_and_validate() {
        let specs = PhotoSpec::builtin();
        assert_eq!(specs.len(), BUILTIN.len());
        let chsi = PhotoSpec::builtin_by_id(DEFAULT_SPEC).unwrap();
        assert_eq!(
            (chsi.output.width, chsi.output.height, chsi.output.dpi),
            (480, 640, 300)
        );
        assert_eq!(chsi.background.rgb, [100, 197, 255]);
        assert!(PhotoSpec::builtin_by_id("chsi-graduate-white").is_ok());
    }

    #[test]
    fn unknown_key_is_named_in_the_error() {
        let text = include_str!("../../specs/chsi-graduate.toml").replace("dpi = 300", "dpi = 300\ndpix = 1");
        let err = PhotoSpec::from_toml(&text, "x.toml").unwrap_err().to_string();
        assert!(err.contains("dpix"), "{err}");
    }

    #[test]
    fn contradictory_numbers_are_rejected() {
        let text =
            include_str!("../../specs/chsi-graduate.toml").replace("size_min_kb = 20", "size_min_kb = 50");
        assert!(matches!(
            PhotoSpec::from_toml(&text, "x.toml"),
            Err(SpecError::Invalid { .. })
        ));
        assert!(matches!(
            PhotoSpec::builtin_by_id("nope"),
            Err(SpecError::Unknown(_))
        ));
    }
}
