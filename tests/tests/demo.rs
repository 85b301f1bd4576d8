//! The complete graduate session on simulated hardware, from the committed fixture folders: the scenario
//! that passes, the one that runs out of shots, and each refused ticket (forged, expired, raw CHSI code,
//! replayed), through the same code `kiosk demo` runs.
//!
//! Needs `scripts/setup.sh` (ONNX Runtime and the models); fails with that message when they are missing.

use std::path::Path;

use kiosk::shell::demo::{self, DemoOptions, DemoReport};
use kiosk::store::Store;
use tests::fixtures;

fn run(scenario: &str, data_dir: &Path) -> DemoReport {
    let fx = fixtures().join("demo");
    let opts = DemoOptions {
        config: fx.join("kiosk.toml"),
        frames: fx.join(scenario),
        data_dir: Some(data_dir.to_path_buf()),
        show_screens: false,
    };
    demo::run(&opts, |_, _| {})
        .unwrap_or_else(|e| panic!("demo {scenario} could not run (did scripts/setup.sh run?): {e:#}"))
}

#[test]
fn the_pass_scenario_completes_after_a_retake_and_files_a_standard_photo() {
    let dir = tempfile::tempdir().unwrap();
    let report = run("pass", dir.path());
    assert!(report.completed(), "{report:?}");
    assert_eq!(report.shots_used, 2);
    assert_eq!(report.verdicts.len(), 2);
    assert!(
        !report.verdicts[0].passed,
        "the tilted first shot fails: {:?}",
        report.verdicts[0]
    );
    assert_eq!(report.verdicts[0].failed, vec!["roll".to_string()]);
    assert!(report.verdicts[1].passed, "{:?}", report.verdicts[1]);
    assert_eq!(report.chosen, Some(2));
    assert!(
        report.kiosk_time_ms < 60_000,
        "a compliant student is done in under a minute of kiosk time"
    );

    // The job is durable in the real SQLite file, with the standardized photo it points at.
    let store = Store::open(dir.path().join("kiosk.db")).unwrap();
    assert!(store.integrity_check().unwrap());
    let jobs = store.pending_jobs(10).unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].id.to_string(), report.job_id.clone().unwrap());
    let std_file = jobs[0]
        .files
        .iter()
        .find(|f| f.role == "standardized")
        .expect("standardized file");
    // Sealed to the collection unit: only its secret key (a test key here) opens it.
    let jpeg = unseal(&std::fs::read(&std_file.path).unwrap());
    let img = image::load_from_memory(&jpeg).unwrap();
    assert_eq!((img.width(), img.height()), (480, 640));
    assert_eq!(
        kiosk::vision::standardize::jfif_density(&jpeg),
        Some((1, 300, 300))
    );
    assert!(
        (20 * 1024..=40 * 1024).contains(&jpeg.len()),
        "{} bytes",
        jpeg.len()
    );
}

/// Opens a file sealed to the demo collection unit's key.
fn unseal(sealed: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let text = std::fs::read_to_string(fixtures().join("keys/demo-unit.key")).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .expect("demo unit key");
    let identity: age::x25519::Identity = line.parse().unwrap();
    let decryptor = age::Decryptor::new(sealed).expect("an age file");
    let mut out = Vec::new();
    decryptor
        .decrypt(std::iter::once(&identity as &dyn age::Identity))
        .unwrap()
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Whether `w` (11 bytes) is the start of a JPEG: SOI, then an APP0 "JFIF", APP1 "Exif" or a DQT
/// segment header.
fn jpeg_start(w: &[u8]) -> bool {
    w[..3] == [0xFF, 0xD8, 0xFF]
        && (w[6..11] == *b"JFIF\0" || w[6..11] == *b"Exif\0" || w[3..7] == [0xDB, 0x00, 0x43, 0x00])
}

#[test]
fn jpeg_start_finds_encoded_photos_and_not_random_bytes() {
    let img = image::RgbImage::from_pixel(8, 8, image::Rgb([10, 20, 30]));
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new(&mut jpeg)
        .encode_image(&img)
        .unwrap();
    let mut buried = vec![7u8; 100];
    buried.extend(&jpeg);
    assert!(buried.windows(11).any(jpeg_start), "a JPEG inside other bytes");
    // SOI alone, as random ciphertext produces it, is not a JPEG.
    let mut noise = [0u8; 64];
    noise[10..13].copy_from_slice(&[0xFF, 0xD8, 0xFF]);
    assert!(!noise.windows(11).any(jpeg_start));
}

#[test]
fn the_data_directory_after_a_session_reveals_no_name_id_or_photo() {
    let dir = tempfile::tempdir().unwrap();
    // A passing shot (a draft) and a filed job both leave files behind.
    assert!(run("pass", dir.path()).completed());
    let files = files_under(dir.path());
    assert!(
        files.iter().any(|f| f.extension().is_some_and(|e| e == "age")),
        "sealed files exist: {files:?}"
    );
    // The fixture ticket's student: full name 测试学生 (masked 测**生 by the issuer), student number
    // 20261001, school 示例大学, last four of the ID 0420 (too short to scan for alone).
    let needles: [&[u8]; 4] = [
        "测试学生".as_bytes(),
        "测**生".as_bytes(),
        b"20261001",
        "示例大学".as_bytes(),
    ];
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        for needle in needles {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{} contains {:?}",
                file.display(),
                String::from_utf8_lossy(needle)
            );
        }
        // A JPEG's start of image followed by the segment every encoder here writes next (JFIF or
        // Exif header, or a quantization table). The three bytes FF D8 FF alone turn up by chance in
        // about one sealed file in thirty (a 600 KB ciphertext is random bytes), which made this flaky.
        assert!(
            !bytes.windows(11).any(jpeg_start),
            "{} holds a JPEG in clear",
            file.display()
        );
        assert!(
            image::load_from_memory(&bytes).is_err(),
            "{} decodes as an image",
            file.display()
        );
    }
}

#[test]
fn the_fail_scenario_runs_out_of_shots_with_a_reason_per_shot() {
    let dir = tempfile::tempdir().unwrap();
    let report = run("fail", dir.path());
    assert!(!report.completed());
    assert_eq!(report.outcome, "out_of_shots");
    assert_eq!(report.job_id, None);
    let failed: Vec<_> = report.verdicts.iter().map(|v| v.failed.clone()).collect();
    assert_eq!(
        failed,
        vec![
            // A second face in the crop is also a second person on the backdrop (the corpus labels
            // dup_face background: fail).
            vec!["single_face".to_string(), "background".to_string()],
            vec!["roll".to_string()],
            vec!["framing".to_string()]
        ]
    );
    let store = Store::open(dir.path().join("kiosk.db")).unwrap();
    assert_eq!(store.pending_jobs(10).unwrap().len(), 0, "nothing is filed");
}

#[test]
fn refused_tickets_each_have_their_own_reason() {
    for (scenario, code) in [
        ("forged", "bad_signature"),
        ("expired", "expired"),
        ("raw-chsi", "raw_chsi_code"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let report = run(scenario, dir.path());
        assert!(!report.completed());
        assert_eq!(
            report.outcome,
            format!("rejected:{code}"),
            "{scenario}: {report:?}"
        );
        assert_eq!(
            report.shots_used, 0,
            "{scenario}: no shot is taken on a refused ticket"
        );
        assert!(
            report.reason.as_deref().unwrap_or_default().starts_with(code),
            "{report:?}"
        );
    }
}

#[test]
fn a_completed_ticket_is_refused_when_shown_again() {
    let dir = tempfile::tempdir().unwrap();
    assert!(run("pass", dir.path()).completed());
    let again = run("pass", dir.path());
    assert_eq!(again.outcome, "rejected:already_completed");
    assert_eq!(again.job_id, None);
    let store = Store::open(dir.path().join("kiosk.db")).unwrap();
    assert_eq!(store.pending_jobs(10).unwrap().len(), 1, "still exactly one job");
}
