//! The operator API over real TLS on loopback: authentication (401 without a token, 403 for the wrong
//! scope), 429 after repeated bad tokens and the audit trail of it, logs read from a cursor complete
//! and free of names and ids, `/metrics` as valid Prometheus text, the admin actions (unlock, grant,
//! out of service through a stand-in main loop, self-test).

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use kiosk::ops::api::{self, ApiContext};
use kiosk::ops::client::Client;
use kiosk::ops::logs::{LogStore, StoreLayer};
use kiosk::ops::redact::Pii;
use kiosk::ops::{Command, SelfTestItem, SelfTestReport, Shared, Status};
use kiosk::store::Store;
use kiosk::ticket::{Ticket, TicketId};
use serde_json::json;

mod support;
use support::{ADMIN, READ};

struct Rig {
    _dir: tempfile::TempDir,
    server: api::ApiServer,
    cert: std::path::PathBuf,
    store: Arc<Store>,
    logs: Arc<LogStore>,
}

fn ticket(n: u8) -> Ticket {
    Ticket {
        id: TicketId([n; 16]),
        student_no: "20261001".into(),
        masked_name: "测*生".into(),
        school: "示例大学".into(),
        id_last4: "0420".into(),
        site: "DEMO-01".into(),
        photo_types: vec!["chsi-graduate".into()],
        shots_allowed: 3,
        paid: true,
        issued_at: 0,
        expires_at: i64::MAX / 2,
        key_id: 2026,
    }
}

fn rig() -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = support::write_cert(dir.path(), &["127.0.0.1", "localhost"]);
    let store = Arc::new(Store::open(dir.path().join("kiosk.db")).unwrap());
    let logs = Arc::new(LogStore::open(&dir.path().join("logs.sqlite"), 10_000).unwrap());
    let (shared, commands) = Shared::new(Status {
        site: "DEMO-01".into(),
        version: "test".into(),
        ready: true,
        state: "Attract".into(),
        last_loop_at: kiosk::clock::unix_now(),
        devices: [("camera".to_string(), "up".to_string())].into(),
        ..Status::default()
    });
    let shared = Arc::new(shared);
    // A stand-in for the main loop: answers commands as `kiosk run` does.
    let loop_shared = shared.clone();
    std::thread::spawn(move || {
        while let Ok(c) = commands.recv() {
            match c {
                Command::OutOfService { reason, reply } => {
                    let state = if reason.is_some() {
                        "OutOfService"
                    } else {
                        "Attract"
                    };
                    loop_shared.update(|s| {
                        s.state = state.into();
                        s.out_of_service = reason;
                    });
                    let _ = reply.send(Ok(state.into()));
                }
                Command::SelfTest { reply } => {
                    let _ = reply.send(SelfTestReport {
                        ok: true,
                        items: vec![SelfTestItem {
                            name: "database".into(),
                            ok: true,
                            detail: "ok".into(),
                        }],
                    });
                }
            }
        }
    });
    let config = support::api_config(cert.clone(), key, 8 * 3600);
    let ctx = ApiContext {
        store: store.clone(),
        logs: Some(logs.clone()),
        shared,
        data_dir: dir.path().to_path_buf(),
    };
    let server = api::start(&config, Path::new(""), ctx).unwrap();
    Rig {
        _dir: dir,
        server,
        cert,
        store,
        logs,
    }
}

impl Rig {
    fn client(&self, token: Option<&str>) -> Client {
        let base = format!("https://{}", self.server.local_addr());
        Client::new(&base, token.map(str::to_string), &self.cert).unwrap()
    }
}

#[test]
fn no_token_is_401_wrong_scope_403_and_healthz_needs_none() {
    let rig = rig();
    let anon = rig.client(None);
    assert_eq!(anon.get("/healthz").unwrap().status, 200);
    let r = anon.get("/v1/status").unwrap();
    assert_eq!(r.status, 401, "{}", r.body);
    let read = rig.client(Some(READ));
    let r = read.get("/v1/status").unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let s = r.json();
    assert_eq!(s["status"]["state"], "Attract");
    assert_eq!(s["versions"]["schema"], kiosk::store::LATEST_VERSION);
    assert!(s["disk"]["free_bytes"].as_u64().unwrap() > 0);
    assert_eq!(s["queue"]["pending"], 0);
    let r = read.post("/v1/admin/selftest", &json!({})).unwrap();
    assert_eq!(r.status, 403, "{}", r.body);
    let admin = rig.client(Some(ADMIN));
    let r = admin.post("/v1/admin/selftest", &json!({})).unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["ok"], true);
    assert_eq!(read.get("/v1/nothing").unwrap().status, 404);
    let events: Vec<String> = rig
        .store
        .audit_since(0, 100)
        .unwrap()
        .into_iter()
        .map(|e| e.event)
        .collect();
    assert!(events.contains(&"api_forbidden".to_string()), "{events:?}");
    assert!(events.contains(&"selftest_requested".to_string()), "{events:?}");
}

#[test]
fn repeated_bad_tokens_get_429_even_with_a_good_token_and_are_audited() {
    let rig = rig();
    let bad = rig.client(Some("guess"));
    for _ in 0..5 {
        assert_eq!(bad.get("/v1/status").unwrap().status, 401);
    }
    let r = bad.get("/v1/status").unwrap();
    assert_eq!(r.status, 429);
    // Locked out by address: a brute-forcer learns nothing more, even when it guesses right.
    assert_eq!(rig.client(Some(READ)).get("/v1/status").unwrap().status, 429);
    // The audit writes happen off the request path; give them a moment.
    let mut events = Vec::new();
    for _ in 0..50 {
        events = rig.store.audit_since(0, 100).unwrap();
        if events.iter().filter(|e| e.event == "api_rate_limited").count() >= 1 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let failed = events.iter().filter(|e| e.event == "api_auth_failed").count();
    let limited = events.iter().filter(|e| e.event == "api_rate_limited").count();
    assert_eq!((failed, limited), (5, 1), "one audit per lock-out: {events:?}");
    assert!(
        events[0].detail_json.contains("127.0.0.1"),
        "{}",
        events[0].detail_json
    );
    assert!(
        !events.iter().any(|e| e.detail_json.contains("guess")),
        "tokens never reach the audit trail"
    );
}

#[test]
fn logs_from_a_cursor_are_complete_and_carry_no_name_or_id() {
    let rig = rig();
    use tracing_subscriber::prelude::*;
    let subscriber = tracing_subscriber::registry().with(StoreLayer::new(rig.logs.clone()));
    tracing::subscriber::with_default(subscriber, || {
        for i in 0..120 {
            tracing::info!(
                i,
                name = %Pii::name("测试学生"),
                student = %Pii::student_no("20261001"),
                id = ?Pii::id_number("0420"),
                "ticket seen"
            );
            if i % 10 == 0 {
                tracing::warn!("careless: 11010519491231002X");
            }
        }
    });
    let read = rig.client(Some(READ));
    let mut since = 0;
    let mut seen = Vec::new();
    loop {
        let r = read.get(&format!("/v1/logs?since={since}&limit=25")).unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        let v = r.json();
        let records = v["records"].as_array().unwrap().clone();
        if records.is_empty() {
            break;
        }
        since = v["next"].as_i64().unwrap();
        seen.extend(records);
    }
    assert_eq!(seen.len(), 132, "every record exactly once");
    let cursors: Vec<i64> = seen.iter().map(|r| r["cursor"].as_i64().unwrap()).collect();
    assert!(
        cursors.windows(2).all(|w| w[1] == w[0] + 1),
        "no gaps, no repeats"
    );
    assert_eq!(cursors.iter().collect::<HashSet<_>>().len(), 132);
    let text = serde_json::to_string(&seen).unwrap();
    for secret in ["测试学生", "20261001", "0420", "11010519491231002X"] {
        assert!(!text.contains(secret), "{secret} leaked");
    }
    let warns = read.get("/v1/logs?since=0&level=warn").unwrap().json();
    assert_eq!(warns["records"].as_array().unwrap().len(), 12);
    assert_eq!(read.get("/v1/logs?level=loud").unwrap().status, 400);
}

/// One sample: metric name, labels, value.
type Sample = (String, Vec<(String, String)>, f64);

/// A strict reader of the Prometheus text format 0.0.4: every sample belongs to a family announced
/// by `# TYPE` before it, names and labels are well formed, values parse as floats.
fn parse_prometheus(text: &str) -> Vec<Sample> {
    let mut typed = HashSet::new();
    let mut samples = Vec::new();
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.chars().enumerate().all(|(i, c)| {
                c == '_' || c == ':' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())
            })
    };
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(
                name_ok(name) && ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{line}"
            );
            assert!(typed.insert(name.to_string()), "family {name} typed twice");
            continue;
        }
        if line.starts_with("# HELP ") || line.is_empty() {
            continue;
        }
        assert!(!line.starts_with('#'), "unknown comment {line}");
        let (series, value) = line.rsplit_once(' ').expect("sample has a value");
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("bad value in {line}"));
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => {
                let l = l.strip_suffix('}').expect("labels closed");
                let labels = l
                    .split("\",")
                    .filter(|p| !p.is_empty())
                    .map(|p| {
                        let (k, v) = p.split_once("=\"").expect("label=\"value\"");
                        assert!(name_ok(k), "{line}");
                        (k.to_string(), v.trim_end_matches('"').to_string())
                    })
                    .collect();
                (n, labels)
            }
            None => (series, Vec::new()),
        };
        assert!(
            name_ok(name) && typed.contains(name),
            "sample of an untyped family: {line}"
        );
        samples.push((name.to_string(), labels, value));
    }
    samples
}

#[test]
fn metrics_are_prometheus_text() {
    let rig = rig();
    let s = rig.store.begin_session(1_780_279_200).unwrap();
    rig.store
        .end_session(s, None, "timed_out", 1_780_279_260)
        .unwrap();
    let r = rig.client(Some(READ)).get("/metrics").unwrap();
    assert_eq!(r.status, 200);
    let samples = parse_prometheus(&r.body);
    let get = |name: &str, label: Option<(&str, &str)>| {
        samples
            .iter()
            .find(|(n, l, _)| n == name && label.is_none_or(|(k, v)| l.iter().any(|(a, b)| a == k && b == v)))
            .map(|s| s.2)
    };
    assert_eq!(get("kiosk_ready", None), Some(1.0));
    assert_eq!(
        get("kiosk_sessions_total", Some(("outcome", "timed_out"))),
        Some(1.0)
    );
    assert_eq!(get("kiosk_outbox_jobs", Some(("state", "pending"))), Some(0.0));
    assert_eq!(get("kiosk_device_up", Some(("device", "camera"))), Some(1.0));
    assert!(get("kiosk_disk_free_bytes", None).unwrap() > 0.0);
    assert_eq!(rig.client(None).get("/metrics").unwrap().status, 401);
}

#[test]
fn admin_unlocks_grants_and_takes_the_kiosk_out_of_service() {
    let rig = rig();
    let t = ticket(7);
    let now = kiosk::clock::unix_now();
    rig.store.admit_ticket(&t, now).unwrap().unwrap();
    rig.store.lock_ticket(&t.id, "liveness", now).unwrap();
    let admin = rig.client(Some(ADMIN));
    let id = t.id.to_string();
    let r = admin
        .post(&format!("/v1/admin/tickets/{id}/unlock"), &json!({}))
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(rig.store.ticket_state(&t.id).unwrap().unwrap().locked.is_none());
    let r = admin
        .post(&format!("/v1/admin/tickets/{id}/grant"), &json!({ "shots": 2 }))
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["shots_left"], 5);
    let r = admin
        .post(
            &format!("/v1/admin/tickets/{}/grant", "ab".repeat(16)),
            &json!({}),
        )
        .unwrap();
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(
        admin
            .post("/v1/admin/tickets/zz/unlock", &json!({}))
            .unwrap()
            .status,
        400
    );

    let r = admin
        .post("/v1/admin/out-of-service", &json!({ "reason": "lens cleaning" }))
        .unwrap();
    assert_eq!(
        (r.status, r.json()["state"].clone()),
        (200, json!("OutOfService")),
        "{}",
        r.body
    );
    let s = rig.client(Some(READ)).get("/v1/status").unwrap().json();
    assert_eq!(s["status"]["out_of_service"], "lens cleaning");
    let r = admin.delete("/v1/admin/out-of-service").unwrap();
    assert_eq!(r.json()["state"], "Attract");

    let events: Vec<(String, String)> = rig
        .store
        .audit_since(0, 100)
        .unwrap()
        .into_iter()
        .map(|e| (e.actor, e.event))
        .collect();
    assert!(
        events.contains(&("api:ops".into(), "ticket_unlocked".into())),
        "{events:?}"
    );
    assert!(
        events.contains(&("api:ops".into(), "shot_granted".into())),
        "{events:?}"
    );
    let stats = rig.client(Some(READ)).get("/v1/stats?days=3").unwrap();
    assert_eq!(stats.status, 200);
    assert_eq!(stats.json()["utc_offset_secs"], 28800);
}
