//! Keys on a token (SPEC "Keys on a token (PKCS#11)"): the office's seal whose private key
//! never leaves a USB token or an HSM. The admin names the module (`--module`, loaded at run
//! time with cryptoki) and the key (an RFC 7512 URI); every signature goes through the token
//! (RSA PKCS#1 v1.5 with SHA-256, or ECDSA on a digest made here), in one logged-in session
//! per key that is opened again when the token says it is gone.
//!
//! A module is initialised once per process (PKCS#11 allows one `C_Initialize`), and shared
//! by every key that uses it. The PIN is held as a secret in memory and is never logged.

mod uri;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;

pub use uri::{Pkcs11Uri, UriError, MAX_URI_LEN};

use super::identity::KeyAlgorithm;

/// Why the token could not be used. Each says what the admin can do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    #[error("the PKCS#11 module {path} cannot be loaded: {reason}")]
    Module { path: PathBuf, reason: String },
    #[error("no token {what} is present")]
    NoToken { what: String },
    #[error("the token's PIN is incorrect (not tried again until the PIN is changed: a token locks after a few wrong PINs)")]
    PinIncorrect,
    #[error("the token's PIN is locked: unlock it with the security officer's PIN")]
    PinLocked,
    #[error("no private key {what} on the token")]
    NoKey { what: String },
    #[error("the token holds no certificate for the key: give --cert CHAIN.pem")]
    NoCertificate,
    #[error("the token refused to sign: {0}")]
    Refused(String),
}

/// The office's private key on a token.
pub struct TokenKey {
    module: PathBuf,
    uri: Pkcs11Uri,
    pin: AuthPin,
    /// The logged-in session and the key's handle, opened on first use.
    open: Mutex<Option<(Session, ObjectHandle)>>,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKey")
            .field("module", &self.module)
            .field("uri", &self.uri)
            .finish_non_exhaustive()
    }
}

/// The modules loaded in this process, by path.
fn modules() -> &'static Mutex<HashMap<PathBuf, Pkcs11>> {
    static MODULES: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    MODULES.get_or_init(Default::default)
}

fn module(path: &Path) -> Result<Pkcs11, TokenError> {
    let mut loaded = modules()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(m) = loaded.get(path) {
        return Ok(m.clone());
    }
    let bad = |e: CkError| TokenError::Module {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let m = Pkcs11::new(path).map_err(bad)?;
    match m.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(bad(e)),
    }
    loaded.insert(path.to_path_buf(), m.clone());
    Ok(m)
}

/// Errors after which the session is opened again (the token was pulled and put back, the
/// module or the token was reset).
fn session_lost(e: &CkError) -> bool {
    matches!(
        e,
        CkError::Pkcs11(
            RvError::SessionHandleInvalid
                | RvError::SessionClosed
                | RvError::DeviceRemoved
                | RvError::TokenNotPresent
                | RvError::ObjectHandleInvalid
                | RvError::UserNotLoggedIn
                | RvError::KeyHandleInvalid,
            _
        )
    )
}

impl TokenKey {
    pub fn new(module: &Path, uri: Pkcs11Uri, pin: &str) -> TokenKey {
        TokenKey {
            module: module.to_path_buf(),
            uri,
            pin: AuthPin::from(pin.to_string()),
            open: Mutex::new(None),
        }
    }

    /// What the URI selects, for messages: `token "T", object "seal"`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(t) = &self.uri.token {
            parts.push(format!("token \"{t}\""));
        }
        if let Some(o) = &self.uri.object {
            parts.push(format!("object \"{o}\""));
        }
        if let Some(id) = &self.uri.id {
            parts.push(format!("id {}", hex::encode(id)));
        }
        parts.join(", ")
    }

    fn slot(&self, ctx: &Pkcs11) -> Result<Slot, TokenError> {
        let none = || TokenError::NoToken {
            what: self
                .uri
                .token
                .as_ref()
                .map(|t| format!("\"{t}\""))
                .unwrap_or_default(),
        };
        let slots = ctx.get_slots_with_token().map_err(|_| none())?;
        slots
            .into_iter()
            .find(|s| {
                if self.uri.slot_id.is_some_and(|id| id != s.id()) {
                    return false;
                }
                let Ok(info) = ctx.get_token_info(*s) else {
                    return false;
                };
                self.uri
                    .token
                    .as_ref()
                    .is_none_or(|t| info.label().trim_end() == t)
                    && self
                        .uri
                        .serial
                        .as_ref()
                        .is_none_or(|n| info.serial_number().trim_end() == n)
            })
            .ok_or_else(none)
    }

    /// A logged-in session and the key's handle.
    fn open(&self) -> Result<(Session, ObjectHandle), TokenError> {
        let ctx = module(&self.module)?;
        let slot = self.slot(&ctx)?;
        let session = ctx.open_ro_session(slot).map_err(refused)?;
        match session.login(UserType::User, Some(&self.pin)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(CkError::Pkcs11(RvError::PinIncorrect, _)) => return Err(TokenError::PinIncorrect),
            Err(CkError::Pkcs11(RvError::PinLocked, _)) => return Err(TokenError::PinLocked),
            Err(e) => return Err(refused(e)),
        }
        let key = self
            .find(&session, ObjectClass::PRIVATE_KEY)?
            .ok_or_else(|| TokenError::NoKey {
                what: self.describe(),
            })?;
        Ok((session, key))
    }

    fn find(
        &self,
        session: &Session,
        class: ObjectClass,
    ) -> Result<Option<ObjectHandle>, TokenError> {
        let mut template = vec![Attribute::Class(class)];
        if let Some(o) = &self.uri.object {
            template.push(Attribute::Label(o.as_bytes().to_vec()));
        }
        if let Some(id) = &self.uri.id {
            template.push(Attribute::Id(id.clone()));
        }
        Ok(session
            .find_objects(&template)
            .map_err(refused)?
            .into_iter()
            .next())
    }

    /// The certificate stored beside the key (same label and id), DER.
    pub fn certificate(&self) -> Result<Vec<u8>, TokenError> {
        let (session, _) = self.open()?;
        let cert = self
            .find(&session, ObjectClass::CERTIFICATE)?
            .ok_or(TokenError::NoCertificate)?;
        let attrs = session
            .get_attributes(cert, &[AttributeType::Value])
            .map_err(refused)?;
        attrs
            .into_iter()
            .find_map(|a| match a {
                Attribute::Value(v) => Some(v),
                _ => None,
            })
            .ok_or(TokenError::NoCertificate)
    }

    /// Signs `data` as `algorithm` says: RSA PKCS#1 v1.5 with SHA-256 on the token, or the
    /// digest made here and ECDSA on the token (DER-encoded here, as CMS wants it).
    pub fn sign(&self, algorithm: KeyAlgorithm, data: &[u8]) -> Result<Vec<u8>, TokenError> {
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for attempt in 0..2 {
            if open.is_none() {
                *open = Some(self.open()?);
            }
            let Some((session, key)) = open.as_ref() else {
                continue;
            };
            let result = match algorithm {
                KeyAlgorithm::Rsa { .. } => {
                    session.sign(&Mechanism::Sha256RsaPkcs, *key, data).map(Ok)
                }
                _ => {
                    let digest = ring::digest::digest(algorithm.digest().ring(), data);
                    session
                        .sign(&Mechanism::Ecdsa, *key, digest.as_ref())
                        .map(|raw| ecdsa_der(&raw))
                }
            };
            match result {
                Ok(sig) => return sig,
                Err(e) if attempt == 0 && session_lost(&e) => *open = None,
                Err(e) => {
                    *open = None;
                    return Err(refused(e));
                }
            }
        }
        Err(TokenError::Refused(
            "the session could not be opened again".into(),
        ))
    }
}

fn refused(e: CkError) -> TokenError {
    match e {
        CkError::Pkcs11(RvError::TokenNotPresent | RvError::DeviceRemoved, _) => {
            TokenError::NoToken {
                what: String::new(),
            }
        }
        CkError::Pkcs11(RvError::PinLocked, _) => TokenError::PinLocked,
        e => TokenError::Refused(e.to_string()),
    }
}

/// A raw ECDSA signature (r ‖ s, each the curve's size) as the DER `ECDSA-Sig-Value` CMS
/// carries (RFC 5753 §7.2).
fn ecdsa_der(raw: &[u8]) -> Result<Vec<u8>, TokenError> {
    use der::Encode;
    #[derive(der::Sequence)]
    struct EcdsaSigValue<'a> {
        r: der::asn1::UintRef<'a>,
        s: der::asn1::UintRef<'a>,
    }
    let bad = |e: der::Error| TokenError::Refused(format!("the token's ECDSA signature: {e}"));
    if raw.is_empty() || raw.len() % 2 != 0 {
        return Err(TokenError::Refused(format!(
            "the token's ECDSA signature has {} bytes",
            raw.len()
        )));
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    EcdsaSigValue {
        r: der::asn1::UintRef::new(r).map_err(bad)?,
        s: der::asn1::UintRef::new(s).map_err(bad)?,
    }
    .to_der()
    .map_err(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecdsa_signatures_are_encoded_as_cms_wants() {
        // r with its high bit set gets a zero byte; s with leading zeros loses them.
        let mut raw = vec![0x80; 32];
        raw.extend(std::iter::repeat_n(0, 31).chain([0x05]));
        let der = ecdsa_der(&raw).unwrap();
        assert_eq!(&der[..5], &[0x30, 33 + 2 + 1 + 2, 0x02, 33, 0x00]);
        assert_eq!(&der[der.len() - 3..], &[0x02, 1, 0x05]);
        // P-384 with both high bits set: 2 × (2 + 49) bytes.
        let der = ecdsa_der(&[0xff; 96]).unwrap();
        assert_eq!(&der[..5], &[0x30, 102, 0x02, 49, 0x00]);
        assert!(ecdsa_der(&[1, 2, 3]).is_err());
    }
}
