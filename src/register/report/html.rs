//! The report as one self-contained HTML page: inline CSS and SVG charts drawn here, no
//! scripts, fonts, images or links, so it opens in a browser with no network access.
//!
//! The outgoing report leads with the on-time share (the largest figure on the page), then
//! per month and per urgency; charts: documents per month as stacked bars early / on time /
//! late, one chart comparing the urgency levels, refusals by rule (in Vietnamese, code
//! beside), and the median dispatch delay per month in a unit chosen by its size. The
//! incoming report leads with the S/MIME and PDF signature results and the time from
//! reception to delivery; it has no timeliness charts. Each chart has a title, axis labels,
//! a legend and the same figures in a table under it. The page names the office, the
//! period and when it was made (+07:00), and prints on A4 without cutting a chart or table.
//! Every string that comes from the database or the configuration goes through [`escape`].

use super::render::{human_delay, level_label, register_name, share_percent, share_text, title};
use super::rules::{pdf_result_vietnamese, smime_result_vietnamese};
use super::{Counts, Report, Signatures};

/// What the page says about itself: the office it is for and when it was made.
#[derive(Debug, Clone)]
pub struct Meta {
    /// The office's name (today the configuration's `hostname`).
    pub office: String,
    pub generated_at: time::OffsetDateTime,
}

/// A time as people in Vietnam read it: `2026-03-01 08:05 +07:00`.
pub fn vietnam_time(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::from_hms(7, 0, 0).unwrap_or(time::UtcOffset::UTC));
    format!("{} {:02}:{:02} +07:00", t.date(), t.hour(), t.minute())
}

/// Fill colours of the chart series (the screenshot test looks for these exact values).
pub const EARLY: &str = "#2c7fb8";
pub const ON_TIME: &str = "#31a354";
pub const LATE: &str = "#de2d26";
pub const REFUSED: &str = "#756bb1";
pub const MEDIAN: &str = "#e6550d";
pub const SIGNATURES: &str = "#3182bd";

/// Escapes text for HTML (element content and quoted attribute values; also inside SVG).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A round upper bound for an axis and its step: at most 6 steps of 1, 2, 2.5 or 5 × 10^k
/// (whole numbers when the values are whole).
fn nice_max(max: f64) -> (f64, f64) {
    if max <= 0.0 {
        return (5.0, 1.0);
    }
    let mag = 10f64.powf((max / 6.0).log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|f| f * mag)
        .find(|s| (max / s).ceil() <= 6.0)
        .unwrap_or(10.0 * mag);
    let step = if step < 1.0 && max >= 1.0 { 1.0 } else { step };
    (((max / step).ceil() * step).max(step), step)
}

/// A tick or value label: whole numbers as such, others with as many decimals as needed
/// (at most 3), so that steps of 0.05 or 0.25 do not all print as the same figure.
pub fn fmt_tick(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round() as i64)
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

struct Series<'a> {
    label: &'a str,
    colour: &'a str,
    values: Vec<f64>,
}

/// A vertical bar chart, stacked when there are several series.
fn bar_chart(
    id: &str,
    title: &str,
    x_label: &str,
    y_label: &str,
    categories: &[String],
    series: &[Series],
    height: u32,
) -> String {
    let (w, h) = (1000.0, height as f64);
    let (ml, mr, mt, mb) = (70.0, 20.0, 40.0, 60.0);
    let (pw, ph) = (w - ml - mr, h - mt - mb);
    let n = categories.len().max(1) as f64;
    let max = (0..categories.len())
        .map(|i| series.iter().map(|s| s.values[i]).sum::<f64>())
        .fold(0.0, f64::max);
    let (top, step) = nice_max(max);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\" aria-labelledby=\"{id}-t {id}-d\">\n<title id=\"{id}-t\">{t}</title>\n<desc id=\"{id}-d\">{t}; {x}; {y}. Số liệu ở bảng dưới biểu đồ (the figures are in the table below).</desc>\n",
        t = escape(title),
        x = escape(x_label),
        y = escape(y_label),
    );
    // Grid and y ticks.
    let mut v = 0.0;
    while v <= top + 1e-9 {
        let y = mt + ph - v / top * ph;
        s.push_str(&format!(
            "<line x1=\"{ml}\" x2=\"{x2}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#dddddd\"/><text x=\"{tx}\" y=\"{ty:.1}\" class=\"tick\" text-anchor=\"end\">{l}</text>\n",
            x2 = ml + pw,
            tx = ml - 6.0,
            ty = y + 4.0,
            l = fmt_tick(v)
        ));
        v += step;
    }
    // Bars.
    let band = pw / n;
    // Narrow enough that one month alone is still a bar, not a wall.
    let bw = (band * 0.7).clamp(1.0, 160.0);
    let label_every = (categories.len() / 24).max(1);
    for (i, cat) in categories.iter().enumerate() {
        let x = ml + band * i as f64 + (band - bw) / 2.0;
        let mut base = mt + ph;
        for se in series {
            let val = se.values[i];
            if val > 0.0 {
                let bh = val / top * ph;
                base -= bh;
                s.push_str(&format!(
                    "<rect x=\"{x:.1}\" y=\"{base:.1}\" width=\"{bw:.1}\" height=\"{bh:.1}\" fill=\"{c}\" shape-rendering=\"crispEdges\"><title>{cat}: {l} {val}</title></rect>\n",
                    c = se.colour,
                    cat = escape(cat),
                    l = escape(se.label),
                    val = fmt_tick(val)
                ));
            }
        }
        if i % label_every == 0 {
            s.push_str(&format!(
                "<text x=\"{cx:.1}\" y=\"{ly}\" class=\"tick\" text-anchor=\"middle\">{c}</text>\n",
                cx = ml + band * (i as f64 + 0.5),
                ly = mt + ph + 16.0,
                c = escape(cat)
            ));
        }
    }
    // Axes and their labels.
    s.push_str(&format!(
        "<line x1=\"{ml}\" x2=\"{ml}\" y1=\"{mt}\" y2=\"{yb}\" stroke=\"#333333\"/><line x1=\"{ml}\" x2=\"{x2}\" y1=\"{yb}\" y2=\"{yb}\" stroke=\"#333333\"/>\n<text x=\"{xc}\" y=\"{xl}\" class=\"axis\" text-anchor=\"middle\">{x}</text>\n<text transform=\"translate(16 {yc}) rotate(-90)\" class=\"axis\" text-anchor=\"middle\">{y}</text>\n",
        yb = mt + ph,
        x2 = ml + pw,
        xc = ml + pw / 2.0,
        xl = h - 14.0,
        yc = mt + ph / 2.0,
        x = escape(x_label),
        y = escape(y_label),
    ));
    s.push_str(&legend(
        series.iter().map(|x| (x.label, x.colour)),
        ml,
        12.0,
    ));
    s.push_str("</svg>\n");
    s
}

/// A legend row at (x, y): swatch and label per series.
fn legend<'a>(items: impl Iterator<Item = (&'a str, &'a str)>, x: f64, y: f64) -> String {
    let mut s = String::from("<g class=\"legend\">");
    let mut x = x;
    for (label, colour) in items {
        s.push_str(&format!(
            "<rect x=\"{x}\" y=\"{y}\" width=\"12\" height=\"12\" fill=\"{colour}\"/><text x=\"{tx}\" y=\"{ty}\" class=\"tick\">{l}</text>",
            tx = x + 17.0,
            ty = y + 11.0,
            l = escape(label)
        ));
        x += 30.0 + label.chars().count() as f64 * 7.0;
    }
    s.push_str("</g>\n");
    s
}

/// One bar of a horizontal bar chart: its label, a second line under it (a rule's code,
/// a result's ASCII form; may be empty) and its value.
struct HBar {
    label: String,
    code: String,
    value: u64,
}

/// Horizontal bars: one per label (refusals by rule, signature results). Labels longer than
/// the margin are cut with `…`; the code under each is never cut.
fn hbar_chart(id: &str, title: &str, x_label: &str, rows: &[HBar], colour: &str) -> String {
    let two_lines = rows.iter().any(|r| !r.code.is_empty());
    let (w, ml, mt) = (1000.0, 330.0, 40.0);
    let row_h = if two_lines { 40.0 } else { 28.0 };
    let pw = w - ml - 40.0;
    let h = mt + row_h * rows.len().max(1) as f64 + 50.0;
    let max = rows.iter().map(|r| r.value).max().unwrap_or(0) as f64;
    let (top, step) = nice_max(max);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\" aria-labelledby=\"{id}-t {id}-d\">\n<title id=\"{id}-t\">{t}</title>\n<desc id=\"{id}-d\">{t}; {x}. Số liệu ở bảng dưới biểu đồ (the figures are in the table below).</desc>\n",
        t = escape(title),
        x = escape(x_label),
    );
    let yb = mt + row_h * rows.len().max(1) as f64;
    let mut v = 0.0;
    while v <= top + 1e-9 {
        let x = ml + v / top * pw;
        s.push_str(&format!(
            "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{mt}\" y2=\"{yb}\" stroke=\"#dddddd\"/><text x=\"{x:.1}\" y=\"{ty}\" class=\"tick\" text-anchor=\"middle\">{l}</text>\n",
            ty = yb + 16.0,
            l = fmt_tick(v)
        ));
        v += step;
    }
    for (i, r) in rows.iter().enumerate() {
        let y = mt + row_h * i as f64;
        let shown: String = if r.label.chars().count() > 46 {
            r.label.chars().take(45).chain(['…']).collect()
        } else {
            r.label.clone()
        };
        let (ty, cy) = if r.code.is_empty() {
            (y + row_h / 2.0 + 4.0, 0.0)
        } else {
            (y + row_h / 2.0 - 2.0, y + row_h / 2.0 + 12.0)
        };
        s.push_str(&format!(
            "<text x=\"{lx}\" y=\"{ty}\" class=\"tick\" text-anchor=\"end\">{l}</text>\n",
            lx = ml - 8.0,
            l = escape(&shown)
        ));
        if !r.code.is_empty() {
            let code: String = if r.code.chars().count() > 50 {
                r.code.chars().take(49).chain(['…']).collect()
            } else {
                r.code.clone()
            };
            s.push_str(&format!(
                "<text x=\"{lx}\" y=\"{cy}\" class=\"code\" text-anchor=\"end\">{c}</text>\n",
                lx = ml - 8.0,
                c = escape(&code)
            ));
        }
        if r.value > 0 {
            s.push_str(&format!(
                "<rect x=\"{ml}\" y=\"{ry}\" width=\"{bw:.1}\" height=\"{bh}\" fill=\"{colour}\" shape-rendering=\"crispEdges\"><title>{l}: {n}</title></rect>\n",
                ry = y + 6.0,
                bw = r.value as f64 / top * pw,
                bh = row_h - 12.0,
                l = escape(&r.label),
                n = r.value
            ));
        }
    }
    s.push_str(&format!(
        "<line x1=\"{ml}\" x2=\"{ml}\" y1=\"{mt}\" y2=\"{yb}\" stroke=\"#333333\"/>\n<text x=\"{xc}\" y=\"{xl}\" class=\"axis\" text-anchor=\"middle\">{x}</text>\n",
        xc = ml + pw / 2.0,
        xl = h - 10.0,
        x = escape(x_label),
    ));
    s.push_str(&legend([(x_label, colour)].into_iter(), ml, 12.0));
    s.push_str("</svg>\n");
    s
}

fn timeliness_series(counts: &[Counts]) -> Vec<Series<'static>> {
    vec![
        Series {
            label: "Trước hạn (early)",
            colour: EARLY,
            values: counts.iter().map(|c| c.early as f64).collect(),
        },
        Series {
            label: "Đúng hạn (on time)",
            colour: ON_TIME,
            values: counts.iter().map(|c| c.on_time as f64).collect(),
        },
        Series {
            label: "Quá hạn (late)",
            colour: LATE,
            values: counts.iter().map(|c| c.late as f64).collect(),
        },
    ]
}

fn month_table(caption: &str, months: &[String], counts: &[Counts]) -> String {
    let mut s = format!(
        "<table>\n<caption>{}</caption>\n<thead><tr><th scope=\"col\">Tháng (month)</th><th scope=\"col\">Trước hạn (early)</th><th scope=\"col\">Đúng hạn (on time)</th><th scope=\"col\">Quá hạn (late)</th><th scope=\"col\">Đã gửi (dispatched)</th><th scope=\"col\">Chờ / giữ (pending / held)</th><th scope=\"col\">Gửi lỗi (failed)</th><th scope=\"col\">Từ chối (refused)</th><th scope=\"col\">Tổng (total)</th></tr></thead>\n<tbody>\n",
        escape(caption)
    );
    for (m, c) in months.iter().zip(counts) {
        s.push_str(&format!(
            "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            escape(m),
            c.early,
            c.on_time,
            c.late,
            c.dispatched,
            c.pending + c.held,
            c.failed,
            c.refused,
            c.total
        ));
    }
    s.push_str("</tbody>\n</table>\n");
    s
}

/// The unit a set of delays reads best in, by the largest: (divisor in ms, Vietnamese,
/// English). Under a second: ms; under 2 minutes: s; under 2 hours: min; else h.
pub fn delay_unit(max_ms: i64) -> (f64, &'static str, &'static str) {
    if max_ms >= 2 * 3_600_000 {
        (3_600_000.0, "giờ", "h")
    } else if max_ms >= 2 * 60_000 {
        (60_000.0, "phút", "min")
    } else if max_ms >= 1000 {
        (1000.0, "giây", "s")
    } else {
        (1.0, "mili giây", "ms")
    }
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,'Noto Sans',Arial,sans-serif;color:#222222;margin:24px auto;max-width:1040px;padding:0 12px;line-height:1.4}
h1{font-size:1.5em;margin:0 0 4px}h2{font-size:1.15em;margin:28px 0 8px;border-bottom:1px solid #cccccc;padding-bottom:4px}h3{font-size:1em;margin:16px 0 4px}
p.meta{margin:0;color:#555555}
figure{margin:0 0 8px}figcaption{font-weight:600;margin-bottom:4px}
svg{max-width:100%;height:auto;background:#ffffff}
svg .tick{font-size:12px;fill:#333333}svg .code{font-size:11px;fill:#666666;font-family:monospace}svg .axis{font-size:13px;fill:#222222;font-weight:600}
table{border-collapse:collapse;font-size:13px;margin:4px 0 12px}caption{text-align:left;font-weight:600;padding:2px 0}
th,td{border:1px solid #cccccc;padding:2px 8px}td{text-align:right}thead th{background:#f2f2f2}tbody th{text-align:left;font-weight:normal}
.summary td{min-width:6em}
.lead{border:2px solid #31a354;border-radius:6px;padding:12px 16px;margin:16px 0;break-inside:avoid}
.lead .big{font-size:3.2em;font-weight:700;color:#1b7a3a;line-height:1.1}
.lead .what{font-size:1.1em;font-weight:600}.lead .how{color:#555555;font-size:.9em}
@page{size:A4;margin:14mm 12mm}
@media print{body{margin:0;max-width:none;padding:0;font-size:11pt}h2{break-after:avoid}
figure,table,.lead,svg{break-inside:avoid;page-break-inside:avoid}svg{width:100%}
h2{margin-top:14px}}";

/// The report as one self-contained HTML page.
pub fn page(r: &Report, meta: &Meta) -> String {
    let register = register_name(r.direction);
    let (vi, en) = title(r);
    let mut s = format!(
        "<!DOCTYPE html>\n<html lang=\"vi\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{t}</title>\n<style>\n{STYLE}\n</style>\n</head>\n<body>\n<main>\n<h1>{h1}</h1>\n<p class=\"meta\">{en} · <strong>{office}</strong> · {reg} · Kỳ báo cáo (period) {from} – {to}</p>\n<p class=\"meta\">Lập lúc (made at) {made}</p>\n",
        t = escape(&format!("{vi} — {}, {} – {}", meta.office, r.from, r.to)),
        h1 = escape(vi),
        en = escape(en),
        office = escape(&meta.office),
        reg = escape(register),
        from = escape(&r.from),
        to = escape(&r.to),
        made = escape(&vietnam_time(meta.generated_at)),
    );

    let months: Vec<String> = r.months.iter().map(|m| m.month.clone()).collect();
    match &r.signatures {
        Some(sig) => {
            signatures_section(sig, &mut s);
            median_section(r, &months, &mut s);
            summary_section(r, &mut s);
            refusals_section(r, &mut s);
        }
        None => {
            share_section(r, &mut s);
            summary_section(r, &mut s);
            months_section(r, &months, &mut s);
            urgency_section(r, &mut s);
            refusals_section(r, &mut s);
            median_section(r, &months, &mut s);
        }
    }
    s.push_str("</main>\n</body>\n</html>\n");
    s
}

/// `4/6`: documents sent early or on time, of those dispatched.
fn ratio(c: &Counts) -> String {
    format!("{}/{}", c.early + c.on_time, c.dispatched)
}

/// The lead: the on-time share over the period, large, then per month and per urgency.
fn share_section(r: &Report, s: &mut String) {
    let t = &r.totals.counts;
    s.push_str(&format!(
        "<section class=\"lead\" id=\"on-time-share\">\n<div class=\"what\">Tỷ lệ văn bản gửi đúng hạn (on-time share)</div>\n<div class=\"big\">{}</div>\n<div>{} / {} văn bản đã gửi trước hoặc đúng hạn (dispatched early or on time)</div>\n<div class=\"how\">Tỷ lệ = (trước hạn + đúng hạn) / đã gửi. Đã gửi: văn bản đã chuyển tới ít nhất một nơi nhận; văn bản chờ gửi, đang giữ, gửi lỗi, bị từ chối không tính. (share = (early + on time) / dispatched; dispatched = sent to at least one recipient.)</div>\n</section>\n",
        escape(&share_percent(t.on_time_share())),
        t.early + t.on_time,
        t.dispatched
    ));
    s.push_str("<table>\n<caption>Tỷ lệ gửi đúng hạn theo tháng (on-time share per month)</caption>\n<thead><tr><th scope=\"col\">Tháng (month)</th><th scope=\"col\">Tỷ lệ (share)</th><th scope=\"col\">Trước + đúng hạn / đã gửi (early + on time / dispatched)</th></tr></thead>\n<tbody>\n");
    for m in &r.months {
        s.push_str(&format!(
            "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td></tr>\n",
            escape(&m.month),
            escape(&share_percent(m.on_time_share)),
            escape(&ratio(&m.counts))
        ));
    }
    s.push_str("</tbody>\n</table>\n<table>\n<caption>Tỷ lệ gửi đúng hạn theo độ khẩn (on-time share per urgency)</caption>\n<thead><tr><th scope=\"col\">Độ khẩn (urgency)</th><th scope=\"col\">Tỷ lệ (share)</th><th scope=\"col\">Trước + đúng hạn / đã gửi (early + on time / dispatched)</th></tr></thead>\n<tbody>\n");
    for u in &r.urgencies {
        s.push_str(&format!(
            "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td></tr>\n",
            escape(&level_label(u)),
            escape(&share_percent(u.on_time_share)),
            escape(&ratio(&u.counts))
        ));
    }
    s.push_str("</tbody>\n</table>\n");
}

/// The incoming report's lead: S/MIME results per document, PDF results per file.
fn signatures_section(sig: &Signatures, s: &mut String) {
    s.push_str("<h2>Kết quả kiểm tra chữ ký (signature results)</h2>\n");
    for (id, caption, list, vi) in [
        (
            "chart-smime",
            "Chữ ký S/MIME của văn bản đến (S/MIME results, documents)",
            &sig.smime,
            smime_result_vietnamese as fn(&str) -> Option<&'static str>,
        ),
        (
            "chart-pdf",
            "Chữ ký trên tệp PDF (PDF signatures, files)",
            &sig.pdf,
            pdf_result_vietnamese,
        ),
    ] {
        let rows: Vec<HBar> = list
            .iter()
            .map(|x| HBar {
                label: format!("{} ({})", vi(&x.result).unwrap_or("khác"), x.result),
                code: String::new(),
                value: x.count,
            })
            .collect();
        s.push_str(&format!(
            "<figure>\n<figcaption>{}</figcaption>\n{}</figure>\n",
            escape(caption),
            hbar_chart(id, caption, "Số lượng (count)", &rows, SIGNATURES)
        ));
        s.push_str(&format!(
            "<table>\n<caption>{}</caption>\n<thead><tr><th scope=\"col\">Kết quả (result)</th><th scope=\"col\">Số lượng (count)</th></tr></thead>\n<tbody>\n",
            escape(caption)
        ));
        for r in &rows {
            s.push_str(&format!(
                "<tr><th scope=\"row\">{}</th><td>{}</td></tr>\n",
                escape(&r.label),
                r.value
            ));
        }
        s.push_str("</tbody>\n</table>\n");
    }
}

/// Summary: the whole period's counts and median delay.
fn summary_section(r: &Report, s: &mut String) {
    let t = &r.totals.counts;
    s.push_str("<h2>Tổng hợp (summary)</h2>\n<table class=\"summary\">\n<caption>Toàn kỳ báo cáo (whole period)</caption>\n<tbody>\n");
    let median = r
        .totals
        .median_delay_ms
        .map(human_delay)
        .unwrap_or_else(|| "-".into());
    let incoming = r.signatures.is_some();
    let mut rows = vec![
        ("Tổng số văn bản (documents)", t.total.to_string()),
        (
            if incoming {
                "Đã chuyển tới người nhận (delivered)"
            } else {
                "Đã gửi (dispatched)"
            },
            t.dispatched.to_string(),
        ),
    ];
    if !incoming {
        rows.extend([
            ("Tỷ lệ gửi đúng hạn (on-time share)", share_text(t)),
            ("Trước hạn (early)", t.early.to_string()),
            ("Đúng hạn (on time)", t.on_time.to_string()),
            ("Quá hạn (late)", t.late.to_string()),
        ]);
    }
    rows.extend([
        ("Chờ gửi (pending)", t.pending.to_string()),
        ("Đang giữ (held)", t.held.to_string()),
        ("Gửi lỗi (failed)", t.failed.to_string()),
        ("Bị từ chối (refused)", t.refused.to_string()),
        (
            if incoming {
                "Thời gian từ khi nhận đến khi chuyển, trung vị (median reception to delivery)"
            } else {
                "Thời gian gửi trung vị (median dispatch delay)"
            },
            median,
        ),
    ]);
    for (k, v) in rows {
        s.push_str(&format!(
            "<tr><th scope=\"row\">{}</th><td>{}</td></tr>\n",
            escape(k),
            escape(&v)
        ));
    }
    s.push_str("</tbody>\n</table>\n");
}

/// Documents per month, early / on time / late.
fn months_section(r: &Report, months: &[String], s: &mut String) {
    let month_counts: Vec<Counts> = r.months.iter().map(|m| m.counts).collect();
    s.push_str("<h2>Văn bản theo tháng: trước hạn, đúng hạn, quá hạn (documents per month)</h2>\n");
    if months.is_empty() {
        s.push_str("<p>Không có văn bản trong kỳ (no documents in the period).</p>\n");
    } else {
        let chart_title = "Văn bản đã gửi theo tháng (documents dispatched per month)";
        s.push_str(&format!(
            "<figure>\n<figcaption>{}</figcaption>\n{}</figure>\n",
            escape(chart_title),
            bar_chart(
                "chart-months",
                chart_title,
                "Tháng (month)",
                "Số văn bản (documents)",
                months,
                &timeliness_series(&month_counts),
                340,
            )
        ));
        s.push_str(&month_table(
            "Số liệu theo tháng (figures per month)",
            months,
            &month_counts,
        ));
    }
}

/// Refusals by rule.
fn refusals_section(r: &Report, s: &mut String) {
    s.push_str("<h2>Từ chối theo quy tắc (refusals by rule)</h2>\n");
    if r.refusals.is_empty() {
        s.push_str("<p>Không có văn bản bị từ chối (no refusals).</p>\n");
    } else {
        let rows: Vec<HBar> = r
            .refusals
            .iter()
            .map(|x| HBar {
                label: x.name.clone().unwrap_or_else(|| x.rule.clone()),
                code: if x.name.is_some() {
                    x.rule.clone()
                } else {
                    String::new()
                },
                value: x.count,
            })
            .collect();
        let chart_title = "Văn bản bị từ chối theo quy tắc (refused documents by rule)";
        s.push_str(&format!(
            "<figure>\n<figcaption>{}</figcaption>\n{}</figure>\n",
            escape(chart_title),
            hbar_chart(
                "chart-refusals",
                chart_title,
                "Số văn bản bị từ chối (refused documents)",
                &rows,
                REFUSED
            )
        ));
        s.push_str("<table>\n<caption>Số liệu từ chối (refusals)</caption>\n<thead><tr><th scope=\"col\">Quy tắc (rule)</th><th scope=\"col\">Số văn bản (documents)</th></tr></thead>\n<tbody>\n");
        for x in &r.refusals {
            s.push_str(&format!(
                "<tr><th scope=\"row\">{}</th><td>{}</td></tr>\n",
                escape(&x.label()),
                x.count
            ));
        }
        s.push_str("</tbody>\n</table>\n");
    }
}

/// Median dispatch delay per month.
fn median_section(r: &Report, months: &[String], s: &mut String) {
    let (heading, chart_title) = if r.signatures.is_some() {
        (
            "Thời gian từ khi nhận đến khi chuyển, trung vị theo tháng (median reception to delivery per month)",
            "Thời gian từ khi nhận đến khi chuyển, trung vị (median reception to delivery)",
        )
    } else {
        (
            "Thời gian gửi trung vị theo tháng (median dispatch delay per month)",
            "Thời gian gửi trung vị (median dispatch delay)",
        )
    };
    s.push_str(&format!("<h2>{}</h2>\n", escape(heading)));
    let max_median = r
        .months
        .iter()
        .filter_map(|m| m.median_delay_ms)
        .max()
        .unwrap_or(0);
    if r.months.iter().all(|m| m.median_delay_ms.is_none()) {
        s.push_str("<p>Chưa có văn bản nào được gửi (nothing dispatched).</p>\n");
    } else {
        let (div, vi, en) = delay_unit(max_median);
        let series = [Series {
            label: "Trung vị (median)",
            colour: MEDIAN,
            values: r
                .months
                .iter()
                .map(|m| m.median_delay_ms.unwrap_or(0) as f64 / div)
                .collect(),
        }];
        s.push_str(&format!(
            "<figure>\n<figcaption>{}</figcaption>\n{}</figure>\n",
            escape(chart_title),
            bar_chart(
                "chart-median",
                chart_title,
                "Tháng (month)",
                &format!("Trung vị, {vi} (median, {en})"),
                months,
                &series,
                300,
            )
        ));
        s.push_str(&format!("<table>\n<caption>{}</caption>\n<thead><tr><th scope=\"col\">Tháng (month)</th><th scope=\"col\">Số văn bản (documents)</th>", escape(chart_title)));
        s.push_str("<th scope=\"col\">Trung vị (median)</th><th scope=\"col\">ms</th></tr></thead>\n<tbody>\n");
        for m in &r.months {
            s.push_str(&format!(
                "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                escape(&m.month),
                m.counts.dispatched,
                m.median_delay_ms
                    .map(human_delay)
                    .unwrap_or_else(|| "-".into()),
                m.median_delay_ms
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "-".into()),
            ));
        }
        s.push_str("</tbody>\n</table>\n");
    }
}

/// By urgency: one chart comparing the levels (early / on time / late stacked), and the
/// levels' table.
fn urgency_section(r: &Report, s: &mut String) {
    s.push_str("<h2>Theo độ khẩn (by urgency)</h2>\n");
    let levels: Vec<String> = r
        .urgencies
        .iter()
        .map(|u| u.level.name.to_string())
        .collect();
    let counts: Vec<Counts> = r.urgencies.iter().map(|u| u.counts).collect();
    let chart_title = "Văn bản đã gửi theo độ khẩn (documents dispatched per urgency)";
    s.push_str(&format!(
        "<figure>\n<figcaption>{}</figcaption>\n{}</figure>\n",
        escape(chart_title),
        bar_chart(
            "chart-urgency",
            chart_title,
            "Độ khẩn (urgency)",
            "Số văn bản (documents)",
            &levels,
            &timeliness_series(&counts),
            300,
        )
    ));
    s.push_str("<table>\n<caption>Tổng hợp theo độ khẩn (totals by urgency)</caption>\n<thead><tr><th scope=\"col\">Độ khẩn (urgency)</th><th scope=\"col\">Tỷ lệ đúng hạn (on-time share)</th><th scope=\"col\">Trước hạn (early)</th><th scope=\"col\">Đúng hạn (on time)</th><th scope=\"col\">Quá hạn (late)</th><th scope=\"col\">Đã gửi (dispatched)</th><th scope=\"col\">Từ chối (refused)</th><th scope=\"col\">Tổng (total)</th><th scope=\"col\">Trung vị (median)</th></tr></thead>\n<tbody>\n");
    for u in &r.urgencies {
        let c = &u.counts;
        s.push_str(&format!(
            "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            escape(&level_label(u)),
            escape(&share_percent(u.on_time_share)),
            c.early,
            c.on_time,
            c.late,
            c.dispatched,
            c.refused,
            c.total,
            escape(&u.median_delay_ms
                .map(human_delay)
                .unwrap_or_else(|| "-".into()))
        ));
    }
    s.push_str("</tbody>\n</table>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape("<script>alert('x')</script>&\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"
        );
    }

    #[test]
    fn axis_bounds_are_round() {
        assert_eq!(nice_max(0.0), (5.0, 1.0));
        assert_eq!(nice_max(3.0), (3.0, 1.0));
        assert_eq!(nice_max(47.0), (50.0, 10.0));
        assert_eq!(nice_max(1370.0), (1500.0, 250.0));
        assert_eq!(nice_max(512.0), (600.0, 100.0));
    }

    #[test]
    fn delays_get_a_unit_by_size_and_ticks_stay_distinct() {
        assert_eq!(delay_unit(250).2, "ms");
        assert_eq!(delay_unit(30_000).2, "s");
        assert_eq!(delay_unit(240_000).2, "min");
        assert_eq!(delay_unit(172_800_000).2, "h");
        assert_eq!(fmt_tick(0.05), "0.05");
        assert_eq!(fmt_tick(2.5), "2.5");
        assert_eq!(fmt_tick(40.0), "40");
    }

    #[test]
    fn times_are_given_in_vietnam() {
        let t = time::macros::datetime!(2026-02-28 17:30 UTC);
        assert_eq!(vietnam_time(t), "2026-03-01 00:30 +07:00");
    }
}
