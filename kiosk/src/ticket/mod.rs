//! The shooting ticket (PRODUCT.md section 4): what the unit's backend issues after a student links their
//! CHSI collection code, shown as a QR on the student's phone and verified offline by the kiosk.
//!
//! This module owns the binary layout, signing, and verification against trusted issuer keys. It does not
//! know about shots already used, locks or completion: those live in the store, and the shell combines
//! the two (see [`Rejection::AlreadyCompleted`] and [`Rejection::Locked`]).
//!
//! - [`format`]: binary layout v1, the `GK1:` + base45 text form, [`issue`] and [`verify`].
//! - [`keys`]: issuer signing keys, trusted public keys, and their text files.
//! - [`qr`]: rendering a ticket as a QR image and as a phone held up to the camera (demo and tests).
//!
//! The layout and file formats are documented in `docs/ticket-format.md`.

use std::fmt;

pub mod format;
pub mod keys;
pub mod qr;

pub use format::{
    FORMAT_VERSION, IssueError, MAX_TEXT_LEN, MAX_TICKET_BYTES, TEXT_PREFIX, VerifyPolicy, issue, mask_name,
    validate, verify, verify_signature,
};
pub use keys::{IssuerKey, IssuerPublicKey, KeyError, TrustedKeys, derived_key_id};
pub use qr::{PhonePose, QrTooLong, phone_frame, qr_image, try_qr_image};

/// A 16-byte random ticket id, shown as lowercase hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TicketId(pub [u8; 16]);

impl fmt::Display for TicketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for TicketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TicketId({self})")
    }
}

/// A verified (or about to be signed) shooting ticket.
///
/// Personal data is minimal by design: the name is already masked by the issuer and only the last four
/// characters of the ID number are carried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ticket {
    pub id: TicketId,
    /// Student number as the school knows it.
    pub student_no: String,
    /// Name as shown on the Confirm screen, already masked by the issuer (e.g. "张*明").
    pub masked_name: String,
    pub school: String,
    /// Last four characters of the national ID number (digits, or a final 'X').
    pub id_last4: String,
    /// Site code this ticket may be used at; `"*"` means any site of the issuing unit.
    pub site: String,
    /// Photo-type spec ids the student may choose from (e.g. "chsi-graduate"); never empty.
    pub photo_types: Vec<String>,
    /// Shots this ticket allows in total, across every session.
    pub shots_allowed: u8,
    /// Paid in advance (payment mode "prepaid on the ticket").
    pub paid: bool,
    /// Unix seconds.
    pub issued_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
    /// Which issuer key signed it.
    pub key_id: u32,
}

/// Why a scanned code was refused. Each has its own message in Chinese and English.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// Not parseable as our ticket (truncated, bad version, field out of bounds). Carries a short detail
    /// for logs; the student sees a generic message.
    Malformed(String),
    /// Looks like a raw CHSI collection code (or anything else that is not our ticket).
    RawChsiCode,
    /// Signed by a key id this kiosk does not trust.
    UnknownKey(u32),
    /// The signature does not verify: forged or altered.
    BadSignature,
    /// Past its expiry (Unix seconds).
    Expired { expires_at: i64 },
    /// Issued in the future beyond the allowed clock skew (Unix seconds).
    NotYetValid { issued_at: i64 },
    /// Issued for another site.
    WrongSite { ticket_site: String },
    /// The ticket's session already completed; tickets are single-use once done.
    AlreadyCompleted,
    /// Locked after repeated liveness failures until a technician unlocks it.
    Locked,
    /// Cooling down after repeated failures; may retry after this Unix time.
    CoolingDown { until: i64 },
    /// All shots on this ticket are used.
    NoShotsLeft,
}

/// Hint for anything that is not our ticket (PRODUCT.md section 2, step 3).
pub const RAW_CODE_HINT_ZH: &str = "请先在小程序中生成拍摄二维码，不要直接扫描学信网采集码";
pub const RAW_CODE_HINT_EN: &str = "Please create a shooting QR code in the mini-program first; do not scan the CHSI collection code directly";

impl Rejection {
    /// Stable machine code, for logs, the store and JSON output.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::Malformed(_) => "malformed",
            Rejection::RawChsiCode => "raw_chsi_code",
            Rejection::UnknownKey(_) => "unknown_key",
            Rejection::BadSignature => "bad_signature",
            Rejection::Expired { .. } => "expired",
            Rejection::NotYetValid { .. } => "not_yet_valid",
            Rejection::WrongSite { .. } => "wrong_site",
            Rejection::AlreadyCompleted => "already_completed",
            Rejection::Locked => "locked",
            Rejection::CoolingDown { .. } => "cooling_down",
            Rejection::NoShotsLeft => "no_shots_left",
        }
    }

    /// What the student reads, in Chinese.
    pub fn message_zh(&self) -> String {
        match self {
            Rejection::Malformed(_) => format!("无法识别此二维码。{RAW_CODE_HINT_ZH}"),
            Rejection::RawChsiCode => RAW_CODE_HINT_ZH.to_string(),
            Rejection::UnknownKey(_) => "此拍摄二维码不是本采集点签发的，请在小程序中重新生成".to_string(),
            Rejection::BadSignature => "二维码校验失败（可能被篡改），请在小程序中重新生成".to_string(),
            Rejection::Expired { .. } => "拍摄二维码已过期，请在小程序中刷新后重新扫描".to_string(),
            Rejection::NotYetValid { .. } => "拍摄二维码尚未生效，请稍后再试或联系工作人员".to_string(),
            Rejection::WrongSite { .. } => "此二维码不适用于本拍摄点，请到预约的拍摄点拍摄".to_string(),
            Rejection::AlreadyCompleted => "此二维码已完成拍摄，不能重复使用".to_string(),
            Rejection::Locked => "此二维码已被锁定，请联系现场工作人员解锁".to_string(),
            Rejection::CoolingDown { until } => format!("拍摄次数过多，可于 {} 后重新拍摄", hhmm(*until)),
            Rejection::NoShotsLeft => "拍摄次数已用完，请联系工作人员".to_string(),
        }
    }

    /// What the student reads, in English.
    pub fn message_en(&self) -> String {
        match self {
            Rejection::Malformed(_) => format!("This QR code cannot be read. {RAW_CODE_HINT_EN}"),
            Rejection::RawChsiCode => RAW_CODE_HINT_EN.to_string(),
            Rejection::UnknownKey(_) => {
                "This shooting code was not issued for this collection unit; create it again in the mini-program"
                    .to_string()
            }
            Rejection::BadSignature => {
                "The code failed verification (it may have been altered); create it again in the mini-program"
                    .to_string()
            }
            Rejection::Expired { .. } => {
                "The shooting code has expired; refresh it in the mini-program and scan again".to_string()
            }
            Rejection::NotYetValid { .. } => {
                "The shooting code is not valid yet; try again later or ask the staff".to_string()
            }
            Rejection::WrongSite { .. } => {
                "This code is for another kiosk site; please go to the site you booked".to_string()
            }
            Rejection::AlreadyCompleted => "This code has already been used to complete a photo".to_string(),
            Rejection::Locked => "This code is locked; please ask the staff on site to unlock it".to_string(),
            Rejection::CoolingDown { until } => {
                format!("Too many attempts; you can shoot again after {}", hhmm(*until))
            }
            Rejection::NoShotsLeft => "All shots on this code are used; please ask the staff".to_string(),
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::Malformed(detail) => write!(f, "malformed ticket: {detail}"),
            Rejection::UnknownKey(id) => write!(f, "unknown issuer key {id:#010x}"),
            Rejection::Expired { expires_at } => write!(f, "expired at {}", rfc3339(*expires_at)),
            Rejection::NotYetValid { issued_at } => write!(f, "not valid before {}", rfc3339(*issued_at)),
            Rejection::WrongSite { ticket_site } => write!(f, "wrong site (ticket is for {ticket_site:?})"),
            other => f.write_str(&other.message_en()),
        }
    }
}

impl std::error::Error for Rejection {}

/// Unix seconds as RFC 3339 UTC, for messages.
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| unix.to_string())
}

/// Unix seconds as "HH:MM" in China Standard Time (UTC+8), for the cool-down message.
fn hhmm(unix: i64) -> String {
    let t = unix + 8 * 3600;
    format!(
        "{:02}:{:02}",
        t.rem_euclid(86_400) / 3600,
        t.rem_euclid(3600) / 60
    )
}
