//! The report as text (aligned tables, Vietnamese level names with their ASCII forms), CSV
//! (RFC 4180, one row per month and urgency plus totals and refusals, told apart by a `kind`
//! column) and JSON (the [`Report`] structure as serialised).

use super::{Counts, Report, Signatures, UrgencyRow};
use crate::model::Direction;
use crate::util::printable;

/// The register's name in a heading.
pub fn register_name(direction: Direction) -> &'static str {
    match direction {
        Direction::In => "Sổ văn bản đến (in)",
        Direction::Out => "Sổ văn bản đi (out)",
    }
}

/// An urgency level as DOMAIN.md writes it, with the ASCII form beside it.
pub fn level_label(u: &UrgencyRow) -> String {
    format!("{} ({})", u.level.name, u.level.urgency)
}

/// A delay for people: `45 s`, `12 min 05 s`, `3 h 07 min`, `2 d 04 h`.
pub fn human_delay(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    let (d, h, m, sec) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    if d > 0 {
        format!("{d} d {h:02} h")
    } else if h > 0 {
        format!("{h} h {m:02} min")
    } else if m > 0 {
        format!("{m} min {sec:02} s")
    } else if ms < 1000 {
        format!("{} ms", ms.max(0))
    } else {
        format!("{sec} s")
    }
}

/// An on-time share for people, Vietnamese style: `66,7 %`; `-` when nothing was dispatched.
pub fn share_percent(share: Option<f64>) -> String {
    match share {
        Some(f) => format!("{:.1} %", f * 100.0).replace('.', ","),
        None => "-".into(),
    }
}

/// The share with the figures it comes from: `66,7 % (4/6)`.
pub fn share_text(c: &Counts) -> String {
    match c.on_time_share() {
        Some(_) => format!(
            "{} ({}/{})",
            share_percent(c.on_time_share()),
            c.early + c.on_time,
            c.dispatched
        ),
        None => "-".into(),
    }
}

/// The report's title, English after Vietnamese: the outgoing register's is about dispatch
/// compliance, the incoming one's about documents received.
pub fn title(r: &Report) -> (&'static str, &'static str) {
    match r.direction {
        Direction::Out => (
            "Báo cáo tình hình gửi văn bản đúng hạn",
            "Dispatch compliance report",
        ),
        Direction::In => (
            "Báo cáo tình hình tiếp nhận văn bản đến",
            "Incoming documents report",
        ),
    }
}

fn median_text(m: Option<i64>) -> String {
    m.map(human_delay).unwrap_or_else(|| "-".into())
}

/// Text from the database for a terminal: control characters (escape sequences, line
/// breaks) are shown as `\u{..}` instead of acting on the terminal or the layout.
/// Aligned columns: the first `left` columns left-aligned, the rest right-aligned.
fn table(out: &mut String, headers: &[Vec<&str>], rows: &[Vec<String>], left: usize) {
    let cols = headers
        .iter()
        .map(Vec::len)
        .chain(rows.iter().map(Vec::len))
        .max()
        .unwrap_or(0);
    let mut widths = vec![0usize; cols];
    let all = headers
        .iter()
        .map(|h| h.iter().map(|c| c.to_string()).collect::<Vec<_>>())
        .chain(rows.iter().cloned())
        .collect::<Vec<_>>();
    for r in &all {
        for (i, c) in r.iter().enumerate().take(cols) {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    for r in &all {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate().take(cols) {
            let pad = " ".repeat(widths[i].saturating_sub(c.chars().count()));
            if i > 0 {
                line.push_str("  ");
            }
            if i < left {
                line.push_str(c);
                line.push_str(&pad);
            } else {
                line.push_str(&pad);
                line.push_str(c);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

const COUNT_HEADERS_VI: [&str; 9] = [
    "Tổng",
    "Đã gửi",
    "Trước hạn",
    "Đúng hạn",
    "Quá hạn",
    "Chờ gửi",
    "Đang giữ",
    "Gửi lỗi",
    "Từ chối",
];
const COUNT_HEADERS_EN: [&str; 9] = [
    "total",
    "dispatched",
    "early",
    "on-time",
    "late",
    "pending",
    "held",
    "failed",
    "refused",
];

fn count_cells(c: &Counts) -> Vec<String> {
    [
        c.total,
        c.dispatched,
        c.early,
        c.on_time,
        c.late,
        c.pending,
        c.held,
        c.failed,
        c.refused,
    ]
    .iter()
    .map(u64::to_string)
    .collect()
}

/// The report as readable text. The outgoing report leads with the on-time share (overall,
/// per month, per urgency level); the incoming one with its signature results.
pub fn text(r: &Report) -> String {
    let mut out = String::new();
    let (vi, en) = title(r);
    out.push_str(&format!(
        "{vi} / {en}\n{}: {} – {}\n\n",
        register_name(r.direction),
        r.from,
        r.to
    ));
    match (r.direction, &r.signatures) {
        (Direction::In, Some(sig)) => signatures_text(&mut out, r, sig),
        _ => share_text_block(&mut out, r),
    }
    let t = &r.totals.counts;
    out.push_str("Tổng hợp (summary)\n");
    let summary: Vec<(String, String)> = vec![
        ("Tổng số văn bản (documents)".into(), t.total.to_string()),
        ("Đã gửi (dispatched)".into(), t.dispatched.to_string()),
        ("  Trước hạn (early)".into(), t.early.to_string()),
        ("  Đúng hạn (on-time)".into(), t.on_time.to_string()),
        ("  Quá hạn (late)".into(), t.late.to_string()),
        ("Chờ gửi (pending)".into(), t.pending.to_string()),
        ("Đang giữ (held)".into(), t.held.to_string()),
        ("Gửi lỗi (failed)".into(), t.failed.to_string()),
        ("Gửi một phần (partial)".into(), t.partial.to_string()),
        ("Bị từ chối (refused)".into(), t.refused.to_string()),
        ("Đã xóa (deleted)".into(), t.deleted.to_string()),
        (
            "Thời gian gửi trung vị (median dispatch delay)".into(),
            match r.totals.median_delay_ms {
                Some(ms) => format!("{} ({ms} ms)", human_delay(ms)),
                None => "-".into(),
            },
        ),
    ];
    let rows: Vec<Vec<String>> = summary
        .into_iter()
        .map(|(k, v)| vec![format!("  {k}"), v])
        .collect();
    table(&mut out, &[], &rows, 1);

    out.push_str("\nTheo tháng và độ khẩn (by month and urgency)\n");
    let mut h_vi = vec!["Tháng", "Độ khẩn"];
    h_vi.extend(COUNT_HEADERS_VI);
    h_vi.push("Trung vị");
    let mut h_en = vec!["month", "urgency"];
    h_en.extend(COUNT_HEADERS_EN);
    h_en.push("median delay");
    let mut rows = Vec::new();
    for m in &r.months {
        for u in m.by_urgency.iter().filter(|u| u.counts.total > 0) {
            let mut row = vec![m.month.clone(), level_label(u)];
            row.extend(count_cells(&u.counts));
            row.push(String::new());
            rows.push(row);
        }
        let mut row = vec![m.month.clone(), "Cộng (all)".into()];
        row.extend(count_cells(&m.counts));
        row.push(median_text(m.median_delay_ms));
        rows.push(row);
    }
    let mut row = vec!["Tổng cộng".to_string(), "(total)".into()];
    row.extend(count_cells(t));
    row.push(median_text(r.totals.median_delay_ms));
    rows.push(row);
    table(&mut out, &[h_vi, h_en], &rows, 2);

    out.push_str("\nTheo độ khẩn (by urgency)\n");
    let mut h_vi = vec!["Độ khẩn"];
    h_vi.extend(COUNT_HEADERS_VI);
    h_vi.push("Trung vị");
    let mut h_en = vec!["urgency"];
    h_en.extend(COUNT_HEADERS_EN);
    h_en.push("median delay");
    let rows: Vec<Vec<String>> = r
        .urgencies
        .iter()
        .map(|u| {
            let mut row = vec![level_label(u)];
            row.extend(count_cells(&u.counts));
            row.push(median_text(u.median_delay_ms));
            row
        })
        .collect();
    table(&mut out, &[h_vi, h_en], &rows, 1);

    out.push_str("\nTừ chối theo quy tắc (refusals by rule)\n");
    if r.refusals.is_empty() {
        out.push_str("  (không có / none)\n");
    } else {
        let rows: Vec<Vec<String>> = r
            .refusals
            .iter()
            .map(|x| vec![printable(&x.label()).into_owned(), x.count.to_string()])
            .collect();
        table(&mut out, &[vec!["Quy tắc (rule)", "Số (count)"]], &rows, 1);
    }
    out
}

/// The on-time share first: overall, then per month and per urgency level.
fn share_text_block(out: &mut String, r: &Report) {
    out.push_str(&format!(
        "Tỷ lệ gửi đúng hạn (on-time share): {}\n",
        share_text(&r.totals.counts)
    ));
    out.push_str("  = (trước hạn + đúng hạn) / đã gửi  (early + on time) / dispatched\n");
    let mut rows: Vec<Vec<String>> = r
        .months
        .iter()
        .map(|m| {
            vec![
                format!("  {}", m.month),
                share_percent(m.on_time_share),
                format!(
                    "{}/{}",
                    m.counts.early + m.counts.on_time,
                    m.counts.dispatched
                ),
            ]
        })
        .collect();
    rows.extend(r.urgencies.iter().filter(|u| u.counts.total > 0).map(|u| {
        vec![
            format!("  {}", level_label(u)),
            share_percent(u.on_time_share),
            format!(
                "{}/{}",
                u.counts.early + u.counts.on_time,
                u.counts.dispatched
            ),
        ]
    }));
    table(
        out,
        &[vec![
            "  Theo tháng / độ khẩn (by month / urgency)",
            "Tỷ lệ",
            "Số",
        ]],
        &rows,
        1,
    );
    out.push('\n');
}

/// The incoming report's lead: signature results and the time from reception to delivery.
fn signatures_text(out: &mut String, r: &Report, sig: &Signatures) {
    out.push_str("Kết quả kiểm tra chữ ký S/MIME (S/MIME signature results)\n");
    let rows: Vec<Vec<String>> = sig
        .smime
        .iter()
        .map(|x| {
            vec![
                format!(
                    "  {} ({})",
                    super::rules::smime_result_vietnamese(&x.result).unwrap_or("khác"),
                    printable(&x.result)
                ),
                x.count.to_string(),
            ]
        })
        .collect();
    table(out, &[], &rows, 1);
    out.push_str("\nChữ ký trên tệp PDF (PDF signatures, per file)\n");
    let rows: Vec<Vec<String>> = sig
        .pdf
        .iter()
        .map(|x| {
            vec![
                format!(
                    "  {} ({})",
                    super::rules::pdf_result_vietnamese(&x.result).unwrap_or("khác"),
                    x.result
                ),
                x.count.to_string(),
            ]
        })
        .collect();
    table(out, &[], &rows, 1);
    out.push_str(&format!(
        "\nThời gian từ khi nhận đến khi chuyển (reception to delivery), trung vị (median): {}\n",
        median_text(r.totals.median_delay_ms)
    ));
    let rows: Vec<Vec<String>> = r
        .months
        .iter()
        .map(|m| {
            vec![
                format!("  {}", m.month),
                median_text(m.median_delay_ms),
                format!("{} văn bản", m.counts.dispatched),
            ]
        })
        .collect();
    table(out, &[], &rows, 1);
    out.push('\n');
}

/// One CSV field, quoted when RFC 4180 requires it.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The CSV columns. `on_time_share` is (early + on time) / dispatched as a fraction
/// (`0.6667`), empty when nothing was dispatched and on `refusal` rows. `kind` is `month_urgency` (one row per month and urgency level, zeros
/// included), `month` (a month's totals), `urgency` (a level over the period), `total`, or
/// `refusal` (`rule`, its Vietnamese name in `rule_name` and its count in `refused`), or,
/// for the incoming register, `smime` / `pdf` (a signature result in `rule`, its count in
/// `total`). `median_delay_ms` is empty for
/// `month_urgency` and `refusal` rows and when nothing was dispatched.
pub const CSV_HEADER: &str = "kind,month,urgency,urgency_name,rule,rule_name,on_time_share,total,dispatched,early,on_time,late,delivered,partial,pending,held,failed,refused,deleted,median_delay_ms";

fn csv_row(
    out: &mut String,
    kind: &str,
    month: &str,
    level: Option<&UrgencyRow>,
    rule: (&str, &str),
    c: &Counts,
    median: Option<i64>,
) {
    let share = if rule.0.is_empty() {
        c.on_time_share().map(|f| f.to_string()).unwrap_or_default()
    } else {
        String::new()
    };
    let fields = [
        kind.to_string(),
        month.to_string(),
        level
            .map(|u| u.level.urgency.to_string())
            .unwrap_or_default(),
        level.map(|u| u.level.name.to_string()).unwrap_or_default(),
        rule.0.to_string(),
        rule.1.to_string(),
        share,
        c.total.to_string(),
        c.dispatched.to_string(),
        c.early.to_string(),
        c.on_time.to_string(),
        c.late.to_string(),
        c.delivered.to_string(),
        c.partial.to_string(),
        c.pending.to_string(),
        c.held.to_string(),
        c.failed.to_string(),
        c.refused.to_string(),
        c.deleted.to_string(),
        median.map(|m| m.to_string()).unwrap_or_default(),
    ];
    let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
    out.push_str(&line.join(","));
    out.push_str("\r\n");
}

/// The report as CSV (CRLF line ends, as RFC 4180 writes them), after a UTF-8 byte-order
/// mark so that spreadsheet programs read the Vietnamese as UTF-8.
pub fn csv(r: &Report) -> String {
    let mut out = String::from('\u{feff}');
    out.push_str(CSV_HEADER);
    out.push_str("\r\n");
    for m in &r.months {
        for u in &m.by_urgency {
            csv_row(
                &mut out,
                "month_urgency",
                &m.month,
                Some(u),
                ("", ""),
                &u.counts,
                None,
            );
        }
    }
    for m in &r.months {
        csv_row(
            &mut out,
            "month",
            &m.month,
            None,
            ("", ""),
            &m.counts,
            m.median_delay_ms,
        );
    }
    for u in &r.urgencies {
        csv_row(
            &mut out,
            "urgency",
            "",
            Some(u),
            ("", ""),
            &u.counts,
            u.median_delay_ms,
        );
    }
    csv_row(
        &mut out,
        "total",
        "",
        None,
        ("", ""),
        &r.totals.counts,
        r.totals.median_delay_ms,
    );
    for x in &r.refusals {
        let c = Counts {
            total: x.count,
            refused: x.count,
            ..Counts::default()
        };
        let name = x.name.clone().unwrap_or_default();
        csv_row(&mut out, "refusal", "", None, (&x.rule, &name), &c, None);
    }
    if let Some(sig) = &r.signatures {
        for (kind, list, vi) in [
            (
                "smime",
                &sig.smime,
                super::rules::smime_result_vietnamese as fn(&str) -> _,
            ),
            ("pdf", &sig.pdf, super::rules::pdf_result_vietnamese),
        ] {
            for x in list {
                let c = Counts {
                    total: x.count,
                    ..Counts::default()
                };
                let name = vi(&x.result).unwrap_or_default();
                csv_row(&mut out, kind, "", None, (&x.result, name), &c, None);
            }
        }
    }
    out
}

/// The report as pretty-printed JSON.
pub fn json(r: &Report) -> String {
    let mut s = serde_json::to_string_pretty(r).unwrap_or_else(|_| "{}".into());
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_rfc4180_requires() {
        assert_eq!(csv_field("dispatch.thuong"), "dispatch.thuong");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
    }

    #[test]
    fn control_characters_do_not_reach_the_terminal() {
        assert_eq!(printable("a\u{1b}[2Jb\n"), "a\\u{1b}[2Jb\\u{a}");
    }

    #[test]
    fn delays_read_naturally() {
        assert_eq!(human_delay(250), "250 ms");
        assert_eq!(human_delay(45_000), "45 s");
        assert_eq!(human_delay(725_000), "12 min 05 s");
        assert_eq!(human_delay(3 * 3_600_000 + 7 * 60_000), "3 h 07 min");
        assert_eq!(human_delay(2 * 86_400_000 + 4 * 3_600_000), "2 d 04 h");
    }
}
