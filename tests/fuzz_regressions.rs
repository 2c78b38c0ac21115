//! Inputs that fuzzing (fuzz/README.md) found to crash the gateway, hang it or be mishandled,
//! kept under `tests/corpus/fuzz/<target>/` with names that say what they are, and run here
//! through the same entry points as the fuzz target, with the property that once failed.
//! Fuzzing itself is not part of `cargo test`.

use std::path::PathBuf;

use congvan::smime::verify::{
    authentication_results_header, verify_message, TrustStore, VerifyOptions,
};
use time::OffsetDateTime;

/// Every file of `tests/corpus/fuzz/<target>/`, with its name.
fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus/fuzz")
        .join(target);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("directory entry").path();
            let bytes = std::fs::read(&path).expect("regression input");
            (path.display().to_string(), bytes)
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no inputs in {}", dir.display());
    out
}

/// The Authentication-Results field stays a valid header field (ASCII, lines of at most 998
/// octets, folded with CRLF + space) and the reason stays short, whatever the message
/// quotes: a Content-Type value of 2 KB once made a reason, and a field line, of any length.
#[test]
fn verification_reason_is_bounded() {
    for (name, raw) in inputs("verify") {
        let v = verify_message(
            &raw,
            &TrustStore::new(Vec::new()),
            &[],
            OffsetDateTime::now_utc(),
            VerifyOptions::default(),
        );
        let field = authentication_results_header("gw.example.gov.vn", &v);
        assert!(field.is_ascii(), "{name}: {field:?}");
        assert!(field.ends_with("\r\n"), "{name}");
        for line in field.trim_end_matches("\r\n").split("\r\n") {
            assert!(line.len() <= 998, "{name}: a line of {} octets", line.len());
        }
        let en = v.reason_en();
        assert!(
            en.chars().count() < 700,
            "{name}: reason of {} chars",
            en.len()
        );
        assert!(!en.chars().any(char::is_control), "{name}: {en:?}");
        assert!(v.reason_vi().chars().count() < 700, "{name}");
    }
}

/// The depth measure never says less than the tree mail-parser builds (the property every
/// recursive walker relies on); it may say more (an attached message with an empty body
/// counts as a level it does not become), which only refuses earlier.
#[test]
fn nesting_measure_is_never_shallower_than_the_parsed_tree() {
    use congvan::nesting::{self, MAX_DEPTH_CEILING};
    for (name, raw) in inputs("nesting") {
        let measured = nesting::check(&raw, MAX_DEPTH_CEILING).expect("within the ceiling");
        let message = nesting::parse(&raw, MAX_DEPTH_CEILING)
            .expect("within the ceiling")
            .expect("a message");
        let tree = nesting::tree_depth(&message);
        assert!(
            tree <= measured,
            "{name}: tree {tree} > measured {measured}"
        );
    }
}

/// A sealed PDF carries a seal every validator finds: a damaged file that lopdf still loads
/// (its cross-reference data rebuilt) was once "sealed" with an update whose /Prev and form
/// no reader followed to the seal. Such a file is now refused, never sealed unfindably.
#[test]
fn a_sealed_pdf_always_carries_a_findable_intact_seal() {
    use congvan::pdf::{check_pdf, seal_pdf, CheckContext, SealOptions};
    let dir = tempfile::tempdir().unwrap();
    congvan::dev::make_pki(dir.path()).unwrap();
    let identity = congvan::pki::identity::SigningIdentity::from_pem(
        &std::fs::read(dir.path().join("pki/dev.gov.vn.chain.pem")).unwrap(),
        &std::fs::read(dir.path().join("pki/dev.gov.vn.key.pem")).unwrap(),
    )
    .unwrap();
    let anchors = TrustStore::default();
    let ctx = CheckContext {
        anchors: &anchors,
        crls: &[],
        at: OffsetDateTime::now_utc(),
        opts: VerifyOptions::default(),
        authorised: None,
        max_depth: 50,
    };
    let opts = SealOptions {
        identity: &identity,
        at: OffsetDateTime::now_utc(),
        organisation: "UBND",
        seal_image: None,
        tsa: None,
    };
    for (name, pdf) in inputs("pdf") {
        let Ok(sealed) = seal_pdf(&pdf, &opts, None) else {
            continue;
        };
        let checks = check_pdf("sealed.pdf", &sealed, &ctx)
            .outcome
            .unwrap_or_else(|e| panic!("{name}: the sealed file does not load: {e}"));
        let last = checks
            .last()
            .unwrap_or_else(|| panic!("{name}: no seal found"));
        assert!(
            !last.problem.as_ref().is_some_and(|p| p.is_integrity()),
            "{name}: {:?}",
            last.problem
        );
    }
}
