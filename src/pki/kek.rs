//! Optional encryption of stored private keys with a key-encryption key (KEK).
//!
//! The KEK is read from `$CONGVAN_KEK_FILE`, or from the systemd credential `congvan-kek`
//! (`LoadCredential=congvan-kek:/etc/congvan/kek` puts it in `$CREDENTIALS_DIRECTORY`), so it
//! never lies on the data dir next to the keys it protects. The file holds 32 random bytes,
//! raw, hex or base64. When a KEK is present, `cert import` stores the key sealed with
//! AES-256-GCM (ring); loading a sealed key without the KEK fails with a clear error.

use std::path::PathBuf;

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

const LABEL: &str = "CONGVAN ENCRYPTED PRIVATE KEY";
const AAD: &[u8] = b"congvan key-at-rest v1";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KekError {
    #[error("cannot read the key-encryption key {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the key-encryption key {0} must hold 32 bytes (raw, 64 hex digits or base64)")]
    Length(PathBuf),
    #[error("this private key is encrypted: start with the key-encryption key (CONGVAN_KEK_FILE or the systemd credential congvan-kek)")]
    Missing,
    #[error("the private key could not be decrypted with this key-encryption key")]
    Decrypt,
    #[error("random generator failed")]
    Random,
}

/// Where the KEK is, if one is configured.
pub fn kek_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CONGVAN_KEK_FILE") {
        return Some(PathBuf::from(p));
    }
    let dir = std::env::var_os("CREDENTIALS_DIRECTORY")?;
    let p = PathBuf::from(dir).join("congvan-kek");
    p.exists().then_some(p)
}

/// The configured KEK, if any.
pub fn load_kek() -> Result<Option<[u8; 32]>, KekError> {
    let Some(path) = kek_path() else {
        return Ok(None);
    };
    let raw = std::fs::read(&path).map_err(|source| KekError::Read {
        path: path.clone(),
        source,
    })?;
    parse_kek(&raw).map(Some).ok_or(KekError::Length(path))
}

fn parse_kek(raw: &[u8]) -> Option<[u8; 32]> {
    if raw.len() == 32 {
        return raw.try_into().ok();
    }
    let text = std::str::from_utf8(raw).ok()?.trim();
    if let Ok(b) = hex::decode(text) {
        return b.try_into().ok();
    }
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()?
        .try_into()
        .ok()
}

pub fn is_sealed(key_file: &[u8]) -> bool {
    key_file.starts_with(format!("-----BEGIN {LABEL}-----").as_bytes())
}

/// Seals a key file's bytes: PEM of nonce || ciphertext || tag.
pub fn seal(kek: &[u8; 32], plain: &[u8]) -> Result<String, KekError> {
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, kek).map_err(|_| KekError::Random)?);
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| KekError::Random)?;
    let mut buf = plain.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(AAD),
        &mut buf,
    )
    .map_err(|_| KekError::Random)?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&buf);
    Ok(super::store::pem(LABEL, &out))
}

/// Opens a sealed key file, or returns the bytes unchanged when the file is not sealed.
pub fn open(kek: Option<&[u8; 32]>, file: &[u8]) -> Result<Vec<u8>, KekError> {
    if !is_sealed(file) {
        return Ok(file.to_vec());
    }
    let kek = kek.ok_or(KekError::Missing)?;
    let text = std::str::from_utf8(file).map_err(|_| KekError::Decrypt)?;
    let b64: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    use base64::Engine;
    let data = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| KekError::Decrypt)?;
    if data.len() < NONCE_LEN + 16 {
        return Err(KekError::Decrypt);
    }
    let (nonce, rest) = data.split_at(NONCE_LEN);
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, kek).map_err(|_| KekError::Decrypt)?);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| KekError::Decrypt)?;
    let mut buf = rest.to_vec();
    let plain = key
        .open_in_place(nonce, Aad::from(AAD), &mut buf)
        .map_err(|_| KekError::Decrypt)?;
    Ok(plain.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_open() {
        let kek = [7u8; 32];
        let plain = b"-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n";
        let sealed = seal(&kek, plain).unwrap();
        assert!(is_sealed(sealed.as_bytes()));
        assert!(!sealed.contains("abc"));
        assert_eq!(open(Some(&kek), sealed.as_bytes()).unwrap(), plain);
        assert!(matches!(
            open(Some(&[8u8; 32]), sealed.as_bytes()),
            Err(KekError::Decrypt)
        ));
        assert!(matches!(
            open(None, sealed.as_bytes()),
            Err(KekError::Missing)
        ));
        assert_eq!(open(None, plain).unwrap(), plain);
    }

    #[test]
    fn kek_formats() {
        assert_eq!(parse_kek(&[1u8; 32]), Some([1u8; 32]));
        assert_eq!(
            parse_kek(hex::encode([2u8; 32]).as_bytes()),
            Some([2u8; 32])
        );
        assert_eq!(parse_kek(b"short"), None);
    }
}
