//! The units tree (组织机构树).

use std::collections::HashMap;

use serde_json::json;
use sqlx::{Row, any::AnyRow};
use tongban_audit::{Actor, Entry};
use tongban_authz::{Permission, Principal, ScopeFilter, Target};
use tongban_platform::{DomainError, WriteTx, clock::now_millis, error::DomainResult, outbox};

use crate::{
    model::{Unit, UnitInput, UnitKind},
    service::IdentityService,
};

const UNIT_COLUMNS: &str = "id, parent_id, path, name, kind, region_code, sort_order, enabled";

fn unit_from_row(r: &AnyRow) -> Unit {
    let path: String = r.get(2);
    Unit {
        id: r.get(0),
        parent_id: r.get(1),
        depth: path.matches('/').count().saturating_sub(2),
        path,
        name: r.get(3),
        kind: UnitKind::parse(&r.get::<String, _>(4)).unwrap_or(UnitKind::SubUnit),
        region_code: r.get(5),
        sort_order: r.get(6),
        enabled: r.get::<i64, _>(7) != 0,
    }
}

/// Orders units depth-first, siblings by sort order then name, so a list reads as a tree.
fn tree_order(units: Vec<Unit>) -> Vec<Unit> {
    let ids: std::collections::HashSet<i64> = units.iter().map(|u| u.id).collect();
    let mut children: HashMap<Option<i64>, Vec<Unit>> = HashMap::new();
    for u in units {
        // A visible unit whose parent is not visible is a root of the caller's view.
        let key = u.parent_id.filter(|p| ids.contains(p));
        children.entry(key).or_default().push(u);
    }
    for list in children.values_mut() {
        list.sort_by(|a, b| a.sort_order.cmp(&b.sort_order).then_with(|| a.name.cmp(&b.name)));
    }
    let mut out = Vec::new();
    let mut stack: Vec<Unit> = children.remove(&None).unwrap_or_default().into_iter().rev().collect();
    while let Some(u) = stack.pop() {
        if let Some(kids) = children.remove(&Some(u.id)) {
            stack.extend(kids.into_iter().rev());
        }
        out.push(u);
    }
    out
}

impl IdentityService {
    /// The units `caller` may see, in tree order.
    pub async fn units(&self, caller: &Principal) -> DomainResult<Vec<Unit>> {
        let filter = caller.filter(Permission::UnitRead)?;
        let base = format!("SELECT {UNIT_COLUMNS} FROM units");
        let rows = match filter {
            ScopeFilter::All => sqlx::query(&base).fetch_all(self.db.pool()).await?,
            ScopeFilter::UnitSubtree(path) => {
                sqlx::query(&format!("{base} WHERE path LIKE $1")).bind(format!("{path}%")).fetch_all(self.db.pool()).await?
            }
            // With `self` scope on units, a user sees their own unit.
            ScopeFilter::Unit(_) | ScopeFilter::OwnUser(_) => {
                sqlx::query(&format!("{base} WHERE id = $1")).bind(caller.unit_id).fetch_all(self.db.pool()).await?
            }
        };
        Ok(tree_order(rows.iter().map(unit_from_row).collect()))
    }

    /// Every unit (for the CLI and set-up).
    pub async fn all_units(&self) -> DomainResult<Vec<Unit>> {
        let rows = sqlx::query(&format!("SELECT {UNIT_COLUMNS} FROM units")).fetch_all(self.db.pool()).await?;
        Ok(tree_order(rows.iter().map(unit_from_row).collect()))
    }

    /// One unit by id, without a permission check (internal use).
    pub(crate) async fn load_unit(&self, id: i64) -> DomainResult<Option<Unit>> {
        let row = sqlx::query(&format!("SELECT {UNIT_COLUMNS} FROM units WHERE id = $1")).bind(id).fetch_optional(self.db.pool()).await?;
        Ok(row.as_ref().map(unit_from_row))
    }

    /// One unit, if `caller` may see it.
    pub async fn unit(&self, caller: &Principal, id: i64) -> DomainResult<Unit> {
        let unit = self.load_unit(id).await?.ok_or(DomainError::NotFound("error.unit_not_found"))?;
        let target = Target { owner_user_id: None, unit_id: unit.id, unit_path: &unit.path };
        if !caller.allows(Permission::UnitRead, target) {
            return Err(DomainError::NotFound("error.unit_not_found"));
        }
        Ok(unit)
    }

    fn validate_unit(input: &UnitInput) -> DomainResult<UnitKind> {
        let name = input.name.trim();
        if name.is_empty() {
            return Err(DomainError::invalid("name", "error.required"));
        }
        tongban_platform::text::check_name("name", name)?;
        if name.chars().count() > 64 {
            return Err(DomainError::invalid("name", "error.too_long"));
        }
        let kind = UnitKind::parse(&input.kind).ok_or_else(|| DomainError::invalid("kind", "error.invalid_choice"))?;
        if let Some(code) = input.region_code.as_deref().filter(|c| !c.is_empty())
            && !crate::regions::valid_region_code(code)
        {
            return Err(DomainError::invalid("region_code", "error.region_code"));
        }
        Ok(kind)
    }

    async fn check_region(&self, tx: &mut WriteTx, code: Option<&str>) -> DomainResult<Option<String>> {
        let Some(code) = code.filter(|c| !c.is_empty()) else {
            return Ok(None);
        };
        let found = sqlx::query("SELECT 1 FROM regions WHERE code = $1").bind(code).fetch_optional(tx.conn()).await?;
        if found.is_none() {
            return Err(DomainError::invalid("region_code", "error.region_unknown"));
        }
        Ok(Some(code.to_string()))
    }

    /// Creates a unit under `input.parent_id` (system administrator, or a unit-scoped holder of `unit.write`).
    pub async fn create_unit(&self, caller: &Principal, actor: &Actor, input: UnitInput) -> DomainResult<i64> {
        self.check_has(caller, actor, Permission::UnitWrite, "unit.create").await?;
        let kind = Self::validate_unit(&input)?;
        let parent_id = input.parent_id.ok_or_else(|| DomainError::invalid("parent_id", "error.required"))?;
        let parent = self.load_unit(parent_id).await?.ok_or_else(|| DomainError::invalid("parent_id", "error.unit_not_found"))?;
        let target = Target { owner_user_id: None, unit_id: parent.id, unit_path: &parent.path };
        if !caller.allows(Permission::UnitWrite, target) {
            self.audit.record_denied(&self.db, actor, "unit.create", "unit", parent.id, "out_of_scope").await;
            return Err(DomainError::invalid("parent_id", "error.out_of_scope"));
        }
        let mut tx = self.db.begin_write().await?;
        let id = self.insert_unit(&mut tx, Some(&parent), &input, kind).await?;
        let details = json!({"name": input.name.trim(), "parent_id": parent.id, "kind": kind.as_str()});
        self.audit.append(&mut tx, actor, Entry::success("unit.create", "unit", id, details)).await?;
        outbox::publish(&mut tx, "identity.unit.created", &json!({"unit_id": id})).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Refuses a name that a sibling (a unit with the same parent, `except` itself) already has:
    /// unit names are unique among siblings, so that a tree path of names says which unit is meant.
    async fn check_sibling_name(&self, tx: &mut WriteTx, parent_id: Option<i64>, name: &str, except: i64) -> DomainResult<()> {
        let taken = match parent_id {
            Some(p) => {
                sqlx::query("SELECT 1 FROM units WHERE parent_id = $1 AND name = $2 AND id <> $3")
                    .bind(p)
                    .bind(name.trim())
                    .bind(except)
                    .fetch_optional(tx.conn())
                    .await?
            }
            None => {
                sqlx::query("SELECT 1 FROM units WHERE parent_id IS NULL AND name = $1 AND id <> $2")
                    .bind(name.trim())
                    .bind(except)
                    .fetch_optional(tx.conn())
                    .await?
            }
        };
        if taken.is_some() {
            return Err(DomainError::invalid("name", "error.unit_name_taken"));
        }
        Ok(())
    }

    /// Inserts a unit row and sets its path; used by set-up and demo loading too.
    pub(crate) async fn insert_unit(
        &self,
        tx: &mut WriteTx,
        parent: Option<&Unit>,
        input: &UnitInput,
        kind: UnitKind,
    ) -> DomainResult<i64> {
        let region = self.check_region(tx, input.region_code.as_deref()).await?;
        self.check_sibling_name(tx, parent.map(|p| p.id), &input.name, 0).await?;
        let now = now_millis();
        let id: i64 = sqlx::query(
            "INSERT INTO units (parent_id, path, name, kind, region_code, sort_order, enabled, created_at, updated_at) \
             VALUES ($1, '', $2, $3, $4, $5, 1, $6, $6) RETURNING id",
        )
        .bind(parent.map(|p| p.id))
        .bind(input.name.trim())
        .bind(kind.as_str())
        .bind(region)
        .bind(input.sort_order)
        .bind(now)
        .fetch_one(tx.conn())
        .await?
        .get(0);
        let path = format!("{}{id}/", parent.map(|p| p.path.as_str()).unwrap_or("/"));
        sqlx::query("UPDATE units SET path = $2 WHERE id = $1").bind(id).bind(path).execute(tx.conn()).await?;
        Ok(id)
    }

    /// Edits a unit; a new parent moves its whole subtree.
    pub async fn update_unit(&self, caller: &Principal, actor: &Actor, id: i64, input: UnitInput) -> DomainResult<()> {
        self.check_has(caller, actor, Permission::UnitWrite, "unit.update").await?;
        let kind = Self::validate_unit(&input)?;
        let unit = self.load_unit(id).await?.ok_or(DomainError::NotFound("error.unit_not_found"))?;
        let target = Target { owner_user_id: None, unit_id: unit.id, unit_path: &unit.path };
        self.check(caller, actor, Permission::UnitWrite, target, "unit.update", ("unit", id)).await?;
        let mut tx = self.db.begin_write().await?;
        let region = self.check_region(&mut tx, input.region_code.as_deref()).await?;
        self.check_sibling_name(&mut tx, input.parent_id, &input.name, id).await?;
        let mut new_path = unit.path.clone();
        if input.parent_id != unit.parent_id {
            let parent_id = input.parent_id.ok_or_else(|| DomainError::invalid("parent_id", "error.required"))?;
            let parent = self.load_unit(parent_id).await?.ok_or_else(|| DomainError::invalid("parent_id", "error.unit_not_found"))?;
            if parent.path.starts_with(&unit.path) {
                return Err(DomainError::invalid("parent_id", "error.unit_cycle"));
            }
            let ptarget = Target { owner_user_id: None, unit_id: parent.id, unit_path: &parent.path };
            if !caller.allows(Permission::UnitWrite, ptarget) {
                return Err(DomainError::invalid("parent_id", "error.out_of_scope"));
            }
            new_path = format!("{}{id}/", parent.path);
            sqlx::query("UPDATE units SET path = $1 || substr(path, CAST($2 AS INTEGER)) WHERE path LIKE $3")
                .bind(&new_path)
                .bind(unit.path.len() as i64 + 1)
                .bind(format!("{}%", unit.path))
                .execute(tx.conn())
                .await?;
        }
        sqlx::query(
            "UPDATE units SET parent_id = $2, name = $3, kind = $4, region_code = $5, sort_order = $6, updated_at = $7 WHERE id = $1",
        )
        .bind(id)
        .bind(input.parent_id)
        .bind(input.name.trim())
        .bind(kind.as_str())
        .bind(region)
        .bind(input.sort_order)
        .bind(now_millis())
        .execute(tx.conn())
        .await?;
        let details = json!({"name": input.name.trim(), "kind": kind.as_str(), "parent_id": input.parent_id, "path": new_path});
        self.audit.append(&mut tx, actor, Entry::success("unit.update", "unit", id, details)).await?;
        outbox::publish(&mut tx, "identity.unit.updated", &json!({"unit_id": id})).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Enables or disables a unit.
    pub async fn set_unit_enabled(&self, caller: &Principal, actor: &Actor, id: i64, enabled: bool) -> DomainResult<()> {
        let action = if enabled { "unit.enable" } else { "unit.disable" };
        self.check_has(caller, actor, Permission::UnitWrite, action).await?;
        let unit = self.load_unit(id).await?.ok_or(DomainError::NotFound("error.unit_not_found"))?;
        let target = Target { owner_user_id: None, unit_id: unit.id, unit_path: &unit.path };
        self.check(caller, actor, Permission::UnitWrite, target, action, ("unit", id)).await?;
        let mut tx = self.db.begin_write().await?;
        sqlx::query("UPDATE units SET enabled = $2, updated_at = $3 WHERE id = $1")
            .bind(id)
            .bind(enabled as i64)
            .bind(now_millis())
            .execute(tx.conn())
            .await?;
        self.audit.append(&mut tx, actor, Entry::success(action, "unit", id, json!({"name": unit.name}))).await?;
        outbox::publish(&mut tx, "identity.unit.updated", &json!({"unit_id": id})).await?;
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(id: i64, parent: Option<i64>, sort: i64, name: &str) -> Unit {
        Unit {
            id,
            parent_id: parent,
            path: String::new(),
            name: name.into(),
            kind: UnitKind::Department,
            region_code: None,
            sort_order: sort,
            enabled: true,
            depth: 0,
        }
    }

    #[test]
    fn tree_order_is_depth_first_by_sort_order() {
        let units = vec![u(3, Some(1), 2, "c"), u(1, None, 0, "root"), u(2, Some(1), 1, "b"), u(4, Some(2), 0, "d")];
        let ids: Vec<i64> = tree_order(units).iter().map(|u| u.id).collect();
        assert_eq!(ids, vec![1, 2, 4, 3]);
    }
}
