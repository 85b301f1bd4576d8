//! Simulated seat buttons and service key: a scripted timeline of debounced events.
//!
//! The script holds events already debounced (the real driver's [`crate::Debouncer`] is tested
//! on its own); deliberately no raw bounce here.

use std::convert::Infallible;

use crate::{ButtonEvent, Buttons, Millis, Switch};

/// Buttons that deliver scripted events once their time has come.
#[derive(Debug, Clone, Default)]
pub struct SimButtons {
    /// Pending events, sorted by time (stable for equal times).
    pending: Vec<ButtonEvent>,
}

impl SimButtons {
    /// No events scripted.
    pub fn new() -> SimButtons {
        SimButtons::default()
    }

    /// Scripts one event.
    pub fn script(&mut self, event: ButtonEvent) -> &mut SimButtons {
        let pos = self.pending.partition_point(|e| e.at <= event.at);
        self.pending.insert(pos, event);
        self
    }

    /// Scripts a press at `at` held for `hold_ms`.
    pub fn press(&mut self, switch: Switch, at: Millis, hold_ms: u64) -> &mut SimButtons {
        self.script(ButtonEvent::pressed(switch, at));
        self.script(ButtonEvent::released(switch, at.after_ms(hold_ms)))
    }

    /// How many scripted events have not been delivered yet.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}

impl Buttons for SimButtons {
    type Error = Infallible;

    fn poll(&mut self, now: Millis) -> Result<Vec<ButtonEvent>, Infallible> {
        let due = self.pending.partition_point(|e| e.at <= now);
        Ok(self.pending.drain(..due).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_come_out_in_time_order_once() {
        let mut b = SimButtons::new();
        b.press(Switch::SeatUp, Millis(100), 500);
        b.script(ButtonEvent::pressed(Switch::ServiceKey, Millis(50)));
        assert_eq!(b.poll(Millis(10)), Ok(vec![]));
        assert_eq!(
            b.poll(Millis(100)),
            Ok(vec![
                ButtonEvent::pressed(Switch::ServiceKey, Millis(50)),
                ButtonEvent::pressed(Switch::SeatUp, Millis(100)),
            ])
        );
        assert_eq!(b.poll(Millis(100)), Ok(vec![]));
        assert_eq!(
            b.poll(Millis(1000)),
            Ok(vec![ButtonEvent::released(Switch::SeatUp, Millis(600))])
        );
        assert_eq!(b.pending(), 0);
    }
}
