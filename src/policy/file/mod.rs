//! Policy files: the schema of a profile, loading and checking a policy directory, and the
//! [`Policy`] the daemon holds (and swaps on SIGHUP).
//!
//! A policy directory (`policy_dir`, shipped as `policies/`) holds:
//! * `active.toml`: one setting, `profile = "NAME"`, the profile in force;
//! * `NAME.toml`: one file per profile (`default.toml`, `nd30-2020.toml`, …); every key is
//!   optional and defaults to the district rule (the shipped `default.toml`);
//! * `calendar/YYYY.toml`: the announced working-day changes per year (see
//!   [`super::calendar`]), shared by every profile.
//!
//! Every file is checked, not only the active profile, so that switching profiles cannot
//! reveal a broken file later. Errors name the file, line, column and key.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use serde::de::{self, Deserializer};
use serde::Deserialize;
use toml::Spanned;
use unicode_normalization::UnicodeNormalization;

use super::calendar::{self, CalendarError, CalendarRules, WorkingCalendar};
use super::classify::tag_key;
use super::levels::{Secrecy, Urgency};
use super::DomainRules;

/// The file that selects the profile in force.
pub const ACTIVE_FILE: &str = "active.toml";
/// The per-year calendar files, under the policy directory.
pub const CALENDAR_DIR: &str = "calendar";

// ---------------------------------------------------------------------------------------------
// The policy in force
// ---------------------------------------------------------------------------------------------

/// A loaded, checked profile with its working-day calendar: what the daemon enforces.
#[derive(Debug)]
pub struct Policy {
    /// The profile's name (its file stem), e.g. `default`.
    pub profile: String,
    pub path: PathBuf,
    pub rules: Profile,
    pub calendar: WorkingCalendar,
}

impl Policy {
    /// A policy from rules already in memory (tests, `policy explain` on a scratch profile).
    pub fn from_profile(
        name: &str,
        rules: Profile,
        years: impl IntoIterator<Item = calendar::YearOverrides>,
    ) -> Result<Policy, CalendarError> {
        let calendar = WorkingCalendar::new(rules.calendar.clone(), years)?;
        Ok(Policy {
            profile: name.to_string(),
            path: PathBuf::from(format!("{name}.toml")),
            rules,
            calendar,
        })
    }

    /// The allowed sender and recipient domains.
    pub fn domains(&self) -> &DomainRules {
        &self.rules.domains
    }
}

/// The policy the daemon holds: read by every session, replaced as a whole on reload.
#[derive(Debug)]
pub struct SharedPolicy {
    dir: PathBuf,
    current: RwLock<Arc<Policy>>,
}

impl SharedPolicy {
    /// Loads and checks `dir`; the daemon refuses to start when this fails.
    pub fn load(dir: &Path) -> Result<SharedPolicy, PolicyErrors> {
        Ok(SharedPolicy::new(dir, load(dir)?))
    }

    pub fn new(dir: &Path, policy: Policy) -> SharedPolicy {
        SharedPolicy {
            dir: dir.to_path_buf(),
            current: RwLock::new(Arc::new(policy)),
        }
    }

    /// The policy in force now. A session takes it once per decision, so a reload never
    /// changes the rules halfway through a message.
    pub fn get(&self) -> Arc<Policy> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Reads the directory again; on any error the policy in force stays.
    pub fn reload(&self) -> Result<Arc<Policy>, PolicyErrors> {
        let fresh = Arc::new(load(&self.dir)?);
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = fresh.clone();
        Ok(fresh)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

// ---------------------------------------------------------------------------------------------
// The schema
// ---------------------------------------------------------------------------------------------

/// One profile file. Every key is optional; the defaults are the district rule (3 working
/// days), which the shipped `default.toml` spells out with comments.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Profile {
    /// Shown by `policy check` and `policy explain`.
    pub description: String,
    /// A numbered document must carry at least one attachment (the signed PDF).
    pub require_attachment: bool,
    pub classification: ClassificationRules,
    pub dispatch: DispatchRules,
    pub secrecy: SecrecyRules,
    pub domains: DomainRules,
    pub number: NumberRules,
    pub escalation: Escalation,
    pub calendar: CalendarRules,
    pub incoming: IncomingRules,
}

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
}

impl Default for ClassificationRules {
    fn default() -> Self {
        ClassificationRules {
            sources: vec![SourceKind::Header, SourceKind::Edxml, SourceKind::Subject],
            headers: HeaderNames::default(),
            subject_tags: SubjectTags::default(),
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

/// `[dispatch]`: the deadline and lane per urgency, and what happens to late documents.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DispatchRules {
    /// A document already past its deadline when submitted.
    pub late: LateAction,
    pub thuong: DispatchRule,
    pub khan: DispatchRule,
    #[serde(rename = "thuong-khan")]
    pub thuong_khan: DispatchRule,
    #[serde(rename = "hoa-toc")]
    pub hoa_toc: DispatchRule,
    #[serde(rename = "hoa-toc-hen-gio")]
    pub hoa_toc_hen_gio: DispatchRule,
}

impl Default for DispatchRules {
    /// The district procedure: 3 working days; khẩn the same working day; hỏa tốc at once.
    fn default() -> Self {
        let rule = |deadline| DispatchRule {
            deadline,
            lane: None,
        };
        DispatchRules {
            late: LateAction::Accept,
            thuong: rule(DeadlineRule::WorkingDays(3)),
            khan: rule(DeadlineRule::SameWorkingDay),
            thuong_khan: rule(DeadlineRule::SameWorkingDay),
            hoa_toc: rule(DeadlineRule::Immediate),
            hoa_toc_hen_gio: rule(DeadlineRule::Immediate),
        }
    }
}

impl DispatchRules {
    pub fn rule(&self, urgency: Urgency) -> &DispatchRule {
        match urgency {
            Urgency::Thuong => &self.thuong,
            Urgency::Khan => &self.khan,
            Urgency::ThuongKhan => &self.thuong_khan,
            Urgency::HoaToc => &self.hoa_toc,
            Urgency::HoaTocHenGio => &self.hoa_toc_hen_gio,
        }
    }
}

/// What to do with a document already past its deadline when it is submitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LateAction {
    /// Accept it, flagged late (logged, and reported by the register).
    #[default]
    Accept,
    /// Refuse it at end of DATA (rule `dispatch.late`).
    Refuse,
}

/// The rule for one urgency level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawDispatchRule")]
pub struct DispatchRule {
    pub deadline: DeadlineRule,
    /// The delivery lane; by default the level's own.
    pub lane: Option<Urgency>,
}

/// When a document must have left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadlineRule {
    /// At once: the deadline is the moment of acceptance.
    Immediate,
    /// By the end of the working day of acceptance; accepted after closing time or on a
    /// non-working day: by the end of the next working day.
    SameWorkingDay,
    /// By the end of the Nth working day after the signing date (day 0).
    WorkingDays(u32),
}

impl fmt::Display for DeadlineRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeadlineRule::Immediate => f.write_str("immediate"),
            DeadlineRule::SameWorkingDay => f.write_str("same working day"),
            DeadlineRule::WorkingDays(1) => f.write_str("1 working day after the signing date"),
            DeadlineRule::WorkingDays(n) => {
                write!(f, "{n} working days after the signing date")
            }
        }
    }
}

/// The longest deadline a rule may give, to catch typos.
const MAX_WORKING_DAYS: u32 = 60;

/// `working_days`: 1 to [`MAX_WORKING_DAYS`].
#[derive(Deserialize)]
#[serde(try_from = "u32")]
struct WorkingDays(u32);

impl TryFrom<u32> for WorkingDays {
    type Error = String;
    fn try_from(n: u32) -> Result<Self, String> {
        if (1..=MAX_WORKING_DAYS).contains(&n) {
            Ok(WorkingDays(n))
        } else {
            Err(format!(
                "{n}: must be 1 to {MAX_WORKING_DAYS} (for 0 use deadline = \"same-working-day\")"
            ))
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
enum DeadlineKind {
    Immediate,
    SameWorkingDay,
    WorkingDays,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDispatchRule {
    deadline: DeadlineKind,
    working_days: Option<WorkingDays>,
    lane: Option<UrgencyName>,
}

impl TryFrom<RawDispatchRule> for DispatchRule {
    type Error = String;
    fn try_from(raw: RawDispatchRule) -> Result<Self, String> {
        let deadline = match (raw.deadline, raw.working_days) {
            (DeadlineKind::WorkingDays, Some(WorkingDays(n))) => DeadlineRule::WorkingDays(n),
            (DeadlineKind::WorkingDays, None) => {
                return Err(
                    "deadline = \"working-days\" needs working_days = N (e.g. 3)".to_string(),
                )
            }
            (_, Some(_)) => {
                return Err("working_days applies only to deadline = \"working-days\"".to_string())
            }
            (DeadlineKind::Immediate, None) => DeadlineRule::Immediate,
            (DeadlineKind::SameWorkingDay, None) => DeadlineRule::SameWorkingDay,
        };
        Ok(DispatchRule {
            deadline,
            lane: raw.lane.map(|l| l.0),
        })
    }
}

/// `[secrecy]`: what to do with confidential documents (văn bản mật), per level.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecrecyRules {
    /// Apply the rules to mail from other offices too (so their content is not kept either).
    pub apply_to_incoming: bool,
    pub mat: SecrecyRule,
    #[serde(rename = "toi-mat")]
    pub toi_mat: SecrecyRule,
    #[serde(rename = "tuyet-mat")]
    pub tuyet_mat: SecrecyRule,
}

impl Default for SecrecyRules {
    fn default() -> Self {
        SecrecyRules {
            apply_to_incoming: true,
            mat: SecrecyRule::default(),
            toi_mat: SecrecyRule::default(),
            tuyet_mat: SecrecyRule::default(),
        }
    }
}

impl SecrecyRules {
    /// The rule for a confidential level; `None` for an ordinary document.
    pub fn rule(&self, secrecy: Secrecy) -> Option<&SecrecyRule> {
        match secrecy {
            Secrecy::Thuong => None,
            Secrecy::Mat => Some(&self.mat),
            Secrecy::ToiMat => Some(&self.toi_mat),
            Secrecy::TuyetMat => Some(&self.tuyet_mat),
        }
    }
}

/// One secrecy level's rule.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "RawSecrecyRule")]
pub struct SecrecyRule {
    pub action: SecrecyAction,
    /// The SMTP reply when refused; the rule name is added to the English text.
    pub reply: ReplyText,
}

impl Default for SecrecyRule {
    fn default() -> Self {
        SecrecyRule {
            action: SecrecyAction::Refuse,
            reply: ReplyText {
                code: 550,
                status: "5.7.1".into(),
                text: "confidential documents may not be sent by email".into(),
                text_vi: "Văn bản mật không được gửi qua thư điện tử".into(),
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SecrecyAction {
    /// Refuse at end of DATA; keep only metadata (no content anywhere).
    Refuse,
    /// Accept like any document (only for an office with an approved encrypted channel).
    Accept,
}

/// A refusal's SMTP reply: a 5xx code, an enhanced status code and the English and
/// Vietnamese texts (SPEC: every refusal has both).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyText {
    pub code: u16,
    pub status: String,
    pub text: String,
    pub text_vi: String,
}

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawSecrecyRule {
    action: SecrecyAction,
    code: ReplyCode,
    status: EnhancedStatus,
    text: EnglishLine,
    text_vi: VietnameseLine,
}

impl Default for RawSecrecyRule {
    fn default() -> Self {
        let d = SecrecyRule::default();
        RawSecrecyRule {
            action: d.action,
            code: ReplyCode(d.reply.code),
            status: EnhancedStatus(d.reply.status),
            text: EnglishLine(d.reply.text),
            text_vi: VietnameseLine(d.reply.text_vi),
        }
    }
}

impl From<RawSecrecyRule> for SecrecyRule {
    fn from(raw: RawSecrecyRule) -> Self {
        SecrecyRule {
            action: raw.action,
            reply: ReplyText {
                code: raw.code.0,
                status: raw.status.0,
                text: raw.text.0,
                text_vi: raw.text_vi.0,
            },
        }
    }
}

/// A refusal's reply code: 5xx only, or the client would retry forever.
#[derive(Deserialize)]
#[serde(try_from = "u16")]
struct ReplyCode(u16);

impl TryFrom<u16> for ReplyCode {
    type Error = String;
    fn try_from(code: u16) -> Result<Self, String> {
        if (500..=599).contains(&code) {
            Ok(ReplyCode(code))
        } else {
            Err(format!(
                "{code}: a refusal must be permanent (5xx), or the client retries forever"
            ))
        }
    }
}

/// An enhanced status code 5.X.Y (RFC 3463).
#[derive(Deserialize)]
#[serde(try_from = "String")]
struct EnhancedStatus(String);

impl TryFrom<String> for EnhancedStatus {
    type Error = String;
    fn try_from(status: String) -> Result<Self, String> {
        let parts: Vec<&str> = status.split('.').collect();
        let ok = parts.len() == 3
            && parts[0] == "5"
            && parts[1..]
                .iter()
                .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()));
        if ok {
            Ok(EnhancedStatus(status))
        } else {
            Err(format!(
                "{status:?} is not an enhanced status code 5.X.Y (RFC 3463)"
            ))
        }
    }
}

/// One line of printable ASCII: the English part of a reply.
#[derive(Deserialize)]
#[serde(try_from = "String")]
struct EnglishLine(String);

impl TryFrom<String> for EnglishLine {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        let text = text.trim().to_string();
        if text.is_empty() || !text.bytes().all(|b| (32..=126).contains(&b)) {
            return Err("must be one line of printable ASCII (the English text)".into());
        }
        Ok(EnglishLine(text))
    }
}

/// One line of NFC text: the Vietnamese part of a reply.
#[derive(Deserialize)]
#[serde(try_from = "String")]
struct VietnameseLine(String);

impl TryFrom<String> for VietnameseLine {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        let text = text.trim().to_string();
        if text.is_empty() || text.chars().any(char::is_control) {
            return Err("must be one line of text (the Vietnamese text)".into());
        }
        if text.nfc().collect::<String>() != text {
            return Err("the text is in decomposed Unicode (NFD); save the file as NFC".into());
        }
        Ok(VietnameseLine(text))
    }
}

/// `[number]`: the document number's form and uniqueness.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NumberRules {
    /// Refuse numbers not of the form `05/QĐ-UBND`.
    pub check_form: bool,
    /// Accept a year segment, as in `30/2020/NĐ-CP` (normative documents).
    pub allow_year: bool,
    /// Refuse a number already issued by the same office in the same year, unless the
    /// message says it is a resend (`X-Congvan-Resend: yes`).
    pub unique_per_year: bool,
}

impl Default for NumberRules {
    fn default() -> Self {
        NumberRules {
            check_form: true,
            allow_year: true,
            unique_per_year: true,
        }
    }
}

/// `[escalation]`: whom to tell, how long before a deadline, when a document has not left.
/// Checked here; acted on by the queue's deadline monitor.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Escalation {
    #[serde(deserialize_with = "deserialize_addresses")]
    pub notify: Vec<String>,
    pub before_hours: u32,
}

impl Default for Escalation {
    fn default() -> Self {
        Escalation {
            notify: Vec::new(),
            before_hours: 2,
        }
    }
}

fn deserialize_addresses<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let list = Vec::<String>::deserialize(d)?;
    for a in &list {
        let ok = a
            .rsplit_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && valid_domain(d));
        if !ok {
            return Err(de::Error::custom(format!("{a:?} is not an e-mail address")));
        }
    }
    Ok(list)
}

/// A domain or domain suffix: dot-separated labels of letters, digits and `-`.
pub(super) fn valid_domain(d: &str) -> bool {
    let d = d.trim_end_matches('.');
    !d.is_empty()
        && d.len() <= 253
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// `[incoming]`: S/MIME verification of mail from other offices, and what to do with a
/// message whose result is not `pass`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IncomingRules {
    /// Every issuer on a signer's path must have a current CRL; otherwise `temperror`.
    pub require_revocation_data: bool,
    /// A valid signature by the Sender address on a message whose From is another address
    /// (RFC 8550 §3 delegation): `allow` (pass, the result names both) or `fail`.
    pub sender_delegation: crate::smime::verify::SenderDelegation,
    /// The action for a non-pass result when no `[incoming.senders]` entry matches.
    pub action: IncomingAction,
    /// Per sender domain suffix (of the From address); the longest matching suffix wins.
    #[serde(deserialize_with = "deserialize_sender_actions")]
    pub senders: BTreeMap<String, IncomingAction>,
}

impl IncomingRules {
    /// The action for a non-pass result from `domain` (lower case).
    pub fn action_for(&self, domain: &str) -> IncomingAction {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        self.senders
            .iter()
            .filter(|(suffix, _)| {
                domain == **suffix
                    || domain
                        .strip_suffix(suffix.as_str())
                        .is_some_and(|p| p.ends_with('.'))
            })
            .max_by_key(|(suffix, _)| suffix.len())
            .map(|(_, a)| *a)
            .unwrap_or(self.action)
    }
}

/// What happens to an incoming message whose S/MIME result is not `pass`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IncomingAction {
    /// Deliver it with the Authentication-Results field (the office mail system decides).
    #[default]
    Deliver,
    /// Hold it in the queue until `congvan queue release`.
    Quarantine,
    /// Refuse it at end of DATA with the reason (550 5.7.5; 451 4.7.5 for temperror).
    Refuse,
}

fn deserialize_sender_actions<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, IncomingAction>, D::Error> {
    let raw = BTreeMap::<String, IncomingAction>::deserialize(d)?;
    let mut out = BTreeMap::new();
    for (domain, action) in raw {
        if !valid_domain(&domain) {
            return Err(de::Error::custom(format!(
                "{domain:?} is not a domain suffix"
            )));
        }
        out.insert(domain.trim_end_matches('.').to_ascii_lowercase(), action);
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActiveFile {
    profile: Spanned<String>,
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Why a policy directory cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    #[error("cannot read policy directory {}: {source}", path.display())]
    ReadDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read policy file {}: {source}", path.display())]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Not TOML, or not the profile format (unknown key, wrong type, bad value).
    #[error("{}: {message}", calendar::location(path, *line, *column, key.as_deref()))]
    Parse {
        path: PathBuf,
        line: Option<usize>,
        column: Option<usize>,
        key: Option<String>,
        message: String,
    },
    /// Well-formed but unusable (e.g. `active.toml` names a profile that does not exist).
    #[error("{}: {message}", calendar::location(path, *line, *column, Some(key)))]
    Invalid {
        path: PathBuf,
        line: Option<usize>,
        column: Option<usize>,
        key: String,
        message: String,
    },
    #[error("{}: missing; it names the profile in force, e.g. profile = \"default\" (copy the shipped policies/ directory)", path.display())]
    NoActive { path: PathBuf },
    #[error("{}: a profile file name is lower-case letters, digits, `-` and `.` (e.g. nd30-2020.toml)", path.display())]
    ProfileName { path: PathBuf },
    #[error(transparent)]
    Calendar(#[from] CalendarError),
}

/// Every error found in a policy directory, one per line when shown.
#[derive(Debug)]
pub struct PolicyErrors(pub Vec<PolicyError>);

impl fmt::Display for PolicyErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PolicyErrors {}

impl From<PolicyError> for PolicyErrors {
    fn from(e: PolicyError) -> Self {
        PolicyErrors(vec![e])
    }
}

fn parse_error(path: &Path, text: &str, e: &toml::de::Error) -> PolicyError {
    let span = e.span();
    let (line, column) = span
        .as_ref()
        .map(|s| calendar::line_column(text, s.start))
        .unzip();
    PolicyError::Parse {
        path: path.to_path_buf(),
        line,
        column,
        key: span.and_then(|s| calendar::key_at(text, s.start)),
        message: e.message().trim().to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------------

/// What `policy check` reports about a good directory.
#[derive(Debug)]
pub struct Checked {
    pub policy: Policy,
    /// Every profile in the directory, by name.
    pub profiles: Vec<String>,
    /// Years with an announcement file.
    pub years: Vec<i32>,
}

/// Loads the profile in force from `dir`, after checking every file there.
pub fn load(dir: &Path) -> Result<Policy, PolicyErrors> {
    check(dir).map(|c| c.policy)
}

/// Parses one profile file's text (`path` names it in errors).
pub fn parse_profile(path: &Path, text: &str) -> Result<Profile, PolicyError> {
    toml::from_str::<Profile>(text).map_err(|e| parse_error(path, text, &e))
}

/// Checks every file of a policy directory and loads the profile in force.
pub fn check(dir: &Path) -> Result<Checked, PolicyErrors> {
    let read_dir = |source| PolicyError::ReadDir {
        path: dir.to_path_buf(),
        source,
    };
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_dir)? {
        let path = entry.map_err(read_dir)?.path();
        if path.extension().and_then(|e| e.to_str()) == Some("toml") && path.is_file() {
            paths.push(path);
        }
    }
    paths.sort();

    let mut errors = Vec::new();
    let mut profiles: Vec<(String, PathBuf, Profile)> = Vec::new();
    let mut names = Vec::new();
    let mut active_path = None;
    for path in paths {
        if path.file_name().and_then(|n| n.to_str()) == Some(ACTIVE_FILE) {
            active_path = Some(path);
            continue;
        }
        let Some(name) = path
            .file_stem()
            .and_then(|s| s.to_str())
            .filter(|s| valid_profile_name(s))
            .map(str::to_string)
        else {
            errors.push(PolicyError::ProfileName { path });
            continue;
        };
        names.push(name.clone());
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(source) => {
                errors.push(PolicyError::ReadFile { path, source });
                continue;
            }
        };
        match parse_profile(&path, &text) {
            Ok(p) => profiles.push((name, path, p)),
            Err(e) => errors.push(e),
        }
    }

    // The calendar files: checked once, then built with each profile's rules.
    let calendar_dir = dir.join(CALENDAR_DIR);
    let has_calendar_dir = calendar_dir.is_dir();
    let mut years = Vec::new();
    if has_calendar_dir {
        match WorkingCalendar::load(CalendarRules::default(), &calendar_dir) {
            Ok(_) => years = calendar_years(&calendar_dir),
            Err(e) => errors.push(e.into()),
        }
    }
    let calendar_ok = errors
        .iter()
        .all(|e| !matches!(e, PolicyError::Calendar(_)));

    let active = match &active_path {
        None => {
            errors.push(PolicyError::NoActive {
                path: dir.join(ACTIVE_FILE),
            });
            None
        }
        Some(path) => match read_active(path) {
            Ok((name, span, text)) => {
                if names.contains(&name) {
                    Some(name)
                } else {
                    let (line, column) = calendar::line_column(&text, span.start);
                    errors.push(PolicyError::Invalid {
                        path: path.clone(),
                        line: Some(line),
                        column: Some(column),
                        key: "profile".into(),
                        message: format!(
                            "there is no profile {name:?} in {} (profiles: {})",
                            dir.display(),
                            if names.is_empty() {
                                "none".to_string()
                            } else {
                                names.join(", ")
                            }
                        ),
                    });
                    None
                }
            }
            Err(e) => {
                errors.push(e);
                None
            }
        },
    };

    let mut chosen = None;
    if calendar_ok {
        for (name, path, profile) in profiles {
            let calendar = if has_calendar_dir {
                WorkingCalendar::load(profile.calendar.clone(), &calendar_dir)
            } else {
                WorkingCalendar::new(profile.calendar.clone(), [])
            };
            match calendar {
                Ok(calendar) => {
                    if active.as_deref() == Some(name.as_str()) {
                        chosen = Some(Policy {
                            profile: name,
                            path,
                            rules: profile,
                            calendar,
                        });
                    }
                }
                Err(e) => errors.push(e.into()),
            }
        }
    }
    match chosen {
        Some(policy) if errors.is_empty() => Ok(Checked {
            policy,
            profiles: names,
            years,
        }),
        _ => {
            if errors.is_empty() {
                // Unreachable in practice: no active profile always leaves an error.
                errors.push(PolicyError::NoActive {
                    path: dir.join(ACTIVE_FILE),
                });
            }
            Err(PolicyErrors(errors))
        }
    }
}

fn valid_profile_name(s: &str) -> bool {
    s.bytes()
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

fn read_active(path: &Path) -> Result<(String, std::ops::Range<usize>, String), PolicyError> {
    let text = std::fs::read_to_string(path).map_err(|source| PolicyError::ReadFile {
        path: path.to_path_buf(),
        source,
    })?;
    let active: ActiveFile = toml::from_str(&text).map_err(|e| parse_error(path, &text, &e))?;
    let span = active.profile.span();
    Ok((active.profile.into_inner().trim().to_string(), span, text))
}

fn calendar_years(dir: &Path) -> Vec<i32> {
    let mut years: Vec<i32> = std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .filter_map(|e| {
                    let p = e.path();
                    (p.extension().and_then(|x| x.to_str()) == Some("toml"))
                        .then(|| p.file_stem()?.to_str()?.parse().ok())
                        .flatten()
                })
                .collect()
        })
        .unwrap_or_default();
    years.sort();
    years
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULT: &str = include_str!("../../../policies/default.toml");
    const ND30: &str = include_str!("../../../policies/nd30-2020.toml");

    fn parse(text: &str) -> Result<Profile, PolicyError> {
        parse_profile(Path::new("p.toml"), text)
    }

    #[test]
    fn shipped_default_is_the_built_in_default() {
        let p = parse(DEFAULT).unwrap();
        let want = Profile {
            description: p.description.clone(),
            ..Profile::default()
        };
        assert_eq!(p, want);
        assert_eq!(parse("").unwrap(), Profile::default());
    }

    #[test]
    fn shipped_nd30_is_next_working_day() {
        let p = parse(ND30).unwrap();
        assert_eq!(p.dispatch.thuong.deadline, DeadlineRule::WorkingDays(1));
        assert_eq!(p.dispatch.khan.deadline, DeadlineRule::SameWorkingDay);
        assert_eq!(p.dispatch.hoa_toc.deadline, DeadlineRule::Immediate);
        assert_eq!(p.secrecy, SecrecyRules::default());
    }

    /// (text, line, key, message fragment)
    #[test]
    fn errors_name_line_and_key() {
        let cases: &[(&str, usize, &str, &str)] = &[
            ("description = \"x\"\n\n[dispatch.thuong]\ndeadline = \"working-days\"\nworkdays = 3\n", 5, "dispatch.thuong.workdays", "unknown field `workdays`"),
            ("[dispatch.thuong]\ndeadline = \"working-days\"\nworking_days = 0\n", 3, "dispatch.thuong.working_days", "must be 1 to 60"),
            ("[dispatch.hoa-toc]\ndeadline = \"immediate\"\nworking_days = 2\n", 1, "dispatch.hoa-toc", "applies only to"),
            ("[dispatch.thuong]\ndeadline = \"working-days\"\n", 1, "dispatch.thuong", "needs working_days"),
            ("[dispatch.khan]\ndeadline = \"soon\"\n", 2, "dispatch.khan.deadline", "unknown variant"),
            ("[dispatch.khan]\ndeadline = \"immediate\"\nlane = \"gấp\"\n", 3, "dispatch.khan.lane", "not an urgency"),
            ("[dispatch]\nlate = \"maybe\"\n", 2, "dispatch.late", "unknown variant"),
            ("[secrecy.mat]\naction = \"refuse\"\ncode = 450\n", 3, "secrecy.mat.code", "permanent"),
            ("[secrecy.toi-mat]\nstatus = \"4.7.1\"\n", 2, "secrecy.toi-mat.status", "5.X.Y"),
            ("[secrecy.mat]\ntext_vi = \"Va\u{0306}n ba\u{0309}n\"\n", 2, "secrecy.mat.text_vi", "NFC"),
            ("[secrecy.mat]\ntext = \"Văn bản\"\n", 2, "secrecy.mat.text", "ASCII"),
            ("[domains]\nallowed_sender_domains = [\"gov vn\"]\n", 2, "domains.allowed_sender_domains", "not a domain"),
            ("[classification]\nsources = [\"header\", \"header\"]\n", 2, "classification.sources", "twice"),
            ("[classification]\nsources = [\"headers\"]\n", 2, "classification.sources", "unknown variant"),
            ("[classification.headers]\nurgency = \"X-Urgency:\"\n", 2, "classification.headers.urgency", "not a header field name"),
            ("[classification.subject_tags]\nsecrecy = { \"MAT\" = \"mat\", \"Mật\" = \"toi-mat\" }\n", 1, "classification.subject_tags", "same tag"),
            ("[classification.subject_tags]\nsecrecy = { \"[MẬT]\" = \"mat\" }\n", 1, "classification.subject_tags", "without its brackets"),
            ("[escalation]\nnotify = [\"chanhvp\"]\n", 2, "escalation.notify", "not an e-mail address"),
            ("[calendar]\ntime_zone = \"Asia/Bangkok\"\n", 2, "calendar.time_zone", "Asia/Ho_Chi_Minh"),
            ("require_attachment = \"yes\"\n", 1, "require_attachment", "invalid type"),
            ("[incoming]\nrequire_revocation_data = \"yes\"\n", 2, "incoming.require_revocation_data", "invalid type"),
            ("[incoming]\naction = \"drop\"\n", 2, "incoming.action", "unknown variant"),
            ("[incoming]\nsender_delegation = \"deny\"\n", 2, "incoming.sender_delegation", "unknown variant"),
            ("[incoming]\nsender_delegation = true\n", 2, "incoming.sender_delegation", "wanted string"),
            ("[incoming]\nrequire_crl = true\n", 2, "incoming.require_crl", "unknown field"),
            ("[incoming.senders]\n\"hanoi.gov.vn\" = \"bounce\"\n", 2, "incoming.senders.\"hanoi.gov.vn\"", "unknown variant"),
            ("[incoming.senders]\n\"gov vn\" = \"refuse\"\n", 1, "incoming.senders", "not a domain suffix"),
        ];
        for &(text, line, key, fragment) in cases {
            match parse(text) {
                Err(PolicyError::Parse {
                    line: l,
                    key: k,
                    message,
                    ..
                }) => {
                    assert_eq!(l, Some(line), "{text}: {message}");
                    assert_eq!(k.as_deref(), Some(key), "{text}: {message}");
                    assert!(message.contains(fragment), "{text}: {message}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn incoming_action_by_longest_suffix() {
        let p = parse("[incoming]\naction = \"deliver\"\n[incoming.senders]\n\"gov.vn\" = \"quarantine\"\n\"Bocongan.gov.vn\" = \"refuse\"\n").unwrap();
        let i = &p.incoming;
        assert_eq!(i.action_for("hanoi.gov.vn"), IncomingAction::Quarantine);
        assert_eq!(i.action_for("a.bocongan.gov.vn"), IncomingAction::Refuse);
        assert_eq!(i.action_for("notgov.vn"), IncomingAction::Deliver);
        assert_eq!(parse(ND30).unwrap().incoming, IncomingRules::default());
    }

    #[test]
    fn sender_delegation_allow_by_default_or_fail() {
        use crate::smime::verify::SenderDelegation;
        let p = parse("[incoming]\naction = \"deliver\"\n").unwrap();
        assert_eq!(p.incoming.sender_delegation, SenderDelegation::Allow);
        let p = parse("[incoming]\nsender_delegation = \"fail\"\n").unwrap();
        assert_eq!(p.incoming.sender_delegation, SenderDelegation::Fail);
        let p = parse("[incoming]\nsender_delegation = \"allow\"\n").unwrap();
        assert_eq!(p.incoming.sender_delegation, SenderDelegation::Allow);
    }

    #[test]
    fn subject_tags_can_be_replaced_per_kind() {
        let p = parse("[classification.subject_tags]\nsecrecy = {}\n").unwrap();
        assert!(p.classification.subject_tags.secrecy.is_empty());
        assert_eq!(p.classification.subject_tags.urgency.len(), 4);
    }

    /// A policy directory in a fresh temp dir (removed when the `TempDir` drops).
    struct Dir(PathBuf, #[allow(dead_code)] tempfile::TempDir);
    impl Dir {
        fn new(name: &str) -> Dir {
            let t = tempfile::Builder::new()
                .prefix(&format!("congvan-policy-{name}-"))
                .tempdir()
                .unwrap();
            std::fs::create_dir_all(t.path().join(CALENDAR_DIR)).unwrap();
            Dir(t.path().to_path_buf(), t)
        }
        fn write(&self, name: &str, text: &str) {
            std::fs::write(self.0.join(name), text).unwrap();
        }
    }

    #[test]
    fn directory_is_checked_as_a_whole() {
        let d = Dir::new("whole");
        d.write("active.toml", "profile = \"nd30-2020\"\n");
        d.write("default.toml", DEFAULT);
        d.write("nd30-2020.toml", ND30);
        d.write(
            "calendar/2026.toml",
            include_str!("../../../policies/calendar/2026.toml"),
        );
        let c = check(&d.0).unwrap();
        assert_eq!(c.policy.profile, "nd30-2020");
        assert_eq!(c.profiles, vec!["default", "nd30-2020"]);
        assert_eq!(c.years, vec![2026]);

        // A broken spare profile and an unknown active one: both reported.
        d.write(
            "spare.toml",
            "[dispatch.thuong]\ndeadline = \"working-days\"\nworking_days = 0\n",
        );
        d.write("active.toml", "\nprofile = \"nd30\"\n");
        let errs = check(&d.0).unwrap_err();
        let shown = errs.to_string();
        assert_eq!(errs.0.len(), 2, "{shown}");
        assert!(
            shown.contains("spare.toml:3:16 (key `dispatch.thuong.working_days`)"),
            "{shown}"
        );
        assert!(
            shown.contains("active.toml:2:11 (key `profile`): there is no profile \"nd30\""),
            "{shown}"
        );

        std::fs::remove_file(d.0.join("spare.toml")).unwrap();
        d.write("Bad Name.toml", "");
        d.write("calendar/2027.toml", "[[day_off]]\ndate = 2027-05-03\n");
        std::fs::remove_file(d.0.join("active.toml")).unwrap();
        let errs = check(&d.0).unwrap_err();
        assert!(errs
            .0
            .iter()
            .any(|e| matches!(e, PolicyError::ProfileName { .. })));
        assert!(errs
            .0
            .iter()
            .any(|e| matches!(e, PolicyError::NoActive { .. })));
        assert!(errs.0.iter().any(|e| matches!(e, PolicyError::Calendar(_))));
    }

    #[test]
    fn reload_keeps_the_old_policy_on_failure() {
        let d = Dir::new("reload");
        d.write("active.toml", "profile = \"default\"\n");
        d.write("default.toml", DEFAULT);
        d.write("nd30-2020.toml", ND30);
        let shared = SharedPolicy::load(&d.0).unwrap();
        assert_eq!(shared.get().profile, "default");
        d.write("active.toml", "profile = \"nd30-2020\"\n");
        assert_eq!(shared.reload().unwrap().profile, "nd30-2020");
        d.write("active.toml", "profile = 3\n");
        assert!(shared.reload().is_err());
        assert_eq!(shared.get().profile, "nd30-2020");
    }
}
