//! A Modbus RTU master over a serial port (RS-485 adapter or USB CDC): one request, one answer,
//! with a response timeout, retries, resynchronisation after garbage, and reopening after an
//! unplug.
//!
//! Frames come from [`crate::modbus`]. Bounded in time without reading a clock: every read waits
//! at most the port's timeout, an answer is at most [`crate::modbus::MAX_FRAME`] bytes, and a
//! request is tried `1 + retries` times, so one call takes at most about
//! `(1 + retries) * (timeout * frame bytes)` in the worst case of a trickling line, and
//! `(1 + retries) * timeout` when the controller is silent. Deliberately no queueing, no
//! broadcast and no thread: the seat and light drivers share one master behind a mutex.

use std::io::{self, Write};
use std::time::Duration;

use serialport::{ClearBuffer, SerialPort};
use thiserror::Error;

use crate::ErrorKind;
use crate::modbus::{self, FrameError, Request};

/// How the master talks to its controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModbusConfig {
    /// The controller's slave id (1-247).
    pub slave: u8,
    /// How long to wait for (each part of) an answer.
    pub timeout: Duration,
    /// Retries after a timeout, a CRC error or a garbled answer.
    pub retries: u8,
}

impl Default for ModbusConfig {
    /// 100 ms is several times the round trip of a 20-byte exchange at 9600 baud (about 25 ms
    /// with the controller's turnaround); two retries ride out a burst of line noise.
    fn default() -> Self {
        ModbusConfig {
            slave: 1,
            timeout: Duration::from_millis(100),
            retries: 2,
        }
    }
}

/// Why an exchange with the controller failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ModbusError {
    /// The port is gone (adapter unplugged, port closed): reopen it.
    #[error("serial port disconnected: {0}")]
    Disconnected(#[source] io::Error),
    /// The port could not be opened.
    #[error("cannot open {path}: {source}")]
    Open {
        /// The device path.
        path: String,
        /// Why.
        #[source]
        source: serialport::Error,
    },
    /// No complete answer within the timeout, on every try.
    #[error("controller did not answer ({tries} tries)")]
    Timeout {
        /// Tries made.
        tries: u8,
    },
    /// Answers arrived but were corrupt (CRC, wrong slave, mismatched) on every try.
    #[error("controller answers are garbled ({tries} tries): {last}")]
    Garbled {
        /// Tries made.
        tries: u8,
        /// The last framing error.
        last: FrameError,
    },
    /// The controller refused the request with an exception code.
    #[error("controller refused the request with exception {0}")]
    Exception(u8),
    /// The controller at this address is not a seat-and-lights controller of our map.
    #[error("device at slave id {slave} identifies as {ident:#06x}, not a kiosk controller")]
    WrongDevice {
        /// The slave id.
        slave: u8,
        /// What `IDENT` read.
        ident: u16,
    },
}

impl crate::Error for ModbusError {
    fn kind(&self) -> ErrorKind {
        match self {
            ModbusError::Disconnected(_) | ModbusError::Open { .. } => ErrorKind::Disconnected,
            ModbusError::Timeout { .. } => ErrorKind::Timeout,
            // A burst of noise is worth retrying; the supervisor reports it after a few in a row.
            ModbusError::Garbled { .. } => ErrorKind::Other,
            ModbusError::Exception(modbus::exception::SLAVE_DEVICE_BUSY) => ErrorKind::Busy,
            ModbusError::Exception(modbus::exception::SLAVE_DEVICE_FAILURE) => ErrorKind::Fault,
            ModbusError::Exception(_) => ErrorKind::InvalidInput,
            ModbusError::WrongDevice { .. } => ErrorKind::Fault,
        }
    }
}

/// Counters for the technician's self-test and the logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ModbusStats {
    /// Requests answered correctly.
    pub ok: u64,
    /// Tries that timed out.
    pub timeouts: u64,
    /// Tries whose answer was corrupt.
    pub garbled: u64,
    /// Times the port was reopened.
    pub reopened: u64,
}

/// A Modbus RTU master on one port.
pub struct ModbusMaster {
    port: Option<Box<dyn SerialPort>>,
    /// Where to reopen the port from; `None` for a port handed in (tests, a pty).
    path: Option<(String, u32)>,
    config: ModbusConfig,
    stats: ModbusStats,
}

impl std::fmt::Debug for ModbusMaster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModbusMaster")
            .field("path", &self.path)
            .field("open", &self.port.is_some())
            .field("config", &self.config)
            .field("stats", &self.stats)
            .finish()
    }
}

fn open_port(path: &str, baud: u32, timeout: Duration) -> Result<Box<dyn SerialPort>, ModbusError> {
    serialport::new(path, baud)
        // Modbus RTU's default framing: 8 data bits, even parity would be the standard's default,
        // but nearly every off-the-shelf controller ships 8N1; the controller's DIP switches say.
        .data_bits(serialport::DataBits::Eight)
        .parity(serialport::Parity::None)
        .stop_bits(serialport::StopBits::One)
        .flow_control(serialport::FlowControl::None)
        .timeout(timeout)
        .open()
        .map_err(|source| ModbusError::Open {
            path: path.to_owned(),
            source,
        })
}

impl ModbusMaster {
    /// Opens `path` at `baud` (8N1).
    pub fn open(path: &str, baud: u32, config: ModbusConfig) -> Result<ModbusMaster, ModbusError> {
        let port = open_port(path, baud, config.timeout)?;
        Ok(ModbusMaster {
            port: Some(port),
            path: Some((path.to_owned(), baud)),
            config,
            stats: ModbusStats::default(),
        })
    }

    /// Uses a port that is already open (a pty in tests). It cannot be reopened after a
    /// disconnect.
    pub fn from_port(
        mut port: Box<dyn SerialPort>,
        config: ModbusConfig,
    ) -> Result<ModbusMaster, ModbusError> {
        port.set_timeout(config.timeout)
            .map_err(|e| ModbusError::Disconnected(e.into()))?;
        Ok(ModbusMaster {
            port: Some(port),
            path: None,
            config,
            stats: ModbusStats::default(),
        })
    }

    /// The counters so far.
    pub fn stats(&self) -> ModbusStats {
        self.stats
    }

    /// The configuration.
    pub fn config(&self) -> &ModbusConfig {
        &self.config
    }

    /// Whether the port is open (it is closed after a disconnect until [`ModbusMaster::reopen`]).
    pub fn is_open(&self) -> bool {
        self.port.is_some()
    }

    /// Reopens the port by path after a disconnect (a USB adapter replugged).
    pub fn reopen(&mut self) -> Result<(), ModbusError> {
        let Some((path, baud)) = self.path.clone() else {
            return Err(ModbusError::Disconnected(io::Error::new(
                io::ErrorKind::NotConnected,
                "port was handed in and cannot be reopened",
            )));
        };
        self.port = Some(open_port(&path, baud, self.config.timeout)?);
        self.stats.reopened += 1;
        Ok(())
    }

    /// Reads `count` holding registers from `addr`.
    pub fn read_holding(&mut self, addr: u16, count: u16) -> Result<Vec<u16>, ModbusError> {
        self.transact(&Request::ReadHolding { addr, count })
    }

    /// Writes one register.
    pub fn write_single(&mut self, addr: u16, value: u16) -> Result<(), ModbusError> {
        self.transact(&Request::WriteSingle { addr, value }).map(|_| ())
    }

    /// Writes consecutive registers.
    pub fn write_multiple(&mut self, addr: u16, values: &[u16]) -> Result<(), ModbusError> {
        self.transact(&Request::WriteMultiple {
            addr,
            values: values.to_vec(),
        })
        .map(|_| ())
    }

    /// Sends `request` and waits for its answer, retrying timeouts and garbled answers.
    pub fn transact(&mut self, request: &Request) -> Result<Vec<u16>, ModbusError> {
        let frame = request.encode(self.config.slave);
        let tries = self.config.retries.saturating_add(1);
        let mut last_garble = None;
        for _ in 0..tries {
            match self.try_once(request, &frame) {
                Ok(regs) => {
                    self.stats.ok += 1;
                    return Ok(regs);
                }
                Err(Attempt::Io(e)) => {
                    // A closed port stays closed; the caller decides when to reopen.
                    self.port = None;
                    return Err(ModbusError::Disconnected(e));
                }
                Err(Attempt::Frame(FrameError::Exception(code))) => return Err(ModbusError::Exception(code)),
                Err(Attempt::Silent) => self.stats.timeouts += 1,
                Err(Attempt::Frame(e)) => {
                    self.stats.garbled += 1;
                    last_garble = Some(e);
                }
            }
        }
        Err(match last_garble {
            Some(last) => ModbusError::Garbled { tries, last },
            None => ModbusError::Timeout { tries },
        })
    }

    fn try_once(&mut self, request: &Request, frame: &[u8]) -> Result<Vec<u16>, Attempt> {
        let slave = self.config.slave;
        let port = self.port.as_mut().ok_or_else(|| {
            Attempt::Io(io::Error::new(
                io::ErrorKind::NotConnected,
                "port closed after a disconnect",
            ))
        })?;
        // Whatever arrived since the last exchange (noise, a late answer) is not ours.
        port.clear(ClearBuffer::Input)
            .map_err(|e| Attempt::Io(e.into()))?;
        port.write_all(frame).map_err(Attempt::from_io)?;
        port.flush().map_err(Attempt::from_io)?;
        let answer = read_answer(port.as_mut(), request.response_len())?;
        modbus::decode_response(slave, request, &answer).map_err(|e| {
            if !matches!(e, FrameError::Exception(_)) {
                // Let the rest of a garbled burst arrive and be discarded before the retry.
                drain(port.as_mut());
            }
            Attempt::Frame(e)
        })
    }
}

/// How one try ended when it did not succeed.
enum Attempt {
    Io(io::Error),
    Silent,
    Frame(FrameError),
}

impl Attempt {
    fn from_io(e: io::Error) -> Attempt {
        if e.kind() == io::ErrorKind::TimedOut {
            Attempt::Silent
        } else {
            Attempt::Io(e)
        }
    }
}

/// Reads an answer of `expected` bytes (or a 5-byte exception answer), stopping at the first
/// silence longer than the port timeout. End of file counts as a disconnect: a pty whose other
/// end closed and a USB adapter that vanished both read that way.
fn read_answer(port: &mut dyn SerialPort, expected: usize) -> Result<Vec<u8>, Attempt> {
    let mut buf = Vec::with_capacity(expected);
    let mut chunk = [0u8; modbus::MAX_FRAME];
    let mut need = expected.min(modbus::MAX_FRAME);
    while buf.len() < need {
        match port.read(&mut chunk[..need - buf.len()]) {
            Ok(0) => {
                return Err(Attempt::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "serial port closed",
                )));
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Attempt::Io(e)),
        }
        // An exception answer is shorter than the normal one: stop once it is complete.
        if buf.len() >= 2 && buf[1] & 0x80 != 0 {
            need = 5;
        }
    }
    match buf.len() {
        0 => Err(Attempt::Silent),
        n if n < need.min(expected) => Err(Attempt::Frame(FrameError::Short(n))),
        _ => Ok(buf),
    }
}

/// Discards input until the line has been quiet for one timeout, or a frame's worth has gone.
fn drain(port: &mut dyn SerialPort) {
    let mut chunk = [0u8; modbus::MAX_FRAME];
    for _ in 0..4 {
        match port.read(&mut chunk) {
            Ok(n) if n > 0 => continue,
            _ => break,
        }
    }
}
