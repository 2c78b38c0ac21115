//! The RFC 3161 time-stamping client that makes the organisation's PDF signature PAdES
//! baseline B-T (ETSI EN 319 142-1 §5.4, `[pdf] tsa_url`): a signature time-stamp over the
//! SignerInfo's signature value (RFC 3161 Appendix A), asked of the office's time-stamping
//! authority (TSA) over HTTP or HTTPS, and checked before it goes into the signature.
//!
//! The request is a TimeStampReq (version 1, the SHA-256 message imprint, a random 64-bit
//! nonce, certReq so that the token carries the TSA's certificate for validators). The
//! answer is read with our own `der` structures (x509-tsp is on der 0.7) and checked: the
//! status is granted; the token is SignedData of a TSTInfo whose signature verifies (by the
//! S/MIME verifier, [`crate::smime::verify::verify_encapsulated`]); the imprint and the
//! nonce are ours; the signer's certificate has the timeStamping key purpose and was valid
//! at the time it gives. The TSA's path to a trust anchor is not sought here: the TSA is
//! the one the policy names, and a validator judges its chain later.
//!
//! Network input is bounded: 10 s to connect, 30 s in all, 64 KB of answer.

use std::time::Duration;

use const_oid::ObjectIdentifier;
use der::asn1::{AnyRef, BitString, Int, OctetString, Uint};
use der::{Any, Decode, Encode, Sequence, Tag, Tagged};
use spki::AlgorithmIdentifierOwned;
use time::OffsetDateTime;
use x509_cert::ext::Extensions;

use crate::smime::verify::{verify_encapsulated, Failure};

/// How long connecting to the TSA may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the whole exchange may take (connect, send, answer).
pub const TOTAL_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest answer read: a token with a chain of a few certificates is under 10 KB.
pub const MAX_RESPONSE: usize = 64 * 1024;

/// id-aa-signatureTimeStampToken (RFC 3161 Appendix A): the unsigned attribute of the
/// SignerInfo that carries the token.
pub const ID_AA_SIGNATURE_TIME_STAMP_TOKEN: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.14");
/// id-ct-TSTInfo (RFC 3161 §2.4.2): the token's content type.
const ID_CT_TST_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");
/// id-sha256 (RFC 5754).
const ID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");

/// Why no time-stamp could be had. [`TsaError::is_temporary`] tells an outage (try again
/// later) from an answer that will not get better by asking again; the caller defers the
/// document either way, since it is never sent without the time-stamp its policy asks for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TsaError {
    /// No answer: name resolution, connection, TLS or a timeout.
    #[error("the time-stamping service {url} cannot be reached: {reason}")]
    Unreachable { url: String, reason: String },
    /// An HTTP status other than 2xx.
    #[error("the time-stamping service {url} answered HTTP {status}")]
    HttpStatus { url: String, status: u16 },
    /// The TSA answered with a status other than granted (RFC 3161 §2.4.2 PKIStatus).
    #[error("the time-stamping service refused (status {status}{}{})",
        if text.is_empty() { String::new() } else { format!(": {text}") },
        if fail_info.is_empty() { String::new() } else { format!("; failInfo {fail_info}") })]
    Refused {
        status: i64,
        /// The statusString, joined.
        text: String,
        /// The failInfo bits by name (badAlg, badRequest, ...), comma separated.
        fail_info: String,
    },
    /// The answer is not a TimeStampResp with a well-formed token.
    #[error("the time-stamping service's answer is malformed: {0}")]
    Malformed(String),
    /// The token is for another request: `what` (the message imprint or the nonce) differs.
    #[error("the time-stamp token does not match the request: its {what} differs")]
    Mismatch { what: &'static str },
    /// The token's signature does not verify.
    #[error("the time-stamp token's signature is not valid: {0}")]
    BadToken(Failure),
    /// The token's signer may not sign time-stamps, or not at the time it gives.
    #[error("the time-stamp token's signer cannot be used: {0}")]
    BadSigner(String),
}

impl TsaError {
    /// An outage that may pass: no connection, a timeout, HTTP 5xx or 429, or the TSA's own
    /// "waiting" or "system failure" status.
    pub fn is_temporary(&self) -> bool {
        match self {
            TsaError::Unreachable { .. } => true,
            TsaError::HttpStatus { status, .. } => *status >= 500 || *status == 429,
            // waiting (3); failInfo systemFailure (25) with rejection.
            TsaError::Refused {
                status, fail_info, ..
            } => *status == 3 || fail_info.contains("systemFailure"),
            _ => false,
        }
    }
}

/// A checked signature time-stamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeStamp {
    /// The TimeStampToken (ContentInfo, as the TSA sent it): the value of the
    /// id-aa-signatureTimeStampToken attribute.
    pub token: Vec<u8>,
    /// genTime: when the TSA says the signature existed.
    pub gen_time: OffsetDateTime,
    /// The token's serial number (hex).
    pub serial: String,
}

/// What was asked of the TSA: the SHA-256 of the signature value and the nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeStampRequest {
    pub imprint: [u8; 32],
    pub nonce: u64,
}

impl TimeStampRequest {
    /// A request for a signature time-stamp over `signature` (the SignerInfo's signature
    /// value), with a fresh random nonce.
    pub fn for_signature(signature: &[u8]) -> TimeStampRequest {
        let digest = ring::digest::digest(&ring::digest::SHA256, signature);
        let mut imprint = [0u8; 32];
        imprint.copy_from_slice(digest.as_ref());
        TimeStampRequest {
            imprint,
            nonce: rand::random(),
        }
    }

    /// The DER TimeStampReq (RFC 3161 §2.4.1): version 1, the imprint, the nonce, certReq.
    pub fn to_der(&self) -> Result<Vec<u8>, TsaError> {
        let bad = |e: der::Error| TsaError::Malformed(format!("encoding the request: {e}"));
        TimeStampReq {
            version: 1,
            message_imprint: MessageImprint {
                hash_algorithm: AlgorithmIdentifierOwned {
                    oid: ID_SHA256,
                    parameters: None,
                },
                hashed_message: OctetString::new(self.imprint.as_slice()).map_err(bad)?,
            },
            req_policy: None,
            nonce: Some(Uint::new(&self.nonce.to_be_bytes()).map_err(bad)?),
            cert_req: true,
            extensions: None,
        }
        .to_der()
        .map_err(bad)
    }
}

/// A time-stamping authority, by URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeStamper {
    url: String,
}

impl TimeStamper {
    /// The TSA at `url` (`http://` or `https://`; the policy check has seen to that).
    pub fn new(url: &str) -> TimeStamper {
        TimeStamper {
            url: url.to_string(),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// A checked signature time-stamp over `signature` (blocking: run it on a blocking
    /// thread).
    pub fn stamp(&self, signature: &[u8]) -> Result<TimeStamp, TsaError> {
        let request = TimeStampRequest::for_signature(signature);
        let answer = self.post(&request.to_der()?)?;
        parse_response(&answer, &request)
    }

    /// POSTs the query; the answer's body, at most [`MAX_RESPONSE`] bytes.
    fn post(&self, query: &[u8]) -> Result<Vec<u8>, TsaError> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_global(Some(TOTAL_TIMEOUT))
            .http_status_as_error(false)
            .user_agent(concat!("congvan/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        let unreachable = |e: ureq::Error| TsaError::Unreachable {
            url: self.url.clone(),
            reason: e.to_string(),
        };
        let mut response = agent
            .post(&self.url)
            .header("Content-Type", "application/timestamp-query")
            .header("Accept", "application/timestamp-reply")
            .send(query)
            .map_err(unreachable)?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            return Err(TsaError::HttpStatus {
                url: self.url.clone(),
                status,
            });
        }
        response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE as u64)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(_) => {
                    TsaError::Malformed(format!("the answer is larger than {MAX_RESPONSE} bytes"))
                }
                e => unreachable(e),
            })
    }
}

/// Reads and checks a TSA's answer to `request`: a granted TimeStampResp whose token is a
/// signed TSTInfo for this imprint and nonce, signed by a time-stamping certificate.
pub fn parse_response(answer: &[u8], request: &TimeStampRequest) -> Result<TimeStamp, TsaError> {
    let malformed = |what: &str, e: der::Error| TsaError::Malformed(format!("{what}: {e}"));
    let resp = TimeStampResp::from_der(answer)
        .or_else(|_| TimeStampResp::from_ber(answer))
        .map_err(|e| malformed("TimeStampResp", e))?;
    let status = &resp.status;
    // granted (0) or grantedWithMods (1).
    if !matches!(status.status, 0 | 1) {
        return Err(TsaError::Refused {
            status: status.status,
            text: status
                .status_string
                .as_ref()
                .map(|l| l.join("; "))
                .unwrap_or_default()
                .chars()
                .take(300)
                .map(|c| if c.is_control() { '?' } else { c })
                .collect(),
            fail_info: status
                .fail_info
                .as_ref()
                .map(fail_info_names)
                .unwrap_or_default(),
        });
    }
    let token = resp
        .time_stamp_token
        .ok_or_else(|| TsaError::Malformed("granted, but no token".into()))?
        .to_der()
        .map_err(|e| malformed("the token", e))?;
    let signed = match verify_encapsulated(&token) {
        Ok(s) => s,
        // A token that cannot be read at all is malformed; one that reads but does not
        // verify is a bad token.
        Err(Failure::Cms(e)) => return Err(TsaError::Malformed(format!("the token: {e}"))),
        Err(f) => return Err(TsaError::BadToken(f)),
    };
    if signed.content_type != ID_CT_TST_INFO.as_bytes() {
        return Err(TsaError::Malformed(
            "the token's content is not a TSTInfo".into(),
        ));
    }
    let info = TstInfo::from_der(&signed.content)
        .or_else(|_| TstInfo::from_ber(&signed.content))
        .map_err(|e| malformed("TSTInfo", e))?;
    let imprint = &info.message_imprint;
    if imprint.hash_algorithm.oid != ID_SHA256
        || imprint.hashed_message.as_bytes() != request.imprint.as_slice()
    {
        return Err(TsaError::Mismatch {
            what: "message imprint",
        });
    }
    let ours = request.nonce.to_be_bytes();
    match &info.nonce {
        Some(n) if unsigned_value(n.as_bytes()) == unsigned_value(&ours) => {}
        _ => return Err(TsaError::Mismatch { what: "nonce" }),
    }
    let gen_time = generalized_time(&info.gen_time)?;
    check_tsa_certificate(&signed.signer, gen_time)?;
    Ok(TimeStamp {
        token,
        gen_time,
        serial: hex::encode(info.serial_number.as_bytes()),
    })
}

/// The big-endian magnitude without leading zero octets (a positive INTEGER's content).
fn unsigned_value(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

/// The TSA's certificate: extended key usage id-kp-timeStamping (RFC 3161 §2.3) and valid at
/// `at` (the genTime it signed).
fn check_tsa_certificate(der: &[u8], at: OffsetDateTime) -> Result<(), TsaError> {
    use x509_parser::prelude::FromDer;
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(der)
        .map_err(|e| TsaError::BadSigner(format!("unreadable certificate: {e}")))?;
    match cert.extended_key_usage() {
        Ok(Some(eku)) if eku.value.time_stamping => {}
        _ => {
            return Err(TsaError::BadSigner(
                "the certificate lacks the timeStamping extended key usage".into(),
            ))
        }
    }
    let when = x509_parser::time::ASN1Time::from_timestamp(at.unix_timestamp())
        .map_err(|e| TsaError::BadSigner(format!("genTime: {e}")))?;
    if !cert.validity().is_valid_at(when) {
        return Err(TsaError::BadSigner(format!(
            "the certificate is not valid at the time it gives ({at})"
        )));
    }
    Ok(())
}

/// genTime (RFC 3161 §2.4.2): `YYYYMMDDhhmmss[.s...]Z`. Read by hand: der's
/// GeneralizedTime refuses the fractional seconds TSAs may write.
fn generalized_time(any: &Any) -> Result<OffsetDateTime, TsaError> {
    let bad = || TsaError::Malformed("genTime is not a GeneralizedTime in UTC".into());
    if any.tag() != Tag::GeneralizedTime {
        return Err(bad());
    }
    let text = std::str::from_utf8(any.value()).map_err(|_| bad())?;
    let body = text.strip_suffix('Z').ok_or_else(bad)?;
    let (whole, fraction) = match body.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (body, None),
    };
    if whole.len() != 14 || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| whole[r].parse::<u32>().map_err(|_| bad());
    let year = i32::try_from(num(0..4)?).map_err(|_| bad())?;
    let month =
        time::Month::try_from(u8::try_from(num(4..6)?).map_err(|_| bad())?).map_err(|_| bad())?;
    let date =
        time::Date::from_calendar_date(year, month, u8::try_from(num(6..8)?).map_err(|_| bad())?)
            .map_err(|_| bad())?;
    let mut nanos = 0u32;
    if let Some(f) = fraction {
        if f.is_empty() || f.len() > 9 || !f.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        nanos = f.parse::<u32>().map_err(|_| bad())? * 10u32.pow(9 - f.len() as u32);
    }
    let hms = |r| u8::try_from(num(r)?).map_err(|_| bad());
    let t = time::Time::from_hms_nano(hms(8..10)?, hms(10..12)?, hms(12..14)?, nanos)
        .map_err(|_| bad())?;
    Ok(time::PrimitiveDateTime::new(date, t).assume_utc())
}

/// PKIFailureInfo bits by name (RFC 3161 §2.4.2).
fn fail_info_names(bits: &BitString) -> String {
    const NAMES: [(usize, &str); 8] = [
        (0, "badAlg"),
        (2, "badRequest"),
        (5, "badDataFormat"),
        (14, "timeNotAvailable"),
        (15, "unacceptedPolicy"),
        (16, "unacceptedExtension"),
        (17, "addInfoNotAvailable"),
        (25, "systemFailure"),
    ];
    let set: Vec<usize> = bits
        .bits()
        .enumerate()
        .filter_map(|(i, b)| b.then_some(i))
        .collect();
    set.iter()
        .map(|i| {
            NAMES
                .iter()
                .find(|(n, _)| n == i)
                .map(|(_, name)| name.to_string())
                .unwrap_or_else(|| format!("bit{i}"))
        })
        .collect::<Vec<_>>()
        .join(",")
}

// ---------------------------------------------------------------------------------------------
// RFC 3161 structures
// ---------------------------------------------------------------------------------------------

#[derive(Sequence)]
struct MessageImprint {
    hash_algorithm: AlgorithmIdentifierOwned,
    hashed_message: OctetString,
}

#[derive(Sequence)]
struct TimeStampReq {
    version: u8,
    message_imprint: MessageImprint,
    #[asn1(optional = "true")]
    req_policy: Option<ObjectIdentifier>,
    #[asn1(optional = "true")]
    nonce: Option<Uint>,
    #[asn1(default = "Default::default")]
    cert_req: bool,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    extensions: Option<Extensions>,
}

#[derive(Sequence)]
struct PkiStatusInfo {
    status: i64,
    /// PKIFreeText: SEQUENCE OF UTF8String.
    #[asn1(optional = "true")]
    status_string: Option<Vec<String>>,
    #[asn1(optional = "true")]
    fail_info: Option<BitString>,
}

#[derive(Sequence)]
struct TimeStampResp<'a> {
    status: PkiStatusInfo,
    /// A ContentInfo; kept as the TSA wrote it.
    #[asn1(optional = "true")]
    time_stamp_token: Option<AnyRef<'a>>,
}

#[derive(Sequence)]
struct Accuracy {
    #[asn1(optional = "true")]
    seconds: Option<Int>,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    millis: Option<Int>,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    micros: Option<Int>,
}

#[derive(Sequence)]
struct TstInfo {
    version: i64,
    policy: ObjectIdentifier,
    message_imprint: MessageImprint,
    serial_number: Int,
    /// GeneralizedTime, possibly with fractional seconds (see [`generalized_time`]).
    gen_time: Any,
    #[asn1(optional = "true")]
    accuracy: Option<Accuracy>,
    #[asn1(default = "Default::default")]
    ordering: bool,
    #[asn1(optional = "true")]
    nonce: Option<Int>,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    tsa: Option<Any>,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    extensions: Option<Extensions>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_encoding_and_nonce_comparison() {
        let r = TimeStampRequest {
            imprint: [7; 32],
            nonce: 0x80,
        };
        let der = r.to_der().unwrap();
        // SEQUENCE { INTEGER 1, SEQUENCE { SEQUENCE { OID sha256 }, OCTET STRING }, INTEGER
        // 0x0080, BOOLEAN TRUE }
        assert_eq!(der[0], 0x30);
        assert!(
            der.ends_with(&[0x02, 0x02, 0x00, 0x80, 0x01, 0x01, 0xff]),
            "{der:02x?}"
        );
        assert_eq!(unsigned_value(&[0, 0, 0x80]), &[0x80]);
        assert_eq!(unsigned_value(&0u64.to_be_bytes()), unsigned_value(&[0]));
    }

    #[test]
    fn gen_time_with_and_without_fractions() {
        let t = |s: &str| generalized_time(&Any::new(Tag::GeneralizedTime, s.as_bytes()).unwrap());
        assert_eq!(
            t("20261128033000Z").unwrap(),
            time::macros::datetime!(2026-11-28 03:30:00 UTC)
        );
        assert_eq!(
            t("20261128033000.25Z").unwrap(),
            time::macros::datetime!(2026-11-28 03:30:00.25 UTC)
        );
        for bad in [
            "20261128033000",
            "2026112803300Z",
            "20261328033000Z",
            "20261128033000.Z",
        ] {
            assert!(t(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_refused_answer_says_why() {
        // TimeStampResp { PKIStatusInfo { rejection (2), { "unsupported algorithm" },
        // failInfo badAlg } }
        let text = b"unsupported algorithm";
        let mut info = vec![
            0x02,
            0x01,
            0x02,
            0x30,
            (text.len() + 2) as u8,
            0x0c,
            text.len() as u8,
        ];
        info.extend_from_slice(text);
        info.extend_from_slice(&[0x03, 0x02, 0x07, 0x80]);
        let mut status = vec![0x30, info.len() as u8];
        status.extend_from_slice(&info);
        let mut resp = vec![0x30, status.len() as u8];
        resp.extend_from_slice(&status);
        let req = TimeStampRequest {
            imprint: [0; 32],
            nonce: 1,
        };
        let e = parse_response(&resp, &req).unwrap_err();
        assert_eq!(
            e,
            TsaError::Refused {
                status: 2,
                text: "unsupported algorithm".into(),
                fail_info: "badAlg".into()
            }
        );
        assert!(!e.is_temporary());
        assert_eq!(
            e.to_string(),
            "the time-stamping service refused (status 2: unsupported algorithm; failInfo badAlg)"
        );
        assert!(matches!(
            parse_response(b"<html>busy</html>", &req),
            Err(TsaError::Malformed(_))
        ));
    }
}
