//! The HTTPS server: TLS with rustls, HTTP/1.1 with hyper, one route per webhook.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use axum::serve::Listener as _;

use super::review::Handler;
use super::{Certificates, WebhookError, Webhooks};
use crate::tls::TlsListener;

/// A running webhook server; dropping it or [`WebhookServer::shutdown`] stops it.
///
/// ```no_run
/// # async fn f(webhooks: opkit::webhook::Webhooks) -> Result<(), opkit::webhook::WebhookError> {
/// let certs = opkit::webhook::Certificates::self_signed(&["localhost", "127.0.0.1"])?;
/// let server = webhooks.serve("127.0.0.1:0".parse().expect("an address"), &certs).await?;
/// println!("webhooks at {}", server.url());
/// server.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct WebhookServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

struct Routes {
    handlers: HashMap<String, Handler>,
    max_body_bytes: usize,
}

impl Webhooks {
    /// Serves the webhooks over HTTPS on `addr` (port 0 picks a free one) with `certificates`.
    ///
    /// ```no_run
    /// # async fn f(webhooks: opkit::webhook::Webhooks) -> Result<(), opkit::webhook::WebhookError> {
    /// let certs = opkit::webhook::Certificates::self_signed(&["localhost"])?;
    /// let server = webhooks.serve(([0, 0, 0, 0], 9443).into(), &certs).await?;
    /// # let _ = server; Ok(()) }
    /// ```
    pub async fn serve(
        &self,
        addr: SocketAddr,
        certificates: &Certificates,
    ) -> Result<WebhookServer, WebhookError> {
        let acceptor = TlsAcceptor::from(Arc::new(certificates.server_config()?));
        let bind = |source| WebhookError::Bind {
            addr: addr.to_string(),
            source,
        };
        let listener = TcpListener::bind(addr).await.map_err(bind)?;
        let addr = listener.local_addr().map_err(bind)?;
        let listener = TlsListener::new(listener, acceptor, "webhook server").map_err(bind)?;
        let routes = Arc::new(Routes {
            handlers: self.handlers().into_iter().collect(),
            max_body_bytes: self.max_body_bytes,
        });
        let task = tokio::spawn(accept(listener, routes));
        tracing::info!(%addr, paths = ?self.paths(), "serving admission webhooks");
        Ok(WebhookServer { addr, task })
    }
}

async fn accept(mut listener: TlsListener, routes: Arc<Routes>) {
    loop {
        let (tls, peer) = listener.accept().await;
        let routes = routes.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let routes = routes.clone();
                async move { Ok::<_, Infallible>(handle(&routes, request).await) }
            });
            if let Err(error) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .await
            {
                tracing::debug!(%peer, %error, "webhook server: connection ended");
            }
        });
    }
}

fn text(status: StatusCode, message: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(message)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain"),
    );
    response
}

async fn handle(routes: &Routes, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    let Some(handler) = routes.handlers.get(&path) else {
        return text(StatusCode::NOT_FOUND, format!("no webhook at {path}\n"));
    };
    if request.method() != Method::POST {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            "webhooks take POST\n".to_owned(),
        );
    }
    let body = match Limited::new(request.into_body(), routes.max_body_bytes)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            tracing::warn!(%path, %error, limit = routes.max_body_bytes, "webhook: unreadable or oversized body");
            return text(
                StatusCode::BAD_REQUEST,
                format!(
                    "unreadable or oversized body (limit {} bytes): {error}\n",
                    routes.max_body_bytes
                ),
            );
        }
    };
    match handler(body).await {
        Ok(answer) => {
            let mut response = Response::new(Full::new(Bytes::from(answer)));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
            response
        }
        Err(error) => {
            tracing::warn!(%path, %error, "webhook: malformed AdmissionReview");
            text(StatusCode::BAD_REQUEST, format!("{error}\n"))
        }
    }
}

impl WebhookServer {
    /// The address the server listens on.
    ///
    /// ```no_run
    /// # fn f(server: opkit::webhook::WebhookServer) {
    /// println!("{}", server.addr().port());
    /// # }
    /// ```
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://<addr>`: the base of an [`Endpoint::Url`](super::Endpoint::Url).
    ///
    /// ```no_run
    /// # fn f(server: opkit::webhook::WebhookServer) {
    /// assert!(server.url().starts_with("https://"));
    /// # }
    /// ```
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// Stops accepting connections.
    ///
    /// ```no_run
    /// # async fn f(server: opkit::webhook::WebhookServer) {
    /// server.shutdown().await;
    /// # }
    /// ```
    pub async fn shutdown(mut self) {
        self.task.abort();
        // The task was aborted: its JoinError says so and carries nothing else.
        let _ = (&mut self.task).await;
    }
}

impl Drop for WebhookServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
