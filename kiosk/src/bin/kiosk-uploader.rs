//! `kiosk-uploader`: drains the kiosk's upload outbox into the configured target until SIGTERM.
//!
//! A separate process (and systemd unit) from the kiosk, sharing its database, so a hung upload can
//! never freeze the screen and the kiosk can never lose an upload by crashing. It does no work of its
//! own beyond wiring: configuration, signals, the clock; `kiosk::outbox::Uploader` does the rest.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use clap::Parser;
use kiosk::outbox::UploaderConfig;

/// Drains the kiosk's upload outbox until SIGTERM.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Configuration file (TOML; see docs/uploader.md).
    #[arg(long, default_value = "/etc/kiosk/uploader.toml")]
    config: PathBuf,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let config = UploaderConfig::load(&args.config)?;
    let stop = Arc::new(AtomicBool::new(false));
    // SIGTERM (systemd stop) and SIGINT (a technician's Ctrl-C) both mean: finish what is in flight,
    // take nothing new, exit 0.
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&stop)).context("installing signal handler")?;
    }
    kiosk::outbox::run_configured(&config, &stop, kiosk::clock::unix_now)?;
    tracing::info!("stopped");
    Ok(())
}
