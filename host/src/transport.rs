//! HTTP: the [`HttpTransport`] a workspace sends its requests with, [`UreqTransport`]
//! by default or one the app supplies (its platform's own stack). It moves a
//! request's bytes to the server and the answer's bytes back, says how a request
//! failed, and decides nothing else: what a status means is the core's.
//!
//! Both drivers send through it, one request at a time per workspace, off the app's
//! threads: the blocking driver on a thread of its own, the async driver on smol's
//! blocking pool, as analytics SDKs commonly upload from a background worker.

use std::io::Read;

use authsync_core::TransportFailure;
use bytes::Bytes;

use crate::details::{HttpOptions, failure_of_io};

/// Sends one request and returns the server's answer, or how it failed without one.
///
/// ```
/// use authsync_core::TransportFailure;
/// use authsync_host::HttpTransport;
/// use bytes::Bytes;
///
/// struct Offline;
/// impl HttpTransport for Offline {
///     fn send(&self, _: http::Request<Bytes>) -> Result<http::Response<Bytes>, TransportFailure> {
///         Err(TransportFailure::Connect)
///     }
/// }
/// # let _: &dyn HttpTransport = &Offline;
/// ```
pub trait HttpTransport: Send + Sync {
    /// Sends `request`.
    ///
    /// # Errors
    /// How it failed, when no answer came.
    fn send(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, TransportFailure>;
}

/// ureq's transport, with the workspace's timeouts and response limit.
///
/// ```
/// use authsync_host::{HttpOptions, HttpTransport, UreqTransport};
/// let transport = UreqTransport::new(HttpOptions::default());
/// let request = http::Request::post("http://127.0.0.1:9/v1").body(bytes::Bytes::new()).unwrap();
/// assert!(transport.send(request).is_err(), "nothing listens on port 9");
/// ```
#[derive(Debug)]
pub struct UreqTransport {
    agent: ureq::Agent,
    max_response_bytes: u64,
}

impl UreqTransport {
    /// A transport with these timeouts and limit; keeps one connection alive.
    #[must_use]
    pub fn new(options: HttpOptions) -> Self {
        let phase = Some(options.request_timeout);
        // Per-phase timeouts, not a global one: with a global (or resolve) timeout ureq
        // resolves the host on a new thread for every request, which cost about 4 ms a
        // request on loopback, a quarter of the delivery rate (see bench/).
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(options.connect_timeout))
            .timeout_send_request(phase)
            .timeout_send_body(phase)
            .timeout_recv_response(phase)
            .timeout_recv_body(phase)
            // A redirect of a POST is not part of the protocol; the core decides what
            // a 3xx means.
            .max_redirects(0)
            .max_idle_connections_per_host(1)
            .user_agent(concat!("authsync/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Self {
            agent,
            max_response_bytes: options.max_response_bytes,
        }
    }
}

impl HttpTransport for UreqTransport {
    /// Sends `request`; keeps at most the configured number of response bytes.
    fn send(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, TransportFailure> {
        let outgoing = request.map(|body| body.to_vec());
        let response = self.agent.run(outgoing).map_err(failure_kind)?;
        let (parts, mut body) = response.into_parts();
        let mut bytes = Vec::new();
        body.as_reader()
            .take(self.max_response_bytes)
            .read_to_end(&mut bytes)
            .map_err(|e| failure_of_io(&e))?;
        Ok(http::Response::from_parts(parts, Bytes::from(bytes)))
    }
}

fn failure_kind(error: ureq::Error) -> TransportFailure {
    match error {
        ureq::Error::Timeout(_) => TransportFailure::Timeout,
        ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => TransportFailure::Connect,
        ureq::Error::Io(e) => failure_of_io(&e),
        _ => TransportFailure::Reset,
    }
}
