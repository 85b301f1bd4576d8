//! Kiosk configuration (TOML): the site, the trusted ticket issuers, the session's timings and rules, the
//! photo specs. Validated at start with errors that name the key.
//!
//! Device selection and driver parameters are the `[devices]` section ([`crate::devices`]); the simulated
//! demo configures its devices in code.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::session::SessionConfig;
use crate::ticket::format::VerifyPolicy;
use crate::ticket::keys::{IssuerPublicKey, TrustedKeys};
use crate::vision::spec::PhotoSpec;

/// The whole configuration file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KioskConfig {
    /// This kiosk's site code; tickets for another site are refused.
    pub site: String,
    /// Where the database and the spooled photos live (relative paths are relative to the config file).
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
    pub tickets: TicketsConfig,
    #[serde(default)]
    pub session: SessionConfig,
    /// Extra photo specs (TOML files) besides the built-in ones.
    #[serde(default)]
    pub specs_dir: Option<PathBuf>,
    /// Operations: the operator API (`[ops.api]`).
    #[serde(default)]
    pub ops: crate::ops::OpsConfig,
    /// Log filter and the local log store's size.
    #[serde(default)]
    pub logging: crate::ops::LoggingConfig,
    /// Which driver each device uses (`[devices]`); without it everything is simulated.
    #[serde(default)]
    pub devices: crate::devices::DevicesConfig,
    pub storage: StorageConfig,
    /// Service mode: the technicians' PIN (salted hash), its lockout and the idle timeout (`[service]`).
    #[serde(default)]
    pub service: crate::session::ServiceConfig,
    /// The unit's payment backend, needed when `session.payment.mode = "gateway"`.
    #[serde(default)]
    pub payment_gateway: Option<crate::shell::payment_http::GatewayConfig>,
}

/// Where photos go and how they are protected.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// The collection unit's age X25519 public keys ("age1..."): every photo is sealed to them as it is
    /// written, and the kiosk cannot read it back. List the old and the new key while rotating.
    pub recipients: Vec<String>,
    /// Below this much free space in the data directory, new sessions are refused (OutOfService).
    #[serde(default = "default_min_free_mb")]
    pub min_free_mb: u64,
}

fn default_min_free_mb() -> u64 {
    200
}

/// Who may issue tickets for this kiosk.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketsConfig {
    /// Tolerated difference between the issuer's clock and the kiosk's, in seconds.
    #[serde(default = "default_skew")]
    pub clock_skew_secs: i64,
    /// Trusted issuer public keys; list the old and the new key while rotating.
    pub issuers: Vec<IssuerConfig>,
}

fn default_skew() -> i64 {
    300
}

/// One trusted issuer key.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    pub key_id: u32,
    /// Ed25519 public key, 64 hex digits.
    pub public_key: String,
}

/// Why the configuration cannot be used; every message names the file and the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path}: {source}")]
    Parse {
        path: String,
        source: Box<toml::de::Error>,
    },
    #[error("{path}: {key}: {reason}")]
    Invalid {
        path: String,
        key: String,
        reason: String,
    },
}

impl KioskConfig {
    pub fn load(path: &Path) -> Result<KioskConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let mut config: KioskConfig = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.display().to_string(),
            source: Box::new(e),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.data_dir = config.data_dir.map(|d| base.join(d));
        config.specs_dir = config.specs_dir.map(|d| base.join(d));
        if let crate::devices::CameraConfig::Sim { frames: Some(f) } = &mut config.devices.camera {
            *f = base.join(&*f);
        }
        if let Some(api) = &mut config.ops.api {
            api.cert = base.join(&api.cert);
            api.key = base.join(&api.key);
        }
        if let Some(mqtt) = &mut config.ops.mqtt {
            mqtt.resolve_paths(base);
        }
        config.validate(&path.display().to_string())?;
        Ok(config)
    }

    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        let invalid = |key: &str, reason: String| ConfigError::Invalid {
            path: path.into(),
            key: key.into(),
            reason,
        };
        self.devices.validate().map_err(|e| invalid(&e.key, e.reason))?;
        if self.site.trim().is_empty() {
            return Err(invalid("site", "must not be empty".into()));
        }
        if self.tickets.issuers.is_empty() {
            return Err(invalid(
                "tickets.issuers",
                "at least one trusted issuer key is needed".into(),
            ));
        }
        if !(0..=86_400).contains(&self.tickets.clock_skew_secs) {
            return Err(invalid("tickets.clock_skew_secs", "must be 0..=86400".into()));
        }
        self.trusted_keys().map_err(|e| invalid("tickets.issuers", e))?;
        if matches!(self.session.payment, crate::session::PaymentMode::Gateway { .. }) {
            let Some(g) = &self.payment_gateway else {
                return Err(invalid(
                    "payment_gateway",
                    "session.payment.mode is \"gateway\": the backend URL and token are needed".into(),
                ));
            };
            crate::shell::payment_http::HttpGateway::new(g)
                .map_err(|e| invalid("payment_gateway.url", e.0))?;
        }
        if self.storage.recipients.is_empty() {
            return Err(invalid(
                "storage.recipients",
                "at least one collection-unit key (age1...) is needed".into(),
            ));
        }
        for (i, r) in self.storage.recipients.iter().enumerate() {
            if r.trim().parse::<age::x25519::Recipient>().is_err() {
                return Err(invalid(
                    "storage.recipients",
                    format!("entry #{} is not an age X25519 public key", i + 1),
                ));
            }
        }
        if let Some(api) = &self.ops.api {
            crate::ops::auth::Auth::new(api).map_err(|e| invalid("ops.api.tokens", e.to_string()))?;
            if api.tokens.is_empty() {
                return Err(invalid("ops.api.tokens", "at least one token is needed".into()));
            }
        }
        if let Some(h) = &self.service.pin_hash {
            crate::session::PinHash::parse(h).map_err(|e| invalid("service.pin_hash", e))?;
        }
        if !(4..=12).contains(&self.service.pin_digits) {
            return Err(invalid("service.pin_digits", "must be 4..=12".into()));
        }
        if self.service.max_tries == 0 {
            return Err(invalid("service.max_tries", "must be at least 1".into()));
        }
        if self.service.idle_secs < 30 {
            return Err(invalid("service.idle_secs", "must be at least 30".into()));
        }
        if let Some(Err(crate::ops::mqtt::MqttError::Config { key, reason })) =
            self.ops.mqtt.as_ref().map(|m| m.validate())
        {
            return Err(invalid(&format!("ops.mqtt.{key}"), reason));
        }
        if self.logging.capacity < 1000 {
            return Err(invalid("logging.capacity", "keep at least 1000 records".into()));
        }
        let specs = self.specs().map_err(|e| invalid("specs_dir", e))?;
        for t in &self.session.photo_types {
            if !specs.iter().any(|s| s.id == t.id) {
                return Err(invalid(
                    "session.photo_types",
                    format!("no photo spec with id {:?}", t.id),
                ));
            }
        }
        Ok(())
    }

    /// The trusted issuer keys.
    pub fn trusted_keys(&self) -> Result<TrustedKeys, String> {
        let mut keys = TrustedKeys::new();
        for (i, issuer) in self.tickets.issuers.iter().enumerate() {
            let key = IssuerPublicKey::from_hex(issuer.key_id, &issuer.public_key)
                .map_err(|e| format!("issuer #{}: {e}", i + 1))?;
            keys.insert(key).map_err(|e| format!("issuer #{}: {e}", i + 1))?;
        }
        Ok(keys)
    }

    pub fn verify_policy(&self) -> VerifyPolicy {
        let mut policy = VerifyPolicy::new(self.site.clone());
        policy.max_clock_skew_secs = self.tickets.clock_skew_secs;
        policy
    }

    /// The built-in specs plus those in `specs_dir`.
    pub fn specs(&self) -> Result<Vec<PhotoSpec>, String> {
        let mut specs = PhotoSpec::builtin();
        if let Some(dir) = &self.specs_dir {
            let mut files: Vec<_> = std::fs::read_dir(dir)
                .map_err(|e| format!("{}: {e}", dir.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect();
            files.sort();
            for f in files {
                let spec = PhotoSpec::load(&f).map_err(|e| e.to_string())?;
                specs.retain(|s| s.id != spec.id);
                specs.push(spec);
            }
        }
        Ok(specs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29";
    const STORAGE: &str =
        "[storage]\nrecipients = [\"age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p\"]\n";

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kiosk.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn a_minimal_config_loads_with_defaults() {
        let (_d, p) = write(&format!(
            "site = \"S1\"\ndata_dir = \"data\"\n[tickets]\nissuers = [{{ key_id = 7, public_key = \"{KEY}\" }}]\n{STORAGE}"
        ));
        let c = KioskConfig::load(&p).unwrap();
        assert_eq!(c.tickets.clock_skew_secs, 300);
        assert_eq!(
            c.data_dir.as_deref(),
            Some(p.parent().unwrap().join("data").as_path())
        );
        assert_eq!(c.trusted_keys().unwrap().len(), 1);
        assert_eq!(c.session.default_shots, 3);
    }

    #[test]
    fn errors_name_the_key() {
        let (_d, p) = write(&format!("site = \"S1\"\n[tickets]\nissuers = []\n{STORAGE}"));
        let e = KioskConfig::load(&p).unwrap_err().to_string();
        assert!(e.contains("tickets.issuers"), "{e}");
        let (_d, p) = write(&format!(
            "site = \"S1\"\n[tickets]\nissuers = [{{ key_id = 1, public_key = \"zz\" }}]\n{STORAGE}"
        ));
        let e = KioskConfig::load(&p).unwrap_err().to_string();
        assert!(e.contains("tickets.issuers") && e.contains("#1"), "{e}");
        let (_d, p) = write(&format!(
            "site = \"S1\"\nsitee = 1\n[tickets]\nissuers = [{{ key_id = 7, public_key = \"{KEY}\" }}]\n"
        ));
        let e = KioskConfig::load(&p).unwrap_err().to_string();
        assert!(e.contains("sitee"), "{e}");
        let (_d, p) = write(&format!(
            "site = \"S1\"\n[tickets]\nissuers = [{{ key_id = 7, public_key = \"{KEY}\" }}]\n[storage]\nrecipients = [\"age1nope\"]\n"
        ));
        let e = KioskConfig::load(&p).unwrap_err().to_string();
        assert!(e.contains("storage.recipients"), "{e}");
    }

    #[test]
    fn the_service_pin_is_a_salted_hash_and_its_errors_name_the_key() {
        let base = format!(
            "site = \"S1\"\n[tickets]\nissuers = [{{ key_id = 7, public_key = \"{KEY}\" }}]\n{STORAGE}"
        );
        let (_d, p) = write(&base);
        let c = KioskConfig::load(&p).unwrap();
        assert_eq!(c.service.pin_hash, None, "no PIN: only the service key enters");
        let hash = crate::session::PinHash::make(b"kiosk-salt-01", "204863");
        let (_d, p) = write(&format!("{base}[service]\npin_hash = \"{hash}\"\n"));
        let c = KioskConfig::load(&p).unwrap();
        let parsed = crate::session::PinHash::parse(c.service.pin_hash.as_deref().unwrap()).unwrap();
        assert!(parsed.matches(b"204863"));
        assert!(!parsed.matches(b"204864"));
        // The hash docs/technician.md's shell command makes for this salt and PIN.
        assert_eq!(
            crate::session::PinHash::make(
                &hex::decode("0123456789abcdef0123456789abcdef").unwrap(),
                "204863"
            ),
            "sha256:0123456789abcdef0123456789abcdef:67d06f8c59c51472970aa3003bf17fc5a71d8be0c58ab13e4f8023caa4e31ef4"
        );
        let (_d, p) = write(&format!("{base}[service]\npin_hash = \"204863\"\n"));
        let e = KioskConfig::load(&p).unwrap_err().to_string();
        assert!(e.contains("service.pin_hash"), "a PIN in clear is refused: {e}");
        let (_d, p) = write(&format!("{base}[service]\npin_digits = 2\n"));
        let e = KioskConfig::load(&p).unwrap_err().to_string();
        assert!(e.contains("service.pin_digits"), "{e}");
    }

    #[test]
    fn gateway_mode_needs_the_backend() {
        let base = format!(
            "site = \"S1\"\n[tickets]\nissuers = [{{ key_id = 7, public_key = \"{KEY}\" }}]\n{STORAGE}[session.payment]\nmode = \"gateway\"\namount_fen = 2000\n"
        );
        let (_d, p) = write(&base);
        let e = KioskConfig::load(&p).unwrap_err().to_string();
        assert!(e.contains("payment_gateway"), "{e}");
        let (_d, p) = write(&format!(
            "{base}[payment_gateway]\nurl = \"http://pay.example.cn\"\ntoken = \"t\"\n"
        ));
        let e = KioskConfig::load(&p).unwrap_err().to_string();
        assert!(e.contains("payment_gateway.url"), "{e}");
        let (_d, p) = write(&format!(
            "{base}[payment_gateway]\nurl = \"https://pay.example.cn\"\ntoken = \"t\"\n"
        ));
        assert!(KioskConfig::load(&p).unwrap().payment_gateway.is_some());
    }
}
