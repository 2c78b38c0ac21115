//! The Subject's number and signing date (`[classification] subject_number`, in
//! src/policy/subject_number.rs), on any text, alone and through `classify` with the key on.
//! Checks: the matched text is part of the NFC Subject, within the scanned prefix, and starts
//! with the label; the number taken passes the number's form check; a date found is a
//! finding of the classifier, an impossible one is "not taken", never a refusal.
#![no_main]

use congvan::policy::classify::{classify, Field, MessageFacts};
use congvan::policy::file::ClassificationRules;
use congvan::policy::number;
use congvan::policy::subject_number::{find, SubjectDate, MAX_SCAN};
use libfuzzer_sys::fuzz_target;
use unicode_normalization::UnicodeNormalization;

fuzz_target!(|data: &[u8]| {
    let subject = String::from_utf8_lossy(data);
    let Some(found) = find(&subject) else {
        return;
    };
    let nfc: String = subject.nfc().collect();
    assert!(nfc.contains(&found.matched), "{:?} not in the Subject", found.matched);
    assert!(found.matched.chars().count() <= MAX_SCAN);
    let label: String = found.matched.chars().take(2).collect();
    assert_eq!(congvan::policy::levels::fold(&label), "so", "{:?}", found.matched);
    assert!(number::check_form(&found.number, true).is_ok(), "{:?}", found.number);

    let rules = ClassificationRules {
        subject_number: true,
        ..ClassificationRules::default()
    };
    let c = classify(
        &rules,
        &MessageFacts {
            subject: &subject,
            ..MessageFacts::default()
        },
    );
    assert_eq!(c.number.as_deref(), Some(found.number.as_str()));
    assert!(c.problems.iter().all(|p| p.field != Field::SignedDate && p.field != Field::Number));
    match found.date {
        SubjectDate::None => assert_eq!(c.signed_date, None),
        SubjectDate::Date(d) => assert_eq!(c.signed_date, Some(d)),
        SubjectDate::Invalid(_) => {
            assert_eq!(c.signed_date, None);
            assert_eq!(c.ignored.len(), 1);
        }
    }
});
