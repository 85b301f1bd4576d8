//! `kioskctl unit-keygen`: the collection unit's key pair for sealing photos (age X25519). The public key
//! ("age1...") goes into every kiosk's `[storage] recipients`; the secret key stays at the collection
//! unit, never on a kiosk.

use std::path::PathBuf;
use std::process::ExitCode;

use age::secrecy::ExposeSecret;
use anyhow::{Context, bail};

#[derive(Debug, clap::Args)]
pub struct UnitKeygenArgs {
    /// Folder for `unit.key` (secret, mode 0600) and `unit.pub`.
    #[arg(long)]
    out: PathBuf,
}

pub fn keygen(args: UnitKeygenArgs) -> anyhow::Result<ExitCode> {
    let (key_path, pub_path) = (args.out.join("unit.key"), args.out.join("unit.pub"));
    if key_path.exists() || pub_path.exists() {
        bail!(
            "{} or {} exists; refusing to overwrite a key",
            key_path.display(),
            pub_path.display()
        );
    }
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let identity = age::x25519::Identity::generate();
    let public = identity.to_public().to_string();
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&key_path)
            .with_context(|| format!("writing {}", key_path.display()))?;
        writeln!(
            f,
            "# collection unit secret key; keep it off the kiosks\n{}",
            identity.to_string().expose_secret()
        )?;
    }
    std::fs::write(&pub_path, format!("{public}\n"))
        .with_context(|| format!("writing {}", pub_path.display()))?;
    println!(
        "secret {}\npublic {}\nrecipient {public}",
        key_path.display(),
        pub_path.display()
    );
    Ok(ExitCode::SUCCESS)
}
