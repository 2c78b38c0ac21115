//! `[secrecy]`: what happens to confidential documents (văn bản mật) per level, and the SMTP
//! reply (code, enhanced status, English and Vietnamese text) a refusal gives.

use serde::Deserialize;
use unicode_normalization::UnicodeNormalization;

use crate::policy::levels::Secrecy;

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
