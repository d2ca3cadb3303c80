//! Regions (行政区划, GB/T 2260).

use sqlx::Row;
use tongban_platform::{WriteTx, error::DomainResult};

use crate::{model::Region, service::IdentityService};

impl IdentityService {
    /// Every region, by code.
    pub async fn regions(&self) -> DomainResult<Vec<Region>> {
        let rows = sqlx::query("SELECT code, name, parent_code, level FROM regions ORDER BY code").fetch_all(self.db.pool()).await?;
        Ok(rows.into_iter().map(|r| Region { code: r.get(0), name: r.get(1), parent_code: r.get(2), level: r.get(3) }).collect())
    }
}

/// Inserts a region unless its code exists.
pub(crate) async fn upsert_region(tx: &mut WriteTx, r: &Region) -> Result<(), sqlx::Error> {
    let exists = sqlx::query("SELECT 1 FROM regions WHERE code = $1").bind(&r.code).fetch_optional(tx.conn()).await?;
    if exists.is_none() {
        sqlx::query("INSERT INTO regions (code, name, parent_code, level) VALUES ($1, $2, $3, $4)")
            .bind(&r.code)
            .bind(&r.name)
            .bind(&r.parent_code)
            .bind(r.level)
            .execute(tx.conn())
            .await?;
    }
    Ok(())
}

/// Checks a GB/T 2260 code's shape: 2, 4, 6 or 9 digits.
pub fn valid_region_code(code: &str) -> bool {
    matches!(code.len(), 2 | 4 | 6 | 9) && code.bytes().all(|b| b.is_ascii_digit())
}

impl IdentityService {
    /// Adds a region (行政区划) with its GB/T 2260 code (system administrator).
    pub async fn create_region(&self, caller: &tongban_authz::Principal, actor: &tongban_audit::Actor, region: Region) -> DomainResult<()> {
        use tongban_platform::DomainError;
        self.check_has(caller, actor, tongban_authz::Permission::UnitWrite, "region.create").await?;
        let code = region.code.trim();
        if !valid_region_code(code) {
            return Err(DomainError::invalid("code", "error.region_code"));
        }
        let name = region.name.trim();
        if name.is_empty() || name.chars().count() > 64 {
            return Err(DomainError::invalid("name", "error.required"));
        }
        tongban_platform::text::check_name("name", name)?;
        let parent = region.parent_code.as_deref().map(str::trim).filter(|p| !p.is_empty());
        let level = match code.len() {
            2 => 1,
            4 => 2,
            6 => 3,
            _ => 4,
        };
        if let Some(p) = parent {
            if !code.starts_with(p) || p.len() >= code.len() {
                return Err(DomainError::invalid("parent_code", "error.region_parent"));
            }
        } else if level > 1 {
            return Err(DomainError::invalid("parent_code", "error.required"));
        }
        let mut tx = self.db.begin_write().await?;
        if sqlx::query("SELECT 1 FROM regions WHERE code = $1").bind(code).fetch_optional(tx.conn()).await?.is_some() {
            return Err(DomainError::invalid("code", "error.duplicate"));
        }
        if let Some(p) = parent
            && sqlx::query("SELECT 1 FROM regions WHERE code = $1").bind(p).fetch_optional(tx.conn()).await?.is_none()
        {
            return Err(DomainError::invalid("parent_code", "error.region_unknown"));
        }
        let r = Region { code: code.into(), name: name.into(), parent_code: parent.map(String::from), level };
        upsert_region(&mut tx, &r).await?;
        let details = serde_json::json!({"code": r.code, "name": r.name, "parent_code": r.parent_code});
        self.audit.append(&mut tx, actor, tongban_audit::Entry::success("region.create", "region", &r.code, details)).await?;
        tongban_platform::outbox::publish(&mut tx, "identity.region.created", &serde_json::json!({"code": r.code})).await?;
        tx.commit().await?;
        Ok(())
    }
}
