//! Policy files (src/policy/file/): a profile parsed from text, its calendar rules built
//! into a working calendar, and the decision of src/policy/deadline.rs for every urgency and
//! secrecy level, both flows, at a few moments (a Monday, the eve of Tết, a Saturday night).
#![no_main]

use std::path::Path;

use congvan::policy::classify::Classification;
use congvan::policy::file::parse_profile;
use congvan::policy::{decide, Flow, Policy, Secrecy, Urgency};
use libfuzzer_sys::fuzz_target;
use time::macros::{date, datetime};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let profile = match parse_profile(Path::new("policies/fuzz.toml"), text) {
        Ok(p) => p,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let policy = match Policy::from_profile("fuzz", profile, []) {
        Ok(p) => p,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let _ = policy.domains().recipient_allowed("hadong.hanoi.gov.vn");
    let _ = policy.rules.incoming.action_for("bocongan.gov.vn");
    for at in [
        datetime!(2026-03-02 09:00 +7),
        datetime!(2026-02-13 16:59 +7),
        datetime!(2025-12-27 23:30 +7),
    ] {
        for u in 0..5 {
            for s in 0..4 {
                let c = Classification {
                    urgency: Urgency::from_rank(u),
                    secrecy: Secrecy::from_rank(s),
                    number: Some("12/UBND-VP".into()),
                    signed_date: Some(date!(2026 - 02 - 10)),
                    attachments: (u % 2) as usize,
                    ..Classification::default()
                };
                for flow in [Flow::Outgoing, Flow::Incoming] {
                    let d = decide(&policy, &c, at, flow);
                    if let Some(r) = d.refusal() {
                        let _ = format!("{r:?}");
                    }
                }
            }
        }
    }
});
