//! The full verdict on a still: detect the faces, measure the head, plan the crop, run the checks and
//! produce the standardized JPEG. Models are loaded once ([`Analyzer::new`]) and reused.
//!
//! This is the path from shutter to verdict; it does no IO besides loading the models at construction
//! and reads the clock only through [`crate::clock`] to report stage timings. Which checks exist and
//! what they say is in [`super::checks`]; the limits are in the [`PhotoSpec`].

use std::time::Duration;

use image::RgbImage;
use serde::Serialize;

use super::background::Backdrop;
use super::checks;
use super::detect::{
    DetectError, EyeLandmarks, Face, FaceDetector, FaceMesh, IrisModel, Keypoint, Landmarks468, Roi,
};
use super::geometry::{CropPlan, FramingProblem, HeadGeometry, plan_crop};
use super::liveness::{self, LivenessSample};
use super::measure::{FaceMeasures, Rect, measure_face};
use super::spec::PhotoSpec;
use super::standardize::{Standardized, standardize};
use super::verdict::{CheckStatus, Verdict};
use crate::clock;
use crate::runtime::{RuntimeError, RuntimePaths};

/// FaceMesh indices (MediaPipe canonical mesh): the cheek points the photo standard's
/// "face width" is measured between.
const CHEEKS: (usize, usize) = (234, 454);
const FOREHEAD_TOP: usize = 10;

/// Why the analysis could not run at all (as opposed to a photo that fails a check).
#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Model(#[from] DetectError),
}

/// What was measured on the main face, in capture pixels and degrees.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct HeadMeasure {
    pub eye_mid: (f64, f64),
    pub face_width: f64,
    pub hair_top_y: Option<f64>,
    pub roll_deg: f64,
}

/// Time spent per stage, for `kioskctl check` and the benches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct StageTimes {
    pub detect_ms: f64,
    pub landmarks_ms: f64,
    pub checks_ms: f64,
    pub encode_ms: f64,
}

/// Everything the verdict was made from.
#[derive(Clone, Debug)]
pub struct Analysis {
    pub verdict: Verdict,
    pub faces: Vec<Face>,
    pub head: Option<HeadMeasure>,
    pub plan: Option<CropPlan>,
    /// The photo as it would be filed, when a crop and an encoding meeting the spec exist.
    pub standardized: Option<Standardized>,
    /// What the pixel and landmark checks measured on the main face (for the eval harness and logs).
    pub measures: Option<FaceMeasures>,
    pub times: StageTimes,
}

/// Face detector and landmarker, loaded once.
#[derive(Debug)]
pub struct Analyzer {
    detector: FaceDetector,
    mesh: FaceMesh,
    iris: IrisModel,
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e4).round() / 10.0
}

impl Analyzer {
    /// Loads the models named in the manifest (ONNX Runtime must be initialised: see
    /// [`crate::runtime::setup`]).
    pub fn new(paths: &RuntimePaths) -> Result<Analyzer, AnalyzeError> {
        let models = paths.models()?;
        let detector = FaceDetector::new(models.path("face_detection_full_range")?)?;
        let mesh = FaceMesh::new(models.path("face_landmark")?)?;
        let iris = IrisModel::new(models.path("iris_landmark")?)?;
        Ok(Analyzer { detector, mesh, iris })
    }

    /// The full verdict on a still.
    pub fn analyze(&mut self, img: &RgbImage, spec: &PhotoSpec) -> Result<Analysis, AnalyzeError> {
        let mut times = StageTimes::default();
        let t0 = clock::monotonic();
        let faces = self.detector.detect(img)?;
        let t1 = clock::monotonic();
        times.detect_ms = ms(t1 - t0);

        // The student is the largest face; anyone else is a second face.
        let main = faces
            .iter()
            .max_by(|a, b| a.bbox.width().total_cmp(&b.bbox.width()))
            .copied();
        let landmarks = match &main {
            Some(face) => Some(self.mesh.landmarks(img, face)?),
            None => None,
        };
        // The eyelids from the Iris model: FaceMesh regularises the eyes towards open and symmetric and
        // misses a wink; the Iris model sees each lid.
        let eyes = match &landmarks {
            Some(lm) => Some(self.eyes(img, lm)?),
            None => None,
        };
        let t2 = clock::monotonic();
        times.landmarks_ms = ms(t2 - t1);

        let backdrop = Backdrop::new(spec.background.rgb);
        let head = main.map(|face| measure_head(img, &face, landmarks.as_ref(), &backdrop));
        let plan = head.map(|h| match h.hair_top_y {
            Some(hair_top_y) => plan_crop(
                &HeadGeometry {
                    eye_mid: h.eye_mid,
                    face_width: h.face_width,
                    hair_top_y,
                },
                img.dimensions(),
                &spec.geometry,
                &spec.output,
            ),
            // No hair edge against the backdrop above the face: the head is cut at the top or something
            // covers the backdrop; either way it cannot be placed.
            None => Err(FramingProblem::TooHigh),
        });

        let (inside, outside) = count_faces(&faces, plan.as_ref().and_then(|p| p.as_ref().ok()));
        let mut verdict = Verdict::default();
        verdict.checks.push(checks::single_face(inside, outside));
        verdict.checks.push(match &plan {
            Some(p) => checks::framing(p.as_ref().map_err(|e| *e)),
            None => checks::framing(Err(FramingProblem::Proportions)).undetermined(),
        });
        verdict
            .checks
            .push(checks::roll(head.map(|h| h.roll_deg), spec.pose.max_roll_deg));
        let measures = match (&landmarks, &head) {
            (Some(lm), Some(h)) => {
                let ok_plan = plan.as_ref().and_then(|p| p.as_ref().ok());
                let (crop, scale) = judged_crop(ok_plan, h, spec);
                let mut m = measure_face(img, lm, crop, scale, spec.background.rgb, h.hair_top_y);
                if let Some(e) = &eyes {
                    m.set_eyes(img, e);
                }
                Some(m)
            }
            _ => None,
        };
        checks::face_checks(&mut verdict, measures.as_ref(), spec);
        checks::extra_checks(&mut verdict, measures.as_ref(), spec);
        // A second face inside the crop is also a second person on the backdrop.
        if inside > 1
            && let Some(bg) = verdict.checks.iter_mut().find(|c| c.id == "background")
        {
            bg.status = CheckStatus::Fail;
            bg.message_zh = "背景中有其他人".into();
            bg.message_en = "Someone else is on the backdrop".into();
        }
        let t3 = clock::monotonic();
        times.checks_ms = ms(t3 - t2);

        let mut standardized = None;
        if let Some(Ok(p)) = &plan {
            let out = &spec.output;
            match standardize(img, p, out) {
                Ok(s) => {
                    verdict.checks.push(checks::output_file(
                        Ok((s.jpeg.len(), s.quality)),
                        out.size_min_kb,
                        out.size_max_kb,
                    ));
                    standardized = Some(s);
                }
                Err(e) => verdict
                    .checks
                    .push(checks::output_file(Err(&e), out.size_min_kb, out.size_max_kb)),
            }
        }
        times.encode_ms = ms(clock::monotonic() - t3);
        Ok(Analysis {
            verdict,
            faces,
            head,
            plan: plan.and_then(Result::ok),
            standardized,
            measures,
            times,
        })
    }
}

impl Analyzer {
    /// Both eyes from the Iris model (`[right eye, left eye]` of the subject). The subject's left eye is
    /// mirrored for the model: measured on the labelled corpora, that orientation separates a wink
    /// (openness ~0.11) from narrowed smiling eyes (>= 0.19); the other does not (0.15-0.21 vs 0.30).
    fn eyes(&mut self, img: &RgbImage, lm: &Landmarks468) -> Result<[EyeLandmarks; 2], AnalyzeError> {
        let right = self.iris.eye(img, lm.point(33), lm.point(133), false)?;
        let left = self.iris.eye(img, lm.point(362), lm.point(263), true)?;
        Ok([right, left])
    }

    /// The fast path on a preview frame: detection only (no landmarks), the crop planned against the
    /// spec, and short messages for the student. Coordinates are the preview's; the upscale limit is
    /// relaxed by `still_over_preview` because the still has that many times more pixels.
    pub fn guidance_with(
        &mut self,
        preview: &RgbImage,
        spec: &PhotoSpec,
        still_over_preview: f64,
    ) -> Result<ui::Guidance, AnalyzeError> {
        let faces = self.detector.detect(preview)?;
        let line = |zh: &str, en: &str| ui::GuidanceLine {
            zh: zh.into(),
            en: en.into(),
        };
        let mut g = ui::Guidance::default();
        let Some(main) = faces
            .iter()
            .max_by(|a, b| a.bbox.width().total_cmp(&b.bbox.width()))
            .copied()
        else {
            g.lines
                .push(line("请坐到镜头正前方", "Please sit in front of the camera"));
            return Ok(g);
        };
        if faces.len() > 1 {
            g.lines
                .push(line("画面中只能有您一人", "Only you may be in the picture"));
        }
        let head = measure_head(preview, &main, None, &Backdrop::new(spec.background.rgb));
        if head.roll_deg.abs() > spec.pose.max_roll_deg {
            g.lines.push(line("请摆正头部", "Please hold your head level"));
        }
        let mut geometry = spec.geometry.clone();
        geometry.max_upscale *= still_over_preview.max(1.0);
        let h = preview.height() as f64;
        let plan = plan_crop(
            &HeadGeometry {
                eye_mid: head.eye_mid,
                face_width: head.face_width,
                hair_top_y: head.hair_top_y.unwrap_or(0.0),
            },
            preview.dimensions(),
            &geometry,
            &spec.output,
        );
        let permille = |y: f64| (y / h * 1000.0).clamp(0.0, 1000.0).round() as u16;
        match plan {
            Ok(p) => {
                g.eye_line = Some(ui::EyeLine {
                    y_permille: permille(head.eye_mid.1),
                    band_top_permille: permille(p.y + spec.geometry.eye_line_px[0] / p.scale),
                    band_bottom_permille: permille(p.y + spec.geometry.eye_line_px[1] / p.scale),
                });
            }
            Err(problem) => {
                g.lines.push(line(problem.guidance_zh(), problem.guidance_en()));
                g.eye_line = Some(ui::EyeLine {
                    y_permille: permille(head.eye_mid.1),
                    band_top_permille: 400,
                    band_bottom_permille: 480,
                });
            }
        }
        Ok(g)
    }

    /// [`Analyzer::guidance_with`] for a preview of a 1080-line still.
    pub fn guidance(&mut self, preview: &RgbImage, spec: &PhotoSpec) -> Result<ui::Guidance, AnalyzeError> {
        self.guidance_with(preview, spec, 1080.0 / preview.height().max(1) as f64)
    }
}

/// Eye line, face width and hair top of one face: from the 468 landmarks where available, from the
/// detector's keypoints and box otherwise.
fn measure_head(img: &RgbImage, face: &Face, lm: Option<&Landmarks468>, backdrop: &Backdrop) -> HeadMeasure {
    let (right_eye, left_eye, face_width, forehead_y) = match lm {
        Some(lm) => {
            // The eye centre is the mean of the 16 eye-contour points (what the corpus levelled with);
            // the corners alone drift on a turned head.
            let centre = |ids: &[usize]| {
                let n = ids.len() as f64;
                let (sx, sy) = ids.iter().fold((0.0, 0.0), |(sx, sy), &i| {
                    let p = lm.point(i);
                    (sx + p.x as f64, sy + p.y as f64)
                });
                (sx / n, sy / n)
            };
            let (c1, c2) = (lm.point(CHEEKS.0), lm.point(CHEEKS.1));
            let width = ((c2.x - c1.x) as f64).hypot((c2.y - c1.y) as f64);
            (
                centre(&super::measure::idx::RIGHT_EYE),
                centre(&super::measure::idx::LEFT_EYE),
                width,
                lm.point(FOREHEAD_TOP).y as f64,
            )
        }
        None => {
            let (r, l) = (
                face.keypoint(Keypoint::RightEye),
                face.keypoint(Keypoint::LeftEye),
            );
            (
                (r.x as f64, r.y as f64),
                (l.x as f64, l.y as f64),
                face.bbox.width() as f64,
                face.bbox.top as f64,
            )
        }
    };
    let eye_mid = ((right_eye.0 + left_eye.0) / 2.0, (right_eye.1 + left_eye.1) / 2.0);
    // Image coordinates: y grows downwards, so a positive roll means the subject's left eye (image right)
    // sits lower.
    let roll_deg = (left_eye.1 - right_eye.1)
        .atan2(left_eye.0 - right_eye.0)
        .to_degrees();
    // The hair must start above the forehead; scanning stops there so a dark brow never counts as hair.
    // Backdrop all the way down to the forehead (a backdrop-coloured head covering, say): the forehead's
    // top is the best estimate left.
    let hair_top_y = backdrop
        .hair_top(img, eye_mid.0, face_width, forehead_y.min(eye_mid.1))
        .or(Some(forehead_y));
    HeadMeasure {
        eye_mid,
        face_width,
        hair_top_y,
        roll_deg,
    }
}

/// The crop the backdrop and clothing are judged in, and the output scale the focus is judged at: the
/// planned crop when there is one, else the crop a centred head of mid-band size would get (so a
/// badly framed photo still gets its other checks measured).
fn judged_crop(plan: Option<&CropPlan>, head: &HeadMeasure, spec: &PhotoSpec) -> (Rect, f64) {
    if let Some(p) = plan {
        return ((p.x, p.y, p.width, p.height), p.scale);
    }
    let g = &spec.geometry;
    let o = &spec.output;
    let scale = (g.face_width_px[0] + g.face_width_px[1]) / 2.0 / head.face_width.max(1.0);
    let (w, h) = (o.width as f64 / scale, o.height as f64 / scale);
    let eye_out = (g.eye_line_px[0] + g.eye_line_px[1]) / 2.0;
    let crop = (head.eye_mid.0 - w / 2.0, head.eye_mid.1 - eye_out / scale, w, h);
    (crop, scale)
}

/// Faces whose centre lies in the crop, and faces outside it. Without a crop every face counts as inside.
fn count_faces(faces: &[Face], plan: Option<&CropPlan>) -> (usize, usize) {
    match plan {
        None => (faces.len(), 0),
        Some(p) => {
            let inside = faces
                .iter()
                .filter(|f| {
                    let c = f.bbox.center();
                    let (x, y) = (c.x as f64, c.y as f64);
                    x >= p.x && x <= p.x + p.width && y >= p.y && y <= p.y + p.height
                })
                .count();
            (inside, faces.len() - inside)
        }
    }
}

impl Analyzer {
    /// One liveness sample of a preview frame (see [`super::liveness`]): FaceMesh on the crop tracked
    /// from the previous frame (one pass) or, when no face is tracked, on the largest detected face,
    /// then the Iris model on each eye. Returns the sample and the crop to track on the next frame.
    pub fn liveness_sample(
        &mut self,
        preview: &RgbImage,
        t_ms: u64,
        tracked: Option<Roi>,
    ) -> Result<(LivenessSample, Option<Roi>), AnalyzeError> {
        let lm = match tracked {
            Some(roi) => Some(self.mesh.landmarks_in(preview, &roi)?),
            None => {
                let faces = self.detector.detect(preview)?;
                match faces
                    .iter()
                    .max_by(|a, b| a.bbox.width().total_cmp(&b.bbox.width()))
                {
                    Some(face) => Some(self.mesh.landmarks(preview, face)?),
                    None => None,
                }
            }
        };
        // A crop that lost the face (the student stood up) is dropped; the detector looks again next time.
        match lm.filter(|lm| lm.presence >= LIVENESS_MIN_PRESENCE) {
            Some(lm) => {
                let eyes = self.eyes(preview, &lm)?;
                let sample = liveness::sample(preview, t_ms, Some((&lm, &eyes)));
                Ok((sample, Some(Roi::from_landmarks(&lm))))
            }
            None => Ok((liveness::sample(preview, t_ms, None), None)),
        }
    }
}

/// FaceMesh face presence below which a tracked crop no longer holds the face.
const LIVENESS_MIN_PRESENCE: f32 = 0.5;
