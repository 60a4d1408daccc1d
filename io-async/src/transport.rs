//! HTTP with hyper 1 over smol sockets (and rustls for `https://`).
//!
//! hyper's low-level client connection adds neither a `Host` header nor pooling: this
//! module sets `Host`, sends the origin-form target, keeps one connection alive and
//! opens a new one after a failure. It classifies how a request failed and decides
//! nothing else.

use std::sync::Arc;
use std::time::Duration;

use authsync_core::{Request, TransportFailure};
use authsync_host::{HttpOptions, failure_of_io};
use bytes::{Bytes, BytesMut};
use futures_rustls::TlsConnector;
use futures_rustls::pki_types::ServerName;
use futures_rustls::rustls::{self, ClientConfig, RootCertStore};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderValue, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use smol::Executor;
use smol::future::FutureExt as _;
use smol::net::TcpStream;
use smol_hyper::rt::FuturesIo;

/// Where requests go, and how to get there.
struct Target {
    host: String,
    port: u16,
    authority: HeaderValue,
    tls: Option<(TlsConnector, ServerName<'static>)>,
}

pub(crate) struct Transport {
    /// Built from the first request's URI: every request of a workspace goes to the
    /// same endpoint.
    target: Option<Result<Target, String>>,
    options: HttpOptions,
    connection: Option<SendRequest<Full<Bytes>>>,
    executor: Arc<Executor<'static>>,
}

impl Transport {
    /// A transport whose connection tasks run on `executor`.
    pub(crate) fn new(options: HttpOptions, executor: Arc<Executor<'static>>) -> Self {
        Self {
            target: None,
            options,
            connection: None,
            executor,
        }
    }

    /// Sends `request`, keeping at most the configured number of response bytes.
    pub(crate) async fn send(
        &mut self,
        request: &Request,
    ) -> Result<http::Response<Bytes>, TransportFailure> {
        let timeout = self.options.request_timeout;
        let result = self.exchange(request).or(expire(timeout)).await;
        if result.is_err() {
            // Whatever state the connection is in, it is not one to reuse.
            self.connection = None;
        }
        result
    }

    async fn exchange(
        &mut self,
        request: &Request,
    ) -> Result<http::Response<Bytes>, TransportFailure> {
        let authority = match self.target.get_or_insert_with(|| target(&request.uri)) {
            Ok(target) => target.authority.clone(),
            Err(why) => {
                log::error!("authsync: cannot reach the endpoint: {why}");
                return Err(TransportFailure::Connect);
            }
        };
        let connection = self.connection().await?;
        let mut outgoing = request.to_http().map(Full::new);
        // The low-level connection writes the target as given: send origin-form.
        let origin = request
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        *outgoing.uri_mut() = Uri::from(origin);
        outgoing.headers_mut().insert(http::header::HOST, authority);
        let response = connection
            .send_request(outgoing)
            .await
            .map_err(|e| failure_of_hyper(&e))?;
        let (parts, mut body) = response.into_parts();
        let limit = usize::try_from(self.options.max_response_bytes).unwrap_or(usize::MAX);
        let mut bytes = BytesMut::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| failure_of_hyper(&e))?;
            if let Ok(data) = frame.into_data() {
                let room = limit.saturating_sub(bytes.len());
                bytes.extend_from_slice(&data[..data.len().min(room)]);
                if data.len() > room {
                    // The rest is ignored; the connection cannot be reused mid-body.
                    self.connection = None;
                    break;
                }
            }
        }
        Ok(http::Response::from_parts(parts, bytes.freeze()))
    }

    /// The kept-alive connection, or a new one.
    async fn connection(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, TransportFailure> {
        if let Some(mut existing) = self.connection.take()
            && existing.ready().await.is_ok()
        {
            return Ok(self.connection.insert(existing));
        }
        let Some(Ok(target)) = self.target.as_ref() else {
            return Err(TransportFailure::Connect);
        };
        let connect = TcpStream::connect((target.host.as_str(), target.port));
        let stream = connect
            .or(async {
                smol::Timer::after(self.options.connect_timeout).await;
                Err(std::io::Error::from(std::io::ErrorKind::TimedOut))
            })
            .await
            .map_err(|e| failure_of_io(&e))?;
        let _ = stream.set_nodelay(true);
        let sender = match &target.tls {
            Some((connector, name)) => {
                let stream = connector
                    .connect(name.clone(), stream)
                    .await
                    .map_err(|e| failure_of_io(&e))?;
                self.handshake(FuturesIo::new(stream)).await?
            }
            None => self.handshake(FuturesIo::new(stream)).await?,
        };
        Ok(self.connection.insert(sender))
    }

    async fn handshake<T>(&self, io: T) -> Result<SendRequest<Full<Bytes>>, TransportFailure>
    where
        T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let (sender, connection) = http1::handshake(io)
            .await
            .map_err(|e| failure_of_hyper(&e))?;
        self.executor
            .spawn(async move {
                // Its errors reach the request that was using it.
                let _ = connection.await;
            })
            .detach();
        Ok(sender)
    }
}

async fn expire<T>(after: Duration) -> Result<T, TransportFailure> {
    smol::Timer::after(after).await;
    Err(TransportFailure::Timeout)
}

fn failure_of_hyper(error: &hyper::Error) -> TransportFailure {
    if error.is_timeout() {
        return TransportFailure::Timeout;
    }
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return failure_of_io(io);
        }
        source = cause.source();
    }
    TransportFailure::Reset
}

fn target(uri: &Uri) -> Result<Target, String> {
    let authority: &Authority = uri.authority().ok_or("no host in the endpoint")?;
    let https = uri.scheme() == Some(&Scheme::HTTPS);
    let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let header = HeaderValue::from_str(authority.as_str()).map_err(|e| e.to_string())?;
    let tls = if https {
        let name = ServerName::try_from(host.clone()).map_err(|e| e.to_string())?;
        Some((TlsConnector::from(Arc::new(tls_config()?)), name))
    } else {
        None
    };
    Ok(Target {
        host,
        port,
        authority: header,
        tls,
    })
}

fn tls_config() -> Result<ClientConfig, String> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
