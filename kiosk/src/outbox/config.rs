//! The uploader's configuration file (TOML), documented in `docs/uploader.md`.
//!
//! Parsing and validation only: it builds settings and a target from the file but starts nothing.
//! Unknown keys are errors, so a misspelt `bandwith_kbps` is caught at start, not after a day of
//! uncapped uploads.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::backoff::Backoff;
use super::https::{HttpsSettings, HttpsSetupError, HttpsTarget};
use super::uploader::UploadSettings;

/// The whole file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploaderConfig {
    pub store: StoreSection,
    #[serde(default)]
    pub spool: Option<SpoolSection>,
    pub target: TargetSection,
    #[serde(default)]
    pub upload: UploadSection,
}

/// `[store]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    /// The kiosk's SQLite file, shared with the kiosk process.
    pub path: PathBuf,
}

/// `[spool]`: optional; enables removing sealed files that never became a job.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpoolSection {
    pub dir: PathBuf,
}

/// `[target]`
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum TargetSection {
    /// The HTTPS intake API (`docs/intake-api.yaml`).
    Https {
        /// Base URL, `https://...`.
        url: String,
        /// PEM file of the CA(s) to trust; the public roots when absent.
        #[serde(default)]
        ca_file: Option<PathBuf>,
        /// Bearer token, inline...
        #[serde(default)]
        token: Option<String>,
        /// ...or read from a file (preferred: keeps the secret out of a world-readable config).
        #[serde(default)]
        token_file: Option<PathBuf>,
    },
}

/// `[upload]`; every key has a default.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UploadSection {
    pub concurrency: usize,
    /// 0 = no cap.
    pub bandwidth_kbps: u64,
    pub base_backoff_secs: u64,
    pub max_backoff_secs: u64,
    pub lease_secs: i64,
    pub retention_secs: i64,
    pub poll_ms: u64,
    pub sweep_secs: u64,
    pub orphan_age_secs: i64,
    pub connect_timeout_secs: u64,
    pub request_timeout_secs: u64,
}

impl Default for UploadSection {
    fn default() -> Self {
        let d = UploadSettings::default();
        UploadSection {
            concurrency: d.concurrency,
            bandwidth_kbps: 0,
            base_backoff_secs: d.backoff.base_secs,
            max_backoff_secs: d.backoff.max_secs,
            lease_secs: d.lease_secs,
            retention_secs: d.retention_secs,
            poll_ms: 1000,
            sweep_secs: 60,
            orphan_age_secs: d.orphan_age_secs,
            connect_timeout_secs: 10,
            request_timeout_secs: 120,
        }
    }
}

/// Errors loading the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file (or a file it names) could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// Which file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not valid TOML, or keys/values of the wrong shape.
    #[error("parsing {path}: {message}")]
    Parse {
        /// Which file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// Values that parse but make no sense together.
    #[error("invalid configuration: {0}")]
    Invalid(String),
    /// The HTTPS target refused its settings.
    #[error("target: {0}")]
    Https(#[from] HttpsSetupError),
}

fn read(path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })
}

impl UploaderConfig {
    /// Reads and validates a file.
    pub fn load(path: &Path) -> Result<UploaderConfig, ConfigError> {
        let text = String::from_utf8_lossy(&read(path)?).into_owned();
        let cfg: UploaderConfig = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        cfg.settings()?;
        Ok(cfg)
    }

    /// The uploader's settings.
    pub fn settings(&self) -> Result<UploadSettings, ConfigError> {
        let u = &self.upload;
        if u.concurrency == 0 || u.concurrency > 32 {
            return Err(ConfigError::Invalid("upload.concurrency must be 1..=32".into()));
        }
        if u.lease_secs <= 0 || u.retention_secs < 0 || u.orphan_age_secs < 0 {
            return Err(ConfigError::Invalid(
                "upload.lease_secs must be positive; retention and orphan ages not negative".into(),
            ));
        }
        if u.lease_secs <= i64::try_from(u.request_timeout_secs).unwrap_or(i64::MAX) {
            // A lease shorter than one request would let a second uploader take a job mid-upload.
            return Err(ConfigError::Invalid(
                "upload.lease_secs must be longer than upload.request_timeout_secs".into(),
            ));
        }
        Ok(UploadSettings {
            concurrency: u.concurrency,
            bandwidth_kbps: (u.bandwidth_kbps > 0).then_some(u.bandwidth_kbps),
            lease_secs: u.lease_secs,
            backoff: Backoff {
                base_secs: u.base_backoff_secs.max(1),
                max_secs: u.max_backoff_secs.max(1),
            },
            retention_secs: u.retention_secs,
            poll: Duration::from_millis(u.poll_ms.max(10)),
            sweep_every: Duration::from_secs(u.sweep_secs.max(1)),
            orphan_age_secs: u.orphan_age_secs,
        })
    }

    /// Builds the configured target.
    pub fn https_target(&self) -> Result<HttpsTarget, ConfigError> {
        let TargetSection::Https {
            url,
            ca_file,
            token,
            token_file,
        } = &self.target;
        let token = match (token, token_file) {
            (Some(t), None) => t.clone(),
            (None, Some(f)) => String::from_utf8_lossy(&read(f)?).trim().to_string(),
            _ => {
                return Err(ConfigError::Invalid(
                    "target needs exactly one of token and token_file".into(),
                ));
            }
        };
        let ca_pem = ca_file.as_deref().map(read).transpose()?;
        Ok(HttpsTarget::new(HttpsSettings {
            url: url.clone(),
            ca_pem,
            token,
            connect_timeout: Duration::from_secs(self.upload.connect_timeout_secs.max(1)),
            request_timeout: Duration::from_secs(self.upload.request_timeout_secs.max(1)),
        })?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_file_gets_defaults_and_typos_are_refused() {
        let minimal = r#"
            [store]
            path = "/var/lib/kiosk/kiosk.sqlite"
            [target]
            kind = "https"
            url = "https://intake.example.edu/v1"
            token = "t"
        "#;
        let cfg: UploaderConfig = toml::from_str(minimal).unwrap();
        let s = cfg.settings().unwrap();
        assert_eq!((s.concurrency, s.bandwidth_kbps, s.lease_secs), (2, None, 300));
        let typo = format!("{minimal}\n[upload]\nbandwith_kbps = 10\n");
        assert!(toml::from_str::<UploaderConfig>(&typo).is_err());
        let short_lease = format!("{minimal}\n[upload]\nlease_secs = 5\nrequest_timeout_secs = 10\n");
        let cfg: UploaderConfig = toml::from_str(&short_lease).unwrap();
        assert!(matches!(cfg.settings(), Err(ConfigError::Invalid(_))));
        let plain = minimal.replace("https://", "http://");
        let cfg: UploaderConfig = toml::from_str(&plain).unwrap();
        assert!(matches!(
            cfg.https_target(),
            Err(ConfigError::Https(HttpsSetupError::NotHttps(_)))
        ));
    }
}
