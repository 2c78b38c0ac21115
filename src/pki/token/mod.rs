//! Keys on a token (SPEC "Keys on a token (PKCS#11)"): the office's seal whose private key
//! never leaves a USB token or an HSM. The admin names the module (`--module`, loaded at run
//! time with cryptoki) and the key (an RFC 7512 URI); every signature goes through the token
//! (RSA PKCS#1 v1.5 with SHA-256, or ECDSA on a digest made here), in a small pool of
//! logged-in sessions per key, each opened again when the token says it is gone.
//!
//! A module is initialised once per process and shared by every key that uses it; after a
//! token is pulled and put back it is finalised and initialised again (a module sees the
//! token again only then). The PIN is held as a secret in memory and is never logged; a PIN
//! the token refused is not offered to it again.

mod uri;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

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

impl TokenError {
    /// A short stable name for logs and the audit log.
    pub fn kind(&self) -> &'static str {
        match self {
            TokenError::Module { .. } => "module",
            TokenError::NoToken { .. } => "no_token",
            TokenError::PinIncorrect => "pin_incorrect",
            TokenError::PinLocked => "pin_locked",
            TokenError::NoKey { .. } => "no_key",
            TokenError::NoCertificate => "no_certificate",
            TokenError::Refused(_) => "refused",
        }
    }
}

/// Sessions per key: as many signatures at once as delivery has workers on a small machine,
/// without holding many of a token's (often few) sessions.
const POOL: usize = 4;

/// The office's private key on a token.
pub struct TokenKey {
    module: PathBuf,
    uri: Pkcs11Uri,
    pin: AuthPin,
    /// SHA-256 of the PIN: what the refused-PIN memory and a changed PIN file compare.
    pin_digest: [u8; 32],
    /// The pool: logged-in sessions with the key's handle, each opened on first use. A
    /// session does one operation at a time; several let deliveries sign at once.
    open: Vec<Mutex<Option<Open>>>,
    /// Where the next signature starts looking for a free session.
    next: std::sync::atomic::AtomicUsize,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKey")
            .field("module", &self.module)
            .field("uri", &self.uri)
            .finish_non_exhaustive()
    }
}

/// A module loaded in this process, and how many times it was initialised again.
struct Module {
    ctx: Pkcs11,
    generation: u64,
    /// Held shared by each use of the module, and exclusively to finalise it.
    gate: Arc<RwLock<()>>,
}

/// The modules loaded in this process, by path.
fn modules() -> std::sync::MutexGuard<'static, HashMap<PathBuf, Module>> {
    static MODULES: OnceLock<Mutex<HashMap<PathBuf, Module>>> = OnceLock::new();
    MODULES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn initialize(ctx: &Pkcs11) -> Result<(), CkError> {
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => Ok(()),
        Err(e) => Err(e),
    }
}

fn module_error(path: &Path) -> impl Fn(CkError) -> TokenError + '_ {
    move |e| TokenError::Module {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// The module at `path`, loaded and initialised on first use, its generation and its gate.
fn module(path: &Path) -> Result<(Pkcs11, u64, Arc<RwLock<()>>), TokenError> {
    let mut loaded = modules();
    if let Some(m) = loaded.get(path) {
        return Ok((m.ctx.clone(), m.generation, m.gate.clone()));
    }
    let ctx = Pkcs11::new(path).map_err(module_error(path))?;
    initialize(&ctx).map_err(module_error(path))?;
    let gate = Arc::new(RwLock::new(()));
    loaded.insert(
        path.to_path_buf(),
        Module {
            ctx: ctx.clone(),
            generation: 0,
            gate: gate.clone(),
        },
    );
    Ok((ctx, 0, gate))
}

/// Finalises the module and initialises it again, unless another key already did since
/// `seen`: after a token is pulled and put back, a module keeps the old token's handles
/// (and sees no token in its slot) until then. Sessions of the old generation are not
/// closed (their handles may name new sessions): [`Open`] forgets them.
fn reinitialize(path: &Path, seen: u64) -> Result<(), TokenError> {
    let Some(gate) = modules().get(path).map(|m| m.gate.clone()) else {
        return Ok(());
    };
    // Every other use of the module ends first (the registry is not locked meanwhile).
    let _alone = gate
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut loaded = modules();
    let Some(m) = loaded.get_mut(path) else {
        return Ok(());
    };
    if m.generation != seen {
        return Ok(());
    }
    m.generation += 1;
    if let Err(e) = m.ctx.clone().finalize() {
        tracing::debug!(module = %path.display(), error = %e, "C_Finalize before initialising the module again");
    }
    initialize(&m.ctx).map_err(module_error(path))?;
    tracing::info!(module = %path.display(), generation = m.generation, "PKCS#11 module initialised again");
    Ok(())
}

fn generation(path: &Path) -> Option<u64> {
    modules().get(path).map(|m| m.generation)
}

/// A logged-in session on the key's token, the key's handle, and the module generation
/// it belongs to.
struct Open {
    module: PathBuf,
    generation: u64,
    session: Option<Session>,
    key: ObjectHandle,
}

impl Drop for Open {
    fn drop(&mut self) {
        // A session of an earlier generation died with C_Finalize; closing its handle now
        // could close another key's new session.
        if let Some(s) = self.session.take() {
            if generation(&self.module) != Some(self.generation) {
                std::mem::forget(s);
            }
        }
    }
}

/// PINs a token refused, by module, token and SHA-256 of the PIN (never the PIN): a token
/// locks after a few wrong PINs, so a refused PIN is not offered to that token again in
/// this process; a changed PIN is.
static PIN_REFUSED: Mutex<std::collections::BTreeSet<(PathBuf, String, [u8; 32])>> =
    Mutex::new(std::collections::BTreeSet::new());

fn pin_refused(
) -> std::sync::MutexGuard<'static, std::collections::BTreeSet<(PathBuf, String, [u8; 32])>> {
    PIN_REFUSED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
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
                | RvError::KeyHandleInvalid
                | RvError::CryptokiNotInitialized
                | RvError::DeviceError,
            _
        )
    )
}

impl TokenKey {
    pub fn new(module: &Path, uri: Pkcs11Uri, pin: &str) -> TokenKey {
        TokenKey {
            module: module.to_path_buf(),
            uri,
            pin_digest: digest(pin),
            pin: AuthPin::from(pin.to_string()),
            open: (0..POOL).map(|_| Mutex::new(None)).collect(),
            next: Default::default(),
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

    /// Whether the token refused this key's PIN (it is then not offered again).
    pub fn pin_refused(&self) -> bool {
        pin_refused().contains(&self.refusal())
    }

    /// Whether `pin` is the PIN this key logs in with.
    pub fn has_pin(&self, pin: &str) -> bool {
        digest(pin) == self.pin_digest
    }

    /// What the refused-PIN memory keys on: the module, the token the URI selects, the PIN.
    fn refusal(&self) -> (PathBuf, String, [u8; 32]) {
        let token = format!(
            "{:?} {:?} {:?}",
            self.uri.token, self.uri.serial, self.uri.slot_id
        );
        (self.module.clone(), token, self.pin_digest)
    }

    fn no_token(&self) -> TokenError {
        TokenError::NoToken {
            what: self
                .uri
                .token
                .as_ref()
                .map(|t| format!("\"{t}\""))
                .unwrap_or_default(),
        }
    }

    fn slot(&self, ctx: &Pkcs11) -> Result<Slot, TokenError> {
        let slots = ctx.get_slots_with_token().map_err(|e| self.refused(e))?;
        slots
            .into_iter()
            .find(|s| {
                if self.uri.slot_id.is_some_and(|id| id != s.id()) {
                    return false;
                }
                // A slot whose token cannot be read (pulled, or put back unseen by the
                // module) is not the key's.
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
            .ok_or_else(|| self.no_token())
    }

    /// A logged-in session and the key's handle. A PIN the token refused is not tried again.
    fn open_session(&self, ctx: &Pkcs11, generation: u64) -> Result<Open, TokenError> {
        let slot = self.slot(ctx)?;
        let session = ctx.open_ro_session(slot).map_err(|e| self.refused(e))?;
        if self.pin_refused() {
            return Err(TokenError::PinIncorrect);
        }
        match session.login(UserType::User, Some(&self.pin)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(CkError::Pkcs11(RvError::PinIncorrect, _)) => {
                pin_refused().insert(self.refusal());
                return Err(TokenError::PinIncorrect);
            }
            Err(e) => return Err(self.refused(e)),
        }
        let key = self
            .find(&session, ObjectClass::PRIVATE_KEY)
            .map_err(|e| self.refused(e))?
            .ok_or_else(|| TokenError::NoKey {
                what: self.describe(),
            })?;
        Ok(Open {
            module: self.module.clone(),
            generation,
            session: Some(session),
            key,
        })
    }

    fn find(&self, session: &Session, class: ObjectClass) -> Result<Option<ObjectHandle>, CkError> {
        let mut template = vec![Attribute::Class(class)];
        if let Some(o) = &self.uri.object {
            template.push(Attribute::Label(o.as_bytes().to_vec()));
        }
        if let Some(id) = &self.uri.id {
            template.push(Attribute::Id(id.clone()));
        }
        Ok(session.find_objects(&template)?.into_iter().next())
    }

    /// Runs `f` in the key's session, opening it when needed. When the token says the
    /// session is gone, the session is opened again; when that finds no token or no key,
    /// the module is initialised again once (a token pulled and put back is seen only
    /// then). Errors of the work itself (`Ok(Err(..))`) are returned as they are.
    fn with_session<T>(
        &self,
        f: impl Fn(&Self, &Session, ObjectHandle) -> Result<Result<T, TokenError>, CkError>,
    ) -> Result<T, TokenError> {
        /// What to do after one try, once the module's gate is let go.
        enum Next<T> {
            Done(Result<T, TokenError>),
            Reopen(CkError),
            Reinitialize(u64),
        }
        let mut open = self.session_slot();
        let mut reopened = false;
        let mut reinitialised = false;
        loop {
            let (ctx, current, gate) = module(&self.module)?;
            if open.as_ref().is_some_and(|o| o.generation != current) {
                *open = None;
            }
            let next = {
                // No C_Finalize while this key uses the module.
                let _using = gate
                    .read()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let ready = match open.as_ref() {
                    Some(o) => Ok(o),
                    None => self.open_session(&ctx, current).map(|o| &*open.insert(o)),
                };
                match ready {
                    Err(TokenError::NoToken { .. } | TokenError::NoKey { .. })
                        if !reinitialised =>
                    {
                        Next::Reinitialize(current)
                    }
                    Err(e) => Next::Done(Err(e)),
                    Ok(Open {
                        session: Some(session),
                        key,
                        ..
                    }) => match f(self, session, *key) {
                        Ok(result) => Next::Done(result),
                        Err(e) if session_lost(&e) && !(reopened && reinitialised) => {
                            Next::Reopen(e)
                        }
                        Err(e) => Next::Done(Err(self.refused(e))),
                    },
                    Ok(_) => Next::Done(Err(TokenError::Refused("no session".into()))),
                }
            };
            match next {
                Next::Done(result) => {
                    if result.is_err() {
                        *open = None;
                    }
                    return result;
                }
                Next::Reinitialize(seen) => {
                    reinitialize(&self.module, seen)?;
                    reinitialised = true;
                }
                Next::Reopen(e) => {
                    tracing::info!(token = %self.describe(), error = %e, "the token's session is gone; opening it again");
                    *open = None;
                    if reopened {
                        reinitialize(&self.module, current)?;
                        reinitialised = true;
                    }
                    reopened = true;
                }
            }
        }
    }

    /// A free session slot of the pool, or the next one in turn when all are busy.
    fn session_slot(&self) -> std::sync::MutexGuard<'_, Option<Open>> {
        let start = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        for i in 0..self.open.len() {
            if let Ok(slot) = self.open[(start + i) % self.open.len()].try_lock() {
                return slot;
            }
        }
        self.open[start % self.open.len()]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The certificate stored beside the key (same label and id), DER.
    pub fn certificate(&self) -> Result<Vec<u8>, TokenError> {
        self.with_session(|this, session, _| {
            let Some(cert) = this.find(session, ObjectClass::CERTIFICATE)? else {
                return Ok(Err(TokenError::NoCertificate));
            };
            Ok(session
                .get_attributes(cert, &[AttributeType::Value])?
                .into_iter()
                .find_map(|a| match a {
                    Attribute::Value(v) => Some(v),
                    _ => None,
                })
                .ok_or(TokenError::NoCertificate))
        })
    }

    /// Signs `data` as `algorithm` says: RSA PKCS#1 v1.5 with SHA-256 on the token, or the
    /// digest made here and ECDSA on the token (DER-encoded here, as CMS wants it).
    pub fn sign(&self, algorithm: KeyAlgorithm, data: &[u8]) -> Result<Vec<u8>, TokenError> {
        self.with_session(|_, session, key| match algorithm {
            KeyAlgorithm::Rsa { .. } => session.sign(&Mechanism::Sha256RsaPkcs, key, data).map(Ok),
            _ => {
                let digest = ring::digest::digest(algorithm.digest().ring(), data);
                session
                    .sign(&Mechanism::Ecdsa, key, digest.as_ref())
                    .map(|raw| ecdsa_der(&raw))
            }
        })
    }

    /// A PKCS#11 error as what the admin can do about it.
    fn refused(&self, e: CkError) -> TokenError {
        match e {
            CkError::Pkcs11(
                RvError::TokenNotPresent
                | RvError::DeviceRemoved
                | RvError::TokenNotRecognized
                | RvError::SlotIdInvalid,
                _,
            ) => self.no_token(),
            CkError::Pkcs11(RvError::PinLocked, _) => TokenError::PinLocked,
            CkError::Pkcs11(RvError::PinExpired, _) => {
                TokenError::Refused("the token's PIN has expired: set a new one".into())
            }
            e => TokenError::Refused(e.to_string()),
        }
    }
}

fn digest(pin: &str) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, pin.as_bytes());
    let mut out = [0; 32];
    out.copy_from_slice(d.as_ref());
    out
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
    if raw.is_empty() || !raw.len().is_multiple_of(2) {
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
