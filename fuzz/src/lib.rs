//! Shared pieces of congvan's fuzz targets: a reader that hands input over in uneven chunks
//! (as a network does), a runtime to drive the async SMTP reader, the fixed trust store and
//! reception time of the verifier targets, and a throwaway seal for the signing target.
//!
//! Nothing here is part of the product; see README.md for the targets and how to run them.

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

use congvan::pki::identity::SigningIdentity;
use congvan::smime::verify::TrustStore;
use time::OffsetDateTime;
use tokio::io::{AsyncRead, ReadBuf};

/// The CA that signed the seed messages under `corpus/verify` and `corpus/cms`
/// (made by `make-seeds.sh`; its key was thrown away).
pub const SEED_CA_PEM: &str = include_str!("../seed-ca.pem");

/// The time of reception used by the verifier targets: inside the seed certificates'
/// validity (2025 to 2125), so that a seed reaches the end of verification.
pub fn reception_time() -> OffsetDateTime {
    // 2030-01-01T00:00:00Z
    OffsetDateTime::from_unix_timestamp(1_893_456_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Trust anchors: the seed CA, and the seal target's own root.
pub fn trust_store() -> &'static TrustStore {
    static STORE: OnceLock<TrustStore> = OnceLock::new();
    STORE.get_or_init(|| {
        let mut pems = vec![SEED_CA_PEM.to_string()];
        pems.push(seal().root_pem.clone());
        TrustStore::from_pems(pems.iter().map(String::as_str))
    })
}

/// A seal made at start-up: a P-256 root and a P-256 leaf for `vanthu@hadong.hanoi.gov.vn`.
pub struct Seal {
    pub identity: SigningIdentity,
    pub root_pem: String,
}

/// The seal of the `seal` target (generated once per process; no key is committed).
pub fn seal() -> &'static Seal {
    static SEAL: OnceLock<Seal> = OnceLock::new();
    SEAL.get_or_init(make_seal)
}

fn make_seal() -> Seal {
    use rcgen::{
        BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
        IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
    };
    let not_before = OffsetDateTime::from_unix_timestamp(1_735_689_600).expect("2025"); // 2025-01-01
    let not_after = OffsetDateTime::from_unix_timestamp(4_891_363_200).expect("2125"); // 2125-01-01

    let root_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("root key");
    let mut root = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "congvan fuzz root");
    root.distinguished_name = dn;
    root.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    root.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    root.not_before = not_before;
    root.not_after = not_after;
    let root_cert = root.self_signed(&root_key).expect("root certificate");
    let issuer = Issuer::new(root, root_key);

    let leaf_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("leaf key");
    let mut leaf = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "Văn thư UBND (fuzz)");
    leaf.distinguished_name = dn;
    leaf.subject_alt_names = vec![SanType::Rfc822Name(
        "vanthu@hadong.hanoi.gov.vn".try_into().expect("ia5"),
    )];
    leaf.is_ca = IsCa::ExplicitNoCa;
    leaf.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::ContentCommitment,
    ];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::EmailProtection];
    leaf.not_before = not_before;
    leaf.not_after = not_after;
    leaf.use_authority_key_identifier_extension = true;
    let leaf_cert = leaf
        .signed_by(&leaf_key, &issuer)
        .expect("leaf certificate");

    let chain = format!("{}{}", leaf_cert.pem(), root_cert.pem());
    let identity = SigningIdentity::from_pem(chain.as_bytes(), leaf_key.serialize_pem().as_bytes())
        .expect("seal identity");
    Seal {
        identity,
        root_pem: root_cert.pem(),
    }
}

/// Runs `f` on a current-thread runtime kept for the whole fuzzing process.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    thread_local! {
        static RT: RefCell<Option<tokio::runtime::Runtime>> = const { RefCell::new(None) };
    }
    RT.with(|rt| {
        let mut rt = rt.borrow_mut();
        let rt = rt.get_or_insert_with(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .expect("runtime")
        });
        rt.block_on(f)
    })
}

/// Chunk lengths derived from the input itself (a small xorshift seeded by its length and
/// first bytes), so every input also tries one way of being split across reads.
pub fn chunk_lengths(data: &[u8]) -> Vec<usize> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ data.len() as u64;
    for &b in data.iter().take(8) {
        x = x.rotate_left(8) ^ u64::from(b);
    }
    let mut out = Vec::new();
    let mut total = 0usize;
    while total < data.len() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // Mostly small reads (1..=16 bytes), sometimes large ones.
        let len = if x % 4 == 0 {
            (x >> 8) as usize % 4096 + 1
        } else {
            (x >> 8) as usize % 16 + 1
        };
        out.push(len);
        total += len;
    }
    out
}

/// An `AsyncRead` over fixed bytes that returns them in the given chunk lengths, then EOF.
pub struct ChunkReader<'a> {
    data: &'a [u8],
    chunks: std::vec::IntoIter<usize>,
}

impl<'a> ChunkReader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        let chunks = chunk_lengths(data).into_iter();
        ChunkReader { data, chunks }
    }
}

impl AsyncRead for ChunkReader<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let want = self.chunks.next().unwrap_or(self.data.len());
        let n = want.min(self.data.len()).min(buf.remaining());
        let (head, rest) = self.data.split_at(n);
        buf.put_slice(head);
        self.data = rest;
        Poll::Ready(Ok(()))
    }
}

/// The first run of four ASCII digits in `text` as a year (for calendar files), if any.
pub fn first_year(text: &str) -> Option<i32> {
    let b = text.as_bytes();
    b.windows(4)
        .position(|w| w.iter().all(u8::is_ascii_digit))
        .and_then(|p| text.get(p..p + 4))
        .and_then(|s| s.parse().ok())
}

/// Runs `f`, which reaches mail-parser, and gives `None` if it hit mail-parser 0.11's
/// `debug_assert!(false, "Invalid part ID, could not find multipart.")` (parsers/message.rs),
/// which input can reach. Release builds compile it out and mail-parser recovers; fuzz builds
/// have debug assertions on, so that one panic is skipped here (the input is dropped). Every
/// other panic still aborts through libFuzzer's hook and is reported.
pub fn past_mail_parser_debug_assert<R>(f: impl FnOnce() -> R) -> Option<R> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let fuzzer_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let known = info
                .location()
                .is_some_and(|l| l.file().contains("mail-parser"))
                && info
                    .payload()
                    .downcast_ref::<&str>()
                    .map(|s| s.contains("Invalid part ID"))
                    .or_else(|| {
                        info.payload()
                            .downcast_ref::<String>()
                            .map(|s| s.contains("Invalid part ID"))
                    })
                    .unwrap_or(false);
            if !known {
                fuzzer_hook(info);
            }
        }));
    });
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).ok()
}

/// A seal image for the visible seal of the `pdf` target: 64×64 pixels, half transparent,
/// 36 mm wide (made once per process).
pub fn seal_image() -> &'static congvan::pdf::SealImage {
    static IMAGE: OnceLock<congvan::pdf::SealImage> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let mut out = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut out, 64, 64);
            enc.set_color(png::ColorType::Rgba);
            enc.set_depth(png::BitDepth::Eight);
            let mut writer = enc.write_header().expect("png header");
            let data: Vec<u8> = (0..64 * 64)
                .flat_map(|i| if i % 2 == 0 { [200, 0, 0, 255] } else { [0; 4] })
                .collect();
            writer.write_image_data(&data).expect("png data");
        }
        congvan::pdf::SealImage::from_png(&out, Some(36.0)).expect("seal image")
    })
}
