//! `kioskctl ticket ...`: key generation, issuing and verifying shooting tickets.
//!
//! A thin shell over `kiosk::ticket`: it parses arguments, reads and writes files and the clock, and prints.
//! It does not talk to the store, so `verify` cannot tell a completed or locked ticket from a fresh one.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use kiosk::ticket::{
    IssuerKey, PhonePose, Ticket, TicketId, TrustedKeys, VerifyPolicy, issue, mask_name, phone_frame,
    qr_image, rfc3339, verify_signature,
};

/// Pixels per QR module in the written PNG: big enough to print or show on a screen without blurring.
const MODULE_PX: u32 = 8;

#[derive(Debug, clap::Subcommand)]
pub enum TicketCmd {
    /// Generate an issuer key pair: writes issuer-XXXXXXXX.key (mode 0600) and .pub into DIR.
    Keygen {
        #[arg(long)]
        out: PathBuf,
        /// Key id; by default the first four bytes of the public key's SHA-256.
        #[arg(long)]
        key_id: Option<u32>,
    },
    /// Issue a signed ticket, print its payload text and write its QR code as a PNG.
    // Boxed so the dispatcher's `Command` enum stays small (clippy::large_enum_variant).
    Issue(Box<IssueArgs>),
    /// Verify a ticket payload or a QR image against trusted public keys.
    Verify(Box<VerifyArgs>),
    /// Unlock a ticket on a running kiosk (operator API, admin token).
    Unlock(Box<crate::ops::TicketOpArgs>),
    /// Grant extra shots to a ticket on a running kiosk (operator API, admin token).
    Grant(Box<crate::ops::TicketOpArgs>),
}

#[derive(Debug, clap::Args)]
pub struct IssueArgs {
    /// The issuer's .key file.
    #[arg(long)]
    key: PathBuf,
    /// Student number.
    #[arg(long)]
    student: String,
    /// Name; a full name is masked (张三明 → 张*明), one that already has `*` is kept.
    #[arg(long)]
    name: String,
    #[arg(long)]
    school: String,
    /// Last four characters of the ID number.
    #[arg(long)]
    id_last4: String,
    /// Site code, or `*` for any site of the unit.
    #[arg(long, default_value = "*")]
    site: String,
    /// Allowed photo type (repeatable); default chsi-graduate.
    #[arg(long = "photo-type")]
    photo_types: Vec<String>,
    #[arg(long, default_value_t = 3)]
    shots: u8,
    /// Paid in advance.
    #[arg(long)]
    paid: bool,
    /// Issue time, RFC 3339; default now.
    #[arg(long)]
    issued: Option<String>,
    /// Expiry, RFC 3339; default 24 hours after issue.
    #[arg(long)]
    expires: Option<String>,
    /// Where to write the QR code PNG.
    #[arg(long)]
    out: PathBuf,
    /// A camera frame to composite the QR into, as a phone held up to the camera; written instead of the
    /// bare QR.
    #[arg(long)]
    frame: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// A trusted issuer .pub file (repeatable).
    #[arg(long = "pubkey", required = true)]
    pubkeys: Vec<PathBuf>,
    /// The payload text.
    #[arg(long, conflicts_with = "image", required_unless_present = "image")]
    payload: Option<String>,
    /// An image with the QR code in it.
    #[arg(long)]
    image: Option<PathBuf>,
    /// This kiosk's site code; without it the site is shown but not checked.
    #[arg(long)]
    site: Option<String>,
}

pub fn run(cmd: TicketCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        TicketCmd::Keygen { out, key_id } => keygen(out, key_id),
        TicketCmd::Issue(args) => issue_cmd(*args),
        TicketCmd::Verify(args) => verify_cmd(*args),
        TicketCmd::Unlock(args) => crate::ops::ticket_unlock(*args),
        TicketCmd::Grant(args) => crate::ops::ticket_grant(*args),
    }
}

fn keygen(out: PathBuf, key_id: Option<u32>) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let key = match key_id {
        Some(id) => IssuerKey::generate(id)?,
        None => IssuerKey::generate_with_derived_id()?,
    };
    let (k, p) = key.save(&out)?;
    println!("key id {} ({:#010x})", key.key_id, key.key_id);
    println!("secret {}", k.display());
    println!("public {}", p.display());
    println!("public hex {}", key.public().hex());
    Ok(ExitCode::SUCCESS)
}

fn parse_time(s: &str) -> anyhow::Result<i64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .with_context(|| format!("not an RFC 3339 time: {s:?}"))?;
    Ok(t.unix_timestamp())
}

fn issue_cmd(a: IssueArgs) -> anyhow::Result<ExitCode> {
    let key = IssuerKey::load(&a.key)?;
    let issued_at = match &a.issued {
        Some(s) => parse_time(s)?,
        None => kiosk::clock::unix_now(),
    };
    let expires_at = match &a.expires {
        Some(s) => parse_time(s)?,
        None => issued_at + 24 * 3600,
    };
    let photo_types = if a.photo_types.is_empty() {
        vec!["chsi-graduate".to_string()]
    } else {
        a.photo_types
    };
    let ticket = Ticket {
        id: TicketId::random()?,
        student_no: a.student,
        masked_name: mask_name(&a.name),
        school: a.school,
        // The check character of a Chinese ID is an upper-case X; accept the lower-case one people type.
        id_last4: a.id_last4.to_ascii_uppercase(),
        site: a.site,
        photo_types,
        shots_allowed: a.shots,
        paid: a.paid,
        issued_at,
        expires_at,
        key_id: key.key_id,
    };
    let text = issue(&ticket, &key).context("cannot issue this ticket")?;
    match &a.frame {
        Some(bg) => {
            let bg = image::open(bg)
                .with_context(|| format!("reading {}", bg.display()))?
                .to_rgb8();
            // A phone on a camera frame is far smaller than a printable QR; start from 4-pixel modules.
            let qr = qr_image(&text, 4);
            phone_frame(&bg, &qr, &PhonePose::default()).save(&a.out)
        }
        None => qr_image(&text, MODULE_PX).save(&a.out),
    }
    .with_context(|| format!("writing {}", a.out.display()))?;
    eprintln!(
        "ticket {} for {} written to {}",
        ticket.id,
        ticket.masked_name,
        a.out.display()
    );
    println!("{text}");
    Ok(ExitCode::SUCCESS)
}

fn verify_cmd(a: VerifyArgs) -> anyhow::Result<ExitCode> {
    let keys = TrustedKeys::load_pub_files(&a.pubkeys)?;
    let payloads: Vec<Vec<u8>> = match (&a.payload, &a.image) {
        (Some(p), _) => vec![p.clone().into_bytes()],
        (None, Some(path)) => {
            let img = image::open(path).with_context(|| format!("reading {}", path.display()))?;
            let found = hal::qr::decode(&img.to_luma8());
            if found.is_empty() {
                eprintln!("no QR code found in {}", path.display());
                return Ok(ExitCode::FAILURE);
            }
            found
        }
        (None, None) => bail!("give --payload or --image"),
    };
    let now = kiosk::clock::unix_now();
    // Several codes in one image: report on the first that verifies, or the first failure.
    let mut first_err = None;
    for p in &payloads {
        let checked = verify_signature(p, &keys).and_then(|t| {
            // Without --site the site is reported, not checked: use the ticket's own site.
            let policy = VerifyPolicy::new(a.site.clone().unwrap_or_else(|| t.site.clone()));
            policy.check(&t, now).map(|()| t)
        });
        match checked {
            Ok(t) => {
                print_ticket(&t, a.site.is_some());
                return Ok(ExitCode::SUCCESS);
            }
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_err {
        eprintln!("rejected: {} [{}] ({e})", e.message_en(), e.code());
    }
    Ok(ExitCode::FAILURE)
}

fn print_ticket(t: &Ticket, site_checked: bool) {
    println!("valid ticket");
    println!("id           {}", t.id);
    println!("key id       {} ({:#010x})", t.key_id, t.key_id);
    println!("student no   {}", t.student_no);
    println!("name         {}", t.masked_name);
    println!("school       {}", t.school);
    println!("id last 4    {}", t.id_last4);
    println!(
        "site         {}{}",
        t.site,
        if site_checked {
            ""
        } else {
            " (not checked: no --site)"
        }
    );
    println!("photo types  {}", t.photo_types.join(", "));
    println!("shots        {}", t.shots_allowed);
    println!("paid         {}", if t.paid { "yes" } else { "no" });
    println!("issued at    {}", rfc3339(t.issued_at));
    println!("expires at   {}", rfc3339(t.expires_at));
}
