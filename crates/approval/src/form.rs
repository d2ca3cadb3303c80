//! Application forms (申请表): the fields an item asks for, rendered as an HTML form, and the
//! validation of what an applicant submits (every error names its field).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::Date;
use tongban_platform::text::{TextKind, TextProblem, check_text};

use crate::idcheck::{check_credit_code, check_id_number};

/// What kind of input a field is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    /// One line of text.
    Text,
    /// Several lines.
    Textarea,
    /// A number (decimal allowed).
    Number,
    /// A date, `YYYY-MM-DD`.
    Date,
    /// One of `options`.
    Select,
    /// Yes / no.
    Checkbox,
    /// A resident identity card number (GB 11643).
    IdNumber,
    /// A unified social credit code (GB 32100).
    CreditCode,
    /// A mainland mobile number.
    Phone,
    /// An e-mail address.
    Email,
}

impl FieldKind {
    /// The HTML input type.
    pub fn input_type(self) -> &'static str {
        match self {
            FieldKind::Number => "number",
            FieldKind::Date => "date",
            FieldKind::Checkbox => "checkbox",
            FieldKind::Phone => "tel",
            FieldKind::Email => "email",
            _ => "text",
        }
    }

    /// The workflow field type conditions see.
    pub fn value_type(self) -> &'static str {
        match self {
            FieldKind::Number => "number",
            FieldKind::Checkbox => "boolean",
            FieldKind::Date => "date",
            _ => "string",
        }
    }
}

/// One field of an application form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FormField {
    /// Name in the submitted data (`[a-z][a-z0-9_]*`), also what process conditions read.
    pub name: String,
    /// Label shown to the applicant.
    pub label: String,
    /// Kind of input.
    pub kind: FieldKind,
    /// Must be filled.
    #[serde(default)]
    pub required: bool,
    /// Choices of a select.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    /// Longest text, in characters (default 200, 2000 for a textarea).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_len: Option<u32>,
    /// Smallest number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Largest number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// A hint under the field.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub help: String,
}

/// A problem with one submitted field: its name and an i18n key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    /// The field.
    pub field: String,
    /// i18n key such as `approval.error.required`.
    pub key: &'static str,
}

fn problem(field: &str, key: &'static str) -> FieldProblem {
    FieldProblem { field: field.to_string(), key }
}

/// Checks a form definition itself (when an administrator saves an item).
pub fn check_definition(fields: &[FormField]) -> Result<(), FieldProblem> {
    let mut seen: Vec<&str> = Vec::new();
    for f in fields {
        let valid_name = f.name.len() <= 40
            && f.name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
            && f.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid_name || seen.contains(&f.name.as_str()) {
            return Err(problem(&format!("form.{}", f.name), "approval.error.field_name"));
        }
        if f.label.trim().is_empty() {
            return Err(problem(&format!("form.{}", f.name), "approval.error.field_label"));
        }
        if let Some(p) = std::iter::once(&f.label).chain(&f.options).find_map(|t| check_text(t, TextKind::Name).err()) {
            return Err(problem(&format!("form.{}", f.name), p.message_key()));
        }
        if f.kind == FieldKind::Select && f.options.is_empty() {
            return Err(problem(&format!("form.{}", f.name), "approval.error.field_options"));
        }
        seen.push(&f.name);
    }
    Ok(())
}

fn parse_date(s: &str) -> Option<Date> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(s, &fmt).ok()
}

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Validates submitted values against the form and answers them typed (numbers as numbers,
/// checkboxes as booleans, identifiers normalised). Unknown fields are refused; every problem is
/// reported, not just the first, so the applicant can fix them all at once.
pub fn validate(fields: &[FormField], input: &Map<String, Value>, today: Date) -> Result<Map<String, Value>, Vec<FieldProblem>> {
    let mut out = Map::new();
    let mut problems = Vec::new();
    for name in input.keys() {
        if !fields.iter().any(|f| &f.name == name) {
            problems.push(problem(name, "approval.error.unknown_field"));
        }
    }
    for f in fields {
        let raw = input.get(&f.name).filter(|v| !v.is_null());
        if f.kind == FieldKind::Checkbox {
            let on = match raw {
                Some(Value::Bool(b)) => *b,
                Some(Value::String(s)) => matches!(s.as_str(), "on" | "true" | "1"),
                None => false,
                Some(_) => {
                    problems.push(problem(&f.name, "approval.error.invalid"));
                    continue;
                }
            };
            if f.required && !on {
                problems.push(problem(&f.name, "approval.error.required"));
            }
            out.insert(f.name.clone(), Value::Bool(on));
            continue;
        }
        let Some(text) = raw.map(text_of) else {
            if f.required {
                problems.push(problem(&f.name, "approval.error.required"));
            }
            continue;
        };
        let Some(text) = text else {
            problems.push(problem(&f.name, "approval.error.invalid"));
            continue;
        };
        if text.is_empty() {
            if f.required {
                problems.push(problem(&f.name, "approval.error.required"));
            }
            continue;
        }
        let kind = if f.kind == FieldKind::Textarea { TextKind::MultiLine } else { TextKind::Line };
        if let Err(p) = check_text(&text, kind) {
            problems.push(problem(&f.name, p.message_key()));
            continue;
        }
        if check_text(&text, TextKind::Name) == Err(TextProblem::Blank) {
            // Only invisible characters: as good as empty.
            if f.required {
                problems.push(problem(&f.name, "approval.error.required"));
            }
            continue;
        }
        let limit = f.max_len.unwrap_or(if f.kind == FieldKind::Textarea { 2000 } else { 200 }) as usize;
        if text.chars().count() > limit {
            problems.push(problem(&f.name, "approval.error.too_long"));
            continue;
        }
        let value = match f.kind {
            FieldKind::Number => match text.parse::<f64>().ok().filter(|n| n.is_finite()) {
                Some(n) if f.min.is_some_and(|m| n < m) || f.max.is_some_and(|m| n > m) => Err("approval.error.out_of_range"),
                Some(n) if n.fract() == 0.0 && n.abs() < 1e15 => Ok(Value::from(n as i64)),
                Some(n) => serde_json::Number::from_f64(n).map(Value::Number).ok_or("approval.error.invalid"),
                None => Err("approval.error.number"),
            },
            FieldKind::Date => parse_date(&text).map(|_| Value::String(text.clone())).ok_or("approval.error.date"),
            FieldKind::Select => {
                if f.options.contains(&text) {
                    Ok(Value::String(text.clone()))
                } else {
                    Err("approval.error.option")
                }
            }
            FieldKind::IdNumber => check_id_number(&text, today).map(Value::String).map_err(|_| "approval.error.id_number"),
            FieldKind::CreditCode => check_credit_code(&text).map(Value::String).map_err(|_| "approval.error.credit_code"),
            FieldKind::Phone => {
                let ok = text.len() == 11 && text.starts_with('1') && text.bytes().all(|b| b.is_ascii_digit());
                if ok { Ok(Value::String(text.clone())) } else { Err("approval.error.phone") }
            }
            FieldKind::Email => {
                let ok = text.split_once('@').is_some_and(|(a, d)| !a.is_empty() && d.contains('.') && !d.starts_with('.'));
                if ok { Ok(Value::String(text.clone())) } else { Err("approval.error.email") }
            }
            FieldKind::Text | FieldKind::Textarea | FieldKind::Checkbox => Ok(Value::String(text.clone())),
        };
        match value {
            Ok(v) => {
                out.insert(f.name.clone(), v);
            }
            Err(key) => problems.push(problem(&f.name, key)),
        }
    }
    if problems.is_empty() { Ok(out) } else { Err(problems) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;
    use time::macros::date;

    fn field(name: &str, kind: FieldKind, required: bool) -> FormField {
        FormField {
            name: name.into(),
            label: name.into(),
            kind,
            required,
            options: if kind == FieldKind::Select { vec!["餐饮服务".into(), "食品销售".into()] } else { Vec::new() },
            max_len: None,
            min: Some(0.0),
            max: Some(100000.0),
            help: String::new(),
        }
    }

    fn form() -> Vec<FormField> {
        vec![
            field("applicant", FieldKind::Text, true),
            field("id_number", FieldKind::IdNumber, true),
            field("area", FieldKind::Number, true),
            field("category", FieldKind::Select, true),
            field("phone", FieldKind::Phone, false),
            field("agree", FieldKind::Checkbox, true),
        ]
    }

    #[test]
    fn good_input_comes_back_typed() {
        let input =
            json!({"applicant": " 张三 ", "id_number": "11010519491231002x", "area": "120.5", "category": "餐饮服务", "agree": "on"});
        let out = validate(&form(), input.as_object().unwrap(), date!(2026 - 11 - 30)).unwrap();
        assert_eq!(out["applicant"], "张三");
        assert_eq!(out["id_number"], "11010519491231002X");
        assert_eq!(out["area"], 120.5);
        assert_eq!(out["agree"], true);
        assert!(!out.contains_key("phone"));
    }

    #[test]
    fn every_problem_is_named() {
        let input = json!({"id_number": "110105194912310021", "area": "-3", "category": "其他", "phone": "12345", "extra": 1});
        let problems = validate(&form(), input.as_object().unwrap(), date!(2026 - 11 - 30)).unwrap_err();
        let named: Vec<(&str, &str)> = problems.iter().map(|p| (p.field.as_str(), p.key)).collect();
        assert_eq!(
            named,
            vec![
                ("extra", "approval.error.unknown_field"),
                ("applicant", "approval.error.required"),
                ("id_number", "approval.error.id_number"),
                ("area", "approval.error.out_of_range"),
                ("category", "approval.error.option"),
                ("phone", "approval.error.phone"),
                ("agree", "approval.error.required"),
            ]
        );
    }

    #[test]
    fn definitions_need_clean_unique_names() {
        assert!(check_definition(&form()).is_ok());
        let mut bad = form();
        bad.push(field("applicant", FieldKind::Text, false));
        assert!(check_definition(&bad).is_err());
        assert!(check_definition(&[field("Bad-Name", FieldKind::Text, false)]).is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_submissions_never_panic(keys in proptest::collection::vec("[a-z_]{1,10}", 0..8), vals in proptest::collection::vec("\\PC{0,30}", 0..8)) {
            let input: Map<String, Value> = keys.into_iter().zip(vals).map(|(k, v)| (k, Value::String(v))).collect();
            let _ = validate(&form(), &input, date!(2026 - 11 - 30));
        }
    }
}
