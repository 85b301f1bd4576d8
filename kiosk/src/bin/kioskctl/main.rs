//! `kioskctl`: the technician's and operator's command-line tool on the device.
//!
//! Each subcommand lives in its own module; this file only parses arguments and dispatches.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod check;
mod ticket;

#[derive(Debug, Parser)]
#[command(
    name = "kioskctl",
    version,
    about = "Service and operations tool for the graduate photo kiosk"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Issue, verify and manage shooting tickets and issuer keys.
    Ticket {
        #[command(subcommand)]
        cmd: ticket::TicketCmd,
    },
    /// Run the photo checks on image files and print one JSON line per image.
    Check(check::CheckArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Ticket { cmd } => ticket::run(cmd),
        Command::Check(args) => check::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("kioskctl: {e:#}");
            ExitCode::from(2)
        }
    }
}
