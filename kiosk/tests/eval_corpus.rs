//! The accuracy contract of the photo checks as a process: `kioskctl eval` on the labelled public corpus
//! (`../shared/testdata/kiosk`, or `$KIOSK_TESTDATA`) ends with one JSON line, every scored check agrees
//! with at least 95 % of the decided labels, and the checks whose wrong pass costs a graduate their photo
//! (single_face, roll, mouth_closed, eyes_open, sharpness, exposure) have no false pass. The fetched
//! corpus (`../shared/testdata/fetched/kiosk-eval`, read in place, never copied) is held to the same,
//! except `roll`, whose misses there are one base photo the corpus labels level while its pupils are
//! ~12 deg apart (docs/checks.md): a floor keeps it from getting worse.
//!
//! Needs `scripts/setup.sh` (ONNX Runtime and the models) and the shared test data; without the data it
//! fails and says where it looked, rather than passing silently.

use std::path::PathBuf;
use std::process::Command;

fn corpus() -> PathBuf {
    if let Ok(dir) = std::env::var("KIOSK_TESTDATA") {
        return PathBuf::from(dir);
    }
    find("kiosk")
}

fn find(sub: &str) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let candidates = [
        root.join("../shared/testdata").join(sub),
        root.join("../../shared/testdata").join(sub),
    ];
    candidates
        .iter()
        .find(|p| p.join("labels.json").exists())
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "labelled corpus not found (looked in {candidates:?}); set KIOSK_TESTDATA to testdata/kiosk"
            )
        })
}

/// Runs `kioskctl eval DIR` and returns its summary line and the whole output.
fn eval(dir: &std::path::Path) -> (serde_json::Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kioskctl"))
        .arg("eval")
        .arg(dir)
        .output()
        .expect("kioskctl runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "kioskctl eval failed: {stderr}");
    let last = stdout.lines().last().expect("eval prints a summary");
    let json: serde_json::Value = serde_json::from_str(last).expect("last line is JSON");
    (json, stdout.into_owned())
}

const MUST_NOT_PASS: [&str; 6] = [
    "single_face",
    "roll",
    "mouth_closed",
    "eyes_open",
    "sharpness",
    "exposure",
];

#[test]
fn eval_on_the_public_corpus_meets_the_accuracy_contract() {
    let (json, stdout) = eval(&corpus());
    assert_eq!(json["images"], 82, "{stdout}");
    for check in MUST_NOT_PASS {
        assert_eq!(json["false_pass"][check], 0, "false pass on {check}: {stdout}");
    }
    for (check, ratio) in json["agreement"].as_object().expect("agreement map") {
        if let Some(r) = ratio.as_f64() {
            assert!(r >= 0.95, "{check} agrees on only {r}: {stdout}");
        }
    }
}

#[test]
fn eval_on_the_fetched_corpus_meets_the_accuracy_contract() {
    let (json, stdout) = eval(&find("fetched/kiosk-eval"));
    assert_eq!(json["images"], 86, "{stdout}");
    for check in MUST_NOT_PASS {
        assert_eq!(json["false_pass"][check], 0, "false pass on {check}: {stdout}");
    }
    for (check, ratio) in json["agreement"].as_object().expect("agreement map") {
        if let Some(r) = ratio.as_f64() {
            let floor = if check == "roll" { 0.86 } else { 0.95 };
            assert!(r >= floor, "{check} agrees on only {r}: {stdout}");
        }
    }
}
