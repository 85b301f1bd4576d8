//! Operations: what the people who look after a kiosk use, and what systemd talks to.
//!
//! - [`notify`]: `sd_notify` READY / WATCHDOG / STATUS.
//! - [`logs`]: `tracing` to journald and to a local rolling store read from a cursor.
//! - [`redact`]: the [`redact::Pii`] wrapper that keeps names and ids out of every log line.
//! - [`auth`]: operator tokens (stored hashed, compared in constant time, scopes, failure limits).
//! - [`api`]: the operator HTTPS API (`/healthz`, `/v1/...`, `/metrics`).
//! - [`mqtt`]: the optional MQTT heartbeat (retained status, last will "offline").
//!
//! The main loop (`shell::run`) owns the kiosk; the API runs on its own thread and sees the kiosk only
//! through [`Shared`]: a status snapshot the loop refreshes every iteration, and a command channel the
//! loop drains, so an operator's request can never block or race the session.
//!
//! What it deliberately does not do: decide anything about a session. Taking the kiosk out of service
//! is a fault input to the session like any other.

pub mod api;
pub mod auth;
pub mod client;
pub mod logs;
pub mod mqtt;
pub mod notify;
pub mod redact;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::mpsc;

use serde::{Deserialize, Serialize};

/// What the API may see of the running kiosk, refreshed by the main loop.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Status {
    pub site: String,
    pub version: String,
    /// True once READY was reached (database open, first frame handled).
    pub ready: bool,
    /// The session's state (`Attract`, `Framing`, `OutOfService`, ...).
    pub state: String,
    /// Why the kiosk is out of service, in English, when it is.
    pub out_of_service: Option<String>,
    /// Device name to `up` or `down:<kind>`.
    pub devices: BTreeMap<String, String>,
    /// Unix seconds when the process started.
    pub started_at: i64,
    /// Unix seconds of the main loop's last iteration: a stale value means a stalled loop.
    pub last_loop_at: i64,
    /// Main-loop iterations since start.
    pub loop_iterations: u64,
    /// Sessions ended since start.
    pub sessions_since_start: u64,
    pub simulated: bool,
}

/// A request from an operator to the main loop; the answer comes back on `reply`.
#[derive(Debug)]
pub enum Command {
    /// Take the kiosk out of service (`Some(reason)`) or put it back (`None`).
    OutOfService {
        reason: Option<String>,
        reply: tokio::sync::oneshot::Sender<Result<String, String>>,
    },
    /// Run the self-test and report.
    SelfTest {
        reply: tokio::sync::oneshot::Sender<SelfTestReport>,
    },
}

/// One self-test item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SelfTestItem {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

/// The self-test's answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SelfTestReport {
    pub ok: bool,
    pub items: Vec<SelfTestItem>,
}

/// What the main loop and the API share.
#[derive(Debug)]
pub struct Shared {
    status: Mutex<Status>,
    commands: Mutex<mpsc::Sender<Command>>,
}

impl Shared {
    /// The shared state and the receiving end the main loop drains.
    pub fn new(status: Status) -> (Shared, mpsc::Receiver<Command>) {
        let (tx, rx) = mpsc::channel();
        (
            Shared {
                status: Mutex::new(status),
                commands: Mutex::new(tx),
            },
            rx,
        )
    }

    pub fn status(&self) -> Status {
        self.status.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn update(&self, f: impl FnOnce(&mut Status)) {
        f(&mut self.status.lock().unwrap_or_else(|p| p.into_inner()));
    }

    /// Sends a command; false when the main loop is gone.
    pub fn send(&self, command: Command) -> bool {
        self.commands
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(command)
            .is_ok()
    }
}

/// The `[ops]` section of the kiosk configuration.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpsConfig {
    /// The operator API; absent means no API.
    #[serde(default)]
    pub api: Option<auth::ApiConfig>,
    /// The MQTT heartbeat; absent means none.
    #[serde(default)]
    pub mqtt: Option<mqtt::MqttConfig>,
}

/// The `[logging]` section.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoggingConfig {
    /// `tracing` filter directive (`RUST_LOG` overrides it).
    #[serde(default = "default_filter")]
    pub filter: String,
    /// Rows the local store keeps.
    #[serde(default = "default_capacity")]
    pub capacity: i64,
}

fn default_filter() -> String {
    "info".into()
}

fn default_capacity() -> i64 {
    logs::DEFAULT_CAPACITY
}

impl Default for LoggingConfig {
    fn default() -> Self {
        LoggingConfig {
            filter: default_filter(),
            capacity: default_capacity(),
        }
    }
}
