//! The optional MQTT heartbeat for fleets (`[ops.mqtt]`, off unless configured): every `interval_secs`
//! the kiosk publishes a retained status message on `<topic_prefix>/<site>/status`, and registers a
//! retained last will on the same topic, so a kiosk that dies or loses its network shows "offline" to
//! every subscriber without anyone polling it. Fleets already run a broker (Mosquitto, EMQX) for their
//! other devices; a heartbeat there costs them nothing new.
//!
//! The message is small JSON: `{"status":"online","site","version","state","ready","out_of_service",
//! "devices":{..},"queue":{"pending","failed","oldest_unacked_at"},"at"}`; the will and a clean stop
//! publish `{"status":"offline","site","at"}` (the will's `at` is when it was registered). Nothing in it
//! names a student; an operator's out-of-service text is scrubbed like a log line.
//!
//! One thread drives the connection (rumqttc's blocking client), publishes on schedule and on every
//! (re)connection, and reconnects with a growing pause while the broker is away. It reads the kiosk
//! only through [`Shared`] and the store's counts, so a slow or absent broker cannot block the session.
//! What it deliberately does not do: accept commands over MQTT (the operator API is the one way in,
//! authenticated and audited), or buffer heartbeats while offline (only the latest status matters).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use rumqttc::{Client, Connection, Event, LastWill, MqttOptions, Packet, QoS, TlsConfiguration, Transport};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde::Deserialize;
use serde_json::{Value, json};

use super::Shared;
use crate::store::Store;

/// The `[ops.mqtt]` section.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MqttConfig {
    /// Broker host name or address.
    pub host: String,
    /// Broker port; 1883, or 8883 with TLS, when absent.
    #[serde(default)]
    pub port: Option<u16>,
    /// Topics are `<topic_prefix>/<site>/status`.
    #[serde(default = "default_prefix")]
    pub topic_prefix: String,
    /// Seconds between heartbeats (at least 1).
    #[serde(default = "default_interval")]
    pub interval_secs: u64,
    /// MQTT client id; `kiosk-<site>` when absent. Two kiosks with one id would throw each other off.
    #[serde(default)]
    pub client_id: Option<String>,
    /// TLS: the broker's CA certificate (PEM), relative to the configuration file. Absent: plain TCP,
    /// for a broker on the local network or behind the fleet's tunnel.
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// Username and a file holding the password (kept out of the configuration, 0600).
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password_file: Option<PathBuf>,
}

fn default_prefix() -> String {
    "kiosk".into()
}

fn default_interval() -> u64 {
    30
}

/// Why the heartbeat cannot start.
#[derive(Debug, thiserror::Error)]
pub enum MqttError {
    /// A value in `[ops.mqtt]` is unusable; the text names the key.
    #[error("ops.mqtt.{key}: {reason}")]
    Config { key: &'static str, reason: String },
    #[error("cannot start the MQTT thread: {0}")]
    Thread(std::io::Error),
}

impl MqttConfig {
    /// Checks what can be checked without a broker; run by `KioskConfig::load`.
    pub fn validate(&self) -> Result<(), MqttError> {
        let bad = |key, reason: &str| {
            Err(MqttError::Config {
                key,
                reason: reason.into(),
            })
        };
        if self.host.trim().is_empty() {
            return bad("host", "a broker host is required");
        }
        if self.interval_secs == 0 || self.interval_secs > 3600 {
            return bad("interval_secs", "must be 1 to 3600 seconds");
        }
        let prefix_ok = !self.topic_prefix.is_empty()
            && !self.topic_prefix.contains(['#', '+', '\0'])
            && !self.topic_prefix.starts_with('/')
            && !self.topic_prefix.ends_with('/');
        if !prefix_ok {
            return bad(
                "topic_prefix",
                "a topic prefix without wildcards or leading/trailing '/'",
            );
        }
        if self.password_file.is_some() && self.username.is_none() {
            return bad("username", "a password_file needs a username");
        }
        Ok(())
    }

    /// Makes relative paths relative to the configuration file's folder.
    pub fn resolve_paths(&mut self, base: &std::path::Path) {
        self.ca = self.ca.take().map(|p| base.join(p));
        self.password_file = self.password_file.take().map(|p| base.join(p));
    }

    /// `<topic_prefix>/<site>/status`.
    pub fn topic(&self, site: &str) -> String {
        // A site id with MQTT wildcards or separators would publish somewhere else; keep it one level.
        let site: String = site
            .chars()
            .map(|c| {
                if matches!(c, '/' | '#' | '+' | '\0') {
                    '_'
                } else {
                    c
                }
            })
            .collect();
        format!("{}/{site}/status", self.topic_prefix)
    }

    fn options(&self, site: &str, will: &[u8]) -> Result<MqttOptions, MqttError> {
        self.validate()?;
        let tls = self.ca.is_some();
        let port = self.port.unwrap_or(if tls { 8883 } else { 1883 });
        let client_id = self.client_id.clone().unwrap_or_else(|| format!("kiosk-{site}"));
        let mut o = MqttOptions::new(client_id, self.host.clone(), port);
        // The broker declares us gone after 1.5x the keep-alive without a packet; tie it to the
        // heartbeat so "offline" appears within about two intervals of a silent death.
        o.set_keep_alive(Duration::from_secs(self.interval_secs.clamp(5, 60)));
        o.set_clean_session(true);
        o.set_last_will(LastWill::new(
            self.topic(site),
            will.to_vec(),
            QoS::AtLeastOnce,
            true,
        ));
        if let Some(user) = &self.username {
            let password = match &self.password_file {
                Some(p) => std::fs::read_to_string(p)
                    .map_err(|e| MqttError::Config {
                        key: "password_file",
                        reason: format!("{}: {e}", p.display()),
                    })?
                    .trim_end_matches(['\r', '\n'])
                    .to_string(),
                None => String::new(),
            };
            o.set_credentials(user.clone(), password);
        }
        if let Some(ca) = &self.ca {
            o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(Arc::new(
                tls_client_config(ca)?,
            ))));
        }
        Ok(o)
    }
}

/// A rustls client configuration (ring provider, as the rest of the kiosk) trusting only `ca`.
fn tls_client_config(ca: &std::path::Path) -> Result<rustls::ClientConfig, MqttError> {
    let err = |reason: String| MqttError::Config { key: "ca", reason };
    let mut roots = rustls::RootCertStore::empty();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(ca)
        .map_err(|e| err(format!("{}: {e}", ca.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| err(format!("{}: {e}", ca.display())))?;
    if certs.is_empty() {
        return Err(err(format!("{}: no certificate in the file", ca.display())));
    }
    for c in certs {
        roots.add(c).map_err(|e| err(e.to_string()))?;
    }
    Ok(
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| err(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// The heartbeat's status message for the current state of the kiosk.
pub fn online_message(shared: &Shared, store: Option<&Store>, now_unix: i64) -> Value {
    let s = shared.status();
    let queue = store.and_then(|st| st.outbox_counts().ok()).map(|c| {
        json!({ "pending": c.pending + c.leased, "failed": c.failed, "oldest_unacked_at": c.oldest_unacked_at })
    });
    json!({
        "status": "online",
        "site": s.site,
        "version": s.version,
        "state": s.state,
        "ready": s.ready,
        "out_of_service": s.out_of_service.as_deref().map(|r| super::redact::scrub(r).into_owned()),
        "devices": s.devices,
        "queue": queue,
        "at": now_unix,
    })
}

/// The last will and the clean-stop message.
pub fn offline_message(site: &str, now_unix: i64) -> Value {
    json!({ "status": "offline", "site": site, "at": now_unix })
}

const RUN: u8 = 0;
const STOP: u8 = 1;
const ABANDON: u8 = 2;

/// A running heartbeat. Dropping it stops cleanly: "offline" published, then DISCONNECT.
#[derive(Debug)]
pub struct Heartbeat {
    mode: Arc<AtomicU8>,
    thread: Option<std::thread::JoinHandle<()>>,
    topic: String,
}

impl Heartbeat {
    /// The topic it publishes on.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Stops as a crash would: the connection is dropped without DISCONNECT, so the broker publishes
    /// the last will. For tests of the will, and for a process that is about to abort anyway.
    pub fn abandon(mut self) {
        self.mode.store(ABANDON, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.mode.store(STOP, Ordering::SeqCst);
            let _ = t.join();
        }
    }
}

/// Starts the heartbeat thread. Fails only on configuration errors; an unreachable broker is retried
/// for as long as the kiosk runs (and logged once per outage).
pub fn start(
    config: &MqttConfig,
    shared: Arc<Shared>,
    store: Option<Arc<Store>>,
) -> Result<Heartbeat, MqttError> {
    let site = shared.status().site;
    let topic = config.topic(&site);
    let will = offline_message(&site, crate::clock::unix_now()).to_string();
    let options = config.options(&site, will.as_bytes())?;
    let (client, connection) = Client::new(options, 16);
    let mode = Arc::new(AtomicU8::new(RUN));
    let run = Runner {
        client,
        topic: topic.clone(),
        interval: Duration::from_secs(config.interval_secs),
        shared,
        store,
        mode: mode.clone(),
        site,
    };
    let thread = std::thread::Builder::new()
        .name("ops-mqtt".into())
        .spawn(move || run.run(connection))
        .map_err(MqttError::Thread)?;
    tracing::info!(host = %config.host, %topic, interval_secs = config.interval_secs, "MQTT heartbeat started");
    Ok(Heartbeat {
        mode,
        thread: Some(thread),
        topic,
    })
}

struct Runner {
    client: Client,
    topic: String,
    interval: Duration,
    shared: Arc<Shared>,
    store: Option<Arc<Store>>,
    mode: Arc<AtomicU8>,
    site: String,
}

/// How often the thread looks at its stop flag while waiting.
const STEP: Duration = Duration::from_millis(100);
/// Longer than rumqttc's connection timeout (5 s), so an attempt is never cut short.
const CONNECT_WAIT: Duration = Duration::from_secs(8);
/// Pause after a failed connection attempt, doubling up to [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_millis(500);
const MAX_RETRY: Duration = Duration::from_secs(30);

impl Runner {
    fn publish(&self, message: &Value) {
        // try_publish: the request queue is bounded, and a full one (broker away for long) must not
        // block this thread; that heartbeat is simply skipped, the next one carries newer news.
        if let Err(e) = self
            .client
            .try_publish(&self.topic, QoS::AtLeastOnce, true, message.to_string())
        {
            tracing::debug!(error = %e, "MQTT heartbeat not queued");
        }
    }

    fn heartbeat(&self) {
        let msg = online_message(&self.shared, self.store.as_deref(), crate::clock::unix_now());
        self.publish(&msg);
    }

    fn run(self, mut connection: Connection) {
        let mut next_beat = crate::clock::monotonic();
        let mut retry = FIRST_RETRY;
        let mut connected = false;
        loop {
            match self.mode.load(Ordering::SeqCst) {
                RUN => {}
                STOP => return self.stop(connection),
                // Dropping the connection closes the socket without DISCONNECT.
                _ => return,
            }
            let now = crate::clock::monotonic();
            if connected && now >= next_beat {
                self.heartbeat();
                next_beat = now + self.interval;
            }
            // While connected, wake often to keep the schedule and see a stop. While connecting, let
            // the attempt finish: a timed-out poll drops the half-open connection, so a broker further
            // than STEP away (a TLS handshake over a campus uplink) would never be reached. rumqttc
            // bounds an attempt by its own connection timeout (5 s), which bounds a stop's delay too.
            let wait = if connected { STEP } else { CONNECT_WAIT };
            match connection.recv_timeout(wait) {
                Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => {
                    connected = true;
                    retry = FIRST_RETRY;
                    tracing::info!(topic = %self.topic, "MQTT connected");
                    // At once, not at the next tick: the broker may just have published our will.
                    self.heartbeat();
                    next_beat = crate::clock::monotonic() + self.interval;
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    if connected {
                        tracing::warn!(error = %e, "MQTT connection lost; reconnecting");
                    } else if retry == FIRST_RETRY {
                        tracing::warn!(error = %e, "MQTT broker unreachable; retrying");
                    }
                    connected = false;
                    self.nap(retry);
                    retry = (retry * 2).min(MAX_RETRY);
                }
                // A timeout is the normal idle case; a closed request channel cannot happen while we
                // hold the client.
                Err(_) => {}
            }
        }
    }

    /// Sleeps up to `d`, waking early when asked to stop.
    fn nap(&self, d: Duration) {
        let until = crate::clock::monotonic() + d;
        while self.mode.load(Ordering::SeqCst) == RUN && crate::clock::monotonic() < until {
            std::thread::sleep(STEP);
        }
    }

    /// Publishes "offline" and disconnects, driving the connection until both went out (at most 2 s:
    /// with the broker away the will covers it anyway).
    fn stop(self, mut connection: Connection) {
        self.publish(&offline_message(&self.site, crate::clock::unix_now()));
        let _ = self.client.try_disconnect();
        let deadline = crate::clock::monotonic() + Duration::from_secs(2);
        while crate::clock::monotonic() < deadline {
            match connection.recv_timeout(STEP) {
                Ok(Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect))) | Ok(Err(_)) => break,
                _ => {}
            }
        }
        tracing::info!("MQTT heartbeat stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> MqttConfig {
        MqttConfig {
            host: "broker.example".into(),
            port: None,
            topic_prefix: "fleet/kiosks".into(),
            interval_secs: 30,
            client_id: None,
            ca: None,
            username: None,
            password_file: None,
        }
    }

    #[test]
    fn config_is_checked_and_named_by_key() {
        assert!(config().validate().is_ok());
        type Breakage = fn(&mut MqttConfig);
        let cases: [(&str, Breakage); 5] = [
            ("ops.mqtt.host", |c| c.host = " ".into()),
            ("ops.mqtt.interval_secs", |c| c.interval_secs = 0),
            ("ops.mqtt.topic_prefix", |c| c.topic_prefix = "a/#".into()),
            ("ops.mqtt.topic_prefix", |c| c.topic_prefix = "a/".into()),
            ("ops.mqtt.username", |c| c.password_file = Some("pw".into())),
        ];
        for (key, break_it) in cases {
            let mut c = config();
            break_it(&mut c);
            let e = c.validate().unwrap_err().to_string();
            assert!(e.starts_with(key), "{e}");
        }
        let parsed: MqttConfig = toml::from_str("host = \"10.0.0.2\"").unwrap();
        assert_eq!(
            (parsed.topic_prefix.as_str(), parsed.interval_secs, parsed.port),
            ("kiosk", 30, None)
        );
        assert!(toml::from_str::<MqttConfig>("host = \"h\"\nintervall = 3").is_err());
    }

    #[test]
    fn topic_keeps_the_site_one_level() {
        assert_eq!(config().topic("lib-lobby"), "fleet/kiosks/lib-lobby/status");
        assert_eq!(config().topic("a/b#+"), "fleet/kiosks/a_b__/status");
    }

    #[test]
    fn a_missing_ca_file_is_a_config_error() {
        let mut c = config();
        c.ca = Some("/nonexistent/ca.pem".into());
        let e = c.options("s", b"{}").unwrap_err().to_string();
        assert!(e.starts_with("ops.mqtt.ca"), "{e}");
    }
}
