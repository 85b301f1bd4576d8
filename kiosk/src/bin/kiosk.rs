//! `kiosk`: the kiosk's main program.
//!
//! `kiosk demo` runs one complete graduate session on simulated hardware (see `kiosk::shell::demo`).
//! The real main loop on devices (`kiosk run`) joins with the hardware layer and the touchscreen UI.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kiosk::shell::demo::{self, DemoOptions};

#[derive(Debug, Parser)]
#[command(name = "kiosk", version, about = "Graduate photo kiosk")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// A scripted student goes through one complete session on simulated hardware. Exit 0 when the
    /// session completed; the last stdout line is a JSON report.
    Demo {
        /// Where the SQLite database and the photos go (default: a fresh temporary directory).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Fixture folder with scan/, shots/ (and optionally framing/, scenario.toml).
        #[arg(long)]
        frames: Option<PathBuf>,
        /// Kiosk configuration (default: the demo's, tests/fixtures/demo/kiosk.toml).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Print only the JSON report.
        #[arg(long)]
        quiet: bool,
    },
}

/// The repository's demo fixtures: found from the current directory upwards, else where this binary was
/// built from.
fn fixtures_dir() -> PathBuf {
    let rel = Path::new("tests").join("fixtures").join("demo");
    if let Ok(cwd) = std::env::current_dir() {
        for dir in cwd.ancestors() {
            if dir.join(&rel).is_dir() {
                return dir.join(&rel);
            }
        }
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Demo {
            data_dir,
            frames,
            config,
            quiet,
        } => {
            let fixtures = fixtures_dir();
            let opts = DemoOptions {
                config: config.unwrap_or_else(|| fixtures.join("kiosk.toml")),
                frames: frames.unwrap_or_else(|| fixtures.join("pass")),
                data_dir,
                show_screens: !quiet,
            };
            let result = demo::run(&opts, |t, text| {
                if !quiet {
                    for (i, line) in text.lines().enumerate() {
                        if i == 0 {
                            println!("[{:6.1}s] {line}", t.as_secs_f64());
                        } else {
                            println!("          {line}");
                        }
                    }
                }
            });
            match result {
                Ok(report) => {
                    let ok = report.completed();
                    if !ok {
                        eprintln!(
                            "kiosk demo: the session did not complete: {}",
                            report.reason.as_deref().unwrap_or(&report.outcome)
                        );
                    }
                    println!("{}", serde_json::to_string(&report).expect("report serializes"));
                    if ok { ExitCode::SUCCESS } else { ExitCode::from(1) }
                }
                Err(e) => {
                    eprintln!("kiosk demo: {e:#}");
                    ExitCode::from(2)
                }
            }
        }
    }
}
