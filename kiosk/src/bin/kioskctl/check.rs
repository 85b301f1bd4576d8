//! `kioskctl check`: run the photo checks on image files, one JSON line per image, optionally writing the
//! standardized JPEG. The same analyzer as the kiosk's shutter-to-verdict path.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use kiosk::vision::analyze::Analyzer;
use kiosk::vision::spec::{DEFAULT_SPEC, PhotoSpec};

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Photo spec id (built in: chsi-graduate, chsi-graduate-white) or a spec TOML file.
    #[arg(long, default_value = DEFAULT_SPEC)]
    spec: String,
    /// JSON lines (the default); kept so scripts can say what they expect.
    #[arg(long)]
    json: bool,
    /// Write the standardized JPEG of each image that can be standardized into this folder.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Image files (JPEG or PNG).
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

pub fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let _ = args.json;
    let spec = if args.spec.ends_with(".toml") {
        PhotoSpec::load(args.spec.as_ref())?
    } else {
        PhotoSpec::builtin_by_id(&args.spec)?
    };
    let paths = kiosk::runtime::setup()?;
    let mut analyzer = Analyzer::new(&paths)?;
    if let Some(out) = &args.out {
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    }
    let mut unreadable = false;
    for file in &args.files {
        let img = match image::open(file) {
            Ok(i) => i.to_rgb8(),
            Err(e) => {
                unreadable = true;
                println!(
                    "{}",
                    serde_json::json!({ "file": file.display().to_string(), "error": e.to_string() })
                );
                continue;
            }
        };
        let t0 = kiosk::clock::monotonic();
        let analysis = analyzer.analyze(&img, &spec)?;
        let ms = (kiosk::clock::monotonic() - t0).as_secs_f64() * 1000.0;
        let passed = analysis.verdict.passed() && analysis.standardized.is_some();
        let checks: serde_json::Map<String, serde_json::Value> = analysis
            .verdict
            .checks
            .iter()
            .map(|c| {
                (
                    c.id.to_string(),
                    serde_json::json!({
                        "status": c.status,
                        "value": c.value,
                        "limit": c.limit,
                        "message_zh": c.message_zh,
                        "message_en": c.message_en,
                        "guidance_zh": c.guidance_zh,
                        "guidance_en": c.guidance_en,
                    }),
                )
            })
            .collect();
        let mut line = serde_json::json!({
            "file": file.display().to_string(),
            "verdict": if passed { "pass" } else { "fail" },
            "checks": checks,
            "ms": (ms * 10.0).round() / 10.0,
            "stages_ms": analysis.times,
        });
        if let (Some(out), Some(s)) = (&args.out, &analysis.standardized) {
            let name = file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "photo".into());
            let path = out.join(format!("{name}.jpg"));
            std::fs::write(&path, &s.jpeg).with_context(|| format!("writing {}", path.display()))?;
            line["standardized"] = serde_json::json!(path.display().to_string());
        }
        println!("{line}");
    }
    Ok(if unreadable {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}
