//! Personal data in log lines, redacted by type (PIPL; PRODUCT.md section 6).
//!
//! A student's name, student number or ID digits are wrapped in [`Pii`] as soon as they leave the
//! ticket, so a careless `info!(name = %x)` or `{:?}` prints `[redacted name]`, never the value; the
//! value comes out only through [`Pii::expose`], which is easy to grep for in review. As a second net
//! the log store scrubs anything shaped like a mainland ID number ([`scrub`]) from every record.
//!
//! What it deliberately does not do: guess at names in free text (it cannot tell a name from a word),
//! or hash values for correlation (a hash of an 18-digit ID is brute-forced in seconds). Correlate by
//! the random ticket id instead.

use std::fmt;

use serde::{Serialize, Serializer};

/// What a [`Pii`] value is, which is all a log line shows of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PiiKind {
    /// A person's name, even masked by the issuer ("张*明").
    Name,
    /// Student number.
    StudentNo,
    /// National ID number or any part of it (the last four digits included).
    IdNumber,
}

impl PiiKind {
    fn label(self) -> &'static str {
        match self {
            PiiKind::Name => "[redacted name]",
            PiiKind::StudentNo => "[redacted student number]",
            PiiKind::IdNumber => "[redacted id]",
        }
    }
}

/// A value that must never reach a log: `Display`, `Debug` and `Serialize` all print only its kind.
#[derive(Clone, PartialEq, Eq)]
pub struct Pii<T> {
    kind: PiiKind,
    value: T,
}

impl<T> Pii<T> {
    pub fn name(value: T) -> Pii<T> {
        Pii {
            kind: PiiKind::Name,
            value,
        }
    }

    pub fn student_no(value: T) -> Pii<T> {
        Pii {
            kind: PiiKind::StudentNo,
            value,
        }
    }

    pub fn id_number(value: T) -> Pii<T> {
        Pii {
            kind: PiiKind::IdNumber,
            value,
        }
    }

    /// The value itself, for the screen the student looks at. Never pass it to a log macro.
    pub fn expose(&self) -> &T {
        &self.value
    }

    pub fn kind(&self) -> PiiKind {
        self.kind
    }
}

impl<T> fmt::Display for Pii<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.label())
    }
}

impl<T> fmt::Debug for Pii<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.label())
    }
}

impl<T> Serialize for Pii<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.kind.label())
    }
}

/// Replaces every run of 17 digits followed by a digit or X (a mainland resident ID number) and every
/// longer run of 15+ digits (old IDs, bank cards) with `[redacted id]`.
pub fn scrub(text: &str) -> std::borrow::Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut out = String::new();
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric()) {
            let mut j = i;
            while j < bytes.len() && bytes[j].is_ascii_digit() {
                j += 1;
            }
            let mut end = j;
            if j - i == 17 && j < bytes.len() && (bytes[j] == b'X' || bytes[j] == b'x') {
                end = j + 1;
            }
            if end - i >= 15 && (end == bytes.len() || !bytes[end].is_ascii_alphanumeric()) {
                out.push_str(&text[copied..i]);
                out.push_str(PiiKind::IdNumber.label());
                copied = end;
            }
            i = end.max(i + 1);
        } else {
            i += 1;
        }
    }
    if copied == 0 {
        return std::borrow::Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_of_a_pii_value_is_redacted() {
        let name = Pii::name("测试学生".to_string());
        let id = Pii::id_number("0420");
        assert_eq!(
            format!("{name} {name:?} {id} {id:#?}"),
            "[redacted name] [redacted name] [redacted id] [redacted id]"
        );
        assert_eq!(serde_json::to_string(&name).unwrap(), "\"[redacted name]\"");
        assert_eq!(name.expose(), "测试学生");
    }

    #[test]
    fn scrub_removes_id_numbers_and_keeps_the_rest() {
        assert_eq!(scrub("id 11010519491231002X ok"), "id [redacted id] ok");
        assert_eq!(scrub("a=110105194912310021,"), "a=[redacted id],");
        assert_eq!(
            scrub("ticket 3f2a9b shot 2 took 1234 ms"),
            "ticket 3f2a9b shot 2 took 1234 ms"
        );
        // Hex ticket ids contain digit runs inside a word; they are not ID numbers.
        let hex = "a1234567890123456789b";
        assert_eq!(scrub(hex), hex);
    }
}
