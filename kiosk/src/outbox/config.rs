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
use super::s3::{S3Settings, S3SetupError, S3Target};
use super::target::Target;
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
    /// S3-compatible object storage (AWS, MinIO, Aliyun OSS, ...).
    S3 {
        /// Endpoint URL; absent for AWS itself.
        #[serde(default)]
        endpoint: Option<String>,
        bucket: String,
        #[serde(default = "default_region")]
        region: String,
        /// Key prefix, e.g. "kiosk-17/".
        #[serde(default)]
        prefix: String,
        access_key_id: String,
        /// The secret, inline...
        #[serde(default)]
        secret_access_key: Option<String>,
        /// ...or read from a file (preferred).
        #[serde(default)]
        secret_access_key_file: Option<PathBuf>,
        /// Virtual-hosted-style URLs (`bucket.endpoint`), as AWS and OSS prefer; path style otherwise.
        #[serde(default)]
        virtual_hosted_style: bool,
        /// Plain HTTP, for a loopback test server only.
        #[serde(default)]
        allow_http: bool,
        /// PEM file of extra CA(s) to trust.
        #[serde(default)]
        ca_file: Option<PathBuf>,
    },
}

fn default_region() -> String {
    "us-east-1".into()
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
    #[error("reading {path}")]
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
    /// The S3 target refused its settings.
    #[error("target: {0}")]
    S3(#[from] S3SetupError),
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

    /// Builds the configured target, and a description for logs (host or bucket, never secrets).
    pub fn build_target(&self) -> Result<(Box<dyn Target>, String), ConfigError> {
        let connect_timeout = Duration::from_secs(self.upload.connect_timeout_secs.max(1));
        let request_timeout = Duration::from_secs(self.upload.request_timeout_secs.max(1));
        match &self.target {
            TargetSection::Https {
                url,
                ca_file,
                token,
                token_file,
            } => {
                let token = secret(token, token_file, "token")?;
                let ca_pem = ca_file.as_deref().map(read).transpose()?;
                let target = HttpsTarget::new(HttpsSettings {
                    url: url.clone(),
                    ca_pem,
                    token,
                    connect_timeout,
                    request_timeout,
                })?;
                let what = format!("https://{}", target.host());
                Ok((Box::new(target), what))
            }
            TargetSection::S3 {
                endpoint,
                bucket,
                region,
                prefix,
                access_key_id,
                secret_access_key,
                secret_access_key_file,
                virtual_hosted_style,
                allow_http,
                ca_file,
            } => {
                let secret_access_key =
                    secret(secret_access_key, secret_access_key_file, "secret_access_key")?;
                let ca_pem = ca_file.as_deref().map(read).transpose()?;
                let target = S3Target::new(S3Settings {
                    endpoint: endpoint.clone(),
                    bucket: bucket.clone(),
                    region: region.clone(),
                    prefix: prefix.clone(),
                    access_key_id: access_key_id.clone(),
                    secret_access_key,
                    virtual_hosted_style: *virtual_hosted_style,
                    allow_http: *allow_http,
                    ca_pem,
                    connect_timeout,
                    request_timeout,
                })?;
                Ok((Box::new(target), format!("s3 bucket {bucket}")))
            }
        }
    }
}

/// Exactly one of an inline secret and a file holding it.
fn secret(inline: &Option<String>, file: &Option<PathBuf>, what: &str) -> Result<String, ConfigError> {
    match (inline, file) {
        (Some(t), None) => Ok(t.clone()),
        (None, Some(f)) => Ok(String::from_utf8_lossy(&read(f)?).trim().to_string()),
        _ => Err(ConfigError::Invalid(format!(
            "target needs exactly one of {what} and {what}_file"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_file_gets_defaults_and_typos_are_refused() {
        let minimal = r#"
            [store]
            path = "/var/lib/kiosk/kiosk.db"
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
            cfg.build_target(),
            Err(ConfigError::Https(HttpsSetupError::NotHttps(_)))
        ));
        let s3 = r#"
            [store]
            path = "k.sqlite"
            [target]
            kind = "s3"
            endpoint = "https://oss-cn-beijing.aliyuncs.com"
            bucket = "photos"
            access_key_id = "AK"
            secret_access_key = "SK"
        "#;
        let cfg: UploaderConfig = toml::from_str(s3).unwrap();
        let (_, what) = cfg.build_target().unwrap();
        assert_eq!(what, "s3 bucket photos");
    }
}
