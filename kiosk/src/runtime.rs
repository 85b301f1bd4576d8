//! Finding the ONNX Runtime library and the models after set-up, with a documented search order,
//! loading ONNX Runtime once, and looking a model up by its name in `models/manifest.toml`.
//!
//! `scripts/setup.sh` puts the library in `<repo>/.runtime/onnxruntime/` and the models in
//! `<repo>/models/`. [`RuntimePaths::locate`] looks, in this order, and takes the first hit for each
//! of the two (library and models directory) independently:
//!
//! 1. the environment: `ORT_DYLIB_PATH` (the library file) and `KIOSK_MODELS_DIR` (a directory
//!    holding `manifest.toml`). A variable that is set but points nowhere is an error, not a reason
//!    to look elsewhere: an explicit override that is silently ignored hides mistakes.
//! 2. the current directory and each of its ancestors: `.runtime/onnxruntime/libonnxruntime.so*` and
//!    `models/manifest.toml`, so a binary or a test run from anywhere inside the repo finds them.
//! 3. next to the executable: `<exe dir>/../../.runtime/onnxruntime/` and `<exe dir>/../../models/`
//!    (a binary in `target/<profile>/` of the repo), then `<exe dir>/../share/kiosk/onnxruntime/`
//!    or `<exe dir>/../lib/kiosk/` and `<exe dir>/../share/kiosk/models/` (an installed prefix such
//!    as `/opt/kiosk`, or a bundle that keeps everything under `share/kiosk`).
//! 4. the system: `/usr/lib/kiosk/` and `/usr/share/kiosk/models/`.
//!
//! What this module deliberately does not do: download or convert anything (that is
//! `scripts/setup.sh`, never the kiosk at run time), create sessions (that is `vision`), or hash the
//! models on every start (setup verifies them; [`ModelSet::verify`] is there for a diagnostic).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use serde::Deserialize;
use sha2::Digest as _;

/// Environment variable naming the ONNX Runtime shared library file (the same one `ort` reads).
pub const ORT_DYLIB_ENV: &str = "ORT_DYLIB_PATH";
/// Environment variable naming the directory that holds `manifest.toml` and the `.onnx` files.
pub const MODELS_DIR_ENV: &str = "KIOSK_MODELS_DIR";
/// File name of the model manifest inside the models directory.
pub const MANIFEST_FILE: &str = "manifest.toml";

/// Manifest name of the MediaPipe full-range face detector (the kiosk's detector).
pub const FACE_DETECTION_FULL_RANGE: &str = "face_detection_full_range";
/// Manifest name of the 468-point FaceMesh landmarker.
pub const FACE_LANDMARK: &str = "face_landmark";
/// Manifest name of the iris and eye-contour landmarker.
pub const IRIS_LANDMARK: &str = "iris_landmark";
/// Manifest name of BlazeFace front 128 (short range).
pub const FACE_DETECTION_FRONT_128: &str = "face_detection_front_128";

/// Errors of locating, loading and looking up the runtime files.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// Nothing was found in any of the places of the search order; `searched` lists them all.
    #[error(
        "{what} not found; looked in:\n{}\nrun scripts/setup.sh (or set {env})",
        list(searched)
    )]
    NotFound {
        /// What was looked for ("the ONNX Runtime library", "the models directory").
        what: &'static str,
        /// The environment variable that overrides the search.
        env: &'static str,
        /// Every place looked in, in order.
        searched: Vec<PathBuf>,
    },
    /// An override variable is set but does not point at what it should.
    #[error("{env}={} does not point at {what}; fix it or unset it (scripts/setup.sh puts the files in the repo)", path.display())]
    BadOverride {
        /// The variable.
        env: &'static str,
        /// Its value.
        path: PathBuf,
        /// What it should point at.
        what: &'static str,
    },
    /// The shared library could not be loaded (wrong file, wrong architecture, too old a version).
    #[error("cannot load ONNX Runtime from {}: {source}; run scripts/setup.sh", path.display())]
    Load {
        /// The library file.
        path: PathBuf,
        /// Why `ort` could not load it.
        #[source]
        source: ort::LoadDynamicError,
    },
    /// ONNX Runtime refused to create its environment.
    #[error("ONNX Runtime environment: {0}")]
    Ort(#[from] ort::Error),
    /// Sessions were asked for before [`init_ort`] succeeded.
    #[error("ONNX Runtime is not initialised: call kiosk::runtime::init_ort first")]
    NotInitialised,
    /// The manifest could not be read.
    #[error("cannot read {}: {source}; run scripts/setup.sh", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// The manifest is not valid TOML of the expected shape.
    #[error("{} is malformed: {source}", path.display())]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: toml::de::Error,
    },
    /// The manifest has no model of that name.
    #[error("no model named {name:?} in {} (it has: {known})", manifest.display())]
    UnknownModel {
        /// The name asked for.
        name: String,
        /// The manifest looked in.
        manifest: PathBuf,
        /// The names it does have, comma-separated.
        known: String,
    },
    /// The manifest names the model but its file is not there.
    #[error("model {name:?} is missing: {} does not exist; run scripts/setup.sh", path.display())]
    ModelMissing {
        /// The model name.
        name: String,
        /// Where its file should be.
        path: PathBuf,
    },
    /// The model file does not hash to the manifest's sha256.
    #[error("model {name:?} at {} has sha256 {actual}, manifest says {expected}; run scripts/setup.sh", path.display())]
    HashMismatch {
        /// The model name.
        name: String,
        /// The file.
        path: PathBuf,
        /// The manifest's hash.
        expected: String,
        /// The file's hash.
        actual: String,
    },
}

fn list(paths: &[PathBuf]) -> String {
    let mut s = String::new();
    for p in paths {
        let _ = writeln!(s, "  - {}", p.display());
    }
    s.trim_end().to_owned()
}

/// Where the ONNX Runtime library and the models directory are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimePaths {
    ort_dylib: PathBuf,
    models_dir: PathBuf,
}

/// The inputs of the search, gathered from the process so the search itself is a pure function
/// that tests can drive with temporary directories.
#[derive(Debug, Clone, Default)]
pub struct SearchContext {
    /// Value of `ORT_DYLIB_PATH`, if set and not empty.
    pub ort_override: Option<PathBuf>,
    /// Value of `KIOSK_MODELS_DIR`, if set and not empty.
    pub models_override: Option<PathBuf>,
    /// The current directory (its ancestors are searched too).
    pub cwd: Option<PathBuf>,
    /// The running executable.
    pub exe: Option<PathBuf>,
    /// System directories, searched last: `(library dir, models dir)`.
    pub system: Vec<(PathBuf, PathBuf)>,
}

impl SearchContext {
    /// The context of this process: its environment, current directory and executable.
    pub fn from_process() -> Self {
        let var = |k| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        SearchContext {
            ort_override: var(ORT_DYLIB_ENV),
            models_override: var(MODELS_DIR_ENV),
            cwd: std::env::current_dir().ok(),
            exe: std::env::current_exe().ok(),
            system: vec![(
                PathBuf::from("/usr/lib/kiosk"),
                PathBuf::from("/usr/share/kiosk/models"),
            )],
        }
    }

    /// Candidate `(library dir, models dir)` pairs after the overrides, in search order.
    fn candidates(&self) -> Vec<(PathBuf, PathBuf)> {
        let mut out = Vec::new();
        if let Some(cwd) = &self.cwd {
            for dir in cwd.ancestors() {
                out.push((dir.join(".runtime/onnxruntime"), dir.join("models")));
            }
        }
        if let Some(bin) = self.exe.as_deref().and_then(Path::parent) {
            out.push((bin.join("../../.runtime/onnxruntime"), bin.join("../../models")));
            out.push((
                bin.join("../share/kiosk/onnxruntime"),
                bin.join("../share/kiosk/models"),
            ));
            out.push((bin.join("../lib/kiosk"), bin.join("../share/kiosk/models")));
        }
        out.extend(self.system.iter().cloned());
        out
    }
}

/// The paths in order, each once (two candidate pairs may share a models directory).
fn dedup(paths: impl Iterator<Item = PathBuf>) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for p in paths {
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

/// The library in a directory: `libonnxruntime.so` if present (setup makes it a symlink to the
/// versioned file), else the last `libonnxruntime.so.*` in name order.
fn find_dylib(dir: &Path) -> Option<PathBuf> {
    let plain = dir.join("libonnxruntime.so");
    if plain.is_file() {
        return Some(plain);
    }
    let mut versioned: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("libonnxruntime.so."))
        })
        .collect();
    versioned.sort();
    versioned.pop()
}

impl RuntimePaths {
    /// Builds paths from known locations without searching (for tests and tools).
    pub fn new(ort_dylib: impl Into<PathBuf>, models_dir: impl Into<PathBuf>) -> Self {
        RuntimePaths {
            ort_dylib: ort_dylib.into(),
            models_dir: models_dir.into(),
        }
    }

    /// Searches this process's environment, current directory, executable and system directories
    /// in the order documented at the top of this module.
    pub fn locate() -> Result<RuntimePaths, RuntimeError> {
        Self::locate_in(&SearchContext::from_process())
    }

    /// The search of [`RuntimePaths::locate`] over an explicit context.
    pub fn locate_in(ctx: &SearchContext) -> Result<RuntimePaths, RuntimeError> {
        let candidates = ctx.candidates();

        let ort_dylib = match &ctx.ort_override {
            Some(p) if p.is_file() => p.clone(),
            Some(p) => {
                return Err(RuntimeError::BadOverride {
                    env: ORT_DYLIB_ENV,
                    path: p.clone(),
                    what: "the ONNX Runtime library file",
                });
            }
            None => candidates
                .iter()
                .find_map(|(lib, _)| find_dylib(lib))
                .ok_or_else(|| RuntimeError::NotFound {
                    what: "the ONNX Runtime library (libonnxruntime.so*)",
                    env: ORT_DYLIB_ENV,
                    searched: dedup(candidates.iter().map(|(l, _)| l.clone())),
                })?,
        };

        let models_dir = match &ctx.models_override {
            Some(p) if p.join(MANIFEST_FILE).is_file() => p.clone(),
            Some(p) => {
                return Err(RuntimeError::BadOverride {
                    env: MODELS_DIR_ENV,
                    path: p.clone(),
                    what: "a directory holding manifest.toml",
                });
            }
            None => candidates
                .iter()
                .map(|(_, m)| m)
                .find(|m| m.join(MANIFEST_FILE).is_file())
                .cloned()
                .ok_or_else(|| RuntimeError::NotFound {
                    what: "the models directory (models/manifest.toml)",
                    env: MODELS_DIR_ENV,
                    searched: dedup(candidates.iter().map(|(_, m)| m.clone())),
                })?,
        };

        Ok(RuntimePaths {
            ort_dylib,
            models_dir,
        })
    }

    /// The ONNX Runtime shared library file.
    pub fn ort_dylib(&self) -> &Path {
        &self.ort_dylib
    }

    /// The directory holding `manifest.toml` and the `.onnx` files.
    pub fn models_dir(&self) -> &Path {
        &self.models_dir
    }

    /// Reads the manifest of [`RuntimePaths::models_dir`].
    pub fn models(&self) -> Result<ModelSet, RuntimeError> {
        ModelSet::load(&self.models_dir)
    }
}

// The environment lives for the whole process: sessions hold on to it and ONNX Runtime allows one.
static ENVIRONMENT: OnceLock<ort::environment::Environment> = OnceLock::new();
static INIT_LOCK: Mutex<()> = Mutex::new(());

/// Loads the ONNX Runtime library and creates the process-wide environment. Idempotent: later calls
/// return `Ok(())` at once, whatever path they pass, because a process can load only one library.
pub fn init_ort(paths: &RuntimePaths) -> Result<(), RuntimeError> {
    if ENVIRONMENT.get().is_some() {
        return Ok(());
    }
    // A poisoned lock only means another thread panicked while initialising; the OnceLock tells
    // whether it got as far as storing the environment, so carrying on is safe.
    let _guard = INIT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if ENVIRONMENT.get().is_some() {
        return Ok(());
    }
    let builder = ort::init_from(&paths.ort_dylib).map_err(|source| RuntimeError::Load {
        path: paths.ort_dylib.clone(),
        source,
    })?;
    let env = builder.with_name("kiosk").build()?;
    // Cannot fail: we hold the lock and checked it was empty.
    let _ = ENVIRONMENT.set(env);
    Ok(())
}

/// The environment created by [`init_ort`], for building sessions.
pub fn environment() -> Result<&'static ort::environment::Environment, RuntimeError> {
    ENVIRONMENT.get().ok_or(RuntimeError::NotInitialised)
}

/// Locates the runtime files and initialises ONNX Runtime: what a binary or a test calls first.
pub fn setup() -> Result<RuntimePaths, RuntimeError> {
    let paths = RuntimePaths::locate()?;
    init_ort(&paths)?;
    Ok(paths)
}

#[derive(Debug, Deserialize)]
struct ManifestFile {
    #[serde(default)]
    models: BTreeMap<String, ManifestModel>,
}

#[derive(Debug, Deserialize)]
struct ManifestModel {
    file: String,
    sha256: String,
}

/// One model of the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelEntry {
    /// The manifest name.
    pub name: String,
    /// The `.onnx` file (absolute or relative as the models directory was given).
    pub path: PathBuf,
    /// The sha256 the file must have, lowercase hex.
    pub sha256: String,
}

/// The models listed in `manifest.toml`, looked up by name.
#[derive(Debug, Clone)]
pub struct ModelSet {
    manifest: PathBuf,
    models: BTreeMap<String, ModelEntry>,
}

impl ModelSet {
    /// Reads `<dir>/manifest.toml`.
    pub fn load(dir: &Path) -> Result<ModelSet, RuntimeError> {
        let manifest = dir.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&manifest).map_err(|source| RuntimeError::Io {
            path: manifest.clone(),
            source,
        })?;
        let parsed: ManifestFile = toml::from_str(&text).map_err(|source| RuntimeError::Manifest {
            path: manifest.clone(),
            source,
        })?;
        let models = parsed
            .models
            .into_iter()
            .map(|(name, m)| {
                let entry = ModelEntry {
                    name: name.clone(),
                    path: dir.join(&m.file),
                    sha256: m.sha256.to_ascii_lowercase(),
                };
                (name, entry)
            })
            .collect();
        Ok(ModelSet { manifest, models })
    }

    /// The names in the manifest, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.models.keys().map(String::as_str)
    }

    /// The manifest entry of `name`, whether or not its file exists.
    pub fn entry(&self, name: &str) -> Result<&ModelEntry, RuntimeError> {
        self.models.get(name).ok_or_else(|| RuntimeError::UnknownModel {
            name: name.to_owned(),
            manifest: self.manifest.clone(),
            known: self.names().collect::<Vec<_>>().join(", "),
        })
    }

    /// The file of model `name`, checked to exist.
    pub fn path(&self, name: &str) -> Result<&Path, RuntimeError> {
        let entry = self.entry(name)?;
        if entry.path.is_file() {
            Ok(&entry.path)
        } else {
            Err(RuntimeError::ModelMissing {
                name: name.to_owned(),
                path: entry.path.clone(),
            })
        }
    }

    /// Hashes the file of model `name` and compares it with the manifest (tens of milliseconds per
    /// model: for diagnostics, not for every start).
    pub fn verify(&self, name: &str) -> Result<(), RuntimeError> {
        let path = self.path(name)?;
        let bytes = std::fs::read(path).map_err(|source| RuntimeError::Io {
            path: path.to_owned(),
            source,
        })?;
        let actual = hex::encode(sha2::Sha256::digest(&bytes));
        let entry = self.entry(name)?;
        if actual == entry.sha256 {
            Ok(())
        } else {
            Err(RuntimeError::HashMismatch {
                name: name.to_owned(),
                path: path.to_owned(),
                expected: entry.sha256.clone(),
                actual,
            })
        }
    }
}
