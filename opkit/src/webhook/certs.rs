//! Serving certificates: a self-signed CA and a leaf generated at start, or files mounted by
//! cert-manager.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::WebhookError;

/// A serving certificate and key (PEM), with the CA that signed it when known.
///
/// ```
/// let certs = opkit::webhook::Certificates::self_signed(&["localhost", "127.0.0.1"])?;
/// assert!(certs.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
/// # Ok::<(), opkit::webhook::WebhookError>(())
/// ```
#[derive(Clone)]
pub struct Certificates {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

impl std::fmt::Debug for Certificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificates").finish_non_exhaustive()
    }
}

fn rcgen_error(e: rcgen::Error) -> WebhookError {
    WebhookError::Certificate(e.to_string())
}

impl Certificates {
    /// A fresh CA and a serving certificate for `names` (DNS names or IP addresses), signed by it.
    ///
    /// ```
    /// let certs = opkit::webhook::Certificates::self_signed(&["app-operator-webhook.ops.svc"])?;
    /// assert_ne!(certs.ca_pem(), certs.cert_pem());
    /// # Ok::<(), opkit::webhook::WebhookError>(())
    /// ```
    pub fn self_signed(names: &[&str]) -> Result<Self, WebhookError> {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(rcgen_error)?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "opkit webhook CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
        ];
        let ca_key = KeyPair::generate().map_err(rcgen_error)?;
        let ca = ca_params.self_signed(&ca_key).map_err(rcgen_error)?;
        let issuer = Issuer::new(ca_params, ca_key);

        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names.clone()).map_err(rcgen_error)?;
        if let Some(first) = names.first() {
            params
                .distinguished_name
                .push(DnType::CommonName, first.as_str());
        }
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().map_err(rcgen_error)?;
        let cert = params.signed_by(&key, &issuer).map_err(rcgen_error)?;
        Ok(Self {
            ca_pem: ca.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// `tls.crt`, `tls.key` and, when present, `ca.crt` from `dir` (a cert-manager Secret
    /// mounted as a volume).
    ///
    /// ```no_run
    /// let certs = opkit::webhook::Certificates::from_dir(std::path::Path::new("/tmp/k8s-webhook-server/serving-certs"))?;
    /// # Ok::<(), opkit::webhook::WebhookError>(())
    /// ```
    pub fn from_dir(dir: &Path) -> Result<Self, WebhookError> {
        let read = |file: &str| {
            let path = dir.join(file);
            std::fs::read_to_string(&path).map_err(|source| WebhookError::Read {
                path: path.display().to_string(),
                source,
            })
        };
        let cert_pem = read("tls.crt")?;
        let key_pem = read("tls.key")?;
        let ca_pem = if dir.join("ca.crt").exists() {
            read("ca.crt")?
        } else {
            cert_pem.clone()
        };
        let certs = Self {
            ca_pem,
            cert_pem,
            key_pem,
        };
        certs.server_config()?;
        Ok(certs)
    }

    /// The CA certificate (PEM): the webhook configurations' caBundle.
    ///
    /// ```
    /// let certs = opkit::webhook::Certificates::self_signed(&["localhost"])?;
    /// assert!(certs.ca_pem().contains("CERTIFICATE"));
    /// # Ok::<(), opkit::webhook::WebhookError>(())
    /// ```
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The serving certificate (PEM).
    ///
    /// ```
    /// let certs = opkit::webhook::Certificates::self_signed(&["localhost"])?;
    /// assert!(certs.cert_pem().contains("CERTIFICATE"));
    /// # Ok::<(), opkit::webhook::WebhookError>(())
    /// ```
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub(crate) fn server_config(&self) -> Result<rustls::ServerConfig, WebhookError> {
        let chain = CertificateDer::pem_slice_iter(self.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| WebhookError::Certificate(format!("tls.crt: {e}")))?;
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes())
            .map_err(|e| WebhookError::Certificate(format!("tls.key: {e}")))?;
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }
}
