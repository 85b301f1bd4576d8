//! Helpers shared by the upload crash and fault tests: the kiosk side of one accepted photo (admit,
//! shoot, check, seal, enqueue), deterministic payloads the tests can recognise after decryption, the
//! uploader's configuration file, and the child-process side of the uploader.
//!
//! The payloads are synthetic bytes, not photos: what is tested is the pipeline, not the camera.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use kiosk::outbox::Spool;
use kiosk::store::{CheckRow, JobId, NewJob, ShotCheck, Store};
use kiosk::ticket::{Ticket, TicketId};

use crate::intake::Intake;

/// Boxed errors: this crate is test support, where a message is all anyone needs.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// The files of every job, as the shell names them.
pub const ROLES: [&str; 3] = ["standardized", "original", "record"];

/// The bearer token the tests' receiver accepts.
pub const TOKEN: &str = "test-token-0123456789";

/// A ticket as the issuer would send it (masked name, last four of the ID only).
pub fn fixture_ticket(id: TicketId, now: i64) -> Ticket {
    Ticket {
        id,
        student_no: "2026000001".into(),
        masked_name: "张*明".into(),
        school: "示例大学".into(),
        id_last4: "123X".into(),
        site: "*".into(),
        photo_types: vec!["chsi-graduate".into()],
        shots_allowed: 3,
        paid: true,
        issued_at: now - 60,
        expires_at: now + 86_400,
        key_id: 1,
    }
}

/// The plaintext of `role` for `ticket`: recognisable after decryption, a few kilobytes, different
/// for every ticket and role.
pub fn payload(ticket: &TicketId, role: &str) -> Vec<u8> {
    let seed = format!("{ticket}/{role}/");
    let len = 2048 + usize::from(ticket.0[0]) * 16;
    // Image roles start like a real JPEG (SOI, APP0 "JFIF"), so a scan for decodable photos has
    // something to find if sealing ever let plaintext through.
    let mut out = if role == "record" {
        Vec::new()
    } else {
        JPEG_MAGIC.to_vec()
    };
    out.extend(seed.bytes().cycle().take(len));
    out
}

/// The first bytes of a JFIF JPEG.
pub const JPEG_MAGIC: &[u8] = b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00";

/// Byte strings that must never be found in a kiosk's data directory: the fixture ticket's personal
/// fields and the start of a JPEG.
pub fn forbidden_markers() -> Vec<(&'static str, Vec<u8>)> {
    let t = fixture_ticket(TicketId([0; 16]), 0);
    vec![
        ("masked name", t.masked_name.into_bytes()),
        ("student number", t.student_no.into_bytes()),
        ("school", t.school.into_bytes()),
        ("JPEG header", JPEG_MAGIC.to_vec()),
    ]
}

/// Every file under `dir` (recursively) that contains one of [`forbidden_markers`], with the marker.
pub fn scan_for_personal_data(dir: &Path) -> Result<Vec<(PathBuf, &'static str)>, Error> {
    let markers = forbidden_markers();
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let bytes = std::fs::read(&path)?;
            for (what, m) in &markers {
                if bytes.windows(m.len()).any(|w| w == m.as_slice()) {
                    found.push((path.clone(), *what));
                }
            }
        }
    }
    Ok(found)
}

/// Admits a fresh ticket and records one passing shot: everything before "choose". Returns the
/// ticket, the shot number and the session.
pub fn shoot_one(store: &Store, now: i64) -> Result<(TicketId, u8, kiosk::store::SessionId), Error> {
    let ticket = TicketId(JobId::random()?.0);
    let t = fixture_ticket(ticket, now);
    store
        .admit_ticket(&t, now)?
        .map_err(|r| format!("admission refused: {r:?}"))?;
    let session = store.begin_session(now)?;
    let shot = store.consume_shot(&ticket, session, now)?;
    let rows = [CheckRow {
        id: "pose".into(),
        status: "pass".into(),
        value: Some(1.0),
    }];
    let check = ShotCheck {
        passed: true,
        liveness_failed: false,
        record_json: "{\"pose\":\"pass\"}",
        per_check: &rows,
    };
    store.record_check(&ticket, shot, &check, now)?;
    Ok((ticket, shot, session))
}

/// The job the kiosk commits for `ticket` with already sealed `files`.
pub fn new_job(ticket: TicketId, shot_no: u8, files: Vec<kiosk::store::JobFile>) -> NewJob {
    NewJob {
        ticket,
        shot_no,
        spec_id: "chsi-graduate".into(),
        files,
        meta_json: format!("{{\"ticket\":\"{ticket}\",\"spec\":\"chsi-graduate\"}}"),
    }
}

/// What the kiosk does between "choose" and "完成" for one fresh ticket: admit it, take one shot that
/// passes, seal the files, and commit the job with the ticket's completion. Returns the job id once
/// the commit returned (the moment the kiosk would show 完成).
pub fn accept_one(store: &Store, spool: &Spool, now: i64) -> Result<(JobId, TicketId), Error> {
    let (ticket, shot, session) = shoot_one(store, now)?;
    let payloads: Vec<(&str, Vec<u8>)> = ROLES.iter().map(|r| (*r, payload(&ticket, r))).collect();
    let refs: Vec<(&str, &[u8])> = payloads.iter().map(|(r, p)| (*r, p.as_slice())).collect();
    let files = spool.seal_job_files(&ticket.to_string(), &refs)?;
    let id = store.enqueue_and_complete(&new_job(ticket, shot, files), now)?;
    store.end_session(session, Some(&ticket), "completed", now)?;
    Ok((id, ticket))
}

/// Writes the uploader's TOML for a test: the receiver's URL, CA and token, the database and spool,
/// and `upload` (the body of the `[upload]` table).
pub fn write_config(
    dir: &Path,
    intake: &Intake,
    db: &Path,
    spool: &Path,
    upload: &str,
) -> Result<PathBuf, Error> {
    let ca = dir.join("intake-ca.pem");
    std::fs::write(&ca, intake.ca_pem())?;
    let path = dir.join("uploader.toml");
    let mut f = std::fs::File::create(&path)?;
    write!(
        f,
        "[store]\npath = {db:?}\n\n[spool]\ndir = {spool:?}\n\n[target]\nkind = \"https\"\nurl = {url:?}\nca_file = {ca:?}\ntoken = {TOKEN:?}\n\n[upload]\n{upload}\n",
        url = intake.url(),
    )?;
    Ok(path)
}

/// The body of a child process that runs the uploader service exactly as `kiosk-uploader` does
/// (SIGTERM sets the stop flag) until it is stopped or killed; logs go to stderr, filtered by
/// `RUST_LOG`.
pub fn run_uploader_child(config: &Path) -> Result<(), Error> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .try_init();
    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGTERM, Arc::clone(&stop))?;
    let cfg = kiosk::outbox::UploaderConfig::load(config)?;
    kiosk::outbox::run_configured(&cfg, &stop, kiosk::clock::unix_now)?;
    Ok(())
}

/// User plus system CPU time of a process so far, in clock ticks (`/proc/PID/stat`).
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Clock ticks per second, as `getconf CLK_TCK` reports (100 on every Linux we ship to).
pub fn clock_ticks_per_sec() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

/// Sends SIGTERM (systemd's stop) to a process.
pub fn sigterm(pid: u32) -> std::io::Result<()> {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!("kill -TERM {pid} failed")))
    }
}
