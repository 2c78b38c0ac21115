//! What the register keeps of a document's PDF parts (SPEC "Documents"): written by the
//! intake stage (incoming: the signatures found) and by delivery (outgoing: the sealing),
//! read by the register's views.

/// One signature of a PDF part, as the register keeps it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SignatureSummary {
    pub field: String,
    /// The signer's common name, else its e-mail address.
    pub signer: String,
    pub serial: String,
    /// `/M`, as the signing tool wrote it.
    pub time: Option<String>,
    /// `pass`, `pass (organisation)` for the gateway's own (`pass (organisation,
    /// time-stamped <genTime>)` with a TSA), or `fail: <reason>`.
    pub result: String,
    /// The organisation's signature's time-stamp (PAdES B-T): the TSA's genTime, ISO 8601
    /// in Vietnam time. Absent for other signatures and in rows written before B-T.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_stamp: Option<String>,
}

/// What sealing did to one PDF part of a message: what the register keeps.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PartSealed {
    pub name: String,
    pub sha256_before: String,
    /// `None` when the part was left as it was.
    pub sha256_after: Option<String>,
    /// The signatures found before sealing, then the organisation's.
    pub signatures: Vec<SignatureSummary>,
    /// Why the part was not sealed.
    pub note: Option<String>,
}
