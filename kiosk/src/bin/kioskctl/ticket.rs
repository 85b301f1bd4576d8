//! `kioskctl ticket ...`: key generation, issuing and verifying shooting tickets.

use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum TicketCmd {}

pub fn run(cmd: TicketCmd) -> anyhow::Result<ExitCode> {
    match cmd {}
}
