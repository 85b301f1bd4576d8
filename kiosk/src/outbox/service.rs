//! The uploader service as one call: open what the configuration names and run until a flag is set.
//! Shared by the `kiosk-uploader` binary and the crash and fault tests' child processes, so the tests
//! kill exactly the code the service runs.
//!
//! It does not install signal handlers or read the clock: the caller passes the flag and `now`.

use std::sync::atomic::AtomicBool;

use super::config::{ConfigError, UploaderConfig};
use super::spool::{Spool, SpoolError};
use super::uploader::{UploadError, Uploader};
use crate::store::{Store, StoreError};

/// Why the service could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The database could not be opened.
    #[error("opening the store: {0}")]
    Store(#[from] StoreError),
    /// The spool directory could not be opened.
    #[error(transparent)]
    Spool(#[from] SpoolError),
    /// The uploader stopped with an error.
    #[error(transparent)]
    Upload(#[from] UploadError),
}

/// Opens the store, the target and the spool named by `config` and runs the uploader until `stop`.
pub fn run_configured(
    config: &UploaderConfig,
    stop: &AtomicBool,
    now: fn() -> i64,
) -> Result<(), ServiceError> {
    let store = Store::open(&config.store.path)?;
    let (target, what) = config.build_target()?;
    // The uploader only deletes from the spool; it holds no recipients.
    let spool = config
        .spool
        .as_ref()
        .map(|s| Spool::for_sweeping(s.dir.clone()))
        .transpose()?;
    let uploader = Uploader::new(&store, target.as_ref(), config.settings()?, spool.as_ref())?;
    tracing::info!(owner = uploader.owner(), target = %what, "uploader started");
    uploader.run(stop, now)?;
    Ok(())
}
