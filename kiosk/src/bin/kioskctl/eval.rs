//! `kioskctl eval DIR`: measure how often the photo checks agree with a labelled corpus.
//!
//! Reads `DIR/labels.json` (schema: `testdata/kiosk/README.md`: `images[]` with `file` and `expect`,
//! one of `pass`/`fail`/`either` per check id), runs the same analyzer as the kiosk on every image and
//! prints, per check, a confusion table (label pass/fail/either against our pass/fail/undetermined) and
//! the agreement on decided labels. `either` labels are not scored; an `undetermined` answer on a decided
//! label counts as a disagreement (never as agreement), an advisory as a pass (it does not block). The
//! last line is one JSON object `{"images","agreement","false_pass","ms_median"}`.
//!
//! It does not tune anything: thresholds live in the spec, which `--spec` can point at a file to try.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use kiosk::vision::CheckStatus;
use kiosk::vision::analyze::Analyzer;
use kiosk::vision::spec::{DEFAULT_SPEC, PhotoSpec};
use serde::Deserialize;

#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// Photo spec id (built in) or a spec TOML file.
    #[arg(long, default_value = DEFAULT_SPEC)]
    spec: String,
    /// Also print one JSON line per image (labels, our statuses and the raw measures) on stderr.
    #[arg(long)]
    verbose: bool,
    /// Folder with `labels.json` and the images it names.
    dir: PathBuf,
}

#[derive(Debug, Deserialize)]
struct Labels {
    check_ids: Option<Vec<String>>,
    images: Vec<Image>,
}

#[derive(Debug, Deserialize)]
struct Image {
    file: String,
    expect: BTreeMap<String, String>,
}

/// Our answer, as scored.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Ours {
    Pass,
    Fail,
    Undetermined,
}

#[derive(Default)]
struct Table {
    /// [label pass, fail, either][ours pass, fail, undetermined]
    counts: [[u32; 3]; 3],
}

pub fn run(args: EvalArgs) -> anyhow::Result<ExitCode> {
    let labels_path = args.dir.join("labels.json");
    if !labels_path.exists() {
        bail!(
            "{} not found: eval needs a labelled folder (e.g. ../shared/testdata/kiosk)",
            labels_path.display()
        );
    }
    let text = std::fs::read_to_string(&labels_path)
        .with_context(|| format!("reading {}", labels_path.display()))?;
    let labels: Labels =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", labels_path.display()))?;
    let spec = if args.spec.ends_with(".toml") {
        PhotoSpec::load(args.spec.as_ref())?
    } else {
        PhotoSpec::builtin_by_id(&args.spec)?
    };
    let check_ids: Vec<String> = match &labels.check_ids {
        Some(ids) => ids.clone(),
        None => {
            let mut ids: Vec<String> = labels
                .images
                .iter()
                .flat_map(|i| i.expect.keys().cloned())
                .collect();
            ids.sort();
            ids.dedup();
            ids
        }
    };
    let paths = kiosk::runtime::setup()?;
    let mut analyzer = Analyzer::new(&paths)?;
    let mut tables: BTreeMap<String, Table> = check_ids
        .iter()
        .map(|id| (id.clone(), Table::default()))
        .collect();
    let mut times = Vec::new();
    for image in &labels.images {
        let path = args.dir.join(&image.file);
        let img = image::open(&path)
            .with_context(|| format!("reading {}", path.display()))?
            .to_rgb8();
        let t0 = kiosk::clock::monotonic();
        let analysis = analyzer.analyze(&img, &spec)?;
        times.push((kiosk::clock::monotonic() - t0).as_secs_f64() * 1000.0);
        let mut ours_line = serde_json::Map::new();
        for id in &check_ids {
            let Some(label) = image.expect.get(id) else {
                continue;
            };
            let row = match label.as_str() {
                "pass" => 0,
                "fail" => 1,
                "either" => 2,
                other => bail!("{}: unknown label {other:?} for {id}", image.file),
            };
            let ours = match analysis.verdict.get(id).map(|c| c.status) {
                Some(CheckStatus::Pass | CheckStatus::Advisory) => Ours::Pass,
                Some(CheckStatus::Fail) => Ours::Fail,
                Some(CheckStatus::Undetermined) | None => Ours::Undetermined,
            };
            tables.get_mut(id).expect("table per check id").counts[row][ours as usize] += 1;
            let mark = match ours {
                Ours::Pass => "pass",
                Ours::Fail => "fail",
                Ours::Undetermined => "undetermined",
            };
            let value = analysis.verdict.get(id).and_then(|c| c.value);
            ours_line.insert(
                id.clone(),
                serde_json::json!({"label": label, "ours": mark, "value": value}),
            );
        }
        if args.verbose {
            eprintln!(
                "{}",
                serde_json::json!({
                    "file": image.file,
                    "checks": ours_line,
                    "measures": analysis.measures,
                    "ms": (times[times.len() - 1] * 10.0).round() / 10.0,
                })
            );
        }
    }

    let mut agreement = serde_json::Map::new();
    let mut false_pass = serde_json::Map::new();
    println!(
        "{:<24} {:>8} {:>8}  label: ours pass/fail/undetermined",
        "check", "agree", "f.pass"
    );
    for (id, t) in &tables {
        let c = &t.counts;
        let decided: u32 = c[0].iter().sum::<u32>() + c[1].iter().sum::<u32>();
        let agree = c[0][0] + c[1][1];
        let ratio = if decided == 0 {
            serde_json::Value::Null
        } else {
            serde_json::json!(((agree as f64 / decided as f64) * 1000.0).round() / 1000.0)
        };
        println!(
            "{:<24} {:>8} {:>8}  pass: {}/{}/{}  fail: {}/{}/{}  either: {}/{}/{}",
            id,
            if decided == 0 {
                "-".to_string()
            } else {
                format!("{agree}/{decided}")
            },
            c[1][0],
            c[0][0],
            c[0][1],
            c[0][2],
            c[1][0],
            c[1][1],
            c[1][2],
            c[2][0],
            c[2][1],
            c[2][2],
        );
        agreement.insert(id.clone(), ratio);
        false_pass.insert(id.clone(), serde_json::json!(c[1][0]));
    }
    times.sort_by(f64::total_cmp);
    let ms_median = times.get(times.len() / 2).copied().unwrap_or(0.0);
    println!(
        "{}",
        serde_json::json!({
            "images": labels.images.len(),
            "agreement": agreement,
            "false_pass": false_pass,
            "ms_median": (ms_median * 10.0).round() / 10.0,
        })
    );
    Ok(ExitCode::SUCCESS)
}
