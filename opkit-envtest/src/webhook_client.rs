//! The server's admission webhook client, as kube-apiserver's: TLS verified
//! the way Go verifies it, one pool of kept-alive connections per webhook
//! endpoint (one handshake per connection, not per call), and the request
//! kube-apiserver sends (`User-Agent: kube-apiserver-admission`).
//!
//! Go accepts a serving certificate that is itself marked `CA:TRUE`, as
//! `openssl req -x509` and several frameworks make them; webpki refuses those
//! as end entities. When webpki refuses a certificate, it is checked again as
//! Go would: issued by (or identical to) a certificate of the caBundle, within
//! its validity, for the server name, and usable for server authentication.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::{FixedServerNameResolver, HttpsConnector};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The User-Agent of kube-apiserver's admission calls.
pub(crate) const USER_AGENT: &str = "kube-apiserver-admission";

/// The most an AdmissionReview answer may be.
const RESPONSE_LIMIT: usize = 16 << 20;

/// How long an idle connection to a webhook is kept.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Where one call goes.
pub(crate) struct Endpoint {
    /// The URI connected to: the URL's, or the local address a service maps to, with the path.
    pub uri: http::Uri,
    /// The `Host` header and TLS server name: the URL's host, or `name.namespace.svc`.
    pub host: String,
    pub server_name: String,
    /// The caBundle (PEM) the serving certificate must chain to.
    pub ca_bundle: Vec<u8>,
}

type Pool = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// What a pool is for: the caBundle, the TLS server name, the address.
type PoolKey = (Vec<u8>, String, String);

/// Connection pools, one per webhook endpoint.
#[derive(Default)]
pub(crate) struct WebhookClients {
    pools: Mutex<HashMap<PoolKey, Pool>>,
}

impl WebhookClients {
    fn pool(&self, endpoint: &Endpoint) -> Result<Pool, String> {
        let authority = endpoint
            .uri
            .authority()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let key = (
            endpoint.ca_bundle.clone(),
            endpoint.server_name.clone(),
            authority,
        );
        let mut pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(pool) = pools.get(&key) {
            return Ok(pool.clone());
        }
        let pool = new_pool(&endpoint.ca_bundle, &endpoint.server_name)?;
        pools.insert(key, pool.clone());
        Ok(pool)
    }

    /// POSTs `body` (an AdmissionReview) and returns the answer's body; the error is
    /// what follows `Post "<url>": ` in kube-apiserver's message.
    pub async fn post(&self, endpoint: &Endpoint, body: Vec<u8>) -> Result<Bytes, String> {
        let pool = self.pool(endpoint)?;
        let request = http::Request::post(endpoint.uri.clone())
            .header(http::header::HOST, &endpoint.host)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, "application/json, */*")
            .header(http::header::USER_AGENT, USER_AGENT)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let response = pool
            .request(request)
            .await
            .map_err(|e| describe(&e, &endpoint.uri))?;
        let status = response.status();
        let body = Limited::new(response.into_body(), RESPONSE_LIMIT)
            .collect()
            .await
            .map_err(|e| format!("reading the response: {e}"))?
            .to_bytes();
        if !status.is_success() {
            return Err(format!(
                "the server responded with status code {}: {}",
                status.as_u16(),
                String::from_utf8_lossy(&body).trim()
            ));
        }
        Ok(body)
    }
}

fn new_pool(ca_bundle: &[u8], server_name: &str) -> Result<Pool, String> {
    let mut roots = Vec::new();
    for cert in CertificateDer::pem_slice_iter(ca_bundle) {
        roots.push(cert.map_err(|e| format!("invalid caBundle: {e}"))?);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = GoVerifier::new(roots, provider.clone())?;
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    let name = ServerName::try_from(server_name.to_string())
        .map_err(|e| format!("invalid host {server_name:?}: {e}"))?;
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .with_server_name_resolver(FixedServerNameResolver::new(name))
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(IDLE_TIMEOUT)
        .build(https))
}

/// A failed call as Go words it: `dial tcp 127.0.0.1:1: connect: connection refused`,
/// `tls: failed to verify certificate: x509: ...`, else the error chain.
fn describe(error: &hyper_util::client::legacy::Error, uri: &http::Uri) -> String {
    let authority = uri.authority().map(|a| a.to_string()).unwrap_or_default();
    if let Some(tls) = find::<rustls::Error>(error) {
        return format!("tls: failed to verify certificate: {}", x509_text(tls));
    }
    if find::<std::io::Error>(error)
        .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
    {
        return format!("dial tcp {authority}: connect: connection refused");
    }
    let mut chain = vec![error.to_string()];
    let mut source = std::error::Error::source(error);
    while let Some(e) = source {
        chain.push(e.to_string());
        source = e.source();
    }
    chain.join(": ")
}

/// The first `T` in an error's chain, looking inside the `io::Error`s that wrap others.
fn find<'a, T: std::error::Error + 'static>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    if let Some(found) = error.downcast_ref::<T>() {
        return Some(found);
    }
    if let Some(inner) = error
        .downcast_ref::<std::io::Error>()
        .and_then(std::io::Error::get_ref)
        && let Some(found) = find::<T>(inner)
    {
        return Some(found);
    }
    error.source().and_then(find::<T>)
}

fn x509_text(error: &rustls::Error) -> String {
    match error {
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            "x509: certificate signed by unknown authority".into()
        }
        rustls::Error::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        ) => "x509: certificate has expired or is not yet valid".into(),
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => "x509: certificate is not valid for the requested name".into(),
        rustls::Error::InvalidCertificate(CertificateError::InvalidPurpose) => {
            "x509: certificate specifies an incompatible key usage".into()
        }
        other => format!("x509: {other}"),
    }
}

/// Verifies a server certificate as Go's `crypto/x509` does (see the module docs).
#[derive(Debug)]
struct GoVerifier {
    roots: Vec<CertificateDer<'static>>,
    /// webpki's verdict first; `None` without a caBundle, where only Go's checks run.
    webpki: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl GoVerifier {
    fn new(
        roots: Vec<CertificateDer<'static>>,
        provider: Arc<CryptoProvider>,
    ) -> Result<Self, String> {
        let mut store = rustls::RootCertStore::empty();
        for root in &roots {
            store
                .add(root.clone())
                .map_err(|e| format!("invalid caBundle: {e}"))?;
        }
        let webpki = if roots.is_empty() {
            None
        } else {
            let verifier =
                WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone())
                    .build()
                    .map_err(|e| format!("invalid caBundle: {e}"))?;
            Some(verifier)
        };
        Ok(GoVerifier {
            roots,
            webpki,
            provider,
        })
    }

    /// Whether `leaf` is one Go accepts: signed by (or equal to) a root, valid now,
    /// for `name`, and not restricted to uses other than server authentication; else
    /// the first check it fails, in Go's order.
    fn go_accepts(
        &self,
        leaf: &CertificateDer<'_>,
        name: &ServerName<'_>,
        now: UnixTime,
    ) -> Result<(), CertificateError> {
        let Ok((_, cert)) = x509_parser::parse_x509_certificate(leaf.as_ref()) else {
            return Err(CertificateError::BadEncoding);
        };
        let issued = self.roots.iter().any(|root| {
            root.as_ref() == leaf.as_ref()
                || x509_parser::parse_x509_certificate(root.as_ref()).is_ok_and(|(_, root)| {
                    root.subject() == cert.issuer()
                        && cert.verify_signature(Some(root.public_key())).is_ok()
                })
        });
        let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        let validity = cert.validity();
        let current =
            validity.not_before.timestamp() <= now && now <= validity.not_after.timestamp();
        let usage = match cert.extended_key_usage() {
            Ok(Some(eku)) => eku.value.any || eku.value.server_auth,
            Ok(None) => true,
            Err(_) => false,
        };
        if !current {
            return Err(CertificateError::Expired);
        }
        if !names_match(&cert, name) {
            return Err(CertificateError::NotValidForName);
        }
        if !issued {
            return Err(CertificateError::UnknownIssuer);
        }
        if !usage {
            return Err(CertificateError::InvalidPurpose);
        }
        Ok(())
    }
}

/// Whether the certificate's subject alternative names cover `name` (Go ignores the common name).
fn names_match(
    cert: &x509_parser::certificate::X509Certificate<'_>,
    name: &ServerName<'_>,
) -> bool {
    use x509_parser::extensions::GeneralName;
    let Ok(Some(sans)) = cert.subject_alternative_name() else {
        return false;
    };
    sans.value
        .general_names
        .iter()
        .any(|san| match (san, name) {
            (GeneralName::DNSName(pattern), ServerName::DnsName(host)) => {
                dns_matches(pattern, host.as_ref())
            }
            (GeneralName::IPAddress(bytes), ServerName::IpAddress(ip)) => {
                let ip: std::net::IpAddr = (*ip).into();
                match ip {
                    std::net::IpAddr::V4(v4) => *bytes == v4.octets(),
                    std::net::IpAddr::V6(v6) => *bytes == v6.octets(),
                }
            }
            _ => false,
        })
}

/// A DNS name against a SAN pattern, `*.` matching one leftmost label.
fn dns_matches(pattern: &str, host: &str) -> bool {
    let (pattern, host) = (pattern.to_ascii_lowercase(), host.to_ascii_lowercase());
    let host = host.trim_end_matches('.');
    match pattern.strip_prefix("*.") {
        Some(suffix) => host
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest == suffix),
        None => pattern.trim_end_matches('.') == host,
    }
}

impl ServerCertVerifier for GoVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let webpki = self.webpki.as_ref().map(|webpki| {
            webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        });
        match webpki.unwrap_or(Err(rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer,
        ))) {
            Ok(verified) => Ok(verified),
            // Refused by webpki: Go's verdict decides, and its reason is the one reported.
            Err(_) => self
                .go_accepts(end_entity, server_name, now)
                .map(|()| ServerCertVerified::assertion())
                .map_err(rustls::Error::InvalidCertificate),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

    fn self_signed(ca: bool, names: &[&str]) -> CertificateDer<'static> {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap_or_else(|e| panic!("{e}"));
        if ca {
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        }
        let key = KeyPair::generate().unwrap_or_else(|e| panic!("{e}"));
        params
            .self_signed(&key)
            .unwrap_or_else(|e| panic!("{e}"))
            .der()
            .clone()
    }

    fn verify(root: &CertificateDer<'static>, leaf: &CertificateDer<'static>, name: &str) -> bool {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier =
            GoVerifier::new(vec![root.clone()], provider).unwrap_or_else(|e| panic!("{e}"));
        let name = ServerName::try_from(name.to_string()).unwrap_or_else(|e| panic!("{e}"));
        verifier
            .verify_server_cert(leaf, &[], &name, &[], UnixTime::now())
            .is_ok()
    }

    #[test]
    fn a_self_signed_ca_leaf_is_accepted_for_its_names_only() {
        let cert = self_signed(true, &["webhook.ops.svc", "127.0.0.1"]);
        assert!(verify(&cert, &cert, "webhook.ops.svc"));
        assert!(verify(&cert, &cert, "127.0.0.1"));
        assert!(!verify(&cert, &cert, "other.ops.svc"));
        let stranger = self_signed(true, &["webhook.ops.svc"]);
        assert!(!verify(&stranger, &cert, "webhook.ops.svc"));
    }

    #[test]
    fn wildcards_match_one_label() {
        assert!(dns_matches("*.ops.svc", "webhook.ops.svc"));
        assert!(!dns_matches("*.ops.svc", "a.webhook.ops.svc"));
        assert!(dns_matches("Webhook.ops.svc", "webhook.OPS.svc."));
    }
}
