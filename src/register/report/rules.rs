//! Rules named in Vietnamese for reports, as the refusals themselves word them: the secrecy
//! rules' texts from the policy in force (`[secrecy.mat] text_vi`, configurable),
//! `number.duplicate` and `pdf.signer` from their refusal constructors in `policy::deadline`,
//! the others from `policy::rule_text`, which the refusals use too.

use crate::policy::deadline::{duplicate_refusal, pdf_signer_refusal};
use crate::policy::file::SecrecyRules;
use crate::policy::levels::Secrecy;
use crate::policy::Urgency;

/// The Vietnamese name of `rule` (a register entry's rule code), or `None` for a code this
/// version does not know (a rule from a newer version, or a hostile value).
pub fn vietnamese(rule: &str, secrecy: &SecrecyRules) -> Option<String> {
    let (family, detail) = rule.split_once('.').unwrap_or((rule, ""));
    Some(match family {
        "secrecy" => secrecy.rule(Secrecy::parse(detail)?)?.reply.text_vi.clone(),
        "number" if detail == "duplicate" => duplicate_refusal("", "", 0).text_vi,
        "number" if detail == "form" => crate::policy::rule_text::NUMBER_FORM.into(),
        "pdf" if detail == "signer" => pdf_signer_refusal("", "", "").text_vi.replace(" \"\"", ""),
        "pdf" if detail == "incoming" => "Tệp PDF của văn bản đến không hợp lệ".into(),
        "classification" => crate::policy::rule_text::CLASSIFICATION.into(),
        "attachment" if detail == "required" => {
            crate::policy::rule_text::ATTACHMENT_REQUIRED.into()
        }
        "dispatch" if detail == "late" => crate::policy::rule_text::DISPATCH_LATE.into(),
        "dispatch" => format!(
            "Thời hạn gửi văn bản {}",
            Urgency::parse(detail)?.vietnamese().to_lowercase()
        ),
        "domains" if detail == "sender" => crate::policy::rule_text::SENDER_DOMAIN.into(),
        "domains" if detail == "recipient" => crate::policy::rule_text::RECIPIENT_DOMAIN.into(),
        "incoming" => format!(
            "Chữ ký S/MIME của văn bản đến: {}",
            smime_result_vietnamese(detail)?
        ),
        _ => return None,
    })
}

/// An S/MIME verification result (`pass`, `fail`, ...) in Vietnamese.
pub fn smime_result_vietnamese(result: &str) -> Option<&'static str> {
    Some(match result {
        "pass" => "hợp lệ",
        "fail" => "không hợp lệ",
        "none" => "không có chữ ký",
        "neutral" => "không xác định",
        "temperror" => "lỗi tạm thời khi kiểm tra",
        "permerror" => "lỗi khi kiểm tra",
        _ => return None,
    })
}

/// A PDF part's signature result (`pass`, `fail`, `none`) in Vietnamese.
pub fn pdf_result_vietnamese(result: &str) -> Option<&'static str> {
    Some(match result {
        "pass" => "chữ ký hợp lệ",
        "fail" => "chữ ký không hợp lệ",
        "none" => "không có chữ ký",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_read_as_their_refusals_do() {
        let s = SecrecyRules::default();
        assert_eq!(
            vietnamese("secrecy.mat", &s).as_deref(),
            Some("Văn bản mật không được gửi qua thư điện tử")
        );
        assert_eq!(
            vietnamese("pdf.signer", &s).as_deref(),
            Some("Tệp PDF chưa có chữ ký số hợp lệ của người có thẩm quyền")
        );
        assert_eq!(
            vietnamese("number.duplicate", &s).as_deref(),
            Some("Số văn bản đã được cấp trong năm; gửi lại phải có X-Congvan-Resend: yes")
        );
        assert_eq!(
            vietnamese("dispatch.hoa-toc", &s).as_deref(),
            Some("Thời hạn gửi văn bản hỏa tốc")
        );
        assert_eq!(vietnamese("secrecy.bogus", &s), None);
        assert_eq!(vietnamese("<script>", &s), None);
    }

    #[test]
    fn a_policy_s_own_secrecy_text_is_used() {
        let mut s = SecrecyRules::default();
        s.toi_mat.reply.text_vi = "Văn bản tối mật chỉ gửi bằng đường bưu chính".into();
        assert_eq!(
            vietnamese("secrecy.toi-mat", &s).as_deref(),
            Some("Văn bản tối mật chỉ gửi bằng đường bưu chính")
        );
    }
}
