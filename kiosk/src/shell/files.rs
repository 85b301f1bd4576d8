//! Files the kiosk keeps between the shutter and the upload: the drafts (passing shots a student may
//! still choose, 草稿箱) and the spooled payload of a committed job.
//!
//! Both are sealed to the collection unit's key (`outbox::Spool`, age X25519) the moment they are
//! written: the kiosk cannot read a draft back, so a stolen SD card shows ciphertext only. A draft keeps
//! one plain file beside its sealed ones, the id of the spec it passed against (no personal data), so a
//! candidate from an earlier session is filed under the right spec. Every write is durable (file and
//! directory fsync) before the database row that points at it is committed, so a crash leaves at most
//! an orphan, never a row pointing at nothing.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::outbox::spool::{Spool, SpoolError};
use crate::store::JobFile;
use crate::ticket::TicketId;

/// The roles of a job's files.
pub const ROLE_STANDARDIZED: &str = "standardized";
pub const ROLE_ORIGINAL: &str = "original";
pub const ROLE_RECORD: &str = "record";
const ROLES: [&str; 3] = [ROLE_STANDARDIZED, ROLE_ORIGINAL, ROLE_RECORD];
const SPEC_FILE: &str = "spec";

/// Writes `bytes` to `path` and makes both the file and its directory entry durable.
pub fn write_durable(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    File::open(dir)?.sync_all()
}

/// Why a draft could not be kept or filed.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    #[error(transparent)]
    Seal(#[from] SpoolError),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> FilesError + '_ {
    move |source| FilesError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Sealed drafts under `<data>/drafts/` and committed jobs' payloads under `<data>/spool/`.
#[derive(Debug)]
pub struct Drafts {
    drafts: Spool,
    spool_dir: PathBuf,
}

fn key(ticket: &TicketId, shot_no: u8) -> String {
    format!("{ticket}-{shot_no}")
}

impl Drafts {
    /// `recipients`: the collection unit's age public keys ("age1...").
    pub fn new(data_dir: &Path, recipients: &[String]) -> Result<Drafts, FilesError> {
        let drafts = Spool::new(data_dir.join("drafts"), recipients)?;
        let spool_dir = data_dir.join("spool");
        fs::create_dir_all(&spool_dir).map_err(io(&spool_dir))?;
        Ok(Drafts { drafts, spool_dir })
    }

    /// Where committed jobs' files go (what the uploader's `[spool] dir` must name).
    pub fn spool_dir(&self) -> &Path {
        &self.spool_dir
    }

    /// Seals a passing shot's files until the student chooses it or the ticket is done.
    pub fn save(
        &self,
        ticket: &TicketId,
        shot_no: u8,
        spec: &str,
        files: &[(&str, &[u8])],
    ) -> Result<(), FilesError> {
        let k = key(ticket, shot_no);
        self.drafts.seal_job_files(&k, files)?;
        let spec_path = self.drafts.dir().join(&k).join(SPEC_FILE);
        write_durable(&spec_path, spec.as_bytes()).map_err(io(&spec_path))
    }

    /// The spec a draft passed against.
    pub fn spec_of(&self, ticket: &TicketId, shot_no: u8) -> Option<String> {
        fs::read_to_string(self.drafts.dir().join(key(ticket, shot_no)).join(SPEC_FILE)).ok()
    }

    /// Copies a draft's sealed files into the job spool (durably) and returns the outbox rows: path,
    /// sha256 and size of the sealed bytes, which is what the uploader sends and verifies.
    pub fn spool_draft(&self, ticket: &TicketId, shot_no: u8) -> Result<Vec<JobFile>, FilesError> {
        let k = key(ticket, shot_no);
        let (from, to) = (self.drafts.dir().join(&k), self.spool_dir.join(&k));
        ROLES
            .iter()
            .map(|role| {
                let name = format!("{role}.age");
                let src = from.join(&name);
                let sealed = fs::read(&src).map_err(io(&src))?;
                let dst = to.join(&name);
                write_durable(&dst, &sealed).map_err(io(&dst))?;
                Ok(JobFile {
                    role: role.to_string(),
                    path: dst,
                    sha256: hex::encode(Sha256::digest(&sealed)),
                    size: sealed.len() as u64,
                })
            })
            .collect()
    }

    /// Drops every draft of a ticket once its job is committed.
    pub fn remove_ticket(&self, ticket: &TicketId) -> std::io::Result<()> {
        let prefix = format!("{ticket}-");
        for entry in fs::read_dir(self.drafts.dir())? {
            let entry = entry?;
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                fs::remove_dir_all(entry.path())?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recipient() -> String {
        age::x25519::Identity::generate().to_public().to_string()
    }

    #[test]
    fn drafts_are_sealed_and_spooled_with_the_hash_of_the_sealed_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let drafts = Drafts::new(dir.path(), &[recipient()]).unwrap();
        let t = TicketId([7; 16]);
        let jpeg = b"\xff\xd8\xff\xe0 a photo".as_slice();
        drafts
            .save(
                &t,
                2,
                "chsi-graduate",
                &[
                    (ROLE_STANDARDIZED, jpeg),
                    (ROLE_ORIGINAL, jpeg),
                    (ROLE_RECORD, b"{}"),
                ],
            )
            .unwrap();
        assert_eq!(drafts.spec_of(&t, 2).as_deref(), Some("chsi-graduate"));
        let rows = drafts.spool_draft(&t, 2).unwrap();
        assert_eq!(rows.len(), 3);
        for row in &rows {
            let bytes = fs::read(&row.path).unwrap();
            assert!(row.path.starts_with(drafts.spool_dir()));
            assert_eq!(row.sha256, hex::encode(Sha256::digest(&bytes)));
            assert!(
                !bytes.windows(4).any(|w| w == b"\xff\xd8\xff\xe0"),
                "no JPEG in clear"
            );
        }
        drafts.remove_ticket(&t).unwrap();
        assert!(drafts.spool_draft(&t, 2).is_err(), "the draft is gone");
        assert!(rows.iter().all(|r| r.path.exists()), "the job's files stay");
    }
}
