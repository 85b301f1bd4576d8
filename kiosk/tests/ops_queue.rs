//! The queue's admin endpoints over real TLS on loopback, and `kioskctl queue list|retry|purge-acked`
//! as a process against them: a read token is refused (403), an admin retries and purges, the actions
//! land in the audit trail under the token's name, and a job that is not acknowledged survives a purge.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use kiosk::ops::api::{self, ApiContext};
use kiosk::ops::client::Client;
use kiosk::ops::{Shared, Status};
use kiosk::outbox::Spool;
use kiosk::store::{JobId, JobState, Store};
use serde_json::json;

mod support;
use support::{ADMIN, READ};

struct Rig {
    dir: tempfile::TempDir,
    server: api::ApiServer,
    cert: std::path::PathBuf,
    store: Arc<Store>,
    spool: Spool,
}

fn rig() -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = support::write_cert(dir.path(), &["127.0.0.1"]);
    let store = Arc::new(Store::open(dir.path().join("kiosk.db")).unwrap());
    let spool = support::sealing_spool(dir.path());
    let (shared, _commands) = Shared::new(Status {
        state: "Attract".into(),
        ready: true,
        ..Status::default()
    });
    let config = support::api_config(cert.clone(), key, 0);
    let ctx = ApiContext {
        store: store.clone(),
        logs: None,
        shared: Arc::new(shared),
        data_dir: dir.path().to_path_buf(),
    };
    let server = api::start(&config, Path::new(""), ctx).unwrap();
    Rig {
        dir,
        server,
        cert,
        store,
        spool,
    }
}

impl Rig {
    fn client(&self, token: &str) -> Client {
        let base = format!("https://{}", self.server.local_addr());
        Client::new(&base, Some(token.to_string()), &self.cert).unwrap()
    }

    /// A completed ticket `n` with its job and sealed files, created `age_secs` ago.
    fn enqueue(&self, n: u8, age_secs: i64) -> JobId {
        let at = kiosk::clock::unix_now() - age_secs;
        support::enqueue_sealed(&self.store, &self.spool, n, at, at, &[("standardized", b"jpeg")])
    }

    /// Takes job `id` through a lease to acked (`ack`) or failed.
    fn finish(&self, id: &JobId, ack: bool, at: i64) {
        let leased = self.store.lease_jobs("u", at, 30, 100).unwrap();
        for j in leased {
            if j.id != *id {
                self.store.release_job(&j.id, "u").unwrap();
            } else if ack {
                assert!(self.store.ack_job(id, at).unwrap());
            } else {
                assert!(self.store.fail_job(id, "u", "HTTP 409", at).unwrap());
            }
        }
    }

    fn audit_actors(&self, event: &str) -> Vec<String> {
        self.store
            .audit_since(0, 1000)
            .unwrap()
            .into_iter()
            .filter(|e| e.event == event)
            .map(|e| e.actor)
            .collect()
    }
}

#[test]
fn admin_retries_and_purges_through_the_api_and_read_scope_cannot() {
    let rig = rig();
    let now = kiosk::clock::unix_now();
    let failed = rig.enqueue(1, 100_000);
    let old_acked = rig.enqueue(2, 100_000);
    let new_acked = rig.enqueue(3, 100_000);
    let pending = rig.enqueue(4, 100_000);
    rig.finish(&failed, false, now - 90_000);
    rig.finish(&old_acked, true, now - 90_000);
    rig.finish(&new_acked, true, now - 60);

    let read = rig.client(READ);
    let q = read.get("/v1/queue").unwrap();
    assert_eq!(q.status, 200, "{}", q.body);
    let q = q.json();
    assert_eq!(q["counts"]["failed"], 1);
    assert_eq!(q["failed"][0]["job_id"], failed.to_string());
    assert_eq!(q["failed"][0]["last_error"], "HTTP 409");
    assert_eq!(q["pending"][0]["job_id"], pending.to_string());
    for path in ["/v1/admin/queue/retry", "/v1/admin/queue/purge-acked"] {
        let r = read.post(path, &json!({ "older_than_secs": 0 })).unwrap();
        assert_eq!(r.status, 403, "{path}: {}", r.body);
    }
    assert_eq!(rig.store.job(&failed).unwrap().unwrap().state, JobState::Failed);
    assert_eq!(rig.store.outbox_counts().unwrap().acked, 2);

    let admin = rig.client(ADMIN);
    let r = admin.post("/v1/admin/queue/retry", &json!({})).unwrap();
    assert_eq!(
        (r.status, r.json()["retried"].as_u64()),
        (200, Some(1)),
        "{}",
        r.body
    );
    let j = rig.store.job(&failed).unwrap().unwrap();
    assert_eq!((j.state, j.attempts), (JobState::Pending, 1));
    assert!(j.next_attempt_at >= now);

    for bad in [
        json!({}),
        json!({ "older_than_secs": -5 }),
        json!({ "older_than": 5 }),
    ] {
        let r = admin.post("/v1/admin/queue/purge-acked", &bad).unwrap();
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }
    let files = rig.store.job(&old_acked).unwrap().unwrap().files;
    let r = admin
        .post(
            "/v1/admin/queue/purge-acked",
            &json!({ "older_than_secs": 86_400 }),
        )
        .unwrap();
    assert_eq!(
        (r.status, r.json()["purged"].as_u64()),
        (200, Some(1)),
        "{}",
        r.body
    );
    assert!(rig.store.job(&old_acked).unwrap().is_none());
    assert!(files.iter().all(|f| !f.path.exists()));
    assert!(rig.store.job(&new_acked).unwrap().is_some(), "inside the window");
    for id in [failed, pending] {
        assert!(rig.store.job(&id).unwrap().is_some());
    }
    assert_eq!(rig.audit_actors("jobs_retried"), vec!["api:ops"]);
    assert_eq!(rig.audit_actors("jobs_purged"), vec!["api:ops"]);
    assert_eq!(rig.audit_actors("api_forbidden").len(), 2);
}

fn kioskctl(rig: &Rig, args: &[&str]) -> Output {
    let url = format!("https://{}", rig.server.local_addr());
    Command::new(env!("CARGO_BIN_EXE_kioskctl"))
        .args(args)
        .env("KIOSK_TOKEN", ADMIN)
        .env("KIOSK_API", url)
        .env("KIOSK_API_CERT", &rig.cert)
        .current_dir(rig.dir.path())
        .output()
        .unwrap()
}

fn stdout_json(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn kioskctl_queue_list_retry_and_purge_acked() {
    let rig = rig();
    let now = kiosk::clock::unix_now();
    let failed = rig.enqueue(1, 10_000);
    let acked = rig.enqueue(2, 10_000);
    let pending = rig.enqueue(3, 10_000);
    rig.finish(&failed, false, now - 5000);
    rig.finish(&acked, true, now - 5000);

    let listed = stdout_json(&kioskctl(&rig, &["queue"]));
    assert_eq!(listed["counts"]["failed"], 1);
    let listed = stdout_json(&kioskctl(&rig, &["queue", "list"]));
    assert_eq!(listed["failed"][0]["job_id"], failed.to_string());

    let retried = stdout_json(&kioskctl(&rig, &["queue", "retry"]));
    assert_eq!(retried["retried"], 1);
    assert_eq!(rig.store.job(&failed).unwrap().unwrap().state, JobState::Pending);

    // A window longer than the job's age keeps it; a bad duration is a usage error (exit 2).
    let kept = stdout_json(&kioskctl(&rig, &["queue", "purge-acked", "--older-than", "2h"]));
    assert_eq!(kept["purged"], 0);
    assert_eq!(kept["older_than_secs"], 7200);
    let out = kioskctl(&rig, &["queue", "purge-acked", "--older-than", "3w"]);
    assert_eq!(out.status.code(), Some(2));
    let out = kioskctl(&rig, &["queue", "purge-acked"]);
    assert_eq!(out.status.code(), Some(2), "the window is required");
    let purged = stdout_json(&kioskctl(&rig, &["queue", "purge-acked", "--older-than", "60m"]));
    assert_eq!(purged["purged"], 1);
    assert!(rig.store.job(&acked).unwrap().is_none());
    let purged = stdout_json(&kioskctl(&rig, &["queue", "purge-acked", "--older-than", "0"]));
    assert_eq!(purged["purged"], 0, "nothing acked is left");
    for id in [failed, pending] {
        assert!(rig.store.job(&id).unwrap().is_some());
    }
}
