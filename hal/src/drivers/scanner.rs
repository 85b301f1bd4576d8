//! A serial (USB CDC) barcode scanner that sends each scan as a line: [`SerialScanner`].
//!
//! `poll` never blocks: it reads only the bytes already waiting, frames them with
//! [`crate::LineAssembler`] (CR, LF or CRLF; overlong lines dropped whole, so a noisy port cannot
//! grow memory or pass on a truncated payload) and returns one payload per call. After an unplug it
//! reopens the port by path at most once per [`REOPEN_EVERY_MS`]. Deliberately no scanner
//! configuration commands (each brand has its own); scanners are set to "USB CDC, CR suffix" with
//! their setup barcodes, as `docs/technician.md` says.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::time::Duration;

use serialport::SerialPort;

use crate::{ErrorKind, LineAssembler, Millis, QrSource};

/// How often a poll may try to reopen a vanished scanner.
pub const REOPEN_EVERY_MS: u64 = 1000;
/// The longest line accepted by default: a signed ticket is a few hundred bytes.
pub const DEFAULT_MAX_LINE: usize = 1024;

/// Why the scanner failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScannerError {
    /// The port is gone or cannot be opened.
    #[error("barcode scanner {path}: {source}")]
    Disconnected {
        /// The device path ("(pty)" for a port handed in).
        path: String,
        /// Why.
        #[source]
        source: io::Error,
    },
}

impl crate::Error for ScannerError {
    fn kind(&self) -> ErrorKind {
        match self {
            ScannerError::Disconnected { .. } => ErrorKind::Disconnected,
        }
    }
}

/// A line-sending barcode scanner on a serial port.
pub struct SerialScanner {
    port: Option<Box<dyn SerialPort>>,
    path: Option<(String, u32)>,
    lines: LineAssembler,
    queue: VecDeque<Vec<u8>>,
    last_reopen: Option<Millis>,
}

impl std::fmt::Debug for SerialScanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SerialScanner")
            .field("path", &self.path)
            .field("open", &self.port.is_some())
            .field("queued", &self.queue.len())
            .finish()
    }
}

fn open_port(path: &str, baud: u32) -> Result<Box<dyn SerialPort>, ScannerError> {
    serialport::new(path, baud)
        .timeout(Duration::from_millis(1))
        .open()
        .map_err(|e| ScannerError::Disconnected {
            path: path.to_owned(),
            source: e.into(),
        })
}

impl SerialScanner {
    /// Opens the scanner at `path` (a USB CDC scanner ignores the baud rate; a TTL one does not).
    pub fn open(path: &str, baud: u32, max_line: usize) -> Result<SerialScanner, ScannerError> {
        Ok(SerialScanner {
            port: Some(open_port(path, baud)?),
            path: Some((path.to_owned(), baud)),
            lines: LineAssembler::new(max_line),
            queue: VecDeque::new(),
            last_reopen: None,
        })
    }

    /// Uses an open port (a pty in tests); it cannot be reopened.
    pub fn from_port(port: Box<dyn SerialPort>, max_line: usize) -> SerialScanner {
        SerialScanner {
            port: Some(port),
            path: None,
            lines: LineAssembler::new(max_line),
            queue: VecDeque::new(),
            last_reopen: None,
        }
    }

    fn name(&self) -> String {
        self.path
            .as_ref()
            .map_or_else(|| "(pty)".to_owned(), |(p, _)| p.clone())
    }

    fn disconnected(&mut self, source: io::Error) -> ScannerError {
        self.port = None;
        // Half a line from before the unplug must not be glued to the first after it.
        self.lines = LineAssembler::new(self.lines_max());
        ScannerError::Disconnected {
            path: self.name(),
            source,
        }
    }

    fn lines_max(&self) -> usize {
        self.lines.max_len()
    }

    fn read_waiting(&mut self) -> Result<(), ScannerError> {
        let Some(port) = self.port.as_mut() else {
            return Ok(());
        };
        let mut buf = [0u8; 512];
        // Bounded: at most 64 reads of what is already waiting, so a flooding port cannot keep
        // the caller here.
        for _ in 0..64 {
            let waiting = match port.bytes_to_read() {
                Ok(n) => n as usize,
                Err(e) => return Err(self.disconnected(e.into())),
            };
            if waiting == 0 {
                // A closed peer shows as "nothing waiting" and a read that fails at once.
                match port.read(&mut buf[..1]) {
                    Ok(0) => return Err(self.disconnected(io::ErrorKind::UnexpectedEof.into())),
                    Ok(n) => {
                        let lines = self.lines.push(&buf[..n]);
                        self.queue.extend(lines);
                        continue;
                    }
                    Err(e) if e.kind() == io::ErrorKind::TimedOut => return Ok(()),
                    Err(e) => return Err(self.disconnected(e)),
                }
            }
            let n = waiting.min(buf.len());
            match port.read(&mut buf[..n]) {
                Ok(0) => return Err(self.disconnected(io::ErrorKind::UnexpectedEof.into())),
                Ok(n) => {
                    let lines = self.lines.push(&buf[..n]);
                    self.queue.extend(lines);
                }
                Err(e) if e.kind() == io::ErrorKind::TimedOut => return Ok(()),
                Err(e) => return Err(self.disconnected(e)),
            }
        }
        Ok(())
    }
}

impl QrSource for SerialScanner {
    type Error = ScannerError;

    fn poll(&mut self, now: Millis) -> Result<Option<Vec<u8>>, ScannerError> {
        if let Some(line) = self.queue.pop_front() {
            return Ok(Some(line));
        }
        if self.port.is_none() {
            let Some((path, baud)) = self.path.clone() else {
                return Err(ScannerError::Disconnected {
                    path: self.name(),
                    source: io::Error::new(io::ErrorKind::NotConnected, "port closed"),
                });
            };
            if self.last_reopen.is_some_and(|t| now.since(t) < REOPEN_EVERY_MS) {
                return Err(ScannerError::Disconnected {
                    path,
                    source: io::Error::new(io::ErrorKind::NotConnected, "waiting to reopen"),
                });
            }
            self.last_reopen = Some(now);
            self.port = Some(open_port(&path, baud)?);
        }
        self.read_waiting()?;
        Ok(self.queue.pop_front())
    }
}
