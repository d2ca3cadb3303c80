//! Upload checks (材料上传): size, the file name (no control or bidirectional characters), the
//! declared type (file extension) against the type sniffed from the first bytes, an OFD's package
//! structure and decompressed size ([`crate::ofd`]), and a sanitised file name. Accepted: PDF, OFD (the national fixed-layout
//! format, a ZIP container), JPEG and PNG — what scanners and e-licence systems produce.

/// Why an upload was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UploadError {
    /// Empty file.
    #[error("the file is empty")]
    Empty,
    /// Over the size limit.
    #[error("the file is too large")]
    TooLarge,
    /// Extension not accepted.
    #[error("this file type is not accepted")]
    Type,
    /// The content is not what the extension says.
    #[error("the content does not match the file type")]
    Mismatch,
    /// The file name holds control or bidirectional characters, or nothing visible.
    #[error("the file name is not acceptable")]
    Name,
    /// An `.ofd` file that is not an OFD package (a ZIP with `OFD.xml` at its root).
    #[error("not an OFD package")]
    NotOfd,
    /// An OFD package that inflates beyond the limits (a ZIP bomb).
    #[error("the OFD package inflates too much")]
    OfdTooLarge,
}

impl UploadError {
    /// The i18n key (the messages live under `approval.error` for historical reasons).
    pub fn message_key(self) -> &'static str {
        match self {
            UploadError::Empty => "approval.error.upload_empty",
            UploadError::TooLarge => "approval.error.upload_too_large",
            UploadError::Type => "approval.error.upload_type",
            UploadError::Mismatch => "approval.error.upload_mismatch",
            UploadError::Name => "approval.error.upload_name",
            UploadError::NotOfd => "approval.error.upload_not_ofd",
            UploadError::OfdTooLarge => "approval.error.upload_ofd_too_large",
        }
    }
}

/// A checked upload: sanitised name and content type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedFile {
    /// Safe file name.
    pub file_name: String,
    /// Content type from the content.
    pub content_type: &'static str,
}

fn sniff(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"%PDF-") {
        Some("application/pdf")
    } else if bytes.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]) {
        Some("image/png")
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"PK\x03\x04") {
        Some("application/ofd")
    } else {
        None
    }
}

/// Keeps the last path component, drops control and reserved characters, caps the length.
pub fn sanitise_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let clean: String = base.chars().filter(|c| !c.is_control() && !matches!(c, '<' | '>' | ':' | '"' | '|' | '?' | '*')).collect();
    let clean = clean.trim().trim_start_matches('.').to_string();
    let (stem, ext) = match clean.rsplit_once('.') {
        Some((s, e)) => (s.to_string(), format!(".{}", e.to_ascii_lowercase())),
        None => (clean.clone(), String::new()),
    };
    let stem: String = stem.chars().take(80).collect();
    let stem = if stem.is_empty() { "file".to_string() } else { stem };
    format!("{stem}{}", ext.chars().take(10).collect::<String>())
}

/// Checks an upload of `bytes` named `name` against `limit` bytes.
pub fn check(name: &str, bytes: &[u8], limit: usize) -> Result<CheckedFile, UploadError> {
    if bytes.is_empty() {
        return Err(UploadError::Empty);
    }
    if bytes.len() > limit {
        return Err(UploadError::TooLarge);
    }
    if crate::text::check_text(name, crate::text::TextKind::Name).is_err() {
        return Err(UploadError::Name);
    }
    let file_name = sanitise_name(name);
    let declared = match file_name.rsplit_once('.').map(|(_, e)| e) {
        Some("pdf") => "application/pdf",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("ofd") => "application/ofd",
        _ => return Err(UploadError::Type),
    };
    match sniff(bytes) {
        Some(t) if t == declared => {}
        _ => return Err(UploadError::Mismatch),
    }
    if declared == "application/ofd" {
        crate::ofd::check_package(bytes).map_err(|p| match p {
            crate::ofd::OfdProblem::TooLarge => UploadError::OfdTooLarge,
            _ => UploadError::NotOfd,
        })?;
    }
    Ok(CheckedFile { file_name, content_type: declared })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn declared_and_sniffed_types_must_agree() {
        assert_eq!(check("营业执照.PDF", b"%PDF-1.7 x", 100).map(|f| f.content_type), Ok("application/pdf"));
        assert_eq!(check("photo.jpg", b"%PDF-1.7 x", 100), Err(UploadError::Mismatch));
        assert_eq!(check("run.exe", b"MZ...", 100), Err(UploadError::Type));
        assert_eq!(check("a.pdf", b"", 100), Err(UploadError::Empty));
        assert_eq!(check("a.pdf", &[b'%'; 200], 100), Err(UploadError::TooLarge));
    }

    #[test]
    fn spoofed_names_and_fake_ofds_are_refused() {
        assert_eq!(check("申请书\u{202E}fdp.exe", b"%PDF-1.7", 100), Err(UploadError::Name));
        assert_eq!(check("a\0.pdf", b"%PDF-1.7", 100), Err(UploadError::Name));
        assert_eq!(check("\u{200B}", b"%PDF-1.7", 100), Err(UploadError::Name));
        let docx = crate::ofd::tests::zip(&[("word/document.xml", b"<w/>", true)], None);
        assert_eq!(check("公文.ofd", &docx, 1 << 20), Err(UploadError::NotOfd));
        let ofd = crate::ofd::tests::zip(&[("OFD.xml", b"<ofd:OFD/>", true)], None);
        assert_eq!(check("公文.ofd", &ofd, 1 << 20).map(|f| f.content_type), Ok("application/ofd"));
        let bomb = crate::ofd::tests::zip(&[("OFD.xml", b"<ofd/>", true), ("z", &vec![0u8; 4 << 20], true)], Some(10));
        assert_eq!(check("公文.ofd", &bomb, 1 << 20), Err(UploadError::OfdTooLarge));
    }

    #[test]
    fn names_lose_paths_and_odd_characters() {
        assert_eq!(sanitise_name("..\\..\\windows/system32/申请书.pdf"), "申请书.pdf");
        assert_eq!(sanitise_name("../../.hidden"), "hidden");
        assert_eq!(sanitise_name("a<b>|c?.PNG"), "abc.png");
        assert_eq!(sanitise_name(""), "file");
    }

    proptest! {
        #[test]
        fn never_panics(name in "\\PC{0,60}", bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = check(&name, &bytes, 32);
            let n = sanitise_name(&name);
            prop_assert!(!n.contains('/') && !n.contains('\\') && !n.starts_with('.'));
        }
    }
}
