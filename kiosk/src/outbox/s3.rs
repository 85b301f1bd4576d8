//! The S3-compatible target (AWS S3, MinIO, Aliyun OSS and the like) through `object_store`.
//!
//! Layout in the bucket: `{prefix}{job_id}/{role}.age` for the sealed files, then
//! `{prefix}{job_id}/manifest.json` (the same JSON as the HTTPS manifest); a unit processes a job when
//! its manifest appears. Idempotence without conditional-put support (which not every S3 clone has):
//! each object is looked up first and, if present, read back and compared, so a retry never
//! overwrites different content (that is a permanent conflict) and identical content counts as
//! already stored. Verification reads every object back and hashes it: an ETag is not a content
//! hash for every server, and MinIO has been seen accepting a mismatched checksum.
//!
//! What it deliberately does not do: retry inside `object_store` (retries are disabled; the uploader
//! owns backoff), create buckets, or keep a runtime of its own beyond one current-thread tokio
//! runtime that only this target's calls run on.

use std::path::PathBuf;
use std::time::Duration;

use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{ClientOptions, ObjectStore, PutPayload, RetryConfig};
use sha2::{Digest, Sha256};

use super::https::manifest;
use super::target::{Delivery, DeliveryError, Target, Throttle};
use crate::store::Job;

/// How to reach the bucket.
#[derive(Clone)]
pub struct S3Settings {
    /// `https://...` endpoint; `None` for AWS itself (derived from the region).
    pub endpoint: Option<String>,
    pub bucket: String,
    pub region: String,
    /// Key prefix, e.g. `"kiosk-17/"`; may be empty.
    pub prefix: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Path-style (`endpoint/bucket/key`, MinIO's default) unless true.
    pub virtual_hosted_style: bool,
    /// Plain HTTP: only for a loopback test server; photos are sealed but the keys would not be.
    pub allow_http: bool,
    /// PEM certificates to trust in addition to the platform's.
    pub ca_pem: Option<Vec<u8>>,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
}

impl std::fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("S3Settings")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// Errors building the S3 target.
#[derive(Debug, thiserror::Error)]
pub enum S3SetupError {
    /// `object_store` refused the settings.
    #[error("object_store: {0}")]
    Store(#[from] object_store::Error),
    /// The tokio runtime could not start.
    #[error("runtime: {0}")]
    Runtime(#[from] std::io::Error),
}

/// The S3-compatible target.
pub struct S3Target {
    store: AmazonS3,
    rt: tokio::runtime::Runtime,
    prefix: String,
    bucket: String,
}

impl std::fmt::Debug for S3Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Target")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn classify(e: object_store::Error, what: &str) -> DeliveryError {
    use object_store::Error as E;
    match e {
        E::Unauthenticated { .. } | E::PermissionDenied { .. } | E::InvalidPath { .. } => {
            DeliveryError::Permanent(format!("{what}: {e}"))
        }
        // Network errors, timeouts, 5xx, 503 SlowDown: the uploader backs off and retries.
        _ => DeliveryError::transient(format!("{what}: {e}")),
    }
}

impl S3Target {
    /// Builds the client. Nothing is contacted until the first delivery.
    pub fn new(s: S3Settings) -> Result<S3Target, S3SetupError> {
        let mut options = ClientOptions::new()
            .with_allow_http(s.allow_http)
            .with_connect_timeout(s.connect_timeout)
            .with_timeout(s.request_timeout);
        if let Some(pem) = &s.ca_pem {
            for cert in object_store::Certificate::from_pem_bundle(pem)? {
                options = options.with_root_certificate(cert);
            }
        }
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&s.bucket)
            .with_region(&s.region)
            .with_access_key_id(&s.access_key_id)
            .with_secret_access_key(&s.secret_access_key)
            .with_virtual_hosted_style_request(s.virtual_hosted_style)
            .with_allow_http(s.allow_http)
            .with_client_options(options)
            .with_retry(RetryConfig {
                max_retries: 0,
                ..RetryConfig::default()
            });
        if let Some(endpoint) = &s.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        let store = builder.build()?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(S3Target {
            store,
            rt,
            prefix: s.prefix,
            bucket: s.bucket,
        })
    }

    fn key(&self, job: &Job, name: &str) -> ObjectPath {
        ObjectPath::from(format!("{}{}/{name}", self.prefix, job.id))
    }

    /// The stored object's bytes, or `None` when there is none.
    fn read(&self, key: &ObjectPath) -> Result<Option<Vec<u8>>, DeliveryError> {
        let got = self.rt.block_on(async {
            match self.store.get(key).await {
                Ok(r) => r.bytes().await.map(Some),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        });
        got.map(|b| b.map(|b| b.to_vec()))
            .map_err(|e| classify(e, "read-back"))
    }

    /// Stores `bytes` under `key` unless identical bytes are there; verifies by reading back.
    /// Returns whether it was already stored.
    fn put_verified(
        &self,
        key: &ObjectPath,
        bytes: Vec<u8>,
        throttle: &Throttle,
    ) -> Result<bool, DeliveryError> {
        let want = Sha256::digest(&bytes);
        if let Some(existing) = self.read(key)? {
            return if Sha256::digest(&existing) == want {
                Ok(true)
            } else {
                Err(DeliveryError::Permanent(format!(
                    "{key} holds other content ({} bytes); not overwriting",
                    existing.len()
                )))
            };
        }
        let len = bytes.len() as u64;
        self.rt
            .block_on(self.store.put(key, PutPayload::from(bytes)))
            .map_err(|e| classify(e, "put"))?;
        // The body went out in one piece; pace afterwards so the average stays under the cap.
        if let Some(rate) = throttle.bytes_per_sec.filter(|&r| r > 0) {
            std::thread::sleep(Duration::from_micros(len.saturating_mul(1_000_000) / rate));
        }
        match self.read(key)? {
            Some(stored) if Sha256::digest(&stored) == want => Ok(false),
            Some(stored) => Err(DeliveryError::transient(format!(
                "read-back of {key}: {} bytes with another hash",
                stored.len()
            ))),
            None => Err(DeliveryError::transient(format!("read-back of {key}: not found"))),
        }
    }
}

fn read_local(path: &PathBuf, size: u64, sha256: &str) -> Result<Vec<u8>, DeliveryError> {
    let bytes = std::fs::read(path)
        .map_err(|e| DeliveryError::Permanent(format!("local file {}: {e}", path.display())))?;
    if bytes.len() as u64 != size || hex::encode(Sha256::digest(&bytes)) != sha256 {
        return Err(DeliveryError::Permanent(format!(
            "local file {} does not match the outbox's size and hash",
            path.display()
        )));
    }
    Ok(bytes)
}

impl Target for S3Target {
    fn deliver(&self, job: &Job, throttle: &Throttle) -> Result<Delivery, DeliveryError> {
        for f in &job.files {
            let bytes = read_local(&f.path, f.size, &f.sha256)?;
            self.put_verified(&self.key(job, &format!("{}.age", f.role)), bytes, throttle)?;
        }
        let already = self.put_verified(&self.key(job, "manifest.json"), manifest(job), throttle)?;
        Ok(if already {
            Delivery::AlreadyStored
        } else {
            Delivery::Created
        })
    }
}
