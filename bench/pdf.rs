//! PDF signatures on one core (issue 12's benchmark): a PDF of about 20 MB (a page with a
//! 20 MB uncompressed image, made here with lopdf), signed by a competent signer with pyHanko
//! (the test tool, once), then checked (`pdf::check_pdf`: parse, ByteRange, digest, CMS,
//! path) and sealed (`pdf::seal_pdf`: parse, incremental update, digest, PAdES signature,
//! read back) several times each; prints the median time of each and the peak memory the
//! process reached, next to the file's size. Needs python3 with pyHanko (tests/pdf/tool.py).
//!
//!     cargo run --release --example pdf [-- --mb 20 --runs 5]
//!     cargo run --release --example pdf -- --file SIGNED.pdf --trust ROOT.pem [--runs 50]

use std::process::Command;
use std::time::Instant;

use congvan::pdf::{check_pdf, seal_pdf, CheckContext, Placement, SealImage, SealOptions};
use congvan::pki::identity::SigningIdentity;
use congvan::pki::testpki::{self, KeySpec, LeafOptions};
use congvan::smime::verify::{TrustStore, VerifyOptions};
use lopdf::{dictionary, Document, Object, Stream};

fn vm_kb(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn arg(name: &str, default: usize) -> usize {
    std::env::args()
        .skip_while(|a| a != name)
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// A seal image: a red disc of 400×400 pixels on a transparent background, 40 mm wide.
fn seal_png() -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, 400, 400);
    enc.set_color(png::ColorType::Rgba);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_pixel_dims(Some(png::PixelDimensions {
        xppu: 10_000,
        yppu: 10_000,
        unit: png::Unit::Meter,
    }));
    let mut writer = enc.write_header().expect("png");
    let data: Vec<u8> = (0..400 * 400)
        .flat_map(|i: i32| {
            let (x, y) = (i % 400 - 200, i / 400 - 200);
            if x * x + y * y <= 200 * 200 {
                [220, 0, 0, 255]
            } else {
                [0; 4]
            }
        })
        .collect();
    writer.write_image_data(&data).expect("png");
    drop(writer);
    out
}

/// A one-page PDF holding an uncompressed RGB image of about `mb` MB.
fn big_pdf(mb: usize) -> Vec<u8> {
    let mut doc = Document::with_version("1.7");
    let pages_id = doc.new_object_id();
    let side = ((mb * 1024 * 1024 / 3) as f64).sqrt() as i64;
    let mut pixels = vec![0u8; (side * side * 3) as usize];
    let mut x: u32 = 0x9e37_79b9;
    for p in pixels.iter_mut() {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *p = x as u8;
    }
    let image = Stream::new(
        dictionary! {
            "Type" => "XObject", "Subtype" => "Image", "Width" => side, "Height" => side,
            "ColorSpace" => "DeviceRGB", "BitsPerComponent" => 8,
        },
        pixels,
    );
    let image_id = doc.add_object(image);
    let content = Stream::new(
        dictionary! {},
        b"q 500 0 0 500 50 200 cm /Im1 Do Q".to_vec(),
    );
    let content_id = doc.add_object(content);
    let page_id = doc.add_object(dictionary! {
        "Type" => "Page", "Parent" => pages_id, "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        "Contents" => content_id,
        "Resources" => dictionary! { "XObject" => dictionary! { "Im1" => image_id } },
    });
    doc.objects.insert(
        pages_id,
        Object::Dictionary(
            dictionary! { "Type" => "Pages", "Kids" => vec![page_id.into()], "Count" => 1 },
        ),
    );
    let catalog_id = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog_id);
    let mut out = Vec::new();
    doc.save_to(&mut out).expect("save");
    out
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let mb = arg("--mb", 20);
    let runs = arg("--runs", 5);
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let pki = testpki::generate(d, "bench.gov.vn").expect("test PKI (needs openssl)");
    let mut opts = LeafOptions::office("bench.gov.vn");
    opts.common_name = "Nguyen Van A".into();
    let signer = pki
        .issue("signer", KeySpec::Rsa(2048), &opts)
        .expect("signer");

    // `--file SIGNED.pdf --trust ROOT.pem`: time an existing signed file instead.
    let given: Option<(String, String)> = {
        let v: Vec<String> = std::env::args().collect();
        let get = |k: &str| {
            v.iter()
                .position(|a| a == k)
                .and_then(|i| v.get(i + 1))
                .cloned()
        };
        get("--file").zip(get("--trust"))
    };
    if given.is_none() {
        std::fs::write(d.join("plain.pdf"), big_pdf(mb)).expect("write");
    }
    let tool = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pdf/tool.py");
    let t = Instant::now();
    let st = if let Some((file, _)) = &given {
        std::fs::copy(file, d.join("signed.pdf")).expect("--file");
        std::process::ExitStatus::default()
    } else {
        Command::new("python3")
            .arg(tool)
            .args([
                "sign",
                d.join("plain.pdf").to_str().unwrap(),
                d.join("signed.pdf").to_str().unwrap(),
            ])
            .args([
                "--key",
                signer.key_pem.to_str().unwrap(),
                "--cert",
                signer.cert_pem.to_str().unwrap(),
            ])
            .args(["--chain", pki.intermediate.cert_pem.to_str().unwrap()])
            // Visible, so that the seal is visible too (the seal image over it).
            .args(["--field", "ChuKy", "--box", "330,80,530,150"])
            .status()
            .expect("python3")
    };
    assert!(st.success(), "pyHanko signing failed");
    let pyhanko_s = t.elapsed().as_secs_f64();
    let signed = std::fs::read(d.join("signed.pdf")).expect("signed");
    println!(
        "congvan PDF bench: {:.1} MB file (signed by pyHanko in {pyhanko_s:.2} s), {runs} runs, median",
        signed.len() as f64 / 1e6
    );

    let anchors = match &given {
        Some((_, root)) => {
            TrustStore::from_pems([std::fs::read_to_string(root).expect("--trust").as_str()])
        }
        None => TrustStore::new(vec![pki.root.cert_der.clone()]),
    };
    let ctx = CheckContext {
        anchors: &anchors,
        crls: &[],
        at: time::OffsetDateTime::now_utc(),
        opts: VerifyOptions::default(),
        authorised: None,
        max_depth: 50,
    };
    let identity = SigningIdentity::from_pem(
        &std::fs::read(&pki.p256.chain_pem).unwrap(),
        &std::fs::read(&pki.p256.key_pem).unwrap(),
    )
    .expect("seal");
    let image = SealImage::from_png(&seal_png(), None).expect("seal image");
    let seal_opts = SealOptions {
        identity: &identity,
        at: time::OffsetDateTime::now_utc(),
        organisation: "UBND bench",
        seal_image: Some(&image),
        tsa: None,
    };
    let rss_before = vm_kb("VmRSS");
    let mut checks = Vec::new();
    let mut seals = Vec::new();
    let mut sealed_len = 0;
    let mut visible = false;
    for _ in 0..runs {
        let t = Instant::now();
        let f = check_pdf("bench.pdf", &signed, &ctx);
        checks.push(t.elapsed().as_secs_f64());
        assert_eq!(f.refusal(), None, "the signer's signature counts");
        let over = f
            .outcome
            .as_ref()
            .ok()
            .and_then(|c| c.iter().find_map(|c| c.found.widget))
            .map(|(page, rect)| Placement { page, rect });
        visible = over.is_some();
        let t = Instant::now();
        let sealed = seal_pdf(&signed, &seal_opts, over).expect("seal");
        seals.push(t.elapsed().as_secs_f64());
        sealed_len = sealed.len();
    }
    let peak = vm_kb("VmHWM");
    println!("check (signer's signature):  {:.3} s", median(checks));
    println!(
        "seal (organisation's, P-256, {}): {:.3} s  ({} bytes added)",
        if visible {
            "visible, a 40 mm seal image of 400x400 px"
        } else {
            "invisible: the signer's signature has no widget"
        },
        median(seals),
        sealed_len - signed.len()
    );
    println!(
        "peak RSS {:.1} MB; {:.1} MB before the runs (the file and the PKI): check and seal added {:.1} MB, {:.2}x the file",
        peak as f64 / 1024.0,
        rss_before as f64 / 1024.0,
        (peak - rss_before) as f64 / 1024.0,
        (peak - rss_before) as f64 * 1024.0 / signed.len() as f64
    );
}
