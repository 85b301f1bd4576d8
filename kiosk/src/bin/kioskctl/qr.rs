//! `kioskctl qr-decode` and `kioskctl qr-encode`: decode QR codes from image files the way the kiosk's
//! camera path does, and render any text as a QR (bare, or as a phone held up in a camera frame) for
//! testing a kiosk's scanner with codes that are not tickets.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use kiosk::ticket::{PhonePose, phone_frame, try_qr_image};

#[derive(Debug, clap::Args)]
pub struct DecodeArgs {
    /// Print one JSON object per image (the default output is the same JSON; kept for symmetry).
    #[arg(long)]
    json: bool,
    /// Image files (PNG or JPEG).
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct EncodeArgs {
    /// The text to encode.
    #[arg(long)]
    text: String,
    /// Where to write the PNG (or JPEG, by extension).
    #[arg(long)]
    out: PathBuf,
    /// A camera frame to composite the QR into, as a phone held up to the camera.
    #[arg(long)]
    frame: Option<PathBuf>,
}

/// Bytes as a string: UTF-8 as is, anything else escaped (`\xNN`) rather than dropped.
fn escape(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => bytes.escape_ascii().to_string(),
    }
}

pub fn decode(args: DecodeArgs) -> anyhow::Result<ExitCode> {
    let _ = args.json;
    let mut failed = false;
    for file in &args.files {
        let line = match image::open(file) {
            Ok(img) => {
                let gray = img.to_luma8();
                let t0 = kiosk::clock::monotonic();
                let codes = hal::qr::decode(&gray);
                let ms = (kiosk::clock::monotonic() - t0).as_secs_f64() * 1000.0;
                serde_json::json!({
                    "file": file.display().to_string(),
                    "codes": codes.iter().map(|c| escape(c)).collect::<Vec<_>>(),
                    // The same payloads read as text the way phones and zbarimg show them
                    // (Shift_JIS when not UTF-8); `codes` keeps the bytes.
                    "text": codes.iter().map(|c| hal::qr::payload_text(c)).collect::<Vec<_>>(),
                    "ms": (ms * 10.0).round() / 10.0,
                })
            }
            Err(e) => {
                failed = true;
                serde_json::json!({ "file": file.display().to_string(), "codes": [], "error": e.to_string() })
            }
        };
        println!("{line}");
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

pub fn encode(args: EncodeArgs) -> anyhow::Result<ExitCode> {
    let module_px = if args.frame.is_some() { 4 } else { 8 };
    let qr =
        try_qr_image(&args.text, module_px).map_err(|e| anyhow::anyhow!("cannot encode the text: {e}"))?;
    match &args.frame {
        Some(frame) => {
            let bg = image::open(frame)
                .with_context(|| format!("reading {}", frame.display()))?
                .to_rgb8();
            phone_frame(&bg, &qr, &PhonePose::default()).save(&args.out)
        }
        None => qr.save(&args.out),
    }
    .with_context(|| format!("writing {}", args.out.display()))?;
    Ok(ExitCode::SUCCESS)
}
