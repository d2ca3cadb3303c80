//! Searching the trail for the auditor (审计查询) and exporting it as CSV.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use tongban_platform::{
    Db,
    clock::format_rfc3339,
    csv_export::{CsvError, CsvExport},
};

use crate::model::AuditRecord;

/// Filters the auditor can combine; empty fields do not filter.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct AuditFilter {
    /// From this instant (UTC ms, inclusive).
    pub from: Option<i64>,
    /// Before this instant (UTC ms, exclusive).
    pub to: Option<i64>,
    /// Actor name contains this.
    pub actor: String,
    /// Actor's unit contains this.
    pub unit: String,
    /// Action starts with this (`user.` matches every user action).
    pub action: String,
    /// Object type equals this.
    pub object_type: String,
    /// Object id equals this.
    pub object_id: String,
    /// `success`, `failure` or `denied`.
    pub result: String,
}

/// One page of records, newest first.
#[derive(Debug, Clone, Serialize)]
pub struct AuditPage {
    /// The records.
    pub records: Vec<AuditRecord>,
    /// Records matching the filter in all.
    pub total: i64,
    /// Page number from 1.
    pub page: i64,
    /// Page size.
    pub per_page: i64,
}

enum Bind {
    Int(i64),
    Text(String),
}

impl AuditFilter {
    fn where_clause(&self) -> (String, Vec<Bind>) {
        let mut clauses = Vec::new();
        let mut binds = Vec::new();
        let mut add = |sql: &str, b: Bind| {
            binds.push(b);
            clauses.push(sql.replace('?', &format!("${}", binds.len())));
        };
        if let Some(from) = self.from {
            add("at >= ?", Bind::Int(from));
        }
        if let Some(to) = self.to {
            add("at < ?", Bind::Int(to));
        }
        if !self.actor.trim().is_empty() {
            add("actor_name LIKE ?", Bind::Text(format!("%{}%", escape_like(self.actor.trim()))));
        }
        if !self.unit.trim().is_empty() {
            add("actor_unit LIKE ?", Bind::Text(format!("%{}%", escape_like(self.unit.trim()))));
        }
        if !self.action.trim().is_empty() {
            add("action LIKE ?", Bind::Text(format!("{}%", escape_like(self.action.trim()))));
        }
        if !self.object_type.trim().is_empty() {
            add("object_type = ?", Bind::Text(self.object_type.trim().into()));
        }
        if !self.object_id.trim().is_empty() {
            add("object_id = ?", Bind::Text(self.object_id.trim().into()));
        }
        if !self.result.trim().is_empty() {
            add("result = ?", Bind::Text(self.result.trim().into()));
        }
        let sql = if clauses.is_empty() { String::new() } else { format!(" WHERE {}", clauses.join(" AND ")) };
        (sql, binds)
    }

    /// One page of matching records, newest first.
    pub async fn page(&self, db: &Db, page: i64, per_page: i64) -> Result<AuditPage, sqlx::Error> {
        let page = page.max(1);
        let per_page = per_page.clamp(1, 500);
        let (where_sql, binds) = self.where_clause();
        let count_sql = format!("SELECT COUNT(*) FROM audit_log{where_sql}");
        let mut q = sqlx::query(&count_sql);
        for b in &binds {
            q = match b {
                Bind::Int(i) => q.bind(*i),
                Bind::Text(t) => q.bind(t.clone()),
            };
        }
        let total: i64 = q.fetch_one(db.pool()).await?.get(0);
        let records = self.fetch(db, &where_sql, &binds, per_page, (page - 1) * per_page).await?;
        Ok(AuditPage { records, total, page, per_page })
    }

    async fn fetch(&self, db: &Db, where_sql: &str, binds: &[Bind], limit: i64, offset: i64) -> Result<Vec<AuditRecord>, sqlx::Error> {
        let sql = format!(
            "SELECT seq, at, actor_id, actor_name, actor_unit, ip, user_agent, action, object_type, object_id, result, \
             details, prev_hash, hash, mac FROM audit_log{where_sql} ORDER BY seq DESC LIMIT {limit} OFFSET {offset}"
        );
        let mut q = sqlx::query_as::<_, AuditRecord>(&sql);
        for b in binds {
            q = match b {
                Bind::Int(i) => q.bind(*i),
                Bind::Text(t) => q.bind(t.clone()),
            };
        }
        q.fetch_all(db.pool()).await
    }

    /// Every matching record (at most `limit`), newest first, for export.
    pub async fn all(&self, db: &Db, limit: i64) -> Result<Vec<AuditRecord>, sqlx::Error> {
        let (where_sql, binds) = self.where_clause();
        self.fetch(db, &where_sql, &binds, limit.max(1), 0).await
    }
}

fn escape_like(s: &str) -> String {
    // LIKE wildcards typed by the auditor are matched literally by stripping them.
    s.replace(['%', '_'], "")
}

/// Renders records as CSV (UTF-8 with BOM so that spreadsheet programs show Chinese correctly),
/// through the platform's one export writer (every cell neutralised against formula injection).
pub fn to_csv(records: &[AuditRecord]) -> Result<Vec<u8>, CsvError> {
    let mut w = CsvExport::new([
        "seq",
        "time_utc",
        "actor_id",
        "actor",
        "unit",
        "ip",
        "user_agent",
        "action",
        "object_type",
        "object_id",
        "result",
        "details",
        "hash",
    ])?;
    for r in records {
        w.row([
            r.seq.to_string(),
            format_rfc3339(r.at),
            r.actor_id.map(|i| i.to_string()).unwrap_or_default(),
            r.actor_name.clone(),
            r.actor_unit.clone(),
            r.ip.clone(),
            r.user_agent.clone(),
            r.action.clone(),
            r.object_type.clone(),
            r.object_id.clone(),
            r.result.clone(),
            r.details.clone(),
            r.hash.clone(),
        ])?;
    }
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_builds_numbered_placeholders() {
        let f = AuditFilter { actor: "li".into(), result: "denied".into(), from: Some(5), ..Default::default() };
        let (sql, binds) = f.where_clause();
        assert_eq!(sql, " WHERE at >= $1 AND actor_name LIKE $2 AND result = $3");
        assert_eq!(binds.len(), 3);
    }

    #[test]
    fn csv_neutralises_formulas() {
        let r = AuditRecord {
            seq: 1,
            at: 0,
            actor_id: None,
            actor_name: "=cmd()".into(),
            actor_unit: "张三".into(),
            ip: String::new(),
            user_agent: String::new(),
            action: "auth.login".into(),
            object_type: String::new(),
            object_id: String::new(),
            result: "failure".into(),
            details: "{}".into(),
            prev_hash: String::new(),
            hash: String::new(),
            mac: String::new(),
        };
        let text = String::from_utf8(to_csv(&[r]).unwrap_or_default()).unwrap_or_default();
        assert!(text.starts_with('\u{feff}') && text.contains(",'=cmd(),张三,"), "{text}");
    }
}
