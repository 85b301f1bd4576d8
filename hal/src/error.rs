//! The error vocabulary shared by every device trait, after embedded-hal's `ErrorKind`.
//!
//! Each driver keeps its own detailed error type (for logs) and maps it to an [`ErrorKind`] that
//! the supervisor and the session can act on without knowing the device. Deliberately small and
//! `#[non_exhaustive]`: a caller decides "retry", "report the device down" or "fix the request",
//! nothing finer.

use std::fmt;

/// What went wrong, in terms a caller can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The device is gone (unplugged, port closed, no answer at all); calls fail until a
    /// reconnect succeeds.
    Disconnected,
    /// The device did not answer in time; the next call may succeed.
    Timeout,
    /// The device is busy with something else; the next call may succeed.
    Busy,
    /// A mechanical end was reached (the seat is at its top or bottom limit). The request was
    /// refused, the device is healthy.
    LimitReached,
    /// The device reports a hardware fault (stalled motor, contradictory limit switches).
    Fault,
    /// The request itself is wrong or unsupported by this device (e.g. `go_to` without a
    /// position sensor). The device is healthy.
    InvalidInput,
    /// Anything else; treated as possibly transient.
    Other,
}

impl ErrorKind {
    /// Whether retrying the same call soon may succeed without anyone intervening.
    ///
    /// `Other` counts as transient because an unknown error is not known to be permanent; the
    /// supervisor still reports the device down after a few in a row.
    pub fn is_transient(self) -> bool {
        matches!(self, ErrorKind::Timeout | ErrorKind::Busy | ErrorKind::Other)
    }

    /// Whether the error says the request was wrong rather than the device unwell, so that it
    /// must not count against the device's health.
    pub fn is_caller_error(self) -> bool {
        matches!(self, ErrorKind::LimitReached | ErrorKind::InvalidInput)
    }

    /// A stable lower-case name for logs and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Disconnected => "disconnected",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Busy => "busy",
            ErrorKind::LimitReached => "limit_reached",
            ErrorKind::Fault => "fault",
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::Other => "other",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for ErrorKind {}

/// A device error that can say what kind of failure it is.
pub trait Error: std::error::Error {
    /// The kind of failure, for callers that do not know the device.
    fn kind(&self) -> ErrorKind;
}

/// A bare kind is its own error, so that simple drivers and fault injectors need no type.
impl Error for ErrorKind {
    fn kind(&self) -> ErrorKind {
        *self
    }
}

/// Devices that cannot fail (e.g. the frame-fed QR adapter) use `Infallible`.
impl Error for std::convert::Infallible {
    fn kind(&self) -> ErrorKind {
        match *self {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_kinds() {
        assert!(ErrorKind::Timeout.is_transient());
        assert!(ErrorKind::Busy.is_transient());
        assert!(!ErrorKind::Disconnected.is_transient());
        assert!(!ErrorKind::Fault.is_transient());
        assert!(ErrorKind::LimitReached.is_caller_error());
        assert!(!ErrorKind::Timeout.is_caller_error());
        assert_eq!(ErrorKind::LimitReached.kind().to_string(), "limit_reached");
    }
}
