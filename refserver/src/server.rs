//! The HTTP server: a hyper HTTP/1.1 server on its own thread and tokio runtime.
//!
//! hyper rather than tiny_http because the faults need to close a connection without
//! any answer, which tiny_http cannot do (a dropped request answers 500 and its
//! connection stays open). Each connection is a task; the accept loop stops on
//! [`RefServer::shutdown`], on drop, or on `POST /admin/shutdown`, then lets requests
//! in flight finish (for [`SHUTDOWN_GRACE`] at most) before the thread ends.

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::request::Parts;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::admin::Admin;
use crate::admin_http;
use crate::config::ServerConfig;
use crate::faults::{AfterAccept, Fault, FaultResponse};
use crate::records::{LoggedRequest, LoggedResponse};
use crate::report::{self, BodyRead, Outcome};
use crate::state::Shared;
use crate::wire::REPORT_PATH;

/// How long requests in flight may still run once the server is asked to stop.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Past the body limit, up to this much more is read and dropped, so that a client
/// still sending gets the 413 instead of a reset connection.
const DRAIN_CAP: usize = 8 * 1024 * 1024;

/// Admin request bodies (faults, config with PEM keys) are small.
const ADMIN_BODY_LIMIT: usize = 1024 * 1024;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The runtime or its thread could not be created.
    #[error("cannot start the server: {0}")]
    Io(#[from] std::io::Error),
}

/// A running reference server. Dropping it stops it and joins its thread.
///
/// ```
/// use authsync_refserver::{keys, Enforcement, RefServer, ServerConfig};
///
/// let server = RefServer::start(
///     ServerConfig::default()
///         .with_keys([keys::rsa_a()])
///         .enforcement(Enforcement::Required),
/// )
/// .unwrap();
/// assert!(server.url().starts_with("http://127.0.0.1:"));
/// assert_eq!(server.admin().total_accepted(), 0);
/// server.shutdown();
/// ```
pub struct RefServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for RefServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl RefServer {
    /// Binds `config.bind` (port 0: the OS picks one) and serves on a new thread.
    ///
    /// # Errors
    /// [`StartError`] when the address cannot be bound or the thread cannot start.
    pub fn start(mut config: ServerConfig) -> Result<Self, StartError> {
        let bind = config.bind;
        let listener = std::net::TcpListener::bind(bind)
            .map_err(|source| StartError::Bind { addr: bind, source })?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()?;
        let listener = {
            let _guard = runtime.enter();
            TcpListener::from_std(listener)?
        };
        config.bind = addr;
        let shared = Arc::new(Shared::new(config));
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(format!("refserver-{}", addr.port()))
            .spawn(move || runtime.block_on(accept_loop(listener, thread_shared)))?;
        Ok(Self {
            addr,
            shared,
            thread: Some(thread),
        })
    }

    /// The bound address (with the chosen port).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL, `http://IP:PORT`; clients append `/v1/report`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The report endpoint, `http://IP:PORT/v1/report`.
    pub fn report_url(&self) -> String {
        format!("{}{REPORT_PATH}", self.url())
    }

    /// A handle on the state: logs, events, faults, config, reset.
    pub fn admin(&self) -> Admin {
        Admin::new(Arc::clone(&self.shared))
    }

    /// Stops serving and joins the server thread (requests in flight get
    /// [`SHUTDOWN_GRACE`] to finish).
    pub fn shutdown(mut self) {
        self.stop();
    }

    /// Blocks until the server stops by another way: `POST /admin/shutdown` or
    /// [`Admin::request_shutdown`].
    pub fn wait(mut self) {
        if let Some(thread) = self.thread.take() {
            // A panic on the server thread has already been reported on stderr.
            let _ = thread.join();
        }
    }

    fn stop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.shared.request_shutdown();
            let _ = thread.join();
        }
    }
}

impl Drop for RefServer {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let graceful = GracefulShutdown::new();
    loop {
        tokio::select! {
            () = shared.shutdown.notified() => break,
            accepted = listener.accept() => {
                let Ok((stream, remote)) = accepted else {
                    // Out of file descriptors and the like: back off rather than spin.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                // Small answers must not wait for a delayed ACK.
                let _ = stream.set_nodelay(true);
                let conn_shared = Arc::clone(&shared);
                let service = service_fn(move |request| {
                    handle(Arc::clone(&conn_shared), remote, request)
                });
                let connection =
                    http1::Builder::new().serve_connection(TokioIo::new(stream), service);
                let watched = graceful.watch(connection);
                tokio::spawn(async move {
                    // A connection error is the peer's business (or a Close fault).
                    let _ = watched.await;
                });
            }
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await;
}

/// The service's error: it makes hyper close the connection without an answer.
#[derive(Debug, thiserror::Error)]
#[error("connection closed without an answer")]
struct CloseConnection;

type Body = Full<Bytes>;

async fn handle(
    shared: Arc<Shared>,
    remote: SocketAddr,
    request: Request<Incoming>,
) -> Result<Response<Body>, CloseConnection> {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let is_admin_path = path == "/admin" || path.starts_with("/admin/");
    if is_admin_path && shared.config().admin_routes && remote.ip().is_loopback() {
        let body = read_body(body, ADMIN_BODY_LIMIT)
            .await
            .map_err(|_| CloseConnection)?;
        let outcome = if body.complete {
            admin_http::handle(&shared, &parts.method, &path, &body.bytes)
        } else {
            Outcome::error(
                413,
                "payload_too_large",
                "admin bodies are limited to 1 MiB",
            )
        };
        return to_response(&outcome).ok_or(CloseConnection);
    }

    let fault = if path == REPORT_PATH {
        shared.pop_fault()
    } else {
        None
    };
    if let Some(Fault::Delay(delay)) = &fault {
        tokio::time::sleep(*delay).await;
    }
    // Read after any delay: a delayed request is processed as if it arrived late.
    let config = shared.config();
    let Ok(body) = read_body(body, config.max_body_bytes).await else {
        record(
            &shared,
            &config,
            &parts,
            &BodyRead::default(),
            fault.as_ref(),
            &Outcome::closed(),
        );
        return Err(CloseConnection);
    };
    let outcome = match &fault {
        Some(Fault::Respond(response)) => fault_outcome(response),
        Some(Fault::Close) => Outcome::closed(),
        Some(Fault::AcceptThenFail(after)) => {
            // Processed for its side effects (the batch is stored); the answer is lost.
            let _ = report::route(
                &shared,
                &config,
                &parts.method,
                &path,
                &parts.headers,
                &body,
            );
            match after {
                AfterAccept::Status(status) => Outcome::error(
                    *status,
                    "injected",
                    "the batch was processed, then the answer failed (injected fault)",
                ),
                AfterAccept::Close => Outcome::closed(),
            }
        }
        Some(Fault::Delay(_)) | None => report::route(
            &shared,
            &config,
            &parts.method,
            &path,
            &parts.headers,
            &body,
        ),
    };
    record(&shared, &config, &parts, &body, fault.as_ref(), &outcome);
    to_response(&outcome).ok_or(CloseConnection)
}

fn fault_outcome(response: &FaultResponse) -> Outcome {
    let mut headers = Vec::new();
    if let Some(content_type) = &response.content_type {
        headers.push(("content-type".to_owned(), content_type.clone()));
    }
    if let Some(retry_after) = &response.retry_after {
        headers.push(("retry-after".to_owned(), retry_after.header_value()));
    }
    Outcome {
        status: Some(response.status),
        headers,
        body: response.body.clone(),
    }
}

async fn read_body(mut body: Incoming, limit: usize) -> Result<BodyRead, hyper::Error> {
    let mut read = BodyRead {
        complete: true,
        ..BodyRead::default()
    };
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue; // trailers
        };
        read.total_len = read.total_len.saturating_add(data.len());
        let room = limit.saturating_sub(read.bytes.len());
        read.bytes.extend_from_slice(&data[..data.len().min(room)]);
        if read.total_len > limit {
            read.complete = false;
            if read.total_len > limit.saturating_add(DRAIN_CAP) {
                break;
            }
        }
    }
    Ok(read)
}

/// The response for an outcome; `None` closes the connection.
fn to_response(outcome: &Outcome) -> Option<Response<Body>> {
    let status = outcome.status?;
    let mut response = Response::new(Full::new(Bytes::from(outcome.body.clone())));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    for (name, value) in &outcome.headers {
        // A scripted header that is not a valid header is left out rather than
        // failing the whole answer.
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.append(name, value);
        }
    }
    Some(response)
}

fn record(
    shared: &Shared,
    config: &ServerConfig,
    parts: &Parts,
    body: &BodyRead,
    fault: Option<&Fault>,
    outcome: &Outcome,
) {
    let path = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned());
    if config.access_log {
        let status = outcome
            .status
            .map_or_else(|| "closed".to_owned(), |s| s.to_string());
        let fault = fault
            .map(|f| format!(" [fault: {}]", f.describe()))
            .unwrap_or_default();
        // Method, path and status only: never a header, so never a token.
        let _ = writeln!(
            std::io::stderr(),
            "{} {path} -> {status}{fault}",
            parts.method
        );
    }
    let entry = LoggedRequest {
        method: parts.method.as_str().to_owned(),
        path,
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.bytes.clone(),
        body_complete: body.complete,
        fault: fault.map(Fault::describe),
        response: LoggedResponse {
            status: outcome.status,
            headers: outcome.headers.clone(),
            body: outcome.body.clone(),
        },
    };
    shared.update(|state| {
        state.log.push(entry);
        state.stats.requests += 1;
    });
}
