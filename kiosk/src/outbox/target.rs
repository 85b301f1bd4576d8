//! What the uploader delivers jobs to, and how a failed delivery is classified.
//!
//! A target stores one job idempotently under its job id and proves it by reading it back; the
//! uploader only needs to know whether it worked, whether trying again may help (and when), or
//! whether only an operator can help. It does not decide backoff or touch the database.

use std::io::{self, Read};
use std::time::Duration;

use crate::store::Job;

/// A successful delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// The target had not seen this job; it is stored now and verified.
    Created,
    /// The target already held this job with the same content (an earlier attempt got through but
    /// its acknowledgement was lost); verified.
    AlreadyStored,
}

/// Why a delivery failed.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// Worth trying again later: network errors, timeouts, 5xx, 429, a read-back that did not match
    /// yet. `retry_after` is the server's hint in seconds, if it gave one.
    #[error("transient: {reason}")]
    Transient {
        /// For the log and `last_error`.
        reason: String,
        /// The server's Retry-After, in seconds.
        retry_after: Option<u64>,
    },
    /// Trying again cannot help: the server holds different content under this job id (409), the
    /// request is refused as malformed or unauthorised, or a local file is missing or altered.
    #[error("permanent: {0}")]
    Permanent(String),
}

impl DeliveryError {
    /// A transient error without a server hint.
    pub fn transient(reason: impl Into<String>) -> DeliveryError {
        DeliveryError::Transient {
            reason: reason.into(),
            retry_after: None,
        }
    }
}

/// Where jobs go.
pub trait Target: Send + Sync {
    /// Stores `job` (its files and a manifest) under its id, idempotently, and verifies it by reading
    /// back sizes and hashes. Request bodies are read through `throttle`.
    fn deliver(&self, job: &Job, throttle: &Throttle) -> Result<Delivery, DeliveryError>;
}

/// A bandwidth cap for request bodies. Sleeps after each chunk for as long as that chunk should take
/// at the cap, ignoring the time the send itself took, so the rate only errs on the low side; and it
/// needs no clock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Throttle {
    /// Bytes per second; `None` for no cap.
    pub bytes_per_sec: Option<u64>,
}

impl Throttle {
    /// Wraps a body reader.
    pub fn reader<R: Read>(&self, inner: R) -> ThrottledReader<R> {
        ThrottledReader {
            inner,
            bytes_per_sec: self.bytes_per_sec.filter(|&b| b > 0),
        }
    }
}

/// A reader that sleeps to hold a rate; see [`Throttle`].
#[derive(Debug)]
pub struct ThrottledReader<R> {
    inner: R,
    bytes_per_sec: Option<u64>,
}

/// Small chunks keep the rate smooth at low caps (a kiosk on a shared campus uplink).
const THROTTLE_CHUNK: usize = 16 * 1024;

impl<R: Read> Read for ThrottledReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(rate) = self.bytes_per_sec else {
            return self.inner.read(buf);
        };
        let len = buf.len().min(THROTTLE_CHUNK);
        let n = self.inner.read(&mut buf[..len])?;
        if n > 0 {
            std::thread::sleep(Duration::from_micros(n as u64 * 1_000_000 / rate));
        }
        Ok(n)
    }
}
