//! `kioskctl`: the technician's and operator's command-line tool on the device.
//!
//! Each subcommand lives in its own module; this file only parses arguments and dispatches.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod check;
mod eval;
mod layout;
mod ops;
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
    /// Make the print layout sheet (6-inch, 300 dpi) of a standardized photo: `--kind 1inch|2inch IN OUT`.
    Layout(layout::LayoutArgs),
    /// Decode QR codes in image files as the kiosk's camera path does; one JSON line per image.
    QrDecode(qr::DecodeArgs),
    /// Render text as a QR code (optionally as a phone held up in a camera frame).
    QrEncode(qr::EncodeArgs),
    /// Generate the collection unit's key pair for sealing photos (age X25519).
    UnitKeygen(unit::UnitKeygenArgs),
    /// Exercise every configured device and print a verdict per device.
    Selftest(selftest::SelftestArgs),
    /// The running kiosk's status: state, devices, versions, disk, queue.
    Status(ops::Conn),
    /// Log records from a cursor (`--follow` keeps polling).
    Logs {
        #[command(flatten)]
        args: ops::LogsArgs,
        #[command(flatten)]
        conn: ops::Conn,
    },
    /// The upload queue: `list` (default) counts, pending and failed jobs; `retry` failed jobs;
    /// `purge-acked` acknowledged jobs past a retention window.
    Queue {
        #[command(subcommand)]
        cmd: Option<ops::QueueCmd>,
        #[command(flatten)]
        conn: ops::Conn,
    },
    /// Ask the running kiosk to run its self-test (through the operator API; `selftest` exercises the
    /// devices directly and needs the kiosk stopped).
    RemoteSelftest(ops::Conn),
    /// Take the kiosk out of service or put it back.
    Service {
        #[command(subcommand)]
        cmd: ops::ServiceCmd,
        #[command(flatten)]
        conn: ops::Conn,
    },
    /// Write a redacted support bundle (status, stats, queue counts, logs) to a file.
    Export {
        #[command(flatten)]
        args: ops::ExportArgs,
        #[command(flatten)]
        conn: ops::Conn,
    },
    /// Operator tokens.
    Token {
        #[command(subcommand)]
        cmd: TokenCmd,
    },
    /// Make the operator API's TLS certificate and key (self-signed, not a CA) in DIR.
    ApiCert {
        /// IP address or DNS name clients connect to (repeatable).
        #[arg(long = "host", required = true)]
        hosts: Vec<String>,
        #[arg(long, default_value = "/etc/kiosk")]
        out: std::path::PathBuf,
        #[arg(long, default_value_t = 825)]
        days: u32,
    },
    /// Configuration files.
    Config {
        #[command(subcommand)]
        cmd: ConfigCmd,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCmd {
    /// Make a new token: prints it, and on stderr the hashed line for the configuration.
    New {
        #[arg(long)]
        name: String,
        /// read or admin.
        #[arg(long, default_value = "read")]
        scope: String,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCmd {
    /// Load and validate a kiosk configuration as `kiosk run` would (exit 1 when invalid).
    Check {
        #[arg(default_value = "/etc/kiosk/kiosk.toml")]
        path: std::path::PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Ticket { cmd } => ticket::run(cmd),
        Command::Check(args) => check::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Layout(args) => layout::run(args),
        Command::QrDecode(args) => qr::decode(args),
        Command::QrEncode(args) => qr::encode(args),
        Command::UnitKeygen(args) => unit::keygen(args),
        Command::Selftest(args) => selftest::run(args),
        Command::Status(conn) => ops::status(&conn),
        Command::Logs { args, conn } => ops::logs(&conn, args),
        Command::Queue { cmd, conn } => ops::queue(&conn, cmd.unwrap_or(ops::QueueCmd::List)),
        Command::RemoteSelftest(conn) => ops::selftest(&conn),
        Command::Service { cmd, conn } => ops::service(&conn, cmd),
        Command::Export { args, conn } => ops::export(&conn, args),
        Command::Token {
            cmd: TokenCmd::New { name, scope },
        } => ops::token_new(&name, &scope),
        Command::ApiCert { hosts, out, days } => ops::api_cert(hosts, &out, days),
        Command::Config {
            cmd: ConfigCmd::Check { path },
        } => ops::config_check(&path),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("kioskctl: {e:#}");
            ExitCode::from(2)
        }
    }
}
