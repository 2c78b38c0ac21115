//! The decision at end of DATA: from a [`Classification`] and the moment of acceptance, which
//! rule fires, whether the message is accepted, its delivery lane and its dispatch deadline.
//!
//! Deadlines (SPEC "Policies"): the signing date is day 0 and the deadline is the end of the
//! Nth working day after it; without a signing date the day of acceptance (Asia/Ho_Chi_Minh)
//! is the signing date. Working hours matter only for same-working-day rules: accepted after
//! closing time or on a non-working day, the document must leave by the end of the next
//! working day.
//!
//! The document-number uniqueness check needs the database and is done by the caller
//! ([`super::records`]) after an accepting decision.

use time::{Date, OffsetDateTime};

use super::calendar::{vietnam_date, WorkingCalendar};
use super::classify::Classification;
use super::file::{DeadlineRule, LateAction, Policy, SecrecyAction};
use super::levels::{Secrecy, Urgency};
use super::number;

/// Which way the message goes: dispatch rules are for outgoing documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Văn bản đi: every rule applies.
    Outgoing,
    /// Văn bản đến: only the secrecy rules (when `apply_to_incoming`) and the lane.
    Incoming,
}

/// What the policy decided for one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The delivery lane (the queue orders by it, most urgent first).
    pub lane: Urgency,
    /// The dispatch deadline; none for incoming mail.
    pub deadline: Option<DispatchDeadline>,
    /// The rule that fired, e.g. `dispatch.thuong` or `secrecy.mat`.
    pub rule: String,
    pub action: Action,
    /// Already past its deadline when submitted.
    pub late: bool,
}

/// A dispatch deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatchDeadline {
    pub rule: DeadlineRule,
    /// The day the document must have left by.
    pub date: Date,
    /// The instant: the end of that working day (UTC+7), or the moment of acceptance for
    /// `immediate` rules.
    pub at: OffsetDateTime,
    /// The day counted from (day 0).
    pub from: Date,
    /// `from` is the document's signing date (otherwise the day of acceptance).
    pub from_signing_date: bool,
    /// Non-working days passed over, with their reasons.
    pub skipped: Vec<(Date, String)>,
}

/// Accept or refuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Accept,
    Refuse(Refusal),
}

/// A refusal at end of DATA: the SMTP reply, and the rule for the refusal record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: u16,
    pub status: String,
    pub text_en: String,
    pub text_vi: String,
    pub rule: String,
    /// The secrecy level, when the document was refused for it (a confidential document:
    /// the audit log records it as such).
    pub secrecy: Option<Secrecy>,
    /// What exactly was wrong, English then Vietnamese, when the rule's text is a general one
    /// (which PDF check failed): a reply line of its own, and the register's reason.
    pub detail: Option<String>,
}

impl Refusal {
    /// The English text with the rule, as SPEC writes it: `… (rule secrecy.mat)`.
    pub fn text_with_rule(&self) -> String {
        format!("{} (rule {})", self.text_en, self.rule)
    }

    /// The whole reply line without CRLF, e.g. for `policy explain`.
    pub fn reply_line(&self) -> String {
        format!(
            "{} {} {} / {}",
            self.code,
            self.status,
            self.text_with_rule(),
            self.text_vi
        )
    }

    fn new(code: u16, status: &str, en: String, vi: &str, rule: String) -> Refusal {
        Refusal {
            code,
            status: status.into(),
            text_en: en,
            text_vi: vi.into(),
            rule,
            secrecy: None,
            detail: None,
        }
    }
}

/// The refusal of a document number the office already issued this year (rule
/// `number.duplicate`); the check itself is in `crate::register::numbers::reserve_number`.
pub fn duplicate_refusal(number: &str, office: &str, year: i32) -> Refusal {
    Refusal::new(
        550,
        "5.7.1",
        format!(
            "document number {number} was already issued by {office} in {year}; \
             a resend needs the header X-Congvan-Resend: yes"
        ),
        "Số văn bản đã được cấp trong năm; gửi lại phải có X-Congvan-Resend: yes",
        "number.duplicate".into(),
    )
}

/// The refusal of an outgoing document whose PDF part `name` carries no valid signature of
/// a competent signer (rule `pdf.signer`, SPEC "Documents"), with what is wrong with it.
pub fn pdf_signer_refusal(name: &str, why_en: &str, why_vi: &str) -> Refusal {
    let name = name.replace(['"', '\r', '\n'], "");
    let mut r = Refusal::new(
        550,
        "5.7.1",
        format!("the PDF \"{name}\" carries no valid signature of a competent signer"),
        "",
        "pdf.signer".into(),
    );
    r.text_vi = format!("Tệp PDF \"{name}\" chưa có chữ ký số hợp lệ của người có thẩm quyền");
    r.detail = Some(format!("the PDF \"{name}\": {why_en} / {why_vi}"));
    r
}

/// The rule name of a dispatch rule, e.g. `dispatch.thuong-khan`.
pub fn dispatch_rule_name(u: Urgency) -> String {
    format!("dispatch.{}", u.ascii())
}

/// [`decide`] for an outgoing document.
pub fn deadline_for(policy: &Policy, c: &Classification, accepted_at: OffsetDateTime) -> Decision {
    decide(policy, c, accepted_at, Flow::Outgoing)
}

/// Applies the policy to a classified message accepted (end of DATA) at `accepted_at`.
/// Refusals, first that applies: secrecy; unreadable classification; number form; missing
/// attachment; late (when the policy refuses late documents).
pub fn decide(
    policy: &Policy,
    c: &Classification,
    accepted_at: OffsetDateTime,
    flow: Flow,
) -> Decision {
    let rules = &policy.rules;
    let dispatch = rules.dispatch.rule(c.urgency);
    let lane = dispatch.lane.unwrap_or(c.urgency);
    let mut decision = Decision {
        lane,
        deadline: None,
        rule: dispatch_rule_name(c.urgency),
        action: Action::Accept,
        late: false,
    };
    let refuse = |mut d: Decision, r: Refusal| {
        d.rule = r.rule.clone();
        d.action = Action::Refuse(r);
        d
    };

    if flow == Flow::Outgoing || rules.secrecy.apply_to_incoming {
        if let Some(rule) = rules.secrecy.rule(c.secrecy) {
            if rule.action == SecrecyAction::Refuse {
                let r = &rule.reply;
                return refuse(
                    decision,
                    Refusal {
                        code: r.code,
                        status: r.status.clone(),
                        text_en: r.text.clone(),
                        text_vi: r.text_vi.clone(),
                        rule: format!("secrecy.{}", c.secrecy.ascii()),
                        secrecy: Some(c.secrecy),
                        detail: None,
                    },
                );
            }
        }
    }
    if flow == Flow::Incoming {
        return decision;
    }

    if let Some(p) = c.problems.first() {
        return refuse(
            decision,
            Refusal::new(
                550,
                "5.6.0",
                format!("cannot classify the document: {}", p.message),
                crate::policy::rule_text::CLASSIFICATION,
                format!("classification.{}", p.field.as_str()),
            ),
        );
    }

    if let Some(n) = &c.number {
        if rules.number.check_form {
            if let Err(e) = number::check_form(n, rules.number.allow_year) {
                return refuse(
                    decision,
                    Refusal::new(
                        550,
                        "5.6.0",
                        format!("document number is not of the form 05/QĐ-UBND: {e}"),
                        crate::policy::rule_text::NUMBER_FORM,
                        "number.form".into(),
                    ),
                );
            }
        }
        if rules.require_attachment && c.attachments == 0 {
            return refuse(
                decision,
                Refusal::new(
                    550,
                    "5.6.0",
                    format!("numbered document {n} has no attachment"),
                    crate::policy::rule_text::ATTACHMENT_REQUIRED,
                    "attachment.required".into(),
                ),
            );
        }
    }

    let (deadline, late) = compute_deadline(
        &policy.calendar,
        dispatch.deadline,
        c.signed_date,
        accepted_at,
    );
    decision.late = late;
    if late && rules.dispatch.late == LateAction::Refuse {
        let r = Refusal::new(
            550,
            "5.7.1",
            format!("document is past its dispatch deadline ({})", deadline.date),
            crate::policy::rule_text::DISPATCH_LATE,
            "dispatch.late".into(),
        );
        decision.deadline = Some(deadline);
        return refuse(decision, r);
    }
    decision.deadline = Some(deadline);
    decision
}

/// The deadline of a rule for a document signed on `signed` (if known) and accepted at
/// `accepted_at`, and whether it was already late when accepted.
pub fn compute_deadline(
    cal: &WorkingCalendar,
    rule: DeadlineRule,
    signed: Option<Date>,
    accepted_at: OffsetDateTime,
) -> (DispatchDeadline, bool) {
    let accepted_day = vietnam_date(accepted_at);
    // Same-day rules run from acceptance; a document signed on an earlier day whose own
    // same-day deadline has passed was late before it got here.
    let late_for_same_day = |signed: Option<Date>| {
        signed.is_some_and(|s| {
            s < accepted_day
                && cal.end_of_working_day(cal.add_working_days(s, 0).date) < accepted_at
        })
    };
    match rule {
        DeadlineRule::WorkingDays(n) => {
            let from = signed.unwrap_or(accepted_day);
            let d = cal.add_working_days(from, n);
            let at = cal.end_of_working_day(d.date);
            (
                DispatchDeadline {
                    rule,
                    date: d.date,
                    at,
                    from,
                    from_signing_date: signed.is_some(),
                    skipped: d.skipped,
                },
                accepted_at > at,
            )
        }
        DeadlineRule::SameWorkingDay => {
            let date = cal.same_working_day_deadline(accepted_at);
            (
                DispatchDeadline {
                    rule,
                    date,
                    at: cal.end_of_working_day(date),
                    from: accepted_day,
                    from_signing_date: false,
                    skipped: non_working_between(cal, accepted_day, date),
                },
                late_for_same_day(signed),
            )
        }
        DeadlineRule::Immediate => (
            DispatchDeadline {
                rule,
                date: accepted_day,
                at: accepted_at,
                from: accepted_day,
                from_signing_date: false,
                skipped: Vec::new(),
            },
            late_for_same_day(signed),
        ),
    }
}

/// Non-working days from `first` (inclusive) to `last` (exclusive).
fn non_working_between(cal: &WorkingCalendar, first: Date, last: Date) -> Vec<(Date, String)> {
    let mut out = Vec::new();
    let mut day = first;
    while day < last {
        if let Some(reason) = cal.why_not_working(day) {
            out.push((day, reason));
        }
        match day.next_day() {
            Some(next) => day = next,
            None => break,
        }
    }
    out
}

impl Decision {
    /// The refusal, if the message is refused.
    pub fn refusal(&self) -> Option<&Refusal> {
        match &self.action {
            Action::Refuse(r) => Some(r),
            Action::Accept => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::calendar::YearOverrides;
    use crate::policy::classify::{classify, MessageFacts};
    use crate::policy::file::{parse_profile, Profile};
    use crate::policy::Secrecy;
    use std::path::Path;
    use time::macros::{date, datetime};

    fn policy(profile: &str) -> Policy {
        let text = match profile {
            "default" => include_str!("../../policies/default.toml"),
            _ => include_str!("../../policies/nd30-2020.toml"),
        };
        let rules = parse_profile(Path::new("p.toml"), text).unwrap();
        let y2026 = YearOverrides::parse(
            2026,
            include_str!("../../policies/calendar/2026.toml"),
            Path::new("2026.toml"),
        )
        .unwrap();
        Policy::from_profile(profile, rules, [y2026]).unwrap()
    }

    fn classified(urgency: Urgency, signed: Option<Date>) -> Classification {
        Classification {
            urgency,
            signed_date: signed,
            ..Classification::default()
        }
    }

    #[test]
    fn domain_vector_three_working_days_across_tet() {
        let p = policy("default");
        let d = deadline_for(
            &p,
            &classified(Urgency::Thuong, Some(date!(2026 - 02 - 13))),
            datetime!(2026-02-13 10:00 +07:00),
        );
        assert_eq!(d.action, Action::Accept);
        assert_eq!(d.rule, "dispatch.thuong");
        let dl = d.deadline.unwrap();
        assert_eq!(dl.date, date!(2026 - 02 - 25));
        assert_eq!(dl.at, datetime!(2026-02-25 17:00 +07:00));
        assert!(dl.from_signing_date);
        assert_eq!(dl.skipped.len(), 9);
        assert!(!d.late);
        // Decree 30: the next working day.
        let d = deadline_for(
            &policy("nd30-2020"),
            &classified(Urgency::Thuong, Some(date!(2026 - 02 - 13))),
            datetime!(2026-02-13 10:00 +07:00),
        );
        assert_eq!(d.deadline.unwrap().date, date!(2026 - 02 - 23));
    }

    #[test]
    fn without_a_signing_date_acceptance_day_counts() {
        let p = policy("default");
        // Accepted Friday 13 Feb 2026 at 23:30 local = 16:30 UTC.
        let d = deadline_for(
            &p,
            &classified(Urgency::Thuong, None),
            datetime!(2026-02-13 16:30 UTC),
        );
        let dl = d.deadline.unwrap();
        assert_eq!(dl.from, date!(2026 - 02 - 13));
        assert!(!dl.from_signing_date);
        assert_eq!(dl.date, date!(2026 - 02 - 25));
        // 00:30 local on Saturday 14 Feb is already the 14th in Vietnam.
        let d = deadline_for(
            &p,
            &classified(Urgency::Thuong, None),
            datetime!(2026-02-13 17:30 UTC),
        );
        assert_eq!(d.deadline.unwrap().from, date!(2026 - 02 - 14));
    }

    #[test]
    fn same_working_day_and_immediate() {
        let p = policy("default");
        let at = |t| deadline_for(&p, &classified(Urgency::Khan, None), t);
        // Before closing on a working day: today.
        assert_eq!(
            at(datetime!(2026-03-02 16:59 +07:00))
                .deadline
                .unwrap()
                .date,
            date!(2026 - 03 - 02)
        );
        // After closing: the next working day.
        assert_eq!(
            at(datetime!(2026-03-02 17:01 +07:00))
                .deadline
                .unwrap()
                .date,
            date!(2026 - 03 - 03)
        );
        // Friday evening before Tết: Monday 23 Feb, the skipped days listed.
        let d = at(datetime!(2026-02-13 18:00 +07:00));
        let dl = d.deadline.unwrap();
        assert_eq!(dl.date, date!(2026 - 02 - 23));
        assert_eq!(dl.skipped.first().map(|s| s.0), Some(date!(2026 - 02 - 14)));
        assert_eq!(d.rule, "dispatch.khan");
        assert_eq!(d.lane, Urgency::Khan);
        // Hỏa tốc: at once.
        let t = datetime!(2026-02-14 09:00 +07:00);
        let d = deadline_for(&p, &classified(Urgency::HoaToc, None), t);
        assert_eq!(d.deadline.unwrap().at, t);
    }

    #[test]
    fn late_documents() {
        let p = policy("default");
        let d = deadline_for(
            &p,
            &classified(Urgency::Thuong, Some(date!(2026 - 03 - 02))),
            datetime!(2026-03-06 09:00 +07:00),
        );
        assert!(d.late);
        assert_eq!(d.action, Action::Accept);
        assert_eq!(d.deadline.unwrap().date, date!(2026 - 03 - 05));
        // Khẩn signed Friday, sent Monday: late. Signed today, sent after hours: not late.
        let k = |signed, at| deadline_for(&p, &classified(Urgency::Khan, Some(signed)), at).late;
        assert!(k(date!(2026 - 03 - 06), datetime!(2026-03-09 08:00 +07:00)));
        assert!(!k(
            date!(2026 - 03 - 09),
            datetime!(2026-03-09 20:00 +07:00)
        ));
        // Signed on Saturday, sent Monday morning: Monday is its same working day.
        assert!(!k(
            date!(2026 - 03 - 07),
            datetime!(2026-03-09 08:00 +07:00)
        ));
        // The policy can refuse late documents.
        let mut strict = policy("default");
        strict.rules.dispatch.late = LateAction::Refuse;
        let d = deadline_for(
            &strict,
            &classified(Urgency::Thuong, Some(date!(2026 - 03 - 02))),
            datetime!(2026-03-06 09:00 +07:00),
        );
        assert_eq!(d.rule, "dispatch.late");
        assert_eq!(d.refusal().unwrap().code, 550);
    }

    #[test]
    fn confidential_documents_are_refused_with_the_spec_reply() {
        let p = policy("default");
        for (s, rule) in [
            (Secrecy::Mat, "secrecy.mat"),
            (Secrecy::ToiMat, "secrecy.toi-mat"),
            (Secrecy::TuyetMat, "secrecy.tuyet-mat"),
        ] {
            let c = Classification {
                secrecy: s,
                ..Classification::default()
            };
            let d = decide(&p, &c, datetime!(2026-03-02 09:00 +07:00), Flow::Incoming);
            let r = d.refusal().unwrap();
            assert_eq!(r.rule, rule);
            assert_eq!(d.rule, rule);
        }
        let c = Classification {
            secrecy: Secrecy::Mat,
            urgency: Urgency::HoaToc,
            ..Classification::default()
        };
        let d = deadline_for(&p, &c, datetime!(2026-03-02 09:00 +07:00));
        assert_eq!(
            d.refusal().unwrap().reply_line(),
            "550 5.7.1 confidential documents may not be sent by email (rule secrecy.mat) / Văn bản mật không được gửi qua thư điện tử"
        );
    }

    #[test]
    fn numbers_attachments_and_problems() {
        let mut p = policy("default");
        let at = datetime!(2026-03-02 09:00 +07:00);
        let with_number = |n: &str| Classification {
            number: Some(n.into()),
            ..Classification::default()
        };
        assert_eq!(
            deadline_for(&p, &with_number("05/QĐ-UBND"), at).action,
            Action::Accept
        );
        let d = deadline_for(&p, &with_number("5/QĐ-UBND"), at);
        assert_eq!(d.rule, "number.form");
        assert!(d.refusal().unwrap().text_en.contains("05/QĐ-UBND"));
        p.rules.require_attachment = true;
        assert_eq!(
            deadline_for(&p, &with_number("05/QĐ-UBND"), at).rule,
            "attachment.required"
        );
        let mut c = with_number("05/QĐ-UBND");
        c.attachments = 1;
        assert_eq!(deadline_for(&p, &c, at).action, Action::Accept);
        // Unreadable header: refused, the field named in the rule.
        let h = vec![("X-Congvan-Urgency".to_string(), "gấp".to_string())];
        let c = classify(
            &Profile::default().classification,
            &MessageFacts {
                headers: &h,
                ..MessageFacts::default()
            },
        );
        assert_eq!(deadline_for(&p, &c, at).rule, "classification.urgency");
        // Incoming mail is not refused for it.
        assert_eq!(decide(&p, &c, at, Flow::Incoming).action, Action::Accept);
    }

    #[test]
    fn lanes_come_from_the_policy() {
        let mut p = policy("default");
        p.rules.dispatch.hoa_toc_hen_gio.lane = Some(Urgency::HoaToc);
        let d = deadline_for(
            &p,
            &classified(Urgency::HoaTocHenGio, None),
            datetime!(2026-03-02 09:00 +07:00),
        );
        assert_eq!(d.lane, Urgency::HoaToc);
        assert_eq!(d.rule, "dispatch.hoa-toc-hen-gio");
    }
}
