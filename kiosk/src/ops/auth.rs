//! Operator tokens: stored hashed, compared in constant time, each with a scope, and a limit on
//! failed attempts per client address.
//!
//! Tokens are 256-bit random strings made by `kioskctl token new`, so a plain SHA-256 of the token is
//! enough to store (a slow password hash protects guessable secrets; these are not guessable) and the
//! configuration file leaks nothing usable. The presented token is hashed and compared against every
//! configured hash with `subtle`, without stopping at the first match, so timing says nothing about
//! which hash or how many bytes matched.
//!
//! What it deliberately does not do: sessions, cookies, expiry or rotation by itself (operators
//! rotate by editing the configuration: list the old and the new token while rolling out).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What a token may do. `Admin` includes everything `Read` may.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Read,
    Admin,
}

/// One configured token.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Who holds it (recorded in the audit trail, e.g. "fleet-prometheus", "ops-alice").
    pub name: String,
    pub scope: Scope,
    /// SHA-256 of the token, 64 hex digits.
    pub sha256: String,
}

/// `[ops.api]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// Address to listen on, e.g. "0.0.0.0:8443" (or "127.0.0.1:8443" behind a tunnel).
    pub listen: SocketAddr,
    /// PEM certificate chain and private key (relative paths are relative to the config file).
    pub cert: PathBuf,
    pub key: PathBuf,
    pub tokens: Vec<TokenConfig>,
    /// Failed attempts from one address within `failure_window_secs` before it gets 429.
    #[serde(default = "default_max_failures")]
    pub max_failures: u32,
    #[serde(default = "default_window")]
    pub failure_window_secs: u64,
    /// Calendar days of `/v1/stats` are at this offset from UTC (China: 28800).
    #[serde(default = "default_offset")]
    pub utc_offset_secs: i64,
}

fn default_max_failures() -> u32 {
    5
}

fn default_window() -> u64 {
    60
}

fn default_offset() -> i64 {
    8 * 3600
}

/// The SHA-256 of a token as configured (64 lowercase hex digits).
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A fresh random token (64 hex digits, 256 bits).
pub fn new_token() -> Result<String, getrandom::Error> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b)?;
    Ok(hex::encode(b))
}

/// The result of looking at a request's credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allowed {
        name: String,
        scope: Scope,
    },
    /// No `Authorization: Bearer` header.
    Missing,
    /// A token that matches nothing.
    Bad,
    /// Too many failures from this address recently; the token was not even looked at. `first` is
    /// true for the first refusal of this lock-out (the one worth auditing).
    Limited {
        first: bool,
    },
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    first: Instant,
    reported: bool,
}

/// Token checking with a failure limit.
#[derive(Debug)]
pub struct Auth {
    tokens: Vec<([u8; 32], String, Scope)>,
    max_failures: u32,
    window: Duration,
    failures: Mutex<HashMap<IpAddr, Failures>>,
}

/// A configured hash that is not 64 hex digits.
#[derive(Debug, thiserror::Error)]
#[error("token {name:?}: sha256 must be 64 hex digits")]
pub struct BadTokenHash {
    pub name: String,
}

impl Auth {
    pub fn new(config: &ApiConfig) -> Result<Auth, BadTokenHash> {
        let mut tokens = Vec::new();
        for t in &config.tokens {
            let mut h = [0u8; 32];
            hex::decode_to_slice(t.sha256.trim(), &mut h)
                .map_err(|_| BadTokenHash { name: t.name.clone() })?;
            tokens.push((h, t.name.clone(), t.scope));
        }
        Ok(Auth {
            tokens,
            max_failures: config.max_failures.max(1),
            window: Duration::from_secs(config.failure_window_secs.max(1)),
            failures: Mutex::new(HashMap::new()),
        })
    }

    /// Checks an `Authorization` header value from `ip` at `now`. A failure counts against `ip`.
    pub fn check(&self, ip: IpAddr, authorization: Option<&str>, now: Instant) -> Verdict {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        failures.retain(|_, f| now < f.first + self.window);
        if let Some(f) = failures.get_mut(&ip)
            && f.count >= self.max_failures
        {
            let first = !f.reported;
            f.reported = true;
            return Verdict::Limited { first };
        }
        let token = authorization
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim);
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            // No credentials is not an attack; it is what a browser or a curious scanner sends first.
            return Verdict::Missing;
        };
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found: Option<(String, Scope)> = None;
        for (hash, name, scope) in &self.tokens {
            // Every hash is compared; only the bookkeeping branches on the result.
            if bool::from(hash.ct_eq(&presented)) {
                found = Some((name.clone(), *scope));
            }
        }
        match found {
            Some((name, scope)) => Verdict::Allowed { name, scope },
            None => {
                let f = failures.entry(ip).or_insert(Failures {
                    count: 0,
                    first: now,
                    reported: false,
                });
                f.count += 1;
                Verdict::Bad
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(tokens: &[(&str, Scope, &str)]) -> ApiConfig {
        ApiConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            cert: PathBuf::new(),
            key: PathBuf::new(),
            tokens: tokens
                .iter()
                .map(|(n, s, t)| TokenConfig {
                    name: n.to_string(),
                    scope: *s,
                    sha256: token_hash(t),
                })
                .collect(),
            max_failures: 3,
            failure_window_secs: 60,
            utc_offset_secs: 0,
        }
    }

    #[test]
    fn tokens_match_by_hash_and_failures_are_limited_per_address() {
        let auth = Auth::new(&config(&[
            ("r", Scope::Read, "tok-r"),
            ("a", Scope::Admin, "tok-a"),
        ]))
        .unwrap();
        let t0 = crate::clock::monotonic();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        assert_eq!(
            auth.check(ip, Some("Bearer tok-a"), t0),
            Verdict::Allowed {
                name: "a".into(),
                scope: Scope::Admin
            }
        );
        assert_eq!(auth.check(ip, None, t0), Verdict::Missing);
        for _ in 0..3 {
            assert_eq!(auth.check(ip, Some("Bearer nope"), t0), Verdict::Bad);
        }
        assert_eq!(
            auth.check(ip, Some("Bearer tok-r"), t0),
            Verdict::Limited { first: true }
        );
        assert_eq!(
            auth.check(ip, Some("Bearer tok-r"), t0),
            Verdict::Limited { first: false }
        );
        assert!(matches!(
            auth.check(other, Some("Bearer tok-r"), t0),
            Verdict::Allowed { .. }
        ));
        let later = t0 + Duration::from_secs(61);
        assert!(matches!(
            auth.check(ip, Some("Bearer tok-r"), later),
            Verdict::Allowed { .. }
        ));
    }

    #[test]
    fn a_malformed_hash_is_refused_at_start() {
        let mut c = config(&[]);
        c.tokens.push(TokenConfig {
            name: "x".into(),
            scope: Scope::Read,
            sha256: "abc".into(),
        });
        assert!(Auth::new(&c).is_err());
    }
}
