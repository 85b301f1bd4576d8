//! `kioskctl selftest --json` on the simulation sample passes every device, and on a config whose
//! scanner is absent fails naming the key; both within seconds.

use std::path::Path;
use std::process::Command;

fn kioskctl(args: &[&str]) -> (bool, Vec<serde_json::Value>) {
    let out = Command::new(env!("CARGO_BIN_EXE_kioskctl"))
        .args(args)
        .output()
        .expect("kioskctl runs");
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    (out.status.success(), lines)
}

#[test]
fn selftest_on_the_simulation_passes_every_device() {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/sim.toml");
    let (ok, lines) = kioskctl(&[
        "selftest",
        "--json",
        "--config",
        config.to_str().unwrap_or_default(),
    ]);
    let devices: Vec<&str> = lines.iter().filter_map(|l| l["device"].as_str()).collect();
    assert_eq!(devices, ["camera", "lights", "seat", "qr", "buttons"]);
    assert!(ok, "{lines:?}");
    assert!(lines.iter().all(|l| l["ok"] == true), "{lines:?}");
    assert_eq!(lines[0]["details"]["preview"], serde_json::json!([1920, 1080]));
    // The scan frames of the fixture hold a ticket QR: the camera path sees it.
    assert_eq!(lines[3]["details"]["codes_in_view"], 1, "{:?}", lines[3]);
}

#[test]
fn selftest_names_an_absent_device() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("kiosk.toml");
    std::fs::write(
        &p,
        "site = \"S1\"\n[tickets]\nissuers = [{ key_id = 7, public_key = \"3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29\" }]\n[storage]\nrecipients = [\"age1qrcj7czlzfkl4j773vknnfg8y8hzka62mvka0nv0evm2dh5q7dfspll9ng\"]\n[devices.qr]\ndriver = \"serial\"\npath = \"/dev/kiosk-absent-scanner\"\n",
    )
    .expect("write");
    let (ok, lines) = kioskctl(&["selftest", "--json", "--config", p.to_str().unwrap_or_default()]);
    assert!(!ok);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["device"], "devices.qr.path");
    assert_eq!(lines[0]["details"]["kind"], "disconnected");
}
