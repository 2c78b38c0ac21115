//! The organisation's seal as it shows on the page (Decree 30/2020 Appendix I; DOMAIN.md "The
//! two signatures"): the office's seal image, red, a PNG with a transparent background, at the
//! seal's real size, over about the left third of the competent signer's visible signature,
//! with the signing time under it (ISO 8601, Vietnam time). Here: the image read once from
//! its PNG (`cert import --seal-image`), where it goes, and the appearance objects the
//! incremental update adds.
//!
//! The organisation's name is in the signature dictionary's `/Name`, not drawn: the page text
//! uses the standard Helvetica font, which has no glyphs for most Vietnamese letters, and the
//! product embeds no font.

use std::io::Write;

use lopdf::{Dictionary, Object, ObjectId, Stream};
use time::OffsetDateTime;

/// The largest seal image file accepted (bytes).
pub const MAX_SEAL_IMAGE_BYTES: usize = 2 * 1024 * 1024;
/// The largest side, in pixels (a 42 mm seal at 1200 dpi is under 2,000 pixels).
pub const MAX_SEAL_IMAGE_SIDE: u32 = 4096;
/// Seals of Vietnamese offices are 20 to 50 mm across; a width outside this range is a
/// wrong resolution in the file or a typo.
const SEAL_WIDTH_MM: std::ops::RangeInclusive<f32> = 10.0..=80.0;
const POINTS_PER_MM: f32 = 72.0 / 25.4;
/// The signing time's font size at most, and the room it takes under the image.
const TIME_FONT_SIZE: f32 = 7.0;

/// Why a seal image is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SealImageError {
    #[error("the seal image is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the seal image is not a readable PNG: {0}")]
    NotPng(String),
    #[error("the seal image is {width}×{height} pixels; at most {limit} on a side")]
    TooManyPixels { width: u32, height: u32, limit: u32 },
    #[error("the seal image does not say its physical size (no pHYs resolution in the PNG): give the seal's real width with --seal-width-mm")]
    NoSize,
    #[error("a seal {width_mm:.1} mm wide is not a real seal's size (10 to 80 mm): check the PNG's resolution or --seal-width-mm")]
    ImplausibleSize { width_mm: f32 },
}

/// The office's seal image, decoded and compressed for a PDF once, when the identity is
/// loaded.
#[derive(Clone, PartialEq)]
pub struct SealImage {
    pub width_px: u32,
    pub height_px: u32,
    /// The seal's real width.
    pub width_mm: f32,
    /// The colour samples (RGB, 8 bits), zlib-compressed (`/FlateDecode`).
    rgb: Vec<u8>,
    /// The alpha samples (8 bits), zlib-compressed; `None` when the image is opaque.
    alpha: Option<Vec<u8>>,
}

impl std::fmt::Debug for SealImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealImage")
            .field("width_px", &self.width_px)
            .field("height_px", &self.height_px)
            .field("width_mm", &self.width_mm)
            .field("transparent", &self.alpha.is_some())
            .finish()
    }
}

impl SealImage {
    /// Reads a PNG (any colour type and depth); the real width is `width_mm` when given,
    /// else the PNG's own resolution (pHYs, pixels per metre).
    pub fn from_png(png_bytes: &[u8], width_mm: Option<f32>) -> Result<SealImage, SealImageError> {
        if png_bytes.len() > MAX_SEAL_IMAGE_BYTES {
            return Err(SealImageError::TooLarge {
                limit: MAX_SEAL_IMAGE_BYTES,
            });
        }
        let bad = |e: png::DecodingError| SealImageError::NotPng(e.to_string());
        let mut decoder = png::Decoder::new_with_limits(
            std::io::Cursor::new(png_bytes),
            png::Limits {
                bytes: 4 * (MAX_SEAL_IMAGE_SIDE as usize).pow(2),
            },
        );
        decoder.set_transformations(png::Transformations::normalize_to_color8());
        let mut reader = decoder.read_info().map_err(bad)?;
        let (width, height) = (reader.info().width, reader.info().height);
        if width > MAX_SEAL_IMAGE_SIDE || height > MAX_SEAL_IMAGE_SIDE {
            return Err(SealImageError::TooManyPixels {
                width,
                height,
                limit: MAX_SEAL_IMAGE_SIDE,
            });
        }
        let from_file = reader.info().pixel_dims.and_then(|d| {
            (d.unit == png::Unit::Meter && d.xppu > 0)
                .then(|| width as f32 / d.xppu as f32 * 1000.0)
        });
        let width_mm = width_mm.or(from_file).ok_or(SealImageError::NoSize)?;
        if !SEAL_WIDTH_MM.contains(&width_mm) {
            return Err(SealImageError::ImplausibleSize { width_mm });
        }
        let size = reader
            .output_buffer_size()
            .ok_or_else(|| SealImageError::NotPng("the image is too large to decode".into()))?;
        let mut buf = vec![0; size];
        let frame = reader.next_frame(&mut buf).map_err(bad)?;
        let pixels = &buf[..frame.buffer_size()];
        let (rgb, alpha) = split_samples(pixels, frame.color_type)?;
        let opaque = alpha.iter().all(|&a| a == 255);
        Ok(SealImage {
            width_px: width,
            height_px: height,
            width_mm,
            rgb: deflate(&rgb),
            alpha: (!opaque).then(|| deflate(&alpha)),
        })
    }

    /// The seal's size on the page, in points.
    fn size_pt(&self) -> (f32, f32) {
        let w = self.width_mm * POINTS_PER_MM;
        (w, w * self.height_px as f32 / self.width_px.max(1) as f32)
    }
}

/// 8-bit samples of any colour type as RGB and alpha planes.
fn split_samples(
    pixels: &[u8],
    colour: png::ColorType,
) -> Result<(Vec<u8>, Vec<u8>), SealImageError> {
    let n = colour.samples();
    let count = pixels.len() / n.max(1);
    let mut rgb = Vec::with_capacity(count * 3);
    let mut alpha = Vec::with_capacity(count);
    for p in pixels.chunks_exact(n) {
        match colour {
            png::ColorType::Grayscale => {
                rgb.extend_from_slice(&[p[0]; 3]);
                alpha.push(255);
            }
            png::ColorType::GrayscaleAlpha => {
                rgb.extend_from_slice(&[p[0]; 3]);
                alpha.push(p[1]);
            }
            png::ColorType::Rgb => {
                rgb.extend_from_slice(p);
                alpha.push(255);
            }
            png::ColorType::Rgba => {
                rgb.extend_from_slice(&p[..3]);
                alpha.push(p[3]);
            }
            png::ColorType::Indexed => {
                return Err(SealImageError::NotPng(
                    "a palette image that could not be expanded".into(),
                ))
            }
        }
    }
    Ok((rgb, alpha))
}

fn deflate(data: &[u8]) -> Vec<u8> {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing to a Vec cannot fail.
    let _ = z.write_all(data);
    z.finish().unwrap_or_default()
}

/// Where the competent signer's visible signature is: its page and its rectangle.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placement {
    pub page: ObjectId,
    /// `[x1 y1 x2 y2]` in default user space.
    pub rect: [f32; 4],
}

/// The seal's widget rectangle: the image at its real size, its right edge a third of the
/// way into the signer's signature and its middle level with the signature's, the signing
/// time in a band under it; moved right if it would start left of the page (`page_left`).
pub fn seal_rect(image: &SealImage, over: &Placement, page_left: f32) -> [f32; 4] {
    let [a, b, c, d] = over.rect;
    let (x1, x2, y1, y2) = (a.min(c), a.max(c), b.min(d), b.max(d));
    let (w, h) = image.size_pt();
    let band = TIME_FONT_SIZE * 1.6;
    let right = (x1 + (x2 - x1) / 3.0).max(page_left + w);
    let middle = (y1 + y2) / 2.0;
    let bottom = middle - h / 2.0 - band;
    [right - w, bottom, right, middle + h / 2.0]
}

/// The objects of a visible seal: the appearance form (image and time), the image and its
/// soft mask, and the font. Returns them with the form's id; `alloc` gives new object ids.
pub fn appearance_objects(
    image: &SealImage,
    rect: [f32; 4],
    at: OffsetDateTime,
    alloc: &mut dyn FnMut() -> ObjectId,
) -> (ObjectId, Vec<(ObjectId, Object)>) {
    let (form_id, image_id, font_id) = (alloc(), alloc(), alloc());
    let mut objects = Vec::with_capacity(5);
    let (w, h) = (rect[2] - rect[0], rect[3] - rect[1]);
    let (iw, ih) = image.size_pt();
    let text = iso_time(at);
    // Helvetica's widths, in thousandths of an em, for the characters of an ISO 8601 time.
    let em: f32 = text
        .chars()
        .map(|c| match c {
            '-' => 333.0,
            ':' => 278.0,
            'T' => 611.0,
            '+' => 584.0,
            _ => 556.0,
        })
        .sum::<f32>()
        / 1000.0;
    let size = TIME_FONT_SIZE.min(w / em);
    let band = h - ih;
    let content = format!(
        "q {iw:.2} 0 0 {ih:.2} 0 {band:.2} cm /Seal Do Q\nBT /Helv {size:.2} Tf 0 g {tx:.2} {ty:.2} Td ({text}) Tj ET\n",
        tx = (w - em * size) / 2.0,
        ty = (band - size) / 2.0 + size * 0.2,
    );

    let mut image_dict = Dictionary::new();
    image_dict.set("Type", Object::Name(b"XObject".to_vec()));
    image_dict.set("Subtype", Object::Name(b"Image".to_vec()));
    image_dict.set("Width", i64::from(image.width_px));
    image_dict.set("Height", i64::from(image.height_px));
    image_dict.set("ColorSpace", Object::Name(b"DeviceRGB".to_vec()));
    image_dict.set("BitsPerComponent", 8);
    image_dict.set("Filter", Object::Name(b"FlateDecode".to_vec()));
    if let Some(alpha) = &image.alpha {
        let mask_id = alloc();
        let mut mask = image_dict.clone();
        mask.set("ColorSpace", Object::Name(b"DeviceGray".to_vec()));
        objects.push((mask_id, Object::Stream(Stream::new(mask, alpha.clone()))));
        image_dict.set("SMask", Object::Reference(mask_id));
    }
    objects.push((
        image_id,
        Object::Stream(Stream::new(image_dict, image.rgb.clone())),
    ));

    let mut font = Dictionary::new();
    font.set("Type", Object::Name(b"Font".to_vec()));
    font.set("Subtype", Object::Name(b"Type1".to_vec()));
    font.set("BaseFont", Object::Name(b"Helvetica".to_vec()));
    font.set("Encoding", Object::Name(b"WinAnsiEncoding".to_vec()));
    objects.push((font_id, Object::Dictionary(font)));

    let mut resources = Dictionary::new();
    resources.set(
        "XObject",
        Dictionary::from_iter([("Seal", Object::Reference(image_id))]),
    );
    resources.set(
        "Font",
        Dictionary::from_iter([("Helv", Object::Reference(font_id))]),
    );
    let mut form = Dictionary::new();
    form.set("Type", Object::Name(b"XObject".to_vec()));
    form.set("Subtype", Object::Name(b"Form".to_vec()));
    form.set("BBox", vec![0.into(), 0.into(), w.into(), h.into()]);
    form.set("Resources", resources);
    objects.push((
        form_id,
        Object::Stream(Stream::new(form, content.into_bytes())),
    ));
    (form_id, objects)
}

/// The signing time as the appearance shows it: ISO 8601 in Vietnam time,
/// `2026-02-14T00:05:09+07:00`.
pub fn iso_time(at: OffsetDateTime) -> String {
    let t = at.to_offset(time::macros::offset!(+7));
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}+07:00",
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

    /// A `w`×`h` RGBA PNG, `ppm` pixels per metre when given.
    pub(crate) fn png_of(w: u32, h: u32, ppm: Option<u32>) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut out, w, h);
            enc.set_color(png::ColorType::Rgba);
            enc.set_depth(png::BitDepth::Eight);
            if let Some(p) = ppm {
                enc.set_pixel_dims(Some(png::PixelDimensions {
                    xppu: p,
                    yppu: p,
                    unit: png::Unit::Meter,
                }));
            }
            let mut writer = enc.write_header().unwrap();
            let data: Vec<u8> = (0..w * h)
                .flat_map(|i| {
                    if i % 2 == 0 {
                        [200, 0, 0, 255]
                    } else {
                        [0, 0, 0, 0]
                    }
                })
                .collect();
            writer.write_image_data(&data).unwrap();
        }
        out
    }

    #[test]
    fn the_real_size_comes_from_the_file_or_the_admin() {
        // 400 px at 10,000 px/m = 40 mm.
        let img = SealImage::from_png(&png_of(400, 400, Some(10_000)), None).unwrap();
        assert!((img.width_mm - 40.0).abs() < 0.01);
        assert!(img.alpha.is_some());
        let img = SealImage::from_png(&png_of(400, 400, Some(10_000)), Some(36.0)).unwrap();
        assert_eq!(img.width_mm, 36.0);
        assert_eq!(
            SealImage::from_png(&png_of(40, 40, None), None),
            Err(SealImageError::NoSize)
        );
        // 400 px at 100,000 px/m = 4 mm: a resolution mistake.
        assert!(matches!(
            SealImage::from_png(&png_of(400, 400, Some(100_000)), None),
            Err(SealImageError::ImplausibleSize { .. })
        ));
        assert!(matches!(
            SealImage::from_png(b"GIF89a not a png", Some(36.0)),
            Err(SealImageError::NotPng(_))
        ));
    }

    #[test]
    fn the_seal_covers_the_left_third_of_the_signature() {
        let img = SealImage::from_png(&png_of(400, 400, Some(10_000)), None).unwrap();
        let over = Placement {
            page: (1, 0),
            rect: [300.0, 100.0, 480.0, 160.0],
        };
        let [x1, y1, x2, y2] = seal_rect(&img, &over, 0.0);
        let side = 40.0 * POINTS_PER_MM;
        assert!((x2 - 360.0).abs() < 0.01, "right edge a third in: {x2}");
        assert!((x2 - x1 - side).abs() < 0.01);
        // The image part (above the time band) is centred on the signature.
        assert!(((y2 - side / 2.0) - 130.0).abs() < 0.01);
        assert!(y1 < y2 - side);
        // Near the page's left edge it moves right rather than off the page.
        let near = Placement {
            page: (1, 0),
            rect: [10.0, 100.0, 70.0, 160.0],
        };
        assert!((seal_rect(&img, &near, 0.0)[0]).abs() < 0.01);
        assert_eq!(
            iso_time(time::macros::datetime!(2026-02-13 17:05:09 UTC)),
            "2026-02-14T00:05:09+07:00"
        );
    }
}
