//! systemd's notification protocol (`sd_notify(3)`), the few messages the kiosk sends: `READY=1` once
//! the database is open and the first frame was handled, `WATCHDOG=1` from the main loop, `STATUS=` for
//! `systemctl status`, `STOPPING=1`.
//!
//! A datagram to the `AF_UNIX` socket named by `NOTIFY_SOCKET` (a path, or `@name` for the abstract
//! namespace) is the whole protocol, so this is a few lines of std instead of a dependency.
//!
//! What it deliberately does not do: ping the watchdog on its own (no timer thread). Pings come only
//! from the main loop through [`Watchdog::due`], so a stalled loop stops them and systemd restarts the
//! kiosk; a helper thread would keep a hung kiosk looking alive.

use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Where notifications go; `None` inside when not run by systemd (every send is then a no-op).
#[derive(Debug)]
pub struct Notifier {
    target: Option<(UnixDatagram, SocketAddr)>,
}

impl Notifier {
    /// A notifier for `NOTIFY_SOCKET`, if set. An unusable socket is an error: a unit declared
    /// `Type=notify` would otherwise time out with no hint why.
    pub fn from_env() -> io::Result<Notifier> {
        match std::env::var_os("NOTIFY_SOCKET") {
            Some(s) if !s.is_empty() => Notifier::to_socket(&s.to_string_lossy()),
            _ => Ok(Notifier::disabled()),
        }
    }

    /// A notifier that sends nothing.
    pub fn disabled() -> Notifier {
        Notifier { target: None }
    }

    /// A notifier for an explicit socket name (as `NOTIFY_SOCKET` spells it).
    pub fn to_socket(name: &str) -> io::Result<Notifier> {
        let addr = if let Some(abstract_name) = name.strip_prefix('@') {
            use std::os::linux::net::SocketAddrExt;
            SocketAddr::from_abstract_name(abstract_name.as_bytes())?
        } else {
            SocketAddr::from_pathname(PathBuf::from(name))?
        };
        let sock = UnixDatagram::unbound()?;
        Ok(Notifier {
            target: Some((sock, addr)),
        })
    }

    /// Whether messages go anywhere.
    pub fn enabled(&self) -> bool {
        self.target.is_some()
    }

    /// Sends one message (`KEY=value` lines).
    pub fn send(&self, message: &str) -> io::Result<()> {
        match &self.target {
            Some((sock, addr)) => sock.send_to_addr(message.as_bytes(), addr).map(|_| ()),
            None => Ok(()),
        }
    }

    pub fn ready(&self, status: &str) -> io::Result<()> {
        self.send(&format!("READY=1\nSTATUS={}", one_line(status)))
    }

    pub fn status(&self, status: &str) -> io::Result<()> {
        self.send(&format!("STATUS={}", one_line(status)))
    }

    pub fn watchdog(&self) -> io::Result<()> {
        self.send("WATCHDOG=1")
    }

    pub fn stopping(&self) -> io::Result<()> {
        self.send("STOPPING=1")
    }
}

fn one_line(s: &str) -> String {
    s.replace('\n', " ")
}

/// When the main loop owes systemd a `WATCHDOG=1`.
///
/// Pings every half of `WatchdogSec` (the man page's advice), so one late loop iteration is tolerated
/// and a loop stalled for longer than that is not.
#[derive(Debug, Clone)]
pub struct Watchdog {
    every: Option<Duration>,
    last: Option<Instant>,
}

impl Watchdog {
    /// The watchdog systemd asked for: `WATCHDOG_USEC`, honoured only when `WATCHDOG_PID` is unset or
    /// is this process (the variables may be inherited by a child that is not the service).
    pub fn from_env() -> Watchdog {
        let pid_ok = std::env::var("WATCHDOG_PID")
            .ok()
            .is_none_or(|p| p.trim() == std::process::id().to_string());
        let usec = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|&u| u > 0 && pid_ok);
        Watchdog::with_timeout(usec.map(Duration::from_micros))
    }

    /// A watchdog with systemd's timeout `timeout` (`None`: no watchdog).
    pub fn with_timeout(timeout: Option<Duration>) -> Watchdog {
        Watchdog {
            every: timeout.map(|t| (t / 2).max(Duration::from_millis(1))),
            last: None,
        }
    }

    /// The ping interval, when a watchdog is armed.
    pub fn interval(&self) -> Option<Duration> {
        self.every
    }

    /// Whether a ping is due at `now`; if so, counts it as sent.
    pub fn due(&mut self, now: Instant) -> bool {
        let Some(every) = self.every else {
            return false;
        };
        if self.last.is_some_and(|l| now < l + every) {
            return false;
        }
        self.last = Some(now);
        true
    }

    /// When the next ping is due, so the loop wakes for it even with nothing else to do.
    pub fn next_due(&self, now: Instant) -> Option<Instant> {
        let every = self.every?;
        Some(self.last.map_or(now, |l| l + every))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_reach_a_path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let server = UnixDatagram::bind(&path).unwrap();
        let n = Notifier::to_socket(path.to_str().unwrap()).unwrap();
        n.ready("up\nand running").unwrap();
        n.watchdog().unwrap();
        let mut buf = [0u8; 256];
        let len = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1\nSTATUS=up and running");
        let len = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"WATCHDOG=1");
    }

    #[test]
    fn watchdog_pings_every_half_timeout() {
        let t0 = crate::clock::monotonic();
        let mut w = Watchdog::with_timeout(Some(Duration::from_secs(2)));
        assert!(w.due(t0));
        assert!(!w.due(t0 + Duration::from_millis(999)));
        assert!(w.due(t0 + Duration::from_millis(1000)));
        assert_eq!(
            w.next_due(t0 + Duration::from_millis(1000)),
            Some(t0 + Duration::from_millis(2000))
        );
        let mut off = Watchdog::with_timeout(None);
        assert!(!off.due(t0));
        assert_eq!(off.next_due(t0), None);
    }
}
