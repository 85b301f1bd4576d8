//! A client for the operator API, for `kioskctl` and the tests: ureq over rustls (ring), trusting only
//! the kiosk's own certificate (or its CA) given as a PEM file, never the system store by default,
//! since a kiosk certificate is self-issued.
//!
//! What it deliberately does not do: retry, follow redirects, or send the token anywhere but the
//! configured base URL.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use ureq::tls::{Certificate, RootCerts, TlsConfig};

/// Why a request could not be made (an HTTP error status is not an error here; see [`Reply`]).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("certificate {path}: {reason}")]
    Cert { path: String, reason: String },
    #[error("{url}: {source}")]
    Http { url: String, source: Box<ureq::Error> },
}

/// A status and a body.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: String,
}

impl Reply {
    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// An API client bound to one kiosk.
#[derive(Debug)]
pub struct Client {
    agent: ureq::Agent,
    base: String,
    token: Option<String>,
}

impl Client {
    /// `base` like `https://127.0.0.1:8443`; `ca_pem` the certificate to trust.
    pub fn new(base: &str, token: Option<String>, ca_pem: &Path) -> Result<Client, ClientError> {
        let pem = std::fs::read(ca_pem).map_err(|e| ClientError::Cert {
            path: ca_pem.display().to_string(),
            reason: e.to_string(),
        })?;
        let cert = Certificate::from_pem(&pem).map_err(|e| ClientError::Cert {
            path: ca_pem.display().to_string(),
            reason: e.to_string(),
        })?;
        let tls = TlsConfig::builder()
            .root_certs(RootCerts::Specific(Arc::new(vec![cert])))
            .build();
        let agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Ok(Client {
            agent,
            base: base.trim_end_matches('/').to_string(),
            token,
        })
    }

    fn finish(
        url: &str,
        r: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Reply, ClientError> {
        let err = |source: ureq::Error| ClientError::Http {
            url: url.to_string(),
            source: Box::new(source),
        };
        let mut r = r.map_err(err)?;
        let status = r.status().as_u16();
        let body = r.body_mut().read_to_string().map_err(err)?;
        Ok(Reply { status, body })
    }

    pub fn get(&self, path: &str) -> Result<Reply, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut req = self.agent.get(&url);
        if let Some(t) = &self.token {
            req = req.header("Authorization", &format!("Bearer {t}"));
        }
        Self::finish(&url, req.call())
    }

    pub fn post(&self, path: &str, body: &Value) -> Result<Reply, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut req = self.agent.post(&url);
        if let Some(t) = &self.token {
            req = req.header("Authorization", &format!("Bearer {t}"));
        }
        Self::finish(&url, req.send_json(body))
    }

    pub fn delete(&self, path: &str) -> Result<Reply, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut req = self.agent.delete(&url);
        if let Some(t) = &self.token {
            req = req.header("Authorization", &format!("Bearer {t}"));
        }
        Self::finish(&url, req.call())
    }
}
