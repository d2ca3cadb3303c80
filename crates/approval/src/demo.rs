//! The demo catalogue of 嘉禾县: five real items with their materials, forms and processes (one
//! with three departments in parallel, one with an exclusive branch). Loaded by `serve --demo`
//! after the demo county, as the demo system administrator.

use serde::Deserialize;
use tongban_audit::Actor;
use tongban_authz::Principal;
use tongban_platform::{DomainError, error::DomainResult};
use tongban_workflow::WorkflowService;

use crate::{
    catalogue::{Audience, ItemKind, ItemSpec, Material},
    form::FormField,
    service::CatalogueService,
};

const ITEMS: &str = include_str!("../data/demo_items.toml");
const PROCESSES: [(&str, &str); 5] = [
    ("building_permit", include_str!("../data/processes/building_permit.bpmn")),
    ("food_license", include_str!("../data/processes/food_license.bpmn")),
    ("individual_business", include_str!("../data/processes/individual_business.bpmn")),
    ("medical_practice", include_str!("../data/processes/medical_practice.bpmn")),
    ("pension_enrolment", include_str!("../data/processes/pension_enrolment.bpmn")),
];

#[derive(Deserialize)]
struct DemoFile {
    item: Vec<DemoItem>,
}

#[derive(Deserialize)]
struct DemoItem {
    code: String,
    name: String,
    kind: ItemKind,
    audience: Audience,
    lead_unit: String,
    co_units: Vec<String>,
    legal_basis: String,
    conditions: String,
    legal_days: u32,
    promised_days: u32,
    fee: String,
    visits: u32,
    life_events: Vec<String>,
    location: String,
    phone: String,
    process: String,
    #[serde(default)]
    materials: Vec<Material>,
    #[serde(default)]
    form: Vec<FormField>,
}

/// Loads the demo processes and items unless the catalogue already has items. `units` maps unit
/// names to ids; `admin` is the demo system administrator. Answers how many items were added.
pub async fn load(
    catalogue: &CatalogueService,
    workflow: &WorkflowService,
    admin: &Principal,
    units: &[(i64, String)],
) -> DomainResult<usize> {
    if !catalogue.items(true).await?.is_empty() {
        return Ok(0);
    }
    let actor = Actor::system("demo");
    for (key, xml) in PROCESSES {
        match workflow.upload(admin, &actor, xml).await {
            Ok(_) | Err(DomainError::Conflict(_)) => {}
            Err(e) => return Err(DomainError::Internal(format!("demo process {key}: {e}"))),
        }
    }
    let file: DemoFile = toml::from_str(ITEMS).map_err(|e| DomainError::Internal(format!("demo items: {e}")))?;
    let unit = |name: &str| {
        units.iter().find(|(_, n)| n == name).map(|(id, _)| *id).ok_or_else(|| DomainError::Internal(format!("demo unit {name}")))
    };
    let mut added = 0;
    for d in file.item {
        let spec = ItemSpec {
            code: d.code,
            name: d.name,
            kind: d.kind,
            audience: d.audience,
            lead_unit_id: unit(&d.lead_unit)?,
            co_unit_ids: d.co_units.iter().map(|u| unit(u)).collect::<Result<_, _>>()?,
            legal_basis: d.legal_basis,
            conditions: d.conditions,
            legal_days: d.legal_days,
            promised_days: d.promised_days,
            fee: d.fee,
            materials: d.materials,
            form: d.form,
            process_key: d.process,
            visits: d.visits,
            life_events: d.life_events,
            location: d.location,
            phone: d.phone,
        };
        catalogue.create(admin, &actor, spec).await?;
        added += 1;
    }
    Ok(added)
}

/// The services the demo applications go through, as a citizen and as staff would.
pub struct DemoServices<'a> {
    /// Accounts and staff principals.
    pub identity: &'a tongban_identity::IdentityService,
    /// Public intake.
    pub intake: &'a crate::intake::IntakeService,
    /// Internal processing.
    pub cases: &'a crate::cases::CaseService,
    /// The process engine.
    pub workflow: &'a WorkflowService,
    /// Delivers zone messages between the two sides.
    pub dispatcher: &'a tongban_platform::outbox::Dispatcher,
}

/// The demo applicants' password.
pub const DEMO_CITIZEN_PASSWORD: &str = "Jiahe@2026";

impl DemoServices<'_> {
    async fn settle(&self) -> DomainResult<()> {
        for _ in 0..10 {
            if self.dispatcher.dispatch_once(100).await? == 0 {
                break;
            }
        }
        Ok(())
    }

    async fn staff(&self, username: &str) -> DomainResult<(Principal, Actor)> {
        let u = self.identity.user_by_username(username).await?.ok_or_else(|| DomainError::Internal(format!("demo user {username}")))?;
        let p = self.identity.authz().principal(u.id).await?.ok_or_else(|| DomainError::Internal(format!("demo principal {username}")))?;
        let actor = Actor {
            user_id: Some(u.id),
            name: username.into(),
            unit: p.unit_name.clone(),
            ip: "127.0.0.1".into(),
            user_agent: "demo".into(),
            purpose: "demo".into(),
        };
        Ok((p, actor))
    }

    async fn citizen(&self, reg: tongban_identity::PublicRegistration) -> DomainResult<tongban_identity::PublicPrincipal> {
        self.identity.register_public(&reg, "127.0.0.1", "demo").await?;
        let secret = self.identity.login_public(&reg.phone, &reg.password, "127.0.0.1", "demo").await?;
        self.identity.public_session(&secret).await?.ok_or_else(|| DomainError::Internal("demo citizen session".into()))
    }

    /// Fills, uploads and submits one application; answers (intake id, number).
    async fn apply(
        &self,
        who: &tongban_identity::PublicPrincipal,
        item: &crate::catalogue::ServiceItem,
        form: serde_json::Value,
    ) -> DomainResult<(i64, String)> {
        let actor = who.actor("127.0.0.1", "demo");
        let id = self.intake.start(who, &actor, item.id).await?;
        self.intake.save_form(who, &actor, id, form.as_object().cloned().unwrap_or_default()).await?;
        for (i, m) in item.spec.materials.iter().enumerate().filter(|(_, m)| m.required) {
            let body = format!("%PDF-1.4\n% 演示材料：{}\n", m.name);
            self.intake.upload(who, &actor, id, i as u32, &format!("{}.pdf", m.name), body.as_bytes()).await?;
        }
        let receipt = self.intake.submit(who, &actor, id).await?;
        self.settle().await?;
        Ok((id, receipt.number))
    }

    async fn case_id(&self, clerk: &Principal, number: &str) -> DomainResult<i64> {
        self.cases
            .cases(clerk, false)
            .await?
            .into_iter()
            .find(|c| c.number == number)
            .map(|c| c.id)
            .ok_or_else(|| DomainError::Internal(format!("demo case {number}")))
    }

    /// Claims and completes a step; `approved` is the decision of a decision step (决定环节).
    async fn do_task(&self, username: &str, number: &str, step: &str, approved: Option<bool>) -> DomainResult<()> {
        let (p, a) = self.staff(username).await?;
        let tasks = self.workflow.tasks(&p, tongban_workflow::TaskList::Todo).await?;
        let Some(t) = tasks.iter().find(|t| t.title.contains(number) && t.node_id == step) else {
            return Err(DomainError::Internal(format!("demo task {step} of {number}")));
        };
        self.workflow.act(&p, &a, t.id, tongban_workflow::TaskAction::Claim).await?;
        let mut vars = serde_json::Map::new();
        if let Some(approved) = approved {
            vars.insert("approved".into(), serde_json::Value::Bool(approved));
        }
        self.workflow.act(&p, &a, t.id, tongban_workflow::TaskAction::Complete { opinion: Some("同意".into()), variables: vars }).await?;
        self.settle().await
    }
}

/// Adds demo applicants and applications in every state (waiting at the window, supplements
/// requested, being processed across three departments, completed) so that the window, the
/// to-do lists and the supervision dashboard show something. Skipped when applications exist.
pub async fn load_applications(s: &DemoServices<'_>, catalogue: &CatalogueService) -> DomainResult<usize> {
    if !s.intake.is_empty().await? {
        return Ok(0);
    }
    let person = s
        .citizen(tongban_identity::PublicRegistration {
            kind: "person".into(),
            name: "李嘉禾".into(),
            cert_no: "431024199003150016".into(),
            phone: "13807351234".into(),
            email: String::new(),
            password: DEMO_CITIZEN_PASSWORD.into(),
        })
        .await?;
    let firm = s
        .citizen(tongban_identity::PublicRegistration {
            kind: "enterprise".into(),
            name: "嘉禾县珠泉建设开发有限公司".into(),
            cert_no: "91431024MA4L0TB2XM".into(),
            phone: "13907355678".into(),
            email: String::new(),
            password: DEMO_CITIZEN_PASSWORD.into(),
        })
        .await?;
    let items = catalogue.items(false).await?;
    let item =
        |code: &str| items.iter().find(|i| i.spec.code == code).cloned().ok_or_else(|| DomainError::Internal(format!("demo item {code}")));
    let (clerk, clerk_actor) = s.staff("liuyang").await?;

    // 1. Waiting at the window.
    let shop = serde_json::json!({"operator_name": "李嘉禾", "id_number": "431024199003150016", "shop_name": "嘉禾县李记米粉店", "address": "嘉禾县珠泉镇塘坊路18号", "contact_phone": "13807351234"});
    s.apply(&person, &item("431024-QT-SJ-002")?, shop).await?;
    // 2. Supplements requested.
    let pension = serde_json::json!({"full_name": "李嘉禾", "id_number": "431024199003150016", "contribution_level": "500", "contact_phone": "13807351234"});
    let (_, n2) = s.apply(&person, &item("431024-GG-RS-001")?, pension).await?;
    let c2 = s.case_id(&clerk, &n2).await?;
    s.cases.request_supplement(&clerk, &clerk_actor, c2, &["户口簿首页及本人页复印件不清晰，请重新上传".to_string()]).await?;
    // 3. Building permit: accepted, two of three departments done.
    let permit = serde_json::json!({"project_name": "珠泉镇城南安置小区二期", "applicant_name": "嘉禾县珠泉建设开发有限公司", "credit_code": "91431024MA4L0TB2XM",
        "land_area": "18600", "building_area": "52300", "contact_phone": "13907355678"});
    let (_, n3) = s.apply(&firm, &item("431024-XK-ZR-001")?, permit).await?;
    let c3 = s.case_id(&clerk, &n3).await?;
    s.cases.accept(&clerk, &clerk_actor, c3).await?;
    s.settle().await?;
    s.do_task("zhoujun", &n3, "review_land", None).await?;
    s.do_task("xuhui", &n3, "review_housing", None).await?;
    // 4. Food licence: completed and granted.
    let food = serde_json::json!({"business_name": "嘉禾县珠泉建设开发有限公司职工食堂", "credit_code": "91431024MA4L0TB2XM", "category": "单位食堂", "area": "180", "contact_phone": "13907355678"});
    let (_, n4) = s.apply(&firm, &item("431024-XK-SJ-001")?, food).await?;
    let c4 = s.case_id(&clerk, &n4).await?;
    s.cases.accept(&clerk, &clerk_actor, c4).await?;
    s.settle().await?;
    s.do_task("huangli", &n4, "review", None).await?;
    s.do_task("huangli", &n4, "decide", Some(true)).await?;
    Ok(4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_files_parse_and_validate() {
        let file: DemoFile = toml::from_str(ITEMS).unwrap();
        assert_eq!(file.item.len(), 5);
        for (key, xml) in PROCESSES {
            let def = tongban_workflow::parse_bpmn(xml).unwrap_or_else(|e| panic!("{key}: {e}"));
            assert_eq!(def.key, key);
        }
        for d in &file.item {
            assert!(PROCESSES.iter().any(|(k, _)| *k == d.process), "{} has a process", d.name);
            assert!(crate::form::check_definition(&d.form).is_ok(), "{} form", d.name);
        }
        let parallel = tongban_workflow::parse_bpmn(PROCESSES[0].1).unwrap();
        assert_eq!(parallel.blocks.len(), 1, "three departments in parallel");
    }
}
