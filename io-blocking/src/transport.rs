//! HTTP: the [`HttpTransport`] a workspace sends its requests with, ureq's by default
//! or one the app supplies (its platform's own stack). It moves a request's bytes to
//! the server and the answer's bytes back, says how a request failed, and decides
//! nothing else: what a status means is the core's.

use std::io::Read;

use authsync_core::TransportFailure;
use bytes::Bytes;

use authsync_host::{HttpOptions, failure_of_io};

/// Sends one request and returns the server's answer, or how it failed without one.
/// Called on the workspace's sender thread, one request at a time.
///
/// ```
/// use authsync_blocking::{HttpTransport, TransportFailure};
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
pub(crate) struct Ureq {
    agent: ureq::Agent,
    max_response_bytes: u64,
}

impl Ureq {
    pub(crate) fn new(options: HttpOptions) -> Self {
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

impl HttpTransport for Ureq {
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
