//! Where identities, trust anchors and CRLs are kept. An identity's certificate chain and
//! private key are files under `data_dir/keys` (the key readable by the service user only);
//! its description is a database row, so CLI changes reach the daemon at its next message.
//! Each change is written with its audit log entry in one transaction; `actor` says who.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    Set,
};
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;

use super::identity::{IdentityError, SigningIdentity};
use super::token::TokenError;
use crate::audit::{self, Action, Event};
use crate::pdf::{SealImage, SealImageError};
use crate::store::entity::{crl, identity, seal_image, trust_anchor};
use crate::util::{now_ms, rfc3339_ms};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the key store {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid domain '{0}'")]
    BadDomain(String),
    #[error("at least one --domain is needed")]
    NoDomain,
    #[error("this certificate (serial {serial}) is already imported as identity {id}")]
    Duplicate { id: i64, serial: String },
    #[error("no identity {0}")]
    NotFound(i64),
    #[error("no trust anchor {0}")]
    AnchorNotFound(i64),
    #[error("{0}")]
    BadCertificate(String),
    #[error("{0}")]
    BadCrl(String),
    #[error("private key {path} is readable by group or others (mode {mode:o}): run chmod 600")]
    KeyPermissions { path: PathBuf, mode: u32 },
    #[error(transparent)]
    Kek(#[from] super::kek::KekError),
    #[error(transparent)]
    SealImage(#[from] SealImageError),
    #[error(transparent)]
    Uri(#[from] super::token::UriError),
    #[error("identity {0} is on a token and has no PIN: give the systemd credential congvan-pin-{0} or import it with --pin-file")]
    NoPin(i64),
    #[error("this certificate cannot sign mail: {0}")]
    CannotSign(super::identity::Unusable),
    #[error("the certificate has no e-mail address in {domain} (it has: {emails}): a seal for {domain} needs one (RFC 8550 §3)")]
    NoAddressInDomain { domain: String, emails: String },
    #[error("database: {0}")]
    Db(#[from] DbErr),
}

/// One row of `cert list`.
#[derive(Debug, Clone, Serialize)]
pub struct IdentityInfo {
    pub id: i64,
    pub subject: String,
    pub issuer: String,
    pub serial: String,
    pub domains: Vec<String>,
    pub emails: Vec<String>,
    pub algorithm: String,
    pub not_before: String,
    pub not_after: String,
    pub days_left: i64,
    /// active | disabled | expired | not-yet-valid
    pub status: String,
    /// The office's seal image shown on sealed PDFs, when one was given.
    pub seal_image: Option<SealImageInfo>,
    /// Where the private key is: `file` or `token` (SPEC "Keys on a token").
    pub key_store: &'static str,
    /// For a key on a token: its URI and module.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pkcs11_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pkcs11_module: Option<String>,
}

/// What `cert show` and `cert list` say of an identity's seal image.
#[derive(Debug, Clone, Serialize)]
pub struct SealImageInfo {
    pub width_px: u32,
    pub height_px: u32,
    pub width_mm: f32,
    pub sha256: String,
}

impl SealImageInfo {
    fn of(image: &SealImage, png: &[u8]) -> SealImageInfo {
        SealImageInfo {
            width_px: image.width_px,
            height_px: image.height_px,
            width_mm: image.width_mm,
            sha256: sha256_hex(png),
        }
    }
}

fn days_left(not_after_ms: i64) -> i64 {
    (not_after_ms - now_ms()).div_euclid(86_400_000)
}

fn status_of(m: &identity::Model) -> &'static str {
    let now = now_ms();
    if m.disabled {
        "disabled"
    } else if m.not_after < now {
        "expired"
    } else if m.not_before > now {
        "not-yet-valid"
    } else {
        "active"
    }
}

fn info(m: &identity::Model) -> IdentityInfo {
    IdentityInfo {
        id: m.id,
        subject: m.subject.clone(),
        issuer: m.issuer.clone(),
        serial: m.serial.clone(),
        domains: serde_json::from_str(&m.domains).unwrap_or_default(),
        emails: serde_json::from_str(&m.emails).unwrap_or_default(),
        algorithm: m.algorithm.clone(),
        not_before: rfc3339_ms(m.not_before),
        not_after: rfc3339_ms(m.not_after),
        days_left: days_left(m.not_after),
        status: status_of(m).into(),
        seal_image: None,
        key_store: if m.pkcs11_uri.is_some() {
            "token"
        } else {
            "file"
        },
        pkcs11_uri: m.pkcs11_uri.clone(),
        pkcs11_module: m.pkcs11_module.clone(),
    }
}

/// The identity's seal image, decoded (the stored PNG was checked when it was given).
async fn seal_image_of<C: sea_orm::ConnectionTrait>(
    db: &C,
    id: i64,
) -> Result<Option<(SealImage, Vec<u8>)>, PkiError> {
    let Some(row) = seal_image::Entity::find_by_id(id).one(db).await? else {
        return Ok(None);
    };
    let image = SealImage::from_png(&row.png, Some(row.width_mm as f32))?;
    Ok(Some((image, row.png)))
}

/// Sets (`Some`: the PNG and, when the PNG does not say it, the seal's real width in mm) or
/// removes (`None`) the office's seal image of identity `id`; the daemon sees it at its next
/// delivery, as any identity change.
pub async fn set_seal_image(
    db: &DatabaseConnection,
    actor: &str,
    id: i64,
    image: Option<(&[u8], Option<f32>)>,
) -> Result<Option<SealImageInfo>, PkiError> {
    let checked = image
        .map(|(png, width)| SealImage::from_png(png, width).map(|i| (i, png)))
        .transpose()?;
    let txn = audit::begin(db).await?;
    identity::Entity::find_by_id(id)
        .one(&txn)
        .await?
        .ok_or(PkiError::NotFound(id))?;
    let now = now_ms();
    seal_image::Entity::delete_by_id(id).exec(&txn).await?;
    let info = checked.as_ref().map(|(i, png)| SealImageInfo::of(i, png));
    if let Some((img, png)) = &checked {
        seal_image::ActiveModel {
            identity_id: Set(id),
            png: Set(png.to_vec()),
            width_mm: Set(f64::from(img.width_mm)),
            updated_at: Set(now),
        }
        .insert(&txn)
        .await?;
    }
    // A new `updated_at` makes the daemon's cache load the identity again.
    identity::Entity::update_many()
        .col_expr(identity::Column::UpdatedAt, Expr::value(now))
        .filter(identity::Column::Id.eq(id))
        .exec(&txn)
        .await?;
    audit::append(
        &txn,
        &Event::new(
            actor,
            Action::IdentitySealImage,
            id.to_string(),
            match &info {
                Some(i) => json!({
                    "width_px": i.width_px,
                    "height_px": i.height_px,
                    "width_mm": i.width_mm,
                    "sha256": i.sha256,
                }),
                None => json!({ "removed": true }),
            },
        ),
    )
    .await?;
    txn.commit().await?;
    tracing::info!(identity = id, set = info.is_some(), "seal image changed");
    Ok(info)
}

fn ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, b).as_ref())
}

/// PEM armour for DER (64-character lines).
pub fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or(""));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn valid_domain(d: &str) -> bool {
    !d.is_empty()
        && d.len() <= 253
        && d.contains('.')
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), PkiError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let err = |source| PkiError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(err)?;
    f.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(err)?;
    f.write_all(bytes).map_err(err)?;
    f.sync_all().map_err(err)
}

/// Imports an identity from a PEM chain and a PEM key (PKCS#8, PKCS#1 or SEC1).
pub async fn import_pem(
    db: &DatabaseConnection,
    actor: &str,
    data_dir: &Path,
    chain_pem: &[u8],
    key_pem: &[u8],
    domains: &[String],
) -> Result<IdentityInfo, PkiError> {
    let id = SigningIdentity::from_pem(chain_pem, key_pem)?;
    let key = KeyPlace::File(key_pem);
    store(db, actor, data_dir, &id, key, domains, Checks::CanSignMail).await
}

/// As [`import_pem`], without refusing a certificate that cannot sign mail now: what a
/// database holds for an identity imported before these checks, or one that has expired
/// since. The daemon holds the documents that need it (tests of that path use this).
pub async fn import_pem_as_is(
    db: &DatabaseConnection,
    actor: &str,
    data_dir: &Path,
    chain_pem: &[u8],
    key_pem: &[u8],
    domains: &[String],
) -> Result<IdentityInfo, PkiError> {
    let id = SigningIdentity::from_pem(chain_pem, key_pem)?;
    let key = KeyPlace::File(key_pem);
    store(db, actor, data_dir, &id, key, domains, Checks::AsIs).await
}

/// Whether [`store`] refuses a certificate that cannot sign mail ([`can_sign_mail`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Checks {
    CanSignMail,
    AsIs,
}

/// What `cert import` refuses (SPEC "Operating it"): a certificate that cannot sign mail at
/// `now` (not yet valid, expired, no emailProtection EKU, key usage without
/// digitalSignature, no e-mail address), or that has no e-mail address in a domain it is
/// imported for.
fn can_sign_mail(
    id: &SigningIdentity,
    domains: &[String],
    now: OffsetDateTime,
) -> Result<(), PkiError> {
    id.usability(now).map_err(PkiError::CannotSign)?;
    for d in domains {
        let d = d.trim().to_ascii_lowercase();
        let has = id
            .email_addresses()
            .iter()
            .any(|e| crate::address::domain_of(e).is_some_and(|ed| ed.eq_ignore_ascii_case(&d)));
        if !has {
            return Err(PkiError::NoAddressInDomain {
                domain: d,
                emails: id.email_addresses().join(", "),
            });
        }
    }
    Ok(())
}

/// Imports an identity from a PKCS#12 file; the key is kept as PKCS#8 PEM.
pub async fn import_p12(
    db: &DatabaseConnection,
    actor: &str,
    data_dir: &Path,
    p12: &[u8],
    password: &str,
    domains: &[String],
) -> Result<IdentityInfo, PkiError> {
    let id = SigningIdentity::from_pkcs12(p12, password)?;
    let archive = p12_keystore::Pkcs12Archive::from_pkcs12(p12, password)
        .map_err(|_| IdentityError::WrongPassword)?;
    let key_der = archive
        .keys
        .first()
        .map(|k| k.key.as_der().to_vec())
        .ok_or(IdentityError::NoPrivateKey)?;
    let key_pem = pem("PRIVATE KEY", &key_der);
    store(
        db,
        actor,
        data_dir,
        &id,
        KeyPlace::File(key_pem.as_bytes()),
        domains,
        Checks::CanSignMail,
    )
    .await
}

/// Where an imported identity's private key is kept.
enum KeyPlace<'a> {
    /// A PEM file under `data_dir/keys` (sealed with the key-encryption key when one is set).
    File(&'a [u8]),
    /// On a token: nothing of the key is stored, only how to reach it.
    Token {
        uri: &'a str,
        module: &'a Path,
        pin_file: Option<&'a Path>,
    },
}

/// Imports an identity whose key is on a token (`cert import --pkcs11`): the token is asked
/// for a signature now, which proves the module, the PIN and the key; the chain is `chain_pem`
/// or the certificate the token keeps beside the key.
#[allow(clippy::too_many_arguments)]
pub async fn import_pkcs11(
    db: &DatabaseConnection,
    actor: &str,
    data_dir: &Path,
    uri: &str,
    module: &Path,
    pin: &str,
    pin_file: Option<&Path>,
    chain_pem: Option<&[u8]>,
    domains: &[String],
) -> Result<IdentityInfo, PkiError> {
    let parsed = super::token::Pkcs11Uri::parse(uri)?;
    let token = super::token::TokenKey::new(module, parsed, pin);
    let id = SigningIdentity::from_token(token, chain_pem)?;
    let place = KeyPlace::Token {
        uri,
        module,
        pin_file,
    };
    store(
        db,
        actor,
        data_dir,
        &id,
        place,
        domains,
        Checks::CanSignMail,
    )
    .await
}

async fn store(
    db: &DatabaseConnection,
    actor: &str,
    data_dir: &Path,
    id: &SigningIdentity,
    key: KeyPlace<'_>,
    domains: &[String],
    checks: Checks,
) -> Result<IdentityInfo, PkiError> {
    if domains.is_empty() {
        return Err(PkiError::NoDomain);
    }
    if checks == Checks::CanSignMail {
        can_sign_mail(id, domains, OffsetDateTime::now_utc())?;
    }
    let domains: Vec<String> = domains
        .iter()
        .map(|d| d.trim().to_ascii_lowercase())
        .collect();
    if let Some(bad) = domains.iter().find(|d| !valid_domain(d)) {
        return Err(PkiError::BadDomain(bad.clone()));
    }
    let fingerprint = sha256_hex(id.certificate_der());
    if let Some(existing) = identity::Entity::find()
        .filter(identity::Column::Fingerprint.eq(fingerprint.clone()))
        .one(db)
        .await?
    {
        return Err(PkiError::Duplicate {
            id: existing.id,
            serial: existing.serial,
        });
    }
    let keys = data_dir.join("keys");
    std::fs::create_dir_all(&keys).map_err(|source| PkiError::Write {
        path: keys.clone(),
        source,
    })?;
    let _ = std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o700));
    let stem = &fingerprint[..16];
    let chain_file = keys.join(format!("{stem}.chain.pem"));
    let (key_file, token) = match key {
        KeyPlace::File(key_pem) => {
            let key_file = keys.join(format!("{stem}.key.pem"));
            // Sealed with the key-encryption key when one is configured.
            let stored_key = match super::kek::load_kek()? {
                Some(kek) => super::kek::seal(&kek, key_pem)?.into_bytes(),
                None => key_pem.to_vec(),
            };
            write_file(&key_file, &stored_key, 0o600)?;
            (key_file.display().to_string(), None)
        }
        KeyPlace::Token {
            uri,
            module,
            pin_file,
        } => (String::new(), Some((uri, module, pin_file))),
    };
    // The chain as the identity ordered it (signer first), whatever order it came in.
    let chain_pem: String = id
        .chain_der()
        .iter()
        .map(|d| pem("CERTIFICATE", d))
        .collect();
    write_file(&chain_file, chain_pem.as_bytes(), 0o644)?;
    let now = now_ms();
    let txn = audit::begin(db).await?;
    let row = identity::ActiveModel {
        subject: Set(id.subject().to_string()),
        issuer: Set(id.issuer().to_string()),
        serial: Set(id.serial_hex().to_string()),
        domains: Set(serde_json::to_string(&domains).unwrap_or_else(|_| "[]".into())),
        emails: Set(serde_json::to_string(id.email_addresses()).unwrap_or_else(|_| "[]".into())),
        algorithm: Set(id.algorithm_name()),
        not_before: Set(ms(id.not_before())),
        not_after: Set(ms(id.not_after())),
        disabled: Set(false),
        key_file: Set(key_file),
        pkcs11_uri: Set(token.map(|(uri, _, _)| uri.to_string())),
        pkcs11_module: Set(token.map(|(_, m, _)| m.display().to_string())),
        pin_file: Set(token.and_then(|(_, _, p)| p.map(|p| p.display().to_string()))),
        chain_file: Set(chain_file.display().to_string()),
        fingerprint: Set(fingerprint),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    audit::append(
        &txn,
        &Event::new(
            actor,
            Action::IdentityImport,
            row.id.to_string(),
            json!({
                "subject": row.subject,
                "issuer": row.issuer,
                "serial": row.serial,
                "fingerprint": row.fingerprint,
                "algorithm": row.algorithm,
                "domains": domains,
                "not_after": rfc3339_ms(row.not_after),
            }),
        ),
    )
    .await?;
    txn.commit().await?;
    tracing::info!(identity = row.id, subject = %row.subject, serial = %row.serial, domains = %row.domains, "signing identity imported");
    Ok(info(&row))
}

pub async fn list(db: &DatabaseConnection) -> Result<Vec<IdentityInfo>, PkiError> {
    let mut out = Vec::new();
    for m in identity::Entity::find()
        .order_by_asc(identity::Column::Id)
        .all(db)
        .await?
    {
        let mut i = info(&m);
        i.seal_image = seal_image_of(db, m.id)
            .await?
            .map(|(img, png)| SealImageInfo::of(&img, &png));
        out.push(i);
    }
    Ok(out)
}

/// What `cert show` says of an identity beyond [`IdentityInfo`].
#[derive(Debug, Clone, Serialize)]
pub struct IdentityDetail {
    #[serde(flatten)]
    pub info: IdentityInfo,
    /// Whether it can sign now, in words.
    pub usable: String,
    /// The seals made with its certificate, from the outgoing register.
    pub signatures: SignatureCount,
    /// For a key on a token: the daemon's last report of it (audit log), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_report: Option<TokenReport>,
}

/// Seals made with a certificate: documents sealed (S/MIME) and PDF parts sealed.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct SignatureCount {
    pub messages: u64,
    pub pdf_parts: u64,
}

/// The daemon's last audit entry about a token: `identity.token_failed`,
/// `identity.pin_refused` or `identity.token_recovered`, when, and why.
#[derive(Debug, Clone, Serialize)]
pub struct TokenReport {
    pub action: String,
    pub at: String,
    pub reason: Option<String>,
}

pub async fn show(db: &DatabaseConnection, id: i64) -> Result<IdentityDetail, PkiError> {
    let m = identity::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(PkiError::NotFound(id))?;
    let mut info = info(&m);
    // A key on a token is not tried from the command line: each try of a wrong PIN counts
    // towards locking the token. The daemon tests it (at start and when it signs) and
    // reports in the audit log.
    let usable = if m.pkcs11_uri.is_some() {
        match info.status.as_str() {
            "active" => "the certificate is valid; the key is on the token (the daemon tests it)"
                .to_string(),
            other => other.to_string(),
        }
    } else {
        match load(&m) {
            Ok(idn) => match idn.usability(OffsetDateTime::now_utc()) {
                Ok(()) if !m.disabled => "usable for signing".to_string(),
                Ok(()) => "disabled".to_string(),
                Err(e) => format!("cannot be used: {e}"),
            },
            Err(e) => format!("cannot be loaded: {e}"),
        }
    };
    info.seal_image = seal_image_of(db, id)
        .await?
        .map(|(img, png)| SealImageInfo::of(&img, &png));
    let token_report = match m.pkcs11_uri {
        Some(_) => token_report(db, id).await?,
        None => None,
    };
    Ok(IdentityDetail {
        signatures: signature_count(db, &m.serial).await?,
        info,
        usable,
        token_report,
    })
}

/// Counts the outgoing register's seals by certificate serial: the documents sealed, and
/// the PDF parts of those documents the gateway sealed.
async fn signature_count(db: &DatabaseConnection, serial: &str) -> Result<SignatureCount, DbErr> {
    use crate::store::entity::{pdf_document, register_entry};
    use sea_orm::sea_query::Query;
    use sea_orm::PaginatorTrait;
    let messages = register_entry::Entity::find()
        .filter(register_entry::Column::SealSerial.eq(serial))
        .count(db)
        .await?;
    let pdf_parts = pdf_document::Entity::find()
        .filter(pdf_document::Column::Sha256After.is_not_null())
        .filter(
            pdf_document::Column::EntryId.in_subquery(
                Query::select()
                    .column(register_entry::Column::Id)
                    .from(register_entry::Entity)
                    .and_where(register_entry::Column::SealSerial.eq(serial))
                    .to_owned(),
            ),
        )
        .count(db)
        .await?;
    Ok(SignatureCount {
        messages,
        pdf_parts,
    })
}

async fn token_report(db: &DatabaseConnection, id: i64) -> Result<Option<TokenReport>, DbErr> {
    use crate::store::entity::audit_log;
    let actions = [
        Action::IdentityTokenFailed,
        Action::IdentityPinRefused,
        Action::IdentityTokenRecovered,
    ]
    .map(Action::as_str);
    let last = audit_log::Entity::find()
        .filter(audit_log::Column::Subject.eq(id.to_string()))
        .filter(audit_log::Column::Action.is_in(actions))
        .order_by_desc(audit_log::Column::Seq)
        .one(db)
        .await?;
    Ok(last.map(|e| TokenReport {
        reason: serde_json::from_str::<serde_json::Value>(&e.details)
            .ok()
            .and_then(|d| d["reason"].as_str().map(str::to_string)),
        action: e.action,
        at: rfc3339_ms(e.at),
    }))
}

pub async fn disable(db: &DatabaseConnection, actor: &str, id: i64) -> Result<(), PkiError> {
    set_disabled(db, actor, id, true).await
}

/// `cert enable`: an identity disabled by mistake signs again (its held documents wait for
/// `queue release`).
pub async fn enable(db: &DatabaseConnection, actor: &str, id: i64) -> Result<(), PkiError> {
    set_disabled(db, actor, id, false).await
}

async fn set_disabled(
    db: &DatabaseConnection,
    actor: &str,
    id: i64,
    disabled: bool,
) -> Result<(), PkiError> {
    let txn = audit::begin(db).await?;
    let m = identity::Entity::find_by_id(id)
        .one(&txn)
        .await?
        .ok_or(PkiError::NotFound(id))?;
    let res = identity::Entity::update_many()
        .col_expr(identity::Column::Disabled, Expr::value(disabled))
        .col_expr(identity::Column::UpdatedAt, Expr::value(now_ms()))
        .filter(identity::Column::Id.eq(id))
        .exec(&txn)
        .await?;
    if res.rows_affected == 0 {
        return Err(PkiError::NotFound(id));
    }
    let action = if disabled {
        Action::IdentityDisable
    } else {
        Action::IdentityEnable
    };
    audit::append(
        &txn,
        &Event::new(
            actor,
            action,
            id.to_string(),
            json!({
                "subject": m.subject,
                "serial": m.serial,
                "fingerprint": m.fingerprint,
                "was_disabled": m.disabled,
            }),
        ),
    )
    .await?;
    txn.commit().await?;
    tracing::info!(identity = id, %action, "signing identity changed");
    Ok(())
}

/// The other enabled identities that seal for any of `domains` (a renewal, or a mistake),
/// for `cert import` to say so.
pub async fn others_for(
    db: &DatabaseConnection,
    id: i64,
    domains: &[String],
) -> Result<Vec<IdentityInfo>, PkiError> {
    let mut out = Vec::new();
    for m in identity::Entity::find()
        .filter(identity::Column::Disabled.eq(false))
        .filter(identity::Column::Id.ne(id))
        .order_by_asc(identity::Column::Id)
        .all(db)
        .await?
    {
        if domains.iter().any(|d| seals_domain(&m, d)) {
            out.push(info(&m));
        }
    }
    Ok(out)
}

/// Something that expires: an active identity or a trust anchor.
#[derive(Debug, Clone, Serialize)]
pub struct Expiring {
    pub kind: &'static str,
    pub id: i64,
    pub subject: String,
    pub not_after: String,
    pub days_left: i64,
}

/// What expires within `days`: active identities, trust anchors, each issuer's newest CRL
/// (its nextUpdate), and the TLS certificate at `tls_cert`.
pub async fn expiring(
    db: &DatabaseConnection,
    days: i64,
    tls_cert: Option<&Path>,
) -> Result<Vec<Expiring>, PkiError> {
    let limit = now_ms() + days * 86_400_000;
    let mut out: Vec<Expiring> = identity::Entity::find()
        .filter(identity::Column::Disabled.eq(false))
        .filter(identity::Column::NotAfter.lte(limit))
        .all(db)
        .await?
        .into_iter()
        .map(|m| Expiring {
            kind: "identity",
            id: m.id,
            subject: m.subject,
            not_after: rfc3339_ms(m.not_after),
            days_left: days_left(m.not_after),
        })
        .collect();
    out.extend(
        trust_anchor::Entity::find()
            .filter(trust_anchor::Column::NotAfter.lte(limit))
            .all(db)
            .await?
            .into_iter()
            .map(|m| Expiring {
                kind: "trust anchor",
                id: m.id,
                subject: m.subject,
                not_after: rfc3339_ms(m.not_after),
                days_left: days_left(m.not_after),
            }),
    );
    // The newest CRL of each issuer: when its nextUpdate passes, revocation data is stale
    // (a policy that requires it fails every message from that issuer's signers).
    let mut newest: HashMap<String, crl::Model> = HashMap::new();
    for c in crl::Entity::find().all(db).await? {
        match newest.get(&c.issuer) {
            Some(n) if n.this_update >= c.this_update => {}
            _ => {
                newest.insert(c.issuer.clone(), c);
            }
        }
    }
    out.extend(newest.into_values().filter_map(|c| {
        let next = c.next_update.filter(|&n| n <= limit)?;
        Some(Expiring {
            kind: "CRL",
            id: c.id,
            subject: c.issuer,
            not_after: rfc3339_ms(next),
            days_left: days_left(next),
        })
    }));
    // The listeners' TLS certificate (a renewed one is read at SIGHUP or restart).
    if let Some(path) = tls_cert {
        let (subject, not_after) = tls_certificate_expiry(path)?;
        if not_after <= limit {
            out.push(Expiring {
                kind: "TLS certificate",
                id: 0,
                subject: format!("{subject} ({})", path.display()),
                not_after: rfc3339_ms(not_after),
                days_left: days_left(not_after),
            });
        }
    }
    out.sort_by_key(|e| e.days_left);
    Ok(out)
}

/// The subject and notAfter (Unix ms) of the first certificate of a PEM file.
fn tls_certificate_expiry(path: &Path) -> Result<(String, i64), PkiError> {
    let pem = std::fs::read(path).map_err(|source| PkiError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let bad = || PkiError::BadCertificate(format!("{}: no PEM certificate in it", path.display()));
    let der = rustls_pemfile::certs(&mut pem.as_slice())
        .next()
        .ok_or_else(bad)?
        .map_err(|_| bad())?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der).map_err(|_| bad())?;
    Ok((
        cert.subject().to_string(),
        cert.validity().not_after.timestamp() * 1000,
    ))
}

#[derive(Debug, Clone, Serialize)]
pub struct AnchorInfo {
    pub id: i64,
    pub subject: String,
    pub not_after: String,
    pub days_left: i64,
    pub fingerprint: String,
}

/// Adds every CA certificate of a PEM file as a trust anchor.
pub async fn trust_add(
    db: &DatabaseConnection,
    actor: &str,
    pem_bytes: &[u8],
) -> Result<Vec<AnchorInfo>, PkiError> {
    let mut added = Vec::new();
    let ders: Vec<Vec<u8>> = rustls_pemfile::certs(&mut &pem_bytes[..])
        .map(|r| r.map(|c| c.to_vec()))
        .collect::<Result<_, _>>()
        .map_err(|e| PkiError::BadCertificate(format!("not a PEM certificate file: {e}")))?;
    if ders.is_empty() {
        return Err(PkiError::BadCertificate(
            "no certificate in the file".into(),
        ));
    }
    // All of the file or nothing, each anchor with its audit entry.
    let txn = audit::begin(db).await?;
    for der in ders {
        let (_, cert) = x509_parser::parse_x509_certificate(&der)
            .map_err(|e| PkiError::BadCertificate(format!("cannot parse certificate: {e}")))?;
        if !cert.is_ca() {
            return Err(PkiError::BadCertificate(format!(
                "{} is not a CA certificate (basicConstraints cA is not set)",
                cert.subject()
            )));
        }
        let fingerprint = sha256_hex(&der);
        if trust_anchor::Entity::find()
            .filter(trust_anchor::Column::Fingerprint.eq(fingerprint.clone()))
            .one(&txn)
            .await?
            .is_some()
        {
            continue;
        }
        let not_after = cert.validity().not_after.timestamp() * 1000;
        let m = trust_anchor::ActiveModel {
            subject: Set(cert.subject().to_string()),
            not_after: Set(not_after),
            fingerprint: Set(fingerprint),
            pem: Set(pem("CERTIFICATE", &der)),
            created_at: Set(now_ms()),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        audit::append(
            &txn,
            &Event::new(
                actor,
                Action::TrustAdd,
                m.id.to_string(),
                json!({
                    "subject": m.subject,
                    "fingerprint": m.fingerprint,
                    "not_after": rfc3339_ms(m.not_after),
                }),
            ),
        )
        .await?;
        tracing::info!(anchor = m.id, subject = %m.subject, "trust anchor added");
        added.push(anchor_info(&m));
    }
    txn.commit().await?;
    Ok(added)
}

fn anchor_info(m: &trust_anchor::Model) -> AnchorInfo {
    AnchorInfo {
        id: m.id,
        subject: m.subject.clone(),
        not_after: rfc3339_ms(m.not_after),
        days_left: days_left(m.not_after),
        fingerprint: m.fingerprint.clone(),
    }
}

pub async fn trust_list(db: &DatabaseConnection) -> Result<Vec<AnchorInfo>, PkiError> {
    Ok(trust_anchor::Entity::find()
        .order_by_asc(trust_anchor::Column::Id)
        .all(db)
        .await?
        .iter()
        .map(anchor_info)
        .collect())
}

pub async fn trust_remove(db: &DatabaseConnection, actor: &str, id: i64) -> Result<(), PkiError> {
    let txn = audit::begin(db).await?;
    let m = trust_anchor::Entity::find_by_id(id)
        .one(&txn)
        .await?
        .ok_or(PkiError::AnchorNotFound(id))?;
    let res = trust_anchor::Entity::delete_by_id(id).exec(&txn).await?;
    if res.rows_affected == 0 {
        return Err(PkiError::AnchorNotFound(id));
    }
    audit::append(
        &txn,
        &Event::new(
            actor,
            Action::TrustRemove,
            id.to_string(),
            json!({
                "subject": m.subject,
                "fingerprint": m.fingerprint,
                "not_after": rfc3339_ms(m.not_after),
            }),
        ),
    )
    .await?;
    txn.commit().await?;
    tracing::info!(anchor = id, "trust anchor removed");
    Ok(())
}

#[derive(Debug, Clone, Serialize)]
pub struct CrlInfo {
    pub id: i64,
    pub issuer: String,
    pub this_update: String,
    pub next_update: Option<String>,
    pub revoked: usize,
}

/// Adds a CRL (DER or PEM).
pub async fn crl_add(
    db: &DatabaseConnection,
    actor: &str,
    bytes: &[u8],
) -> Result<CrlInfo, PkiError> {
    let der = if bytes.starts_with(b"-----BEGIN") {
        rustls_pemfile::crls(&mut &bytes[..])
            .next()
            .ok_or_else(|| PkiError::BadCrl("no X509 CRL block in the PEM file".into()))?
            .map_err(|e| PkiError::BadCrl(format!("bad PEM: {e}")))?
            .to_vec()
    } else {
        bytes.to_vec()
    };
    let (_, parsed) = x509_parser::parse_x509_crl(&der).map_err(|e| {
        tracing::debug!(error = %e, "CRL parse");
        PkiError::BadCrl(if bytes.starts_with(b"-----BEGIN") {
            "the file's X509 CRL block does not hold a valid CRL: it is truncated or damaged"
                .to_string()
        } else {
            super::describe::not_what_expected(&der, "a certificate revocation list (X.509 CRL)")
        })
    })?;
    let issuer = parsed.issuer().to_string();
    let this_update = parsed.last_update().timestamp() * 1000;
    let next_update = parsed.next_update().map(|t| t.timestamp() * 1000);
    let revoked = parsed.iter_revoked_certificates().count();
    let digest = sha256_hex(&der);
    let txn = audit::begin(db).await?;
    let m = crl::ActiveModel {
        issuer: Set(issuer.clone()),
        this_update: Set(this_update),
        next_update: Set(next_update),
        der: Set(der),
        created_at: Set(now_ms()),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    audit::append(
        &txn,
        &Event::new(
            actor,
            Action::CrlAdd,
            m.id.to_string(),
            json!({
                "issuer": issuer,
                "this_update": rfc3339_ms(this_update),
                "next_update": next_update.map(rfc3339_ms),
                "revoked": revoked,
                "sha256": digest,
            }),
        ),
    )
    .await?;
    txn.commit().await?;
    tracing::info!(crl = m.id, %issuer, revoked, "CRL added");
    Ok(CrlInfo {
        id: m.id,
        issuer,
        this_update: rfc3339_ms(this_update),
        next_update: next_update.map(rfc3339_ms),
        revoked,
    })
}

fn load(m: &identity::Model) -> Result<SigningIdentity, PkiError> {
    let read = |p: &str| {
        std::fs::read(p).map_err(|source| PkiError::Read {
            path: PathBuf::from(p),
            source,
        })
    };
    if let (Some(uri), Some(module)) = (&m.pkcs11_uri, &m.pkcs11_module) {
        let token = super::token::TokenKey::new(
            Path::new(module),
            super::token::Pkcs11Uri::parse(uri)?,
            &token_pin(m)?,
        );
        return Ok(SigningIdentity::from_token(
            token,
            Some(&read(&m.chain_file)?),
        )?);
    }
    let key_file = read(&m.key_file)?;
    let key = if super::kek::is_sealed(&key_file) {
        super::kek::open(super::kek::load_kek()?.as_ref(), &key_file)?
    } else {
        key_file
    };
    Ok(SigningIdentity::from_pem(&read(&m.chain_file)?, &key)?)
}

/// What [`SealCache::test_all`] found for one identity.
#[derive(Debug)]
pub struct SealTest {
    pub id: i64,
    pub domains: Vec<String>,
    /// The key is on a token.
    pub token: bool,
    pub result: Result<(), SealProblem>,
}

/// Why an identity cannot seal now.
#[derive(Debug, thiserror::Error)]
pub enum SealProblem {
    #[error("cannot be loaded: {0}")]
    Load(String, Option<TokenError>),
    #[error("{0}")]
    Unusable(String),
    #[error("the test signature failed: {0}")]
    Signature(String, Option<TokenError>),
}

impl SealProblem {
    fn load(e: PkiError) -> SealProblem {
        let text = e.to_string();
        SealProblem::Load(text, token_error(e))
    }

    fn signature(e: super::identity::KeyError) -> SealProblem {
        let token = match &e {
            super::identity::KeyError::Token(t) => Some(t.clone()),
            _ => None,
        };
        SealProblem::Signature(e.to_string(), token)
    }

    /// Signs a test signature with `identity` on a blocking thread.
    pub async fn test(identity: Arc<SigningIdentity>) -> Result<(), SealProblem> {
        tokio::task::spawn_blocking(move || identity.self_test())
            .await
            .map_err(|e| SealProblem::Signature(e.to_string(), None))?
            .map_err(SealProblem::signature)
    }

    /// The token's error, when the token is what failed.
    pub fn token_error(&self) -> Option<&TokenError> {
        match self {
            SealProblem::Load(_, t) | SealProblem::Signature(_, t) => t.as_ref(),
            SealProblem::Unusable(_) => None,
        }
    }
}

fn token_error(e: PkiError) -> Option<TokenError> {
    match e {
        PkiError::Identity(IdentityError::Token(t)) => Some(t),
        _ => None,
    }
}

/// Whether a loaded identity's token refused its PIN and the PIN file or credential now
/// holds another one (the identity is then loaded again, with it).
fn pin_changed_since_refused(identity: &SigningIdentity, m: &identity::Model) -> bool {
    identity
        .token_key()
        .is_some_and(|t| t.pin_refused() && token_pin(m).is_ok_and(|pin| !t.has_pin(&pin)))
}

/// The PIN of a token identity: the systemd credential `congvan-pin-<id>` when the daemon
/// has one (it wins), else the identity's PIN file; the first line, without its ending.
fn token_pin(m: &identity::Model) -> Result<String, PkiError> {
    let credential = std::env::var_os("CREDENTIALS_DIRECTORY")
        .map(|d| PathBuf::from(d).join(format!("congvan-pin-{}", m.id)))
        .filter(|p| p.exists());
    let path = credential
        .or_else(|| m.pin_file.as_ref().map(PathBuf::from))
        .ok_or(PkiError::NoPin(m.id))?;
    let text = std::fs::read_to_string(&path).map_err(|source| PkiError::Read {
        path: path.clone(),
        source,
    })?;
    Ok(text.lines().next().unwrap_or_default().to_string())
}

/// Refuses key files that group or others can read (checked when the daemon starts).
pub async fn check_key_permissions(db: &DatabaseConnection) -> Result<(), PkiError> {
    for m in identity::Entity::find()
        .filter(identity::Column::Disabled.eq(false))
        .all(db)
        .await?
    {
        if m.pkcs11_uri.is_some() {
            continue;
        }
        let path = PathBuf::from(&m.key_file);
        // A missing key makes that identity unusable (its messages are held), not the daemon.
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(identity = m.id, path = %path.display(), error = %e, "key file unreadable: messages needing this identity will be held");
                continue;
            }
        };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(PkiError::KeyPermissions { path, mode });
        }
    }
    Ok(())
}

/// Narrows the rows in SQL to those whose JSON domain list mentions `"domain"`; the exact
/// match is then [`seals_domain`]. Domains are validated at import (letters, digits, '-',
/// '.'), so the pattern has no LIKE wildcards in it.
fn names_domain_json(domain: &str) -> sea_orm::sea_query::SimpleExpr {
    identity::Column::Domains.contains(format!("\"{domain}\""))
}

/// Whether an identity row names `domain` (lower case) among its domains.
/// The domains an identity row is known to name, for the check at end of DATA: one
/// database read per message less. Identity rows are never deleted (`cert disable` keeps the
/// row, and a disabled identity still passes this check: its documents are held at
/// delivery), so a domain once found stays found; it is asked again after a minute all the
/// same (a database restored under a running daemon). A domain not found is asked every
/// time, so an identity imported now serves the next message.
#[derive(Default)]
pub struct SealDomains {
    found: Mutex<HashMap<String, std::time::Instant>>,
}

impl SealDomains {
    const KEPT: std::time::Duration = std::time::Duration::from_secs(60);

    pub async fn has_identity(&self, db: &DatabaseConnection, domain: &str) -> Result<bool, DbErr> {
        let domain = domain.to_ascii_lowercase();
        let known = self
            .found
            .lock()
            .ok()
            .and_then(|f| f.get(&domain).map(|at| at.elapsed() < Self::KEPT))
            .unwrap_or(false);
        if known {
            return Ok(true);
        }
        let found = SealCache::has_identity(db, &domain).await?;
        if found {
            if let Ok(mut f) = self.found.lock() {
                f.insert(domain, std::time::Instant::now());
            }
        }
        Ok(found)
    }
}

fn seals_domain(m: &identity::Model, domain: &str) -> bool {
    serde_json::from_str::<Vec<String>>(&m.domains)
        .map(|d| d.iter().any(|x| x.as_str() == domain))
        .unwrap_or(false)
}

/// What signing a message from a domain can use.
pub enum Seal {
    /// No identity is configured for the domain.
    None,
    Usable {
        identity: Arc<SigningIdentity>,
        id: i64,
        /// The office's seal image for visible PDF seals.
        seal_image: Option<Arc<SealImage>>,
    },
    /// Identities exist but none can be used now; the reason says why. `token` names an
    /// identity whose token could not be used, and why: its documents wait for the token.
    Unusable {
        reason: String,
        token: Option<(i64, TokenError)>,
    },
}

type Loaded = (Arc<SigningIdentity>, Option<Arc<SealImage>>);

/// Loaded identities and their seal images, keyed by row id and last change, so a CLI change is seen at once and
/// an unchanged identity is parsed only once.
#[derive(Default)]
pub struct SealCache {
    loaded: Mutex<HashMap<(i64, i64), Loaded>>,
}

impl SealCache {
    pub async fn for_domain(
        &self,
        db: &DatabaseConnection,
        domain: &str,
        now: OffsetDateTime,
    ) -> Result<Seal, DbErr> {
        let domain = domain.to_ascii_lowercase();
        let rows: Vec<identity::Model> = identity::Entity::find()
            .filter(names_domain_json(&domain))
            .order_by_desc(identity::Column::NotAfter)
            .all(db)
            .await?
            .into_iter()
            .filter(|m| seals_domain(m, &domain))
            .collect();
        if rows.is_empty() {
            return Ok(Seal::None);
        }
        let mut reasons = Vec::new();
        let mut token = None;
        for m in &rows {
            if m.disabled {
                reasons.push(format!(
                    "identity {} (serial {}) is disabled",
                    m.id, m.serial
                ));
                continue;
            }
            let (identity, seal_image) = match self.load(db, m).await? {
                Ok(loaded) => loaded,
                Err(e) => {
                    reasons.push(format!("identity {} cannot be loaded: {e}", m.id));
                    if let Some(t) = token_error(e) {
                        token.get_or_insert((m.id, t));
                    }
                    continue;
                }
            };
            match identity.usability(now) {
                Ok(()) => {
                    return Ok(Seal::Usable {
                        identity,
                        id: m.id,
                        seal_image,
                    })
                }
                Err(e) => reasons.push(format!("identity {} (serial {}): {e}", m.id, m.serial)),
            }
        }
        Ok(Seal::Unusable {
            reason: reasons.join("; "),
            token,
        })
    }

    /// The identity of row `m` and its seal image, from the cache or loaded now (and kept
    /// until the row changes, or its token refused the PIN and the PIN changed).
    async fn load(
        &self,
        db: &DatabaseConnection,
        m: &identity::Model,
    ) -> Result<Result<Loaded, PkiError>, DbErr> {
        let key = (m.id, m.updated_at);
        let cached = self
            .loaded
            .lock()
            .ok()
            .and_then(|c| c.get(&key).cloned())
            .filter(|(identity, _)| !pin_changed_since_refused(identity, m));
        if let Some(loaded) = cached {
            return Ok(Ok(loaded));
        }
        let identity = match load(m) {
            Ok(i) => i,
            Err(e) => return Ok(Err(e)),
        };
        let loaded = (Arc::new(identity), self.seal_image(db, m.id).await?);
        if let Ok(mut c) = self.loaded.lock() {
            c.insert(key, loaded.clone());
        }
        Ok(Ok(loaded))
    }

    /// Loads every enabled identity and makes a test signature with it now (through its
    /// token, for a token identity), and checks it can sign mail today: what `serve` logs at
    /// start. The loaded identities stay cached for delivery.
    pub async fn test_all(
        &self,
        db: &DatabaseConnection,
        now: OffsetDateTime,
    ) -> Result<Vec<SealTest>, DbErr> {
        let rows = identity::Entity::find()
            .filter(identity::Column::Disabled.eq(false))
            .order_by_asc(identity::Column::Id)
            .all(db)
            .await?;
        let mut out = Vec::new();
        for m in rows {
            let result = match self.load(db, &m).await? {
                Err(e) => Err(SealProblem::load(e)),
                Ok((identity, _)) => match identity.usability(now) {
                    Err(e) => Err(SealProblem::Unusable(e.to_string())),
                    Ok(()) => SealProblem::test(identity).await,
                },
            };
            out.push(SealTest {
                id: m.id,
                domains: serde_json::from_str(&m.domains).unwrap_or_default(),
                token: m.pkcs11_uri.is_some(),
                result,
            });
        }
        Ok(out)
    }

    /// The enabled identity `id`, for the token watch's test signature.
    pub async fn by_id(
        &self,
        db: &DatabaseConnection,
        id: i64,
    ) -> Result<Result<Arc<SigningIdentity>, SealProblem>, DbErr> {
        let Some(m) = identity::Entity::find_by_id(id).one(db).await? else {
            return Ok(Err(SealProblem::Unusable(format!(
                "identity {id} no longer exists"
            ))));
        };
        if m.disabled {
            return Ok(Err(SealProblem::Unusable(format!(
                "identity {id} is disabled"
            ))));
        }
        Ok(self
            .load(db, &m)
            .await?
            .map(|(identity, _)| identity)
            .map_err(SealProblem::load))
    }

    /// An identity's seal image; one that no longer decodes is logged and left out (the
    /// seal is then invisible, never missing).
    async fn seal_image(
        &self,
        db: &DatabaseConnection,
        id: i64,
    ) -> Result<Option<Arc<SealImage>>, DbErr> {
        match seal_image_of(db, id).await {
            Ok(image) => Ok(image.map(|(i, _)| Arc::new(i))),
            Err(PkiError::Db(e)) => Err(e),
            Err(e) => {
                tracing::warn!(identity = id, error = %e, "the stored seal image cannot be used; PDF seals will be invisible");
                Ok(None)
            }
        }
    }

    /// Whether any identity row names the domain (for the check at end of DATA; the daemon
    /// asks through [`SealDomains`]).
    pub async fn has_identity(db: &DatabaseConnection, domain: &str) -> Result<bool, DbErr> {
        let domain = domain.to_ascii_lowercase();
        Ok(identity::Entity::find()
            .filter(names_domain_json(&domain))
            .all(db)
            .await?
            .iter()
            .any(|m| seals_domain(m, &domain)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::{ActiveModelTrait, Set};

    /// The end-of-DATA check asks the database until a domain has an identity, then no more:
    /// an identity imported now serves the next message, and a found domain costs no read.
    #[tokio::test]
    async fn a_domain_found_with_a_seal_is_not_asked_again() {
        let (db, _dir) = crate::store::test_database().await;
        let domains = SealDomains::default();
        assert!(!domains.has_identity(&db, "dev.gov.vn").await.unwrap());
        let row = identity::ActiveModel {
            subject: Set("CN=UBND".into()),
            issuer: Set("CN=CA".into()),
            serial: Set("01".into()),
            domains: Set(r#"["dev.gov.vn"]"#.into()),
            emails: Set(r#"["vanthu@dev.gov.vn"]"#.into()),
            algorithm: Set("rsa".into()),
            not_before: Set(0),
            not_after: Set(1),
            disabled: Set(false),
            key_file: Set(String::new()),
            chain_file: Set(String::new()),
            fingerprint: Set(String::new()),
            created_at: Set(0),
            updated_at: Set(0),
            pkcs11_uri: Set(None),
            pkcs11_module: Set(None),
            pin_file: Set(None),
            ..Default::default()
        }
        .insert(&db)
        .await
        .unwrap();
        assert!(domains.has_identity(&db, "DEV.gov.vn").await.unwrap());
        // Gone from the database behind the daemon's back: the found domain is not read again.
        identity::Entity::delete_by_id(row.id)
            .exec(&db)
            .await
            .unwrap();
        assert!(!SealCache::has_identity(&db, "dev.gov.vn").await.unwrap());
        assert!(domains.has_identity(&db, "dev.gov.vn").await.unwrap());
        assert!(!domains.has_identity(&db, "hanoi.gov.vn").await.unwrap());
    }
}
