//! `register export`: a register in the layout of the paper book (sổ đăng ký văn bản đi /
//! đến, Decree 30/2020/NĐ-CP Appendix IV), as a printable HTML page (A4 landscape, one month
//! per printed page) or as CSV for a spreadsheet (UTF-8 with a byte-order mark, CRLF).
//!
//! What the register knows fills the columns; what only the clerk knows (the receipt
//! signature, the unit keeping the file copy) stays empty to be filled by hand. Refused
//! documents were never issued (or received): the paper book does not list them, and the
//! export leaves them out unless asked (`include_refused`).
//!
//! The incoming book's "số đến" (incoming number, its own series per year) is not a column of
//! the register: it is derived here as the running number of the document among the year's
//! received documents (refused ones not counted), in reception order, so the same document
//! gets the same number whatever range is exported.

use std::collections::HashMap;

use std::io::Write;

use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use time::{Date, Month, OffsetDateTime};

use crate::model::{Direction, EntryState};
use crate::pdf::SignatureSummary;
use crate::policy::calendar::VIETNAM_OFFSET;
use crate::policy::{Secrecy, Urgency};
use crate::register::query::day_start_ms;
use crate::register::report::html::escape;
use crate::register::Timeliness;
use crate::store::entity::{pdf_document, register_entry as entry};

/// What to export.
#[derive(Debug, Clone)]
pub struct Request {
    pub direction: Direction,
    /// First and last register day (Asia/Ho_Chi_Minh), both included.
    pub from: Date,
    pub to: Date,
    /// List refused documents too (with the rule in the notes).
    pub include_refused: bool,
}

/// One line of the book, as text in the order of [`columns`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// `YYYY-MM` of the register day: the month section it belongs to.
    pub month: String,
    pub cells: Vec<String>,
}

/// The outgoing book's columns (sổ đăng ký văn bản đi).
pub const OUT_COLUMNS: [&str; 12] = [
    "Số, ký hiệu văn bản",
    "Ngày tháng văn bản",
    "Tên loại và trích yếu nội dung văn bản",
    "Người ký",
    "Nơi nhận văn bản",
    "Đơn vị, người nhận bản lưu",
    "Số lượng bản",
    "Ngày chuyển",
    "Ký nhận",
    "Độ khẩn",
    "Độ mật",
    "Ghi chú",
];

/// The incoming book's columns (sổ đăng ký văn bản đến).
pub const IN_COLUMNS: [&str; 11] = [
    "Ngày đến",
    "Số đến",
    "Tác giả",
    "Số, ký hiệu văn bản",
    "Ngày tháng văn bản",
    "Tên loại và trích yếu nội dung văn bản",
    "Đơn vị hoặc người nhận",
    "Ký nhận",
    "Độ khẩn",
    "Độ mật",
    "Ghi chú",
];

/// Relative widths of the columns on paper (percent).
const OUT_WIDTHS: [u8; 12] = [9, 7, 20, 9, 14, 7, 5, 8, 6, 5, 4, 6];
const IN_WIDTHS: [u8; 11] = [8, 4, 13, 9, 7, 22, 12, 6, 5, 4, 10];

pub fn columns(d: Direction) -> &'static [&'static str] {
    match d {
        Direction::Out => &OUT_COLUMNS,
        Direction::In => &IN_COLUMNS,
    }
}

fn widths(d: Direction) -> &'static [u8] {
    match d {
        Direction::Out => &OUT_WIDTHS,
        Direction::In => &IN_WIDTHS,
    }
}

/// The book's title.
pub fn title(d: Direction) -> &'static str {
    match d {
        Direction::Out => "SỔ ĐĂNG KÝ VĂN BẢN ĐI",
        Direction::In => "SỔ ĐĂNG KÝ VĂN BẢN ĐẾN",
    }
}

/// Unix ms → `dd/mm/yyyy HH:MM` (Asia/Ho_Chi_Minh), as a clerk writes it.
fn local(ms: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .to_offset(VIETNAM_OFFSET);
    format!(
        "{:02}/{:02}/{} {:02}:{:02}",
        t.day(),
        t.month() as u8,
        t.year(),
        t.hour(),
        t.minute()
    )
}

/// `YYYY-MM-DD` → `dd/mm/yyyy`; anything else as it is.
fn vn_date(iso: &str) -> String {
    match crate::policy::classify::parse_iso_date(iso) {
        Some(d) => format!("{:02}/{:02}/{}", d.day(), d.month() as u8, d.year()),
        None => iso.to_string(),
    }
}

/// A level's name for its column: empty for "Thường", as the paper book marks only urgent
/// and secret documents.
fn urgency_cell(rank: i32) -> String {
    match Urgency::from_rank(rank) {
        Urgency::Thuong => String::new(),
        u => u.vietnamese().to_string(),
    }
}

fn secrecy_cell(rank: i32) -> String {
    match Secrecy::from_rank(rank) {
        Secrecy::Thuong => String::new(),
        s => s.vietnamese().to_string(),
    }
}

/// What the state says in the notes column.
fn state_note(e: &entry::Model) -> Option<String> {
    let reason = e
        .reason
        .as_deref()
        .map(|r| format!(": {r}"))
        .unwrap_or_default();
    match e.state {
        EntryState::Delivered => None,
        EntryState::Pending => Some(match e.direction {
            Direction::Out => "Chưa gửi xong".into(),
            Direction::In => "Chưa chuyển xong".into(),
        }),
        EntryState::Held => Some(format!("Đang giữ lại{reason}")),
        EntryState::Partial => Some("Gửi được một phần nơi nhận".into()),
        EntryState::Failed => Some(format!("Gửi không thành công{reason}")),
        EntryState::Refused => Some(format!(
            "Bị từ chối ({}){reason}",
            e.rule.as_deref().unwrap_or("-")
        )),
        EntryState::Deleted => Some("Đã xóa khỏi hàng đợi, không gửi".into()),
    }
}

/// The S/MIME result of an incoming document, in words.
fn smime_note(e: &entry::Model) -> Option<String> {
    let r = e.smime_result.as_deref()?;
    let signer = e
        .smime_signer
        .as_deref()
        .map(|s| format!(", người ký {s}"))
        .unwrap_or_default();
    let reason = e
        .smime_reason
        .as_deref()
        .map(|s| format!(": {s}"))
        .unwrap_or_default();
    Some(match r {
        "pass" => format!("Chữ ký số S/MIME hợp lệ{signer}"),
        "none" => "Không có chữ ký số S/MIME".into(),
        "fail" => format!("Chữ ký số S/MIME KHÔNG hợp lệ{reason}"),
        other => format!("Không kiểm tra được chữ ký số S/MIME ({other}){reason}"),
    })
}

fn is_organisation(s: &SignatureSummary) -> bool {
    s.result.starts_with("pass (organisation")
}

/// The competent signers of the PDF parts (not the office's own seal), each once.
fn signers(sigs: &[SignatureSummary]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in sigs.iter().filter(|s| !is_organisation(s)) {
        if !s.signer.is_empty() && !out.contains(&s.signer) {
            out.push(s.signer.clone());
        }
    }
    out
}

/// The PDF signatures of an incoming document, in words.
fn pdf_note(sigs: &[SignatureSummary]) -> Option<String> {
    let parts: Vec<String> = sigs
        .iter()
        .map(|s| {
            let verdict = if s.result.starts_with("pass") {
                "hợp lệ"
            } else {
                "KHÔNG hợp lệ"
            };
            format!("{} ({verdict})", s.signer)
        })
        .collect();
    (!parts.is_empty()).then(|| format!("Chữ ký trên PDF: {}", parts.join(", ")))
}

fn line(e: &entry::Model, sigs: &[SignatureSummary], incoming_number: Option<u64>) -> Line {
    let recipients: Vec<String> = serde_json::from_str(&e.recipients).unwrap_or_default();
    let mut notes: Vec<String> = Vec::new();
    notes.extend(state_note(e));
    if e.timeliness.as_deref().and_then(Timeliness::parse) == Some(Timeliness::Late) {
        notes.push("Gửi quá hạn".into());
    }
    let number = e.number.clone().unwrap_or_default();
    let signed = e.signed_date.as_deref().map(vn_date).unwrap_or_default();
    let cells = match e.direction {
        Direction::Out => vec![
            number,
            signed,
            e.subject.clone(),
            signers(sigs).join(", "),
            recipients.join("\n"),
            String::new(),
            if e.state == EntryState::Refused {
                String::new()
            } else {
                recipients.len().to_string()
            },
            e.sent_at.map(local).unwrap_or_default(),
            String::new(),
            urgency_cell(e.urgency),
            secrecy_cell(e.secrecy),
            notes.join("; "),
        ],
        Direction::In => {
            notes.extend(smime_note(e));
            notes.extend(pdf_note(sigs));
            let author = if e.header_from.is_empty() {
                e.sender.clone()
            } else {
                e.header_from.clone()
            };
            vec![
                local(e.accepted_at),
                incoming_number.map(|n| n.to_string()).unwrap_or_default(),
                author,
                number,
                signed,
                e.subject.clone(),
                recipients.join("\n"),
                String::new(),
                urgency_cell(e.urgency),
                secrecy_cell(e.secrecy),
                notes.join("; "),
            ]
        }
    };
    Line {
        month: e.accepted_date.get(..7).unwrap_or_default().to_string(),
        cells,
    }
}

/// Unix ms of 00:00 on 1 January of `year` (Asia/Ho_Chi_Minh).
fn year_start_ms(year: i32) -> i64 {
    Date::from_calendar_date(year, Month::January, 1)
        .map(day_start_ms)
        .unwrap_or(i64::MIN)
}

/// Why an export stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    #[error("cannot read the register: {0}")]
    Database(#[from] DbErr),
    #[error("cannot write the export: {0}")]
    Write(#[from] std::io::Error),
}

/// Rows read per query: a year of a busy office's register is never in memory at once.
const PAGE: u64 = 1000;

/// Calls `f` with each line of the book for `req`, in reception order (oldest first),
/// reading the register a page at a time (keyset pages on `(accepted_at, id)`).
pub async fn each_line(
    db: &impl ConnectionTrait,
    req: &Request,
    mut f: impl FnMut(Line) -> std::io::Result<()>,
) -> Result<(), ExportError> {
    let start = day_start_ms(req.from);
    let end = req.to.next_day().map(day_start_ms).unwrap_or(i64::MAX);
    // The incoming series starts on 1 January: count what the year received before `from`.
    let mut year = req.from.year();
    let mut counter = 0u64;
    if req.direction == Direction::In {
        counter = entry::Entity::find()
            .filter(entry::Column::Direction.eq(Direction::In))
            .filter(entry::Column::State.ne(EntryState::Refused))
            .filter(entry::Column::AcceptedAt.gte(year_start_ms(year)))
            .filter(entry::Column::AcceptedAt.lt(start))
            .count(db)
            .await?;
    }
    let mut after: Option<(i64, String)> = None;
    loop {
        let mut q = entry::Entity::find()
            .filter(entry::Column::Direction.eq(req.direction))
            .filter(entry::Column::AcceptedAt.gte(start))
            .filter(entry::Column::AcceptedAt.lt(end));
        if !req.include_refused {
            q = q.filter(entry::Column::State.ne(EntryState::Refused));
        }
        if let Some((at, id)) = &after {
            q = q.filter(
                Condition::any().add(entry::Column::AcceptedAt.gt(*at)).add(
                    Condition::all()
                        .add(entry::Column::AcceptedAt.eq(*at))
                        .add(entry::Column::Id.gt(id.as_str())),
                ),
            );
        }
        let entries = q
            .order_by_asc(entry::Column::AcceptedAt)
            .order_by_asc(entry::Column::Id)
            .limit(PAGE)
            .all(db)
            .await?;
        let Some(last) = entries.last() else {
            return Ok(());
        };
        after = Some((last.accepted_at, last.id.clone()));
        // The PDF signatures of the page, in one query.
        let mut pdf: HashMap<String, Vec<SignatureSummary>> = HashMap::new();
        let rows = pdf_document::Entity::find()
            .filter(pdf_document::Column::EntryId.is_in(entries.iter().map(|e| e.id.as_str())))
            .order_by_asc(pdf_document::Column::EntryId)
            .order_by_asc(pdf_document::Column::Position)
            .all(db)
            .await?;
        for r in rows {
            let sigs: Vec<SignatureSummary> =
                serde_json::from_str(&r.signatures).unwrap_or_default();
            pdf.entry(r.entry_id).or_default().extend(sigs);
        }
        for e in &entries {
            let number = if req.direction == Direction::In && e.state != EntryState::Refused {
                let y: i32 = e
                    .accepted_date
                    .get(..4)
                    .and_then(|y| y.parse().ok())
                    .unwrap_or(year);
                if y != year {
                    year = y;
                    counter = 0;
                }
                counter += 1;
                Some(counter)
            } else {
                None
            };
            let sigs = pdf.get(&e.id).map(Vec::as_slice).unwrap_or_default();
            f(line(e, sigs, number))?;
        }
        if (entries.len() as u64) < PAGE {
            return Ok(());
        }
    }
}

/// One CSV field (RFC 4180): quoted when it holds a comma, quote or line break. A field that
/// a spreadsheet would take for a formula (`=`, `+`, `-`, `@` first) gets a leading `'`, so
/// a hostile subject cannot run anything when the file is opened.
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

fn csv_row<'a>(cells: impl Iterator<Item = &'a str>, w: &mut impl Write) -> std::io::Result<()> {
    let fields: Vec<String> = cells.map(csv_field).collect();
    w.write_all(fields.join(",").as_bytes())?;
    w.write_all(b"\r\n")
}

/// The book as CSV: a UTF-8 byte-order mark, a header row, one row per document, CRLF.
pub struct CsvBook;

impl CsvBook {
    pub fn begin(direction: Direction, w: &mut impl Write) -> std::io::Result<()> {
        w.write_all("\u{feff}".as_bytes())?;
        csv_row(columns(direction).iter().copied(), w)
    }

    pub fn line(l: &Line, w: &mut impl Write) -> std::io::Result<()> {
        csv_row(l.cells.iter().map(String::as_str), w)
    }
}

/// The heading of the printed book.
#[derive(Debug, Clone)]
pub struct Heading {
    /// The office: the gateway's host name, as the configuration has no other office name.
    pub office: String,
    /// When the page was made.
    pub made_at: OffsetDateTime,
}

const STYLE: &str = "\
@page{size:A4 landscape;margin:12mm 10mm}
body{font-family:\"Times New Roman\",\"Liberation Serif\",\"DejaVu Serif\",serif;font-size:9pt;color:#000;background:#fff;margin:0}
section.month{padding:0}
@media screen{section.month{padding:6mm 4mm}}
section.month+section.month{break-before:page;page-break-before:always}
header{display:flex;justify-content:space-between;align-items:flex-end;margin-bottom:3mm}
.office{font-weight:bold;text-transform:uppercase;margin:0}
h1{font-size:15pt;line-height:1.6;text-align:center;margin:0 0 1mm;padding-top:1mm}
.period{text-align:center;margin:0;font-style:italic}
.made{margin:0;font-size:9pt;text-align:right}
table{width:100%;border-collapse:collapse;table-layout:fixed}
th,td{border:1px solid #000;padding:0.8mm 1mm;vertical-align:top;overflow-wrap:break-word;white-space:pre-line}
th{font-weight:bold;text-align:center;background:#eeeeee;font-size:8.5pt}
thead{display:table-header-group}
tr{break-inside:avoid;page-break-inside:avoid}
td.n{text-align:center}
tbody tr.col-no td{text-align:center;font-style:italic;font-size:9pt}
.empty{text-align:center;font-style:italic;padding:4mm}";

fn month_label(month: &str) -> String {
    match month.split_once('-') {
        Some((y, m)) => format!("Tháng {m} năm {y}"),
        None => month.to_string(),
    }
}

/// The months of `from..=to`, `YYYY-MM`, in order.
fn months(from: Date, to: Date) -> Vec<String> {
    let mut out = Vec::new();
    let (mut y, mut m) = (from.year(), from.month());
    loop {
        out.push(format!("{y:04}-{:02}", m as u8));
        if (y, m as u8) >= (to.year(), to.month() as u8) {
            break;
        }
        if m == Month::December {
            y += 1;
        }
        m = m.next();
    }
    out
}

/// The book as one self-contained page: inline CSS, no scripts, images, fonts or links; a
/// section per month of the range (one saying so when the month has no document), each
/// starting a printed page (A4 landscape). Lines must come in order of their month.
pub struct HtmlBook {
    direction: Direction,
    office: String,
    made: String,
    /// The months of the range not yet begun, in order.
    months: std::collections::VecDeque<String>,
    /// The month whose section is open, and whether it has a line.
    open: Option<(String, bool)>,
}

impl HtmlBook {
    pub fn begin(req: &Request, heading: &Heading, w: &mut impl Write) -> std::io::Result<Self> {
        let t = heading.made_at.to_offset(VIETNAM_OFFSET);
        let made = format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} +07:00",
            t.year(),
            t.month() as u8,
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        );
        write!(
            w,
            "<!DOCTYPE html>\n<html lang=\"vi\">\n<head>\n<meta charset=\"utf-8\">\n<title>{t} — {o} — {f} – {to}</title>\n<style>\n{STYLE}\n</style>\n</head>\n<body>\n",
            t = escape(title(req.direction)),
            o = escape(&heading.office),
            f = escape(&vn_date(&req.from.to_string())),
            to = escape(&vn_date(&req.to.to_string())),
        )?;
        Ok(HtmlBook {
            direction: req.direction,
            office: heading.office.clone(),
            made,
            months: months(req.from, req.to).into(),
            open: None,
        })
    }

    fn close_section(&mut self, w: &mut impl Write) -> std::io::Result<()> {
        if let Some((_, any)) = self.open.take() {
            if !any {
                writeln!(
                    w,
                    "<tr><td class=\"empty\" colspan=\"{}\">Không có văn bản trong tháng.</td></tr>",
                    columns(self.direction).len()
                )?;
            }
            w.write_all(b"</tbody>\n</table>\n</section>\n")?;
        }
        Ok(())
    }

    fn open_section(&mut self, month: String, w: &mut impl Write) -> std::io::Result<()> {
        let cols = columns(self.direction);
        write!(
            w,
            "<section class=\"month\" data-month=\"{m}\">\n<header>\n<p class=\"office\">{o}</p>\n<div>\n<h1>{t}</h1>\n<p class=\"period\">{ml}</p>\n</div>\n<p class=\"made\">Lập lúc {made}</p>\n</header>\n<table>\n<colgroup>",
            m = escape(&month),
            o = escape(&self.office),
            t = escape(title(self.direction)),
            ml = escape(&month_label(&month)),
            made = self.made,
        )?;
        for width in widths(self.direction) {
            write!(w, "<col style=\"width:{width}%\">")?;
        }
        w.write_all(b"</colgroup>\n<thead>\n<tr>")?;
        for c in cols {
            write!(w, "<th scope=\"col\">{}</th>", escape(c))?;
        }
        w.write_all(b"</tr>\n</thead>\n<tbody>\n<tr class=\"col-no\">")?;
        for i in 1..=cols.len() {
            write!(w, "<td>({i})</td>")?;
        }
        w.write_all(b"</tr>\n")?;
        self.open = Some((month, false));
        Ok(())
    }

    /// Opens the sections up to `month` (empty ones on the way).
    fn reach(&mut self, month: &str, w: &mut impl Write) -> std::io::Result<()> {
        while self.open.as_ref().is_none_or(|(m, _)| m.as_str() < month) {
            let Some(next) = self.months.pop_front() else {
                break;
            };
            self.close_section(w)?;
            self.open_section(next, w)?;
        }
        Ok(())
    }

    pub fn line(&mut self, l: &Line, w: &mut impl Write) -> std::io::Result<()> {
        self.reach(&l.month, w)?;
        if let Some((_, any)) = &mut self.open {
            *any = true;
        }
        w.write_all(b"<tr>")?;
        for c in &l.cells {
            write!(w, "<td>{}</td>", escape(c))?;
        }
        w.write_all(b"</tr>\n")
    }

    pub fn finish(mut self, w: &mut impl Write) -> std::io::Result<()> {
        self.reach("9999-99", w)?;
        self.close_section(w)?;
        w.write_all(b"</body>\n</html>\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_defused() {
        assert_eq!(csv_field("Báo cáo"), "Báo cáo");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"x\""), "\"say \"\"x\"\"\"");
        assert_eq!(csv_field("a\nb"), "\"a\nb\"");
        assert_eq!(csv_field("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(csv_field("-1,2"), "\"'-1,2\"");
    }

    #[test]
    fn months_cover_the_range_across_a_year() {
        let d = |s| crate::policy::classify::parse_iso_date(s).unwrap();
        assert_eq!(
            months(d("2025-11-30"), d("2026-02-01")),
            ["2025-11", "2025-12", "2026-01", "2026-02"]
        );
        assert_eq!(months(d("2026-03-05"), d("2026-03-06")), ["2026-03"]);
    }

    #[test]
    fn dates_are_written_day_first() {
        assert_eq!(vn_date("2026-02-13"), "13/02/2026");
        // 2026-02-13 01:30 UTC is 08:30 in Hà Nội.
        assert_eq!(local(1_770_946_200_000), "13/02/2026 08:30");
    }
}
