//! Planning the crop: which 3:4 window of the capture, scaled to the spec's output size, puts the top of
//! the hair, the eye line and the face width inside the spec's bands.
//!
//! The kiosk standardizes by crop and resize only (the standard forbids rotating and mirroring), so a
//! head that cannot be framed this way must be fixed by the person: the planner says which way
//! ([`FramingProblem`]) so the UI can tell the student. It does not measure the face; it is given
//! [`HeadGeometry`] from the detector and the backdrop scan.

use super::spec::{GeometrySpec, OutputSpec};

/// Where the head is in the capture, in capture pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HeadGeometry {
    /// Midpoint between the eyes.
    pub eye_mid: (f64, f64),
    /// Cheek to cheek.
    pub face_width: f64,
    /// Top of the hair (or of the head where there is no hair), y.
    pub hair_top_y: f64,
}

/// A crop window in capture pixels and the scale it is resized by (output px per capture px).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CropPlan {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
    pub scale: f64,
    /// Where the features land in the output, and the smallest distance to a band edge (output px).
    pub hair_top_out: f64,
    pub eye_line_out: f64,
    pub face_width_out: f64,
    pub slack: f64,
}

/// Why no crop meets the spec, phrased as what the student should do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FramingProblem {
    /// The face is too small: it would need enlarging beyond the spec's limit.
    TooFar,
    /// The face is too large for any crop inside the frame.
    TooClose,
    /// The head is too high in the frame (the top of the head is cut or too close to the top edge).
    TooHigh,
    /// The head is too low in the frame.
    TooLow,
    /// The face is too far left or right for a centred crop.
    OffCentre,
    /// Hair, eyes and face width cannot all fit their bands at any scale (unusual proportions or a
    /// measurement error); the photo cannot be framed automatically.
    Proportions,
}

impl FramingProblem {
    pub fn code(self) -> &'static str {
        match self {
            FramingProblem::TooFar => "too_far",
            FramingProblem::TooClose => "too_close",
            FramingProblem::TooHigh => "too_high",
            FramingProblem::TooLow => "too_low",
            FramingProblem::OffCentre => "off_centre",
            FramingProblem::Proportions => "proportions",
        }
    }

    /// Guidance in Chinese (what to do).
    pub fn guidance_zh(self) -> &'static str {
        match self {
            FramingProblem::TooFar => "请坐近一点",
            FramingProblem::TooClose => "请往后坐一点",
            FramingProblem::TooHigh => "请把座椅调低一点",
            FramingProblem::TooLow => "请把座椅调高一点",
            FramingProblem::OffCentre => "请坐到座椅中间，正对镜头",
            FramingProblem::Proportions => "请正对镜头坐好，整理头发后重拍",
        }
    }

    pub fn guidance_en(self) -> &'static str {
        match self {
            FramingProblem::TooFar => "Please sit a little closer",
            FramingProblem::TooClose => "Please sit a little further back",
            FramingProblem::TooHigh => "Please lower the seat a little",
            FramingProblem::TooLow => "Please raise the seat a little",
            FramingProblem::OffCentre => "Please sit in the middle of the seat, facing the camera",
            FramingProblem::Proportions => "Please face the camera squarely, tidy your hair and try again",
        }
    }
}

/// How many scales between the smallest and largest admissible one are tried. The search is a few
/// microseconds; finer steps change the slack by well under a pixel.
const SCALE_STEPS: usize = 96;

/// Finds the crop with the most slack on every band, or says why none exists.
pub fn plan_crop(
    head: &HeadGeometry,
    frame: (u32, u32),
    geometry: &GeometrySpec,
    output: &OutputSpec,
) -> Result<CropPlan, FramingProblem> {
    let (fw, fh) = (frame.0 as f64, frame.1 as f64);
    let (ow, oh) = (output.width as f64, output.height as f64);
    let [hair_lo, hair_hi] = geometry.hair_top_px;
    let [eye_lo, eye_hi] = geometry.eye_line_px;
    let [face_lo, face_hi] = geometry.face_width_px;
    let (ex, ey) = head.eye_mid;
    let gap = ey - head.hair_top_y;
    if !(head.face_width > 1.0 && gap > 1.0 && ex.is_finite() && ey.is_finite()) {
        return Err(FramingProblem::Proportions);
    }
    if head.hair_top_y <= 1.0 {
        // The head reaches the top edge: its top may be cut off, so it cannot be placed.
        return Err(FramingProblem::TooHigh);
    }
    // Scales allowed by the face width and by the hair-to-eye distance.
    let s_min = (face_lo / head.face_width).max((eye_lo - hair_hi) / gap);
    let s_max = (face_hi / head.face_width).min((eye_hi - hair_lo) / gap);
    if s_min > s_max {
        return Err(FramingProblem::Proportions);
    }
    if s_min > geometry.max_upscale {
        return Err(FramingProblem::TooFar);
    }
    let s_max = s_max.min(geometry.max_upscale);

    let mut best: Option<CropPlan> = None;
    // Remembers the least-bad violation for the diagnosis when nothing fits. "Too close" is only the
    // answer when no scale gives a crop that fits the frame at all; otherwise the position is the problem.
    let mut too_close = false;
    let mut worst_axis: Option<(f64, FramingProblem)> = None;
    let mut note = |amount: f64, p: FramingProblem| {
        if worst_axis.is_none_or(|(a, _)| amount < a) {
            worst_axis = Some((amount, p));
        }
    };
    for i in 0..=SCALE_STEPS {
        let s = s_min + (s_max - s_min) * i as f64 / SCALE_STEPS as f64;
        let (cw, ch) = (ow / s, oh / s);
        if cw > fw || ch > fh {
            too_close = true;
            continue;
        }
        let x = ex - cw / 2.0;
        if x < 0.0 || x + cw > fw {
            note((-x).max(x + cw - fw) / fw, FramingProblem::OffCentre);
            continue;
        }
        // Admissible tops of the crop from each band, then from the frame.
        let lo = (ey - eye_hi / s).max(head.hair_top_y - hair_hi / s);
        let hi = (ey - eye_lo / s).min(head.hair_top_y - hair_lo / s);
        if lo > hi {
            continue;
        }
        let (flo, fhi) = (0.0, fh - ch);
        let (ylo, yhi) = (lo.max(flo), hi.min(fhi));
        if ylo > yhi {
            if hi < flo {
                note((flo - hi) / fh, FramingProblem::TooHigh);
            } else {
                note((lo - fhi) / fh, FramingProblem::TooLow);
            }
            continue;
        }
        // Centre the eye line and the hair in their bands as far as the frame allows.
        let ideal =
            ((ey - (eye_lo + eye_hi) / 2.0 / s) + (head.hair_top_y - (hair_lo + hair_hi) / 2.0 / s)) / 2.0;
        let y = ideal.clamp(ylo, yhi);
        let hair_out = (head.hair_top_y - y) * s;
        let eye_out = (ey - y) * s;
        let face_out = head.face_width * s;
        let slack = [
            hair_out - hair_lo,
            hair_hi - hair_out,
            eye_out - eye_lo,
            eye_hi - eye_out,
            face_out - face_lo,
            face_hi - face_out,
        ]
        .into_iter()
        .fold(f64::INFINITY, f64::min);
        let plan = CropPlan {
            x,
            y,
            width: cw,
            height: ch,
            scale: s,
            hair_top_out: hair_out,
            eye_line_out: eye_out,
            face_width_out: face_out,
            slack,
        };
        if best.is_none_or(|b| plan.slack > b.slack) {
            best = Some(plan);
        }
    }
    let problem = match worst_axis {
        Some((_, p)) => p,
        None if too_close => FramingProblem::TooClose,
        None => FramingProblem::Proportions,
    };
    best.ok_or(problem)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::spec::PhotoSpec;

    fn spec() -> PhotoSpec {
        PhotoSpec::builtin_by_id("chsi-graduate").unwrap()
    }

    fn plan(head: HeadGeometry) -> Result<CropPlan, FramingProblem> {
        let s = spec();
        plan_crop(&head, (1920, 1080), &s.geometry, &s.output)
    }

    /// A head like the corpus's clean frames: face ~360 px wide, eye line at 44 % of 1080.
    fn centred() -> HeadGeometry {
        HeadGeometry {
            eye_mid: (960.0, 475.0),
            face_width: 360.0,
            hair_top_y: 190.0,
        }
    }

    #[test]
    fn a_centred_head_is_framed_inside_every_band() {
        let p = plan(centred()).unwrap();
        let g = spec().geometry;
        assert!(p.slack >= 0.0, "{p:?}");
        assert!((g.eye_line_px[0]..=g.eye_line_px[1]).contains(&p.eye_line_out));
        assert!((g.hair_top_px[0]..=g.hair_top_px[1]).contains(&p.hair_top_out));
        assert!((g.face_width_px[0]..=g.face_width_px[1]).contains(&p.face_width_out));
        assert!(p.scale <= 1.0, "never upscales: {p:?}");
        assert!(p.x >= 0.0 && p.y >= 0.0 && p.x + p.width <= 1920.0 && p.y + p.height <= 1080.0);
        assert!((p.width / p.height - 0.75).abs() < 1e-9, "3:4");
    }

    #[test]
    fn each_problem_is_named() {
        let tiny = HeadGeometry {
            face_width: 120.0,
            hair_top_y: 420.0,
            ..centred()
        };
        assert_eq!(plan(tiny), Err(FramingProblem::TooFar));
        let huge = HeadGeometry {
            face_width: 900.0,
            hair_top_y: 40.0,
            eye_mid: (960.0, 600.0),
        };
        assert_eq!(plan(huge), Err(FramingProblem::TooClose));
        let cut = HeadGeometry {
            hair_top_y: 0.0,
            ..centred()
        };
        assert_eq!(plan(cut), Err(FramingProblem::TooHigh));
        let high = HeadGeometry {
            eye_mid: (960.0, 250.0),
            hair_top_y: 20.0,
            ..centred()
        };
        assert_eq!(plan(high), Err(FramingProblem::TooHigh));
        let low = HeadGeometry {
            eye_mid: (960.0, 1000.0),
            hair_top_y: 720.0,
            ..centred()
        };
        assert_eq!(plan(low), Err(FramingProblem::TooLow));
        let side = HeadGeometry {
            eye_mid: (150.0, 475.0),
            ..centred()
        };
        assert_eq!(plan(side), Err(FramingProblem::OffCentre));
        let flat = HeadGeometry {
            hair_top_y: 470.0,
            ..centred()
        };
        assert_eq!(plan(flat), Err(FramingProblem::Proportions));
    }
}
