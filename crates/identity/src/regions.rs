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
