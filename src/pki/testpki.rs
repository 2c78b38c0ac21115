//! A throw-away PKI for tests: a root CA, an intermediate CA, office signing identities and a
//! CRL, generated at test time into a directory the caller owns (nothing that expires is ever
//! committed).
//!
//! Everything is made with rcgen except RSA keys, which ring cannot generate: those come from
//! the `openssl genpkey` command line tool; and P-521 leaves, which rcgen cannot represent
//! with its ring backend: key and certificate both come from the `openssl` command line tool. This module is only for tests; the product never
//! runs openssl. Certificates follow what a Vietnamese government CA issues for an office seal:
//! a UTF-8 subject, `C=VN`, the office mailbox `vanthu@<domain>` as SAN rfc822Name,
//! digitalSignature + nonRepudiation and the emailProtection EKU.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use rcgen::string::Ia5String;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    DnType, DnValue, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevocationReason, RevokedCertParams, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};

/// Why the test PKI could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestPkiError {
    #[error("writing {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("rcgen: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("openssl {args}: {reason}")]
    Openssl { args: String, reason: String },
}

/// The key of a generated identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySpec {
    /// RSA with the given modulus size (made by `openssl genpkey`).
    Rsa(u32),
    /// ECDSA P-256.
    P256,
    /// ECDSA P-384.
    P384,
    /// ECDSA P-521: key and certificate made by the `openssl` command line tool.
    P521,
}

/// A CA certificate and key on disk.
#[derive(Debug, Clone)]
pub struct CaFiles {
    pub cert_pem: PathBuf,
    pub key_pem: PathBuf,
    pub cert_der: Vec<u8>,
}

/// A signing identity on disk: leaf certificate, chain (leaf then intermediate) and key
/// (PKCS#8 PEM).
#[derive(Debug, Clone)]
pub struct IdentityFiles {
    /// Short name, also the file stem (`rsa2048`, `p256`, `expired`, ...).
    pub name: String,
    /// The SAN rfc822Name of the certificate.
    pub email: String,
    pub cert_pem: PathBuf,
    pub chain_pem: PathBuf,
    pub key_pem: PathBuf,
    pub cert_der: Vec<u8>,
    /// Leaf first, then the intermediate.
    pub chain_der: Vec<Vec<u8>>,
    pub key_pkcs8_der: Vec<u8>,
    /// Lower-case hex, as `SigningIdentity::serial_hex` gives it.
    pub serial_hex: String,
}

/// What an issued leaf certificate looks like.
#[derive(Debug, Clone)]
pub struct LeafOptions {
    /// SAN rfc822Name entries.
    pub emails: Vec<String>,
    /// An emailAddress attribute in the subject DN.
    pub subject_email: Option<String>,
    pub common_name: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub key_usages: Vec<KeyUsagePurpose>,
    /// Extended key usages; empty means no EKU extension at all.
    pub extended_key_usages: Vec<ExtendedKeyUsagePurpose>,
}

impl LeafOptions {
    /// An ordinary office seal for `domain`, valid from an hour ago for a year.
    pub fn office(domain: &str) -> LeafOptions {
        let now = OffsetDateTime::now_utc();
        LeafOptions {
            emails: vec![format!("vanthu@{domain}")],
            subject_email: None,
            common_name: format!("Văn thư UBND {domain}"),
            not_before: now - Duration::hours(1),
            not_after: now + Duration::days(365),
            key_usages: vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::ContentCommitment,
            ],
            extended_key_usages: vec![ExtendedKeyUsagePurpose::EmailProtection],
        }
    }
}

/// The generated PKI.
pub struct TestPki {
    pub dir: PathBuf,
    pub domain: String,
    pub root: CaFiles,
    pub intermediate: CaFiles,
    pub rsa2048: IdentityFiles,
    pub rsa3072: IdentityFiles,
    pub rsa4096: IdentityFiles,
    /// Also carries `emailAddress=vanphong@<domain>` in its subject.
    pub p256: IdentityFiles,
    pub p384: IdentityFiles,
    pub expired: IdentityFiles,
    pub not_yet_valid: IdentityFiles,
    /// Listed in [`TestPki::crl_pem`].
    pub revoked: IdentityFiles,
    /// Has an EKU extension without emailProtection (clientAuth only).
    pub no_email_eku: IdentityFiles,
    /// CRL from the intermediate, revoking [`TestPki::revoked`].
    pub crl_pem: PathBuf,
    pub crl_der: Vec<u8>,
    intermediate_params: CertificateParams,
    intermediate_key: KeyPair,
}

impl TestPki {
    /// The identities that sign normally, one per supported key type.
    pub fn good_identities(&self) -> [&IdentityFiles; 5] {
        [
            &self.rsa2048,
            &self.rsa3072,
            &self.rsa4096,
            &self.p256,
            &self.p384,
        ]
    }

    /// Issues one more leaf from the intermediate (for example for another domain).
    pub fn issue(
        &self,
        name: &str,
        key: KeySpec,
        options: &LeafOptions,
    ) -> Result<IdentityFiles, TestPkiError> {
        let issuer = Issuer::from_params(&self.intermediate_params, &self.intermediate_key);
        issue_leaf(&self.dir, name, key, options, &issuer, &self.intermediate)
    }
}

/// Whether the `openssl` command line tool can be run.
pub fn openssl_available() -> bool {
    Command::new("openssl")
        .arg("version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Runs `openssl` with `args`; its stdout on success.
pub fn run_openssl(args: &[&str]) -> Result<Vec<u8>, TestPkiError> {
    let output =
        Command::new("openssl")
            .args(args)
            .output()
            .map_err(|e| TestPkiError::Openssl {
                args: args.join(" "),
                reason: e.to_string(),
            })?;
    if !output.status.success() {
        return Err(TestPkiError::Openssl {
            args: args.join(" "),
            reason: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    }
    Ok(output.stdout)
}

/// Generates the whole PKI for `domain` into `dir` (which must exist).
pub fn generate(dir: &Path, domain: &str) -> Result<TestPki, TestPkiError> {
    let now = OffsetDateTime::now_utc();

    // Root CA (P-384), ten years.
    let root_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384)?;
    let mut root_params = CertificateParams::default();
    root_params.distinguished_name = dn(&[
        (DnType::CountryName, "VN"),
        (
            DnType::OrganizationName,
            "Ban Cơ yếu Chính phủ (thử nghiệm)",
        ),
        (DnType::CommonName, "congvan test root CA"),
    ]);
    root_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    root_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    root_params.not_before = now - Duration::days(1);
    root_params.not_after = now + Duration::days(3650);
    root_params.serial_number = Some(fresh_serial());
    let root_cert = root_params.self_signed(&root_key)?;
    let root = CaFiles {
        cert_pem: write(dir, "root.pem", root_cert.pem().as_bytes())?,
        key_pem: write(dir, "root.key.pem", root_key.serialize_pem().as_bytes())?,
        cert_der: root_cert.der().to_vec(),
    };
    let root_issuer = Issuer::new(root_params, root_key);

    // Intermediate CA (P-256), five years.
    let intermediate_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut intermediate_params = CertificateParams::default();
    intermediate_params.distinguished_name = dn(&[
        (DnType::CountryName, "VN"),
        (
            DnType::OrganizationName,
            "Ban Cơ yếu Chính phủ (thử nghiệm)",
        ),
        (DnType::CommonName, "congvan test intermediate CA"),
    ]);
    intermediate_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    intermediate_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    intermediate_params.not_before = now - Duration::days(1);
    intermediate_params.not_after = now + Duration::days(1825);
    intermediate_params.serial_number = Some(fresh_serial());
    intermediate_params.use_authority_key_identifier_extension = true;
    let intermediate_cert = intermediate_params.signed_by(&intermediate_key, &root_issuer)?;
    let intermediate = CaFiles {
        cert_pem: write(dir, "intermediate.pem", intermediate_cert.pem().as_bytes())?,
        key_pem: write(
            dir,
            "intermediate.key.pem",
            intermediate_key.serialize_pem().as_bytes(),
        )?,
        cert_der: intermediate_cert.der().to_vec(),
    };

    let issuer = Issuer::from_params(&intermediate_params, &intermediate_key);
    let leaf = |name: &str, key: KeySpec, options: &LeafOptions| {
        issue_leaf(dir, name, key, options, &issuer, &intermediate)
    };

    let office = LeafOptions::office(domain);
    let rsa2048 = leaf("rsa2048", KeySpec::Rsa(2048), &office)?;
    let rsa3072 = leaf("rsa3072", KeySpec::Rsa(3072), &office)?;
    let rsa4096 = leaf("rsa4096", KeySpec::Rsa(4096), &office)?;
    let p256 = leaf(
        "p256",
        KeySpec::P256,
        &LeafOptions {
            subject_email: Some(format!("vanphong@{domain}")),
            ..office.clone()
        },
    )?;
    let p384 = leaf("p384", KeySpec::P384, &office)?;
    let expired = leaf(
        "expired",
        KeySpec::P256,
        &LeafOptions {
            not_before: now - Duration::days(400),
            not_after: now - Duration::days(1),
            ..office.clone()
        },
    )?;
    let not_yet_valid = leaf(
        "not-yet-valid",
        KeySpec::P256,
        &LeafOptions {
            not_before: now + Duration::days(1),
            not_after: now + Duration::days(400),
            ..office.clone()
        },
    )?;
    let revoked = leaf("revoked", KeySpec::P256, &office)?;
    let no_email_eku = leaf(
        "no-email-eku",
        KeySpec::P256,
        &LeafOptions {
            extended_key_usages: vec![ExtendedKeyUsagePurpose::ClientAuth],
            ..office.clone()
        },
    )?;

    let revoked_serial = hex::decode(&revoked.serial_hex).unwrap_or_default();
    let crl = CertificateRevocationListParams {
        this_update: now - Duration::hours(1),
        next_update: now + Duration::days(7),
        crl_number: SerialNumber::from_slice(&[1]),
        issuing_distribution_point: None,
        revoked_certs: vec![RevokedCertParams {
            serial_number: SerialNumber::from_slice(&revoked_serial),
            revocation_time: now - Duration::minutes(30),
            reason_code: Some(RevocationReason::KeyCompromise),
            invalidity_date: None,
        }],
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(&issuer)?;
    let crl_pem = write(dir, "crl.pem", crl.pem()?.as_bytes())?;
    let crl_der = crl.der().to_vec();
    write(dir, "crl.der", &crl_der)?;
    drop(issuer);

    Ok(TestPki {
        dir: dir.to_path_buf(),
        domain: domain.to_string(),
        root,
        intermediate,
        rsa2048,
        rsa3072,
        rsa4096,
        p256,
        p384,
        expired,
        not_yet_valid,
        revoked,
        no_email_eku,
        crl_pem,
        crl_der,
        intermediate_params,
        intermediate_key,
    })
}

/// The certificate parameters of a leaf as `options` say, and its fresh serial (hex).
fn leaf_params(options: &LeafOptions) -> Result<(CertificateParams, String), TestPkiError> {
    let mut params = CertificateParams::default();
    let mut name_parts = vec![
        (DnType::CountryName, DnValue::from("VN")),
        (DnType::LocalityName, DnValue::from("Hà Nội")),
        (DnType::OrganizationName, DnValue::from("UBND (thử nghiệm)")),
        (
            DnType::CommonName,
            DnValue::from(options.common_name.as_str()),
        ),
    ];
    if let Some(email) = &options.subject_email {
        name_parts.push((
            DnType::CustomDnType(vec![1, 2, 840, 113549, 1, 9, 1]),
            DnValue::Ia5String(Ia5String::try_from(email.as_str())?),
        ));
    }
    let mut dn = DistinguishedName::new();
    for (ty, value) in name_parts {
        dn.push(ty, value);
    }
    params.distinguished_name = dn;
    params.subject_alt_names = options
        .emails
        .iter()
        .map(|e| Ia5String::try_from(e.as_str()).map(SanType::Rfc822Name))
        .collect::<Result<_, _>>()?;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = options.key_usages.clone();
    params.extended_key_usages = options.extended_key_usages.clone();
    params.not_before = options.not_before;
    params.not_after = options.not_after;
    let serial = fresh_serial();
    let serial_hex = hex::encode(serial.to_bytes());
    params.serial_number = Some(serial);
    params.use_authority_key_identifier_extension = true;
    Ok((params, serial_hex))
}

/// A public key held elsewhere (on a token), given as its SubjectPublicKeyInfo, for rcgen
/// to certify.
struct ForeignKey {
    bits: Vec<u8>,
    algorithm: &'static rcgen::SignatureAlgorithm,
}

impl rcgen::PublicKeyData for ForeignKey {
    fn der_bytes(&self) -> &[u8] {
        &self.bits
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        self.algorithm
    }
}

/// A certificate for a key made elsewhere, with its chain.
#[derive(Debug, Clone)]
pub struct IssuedCert {
    pub cert_pem: PathBuf,
    pub chain_pem: PathBuf,
    pub cert_der: Vec<u8>,
    pub serial_hex: String,
}

impl TestPki {
    /// Certifies the public key `spki_der` (an RSA or P-256 SubjectPublicKeyInfo, as a token
    /// that generated the key gives it) under the intermediate, as `options` say.
    pub fn issue_for_public_key(
        &self,
        name: &str,
        spki_der: &[u8],
        options: &LeafOptions,
    ) -> Result<IssuedCert, TestPkiError> {
        let bad = |m: String| TestPkiError::Io {
            path: PathBuf::from(name),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, m),
        };
        use x509_parser::prelude::FromDer;
        let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(spki_der)
            .map_err(|e| bad(e.to_string()))?;
        let algorithm = match spki.algorithm.algorithm.to_id_string().as_str() {
            "1.2.840.113549.1.1.1" => &rcgen::PKCS_RSA_SHA256,
            "1.2.840.10045.2.1" => &rcgen::PKCS_ECDSA_P256_SHA256,
            other => return Err(bad(format!("key algorithm {other}"))),
        };
        let key = ForeignKey {
            bits: spki.subject_public_key.data.to_vec(),
            algorithm,
        };
        let (params, serial_hex) = leaf_params(options)?;
        let issuer = Issuer::from_params(&self.intermediate_params, &self.intermediate_key);
        let cert = params.signed_by(&key, &issuer)?;
        let cert_pem_text = cert.pem();
        let intermediate_pem = pem_block("CERTIFICATE", &self.intermediate.cert_der);
        Ok(IssuedCert {
            cert_pem: write(&self.dir, &format!("{name}.pem"), cert_pem_text.as_bytes())?,
            chain_pem: write(
                &self.dir,
                &format!("{name}.chain.pem"),
                format!("{cert_pem_text}{intermediate_pem}").as_bytes(),
            )?,
            cert_der: cert.der().to_vec(),
            serial_hex,
        })
    }
}

fn issue_leaf(
    dir: &Path,
    name: &str,
    key: KeySpec,
    options: &LeafOptions,
    issuer: &Issuer<'_, &KeyPair>,
    intermediate: &CaFiles,
) -> Result<IdentityFiles, TestPkiError> {
    let intermediate_der = intermediate.cert_der.as_slice();
    let key_pair = match key {
        KeySpec::P521 => return issue_leaf_openssl(dir, name, options, intermediate),
        KeySpec::P256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?,
        KeySpec::P384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384)?,
        KeySpec::Rsa(bits) => {
            let path = dir.join(format!("{name}.key.pem"));
            let path_str = path.to_string_lossy().into_owned();
            let bits = format!("rsa_keygen_bits:{bits}");
            run_openssl(&[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                &bits,
                "-out",
                &path_str,
            ])?;
            let pem = fs::read_to_string(&path).map_err(|source| TestPkiError::Io {
                path: path.clone(),
                source,
            })?;
            KeyPair::from_pem(&pem)?
        }
    };

    let (params, serial_hex) = leaf_params(options)?;
    let cert = params.signed_by(&key_pair, issuer)?;

    let key_pem = key_pair.serialize_pem();
    let cert_pem_text = cert.pem();
    let intermediate_pem = pem_block("CERTIFICATE", intermediate_der);
    Ok(IdentityFiles {
        name: name.to_string(),
        email: options.emails.first().cloned().unwrap_or_default(),
        cert_pem: write(dir, &format!("{name}.pem"), cert_pem_text.as_bytes())?,
        chain_pem: write(
            dir,
            &format!("{name}.chain.pem"),
            format!("{cert_pem_text}{intermediate_pem}").as_bytes(),
        )?,
        key_pem: write(dir, &format!("{name}.key.pem"), key_pem.as_bytes())?,
        cert_der: cert.der().to_vec(),
        chain_der: vec![cert.der().to_vec(), intermediate_der.to_vec()],
        key_pkcs8_der: key_pair.serialize_der(),
        serial_hex,
    })
}

/// A P-521 leaf made with the `openssl` command line tool (`genpkey`, `req -new`, then `ca`
/// with the intermediate, which unlike `x509 -req` in OpenSSL 3.0 takes explicit validity
/// dates), with the subject, extensions and validity [`issue_leaf`] gives.
fn issue_leaf_openssl(
    dir: &Path,
    name: &str,
    options: &LeafOptions,
    intermediate: &CaFiles,
) -> Result<IdentityFiles, TestPkiError> {
    let path = |suffix: &str| dir.join(format!("{name}{suffix}"));
    let text = |p: &Path| p.to_string_lossy().into_owned();
    let (key_pem, csr, cert_out, ca_dir, cnf) = (
        path(".key.pem"),
        path(".csr.pem"),
        path(".issued.pem"),
        path(".ca"),
        path(".ca.cnf"),
    );
    fs::create_dir_all(&ca_dir).map_err(|source| TestPkiError::Io {
        path: ca_dir.clone(),
        source,
    })?;
    run_openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-521",
        "-out",
        &text(&key_pem),
    ])?;
    let escape = |v: &str| v.replace('\\', "\\\\").replace('/', "\\/");
    let mut subject = format!(
        "/C=VN/L={}/O={}/CN={}",
        escape("Hà Nội"),
        escape("UBND (thử nghiệm)"),
        escape(&options.common_name)
    );
    if let Some(email) = &options.subject_email {
        subject.push_str(&format!("/emailAddress={}", escape(email)));
    }
    run_openssl(&[
        "req",
        "-new",
        "-utf8",
        "-key",
        &text(&key_pem),
        "-subj",
        &subject,
        "-out",
        &text(&csr),
    ])?;
    let serial_hex = hex::encode(fresh_serial().to_bytes());
    let ca_path = |f: &str| text(&ca_dir.join(f));
    write(&ca_dir, "index.txt", b"")?;
    write(&ca_dir, "serial", format!("{serial_hex}\n").as_bytes())?;
    let mut lines = vec![
        "[ca]".to_string(),
        "default_ca = leaf_ca".to_string(),
        "[leaf_ca]".to_string(),
        format!("database = {}", ca_path("index.txt")),
        format!("serial = {}", ca_path("serial")),
        format!("new_certs_dir = {}", text(&ca_dir)),
        "default_md = sha256".to_string(),
        "policy = leaf_policy".to_string(),
        "unique_subject = no".to_string(),
        "copy_extensions = none".to_string(),
        "[leaf_policy]".to_string(),
        "countryName = optional".to_string(),
        "localityName = optional".to_string(),
        "organizationName = optional".to_string(),
        "commonName = optional".to_string(),
        "emailAddress = optional".to_string(),
        "[leaf]".to_string(),
        "basicConstraints = CA:FALSE".to_string(),
        "subjectKeyIdentifier = hash".to_string(),
        "authorityKeyIdentifier = keyid".to_string(),
    ];
    if !options.key_usages.is_empty() {
        let names: Vec<&str> = options
            .key_usages
            .iter()
            .map(|u| match u {
                KeyUsagePurpose::DigitalSignature => "digitalSignature",
                KeyUsagePurpose::ContentCommitment => "nonRepudiation",
                KeyUsagePurpose::KeyEncipherment => "keyEncipherment",
                KeyUsagePurpose::DataEncipherment => "dataEncipherment",
                KeyUsagePurpose::KeyAgreement => "keyAgreement",
                KeyUsagePurpose::KeyCertSign => "keyCertSign",
                KeyUsagePurpose::CrlSign => "cRLSign",
                KeyUsagePurpose::EncipherOnly => "encipherOnly",
                KeyUsagePurpose::DecipherOnly => "decipherOnly",
            })
            .collect();
        lines.push(format!("keyUsage = critical, {}", names.join(", ")));
    }
    if !options.extended_key_usages.is_empty() {
        let names: Vec<String> = options
            .extended_key_usages
            .iter()
            .map(|u| match u {
                ExtendedKeyUsagePurpose::Any => "anyExtendedKeyUsage".to_string(),
                ExtendedKeyUsagePurpose::ServerAuth => "serverAuth".to_string(),
                ExtendedKeyUsagePurpose::ClientAuth => "clientAuth".to_string(),
                ExtendedKeyUsagePurpose::CodeSigning => "codeSigning".to_string(),
                ExtendedKeyUsagePurpose::EmailProtection => "emailProtection".to_string(),
                ExtendedKeyUsagePurpose::TimeStamping => "timeStamping".to_string(),
                ExtendedKeyUsagePurpose::OcspSigning => "OCSPSigning".to_string(),
                ExtendedKeyUsagePurpose::Other(arcs) => arcs
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join("."),
            })
            .collect();
        lines.push(format!("extendedKeyUsage = {}", names.join(", ")));
    }
    if !options.emails.is_empty() {
        let sans: Vec<String> = options
            .emails
            .iter()
            .map(|e| format!("email:{e}"))
            .collect();
        lines.push(format!("subjectAltName = {}", sans.join(", ")));
    }
    write(
        dir,
        &format!("{name}.ca.cnf"),
        (lines.join("\n") + "\n").as_bytes(),
    )?;
    run_openssl(&[
        "ca",
        "-batch",
        "-notext",
        "-preserveDN",
        "-config",
        &text(&cnf),
        "-extensions",
        "leaf",
        "-cert",
        &text(&intermediate.cert_pem),
        "-keyfile",
        &text(&intermediate.key_pem),
        "-startdate",
        &asn1_time(options.not_before),
        "-enddate",
        &asn1_time(options.not_after),
        "-in",
        &text(&csr),
        "-out",
        &text(&cert_out),
    ])?;
    let cert_der = run_openssl(&["x509", "-in", &text(&cert_out), "-outform", "DER"])?;
    let key_pkcs8_der = run_openssl(&["pkey", "-in", &text(&key_pem), "-outform", "DER"])?;
    let cert_pem_text = pem_block("CERTIFICATE", &cert_der);
    let intermediate_pem = pem_block("CERTIFICATE", &intermediate.cert_der);
    Ok(IdentityFiles {
        name: name.to_string(),
        email: options.emails.first().cloned().unwrap_or_default(),
        cert_pem: write(dir, &format!("{name}.pem"), cert_pem_text.as_bytes())?,
        chain_pem: write(
            dir,
            &format!("{name}.chain.pem"),
            format!("{cert_pem_text}{intermediate_pem}").as_bytes(),
        )?,
        key_pem,
        chain_der: vec![cert_der.clone(), intermediate.cert_der.clone()],
        cert_der,
        key_pkcs8_der,
        serial_hex,
    })
}

/// A time as `openssl ca -startdate` takes it: UTCTime form before 2050 (RFC 5280 §4.1.2.5),
/// GeneralizedTime form after.
fn asn1_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let year = if t.year() < 2050 {
        format!("{:02}", t.year() % 100)
    } else {
        format!("{:04}", t.year())
    };
    format!(
        "{year}{:02}{:02}{:02}{:02}{:02}Z",
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn dn(parts: &[(DnType, &str)]) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    for (ty, value) in parts {
        dn.push(ty.clone(), *value);
    }
    dn
}

/// A positive 16-byte serial, unique within the process and very likely across processes.
fn fresh_serial() -> SerialNumber {
    static COUNTER: AtomicU64 = AtomicU64::new(1);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos() as u64;
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&nanos.to_be_bytes());
    bytes[8..12].copy_from_slice(&std::process::id().to_be_bytes());
    bytes[12..].copy_from_slice(&(count as u32).to_be_bytes());
    bytes[0] = (bytes[0] & 0x7f) | 0x40; // positive, and no leading zero byte
    SerialNumber::from_slice(&bytes)
}

/// PEM-encodes `der` with 64-column lines.
pub fn pem_block(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn write(dir: &Path, name: &str, contents: &[u8]) -> Result<PathBuf, TestPkiError> {
    let path = dir.join(name);
    fs::write(&path, contents).map_err(|source| TestPkiError::Io {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// One PKI per test binary, for the unit tests of the signing code (generating RSA keys takes
/// seconds). The directory is removed when the process ends only if the OS cleans its temp dir.
#[cfg(test)]
pub(crate) fn shared() -> &'static TestPki {
    use std::sync::OnceLock;
    static PKI: OnceLock<(tempfile::TempDir, TestPki)> = OnceLock::new();
    let (_, pki) = PKI.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("congvan-testpki-")
            .tempdir()
            .expect("temp dir");
        let pki = generate(dir.path(), "hadong.hanoi.gov.vn").expect("test PKI");
        (dir, pki)
    });
    pki
}
