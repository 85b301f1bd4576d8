//! The `kiosk demo` contract as a process: exit 0 when the session completed, 1 with the reason on stderr
//! when it did not, and in both cases the last stdout line is one JSON object with `ticket`,
//! `shots_used`, `verdicts`, `chosen`, `job_id` and `elapsed_ms`.
//!
//! Needs `scripts/setup.sh` (ONNX Runtime and the models).

use std::path::PathBuf;
use std::process::Command;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/demo")
}

fn demo(args: &[&str]) -> (i32, serde_json::Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kiosk"))
        .arg("demo")
        .args(args)
        .output()
        .expect("kiosk runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let last = stdout
        .lines()
        .last()
        .unwrap_or_else(|| panic!("no stdout; stderr: {stderr}"));
    let json = serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("last line is not JSON ({e}): {last}\n{stderr}"));
    (out.status.code().unwrap_or(-1), json, stderr)
}

#[test]
fn a_completed_session_exits_0_with_the_json_report_last() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let (code, json, stderr) = demo(&["--data-dir", data]);
    assert_eq!(code, 0, "{stderr}");
    for key in [
        "ticket",
        "shots_used",
        "verdicts",
        "chosen",
        "job_id",
        "elapsed_ms",
    ] {
        assert!(json.get(key).is_some(), "missing {key}: {json}");
    }
    assert_eq!(json["shots_used"], 2);
    assert_eq!(json["verdicts"].as_array().unwrap().len(), 2);
    assert_eq!(json["chosen"], 2);
    assert!(json["job_id"].as_str().is_some_and(|s| s.len() == 32));
    assert!(dir.path().join("kiosk.db").exists());
}

#[test]
fn a_refused_ticket_exits_1_with_the_reason_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let frames = fixtures().join("forged");
    let (code, json, stderr) = demo(&[
        "--quiet",
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--frames",
        frames.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(stderr.contains("bad_signature"), "{stderr}");
    assert_eq!(json["job_id"], serde_json::Value::Null);
    assert_eq!(json["outcome"], "rejected:bad_signature");
}

#[test]
fn a_missing_frames_folder_is_a_clear_error() {
    let (code, stderr) = {
        let out = Command::new(env!("CARGO_BIN_EXE_kiosk"))
            .args(["demo", "--frames", "/nonexistent/frames"])
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_eq!(code, 2);
    assert!(stderr.contains("/nonexistent/frames"), "{stderr}");
}
