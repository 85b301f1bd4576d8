//! The full verdict on a still: detect the faces, measure the head, plan the crop, run the checks and
//! produce the standardized JPEG. Models are loaded once ([`Analyzer::new`]) and reused.
//!
//! This is the path from shutter to verdict; it does no IO besides loading the models at construction
//! and reads the clock only through [`crate::clock`] to report stage timings. Which checks exist and
//! what they say is in [`super::checks`]; the limits are in the [`PhotoSpec`].

use std::time::{Duration, Instant};

use image::RgbImage;
use serde::Serialize;

use super::background::Backdrop;
use super::checks;
use super::detect::{
    BBox, DetectError, DetectorConfig, EyeLandmarks, Face, FaceDetector, FaceMesh, IrisModel, Keypoint,
    Landmarks468, Point, Roi,
};
use super::geometry::{CropPlan, FramingProblem, HeadGeometry, plan_crop};
use super::guidance::GuidanceFilter;
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
    /// Crop, resize and JPEG quality search; runs beside the Iris model and the checks.
    pub encode_ms: f64,
    /// The whole call (less than the sum: the encoding overlaps).
    pub total_ms: f64,
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
    /// The same detector model in a second session, configured for the preview: one inference per
    /// call (no tiles, no refining pass).
    tracker: FaceDetector,
    preview: PreviewState,
}

/// The preview fast path runs the full detector (whole frame, tiles for a small second face, refined
/// keypoints: four inferences at 640x480) on one frame in this many; the others track the student's
/// face in a square around where it was (one inference).
pub const PREVIEW_FULL_EVERY: u64 = 5;

/// Preview frames further apart than this belong to different framing episodes (the shell analyses
/// five a second while framing): the tracker and the guidance hysteresis start afresh.
pub const PREVIEW_EPISODE_GAP: Duration = Duration::from_secs(1);

/// What the preview fast path carries from one frame to the next.
#[derive(Debug, Default)]
struct PreviewState {
    frames: u64,
    last_at: Option<Instant>,
    /// The student's face in the last frame.
    tracked: Option<Face>,
    /// Faces besides the student's that the last full pass saw.
    others: usize,
    filter: GuidanceFilter,
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
        let tracker = FaceDetector::with_config(
            models.path("face_detection_full_range")?,
            DetectorConfig {
                small_face_tiles: false,
                refine: false,
                ..DetectorConfig::default()
            },
        )?;
        Ok(Analyzer {
            detector,
            mesh,
            iris,
            tracker,
            preview: PreviewState::default(),
        })
    }

    /// The full verdict on a still.
    pub fn analyze(&mut self, img: &RgbImage, spec: &PhotoSpec) -> Result<Analysis, AnalyzeError> {
        let mut times = StageTimes::default();
        let t0 = clock::monotonic();
        let faces = self.detector.detect(img)?;
        let t1 = clock::monotonic();
        times.detect_ms = ms(t1 - t0);

        let main = largest(&faces);
        let landmarks = match &main {
            Some(face) => Some(self.mesh.landmarks(img, face)?),
            None => None,
        };
        let t2 = clock::monotonic();
        times.landmarks_ms = ms(t2 - t1);

        let backdrop = Backdrop::observed(img, spec.background.rgb);
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
        // The filed JPEG (crop, resize, quality search: the longest stage after detection) needs only
        // the plan, so it is made on the other core while this one runs the Iris model and the pixel
        // checks. Scoped threads: nothing outlives the call, and a panic in either is re-raised here.
        let ok_plan = plan.as_ref().and_then(|p| p.as_ref().ok()).copied();
        let (measures, encoded) = std::thread::scope(|scope| {
            let encoder = ok_plan.map(|p| {
                scope.spawn(move || {
                    let t = clock::monotonic();
                    let s = standardize(img, &p, &spec.output);
                    (s, clock::monotonic() - t)
                })
            });
            let measures = self.measure(img, landmarks.as_ref(), head.as_ref(), ok_plan.as_ref(), spec);
            let measured_at = clock::monotonic();
            let encoded = encoder.map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)));
            (measures.map(|(m, iris)| (m, iris, measured_at)), encoded)
        });
        let (measures, iris_time, measured_at) = measures?;
        times.landmarks_ms = ms(t2 - t1 + iris_time);
        let t3 = clock::monotonic();
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
        // Measuring and grading, without the Iris model and without waiting for the encoder.
        times.checks_ms = ms((measured_at - t2).saturating_sub(iris_time) + (clock::monotonic() - t3));

        let mut standardized = None;
        if let Some((result, took)) = encoded {
            let out = &spec.output;
            times.encode_ms = ms(took);
            match result {
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
        times.total_ms = ms(clock::monotonic() - t0);
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
    /// The Iris model's eyelids and the pixel and landmark measures of the main face, and the time the
    /// Iris model took.
    fn measure(
        &mut self,
        img: &RgbImage,
        landmarks: Option<&Landmarks468>,
        head: Option<&HeadMeasure>,
        plan: Option<&CropPlan>,
        spec: &PhotoSpec,
    ) -> Result<(Option<FaceMeasures>, Duration), AnalyzeError> {
        let (Some(lm), Some(h)) = (landmarks, head) else {
            return Ok((None, Duration::ZERO));
        };
        // The eyelids from the Iris model: FaceMesh regularises the eyes towards open and symmetric and
        // misses a wink; the Iris model sees each lid.
        let t = clock::monotonic();
        let eyes = self.eyes(img, lm)?;
        let iris_time = clock::monotonic() - t;
        let (crop, scale) = judged_crop(plan, h, spec);
        let mut m = measure_face(img, lm, crop, scale, spec.background.rgb, h.hair_top_y);
        m.set_eyes(img, &eyes);
        Ok((Some(m), iris_time))
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

    /// Guidance for one preview frame on its own (no tracking, no hysteresis): the full detector, the
    /// crop planned against the spec, and short messages for the student. Coordinates are the
    /// preview's; the upscale limit is relaxed by `still_over_preview` because the still has that many
    /// times more pixels. [`Analyzer::preview`] is the fast path the shell runs.
    pub fn guidance_with(
        &mut self,
        preview: &RgbImage,
        spec: &PhotoSpec,
        still_over_preview: f64,
    ) -> Result<ui::Guidance, AnalyzeError> {
        let faces = self.detector.detect(preview)?;
        let main = largest(&faces);
        Ok(raw_guidance(
            preview,
            main.as_ref(),
            faces.len().saturating_sub(1),
            spec,
            still_over_preview,
        ))
    }

    /// [`Analyzer::guidance_with`] for a preview of a 1080-line still.
    pub fn guidance(&mut self, preview: &RgbImage, spec: &PhotoSpec) -> Result<ui::Guidance, AnalyzeError> {
        self.guidance_with(preview, spec, 1080.0 / preview.height().max(1) as f64)
    }

    /// The preview fast path: guidance for the framing screen from one preview frame taken at `now`,
    /// for a 1080-line still.
    ///
    /// Cheap work every frame: the student's face is tracked with one detector inference in a square
    /// about three face widths wide around where it was (the same view the full detector's refining
    /// pass takes, so the eye keypoints are as precise), the hair line is scanned against the backdrop
    /// and the crop is planned. Expensive work one frame in [`PREVIEW_FULL_EVERY`]: the full detector,
    /// whose tiles find a small second face. A frame where the face is lost falls back to one
    /// whole-frame inference. The messages then go through the guidance hysteresis
    /// ([`super::guidance`]), so the advice does not flicker. A gap of more than
    /// [`PREVIEW_EPISODE_GAP`] since the last frame starts afresh.
    pub fn preview(
        &mut self,
        now: Instant,
        frame: &RgbImage,
        spec: &PhotoSpec,
    ) -> Result<ui::Guidance, AnalyzeError> {
        let stale = self
            .preview
            .last_at
            .is_none_or(|last| now.saturating_duration_since(last) > PREVIEW_EPISODE_GAP);
        if stale {
            self.preview = PreviewState::default();
        }
        self.preview.last_at = Some(now);
        let main = self.preview_face(frame)?;
        let raw = raw_guidance(
            frame,
            main.as_ref(),
            self.preview.others,
            spec,
            1080.0 / frame.height().max(1) as f64,
        );
        Ok(self.preview.filter.update(&raw))
    }

    /// The student's face in this preview frame (see [`Analyzer::preview`]).
    fn preview_face(&mut self, frame: &RgbImage) -> Result<Option<Face>, AnalyzeError> {
        let full = self.preview.frames.is_multiple_of(PREVIEW_FULL_EVERY);
        self.preview.frames += 1;
        let main = if full {
            let faces = self.detector.detect(frame)?;
            self.preview.others = faces.len().saturating_sub(1);
            largest(&faces)
        } else {
            let tracked = match self.preview.tracked {
                Some(prev) => self.track(frame, &prev)?,
                None => None,
            };
            match tracked {
                Some(f) => Some(f),
                None => largest(&self.tracker.detect(frame)?),
            }
        };
        self.preview.tracked = main;
        Ok(main)
    }

    /// Finds `prev` again in a square around it: the detector's best overlap with where it was, or
    /// `None` when it has gone.
    fn track(&mut self, frame: &RgbImage, prev: &Face) -> Result<Option<Face>, AnalyzeError> {
        let (w, h) = frame.dimensions();
        let short = w.min(h);
        let b = prev.bbox;
        let side = ((3.0 * b.width().max(b.height())) as u32).clamp(TRACK_MIN_SIDE.min(short), short);
        let c = b.center();
        let x = (c.x as i64 - i64::from(side / 2)).clamp(0, i64::from(w - side)) as u32;
        let y = (c.y as i64 - i64::from(side / 2)).clamp(0, i64::from(h - side)) as u32;
        let square = image::imageops::crop_imm(frame, x, y, side, side).to_image();
        let found = self
            .tracker
            .detect(&square)?
            .into_iter()
            .map(|f| offset(f, x as f32, y as f32))
            .map(|f| (f.bbox.iou(&b), f))
            .filter(|(iou, _)| *iou > TRACK_MIN_IOU)
            .max_by(|p, q| p.0.total_cmp(&q.0))
            .map(|(_, f)| f);
        Ok(found)
    }
}

/// The smallest tracking square: the detector's input size (192), so it is never upscaled.
const TRACK_MIN_SIDE: u32 = 192;
/// A face found in the tracking square is the tracked one when it overlaps the last box this much
/// (a student moves a few pixels between frames five a second apart; a different face would not
/// overlap at all).
const TRACK_MIN_IOU: f32 = 0.3;

/// The student is the largest face; anyone else is a second face.
fn largest(faces: &[Face]) -> Option<Face> {
    faces
        .iter()
        .max_by(|a, b| a.bbox.width().total_cmp(&b.bbox.width()))
        .copied()
}

/// A face found in a sub-image, in the coordinates of the frame it was cut from.
fn offset(face: Face, dx: f32, dy: f32) -> Face {
    let p = |p: Point| Point {
        x: p.x + dx,
        y: p.y + dy,
    };
    Face {
        bbox: BBox {
            left: face.bbox.left + dx,
            top: face.bbox.top + dy,
            right: face.bbox.right + dx,
            bottom: face.bbox.bottom + dy,
        },
        keypoints: face.keypoints.map(p),
        score: face.score,
    }
}

/// The messages for one preview frame, most important first: where the student's face is (`main`),
/// how many other faces there are, and whether the crop can be planned.
fn raw_guidance(
    preview: &RgbImage,
    main: Option<&Face>,
    others: usize,
    spec: &PhotoSpec,
    still_over_preview: f64,
) -> ui::Guidance {
    let line = |zh: &str, en: &str| ui::GuidanceLine {
        zh: zh.into(),
        en: en.into(),
    };
    let mut g = ui::Guidance::default();
    let Some(main) = main else {
        g.lines
            .push(line("请坐到镜头正前方", "Please sit in front of the camera"));
        return g;
    };
    if others > 0 {
        g.lines
            .push(line("画面中只能有您一人", "Only you may be in the picture"));
    }
    let head = measure_head(
        preview,
        main,
        None,
        &Backdrop::observed(preview, spec.background.rgb),
    );
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
    g
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
