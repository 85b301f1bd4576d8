//! `kioskctl check ...`: run the photo checks on image files.

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    files: Vec<std::path::PathBuf>,
}

pub fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("checks are not wired yet ({} files)", args.files.len())
}
