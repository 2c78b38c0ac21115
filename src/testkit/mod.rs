//! Parts for tests and benchmarks, not used by the daemon: an SMTP sink to stand in for an
//! upstream server, and a throw-away TLS PKI made at run time.

pub mod sink;

use std::path::Path;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

/// A CA and a server certificate for `localhost` / 127.0.0.1, written as PEM files.
pub struct TestTls {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl TestTls {
    pub fn generate() -> TestTls {
        let now = time::OffsetDateTime::now_utc();
        let ca_key = KeyPair::generate().expect("ca key");
        let mut ca = CertificateParams::default();
        ca.distinguished_name
            .push(DnType::CommonName, "congvan test TLS CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        ca.not_before = now - time::Duration::days(1);
        ca.not_after = now + time::Duration::days(30);
        let ca_cert = ca.self_signed(&ca_key).expect("ca");
        let issuer = Issuer::new(ca, ca_key);
        let key = KeyPair::generate().expect("key");
        let mut p = CertificateParams::new(vec!["localhost".into()]).expect("params");
        p.subject_alt_names
            .push(rcgen::SanType::IpAddress("127.0.0.1".parse().expect("ip")));
        p.not_before = now - time::Duration::days(1);
        p.not_after = now + time::Duration::days(30);
        let cert = p.signed_by(&key, &issuer).expect("cert");
        TestTls {
            ca_pem: ca_cert.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// Writes ca.pem, cert.pem, key.pem into `dir`.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::write(dir.join("ca.pem"), &self.ca_pem)?;
        std::fs::write(dir.join("cert.pem"), &self.cert_pem)?;
        std::fs::write(dir.join("key.pem"), &self.key_pem)
    }

    pub fn server_config(&self, dir: &Path) -> std::sync::Arc<rustls::ServerConfig> {
        self.write(dir).expect("write tls files");
        crate::smtp::tls::load_server_config(&dir.join("cert.pem"), &dir.join("key.pem"))
            .expect("tls config")
            .0
    }
}
