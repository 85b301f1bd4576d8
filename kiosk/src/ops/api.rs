//! The operator API: HTTPS (rustls, ring provider) with bearer tokens, for remote operators behind NAT
//! tunnels and for `kioskctl` on the device.
//!
//! | endpoint | scope | what |
//! |---|---|---|
//! | `GET /healthz` | none | 200 when the main loop is ready and ticking, else 503; nothing else |
//! | `GET /v1/status` | read | state, devices, versions, disk, queue |
//! | `GET /v1/logs?since=CURSOR&level=LEVEL&limit=N` | read | log records after the cursor |
//! | `GET /v1/queue` | read | outbox counts, the pending jobs and the failed (parked) ones |
//! | `GET /v1/stats?days=N` | read | per-day sessions, pass rate, failures per check |
//! | `GET /metrics` | read | Prometheus text format |
//! | `POST /v1/admin/tickets/{id}/unlock` | admin | unlock a locked ticket |
//! | `POST /v1/admin/tickets/{id}/grant` `{"shots":n}` | admin | grant shots |
//! | `POST /v1/admin/out-of-service` `{"reason":"…"}`, `DELETE` | admin | take out of / put back into service |
//! | `POST /v1/admin/selftest` | admin | run the self-test |
//! | `POST /v1/admin/queue/retry` | admin | every failed upload job due again now |
//! | `POST /v1/admin/queue/purge-acked` `{"older_than_secs":n}` | admin | drop acknowledged jobs and their local files |
//!
//! Why axum on tokio + hyper + tokio-rustls: the product already carries tokio and hyper (the
//! uploader's object-store client) and rustls 0.23 with ring, so this adds only axum's thin routing
//! on top and keeps one TLS stack. `tiny_http`'s TLS support pins an old rustls, which would have
//! been a second TLS stack. The server runs on one thread with a current-thread runtime: a kiosk
//! answers a handful of operators, and a second core belongs to the checks.
//!
//! Every request is logged (peer, token name, path, status; successful log reads at debug level, so
//! that reading the log does not grow it); failures, lock-outs,
//! forbidden attempts and every admin action are also written to the audit trail in the database.
//! What it deliberately does not do: serve photos or anything that names a student, accept tokens in
//! query strings (they end up in proxy logs), or speak plain HTTP.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Extension, Json, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Shared;
use super::auth::{ApiConfig, Auth, Scope, Verdict};
use super::logs::{LogStore, parse_level};
use crate::store::Store;
use crate::ticket::TicketId;

/// Most connections served at once; more wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 32;
/// A client that has not finished the TLS handshake or sent its headers by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Most log records one `/v1/logs` answer carries.
const MAX_LOG_PAGE: usize = 5000;

/// Why the API cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{path}: {reason}")]
    Pem { path: PathBuf, reason: String },
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    #[error("listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Token(#[from] super::auth::BadTokenHash),
    #[error("cannot start the API thread: {0}")]
    Thread(std::io::Error),
}

/// What the handlers read and act on.
#[derive(Debug)]
pub struct ApiContext {
    /// A connection of its own to the kiosk database.
    pub store: Arc<Store>,
    pub logs: Option<Arc<LogStore>>,
    pub shared: Arc<Shared>,
    pub data_dir: PathBuf,
}

#[derive(Debug)]
struct Api {
    ctx: ApiContext,
    auth: Auth,
    utc_offset_secs: i64,
    auth_failures: std::sync::atomic::AtomicU64,
}

/// The peer of a connection, put on each request.
#[derive(Clone, Copy, Debug)]
struct Peer(SocketAddr);

/// The authenticated caller, for handlers that record who did it.
#[derive(Clone, Debug)]
struct Caller(String);

/// A running API; dropping it stops the server.
#[derive(Debug)]
pub struct ApiServer {
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ApiServer {
    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Loads a PEM certificate chain and key into a rustls server configuration (ring provider).
pub fn tls_config(cert: &Path, key: &Path) -> Result<rustls::ServerConfig, ApiError> {
    let pem_err = |path: &Path, reason: String| ApiError::Pem {
        path: path.to_path_buf(),
        reason,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| pem_err(cert, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| pem_err(cert, e.to_string()))?;
    if certs.is_empty() {
        return Err(pem_err(cert, "no certificate in the file".into()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| pem_err(key, e.to_string()))?;
    let mut config =
        rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Binds `config.listen` and serves on a thread of its own until the returned server is dropped.
/// `base` resolves relative certificate paths (the configuration file's folder).
pub fn start(config: &ApiConfig, base: &Path, ctx: ApiContext) -> Result<ApiServer, ApiError> {
    let tls = tls_config(&base.join(&config.cert), &base.join(&config.key))?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let listen_err = |source| ApiError::Listen {
        addr: config.listen,
        source,
    };
    let listener = std::net::TcpListener::bind(config.listen).map_err(listen_err)?;
    listener.set_nonblocking(true).map_err(listen_err)?;
    let addr = listener.local_addr().map_err(listen_err)?;
    let api = Arc::new(Api {
        ctx,
        auth: Auth::new(config)?,
        utc_offset_secs: config.utc_offset_secs,
        auth_failures: Default::default(),
    });
    let app = router(api);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
    let thread = std::thread::Builder::new()
        .name("ops-api".into())
        .spawn(move || serve(listener, acceptor, app, stop_rx))
        .map_err(ApiError::Thread)?;
    tracing::info!(%addr, "operator API listening");
    Ok(ApiServer {
        addr,
        shutdown: Some(stop_tx),
        thread: Some(thread),
    })
}

fn serve(
    listener: std::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    app: Router,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "operator API: no runtime");
            return;
        }
    };
    rt.block_on(async move {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "operator API: listener");
                return;
            }
        };
        let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
        loop {
            let accepted = tokio::select! {
                _ = &mut stop => break,
                a = listener.accept() => a,
            };
            let (tcp, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "operator API: accept");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(permit) = slots.clone().acquire_owned().await else {
                break;
            };
            let acceptor = acceptor.clone();
            let app = app.clone();
            tokio::spawn(async move {
                let _permit = permit;
                let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => return,
                };
                let service =
                    hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                        req.extensions_mut().insert(Peer(peer));
                        let app = app.clone();
                        async move {
                            use tower::ServiceExt;
                            app.oneshot(req.map(axum::body::Body::new)).await
                        }
                    });
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(HANDSHAKE_TIMEOUT)
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service);
                if let Err(e) = conn.await {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
            });
        }
    });
}

fn router(api: Arc<Api>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/v1/status", get(status))
        .route("/v1/logs", get(logs))
        .route("/v1/queue", get(queue))
        .route("/v1/stats", get(stats))
        .route("/metrics", get(metrics))
        .route("/v1/admin/tickets/{id}/unlock", post(unlock))
        .route("/v1/admin/tickets/{id}/grant", post(grant))
        .route(
            "/v1/admin/out-of-service",
            post(out_of_service).delete(back_in_service),
        )
        .route("/v1/admin/selftest", post(selftest))
        .route("/v1/admin/queue/retry", post(queue_retry))
        .route("/v1/admin/queue/purge-acked", post(queue_purge_acked))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such endpoint") })
        .layer(middleware::from_fn_with_state(api.clone(), guard))
        .with_state(api)
}

fn error(code: StatusCode, message: &str) -> Response {
    (code, Json(json!({ "error": message }))).into_response()
}

/// Runs a blocking store call off the async thread.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, Response> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| error(StatusCode::INTERNAL_SERVER_ERROR, "internal error"))
}

fn audit(api: &Arc<Api>, actor: String, event: &'static str, detail: Value) {
    let api = api.clone();
    // Audited off the request path; a failed audit write is logged, since the request itself was
    // already refused or done.
    tokio::task::spawn_blocking(move || {
        if let Err(e) = api
            .ctx
            .store
            .audit(&actor, event, &detail.to_string(), crate::clock::unix_now())
        {
            tracing::error!(error = %e, event, "audit write failed");
        }
    });
}

/// Authentication, scope, rate limit, access log and audit, for every route but `/healthz`.
async fn guard(State(api): State<Arc<Api>>, mut req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<Peer>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |p| p.0.ip());
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    if path == "/healthz" {
        return next.run(req).await;
    }
    let need = if path.starts_with("/v1/admin/") {
        Scope::Admin
    } else {
        Scope::Read
    };
    let header_value = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned);
    let verdict = api
        .auth
        .check(peer, header_value.as_deref(), crate::clock::monotonic());
    let detail = json!({ "peer": peer.to_string(), "method": method.as_str(), "path": path });
    let response = match verdict {
        Verdict::Allowed { name, scope } if scope >= need => {
            req.extensions_mut().insert(Caller(name.clone()));
            let response = next.run(req).await;
            let status = response.status().as_u16();
            // Reading the log must not write to it: a follower would see its own polls forever.
            if path == "/v1/logs" && status == 200 {
                tracing::debug!(target: "kiosk::ops::access", %peer, token = %name, %method, %path, status, "api access");
            } else {
                tracing::info!(target: "kiosk::ops::access", %peer, token = %name, %method, %path, status, "api access");
            }
            return response;
        }
        Verdict::Allowed { name, .. } => {
            audit(&api, format!("api:{name}"), "api_forbidden", detail);
            error(StatusCode::FORBIDDEN, "this token's scope does not allow that")
        }
        Verdict::Missing => {
            let mut r = error(StatusCode::UNAUTHORIZED, "a bearer token is required");
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            r
        }
        Verdict::Bad => {
            api.auth_failures
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            audit(&api, "api".into(), "api_auth_failed", detail);
            let mut r = error(StatusCode::UNAUTHORIZED, "invalid token");
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
            r
        }
        Verdict::Limited { first } => {
            // Once per lock-out, so a brute-forcer cannot flood the audit trail.
            if first {
                audit(&api, "api".into(), "api_rate_limited", detail);
            }
            let mut r = error(StatusCode::TOO_MANY_REQUESTS, "too many failed attempts; wait");
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
            r
        }
    };
    tracing::warn!(target: "kiosk::ops::access", %peer, %method, %path, status = response.status().as_u16(), "api access refused");
    response
}

/// Whether the main loop is alive: ready, and ticked within the last 30 s.
fn loop_alive(api: &Api) -> bool {
    let s = api.ctx.shared.status();
    s.ready && crate::clock::unix_now() - s.last_loop_at <= 30
}

async fn healthz(State(api): State<Arc<Api>>) -> Response {
    if loop_alive(&api) {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}

/// Free and total bytes of the file system holding the data directory.
pub fn disk(path: &Path) -> Option<(u64, u64)> {
    let s = rustix::fs::statvfs(path).ok()?;
    Some((
        s.f_bavail.saturating_mul(s.f_frsize),
        s.f_blocks.saturating_mul(s.f_frsize),
    ))
}

fn counts_json(c: &crate::store::OutboxCounts) -> Value {
    json!({
        "pending": c.pending, "leased": c.leased, "acked": c.acked, "failed": c.failed,
        "oldest_unacked_at": c.oldest_unacked_at,
    })
}

async fn status(State(api): State<Arc<Api>>) -> Response {
    let a = api.clone();
    let counts = match blocking(move || a.ctx.store.outbox_counts()).await {
        Ok(Ok(c)) => counts_json(&c),
        Ok(Err(e)) => json!({ "error": e.to_string() }),
        Err(r) => return r,
    };
    let s = api.ctx.shared.status();
    let disk =
        disk(&api.ctx.data_dir).map(|(free, total)| json!({ "free_bytes": free, "total_bytes": total }));
    Json(json!({
        "status": s,
        "alive": loop_alive(&api),
        "versions": { "kiosk": env!("CARGO_PKG_VERSION"), "schema": crate::store::LATEST_VERSION },
        "disk": disk,
        "queue": counts,
    }))
    .into_response()
}

#[derive(Debug, Deserialize)]
struct LogsQuery {
    #[serde(default)]
    since: i64,
    level: Option<String>,
    limit: Option<usize>,
}

async fn logs(State(api): State<Arc<Api>>, Query(q): Query<LogsQuery>) -> Response {
    let Some(store) = api.ctx.logs.clone() else {
        return error(StatusCode::NOT_FOUND, "this kiosk keeps no local log store");
    };
    let level = match q.level.as_deref().map(parse_level).transpose() {
        Ok(l) => l.unwrap_or(5),
        Err(e) => return error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let limit = q.limit.unwrap_or(1000).clamp(1, MAX_LOG_PAGE);
    let since = q.since;
    match blocking(move || store.since(since, level, limit).map(|r| (r, store.last_cursor()))).await {
        Ok(Ok((records, last))) => {
            let next = records.last().map_or(since, |r| r.cursor);
            Json(json!({ "records": records, "next": next, "last": last.unwrap_or(next) })).into_response()
        }
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        Err(r) => r,
    }
}

fn job_json(j: &crate::store::Job) -> Value {
    json!({
        "job_id": j.id.to_string(), "ticket": j.ticket.to_string(), "shot_no": j.shot_no,
        "spec": j.spec_id, "state": j.state.as_str(), "attempts": j.attempts,
        "created_at": j.created_at, "next_attempt_at": j.next_attempt_at,
        "last_error": j.last_error,
    })
}

async fn queue(State(api): State<Arc<Api>>) -> Response {
    let a = api.clone();
    let res = blocking(move || {
        let counts = a.ctx.store.outbox_counts()?;
        let jobs = a.ctx.store.pending_jobs(200)?;
        let failed = a.ctx.store.failed_jobs(200)?;
        Ok::<_, crate::store::StoreError>((counts, jobs, failed))
    })
    .await;
    match res {
        Ok(Ok((counts, jobs, failed))) => Json(json!({
            "counts": counts_json(&counts),
            "pending": jobs.iter().map(job_json).collect::<Vec<_>>(),
            "failed": failed.iter().map(job_json).collect::<Vec<_>>(),
        }))
        .into_response(),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        Err(r) => r,
    }
}

async fn queue_retry(State(api): State<Arc<Api>>, Extension(Caller(name)): Extension<Caller>) -> Response {
    let a = api.clone();
    let actor = format!("api:{name}");
    match blocking(move || a.ctx.store.retry_failed(&actor, crate::clock::unix_now())).await {
        Ok(Ok(n)) => Json(json!({ "retried": n })).into_response(),
        Ok(Err(e)) => store_error(e),
        Err(r) => r,
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PurgeBody {
    /// Acknowledged at least this long ago. Required: a purge that silently used some default window
    /// would surprise whoever meant a different one.
    older_than_secs: i64,
}

async fn queue_purge_acked(
    State(api): State<Arc<Api>>,
    Extension(Caller(name)): Extension<Caller>,
    body: axum::body::Bytes,
) -> Response {
    let older_than = match serde_json::from_slice::<PurgeBody>(&body) {
        Ok(b) if b.older_than_secs >= 0 => b.older_than_secs,
        Ok(_) => return error(StatusCode::BAD_REQUEST, "older_than_secs cannot be negative"),
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("body: {e}")),
    };
    let a = api.clone();
    let actor = format!("api:{name}");
    match blocking(move || {
        a.ctx
            .store
            .purge_acked(older_than, &actor, crate::clock::unix_now())
    })
    .await
    {
        Ok(Ok(n)) => Json(json!({ "purged": n, "older_than_secs": older_than })).into_response(),
        Ok(Err(e)) => store_error(e),
        Err(r) => r,
    }
}

#[derive(Debug, Deserialize)]
struct StatsQuery {
    days: Option<i64>,
}

async fn stats(State(api): State<Arc<Api>>, Query(q): Query<StatsQuery>) -> Response {
    let days = q.days.unwrap_or(7).clamp(1, 366);
    let since = crate::clock::unix_now() - days * 86_400;
    let a = api.clone();
    let off = api.utc_offset_secs;
    match blocking(move || a.ctx.store.stats_by_day(since, off)).await {
        Ok(Ok(d)) => Json(json!({ "utc_offset_secs": off, "days": d })).into_response(),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        Err(r) => r,
    }
}

async fn metrics(State(api): State<Arc<Api>>) -> Response {
    let a = api.clone();
    let res = blocking(move || {
        Ok::<_, crate::store::StoreError>((a.ctx.store.stats_totals()?, a.ctx.store.outbox_counts()?))
    })
    .await;
    let (totals, counts) = match res {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => return error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        Err(r) => return r,
    };
    let m = MetricsInput {
        status: api.ctx.shared.status(),
        totals,
        counts,
        disk: disk(&api.ctx.data_dir),
        auth_failures: api.auth_failures.load(std::sync::atomic::Ordering::Relaxed),
        now: crate::clock::unix_now(),
    };
    let mut r = render_metrics(&m).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}

/// What `/metrics` is made of.
#[derive(Debug)]
pub struct MetricsInput {
    pub status: super::Status,
    pub totals: crate::store::Totals,
    pub counts: crate::store::OutboxCounts,
    pub disk: Option<(u64, u64)>,
    pub auth_failures: u64,
    pub now: i64,
}

fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The Prometheus text exposition format (version 0.0.4).
pub fn render_metrics(m: &MetricsInput) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    fn family(o: &mut String, name: &str, kind: &str, help: &str, samples: &[(String, f64)]) {
        let _ = writeln!(o, "# HELP {name} {help}");
        let _ = writeln!(o, "# TYPE {name} {kind}");
        for (labels, v) in samples {
            let _ = writeln!(o, "{name}{labels} {v}");
        }
    }
    let s = &m.status;
    family(
        &mut o,
        "kiosk_build_info",
        "gauge",
        "Version of the kiosk software.",
        &[(
            format!(
                "{{version=\"{}\",site=\"{}\"}}",
                label(&s.version),
                label(&s.site)
            ),
            1.0,
        )],
    );
    family(
        &mut o,
        "kiosk_ready",
        "gauge",
        "1 once the kiosk reached READY.",
        &[(String::new(), f64::from(u8::from(s.ready)))],
    );
    family(
        &mut o,
        "kiosk_out_of_service",
        "gauge",
        "1 while the kiosk is out of service.",
        &[(String::new(), f64::from(u8::from(s.state == "OutOfService")))],
    );
    family(
        &mut o,
        "kiosk_start_time_seconds",
        "gauge",
        "Unix time the process started.",
        &[(String::new(), s.started_at as f64)],
    );
    family(
        &mut o,
        "kiosk_main_loop_age_seconds",
        "gauge",
        "Seconds since the main loop last ran.",
        &[(String::new(), (m.now - s.last_loop_at).max(0) as f64)],
    );
    family(
        &mut o,
        "kiosk_main_loop_iterations_total",
        "counter",
        "Main loop iterations since start.",
        &[(String::new(), s.loop_iterations as f64)],
    );
    let devices: Vec<_> = s
        .devices
        .iter()
        .map(|(d, h)| {
            (
                format!("{{device=\"{}\"}}", label(d)),
                f64::from(u8::from(h == "up")),
            )
        })
        .collect();
    family(
        &mut o,
        "kiosk_device_up",
        "gauge",
        "1 when the device works.",
        &devices,
    );
    let sessions: Vec<_> = m
        .totals
        .sessions
        .iter()
        .map(|(k, n)| (format!("{{outcome=\"{}\"}}", label(k)), *n as f64))
        .collect();
    family(
        &mut o,
        "kiosk_sessions_total",
        "counter",
        "Sessions ended, by outcome.",
        &sessions,
    );
    family(
        &mut o,
        "kiosk_shots_checked_total",
        "counter",
        "Shots whose checks ran, by result.",
        &[
            ("{result=\"pass\"}".into(), m.totals.shots_passed as f64),
            (
                "{result=\"fail\"}".into(),
                m.totals.shots_checked.saturating_sub(m.totals.shots_passed) as f64,
            ),
        ],
    );
    let fails: Vec<_> = m
        .totals
        .failures_by_check
        .iter()
        .map(|(k, n)| (format!("{{check=\"{}\"}}", label(k)), *n as f64))
        .collect();
    family(
        &mut o,
        "kiosk_check_failures_total",
        "counter",
        "Shots on which a check failed, by check.",
        &fails,
    );
    let c = &m.counts;
    family(
        &mut o,
        "kiosk_outbox_jobs",
        "gauge",
        "Upload jobs by state.",
        &[
            ("{state=\"pending\"}".into(), c.pending as f64),
            ("{state=\"leased\"}".into(), c.leased as f64),
            ("{state=\"acked\"}".into(), c.acked as f64),
            ("{state=\"failed\"}".into(), c.failed as f64),
        ],
    );
    family(
        &mut o,
        "kiosk_outbox_backlog_age_seconds",
        "gauge",
        "Age of the oldest job not yet acknowledged (0 when none).",
        &[(
            String::new(),
            c.oldest_unacked_at.map_or(0, |t| (m.now - t).max(0)) as f64,
        )],
    );
    if let Some((free, total)) = m.disk {
        family(
            &mut o,
            "kiosk_disk_free_bytes",
            "gauge",
            "Free bytes on the data directory's file system.",
            &[(String::new(), free as f64)],
        );
        family(
            &mut o,
            "kiosk_disk_size_bytes",
            "gauge",
            "Size of the data directory's file system.",
            &[(String::new(), total as f64)],
        );
    }
    family(
        &mut o,
        "kiosk_api_auth_failures_total",
        "counter",
        "Operator API requests with an invalid token.",
        &[(String::new(), m.auth_failures as f64)],
    );
    o
}

fn parse_ticket(id: &str) -> Option<TicketId> {
    let mut b = [0u8; 16];
    hex::decode_to_slice(id, &mut b).ok()?;
    Some(TicketId(b))
}

fn store_error(e: crate::store::StoreError) -> Response {
    use crate::store::StoreError as E;
    let code = match &e {
        E::UnknownTicket(_) => StatusCode::NOT_FOUND,
        E::Refused(_) | E::Invalid(_) => StatusCode::CONFLICT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    error(code, &e.to_string())
}

async fn unlock(
    State(api): State<Arc<Api>>,
    Extension(Caller(name)): Extension<Caller>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    let Some(ticket) = parse_ticket(&id) else {
        return error(StatusCode::BAD_REQUEST, "a ticket id is 32 hex digits");
    };
    let a = api.clone();
    let actor = format!("api:{name}");
    match blocking(move || {
        a.ctx
            .store
            .unlock_ticket(&ticket, &actor, crate::clock::unix_now())
    })
    .await
    {
        Ok(Ok(())) => Json(json!({ "ticket": id, "unlocked": true })).into_response(),
        Ok(Err(e)) => store_error(e),
        Err(r) => r,
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantBody {
    #[serde(default = "one")]
    shots: u8,
}

fn one() -> u8 {
    1
}

async fn grant(
    State(api): State<Arc<Api>>,
    Extension(Caller(name)): Extension<Caller>,
    axum::extract::Path(id): axum::extract::Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let Some(ticket) = parse_ticket(&id) else {
        return error(StatusCode::BAD_REQUEST, "a ticket id is 32 hex digits");
    };
    // An empty body grants one shot.
    let shots = if body.iter().all(u8::is_ascii_whitespace) {
        1
    } else {
        match serde_json::from_slice::<GrantBody>(&body) {
            Ok(b) => b.shots,
            Err(e) => return error(StatusCode::BAD_REQUEST, &format!("body: {e}")),
        }
    };
    let a = api.clone();
    let actor = format!("api:{name}");
    match blocking(move || {
        a.ctx
            .store
            .grant_shot(&ticket, shots, &actor, crate::clock::unix_now())
    })
    .await
    {
        Ok(Ok(state)) => Json(json!({
            "ticket": id, "granted": shots, "shots_used": state.shots_used,
            "shots_left": state.shots_left(),
        }))
        .into_response(),
        Ok(Err(e)) => store_error(e),
        Err(r) => r,
    }
}

#[derive(Debug, Deserialize)]
struct OutOfServiceBody {
    reason: String,
}

async fn set_service(api: Arc<Api>, name: String, reason: Option<String>) -> Response {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let event = if reason.is_some() {
        "out_of_service_set"
    } else {
        "out_of_service_cleared"
    };
    audit(&api, format!("api:{name}"), event, json!({ "reason": reason }));
    if !api
        .ctx
        .shared
        .send(super::Command::OutOfService { reason, reply: tx })
    {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the main loop is not running");
    }
    match tokio::time::timeout(Duration::from_secs(10), rx).await {
        Ok(Ok(Ok(state))) => Json(json!({ "state": state })).into_response(),
        Ok(Ok(Err(e))) => error(StatusCode::CONFLICT, &e),
        _ => error(StatusCode::SERVICE_UNAVAILABLE, "the main loop did not answer"),
    }
}

async fn out_of_service(
    State(api): State<Arc<Api>>,
    Extension(Caller(name)): Extension<Caller>,
    Json(body): Json<OutOfServiceBody>,
) -> Response {
    let reason = body.reason.trim().to_string();
    if reason.is_empty() || reason.len() > 200 {
        return error(StatusCode::BAD_REQUEST, "a reason of 1 to 200 bytes is required");
    }
    set_service(api, name, Some(reason)).await
}

async fn back_in_service(
    State(api): State<Arc<Api>>,
    Extension(Caller(name)): Extension<Caller>,
) -> Response {
    set_service(api, name, None).await
}

async fn selftest(State(api): State<Arc<Api>>, Extension(Caller(name)): Extension<Caller>) -> Response {
    let (tx, rx) = tokio::sync::oneshot::channel();
    audit(&api, format!("api:{name}"), "selftest_requested", json!({}));
    if !api.ctx.shared.send(super::Command::SelfTest { reply: tx }) {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the main loop is not running");
    }
    match tokio::time::timeout(Duration::from_secs(30), rx).await {
        Ok(Ok(report)) => {
            let code = if report.ok {
                StatusCode::OK
            } else {
                StatusCode::INTERNAL_SERVER_ERROR
            };
            (code, Json(report)).into_response()
        }
        _ => error(StatusCode::SERVICE_UNAVAILABLE, "the main loop did not answer"),
    }
}
