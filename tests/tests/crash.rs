//! Upload crash test: the kiosk side (admit, shoot, seal, enqueue) and the uploader (lease, upload,
//! verify, ack, delete) run as two child processes on one database and are killed with SIGKILL at
//! random moments, at least 200 times (`KIOSK_CRASH_KILLS`), while the reference receiver counts
//! deliveries per job id. Then one last uploader drains the outbox and is stopped with SIGTERM.
//!
//! Checked at the end: every job the kiosk committed (and, in particular, every one it reported as
//! accepted before being killed) was delivered exactly once, with the recorded hashes, and decrypts to
//! the payload sealed for it; no ticket was filed twice; every local file of a confirmed job is gone;
//! `PRAGMA integrity_check` is ok. SIGKILL tests process crashes; power loss is what the FULL commits
//! are for and needs real hardware.
//!
//! Run: `cargo test --release -p tests --test crash -- --nocapture`; ends with
//! `crash: kills=N accepted=M delivered_once=M lost=0 duplicates=0 integrity=ok`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kiosk::outbox::Spool;
use kiosk::store::{JobState, Store};
use sha2::{Digest, Sha256};
use tests::intake::{FaultPlan, Intake};
use tests::pipeline::{self, ROLES, TOKEN};

const ROLE_ENV: &str = "KIOSK_UPLOAD_CRASH_ROLE";
const DIR_ENV: &str = "KIOSK_UPLOAD_CRASH_DIR";
const RECIPIENT_ENV: &str = "KIOSK_UPLOAD_CRASH_RECIPIENT";

fn kills_wanted() -> u64 {
    std::env::var("KIOSK_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

/// The children's body. Only does anything when the parent set `ROLE_ENV`; run directly it returns
/// at once, since it is a helper of `sigkill_anywhere_delivers_every_accepted_photo_once`.
#[test]
fn crash_child() {
    let Ok(role) = std::env::var(ROLE_ENV) else {
        return;
    };
    let dir = PathBuf::from(std::env::var_os(DIR_ENV).unwrap());
    match role.as_str() {
        "kiosk" => kiosk_child(&dir),
        "uploader" => pipeline::run_uploader_child(&dir.join("uploader.toml")).unwrap(),
        other => panic!("unknown role {other}"),
    }
}

/// Accepts photos until killed, printing each job id once its commit returned.
fn kiosk_child(dir: &Path) {
    let store = Store::open(dir.join("kiosk.sqlite")).unwrap();
    let now = kiosk::clock::unix_now();
    store.abandon_open_sessions(now).unwrap();
    let recipient = std::env::var(RECIPIENT_ENV).unwrap();
    let spool = Spool::new(dir.join("spool"), &[recipient]).unwrap();
    loop {
        eprintln!("phase=enqueue");
        let (job, ticket) = pipeline::accept_one(&store, &spool, kiosk::clock::unix_now()).unwrap();
        // One write(2) per line, flushed before the next photo: the parent sees it unless the kill
        // came first.
        let mut out = std::io::stdout().lock();
        writeln!(out, "accepted {job} {ticket}").unwrap();
        out.flush().unwrap();
        drop(out);
        eprintln!("phase=idle");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A child and what we learn from its output.
struct Running {
    child: Child,
    /// The last `phase=` its stderr showed.
    phase: Arc<Mutex<String>>,
    stderr_tail: Arc<Mutex<Vec<String>>>,
}

fn spawn(role: &str, dir: &Path, recipient: &str, accepted: &Arc<Mutex<Vec<String>>>) -> Running {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env(ROLE_ENV, role)
        .env(DIR_ENV, dir)
        .env(RECIPIENT_ENV, recipient)
        .env("RUST_LOG", "kiosk::outbox=trace")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let phase = Arc::new(Mutex::new(String::from("start")));
    let stderr_tail = Arc::new(Mutex::new(Vec::new()));
    let stdout = child.stdout.take().unwrap();
    let acc = Arc::clone(accepted);
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // Not a prefix: the test harness writes "test crash_child ... " before the first line.
            if let Some(i) = line.find("accepted ") {
                let rest = &line[i + "accepted ".len()..];
                acc.lock()
                    .unwrap()
                    .push(rest.split(' ').next().unwrap_or("").to_string());
            }
        }
    });
    let stderr = child.stderr.take().unwrap();
    let (ph, tail) = (Arc::clone(&phase), Arc::clone(&stderr_tail));
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(i) = line.find("phase=") {
                let p = line[i + 6..]
                    .trim_matches('"')
                    .split(['"', ' '])
                    .next()
                    .unwrap_or("")
                    .to_string();
                *ph.lock().unwrap() = p;
            }
            let mut t = tail.lock().unwrap();
            t.push(line);
            if t.len() > 40 {
                t.remove(0);
            }
        }
    });
    Running {
        child,
        phase,
        stderr_tail,
    }
}

/// SIGKILLs a child; returns the phase it was in. A child that had already exited failed: say why.
fn kill(mut r: Running) -> String {
    let phase = r.phase.lock().unwrap().clone();
    let exited_before = r.child.try_wait().unwrap();
    r.child.kill().unwrap(); // SIGKILL
    let status = r.child.wait().unwrap();
    assert!(
        exited_before.is_none() && status.code().is_none(),
        "child exited on its own ({status}):\n{}",
        r.stderr_tail.lock().unwrap().join("\n")
    );
    phase
}

/// xorshift64, seeded: the same kill schedule on every run.
fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

#[test]
fn sigkill_anywhere_delivers_every_accepted_photo_once() {
    if std::env::var_os(ROLE_ENV).is_some() {
        return; // we are a child
    }
    let started = kiosk::clock::monotonic();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    let intake = Intake::start(TOKEN, FaultPlan::none()).unwrap();
    // Short leases and timeouts so a killed uploader's jobs come back quickly; no retention, so files
    // are deleted right after each ack and kills land in the delete phase too.
    pipeline::write_config(
        dir,
        &intake,
        &dir.join("kiosk.sqlite"),
        &dir.join("spool"),
        "concurrency = 2\nlease_secs = 3\nrequest_timeout_secs = 2\nconnect_timeout_secs = 1\n\
         base_backoff_secs = 1\nmax_backoff_secs = 2\nretention_secs = 0\npoll_ms = 100\nsweep_secs = 1",
    )
    .unwrap();
    // Create the schema before two processes race to.
    drop(Store::open(dir.join("kiosk.sqlite")).unwrap());

    let accepted = Arc::new(Mutex::new(Vec::<String>::new()));
    let wanted = kills_wanted();
    let mut seed: u64 = std::env::var("KIOSK_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5EED_CAFE_F00D_0001);
    let mut kills = 0u64;
    let mut checks_done = 0u64;
    let mut phases: BTreeMap<String, u64> = BTreeMap::new();
    let mut kiosk_child: Option<Running> = None;
    let mut uploader_child: Option<Running> = None;
    while kills < wanted {
        if kiosk_child.is_none() {
            kiosk_child = Some(spawn("kiosk", dir, &recipient, &accepted));
        }
        if uploader_child.is_none() {
            uploader_child = Some(spawn("uploader", dir, &recipient, &accepted));
        }
        std::thread::sleep(Duration::from_millis(30 + next(&mut seed) % 150));
        let victim = next(&mut seed) % 3;
        // Half of the uploader kills wait for a chosen phase to begin, so that the short phases
        // (an ack is one fsync) are hit as well as the long idle waits; the moment is still random
        // within the phase, since the log line comes first.
        let aim = ["lease", "upload", "ack", "delete"][(next(&mut seed) % 8) as usize % 4];
        if victim != 0 && next(&mut seed).is_multiple_of(2) {
            let phase = Arc::clone(&uploader_child.as_ref().unwrap().phase);
            let aim_started = kiosk::clock::monotonic();
            while *phase.lock().unwrap() != aim && aim_started.elapsed() < Duration::from_millis(400) {
                std::thread::sleep(Duration::from_micros(500));
            }
        }
        if victim != 1 {
            let p = kill(kiosk_child.take().unwrap());
            *phases.entry(format!("kiosk:{p}")).or_default() += 1;
            kills += 1;
        }
        if victim != 0 {
            let p = kill(uploader_child.take().unwrap());
            *phases.entry(format!("uploader:{p}")).or_default() += 1;
            kills += 1;
        }
        // Every so often, open the file the way a restarted process does and check it, while the
        // surviving child keeps writing.
        if kills / 20 > checks_done {
            checks_done += 1;
            let s = Store::open(dir.join("kiosk.sqlite")).unwrap();
            assert!(
                s.integrity_check().unwrap(),
                "integrity_check failed after {kills} kills"
            );
        }
    }
    for r in [kiosk_child.take(), uploader_child.take()].into_iter().flatten() {
        kill(r);
        kills += 1;
    }
    let kill_phase_secs = started.elapsed().as_secs_f64();

    // Drain with one last uploader, then stop it the way systemd does.
    let drain_started = kiosk::clock::monotonic();
    let mut last = spawn("uploader", dir, &recipient, &accepted);
    let store = Store::open(dir.join("kiosk.sqlite")).unwrap();
    loop {
        let c = store.outbox_counts().unwrap();
        let undeleted: i64 = rusqlite::Connection::open(dir.join("kiosk.sqlite"))
            .unwrap()
            .query_row(
                "SELECT count(*) FROM jobs WHERE files_deleted_at IS NULL",
                [],
                |r| r.get(0),
            )
            .unwrap();
        if c.pending == 0 && c.leased == 0 && undeleted == 0 {
            assert_eq!(c.failed, 0, "jobs failed");
            break;
        }
        assert!(
            drain_started.elapsed() < Duration::from_secs(120),
            "outbox not drained: {c:?}, {undeleted} with files\n{}",
            last.stderr_tail.lock().unwrap().join("\n")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let drain_secs = drain_started.elapsed().as_secs_f64();
    pipeline::sigterm(last.child.id()).unwrap();
    let stop_started = kiosk::clock::monotonic();
    let status = loop {
        if let Some(s) = last.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            stop_started.elapsed() < Duration::from_secs(10),
            "uploader ignored SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "uploader exit after SIGTERM: {status}");
    let _ = last
        .child
        .stdout
        .take()
        .map(|mut s| s.read_to_end(&mut Vec::new()));

    // The verdict.
    let integrity = store.integrity_check().unwrap();
    let raw = rusqlite::Connection::open(dir.join("kiosk.sqlite")).unwrap();
    let jobs: Vec<(String, String, String)> = raw
        .prepare("SELECT job_id, ticket_id, state FROM jobs")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let in_db: HashSet<&str> = jobs.iter().map(|(j, _, _)| j.as_str()).collect();
    let reported = accepted.lock().unwrap().clone();
    let state = intake.state();
    let mut lost: Vec<String> = reported
        .iter()
        .filter(|j| !in_db.contains(j.as_str()))
        .cloned()
        .collect();
    let mut delivered_once = 0;
    let mut duplicates = 0;
    let mut bad_integrity = Vec::new();
    let mut tickets_filed: HashMap<String, u32> = HashMap::new();
    for (job, ticket, st) in &jobs {
        assert_eq!(st, JobState::Acked.as_str(), "job {job} not acked");
        match state.deliveries.get(job).copied().unwrap_or(0) {
            0 => lost.push(job.clone()),
            1 => delivered_once += 1,
            n => duplicates += n - 1,
        }
        let full = store.job(&job.parse().unwrap()).unwrap().unwrap();
        for f in &full.files {
            if f.path.exists() {
                bad_integrity.push(format!("{job}: local {} not deleted", f.role));
            }
            let Some(bytes) = state.files.get(&(job.clone(), f.role.clone())) else {
                bad_integrity.push(format!("{job}: {} missing at the receiver", f.role));
                continue;
            };
            if hex::encode(Sha256::digest(bytes)) != f.sha256 {
                bad_integrity.push(format!("{job}: {} hash differs", f.role));
            }
            let mut plain = Vec::new();
            let opened = age::Decryptor::new(&bytes[..])
                .and_then(|d| d.decrypt(std::iter::once(&identity as &dyn age::Identity)))
                .map(|mut r| r.read_to_end(&mut plain));
            let ticket_id = kiosk::ticket::TicketId({
                let mut b = [0u8; 16];
                hex::decode_to_slice(ticket, &mut b).unwrap();
                b
            });
            if !matches!(opened, Ok(Ok(_))) || plain != pipeline::payload(&ticket_id, &f.role) {
                bad_integrity.push(format!("{job}: {} does not decrypt to its payload", f.role));
            }
        }
        assert_eq!(full.files.len(), ROLES.len());
    }
    for (job, manifest) in &state.manifests {
        if !in_db.contains(job.as_str()) {
            duplicates += 1; // filed but never committed by the kiosk: a phantom
        }
        let doc: serde_json::Value = serde_json::from_slice(manifest).unwrap();
        *tickets_filed
            .entry(doc["ticket_id"].as_str().unwrap_or("").to_string())
            .or_default() += 1;
    }
    duplicates += tickets_filed
        .values()
        .filter(|&&n| n > 1)
        .map(|n| n - 1)
        .sum::<u32>();
    let integrity_ok = integrity && bad_integrity.is_empty() && state.conflicts == 0;
    let requests = state.log.len();
    // Manifest PUTs answered "already stored": deliveries repeated after a kill and deduped.
    let deduped = state
        .log
        .iter()
        .filter(|r| r.method == "PUT" && !r.path.contains("/files/") && r.status == 200)
        .count();
    drop(state);

    println!(
        "crash: kill phases {}",
        phases
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "crash: integrity_checks_during_kills={checks_done} reported_by_kiosk={} requests={requests} deduped_redeliveries={deduped} kill_phase_secs={kill_phase_secs:.1} drain_secs={drain_secs:.1}",
        reported.len()
    );
    println!(
        "crash: kills={kills} accepted={} delivered_once={delivered_once} lost={} duplicates={duplicates} integrity={}",
        jobs.len(),
        lost.len(),
        if integrity_ok { "ok" } else { "FAILED" }
    );
    assert!(lost.is_empty(), "lost: {lost:?}");
    assert_eq!(duplicates, 0);
    assert!(
        integrity_ok,
        "integrity: {bad_integrity:?}, conflicts or integrity_check failed"
    );
    assert!(kills >= wanted);
    assert!(
        jobs.len() >= 10 && !reported.is_empty(),
        "too few jobs ({}) to prove anything",
        jobs.len()
    );
    if wanted >= 200 {
        for phase in [
            "kiosk:enqueue",
            "uploader:lease",
            "uploader:upload",
            "uploader:ack",
            "uploader:delete",
        ] {
            assert!(
                phases.contains_key(phase),
                "no kill landed in {phase}: {phases:?}"
            );
        }
    }
}
