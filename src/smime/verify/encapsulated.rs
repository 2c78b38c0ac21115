//! A CMS SignedData that carries its content inside (encapsulated), such as an RFC 3161
//! time-stamp token (whose content is a TSTInfo): the content and its signer, with the
//! signed attributes, the digest and the signature checked by the code that checks S/MIME
//! signatures. Whose certificate it is, and whether it may sign such content, is the
//! caller's question (a time-stamp needs the timeStamping key purpose, not emailProtection).

use super::cms::{check_signature, SignedData};
use super::Failure;

/// The content of a signed CMS whose signature verified, and who signed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncapsulatedContent {
    /// The eContentType, as the DER content octets of its OID.
    pub content_type: Vec<u8>,
    /// The eContent's octets.
    pub content: Vec<u8>,
    /// The signer's certificate (DER).
    pub signer: Vec<u8>,
    /// Every certificate the CMS carries (DER), the signer's among them.
    pub certificates: Vec<Vec<u8>>,
}

/// Verifies `cms` (DER or BER ContentInfo with SignedData and eContent): exactly one
/// SignerInfo, its certificate in the CMS, contentType equal to the eContentType, the
/// messageDigest of the eContent and the signature over the signed attributes. No path to a
/// trust anchor is sought.
pub fn verify_encapsulated(cms: &[u8]) -> Result<EncapsulatedContent, Failure> {
    let sd = SignedData::parse(cms)?;
    let content = sd
        .econtent
        .clone()
        .ok_or_else(|| Failure::Cms("the signed content is not inside the CMS".into()))?;
    let (si, signer_der, cert) = sd.sole_signer()?;
    check_signature(si, &sd.econtent_type, &[&content], &cert)?;
    Ok(EncapsulatedContent {
        content_type: sd.econtent_type.clone(),
        content,
        signer: signer_der.to_vec(),
        certificates: sd.certificates.iter().map(|c| c.to_vec()).collect(),
    })
}
