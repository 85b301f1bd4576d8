//! The S3 target against a real S3-compatible server on loopback: moto's server (PyPI
//! `moto[server]`, installed by `scripts/setup-s3.sh` into `.runtime/moto-venv`), started here on a
//! free port and stopped at the end.
//!
//! Checked: a delivery stores every sealed file and the manifest with the recorded hashes (read back
//! over plain HTTP, independently of `object_store`); delivering again is "already stored", not a
//! second copy; different content under a job's key is a permanent conflict, never overwritten; and
//! the `kiosk-uploader` service code drains a queue into the bucket and stops on SIGTERM.
//!
//! Run: `scripts/setup-s3.sh && cargo test -p tests --test s3 -- --nocapture`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use kiosk::outbox::{Delivery, DeliveryError, S3Settings, S3Target, Spool, Target, Throttle};
use kiosk::store::Store;
use sha2::{Digest, Sha256};
use tests::pipeline;

const ROLE_ENV: &str = "KIOSK_UPLOAD_S3_CHILD";
const BUCKET: &str = "kiosk-photos";
const PREFIX: &str = "kiosk-17/";

#[test]
fn s3_child() {
    let Some(config) = std::env::var_os(ROLE_ENV) else {
        return;
    };
    pipeline::run_uploader_child(&PathBuf::from(config)).unwrap();
}

/// moto's server, killed on drop.
struct Moto {
    child: Child,
    port: u16,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_moto() -> Moto {
    let bin = std::env::var_os("KIOSK_MOTO_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| tests::repo_root().join(".runtime/moto-venv/bin/moto_server"));
    assert!(
        bin.exists(),
        "{} not found: run scripts/setup-s3.sh (installs PyPI moto[server] into .runtime/moto-venv)",
        bin.display()
    );
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(bin)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let moto = Moto { child, port };
    let started = kiosk::clock::monotonic();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(60), "moto did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    moto
}

/// One plain HTTP/1.1 request to moto: status and body. moto does not verify signatures, but it
/// refuses anonymous reads of private objects, so the request names the test credentials.
fn http(port: u16, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\nConnection: close\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/s3/aws4_request, \
         SignedHeaders=host, Signature=0000\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut body = raw[split + 4..].to_vec();
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    (status, body)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = b.windows(2).position(|w| w == b"\r\n").unwrap();
        let n = usize::from_str_radix(String::from_utf8_lossy(&b[..line_end]).trim(), 16).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&b[line_end + 2..line_end + 2 + n]);
        b = &b[line_end + 2 + n + 2..];
    }
}

fn settings(port: u16) -> S3Settings {
    S3Settings {
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        bucket: BUCKET.into(),
        region: "us-east-1".into(),
        prefix: PREFIX.into(),
        access_key_id: "testing".into(),
        secret_access_key: "testing".into(),
        virtual_hosted_style: false,
        allow_http: true,
        ca_pem: None,
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(10),
    }
}

#[test]
fn s3_target_stores_verifies_dedupes_and_refuses_to_overwrite() {
    if std::env::var_os(ROLE_ENV).is_some() {
        return;
    }
    let moto = start_moto();
    assert_eq!(
        http(moto.port, "PUT", &format!("/{BUCKET}"), b"").0,
        200,
        "create bucket"
    );
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let db = dir.join("kiosk.sqlite");
    let store = Store::open(&db).unwrap();
    let identity = age::x25519::Identity::generate();
    let spool = Spool::new(dir.join("spool"), &[identity.to_public().to_string()]).unwrap();
    let now = kiosk::clock::unix_now();

    // The target on its own: created, then already stored; a conflicting object is never replaced.
    let target = S3Target::new(settings(moto.port)).unwrap();
    let (first, _) = pipeline::accept_one(&store, &spool, now).unwrap();
    let job = store.job(&first).unwrap().unwrap();
    let throttle = Throttle::default();
    assert_eq!(target.deliver(&job, &throttle).unwrap(), Delivery::Created);
    assert_eq!(target.deliver(&job, &throttle).unwrap(), Delivery::AlreadyStored);
    for f in &job.files {
        let (status, body) = http(
            moto.port,
            "GET",
            &format!("/{BUCKET}/{PREFIX}{first}/{}.age", f.role),
            b"",
        );
        assert_eq!(status, 200);
        assert_eq!(
            hex::encode(Sha256::digest(&body)),
            f.sha256,
            "{} differs in the bucket",
            f.role
        );
    }
    let (status, manifest) = http(
        moto.port,
        "GET",
        &format!("/{BUCKET}/{PREFIX}{first}/manifest.json"),
        b"",
    );
    assert_eq!(status, 200);
    let doc: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    assert_eq!(doc["job_id"], first.to_string());
    let (clash, _) = pipeline::accept_one(&store, &spool, now).unwrap();
    let clash_job = store.job(&clash).unwrap().unwrap();
    let squatter = format!("/{BUCKET}/{PREFIX}{clash}/{}.age", clash_job.files[0].role);
    assert_eq!(http(moto.port, "PUT", &squatter, b"someone else's bytes").0, 200);
    match target.deliver(&clash_job, &throttle) {
        Err(DeliveryError::Permanent(msg)) => assert!(msg.contains("other content"), "{msg}"),
        other => panic!("expected a permanent conflict, got {other:?}"),
    }
    assert_eq!(http(moto.port, "GET", &squatter, b"").1, b"someone else's bytes");
    drop(target);

    // The service: a queue of jobs drains into the bucket; SIGTERM stops it.
    let mut ids = vec![first];
    for _ in 0..8 {
        ids.push(pipeline::accept_one(&store, &spool, now).unwrap().0);
    }
    // The conflicting job would only ever fail: take it out of this run.
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute(
            "UPDATE jobs SET state = 'failed', last_error = 'test' WHERE job_id = ?1",
            [clash.to_string()],
        )
        .unwrap();
    let config = dir.join("uploader.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\npath = {db:?}\n\n[target]\nkind = \"s3\"\nendpoint = \"http://127.0.0.1:{}\"\n\
             bucket = {BUCKET:?}\nprefix = {PREFIX:?}\naccess_key_id = \"testing\"\n\
             secret_access_key = \"testing\"\nallow_http = true\n\n[upload]\nconcurrency = 2\n\
             lease_secs = 30\nrequest_timeout_secs = 10\nretention_secs = 0\npoll_ms = 100\n",
            moto.port
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("uploader.log")).unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "s3_child", "--nocapture", "--test-threads=1"])
        .env(ROLE_ENV, &config)
        .env("RUST_LOG", "kiosk=info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let started = kiosk::clock::monotonic();
    loop {
        let c = store.outbox_counts().unwrap();
        if c.acked as usize == ids.len() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90) && child.try_wait().unwrap().is_none(),
            "not drained: {c:?}\n{}",
            std::fs::read_to_string(dir.join("uploader.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    pipeline::sigterm(child.id()).unwrap();
    assert!(child.wait().unwrap().success());
    for id in &ids {
        let job = store.job(id).unwrap().unwrap();
        let (status, _) = http(
            moto.port,
            "GET",
            &format!("/{BUCKET}/{PREFIX}{id}/manifest.json"),
            b"",
        );
        assert_eq!(status, 200, "manifest of {id}");
        for f in &job.files {
            assert!(!f.path.exists(), "local copy of {id} kept with retention 0");
        }
    }
    println!(
        "s3: jobs={} delivered={} conflict_refused=1",
        ids.len(),
        ids.len()
    );
}
