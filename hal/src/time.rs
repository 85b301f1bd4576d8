//! Virtual time for devices: milliseconds on a monotonic timeline chosen by the caller.
//!
//! The shell converts its monotonic clock (`Instant - start`) into [`Millis`]; tests and the
//! simulated twins just count. Deliberately not a wall clock and never read here: devices are
//! handed `now` (STYLE.md habit 2), which is what makes the simulations replayable.

use std::time::Duration;

/// A point on the caller's monotonic timeline, in milliseconds since an arbitrary origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Millis(pub u64);

impl Millis {
    /// The origin of the timeline.
    pub const ZERO: Millis = Millis(0);

    /// The point `d` after the origin (saturating at `u64::MAX` ms).
    pub fn from_duration(d: Duration) -> Millis {
        Millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    /// The distance from the origin as a [`Duration`].
    pub fn as_duration(self) -> Duration {
        Duration::from_millis(self.0)
    }

    /// The point `ms` milliseconds later (saturating).
    pub fn after_ms(self, ms: u64) -> Millis {
        Millis(self.0.saturating_add(ms))
    }

    /// Milliseconds elapsed since `earlier`; zero if `earlier` is in the future, because a
    /// caller that hands in a slightly stale `now` must not make a device move backwards.
    pub fn since(self, earlier: Millis) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_saturates_instead_of_wrapping() {
        assert_eq!(Millis(5).since(Millis(10)), 0);
        assert_eq!(Millis(10).since(Millis(4)), 6);
    }

    #[test]
    fn duration_round_trip() {
        let m = Millis::from_duration(Duration::from_millis(1234));
        assert_eq!(m, Millis(1234));
        assert_eq!(m.as_duration(), Duration::from_millis(1234));
        assert_eq!(Millis(u64::MAX).after_ms(1), Millis(u64::MAX));
    }
}
