//! Set-up shared by the queue, uploader and operator-API tests (`ops_api`, `ops_queue`, `outbox_lease`,
//! `queue_admin`, `uploader_loop`): a store and sealing spool in a temp dir, a completed ticket with its
//! upload job, a scripted upload target, the uploader's virtual clock, and the API's TLS and tokens.
//!
//! Each test file includes this module with `mod support;`, so every test binary has its own copy,
//! the virtual clock `NOW` included.

// Each test binary compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use kiosk::ops::auth::{ApiConfig, Scope, TokenConfig, token_hash};
use kiosk::outbox::{Backoff, Delivery, DeliveryError, Spool, Target, Throttle, UploadSettings};
use kiosk::store::{CheckRow, Job, JobFile, JobId, NewJob, ShotCheck, Store};
use kiosk::ticket::{Ticket, TicketId};

/// Start of the virtual timeline.
pub const T0: i64 = 1_780_000_000;
/// The virtual clock the uploader reads through `now`; one per test binary.
pub static NOW: AtomicI64 = AtomicI64::new(T0);

pub fn now() -> i64 {
    NOW.load(Ordering::SeqCst)
}

/// Answers from a script, then success; records what it was asked.
#[derive(Default)]
pub struct Scripted {
    pub script: Mutex<VecDeque<Result<Delivery, DeliveryError>>>,
    pub seen: Mutex<Vec<JobId>>,
}

impl Target for Scripted {
    fn deliver(&self, job: &Job, _throttle: &Throttle) -> Result<Delivery, DeliveryError> {
        self.seen.lock().unwrap().push(job.id);
        self.script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Ok(Delivery::Created))
    }
}

/// Uploader settings for the loop tests: one worker, backoff 4..60 s, fast polls and sweeps.
pub fn upload_settings(retention_secs: i64) -> UploadSettings {
    UploadSettings {
        concurrency: 1,
        backoff: Backoff {
            base_secs: 4,
            max_secs: 60,
        },
        retention_secs,
        poll: Duration::from_millis(20),
        sweep_every: Duration::from_millis(20),
        ..UploadSettings::default()
    }
}

/// A fresh store (`kiosk.sqlite`) in its own temp dir.
pub fn temp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("kiosk.sqlite")).unwrap();
    (dir, store)
}

/// A spool under `dir/spool` sealing to a freshly generated age recipient.
pub fn sealing_spool(dir: &Path) -> Spool {
    let recipient = age::x25519::Identity::generate().to_public().to_string();
    Spool::new(dir.join("spool"), &[recipient]).unwrap()
}

/// A store and a sealing spool in one temp dir.
pub struct StoreRig {
    pub _dir: tempfile::TempDir,
    pub store: Store,
    pub spool: Spool,
}

pub fn store_rig() -> StoreRig {
    let (dir, store) = temp_store();
    let spool = sealing_spool(dir.path());
    StoreRig {
        _dir: dir,
        store,
        spool,
    }
}

/// The two files a kiosk job seals: the standardized photo and its check record.
pub const PHOTO_AND_RECORD: &[(&str, &[u8])] = &[("standardized", b"jpeg"), ("record", b"{}")];

/// Paid ticket `n` for one chsi-graduate photo, valid from 60 s before `valid_from` to a day after it.
pub fn ticket(n: u8, valid_from: i64) -> Ticket {
    Ticket {
        id: TicketId([n; 16]),
        student_no: "s".into(),
        masked_name: "m".into(),
        school: "u".into(),
        id_last4: "0000".into(),
        site: "*".into(),
        photo_types: vec!["chsi-graduate".into()],
        shots_allowed: 3,
        paid: true,
        issued_at: valid_from - 60,
        expires_at: valid_from + 86_400,
        key_id: 1,
    }
}

/// Admits `t`, opens a session and takes one shot that passes its checks, all at `at`; returns the
/// shot number.
pub fn pass_one_shot(store: &Store, t: &Ticket, at: i64) -> u8 {
    store.admit_ticket(t, at).unwrap().unwrap();
    let session = store.begin_session(at).unwrap();
    let shot = store.consume_shot(&t.id, session, at).unwrap();
    let rows = [CheckRow {
        id: "pose".into(),
        status: "pass".into(),
        value: None,
    }];
    let check = ShotCheck {
        passed: true,
        liveness_failed: false,
        record_json: "{}",
        per_check: &rows,
    };
    store.record_check(&t.id, shot, &check, at).unwrap();
    shot
}

/// Files the upload job for `shot` of ticket `id` with `files` and completes the ticket, at `at`.
pub fn file_job(store: &Store, id: TicketId, shot: u8, files: Vec<JobFile>, at: i64) -> JobId {
    let job = NewJob {
        ticket: id,
        shot_no: shot,
        spec_id: "chsi-graduate".into(),
        files,
        meta_json: "{}".into(),
    };
    store.enqueue_and_complete(&job, at).unwrap()
}

/// A completed ticket `n` (valid around `valid_from`, see [`ticket`]) whose shot at `at` is queued
/// for upload with `files` sealed in `spool`.
pub fn enqueue_sealed(
    store: &Store,
    spool: &Spool,
    n: u8,
    valid_from: i64,
    at: i64,
    files: &[(&str, &[u8])],
) -> JobId {
    let t = ticket(n, valid_from);
    let shot = pass_one_shot(store, &t, at);
    let sealed = spool.seal_job_files(&t.id.to_string(), files).unwrap();
    file_job(store, t.id, shot, sealed, at)
}

/// The operator API's read token (`fleet`) and admin token (`ops`).
pub const READ: &str = "read-token-0123456789abcdef";
pub const ADMIN: &str = "admin-token-0123456789abcdef";

/// A self-signed TLS certificate for `names`, written to `dir/api.crt` and `dir/api.key`.
pub fn write_cert(dir: &Path, names: &[&str]) -> (PathBuf, PathBuf) {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let ck = rcgen::generate_simple_self_signed(names).unwrap();
    let cert = dir.join("api.crt");
    let key = dir.join("api.key");
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    (cert, key)
}

/// API settings on an ephemeral loopback port with the `READ` and `ADMIN` tokens, locking out after
/// 5 bad tokens in 60 s.
pub fn api_config(cert: PathBuf, key: PathBuf, utc_offset_secs: i64) -> ApiConfig {
    ApiConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        cert,
        key,
        tokens: vec![
            TokenConfig {
                name: "fleet".into(),
                scope: Scope::Read,
                sha256: token_hash(READ),
            },
            TokenConfig {
                name: "ops".into(),
                scope: Scope::Admin,
                sha256: token_hash(ADMIN),
            },
        ],
        max_failures: 5,
        failure_window_secs: 60,
        utc_offset_secs,
    }
}
