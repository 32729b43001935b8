//! The server's certificate authority: generated per server, it signs the
//! serving certificate and the client certificates that authenticate users
//! (common name = user, organizations = groups), as kube-apiserver's
//! `--client-ca-file` does.

use crate::authn::UserInfo;
use crate::error::Error;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

/// A certificate and its private key, PEM-encoded.
#[derive(Clone)]
pub(crate) struct KeyedCert {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for KeyedCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedCert").finish_non_exhaustive()
    }
}

/// One server's CA, with the serving certificate it issued at start.
pub(crate) struct Authority {
    issuer: Issuer<'static, KeyPair>,
    ca_der: CertificateDer<'static>,
    ca_pem: String,
    serving: Arc<rustls::ServerConfig>,
}

fn pki_error(error: impl std::fmt::Display) -> Error {
    Error::Certificate(error.to_string())
}

impl Authority {
    /// A fresh CA named after the server, and a serving certificate for
    /// `127.0.0.1` and `localhost`.
    pub fn new() -> Result<Authority, Error> {
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(pki_error)?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "opkit-envtest-ca");
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
        ];
        let key = KeyPair::generate().map_err(pki_error)?;
        let ca = params.self_signed(&key).map_err(pki_error)?;
        let issuer = Issuer::new(params, key);
        let ca_der = ca.der().clone();
        let ca_pem = ca.pem();
        let serving = serving_config(&issuer, &ca_der)?;
        Ok(Authority {
            issuer,
            ca_der,
            ca_pem,
            serving,
        })
    }

    /// The CA certificate, PEM: what kubeconfigs carry as `certificate-authority-data`.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The CA certificate, DER: what `kube::Config::root_cert` holds.
    pub fn ca_der(&self) -> &CertificateDer<'static> {
        &self.ca_der
    }

    /// The TLS configuration the server listens with.
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        self.serving.clone()
    }

    /// A client certificate authenticating as `user` in `group`.
    pub fn client_cert(&self, user: &str, group: &str) -> Result<KeyedCert, Error> {
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(pki_error)?;
        params.distinguished_name.push(DnType::CommonName, user);
        params
            .distinguished_name
            .push(DnType::OrganizationName, group);
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate().map_err(pki_error)?;
        let cert = params.signed_by(&key, &self.issuer).map_err(pki_error)?;
        Ok(KeyedCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

fn serving_config(
    issuer: &Issuer<'static, KeyPair>,
    ca_der: &CertificateDer<'static>,
) -> Result<Arc<rustls::ServerConfig>, Error> {
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).map_err(pki_error)?;
    params
        .subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    params.subject_alt_names.push(SanType::DnsName(
        "kubernetes.default.svc".try_into().map_err(pki_error)?,
    ));
    params
        .distinguished_name
        .push(DnType::CommonName, "kube-apiserver");
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().map_err(pki_error)?;
    let cert = params.signed_by(&key, issuer).map_err(pki_error)?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca_der.clone()).map_err(pki_error)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    // Clients may present no certificate (bearer tokens, anonymous requests);
    // those that do must present one this CA signed.
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .allow_unauthenticated()
    .build()
    .map_err(pki_error)?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(pki_error)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![cert.der().clone(), ca_der.clone()], key)
        .map_err(pki_error)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The user a verified client certificate names: the subject's common name,
/// its organizations as groups, as kube-apiserver's x509 authenticator reads it.
/// `None` when the certificate has no common name.
pub(crate) fn certificate_user(cert: &CertificateDer<'_>) -> Option<UserInfo> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let subject = parsed.subject();
    let username = subject
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_string();
    let groups = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok().map(str::to_string))
        .collect();
    Some(UserInfo::new(username, groups))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::pem::PemObject;

    #[test]
    fn client_certificates_name_the_user_and_groups() {
        let ca = Authority::new().unwrap_or_else(|e| panic!("{e}"));
        let issued = ca
            .client_cert("jane", "system:masters")
            .unwrap_or_else(|e| panic!("{e}"));
        let der = CertificateDer::from_pem_slice(issued.cert_pem.as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
        let user = certificate_user(&der).unwrap_or_else(|| panic!("a user"));
        assert_eq!(user.username, "jane");
        assert_eq!(user.groups, ["system:masters", "system:authenticated"]);
        assert!(ca.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    }
}
