//! A reference receiver for the intake API (`docs/intake-api.yaml`) on loopback, with TLS (rustls and a
//! throw-away CA from rcgen), delivery counting per job id, and seeded fault injection: 500s, 429 with
//! Retry-After, connection resets, stalls, slow reads and truncated responses.
//!
//! It is what the crash and fault tests upload to, and a unit can read it as the smallest correct
//! server. It is deliberately small: HTTP/1.1 only, objects in memory, one thread per connection,
//! `127.0.0.1` only. It is not a production server (no persistence, no limits beyond body size).

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};

/// The hash header, as in `kiosk::outbox::https::SHA256_HEADER`.
pub const SHA256_HEADER: &str = "x-content-sha256";
/// Largest body accepted (413 above).
const MAX_BODY: usize = 64 * 1024 * 1024;
/// Longest request head.
const MAX_HEAD: usize = 16 * 1024;

/// A fault the server can inject into one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fault {
    /// 500 without storing anything.
    Error500,
    /// Stores the upload, then answers 500: the retry must find it already stored.
    StoreThen500,
    /// 429 with `Retry-After`.
    TooMany,
    /// Closes the connection right after the request head, with the body unread (the kernel answers
    /// with a TCP reset).
    Reset,
    /// Reads the request, then says nothing for `stall` and closes.
    Stall,
    /// Reads the body a kilobyte at a time with pauses, then answers normally.
    SlowRead,
    /// Stores the upload, then sends half a response and closes.
    Truncate,
}

/// Which faults to inject and how often: each request draws one fault with these weights out of 1000
/// (the rest are answered normally).
#[derive(Clone, Debug)]
pub struct FaultPlan {
    /// `(fault, per-mille weight)`.
    pub weights: Vec<(Fault, u32)>,
    /// `Retry-After` of a 429, in seconds.
    pub retry_after_secs: u64,
    /// How long a stall lasts (make it longer than the client's request timeout).
    pub stall: Duration,
    /// Seed of the fault draws.
    pub seed: u64,
}

impl FaultPlan {
    /// No faults.
    pub fn none() -> FaultPlan {
        FaultPlan {
            weights: Vec::new(),
            retry_after_secs: 1,
            stall: Duration::from_secs(5),
            seed: 0,
        }
    }
}

/// What the server did with one request, for the tests' checks.
#[derive(Clone, Debug)]
pub struct RequestRecord {
    /// The job id in the path, if any.
    pub job: Option<String>,
    /// The method.
    pub method: String,
    /// The path.
    pub path: String,
    /// When the request head arrived.
    pub at: Instant,
    /// The injected fault, if any.
    pub fault: Option<Fault>,
    /// The status sent (0 when none was, or only part of one).
    pub status: u16,
}

/// What the server holds and has seen.
#[derive(Debug, Default)]
pub struct IntakeState {
    /// `(job id, role)` → sealed bytes.
    pub files: HashMap<(String, String), Vec<u8>>,
    /// job id → manifest bytes.
    pub manifests: HashMap<String, Vec<u8>>,
    /// job id → how many times a manifest PUT answered 201 (a delivery). Exactly-once means 1.
    pub deliveries: HashMap<String, u32>,
    /// Every request, in arrival order.
    pub log: Vec<RequestRecord>,
    /// Requests answered 409.
    pub conflicts: u64,
}

/// A running receiver. Stops when dropped.
#[derive(Debug)]
pub struct Intake {
    addr: SocketAddr,
    ca_pem: String,
    state: Arc<Mutex<IntakeState>>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

struct Shared {
    tls: Arc<rustls::ServerConfig>,
    token: String,
    plan: FaultPlan,
    rng: Mutex<u64>,
    state: Arc<Mutex<IntakeState>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// splitmix64: a seeded, dependency-free generator for fault draws.
fn next_random(state: &Mutex<u64>) -> u64 {
    let mut s = lock(state);
    *s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *s;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A CA and a server certificate for `localhost` and `127.0.0.1` signed by it.
fn make_certs() -> Result<(String, CertificateDer<'static>, PrivateKeyDer<'static>), rcgen::Error> {
    let ca_key = rcgen::KeyPair::generate()?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "kiosk intake test CA");
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf_key = rcgen::KeyPair::generate()?;
    let leaf_params = rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])?;
    let leaf = leaf_params.signed_by(&leaf_key, &issuer)?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    Ok((ca_cert.pem(), leaf.der().clone(), key))
}

impl Intake {
    /// Starts a receiver on `127.0.0.1` (a free port) that accepts `token` and injects `plan`.
    pub fn start(token: &str, plan: FaultPlan) -> io::Result<Intake> {
        let (ca_pem, cert, key) = make_certs().map_err(io::Error::other)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .map_err(io::Error::other)?;
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(IntakeState::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared {
            tls: Arc::new(tls),
            token: token.to_string(),
            rng: Mutex::new(plan.seed),
            plan,
            state: Arc::clone(&state),
        });
        let stop_accept = Arc::clone(&stop);
        let accept = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop_accept.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(stream) = conn else { continue };
                let shared = Arc::clone(&shared);
                std::thread::spawn(move || {
                    // A connection that breaks is the client's business (or an injected fault).
                    let _ = serve(&shared, stream);
                });
            }
        });
        Ok(Intake {
            addr,
            ca_pem,
            state,
            stop,
            accept: Some(accept),
        })
    }

    /// The base URL to configure in the uploader: `https://127.0.0.1:PORT/v1`.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}/v1", self.addr.port())
    }

    /// The CA certificate (PEM) the uploader must trust.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// What the server holds and has seen.
    pub fn state(&self) -> MutexGuard<'_, IntakeState> {
        lock(&self.state)
    }
}

impl Drop for Intake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

type Tls = rustls::StreamOwned<rustls::ServerConnection, TcpStream>;

struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn read_head(r: &mut BufReader<Tls>) -> io::Result<Option<Request>> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
        return Err(io::Error::other("bad request line"));
    };
    let (method, path) = (method.to_string(), path.to_string());
    let mut headers = Vec::new();
    let mut total = line.len();
    loop {
        line.clear();
        let n = r.read_line(&mut line)?;
        total += n;
        if n == 0 || total > MAX_HEAD {
            return Err(io::Error::other("truncated or oversized head"));
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    Ok(Some(Request {
        method,
        path,
        headers,
    }))
}

fn read_body(r: &mut BufReader<Tls>, req: &Request, slow: bool) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    if req
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut size = String::new();
            r.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| io::Error::other("bad chunk size"))?;
            if body.len() + n > MAX_BODY {
                return Err(io::Error::other("body too large"));
            }
            let start = body.len();
            body.resize(start + n, 0);
            r.read_exact(&mut body[start..])?;
            let mut crlf = String::new();
            r.read_line(&mut crlf)?;
            if n == 0 {
                return Ok(body);
            }
        }
    }
    let len: usize = req
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if len > MAX_BODY {
        return Err(io::Error::other("body too large"));
    }
    body.resize(len, 0);
    if slow {
        for chunk in body.chunks_mut(1024) {
            r.read_exact(chunk)?;
            std::thread::sleep(Duration::from_millis(5));
        }
    } else {
        r.read_exact(&mut body)?;
    }
    Ok(body)
}

fn respond(
    w: &mut BufReader<Tls>,
    status: u16,
    headers: &[(&str, String)],
    body: &[u8],
    head_only_len: Option<usize>,
) -> io::Result<()> {
    let reason = match status {
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Content Too Large",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        _ => "Internal Server Error",
    };
    let mut out = format!("HTTP/1.1 {status} {reason}\r\n");
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str(&format!(
        "content-length: {}\r\n\r\n",
        head_only_len.unwrap_or(body.len())
    ));
    let s = w.get_mut();
    s.write_all(out.as_bytes())?;
    if head_only_len.is_none() {
        s.write_all(body)?;
    }
    s.flush()
}

/// The job id and role in a path: `/v1/jobs/{id}` or `/v1/jobs/{id}/files/{role}`.
fn route(path: &str) -> Option<(String, Option<String>)> {
    let rest = path.strip_prefix("/v1/jobs/")?;
    let mut parts = rest.split('/');
    let id = parts.next()?;
    let ok_id = id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit());
    if !ok_id {
        return None;
    }
    match (parts.next(), parts.next(), parts.next()) {
        (None, _, _) => Some((id.to_string(), None)),
        (Some("files"), Some(role), None) if !role.is_empty() => {
            Some((id.to_string(), Some(role.to_string())))
        }
        _ => None,
    }
}

fn draw_fault(shared: &Shared) -> Option<Fault> {
    let total: u32 = shared.plan.weights.iter().map(|(_, w)| w).sum();
    if total == 0 {
        return None;
    }
    let mut x = (next_random(&shared.rng) % 1000) as u32;
    for (fault, w) in &shared.plan.weights {
        if x < *w {
            return Some(*fault);
        }
        x -= w;
    }
    None
}

/// One connection: requests until the client closes, an error, or a fault that ends it.
fn serve(shared: &Shared, tcp: TcpStream) -> io::Result<()> {
    tcp.set_read_timeout(Some(Duration::from_secs(30)))?;
    tcp.set_nodelay(true)?;
    let tcp_for_reset = tcp.try_clone()?;
    let conn = rustls::ServerConnection::new(Arc::clone(&shared.tls)).map_err(io::Error::other)?;
    let mut r = BufReader::new(rustls::StreamOwned::new(conn, tcp));
    while let Some(req) = read_head(&mut r)? {
        let at = kiosk::clock::monotonic();
        let routed = route(&req.path);
        let fault = draw_fault(shared);
        let mut record = RequestRecord {
            job: routed.as_ref().map(|(j, _)| j.clone()),
            method: req.method.clone(),
            path: req.path.clone(),
            at,
            fault,
            status: 0,
        };
        match fault {
            Some(Fault::Reset) => {
                lock(&shared.state).log.push(record);
                // The body is still unread in the socket buffer, so closing sends a reset.
                let _ = tcp_for_reset.shutdown(Shutdown::Both);
                return Ok(());
            }
            Some(Fault::Stall) => {
                let _ = read_body(&mut r, &req, false);
                lock(&shared.state).log.push(record);
                std::thread::sleep(shared.plan.stall);
                let _ = tcp_for_reset.shutdown(Shutdown::Both);
                return Ok(());
            }
            _ => {}
        }
        let body = read_body(&mut r, &req, fault == Some(Fault::SlowRead))?;
        let (status, headers, resp_body, head_len) = handle(shared, &req, routed, &body, fault);
        record.status = status;
        lock(&shared.state).log.push(record);
        if fault == Some(Fault::Truncate) {
            let full = format!("HTTP/1.1 {status} OK\r\ncontent-length: 100\r\n\r\n{{\"partial\":");
            let half = &full.as_bytes()[..full.len() / 2 + 8];
            let s = r.get_mut();
            s.write_all(half)?;
            s.flush()?;
            s.conn.send_close_notify();
            let _ = s.flush();
            let _ = tcp_for_reset.shutdown(Shutdown::Both);
            return Ok(());
        }
        respond(&mut r, status, &headers, &resp_body, head_len)?;
    }
    Ok(())
}

type Answer = (u16, Vec<(&'static str, String)>, Vec<u8>, Option<usize>);

fn text(status: u16, msg: &str) -> Answer {
    (
        status,
        vec![("content-type", "text/plain".into())],
        msg.as_bytes().to_vec(),
        None,
    )
}

/// The API itself: authorisation, then PUT/HEAD of files and manifests.
fn handle(
    shared: &Shared,
    req: &Request,
    routed: Option<(String, Option<String>)>,
    body: &[u8],
    fault: Option<Fault>,
) -> Answer {
    match fault {
        Some(Fault::Error500) => return text(500, "injected"),
        Some(Fault::TooMany) => {
            let mut a = text(429, "slow down");
            a.1.push(("retry-after", shared.plan.retry_after_secs.to_string()));
            return a;
        }
        _ => {}
    }
    if req.header("authorization") != Some(&format!("Bearer {}", shared.token)) {
        return text(401, "bad token");
    }
    let Some((job, role)) = routed else {
        return text(404, "no such route");
    };
    let answer = match req.method.as_str() {
        "PUT" => put(shared, &job, role, req, body),
        "HEAD" => head(shared, &job, role),
        _ => text(405, "PUT or HEAD"),
    };
    if fault == Some(Fault::StoreThen500) {
        return text(500, "stored, then failed");
    }
    answer
}

fn put(shared: &Shared, job: &str, role: Option<String>, req: &Request, body: &[u8]) -> Answer {
    let sha = hex::encode(Sha256::digest(body));
    if req.header(SHA256_HEADER) != Some(sha.as_str()) {
        return text(400, "body does not match x-content-sha256");
    }
    let mut st = lock(&shared.state);
    match role {
        Some(role) => {
            let key = (job.to_string(), role);
            match st.files.get(&key) {
                Some(existing) if existing.as_slice() == body => text(200, "already stored"),
                Some(_) => {
                    st.conflicts += 1;
                    text(409, "other content under this id")
                }
                None => {
                    st.files.insert(key, body.to_vec());
                    text(201, "created")
                }
            }
        }
        None => {
            match st.manifests.get(job) {
                Some(existing) if existing.as_slice() == body => return text(200, "already stored"),
                Some(_) => {
                    st.conflicts += 1;
                    return text(409, "other manifest under this id");
                }
                None => {}
            }
            let Ok(doc) = serde_json::from_slice::<serde_json::Value>(body) else {
                return text(400, "manifest is not JSON");
            };
            let files = doc["files"].as_array().cloned().unwrap_or_default();
            if files.is_empty() || doc["job_id"].as_str() != Some(job) {
                return text(400, "manifest names no files or another job");
            }
            for f in &files {
                let (Some(role), Some(want)) = (f["role"].as_str(), f["sha256"].as_str()) else {
                    return text(400, "file entry without role or sha256");
                };
                let have = st
                    .files
                    .get(&(job.to_string(), role.to_string()))
                    .map(|b| hex::encode(Sha256::digest(b)));
                if have.as_deref() != Some(want) {
                    return text(422, "a listed file is missing or differs");
                }
            }
            st.manifests.insert(job.to_string(), body.to_vec());
            *st.deliveries.entry(job.to_string()).or_default() += 1;
            text(201, "created")
        }
    }
}

fn head(shared: &Shared, job: &str, role: Option<String>) -> Answer {
    let st = lock(&shared.state);
    let stored = match role {
        Some(role) => st.files.get(&(job.to_string(), role)),
        None => st.manifests.get(job),
    };
    match stored {
        Some(b) => (
            200,
            vec![(SHA256_HEADER, hex::encode(Sha256::digest(b)))],
            Vec::new(),
            Some(b.len()),
        ),
        None => (404, Vec::new(), Vec::new(), Some(0)),
    }
}
