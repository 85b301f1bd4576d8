//! Session settings: per-state timeouts, the countdown, shot and lockout limits, photo types, payment mode.
//!
//! Plain data deserialized from the kiosk's TOML (every field has a default, so an empty table works).
//! It does not validate against the ticket or the store, and it holds durations as whole seconds because
//! that is what a technician writes in a config file.

use std::time::Duration;

use serde::Deserialize;

/// Everything the session engine is configurable by.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionConfig {
    pub timeouts: Timeouts,
    /// Countdown before the shutter, in seconds.
    pub countdown_secs: u32,
    /// Shots per ticket when the ticket itself says 0.
    pub default_shots: u8,
    /// Liveness failures on one ticket that lock it (seeds: "多次未通过活体检测").
    pub liveness_limit: u8,
    /// Other check failures in a row on one ticket that impose a cool-down.
    pub fail_limit: u8,
    /// Length of that cool-down.
    pub cooldown_minutes: u32,
    /// Calm period (冷静期) after a failed check before retake is enabled, in seconds.
    pub calm_secs: u32,
    /// Photo types this kiosk offers, in display order; a ticket's types not listed here are not offered.
    pub photo_types: Vec<PhotoTypeConfig>,
    /// Preselected photo type when the ticket allows it; else the first offered one.
    pub default_photo_type: String,
    pub payment: PaymentMode,
    /// Service mode: the technicians' PIN and its limits. Configured in the kiosk's `[service]` section
    /// (not under `[session]`), copied here when the kiosk is assembled.
    #[serde(skip)]
    pub service: ServiceConfig,
}

/// Service mode settings (PRODUCT.md section 7): the PIN, its lockout, the idle timeout.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceConfig {
    /// The PIN as a salted hash, `sha256:<salt hex>:<digest hex>` where the digest is SHA-256 of the
    /// salt bytes followed by the PIN's ASCII digits. Without it the PIN pad is not offered and only
    /// the physical service key enters service mode.
    pub pin_hash: Option<String>,
    /// Digits of the PIN; the pad checks as soon as this many are entered.
    pub pin_digits: u8,
    /// Wrong PINs in a row that lock the pad.
    pub max_tries: u8,
    /// How long the pad stays locked after `max_tries` wrong PINs, in seconds.
    pub lockout_secs: u32,
    /// Service mode is left after this many seconds without a touch.
    pub idle_secs: u32,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            pin_hash: None,
            pin_digits: 6,
            max_tries: 5,
            lockout_secs: 300,
            idle_secs: 300,
        }
    }
}

/// A parsed `pin_hash`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinHash {
    salt: Vec<u8>,
    digest: [u8; 32],
}

impl PinHash {
    /// Parses `sha256:<salt hex>:<digest hex>`; the salt must be at least 8 bytes.
    pub fn parse(text: &str) -> Result<PinHash, String> {
        let mut parts = text.trim().split(':');
        let (Some("sha256"), Some(salt), Some(digest), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("expected sha256:<salt hex>:<digest hex>".into());
        };
        let salt = hex::decode(salt).map_err(|_| "the salt is not hex".to_string())?;
        if salt.len() < 8 {
            return Err("the salt must be at least 8 bytes (16 hex digits)".into());
        }
        let mut d = [0u8; 32];
        hex::decode_to_slice(digest, &mut d).map_err(|_| "the digest is not 64 hex digits".to_string())?;
        Ok(PinHash { salt, digest: d })
    }

    /// The hash of `pin` under `salt`, in the configuration's text form.
    pub fn make(salt: &[u8], pin: &str) -> String {
        format!(
            "sha256:{}:{}",
            hex::encode(salt),
            hex::encode(digest(salt, pin.as_bytes()))
        )
    }

    /// Whether `pin` (ASCII digits) matches, compared in constant time.
    pub fn matches(&self, pin: &[u8]) -> bool {
        use subtle::ConstantTimeEq;
        digest(&self.salt, pin).ct_eq(&self.digest).into()
    }
}

fn digest(salt: &[u8], pin: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(salt);
    h.update(pin);
    h.finalize().into()
}

/// One photo type: the spec id (the checks and standardization know it) and its display names.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhotoTypeConfig {
    pub id: String,
    pub name_zh: String,
    pub name_en: String,
}

/// How, if at all, the student pays before the job is filed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum PaymentMode {
    /// Free: the chosen photo is filed at once.
    #[default]
    None,
    /// Paid in the mini-program; the ticket's `paid` flag is checked at Confirm, before any shot is used.
    Prepaid,
    /// A WeChat Native order from the unit's backend, shown as a QR and polled.
    Gateway {
        amount_fen: u32,
        #[serde(default = "default_poll_every_secs")]
        poll_every_secs: u32,
    },
}

fn default_poll_every_secs() -> u32 {
    2
}

/// Seconds each state may last before the session goes back to the attract screen (or, for the
/// countdown, fires the shutter). Notice screens use them as their display time.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Timeouts {
    pub scan: u32,
    pub verify: u32,
    /// How long a rejection is shown.
    pub rejected: u32,
    pub confirm: u32,
    pub photo_type: u32,
    pub lighting: u32,
    pub rules: u32,
    pub framing: u32,
    /// The camera must deliver the still within this.
    pub capture: u32,
    /// The checks must answer within this.
    pub checking: u32,
    pub result: u32,
    /// Locked, cooling-down and other end notices.
    pub notice: u32,
    pub choose: u32,
    /// Validity of the pay QR on screen.
    pub pay: u32,
    /// The store must commit the job within this, else the kiosk goes out of service.
    pub finishing: u32,
    /// How long the receipt stays up.
    pub done: u32,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            scan: 60,
            verify: 15,
            rejected: 8,
            confirm: 60,
            photo_type: 60,
            lighting: 60,
            rules: 90,
            framing: 180,
            capture: 10,
            checking: 20,
            result: 90,
            notice: 15,
            choose: 90,
            pay: 180,
            finishing: 30,
            done: 15,
        }
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            timeouts: Timeouts::default(),
            countdown_secs: 3,
            default_shots: 3,
            liveness_limit: 2,
            fail_limit: 3,
            cooldown_minutes: 30,
            calm_secs: 5,
            photo_types: vec![PhotoTypeConfig {
                id: "chsi-graduate".into(),
                name_zh: "高等院校毕业生照".into(),
                name_en: "Graduate photo (CHSI)".into(),
            }],
            default_photo_type: "chsi-graduate".into(),
            payment: PaymentMode::None,
            service: ServiceConfig::default(),
        }
    }
}

/// Whole seconds as a [`Duration`].
pub(crate) fn secs(s: u32) -> Duration {
    Duration::from_secs(u64::from(s))
}
