//! The depth measure every message passes before anything walks it (src/nesting.rs):
//! `check` at a small and at the default limit, then `parse` at the ceiling. Checks that the
//! measure is consistent (a depth found under one limit is found, or refused, the same way
//! under another) and that mail-parser's tree is never deeper than `check` said: a deeper
//! tree would mean a message could reach a recursive walker unmeasured. (`check` may count
//! one level more than mail-parser builds, e.g. for an attached message with an empty body:
//! the safe direction; see tests/corpus/fuzz/nesting/.)
#![no_main]

use congvan::nesting::{self, TooDeep, MAX_DEPTH_CEILING};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = congvan_fuzz::past_mail_parser_debug_assert(|| measure(data));
});

fn measure(data: &[u8]) {
    let small = nesting::check(data, 5);
    let default = nesting::check(data, nesting::DEFAULT_MAX_DEPTH);
    match (small, default) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "the depth depends on the limit"),
        (Err(TooDeep { limit: 5 }), Ok(b)) => assert!(b > 5, "refused at 5 but only {b} deep"),
        (Err(_), Err(_)) => {}
        (s, d) => panic!("inconsistent: limit 5 gave {s:?}, limit 50 gave {d:?}"),
    }
    match nesting::parse(data, MAX_DEPTH_CEILING) {
        Ok(Some(message)) => {
            let tree = nesting::tree_depth(&message);
            let measured = nesting::check(data, MAX_DEPTH_CEILING).expect("parse passed check");
            assert!(
                tree <= measured,
                "mail-parser's tree ({tree}) is deeper than check measured ({measured})"
            );
            nesting::dismantle(message);
        }
        Ok(None) => {}
        Err(TooDeep { limit }) => assert_eq!(limit, MAX_DEPTH_CEILING),
    }
}
