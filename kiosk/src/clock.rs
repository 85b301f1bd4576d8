//! The one place that reads the clock.
//!
//! Everything else in the crate is handed `now` (STYLE.md habit 2); `clippy.toml` forbids
//! `Instant::now` and `SystemTime::now` elsewhere.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The monotonic clock, for timeouts.
#[allow(clippy::disallowed_methods)]
pub fn monotonic() -> Instant {
    Instant::now()
}

/// The wall clock as Unix seconds, for ticket validity and records.
#[allow(clippy::disallowed_methods)]
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
