//! Files the kiosk keeps between the shutter and the upload: the drafts (passing shots a student may
//! still choose, 草稿箱) and the spooled payload of a committed job.
//!
//! Every write is made durable (file and directory fsync) before the database row that points at it is
//! committed, so a crash leaves at most an orphan file, never a row pointing at nothing. Sealing the
//! payload to the collection unit's key is the upload pipeline's job and plugs in here.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::store::JobFile;
use crate::ticket::TicketId;

/// The roles of a job's files.
pub const ROLE_STANDARDIZED: &str = "standardized";
pub const ROLE_ORIGINAL: &str = "original";
pub const ROLE_RECORD: &str = "record";

/// File names inside a draft directory, by role.
fn draft_name(role: &str) -> &'static str {
    match role {
        ROLE_STANDARDIZED => "standardized.jpg",
        ROLE_ORIGINAL => "original.jpg",
        _ => "record.json",
    }
}

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

/// Where a ticket's drafts live.
#[derive(Clone, Debug)]
pub struct Drafts {
    root: PathBuf,
}

impl Drafts {
    pub fn new(data_dir: &Path) -> Drafts {
        Drafts {
            root: data_dir.join("drafts"),
        }
    }

    fn dir(&self, ticket: &TicketId, shot_no: u8) -> PathBuf {
        self.root.join(ticket.to_string()).join(format!("shot-{shot_no}"))
    }

    /// Keeps a passing shot's files until the student chooses or the ticket is done.
    pub fn save(&self, ticket: &TicketId, shot_no: u8, files: &[(&str, &[u8])]) -> std::io::Result<()> {
        let dir = self.dir(ticket, shot_no);
        for (role, bytes) in files {
            write_durable(&dir.join(draft_name(role)), bytes)?;
        }
        Ok(())
    }

    /// Reads a draft's files back, by role.
    pub fn load(&self, ticket: &TicketId, shot_no: u8) -> std::io::Result<Vec<(&'static str, Vec<u8>)>> {
        let dir = self.dir(ticket, shot_no);
        [ROLE_STANDARDIZED, ROLE_ORIGINAL, ROLE_RECORD]
            .into_iter()
            .map(|role| fs::read(dir.join(draft_name(role))).map(|b| (role, b)))
            .collect()
    }

    /// The spec a draft passed against, from its check record.
    pub fn spec_of(&self, ticket: &TicketId, shot_no: u8) -> Option<String> {
        let record = fs::read(self.dir(ticket, shot_no).join(draft_name(ROLE_RECORD))).ok()?;
        let value: serde_json::Value = serde_json::from_slice(&record).ok()?;
        value.get("spec")?.as_str().map(str::to_string)
    }

    /// Drops every draft of a ticket once its job is committed.
    pub fn remove_ticket(&self, ticket: &TicketId) -> std::io::Result<()> {
        match fs::remove_dir_all(self.root.join(ticket.to_string())) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }
}

/// Spools a job's payload: one durable file per role, with its sha256 and size for the outbox row.
pub fn spool_job(spool: &Path, job_key: &str, files: &[(&str, Vec<u8>)]) -> std::io::Result<Vec<JobFile>> {
    let dir = spool.join(job_key);
    files
        .iter()
        .map(|(role, bytes)| {
            let path = dir.join(draft_name(role));
            write_durable(&path, bytes)?;
            Ok(JobFile {
                role: role.to_string(),
                path,
                sha256: hex::encode(Sha256::digest(bytes)),
                size: bytes.len() as u64,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drafts_round_trip_and_spool_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let drafts = Drafts::new(dir.path());
        let t = TicketId([7; 16]);
        drafts
            .save(
                &t,
                2,
                &[
                    (ROLE_STANDARDIZED, b"std"),
                    (ROLE_ORIGINAL, b"orig"),
                    (ROLE_RECORD, b"{}"),
                ],
            )
            .unwrap();
        let files = drafts.load(&t, 2).unwrap();
        assert_eq!(files[0], (ROLE_STANDARDIZED, b"std".to_vec()));
        let spooled = spool_job(&dir.path().join("spool"), "job1", &files).unwrap();
        assert_eq!(spooled.len(), 3);
        assert_eq!(spooled[1].size, 4);
        assert_eq!(spooled[0].sha256, hex::encode(Sha256::digest(b"std")));
        assert_eq!(fs::read(&spooled[2].path).unwrap(), b"{}");
        drafts.remove_ticket(&t).unwrap();
        assert!(drafts.load(&t, 2).is_err());
        drafts.remove_ticket(&t).unwrap();
    }
}
