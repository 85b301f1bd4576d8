//! The spool: where a chosen photo's files wait for upload, sealed with `age` to the collection unit's
//! X25519 public key(s) the moment they are written. The kiosk holds no identity, so once a file is
//! sealed nothing on the device can read it back: a stolen SD card shows ciphertext only (PIPL).
//!
//! A file is written to a temporary name, fsynced, renamed into place, and its directory fsynced, so
//! after a crash a job's path either holds the whole sealed file or nothing; the sha256 returned is of
//! the sealed bytes, which is what the uploader sends and the server verifies.
//!
//! What it deliberately does not do: keep plaintext anywhere (not even in a temporary file), decide
//! the job id (that is the store's), or delete files (the uploader's retention sweep does, once the
//! upload is confirmed). Key rotation is configuration: the recipients passed to `Spool::new`; files
//! already sealed stay readable by whichever key they were sealed to.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use sha2::{Digest, Sha256};

use crate::store::JobFile;

/// File name suffix of sealed files.
pub const SEALED_SUFFIX: &str = ".age";
const TMP_SUFFIX: &str = ".tmp";
/// A job key or role is a path component: short, and from a set that cannot escape the spool.
const MAX_NAME_LEN: usize = 64;

/// Errors from sealing.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// No recipient configured: sealing to nobody would make the photo unrecoverable.
    #[error("no recipient configured; refusing to seal to nobody")]
    NoRecipients,
    /// A configured recipient is not an age X25519 public key ("age1...").
    #[error("recipient {index} is not an age X25519 public key: {reason}")]
    BadRecipient {
        /// Its position in the configured list.
        index: usize,
        /// What the parser said.
        reason: String,
    },
    /// A job key or role is empty, too long, or has characters other than ASCII letters, digits,
    /// `-` and `_` (it becomes a path component).
    #[error("invalid {what} {value:?}: use 1-64 ASCII letters, digits, '-' or '_'")]
    BadName {
        /// "job key" or "role".
        what: &'static str,
        /// The value refused.
        value: String,
    },
    /// The same role twice in one job.
    #[error("role {0:?} given twice")]
    DuplicateRole(String),
    /// The file system failed (full disk, read-only mount, ...).
    #[error("spool I/O at {path}: {source}")]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// `age` refused to set up the encryption.
    #[error("age: {0}")]
    Encrypt(String),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Where sealed files go and to whom they are sealed.
pub struct Spool {
    dir: PathBuf,
    recipients: Vec<age::x25519::Recipient>,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool")
            .field("dir", &self.dir)
            .field("recipients", &self.recipients.len())
            .finish()
    }
}

fn check_name(what: &'static str, value: &str) -> Result<(), SpoolError> {
    let ok = !value.is_empty()
        && value.len() <= MAX_NAME_LEN
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(SpoolError::BadName {
            what,
            value: value.chars().take(MAX_NAME_LEN + 1).collect(),
        })
    }
}

/// Fsyncs a directory so a rename or create inside it survives power loss.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), SpoolError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err(dir))
}

/// A writer that hashes what passes through, so the sealed file is hashed without reading it back.
struct HashingWriter<W> {
    inner: W,
    hash: Sha256,
    len: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl Spool {
    /// A spool in `dir` (created if missing) sealing to every one of `recipients` (age X25519 public
    /// keys, "age1..."); any one of the matching identities can open the files. Several keys let a
    /// unit rotate: add the new key, and drop the old one once its holder no longer needs to decrypt.
    pub fn new(dir: PathBuf, recipients: &[String]) -> Result<Spool, SpoolError> {
        if recipients.is_empty() {
            return Err(SpoolError::NoRecipients);
        }
        let recipients = recipients
            .iter()
            .enumerate()
            .map(|(index, r)| {
                age::x25519::Recipient::from_str(r.trim()).map_err(|reason| SpoolError::BadRecipient {
                    index,
                    reason: reason.to_string(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        Ok(Spool { dir, recipients })
    }

    /// A spool that can only be swept, not sealed into (sealing answers `NoRecipients`): what the
    /// uploader needs to remove orphans, without holding the unit's keys in its configuration.
    pub fn for_sweeping(dir: PathBuf) -> Result<Spool, SpoolError> {
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        Ok(Spool {
            dir,
            recipients: Vec::new(),
        })
    }

    /// The spool directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Seals each `(role, payload)` into `<dir>/<job_key>/<role>.age` and returns the rows for
    /// [`crate::store::NewJob::files`] (path, sha256 and size of the sealed file). When this returns,
    /// the files and their directory entries are on disk (fsynced). Sealing the same job key again
    /// replaces the files (a retry after a failed commit).
    ///
    /// `job_key` names the job's directory; the shell uses the ticket id, which is already unique
    /// per job and pseudonymous. Roles are e.g. "standardized", "original", "record".
    pub fn seal_job_files(&self, job_key: &str, files: &[(&str, &[u8])]) -> Result<Vec<JobFile>, SpoolError> {
        if self.recipients.is_empty() {
            return Err(SpoolError::NoRecipients);
        }
        check_name("job key", job_key)?;
        for (i, (role, _)) in files.iter().enumerate() {
            check_name("role", role)?;
            if files[..i].iter().any(|(r, _)| r == role) {
                return Err(SpoolError::DuplicateRole((*role).to_string()));
            }
        }
        let job_dir = self.dir.join(job_key);
        let created = !job_dir.exists();
        fs::create_dir_all(&job_dir).map_err(io_err(&job_dir))?;
        if created {
            sync_dir(&self.dir)?;
        }
        let mut out = Vec::with_capacity(files.len());
        for (role, payload) in files {
            out.push(self.seal_one(&job_dir, role, payload)?);
        }
        // One directory fsync makes every rename above durable.
        sync_dir(&job_dir)?;
        Ok(out)
    }

    fn seal_one(&self, job_dir: &Path, role: &str, payload: &[u8]) -> Result<JobFile, SpoolError> {
        let path = job_dir.join(format!("{role}{SEALED_SUFFIX}"));
        let tmp = job_dir.join(format!("{role}{SEALED_SUFFIX}{TMP_SUFFIX}"));
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(io_err(&tmp))?;
        let encryptor =
            age::Encryptor::with_recipients(self.recipients.iter().map(|r| r as &dyn age::Recipient))
                .map_err(|e| SpoolError::Encrypt(e.to_string()))?;
        let hashing = HashingWriter {
            inner: io::BufWriter::new(file),
            hash: Sha256::new(),
            len: 0,
        };
        let mut writer = encryptor.wrap_output(hashing).map_err(io_err(&tmp))?;
        writer.write_all(payload).map_err(io_err(&tmp))?;
        let hashing = writer.finish().map_err(io_err(&tmp))?;
        let HashingWriter { inner, hash, len } = hashing;
        let file = inner.into_inner().map_err(|e| SpoolError::Io {
            path: tmp.clone(),
            source: e.into_error(),
        })?;
        file.sync_all().map_err(io_err(&tmp))?;
        drop(file);
        fs::rename(&tmp, &path).map_err(io_err(&path))?;
        Ok(JobFile {
            role: role.to_string(),
            path,
            sha256: hex::encode(hash.finalize()),
            size: len,
        })
    }

    /// Removes job directories that no job refers to and that were last written at least
    /// `min_age_secs` before `now_unix`. `live_paths` are the paths the outbox still holds
    /// ([`crate::store::Store::live_job_paths`]). An orphan is left when the kiosk died after sealing
    /// but before committing the job, or when a retention sweep deleted the files but died before the
    /// directory. The age bound matters because the kiosk seals in another process: a directory sealed
    /// a moment ago may be committed a moment from now, and no session lasts anywhere near the bound.
    /// Returns how many directories were removed.
    pub fn remove_orphans(
        &self,
        live_paths: &[String],
        now_unix: i64,
        min_age_secs: i64,
    ) -> Result<usize, SpoolError> {
        let live: std::collections::HashSet<&Path> = live_paths.iter().map(Path::new).collect();
        let mut removed = 0;
        let entries = fs::read_dir(&self.dir).map_err(io_err(&self.dir))?;
        for entry in entries {
            let entry = entry.map_err(io_err(&self.dir))?;
            let path = entry.path();
            let meta = entry.metadata().map_err(io_err(&path))?;
            if !meta.is_dir() {
                continue;
            }
            let written = meta
                .modified()
                .ok()
                .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(i64::MAX, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
            if written > now_unix.saturating_sub(min_age_secs) {
                continue;
            }
            let in_use = fs::read_dir(&path)
                .map_err(io_err(&path))?
                .filter_map(Result::ok)
                .any(|f| live.contains(f.path().as_path()));
            if !in_use {
                fs::remove_dir_all(&path).map_err(io_err(&path))?;
                removed += 1;
            }
        }
        if removed > 0 {
            sync_dir(&self.dir)?;
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn keypair() -> (age::x25519::Identity, String) {
        let id = age::x25519::Identity::generate();
        let public = id.to_public().to_string();
        (id, public)
    }

    fn open(identity: &age::x25519::Identity, sealed: &[u8]) -> Vec<u8> {
        let decryptor = age::Decryptor::new(sealed).unwrap();
        let mut reader = decryptor
            .decrypt(std::iter::once(identity as &dyn age::Identity))
            .unwrap();
        let mut out = Vec::new();
        reader.read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn sealed_files_open_with_the_units_key_only_and_hash_matches() {
        let dir = tempfile::tempdir().unwrap();
        let (unit, public) = keypair();
        let (stranger, _) = keypair();
        let spool = Spool::new(dir.path().join("spool"), &[public]).unwrap();
        let photo = b"\xff\xd8\xff\xe0 not really a jpeg but bytes".repeat(100);
        let files = spool
            .seal_job_files("t0123", &[("standardized", &photo), ("record", b"{\"ok\":true}")])
            .unwrap();
        assert_eq!(files.len(), 2);
        let sealed = fs::read(&files[0].path).unwrap();
        assert_eq!(files[0].size, sealed.len() as u64);
        assert_eq!(files[0].sha256, hex::encode(Sha256::digest(&sealed)));
        assert!(sealed.windows(8).all(|w| w != &photo[..8]), "plaintext visible");
        assert_eq!(open(&unit, &sealed), photo);
        let refused = age::Decryptor::new(&sealed[..])
            .unwrap()
            .decrypt(std::iter::once(&stranger as &dyn age::Identity));
        assert!(refused.is_err());
        // No temporary file is left behind.
        let names: Vec<_> = fs::read_dir(dir.path().join("spool/t0123"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(names.iter().all(|n| n.ends_with(SEALED_SUFFIX)), "{names:?}");
    }

    #[test]
    fn rotation_seals_to_every_configured_key() {
        let dir = tempfile::tempdir().unwrap();
        let (old, old_pub) = keypair();
        let (new, new_pub) = keypair();
        let spool = Spool::new(dir.path().to_path_buf(), &[old_pub, new_pub]).unwrap();
        let files = spool.seal_job_files("j", &[("original", b"raw")]).unwrap();
        let sealed = fs::read(&files[0].path).unwrap();
        assert_eq!(open(&old, &sealed), b"raw");
        assert_eq!(open(&new, &sealed), b"raw");
    }

    #[test]
    fn bad_configuration_and_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            Spool::new(dir.path().to_path_buf(), &[]),
            Err(SpoolError::NoRecipients)
        ));
        assert!(matches!(
            Spool::new(dir.path().to_path_buf(), &["age1notakey".into()]),
            Err(SpoolError::BadRecipient { index: 0, .. })
        ));
        let (_, public) = keypair();
        let spool = Spool::new(dir.path().to_path_buf(), &[public]).unwrap();
        for key in ["", "../x", "a/b", ".", &"x".repeat(65)] {
            assert!(matches!(
                spool.seal_job_files(key, &[("r", b"")]),
                Err(SpoolError::BadName { .. })
            ));
        }
        assert!(matches!(
            spool.seal_job_files("k", &[("r", b"1"), ("r", b"2")]),
            Err(SpoolError::DuplicateRole(_))
        ));
    }

    #[test]
    fn orphans_are_removed_and_live_jobs_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (_, public) = keypair();
        let spool = Spool::new(dir.path().to_path_buf(), &[public]).unwrap();
        let live = spool.seal_job_files("live", &[("r", b"1")]).unwrap();
        spool.seal_job_files("orphan", &[("r", b"1")]).unwrap();
        spool.seal_job_files("other", &[("r", b"1")]).unwrap();
        let live_paths = vec![live[0].path.to_str().unwrap().to_string()];
        let now = crate::clock::unix_now();
        // Everything was written just now: too young to be called an orphan.
        assert_eq!(spool.remove_orphans(&live_paths, now, 3600).unwrap(), 0);
        assert_eq!(spool.remove_orphans(&live_paths, now + 7200, 3600).unwrap(), 2);
        assert!(dir.path().join("live").exists());
        assert!(!dir.path().join("other").exists());
        assert!(!dir.path().join("orphan").exists());
    }
}
