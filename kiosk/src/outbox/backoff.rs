//! When to try a failed upload again: exponential backoff with jitter, and the server's Retry-After.
//!
//! Pure arithmetic on the attempt count, the server's hint and a random number the caller draws, so it
//! is tested exhaustively without sleeping. It does not sleep, read the clock or draw randomness.

/// The ceiling for a server's Retry-After: a misconfigured server asking for a week must not park a
/// graduate's photo for a week; an hour is longer than any real outage answer we have seen.
pub const RETRY_AFTER_CAP_SECS: u64 = 3600;

/// Backoff parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The delay after the first failure, in seconds (at least 1).
    pub base_secs: u64,
    /// The delay never grows past this, in seconds.
    pub max_secs: u64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base_secs: 1,
            max_secs: 300,
        }
    }
}

impl Backoff {
    /// Seconds to wait after the failure of attempt number `attempts` (0 for the first try).
    ///
    /// "Equal jitter": the delay is drawn from the upper half of `[0, base * 2^attempts]`, capped at
    /// `max_secs`. Half of it is certain, so a retry never comes right back, and the other half
    /// spreads a fleet of kiosks that all failed at the same moment (the network came back). A
    /// `retry_after` from the server is honoured as a lower bound (up to [`RETRY_AFTER_CAP_SECS`]).
    pub fn delay_secs(&self, attempts: u32, retry_after: Option<u64>, random: u64) -> u64 {
        let base = self.base_secs.max(1);
        let max = self.max_secs.max(base);
        let exp = base
            .saturating_mul(1u64.checked_shl(attempts.min(62)).unwrap_or(u64::MAX))
            .min(max);
        let half = exp / 2;
        let jittered = (exp - half + random % (half + 1)).max(1);
        match retry_after {
            Some(hint) => jittered.max(hint.min(RETRY_AFTER_CAP_SECS)),
            None => jittered,
        }
    }

    /// The `next_attempt_at` to store for a failure at `now_unix` (whole seconds, rounded down by the
    /// clock). One second is added so that the real wait is at least the delay even though `now_unix`
    /// may be up to a second behind the true time.
    pub fn next_attempt_at(
        &self,
        now_unix: i64,
        attempts: u32,
        retry_after: Option<u64>,
        random: u64,
    ) -> i64 {
        let delay = i64::try_from(self.delay_secs(attempts, retry_after, random)).unwrap_or(i64::MAX);
        now_unix.saturating_add(delay).saturating_add(1)
    }
}

/// Parses a Retry-After header value: delta-seconds, or an HTTP date compared with `now_unix`.
/// Anything unparseable is ignored (`None`) rather than trusted.
pub fn parse_retry_after(value: &str, now_unix: i64) -> Option<u64> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(secs);
    }
    let format = time::format_description::well_known::Rfc2822;
    let when = time::OffsetDateTime::parse(value, &format).ok()?;
    Some(u64::try_from(when.unix_timestamp().saturating_sub(now_unix)).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_exponentially_within_jitter_and_cap() {
        let b = Backoff {
            base_secs: 2,
            max_secs: 60,
        };
        for attempts in 0..70 {
            let exp = (2u64 << attempts.min(40)).min(60);
            for random in [0, 1, 7, 1000, u64::MAX] {
                let d = b.delay_secs(attempts, None, random);
                assert!(d >= (exp - exp / 2).max(1) && d <= exp, "attempt {attempts}: {d}");
            }
        }
    }

    #[test]
    fn never_zero_and_retry_after_is_a_lower_bound() {
        let b = Backoff {
            base_secs: 1,
            max_secs: 1,
        };
        assert_eq!(b.delay_secs(0, None, 0), 1);
        assert_eq!(b.delay_secs(0, Some(30), 0), 30);
        assert_eq!(b.delay_secs(0, Some(u64::MAX), 0), RETRY_AFTER_CAP_SECS);
        // The stored time covers the delay even if "now" was rounded down by almost a second.
        assert_eq!(b.next_attempt_at(100, 0, Some(5), 0), 106);
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after(" 7 ", 0), Some(7));
        // Sun, 06 Nov 1994 08:49:37 GMT is 784111777.
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784_111_770),
            Some(7)
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784_111_800),
            Some(0)
        );
        assert_eq!(parse_retry_after("soon", 0), None);
    }
}
