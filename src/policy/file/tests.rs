//! Tests of policy files: the shipped profiles, errors with line and key, incoming actions,
//! subject tags, whole-directory checks and reload.

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
