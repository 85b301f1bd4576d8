//! `kiosk`: the kiosk's main program.
//!
//! `kiosk demo` runs one complete graduate session on simulated hardware (see `kiosk::shell::demo`).
//! `kiosk run` is the service's main loop (see `kiosk::shell::run`) on the devices of the
//! configuration's `[devices]`, or on simulated ones with `--sim --frames DIR`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kiosk::shell::demo::{self, DemoOptions};
use kiosk::shell::run::{RunOptions, RunStats};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
    /// The kiosk service: the real-time main loop, systemd notification (READY, WATCHDOG), logging
    /// and the operator API. Runs until killed.
    Run {
        /// Kiosk configuration.
        #[arg(long, default_value = "/etc/kiosk/kiosk.toml")]
        config: PathBuf,
        /// Overrides the configuration's data_dir.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Every device simulated, whatever `[devices]` says (no hardware); needs --frames.
        #[arg(long, requires = "frames")]
        sim: bool,
        /// Fixture folder the simulated camera shows (scan/, shots/, framing/).
        #[arg(long, requires = "sim")]
        frames: Option<PathBuf>,
        /// Exit after this many seconds (smoke tests).
        #[arg(long = "for", value_name = "SECS")]
        run_for: Option<f64>,
        /// Simulated fault: the main loop hangs once, this many seconds after start...
        #[arg(long, requires_all = ["sim", "sim_hang_for"], value_name = "SECS")]
        sim_hang_at: Option<f64>,
        /// ...for this many seconds (to see the watchdog stop).
        #[arg(long, requires = "sim_hang_at", value_name = "SECS")]
        sim_hang_for: Option<f64>,
        /// Print the loop's pacing (ticks, tick times, presents; with --window the frames drawn, the
        /// longest gap between two and the cold start) and the peak RSS as one JSON line at exit.
        #[arg(long)]
        stats: bool,
        /// Open the touchscreen window (Slint; needs a display, or the linuxkms backend on the
        /// device) and run the kiosk behind it: with --sim a person can click through a session.
        #[arg(long)]
        window: bool,
        /// With --sim: a scripted student plays every session by touch, in real time (the demo's
        /// student), looking at the live preview for SECS before each shot (default 8).
        #[arg(long, requires = "sim", value_name = "SECS", num_args = 0..=1, default_missing_value = "8")]
        autoplay: Option<f64>,
    },
}

fn secs(s: f64) -> Duration {
    Duration::try_from_secs_f64(s).unwrap_or(Duration::ZERO)
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
    let process_start = kiosk::clock::monotonic();
    let cli = Cli::parse();
    match cli.command {
        Command::Run {
            config,
            data_dir,
            sim,
            frames,
            run_for,
            sim_hang_at,
            sim_hang_for,
            stats,
            window,
            autoplay,
        } => {
            let stats = stats.then(|| Arc::new(Mutex::new(RunStats::default())));
            let opts = RunOptions {
                config,
                data_dir,
                sim_frames: frames.filter(|_| sim),
                run_for: run_for.map(secs),
                sim_hang: sim_hang_at.zip(sim_hang_for).map(|(a, f)| (secs(a), secs(f))),
                stop: None,
                stats: stats.clone(),
                autoplay: autoplay.map(secs),
            };
            let result = if window {
                kiosk::shell::window::run_windowed(&opts, process_start)
            } else {
                kiosk::shell::run::run(&opts)
            };
            if let Some(stats) = stats {
                let mut st = stats.lock().unwrap_or_else(|p| p.into_inner()).clone();
                st.peak_rss_mib = kiosk::shell::run::peak_rss_mib();
                println!("{}", serde_json::to_string(&st).expect("stats serialize"));
            }
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("kiosk run: {e:#}");
                    eprintln!("kiosk run: {e:#}");
                    if e.downcast_ref::<kiosk::shell::run::Unrunnable>().is_some() {
                        ExitCode::from(kiosk::shell::run::EXIT_CONFIG)
                    } else {
                        ExitCode::from(2)
                    }
                }
            }
        }
        Command::Demo {
            data_dir,
            frames,
            config,
            quiet,
        } => {
            tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
                )
                .with_writer(std::io::stderr)
                .init();
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
