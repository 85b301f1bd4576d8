//! Shared helpers for the cross-crate scenario tests in `tests/tests/`, and the reference intake
//! receiver ([`intake`]) the upload tests deliver to.
//!
//! This crate has no product code; it exists so the scenarios can live beside their fixtures.

pub mod intake;
pub mod pipeline;

use std::path::PathBuf;

/// The repository root (the workspace directory).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// `tests/fixtures/` in the repository.
pub fn fixtures() -> PathBuf {
    repo_root().join("tests").join("fixtures")
}
