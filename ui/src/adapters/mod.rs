//! Adapters between the view models and the Slint globals (STYLE.md habit 10): `kiosk` for the
//! student's screens and the window chrome, `service` for service mode. Each has one `connect` that
//! turns the global's callbacks into [`crate::Intent`]s and an `apply` that writes a view into the
//! global. They run on the UI thread and decide nothing.

pub mod kiosk;
pub mod service;
