//! The HTTPS intake target: the API specified in `docs/intake-api.yaml`, over rustls.
//!
//! Per job: PUT each sealed file to `{base}/jobs/{job_id}/files/{role}` with its SHA-256, PUT the
//! manifest to `{base}/jobs/{job_id}`, then HEAD every one of them and compare size and hash with what
//! the outbox recorded. Every PUT is idempotent by job id (201 created, 200 already stored, 409 other
//! content), so a retry after any crash cannot file a job twice. The server is trusted only through
//! the configured CA (or the public roots when none is configured).
//!
//! What it deliberately does not do: retry, sleep between attempts or read the clock (the uploader
//! decides when to come back), follow redirects (an intake that moves is reconfigured, not followed),
//! or hold a whole file in memory (bodies stream from disk).

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use sha2::{Digest, Sha256};
use ureq::tls::{Certificate, RootCerts, TlsConfig};

use super::backoff::parse_retry_after;
use super::target::{Delivery, DeliveryError, Target, Throttle};
use crate::store::Job;

/// The header that carries a body's SHA-256 (64 lowercase hex digits), in requests and in HEAD
/// answers.
pub const SHA256_HEADER: &str = "x-content-sha256";

/// Longest response body we read (error texts, small JSON): a server cannot make us buffer more.
const MAX_RESPONSE_BODY: u64 = 64 * 1024;

/// How the HTTPS target connects.
#[derive(Clone, Debug)]
pub struct HttpsSettings {
    /// Base URL, e.g. `https://intake.example.edu/v1` (no trailing slash needed).
    pub url: String,
    /// PEM certificates to trust instead of the public roots (a unit's own CA).
    pub ca_pem: Option<Vec<u8>>,
    /// Bearer token identifying this kiosk.
    pub token: String,
    /// Connecting (TCP and TLS) may take this long.
    pub connect_timeout: Duration,
    /// One whole request (send, wait, receive) may take this long; a stalled server costs no more.
    pub request_timeout: Duration,
}

/// Errors building the target.
#[derive(Debug, thiserror::Error)]
pub enum HttpsSetupError {
    /// The URL is not `https://...` (plain HTTP would send photos and the token in clear).
    #[error("intake url must start with https:// (got {0:?})")]
    NotHttps(String),
    /// The CA file holds no usable certificate.
    #[error("CA: {0}")]
    Ca(String),
}

/// The HTTPS intake target.
#[derive(Debug)]
pub struct HttpsTarget {
    agent: ureq::Agent,
    base: String,
    auth: String,
    /// The intake URL's host, for logs: never the token.
    host: String,
}

fn trim_body(text: &str) -> String {
    text.chars()
        .take(200)
        .collect::<String>()
        .replace(['\n', '\r'], " ")
}

impl HttpsTarget {
    /// Builds the client. Fails on a non-HTTPS URL or an unreadable CA.
    pub fn new(settings: HttpsSettings) -> Result<HttpsTarget, HttpsSetupError> {
        let base = settings.url.trim_end_matches('/').to_string();
        let Some(rest) = base.strip_prefix("https://") else {
            return Err(HttpsSetupError::NotHttps(settings.url));
        };
        let host = rest.split('/').next().unwrap_or_default().to_string();
        let roots = match &settings.ca_pem {
            None => RootCerts::WebPki,
            Some(pem) => {
                let certs: Vec<Certificate<'static>> = ureq::tls::parse_pem(pem)
                    .filter_map(|item| match item {
                        Ok(ureq::tls::PemItem::Certificate(c)) => Some(Ok(c)),
                        Ok(_) => None,
                        Err(e) => Some(Err(e)),
                    })
                    .collect::<Result<_, _>>()
                    .map_err(|e| HttpsSetupError::Ca(e.to_string()))?;
                if certs.is_empty() {
                    return Err(HttpsSetupError::Ca("no certificate in the file".into()));
                }
                RootCerts::Specific(Arc::new(certs))
            }
        };
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_connect(Some(settings.connect_timeout))
            .timeout_global(Some(settings.request_timeout))
            .tls_config(TlsConfig::builder().root_certs(roots).build())
            .build()
            .new_agent();
        Ok(HttpsTarget {
            agent,
            base,
            auth: format!("Bearer {}", settings.token),
            host,
        })
    }

    /// The host the target talks to, for logs.
    pub fn host(&self) -> &str {
        &self.host
    }

    fn put(
        &self,
        url: &str,
        body: ureq::SendBody<'_>,
        len: u64,
        sha256: &str,
        content_type: &str,
    ) -> Result<u16, DeliveryError> {
        let mut resp = self
            .agent
            .put(url)
            .header("authorization", &self.auth)
            .header("content-type", content_type)
            .header("content-length", len.to_string())
            .header(SHA256_HEADER, sha256)
            .send(body)
            .map_err(|e| transport(&e))?;
        let status = resp.status().as_u16();
        let retry_after = retry_after(&resp);
        // Read the (small) body to the end so the connection can be reused.
        let text = resp
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BODY)
            .read_to_string()
            .map_err(|e| transport(&e))?;
        match status {
            200 | 201 => Ok(status),
            _ => Err(classify(
                status,
                retry_after,
                &format!("PUT: {}", trim_body(&text)),
            )),
        }
    }

    /// HEADs `url` and checks the stored size and hash.
    fn verify(&self, url: &str, size: u64, sha256: &str) -> Result<(), DeliveryError> {
        let resp = self
            .agent
            .head(url)
            .header("authorization", &self.auth)
            .call()
            .map_err(|e| transport(&e))?;
        let status = resp.status().as_u16();
        if status != 200 {
            return Err(classify(status, retry_after(&resp), "HEAD read-back"));
        }
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let got_sha = header(SHA256_HEADER).unwrap_or_default();
        let got_len = header("content-length").and_then(|v| v.parse::<u64>().ok());
        if got_sha != sha256 || got_len != Some(size) {
            // Transient: the next attempt PUTs again and the server either stores it right or
            // answers 409, which is permanent.
            return Err(DeliveryError::transient(format!(
                "read-back mismatch at {url}: size {got_len:?} sha256 {got_sha:.12}…, expected {size} {sha256:.12}…"
            )));
        }
        Ok(())
    }
}

/// The manifest: everything about the job except the files' bytes, serialized deterministically
/// (serde_json sorts object keys) so every retry sends byte-identical JSON with the same hash.
pub fn manifest(job: &Job) -> Vec<u8> {
    let meta: serde_json::Value = serde_json::from_str(&job.meta_json).unwrap_or(serde_json::Value::Null);
    let files: Vec<_> = job
        .files
        .iter()
        .map(|f| json!({ "role": f.role, "sha256": f.sha256, "size": f.size }))
        .collect();
    let doc = json!({
        "job_id": job.id.to_string(),
        "ticket_id": job.ticket.to_string(),
        "shot_no": job.shot_no,
        "spec_id": job.spec_id,
        "created_at": job.created_at,
        "meta": meta,
        "files": files,
    });
    serde_json::to_vec(&doc).unwrap_or_default()
}

fn retry_after(resp: &ureq::http::Response<ureq::Body>) -> Option<u64> {
    // The target does not read the clock, and a kiosk's clock may be wrong anyway: an HTTP-date is
    // compared with the far future and so counts as "now" (normal backoff applies); only the common
    // delta-seconds form sets a floor.
    resp.headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.trim()
                .parse::<u64>()
                .ok()
                .or_else(|| parse_retry_after(v, i64::MAX))
        })
}

fn transport(e: &ureq::Error) -> DeliveryError {
    DeliveryError::transient(format!("transport: {e}"))
}

fn classify(status: u16, retry_after: Option<u64>, what: &str) -> DeliveryError {
    match status {
        // Timeout, too early, rate limited, server errors: the server may recover.
        408 | 425 | 429 | 500..=599 => DeliveryError::Transient {
            reason: format!("HTTP {status} {what}"),
            retry_after,
        },
        // 422 on the manifest: the server lost a file we PUT (or never got it); the next attempt
        // sends every file again.
        422 => DeliveryError::transient(format!("HTTP {status} {what}")),
        // 400 (our body did not match its hash: the local file changed), 401/403 (token), 404,
        // 409 (other content under this id), 413: retrying the same request cannot help.
        _ => DeliveryError::Permanent(format!("HTTP {status} {what}")),
    }
}

fn open_checked(path: &Path, size: u64) -> Result<File, DeliveryError> {
    let file = File::open(path)
        .map_err(|e| DeliveryError::Permanent(format!("local file {}: {e}", path.display())))?;
    let len = file
        .metadata()
        .map_err(|e| DeliveryError::Permanent(format!("local file {}: {e}", path.display())))?
        .len();
    if len != size {
        return Err(DeliveryError::Permanent(format!(
            "local file {} is {len} bytes, the outbox recorded {size}",
            path.display()
        )));
    }
    Ok(file)
}

impl Target for HttpsTarget {
    fn deliver(&self, job: &Job, throttle: &Throttle) -> Result<Delivery, DeliveryError> {
        let job_url = format!("{}/jobs/{}", self.base, job.id);
        for f in &job.files {
            let file = open_checked(&f.path, f.size)?;
            let url = format!("{job_url}/files/{}", f.role);
            let body = ureq::SendBody::from_owned_reader(throttle.reader(file));
            self.put(&url, body, f.size, &f.sha256, "application/octet-stream")?;
        }
        let manifest = manifest(job);
        let manifest_sha = hex::encode(Sha256::digest(&manifest));
        let len = manifest.len() as u64;
        let mut reader = throttle.reader(&manifest[..]);
        let status = self.put(
            &job_url,
            ureq::SendBody::from_reader(&mut reader as &mut dyn Read),
            len,
            &manifest_sha,
            "application/json",
        )?;
        for f in &job.files {
            self.verify(&format!("{job_url}/files/{}", f.role), f.size, &f.sha256)?;
        }
        self.verify(&job_url, len, &manifest_sha)?;
        Ok(if status == 201 {
            Delivery::Created
        } else {
            Delivery::AlreadyStored
        })
    }
}
