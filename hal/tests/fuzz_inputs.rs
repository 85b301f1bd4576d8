//! Bounded-time property tests: random frames and random serial bytes never panic a decoder or a
//! driver, and the drivers' answers stay within their contracts. Each property runs a fixed number
//! of cases with small inputs, so the file takes seconds.

use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

use hal::drivers::camera::decode_mjpeg;
use hal::drivers::{ModbusConfig, ModbusMaster, SerialScanner};
use hal::modbus::{self, Request};
use hal::sim::{ControllerCore, SimSeatConfig};
use hal::{LineAssembler, Millis, QrSource};
use image::GrayImage;
use proptest::prelude::*;
use serialport::TTYPort;

static PAIR: Mutex<()> = Mutex::new(());

fn pair() -> (TTYPort, TTYPort) {
    let _g = PAIR.lock().unwrap_or_else(|p| p.into_inner());
    TTYPort::pair().expect("pty pair")
}

/// A frame from a seed: noise, stripes, blocks or a flat field, so the detector sees both chaos
/// and the regular structure that makes it look for finder patterns.
fn frame(w: u32, h: u32, kind: u8, seed: u64) -> GrayImage {
    let mut s = seed | 1;
    GrayImage::from_fn(w, h, |x, y| {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        let v = match kind % 4 {
            0 => (s >> 56) as u8,
            1 => {
                if (x / (1 + (seed as u32 % 7))).is_multiple_of(2) {
                    0
                } else {
                    255
                }
            }
            2 => {
                if ((x / 5) ^ (y / 5)) & 1 == 0 && (s >> 60) != 0 {
                    0
                } else {
                    255
                }
            }
            _ => seed as u8,
        };
        image::Luma([v])
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_frames_never_panic_the_qr_decoder(w in 0u32..320, h in 0u32..320, kind in any::<u8>(), seed in any::<u64>()) {
        let img = frame(w, h, kind, seed);
        let r = hal::qr::decode_report(&img);
        prop_assert_eq!(r.panics, 0);
    }

    #[test]
    fn random_bytes_never_panic_the_mjpeg_decoder(mut bytes in proptest::collection::vec(any::<u8>(), 0..2048), jpeg_header in any::<bool>()) {
        if jpeg_header && bytes.len() >= 2 {
            bytes[0] = 0xFF;
            bytes[1] = 0xD8;
        }
        let _ = decode_mjpeg(&bytes);
    }

    #[test]
    fn random_bytes_never_panic_the_controller_or_the_line_framing(
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 1..20),
    ) {
        let mut core = ControllerCore::new(1, SimSeatConfig::default());
        let mut lines = LineAssembler::new(32);
        for (i, c) in chunks.iter().enumerate() {
            if let Some(answer) = core.handle(c, Millis(i as u64 * 10)) {
                // Whatever the controller answers is a well-formed frame.
                prop_assert!(modbus::crc_ok(&answer));
            }
            for l in lines.push(c) {
                prop_assert!(!l.is_empty() && l.len() <= 32);
            }
        }
    }
}

/// The real master against a peer that answers every request with random bytes: every call
/// returns (an error) within its retry budget, and nothing panics.
#[test]
fn the_modbus_master_survives_a_peer_that_speaks_garbage() {
    let (mut peer, port) = pair();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let noise = std::thread::spawn(move || {
        let mut s = 0x9E37_79B9_7F4A_7C15u64;
        let _ = serialport::SerialPort::set_timeout(&mut peer, Duration::from_millis(5));
        let mut buf = [0u8; 256];
        while !stop2.load(std::sync::atomic::Ordering::SeqCst) {
            let _ = std::io::Read::read(&mut peer, &mut buf);
            let n = (s % 40) as usize;
            let junk: Vec<u8> = (0..n)
                .map(|_| {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    (s >> 56) as u8
                })
                .collect();
            let _ = peer.write_all(&junk);
        }
    });
    let mut m = ModbusMaster::from_port(
        Box::new(port),
        ModbusConfig {
            slave: 1,
            timeout: Duration::from_millis(15),
            retries: 1,
        },
    )
    .expect("port");
    for i in 0..40u16 {
        let r = if i % 2 == 0 {
            m.transact(&Request::ReadHolding {
                addr: modbus::reg::STATUS,
                count: 3,
            })
            .map(|_| ())
        } else {
            m.write_single(modbus::reg::SEAT_CMD, 0)
        };
        // Random bytes pass a CRC-16 check about once in 65536 tries: every call fails.
        assert!(r.is_err(), "call {i} accepted garbage");
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let _ = noise.join();
    let st = m.stats();
    assert!(st.garbled + st.timeouts >= 40, "{st:?}");
}

/// The scanner driver fed random bytes over a pty: lines only, bounded, no panic.
#[test]
fn the_scanner_survives_random_bytes() {
    let (mut peer, port) = pair();
    let mut s = SerialScanner::from_port(Box::new(port), 48);
    let mut x = 0x0123_4567_89ab_cdefu64;
    let mut lines = 0;
    for _ in 0..30 {
        let chunk: Vec<u8> = (0..200)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 56) as u8
            })
            .collect();
        peer.write_all(&chunk).expect("write");
        while let Ok(Some(l)) = s.poll(Millis(0)) {
            assert!(!l.is_empty() && l.len() <= 48);
            lines += 1;
        }
    }
    assert!(lines > 0, "random bytes contain CR/LF, so some lines come out");
}
