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
