//! The OFD package check (OFD 包校验). An OFD file (GB/T 33190, the national fixed-layout format)
//! is a ZIP package with `OFD.xml` at its root. Sniffing `PK\x03\x04` accepted any ZIP, including
//! a 194 KB file that inflates to 200 MB (a ZIP bomb). This reads the ZIP's central directory
//! (entry count, per-entry and total uncompressed size, compression ratio) and then inflates every
//! entry while counting — a central directory can lie about sizes — within the same limits.

use miniz_oxide::inflate::stream::{InflateState, inflate};
use miniz_oxide::{DataFormat, MZError, MZFlush, MZStatus};

/// At most this many bytes once decompressed, all entries together.
pub const MAX_TOTAL_UNCOMPRESSED: u64 = 64 * 1024 * 1024;
/// At most this ratio of uncompressed to compressed size per entry (text compresses ~10:1;
/// bombs by 1000:1 and more).
pub const MAX_RATIO: u64 = 200;
/// Entries below this uncompressed size are not held to the ratio (tiny files compress oddly).
const RATIO_FLOOR: u64 = 64 * 1024;
/// At most this many entries.
pub const MAX_ENTRIES: usize = 10_000;

/// Why a file is not an acceptable OFD package.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OfdProblem {
    /// Not a readable ZIP (no end record, bad offsets, unsupported compression, ZIP64, encryption).
    #[error("not a readable ZIP package")]
    NotZip,
    /// No `OFD.xml` at the package root.
    #[error("no OFD.xml at the package root")]
    NoEntryFile,
    /// Over the decompressed size, ratio or entry limits (declared or found while inflating).
    #[error("the package inflates too much")]
    TooLarge,
}

fn u16_at(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at + 2).map(|s| u64::from(u16::from_le_bytes([s[0], s[1]])))
}

fn u32_at(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at + 4).map(|s| u64::from(u32::from_le_bytes([s[0], s[1], s[2], s[3]])))
}

fn index(v: u64) -> Option<usize> {
    usize::try_from(v).ok()
}

struct Entry {
    name_is_ofd_xml: bool,
    method: u64,
    flags: u64,
    compressed: u64,
    uncompressed: u64,
    local_offset: u64,
}

/// Checks that `bytes` is an OFD package within the limits.
pub fn check_package(bytes: &[u8]) -> Result<(), OfdProblem> {
    use OfdProblem::*;
    // End of central directory: 22 bytes plus a comment of up to 65535, at the end of the file.
    let earliest = bytes.len().saturating_sub(22 + 65_535);
    let eocd =
        (earliest..=bytes.len().saturating_sub(22)).rev().find(|&i| bytes.get(i..i + 4) == Some(b"PK\x05\x06".as_slice())).ok_or(NotZip)?;
    let count = u16_at(bytes, eocd + 10).ok_or(NotZip)?;
    let cd_size = u32_at(bytes, eocd + 12).ok_or(NotZip)?;
    let cd_offset = u32_at(bytes, eocd + 16).ok_or(NotZip)?;
    if count == 0xFFFF || cd_size == 0xFFFF_FFFF || cd_offset == 0xFFFF_FFFF {
        return Err(NotZip); // ZIP64: far beyond what an upload may be.
    }
    if index(count).ok_or(NotZip)? > MAX_ENTRIES {
        return Err(TooLarge);
    }
    let cd_end = cd_offset.checked_add(cd_size).ok_or(NotZip)?;
    if cd_end > eocd as u64 {
        return Err(NotZip);
    }
    let mut entries = Vec::new();
    let mut at = index(cd_offset).ok_or(NotZip)?;
    let mut declared_total: u64 = 0;
    for _ in 0..count {
        if bytes.get(at..at + 4) != Some(b"PK\x01\x02".as_slice()) {
            return Err(NotZip);
        }
        let flags = u16_at(bytes, at + 8).ok_or(NotZip)?;
        let method = u16_at(bytes, at + 10).ok_or(NotZip)?;
        let compressed = u32_at(bytes, at + 20).ok_or(NotZip)?;
        let uncompressed = u32_at(bytes, at + 24).ok_or(NotZip)?;
        let name_len = index(u16_at(bytes, at + 28).ok_or(NotZip)?).ok_or(NotZip)?;
        let extra_len = index(u16_at(bytes, at + 30).ok_or(NotZip)?).ok_or(NotZip)?;
        let comment_len = index(u16_at(bytes, at + 32).ok_or(NotZip)?).ok_or(NotZip)?;
        let local_offset = u32_at(bytes, at + 42).ok_or(NotZip)?;
        let name = bytes.get(at + 46..at + 46 + name_len).ok_or(NotZip)?;
        if compressed == 0xFFFF_FFFF || uncompressed == 0xFFFF_FFFF || local_offset == 0xFFFF_FFFF {
            return Err(NotZip);
        }
        declared_total = declared_total.saturating_add(uncompressed);
        if declared_total > MAX_TOTAL_UNCOMPRESSED || (uncompressed > RATIO_FLOOR && uncompressed > compressed.saturating_mul(MAX_RATIO)) {
            return Err(TooLarge);
        }
        entries.push(Entry { name_is_ofd_xml: name == b"OFD.xml", method, flags, compressed, uncompressed, local_offset });
        at = at.checked_add(46 + name_len + extra_len + comment_len).ok_or(NotZip)?;
    }
    if !entries.iter().any(|e| e.name_is_ofd_xml) {
        return Err(NoEntryFile);
    }
    // Now count what the entries really inflate to.
    let mut budget = MAX_TOTAL_UNCOMPRESSED;
    for e in &entries {
        if e.flags & 1 != 0 {
            return Err(NotZip); // encrypted
        }
        let local = index(e.local_offset).ok_or(NotZip)?;
        if bytes.get(local..local + 4) != Some(b"PK\x03\x04".as_slice()) {
            return Err(NotZip);
        }
        let name_len = index(u16_at(bytes, local + 26).ok_or(NotZip)?).ok_or(NotZip)?;
        let extra_len = index(u16_at(bytes, local + 28).ok_or(NotZip)?).ok_or(NotZip)?;
        let start = local.checked_add(30 + name_len + extra_len).ok_or(NotZip)?;
        let end = start.checked_add(index(e.compressed).ok_or(NotZip)?).ok_or(NotZip)?;
        let data = bytes.get(start..end).ok_or(NotZip)?;
        // The real size may not pass the declared one, nor the ratio, nor what is left in total.
        let ratio_cap =
            if e.compressed.saturating_mul(MAX_RATIO) < RATIO_FLOOR { RATIO_FLOOR } else { e.compressed.saturating_mul(MAX_RATIO) };
        let cap = e.uncompressed.min(budget).min(ratio_cap);
        let real = match e.method {
            0 => e.compressed,
            8 => inflated_size(data, cap)?,
            _ => return Err(NotZip),
        };
        if real != e.uncompressed || real > cap {
            return Err(if real > cap { TooLarge } else { NotZip });
        }
        budget -= real;
    }
    Ok(())
}

/// Inflates raw deflate `data` into a small buffer, counting; stops past `cap`.
fn inflated_size(data: &[u8], cap: u64) -> Result<u64, OfdProblem> {
    let mut state = InflateState::new_boxed(DataFormat::Raw);
    let mut out = vec![0u8; 32 * 1024];
    let mut input = data;
    let mut total: u64 = 0;
    loop {
        let r = inflate(&mut state, input, &mut out, MZFlush::None);
        input = input.get(r.bytes_consumed..).unwrap_or_default();
        total = total.saturating_add(r.bytes_written as u64);
        if total > cap {
            return Err(OfdProblem::TooLarge);
        }
        match r.status {
            Ok(MZStatus::StreamEnd) => return Ok(total),
            Ok(_) | Err(MZError::Buf) if r.bytes_consumed > 0 || r.bytes_written > 0 => {}
            _ => return Err(OfdProblem::NotZip),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Builds a ZIP of (name, content, deflate?) entries; `lie` overrides the declared
    /// uncompressed size of every entry but `OFD.xml`.
    pub(crate) fn zip(entries: &[(&str, &[u8], bool)], lie: Option<u32>) -> Vec<u8> {
        let mut out = Vec::new();
        let mut central = Vec::new();
        for (name, content, deflate) in entries {
            let data = if *deflate { miniz_oxide::deflate::compress_to_vec(content, 6) } else { content.to_vec() };
            let method: u16 = if *deflate { 8 } else { 0 };
            let size = lie.filter(|_| *name != "OFD.xml").unwrap_or(content.len() as u32);
            let offset = out.len() as u32;
            let mut local = b"PK\x03\x04".to_vec();
            local.extend(20u16.to_le_bytes());
            local.extend(0u16.to_le_bytes());
            local.extend(method.to_le_bytes());
            local.extend([0u8; 8]); // time, date, crc
            local.extend((data.len() as u32).to_le_bytes());
            local.extend(size.to_le_bytes());
            local.extend((name.len() as u16).to_le_bytes());
            local.extend(0u16.to_le_bytes());
            local.extend(name.as_bytes());
            out.extend(local);
            out.extend(&data);
            let mut c = b"PK\x01\x02".to_vec();
            c.extend(20u16.to_le_bytes());
            c.extend(20u16.to_le_bytes());
            c.extend(0u16.to_le_bytes());
            c.extend(method.to_le_bytes());
            c.extend([0u8; 8]);
            c.extend((data.len() as u32).to_le_bytes());
            c.extend(size.to_le_bytes());
            c.extend((name.len() as u16).to_le_bytes());
            c.extend([0u8; 12]); // extra, comment, disk, internal attrs, external attrs (4)
            c.extend(offset.to_le_bytes());
            c.extend(name.as_bytes());
            central.extend(c);
        }
        let cd_offset = out.len() as u32;
        let n = entries.len() as u16;
        out.extend(&central);
        out.extend(b"PK\x05\x06");
        out.extend([0u8; 4]);
        out.extend(n.to_le_bytes());
        out.extend(n.to_le_bytes());
        out.extend((central.len() as u32).to_le_bytes());
        out.extend(cd_offset.to_le_bytes());
        out.extend(0u16.to_le_bytes());
        out
    }

    #[test]
    fn a_real_package_passes() {
        let ofd = zip(&[("OFD.xml", b"<ofd:OFD/>", true), ("Doc_0/Document.xml", b"<ofd:Document/>", false)], None);
        assert_eq!(check_package(&ofd), Ok(()));
    }

    #[test]
    fn any_other_zip_is_refused() {
        assert_eq!(check_package(&zip(&[("word/document.xml", b"<w/>", true)], None)), Err(OfdProblem::NoEntryFile));
        assert_eq!(check_package(&zip(&[("sub/OFD.xml", b"<ofd/>", true)], None)), Err(OfdProblem::NoEntryFile));
        assert_eq!(check_package(b"PK\x03\x04 not really"), Err(OfdProblem::NotZip));
    }

    #[test]
    fn bombs_are_refused_by_the_directory_and_by_counting() {
        let zeros = vec![0u8; 8 * 1024 * 1024];
        // Declared honestly: the ratio gives it away.
        assert_eq!(check_package(&zip(&[("OFD.xml", b"<ofd/>", true), ("big", &zeros, true)], None)), Err(OfdProblem::TooLarge));
        // Declared small: inflating finds out.
        assert_eq!(check_package(&zip(&[("OFD.xml", b"<ofd/>", true), ("big", &zeros, true)], Some(1000))), Err(OfdProblem::TooLarge));
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512), cut in 0usize..400) {
            let _ = check_package(&bytes);
            let mut ofd = zip(&[("OFD.xml", b"<ofd:OFD/>", true), ("a.xml", &bytes, true)], None);
            let _ = check_package(&ofd[..cut.min(ofd.len())]);
            if let Some(b) = ofd.get_mut(cut) {
                *b ^= 0x5A;
            }
            let _ = check_package(&ofd);
        }
    }
}
