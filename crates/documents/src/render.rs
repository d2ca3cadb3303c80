//! Rendering an official document as a PDF in the GB/T 9704-2012 layout (公文版式): A4, 版心
//! 156 × 225 mm with the top margin 37 mm and the left margin 28 mm; the red issuer mark (发文机关
//! 标志), the document number and the red separator line; the title (2号, 22 pt) centred; the
//! main recipients; the body (3号, 16 pt, 22 lines of 28 characters, first lines indented two
//! characters, no line starting with closing punctuation); the signature block with the date
//! indented four characters from the right and the seal image pressed over both; the imprint
//! (版记) with its rules; page numbers (— 1 —).
//!
//! The official typefaces are commercial; the free CJK fonts that Debian packages are used
//! (AR PL UMing by default), or the files a county names. The font is subset and embedded
//! (CID TrueType, Identity-H, with a ToUnicode map so the text stays searchable). pdf-writer writes
//! the PDF; nothing here draws outside this one layout, so no general layout engine is pulled in.

use std::{path::Path, sync::Arc};

use pdf_writer::{Content, Filter, Finish, Name, Pdf, Rect, Ref, Str, types::FontFlags};

use crate::model::DocumentFields;

/// Where Debian puts free CJK fonts, tried in order when no font file is configured.
pub const DEFAULT_FONTS: [&str; 4] = [
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
];

const MM: f32 = 72.0 / 25.4;
const PAGE_W: f32 = 210.0 * MM;
const PAGE_H: f32 = 297.0 * MM;
const LEFT: f32 = 28.0 * MM;
const TOP: f32 = 37.0 * MM;
const TEXT_W: f32 = 156.0 * MM;
const TEXT_H: f32 = 225.0 * MM;
const BODY: f32 = 16.0;
const TITLE: f32 = 22.0;
const MARK: f32 = 36.0;
/// 225 mm / 22 lines.
const LINE: f32 = TEXT_H / 22.0;
/// 156 mm / 28 characters.
const PITCH: f32 = TEXT_W / 28.0;
const RED: (f32, f32, f32) = (0.85, 0.0, 0.0);
/// Characters that may not start a line (避头).
const NO_START: &str = "，。、；：？！）》」』”’%,.;:?!)";

/// Why a document could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// No usable CJK font.
    #[error("no CJK font found (install fonts-arphic-uming, or set documents.font_file): {0}")]
    NoFont(String),
    /// The font could not be subset.
    #[error("font: {0}")]
    Font(String),
    /// The seal image is not a readable PNG.
    #[error("seal image: {0}")]
    SealImage(String),
}

/// The CJK font used for every element.
#[derive(Clone)]
pub struct FontFile {
    data: Arc<Vec<u8>>,
    index: u32,
}

impl FontFile {
    /// Loads `configured` if given, else the first of [`DEFAULT_FONTS`] that exists and has CJK glyphs.
    pub fn load(configured: Option<&Path>) -> Result<FontFile, RenderError> {
        let candidates: Vec<&Path> = match configured {
            Some(p) => vec![p],
            None => DEFAULT_FONTS.iter().map(Path::new).collect(),
        };
        for path in &candidates {
            let Ok(data) = std::fs::read(path) else { continue };
            if let Ok(face) = ttf_parser::Face::parse(&data, 0)
                && face.glyph_index('国').is_some()
            {
                return Ok(FontFile { data: Arc::new(data), index: 0 });
            }
        }
        Err(RenderError::NoFont(candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")))
    }

    fn face(&self) -> Result<ttf_parser::Face<'_>, RenderError> {
        ttf_parser::Face::parse(&self.data, self.index).map_err(|e| RenderError::Font(e.to_string()))
    }
}

/// One thing placed on a page (points, origin at the page's bottom left).
#[derive(Debug, Clone, PartialEq)]
pub enum Mark {
    /// A run of characters at a baseline, each with its own x.
    Text {
        /// Page, from 0.
        page: usize,
        /// Characters and their x.
        glyphs: Vec<(char, f32)>,
        /// Baseline.
        y: f32,
        /// Size (pt).
        size: f32,
        /// Red (the issuer mark).
        red: bool,
    },
    /// A horizontal rule.
    Rule {
        /// Page.
        page: usize,
        /// Height.
        y: f32,
        /// Thickness (pt).
        width: f32,
        /// Red (the separator line).
        red: bool,
    },
    /// The seal image: its centre and diameter.
    Seal {
        /// Page.
        page: usize,
        /// Centre x.
        x: f32,
        /// Centre y.
        y: f32,
        /// Diameter.
        size: f32,
    },
}

/// A laid-out document.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    /// Pages.
    pub pages: usize,
    /// Everything placed.
    pub marks: Vec<Mark>,
}

/// Lays text out: where the cursor is, and breaking lines.
struct Writer<'f> {
    width_of: &'f dyn Fn(char, f32) -> f32,
    page: usize,
    /// Distance from the top of the 版心 to the next baseline.
    cursor: f32,
    marks: Vec<Mark>,
}

impl Writer<'_> {
    fn baseline(&self) -> f32 {
        PAGE_H - TOP - self.cursor
    }

    fn next_line(&mut self, step: f32) {
        self.cursor += step;
        if self.cursor > TEXT_H {
            self.page += 1;
            self.cursor = LINE * 0.8;
        }
    }

    /// Width of a character on the 28-per-line grid (half width for ASCII).
    fn advance(&self, c: char, size: f32) -> f32 {
        if c.is_ascii() { (self.width_of)(c, size) } else { PITCH * size / BODY }
    }

    fn text_width(&self, text: &str, size: f32) -> f32 {
        text.chars().map(|c| self.advance(c, size)).sum()
    }

    /// Breaks `text` into lines of at most the 版心 width (less `indent` on the first line).
    fn lines(&self, text: &str, size: f32, indent: f32) -> Vec<String> {
        let mut lines = Vec::new();
        let mut line = String::new();
        let mut width = indent;
        for c in text.chars() {
            let w = self.advance(c, size);
            if width + w > TEXT_W + 0.01 && !line.is_empty() && !NO_START.contains(c) {
                lines.push(std::mem::take(&mut line));
                width = 0.0;
            }
            line.push(c);
            width += w;
        }
        if !line.is_empty() {
            lines.push(line);
        }
        lines
    }

    fn put(&mut self, text: &str, x: f32, size: f32, red: bool) {
        let mut glyphs = Vec::new();
        let mut at = x;
        for c in text.chars() {
            glyphs.push((c, at));
            at += self.advance(c, size);
        }
        let (page, y) = (self.page, self.baseline());
        self.marks.push(Mark::Text { page, glyphs, y, size, red });
    }

    /// A paragraph: first line indented `indent` characters, lines of the body's pitch.
    fn paragraph(&mut self, text: &str, indent_chars: f32) {
        let indent = indent_chars * PITCH;
        for (i, line) in self.lines(text, BODY, indent).iter().enumerate() {
            self.next_line(LINE);
            self.put(line, LEFT + if i == 0 { indent } else { 0.0 }, BODY, false);
        }
    }

    fn centred(&mut self, text: &str, size: f32, step: f32, red: bool) {
        for line in self.lines(text, size, 0.0) {
            self.next_line(step);
            let w = self.text_width(&line, size);
            self.put(&line, LEFT + (TEXT_W - w).max(0.0) / 2.0, size, red);
        }
    }

    fn right(&mut self, text: &str, right_indent_chars: f32) -> f32 {
        self.next_line(LINE);
        let w = self.text_width(text, BODY);
        let x = LEFT + TEXT_W - right_indent_chars * PITCH - w;
        self.put(text, x, BODY, false);
        x + w / 2.0
    }

    fn rule(&mut self, width: f32, red: bool) {
        let (page, y) = (self.page, self.baseline());
        self.marks.push(Mark::Rule { page, y, width, red });
    }
}

/// The date as GB/T 9704 writes it: 2026年11月30日.
fn chinese_date(iso: &str) -> String {
    let parts: Vec<&str> = iso.trim().split('-').collect();
    match parts.as_slice() {
        [y, m, d] => format!("{y}年{}月{}日", m.trim_start_matches('0'), d.trim_start_matches('0')),
        _ => iso.to_string(),
    }
}

/// Lays out a document; `width_of(c, size)` is the advance of a (half-width) character.
pub fn layout(fields: &DocumentFields, doc_number: &str, width_of: &dyn Fn(char, f32) -> f32) -> Layout {
    let mut w = Writer { width_of, page: 0, cursor: 0.0, marks: Vec::new() };
    if !fields.urgency.is_empty() {
        w.next_line(LINE);
        w.put(&fields.urgency, LEFT, BODY, false);
    }
    // The issuer mark: its top edge 35 mm below the 版心's top edge (GB/T 9704 §7.2.3).
    w.cursor = 35.0 * MM;
    w.centred(&fields.issuer_mark, MARK, MARK, true);
    w.next_line(LINE);
    w.centred(doc_number, BODY, LINE, false);
    w.cursor += 4.0 * MM;
    w.rule(1.5, true);
    w.next_line(LINE);
    w.centred(&fields.title, TITLE, LINE * 1.2, false);
    w.next_line(LINE * 0.5);
    w.paragraph(&fields.main_recipients, 0.0);
    for para in fields.body.lines().map(str::trim).filter(|p| !p.is_empty()) {
        w.paragraph(para, 2.0);
    }
    if !fields.attachments_note.trim().is_empty() {
        w.next_line(LINE);
        w.paragraph(&format!("附件：{}", fields.attachments_note.trim()), 2.0);
    }
    // Signature block: the authority above the date, the date four characters from the right.
    w.next_line(LINE * 2.0);
    let date = chinese_date(&fields.date);
    let date_w = w.text_width(&date, BODY);
    let centre_x = LEFT + TEXT_W - 4.0 * PITCH - date_w / 2.0;
    let authority_w = w.text_width(&fields.issuing_authority, BODY);
    w.next_line(LINE);
    w.put(&fields.issuing_authority, centre_x - authority_w / 2.0, BODY, false);
    w.right(&date, 4.0);
    let (page, seal_y) = (w.page, w.baseline() + 0.8 * LINE);
    w.marks.push(Mark::Seal { page, x: centre_x, y: seal_y, size: 42.0 * MM });
    if !fields.note.trim().is_empty() {
        w.next_line(LINE);
        w.paragraph(&format!("（{}）", fields.note.trim()), 2.0);
    }
    // The imprint (版记) at the foot of the last page.
    if !fields.cc.trim().is_empty() || !fields.printer.trim().is_empty() {
        let rows = usize::from(!fields.cc.trim().is_empty()) + 1;
        let needed = LINE * rows as f32 + LINE;
        if w.cursor + needed > TEXT_H {
            w.page += 1;
        }
        w.cursor = TEXT_H - needed;
        w.rule(1.0, false);
        if !fields.cc.trim().is_empty() {
            w.paragraph(&format!("抄送：{}", fields.cc.trim()), 1.0);
            w.cursor += LINE * 0.3;
            w.rule(0.7, false);
        }
        w.next_line(LINE);
        w.put(&fields.printer, LEFT + PITCH, BODY, false);
        let print = format!("{}印发", chinese_date(&fields.print_date));
        let pw = w.text_width(&print, BODY);
        w.put(&print, LEFT + TEXT_W - PITCH - pw, BODY, false);
        w.cursor += LINE * 0.3;
        w.rule(1.0, false);
    }
    // Page numbers: — 1 —, 4号 (14 pt), 7 mm below the 版心, right on odd pages, left on even.
    let pages = w.page + 1;
    for index in 0..pages {
        let label = format!("— {} —", index + 1);
        let label_w: f32 = label.chars().map(|c| if c.is_ascii() { (w.width_of)(c, 14.0) } else { 14.0 }).sum();
        let x0 = if index % 2 == 0 { LEFT + TEXT_W - label_w - 14.0 } else { LEFT + 14.0 };
        let mut glyphs = Vec::new();
        let mut x = x0;
        for c in label.chars() {
            glyphs.push((c, x));
            x += if c.is_ascii() { (w.width_of)(c, 14.0) } else { 14.0 };
        }
        w.marks.push(Mark::Text { page: index, glyphs, y: PAGE_H - TOP - TEXT_H - 7.0 * MM - 14.0, size: 14.0, red: false });
    }
    Layout { pages, marks: w.marks }
}

/// The seal image decoded: RGB samples, alpha, size.
struct Image {
    rgb: Vec<u8>,
    alpha: Vec<u8>,
    width: u32,
    height: u32,
}

fn decode_png(png_bytes: &[u8]) -> Result<Image, RenderError> {
    let bad = |e: String| RenderError::SealImage(e);
    let mut decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().map_err(|e| bad(e.to_string()))?;
    let mut buf = vec![0; reader.output_buffer_size().ok_or_else(|| bad("image too large".into()))?];
    let info = reader.next_frame(&mut buf).map_err(|e| bad(e.to_string()))?;
    let samples = &buf[..info.buffer_size()];
    let (mut rgb, mut alpha) = (Vec::new(), Vec::new());
    let channels = info.color_type.samples();
    for px in samples.chunks(channels) {
        match px {
            [g] => rgb.extend([*g, *g, *g]),
            [g, a] => {
                rgb.extend([*g, *g, *g]);
                alpha.push(*a);
            }
            [r, g, b] => rgb.extend([*r, *g, *b]),
            [r, g, b, a] => {
                rgb.extend([*r, *g, *b]);
                alpha.push(*a);
            }
            _ => return Err(bad("unexpected pixel layout".into())),
        }
    }
    Ok(Image { rgb, alpha, width: info.width, height: info.height })
}

fn deflate(data: &[u8]) -> Vec<u8> {
    miniz_oxide::deflate::compress_to_vec_zlib(data, 6)
}

/// Renders the document as a PDF, with `seal_png` pressed over the signature block if given.
pub fn render_pdf(fields: &DocumentFields, doc_number: &str, font: &FontFile, seal_png: Option<&[u8]>) -> Result<Vec<u8>, RenderError> {
    let face = font.face()?;
    let upem = f32::from(face.units_per_em());
    let advance = |c: char, size: f32| {
        face.glyph_index(c).and_then(|g| face.glyph_hor_advance(g)).map(|a| f32::from(a) / upem * size).unwrap_or(size / 2.0)
    };
    let laid = layout(fields, doc_number, &advance);
    let seal = seal_png.map(decode_png).transpose()?;

    // Subset the font to the characters used, renumbering the glyphs.
    let mut remapper = subsetter::GlyphRemapper::new();
    let mut used: Vec<(u16, char, f32)> = Vec::new();
    for m in &laid.marks {
        if let Mark::Text { glyphs, .. } = m {
            for (c, _) in glyphs {
                let gid = face.glyph_index(*c).map(|g| g.0).unwrap_or(0);
                let new = remapper.remap(gid);
                if !used.iter().any(|(n, _, _)| *n == new) {
                    let adv = face.glyph_hor_advance(ttf_parser::GlyphId(gid)).map(f32::from).unwrap_or(upem / 2.0);
                    used.push((new, *c, adv / upem * 1000.0));
                }
            }
        }
    }
    let subset = subsetter::subset(&font.data, font.index, &remapper).map_err(|e| RenderError::Font(format!("{e:?}")))?;
    let table: std::collections::HashMap<char, u16> = used.iter().map(|(g, c, _)| (*c, *g)).collect();

    let mut pdf = Pdf::new();
    let mut next = 1;
    let mut alloc = || {
        next += 1;
        Ref::new(next)
    };
    let (catalog, tree, type0, cid, descriptor, font_file, to_unicode) =
        (Ref::new(1), alloc(), alloc(), alloc(), alloc(), alloc(), alloc());
    let (image_id, mask_id) = (alloc(), alloc());
    let page_ids: Vec<(Ref, Ref)> = (0..laid.pages).map(|_| (alloc(), alloc())).collect();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree).kids(page_ids.iter().map(|(p, _)| *p)).count(laid.pages as i32);

    let font_name = Name(b"F1");
    let base = Name(b"TBCJK+CJKSerif");
    pdf.type0_font(type0).base_font(base).encoding_predefined(Name(b"Identity-H")).descendant_font(cid).to_unicode(to_unicode);
    let info = pdf_writer::types::SystemInfo { registry: Str(b"Adobe"), ordering: Str(b"Identity"), supplement: 0 };
    let mut cid_font = pdf.cid_font(cid);
    cid_font.subtype(pdf_writer::types::CidFontType::Type2).base_font(base).system_info(info).font_descriptor(descriptor);
    cid_font.cid_to_gid_map_predefined(Name(b"Identity")).default_width(1000.0);
    {
        let mut widths = cid_font.widths();
        for (gid, _, w) in &used {
            widths.consecutive(*gid, [*w]);
        }
    }
    cid_font.finish();
    let bbox = face.global_bounding_box();
    let scale = |v: i16| f32::from(v) / upem * 1000.0;
    pdf.font_descriptor(descriptor)
        .name(base)
        .flags(FontFlags::SERIF | FontFlags::SYMBOLIC)
        .bbox(Rect::new(scale(bbox.x_min), scale(bbox.y_min), scale(bbox.x_max), scale(bbox.y_max)))
        .italic_angle(0.0)
        .ascent(scale(face.ascender()))
        .descent(scale(face.descender()))
        .cap_height(scale(face.capital_height().unwrap_or(face.ascender())))
        .stem_v(80.0)
        .font_file2(font_file);
    let compressed = deflate(&subset);
    pdf.stream(font_file, &compressed).filter(Filter::FlateDecode).pair(Name(b"Length1"), subset.len() as i32);
    let mut cmap = pdf_writer::types::UnicodeCmap::new(Name(b"Custom"), info);
    for (gid, c, _) in &used {
        cmap.pair(*gid, *c);
    }
    let cmap = cmap.finish();
    pdf.cmap(to_unicode, &cmap);

    if let Some(img) = &seal {
        let rgb = deflate(&img.rgb);
        let mut x = pdf.image_xobject(image_id, &rgb);
        x.filter(Filter::FlateDecode);
        x.width(img.width as i32).height(img.height as i32).bits_per_component(8);
        x.color_space().device_rgb();
        if !img.alpha.is_empty() {
            x.s_mask(mask_id);
        }
        x.finish();
        if !img.alpha.is_empty() {
            let alpha = deflate(&img.alpha);
            let mut m = pdf.image_xobject(mask_id, &alpha);
            m.filter(Filter::FlateDecode);
            m.width(img.width as i32).height(img.height as i32).bits_per_component(8);
            m.color_space().device_gray();
        }
    }

    for (index, (page_id, content_id)) in page_ids.iter().enumerate() {
        let mut content = Content::new();
        for m in laid.marks.iter() {
            match m {
                Mark::Text { page, glyphs, y, size, red } if *page == index => {
                    let (r, g, b) = if *red { RED } else { (0.0, 0.0, 0.0) };
                    content.set_fill_rgb(r, g, b);
                    content.begin_text();
                    content.set_font(font_name, *size);
                    for (c, x) in glyphs {
                        let gid = table.get(c).copied().unwrap_or(0);
                        content.set_text_matrix([1.0, 0.0, 0.0, 1.0, *x, *y]);
                        content.show(Str(&gid.to_be_bytes()));
                    }
                    content.end_text();
                }
                Mark::Rule { page, y, width, red } if *page == index => {
                    let (r, g, b) = if *red { RED } else { (0.0, 0.0, 0.0) };
                    content.set_stroke_rgb(r, g, b);
                    content.set_line_width(*width);
                    content.move_to(LEFT, *y);
                    content.line_to(LEFT + TEXT_W, *y);
                    content.stroke();
                }
                Mark::Seal { page, x, y, size } if *page == index && seal.is_some() => {
                    content.save_state();
                    content.transform([*size, 0.0, 0.0, *size, x - size / 2.0, y - size / 2.0]);
                    content.x_object(Name(b"Seal"));
                    content.restore_state();
                }
                _ => {}
            }
        }
        let data = deflate(&content.finish());
        let mut page = pdf.page(*page_id);
        page.media_box(Rect::new(0.0, 0.0, PAGE_W, PAGE_H)).parent(tree).contents(*content_id);
        let mut resources = page.resources();
        resources.fonts().pair(font_name, type0);
        if seal.is_some() {
            resources.x_objects().pair(Name(b"Seal"), image_id);
        }
        resources.finish();
        page.finish();
        pdf.stream(*content_id, &data).filter(Filter::FlateDecode);
    }
    Ok(pdf.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn half(_: char, size: f32) -> f32 {
        size / 2.0
    }

    fn sample() -> DocumentFields {
        DocumentFields {
            urgency: "特急".into(),
            issuer_mark: "嘉禾县人民政府文件".into(),
            title: "嘉禾县人民政府关于印发《嘉禾县政务服务事项目录》的通知".into(),
            main_recipients: "各乡镇人民政府，县直各单位：".into(),
            body: "现将《嘉禾县政务服务事项目录》印发给你们，请认真贯彻执行。各单位要按照目录要求，进一步优化办事流程，压缩办理时限，提升服务质量。\n执行中遇到的问题，请及时报县行政审批服务局。".into(),
            attachments_note: "嘉禾县政务服务事项目录".into(),
            issuing_authority: "嘉禾县人民政府".into(),
            date: "2026-11-30".into(),
            cc: "县委办公室，县人大常委会办公室，县政协办公室。".into(),
            printer: "嘉禾县人民政府办公室".into(),
            print_date: "2026-11-30".into(),
            ..DocumentFields::default()
        }
    }

    fn texts(l: &Layout) -> Vec<(String, f32, f32, f32, bool)> {
        l.marks
            .iter()
            .filter_map(|m| match m {
                Mark::Text { glyphs, y, size, red, .. } => {
                    Some((glyphs.iter().map(|(c, _)| *c).collect(), glyphs.first().map(|g| g.1).unwrap_or(0.0), *y, *size, *red))
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn the_layout_follows_gbt_9704() {
        let l = layout(&sample(), "嘉政发〔2026〕12号", &half);
        let t = texts(&l);
        let mark = t.iter().find(|x| x.0 == "嘉禾县人民政府文件").expect("issuer mark");
        assert!(mark.4 && mark.3 == MARK, "red, large");
        assert!((PAGE_H - TOP - mark.2 - (35.0 * MM + MARK)).abs() < 1.0, "its top edge 35 mm below the 版心's");
        assert!(l.marks.iter().any(|m| matches!(m, Mark::Rule { red: true, .. })), "the red separator line");
        let body: Vec<_> = t.iter().filter(|x| x.3 == BODY && !x.4).collect();
        for line in &body {
            assert!(line.0.chars().count() <= 29, "at most 28 characters (one closing mark may hang): {}", line.0);
            assert!(!NO_START.contains(line.0.chars().next().unwrap_or('a')), "no line starts with closing punctuation: {}", line.0);
        }
        let first = body.iter().find(|x| x.0.starts_with("现将")).expect("first paragraph");
        assert!((first.1 - (LEFT + 2.0 * PITCH)).abs() < 0.01, "indented two characters");
        let date = t.iter().find(|x| x.0 == "2026年11月30日").expect("date in Chinese order");
        let seal = l.marks.iter().find_map(|m| if let Mark::Seal { x, y, .. } = m { Some((*x, *y)) } else { None }).expect("seal");
        assert!(seal.1 > date.2 && seal.1 - date.2 < 2.0 * LINE, "the seal sits over the date");
        assert!(t.iter().any(|x| x.0 == "— 1 —"), "page number");
        assert!(t.iter().any(|x| x.0.starts_with("抄送：")) && t.iter().any(|x| x.0.ends_with("印发")), "the imprint");
    }

    #[test]
    fn long_bodies_flow_onto_more_pages_with_their_numbers() {
        let long = DocumentFields { body: "政务服务事项办理规范。".repeat(400), ..sample() };
        let l = layout(&long, "嘉政发〔2026〕12号", &half);
        assert!(l.pages >= 3, "{} pages", l.pages);
        let t = texts(&l);
        assert!(t.iter().any(|x| x.0 == format!("— {} —", l.pages)));
        for m in &l.marks {
            if let Mark::Text { y, size, .. } = m {
                assert!(*y > 0.0 && *y < PAGE_H, "on the page");
                assert!(*size > 0.0);
            }
        }
    }

    #[test]
    fn a_pdf_is_written_with_the_font_embedded_and_the_seal_placed() {
        let Ok(font) = FontFile::load(None) else {
            eprintln!("no CJK font installed (fonts-arphic-uming): the PDF check is skipped");
            return;
        };
        let png = include_bytes!("../tests/seal.png");
        let pdf = render_pdf(&sample(), "嘉政发〔2026〕12号", &font, Some(png)).expect("pdf");
        assert!(pdf.starts_with(b"%PDF-") && pdf.windows(5).any(|w| w == b"%%EOF"));
        let text = String::from_utf8_lossy(&pdf);
        assert!(text.contains("/Identity-H") && text.contains("/FontFile2") && text.contains("/Seal"));
        // The ToUnicode map lists 政 (U+653F), so the text can be searched and copied.
        assert!(text.to_ascii_uppercase().contains("<653F>"), "searchable text");
        assert!(pdf.len() < 400 * 1024, "the font is subset: {} bytes", pdf.len());
        assert!(render_pdf(&sample(), "嘉政发〔2026〕12号", &font, Some(b"not a png")).is_err());
    }
}
