//! `kioskctl`: the technician's and operator's command-line tool on the device.
//!
//! Each subcommand lives in its own module; this file only parses arguments and dispatches.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod check;
mod eval;
mod qr;
mod selftest;
mod ticket;
mod unit;

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
    /// Run every check on a labelled folder (`DIR/labels.json`) and report the agreement per check.
    Eval(eval::EvalArgs),
    /// Decode QR codes in image files as the kiosk's camera path does; one JSON line per image.
    QrDecode(qr::DecodeArgs),
    /// Render text as a QR code (optionally as a phone held up in a camera frame).
    QrEncode(qr::EncodeArgs),
    /// Generate the collection unit's key pair for sealing photos (age X25519).
    UnitKeygen(unit::UnitKeygenArgs),
    /// Exercise every configured device and print a verdict per device.
    Selftest(selftest::SelftestArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Ticket { cmd } => ticket::run(cmd),
        Command::Check(args) => check::run(args),
        Command::Eval(args) => eval::run(args),
        Command::QrDecode(args) => qr::decode(args),
        Command::QrEncode(args) => qr::encode(args),
        Command::UnitKeygen(args) => unit::keygen(args),
        Command::Selftest(args) => selftest::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("kioskctl: {e:#}");
            ExitCode::from(2)
        }
    }
}
