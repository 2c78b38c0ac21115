//! `[classification]`: where urgency, secrecy, the document number and the signing date are
//! read from (headers, subject tags, sources), and the level names a profile may use.

use std::collections::BTreeMap;

use serde::de::{self, Deserializer};
use serde::Deserialize;

use crate::policy::classify::tag_key;
use crate::policy::levels::{Secrecy, Urgency};

/// Where urgency, secrecy, document number and signing date are read from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClassificationRules {
    /// The sources that count, in order. For urgency and secrecy every listed source counts
    /// and the stricter level wins; for the number and the signing date the first source
    /// that gives one wins (a different value from a later source is logged).
    #[serde(deserialize_with = "deserialize_sources")]
    pub sources: Vec<SourceKind>,
    pub headers: HeaderNames,
    pub subject_tags: SubjectTags,
    /// Read the document number and signing date written in the Subject
    /// (`Số 26/CT-UBND ngày 13/02/2026 về việc ...`), for clerks whose mail program cannot
    /// set headers. Taken after every source in `sources`: a header or the edXML part wins.
    pub subject_number: bool,
}

impl Default for ClassificationRules {
    fn default() -> Self {
        ClassificationRules {
            sources: vec![SourceKind::Header, SourceKind::Edxml, SourceKind::Subject],
            headers: HeaderNames::default(),
            subject_tags: SubjectTags::default(),
            subject_number: false,
        }
    }
}

/// A kind of classification source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// `X-Congvan-*` headers (names in `[classification.headers]`).
    Header,
    /// The edXML part (QCVN 102:2016).
    Edxml,
    /// Bracketed tags in the Subject, e.g. `[KHẨN]`.
    Subject,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Header => "header",
            SourceKind::Edxml => "edxml",
            SourceKind::Subject => "subject",
        }
    }
}

fn deserialize_sources<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<SourceKind>, D::Error> {
    let list = Vec::<SourceKind>::deserialize(d)?;
    for (i, s) in list.iter().enumerate() {
        if list[..i].contains(s) {
            return Err(de::Error::custom(format!(
                "source \"{}\" is listed twice",
                s.as_str()
            )));
        }
    }
    Ok(list)
}

/// The header names classification reads (RFC 2047-decoded, NFC values).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HeaderNames {
    pub urgency: FieldName,
    pub secrecy: FieldName,
    pub number: FieldName,
    pub signed_date: FieldName,
    /// Says the message resends an already issued number (`yes`, `true`, `1`, `có`).
    pub resend: FieldName,
}

impl Default for HeaderNames {
    fn default() -> Self {
        let f = |s: &str| FieldName(s.to_string());
        HeaderNames {
            urgency: f("X-Congvan-Urgency"),
            secrecy: f("X-Congvan-Secrecy"),
            number: f("X-Congvan-Number"),
            signed_date: f("X-Congvan-Signed-Date"),
            resend: f("X-Congvan-Resend"),
        }
    }
}

/// A header field name (RFC 5322: printable ASCII without `:`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct FieldName(pub String);

impl TryFrom<String> for FieldName {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s.is_empty() || !s.bytes().all(|b| (33..=126).contains(&b) && b != b':') {
            return Err(format!("{s:?} is not a header field name"));
        }
        Ok(FieldName(s))
    }
}

impl FieldName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Subject tags: the text between `[` and `]`, matched ignoring case, diacritics and Unicode
/// normalisation form, and always as a whole (so `[TỐI MẬT]` is never `[MẬT]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawSubjectTags")]
pub struct SubjectTags {
    /// (tag as written in the policy, match key, level)
    pub urgency: Vec<(String, String, Urgency)>,
    pub secrecy: Vec<(String, String, Secrecy)>,
}

impl Default for SubjectTags {
    fn default() -> Self {
        let raw = RawSubjectTags {
            urgency: Some(default_urgency_tags()),
            secrecy: Some(default_secrecy_tags()),
        };
        SubjectTags::try_from(raw).unwrap_or(SubjectTags {
            urgency: Vec::new(),
            secrecy: Vec::new(),
        })
    }
}

fn default_urgency_tags() -> BTreeMap<String, UrgencyName> {
    [
        ("Khẩn", Urgency::Khan),
        ("Thượng khẩn", Urgency::ThuongKhan),
        ("Hỏa tốc", Urgency::HoaToc),
        ("Hỏa tốc hẹn giờ", Urgency::HoaTocHenGio),
    ]
    .into_iter()
    .map(|(t, u)| (t.to_string(), UrgencyName(u)))
    .collect()
}

fn default_secrecy_tags() -> BTreeMap<String, SecrecyName> {
    [
        ("Mật", Secrecy::Mat),
        ("Tối mật", Secrecy::ToiMat),
        ("Tuyệt mật", Secrecy::TuyetMat),
    ]
    .into_iter()
    .map(|(t, s)| (t.to_string(), SecrecyName(s)))
    .collect()
}

#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawSubjectTags {
    urgency: Option<BTreeMap<String, UrgencyName>>,
    secrecy: Option<BTreeMap<String, SecrecyName>>,
}

impl TryFrom<RawSubjectTags> for SubjectTags {
    type Error = String;
    fn try_from(raw: RawSubjectTags) -> Result<Self, String> {
        let urgency = raw.urgency.unwrap_or_else(default_urgency_tags);
        let secrecy = raw.secrecy.unwrap_or_else(default_secrecy_tags);
        // key -> (tag, level description), across both kinds.
        let mut seen: BTreeMap<String, (String, String)> = BTreeMap::new();
        let mut check = |tag: &str, level: String| -> Result<String, String> {
            if tag.contains(['[', ']']) {
                return Err(format!(
                    "subject tag {tag:?}: write the tag without its brackets"
                ));
            }
            let key = tag_key(tag);
            if key.is_empty() {
                return Err(format!("subject tag {tag:?} is empty"));
            }
            if let Some((other, other_level)) = seen.get(&key) {
                if *other_level != level {
                    return Err(format!(
                        "subject tags {other:?} ({other_level}) and {tag:?} ({level}) are the same \
                         tag once case and diacritics are ignored"
                    ));
                }
            }
            seen.insert(key.clone(), (tag.to_string(), level));
            Ok(key)
        };
        let mut out = SubjectTags {
            urgency: Vec::new(),
            secrecy: Vec::new(),
        };
        for (tag, UrgencyName(u)) in urgency {
            let key = check(&tag, format!("urgency {}", u.ascii()))?;
            out.urgency.push((tag, key, u));
        }
        for (tag, SecrecyName(s)) in secrecy {
            let key = check(&tag, format!("secrecy {}", s.ascii()))?;
            out.secrecy.push((tag, key, s));
        }
        Ok(out)
    }
}

/// An urgency level written in a policy file (ASCII form or Vietnamese words).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct UrgencyName(pub Urgency);

impl TryFrom<String> for UrgencyName {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Urgency::parse(&s).map(UrgencyName).ok_or_else(|| {
            format!("{s:?} is not an urgency (thuong, khan, thuong-khan, hoa-toc, hoa-toc-hen-gio)")
        })
    }
}

/// A secrecy level written in a policy file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct SecrecyName(pub Secrecy);

impl TryFrom<String> for SecrecyName {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Secrecy::parse(&s).map(SecrecyName).ok_or_else(|| {
            format!("{s:?} is not a secrecy level (thuong, mat, toi-mat, tuyet-mat)")
        })
    }
}
