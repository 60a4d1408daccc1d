//! What foreign code implements: an [`AuthenticationListener`], a [`TokenProvider`]
//! and a [`Transport`], and the adapters that turn each into what the blocking driver
//! takes. The adapters translate types and report failures; what a notice, an answer
//! or a failure means is the core's to decide.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use authsync_blocking::{HttpTransport, TransportFailure};
use bytes::Bytes;

use crate::error::{AuthsyncError, TransportError};
use crate::gate::{self, Foreign};

// ----- listener -----------------------------------------------------------------------

/// An authentication notice (A2, S5, R1): the original SDK's `MoEngageJwtAuthenticationError`
/// without its token. Foreign code never receives a whole token from authsync.
#[derive(Clone, PartialEq, Eq, Debug, uniffi::Record)]
pub struct AuthNotice {
    /// Why: the wire name of the code (`INVALID_SIGNATURE`, `TIME_CONSTRAINT_FAILURE`,
    /// `TOKEN_NOT_AVAILABLE`, `TOKEN_EXPIRING`, ...; unknown codes as the server sent them).
    pub code: String,
    /// The server's message, or the core's explanation for client-side codes.
    pub message: String,
    /// The identifier the notice is about; `None` for anonymous data.
    pub identifier: Option<String>,
    /// The workspace's app id.
    pub app_id: String,
}

impl From<&authsync_blocking::AuthNotice> for AuthNotice {
    fn from(notice: &authsync_blocking::AuthNotice) -> Self {
        Self {
            code: notice.code.as_str().to_owned(),
            message: notice.message.clone(),
            identifier: notice.identifier.clone(),
            app_id: notice.app_id.clone(),
        }
    }
}

/// The original SDK's authentication listener. Called on the client's own thread, one notice
/// at a time; keep it short (hand the work to your own thread or queue). An exception
/// it raises is logged and ignored: delivery goes on, and later listeners still hear
/// the notice.
#[uniffi::export(foreign)]
pub trait AuthenticationListener: Send + Sync {
    /// One authentication notice.
    ///
    /// # Errors
    /// Whatever the implementation raises; it is logged and ignored.
    fn on_authentication_error(&self, notice: AuthNotice) -> Result<(), AuthsyncError>;
}

/// The driver's listener for a foreign one.
pub(crate) fn listener(
    listener: Arc<dyn AuthenticationListener>,
) -> impl Fn(&authsync_blocking::AuthNotice) + Send + Sync + 'static {
    let listener = Foreign::new(listener);
    move |notice| {
        let (Some(_call), Some(listener)) = (gate::enter(), listener.get()) else {
            return;
        };
        if let Err(error) = listener.on_authentication_error(AuthNotice::from(notice)) {
            log::warn!(
                "authsync: an authentication listener failed on {} for app {}: {error}; delivery goes on",
                notice.code,
                notice.app_id
            );
        }
    }
}

// ----- token provider -------------------------------------------------------------------

/// Lets a token provider learn that its fetch is no longer wanted (its timeout passed,
/// the client closed): it should give up and return `None`.
#[derive(Debug, uniffi::Object)]
pub struct Cancellation(authsync_blocking::Cancellation);

#[uniffi::export]
impl Cancellation {
    /// Whether the fetch was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.0.is_cancelled()
    }

    /// Waits at most `timeout_ms` for a cancellation; whether it came.
    pub fn wait(&self, timeout_ms: u64) -> bool {
        self.0.wait(Duration::from_millis(timeout_ms))
    }
}

/// What a [`TokenProvider`] is asked for: a token for this identifier, because of this
/// notice code.
#[derive(Clone, Debug, uniffi::Record)]
pub struct TokenRequest {
    /// The identifier that needs a token.
    pub identifier: String,
    /// Why: the notice's code (`TOKEN_NOT_AVAILABLE`, `TOKEN_EXPIRING`, a 401's code).
    pub code: String,
    /// The workspace's app id.
    pub app_id: String,
    /// How long the provider may take before its answer is no longer used.
    pub timeout_ms: u64,
    /// Set when the fetch is no longer wanted.
    pub cancellation: Arc<Cancellation>,
}

impl From<&authsync_blocking::TokenRequest> for TokenRequest {
    fn from(request: &authsync_blocking::TokenRequest) -> Self {
        Self {
            identifier: request.identifier.clone(),
            code: request.code.as_str().to_owned(),
            app_id: request.app_id.clone(),
            timeout_ms: u64::try_from(request.timeout.as_millis()).unwrap_or(u64::MAX),
            cancellation: Arc::new(Cancellation(request.cancellation.clone())),
        }
    }
}

/// A token provider (R2): asked for a new token when the listener hears of an
/// authentication problem for an identifier, at most once at a time per identifier,
/// on a thread of its own. Typically it calls the app's backend. `None` means "no
/// token now"; it is asked again on the next notice. An exception counts as `None`.
#[uniffi::export(foreign)]
pub trait TokenProvider: Send + Sync {
    /// A token for `request.identifier`, or `None`.
    ///
    /// # Errors
    /// Whatever the implementation raises; it counts as no token.
    fn fetch_token(&self, request: TokenRequest) -> Result<Option<String>, AuthsyncError>;
}

/// The driver's token provider for a foreign one.
pub(crate) fn provider(provider: Arc<dyn TokenProvider>) -> authsync_blocking::TokenProvider {
    let provider = Foreign::new(provider);
    authsync_blocking::provider(move |request| {
        let (_call, provider) = (gate::enter()?, provider.get()?);
        match provider.fetch_token(TokenRequest::from(request)) {
            Ok(token) => token,
            Err(error) => {
                log::warn!(
                    "authsync: the token provider failed for app {}: {error}; counted as no token",
                    request.app_id
                );
                None
            }
        }
    })
}

// ----- transport ----------------------------------------------------------------------

/// A request for an app's [`Transport`]: send it as it is.
#[derive(Clone, PartialEq, Eq, uniffi::Record)]
pub struct HttpRequest {
    /// `POST`.
    pub method: String,
    /// The absolute URL (`{endpoint}/v1/report`).
    pub url: String,
    /// Header names (lowercase) and values; `authorization` carries the user's token.
    pub headers: HashMap<String, String>,
    /// The body (JSON).
    pub body: Vec<u8>,
}

impl fmt::Debug for HttpRequest {
    /// Shows a prefix of the `authorization` header only (T3).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, String)> = self
            .headers
            .iter()
            .map(|(name, value)| {
                let shown = if name.eq_ignore_ascii_case("authorization") {
                    let prefix: String = value.chars().take(15).collect();
                    format!("{prefix}…")
                } else {
                    value.clone()
                };
                (name.as_str(), shown)
            })
            .collect();
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &headers)
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

/// The server's answer, as the app's [`Transport`] received it: any status (a 401 or
/// a 503 is an answer, not a failure).
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Header names and values (a repeated header: its values joined with `, `).
    #[uniffi(default)]
    pub headers: HashMap<String, String>,
    /// The body.
    #[uniffi(default)]
    pub body: Vec<u8>,
}

/// An app-supplied HTTP transport: the platform's own stack (URLSession, OkHttp,
/// urllib...) instead of the built-in one. Called on the client's sender thread, one
/// request at a time. Return the answer whatever its status; raise a
/// [`TransportError`] when there is none.
#[uniffi::export(foreign)]
pub trait Transport: Send + Sync {
    /// Sends `request`.
    ///
    /// # Errors
    /// How it failed, when no answer came.
    fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError>;
}

/// The driver's transport for a foreign one.
pub(crate) struct ForeignTransport(Foreign<dyn Transport>);

impl ForeignTransport {
    pub(crate) fn new(transport: Arc<dyn Transport>) -> Self {
        Self(Foreign::new(transport))
    }
}

impl HttpTransport for ForeignTransport {
    fn send(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, TransportFailure> {
        let (Some(_call), Some(transport)) = (gate::enter(), self.0.get()) else {
            return Err(TransportFailure::Connect);
        };
        let request = foreign_request(request);
        let url = request.url.clone();
        match transport.send(request) {
            Ok(response) => driver_response(response),
            Err(error) => {
                log::info!("authsync: the app's transport failed for {url}: {error}");
                Err(TransportFailure::from(&error))
            }
        }
    }
}

fn foreign_request(request: http::Request<Bytes>) -> HttpRequest {
    let (parts, body) = request.into_parts();
    let mut headers: HashMap<String, String> = HashMap::new();
    for (name, value) in &parts.headers {
        // The core only builds visible-ASCII values (T1), so none is skipped here.
        let Ok(value) = value.to_str() else { continue };
        headers
            .entry(name.as_str().to_owned())
            .and_modify(|joined| {
                joined.push_str(", ");
                joined.push_str(value);
            })
            .or_insert_with(|| value.to_owned());
    }
    HttpRequest {
        method: parts.method.as_str().to_owned(),
        url: parts.uri.to_string(),
        headers,
        body: body.to_vec(),
    }
}

fn driver_response(response: HttpResponse) -> Result<http::Response<Bytes>, TransportFailure> {
    let Ok(status) = http::StatusCode::from_u16(response.status) else {
        log::info!(
            "authsync: the app's transport returned status {}, which is not one; counted as a broken connection",
            response.status
        );
        return Err(TransportFailure::Reset);
    };
    let mut answer = http::Response::new(Bytes::from(response.body));
    *answer.status_mut() = status;
    for (name, value) in response.headers {
        match (
            http::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            (Ok(name), Ok(value)) => {
                answer.headers_mut().append(name, value);
            }
            // Nothing that came over HTTP looks like this; the header is left out.
            _ => log::info!("authsync: the app's transport returned a malformed header {name:?}"),
        }
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_reaches_the_transport_whole_and_its_debug_hides_the_token() {
        let token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJl";
        let request = http::Request::post("http://127.0.0.1:9/v1/report")
            .header("content-type", "application/json")
            .header("Authorization", format!("Bearer {token}"))
            .body(Bytes::from_static(b"{}"))
            .unwrap();
        let foreign = foreign_request(request);
        assert_eq!(foreign.method, "POST");
        assert_eq!(foreign.url, "http://127.0.0.1:9/v1/report");
        assert_eq!(foreign.headers["authorization"], format!("Bearer {token}"));
        assert_eq!(foreign.body, b"{}");
        let shown = format!("{foreign:?}");
        assert!(!shown.contains(token), "{shown}");
        assert!(shown.contains("Bearer eyJhbGci…"), "{shown}");
    }

    #[test]
    fn an_answer_keeps_status_headers_and_body_and_a_bad_status_is_a_failure() {
        let answer = driver_response(HttpResponse {
            status: 503,
            headers: HashMap::from([
                ("Retry-After".to_owned(), "2".to_owned()),
                ("bad header".to_owned(), "x".to_owned()),
            ]),
            body: b"busy".to_vec(),
        })
        .unwrap();
        assert_eq!(answer.status(), 503);
        assert_eq!(answer.headers()["retry-after"], "2");
        assert_eq!(answer.headers().len(), 1);
        assert_eq!(answer.body().as_ref(), b"busy");
        let bad = driver_response(HttpResponse {
            status: 42,
            headers: HashMap::new(),
            body: Vec::new(),
        });
        assert_eq!(bad.unwrap_err(), TransportFailure::Reset);
    }
}
