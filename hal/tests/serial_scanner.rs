//! The serial barcode scanner driver over a real pty: lines with any terminator, split across
//! writes, overlong lines dropped, binary bytes kept, never blocking, and an unplug reported as a
//! disconnect.

use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hal::drivers::SerialScanner;
use hal::{Error as _, ErrorKind, Millis, QrSource};
use serialport::{SerialPort, TTYPort};

static PAIR: Mutex<()> = Mutex::new(());

fn pair() -> (TTYPort, TTYPort) {
    let _g = PAIR.lock().unwrap_or_else(|p| p.into_inner());
    TTYPort::pair().expect("pty pair")
}

// Real time: the bytes travel through the kernel.
#[allow(clippy::disallowed_methods)]
fn poll_until(s: &mut SerialScanner, within: Duration) -> Option<Vec<u8>> {
    let t0 = Instant::now();
    while t0.elapsed() < within {
        if let Ok(Some(p)) = s.poll(Millis(0)) {
            return Some(p);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    None
}

#[test]
fn lines_come_out_one_per_poll_and_overlong_ones_are_dropped() {
    let (mut master, slave) = pair();
    let mut s = SerialScanner::from_port(Box::new(slave), 16);
    assert_eq!(s.poll(Millis(0)).ok(), Some(None), "nothing yet, no blocking");
    master.write_all(b"HC1:abc").expect("write");
    master.flush().expect("flush");
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(s.poll(Millis(0)).ok(), Some(None), "half a line is not a scan");
    master
        .write_all(b"def\r\nthis line is far too long for it\rok\n\xff\x00bin\r")
        .expect("write");
    assert_eq!(
        poll_until(&mut s, Duration::from_secs(1)),
        Some(b"HC1:abcdef".to_vec())
    );
    assert_eq!(poll_until(&mut s, Duration::from_secs(1)), Some(b"ok".to_vec()));
    assert_eq!(
        poll_until(&mut s, Duration::from_secs(1)),
        Some(b"\xff\x00bin".to_vec())
    );
    assert_eq!(s.poll(Millis(0)).ok(), Some(None));
}

#[test]
#[allow(clippy::disallowed_methods)]
fn an_unplugged_scanner_is_a_disconnect_and_never_blocks() {
    let (master, slave) = pair();
    let mut s = SerialScanner::from_port(Box::new(slave), 64);
    drop(master);
    let t0 = Instant::now();
    let mut kinds = Vec::new();
    for _ in 0..3 {
        kinds.push(s.poll(Millis(0)).map_err(|e| e.kind()));
    }
    assert!(t0.elapsed() < Duration::from_millis(200));
    assert_eq!(kinds, vec![Err(ErrorKind::Disconnected); 3]);
}

#[test]
fn a_missing_scanner_names_its_path() {
    let e = SerialScanner::open("/dev/ttyACM-no-such-scanner", 9600, 64).expect_err("missing");
    assert_eq!(e.kind(), ErrorKind::Disconnected);
    assert!(e.to_string().contains("/dev/ttyACM-no-such-scanner"), "{e}");
}

#[test]
fn random_bytes_never_panic_the_scanner() {
    let (mut master, slave) = pair();
    let mut s = SerialScanner::from_port(Box::new(slave), 128);
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..50 {
        let chunk: Vec<u8> = (0..97)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 56) as u8
            })
            .collect();
        master.write_all(&chunk).expect("write");
        while let Ok(Some(line)) = s.poll(Millis(0)) {
            assert!(!line.is_empty() && line.len() <= 128);
            assert!(!line.contains(&b'\r') && !line.contains(&b'\n'));
        }
    }
    let _ = master.bytes_to_read();
}
