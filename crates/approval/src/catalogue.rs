//! The service catalogue (事项目录): items with their legal basis, time limits, fees, materials,
//! application form and process, and the public service guides (办事指南) made from them.

use serde::{Deserialize, Serialize};

use crate::form::{FieldProblem, FormField, check_definition};

/// The kind of an item (事项类型).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    /// 行政许可.
    License,
    /// 行政确认.
    Confirmation,
    /// 行政给付.
    Payment,
    /// 公共服务.
    PublicService,
    /// 其他行政权力.
    Other,
}

impl ItemKind {
    /// Every kind, in display order.
    pub const ALL: [ItemKind; 5] = [ItemKind::License, ItemKind::Confirmation, ItemKind::Payment, ItemKind::PublicService, ItemKind::Other];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::License => "license",
            ItemKind::Confirmation => "confirmation",
            ItemKind::Payment => "payment",
            ItemKind::PublicService => "public_service",
            ItemKind::Other => "other",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<ItemKind> {
        ItemKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Who may apply (服务对象).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    /// Natural persons (自然人).
    Person,
    /// Legal persons and other organisations (法人).
    Enterprise,
    /// Both.
    Both,
}

impl Audience {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Audience::Person => "person",
            Audience::Enterprise => "enterprise",
            Audience::Both => "both",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Audience> {
        [Audience::Person, Audience::Enterprise, Audience::Both].into_iter().find(|a| a.as_str() == s)
    }
}

/// In what form a material is handed in (材料形式).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaterialForm {
    /// 原件.
    Original,
    /// 复印件.
    Copy,
    /// 原件和复印件.
    OriginalAndCopy,
    /// 电子件.
    Electronic,
}

/// One material of the materials list (申请材料).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Material {
    /// Name, e.g. 营业执照.
    pub name: String,
    /// Must be handed in.
    #[serde(default)]
    pub required: bool,
    /// Form.
    pub form: MaterialForm,
    /// Number of copies (份数).
    #[serde(default = "one")]
    pub copies: u32,
    /// Notes (填报须知).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
    /// Where a blank template can be downloaded, if there is one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub template_url: String,
}

fn one() -> u32 {
    1
}

/// An item as an administrator describes it; units by id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemSpec {
    /// Item code (事项编码), unique.
    pub code: String,
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: ItemKind,
    /// Who may apply.
    pub audience: Audience,
    /// The lead department (牵头部门).
    pub lead_unit_id: i64,
    /// Co-departments (协办部门).
    #[serde(default)]
    pub co_unit_ids: Vec<i64>,
    /// Legal basis (设定依据).
    pub legal_basis: String,
    /// Conditions for acceptance (受理条件).
    #[serde(default)]
    pub conditions: String,
    /// Legal time limit in working days (法定办结时限).
    pub legal_days: u32,
    /// Promised time limit in working days (承诺办结时限), at most the legal one.
    pub promised_days: u32,
    /// Fees (收费标准), e.g. 不收费.
    pub fee: String,
    /// Materials list.
    #[serde(default)]
    pub materials: Vec<Material>,
    /// Application form.
    #[serde(default)]
    pub form: Vec<FormField>,
    /// The workflow process id that handles applications.
    pub process_key: String,
    /// Visits needed in person (到现场次数): 0 means fully online (全程网办).
    #[serde(default)]
    pub visits: u32,
    /// Life events it belongs to (出生, 就业, 开办企业 …), for citizens' search.
    #[serde(default)]
    pub life_events: Vec<String>,
    /// Where to go (办理地点).
    #[serde(default)]
    pub location: String,
    /// Enquiry telephone (咨询电话).
    #[serde(default)]
    pub phone: String,
}

/// A stored item.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceItem {
    /// Id.
    pub id: i64,
    /// What the administrator set.
    pub spec: ItemSpec,
    /// Lead department's name.
    pub lead_unit_name: String,
    /// Co-departments' names.
    pub co_unit_names: Vec<String>,
    /// Listed in the public catalogue.
    pub enabled: bool,
    /// Last change (ms).
    pub updated_at: i64,
}

/// The life events offered in the citizens' search (一件事).
pub const LIFE_EVENTS: [&str; 10] = ["出生", "上学", "就业", "婚育", "开办企业", "经营许可", "建房置业", "医疗健康", "社会保障", "养老"];

/// Checks an item description; the problem names the field.
pub fn check_spec(spec: &ItemSpec) -> Result<(), FieldProblem> {
    let bad = |field: &str, key: &'static str| Err(FieldProblem { field: field.into(), key });
    let code_ok = (4..=40).contains(&spec.code.len()) && spec.code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !code_ok {
        return bad("code", "approval.error.item_code");
    }
    for (field, value, max) in [("name", &spec.name, 100), ("legal_basis", &spec.legal_basis, 4000), ("fee", &spec.fee, 500)] {
        if value.trim().is_empty() {
            return bad(field, "approval.error.required");
        }
        if value.chars().count() > max {
            return bad(field, "approval.error.too_long");
        }
    }
    if spec.conditions.chars().count() > 4000 || spec.location.chars().count() > 200 || spec.phone.chars().count() > 40 {
        return bad("conditions", "approval.error.too_long");
    }
    use tongban_platform::text::{TextKind, check_text};
    let texts = [
        ("name", &spec.name, TextKind::Name),
        ("legal_basis", &spec.legal_basis, TextKind::MultiLine),
        ("fee", &spec.fee, TextKind::MultiLine),
        ("conditions", &spec.conditions, TextKind::MultiLine),
        ("location", &spec.location, TextKind::Line),
        ("phone", &spec.phone, TextKind::Line),
    ];
    for (field, value, kind) in texts {
        if let Err(p) = check_text(value, kind) {
            return bad(field, p.message_key());
        }
    }
    if spec.legal_days == 0 || spec.legal_days > 365 {
        return bad("legal_days", "approval.error.out_of_range");
    }
    if spec.promised_days == 0 || spec.promised_days > spec.legal_days {
        return bad("promised_days", "approval.error.promised_days");
    }
    if spec.co_unit_ids.contains(&spec.lead_unit_id) {
        return bad("co_unit_ids", "approval.error.lead_is_co");
    }
    if spec.process_key.trim().is_empty() {
        return bad("process_key", "approval.error.required");
    }
    for (i, m) in spec.materials.iter().enumerate() {
        if m.name.trim().is_empty() || m.name.chars().count() > 200 {
            return bad(&format!("materials[{i}].name"), "approval.error.required");
        }
        if let Err(p) = check_text(m.name.trim(), TextKind::Name) {
            return bad(&format!("materials[{i}].name"), p.message_key());
        }
        if m.copies == 0 || m.copies > 99 {
            return bad(&format!("materials[{i}].copies"), "approval.error.out_of_range");
        }
    }
    if spec.life_events.iter().any(|e| !LIFE_EVENTS.contains(&e.as_str())) {
        return bad("life_events", "approval.error.option");
    }
    check_definition(&spec.form)
}

/// What citizens search the catalogue by.
#[derive(Debug, Clone, Default)]
pub struct GuideQuery {
    /// Part of the name or code.
    pub text: String,
    /// A department (lead or co).
    pub unit_id: Option<i64>,
    /// A life event.
    pub life_event: String,
}

impl GuideQuery {
    /// Whether an item matches.
    pub fn matches(&self, item: &ServiceItem) -> bool {
        let text = self.text.trim();
        (text.is_empty() || item.spec.name.contains(text) || item.spec.code.contains(text))
            && self.unit_id.is_none_or(|u| item.spec.lead_unit_id == u || item.spec.co_unit_ids.contains(&u))
            && (self.life_event.is_empty() || item.spec.life_events.contains(&self.life_event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn spec() -> ItemSpec {
        ItemSpec {
            code: "431024-XK-0001".into(),
            name: "食品经营许可".into(),
            kind: ItemKind::License,
            audience: Audience::Both,
            lead_unit_id: 12,
            co_unit_ids: vec![],
            legal_basis: "《中华人民共和国食品安全法》第三十五条".into(),
            conditions: String::new(),
            legal_days: 20,
            promised_days: 10,
            fee: "不收费".into(),
            materials: vec![Material {
                name: "食品经营许可申请书".into(),
                required: true,
                form: MaterialForm::Original,
                copies: 1,
                note: String::new(),
                template_url: String::new(),
            }],
            form: vec![],
            process_key: "food_license".into(),
            visits: 0,
            life_events: vec!["开办企业".into()],
            location: String::new(),
            phone: String::new(),
        }
    }

    #[test]
    fn checks_name_the_field() {
        assert!(check_spec(&spec()).is_ok());
        let mut s = spec();
        s.promised_days = 30;
        assert_eq!(check_spec(&s).map_err(|p| p.field), Err("promised_days".into()));
        let mut s = spec();
        s.co_unit_ids = vec![12];
        assert_eq!(check_spec(&s).map_err(|p| p.field), Err("co_unit_ids".into()));
        let mut s = spec();
        s.materials[0].copies = 0;
        assert_eq!(check_spec(&s).map_err(|p| p.field), Err("materials[0].copies".into()));
        let mut s = spec();
        s.code = "bad code!".into();
        assert_eq!(check_spec(&s).map_err(|p| p.field), Err("code".into()));
    }

    #[test]
    fn search_by_name_unit_and_life_event() {
        let item = ServiceItem {
            id: 1,
            spec: spec(),
            lead_unit_name: "市场监督管理局".into(),
            co_unit_names: vec![],
            enabled: true,
            updated_at: 0,
        };
        assert!(GuideQuery { text: "食品".into(), ..GuideQuery::default() }.matches(&item));
        assert!(GuideQuery { unit_id: Some(12), life_event: "开办企业".into(), ..GuideQuery::default() }.matches(&item));
        assert!(!GuideQuery { life_event: "出生".into(), ..GuideQuery::default() }.matches(&item));
        assert!(!GuideQuery { unit_id: Some(3), ..GuideQuery::default() }.matches(&item));
    }
}
