//! A simulated serial QR scanner: scripted payloads delivered on the virtual timeline.
//!
//! Stands in for a USB CDC barcode scanner. Deliberately no byte-level framing here; the
//! framing is [`crate::LineAssembler`], tested on its own.

use std::collections::VecDeque;
use std::convert::Infallible;

use crate::{Millis, QrSource};

/// A scanner that "reads" scripted payloads at scripted times, one per poll.
#[derive(Debug, Clone, Default)]
pub struct SimQrScanner {
    pending: VecDeque<(Millis, Vec<u8>)>,
}

impl SimQrScanner {
    /// Nothing scripted.
    pub fn new() -> SimQrScanner {
        SimQrScanner::default()
    }

    /// Scripts a scan of `payload` at `at` (scripts must be added in time order).
    pub fn scan_at(&mut self, at: Millis, payload: impl Into<Vec<u8>>) -> &mut SimQrScanner {
        self.pending.push_back((at, payload.into()));
        self
    }
}

impl QrSource for SimQrScanner {
    type Error = Infallible;

    fn poll(&mut self, now: Millis) -> Result<Option<Vec<u8>>, Infallible> {
        match self.pending.front() {
            Some((at, _)) if *at <= now => Ok(self.pending.pop_front().map(|(_, p)| p)),
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_arrive_when_due_one_per_poll() {
        let mut s = SimQrScanner::new();
        s.scan_at(Millis(10), b"one".to_vec())
            .scan_at(Millis(10), b"two".to_vec());
        assert_eq!(s.poll(Millis(9)), Ok(None));
        assert_eq!(s.poll(Millis(10)), Ok(Some(b"one".to_vec())));
        assert_eq!(s.poll(Millis(11)), Ok(Some(b"two".to_vec())));
        assert_eq!(s.poll(Millis(12)), Ok(None));
    }
}
