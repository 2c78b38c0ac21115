//! What the revisions after a signature changed (PDF 2.0 §12.8.2.2: a signed document may
//! grow by incremental updates). A signature stays meaningful only if later updates did
//! what adding another signature does, and nothing else:
//! - new objects of any kind, reachable only through the changes below;
//! - the catalog: only `/AcroForm`, `/DSS` (the document security store), `/Extensions`,
//!   `/Metadata` and `/Version` (a signer may declare PDF 2.0) may differ;
//! - the AcroForm: `/Fields` may grow by signature fields; `/SigFlags`, `/DR`, `/DA` and
//!   `/NeedAppearances` may change;
//! - a page: only `/Annots` may differ, and only by signature widgets appended;
//! - an array: only grown at its end by signature fields or widgets;
//! - an empty signature field: it may receive its value and appearance;
//! - the document information dictionary, the XMP metadata stream and the DSS: any change.
//!
//! Everything else (a page's content, resources, an annotation that is not a signature
//! widget, a removed object, another root) is a change of content after signing. This is
//! stricter than some validators on purpose: an official document that was edited after the
//! competent signer signed it must go back to the signer.

use lopdf::{Dictionary, Document, Object};

use super::signature::deref_dict;

/// Why a later revision is not only the addition of signatures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangedAfter {
    #[error("the revision the signature covers cannot be read: {0}")]
    Unreadable(String),
    #[error("a later revision replaces the document catalog")]
    NewRoot,
    #[error("a later revision removes object {0} {1}")]
    Removed(u32, u16),
    #[error("a later revision changes object {0} {1} ({2})")]
    Changed(u32, u16, String),
}

/// Checks that `full` (the whole file) differs from `signed` (the revision a signature
/// covers) only as adding signatures does.
pub fn check_later_revisions(signed: &Document, full: &Document) -> Result<(), ChangedAfter> {
    let root = |d: &Document| d.trailer.get(b"Root").and_then(Object::as_reference).ok();
    let root_id = root(signed);
    if root_id != root(full) {
        return Err(ChangedAfter::NewRoot);
    }
    let info_id = signed
        .trailer
        .get(b"Info")
        .and_then(Object::as_reference)
        .ok();
    let catalog = root_id.and_then(|id| signed.get_dictionary(id).ok());
    let reference = |key: &[u8]| {
        catalog
            .and_then(|c| c.get(key).ok())
            .and_then(|o| o.as_reference().ok())
    };
    let acroform_id = reference(b"AcroForm");
    let metadata_id = reference(b"Metadata");
    let dss_id = reference(b"DSS");

    for (&id, old) in &signed.objects {
        if is_structural(old) {
            continue;
        }
        let Some(new) = full.objects.get(&id) else {
            return Err(ChangedAfter::Removed(id.0, id.1));
        };
        if old == new {
            continue;
        }
        let changed = |what: &str| Err(ChangedAfter::Changed(id.0, id.1, what.to_string()));
        if Some(id) == info_id || Some(id) == metadata_id || Some(id) == dss_id {
            continue;
        }
        if Some(id) == root_id {
            if !same_except(
                old,
                new,
                &[b"AcroForm", b"DSS", b"Extensions", b"Metadata", b"Version"],
            ) {
                return changed("the document catalog");
            }
            // The same form object is judged below as an object of its own; a form written
            // in the catalog, or another form object, is judged here.
            let (old_form, new_form) = (form_entry(old), form_entry(new));
            let same_object = matches!(
                (old_form, new_form),
                (Some(Object::Reference(a)), Some(Object::Reference(b))) if a == b
            );
            if !same_object
                && !form_grown_by_signatures(
                    full,
                    deref_dict(signed, old_form),
                    deref_dict(full, new_form),
                )
            {
                return changed("the form");
            }
            continue;
        }
        if Some(id) == acroform_id {
            if !form_grown_by_signatures(full, old.as_dict().ok(), new.as_dict().ok()) {
                return changed("the form");
            }
            continue;
        }
        match (old, new) {
            (Object::Dictionary(o), Object::Dictionary(n)) if is_page(o) => {
                let same_ref = matches!(
                    (o.get(b"Annots"), n.get(b"Annots")),
                    (Ok(Object::Reference(a)), Ok(Object::Reference(b))) if a == b
                );
                if !same_except(old, new, &[b"Annots"])
                    || !(same_ref || grown_by_signatures(full, annots(o), annots(n)))
                {
                    return changed("a page");
                }
            }
            (Object::Array(o), Object::Array(n)) => {
                if !grown_by_signatures(full, Some(o), Some(n)) {
                    return changed("an array");
                }
            }
            (Object::Dictionary(o), Object::Dictionary(n))
                if is_signature_field(signed, o) && !o.has(b"V") && is_signature_field(full, n) =>
            {
                if !same_except(old, new, &[b"V", b"AP", b"F", b"Lock", b"SV", b"MK"]) {
                    return changed("a signature field");
                }
            }
            _ => return changed(kind(old)),
        }
    }
    Ok(())
}

/// Cross-reference and object streams: containers, not content.
fn is_structural(o: &Object) -> bool {
    let Object::Stream(s) = o else {
        return false;
    };
    matches!(
        s.dict.get(b"Type").and_then(Object::as_name),
        Ok(b"XRef") | Ok(b"ObjStm")
    )
}

fn is_page(d: &Dictionary) -> bool {
    d.get(b"Type").and_then(Object::as_name).ok() == Some(b"Page")
}

fn kind(o: &Object) -> &'static str {
    match o {
        Object::Stream(_) => "a stream",
        Object::Dictionary(d) if is_page(d) => "a page",
        Object::Dictionary(_) => "a dictionary",
        _ => "an object",
    }
}

/// Two dictionaries (or streams' dictionaries with the same data) equal but for `keys`.
fn same_except(old: &Object, new: &Object, keys: &[&[u8]]) -> bool {
    let (o, n) = match (old, new) {
        (Object::Dictionary(o), Object::Dictionary(n)) => (o, n),
        (Object::Stream(o), Object::Stream(n)) if o.content == n.content => (&o.dict, &n.dict),
        _ => return false,
    };
    let strip = |d: &Dictionary| {
        d.iter()
            .filter(|(k, _)| !keys.contains(&k.as_slice()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    strip(o) == strip(n)
}

fn form_entry(catalog: &Object) -> Option<&Object> {
    catalog.as_dict().ok()?.get(b"AcroForm").ok()
}

/// The form `new` is `old` but for its `/Fields` grown by signature fields, and the entries
/// a signature may set (`/SigFlags`, `/DR`, `/DA`, `/NeedAppearances`). `/Fields` is either
/// the same indirect array (judged as an array of its own) or a direct array grown.
fn form_grown_by_signatures(
    full: &Document,
    old: Option<&Dictionary>,
    new: Option<&Dictionary>,
) -> bool {
    let (Some(old), Some(new)) = (old, new) else {
        return false;
    };
    let fields_grown = match (old.get(b"Fields"), new.get(b"Fields")) {
        (Ok(Object::Reference(a)), Ok(Object::Reference(b))) => a == b,
        (Ok(Object::Reference(_)), _) | (_, Ok(Object::Reference(_))) => false,
        _ => grown_by_signatures(
            full,
            array_entry(old, b"Fields"),
            array_entry(new, b"Fields"),
        ),
    };
    fields_grown
        && same_except(
            &Object::Dictionary(old.clone()),
            &Object::Dictionary(new.clone()),
            &[b"Fields", b"SigFlags", b"DR", b"DA", b"NeedAppearances"],
        )
}

fn annots(page: &Dictionary) -> Option<&[Object]> {
    array_entry(page, b"Annots")
}

/// A direct array entry (absent: empty); `None` when it is something else.
fn array_entry<'a>(d: &'a Dictionary, key: &[u8]) -> Option<&'a [Object]> {
    match d.get(key) {
        Ok(Object::Array(a)) => Some(a),
        Ok(_) => None,
        Err(_) => Some(&[]),
    }
}

/// `new` is `old` with signature fields or widgets appended (both direct arrays).
fn grown_by_signatures(full: &Document, old: Option<&[Object]>, new: Option<&[Object]>) -> bool {
    let (Some(old), Some(new)) = (old, new) else {
        return old == new;
    };
    new.len() >= old.len()
        && new[..old.len()] == *old
        && new[old.len()..]
            .iter()
            .all(|o| deref_dict(full, Some(o)).is_some_and(|d| is_signature_field(full, d)))
}

/// A field (or widget) of type `/Sig`, itself or through its parent.
fn is_signature_field(doc: &Document, d: &Dictionary) -> bool {
    let mut node = Some(d);
    for _ in 0..8 {
        let Some(n) = node else {
            return false;
        };
        if let Ok(ft) = n.get(b"FT").and_then(Object::as_name) {
            return ft == b"Sig";
        }
        node = deref_dict(doc, n.get(b"Parent").ok());
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use lopdf::dictionary;

    /// A document whose catalog (1 0) holds its form directly, with `fields`; object 2 0 is a
    /// signature field, 3 0 a text field.
    fn doc_with_form(fields: Vec<Object>) -> Document {
        let mut doc = Document::with_version("1.7");
        doc.objects.insert(
            (1, 0),
            Object::Dictionary(dictionary! {
                "Type" => "Catalog",
                "AcroForm" => dictionary! { "Fields" => fields, "SigFlags" => 3 },
            }),
        );
        doc.objects.insert(
            (2, 0),
            Object::Dictionary(
                dictionary! { "FT" => "Sig", "T" => Object::string_literal("ChuKy") },
            ),
        );
        doc.objects.insert(
            (3, 0),
            Object::Dictionary(
                dictionary! { "FT" => "Tx", "T" => Object::string_literal("Ghi-chu") },
            ),
        );
        doc.trailer.set("Root", Object::Reference((1, 0)));
        doc
    }

    #[test]
    fn a_form_in_the_catalog_may_only_grow_by_signatures() {
        let signed = doc_with_form(vec![Object::Reference((2, 0))]);
        let mut sig = doc_with_form(vec![Object::Reference((2, 0))]);
        sig.objects.insert(
            (4, 0),
            Object::Dictionary(dictionary! { "FT" => "Sig", "T" => Object::string_literal("Dau") }),
        );
        let grown = |d: &mut Document, fields: Vec<Object>| {
            let catalog = d.objects.get_mut(&(1, 0)).unwrap().as_dict_mut().unwrap();
            catalog.set(
                "AcroForm",
                dictionary! { "Fields" => fields, "SigFlags" => 3 },
            );
        };
        grown(
            &mut sig,
            vec![Object::Reference((2, 0)), Object::Reference((4, 0))],
        );
        assert_eq!(check_later_revisions(&signed, &sig), Ok(()));

        let mut text = doc_with_form(vec![]);
        grown(
            &mut text,
            vec![Object::Reference((2, 0)), Object::Reference((3, 0))],
        );
        assert!(matches!(
            check_later_revisions(&signed, &text),
            Err(ChangedAfter::Changed(1, 0, what)) if what == "the form"
        ));
        let mut other = doc_with_form(vec![]);
        let catalog = other
            .objects
            .get_mut(&(1, 0))
            .unwrap()
            .as_dict_mut()
            .unwrap();
        catalog.set(
            "AcroForm",
            dictionary! { "Fields" => vec![Object::Reference((2, 0))], "XFA" => 1 },
        );
        assert!(check_later_revisions(&signed, &other).is_err());
    }
}
