//! `kioskctl layout`: the print layout sheet (6-inch, 300 dpi) of a standardized photo, for the print
//! shop. The composition is `kiosk::vision::layout`; this only reads and writes the files.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use kiosk::vision::layout::{LayoutKind, sheet_jpeg};

#[derive(Debug, clap::Args)]
pub struct LayoutArgs {
    /// 1inch (8 copies of 25x35 mm) or 2inch (4 copies of 35x49 mm).
    #[arg(long, value_parser = parse_kind)]
    kind: LayoutKind,
    /// The standardized photo (JPEG or PNG).
    input: PathBuf,
    /// Where to write the sheet (JPEG, 300 dpi).
    output: PathBuf,
}

fn parse_kind(s: &str) -> Result<LayoutKind, String> {
    LayoutKind::parse(s).ok_or_else(|| format!("unknown layout {s:?}: expected 1inch or 2inch"))
}

pub fn run(args: LayoutArgs) -> anyhow::Result<ExitCode> {
    let photo = image::open(&args.input)
        .with_context(|| format!("reading {}", args.input.display()))?
        .into_rgb8();
    let jpeg = sheet_jpeg(&photo, args.kind)?;
    std::fs::write(&args.output, &jpeg).with_context(|| format!("writing {}", args.output.display()))?;
    let spec = args.kind.spec();
    println!(
        "{}",
        serde_json::json!({
            "kind": args.kind.name(),
            "copies": spec.placements().len(),
            "sheet_px": [spec.sheet.0, spec.sheet.1],
            "copy_px": [spec.copy.0, spec.copy.1],
            "dpi": kiosk::vision::layout::DPI,
            "bytes": jpeg.len(),
            "output": args.output.display().to_string(),
        })
    );
    Ok(ExitCode::SUCCESS)
}
