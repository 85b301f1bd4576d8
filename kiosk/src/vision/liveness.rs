//! Liveness across the preview stream: is a live person in front of the camera, or a printed photo or a
//! phone screen held up to it (翻拍)?
//!
//! No anti-spoofing model ships in a registry package (TOOLCHAIN.md), so the evidence is what the
//! landmark models and the pixels of the framing preview show:
//! - **blinks**: both eyes' Iris-model lid gap drops well below the person's own open level and comes
//!   back, within a blink's duration. A photo cannot blink. This is the one positive cue: without a
//!   blink the verdict stays `Undetermined` and the framing screen asks the student to blink.
//! - **a frozen stream**: consecutive preview frames that are pixel-identical. A real sensor never
//!   repeats a frame exactly (noise); a still image fed as a stream (or a hung camera) does.
//! - **screen or print texture** ("moire"): periodic high-frequency energy on the face: the normalised
//!   autocorrelation of the high-pass residual at lags of 2-7 px. Skin and sensor noise decorrelate
//!   within a pixel or two; a phone's pixel grid aliased by the camera, or a halftone print, repeats.
//! - **motion** (head pose range, non-rigid change of the landmark shape after removing an affine
//!   motion) is measured and reported, but it never decides alone: a bent photo fakes some of it and a
//!   still student shows little.
//!
//! `Live` needs a blink inside the window and no spoof cue; a spoof cue gives `NotLive`; anything else is
//! `Undetermined`, which never passes. The limits are the spec's `[liveness]` table. This module is
//! pure: it is handed samples with their timestamps and reads no clock and no device; the analyzer
//! measures a sample ([`crate::vision::analyze::Analyzer::liveness_sample`]) and the shell keeps the
//! tracker for the session.

use std::collections::VecDeque;

use image::RgbImage;
use serde::Serialize;

use super::detect::{EyeLandmarks, Landmarks468, Roi};
use super::spec::LivenessSpec;
use super::verdict::{CheckResult, CheckStatus};

/// FaceMesh points whose configuration is the face's shape for the non-rigid motion cue: the face
/// oval, nose, brows (eyes and mouth are left out: a blink or a smile is measured on its own).
const SHAPE: [usize; 16] = [
    10, 338, 297, 454, 361, 152, 132, 234, 67, 1, 4, 168, 105, 334, 58, 288,
];

/// What one preview frame showed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LivenessSample {
    /// When the frame was taken, milliseconds on the kiosk's timeline.
    pub t_ms: u64,
    /// A fingerprint of the frame's pixels: equal fingerprints in a row mean a frozen stream.
    pub fingerprint: u64,
    /// The face's measures, `None` when no face was found on this frame.
    pub face: Option<FaceSample>,
}

/// The face on one preview frame.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FaceSample {
    /// Lid gap over eye width of each eye (subject's right, left), from the Iris model.
    pub eye_open: (f32, f32),
    /// Fraction of each eye's contour (FaceMesh) that is dark like an iris or pupil (darker than 0.4x
    /// the skin around the eye): a closing lid covers them. The Iris model's lids lean towards open on
    /// an unusual closed eye; the iris disappearing does not.
    pub eye_dark: (f32, f32),
    /// Head pose from the FaceMesh depth, degrees: yaw, pitch, roll.
    pub pose_deg: [f32; 3],
    /// [`SHAPE`] points in frame pixels.
    pub shape: Vec<[f32; 2]>,
    /// Cheek-to-cheek width in frame pixels.
    pub face_width: f32,
    /// Periodic high-frequency texture on the face (0: none, 1: a perfect grating); `None` when the
    /// face region is too small to measure.
    pub moire: Option<f32>,
}

/// The tracker's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LivenessVerdict {
    Live,
    NotLive(SpoofCue),
    Undetermined,
}

/// Why the stream looks like a photo or a screen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SpoofCue {
    /// Consecutive frames are pixel-identical: a still image, not a camera.
    Frozen,
    /// The face carries periodic high-frequency texture: a screen or a print.
    Moire,
}

/// What the tracker saw in its window, for logs and the verdict record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct LivenessEvidence {
    /// Frames in the window, and those with a face.
    pub frames: usize,
    pub face_frames: usize,
    /// Completed blinks in the window.
    pub blinks: usize,
    /// The longest run of identical consecutive frames.
    pub frozen_run: usize,
    /// Fraction of face frames whose texture is over the moire limit.
    pub moire_frac: f64,
    /// Range of yaw / pitch over the window, degrees (reported, not decisive).
    pub pose_range_deg: f64,
    /// Largest non-rigid change of the face shape against the first face frame, after an affine fit,
    /// in face widths (reported, not decisive).
    pub nonrigid: f64,
}

/// Accumulates preview samples of one session and judges them.
#[derive(Clone, Debug)]
pub struct Liveness {
    spec: LivenessSpec,
    samples: VecDeque<LivenessSample>,
    /// The crop FaceMesh should look at next (from the last landmarks), so a preview frame needs no
    /// detector pass while the face is tracked.
    roi: Option<Roi>,
}

impl Liveness {
    pub fn new(spec: &LivenessSpec) -> Liveness {
        Liveness {
            spec: spec.clone(),
            samples: VecDeque::new(),
            roi: None,
        }
    }

    /// Forgets everything (a new session, a new person).
    pub fn reset(&mut self) {
        self.samples.clear();
        self.roi = None;
    }

    /// The crop to run FaceMesh on for the next frame, if the face is being tracked.
    pub fn roi(&self) -> Option<Roi> {
        self.roi
    }

    /// Adds one frame's sample; `roi` is where the face will be looked for next (`None` when lost).
    pub fn observe(&mut self, sample: LivenessSample, roi: Option<Roi>) {
        self.roi = roi;
        // Samples out of order (a clock reset) start a new window rather than confuse the blink timing.
        if self.samples.back().is_some_and(|s| s.t_ms > sample.t_ms) {
            self.samples.clear();
        }
        let keep_from = sample.t_ms.saturating_sub(self.spec.window_ms);
        self.samples.push_back(sample);
        while self.samples.front().is_some_and(|s| s.t_ms < keep_from) {
            self.samples.pop_front();
        }
    }

    /// The evidence in the window ending at `now_ms`.
    pub fn evidence(&self, now_ms: u64) -> LivenessEvidence {
        let from = now_ms.saturating_sub(self.spec.window_ms);
        let window: Vec<&LivenessSample> = self
            .samples
            .iter()
            .filter(|s| s.t_ms >= from && s.t_ms <= now_ms)
            .collect();
        let faces: Vec<(u64, &FaceSample)> = window
            .iter()
            .filter_map(|s| s.face.as_ref().map(|f| (s.t_ms, f)))
            .collect();
        let mut e = LivenessEvidence {
            frames: window.len(),
            face_frames: faces.len(),
            ..LivenessEvidence::default()
        };
        let mut run = 1;
        for pair in window.windows(2) {
            if pair[0].fingerprint == pair[1].fingerprint {
                run += 1;
                e.frozen_run = e.frozen_run.max(run);
            } else {
                run = 1;
            }
        }
        if faces.is_empty() {
            return e;
        }
        let over = faces
            .iter()
            .filter(|(_, f)| f.moire.is_some_and(|m| m as f64 >= self.spec.moire))
            .count();
        e.moire_frac = over as f64 / faces.len() as f64;
        e.blinks = self.blinks(&faces);
        let range = |k: usize| {
            let (lo, hi) = faces.iter().fold((f32::MAX, f32::MIN), |(lo, hi), (_, f)| {
                (lo.min(f.pose_deg[k]), hi.max(f.pose_deg[k]))
            });
            (hi - lo) as f64
        };
        e.pose_range_deg = range(0).max(range(1));
        let first = faces[0].1;
        e.nonrigid = faces
            .iter()
            .filter_map(|(_, f)| {
                affine_residual(&first.shape, &f.shape).map(|r| r / first.face_width.max(1.0) as f64)
            })
            .fold(0.0, f64::max);
        e
    }

    /// Blinks among the face frames: both eyes' openness (the larger of the two, so a wink is no blink)
    /// falls below `closed_ratio` of the open level (the window's upper quartile) and rises back above
    /// `reopen_ratio` of it within `max_blink_ms`. The open level itself must look like open eyes.
    fn blinks(&self, faces: &[(u64, &FaceSample)]) -> usize {
        // Two channels per frame, each the larger of the two eyes: the Iris model's lid gap and the
        // visible dark iris. Each channel's open level is its upper quartile over the window and must
        // look like open eyes; a frame is closed when either usable channel falls to `closed_ratio` of
        // its level, open again when every usable channel is back to `reopen_ratio`.
        let level = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[(v.len() - 1) * 3 / 4]
        };
        let lid = |f: &FaceSample| f.eye_open.0.max(f.eye_open.1) as f64;
        let dark = |f: &FaceSample| f.eye_dark.0.max(f.eye_dark.1) as f64;
        let lid_open = level(&mut faces.iter().map(|(_, f)| lid(f)).collect());
        let dark_open = level(&mut faces.iter().map(|(_, f)| dark(f)).collect());
        let use_lid = lid_open >= self.spec.min_open;
        let use_dark = dark_open >= self.spec.min_dark;
        // Eyes that never look open (a photo of closed eyes) cannot blink.
        if !use_lid {
            return 0;
        }
        let state = |f: &FaceSample| {
            let closed = (use_lid && lid(f) <= lid_open * self.spec.closed_ratio)
                || (use_dark && dark(f) <= dark_open * self.spec.closed_ratio);
            let open = (!use_lid || lid(f) >= lid_open * self.spec.reopen_ratio)
                && (!use_dark || dark(f) >= dark_open * self.spec.reopen_ratio);
            (closed, open)
        };
        let mut blinks = 0;
        // The time of the last open frame before the current closure, and whether the eyes are closed.
        let mut open_at: Option<u64> = None;
        let mut closed_now = false;
        for &(t, f) in faces {
            let (is_closed, is_open) = state(f);
            if is_closed {
                if !closed_now && open_at.is_some() {
                    closed_now = true;
                }
            } else if is_open {
                if closed_now && open_at.is_some_and(|t0| t - t0 <= self.spec.max_blink_ms) {
                    blinks += 1;
                }
                closed_now = false;
                open_at = Some(t);
            }
        }
        blinks
    }

    /// The verdict on the window ending at `now_ms`.
    pub fn verdict(&self, now_ms: u64) -> LivenessVerdict {
        let e = self.evidence(now_ms);
        if e.frozen_run >= self.spec.frozen_frames {
            return LivenessVerdict::NotLive(SpoofCue::Frozen);
        }
        if e.face_frames >= self.spec.min_face_frames && e.moire_frac >= self.spec.moire_frames {
            return LivenessVerdict::NotLive(SpoofCue::Moire);
        }
        if e.blinks >= 1 {
            LivenessVerdict::Live
        } else {
            LivenessVerdict::Undetermined
        }
    }

    /// Whether the framing screen should ask for a blink: no verdict yet.
    pub fn wants_blink(&self, now_ms: u64) -> bool {
        self.verdict(now_ms) == LivenessVerdict::Undetermined
    }

    /// The verdict as a check of the shot's verdict (id `liveness`).
    pub fn check(&self, now_ms: u64) -> CheckResult {
        let e = self.evidence(now_ms);
        let (status, zh, en, fix_zh, fix_en) = match self.verdict(now_ms) {
            LivenessVerdict::Live => (CheckStatus::Pass, "活体检测通过", "Liveness confirmed", "", ""),
            LivenessVerdict::NotLive(SpoofCue::Frozen) => (
                CheckStatus::Fail,
                "疑似翻拍：画面静止不变",
                "Looks like a photo: the picture does not change at all",
                "请本人坐在镜头前拍摄，不要使用照片",
                "Please sit in front of the camera yourself; photos are not accepted",
            ),
            LivenessVerdict::NotLive(SpoofCue::Moire) => (
                CheckStatus::Fail,
                "疑似翻拍：检测到屏幕或印刷纹理",
                "Looks like a screen or a print held to the camera",
                "请本人坐在镜头前拍摄，不要使用手机或照片",
                "Please sit in front of the camera yourself; no phone or photo",
            ),
            LivenessVerdict::Undetermined => (
                CheckStatus::Undetermined,
                "未能确认为真人（未检测到眨眼）",
                "Could not confirm a live person (no blink seen)",
                "请看着镜头自然眨眼，然后重新拍摄",
                "Please look at the camera and blink, then shoot again",
            ),
        };
        CheckResult {
            id: "liveness",
            status,
            value: Some(e.blinks as f64),
            limit: ">= 1 blink, no spoof cue".into(),
            message_zh: zh.into(),
            message_en: en.into(),
            guidance_zh: fix_zh.into(),
            guidance_en: fix_en.into(),
        }
    }
}

/// The liveness sample of one preview frame from its landmarks (`None`: no face on it).
pub fn sample(
    img: &RgbImage,
    t_ms: u64,
    face: Option<(&Landmarks468, &[EyeLandmarks; 2])>,
) -> LivenessSample {
    let fingerprint = fingerprint(img);
    let face = face.map(|(lm, eyes)| {
        let mut m = super::measure::FaceMeasures::default();
        super::measure::pose(lm, &mut m);
        let pose = |v: Option<f64>| v.unwrap_or(0.0) as f32;
        let p = |i: usize| lm.point(i);
        let (a, b) = (p(234), p(454));
        FaceSample {
            eye_open: (eyes[0].openness(), eyes[1].openness()),
            eye_dark: (
                eye_dark(img, lm, &super::measure::idx::RIGHT_EYE).unwrap_or(0.0),
                eye_dark(img, lm, &super::measure::idx::LEFT_EYE).unwrap_or(0.0),
            ),
            pose_deg: [pose(m.yaw_deg), pose(m.pitch_deg), pose(m.roll_3d_deg)],
            shape: SHAPE.iter().map(|&i| [p(i).x, p(i).y]).collect(),
            face_width: (a.x - b.x).hypot(a.y - b.y),
            moire: moire(img, lm),
        }
    });
    LivenessSample {
        t_ms,
        fingerprint,
        face,
    }
}

/// Fraction of the pixels inside an eye contour darker than 0.4x the skin around it (the 80th
/// percentile of luminance in the box twice the eye's size), linear light. `None` for a tiny eye.
fn eye_dark(img: &RgbImage, lm: &Landmarks468, contour: &[usize]) -> Option<f32> {
    use super::measure::{luma_lin, pixels_in, polygon};
    let poly = polygon(lm, contour);
    let inner = pixels_in(img, &poly, 1);
    if inner.len() < 12 {
        return None;
    }
    let (cx, cy) = poly.iter().fold((0.0, 0.0), |(x, y), p| (x + p.0, y + p.1));
    let (cx, cy) = (cx / poly.len() as f64, cy / poly.len() as f64);
    let grown: Vec<(f64, f64)> = poly
        .iter()
        .map(|&(x, y)| (cx + 2.0 * (x - cx), cy + 2.0 * (y - cy)))
        .collect();
    let mut around: Vec<f32> = pixels_in(img, &grown, 2).into_iter().map(luma_lin).collect();
    if around.len() < 12 {
        return None;
    }
    around.sort_by(f32::total_cmp);
    let skin = around[around.len() * 4 / 5];
    let dark = inner.iter().filter(|&&p| luma_lin(p) < 0.4 * skin).count();
    Some(dark as f32 / inner.len() as f32)
}

/// FNV-1a over a sparse grid of the frame's bytes (every 7th pixel of every 5th row): cheap, and any
/// sensor noise changes it.
pub fn fingerprint(img: &RgbImage) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let (w, ht) = img.dimensions();
    for y in (0..ht).step_by(5) {
        for x in (0..w).step_by(7) {
            for c in img.get_pixel(x, y).0 {
                h ^= c as u64;
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        }
    }
    h ^ ((w as u64) << 32 | ht as u64)
}

/// Periodic high-frequency texture on the face: the high-pass residual (grey minus its 3x3 mean) of the
/// region between the eyes and the mouth, and the largest peak of that residual's normalised
/// autocorrelation at a horizontal or vertical lag of 2-7 px above the mean of its two neighbouring lags. `None` when the region is under 24 px on a side.
pub fn moire(img: &RgbImage, lm: &Landmarks468) -> Option<f32> {
    let (w, h) = img.dimensions();
    let (r, l) = (lm.point(234), lm.point(454));
    let fw = (l.x - r.x).hypot(l.y - r.y);
    let c = lm.point(4);
    let (x0, x1) = (
        (c.x - 0.3 * fw).max(1.0) as u32,
        (c.x + 0.3 * fw).min(w as f32 - 2.0) as u32,
    );
    let (y0, y1) = (
        (c.y - 0.3 * fw).max(1.0) as u32,
        (c.y + 0.25 * fw).min(h as f32 - 2.0) as u32,
    );
    moire_in(img, (x0, y0, x1, y1))
}

/// [`moire`] on an explicit rectangle `(x0, y0, x1, y1)` (exclusive ends, inside the frame by 1 px).
pub fn moire_in(img: &RgbImage, (x0, y0, x1, y1): (u32, u32, u32, u32)) -> Option<f32> {
    if x1 <= x0 + 24 || y1 <= y0 + 24 {
        return None;
    }
    let grey = |x: u32, y: u32| {
        let p = img.get_pixel(x, y).0;
        0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32
    };
    let (rw, rh) = ((x1 - x0) as usize, (y1 - y0) as usize);
    let mut res = vec![0.0f32; rw * rh];
    for y in 0..rh {
        for x in 0..rw {
            let (gx, gy) = (x0 + x as u32, y0 + y as u32);
            let mut s = 0.0;
            for dy in 0..3 {
                for dx in 0..3 {
                    s += grey(gx + dx - 1, gy + dy - 1);
                }
            }
            res[y * rw + x] = grey(gx, gy) - s / 9.0;
        }
    }
    let var: f32 = res.iter().map(|v| v * v).sum::<f32>() / res.len() as f32;
    // A flat region (no texture at all) has nothing periodic to show.
    if var < 0.05 {
        return Some(0.0);
    }
    // Autocorrelation of the residual at lags 1..=8, horizontally and vertically.
    let mut corr = [[0.0f32; 9]; 2];
    for lag in 1..=8usize {
        let (mut sx, mut nx, mut sy, mut ny) = (0.0f32, 0usize, 0.0f32, 0usize);
        for y in 0..rh {
            for x in 0..rw {
                let v = res[y * rw + x];
                if x + lag < rw {
                    sx += v * res[y * rw + x + lag];
                    nx += 1;
                }
                if y + lag < rh {
                    sy += v * res[(y + lag) * rw + x];
                    ny += 1;
                }
            }
        }
        corr[0][lag] = sx / nx.max(1) as f32 / var;
        corr[1][lag] = sy / ny.max(1) as f32 / var;
    }
    // Periodicity is a peak of the autocorrelation at the period (2-7 px; 8 is the JPEG block) above its
    // neighbouring lags. Soft or upscaled texture is correlated too, but its correlation only decays.
    let mut best = 0.0f32;
    for c in &corr {
        for lag in 2..=7 {
            best = best.max(c[lag] - (c[lag - 1] + c[lag + 1]) / 2.0);
        }
    }
    Some(best.clamp(0.0, 1.0))
}

/// RMS distance between `b` and the best affine map of `a` onto it (least squares), in pixels.
fn affine_residual(a: &[[f32; 2]], b: &[[f32; 2]]) -> Option<f64> {
    if a.len() != b.len() || a.len() < 4 {
        return None;
    }
    // Solve [x y 1] * M = [x' y'] by the normal equations (3x3, two right-hand sides).
    let mut ata = [[0.0f64; 3]; 3];
    let mut atb = [[0.0f64; 2]; 3];
    for (p, q) in a.iter().zip(b) {
        let row = [p[0] as f64, p[1] as f64, 1.0];
        for i in 0..3 {
            for j in 0..3 {
                ata[i][j] += row[i] * row[j];
            }
            atb[i][0] += row[i] * q[0] as f64;
            atb[i][1] += row[i] * q[1] as f64;
        }
    }
    let m = solve3(ata, atb)?;
    let mut sum = 0.0;
    for (p, q) in a.iter().zip(b) {
        let (x, y) = (p[0] as f64, p[1] as f64);
        let fx = x * m[0][0] + y * m[1][0] + m[2][0];
        let fy = x * m[0][1] + y * m[1][1] + m[2][1];
        sum += (fx - q[0] as f64).powi(2) + (fy - q[1] as f64).powi(2);
    }
    Some((sum / a.len() as f64).sqrt())
}

/// Solves `a * x = b` for a 3x3 `a` and two right-hand sides (Cramer's rule); `None` if singular.
fn solve3(a: [[f64; 3]; 3], b: [[f64; 2]; 3]) -> Option<[[f64; 2]; 3]> {
    let det = |m: [[f64; 3]; 3]| {
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    };
    let d = det(a);
    if d.abs() < 1e-9 {
        return None;
    }
    let mut x = [[0.0; 2]; 3];
    for k in 0..2 {
        for i in 0..3 {
            let mut m = a;
            for r in 0..3 {
                m[r][i] = b[r][k];
            }
            x[i][k] = det(m) / d;
        }
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::spec::{DEFAULT_SPEC, PhotoSpec};

    fn spec() -> LivenessSpec {
        PhotoSpec::builtin_by_id(DEFAULT_SPEC).unwrap().liveness
    }

    /// A face frame at `t_ms` with both eyes at `open` (right, left), a distinct fingerprint per frame
    /// (a real sensor's noise), and a shape moved by `dx` pixels.
    fn frame(t_ms: u64, open: (f32, f32), dx: f32) -> LivenessSample {
        LivenessSample {
            t_ms,
            fingerprint: t_ms.wrapping_mul(0x9e37_79b9),
            face: Some(FaceSample {
                eye_open: open,
                eye_dark: (0.3, 0.3),
                pose_deg: [0.5, -1.0, 0.2],
                shape: (0..SHAPE.len())
                    .map(|i| {
                        [
                            100.0 + dx + (i as f32 * 37.0) % 90.0,
                            80.0 + (i as f32 * 53.0) % 110.0,
                        ]
                    })
                    .collect(),
                face_width: 90.0,
                moire: Some(0.05),
            }),
        }
    }

    fn feed(l: &mut Liveness, frames: impl IntoIterator<Item = LivenessSample>) -> u64 {
        let mut last = 0;
        for f in frames {
            last = f.t_ms;
            l.observe(f, None);
        }
        last
    }

    #[test]
    fn a_static_photo_never_passes() {
        // A photo under a real camera: every frame differs a little, the eyes never move.
        let mut l = Liveness::new(&spec());
        let now = feed(
            &mut l,
            (0..50).map(|k| frame(k * 200, (0.31, 0.29), (k % 3) as f32)),
        );
        assert_eq!(l.verdict(now), LivenessVerdict::Undetermined);
        assert!(l.wants_blink(now));
        assert_eq!(l.check(now).status, CheckStatus::Undetermined);
        // The same photo as a still image fed as the stream: identical frames.
        let mut l = Liveness::new(&spec());
        let now = feed(
            &mut l,
            (0..10).map(|k| LivenessSample {
                fingerprint: 42,
                ..frame(k * 200, (0.31, 0.29), 0.0)
            }),
        );
        assert_eq!(l.verdict(now), LivenessVerdict::NotLive(SpoofCue::Frozen));
        assert_eq!(l.check(now).status, CheckStatus::Fail);
    }

    #[test]
    fn a_blink_passes_and_expires_with_the_window() {
        let mut l = Liveness::new(&spec());
        let eyes = [0.30, 0.31, 0.29, 0.30, 0.07, 0.05, 0.28, 0.30, 0.31, 0.30];
        let now = feed(
            &mut l,
            eyes.iter()
                .enumerate()
                .map(|(k, &o)| frame(k as u64 * 200, (o, o + 0.01), 0.0)),
        );
        assert_eq!(l.evidence(now).blinks, 1);
        assert_eq!(l.verdict(now), LivenessVerdict::Live);
        assert_eq!(l.check(now).status, CheckStatus::Pass);
        assert!(!l.wants_blink(now));
        // Eleven seconds of open eyes later, that blink is out of the 10 s window.
        let later = feed(&mut l, (1..=55).map(|k| frame(now + k * 200, (0.3, 0.3), 0.0)));
        assert_eq!(l.verdict(later), LivenessVerdict::Undetermined);
        l.reset();
        assert_eq!(l.evidence(later).frames, 0);
    }

    #[test]
    fn a_wink_a_slow_closure_and_narrow_eyes_are_no_blink() {
        let s = spec();
        // One eye only.
        let mut l = Liveness::new(&s);
        let now = feed(
            &mut l,
            [0.3, 0.3, 0.3, 0.3, 0.3, 0.3]
                .iter()
                .enumerate()
                .map(|(k, &o)| frame(k as u64 * 200, (if k == 3 { 0.05 } else { o }, o), 0.0)),
        );
        assert_eq!(l.verdict(now), LivenessVerdict::Undetermined);
        // Eyes closed for two seconds: dozing or a photo swapped in, not a blink.
        let mut l = Liveness::new(&s);
        let mut eyes = vec![0.3; 4];
        eyes.extend(vec![0.05; 10]);
        eyes.extend(vec![0.3; 4]);
        let now = feed(
            &mut l,
            eyes.iter()
                .enumerate()
                .map(|(k, &o)| frame(k as u64 * 200, (o, o), 0.0)),
        );
        assert_eq!(l.evidence(now).blinks, 0);
        // Eyes that never look open (a photo of closed eyes flickering in the model).
        let mut l = Liveness::new(&s);
        let now = feed(
            &mut l,
            [0.1, 0.12, 0.03, 0.11, 0.1, 0.12]
                .iter()
                .enumerate()
                .map(|(k, &o)| frame(k as u64 * 200, (o, o), 0.0)),
        );
        assert_eq!(l.verdict(now), LivenessVerdict::Undetermined);
    }

    #[test]
    fn screen_texture_is_not_live_even_with_a_blink() {
        // A phone replaying a video of the student blinking: the blink is there, so is the pixel grid.
        let mut l = Liveness::new(&spec());
        let eyes = [0.3, 0.3, 0.05, 0.3, 0.3, 0.3];
        let now = feed(
            &mut l,
            eyes.iter().enumerate().map(|(k, &o)| {
                let mut f = frame(k as u64 * 200, (o, o), 0.0);
                f.face.as_mut().unwrap().moire = Some(0.6);
                f
            }),
        );
        assert_eq!(l.evidence(now).blinks, 1);
        assert_eq!(l.verdict(now), LivenessVerdict::NotLive(SpoofCue::Moire));
    }

    #[test]
    fn moire_separates_a_grating_from_smooth_texture_and_noise() {
        // Smooth shading plus sensor-like noise (a deterministic hash).
        let noise =
            |x: u32, y: u32| ((x.wrapping_mul(73_856_093) ^ y.wrapping_mul(19_349_663)) % 7) as f32 - 3.0;
        let plain = RgbImage::from_fn(120, 120, |x, y| {
            let v = (120.0 + 0.3 * x as f32 + 0.2 * y as f32 + noise(x, y)).clamp(0.0, 255.0) as u8;
            image::Rgb([v, v, v])
        });
        let rect = (2, 2, 110, 110);
        let m_plain = moire_in(&plain, rect).unwrap();
        let limit = spec().moire as f32;
        assert!(m_plain < limit / 2.0, "noise and shading: {m_plain}");
        // The same with a 4 px period pattern of +-10 grey levels, as a screen's grid aliased by the camera.
        let screen = RgbImage::from_fn(120, 120, |x, y| {
            let p = plain.get_pixel(x, y).0[0] as f32;
            let g = 6.0
                * ((x as f32 * std::f32::consts::PI / 2.0).cos()
                    + (y as f32 * std::f32::consts::PI / 2.0).cos());
            let v = (p + g).clamp(0.0, 255.0) as u8;
            image::Rgb([v, v, v])
        });
        let m_screen = moire_in(&screen, rect).unwrap();
        assert!(m_screen > limit, "grating: {m_screen}");
        assert_eq!(moire_in(&plain, (0, 0, 10, 10)), None, "too small to measure");
    }

    #[test]
    fn affine_motion_has_no_residual_and_a_shape_change_has_one() {
        let a: Vec<[f32; 2]> = (0..16)
            .map(|i| [(i * 37 % 90) as f32, (i * 53 % 110) as f32])
            .collect();
        let moved: Vec<[f32; 2]> = a
            .iter()
            .map(|p| [1.1 * p[0] - 0.2 * p[1] + 5.0, 0.15 * p[0] + 0.95 * p[1] - 3.0])
            .collect();
        assert!(affine_residual(&a, &moved).unwrap() < 1e-3);
        let mut bent = moved.clone();
        bent[9][0] += 4.0;
        assert!(affine_residual(&a, &bent).unwrap() > 0.5);
    }
}
