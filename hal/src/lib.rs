//! Device traits for the kiosk and their simulated twins.
//!
//! Knows nothing of sessions, SQL or UI.

pub mod qr;
