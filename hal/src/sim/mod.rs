//! Simulated twins of every device and fault injectors that wrap any implementation.
//!
//! Everything here is deterministic on the caller's virtual timeline: the same script, the same
//! seed and the same sequence of `now` values give the same results, so the whole kiosk runs and
//! is tested on a laptop. The fault injectors are ordinary implementations of the same traits
//! (after smoltcp's `FaultInjector`), so they compose: `FaultyCamera<FaultyCamera<SimCamera>>`.
//! Deliberately no threads, sleeps or clock reads, except [`SimController`], which plays a serial
//! device in real time on a pty for the real driver's tests.

mod buttons;
mod camera;
mod controller;
mod fault;
mod lights;
mod qr;
mod rng;
mod seat;

pub use buttons::SimButtons;
pub use camera::{FrameScript, Phase, PreviewFit, SimCamera, SimCameraConfig, SimCameraError, fit_preview};
pub use controller::{ControllerCore, LineFaults, SimController};
pub use fault::{FaultyCamera, FaultySeat, InjectedError, StuckButton, Window};
pub use lights::SimLights;
pub use qr::SimQrScanner;
pub use rng::SplitMix64;
pub use seat::{SimSeat, SimSeatConfig, SimSeatError};
