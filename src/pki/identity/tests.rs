//! Tests of signing identities: every key type from PEM and PKCS#12, chains in any order, key
//! mismatches, malformed files, and what makes an identity unusable.

use super::key::{EcPrivateKey, PrivateKeyInfo};
use super::*;
use crate::pki::testpki::{self, run_openssl, IdentityFiles};
use der::asn1::OctetString;
use std::path::Path;
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

fn load(files: &IdentityFiles) -> SigningIdentity {
    SigningIdentity::from_pem(&read(&files.chain_pem), &read(&files.key_pem)).unwrap()
}

fn tmp(name: &str) -> String {
    testpki::shared()
        .dir
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// Signs with the identity and checks the signature with ring's verifier and the
/// certificate's public key.
fn assert_signs(id: &SigningIdentity) {
    let msg = b"signed attributes stand-in";
    let sig = id.sign_bytes(msg).unwrap();
    let (_, cert) = X509Certificate::from_der(id.certificate_der()).unwrap();
    let public = cert.public_key().subject_public_key.data.to_vec();
    let alg: &dyn signature::VerificationAlgorithm = match id.algorithm() {
        KeyAlgorithm::Rsa { .. } => &signature::RSA_PKCS1_2048_8192_SHA256,
        KeyAlgorithm::EcdsaP256 => &signature::ECDSA_P256_SHA256_ASN1,
        KeyAlgorithm::EcdsaP384 => &signature::ECDSA_P384_SHA384_ASN1,
    };
    signature::UnparsedPublicKey::new(alg, public)
        .verify(msg, &sig)
        .unwrap();
}

#[test]
fn loads_every_key_type_from_pem() {
    let pki = testpki::shared();
    let expected = [
        (&pki.rsa2048, KeyAlgorithm::Rsa { bits: 2048 }, "RSA-2048"),
        (&pki.rsa3072, KeyAlgorithm::Rsa { bits: 3072 }, "RSA-3072"),
        (&pki.rsa4096, KeyAlgorithm::Rsa { bits: 4096 }, "RSA-4096"),
        (&pki.p256, KeyAlgorithm::EcdsaP256, "ECDSA-P256"),
        (&pki.p384, KeyAlgorithm::EcdsaP384, "ECDSA-P384"),
    ];
    let now = OffsetDateTime::now_utc();
    for (files, alg, name) in expected {
        let id = load(files);
        assert_eq!(id.algorithm(), alg);
        assert_eq!(id.algorithm_name(), name);
        assert_eq!(id.serial_hex(), files.serial_hex);
        assert_eq!(id.chain_der().len(), 2);
        assert_eq!(id.certificate_der(), files.cert_der.as_slice());
        assert_eq!(id.chain_der()[1], pki.intermediate.cert_der);
        assert!(id.has_email("VanThu@hadong.hanoi.gov.vn"));
        assert!(id.not_before() < now && now < id.not_after());
        assert_eq!(id.usability(now), Ok(()));
        let prefix = if files.name == "p256" {
            "emailAddress=vanphong@hadong.hanoi.gov.vn,"
        } else {
            ""
        };
        assert_eq!(
            id.subject(),
            format!(
                "{prefix}CN=Văn thư UBND hadong.hanoi.gov.vn,O=UBND (thử nghiệm),L=Hà Nội,C=VN"
            )
        );
        assert_eq!(
            id.issuer(),
            "CN=congvan test intermediate CA,O=Ban Cơ yếu Chính phủ (thử nghiệm),C=VN"
        );
        assert_signs(&id);
    }
}

#[test]
fn identity_is_shareable_between_tasks() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<SigningIdentity>();
}

#[test]
fn emails_come_from_san_and_subject() {
    let pki = testpki::shared();
    let id = load(&pki.p256);
    assert_eq!(
        id.email_addresses(),
        ["vanthu@hadong.hanoi.gov.vn", "vanphong@hadong.hanoi.gov.vn"]
    );
    assert_eq!(
        load(&pki.rsa2048).email_addresses(),
        ["vanthu@hadong.hanoi.gov.vn"]
    );
}

#[test]
fn chain_order_does_not_matter() {
    let pki = testpki::shared();
    let mut chain = read(&pki.intermediate.cert_pem);
    chain.extend(read(&pki.root.cert_pem));
    chain.extend(read(&pki.rsa2048.cert_pem));
    let id = SigningIdentity::from_pem(&chain, &read(&pki.rsa2048.key_pem)).unwrap();
    assert_eq!(id.certificate_der(), pki.rsa2048.cert_der.as_slice());
    assert_eq!(
        id.chain_der(),
        [
            pki.rsa2048.cert_der.clone(),
            pki.intermediate.cert_der.clone(),
            pki.root.cert_der.clone()
        ]
    );
}

#[test]
fn wrong_intermediate_is_detected() {
    // A CA with the intermediate's name but another key.
    let pki = testpki::shared();
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::default();
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CountryName, "VN");
    dn.push(
        rcgen::DnType::OrganizationName,
        "Ban Cơ yếu Chính phủ (thử nghiệm)",
    );
    dn.push(rcgen::DnType::CommonName, "congvan test intermediate CA");
    params.distinguished_name = dn;
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let fake = params.self_signed(&key).unwrap();
    let mut chain = read(&pki.p256.cert_pem);
    chain.extend(fake.pem().as_bytes());
    let err = SigningIdentity::from_pem(&chain, &read(&pki.p256.key_pem)).unwrap_err();
    assert!(
        matches!(
            err,
            IdentityError::ChainSignatureInvalid {
                index: 0,
                issuer_index: 1
            }
        ),
        "{err:?}"
    );
}

#[test]
fn key_mismatch() {
    let pki = testpki::shared();
    for (cert, key) in [
        (&pki.rsa2048, &pki.rsa3072),
        (&pki.rsa2048, &pki.p256),
        (&pki.p256, &pki.revoked),
        (&pki.p256, &pki.p384),
        (&pki.p384, &pki.rsa4096),
    ] {
        let err =
            SigningIdentity::from_pem(&read(&cert.chain_pem), &read(&key.key_pem)).unwrap_err();
        assert!(
            matches!(err, IdentityError::KeyMismatch),
            "{} / {}: {err:?}",
            cert.name,
            key.name
        );
    }
}

#[test]
fn pkcs1_and_sec1_keys() {
    let pki = testpki::shared();
    let cases = [
        (
            &pki.rsa2048,
            vec!["pkey", "-traditional"],
            "BEGIN RSA PRIVATE KEY",
            "pkcs1",
        ),
        (
            &pki.rsa4096,
            vec!["pkey", "-traditional"],
            "BEGIN RSA PRIVATE KEY",
            "pkcs1",
        ),
        (&pki.p256, vec!["ec"], "BEGIN EC PRIVATE KEY", "sec1"),
        (&pki.p384, vec!["ec"], "BEGIN EC PRIVATE KEY", "sec1"),
        (
            &pki.p256,
            vec!["ec", "-no_public"],
            "BEGIN EC PRIVATE KEY",
            "sec1-nopub",
        ),
        (
            &pki.p384,
            vec!["ec", "-no_public", "-param_enc", "explicit"],
            "BEGIN EC PRIVATE KEY",
            "sec1-explicit",
        ),
    ];
    for (files, cmd, marker, tag) in cases {
        let out = tmp(&format!("{}.{tag}.pem", files.name));
        let key_path = files.key_pem.to_string_lossy().into_owned();
        let mut args = cmd.clone();
        args.extend(["-in", key_path.as_str(), "-out", out.as_str()]);
        run_openssl(&args).unwrap();
        let key = std::fs::read(&out).unwrap();
        assert!(String::from_utf8_lossy(&key).contains(marker));
        let result = SigningIdentity::from_pem(&read(&files.chain_pem), &key);
        if tag == "sec1-explicit" {
            // Explicit curve parameters are not a named curve: refused, not misread.
            assert!(
                matches!(
                    result,
                    Err(IdentityError::MalformedKey { .. })
                        | Err(IdentityError::UnsupportedAlgorithm { .. })
                ),
                "{result:?}"
            );
            continue;
        }
        let id = result.unwrap_or_else(|e| panic!("{} {tag}: {e}", files.name));
        assert_eq!(id.serial_hex(), files.serial_hex);
        assert_signs(&id);
    }
}

#[test]
fn pkcs8_ec_key_without_public_point() {
    // Some tools omit the optional publicKey in the inner ECPrivateKey.
    let pki = testpki::shared();
    let info = PrivateKeyInfo::from_der(&pki.p256.key_pkcs8_der).unwrap();
    let mut inner = EcPrivateKey::from_der(info.private_key.as_bytes()).unwrap();
    inner.public_key = None;
    inner.parameters = None;
    let stripped = PrivateKeyInfo {
        private_key: OctetString::new(inner.to_der().unwrap()).unwrap(),
        ..info
    };
    let pem = testpki::pem_block("PRIVATE KEY", &stripped.to_der().unwrap());
    let id = SigningIdentity::from_pem(&read(&pki.p256.chain_pem), pem.as_bytes()).unwrap();
    assert_eq!(id.algorithm(), KeyAlgorithm::EcdsaP256);
    assert_signs(&id);
}

fn make_p12(files: &IdentityFiles, extra: &[&str], tag: &str) -> Vec<u8> {
    let pki = testpki::shared();
    let out = tmp(&format!("{}.{tag}.p12", files.name));
    let (cert, key, inter) = (
        files.cert_pem.to_string_lossy().into_owned(),
        files.key_pem.to_string_lossy().into_owned(),
        pki.intermediate.cert_pem.to_string_lossy().into_owned(),
    );
    let mut args = vec![
        "pkcs12",
        "-export",
        "-in",
        &cert,
        "-inkey",
        &key,
        "-certfile",
        &inter,
        "-name",
        "Văn thư",
        "-passout",
        "pass:Mật-khẩu 1",
        "-out",
        &out,
    ];
    args.extend_from_slice(extra);
    run_openssl(&args).unwrap();
    std::fs::read(&out).unwrap()
}

#[test]
fn pkcs12_modern_and_legacy() {
    let pki = testpki::shared();
    for files in [&pki.rsa2048, &pki.p256, &pki.p384] {
        for (extra, tag) in [(&[][..], "aes"), (&["-legacy"][..], "legacy")] {
            let p12 = make_p12(files, extra, tag);
            let id = SigningIdentity::from_pkcs12(&p12, "Mật-khẩu 1")
                .unwrap_or_else(|e| panic!("{} {tag}: {e}", files.name));
            assert_eq!(id.serial_hex(), files.serial_hex);
            assert_eq!(id.chain_der().len(), 2, "{} {tag}", files.name);
            assert_signs(&id);
            let err = SigningIdentity::from_pkcs12(&p12, "mat-khau").unwrap_err();
            assert!(
                matches!(err, IdentityError::WrongPassword),
                "{tag}: {err:?}"
            );
        }
    }
}

#[test]
fn pkcs12_garbage() {
    let err = SigningIdentity::from_pkcs12(b"not a pfx", "x").unwrap_err();
    assert!(matches!(err, IdentityError::Pkcs12 { .. }), "{err:?}");
}

#[test]
fn pem_problems() {
    let pki = testpki::shared();
    let chain = read(&pki.p256.chain_pem);
    let key = read(&pki.p256.key_pem);
    assert!(matches!(
        SigningIdentity::from_pem(b"", &key),
        Err(IdentityError::NoCertificate)
    ));
    assert!(matches!(
        SigningIdentity::from_pem(&chain, &chain),
        Err(IdentityError::NoPrivateKey)
    ));
    let mut two = key.clone();
    two.extend(read(&pki.revoked.key_pem));
    assert!(matches!(
        SigningIdentity::from_pem(&chain, &two),
        Err(IdentityError::MultiplePrivateKeys { count: 2 })
    ));
    let out = tmp("p256.encrypted.pem");
    let key_path = pki.p256.key_pem.to_string_lossy().into_owned();
    run_openssl(&[
        "pkey", "-in", &key_path, "-aes256", "-passout", "pass:x", "-out", &out,
    ])
    .unwrap();
    assert!(matches!(
        SigningIdentity::from_pem(&chain, &read(Path::new(&out))),
        Err(IdentityError::EncryptedPrivateKey)
    ));
    let truncated = &key[..key.len() - 30];
    assert!(matches!(
        SigningIdentity::from_pem(&chain, truncated),
        Err(IdentityError::Pem {
            source_file: PemSource::Key,
            ..
        })
    ));
}

#[test]
fn usability_errors() {
    let pki = testpki::shared();
    let now = OffsetDateTime::now_utc();

    let expired = load(&pki.expired);
    match expired.usability(now) {
        Err(Unusable::Expired { not_after, now: at }) => {
            assert_eq!(not_after, expired.not_after());
            assert_eq!(at, now);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        load(&pki.not_yet_valid).usability(now),
        Err(Unusable::NotYetValid { .. })
    ));
    assert_eq!(
        load(&pki.no_email_eku).usability(now),
        Err(Unusable::NoEmailProtection)
    );
    // The revoked one is usable as far as the certificate itself says: revocation is the
    // verifier's business (and the CRL's).
    assert_eq!(load(&pki.revoked).usability(now), Ok(()));
    // Valid later on, expired after notAfter.
    let id = load(&pki.p256);
    assert!(matches!(
        id.usability(id.not_after() + time::Duration::seconds(1)),
        Err(Unusable::Expired { .. })
    ));
    let e = Unusable::NoEmailProtection;
    assert!(e.vietnamese().contains("emailProtection"));
}

#[test]
fn key_usage_and_missing_email() {
    let pki = testpki::shared();
    let mut options = testpki::LeafOptions::office(&pki.domain);
    options.key_usages = vec![rcgen::KeyUsagePurpose::KeyEncipherment];
    let files = pki
        .issue("ku-encipher", testpki::KeySpec::P256, &options)
        .unwrap();
    assert_eq!(
        load(&files).usability(OffsetDateTime::now_utc()),
        Err(Unusable::KeyUsageForbidsSigning {
            key_usage: "keyEncipherment".into()
        })
    );

    let mut options = testpki::LeafOptions::office(&pki.domain);
    options.key_usages = vec![rcgen::KeyUsagePurpose::ContentCommitment];
    options.extended_key_usages = vec![];
    let files = pki
        .issue("nr-only", testpki::KeySpec::P256, &options)
        .unwrap();
    assert_eq!(load(&files).usability(OffsetDateTime::now_utc()), Ok(()));

    let mut options = testpki::LeafOptions::office(&pki.domain);
    options.emails.clear();
    let files = pki
        .issue("no-email", testpki::KeySpec::P256, &options)
        .unwrap();
    assert_eq!(
        load(&files).usability(OffsetDateTime::now_utc()),
        Err(Unusable::NoEmailAddress)
    );
}
