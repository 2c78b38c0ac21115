//! The listeners' TLS configuration (rustls with the ring provider). The certificate is
//! served by a resolver that SIGHUP reloads, so a renewed certificate needs no restart.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;

/// The listeners' certificate and key, as last loaded from their files.
#[derive(Debug)]
pub struct ReloadableCert {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for ReloadableCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
        )
    }
}

impl ReloadableCert {
    /// Reads the files again; on any problem the certificate in use stays. Returns the new
    /// certificate's subject and notAfter, for the log.
    pub fn reload(&self) -> Result<String, String> {
        let (key, said) = load_key(&self.cert, &self.key, &self.provider)?;
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(key);
        Ok(said)
    }
}

/// The chain and key of the files, checked to fit together, and what to log of them.
fn load_key(
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> Result<(CertifiedKey, String), String> {
    let cert_pem = std::fs::read(cert).map_err(|e| format!("tls.cert {}: {e}", cert.display()))?;
    let key_pem = std::fs::read(key).map_err(|e| format!("tls.key {}: {e}", key.display()))?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("tls.cert {}: {e}", cert.display()))?;
    let Some(first) = certs.first() else {
        return Err(format!(
            "tls.cert {}: no certificate in the file",
            cert.display()
        ));
    };
    let said = x509_parser::parse_x509_certificate(first)
        .map(|(_, c)| format!("{} until {}", c.subject(), c.validity().not_after))
        .unwrap_or_default();
    let key_der = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|e| format!("tls.key {}: {e}", key.display()))?
        .ok_or_else(|| format!("tls.key {}: no private key in the file", key.display()))?;
    let certified = CertifiedKey::from_der(certs, key_der, provider)
        .map_err(|e| format!("tls: certificate and key do not fit together: {e}"))?;
    Ok((certified, said))
}

/// The listeners' TLS configuration and the resolver SIGHUP reloads.
pub fn load_server_config(
    cert: &Path,
    key: &Path,
) -> Result<(Arc<ServerConfig>, Arc<ReloadableCert>), String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let (certified, _) = load_key(cert, key, &provider)?;
    let resolver = Arc::new(ReloadableCert {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        provider: provider.clone(),
        current: RwLock::new(Arc::new(certified)),
    });
    let cfg = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_cert_resolver(resolver.clone());
    Ok((Arc::new(cfg), resolver))
}
