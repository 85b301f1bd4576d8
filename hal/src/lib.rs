//! Device traits for the kiosk (camera, seat, lights, buttons, QR source), their simulated twins
//! and fault injectors, and a supervisor that turns device results into up/down transitions.
//!
//! The traits are shaped like embedded-hal: every method is fallible, each implementation has an
//! associated error whose [`Error::kind`] maps to a small [`ErrorKind`], and no device detail
//! (V4L2 controls, GPIO pins, Modbus registers) leaks into the API. Time is always passed in as a
//! virtual [`Millis`]; nothing here reads the clock, so the simulated twins are deterministic.
//!
//! The real Linux drivers (serialport, rppal, nokhwa) are in [`drivers`], each behind a seam (a
//! serial port, a pin trait) that the tests replace with a pty or a scripted fake.
//! Knows nothing of sessions, SQL or UI.

pub mod buttons;
pub mod camera;
pub mod drivers;
pub mod error;
pub mod lights;
pub mod modbus;
pub mod qr;
pub mod qr_source;
pub mod seat;
pub mod sim;
pub mod supervisor;
pub mod time;

pub use buttons::{ButtonEvent, Buttons, Debouncer, Switch};
pub use camera::{Camera, Frame};
pub use error::{Error, ErrorKind};
pub use lights::{ChannelLevels, LightMode, LightTable, Lights};
pub use qr_source::{CameraQr, LineAssembler, QrDecoder, QrSource};
pub use seat::{Direction, Limit, Seat, SeatCommand, SeatFault, SeatStatus};
pub use supervisor::{
    Bilingual, DeviceEvent, DeviceId, Health, Supervisor, SupervisorConfig, TechnicianHint, hint, reason,
};
pub use time::Millis;
