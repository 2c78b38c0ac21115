//! The organisation's signature on a PDF (SPEC "Documents", sealing): an incremental update
//! that appends a signature field and its PAdES baseline B-B signature (ETSI EN 319 142-1:
//! `/SubFilter /ETSI.CAdES.detached`, signed attributes contentType, messageDigest and
//! signing-certificate-v2, the chain included, the time in `/M`), so that the bytes the
//! competent signer signed stay a prefix of the result and their signature stays valid.
//!
//! The update is written here, not by lopdf's writer: the objects it changes (the first
//! page's `/Annots`, the form's `/Fields`, the catalog when the form is new) and the new ones
//! (the field-widget, the signature dictionary) are framed by hand with lopdf's object
//! serialiser, then a cross-reference section of the same kind as the file's last one (a
//! table or a stream) with `/Prev`. With the office's seal image (`cert import --seal-image`)
//! and a visible signature of the competent signer, the seal shows over it
//! ([`super::appearance`]); otherwise the signature is invisible (a zero rectangle on the
//! first page).
//!
//! With a time-stamping authority (`[pdf] tsa_url`), the signature is PAdES baseline B-T:
//! once signed, its signature value is time-stamped ([`super::tsa`]) and the token goes into
//! the SignerInfo as the unsigned attribute id-aa-signatureTimeStampToken, inside the same
//! reserved `/Contents`.

use std::io::Write;

use lopdf::{Dictionary, Document, Object, ObjectId, StringFormat};
use time::OffsetDateTime;

use super::appearance::{appearance_objects, iso_time, seal_rect, Placement, SealImage};
use super::check::{check_pdf, load, CheckContext, PdfError, SignatureCheck};
use super::parts::{pdf_parts, replace_parts};
use super::tsa::{TimeStamp, TimeStamper, ID_AA_SIGNATURE_TIME_STAMP_TOKEN};
pub use crate::model::pdf::{PartSealed, SignatureSummary};
use crate::pki::identity::SigningIdentity;
use crate::smime::sign::cms::{
    signature_value, signed_data_with, with_unsigned_attribute, SignedAttrs,
};
use crate::smime::sign::SignError;

/// Bytes reserved for the CMS besides the certificate chain it carries (written as twice as
/// many hex digits): the signed attributes, an RSA-4096 signature and the structure take
/// under 1.5 KB. The reservation travels in every sealed file (and again, base64, in the
/// message), so it is sized to the identity's chain rather than a fixed 16 KB.
const RESERVED_BESIDES_CHAIN: usize = 4096;
/// Bytes reserved besides, with a TSA, for its token: the TSTInfo, the TSA's signature and
/// the TSA's certificate (certReq), 2 to 4 KB with one certificate. A TSA that sends its
/// whole chain may need more: the update is then written once more with the size needed.
const RESERVED_FOR_TOKEN: usize = 6144;
/// What a second writing adds to the size the first signature needed: the next signature
/// and token differ by a few bytes (ECDSA's length, the token's serial and time).
const RETRY_MARGIN: usize = 512;
/// The ByteRange as first written; overwritten in place, padded with spaces.
const BYTE_RANGE_PLACEHOLDER: &str = "[0 0000000000 0000000000 0000000000]";

/// What the organisation's signature is made with.
pub struct SealOptions<'a> {
    pub identity: &'a SigningIdentity,
    /// The signing time, written in `/M` (Vietnam time, `+07'00'`).
    pub at: OffsetDateTime,
    /// The organisation's name, written in `/Name`.
    pub organisation: &'a str,
    /// The office's seal image, shown over the competent signer's visible signature.
    pub seal_image: Option<&'a SealImage>,
    /// The time-stamping authority (`[pdf] tsa_url`): with one, the signature is PAdES B-T.
    pub tsa: Option<&'a TimeStamper>,
}

/// A sealed PDF and the time-stamp its signature carries, when it carries one.
#[derive(Debug, Clone)]
pub struct SealedPdf {
    pub bytes: Vec<u8>,
    pub time_stamp: Option<TimeStamp>,
}

/// Why a PDF could not be sealed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    #[error(transparent)]
    Pdf(#[from] PdfError),
    #[error("the PDF has no page to carry the signature field")]
    NoPage,
    #[error("the PDF's structure cannot take a signature: {0}")]
    Structure(String),
    #[error(transparent)]
    Sign(#[from] SignError),
    #[error("the signature ({len} bytes) does not fit the space reserved for it ({reserved})")]
    TooLarge { len: usize, reserved: usize },
    /// No time-stamp from the TSA: the document waits for one (never sealed without it).
    #[error(transparent)]
    TimeStamp(#[from] super::tsa::TsaError),
}

/// Seals `bytes` (a PDF) with the organisation's signature; the result begins with `bytes`.
/// The seal is visible when `opts` has a seal image and `over` says where the competent
/// signer's visible signature is.
pub fn seal_pdf(
    bytes: &[u8],
    opts: &SealOptions<'_>,
    over: Option<Placement>,
) -> Result<Vec<u8>, SealError> {
    seal_pdf_stamped(bytes, opts, over).map(|s| s.bytes)
}

/// [`seal_pdf`], also giving the time-stamp the signature carries (with `opts.tsa`).
pub fn seal_pdf_stamped(
    bytes: &[u8],
    opts: &SealOptions<'_>,
    over: Option<Placement>,
) -> Result<SealedPdf, SealError> {
    opts.identity
        .usability(opts.at)
        .map_err(|e| SealError::Sign(e.into()))?;
    let doc = load(bytes)?;
    // An update must name the file's own last cross-reference section in /Prev: a file
    // whose cross-reference data lopdf had to rebuild has none to name.
    if doc.xref_recovery.is_some() {
        return Err(SealError::Structure(
            "its cross-reference data is damaged".into(),
        ));
    }
    let visible = opts.seal_image.zip(over);
    let update = plan(bytes, &doc, visible, opts.at)?;
    let mut reserved = reserved_for(opts);
    let mut retried = false;
    let (written, time_stamp) = loop {
        let mut written = write_update(bytes, &doc, &update, opts, reserved)?;
        match sign_in_place(&mut written, opts) {
            Ok(stamp) => break (written, stamp),
            // The token is larger than foreseen (a TSA that sends its whole chain): the
            // update once more, with the room this signature needed.
            Err(SealError::TooLarge { len, .. }) if opts.tsa.is_some() && !retried => {
                retried = true;
                reserved = len + RETRY_MARGIN;
            }
            Err(e) => return Err(e),
        }
    };
    // The parsed file holds copies of its streams: free it before the sealed file is parsed
    // (peak memory stays about twice the file, not three times).
    drop(doc);
    read_back(&written.out, update.sig_id)?;
    Ok(SealedPdf {
        bytes: written.out,
        time_stamp,
    })
}

/// The objects an update adds or replaces, and the ids it allocated.
struct Update {
    changed: Vec<(ObjectId, Object)>,
    root_id: ObjectId,
    sig_id: ObjectId,
    /// The id of the cross-reference stream, when the file's last section is a stream.
    xref_stream_id: Option<ObjectId>,
    /// `/Size`: one more than the highest object number.
    size: u32,
}

/// What the organisation's signature changes: a new field-widget whose value is the
/// signature dictionary (visible over the competent signer's signature with the seal image
/// and its appearance objects, else invisible on the first page), the page's `/Annots`, and
/// the form's `/Fields` (a new form in the catalog when there is none).
fn plan(
    bytes: &[u8],
    doc: &Document,
    visible: Option<(&SealImage, Placement)>,
    at: OffsetDateTime,
) -> Result<Update, SealError> {
    let structure = |what: &str| SealError::Structure(what.to_string());
    let root_id = doc
        .trailer
        .get(b"Root")
        .and_then(Object::as_reference)
        .map_err(|_| structure("no document catalog"))?;
    let page_id = match visible {
        Some((_, over)) => over.page,
        None => doc.page_iter().next().ok_or(SealError::NoPage)?,
    };

    let mut next_id = doc.max_id + 1;
    let mut alloc = || {
        let id = (next_id, 0);
        next_id += 1;
        id
    };
    let sig_id = alloc();
    let field_id = alloc();
    let mut changed: Vec<(ObjectId, Object)> = Vec::new();

    let mut field = Dictionary::new();
    field.set("FT", Object::Name(b"Sig".to_vec()));
    field.set("Type", Object::Name(b"Annot".to_vec()));
    field.set("Subtype", Object::Name(b"Widget".to_vec()));
    match visible {
        Some((image, over)) => {
            let rect = seal_rect(image, &over, page_left(doc, page_id));
            let (form_id, objects) = appearance_objects(image, rect, at, &mut alloc);
            changed.extend(objects);
            field.set(
                "Rect",
                rect.iter().map(|&v| Object::Real(v)).collect::<Vec<_>>(),
            );
            field.set(
                "AP",
                Dictionary::from_iter([("N", Object::Reference(form_id))]),
            );
        }
        None => field.set("Rect", vec![0.into(), 0.into(), 0.into(), 0.into()]),
    }
    // Print and Locked.
    field.set("F", 132);
    field.set(
        "T",
        Object::String(field_name(doc).into_bytes(), StringFormat::Literal),
    );
    field.set("V", Object::Reference(sig_id));
    field.set("P", Object::Reference(page_id));
    changed.push((field_id, Object::Dictionary(field)));

    let mut page = doc
        .get_dictionary(page_id)
        .map_err(|_| structure("the first page is not a dictionary"))?
        .clone();
    match page.get(b"Annots") {
        Ok(Object::Reference(id)) => {
            let id = *id;
            let mut annots = array_object(doc, id, "the page's annotations")?;
            annots.push(Object::Reference(field_id));
            changed.push((id, Object::Array(annots)));
        }
        Ok(Object::Array(a)) => {
            let mut a = a.clone();
            a.push(Object::Reference(field_id));
            page.set("Annots", a);
            changed.push((page_id, Object::Dictionary(page)));
        }
        Err(_) => {
            page.set("Annots", vec![Object::Reference(field_id)]);
            changed.push((page_id, Object::Dictionary(page)));
        }
        Ok(_) => return Err(structure("the page's /Annots is not an array")),
    }

    let mut catalog = doc
        .get_dictionary(root_id)
        .map_err(|_| structure("the catalog is not a dictionary"))?
        .clone();
    match catalog.get(b"AcroForm") {
        Ok(Object::Reference(id)) => {
            let id = *id;
            let mut form = doc
                .get_dictionary(id)
                .map_err(|_| structure("the form is not a dictionary"))?
                .clone();
            add_field(doc, &mut form, field_id, &mut changed)?;
            changed.push((id, Object::Dictionary(form)));
        }
        Ok(Object::Dictionary(form)) => {
            let mut form = form.clone();
            add_field(doc, &mut form, field_id, &mut changed)?;
            catalog.set("AcroForm", form);
            changed.push((root_id, Object::Dictionary(catalog)));
        }
        Err(_) => {
            let form_id = alloc();
            let mut form = Dictionary::new();
            form.set("Fields", vec![Object::Reference(field_id)]);
            form.set("SigFlags", 3);
            changed.push((form_id, Object::Dictionary(form)));
            catalog.set("AcroForm", Object::Reference(form_id));
            changed.push((root_id, Object::Dictionary(catalog)));
        }
        Ok(_) => return Err(structure("the catalog's /AcroForm is not a dictionary")),
    }
    let xref_stream_id = uses_xref_stream(bytes, doc.xref_start).then(&mut alloc);
    Ok(Update {
        changed,
        root_id,
        sig_id,
        xref_stream_id,
        size: next_id,
    })
}

/// The file with its update written, the signature's place left empty.
struct Written {
    out: Vec<u8>,
    /// Where the ByteRange placeholder is.
    byte_range_at: usize,
    /// The `/Contents` hex string: from its `<` to after its `>`.
    contents: std::ops::Range<usize>,
}

/// Appends the update: the changed and new objects, the signature dictionary with room for
/// the CMS, the cross-reference section and the trailer with `/Prev`.
fn write_update(
    bytes: &[u8],
    doc: &Document,
    update: &Update,
    opts: &SealOptions<'_>,
    reserved: usize,
) -> Result<Written, SealError> {
    let mut out = Vec::with_capacity(bytes.len() + 2 * reserved + 4096);
    out.extend_from_slice(bytes);
    if !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    let mut offsets: Vec<(ObjectId, usize)> = Vec::new();
    for (id, object) in &update.changed {
        offsets.push((*id, out.len()));
        writeln!(out, "{} {} obj", id.0, id.1).ok();
        lopdf::Writer::write_object(&mut out, object)
            .map_err(|e| SealError::Structure(format!("writing object {}: {e}", id.0)))?;
        out.extend_from_slice(b"\nendobj\n");
    }
    offsets.push((update.sig_id, out.len()));
    write!(
        out,
        "{} 0 obj\n<< /Type /Sig /Filter /Adobe.PPKLite /SubFilter /ETSI.CAdES.detached /Name {} /M ({}) /ByteRange ",
        update.sig_id.0,
        utf16_hex(opts.organisation),
        pdf_date(opts.at)
    )
    .ok();
    let byte_range_at = out.len();
    out.extend_from_slice(BYTE_RANGE_PLACEHOLDER.as_bytes());
    out.extend_from_slice(b" /Contents ");
    let contents_at = out.len();
    out.push(b'<');
    out.resize(out.len() + 2 * reserved, b'0');
    out.push(b'>');
    let contents_end = out.len();
    out.extend_from_slice(b" >>\nendobj\n");

    let mut trailer = Dictionary::new();
    trailer.set("Size", i64::from(update.size));
    trailer.set("Root", Object::Reference(update.root_id));
    for key in [&b"Info"[..], b"ID"] {
        if let Ok(v) = doc.trailer.get(key) {
            trailer.set(key, v.clone());
        }
    }
    trailer.set("Prev", doc.xref_start as i64);
    let startxref = match update.xref_stream_id {
        Some(id) => write_xref_stream(&mut out, id, &mut offsets, trailer)?,
        None => write_xref_table(&mut out, &mut offsets, &trailer)?,
    };
    write!(out, "startxref\n{startxref}\n%%EOF\n").ok();
    Ok(Written {
        out,
        byte_range_at,
        contents: contents_at..contents_end,
    })
}

/// The bytes to reserve for the CMS of the identity's signature, and its token with a TSA.
fn reserved_for(opts: &SealOptions<'_>) -> usize {
    let chain = opts
        .identity
        .chain_der()
        .iter()
        .map(Vec::len)
        .sum::<usize>();
    chain + RESERVED_BESIDES_CHAIN + opts.tsa.map_or(0, |_| RESERVED_FOR_TOKEN)
}

/// Fills in the ByteRange, then the CMS over it (PAdES signed attributes), time-stamped
/// when there is a TSA; the time-stamp, if any.
fn sign_in_place(w: &mut Written, opts: &SealOptions<'_>) -> Result<Option<TimeStamp>, SealError> {
    let identity: &SigningIdentity = opts.identity;
    let (a, b) = (w.contents.start, w.contents.end);
    let c = w.out.len() - b;
    let range = format!("[0 {a} {b} {c}]");
    let slot = &mut w.out[w.byte_range_at..w.byte_range_at + BYTE_RANGE_PLACEHOLDER.len()];
    slot.fill(b' ');
    slot[..range.len()].copy_from_slice(range.as_bytes());

    let algorithm = identity.algorithm();
    let mut ctx = ring::digest::Context::new(algorithm.digest().ring());
    ctx.update(&w.out[..a]);
    ctx.update(&w.out[b..]);
    let digest = ctx.finish();
    let mut cms = signed_data_with(
        identity,
        algorithm,
        digest.as_ref(),
        SignedAttrs::Pades,
        None,
    )?;
    let mut stamp = None;
    if let Some(tsa) = opts.tsa {
        let t = tsa.stamp(&signature_value(&cms)?)?;
        cms = with_unsigned_attribute(&cms, ID_AA_SIGNATURE_TIME_STAMP_TOKEN, &t.token)?;
        stamp = Some(t);
    }
    let reserved = (w.contents.len() - 2) / 2;
    if cms.len() > reserved {
        return Err(SealError::TooLarge {
            len: cms.len(),
            reserved,
        });
    }
    let hex = hex::encode_upper(&cms);
    w.out[a + 1..a + 1 + hex.len()].copy_from_slice(hex.as_bytes());
    Ok(stamp)
}

/// The sealed file read as a validator will: the signature dictionary is found through the
/// form and its ByteRange covers the whole file. A file whose structure lopdf read in a way
/// the update does not fit (found by fuzzing: a damaged file that still loads) is refused
/// here rather than sent with a seal no validator finds.
fn read_back(out: &[u8], sig_id: ObjectId) -> Result<(), SealError> {
    let back = load(out)?;
    let found = super::signature::find_signatures(&back, 50)
        .into_iter()
        .find(|s| s.object == sig_id)
        .ok_or_else(|| SealError::Structure("the seal is not found in the sealed file".into()))?;
    match super::signature::check_byte_range(out, &back, &found) {
        Ok(end) if end == out.len() => Ok(()),
        Ok(_) => Err(SealError::Structure(
            "the seal does not cover the sealed file".into(),
        )),
        Err(e) => Err(SealError::Structure(format!("the sealed file: {e}"))),
    }
}

impl SignatureSummary {
    pub fn of(c: &SignatureCheck) -> SignatureSummary {
        SignatureSummary {
            field: c.found.field.clone(),
            signer: c
                .signer
                .as_ref()
                .map(|s| s.display_name().to_string())
                .or_else(|| c.found.name.clone())
                .unwrap_or_default(),
            serial: c
                .signer
                .as_ref()
                .map(|s| s.serial.clone())
                .unwrap_or_default(),
            time: c.found.time.clone(),
            result: match &c.problem {
                None => "pass".into(),
                Some(p) => format!("fail: {p}"),
            },
            time_stamp: None,
        }
    }
}

/// Seals every PDF part of `raw` that carries a valid signature of a competent signer (as
/// `ctx` judges it); a part without one is left as it is, with the reason (the records office
/// seals only what the competent person signed). Returns the message with the sealed parts
/// and what was done to each PDF part; an error names the part that could not be sealed.
pub fn seal_message(
    raw: &[u8],
    opts: &SealOptions<'_>,
    ctx: &CheckContext<'_>,
) -> Result<(Vec<u8>, Vec<PartSealed>), (String, SealError)> {
    let parts = pdf_parts(raw);
    if parts.is_empty() {
        return Ok((raw.to_vec(), Vec::new()));
    }
    let mut sealed_bytes: Vec<Vec<u8>> = Vec::new();
    let mut which = Vec::new();
    let mut report = Vec::with_capacity(parts.len());
    for (i, part) in parts.iter().enumerate() {
        let finding = check_pdf(&part.name, &part.bytes, ctx);
        let mut signatures: Vec<SignatureSummary> = finding
            .outcome
            .as_ref()
            .map(|checks| checks.iter().map(SignatureSummary::of).collect())
            .unwrap_or_default();
        if let Some((en, _)) = finding.refusal() {
            report.push(PartSealed {
                name: part.name.clone(),
                sha256_before: finding.sha256,
                sha256_after: None,
                signatures,
                note: Some(format!("not sealed: {en}")),
            });
            continue;
        }
        let over = finding
            .outcome
            .as_ref()
            .ok()
            .and_then(|c| competent_widget(c));
        let SealedPdf {
            bytes: sealed,
            time_stamp,
        } = seal_pdf_stamped(&part.bytes, opts, over).map_err(|e| (part.name.clone(), e))?;
        let stamped = time_stamp.as_ref().map(|t| iso_time(t.gen_time));
        signatures.push(SignatureSummary {
            field: String::new(),
            signer: opts.organisation.to_string(),
            serial: opts.identity.serial_hex().to_string(),
            time: Some(pdf_date(opts.at)),
            result: match &stamped {
                None => "pass (organisation)".into(),
                Some(t) => format!("pass (organisation, time-stamped {t})"),
            },
            time_stamp: stamped,
        });
        report.push(PartSealed {
            name: part.name.clone(),
            sha256_before: finding.sha256,
            sha256_after: Some(hex::encode(ring::digest::digest(
                &ring::digest::SHA256,
                &sealed,
            ))),
            signatures,
            note: None,
        });
        sealed_bytes.push(sealed);
        which.push(i);
    }
    let replacements: Vec<(&super::PdfPart, &[u8])> = which
        .iter()
        .zip(&sealed_bytes)
        .map(|(i, b)| (&parts[*i], b.as_slice()))
        .collect();
    Ok((replace_parts(raw, &replacements), report))
}

/// The first visible signature that counts as a competent signer's: where the seal goes.
fn competent_widget(checks: &[SignatureCheck]) -> Option<Placement> {
    checks
        .iter()
        .filter(|c| c.problem.is_none())
        .find_map(|c| c.found.widget)
        .map(|(page, rect)| Placement { page, rect })
}

/// The organisation's name for `/Name`: the seal certificate's organisation (O), else its
/// common name, else its first e-mail address.
pub fn organisation_name(identity: &SigningIdentity) -> String {
    use x509_parser::prelude::FromDer;
    let parsed = x509_parser::certificate::X509Certificate::from_der(identity.certificate_der());
    let from_cert = parsed.ok().and_then(|(_, c)| {
        let subject = c.subject();
        subject
            .iter_organization()
            .chain(subject.iter_common_name())
            .find_map(|a| a.as_str().ok().map(str::to_owned))
    });
    from_cert
        .or_else(|| identity.email_addresses().first().cloned())
        .unwrap_or_else(|| identity.serial_hex().to_string())
}

/// `Dau-co-quan` ("the organisation's seal"), numbered when the form already has one.
fn field_name(doc: &Document) -> String {
    let taken: Vec<String> = super::signature::find_signatures(doc, 50)
        .into_iter()
        .map(|s| s.field)
        .collect();
    (1..)
        .map(|n| match n {
            1 => "Dau-co-quan".to_string(),
            n => format!("Dau-co-quan-{n}"),
        })
        .find(|n| !taken.contains(n))
        .unwrap_or_default()
}

/// The left edge of a page's media box (inherited from the page tree when not its own).
fn page_left(doc: &Document, page_id: ObjectId) -> f32 {
    let mut node = doc.get_dictionary(page_id).ok();
    for _ in 0..32 {
        let Some(d) = node else { break };
        if let Ok(Object::Array(b)) = d.get(b"MediaBox") {
            return b.first().and_then(|v| v.as_float().ok()).unwrap_or(0.0);
        }
        node = d
            .get(b"Parent")
            .and_then(Object::as_reference)
            .and_then(|id| doc.get_dictionary(id))
            .ok();
    }
    0.0
}

fn array_object(doc: &Document, id: ObjectId, what: &str) -> Result<Vec<Object>, SealError> {
    match doc.get_object(id) {
        Ok(Object::Array(a)) => Ok(a.clone()),
        _ => Err(SealError::Structure(format!("{what} are not an array"))),
    }
}

/// Appends the field to the form's `/Fields` (a direct array, an indirect one, or none yet)
/// and sets `/SigFlags` 3 (signatures exist; append only).
fn add_field(
    doc: &Document,
    form: &mut Dictionary,
    field_id: ObjectId,
    changed: &mut Vec<(ObjectId, Object)>,
) -> Result<(), SealError> {
    match form.get(b"Fields") {
        Ok(Object::Reference(id)) => {
            let id = *id;
            let mut fields = array_object(doc, id, "the form's fields")?;
            fields.push(Object::Reference(field_id));
            changed.push((id, Object::Array(fields)));
        }
        Ok(Object::Array(a)) => {
            let mut a = a.clone();
            a.push(Object::Reference(field_id));
            form.set("Fields", a);
        }
        Err(_) => form.set("Fields", vec![Object::Reference(field_id)]),
        Ok(_) => {
            return Err(SealError::Structure(
                "the form's /Fields is not an array".into(),
            ))
        }
    }
    form.set("SigFlags", 3);
    Ok(())
}

/// Whether the cross-reference section at `offset` is a stream (`N G obj`), not a table.
fn uses_xref_stream(bytes: &[u8], offset: usize) -> bool {
    bytes
        .get(offset..)
        .map(|rest| !rest.trim_ascii_start().starts_with(b"xref"))
        .unwrap_or(false)
}

/// A classic cross-reference section (one subsection per object) and its trailer; returns
/// its offset.
fn write_xref_table(
    out: &mut Vec<u8>,
    offsets: &mut [(ObjectId, usize)],
    trailer: &Dictionary,
) -> Result<usize, SealError> {
    offsets.sort();
    let at = out.len();
    out.extend_from_slice(b"xref\n");
    for ((id, generation), offset) in offsets.iter() {
        write!(out, "{id} 1\n{offset:010} {generation:05} n\r\n").ok();
    }
    out.extend_from_slice(b"trailer\n");
    lopdf::Writer::write_object(out, &Object::Dictionary(trailer.clone()))
        .map_err(|e| SealError::Structure(format!("writing the trailer: {e}")))?;
    out.push(b'\n');
    Ok(at)
}

/// A cross-reference stream (PDF 1.5 §7.5.8, uncompressed, `/W [1 4 2]`) holding the
/// trailer's entries; returns its offset.
fn write_xref_stream(
    out: &mut Vec<u8>,
    id: ObjectId,
    offsets: &mut Vec<(ObjectId, usize)>,
    mut dict: Dictionary,
) -> Result<usize, SealError> {
    let at = out.len();
    offsets.push((id, at));
    offsets.sort();
    let mut data = Vec::with_capacity(offsets.len() * 7);
    let mut index = Vec::with_capacity(offsets.len() * 2);
    for ((obj, generation), offset) in offsets.iter() {
        let offset = u32::try_from(*offset)
            .map_err(|_| SealError::Structure("the file is larger than 4 GB".into()))?;
        data.push(1u8);
        data.extend_from_slice(&offset.to_be_bytes());
        data.extend_from_slice(&generation.to_be_bytes());
        index.push(Object::Integer(i64::from(*obj)));
        index.push(Object::Integer(1));
    }
    dict.set("Type", Object::Name(b"XRef".to_vec()));
    dict.set("W", vec![1.into(), 4.into(), 2.into()]);
    dict.set("Index", index);
    dict.set("Length", data.len() as i64);
    writeln!(out, "{} {} obj", id.0, id.1).ok();
    lopdf::Writer::write_object(out, &Object::Dictionary(dict))
        .map_err(|e| SealError::Structure(format!("writing the xref stream: {e}")))?;
    out.extend_from_slice(b"\nstream\n");
    out.extend_from_slice(&data);
    out.extend_from_slice(b"\nendstream\nendobj\n");
    Ok(at)
}

/// A PDF text string in UTF-16BE with its byte-order mark, as a hex string.
fn utf16_hex(text: &str) -> String {
    let mut s = String::from("<FEFF");
    for unit in text.encode_utf16() {
        s.push_str(&format!("{unit:04X}"));
    }
    s.push('>');
    s
}

/// A PDF date in Vietnam time: `D:YYYYMMDDHHmmSS+07'00'`.
pub fn pdf_date(at: OffsetDateTime) -> String {
    let t = at.to_offset(time::macros::offset!(+7));
    format!(
        "D:{:04}{:02}{:02}{:02}{:02}{:02}+07'00'",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_and_name_forms() {
        let at = time::macros::datetime!(2026-02-13 17:05:09 UTC);
        assert_eq!(pdf_date(at), "D:20260214000509+07'00'");
        assert_eq!(utf16_hex("Aạ"), "<FEFF00411EA1>");
    }
}
