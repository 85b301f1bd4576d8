//! `kiosk run --sim` as systemd runs it: a fake `NOTIFY_SOCKET` sees READY once the database is open
//! and the first frame is handled, then WATCHDOG pings from the main loop, none while the loop is
//! stalled (a simulated hang), and pings again after. The same run serves the operator API on
//! loopback (out of service and back through the real main loop), and its local log, which saw the
//! fixture ticket scanned, carries neither the student's name, number nor ID digits.
//!
//! Needs `scripts/setup.sh` (ONNX Runtime and the models), like the demo.

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kiosk::clock::monotonic;
use kiosk::ops::auth::token_hash;
use kiosk::ops::client::Client;
use kiosk::ops::logs::LogStore;
use serde_json::json;

const TOKEN: &str = "run-service-test-token";

fn demo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/demo")
}

#[test]
fn ready_then_watchdog_from_the_main_loop_and_none_while_it_hangs() {
    let dir = tempfile::tempdir().unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    std::fs::write(dir.path().join("api.crt"), ck.cert.pem()).unwrap();
    std::fs::write(dir.path().join("api.key"), ck.signing_key.serialize_pem()).unwrap();
    let base = std::fs::read_to_string(demo().join("kiosk.toml")).unwrap();
    let config = dir.path().join("kiosk.toml");
    std::fs::write(
        &config,
        format!(
            "{base}\n[ops.api]\nlisten = \"127.0.0.1:0\"\ncert = \"api.crt\"\nkey = \"api.key\"\n\
             tokens = [{{ name = \"test\", scope = \"admin\", sha256 = \"{}\" }}]\n",
            token_hash(TOKEN)
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let sock_path = dir.path().join("notify");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100))).unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_kiosk"))
        .arg("run")
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(&data)
        .arg("--sim")
        .arg("--frames")
        .arg(demo().join("pass"))
        .args(["--for", "13", "--sim-hang-at", "4", "--sim-hang-for", "4"])
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "1000000")
        .env_remove("WATCHDOG_PID")
        .env_remove("JOURNAL_STREAM")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // Notifications are collected on a thread so the API can be exercised meanwhile.
    let messages: Arc<Mutex<Vec<(Instant, String)>>> = Arc::default();
    let collector = {
        let messages = messages.clone();
        std::thread::spawn(move || {
            let started = monotonic();
            let mut buf = [0u8; 4096];
            while monotonic() < started + Duration::from_secs(120) {
                if let Ok(n) = sock.recv(&mut buf) {
                    let text = String::from_utf8_lossy(&buf[..n]).to_string();
                    let done = text.contains("STOPPING=1");
                    messages.lock().unwrap().push((monotonic(), text));
                    if done {
                        return;
                    }
                }
            }
        })
    };
    let ready_at = loop {
        if let Some((t, _)) = messages
            .lock()
            .unwrap()
            .iter()
            .find(|(_, m)| m.starts_with("READY=1"))
        {
            break *t;
        }
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            panic!("kiosk run exited {status} before READY (did scripts/setup.sh run?):\n{err}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };

    // The operator API of the live process, found from its own log.
    let logs = LogStore::open(&data.join("logs.sqlite"), 10_000).unwrap();
    let addr = logs
        .since(0, 5, 10_000)
        .unwrap()
        .into_iter()
        .find(|r| r.message == "operator API listening")
        .expect("the API logs its address")
        .fields["addr"]
        .as_str()
        .unwrap()
        .to_string();
    let api = Client::new(
        &format!("https://{addr}"),
        Some(TOKEN.into()),
        &dir.path().join("api.crt"),
    )
    .unwrap();
    assert_eq!(api.get("/healthz").unwrap().status, 200);
    let r = api
        .post("/v1/admin/out-of-service", &json!({ "reason": "test" }))
        .unwrap();
    assert_eq!(
        (r.status, r.json()["state"].clone()),
        (200, json!("OutOfService")),
        "{}",
        r.body
    );
    let r = api.delete("/v1/admin/out-of-service").unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_ne!(r.json()["state"], "OutOfService");
    let status = api.get("/v1/status").unwrap().json();
    assert_eq!(status["status"]["simulated"], true);

    let exit = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(exit.success(), "{exit}: {err}");
    collector.join().unwrap();

    let messages = messages.lock().unwrap().clone();
    assert!(
        messages[0].1.starts_with("READY=1\nSTATUS="),
        "READY comes first: {messages:?}"
    );
    let pings: Vec<f64> = messages
        .iter()
        .filter(|(_, m)| m == "WATCHDOG=1")
        .map(|(t, _)| (*t - ready_at).as_secs_f64())
        .collect();
    // 1 s watchdog: a ping every 500 ms from a healthy loop. The bounds leave room for a loaded CI
    // machine (two cores shared with compilers) without accepting pings during the 4 s hang.
    let before = pings.iter().filter(|&&t| t < 3.5).count();
    assert!(before >= 3, "periodic pings before the hang: {pings:?}");
    let mut gaps: Vec<(f64, f64)> = pings.windows(2).map(|w| (w[0], w[1] - w[0])).collect();
    gaps.sort_by(|a, b| b.1.total_cmp(&a.1));
    let (gap_start, gap) = gaps[0];
    assert!(gap >= 3.7, "no ping while the loop hangs for 4 s: {pings:?}");
    assert!(
        (2.5..6.0).contains(&gap_start),
        "the silence is the hang: {pings:?}"
    );
    assert!(gaps[1].1 < 3.0, "the loop pings steadily otherwise: {pings:?}");
    let after = pings.iter().filter(|&&t| t > gap_start + gap).count();
    assert!(after >= 3, "pings resume after the hang: {pings:?}");
    assert!(messages.last().unwrap().1.contains("STOPPING=1"));

    // The ticket in front of the camera was read (so its name and numbers were in memory), and the
    // log carries none of them.
    let records = logs.since(0, 5, 100_000).unwrap();
    assert!(
        records.iter().any(|r| r.message == "ticket accepted"),
        "{records:?}"
    );
    assert!(
        records.iter().any(|r| r.message == "api access"),
        "every API access is logged"
    );
    for r in &records {
        let text = format!("{} {}", r.message, r.fields);
        for secret in ["测试学生", "测*生", "20261001", "0420"] {
            assert!(!text.contains(secret), "{secret} leaked in {text}");
        }
    }
}

/// A configuration that cannot work exits 78 (EX_CONFIG), which `kiosk.service` does not restart on:
/// restarting, and the reboot the start limit escalates to, would not fix it.
#[test]
fn an_unrunnable_configuration_exits_78_and_is_not_restarted() {
    let dir = tempfile::tempdir().unwrap();
    let run_with = |config: &std::path::Path, extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_kiosk"))
            .arg("run")
            .arg("--config")
            .arg(config)
            .args(extra)
            .env_remove("NOTIFY_SOCKET")
            .output()
            .unwrap()
    };
    let run = |extra: &[&str]| run_with(&demo().join("kiosk.toml"), extra);
    // No data directory in the demo configuration.
    assert_eq!(run(&[]).status.code(), Some(78));
    // A `[devices]` value that cannot work names its key.
    let base = std::fs::read_to_string(demo().join("kiosk.toml")).unwrap();
    let bad = dir.path().join("bad-pin.toml");
    std::fs::write(
        &bad,
        format!(
            "{base}\n[devices.seat]\ndriver = \"gpio\"\nup_pin = 1\ndown_pin = 24\n\
             top_limit_pin = 5\nbottom_limit_pin = 6\n"
        ),
    )
    .unwrap();
    let out = run_with(&bad, &["--data-dir", dir.path().to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(stderr.contains("devices.seat.up_pin"), "{stderr}");
    // So does a simulated camera whose frames folder does not exist.
    let out = run(&[
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--sim",
        "--frames",
        dir.path().join("nowhere").to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(78),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let unit =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../systemd/kiosk.service"))
            .unwrap();
    assert!(unit.lines().any(|l| l.trim() == "RestartPreventExitStatus=78"));
}

/// SIGTERM (systemd stopping the unit) ends the main loop between two ticks: the process says
/// STOPPING, drops its devices (a GPIO seat releases its relays on drop) and exits 0, instead of
/// vanishing with whatever outputs it was driving.
#[test]
fn sigterm_stops_the_loop_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("notify");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kiosk"))
        .arg("run")
        .arg("--config")
        .arg(demo().join("kiosk.toml"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--sim")
        .arg("--frames")
        .arg(demo().join("pass"))
        .args(["--for", "120"])
        .env("NOTIFY_SOCKET", &sock_path)
        .env_remove("WATCHDOG_USEC")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 4096];
    let deadline = monotonic() + Duration::from_secs(90);
    loop {
        if let Ok(n) = sock.recv(&mut buf)
            && buf[..n].starts_with(b"READY=1")
        {
            break;
        }
        assert!(monotonic() < deadline, "no READY (did scripts/setup.sh run?)");
    }
    let killed = monotonic();
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let mut stopping = false;
    while !stopping && monotonic() < killed + Duration::from_secs(10) {
        if let Ok(n) = sock.recv(&mut buf) {
            stopping = buf[..n].windows(10).any(|w| w == b"STOPPING=1");
        }
    }
    let status = child.wait().unwrap();
    let took = monotonic() - killed;
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(stopping, "STOPPING=1 after SIGTERM: {err}");
    assert!(status.success(), "{status}: {err}");
    assert!(took < Duration::from_secs(5), "stopped in {took:?}");
    assert!(err.contains("kiosk stopping"), "{err}");
}
