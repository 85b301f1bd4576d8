//! Modbus RTU framing and the register map of the seat-and-lights controller, as pure functions.
//!
//! The serial driver ([`crate::drivers::serial`]) and the simulated controller
//! ([`crate::sim::SimController`]) both build and parse frames here, so the two ends of the pty
//! agree by construction and the byte-level rules (CRC-16/MODBUS, exception responses, lengths)
//! are tested once, without a port. Only the three function codes the controller needs exist:
//! 0x03 read holding registers, 0x06 write single register, 0x10 write multiple registers.
//! Deliberately no IO, no timing (the 3.5-character silence is the port's business) and no
//! broadcast (a seat command must be acknowledged).
//!
//! The register map is documented for technicians in `docs/technician.md`; [`reg`] is its source.

use thiserror::Error;

/// The controller's holding registers. Addresses are zero-based on the wire.
pub mod reg {
    /// Seat command (read/write): [`super::SEAT_STOP`], [`super::SEAT_UP`], [`super::SEAT_DOWN`],
    /// [`super::SEAT_GO_TO`]. Writing `SEAT_STOP` also clears latched fault bits.
    pub const SEAT_CMD: u16 = 0;
    /// Target height in mm for `SEAT_GO_TO` (read/write).
    pub const SEAT_TARGET_MM: u16 = 1;
    /// The controller's own maximum run time, in tenths of a second (read/write). The kiosk
    /// writes its configured maximum at start so that the controller stops a run by itself even
    /// if the kiosk stops talking.
    pub const MAX_RUN_DS: u16 = 2;
    /// Communication watchdog in ms (read/write): with the seat moving and no valid request for
    /// this long, the controller stops the seat and sets [`super::FAULT_WATCHDOG`]. 0 disables it
    /// (the kiosk never writes 0).
    pub const WATCHDOG_MS: u16 = 3;
    /// Left key light level, permille (read/write).
    pub const LIGHT_KEY_LEFT: u16 = 16;
    /// Right key light level, permille (read/write).
    pub const LIGHT_KEY_RIGHT: u16 = 17;
    /// Background light level, permille (read/write).
    pub const LIGHT_BACKGROUND: u16 = 18;
    /// Status bits (read only): see `STATUS_*`.
    pub const STATUS: u16 = 32;
    /// Seat height above the bottom of travel in mm (read only; valid when
    /// [`super::STATUS_POSITION_VALID`] is set).
    pub const POSITION_MM: u16 = 33;
    /// Latched fault bits (read only): see `FAULT_*`; cleared by writing `SEAT_STOP`.
    pub const FAULTS: u16 = 34;
    /// Identification word (read only): [`super::IDENT_VALUE`].
    pub const IDENT: u16 = 35;
}

/// `SEAT_CMD` value: stop.
pub const SEAT_STOP: u16 = 0;
/// `SEAT_CMD` value: move up.
pub const SEAT_UP: u16 = 1;
/// `SEAT_CMD` value: move down.
pub const SEAT_DOWN: u16 = 2;
/// `SEAT_CMD` value: move to `SEAT_TARGET_MM` and stop there.
pub const SEAT_GO_TO: u16 = 3;

/// `STATUS` bit: the motor is driven upwards.
pub const STATUS_MOVING_UP: u16 = 1 << 0;
/// `STATUS` bit: the motor is driven downwards.
pub const STATUS_MOVING_DOWN: u16 = 1 << 1;
/// `STATUS` bit: the top limit switch is closed.
pub const STATUS_AT_TOP: u16 = 1 << 2;
/// `STATUS` bit: the bottom limit switch is closed.
pub const STATUS_AT_BOTTOM: u16 = 1 << 3;
/// `STATUS` bit: `POSITION_MM` holds a measured height.
pub const STATUS_POSITION_VALID: u16 = 1 << 4;

/// `FAULTS` bit: a run reached `MAX_RUN_DS` and the controller stopped it.
pub const FAULT_RUN_TIME: u16 = 1 << 0;
/// `FAULTS` bit: both limit switches read closed.
pub const FAULT_LIMIT_CONFLICT: u16 = 1 << 1;
/// `FAULTS` bit: motor overcurrent (stalled or blocked); the controller stopped it.
pub const FAULT_OVERCURRENT: u16 = 1 << 2;
/// `FAULTS` bit: the communication watchdog stopped the seat.
pub const FAULT_WATCHDOG: u16 = 1 << 3;
/// `FAULTS` bit: a lamp driver reports an open or shorted lamp.
pub const FAULT_LAMP: u16 = 1 << 4;

/// What `IDENT` reads on a compatible controller ("K1").
pub const IDENT_VALUE: u16 = 0x4B31;

/// Function code: read holding registers.
pub const FN_READ_HOLDING: u8 = 0x03;
/// Function code: write single register.
pub const FN_WRITE_SINGLE: u8 = 0x06;
/// Function code: write multiple registers.
pub const FN_WRITE_MULTIPLE: u8 = 0x10;

/// The longest RTU frame (Modbus application data unit).
pub const MAX_FRAME: usize = 256;

/// CRC-16/MODBUS (reflected polynomial 0xA001, initial 0xFFFF), sent low byte first.
pub fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &b in data {
        crc ^= u16::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xA001
            } else {
                crc >> 1
            };
        }
    }
    crc
}

/// Appends the CRC (low byte first) to a frame body.
pub fn seal(mut body: Vec<u8>) -> Vec<u8> {
    let crc = crc16(&body);
    body.extend_from_slice(&crc.to_le_bytes());
    body
}

/// Whether a whole frame (body and CRC) has a correct CRC.
pub fn crc_ok(frame: &[u8]) -> bool {
    frame.len() >= 4 && {
        let (body, crc) = frame.split_at(frame.len() - 2);
        crc16(body).to_le_bytes() == [crc[0], crc[1]]
    }
}

/// A request the master sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Read `count` holding registers from `addr`.
    ReadHolding {
        /// First register.
        addr: u16,
        /// How many (1-125).
        count: u16,
    },
    /// Write one register.
    WriteSingle {
        /// The register.
        addr: u16,
        /// Its new value.
        value: u16,
    },
    /// Write consecutive registers from `addr`.
    WriteMultiple {
        /// First register.
        addr: u16,
        /// The values (1-123).
        values: Vec<u16>,
    },
}

impl Request {
    /// The function code on the wire.
    pub fn function(&self) -> u8 {
        match self {
            Request::ReadHolding { .. } => FN_READ_HOLDING,
            Request::WriteSingle { .. } => FN_WRITE_SINGLE,
            Request::WriteMultiple { .. } => FN_WRITE_MULTIPLE,
        }
    }

    /// The whole frame for `slave`, CRC included.
    pub fn encode(&self, slave: u8) -> Vec<u8> {
        let mut b = vec![slave, self.function()];
        match self {
            Request::ReadHolding { addr, count } => {
                b.extend_from_slice(&addr.to_be_bytes());
                b.extend_from_slice(&count.to_be_bytes());
            }
            Request::WriteSingle { addr, value } => {
                b.extend_from_slice(&addr.to_be_bytes());
                b.extend_from_slice(&value.to_be_bytes());
            }
            Request::WriteMultiple { addr, values } => {
                b.extend_from_slice(&addr.to_be_bytes());
                let n = u16::try_from(values.len()).unwrap_or(u16::MAX);
                b.extend_from_slice(&n.to_be_bytes());
                b.push(u8::try_from(values.len() * 2).unwrap_or(u8::MAX));
                for v in values {
                    b.extend_from_slice(&v.to_be_bytes());
                }
            }
        }
        seal(b)
    }

    /// The length of a normal (non-exception) response to this request.
    pub fn response_len(&self) -> usize {
        match self {
            Request::ReadHolding { count, .. } => 5 + 2 * usize::from(*count),
            Request::WriteSingle { .. } | Request::WriteMultiple { .. } => 8,
        }
    }

    /// Parses a request frame (the slave's side). `None` for anything malformed or unsupported
    /// with a bad CRC; a frame with a good CRC but an unknown function is [`ParsedRequest::Unsupported`].
    pub fn decode(frame: &[u8]) -> Option<(u8, ParsedRequest)> {
        if frame.len() < 4 || !crc_ok(frame) {
            return None;
        }
        let body = &frame[..frame.len() - 2];
        let slave = body[0];
        let f = body[1];
        let be = |i: usize| -> Option<u16> { Some(u16::from_be_bytes([*body.get(i)?, *body.get(i + 1)?])) };
        let parsed = match f {
            FN_READ_HOLDING if body.len() == 6 => ParsedRequest::Ok(Request::ReadHolding {
                addr: be(2)?,
                count: be(4)?,
            }),
            FN_WRITE_SINGLE if body.len() == 6 => ParsedRequest::Ok(Request::WriteSingle {
                addr: be(2)?,
                value: be(4)?,
            }),
            FN_WRITE_MULTIPLE if body.len() >= 7 => {
                let n = usize::from(be(4)?);
                if usize::from(body[6]) != n * 2 || body.len() != 7 + n * 2 {
                    return None;
                }
                let values = (0..n).map(|i| be(7 + 2 * i)).collect::<Option<Vec<_>>>()?;
                ParsedRequest::Ok(Request::WriteMultiple { addr: be(2)?, values })
            }
            FN_READ_HOLDING | FN_WRITE_SINGLE | FN_WRITE_MULTIPLE => return None,
            other => ParsedRequest::Unsupported(other),
        };
        Some((slave, parsed))
    }
}

/// A request as the slave sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParsedRequest {
    /// A request this map supports.
    Ok(Request),
    /// A well-formed frame with a function code this controller does not implement.
    Unsupported(u8),
}

/// Modbus exception codes a slave answers with.
pub mod exception {
    /// The function code is not supported.
    pub const ILLEGAL_FUNCTION: u8 = 1;
    /// The register address is not in the map.
    pub const ILLEGAL_DATA_ADDRESS: u8 = 2;
    /// The value is not allowed for that register.
    pub const ILLEGAL_DATA_VALUE: u8 = 3;
    /// The slave failed while doing it.
    pub const SLAVE_DEVICE_FAILURE: u8 = 4;
    /// The slave is busy; try again.
    pub const SLAVE_DEVICE_BUSY: u8 = 6;
}

/// The slave's answer for `request` with `registers` read (reads) or nothing (writes).
pub fn encode_response(slave: u8, request: &Request, registers: &[u16]) -> Vec<u8> {
    let mut b = vec![slave, request.function()];
    match request {
        Request::ReadHolding { .. } => {
            b.push(u8::try_from(registers.len() * 2).unwrap_or(u8::MAX));
            for r in registers {
                b.extend_from_slice(&r.to_be_bytes());
            }
        }
        Request::WriteSingle { addr, value } => {
            b.extend_from_slice(&addr.to_be_bytes());
            b.extend_from_slice(&value.to_be_bytes());
        }
        Request::WriteMultiple { addr, values } => {
            b.extend_from_slice(&addr.to_be_bytes());
            let n = u16::try_from(values.len()).unwrap_or(u16::MAX);
            b.extend_from_slice(&n.to_be_bytes());
        }
    }
    seal(b)
}

/// An exception answer.
pub fn encode_exception(slave: u8, function: u8, code: u8) -> Vec<u8> {
    seal(vec![slave, function | 0x80, code])
}

/// Why a response frame was not the answer to the request.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum FrameError {
    /// Fewer bytes than the shortest possible answer.
    #[error("response too short ({0} bytes)")]
    Short(usize),
    /// The CRC does not match: line noise or a collision.
    #[error("response CRC mismatch")]
    Crc,
    /// Another slave answered, or bytes from an older exchange.
    #[error("response from slave {got}, expected {expected}")]
    WrongSlave {
        /// Who answered.
        got: u8,
        /// Who was asked.
        expected: u8,
    },
    /// The answer does not match the request (function, address, count or echo).
    #[error("response does not match the request")]
    Mismatch,
    /// The slave refused with an exception code.
    #[error("controller exception {0}")]
    Exception(u8),
}

/// Checks a response frame against the request and returns the registers read (empty for writes).
pub fn decode_response(slave: u8, request: &Request, frame: &[u8]) -> Result<Vec<u16>, FrameError> {
    if frame.len() < 5 {
        return Err(FrameError::Short(frame.len()));
    }
    if !crc_ok(frame) {
        return Err(FrameError::Crc);
    }
    let body = &frame[..frame.len() - 2];
    if body[0] != slave {
        return Err(FrameError::WrongSlave {
            got: body[0],
            expected: slave,
        });
    }
    if body[1] == request.function() | 0x80 && body.len() == 3 {
        return Err(FrameError::Exception(body[2]));
    }
    if body[1] != request.function() || frame.len() != request.response_len() {
        return Err(FrameError::Mismatch);
    }
    match request {
        Request::ReadHolding { count, .. } => {
            if usize::from(body[2]) != 2 * usize::from(*count) {
                return Err(FrameError::Mismatch);
            }
            Ok(body[3..]
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect())
        }
        // Both write answers echo the request's first six bytes.
        Request::WriteSingle { .. } | Request::WriteMultiple { .. } => {
            if body[..6] != request.encode(slave)[..6] {
                return Err(FrameError::Mismatch);
            }
            Ok(Vec::new())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn crc_matches_the_specification_example() {
        // Modbus over serial line spec, appendix: 01 03 00 00 00 0A -> CRC C5 CD (low byte first).
        let f = Request::ReadHolding { addr: 0, count: 10 }.encode(1);
        assert_eq!(f, vec![0x01, 0x03, 0x00, 0x00, 0x00, 0x0A, 0xC5, 0xCD]);
        assert!(crc_ok(&f));
        let mut bad = f.clone();
        bad[3] ^= 1;
        assert!(!crc_ok(&bad));
    }

    #[test]
    fn requests_round_trip_and_responses_are_checked() {
        let reqs = [
            Request::ReadHolding { addr: 32, count: 3 },
            Request::WriteSingle { addr: 0, value: 2 },
            Request::WriteMultiple {
                addr: 16,
                values: vec![900, 900, 800],
            },
        ];
        for r in reqs {
            let f = r.encode(7);
            assert_eq!(Request::decode(&f), Some((7, ParsedRequest::Ok(r.clone()))));
            let regs: Vec<u16> = match &r {
                Request::ReadHolding { count, .. } => (0..*count).collect(),
                _ => vec![],
            };
            let resp = encode_response(7, &r, &regs);
            assert_eq!(resp.len(), r.response_len());
            assert_eq!(decode_response(7, &r, &resp), Ok(regs));
            assert_eq!(
                decode_response(8, &r, &resp),
                Err(FrameError::WrongSlave { got: 7, expected: 8 })
            );
            let exc = encode_exception(7, r.function(), exception::ILLEGAL_DATA_ADDRESS);
            assert_eq!(decode_response(7, &r, &exc), Err(FrameError::Exception(2)));
        }
        let r = Request::WriteSingle { addr: 0, value: 1 };
        let other = encode_response(7, &Request::WriteSingle { addr: 0, value: 2 }, &[]);
        assert_eq!(decode_response(7, &r, &other), Err(FrameError::Mismatch));
        assert_eq!(
            Request::decode(&seal(vec![7, 0x2B, 1, 2])),
            Some((7, ParsedRequest::Unsupported(0x2B)))
        );
    }

    proptest! {
        /// Arbitrary bytes never panic the parsers, and whatever `decode_response` accepts has a good CRC.
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = Request::decode(&bytes);
            for r in [Request::ReadHolding { addr: 32, count: 3 }, Request::WriteSingle { addr: 0, value: 0 }] {
                if decode_response(1, &r, &bytes).is_ok() {
                    prop_assert!(crc_ok(&bytes));
                }
            }
        }
    }
}
