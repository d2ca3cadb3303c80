//! Distribution groups (分发组): named lists of units that an issuing office sends documents to
//! often (各乡镇人民政府, 县直各部门…). A group belongs to one issuing unit; its document office
//! keeps it; sending to a group sends to each of its units.

use serde::Serialize;
use serde_json::json;
use sqlx::Row;
use tongban_audit::{Actor, Entry};
use tongban_authz::Principal;
use tongban_platform::{DomainError, clock::now_millis, error::DomainResult};

use crate::service::DocumentService;

/// The most units one group may hold.
pub const MAX_GROUP_MEMBERS: usize = 1000;

/// A distribution group (分发组).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DistributionGroup {
    /// Id.
    pub id: i64,
    /// The issuing unit that owns it.
    pub unit_id: i64,
    /// Its name, unique within the unit.
    pub name: String,
    /// Member units (id, name), by name.
    #[schema(value_type = Vec<Vec<serde_json::Value>>)]
    pub members: Vec<(i64, String)>,
}

impl DistributionGroup {
    /// The members' names, joined for display.
    pub fn member_names(&self) -> String {
        self.members.iter().map(|(_, n)| n.as_str()).collect::<Vec<_>>().join("、")
    }
}

impl DocumentService {
    async fn require_issuer(&self, caller: &Principal, actor: &Actor, unit_id: i64, action: &str) -> DomainResult<()> {
        if self.can_issue(caller, unit_id).await? {
            return Ok(());
        }
        self.audit.record_denied(&self.db, actor, action, "unit", unit_id, "out_of_scope").await;
        Err(DomainError::Forbidden("error.forbidden"))
    }

    /// The groups of an issuing unit, by name (its document office).
    pub async fn groups(&self, caller: &Principal, actor: &Actor, unit_id: i64) -> DomainResult<Vec<DistributionGroup>> {
        self.require_issuer(caller, actor, unit_id, "document.group.read").await?;
        let rows = sqlx::query(
            "SELECT g.id, g.name, u.id, u.name FROM document_groups g JOIN document_group_members m ON m.group_id = g.id \
             JOIN units u ON u.id = m.unit_id WHERE g.unit_id = $1 ORDER BY g.name, g.id, u.name",
        )
        .bind(unit_id)
        .fetch_all(self.db.pool())
        .await?;
        let mut groups: Vec<DistributionGroup> = Vec::new();
        for r in &rows {
            let id: i64 = r.get(0);
            if groups.last().is_none_or(|g| g.id != id) {
                groups.push(DistributionGroup { id, unit_id, name: r.get(1), members: Vec::new() });
            }
            if let Some(g) = groups.last_mut() {
                g.members.push((r.get(2), r.get(3)));
            }
        }
        Ok(groups)
    }

    /// Creates a group of `unit_id` named `name` with `members` (its document office).
    pub async fn create_group(&self, caller: &Principal, actor: &Actor, unit_id: i64, name: &str, members: &[i64]) -> DomainResult<i64> {
        self.require_issuer(caller, actor, unit_id, "document.group.create").await?;
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 40 {
            return Err(DomainError::invalid("name", if name.is_empty() { "error.required" } else { "document.error.too_long" }));
        }
        tongban_platform::text::check_name("name", name)?;
        let members = self.member_units(unit_id, members).await?;
        let now = now_millis();
        let mut tx = self.db.begin_write().await?;
        let taken = sqlx::query("SELECT 1 FROM document_groups WHERE unit_id = $1 AND name = $2")
            .bind(unit_id)
            .bind(name)
            .fetch_optional(tx.conn())
            .await?;
        if taken.is_some() {
            return Err(DomainError::invalid("name", "document.error.group_exists"));
        }
        let id: i64 = sqlx::query(
            "INSERT INTO document_groups (unit_id, name, created_by, created_at, updated_at) VALUES ($1,$2,$3,$4,$4) RETURNING id",
        )
        .bind(unit_id)
        .bind(name)
        .bind(caller.user_id)
        .bind(now)
        .fetch_one(tx.conn())
        .await?
        .get(0);
        for m in &members {
            sqlx::query("INSERT INTO document_group_members (group_id, unit_id) VALUES ($1,$2)")
                .bind(id)
                .bind(m)
                .execute(tx.conn())
                .await?;
        }
        let details = json!({"unit_id": unit_id, "name": name, "members": members});
        self.audit.append(&mut tx, actor, Entry::success("document.group.create", "document_group", id, details)).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Deletes a group (the owning unit's document office).
    pub async fn delete_group(&self, caller: &Principal, actor: &Actor, group_id: i64) -> DomainResult<()> {
        let row =
            sqlx::query("SELECT unit_id, name FROM document_groups WHERE id = $1").bind(group_id).fetch_optional(self.db.pool()).await?;
        let (unit_id, name): (i64, String) = row.map(|r| (r.get(0), r.get(1))).ok_or(DomainError::NotFound("error.not_found"))?;
        if !self.can_issue(caller, unit_id).await? {
            self.audit.record_denied(&self.db, actor, "document.group.delete", "document_group", group_id, "out_of_scope").await;
            return Err(DomainError::NotFound("error.not_found"));
        }
        let mut tx = self.db.begin_write().await?;
        sqlx::query("DELETE FROM document_group_members WHERE group_id = $1").bind(group_id).execute(tx.conn()).await?;
        sqlx::query("DELETE FROM document_groups WHERE id = $1").bind(group_id).execute(tx.conn()).await?;
        self.audit
            .append(&mut tx, actor, Entry::success("document.group.delete", "document_group", group_id, json!({"name": name})))
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The distinct, enabled member units asked for a group of `owner` (not `owner` itself).
    async fn member_units(&self, owner: i64, members: &[i64]) -> DomainResult<Vec<i64>> {
        let mut units: Vec<i64> = members.iter().copied().filter(|u| *u != owner).collect();
        units.sort_unstable();
        units.dedup();
        if units.is_empty() || units.len() > MAX_GROUP_MEMBERS {
            return Err(DomainError::invalid("members", "document.error.group_members"));
        }
        for u in &units {
            let known = sqlx::query("SELECT 1 FROM units WHERE id = $1 AND enabled = 1").bind(u).fetch_optional(self.db.pool()).await?;
            if known.is_none() {
                return Err(DomainError::invalid("members", "document.error.group_members"));
            }
        }
        Ok(units)
    }

    /// The units of the groups `groups` of issuing unit `owner`, for sending; a group that is
    /// not the unit's is refused by name of the field.
    pub(crate) async fn units_of_groups(&self, owner: i64, groups: &[i64]) -> DomainResult<Vec<i64>> {
        let mut units = Vec::new();
        for g in groups {
            let mine = sqlx::query("SELECT 1 FROM document_groups WHERE id = $1 AND unit_id = $2")
                .bind(g)
                .bind(owner)
                .fetch_optional(self.db.pool())
                .await?;
            if mine.is_none() {
                return Err(DomainError::invalid("groups", "error.not_found"));
            }
            let rows =
                sqlx::query("SELECT unit_id FROM document_group_members WHERE group_id = $1").bind(g).fetch_all(self.db.pool()).await?;
            units.extend(rows.iter().map(|r| r.get::<i64, _>(0)));
        }
        Ok(units)
    }

    /// Demo groups: the service hall's joint-approval bureaus, the county office's departments.
    pub(crate) async fn load_demo_groups(&self) -> DomainResult<()> {
        const GROUPS: [(&str, &str, &[&str]); 2] = [
            ("行政审批服务局（政务服务中心）", "审批联办单位", &["自然资源局", "住房和城乡建设局", "市场监督管理局"]),
            ("县政府办公室", "县直有关部门", &["行政审批服务局（政务服务中心）", "自然资源局", "住房和城乡建设局", "市场监督管理局"]),
        ];
        let mut tx = self.db.begin_write().await?;
        for (owner, name, members) in GROUPS {
            let row = sqlx::query(
                "INSERT INTO document_groups (unit_id, name, created_at, updated_at) SELECT id, $2, $3, $3 FROM units WHERE name = $1 \
                 AND NOT EXISTS (SELECT 1 FROM document_groups g WHERE g.unit_id = units.id AND g.name = $2) RETURNING id",
            )
            .bind(owner)
            .bind(name)
            .bind(now_millis())
            .fetch_optional(tx.conn())
            .await?;
            let Some(id) = row.map(|r| r.get::<i64, _>(0)) else { continue };
            for m in members {
                sqlx::query("INSERT INTO document_group_members (group_id, unit_id) SELECT $1, id FROM units WHERE name = $2")
                    .bind(id)
                    .bind(m)
                    .execute(tx.conn())
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }
}
