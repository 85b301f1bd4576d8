//! The kiosk controller.
//!
//! - [`session`]: the pure session state machine (inputs in, effects out, no IO).
//! - [`ticket`]: the signed shooting ticket (layout, signing, offline verification).
//! - [`store`]: the kiosk's one SQLite database (tickets and shots, sessions, checks, outbox, audit).
//! - [`vision`]: on-device face detection, checks and standardization of the photo.
//! - [`devices`]: the `[devices]` config section and the factory that builds real or simulated devices.
//! - [`ops`]: operator API, logging, systemd notification.
//! - [`shell`]: the code that wires devices, store and UI to the session; the only place with IO.
//!
//! The binaries `kiosk` and `kioskctl` live in `src/bin/`.

pub mod clock;
pub mod config;
pub mod devices;
pub mod ops;
pub mod outbox;
pub mod runtime;
pub mod session;
pub mod shell;
pub mod store;
pub mod ticket;
pub mod vision;
