//! The levels of Decree 30/2020: độ khẩn (urgency) and độ mật (secrecy), with their
//! Vietnamese names, ASCII forms and edXML Priority values.

use unicode_normalization::UnicodeNormalization;

/// Độ khẩn. Ordered: a higher level is more urgent and takes an earlier delivery lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Urgency {
    #[default]
    Thuong = 0,
    Khan = 1,
    ThuongKhan = 2,
    HoaToc = 3,
    HoaTocHenGio = 4,
}

impl Urgency {
    pub const ALL: [Urgency; 5] = [
        Urgency::Thuong,
        Urgency::Khan,
        Urgency::ThuongKhan,
        Urgency::HoaToc,
        Urgency::HoaTocHenGio,
    ];
    pub fn ascii(self) -> &'static str {
        match self {
            Urgency::Thuong => "thuong",
            Urgency::Khan => "khan",
            Urgency::ThuongKhan => "thuong-khan",
            Urgency::HoaToc => "hoa-toc",
            Urgency::HoaTocHenGio => "hoa-toc-hen-gio",
        }
    }
    /// The name as DOMAIN.md writes it.
    pub fn vietnamese(self) -> &'static str {
        match self {
            Urgency::Thuong => "Thường",
            Urgency::Khan => "Khẩn",
            Urgency::ThuongKhan => "Thượng khẩn",
            Urgency::HoaToc => "Hỏa tốc",
            Urgency::HoaTocHenGio => "Hỏa tốc hẹn giờ",
        }
    }
    pub fn rank(self) -> i32 {
        self as i32
    }
    pub fn from_rank(r: i32) -> Urgency {
        Urgency::ALL
            .into_iter()
            .find(|u| u.rank() == r)
            .unwrap_or_default()
    }
    /// Khẩn and above: same-working-day dispatch and the urgent marks.
    pub fn is_urgent(self) -> bool {
        self >= Urgency::Khan
    }
    /// Accepts the ASCII form, the Vietnamese words (any case, NFC or NFD, with or without
    /// diacritics) and the edXML Priority digit.
    pub fn parse(s: &str) -> Option<Urgency> {
        let key = fold(s);
        Some(match key.as_str() {
            "thuong" | "0" | "normal" => Urgency::Thuong,
            "khan" | "1" => Urgency::Khan,
            "thuong-khan" | "2" => Urgency::ThuongKhan,
            "hoa-toc" | "3" => Urgency::HoaToc,
            "hoa-toc-hen-gio" | "4" => Urgency::HoaTocHenGio,
            _ => return None,
        })
    }
}

impl std::fmt::Display for Urgency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.vietnamese(), self.ascii())
    }
}

/// Độ mật. Ordered: a higher level is more secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Secrecy {
    #[default]
    Thuong = 0,
    Mat = 1,
    ToiMat = 2,
    TuyetMat = 3,
}

impl Secrecy {
    pub const ALL: [Secrecy; 4] = [
        Secrecy::Thuong,
        Secrecy::Mat,
        Secrecy::ToiMat,
        Secrecy::TuyetMat,
    ];
    pub fn ascii(self) -> &'static str {
        match self {
            Secrecy::Thuong => "thuong",
            Secrecy::Mat => "mat",
            Secrecy::ToiMat => "toi-mat",
            Secrecy::TuyetMat => "tuyet-mat",
        }
    }
    pub fn vietnamese(self) -> &'static str {
        match self {
            Secrecy::Thuong => "Thường",
            Secrecy::Mat => "Mật",
            Secrecy::ToiMat => "Tối mật",
            Secrecy::TuyetMat => "Tuyệt mật",
        }
    }
    pub fn rank(self) -> i32 {
        self as i32
    }
    pub fn from_rank(r: i32) -> Secrecy {
        Secrecy::ALL
            .into_iter()
            .find(|s| s.rank() == r)
            .unwrap_or_default()
    }
    pub fn parse(s: &str) -> Option<Secrecy> {
        Some(match fold(s).as_str() {
            "thuong" | "normal" => Secrecy::Thuong,
            "mat" => Secrecy::Mat,
            "toi-mat" => Secrecy::ToiMat,
            "tuyet-mat" => Secrecy::TuyetMat,
            _ => return None,
        })
    }
}

impl std::fmt::Display for Secrecy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.vietnamese(), self.ascii())
    }
}

/// Folds a level name to its ASCII form: NFD, drop combining marks, đ→d, lower case,
/// runs of spaces, underscores and hyphens to one hyphen.
pub fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut last_sep = true;
    for c in s.trim().nfd() {
        if unicode_normalization::char::is_combining_mark(c) {
            continue;
        }
        let c = match c {
            'đ' | 'Đ' => 'd',
            c => c.to_ascii_lowercase(),
        };
        if c == ' ' || c == '_' || c == '-' || c == '\t' {
            if !last_sep {
                out.push('-');
                last_sep = true;
            }
        } else {
            out.push(c);
            last_sep = false;
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_levels() {
        assert_eq!(Urgency::parse("hoa-toc"), Some(Urgency::HoaToc));
        assert_eq!(Urgency::parse("Hỏa tốc"), Some(Urgency::HoaToc));
        assert_eq!(Urgency::parse("HỎA TỐC"), Some(Urgency::HoaToc));
        let nfd: String = "Thượng khẩn".nfd().collect();
        assert_eq!(Urgency::parse(&nfd), Some(Urgency::ThuongKhan));
        assert_eq!(Urgency::parse("khẩn"), Some(Urgency::Khan));
        assert_eq!(Urgency::parse("urgent"), None);
        assert_eq!(Secrecy::parse("Tối mật"), Some(Secrecy::ToiMat));
        assert_eq!(Secrecy::parse("tuyet_mat"), Some(Secrecy::TuyetMat));
        assert_eq!(Secrecy::parse("MẬT"), Some(Secrecy::Mat));
    }

    #[test]
    fn ordering_is_strictness() {
        assert!(Urgency::HoaToc > Urgency::Khan);
        assert!(Secrecy::TuyetMat > Secrecy::Mat);
        assert!(!Urgency::Thuong.is_urgent());
        assert!(Urgency::Khan.is_urgent());
    }
}
