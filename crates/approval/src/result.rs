//! Result documents (结果文书): the decision (准予许可决定书 / 不予许可决定书) written from the
//! case's data when its process ends, kept in the blob store under its SM3 digest and delivered
//! to the applicant electronically (电子送达).

use askama::Template;

/// What a decision document says.
#[derive(Debug, Clone, Template)]
#[template(path = "decision_document.html")]
pub struct DecisionDocument {
    /// The deciding authority (the item's lead department, with the county's name).
    pub unit: String,
    /// Granted (准予许可) or denied (不予许可).
    pub approved: bool,
    /// The decision's number when granted (嘉审批〔2026〕3号); the application number otherwise.
    pub doc_no: String,
    /// Application number.
    pub number: String,
    /// Applicant's name.
    pub applicant: String,
    /// The item applied for.
    pub item_name: String,
    /// The item's legal basis.
    pub legal_basis: String,
    /// Date of acceptance (YYYY年M月D日).
    pub accepted_on: String,
    /// Date of the decision (YYYY年M月D日).
    pub decided_on: String,
    /// For a denial: the reason, from the deciding opinion.
    pub reason: String,
}

impl DecisionDocument {
    /// The document's title.
    pub fn title(&self) -> &'static str {
        if self.approved { "准予行政许可决定书" } else { "不予行政许可决定书" }
    }

    /// The file name it is delivered under.
    pub fn file_name(&self) -> String {
        format!("{}-{}.html", self.title(), self.number)
    }

    /// A self-contained HTML page (inline styles, no outside resources) that prints on A4.
    pub fn to_html(&self) -> Result<String, askama::Error> {
        self.render()
    }
}

/// A date as official documents write it: 2026年11月30日.
pub fn chinese_date(d: time::Date) -> String {
    format!("{}年{}月{}日", d.year(), u8::from(d.month()), d.day())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(approved: bool) -> DecisionDocument {
        DecisionDocument {
            unit: "嘉禾县自然资源局".into(),
            approved,
            doc_no: if approved { "嘉审批〔2026〕3号".into() } else { "JH2026113000001".into() },
            number: "JH2026113000001".into(),
            applicant: "张<三>".into(),
            item_name: "建设工程规划许可".into(),
            legal_basis: "《中华人民共和国城乡规划法》第四十条".into(),
            accepted_on: "2026年11月2日".into(),
            decided_on: "2026年11月30日".into(),
            reason: "消防意见：疏散通道宽度不足".into(),
        }
    }

    #[test]
    fn a_grant_names_its_number_and_basis_and_escapes_the_applicant() {
        let html = doc(true).to_html().unwrap();
        assert!(html.contains("准予行政许可决定书"));
        assert!(html.contains("嘉审批〔2026〕3号"));
        assert!(html.contains("第四十条的规定，决定准予许可"));
        assert!(html.contains("张&#60;三&#62;") || html.contains("张&lt;三&gt;"), "applicant must be escaped");
        assert!(!html.contains("行政复议"));
    }

    #[test]
    fn a_denial_gives_the_reason_and_the_remedies() {
        let d = doc(false);
        let html = d.to_html().unwrap();
        assert!(html.contains("不予行政许可决定书"));
        assert!(html.contains("理由：消防意见：疏散通道宽度不足"));
        assert!(html.contains("六十日内依法申请行政复议"));
        assert_eq!(d.file_name(), "不予行政许可决定书-JH2026113000001.html");
    }

    #[test]
    fn dates_are_written_the_official_way() {
        let d = time::Date::from_calendar_date(2026, time::Month::October, 8).unwrap();
        assert_eq!(chinese_date(d), "2026年10月8日");
    }
}
