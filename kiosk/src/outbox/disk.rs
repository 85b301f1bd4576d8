//! Free space on the data file system, so the kiosk refuses a new session with a clear OutOfService
//! reason instead of failing in the middle of one (a consumed shot whose photo cannot be written).
//!
//! It only measures and compares; mapping a refusal onto the session's OutOfService screen is the
//! shell's job.

use std::path::Path;

/// Bytes available to an unprivileged writer on the file system holding `path`.
pub fn free_bytes(path: &Path) -> std::io::Result<u64> {
    let st = rustix::fs::statvfs(path)?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

/// Whether a new session may start: `Ok(None)` when at least `min_free_bytes` are free, otherwise
/// `Ok(Some(free))` with the bytes actually free, for the OutOfService reason and the operator log.
pub fn low_space(path: &Path, min_free_bytes: u64) -> std::io::Result<Option<u64>> {
    let free = free_bytes(path)?;
    Ok((free < min_free_bytes).then_some(free))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_compares_with_real_free_space() {
        let dir = tempfile::tempdir().unwrap();
        let free = free_bytes(dir.path()).unwrap();
        assert!(free > 0);
        assert_eq!(low_space(dir.path(), 0).unwrap(), None);
        assert!(low_space(dir.path(), u64::MAX).unwrap().is_some());
    }
}
