//! PKCS#11 URIs (RFC 7512) naming the office's key on a token:
//! `pkcs11:token=<label>;object=<label>[;id=%01][;type=private]`, as the admin gives it to
//! `cert import --pkcs11`. Only what selects a token and an object is kept; a PIN in the URI
//! (`pin-value`) is refused, since the URI is stored in the database and the PIN must never
//! be.

/// The longest URI read.
pub const MAX_URI_LEN: usize = 4096;

/// The parts of a PKCS#11 URI congvan uses: which token, which object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pkcs11Uri {
    /// `token`: the token label.
    pub token: Option<String>,
    /// `serial`: the token's serial number.
    pub serial: Option<String>,
    /// `slot-id`: the slot, when the admin names it.
    pub slot_id: Option<u64>,
    /// `object`: the key's label (CKA_LABEL).
    pub object: Option<String>,
    /// `id`: the key's CKA_ID bytes.
    pub id: Option<Vec<u8>>,
    /// `module-path`: the PKCS#11 module, when the URI names it.
    pub module_path: Option<String>,
}

/// Why a URI is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UriError {
    #[error("a PKCS#11 URI starts with \"pkcs11:\"")]
    Scheme,
    #[error("the PKCS#11 URI is longer than {MAX_URI_LEN} characters")]
    TooLong,
    #[error("the PKCS#11 URI attribute \"{0}\" has no value")]
    NoValue(String),
    #[error("the PKCS#11 URI attribute \"{0}\" is given twice")]
    Repeated(String),
    #[error("the PKCS#11 URI attribute \"{attribute}\" is badly percent-encoded")]
    Encoding { attribute: String },
    #[error("the PKCS#11 URI attribute \"{0}\" is not known (RFC 7512)")]
    Unknown(String),
    #[error("\"type={0}\": the seal is a private key (type=private)")]
    NotPrivate(String),
    #[error("a PIN may not be given in the URI (pin-value): the URI is stored; give --pin-file")]
    PinInUri,
    #[error("the PKCS#11 URI names no object: give object=<label> or id=<bytes>")]
    NoObject,
    #[error("slot-id \"{0}\" is not a number")]
    SlotId(String),
}

impl Pkcs11Uri {
    pub fn parse(uri: &str) -> Result<Pkcs11Uri, UriError> {
        if uri.len() > MAX_URI_LEN {
            return Err(UriError::TooLong);
        }
        let rest = uri
            .get(..7)
            .filter(|s| s.eq_ignore_ascii_case("pkcs11:"))
            .map(|_| &uri[7..])
            .ok_or(UriError::Scheme)?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut out = Pkcs11Uri::default();
        let mut seen: Vec<String> = Vec::new();
        let pairs = path
            .split(';')
            .chain(query.split('&'))
            .filter(|p| !p.is_empty());
        for pair in pairs {
            let (name, raw) = pair
                .split_once('=')
                .ok_or_else(|| UriError::NoValue(pair.to_string()))?;
            let name = name.to_ascii_lowercase();
            if seen.contains(&name) {
                return Err(UriError::Repeated(name));
            }
            seen.push(name.clone());
            let bytes = percent_decode(raw).ok_or_else(|| UriError::Encoding {
                attribute: name.clone(),
            })?;
            let text = || {
                String::from_utf8(bytes.clone()).map_err(|_| UriError::Encoding {
                    attribute: name.clone(),
                })
            };
            match name.as_str() {
                "token" => out.token = Some(text()?),
                "serial" => out.serial = Some(text()?),
                "object" => out.object = Some(text()?),
                "id" => out.id = Some(bytes.clone()),
                "module-path" => out.module_path = Some(text()?),
                "slot-id" => {
                    let t = text()?;
                    out.slot_id = Some(t.parse().map_err(|_| UriError::SlotId(t.clone()))?);
                }
                "type" => {
                    let t = text()?;
                    if t != "private" {
                        return Err(UriError::NotPrivate(t));
                    }
                }
                "pin-value" => return Err(UriError::PinInUri),
                // Selectors congvan does not need, and the places a PIN may be read from
                // (congvan reads it from --pin-file or the systemd credential).
                "manufacturer"
                | "model"
                | "library-manufacturer"
                | "library-description"
                | "library-version"
                | "slot-description"
                | "slot-manufacturer"
                | "pin-source"
                | "module-name" => {}
                n if n.starts_with("x-") => {}
                _ => return Err(UriError::Unknown(name)),
            }
        }
        if out.object.is_none() && out.id.is_none() {
            return Err(UriError::NoObject);
        }
        Ok(out)
    }
}

/// `%XX` sequences decoded; `None` for a truncated or non-hex escape.
fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_and_the_key_are_read() {
        let u = Pkcs11Uri::parse(
            "pkcs11:token=Con%20dau%20UBND;object=seal;id=%01%a0;type=private?module-path=/usr/lib/softhsm/libsofthsm2.so",
        )
        .unwrap();
        assert_eq!(u.token.as_deref(), Some("Con dau UBND"));
        assert_eq!(u.object.as_deref(), Some("seal"));
        assert_eq!(u.id, Some(vec![0x01, 0xa0]));
        assert_eq!(
            u.module_path.as_deref(),
            Some("/usr/lib/softhsm/libsofthsm2.so")
        );
        let u = Pkcs11Uri::parse("PKCS11:object=seal;slot-id=3;x-vendor=1").unwrap();
        assert_eq!(u.slot_id, Some(3));
    }

    #[test]
    fn what_is_refused() {
        for (uri, err) in [
            ("file:seal", UriError::Scheme),
            ("pkcs11:token=T", UriError::NoObject),
            (
                "pkcs11:object=a;object=b",
                UriError::Repeated("object".into()),
            ),
            (
                "pkcs11:object=a%4",
                UriError::Encoding {
                    attribute: "object".into(),
                },
            ),
            (
                "pkcs11:object=a%zz",
                UriError::Encoding {
                    attribute: "object".into(),
                },
            ),
            (
                "pkcs11:object=a;type=cert",
                UriError::NotPrivate("cert".into()),
            ),
            ("pkcs11:object=a?pin-value=1234", UriError::PinInUri),
            (
                "pkcs11:object=a;colour=red",
                UriError::Unknown("colour".into()),
            ),
            ("pkcs11:object", UriError::NoValue("object".into())),
            ("pkcs11:object=a;slot-id=x", UriError::SlotId("x".into())),
        ] {
            assert_eq!(Pkcs11Uri::parse(uri), Err(err), "{uri}");
        }
        assert_eq!(
            Pkcs11Uri::parse(&format!("pkcs11:object={}", "a".repeat(5000))),
            Err(UriError::TooLong)
        );
    }
}
