//! `kioskctl` commands that talk to a running kiosk through its operator API (`status`, `logs`,
//! `queue [list|retry|purge-acked]`, `selftest`, `service`, `ticket unlock|grant`, `export`), plus `token new` and
//! `config check`, which need no running kiosk.
//!
//! On the device the defaults reach the local kiosk: `https://127.0.0.1:8443`, the certificate in
//! `/etc/kiosk/api.crt`, the token in `$KIOSK_TOKEN` or `/etc/kiosk/operator.token`. Going through
//! the API rather than the database means every technician action is authenticated and audited the
//! same way as a remote operator's. What it deliberately does not do: edit the database behind the
//! kiosk's back, or print anything the API did not already redact.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use kiosk::ops::client::{Client, Reply};
use serde_json::{Value, json};

/// Where and how to reach the kiosk.
#[derive(Debug, Clone, clap::Args)]
pub struct Conn {
    /// Base URL of the operator API.
    #[arg(
        long,
        global = true,
        default_value = "https://127.0.0.1:8443",
        env = "KIOSK_API"
    )]
    url: String,
    /// File with the bearer token (else $KIOSK_TOKEN).
    #[arg(long, global = true, default_value = "/etc/kiosk/operator.token")]
    token_file: PathBuf,
    /// The API's certificate (PEM) to trust.
    #[arg(
        long,
        global = true,
        default_value = "/etc/kiosk/api.crt",
        env = "KIOSK_API_CERT"
    )]
    cert: PathBuf,
}

impl Conn {
    fn client(&self) -> anyhow::Result<Client> {
        let token = match std::env::var("KIOSK_TOKEN") {
            Ok(t) if !t.trim().is_empty() => t.trim().to_string(),
            _ => std::fs::read_to_string(&self.token_file)
                .with_context(|| format!("no $KIOSK_TOKEN and cannot read {}", self.token_file.display()))?
                .trim()
                .to_string(),
        };
        Ok(Client::new(&self.url, Some(token), &self.cert)?)
    }
}

/// Exits 0 on 2xx, 1 on a refusal by the kiosk (with its message on stderr).
fn answer(r: Reply) -> anyhow::Result<ExitCode> {
    if (200..300).contains(&r.status) {
        println!("{}", pretty(&r));
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "kioskctl: HTTP {}: {}",
            r.status,
            r.json()["error"].as_str().unwrap_or(&r.body)
        );
        Ok(ExitCode::from(1))
    }
}

fn pretty(r: &Reply) -> String {
    match serde_json::from_str::<Value>(&r.body) {
        Ok(v) => serde_json::to_string_pretty(&v).unwrap_or_else(|_| r.body.clone()),
        Err(_) => r.body.trim_end().to_string(),
    }
}

fn ok_json(r: Reply, what: &str) -> anyhow::Result<Value> {
    if !(200..300).contains(&r.status) {
        bail!("{what}: HTTP {}: {}", r.status, r.body.trim());
    }
    Ok(r.json())
}

pub fn status(conn: &Conn) -> anyhow::Result<ExitCode> {
    answer(conn.client()?.get("/v1/status")?)
}

pub fn selftest(conn: &Conn) -> anyhow::Result<ExitCode> {
    answer(conn.client()?.post("/v1/admin/selftest", &json!({}))?)
}

/// `kioskctl logs`.
#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// Print records after this cursor (0: from the oldest kept).
    #[arg(long, default_value_t = 0)]
    since: i64,
    /// Least severe level to show: error, warn, info, debug, trace.
    #[arg(long)]
    level: Option<String>,
    /// Keep polling for new records.
    #[arg(long)]
    follow: bool,
    /// One JSON object per line instead of text.
    #[arg(long)]
    json: bool,
}

pub fn logs(conn: &Conn, args: LogsArgs) -> anyhow::Result<ExitCode> {
    let client = conn.client()?;
    let mut since = args.since;
    let level = args.level.map(|l| format!("&level={l}")).unwrap_or_default();
    let mut out = std::io::stdout().lock();
    // Without --follow, stop at the newest record that existed at the first answer: records written
    // meanwhile would otherwise keep the loop going.
    let mut end: Option<i64> = None;
    loop {
        let v = ok_json(
            client.get(&format!("/v1/logs?since={since}&limit=1000{level}"))?,
            "logs",
        )?;
        let end_cursor = *end.get_or_insert(v["last"].as_i64().unwrap_or(0));
        let records: Vec<Value> = v["records"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|r| args.follow || r["cursor"].as_i64().unwrap_or(0) <= end_cursor)
            .collect();
        for r in &records {
            if args.json {
                writeln!(out, "{r}")?;
            } else {
                let at = time::OffsetDateTime::from_unix_timestamp(r["at"].as_i64().unwrap_or(0))
                    .map(|t| t.to_string())
                    .unwrap_or_default();
                writeln!(
                    out,
                    "{:>8} {at} {:5} {}: {} {}",
                    r["cursor"],
                    r["level"].as_str().unwrap_or(""),
                    r["target"].as_str().unwrap_or(""),
                    r["message"].as_str().unwrap_or(""),
                    r["fields"]
                )?;
            }
        }
        out.flush()?;
        since = v["next"].as_i64().unwrap_or(since);
        if !args.follow && (records.is_empty() || since >= end_cursor) {
            return Ok(ExitCode::SUCCESS);
        }
        if records.is_empty() {
            std::thread::sleep(Duration::from_secs(1));
        }
    }
}

/// `kioskctl queue list|retry|purge-acked`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum QueueCmd {
    /// Counts per state, the pending jobs and the failed (parked) ones with their last error.
    List,
    /// Every failed job becomes due now; the uploader retries it at its next lease.
    Retry,
    /// Delete acknowledged jobs (rows and local sealed files) acknowledged at least this long ago.
    /// Jobs not yet acknowledged are never touched.
    PurgeAcked {
        /// A duration: `30d`, `12h`, `90m`, `3600s` or seconds (`0`: every acknowledged job).
        #[arg(long, value_parser = parse_duration_secs)]
        older_than: i64,
    },
}

/// Parses `30d`, `12h`, `90m`, `45s` or a plain number of seconds.
pub fn parse_duration_secs(text: &str) -> Result<i64, String> {
    let t = text.trim();
    let (digits, unit) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&t[..i], c.to_ascii_lowercase()),
        _ => (t, 's'),
    };
    let n: i64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 30d, 12h, 90m or 3600"))?;
    let unit_secs = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return Err(format!("unknown unit in {text:?}: use s, m, h or d")),
    };
    if n < 0 {
        return Err("a duration cannot be negative".into());
    }
    n.checked_mul(unit_secs)
        .ok_or_else(|| format!("{text:?} is too long"))
}

pub fn queue(conn: &Conn, cmd: QueueCmd) -> anyhow::Result<ExitCode> {
    let c = conn.client()?;
    answer(match cmd {
        QueueCmd::List => c.get("/v1/queue")?,
        QueueCmd::Retry => c.post("/v1/admin/queue/retry", &json!({}))?,
        QueueCmd::PurgeAcked { older_than } => c.post(
            "/v1/admin/queue/purge-acked",
            &json!({ "older_than_secs": older_than }),
        )?,
    })
}

/// `kioskctl service out|in`.
#[derive(Debug, clap::Subcommand)]
pub enum ServiceCmd {
    /// Take the kiosk out of service; the screen shows the reason to students.
    Out {
        #[arg(long)]
        reason: String,
    },
    /// Put it back into service.
    In,
}

pub fn service(conn: &Conn, cmd: ServiceCmd) -> anyhow::Result<ExitCode> {
    let c = conn.client()?;
    answer(match cmd {
        ServiceCmd::Out { reason } => c.post("/v1/admin/out-of-service", &json!({ "reason": reason }))?,
        ServiceCmd::In => c.delete("/v1/admin/out-of-service")?,
    })
}

/// `kioskctl ticket unlock|grant TICKET`.
#[derive(Debug, clap::Args)]
pub struct TicketOpArgs {
    /// Ticket id, 32 hex digits (as in the logs and the queue).
    ticket: String,
    /// Shots to grant (grant only).
    #[arg(long, default_value_t = 1)]
    shots: u8,
    #[command(flatten)]
    conn: Conn,
}

pub fn ticket_unlock(args: TicketOpArgs) -> anyhow::Result<ExitCode> {
    answer(
        args.conn
            .client()?
            .post(&format!("/v1/admin/tickets/{}/unlock", args.ticket), &json!({}))?,
    )
}

pub fn ticket_grant(args: TicketOpArgs) -> anyhow::Result<ExitCode> {
    answer(args.conn.client()?.post(
        &format!("/v1/admin/tickets/{}/grant", args.ticket),
        &json!({ "shots": args.shots }),
    )?)
}

/// `kioskctl export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Where to write the bundle (JSON).
    #[arg(long)]
    out: PathBuf,
    /// Days of statistics.
    #[arg(long, default_value_t = 30)]
    days: u32,
}

/// A support bundle: status, queue counts, statistics and every kept log record, already redacted by
/// the kiosk and scrubbed once more here (queue entries are reduced to counts: support needs no ids).
pub fn export(conn: &Conn, args: ExportArgs) -> anyhow::Result<ExitCode> {
    let c = conn.client()?;
    let status = ok_json(c.get("/v1/status")?, "status")?;
    let stats = ok_json(c.get(&format!("/v1/stats?days={}", args.days))?, "stats")?;
    let queue = ok_json(c.get("/v1/queue")?, "queue")?;
    let mut logs = Vec::new();
    let mut since = 0;
    let mut end: Option<i64> = None;
    loop {
        let v = ok_json(c.get(&format!("/v1/logs?since={since}&limit=5000"))?, "logs")?;
        let end_cursor = *end.get_or_insert(v["last"].as_i64().unwrap_or(0));
        let records = v["records"].as_array().cloned().unwrap_or_default();
        if records.is_empty() {
            break;
        }
        since = v["next"].as_i64().unwrap_or(since);
        logs.extend(records);
        if since >= end_cursor {
            break;
        }
    }
    let bundle = json!({
        "kind": "kiosk-support-bundle",
        "status": status,
        "queue": queue["counts"],
        "stats": stats,
        "logs": logs,
    });
    let text = kiosk::ops::redact::scrub(&serde_json::to_string_pretty(&bundle)?).into_owned();
    write_private(&args.out, text.as_bytes())?;
    eprintln!("wrote {} ({} log records)", args.out.display(), logs.len());
    Ok(ExitCode::SUCCESS)
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes)?;
    Ok(())
}

/// `kioskctl token new`: a fresh operator token and the line for the configuration.
pub fn token_new(name: &str, scope: &str) -> anyhow::Result<ExitCode> {
    if !matches!(scope, "read" | "admin") {
        bail!("scope must be read or admin");
    }
    let token = kiosk::ops::auth::new_token().map_err(|e| anyhow::anyhow!("random source: {e}"))?;
    println!("{token}");
    eprintln!(
        "add to [ops.api] tokens (the token itself is shown once and stored nowhere):\n  \
         {{ name = \"{name}\", scope = \"{scope}\", sha256 = \"{}\" }}",
        kiosk::ops::auth::token_hash(&token)
    );
    Ok(ExitCode::SUCCESS)
}

/// `kioskctl api-cert`: a self-signed end-entity certificate and key for the operator API. Not a CA
/// certificate (rustls refuses a CA certificate as a server's own), valid for the given names and
/// addresses; clients pin it with `--cert`.
pub fn api_cert(hosts: Vec<String>, out: &Path, days: u32) -> anyhow::Result<ExitCode> {
    if hosts.is_empty() {
        bail!("name at least one --host (IP address or DNS name the operators use)");
    }
    let mut params = rcgen::CertificateParams::new(hosts)?;
    let today = time::OffsetDateTime::from_unix_timestamp(kiosk::clock::unix_now())?;
    params.not_before = today - time::Duration::days(1);
    params.not_after = today + time::Duration::days(i64::from(days));
    params.is_ca = rcgen::IsCa::ExplicitNoCa;
    let key = rcgen::KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let key_path = out.join("api.key");
    if key_path.exists() {
        bail!("{} exists; refusing to overwrite a key", key_path.display());
    }
    write_private(&key_path, key.serialize_pem().as_bytes())?;
    std::fs::write(out.join("api.crt"), cert.pem())?;
    eprintln!("wrote {}/api.crt and api.key (0600)", out.display());
    Ok(ExitCode::SUCCESS)
}

/// `kioskctl config check`: loads and validates the configuration as `kiosk run` would.
pub fn config_check(path: &Path) -> anyhow::Result<ExitCode> {
    match kiosk::config::KioskConfig::load(path) {
        Ok(c) => {
            let api = c.ops.api.as_ref().map(|a| a.listen.to_string());
            if let Some(a) = &c.ops.api {
                kiosk::ops::api::tls_config(&a.cert, &a.key)?;
            }
            println!(
                "{}: ok (site {}, {} issuer key(s), operator API {})",
                path.display(),
                c.site,
                c.tickets.issuers.len(),
                api.as_deref().unwrap_or("off")
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("kioskctl: {e}");
            Ok(ExitCode::from(1))
        }
    }
}
