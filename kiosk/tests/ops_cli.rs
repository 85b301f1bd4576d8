//! `kioskctl` operations commands as processes: `token new` prints a token whose hash is the line it
//! suggests, `api-cert` makes a certificate the API accepts, `config check` exits 0 or 1 naming the
//! key, and `status` / `ticket grant` reach a live API over TLS with the token from the environment.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use kiosk::ops::api::{self, ApiContext};
use kiosk::ops::auth::{ApiConfig, Scope, TokenConfig, token_hash};
use kiosk::ops::{Shared, Status};
use kiosk::store::Store;

fn kioskctl(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kioskctl"));
    c.args(args)
        .env_remove("KIOSK_TOKEN")
        .env_remove("KIOSK_API")
        .env_remove("KIOSK_API_CERT");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn demo_config() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/demo/kiosk.toml"))
        .unwrap()
}

#[test]
fn token_cert_and_config_check_work_together_and_status_reaches_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();

    let out = kioskctl(&["token", "new", "--name", "tech", "--scope", "admin"], &[]);
    assert!(out.status.success());
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(token.len(), 64);
    let line = String::from_utf8(out.stderr).unwrap();
    assert!(line.contains(&token_hash(&token)), "{line}");
    assert!(
        !line.contains(&token),
        "the token itself is printed once, on stdout"
    );

    let out = kioskctl(&["api-cert", "--host", "127.0.0.1", "--out", d], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = kioskctl(&["api-cert", "--host", "127.0.0.1", "--out", d], &[]);
    assert_eq!(out.status.code(), Some(2), "an existing key is never overwritten");

    let config = dir.path().join("kiosk.toml");
    std::fs::write(
        &config,
        format!(
            "{}\n[ops.api]\nlisten = \"127.0.0.1:0\"\ncert = \"api.crt\"\nkey = \"api.key\"\n\
             tokens = [{{ name = \"tech\", scope = \"admin\", sha256 = \"{}\" }}]\n",
            demo_config(),
            token_hash(&token)
        ),
    )
    .unwrap();
    let out = kioskctl(&["config", "check", config.to_str().unwrap()], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        format!("{}\n[ops.api]\nlisten = \"127.0.0.1:0\"\ncert = \"api.crt\"\nkey = \"api.key\"\ntokens = [{{ name = \"x\", scope = \"admin\", sha256 = \"12\" }}]\n", demo_config()),
    )
    .unwrap();
    let out = kioskctl(&["config", "check", bad.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ops.api.tokens"));

    // A live API with the certificate kioskctl made.
    let store = Arc::new(Store::open(dir.path().join("kiosk.db")).unwrap());
    let (shared, _commands) = Shared::new(Status {
        state: "Attract".into(),
        ready: true,
        ..Status::default()
    });
    let api_config = ApiConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        cert: dir.path().join("api.crt"),
        key: dir.path().join("api.key"),
        tokens: vec![TokenConfig {
            name: "tech".into(),
            scope: Scope::Admin,
            sha256: token_hash(&token),
        }],
        max_failures: 5,
        failure_window_secs: 60,
        utc_offset_secs: 0,
    };
    let ctx = ApiContext {
        store,
        logs: None,
        shared: Arc::new(shared),
        data_dir: dir.path().to_path_buf(),
    };
    let server = api::start(&api_config, Path::new(""), ctx).unwrap();
    let url = format!("https://{}", server.local_addr());
    let cert = format!("{d}/api.crt");
    let env = [
        ("KIOSK_TOKEN", token.as_str()),
        ("KIOSK_API", url.as_str()),
        ("KIOSK_API_CERT", cert.as_str()),
    ];
    let out = kioskctl(&["status"], &env);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["status"]["state"], "Attract");
    let out = kioskctl(&["ticket", "grant", &"ab".repeat(16)], &env);
    assert_eq!(out.status.code(), Some(1), "a refusal by the kiosk exits 1");
    assert!(String::from_utf8_lossy(&out.stderr).contains("404"));
    let out = kioskctl(
        &["status"],
        &[
            ("KIOSK_TOKEN", "wrong"),
            ("KIOSK_API", url.as_str()),
            ("KIOSK_API_CERT", cert.as_str()),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
}
