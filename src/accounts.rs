//! Clerks' SMTP AUTH accounts: Argon2id password hashes and the addresses each may send as.
//! The daemon reads accounts from the database on every AUTH, so CLI changes apply at once.
//! Every change is written together with its audit log entry, in one transaction; `actor`
//! says who made it (`cli:<unix user>`, …).

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, QueryOrder, Set,
};
use serde::Serialize;

use crate::audit::{self, Action, Event};

use crate::store::entity::account;
use crate::util::now_ms;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccountError {
    #[error("account '{0}' already exists")]
    Exists(String),
    #[error("no account '{0}'")]
    NotFound(String),
    #[error("invalid account name '{0}': use letters, digits, '.', '_', '-' or '@'")]
    BadName(String),
    #[error("invalid allowed address '{0}': use user@domain or @domain")]
    BadAddress(String),
    #[error("the password must not be empty")]
    EmptyPassword,
    #[error("the password is {chars} character(s) long: a clerk's password needs at least {MIN_PASSWORD_CHARS} (a phrase of several words is easiest to remember)")]
    ShortPassword { chars: usize },
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("database: {0}")]
    Db(#[from] DbErr),
}

#[derive(Debug, Clone, Serialize)]
pub struct AccountInfo {
    pub name: String,
    pub allowed_from: Vec<String>,
    pub disabled: bool,
    pub created_at: String,
    pub updated_at: String,
}

/// Result of checking credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    Ok { allowed_from: Vec<String> },
    Invalid,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
}

fn valid_allowed(a: &str) -> bool {
    match a.rsplit_once('@') {
        Some((local, domain)) => {
            !domain.is_empty()
                && domain.contains('.')
                && !a.contains(char::is_whitespace)
                && !local.contains(['"', '%', '!'])
        }
        None => false,
    }
}

/// The shortest password `account add` and `account passwd` take: the accounts send
/// official documents under the office's seal, over the network.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// Refuses a clerk's password shorter than [`MIN_PASSWORD_CHARS`] characters.
fn strong_enough(password: &str) -> Result<(), AccountError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(AccountError::ShortPassword { chars });
    }
    Ok(())
}

pub fn hash_password(password: &str) -> Result<String, AccountError> {
    if password.is_empty() {
        return Err(AccountError::EmptyPassword);
    }
    let mut salt_bytes = [0u8; 16];
    rand::fill(&mut salt_bytes);
    let salt =
        SaltString::encode_b64(&salt_bytes).map_err(|e| AccountError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AccountError::Hash(e.to_string()))
}

fn verify_password(hash: &str, password: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

fn info(m: account::Model) -> AccountInfo {
    AccountInfo {
        allowed_from: serde_json::from_str(&m.allowed_from).unwrap_or_default(),
        name: m.name,
        disabled: m.disabled,
        created_at: crate::util::rfc3339_ms(m.created_at),
        updated_at: crate::util::rfc3339_ms(m.updated_at),
    }
}

async fn find(db: &impl ConnectionTrait, name: &str) -> Result<Option<account::Model>, DbErr> {
    account::Entity::find()
        .filter(account::Column::Name.eq(name))
        .one(db)
        .await
}

pub async fn add(
    db: &DatabaseConnection,
    actor: &str,
    name: &str,
    allowed_from: &[String],
    password: &str,
) -> Result<(), AccountError> {
    if !valid_name(name) {
        return Err(AccountError::BadName(name.into()));
    }
    if let Some(bad) = allowed_from.iter().find(|a| !valid_allowed(a)) {
        return Err(AccountError::BadAddress(bad.clone()));
    }
    strong_enough(password)?;
    if find(db, name).await?.is_some() {
        return Err(AccountError::Exists(name.into()));
    }
    // Hashing is slow: done before the transaction, which holds the audit log's lock.
    let pw = password.to_string();
    let hash = tokio::task::spawn_blocking(move || hash_password(&pw))
        .await
        .map_err(|e| AccountError::Hash(e.to_string()))??;
    let now = now_ms();
    let allowed: Vec<String> = allowed_from
        .iter()
        .map(|a| a.to_ascii_lowercase())
        .collect();
    let txn = audit::begin(db).await?;
    if find(&txn, name).await?.is_some() {
        return Err(AccountError::Exists(name.into()));
    }
    account::ActiveModel {
        name: Set(name.to_string()),
        password_hash: Set(hash),
        allowed_from: Set(serde_json::to_string(&allowed).unwrap_or_else(|_| "[]".into())),
        disabled: Set(false),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await
    .map_err(|e| match find_unique_violation(&e) {
        true => AccountError::Exists(name.into()),
        false => AccountError::Db(e),
    })?;
    audit::append(
        &txn,
        &Event::new(
            actor,
            Action::AccountAdd,
            name,
            serde_json::json!({ "allowed_from": allowed }),
        ),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

fn find_unique_violation(e: &DbErr) -> bool {
    let s = e.to_string().to_ascii_lowercase();
    s.contains("unique")
}

pub async fn list(db: &DatabaseConnection) -> Result<Vec<AccountInfo>, AccountError> {
    Ok(account::Entity::find()
        .order_by_asc(account::Column::Name)
        .all(db)
        .await?
        .into_iter()
        .map(info)
        .collect())
}

pub async fn set_disabled(
    db: &DatabaseConnection,
    actor: &str,
    name: &str,
    disabled: bool,
) -> Result<(), AccountError> {
    let txn = audit::begin(db).await?;
    let m = find(&txn, name)
        .await?
        .ok_or_else(|| AccountError::NotFound(name.into()))?;
    let was_disabled = m.disabled;
    let mut am: account::ActiveModel = m.into();
    am.disabled = Set(disabled);
    am.updated_at = Set(now_ms());
    am.update(&txn).await?;
    let action = if disabled {
        Action::AccountDisable
    } else {
        Action::AccountEnable
    };
    audit::append(
        &txn,
        &Event::new(
            actor,
            action,
            name,
            serde_json::json!({ "was_disabled": was_disabled }),
        ),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// Sets a new password. The audit entry records that it changed, never the password or hash.
pub async fn set_password(
    db: &DatabaseConnection,
    actor: &str,
    name: &str,
    password: &str,
) -> Result<(), AccountError> {
    if find(db, name).await?.is_none() {
        return Err(AccountError::NotFound(name.into()));
    }
    strong_enough(password)?;
    let pw = password.to_string();
    let hash = tokio::task::spawn_blocking(move || hash_password(&pw))
        .await
        .map_err(|e| AccountError::Hash(e.to_string()))??;
    let txn = audit::begin(db).await?;
    let m = find(&txn, name)
        .await?
        .ok_or_else(|| AccountError::NotFound(name.into()))?;
    let mut am: account::ActiveModel = m.into();
    am.password_hash = Set(hash);
    am.updated_at = Set(now_ms());
    am.update(&txn).await?;
    audit::append(
        &txn,
        &Event::new(actor, Action::AccountPasswd, name, serde_json::json!({})),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// Checks a user name and password. Unknown and disabled accounts cost the same Argon2
/// work as a wrong password, so timing does not reveal which names exist.
pub async fn authenticate(
    db: &DatabaseConnection,
    name: &str,
    password: &str,
) -> Result<AuthOutcome, DbErr> {
    let m = find(db, name).await?;
    let (hash, allowed, usable) = match m {
        Some(m) => (
            m.password_hash.clone(),
            serde_json::from_str::<Vec<String>>(&m.allowed_from).unwrap_or_default(),
            !m.disabled,
        ),
        None => (dummy_hash().to_string(), Vec::new(), false),
    };
    let pw = password.to_string();
    let ok = tokio::task::spawn_blocking(move || verify_password(&hash, &pw))
        .await
        .unwrap_or(false);
    Ok(if ok && usable {
        AuthOutcome::Ok {
            allowed_from: allowed,
        }
    } else {
        AuthOutcome::Invalid
    })
}

fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password("congvan-timing-equaliser").unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_addresses() {
        assert!(valid_name("vanthu"));
        assert!(valid_name("vanthu.so-tc@x"));
        assert!(!valid_name("van thu"));
        assert!(!valid_name(""));
        assert!(valid_allowed("vanthu@dev.gov.vn"));
        assert!(valid_allowed("@dev.gov.vn"));
        assert!(!valid_allowed("dev.gov.vn"));
        assert!(!valid_allowed("a%b@dev.gov.vn"));
    }

    #[test]
    fn hash_roundtrip() {
        let h = hash_password("bí mật").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password(&h, "bí mật"));
        assert!(!verify_password(&h, "bi mat"));
    }
}
