//! The physical inputs: seat up/down buttons on the seat and the technician's service key.
//!
//! [`Buttons::poll`] yields debounced edge events. [`Debouncer`] is the pure stable-for-N-ms
//! filter the real GPIO driver (rppal) runs per input; it is here, tested, so that the driver is
//! only pin reading. Deliberately no pins, pull-ups or interrupt configuration in the API.

use crate::{Error, Millis};

/// A physical input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Switch {
    /// The "seat up" push button.
    SeatUp,
    /// The "seat down" push button.
    SeatDown,
    /// The technician's key switch (on = service mode requested).
    ServiceKey,
}

/// A debounced change of one input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ButtonEvent {
    /// Which input changed.
    pub switch: Switch,
    /// Its new state: pressed (buttons) or on (key switch).
    pub pressed: bool,
    /// When the change became stable.
    pub at: Millis,
}

impl ButtonEvent {
    /// A press (or key on) at `at`.
    pub fn pressed(switch: Switch, at: Millis) -> ButtonEvent {
        ButtonEvent {
            switch,
            pressed: true,
            at,
        }
    }

    /// A release (or key off) at `at`.
    pub fn released(switch: Switch, at: Millis) -> ButtonEvent {
        ButtonEvent {
            switch,
            pressed: false,
            at,
        }
    }
}

/// A source of debounced input events.
pub trait Buttons {
    /// The driver's error.
    type Error: Error;

    /// The events that became stable since the last poll, oldest first.
    fn poll(&mut self, now: Millis) -> Result<Vec<ButtonEvent>, Self::Error>;
}

impl<T: Buttons + ?Sized> Buttons for &mut T {
    type Error = T::Error;

    fn poll(&mut self, now: Millis) -> Result<Vec<ButtonEvent>, Self::Error> {
        T::poll(self, now)
    }
}

/// Reports a level change only after the raw level has held for `window_ms`.
///
/// Contact bounce shorter than the window is never reported, and a stable press is reported
/// exactly once. Feed it every raw sample with its time; the sampling rate only limits how soon
/// after the window the change is seen.
#[derive(Debug, Clone)]
pub struct Debouncer {
    window_ms: u64,
    stable: bool,
    candidate: bool,
    candidate_since: Millis,
}

impl Debouncer {
    /// A debouncer whose input starts (and is stable) at `initial`.
    pub fn new(window_ms: u64, initial: bool) -> Debouncer {
        Debouncer {
            window_ms,
            stable: initial,
            candidate: initial,
            candidate_since: Millis::ZERO,
        }
    }

    /// Takes one raw sample; returns the new stable level when it changes.
    pub fn update(&mut self, raw: bool, now: Millis) -> Option<bool> {
        if raw != self.candidate {
            self.candidate = raw;
            self.candidate_since = now;
        }
        if self.candidate != self.stable && now.since(self.candidate_since) >= self.window_ms {
            self.stable = self.candidate;
            return Some(self.stable);
        }
        None
    }

    /// The current debounced level.
    pub fn stable(&self) -> bool {
        self.stable
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Samples a piecewise-constant raw signal every millisecond and collects the reports.
    fn run(db: &mut Debouncer, segments: &[(bool, u64)]) -> (Vec<(u64, bool)>, Vec<bool>, u64) {
        let mut t = 0;
        let mut reports = Vec::new();
        let mut raw_trace = Vec::new();
        for &(level, len) in segments {
            for _ in 0..len {
                raw_trace.push(level);
                if let Some(s) = db.update(level, Millis(t)) {
                    reports.push((t, s));
                }
                t += 1;
            }
        }
        (reports, raw_trace, t)
    }

    #[test]
    fn bounce_shorter_than_window_is_ignored() {
        let mut db = Debouncer::new(20, false);
        let (reports, _, _) = run(
            &mut db,
            &[(false, 10), (true, 3), (false, 2), (true, 5), (false, 50)],
        );
        assert!(reports.is_empty());
        assert!(!db.stable());
    }

    #[test]
    fn stable_press_is_reported_once_after_the_window() {
        let mut db = Debouncer::new(20, false);
        // Bounce on the way in, then held for 100 ms.
        let (reports, _, _) = run(&mut db, &[(true, 2), (false, 1), (true, 100)]);
        assert_eq!(reports, vec![(23, true)]);
        assert!(db.stable());
    }

    proptest! {
        /// Over arbitrary bounce patterns: reports alternate, each report's level held raw for
        /// the whole window before it, and a level held longer than the window ends up stable.
        #[test]
        fn debouncer_invariants(
            segments in proptest::collection::vec((any::<bool>(), 1u64..40), 1..40),
            window in 1u64..30,
        ) {
            let mut db = Debouncer::new(window, false);
            let (reports, raw, end) = run(&mut db, &segments);
            let mut last = false;
            for &(t, level) in &reports {
                prop_assert_ne!(level, last, "reports must alternate");
                last = level;
                let from = usize::try_from(t.saturating_sub(window)).unwrap_or(0);
                let to = usize::try_from(t).unwrap_or(0);
                prop_assert!(raw[from..=to].iter().all(|&r| r == level));
            }
            // Hold the final level for a full window: it must become the stable level.
            let final_level = segments.last().map(|s| s.0).unwrap_or(false);
            for t in end..=end + window {
                db.update(final_level, Millis(t));
            }
            prop_assert_eq!(db.stable(), final_level);
        }
    }
}
