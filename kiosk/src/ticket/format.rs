//! Binary layout v1 of the shooting ticket, its text form for QR codes and serial scanners, and the
//! `issue` / `verify` pair built on them.
//!
//! The layout (also in `docs/ticket-format.md`), all integers big-endian, every string UTF-8 with a
//! one-byte length prefix:
//!
//! | field | encoding | bound |
//! |---|---|---|
//! | version | u8 | must be 1 |
//! | key id | u32 | any; must be trusted by the kiosk |
//! | ticket id | 16 bytes | random |
//! | student_no | len u8 + UTF-8 | 1..=24 bytes, no control characters |
//! | masked_name | len u8 + UTF-8 | 1..=48 bytes (16 CJK characters), no control characters |
//! | school | len u8 + UTF-8 | 1..=90 bytes (30 CJK characters), no control characters |
//! | id_last4 | len u8 + ASCII | exactly 4: three digits then a digit or `X` |
//! | site | len u8 + ASCII | 1..=24 bytes of `A-Z a-z 0-9 . _ -`, or exactly `*` |
//! | photo types | count u8, then each len u8 + ASCII | 1..=4 distinct ids, each 1..=24 bytes of `a-z 0-9 . _ -` |
//! | shots_allowed | u8 | 1..=20 |
//! | flags | u8 | bit 0 = paid; the other bits must be 0 |
//! | issued_at | u32 Unix seconds | issued_at < expires_at |
//! | expires_at | u32 Unix seconds | expires_at - issued_at <= 400 days |
//! | signature | 64 bytes | Ed25519 over [`SIGNING_DOMAIN`] followed by every byte above |
//!
//! A typical ticket is about 180 bytes; the largest legal one is [`MAX_TICKET_BYTES`]. The text form is
//! [`TEXT_PREFIX`] followed by the base45 of the bytes, which uses only the QR alphanumeric character set.
//!
//! This module does not decide single use, locks, cool-downs or shots left: the store does. It does not
//! read the clock either; `verify` is handed `now`.

use std::collections::BTreeSet;

use ed25519_dalek::{Signature, Signer};

use super::keys::{IssuerKey, TrustedKeys};
use super::{Rejection, Ticket, TicketId};

/// The layout version this code writes and reads.
pub const FORMAT_VERSION: u8 = 1;

/// The text form starts with this; anything else is not our ticket.
///
/// Upper case, digits and `:` are all in the QR alphanumeric set, so the whole text encodes in the denser
/// alphanumeric mode.
pub const TEXT_PREFIX: &str = "GK1:";

/// Prepended to the ticket bytes before signing, so a signature made by an issuer key for any other purpose
/// can never pass as a ticket signature.
pub const SIGNING_DOMAIN: &[u8] = b"graduate-kiosk/shooting-ticket/v1\0";

/// Bounds on each field, in bytes (strings) or items. The issuer and the verifier share them.
pub const MAX_STUDENT_NO: usize = 24;
pub const MAX_MASKED_NAME: usize = 48;
pub const MAX_SCHOOL: usize = 90;
pub const ID_LAST4_LEN: usize = 4;
pub const MAX_SITE: usize = 24;
pub const MAX_PHOTO_TYPES: usize = 4;
pub const MAX_PHOTO_TYPE: usize = 24;
pub const MAX_SHOTS: u8 = 20;
/// The longest validity window a ticket may carry; a leaked ticket should not outlive a season.
pub const MAX_VALIDITY_SECS: i64 = 400 * 86_400;

const SIGNATURE_LEN: usize = 64;
const FIXED_HEAD: usize = 1 + 4 + 16;
const FIXED_TAIL: usize = 1 + 1 + 4 + 4;

/// The largest legal ticket in bytes, signature included.
pub const MAX_TICKET_BYTES: usize = FIXED_HEAD
    + (1 + MAX_STUDENT_NO)
    + (1 + MAX_MASKED_NAME)
    + (1 + MAX_SCHOOL)
    + (1 + ID_LAST4_LEN)
    + (1 + MAX_SITE)
    + 1
    + MAX_PHOTO_TYPES * (1 + MAX_PHOTO_TYPE)
    + FIXED_TAIL
    + SIGNATURE_LEN;

/// The longest legal text form: the prefix plus 3 base45 characters per 2 bytes.
pub const MAX_TEXT_LEN: usize = TEXT_PREFIX.len() + MAX_TICKET_BYTES.div_ceil(2) * 3;

const PAID_FLAG: u8 = 0x01;

/// Why a ticket cannot be issued: a field is outside the bounds of layout v1.
///
/// The verifier reports the same problems as [`Rejection::Malformed`] with this error's text as detail.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IssueError {
    /// A required string or list is empty.
    #[error("{field} is empty")]
    Empty { field: &'static str },
    /// A string is longer than its bound, in bytes.
    #[error("{field} is {len} bytes, at most {max} allowed")]
    TooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    /// A string holds characters the field does not allow.
    #[error("{field} has characters that are not allowed: {what}")]
    BadText { field: &'static str, what: &'static str },
    /// More photo types than the layout allows.
    #[error("{count} photo types, at most {MAX_PHOTO_TYPES} allowed")]
    TooManyPhotoTypes { count: usize },
    /// The same photo type twice.
    #[error("photo type {0:?} is listed twice")]
    DuplicatePhotoType(String),
    /// Shots outside 1..=MAX_SHOTS.
    #[error("shots_allowed {0} is outside 1..={MAX_SHOTS}")]
    Shots(u8),
    /// A time that does not fit the u32 Unix seconds of the layout.
    #[error("{field} {value} is outside the u32 Unix-seconds range of the layout")]
    TimeOutOfRange { field: &'static str, value: i64 },
    /// Expiry not after issue, or a validity window longer than [`MAX_VALIDITY_SECS`].
    #[error("validity window {issued_at}..{expires_at} is empty or longer than {MAX_VALIDITY_SECS} s")]
    Validity { issued_at: i64, expires_at: i64 },
    /// The ticket names another key than the one signing it.
    #[error("ticket says key id {ticket} but the signing key is {key}")]
    KeyIdMismatch { ticket: u32, key: u32 },
}

/// What this kiosk accepts besides a good signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyPolicy {
    /// This kiosk's site code; a ticket must name it or `"*"`.
    pub site: String,
    /// How far in the future `issued_at` may lie, for a kiosk clock that runs slow against the issuer's.
    pub max_clock_skew_secs: i64,
}

impl VerifyPolicy {
    /// Five minutes: NTP-synchronised devices are far closer, a kiosk that lost its RTC is far worse.
    pub const DEFAULT_SKEW_SECS: i64 = 300;

    /// A policy for `site` with the default skew.
    pub fn new(site: impl Into<String>) -> Self {
        VerifyPolicy {
            site: site.into(),
            max_clock_skew_secs: Self::DEFAULT_SKEW_SECS,
        }
    }

    /// The checks after the signature, in the documented order: site, not yet valid, expired.
    pub fn check(&self, ticket: &Ticket, now_unix: i64) -> Result<(), Rejection> {
        if ticket.site != "*" && ticket.site != self.site {
            return Err(Rejection::WrongSite {
                ticket_site: ticket.site.clone(),
            });
        }
        if ticket.issued_at > now_unix.saturating_add(self.max_clock_skew_secs.max(0)) {
            return Err(Rejection::NotYetValid {
                issued_at: ticket.issued_at,
            });
        }
        if now_unix >= ticket.expires_at {
            return Err(Rejection::Expired {
                expires_at: ticket.expires_at,
            });
        }
        Ok(())
    }
}

/// Checks every bound of layout v1 on a ticket (the signing key aside).
pub fn validate(t: &Ticket) -> Result<(), IssueError> {
    free_text("student_no", &t.student_no, MAX_STUDENT_NO)?;
    free_text("masked_name", &t.masked_name, MAX_MASKED_NAME)?;
    free_text("school", &t.school, MAX_SCHOOL)?;
    let l4 = t.id_last4.as_bytes();
    if l4.len() != ID_LAST4_LEN
        || !l4[..3].iter().all(u8::is_ascii_digit)
        || !(l4[3].is_ascii_digit() || l4[3] == b'X')
    {
        return Err(IssueError::BadText {
            field: "id_last4",
            what: "must be three digits then a digit or X",
        });
    }
    if t.site != "*" {
        ascii_id("site", &t.site, MAX_SITE, |b| {
            b.is_ascii_alphanumeric() || b"._-".contains(&b)
        })?;
    }
    if t.photo_types.is_empty() {
        return Err(IssueError::Empty { field: "photo_types" });
    }
    if t.photo_types.len() > MAX_PHOTO_TYPES {
        return Err(IssueError::TooManyPhotoTypes {
            count: t.photo_types.len(),
        });
    }
    let mut seen = BTreeSet::new();
    for p in &t.photo_types {
        ascii_id("photo_type", p, MAX_PHOTO_TYPE, |b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)
        })?;
        if !seen.insert(p.as_str()) {
            return Err(IssueError::DuplicatePhotoType(p.clone()));
        }
    }
    if t.shots_allowed == 0 || t.shots_allowed > MAX_SHOTS {
        return Err(IssueError::Shots(t.shots_allowed));
    }
    for (field, value) in [("issued_at", t.issued_at), ("expires_at", t.expires_at)] {
        if u32::try_from(value).is_err() {
            return Err(IssueError::TimeOutOfRange { field, value });
        }
    }
    if t.expires_at <= t.issued_at || t.expires_at - t.issued_at > MAX_VALIDITY_SECS {
        return Err(IssueError::Validity {
            issued_at: t.issued_at,
            expires_at: t.expires_at,
        });
    }
    Ok(())
}

fn free_text(field: &'static str, s: &str, max: usize) -> Result<(), IssueError> {
    if s.is_empty() {
        return Err(IssueError::Empty { field });
    }
    if s.len() > max {
        return Err(IssueError::TooLong {
            field,
            len: s.len(),
            max,
        });
    }
    // Control characters (newlines, bidi overrides are not control but harmless here) would let a ticket
    // rewrite log lines or the Confirm screen layout.
    if s.chars().any(char::is_control) {
        return Err(IssueError::BadText {
            field,
            what: "control characters",
        });
    }
    Ok(())
}

fn ascii_id(field: &'static str, s: &str, max: usize, ok: impl Fn(u8) -> bool) -> Result<(), IssueError> {
    if s.is_empty() {
        return Err(IssueError::Empty { field });
    }
    if s.len() > max {
        return Err(IssueError::TooLong {
            field,
            len: s.len(),
            max,
        });
    }
    if !s.bytes().all(ok) {
        return Err(IssueError::BadText {
            field,
            what: "outside the allowed ASCII set",
        });
    }
    Ok(())
}

/// The unsigned part of the layout: everything the signature covers except the domain tag.
fn encode_body(t: &Ticket) -> Vec<u8> {
    let mut out = Vec::with_capacity(MAX_TICKET_BYTES);
    out.push(FORMAT_VERSION);
    out.extend_from_slice(&t.key_id.to_be_bytes());
    out.extend_from_slice(&t.id.0);
    for s in [&t.student_no, &t.masked_name, &t.school, &t.id_last4, &t.site] {
        put_str(&mut out, s);
    }
    // validate() bounds the count to MAX_PHOTO_TYPES, so the cast cannot truncate.
    out.push(t.photo_types.len() as u8);
    for p in &t.photo_types {
        put_str(&mut out, p);
    }
    out.push(t.shots_allowed);
    out.push(if t.paid { PAID_FLAG } else { 0 });
    // validate() checked both times fit in u32.
    out.extend_from_slice(&(t.issued_at as u32).to_be_bytes());
    out.extend_from_slice(&(t.expires_at as u32).to_be_bytes());
    out
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    // Every string bound is below 256, checked by validate() before we get here.
    out.push(s.len() as u8);
    out.extend_from_slice(s.as_bytes());
}

fn signed_message(body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(SIGNING_DOMAIN.len() + body.len());
    m.extend_from_slice(SIGNING_DOMAIN);
    m.extend_from_slice(body);
    m
}

/// Signs a ticket and returns its bytes (layout v1, signature last).
pub fn issue_bytes(ticket: &Ticket, key: &IssuerKey) -> Result<Vec<u8>, IssueError> {
    if ticket.key_id != key.key_id {
        return Err(IssueError::KeyIdMismatch {
            ticket: ticket.key_id,
            key: key.key_id,
        });
    }
    validate(ticket)?;
    let mut bytes = encode_body(ticket);
    let sig = key.signing_key().sign(&signed_message(&bytes));
    bytes.extend_from_slice(&sig.to_bytes());
    Ok(bytes)
}

/// Signs a ticket and returns its text form, ready for a QR code: [`TEXT_PREFIX`] then base45.
pub fn issue(ticket: &Ticket, key: &IssuerKey) -> Result<String, IssueError> {
    let bytes = issue_bytes(ticket, key)?;
    Ok(format!("{TEXT_PREFIX}{}", base45::encode(&bytes)))
}

/// A cursor over untrusted bytes; every read is bounds-checked and names the field it was reading.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &str) -> Result<&'a [u8], Rejection> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        match end {
            Some(end) => {
                let s = &self.buf[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(Rejection::Malformed(format!("truncated in {field}"))),
        }
    }

    fn u8(&mut self, field: &str) -> Result<u8, Rejection> {
        Ok(self.take(1, field)?[0])
    }

    fn u32(&mut self, field: &str) -> Result<u32, Rejection> {
        let b = self.take(4, field)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn string(&mut self, field: &str, max: usize) -> Result<String, Rejection> {
        let len = usize::from(self.u8(field)?);
        // Checked here as well as in validate() so an absurd length is named before we read past it.
        if len > max {
            return Err(Rejection::Malformed(format!(
                "{field} is {len} bytes, at most {max} allowed"
            )));
        }
        let raw = self.take(len, field)?;
        String::from_utf8(raw.to_vec()).map_err(|_| Rejection::Malformed(format!("{field} is not UTF-8")))
    }
}

/// Parses ticket bytes without checking the signature. Returns the ticket and its (unchecked) signature.
///
/// Every bound of [`validate`] is enforced, and trailing bytes are refused, so one ticket has one encoding.
pub fn parse_bytes(bytes: &[u8]) -> Result<(Ticket, Signature), Rejection> {
    if bytes.len() > MAX_TICKET_BYTES {
        return Err(Rejection::Malformed(format!(
            "{} bytes, at most {MAX_TICKET_BYTES}",
            bytes.len()
        )));
    }
    let mut r = Reader { buf: bytes, pos: 0 };
    let version = r.u8("version")?;
    if version != FORMAT_VERSION {
        return Err(Rejection::Malformed(format!(
            "unsupported layout version {version}"
        )));
    }
    let key_id = r.u32("key_id")?;
    let mut id = [0u8; 16];
    id.copy_from_slice(r.take(16, "ticket id")?);
    let student_no = r.string("student_no", MAX_STUDENT_NO)?;
    let masked_name = r.string("masked_name", MAX_MASKED_NAME)?;
    let school = r.string("school", MAX_SCHOOL)?;
    let id_last4 = r.string("id_last4", ID_LAST4_LEN)?;
    let site = r.string("site", MAX_SITE)?;
    let count = usize::from(r.u8("photo type count")?);
    if count > MAX_PHOTO_TYPES {
        return Err(Rejection::Malformed(format!(
            "{count} photo types, at most {MAX_PHOTO_TYPES}"
        )));
    }
    let mut photo_types = Vec::with_capacity(count);
    for _ in 0..count {
        photo_types.push(r.string("photo_type", MAX_PHOTO_TYPE)?);
    }
    let shots_allowed = r.u8("shots_allowed")?;
    let flags = r.u8("flags")?;
    if flags & !PAID_FLAG != 0 {
        return Err(Rejection::Malformed(format!(
            "reserved flag bits set: {flags:#04x}"
        )));
    }
    let issued_at = i64::from(r.u32("issued_at")?);
    let expires_at = i64::from(r.u32("expires_at")?);
    let sig = r.take(SIGNATURE_LEN, "signature")?;
    let sig = Signature::from_bytes(
        sig.try_into()
            .map_err(|_| Rejection::Malformed("signature".into()))?,
    );
    if r.pos != bytes.len() {
        return Err(Rejection::Malformed(format!(
            "{} trailing bytes",
            bytes.len() - r.pos
        )));
    }
    let ticket = Ticket {
        id: TicketId(id),
        student_no,
        masked_name,
        school,
        id_last4,
        site,
        photo_types,
        shots_allowed,
        paid: flags & PAID_FLAG != 0,
        issued_at,
        expires_at,
        key_id,
    };
    validate(&ticket).map_err(|e| Rejection::Malformed(e.to_string()))?;
    Ok((ticket, sig))
}

/// Strips what scanners and phones add around the text: whitespace and a trailing CR LF.
///
/// Safe for base45, whose alphabet includes the space: the last character of any base45 string is never a
/// space (a final 3-character group ends in a digit worth at most 32, a final 2-character group in one
/// worth at most 5, and the space is worth 36), and the prefix shields the front.
fn trim_ascii_ws(text: &[u8]) -> &[u8] {
    text.trim_ascii()
}

/// Decodes the text form to ticket bytes: prefix, bounded length, canonical base45.
pub fn decode_text(text: &[u8]) -> Result<Vec<u8>, Rejection> {
    let text = trim_ascii_ws(text);
    let Some(b45) = text.strip_prefix(TEXT_PREFIX.as_bytes()) else {
        return Err(if looks_like_other_version(text) {
            Rejection::Malformed("unsupported text prefix version".into())
        } else {
            Rejection::RawChsiCode
        });
    };
    if b45.len() > MAX_TEXT_LEN - TEXT_PREFIX.len() {
        return Err(Rejection::Malformed(format!(
            "text is {} characters, too long",
            text.len()
        )));
    }
    let bytes = base45::decode(b45).map_err(|_| Rejection::Malformed("not valid base45".into()))?;
    // base45 tolerates a final pair worth more than 255 (it truncates); re-encoding pins one text to one
    // ticket, so logs and replays of the same ticket always look the same.
    if base45::encode(&bytes).as_bytes() != b45 {
        return Err(Rejection::Malformed("non-canonical base45".into()));
    }
    Ok(bytes)
}

/// `GK` followed by digits and `:`: a later layout from our own issuer, which this kiosk cannot read. It is
/// "our ticket, not understood" (malformed), not "someone else's code", so the message differs.
fn looks_like_other_version(text: &[u8]) -> bool {
    let Some(rest) = text.strip_prefix(b"GK") else {
        return false;
    };
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    digits > 0 && digits <= 3 && rest.get(digits) == Some(&b':')
}

/// Decodes, parses and checks the signature; does not apply site or time rules.
///
/// Order of rejection: not our prefix ([`Rejection::RawChsiCode`]), undecodable or out of bounds
/// ([`Rejection::Malformed`]), key not trusted ([`Rejection::UnknownKey`]), signature
/// ([`Rejection::BadSignature`]).
pub fn verify_signature(text: &[u8], keys: &TrustedKeys) -> Result<Ticket, Rejection> {
    let bytes = decode_text(text)?;
    let (ticket, sig) = parse_bytes(&bytes)?;
    let key = keys
        .get(ticket.key_id)
        .ok_or(Rejection::UnknownKey(ticket.key_id))?;
    let body = &bytes[..bytes.len() - SIGNATURE_LEN];
    // verify_strict also refuses small-order keys and non-canonical signatures, so a ticket cannot be
    // re-signed into a second valid byte string.
    key.verify_strict(&signed_message(body), &sig)
        .map_err(|_| Rejection::BadSignature)?;
    Ok(ticket)
}

/// Verifies a scanned ticket offline. Never panics; each cause has its own [`Rejection`].
///
/// Order: [`Rejection::RawChsiCode`], [`Rejection::Malformed`], [`Rejection::UnknownKey`],
/// [`Rejection::BadSignature`], [`Rejection::WrongSite`], [`Rejection::NotYetValid`],
/// [`Rejection::Expired`]. Replays, locks and shots left are for the store.
pub fn verify(
    text: &[u8],
    keys: &TrustedKeys,
    policy: &VerifyPolicy,
    now_unix: i64,
) -> Result<Ticket, Rejection> {
    let ticket = verify_signature(text, keys)?;
    policy.check(&ticket, now_unix)?;
    Ok(ticket)
}

/// Masks a full name the way the issuer shows it: the first and last characters stay, the rest become `*`
/// (张三明 → 张*明, 李四 → 李*, 欧阳娜娜 → 欧**娜). A name that already contains `*` is kept as is.
pub fn mask_name(name: &str) -> String {
    let name = name.trim();
    if name.contains('*') {
        return name.to_string();
    }
    let chars: Vec<char> = name.chars().collect();
    match chars.len() {
        0 => String::new(),
        1 => "*".to_string(),
        2 => format!("{}*", chars[0]),
        n => {
            let mut s = String::new();
            s.push(chars[0]);
            s.extend(std::iter::repeat_n('*', n - 2));
            s.push(chars[n - 1]);
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base45_never_ends_in_a_space() {
        // trim_ascii_ws relies on this; check every final group exhaustively.
        for b in 0..=255u8 {
            assert!(!base45::encode([b]).ends_with(' '));
        }
        for v in 0..=u16::MAX {
            assert!(!base45::encode(v.to_be_bytes()).ends_with(' '));
        }
    }

    #[test]
    fn mask_name_keeps_first_and_last() {
        assert_eq!(mask_name("张三明"), "张*明");
        assert_eq!(mask_name("李四"), "李*");
        assert_eq!(mask_name("欧阳娜娜"), "欧**娜");
        assert_eq!(mask_name("张*明"), "张*明");
    }

    #[test]
    fn other_prefix_version_is_malformed_not_raw() {
        assert!(looks_like_other_version(b"GK2:ABC"));
        assert!(!looks_like_other_version(b"GK:ABC"));
        assert!(!looks_like_other_version(b"GKX1:ABC"));
    }
}
