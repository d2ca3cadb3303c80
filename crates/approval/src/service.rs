//! Catalogue use cases: create, edit, enable or disable items (事项管理, `catalogue.write`), and
//! read them for the public guides. Each change is one transaction with its audit record and
//! outbox event.

use serde_json::json;
use sqlx::{Row, any::AnyRow};
use tongban_audit::{Actor, AuditTrail, Entry};
use tongban_authz::{Permission, Principal};
use tongban_platform::{Db, DomainError, WriteTx, clock::now_millis, error::DomainResult, outbox};

use crate::catalogue::{Audience, GuideQuery, ItemKind, ItemSpec, ServiceItem, check_spec};

/// The catalogue service.
#[derive(Clone)]
pub struct CatalogueService {
    db: Db,
    audit: AuditTrail,
}

const COLUMNS: &str = "SELECT a.id, a.code, a.name, a.kind, a.audience, a.lead_unit_id, a.co_unit_ids, a.legal_basis, a.conditions, \
    a.legal_days, a.promised_days, a.fee, a.materials, a.form, a.process_key, a.visits, a.life_events, a.location, a.phone, \
    a.enabled, a.updated_at, u.name FROM approval_items a JOIN units u ON u.id = a.lead_unit_id";

fn json_col<T: serde::de::DeserializeOwned + Default>(r: &AnyRow, i: usize) -> T {
    serde_json::from_str(&r.get::<String, _>(i)).unwrap_or_default()
}

fn item_of(r: &AnyRow) -> Option<ServiceItem> {
    let spec = ItemSpec {
        code: r.get(1),
        name: r.get(2),
        kind: ItemKind::parse(&r.get::<String, _>(3))?,
        audience: Audience::parse(&r.get::<String, _>(4))?,
        lead_unit_id: r.get(5),
        co_unit_ids: json_col(r, 6),
        legal_basis: r.get(7),
        conditions: r.get(8),
        legal_days: u32::try_from(r.get::<i64, _>(9)).ok()?,
        promised_days: u32::try_from(r.get::<i64, _>(10)).ok()?,
        fee: r.get(11),
        materials: json_col(r, 12),
        form: json_col(r, 13),
        process_key: r.get(14),
        visits: u32::try_from(r.get::<i64, _>(15)).ok()?,
        life_events: json_col(r, 16),
        location: r.get(17),
        phone: r.get(18),
    };
    Some(ServiceItem {
        id: r.get(0),
        spec,
        lead_unit_name: r.get(21),
        co_unit_names: Vec::new(),
        enabled: r.get::<i64, _>(19) != 0,
        updated_at: r.get(20),
    })
}

fn to_json<T: serde::Serialize>(v: &T) -> DomainResult<String> {
    serde_json::to_string(v).map_err(|e| DomainError::Internal(format!("serialising: {e}")))
}

/// An item's columns in table order ($1–$18), lists as JSON.
struct SpecColumns<'a> {
    spec: &'a ItemSpec,
    co_units: String,
    materials: String,
    form: String,
    life_events: String,
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

impl<'a> SpecColumns<'a> {
    fn of(spec: &'a ItemSpec) -> DomainResult<Self> {
        Ok(SpecColumns {
            spec,
            co_units: to_json(&spec.co_unit_ids)?,
            materials: to_json(&spec.materials)?,
            form: to_json(&spec.form)?,
            life_events: to_json(&spec.life_events)?,
        })
    }

    fn bind<'q>(&'q self, q: AnyQuery<'q>) -> AnyQuery<'q> {
        let s = self.spec;
        q.bind(s.code.trim())
            .bind(s.name.trim())
            .bind(s.kind.as_str())
            .bind(s.audience.as_str())
            .bind(s.lead_unit_id)
            .bind(self.co_units.as_str())
            .bind(s.legal_basis.trim())
            .bind(s.conditions.trim())
            .bind(i64::from(s.legal_days))
            .bind(i64::from(s.promised_days))
            .bind(s.fee.trim())
            .bind(self.materials.as_str())
            .bind(self.form.as_str())
            .bind(s.process_key.trim())
            .bind(i64::from(s.visits))
            .bind(self.life_events.as_str())
            .bind(s.location.trim())
            .bind(s.phone.trim())
    }
}

impl CatalogueService {
    /// A service over `db`, recording to `audit`.
    pub fn new(db: Db, audit: AuditTrail) -> Self {
        CatalogueService { db, audit }
    }

    async fn require(&self, caller: &Principal, actor: &Actor, action: &str) -> DomainResult<()> {
        if caller.has(Permission::CatalogueWrite) {
            return Ok(());
        }
        self.audit.record_denied(&self.db, actor, action, "approval_item", caller.user_id, "missing_permission").await;
        Err(DomainError::Forbidden("error.forbidden"))
    }

    /// Checks the description and what it refers to: units, the process, a unique code.
    async fn check_refs(&self, tx: &mut WriteTx, spec: &ItemSpec, id: Option<i64>) -> DomainResult<()> {
        check_spec(spec).map_err(|p| DomainError::invalid(&p.field, p.key))?;
        for (field, unit) in
            std::iter::once(("lead_unit_id", spec.lead_unit_id)).chain(spec.co_unit_ids.iter().map(|u| ("co_unit_ids", *u)))
        {
            let found = sqlx::query("SELECT 1 FROM units WHERE id = $1 AND enabled = 1").bind(unit).fetch_optional(tx.conn()).await?;
            if found.is_none() {
                return Err(DomainError::invalid(field, "approval.error.unknown_unit"));
            }
        }
        let process = sqlx::query("SELECT 1 FROM wf_definitions WHERE process_key = $1")
            .bind(spec.process_key.trim())
            .fetch_optional(tx.conn())
            .await?;
        if process.is_none() {
            return Err(DomainError::invalid("process_key", "approval.error.unknown_process"));
        }
        let dup = sqlx::query("SELECT id FROM approval_items WHERE code = $1").bind(spec.code.trim()).fetch_optional(tx.conn()).await?;
        if dup.is_some_and(|r| Some(r.get::<i64, _>(0)) != id) {
            return Err(DomainError::invalid("code", "error.duplicate"));
        }
        Ok(())
    }

    /// Adds an item to the catalogue.
    pub async fn create(&self, caller: &Principal, actor: &Actor, spec: ItemSpec) -> DomainResult<i64> {
        self.require(caller, actor, "approval.item.create").await?;
        let mut tx = self.db.begin_write().await?;
        self.check_refs(&mut tx, &spec, None).await?;
        let now = now_millis();
        let columns = SpecColumns::of(&spec)?;
        let insert = sqlx::query(
            "INSERT INTO approval_items (code, name, kind, audience, lead_unit_id, co_unit_ids, legal_basis, conditions, legal_days, \
             promised_days, fee, materials, form, process_key, visits, life_events, location, phone, enabled, created_at, updated_at) \
             VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,1,$19,$19) RETURNING id",
        );
        let id: i64 = columns.bind(insert).bind(now).fetch_one(tx.conn()).await?.get(0);
        let details = json!({"code": spec.code, "name": spec.name, "process_key": spec.process_key});
        self.audit.append(&mut tx, actor, Entry::success("approval.item.create", "approval_item", id, details)).await?;
        outbox::publish(&mut tx, "approval.item.changed", &json!({"id": id})).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Replaces an item's description.
    pub async fn update(&self, caller: &Principal, actor: &Actor, id: i64, spec: ItemSpec) -> DomainResult<()> {
        self.require(caller, actor, "approval.item.update").await?;
        let mut tx = self.db.begin_write().await?;
        if sqlx::query("SELECT 1 FROM approval_items WHERE id = $1").bind(id).fetch_optional(tx.conn()).await?.is_none() {
            return Err(DomainError::NotFound("error.not_found"));
        }
        self.check_refs(&mut tx, &spec, Some(id)).await?;
        let columns = SpecColumns::of(&spec)?;
        let update = sqlx::query(
            "UPDATE approval_items SET code = $1, name = $2, kind = $3, audience = $4, lead_unit_id = $5, co_unit_ids = $6, legal_basis = $7, \
             conditions = $8, legal_days = $9, promised_days = $10, fee = $11, materials = $12, form = $13, process_key = $14, visits = $15, \
             life_events = $16, location = $17, phone = $18, updated_at = $19 WHERE id = $20",
        );
        columns.bind(update).bind(now_millis()).bind(id).execute(tx.conn()).await?;
        let details = json!({"code": spec.code, "name": spec.name, "process_key": spec.process_key});
        self.audit.append(&mut tx, actor, Entry::success("approval.item.update", "approval_item", id, details)).await?;
        outbox::publish(&mut tx, "approval.item.changed", &json!({"id": id})).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Lists or withdraws an item from the public catalogue.
    pub async fn set_enabled(&self, caller: &Principal, actor: &Actor, id: i64, enabled: bool) -> DomainResult<()> {
        let action = if enabled { "approval.item.enable" } else { "approval.item.disable" };
        self.require(caller, actor, action).await?;
        let mut tx = self.db.begin_write().await?;
        let n = sqlx::query("UPDATE approval_items SET enabled = $1, updated_at = $2 WHERE id = $3")
            .bind(i64::from(enabled))
            .bind(now_millis())
            .bind(id)
            .execute(tx.conn())
            .await?
            .rows_affected();
        if n == 0 {
            return Err(DomainError::NotFound("error.not_found"));
        }
        self.audit.append(&mut tx, actor, Entry::success(action, "approval_item", id, json!({}))).await?;
        outbox::publish(&mut tx, "approval.item.changed", &json!({"id": id})).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn with_co_names(&self, mut items: Vec<ServiceItem>) -> DomainResult<Vec<ServiceItem>> {
        let units = sqlx::query("SELECT id, name FROM units").fetch_all(self.db.pool()).await?;
        let name = |id: i64| units.iter().find(|r| r.get::<i64, _>(0) == id).map(|r| r.get::<String, _>(1)).unwrap_or_default();
        for item in items.iter_mut() {
            item.co_unit_names = item.spec.co_unit_ids.iter().map(|u| name(*u)).collect();
        }
        Ok(items)
    }

    /// Every item, by code (administrators see disabled ones too).
    pub async fn items(&self, include_disabled: bool) -> DomainResult<Vec<ServiceItem>> {
        let sql = format!("{COLUMNS} {} ORDER BY a.code", if include_disabled { "" } else { "WHERE a.enabled = 1" });
        let rows = sqlx::query(&sql).fetch_all(self.db.pool()).await?;
        self.with_co_names(rows.iter().filter_map(item_of).collect()).await
    }

    /// The public catalogue, searched by name, department and life event.
    pub async fn search(&self, q: &GuideQuery) -> DomainResult<Vec<ServiceItem>> {
        Ok(self.items(false).await?.into_iter().filter(|i| q.matches(i)).collect())
    }

    /// One item; disabled items only for administrators.
    pub async fn item(&self, id: i64, include_disabled: bool) -> DomainResult<ServiceItem> {
        let row = sqlx::query(&format!("{COLUMNS} WHERE a.id = $1")).bind(id).fetch_optional(self.db.pool()).await?;
        let item =
            row.as_ref().and_then(item_of).filter(|i| i.enabled || include_disabled).ok_or(DomainError::NotFound("error.not_found"))?;
        self.with_co_names(vec![item]).await?.into_iter().next().ok_or(DomainError::NotFound("error.not_found"))
    }

    /// Departments that lead or help with at least one listed item, for the search form.
    pub async fn departments(&self) -> DomainResult<Vec<(i64, String)>> {
        let mut out: Vec<(i64, String)> = Vec::new();
        for item in self.items(false).await? {
            for (id, name) in std::iter::once((item.spec.lead_unit_id, item.lead_unit_name.clone()))
                .chain(item.spec.co_unit_ids.iter().copied().zip(item.co_unit_names.clone()))
            {
                if !out.iter().any(|(i, _)| *i == id) {
                    out.push((id, name));
                }
            }
        }
        out.sort_by(|a, b| a.1.cmp(&b.1));
        Ok(out)
    }
}
