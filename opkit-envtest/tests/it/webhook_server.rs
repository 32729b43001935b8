//! An admission webhook on 127.0.0.1 for tests and the admission bench:
//! HTTPS with a self-signed certificate marked `CA:TRUE` (as `openssl req
//! -x509` makes one), recording what each call carried and counting TLS
//! connections.

use axum::Router;
use axum::extract::{Request, State};
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// What the webhook saw of one call.
#[derive(Clone, Debug)]
pub struct Seen {
    pub path: String,
    pub user_agent: String,
    pub user: String,
}

/// How the webhook answers.
#[derive(Clone, Debug)]
pub enum Answer {
    Allow,
    /// Denies with this `response.status`.
    Deny(Value),
    /// Allows with this JSON patch.
    Patch(Value),
}

#[derive(Clone)]
struct Webhook {
    calls: Arc<Mutex<Vec<Seen>>>,
    answer: Answer,
}

/// Accepts TLS connections, counting them.
struct Tls {
    listener: TcpListener,
    acceptor: TlsAcceptor,
    connections: Arc<AtomicUsize>,
}

impl axum::serve::Listener for Tls {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.listener.accept().await else {
                continue;
            };
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                self.connections.fetch_add(1, Ordering::SeqCst);
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

async fn review(State(hook): State<Webhook>, request: Request) -> axum::Json<Value> {
    let user_agent = request
        .headers()
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let path = request
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let body = axum::body::to_bytes(request.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    let review: Value = serde_json::from_slice(&body).unwrap_or_default();
    let user = review["request"]["userInfo"]["username"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    hook.calls
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Seen {
            path,
            user_agent,
            user,
        });
    let uid = review["request"]["uid"].clone();
    let response = match &hook.answer {
        Answer::Allow => json!({"uid": uid, "allowed": true}),
        Answer::Deny(status) => json!({"uid": uid, "allowed": false, "status": status}),
        Answer::Patch(patch) => json!({
            "uid": uid,
            "allowed": true,
            "patchType": "JSONPatch",
            "patch": BASE64.encode(patch.to_string()),
        }),
    };
    axum::Json(
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}),
    )
}

/// A running webhook: where it listens, its caBundle, what it saw.
pub struct WebhookServer {
    pub addr: SocketAddr,
    pub ca_pem: String,
    pub calls: Arc<Mutex<Vec<Seen>>>,
    pub connections: Arc<AtomicUsize>,
}

impl WebhookServer {
    /// Starts a webhook answering every call at `/review` with `answer`.
    pub async fn start(answer: Answer) -> WebhookServer {
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_string()]).expect("certificate parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().expect("a key");
        let cert = params.self_signed(&key).expect("a certificate");
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .expect("a serving configuration");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let addr = listener.local_addr().expect("an address");
        let calls = Arc::default();
        let connections = Arc::new(AtomicUsize::new(0));
        let tls = Tls {
            listener,
            acceptor: TlsAcceptor::from(Arc::new(config)),
            connections: connections.clone(),
        };
        let hook = Webhook {
            calls: Arc::clone(&calls),
            answer,
        };
        let router = Router::new()
            .route("/review", post(review))
            .with_state(hook);
        tokio::spawn(async move { axum::serve(tls, router).await });
        WebhookServer {
            addr,
            ca_pem: cert.pem(),
            calls,
            connections,
        }
    }

    /// A `Validating`- or `MutatingWebhookConfiguration` named `name` calling this webhook
    /// for creates of `resources` in `group`/`version`.
    pub fn configuration(
        &self,
        kind: &str,
        name: &str,
        group: &str,
        version: &str,
        resources: &str,
    ) -> Value {
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": kind,
            "metadata": {"name": name},
            "webhooks": [{
                "name": format!("{name}.example.com"),
                "admissionReviewVersions": ["v1"],
                "sideEffects": "None",
                "clientConfig": {
                    "url": format!("https://{}/review", self.addr),
                    "caBundle": BASE64.encode(&self.ca_pem),
                },
                "rules": [{"apiGroups": [group], "apiVersions": [version], "operations": ["CREATE"], "resources": [resources]}],
            }],
        })
    }

    /// The calls seen so far.
    pub fn calls(&self) -> Vec<Seen> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
