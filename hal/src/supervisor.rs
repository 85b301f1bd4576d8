//! Device health from call results: up/down transitions and a technician hint per device.
//!
//! The shell feeds every device call's result to [`Supervisor::record`]; the supervisor answers
//! with a [`DeviceEvent`] only when a device changes state, which the shell turns into a session
//! input (e.g. "camera lost" on the screen). Pure and clock-free. Deliberately does not retry,
//! reconnect or sleep: deciding when to call `reconnect` is the shell's job.

use crate::{Error, ErrorKind};

/// The devices the kiosk supervises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeviceId {
    /// The camera.
    Camera,
    /// The seat lift.
    Seat,
    /// The lights.
    Lights,
    /// The seat buttons and service key.
    Buttons,
    /// A serial QR scanner (camera-decoded QR is part of the camera).
    QrScanner,
}

impl DeviceId {
    /// Every device, in a fixed order.
    pub const ALL: [DeviceId; 5] = [
        DeviceId::Camera,
        DeviceId::Seat,
        DeviceId::Lights,
        DeviceId::Buttons,
        DeviceId::QrScanner,
    ];

    /// A stable lower-case name for logs and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceId::Camera => "camera",
            DeviceId::Seat => "seat",
            DeviceId::Lights => "lights",
            DeviceId::Buttons => "buttons",
            DeviceId::QrScanner => "qr_scanner",
        }
    }

    fn index(self) -> usize {
        match self {
            DeviceId::Camera => 0,
            DeviceId::Seat => 1,
            DeviceId::Lights => 2,
            DeviceId::Buttons => 3,
            DeviceId::QrScanner => 4,
        }
    }
}

/// A change of a device's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceEvent {
    /// The device stopped working; `kind` is the error that decided it.
    Down {
        /// Which device.
        device: DeviceId,
        /// Why.
        kind: ErrorKind,
    },
    /// The device works again.
    Up {
        /// Which device.
        device: DeviceId,
    },
}

/// A device's health as the supervisor sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Health {
    /// Working (or not yet known to fail: devices start up).
    Up,
    /// Not working since an error of this kind.
    Down(ErrorKind),
}

/// How forgiving the supervisor is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SupervisorConfig {
    /// Transient errors (timeouts, dropped frames) in a row before a device is reported down.
    /// A permanent error (disconnected, fault) reports it down at once.
    pub transient_errors_before_down: u32,
}

impl Default for SupervisorConfig {
    /// Three in a row: a camera dropping the odd frame stays up, one that stops delivering is
    /// reported within a tenth of a second at preview rate.
    fn default() -> Self {
        SupervisorConfig {
            transient_errors_before_down: 3,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Track {
    health: Health,
    consecutive_errors: u32,
}

/// Tracks every device's health from its call results.
#[derive(Debug, Clone)]
pub struct Supervisor {
    config: SupervisorConfig,
    tracks: [Track; 5],
}

impl Default for Supervisor {
    fn default() -> Self {
        Supervisor::new(SupervisorConfig::default())
    }
}

impl Supervisor {
    /// A supervisor that assumes every device up, so that a healthy start emits nothing.
    pub fn new(config: SupervisorConfig) -> Supervisor {
        Supervisor {
            config,
            tracks: [Track {
                health: Health::Up,
                consecutive_errors: 0,
            }; 5],
        }
    }

    /// Records a call result; returns the transition it caused, if any.
    pub fn record<T, E: Error>(&mut self, device: DeviceId, result: &Result<T, E>) -> Option<DeviceEvent> {
        self.observe(device, result.as_ref().map(|_| ()).map_err(Error::kind))
    }

    /// Records an outcome reduced to its error kind; returns the transition it caused, if any.
    ///
    /// Caller errors (`LimitReached`, `InvalidInput`) change nothing: the device answered, the
    /// request was wrong, and a seat at its top limit must not be reported broken.
    pub fn observe(&mut self, device: DeviceId, outcome: Result<(), ErrorKind>) -> Option<DeviceEvent> {
        let threshold = self.config.transient_errors_before_down.max(1);
        let track = &mut self.tracks[device.index()];
        match outcome {
            Ok(()) => {
                track.consecutive_errors = 0;
                if let Health::Down(_) = track.health {
                    track.health = Health::Up;
                    return Some(DeviceEvent::Up { device });
                }
                None
            }
            Err(kind) if kind.is_caller_error() => None,
            Err(kind) => {
                track.consecutive_errors = track.consecutive_errors.saturating_add(1);
                let down = !kind.is_transient() || track.consecutive_errors >= threshold;
                if down && track.health == Health::Up {
                    track.health = Health::Down(kind);
                    tracing::warn!(device = device.as_str(), kind = kind.as_str(), "device down");
                    return Some(DeviceEvent::Down { device, kind });
                }
                None
            }
        }
    }

    /// The device's current health.
    pub fn health(&self, device: DeviceId) -> Health {
        self.tracks[device.index()].health
    }

    /// Whether the device is up.
    pub fn is_up(&self, device: DeviceId) -> bool {
        self.health(device) == Health::Up
    }
}

/// A short instruction for the campus technician, in Chinese and English.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TechnicianHint {
    /// Chinese.
    pub zh: &'static str,
    /// English.
    pub en: &'static str,
}

/// A short text in Chinese and English, built at run time.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Bilingual {
    /// Chinese.
    pub zh: String,
    /// English.
    pub en: String,
}

/// What happened, for the screen and the log: e.g. "摄像头已断开" / "camera disconnected".
/// The session's `DeviceFault` carries this as its reason and [`hint`] as its hint.
pub fn reason(device: DeviceId, kind: ErrorKind) -> Bilingual {
    let (dev_zh, dev_en) = match device {
        DeviceId::Camera => ("摄像头", "camera"),
        DeviceId::Seat => ("座椅升降", "seat lift"),
        DeviceId::Lights => ("灯光", "lights"),
        DeviceId::Buttons => ("按钮", "buttons"),
        DeviceId::QrScanner => ("扫码器", "barcode scanner"),
    };
    let (what_zh, what_en) = match kind {
        ErrorKind::Disconnected => ("已断开", "disconnected"),
        ErrorKind::Timeout => ("无响应", "not responding"),
        ErrorKind::Busy => ("忙", "busy"),
        ErrorKind::LimitReached => ("已到限位", "at its limit"),
        ErrorKind::Fault => ("故障", "fault"),
        ErrorKind::InvalidInput => ("请求无效", "invalid request"),
        ErrorKind::Other => ("异常", "error"),
    };
    Bilingual {
        zh: format!("{dev_zh}{what_zh}"),
        en: format!("{dev_en} {what_en}"),
    }
}

/// What a technician should check when `device` is down with `kind`.
pub fn hint(device: DeviceId, kind: ErrorKind) -> TechnicianHint {
    let h = |zh, en| TechnicianHint { zh, en };
    let fault = kind == ErrorKind::Fault;
    match device {
        DeviceId::Camera if fault => h(
            "摄像头工作异常，请重新插拔摄像头或重启设备",
            "The camera misbehaves: replug it or restart the kiosk",
        ),
        DeviceId::Camera => h("检查摄像头USB线是否松动", "Check the camera's USB cable"),
        DeviceId::Seat if fault => h(
            "座椅升降故障：检查电机、限位开关，清除座椅下的障碍物",
            "Seat lift fault: check the motor and limit switches, clear anything under the seat",
        ),
        DeviceId::Seat => h(
            "检查座椅控制器的电源和连接线",
            "Check the seat controller's power and cable",
        ),
        DeviceId::Lights if fault => h(
            "灯光故障：检查灯具和调光电源",
            "Light fault: check the lamps and their dimmer supply",
        ),
        DeviceId::Lights => h(
            "检查灯光控制器的电源和连接线",
            "Check the light controller's power and cable",
        ),
        DeviceId::Buttons => h(
            "检查座椅按钮和服务钥匙开关的接线",
            "Check the wiring of the seat buttons and the service key switch",
        ),
        DeviceId::QrScanner => h("检查扫码器USB线是否松动", "Check the barcode scanner's USB cable"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_errors_take_the_threshold_to_go_down() {
        let mut s = Supervisor::default();
        let cam = DeviceId::Camera;
        assert_eq!(s.observe(cam, Err(ErrorKind::Timeout)), None);
        assert_eq!(s.observe(cam, Err(ErrorKind::Timeout)), None);
        assert_eq!(
            s.observe(cam, Err(ErrorKind::Timeout)),
            Some(DeviceEvent::Down {
                device: cam,
                kind: ErrorKind::Timeout
            })
        );
        // Already down: no repeated event.
        assert_eq!(s.observe(cam, Err(ErrorKind::Disconnected)), None);
        assert_eq!(s.health(cam), Health::Down(ErrorKind::Timeout));
        assert_eq!(s.observe(cam, Ok(())), Some(DeviceEvent::Up { device: cam }));
        assert!(s.is_up(cam));
        assert_eq!(s.observe(cam, Ok(())), None);
    }

    #[test]
    fn a_success_resets_the_transient_count() {
        let mut s = Supervisor::default();
        let cam = DeviceId::Camera;
        for _ in 0..10 {
            assert_eq!(s.observe(cam, Err(ErrorKind::Timeout)), None);
            assert_eq!(s.observe(cam, Err(ErrorKind::Busy)), None);
            assert_eq!(s.observe(cam, Ok(())), None);
        }
    }

    #[test]
    fn permanent_error_goes_down_at_once_and_only_that_device() {
        let mut s = Supervisor::default();
        assert_eq!(
            s.record(DeviceId::Seat, &Err::<(), _>(ErrorKind::Fault)),
            Some(DeviceEvent::Down {
                device: DeviceId::Seat,
                kind: ErrorKind::Fault
            })
        );
        assert!(s.is_up(DeviceId::Camera));
        assert!(!s.is_up(DeviceId::Seat));
    }

    #[test]
    fn caller_errors_do_not_count() {
        let mut s = Supervisor::new(SupervisorConfig {
            transient_errors_before_down: 1,
        });
        assert_eq!(s.observe(DeviceId::Seat, Err(ErrorKind::LimitReached)), None);
        assert_eq!(s.observe(DeviceId::Seat, Err(ErrorKind::InvalidInput)), None);
        assert!(s.is_up(DeviceId::Seat));
    }

    #[test]
    fn every_device_has_a_hint_in_both_languages() {
        for d in DeviceId::ALL {
            for k in [ErrorKind::Disconnected, ErrorKind::Fault, ErrorKind::Timeout] {
                let h = hint(d, k);
                assert!(!h.zh.is_empty() && !h.en.is_empty());
            }
        }
        assert_eq!(
            hint(DeviceId::Camera, ErrorKind::Disconnected).zh,
            "检查摄像头USB线是否松动"
        );
        let r = reason(DeviceId::Seat, ErrorKind::Fault);
        assert_eq!(
            (r.zh.as_str(), r.en.as_str()),
            ("座椅升降故障", "seat lift fault")
        );
    }
}
