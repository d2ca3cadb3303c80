//! The one CSV writer of every export (导出): UTF-8 with a BOM (so that spreadsheet programs show
//! Chinese correctly), and every cell neutralised against formula injection (CSV 公式注入).
//!
//! A spreadsheet runs a cell that starts with `=`, `+`, `-` or `@` (and, in some programs, a tab
//! or carriage return in front of one) as a formula: a display name such as
//! `=HYPERLINK("http://x","y")` becomes a link, or worse. Such a cell gets a leading `'`, which
//! spreadsheets show as text. Plain numbers (`-3`, `12.5`) are left as they are: a number is
//! never a formula, and overdue tasks count their days negative.

/// Why an export could not be written.
#[derive(Debug, thiserror::Error)]
#[error("CSV export: {0}")]
pub struct CsvError(#[from] csv::Error);

/// A CSV document being written, header first.
pub struct CsvExport {
    writer: csv::Writer<Vec<u8>>,
}

impl CsvExport {
    /// A document starting with the byte-order mark and the header row.
    pub fn new<I, S>(header: I) -> Result<CsvExport, CsvError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut export = CsvExport { writer: csv::Writer::from_writer(vec![0xEF, 0xBB, 0xBF]) };
        export.row(header)?;
        Ok(export)
    }

    /// Appends one row; every cell is neutralised.
    pub fn row<I, S>(&mut self, cells: I) -> Result<(), CsvError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.writer.write_record(cells.into_iter().map(|c| neutralise(c.as_ref())))?;
        Ok(())
    }

    /// The finished document.
    pub fn finish(self) -> Result<Vec<u8>, CsvError> {
        self.writer.into_inner().map_err(|e| CsvError(e.into_error().into()))
    }
}

fn is_plain_number(s: &str) -> bool {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, "0"));
    !whole.is_empty() && whole.bytes().all(|b| b.is_ascii_digit()) && !fraction.is_empty() && fraction.bytes().all(|b| b.is_ascii_digit())
}

/// The cell as a spreadsheet will show it as text: a leading `'` when it starts with a formula
/// character (`= + - @`), a tab or a carriage return, also behind leading spaces.
pub fn neutralise(cell: &str) -> String {
    let dangerous = |c: char| matches!(c, '=' | '+' | '-' | '@' | '\t' | '\r');
    let first = cell.chars().next();
    let first_visible = cell.trim_start_matches(' ').chars().next();
    if (first.is_some_and(dangerous) || first_visible.is_some_and(dangerous)) && !is_plain_number(cell) {
        format!("'{cell}")
    } else {
        cell.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn formulas_become_text() {
        assert_eq!(neutralise("=HYPERLINK(\"http://x\",\"y\")"), "'=HYPERLINK(\"http://x\",\"y\")");
        for s in ["+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1", "  =1", "-", "+", "=", "@"] {
            assert!(neutralise(s).starts_with('\''), "{s:?}");
        }
        for s in ["张三", "", "1", "-3", "+4", "12.5", "-0.25", "a=b", "2026-01-05"] {
            assert_eq!(neutralise(s), s, "{s:?}");
        }
        assert!(neutralise("-3x").starts_with('\''));
        assert!(neutralise("-1.").starts_with('\''));
    }

    #[test]
    fn a_document_has_a_bom_a_header_and_neutral_cells() {
        let mut e = CsvExport::new(["部门", "办理人"]).unwrap_or_else(|e| panic!("{e}"));
        e.row(["自然资源局", "=HYPERLINK(\"http://x\",\"y\")"]).unwrap_or_else(|e| panic!("{e}"));
        let bytes = e.finish().unwrap_or_else(|e| panic!("{e}"));
        let text = String::from_utf8(bytes).unwrap_or_default();
        assert_eq!(text, "\u{feff}部门,办理人\n自然资源局,\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\"\n");
    }

    proptest! {
        #[test]
        fn no_cell_starts_a_formula(cell in "\\PC{0,20}|[=+@\\t\\r -][\\PC]{0,10}") {
            let out = neutralise(&cell);
            let first = out.trim_start_matches(' ').chars().next();
            prop_assert!(is_plain_number(&out) || !first.is_some_and(|c| matches!(c, '=' | '+' | '-' | '@' | '\t' | '\r')));
            prop_assert!(out.ends_with(&cell));
        }
    }
}
