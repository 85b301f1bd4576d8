//! A simulated camera that plays image files (or in-memory images) as preview frames and stills.
//!
//! Frames come in named sets (a folder each, files in name order). The preview cycles through the
//! showing set on the virtual timeline, one file per frame interval, downscaled to the preview
//! size; stills are the full-resolution images of the still set, in order. A [`FrameScript`] names
//! which set plays in each phase of a demo ("scan": a phone with a QR, "framing": the student,
//! stills #k at capture). Files are decoded lazily and previews cached, so a preview frame costs a
//! copy. No noise by default, no exposure simulation or timing jitter: the twin replays files, and
//! faults come from [`crate::sim::FaultyCamera`]. [`SimCamera::set_sensor_noise`] adds a sensor's
//! faint per-frame noise, for a person watching the preview of `kiosk run --sim`: a replayed file is
//! otherwise pixel-identical frame after frame, which is exactly what a photo held to the camera
//! looks like to the liveness check.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use image::imageops::{self, FilterType};
use image::{ImageError, ImageReader, RgbImage};
use thiserror::Error;

use crate::{Camera, ErrorKind, Frame, Millis};

/// How a frame of another aspect ratio becomes a preview frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PreviewFit {
    /// Crop the centre to the preview's aspect ratio, then scale (fills the preview; a 16:9 frame
    /// loses its sides at 4:3, as a camera's 4:3 preview mode would).
    #[default]
    Crop,
    /// Scale to fit inside and pad with black bars.
    Letterbox,
}

/// The simulated camera's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimCameraConfig {
    /// Preview width in pixels.
    pub preview_width: u32,
    /// Preview height in pixels.
    pub preview_height: u32,
    /// How frames are fitted to the preview size.
    pub fit: PreviewFit,
    /// Time between preview frames; the set advances one file per interval.
    pub frame_interval_ms: u64,
}

impl Default for SimCameraConfig {
    /// 640x480 at 30 frames/s, the size the preview analysis is budgeted for.
    fn default() -> Self {
        SimCameraConfig {
            preview_width: 640,
            preview_height: 480,
            fit: PreviewFit::Crop,
            frame_interval_ms: 33,
        }
    }
}

/// What went wrong loading or playing frames. File errors name the file.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SimCameraError {
    /// A frame folder could not be listed.
    #[error("cannot read frame folder {path}")]
    ReadDir {
        /// The folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A frame folder holds no JPEG or PNG file.
    #[error("no .jpg, .jpeg or .png frames in {path}")]
    EmptySet {
        /// The folder.
        path: PathBuf,
    },
    /// A frame file could not be opened or decoded.
    #[error("cannot decode frame {path}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: ImageError,
    },
    /// An in-memory set was empty.
    #[error("frame set {0:?} has no images")]
    EmptyImages(String),
    /// No set of this name was loaded.
    #[error("no frame set named {0:?}")]
    UnknownSet(String),
    /// The script has no phase of this name.
    #[error("no script phase named {0:?}")]
    UnknownPhase(String),
    /// A preview frame was asked for before any set was shown.
    #[error("no frame set is showing")]
    NothingShowing,
}

impl crate::Error for SimCameraError {
    fn kind(&self) -> ErrorKind {
        match self {
            SimCameraError::UnknownSet(_) | SimCameraError::UnknownPhase(_) => ErrorKind::InvalidInput,
            // A broken fixture behaves like a camera delivering garbage.
            SimCameraError::ReadDir { .. }
            | SimCameraError::EmptySet { .. }
            | SimCameraError::Decode { .. }
            | SimCameraError::EmptyImages(_)
            | SimCameraError::NothingShowing => ErrorKind::Fault,
        }
    }
}

/// What one phase of a demo plays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phase {
    /// The set the preview cycles through.
    pub preview: String,
    /// The set stills come from; `None` keeps the current one.
    pub stills: Option<String>,
    /// The index in the still set of the next still; `None` keeps the current position.
    pub next_still: Option<usize>,
}

/// Which sets play in which phase; phase names are the caller's (the HAL knows no sessions).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FrameScript {
    phases: BTreeMap<String, Phase>,
}

impl FrameScript {
    /// An empty script.
    pub fn new() -> FrameScript {
        FrameScript::default()
    }

    /// Adds (or replaces) a phase that shows `preview` and keeps the stills as they are.
    pub fn phase(mut self, name: &str, preview: &str) -> FrameScript {
        let phase = Phase {
            preview: preview.to_owned(),
            stills: None,
            next_still: None,
        };
        self.phases.insert(name.to_owned(), phase);
        self
    }

    /// Adds (or replaces) a phase that shows `preview` and takes the next still from
    /// `stills[next_still]`.
    pub fn phase_with_still(
        mut self,
        name: &str,
        preview: &str,
        stills: &str,
        next_still: usize,
    ) -> FrameScript {
        let phase = Phase {
            preview: preview.to_owned(),
            stills: Some(stills.to_owned()),
            next_still: Some(next_still),
        };
        self.phases.insert(name.to_owned(), phase);
        self
    }

    /// The phase of this name.
    pub fn get(&self, name: &str) -> Option<&Phase> {
        self.phases.get(name)
    }
}

#[derive(Debug)]
enum Source {
    File(PathBuf),
    Memory(RgbImage),
}

impl Source {
    fn load(&self) -> Result<RgbImage, SimCameraError> {
        match self {
            Source::Memory(img) => Ok(img.clone()),
            Source::File(path) => decode_file(path),
        }
    }
}

fn decode_file(path: &Path) -> Result<RgbImage, SimCameraError> {
    let err = |source| SimCameraError::Decode {
        path: path.to_owned(),
        source,
    };
    let reader = ImageReader::open(path).map_err(|e| err(ImageError::IoError(e)))?;
    let reader = reader
        .with_guessed_format()
        .map_err(|e| err(ImageError::IoError(e)))?;
    Ok(reader.decode().map_err(err)?.to_rgb8())
}

#[derive(Debug)]
struct FrameSet {
    sources: Vec<Source>,
    /// Previews decoded so far; dropped when another set is shown, to bound memory.
    previews: Vec<Option<RgbImage>>,
}

impl FrameSet {
    fn new(sources: Vec<Source>) -> FrameSet {
        let previews = sources.iter().map(|_| None).collect();
        FrameSet { sources, previews }
    }
}

/// Which preview frame was last served, to tell a new frame from the same one again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Served {
    generation: u64,
    tick: u64,
}

/// A camera that plays files.
#[derive(Debug)]
pub struct SimCamera {
    config: SimCameraConfig,
    sets: BTreeMap<String, FrameSet>,
    script: FrameScript,
    showing: Option<String>,
    showing_since: Millis,
    /// Bumped whenever the showing set changes, so `seq` advances even at the same tick.
    generation: u64,
    served: Option<Served>,
    stills: Option<String>,
    next_still: usize,
    seq: u64,
    exposure_locked: bool,
    sensor_noise: bool,
}

impl SimCamera {
    /// A camera with no frame sets loaded.
    pub fn new(config: SimCameraConfig) -> SimCamera {
        SimCamera {
            config,
            sets: BTreeMap::new(),
            script: FrameScript::new(),
            showing: None,
            showing_since: Millis::ZERO,
            generation: 0,
            served: None,
            stills: None,
            next_still: 0,
            seq: 0,
            exposure_locked: false,
            sensor_noise: false,
        }
    }

    /// With `on`, every preview frame gets a sensor's faint noise (about one pixel in sixteen moved
    /// by up to two levels, differently every frame), so consecutive frames of a replayed file are
    /// no longer pixel-identical. Stills are not touched.
    pub fn set_sensor_noise(&mut self, on: bool) {
        self.sensor_noise = on;
    }

    /// Loads the `.jpg`/`.jpeg`/`.png` files of `dir` (in name order) as set `name`; other
    /// files (READMEs, labels) are skipped. Each file's header is read now, so a file that is
    /// not an image fails here with its name; pixels are decoded when first played. Returns the
    /// number of frames.
    pub fn load_set(&mut self, name: &str, dir: &Path) -> Result<usize, SimCameraError> {
        let read_err = |source| SimCameraError::ReadDir {
            path: dir.to_owned(),
            source,
        };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(read_err)? {
            let path = entry.map_err(read_err)?.path();
            let is_image = path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| ["jpg", "jpeg", "png"].iter().any(|ok| e.eq_ignore_ascii_case(ok)));
            if is_image && path.is_file() {
                files.push(path);
            }
        }
        if files.is_empty() {
            return Err(SimCameraError::EmptySet { path: dir.to_owned() });
        }
        files.sort();
        for path in &files {
            let err = |source| SimCameraError::Decode {
                path: path.clone(),
                source,
            };
            ImageReader::open(path)
                .map_err(|e| err(ImageError::IoError(e)))?
                .with_guessed_format()
                .map_err(|e| err(ImageError::IoError(e)))?
                .into_dimensions()
                .map_err(err)?;
        }
        let n = files.len();
        self.insert_set(name, files.into_iter().map(Source::File).collect());
        Ok(n)
    }

    /// Loads every subfolder of `root` as a set named after the subfolder (e.g. `scan/`,
    /// `framing/`, `stills/`); returns the set names in order.
    pub fn load_sets(&mut self, root: &Path) -> Result<Vec<String>, SimCameraError> {
        let read_err = |source| SimCameraError::ReadDir {
            path: root.to_owned(),
            source,
        };
        let mut dirs = Vec::new();
        for entry in std::fs::read_dir(root).map_err(read_err)? {
            let path = entry.map_err(read_err)?.path();
            if path.is_dir() {
                dirs.push(path);
            }
        }
        dirs.sort();
        let mut names = Vec::new();
        for dir in dirs {
            let name = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            self.load_set(&name, &dir)?;
            names.push(name);
        }
        Ok(names)
    }

    /// Adds in-memory images as set `name` (for tests and generated demos).
    pub fn add_images(&mut self, name: &str, images: Vec<RgbImage>) -> Result<(), SimCameraError> {
        if images.is_empty() {
            return Err(SimCameraError::EmptyImages(name.to_owned()));
        }
        self.insert_set(name, images.into_iter().map(Source::Memory).collect());
        Ok(())
    }

    fn insert_set(&mut self, name: &str, sources: Vec<Source>) {
        self.sets.insert(name.to_owned(), FrameSet::new(sources));
        if self.showing.as_deref() == Some(name) {
            self.generation += 1;
        }
    }

    /// The number of frames in a set.
    pub fn set_len(&self, name: &str) -> Option<usize> {
        self.sets.get(name).map(|s| s.sources.len())
    }

    /// Starts cycling the preview through set `name` from its first frame at `now`.
    pub fn show_preview_set(&mut self, name: &str, now: Millis) -> Result<(), SimCameraError> {
        if !self.sets.contains_key(name) {
            return Err(SimCameraError::UnknownSet(name.to_owned()));
        }
        // Keep only the showing set's previews decoded: memory stays bounded by the largest set.
        for (other, set) in self.sets.iter_mut() {
            if other != name {
                set.previews.iter_mut().for_each(|p| *p = None);
            }
        }
        self.showing = Some(name.to_owned());
        self.showing_since = now;
        self.generation += 1;
        Ok(())
    }

    /// Takes the following stills from set `name`, starting at index `next` (wrapping).
    pub fn use_stills(&mut self, name: &str, next: usize) -> Result<(), SimCameraError> {
        if !self.sets.contains_key(name) {
            return Err(SimCameraError::UnknownSet(name.to_owned()));
        }
        self.stills = Some(name.to_owned());
        self.next_still = next;
        Ok(())
    }

    /// Installs a script; [`SimCamera::enter_phase`] then switches by phase name.
    pub fn set_script(&mut self, script: FrameScript) {
        self.script = script;
    }

    /// Plays what the script says for `phase` from `now`.
    pub fn enter_phase(&mut self, phase: &str, now: Millis) -> Result<(), SimCameraError> {
        let Some(p) = self.script.get(phase).cloned() else {
            return Err(SimCameraError::UnknownPhase(phase.to_owned()));
        };
        // Check both sets before changing anything, so a bad script leaves the camera as it was.
        for set in std::iter::once(&p.preview).chain(p.stills.as_ref()) {
            if !self.sets.contains_key(set) {
                return Err(SimCameraError::UnknownSet(set.clone()));
            }
        }
        self.show_preview_set(&p.preview, now)?;
        if let Some(stills) = &p.stills {
            self.use_stills(stills, p.next_still.unwrap_or(0))?;
        } else if let Some(next) = p.next_still {
            self.next_still = next;
        }
        Ok(())
    }

    /// The set the preview is cycling through.
    pub fn showing(&self) -> Option<&str> {
        self.showing.as_deref()
    }

    /// Whether exposure is locked (set by [`Camera::lock_exposure`]).
    pub fn exposure_locked(&self) -> bool {
        self.exposure_locked
    }

    fn fit(&self, full: &RgbImage) -> RgbImage {
        fit_preview(
            full,
            self.config.preview_width,
            self.config.preview_height,
            self.config.fit,
        )
    }
}

impl Default for SimCamera {
    fn default() -> Self {
        SimCamera::new(SimCameraConfig::default())
    }
}

/// Scales `src` to `w`x`h` by centre crop or letterbox.
pub fn fit_preview(src: &RgbImage, w: u32, h: u32, fit: PreviewFit) -> RgbImage {
    let (sw, sh) = src.dimensions();
    if (sw, sh) == (w, h) || sw == 0 || sh == 0 || w == 0 || h == 0 {
        return src.clone();
    }
    // Compare aspect ratios in integers: sw/sh > w/h  <=>  sw*h > w*sh.
    let (sw64, sh64, w64, h64) = (u64::from(sw), u64::from(sh), u64::from(w), u64::from(h));
    let wider = sw64 * h64 > w64 * sh64;
    let to_u32 = |v: u64| u32::try_from(v).unwrap_or(u32::MAX).max(1);
    match fit {
        PreviewFit::Crop => {
            let (cw, ch) = if wider {
                (to_u32(sh64 * w64 / h64), sh)
            } else {
                (sw, to_u32(sw64 * h64 / w64))
            };
            let view = imageops::crop_imm(src, (sw - cw.min(sw)) / 2, (sh - ch.min(sh)) / 2, cw, ch);
            imageops::resize(&view.to_image(), w, h, FilterType::Triangle)
        }
        PreviewFit::Letterbox => {
            let (fw, fh) = if wider {
                (w, to_u32(sh64 * w64 / sw64).min(h))
            } else {
                (to_u32(sw64 * h64 / sh64).min(w), h)
            };
            let scaled = imageops::resize(src, fw, fh, FilterType::Triangle);
            let mut out = RgbImage::new(w, h);
            imageops::replace(
                &mut out,
                &scaled,
                i64::from((w - fw) / 2),
                i64::from((h - fh) / 2),
            );
            out
        }
    }
}

impl Camera for SimCamera {
    type Error = SimCameraError;

    fn preview_frame(&mut self, now: Millis) -> Result<Frame, SimCameraError> {
        let name = self.showing.clone().ok_or(SimCameraError::NothingShowing)?;
        let interval = self.config.frame_interval_ms.max(1);
        let tick = now.since(self.showing_since) / interval;
        let served = Served {
            generation: self.generation,
            tick,
        };
        if self.served != Some(served) {
            self.served = Some(served);
            self.seq += 1;
        }
        let set = self
            .sets
            .get(&name)
            .ok_or_else(|| SimCameraError::UnknownSet(name.clone()))?;
        let len = set.sources.len() as u64;
        let index = usize::try_from(tick % len).unwrap_or(0);
        let image = match &set.previews[index] {
            Some(p) => p.clone(),
            None => {
                let preview = self.fit(&set.sources[index].load()?);
                if let Some(set) = self.sets.get_mut(&name) {
                    set.previews[index] = Some(preview.clone());
                }
                preview
            }
        };
        let at = self.showing_since.after_ms(tick * interval);
        let mut image = image;
        if self.sensor_noise {
            add_sensor_noise(&mut image, self.seq);
        }
        Ok(Frame {
            image,
            seq: self.seq,
            at,
        })
    }

    fn capture_still(&mut self, now: Millis) -> Result<Frame, SimCameraError> {
        // Without a still set, a still is the showing preview file at full resolution, as a
        // real camera would capture what it is looking at.
        let (name, index) = match &self.stills {
            Some(name) => {
                let len = self.set_len(name).unwrap_or(1).max(1);
                let index = self.next_still % len;
                self.next_still = index + 1;
                (name.clone(), index)
            }
            None => {
                let name = self.showing.clone().ok_or(SimCameraError::NothingShowing)?;
                let len = self.set_len(&name).unwrap_or(1).max(1) as u64;
                let tick = now.since(self.showing_since) / self.config.frame_interval_ms.max(1);
                (name, usize::try_from(tick % len).unwrap_or(0))
            }
        };
        let set = self
            .sets
            .get(&name)
            .ok_or_else(|| SimCameraError::UnknownSet(name.clone()))?;
        let image = set.sources[index].load()?;
        self.seq += 1;
        Ok(Frame {
            image,
            seq: self.seq,
            at: now,
        })
    }

    fn lock_exposure(&mut self, locked: bool) -> Result<(), SimCameraError> {
        self.exposure_locked = locked;
        Ok(())
    }

    fn reconnect(&mut self, _now: Millis) -> Result<(), SimCameraError> {
        Ok(())
    }

    fn is_connected(&self) -> bool {
        true
    }
}

/// Moves about one byte in sixteen by -2..=2 levels, a different pattern for every `seq`
/// (xorshift64 seeded by it): cheap enough for 1080p at 30 frames a second.
fn add_sensor_noise(img: &mut RgbImage, seq: u64) {
    let mut state = seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let bytes: &mut [u8] = img;
    let mut i = 0usize;
    while i < bytes.len() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let delta = (state % 5) as i16 - 2;
        bytes[i] = (i16::from(bytes[i]) + delta).clamp(0, 255) as u8;
        // The next byte 1..=31 further on: one in sixteen on average.
        i += 1 + ((state >> 8) % 31) as usize;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crop_keeps_the_centre_of_a_wide_frame() {
        // 16x9 frame: left third red, centre green, right third blue.
        let src = RgbImage::from_fn(16, 9, |x, _| match x {
            0..=1 => image::Rgb([255, 0, 0]),
            14..=15 => image::Rgb([0, 0, 255]),
            _ => image::Rgb([0, 255, 0]),
        });
        let out = fit_preview(&src, 4, 3, PreviewFit::Crop);
        assert_eq!(out.dimensions(), (4, 3));
        assert!(out.pixels().all(|p| p.0[1] > 200 && p.0[0] < 50 && p.0[2] < 50));
    }

    #[test]
    fn letterbox_pads_top_and_bottom() {
        let src = RgbImage::from_pixel(160, 90, image::Rgb([255, 255, 255]));
        let out = fit_preview(&src, 40, 30, PreviewFit::Letterbox);
        assert_eq!(out.dimensions(), (40, 30));
        assert_eq!(out.get_pixel(20, 0).0, [0, 0, 0]);
        assert_eq!(out.get_pixel(20, 15).0, [255, 255, 255]);
    }

    #[test]
    fn sensor_noise_makes_every_frame_of_a_replayed_file_differ_but_only_faintly() {
        let still = RgbImage::from_fn(320, 240, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
        });
        let config = SimCameraConfig {
            preview_width: 320,
            preview_height: 240,
            ..SimCameraConfig::default()
        };
        let mut plain = SimCamera::new(config);
        plain.add_images("s", vec![still.clone()]).unwrap();
        plain.show_preview_set("s", Millis::ZERO).unwrap();
        let interval = config.frame_interval_ms;
        let a = plain.preview_frame(Millis(0)).unwrap();
        let b = plain.preview_frame(Millis(interval)).unwrap();
        assert_eq!(a.image, b.image, "without noise a replayed file is frozen");

        let mut noisy = SimCamera::new(config);
        noisy.set_sensor_noise(true);
        noisy.add_images("s", vec![still.clone()]).unwrap();
        noisy.show_preview_set("s", Millis::ZERO).unwrap();
        let frames: Vec<RgbImage> = (0..4)
            .map(|k| noisy.preview_frame(Millis(k * interval)).unwrap().image)
            .collect();
        for pair in frames.windows(2) {
            assert_ne!(pair[0], pair[1], "consecutive frames differ");
        }
        for f in &frames {
            let raw: &[u8] = f;
            let orig: &[u8] = &still;
            let moved = raw.iter().zip(orig).filter(|(x, y)| x != y).count();
            let worst = raw.iter().zip(orig).map(|(x, y)| x.abs_diff(*y)).max().unwrap();
            assert!(worst <= 2, "at most two levels: {worst}");
            let frac = moved as f64 / raw.len() as f64;
            assert!(
                (0.02..0.08).contains(&frac),
                "about one byte in sixteen moved: {frac}"
            );
        }
    }
}
