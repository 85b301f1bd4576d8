//! The `kioskctl ticket` contract, run as a process: keygen, issue (text and PNG), verify by payload and
//! by image, exit codes and the reason on stderr.
//!
//! Argument parsing details are clap's business; this checks what scripts and units rely on.

use std::path::Path;
use std::process::{Command, Output};

fn kioskctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kioskctl"))
        .args(args)
        .output()
        .expect("run kioskctl")
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

#[test]
fn keygen_issue_verify_round_trip_and_rejections() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = dir.path().join("keys");
    let out = kioskctl(&["ticket", "keygen", "--out", path(&keys), "--key-id", "42"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (key, public) = (keys.join("issuer-0000002a.key"), keys.join("issuer-0000002a.pub"));
    assert!(key.is_file() && public.is_file());

    let png = dir.path().join("qr.png");
    let issue = kioskctl(&[
        "ticket",
        "issue",
        "--key",
        path(&key),
        "--student",
        "2201210345",
        "--name",
        "张三明",
        "--school",
        "北京大学",
        "--id-last4",
        "123x",
        "--site",
        "PKU-1",
        "--photo-type",
        "chsi-graduate",
        "--shots",
        "3",
        "--paid",
        "--out",
        path(&png),
    ]);
    assert!(
        issue.status.success(),
        "{}",
        String::from_utf8_lossy(&issue.stderr)
    );
    let payload = String::from_utf8(issue.stdout).expect("utf-8").trim().to_string();
    assert!(payload.starts_with("GK1:"), "{payload}");
    assert!(png.is_file());

    let ok = kioskctl(&[
        "ticket",
        "verify",
        "--pubkey",
        path(&public),
        "--payload",
        &payload,
        "--site",
        "PKU-1",
    ]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let shown = String::from_utf8_lossy(&ok.stdout);
    assert!(
        shown.contains("张*明") && shown.contains("123X") && shown.contains("2201210345"),
        "{shown}"
    );

    let from_image = kioskctl(&[
        "ticket",
        "verify",
        "--pubkey",
        path(&public),
        "--image",
        path(&png),
    ]);
    assert!(
        from_image.status.success(),
        "{}",
        String::from_utf8_lossy(&from_image.stderr)
    );

    let wrong_site = kioskctl(&[
        "ticket",
        "verify",
        "--pubkey",
        path(&public),
        "--payload",
        &payload,
        "--site",
        "THU-1",
    ]);
    assert_eq!(wrong_site.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&wrong_site.stderr).contains("wrong_site"));

    let raw = kioskctl(&[
        "ticket",
        "verify",
        "--pubkey",
        path(&public),
        "--payload",
        "https://www.chsi.com.cn/",
    ]);
    assert_eq!(raw.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&raw.stderr).contains("raw_chsi_code"));

    // Another unit's key: unknown key id.
    let other = dir.path().join("other");
    assert!(
        kioskctl(&["ticket", "keygen", "--out", path(&other), "--key-id", "7"])
            .status
            .success()
    );
    let unknown = kioskctl(&[
        "ticket",
        "verify",
        "--pubkey",
        path(&other.join("issuer-00000007.pub")),
        "--payload",
        &payload,
    ]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("unknown_key"));

    // Explicit times long past: the wall clock makes it expired whenever this runs.
    let old = kioskctl(&[
        "ticket",
        "issue",
        "--key",
        path(&key),
        "--student",
        "1",
        "--name",
        "李四",
        "--school",
        "清华",
        "--id-last4",
        "0000",
        "--issued",
        "2020-01-01T00:00:00Z",
        "--expires",
        "2020-01-02T00:00:00+08:00",
        "--out",
        path(&dir.path().join("old.png")),
    ]);
    assert!(old.status.success(), "{}", String::from_utf8_lossy(&old.stderr));
    let old_payload = String::from_utf8(old.stdout).expect("utf-8");
    let expired = kioskctl(&[
        "ticket",
        "verify",
        "--pubkey",
        path(&public),
        "--payload",
        old_payload.trim(),
    ]);
    assert_eq!(expired.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&expired.stderr).contains("expired"));

    // Keygen never overwrites a key that may have signed live tickets.
    let again = kioskctl(&["ticket", "keygen", "--out", path(&keys), "--key-id", "42"]);
    assert_eq!(again.status.code(), Some(2));
}

#[test]
fn issue_refuses_out_of_bounds_fields() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert!(
        kioskctl(&["ticket", "keygen", "--out", path(dir.path()), "--key-id", "1"])
            .status
            .success()
    );
    let key = dir.path().join("issuer-00000001.key");
    let out = kioskctl(&[
        "ticket",
        "issue",
        "--key",
        path(&key),
        "--student",
        &"1".repeat(40),
        "--name",
        "李四",
        "--school",
        "清华",
        "--id-last4",
        "1234",
        "--out",
        path(&dir.path().join("x.png")),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("student_no"));
}
