//! The elements of an official document (公文格式要素, GB/T 9704-2012 §7) and their checks. This
//! platform handles non-classified documents only: any 密级 is refused, by name.

use serde::{Deserialize, Serialize};
use time::{Date, macros::format_description};
use tongban_platform::DomainError;
use tongban_platform::text::TextKind;

/// Urgency (紧急程度).
pub const URGENCIES: [&str; 3] = ["", "加急", "特急"];

/// A document's elements as drafted. The document number (发文字号) is assigned at numbering.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct DocumentFields {
    /// 份号: six digits, optional (it is for classified documents, which are not handled here).
    pub copy_no: String,
    /// 密级: must stay empty (non-classified); the platform does not process classified documents.
    pub classification: String,
    /// 保密期限: must stay empty.
    pub secrecy_period: String,
    /// 紧急程度: "", 加急 or 特急.
    pub urgency: String,
    /// 发文机关标志, e.g. 嘉禾县人民政府文件.
    pub issuer_mark: String,
    /// 签发人 (for documents to a higher authority).
    pub signer: String,
    /// 标题.
    pub title: String,
    /// 主送机关.
    pub main_recipients: String,
    /// 正文.
    pub body: String,
    /// 附件说明, one attachment per line.
    pub attachments_note: String,
    /// 发文机关署名.
    pub issuing_authority: String,
    /// 成文日期, YYYY-MM-DD.
    pub date: String,
    /// 附注.
    pub note: String,
    /// 抄送机关.
    pub cc: String,
    /// 印发机关.
    pub printer: String,
    /// 印发日期, YYYY-MM-DD.
    pub print_date: String,
}

fn invalid(field: &str, key: &str) -> DomainError {
    DomainError::invalid(field, key)
}

fn within(field: &str, value: &str, required: bool, max: usize) -> Result<(), DomainError> {
    let n = value.trim().chars().count();
    if required && n == 0 {
        return Err(invalid(field, "error.required"));
    }
    if n > max {
        return Err(DomainError::invalid_detail(field, "document.error.too_long", max.to_string()));
    }
    // Titles, marks and names are one line with something visible; the body and notes are text.
    let kind = match field {
        "body" | "attachments_note" | "note" | "main_recipients" | "cc" => TextKind::MultiLine,
        _ if required => TextKind::Name,
        _ => TextKind::Line,
    };
    tongban_platform::text::check_field(field, value, kind)?;
    Ok(())
}

fn date(field: &str, value: &str, required: bool) -> Result<(), DomainError> {
    let value = value.trim();
    if value.is_empty() {
        return if required { Err(invalid(field, "error.required")) } else { Ok(()) };
    }
    Date::parse(value, format_description!("[year]-[month]-[day]")).map(|_| ()).map_err(|_| invalid(field, "document.error.date"))
}

impl DocumentFields {
    /// Checks every element; the error names the first field at fault.
    pub fn check(&self) -> Result<(), DomainError> {
        if !self.classification.trim().is_empty() {
            return Err(invalid("classification", "document.error.classified"));
        }
        if !self.secrecy_period.trim().is_empty() {
            return Err(invalid("secrecy_period", "document.error.classified"));
        }
        let copy = self.copy_no.trim();
        let copy_ok = copy.is_empty() || (copy.len() <= 6 && copy.bytes().all(|b| b.is_ascii_digit()));
        if !copy_ok {
            return Err(invalid("copy_no", "document.error.copy_no"));
        }
        if !URGENCIES.contains(&self.urgency.trim()) {
            return Err(invalid("urgency", "error.invalid_value"));
        }
        within("issuer_mark", &self.issuer_mark, true, 60)?;
        within("signer", &self.signer, false, 20)?;
        within("title", &self.title, true, 200)?;
        within("main_recipients", &self.main_recipients, true, 500)?;
        within("body", &self.body, true, 200_000)?;
        within("attachments_note", &self.attachments_note, false, 2000)?;
        within("issuing_authority", &self.issuing_authority, true, 100)?;
        date("date", &self.date, true)?;
        within("note", &self.note, false, 1000)?;
        within("cc", &self.cc, false, 500)?;
        within("printer", &self.printer, false, 100)?;
        date("print_date", &self.print_date, false)?;
        Ok(())
    }
}

/// Formats a document number: `嘉政发〔2026〕12号` (GB/T 9704 §7.2.4: year in 〔〕, no leading zeros).
pub fn format_number(prefix: &str, year: i32, seq: i64) -> String {
    format!("{prefix}〔{year}〕{seq}号")
}

/// Checks a unit's number prefix (机关代字): 1–10 characters, no brackets or digits.
pub fn check_prefix(prefix: &str) -> Result<(), DomainError> {
    let p = prefix.trim();
    let n = p.chars().count();
    if n == 0 || n > 10 || p.chars().any(|c| c.is_ascii_digit() || "〔〕[]()（）".contains(c) || c.is_whitespace()) {
        return Err(invalid("prefix", "document.error.prefix"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn sample() -> DocumentFields {
        DocumentFields {
            urgency: "加急".into(),
            issuer_mark: "嘉禾县人民政府文件".into(),
            title: "嘉禾县人民政府关于印发《嘉禾县政务服务事项目录》的通知".into(),
            main_recipients: "各乡镇人民政府，县直各单位：".into(),
            body: "现将《嘉禾县政务服务事项目录》印发给你们，请认真贯彻执行。".into(),
            issuing_authority: "嘉禾县人民政府".into(),
            date: "2026-11-30".into(),
            cc: "县委办公室，县人大常委会办公室。".into(),
            printer: "嘉禾县人民政府办公室".into(),
            print_date: "2026-11-30".into(),
            ..DocumentFields::default()
        }
    }

    fn field_of(e: DomainError) -> String {
        match e {
            DomainError::Invalid(f) => f.field,
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn a_complete_document_passes_and_each_fault_names_its_field() {
        assert!(sample().check().is_ok());
        type Spoil = fn(&mut DocumentFields);
        let cases: [(Spoil, &str); 8] = [
            (|d| d.classification = "秘密".into(), "classification"),
            (|d| d.secrecy_period = "1年".into(), "secrecy_period"),
            (|d| d.copy_no = "0000012".into(), "copy_no"),
            (|d| d.urgency = "特提".into(), "urgency"),
            (|d| d.title = " ".into(), "title"),
            (|d| d.date = "2026-02-30".into(), "date"),
            (|d| d.print_date = "30/11/2026".into(), "print_date"),
            (|d| d.issuing_authority = "县".repeat(101), "issuing_authority"),
        ];
        for (spoil, field) in cases {
            let mut d = sample();
            spoil(&mut d);
            assert_eq!(d.check().map_err(field_of), Err(field.to_string()));
        }
    }

    #[test]
    fn numbers_follow_the_standard() {
        assert_eq!(format_number("嘉政发", 2026, 12), "嘉政发〔2026〕12号");
        assert!(check_prefix("嘉政办发").is_ok());
        assert!(check_prefix("嘉政〔发").is_err() && check_prefix("").is_err() && check_prefix("嘉政2").is_err());
    }

    proptest! {
        #[test]
        fn checking_never_panics(title in "\\PC{0,300}", date in "\\PC{0,20}", copy in "\\PC{0,10}") {
            let d = DocumentFields { title, date, copy_no: copy, ..sample() };
            let _ = d.check();
        }
    }
}
