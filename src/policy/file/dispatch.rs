//! `[dispatch]`: the deadline and lane per urgency, and what happens to a late document.

use std::fmt;

use serde::Deserialize;

use super::UrgencyName;
use crate::policy::levels::Urgency;

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
