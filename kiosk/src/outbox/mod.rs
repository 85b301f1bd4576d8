//! The upload pipeline on the kiosk side (PRODUCT.md section 6): sealing a chosen photo's files to
//! the collection unit's key ([`Spool`]), and the uploader that drains the outbox into a target
//! ([`Uploader`], [`HttpsTarget`], [`S3Target`]), with backoff, a bandwidth cap, read-back verification and the
//! retention sweep; plus the free-space check that keeps the kiosk from starting a session it cannot
//! finish ([`disk`]).
//!
//! The outbox rows themselves and their state transitions are in [`crate::store`]. This module does
//! not depend on the shell or the session: the shell calls [`Spool::seal_job_files`] and
//! [`crate::store::Store::enqueue_and_complete`]; the `kiosk-uploader` binary runs [`Uploader::run`].

pub mod backoff;
pub mod config;
pub mod disk;
pub mod https;
pub mod s3;
pub mod service;
pub mod spool;
pub mod target;
pub mod uploader;

pub use backoff::Backoff;
pub use config::UploaderConfig;
pub use https::{HttpsSettings, HttpsTarget};
pub use s3::{S3Settings, S3Target};
pub use service::{ServiceError, run_configured};
pub use spool::{Spool, SpoolError};
pub use target::{Delivery, DeliveryError, Target, Throttle};
pub use uploader::{UploadError, UploadSettings, UploadStats, Uploader};
