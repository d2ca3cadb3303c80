//! Benchmark (b): audited state changes per second next to bare single-row insert transactions.
//!
//! An audited change is a real use case: `IdentityService::set_unit_enabled` (permission and scope
//! check, UPDATE, audit record with SM3 hash and HMAC, outbox event, one transaction). The raw rate
//! is `BEGIN; INSERT one row; COMMIT` on the same database, same pool, same run.

use std::time::Instant;

use serde_json::json;
use tongban::boot::open;
use tongban_audit::Actor;
use tongban_platform::Config;

async fn raw_inserts(db: &tongban_platform::Db, count: usize) -> anyhow::Result<f64> {
    sqlx::raw_sql("CREATE TABLE bench_raw (id BIGINT NOT NULL, v TEXT NOT NULL)").execute(db.pool()).await?;
    let t = Instant::now();
    for i in 0..count {
        let mut tx = db.begin_write().await?;
        sqlx::query("INSERT INTO bench_raw (id, v) VALUES ($1, $2)").bind(i as i64).bind("x").execute(tx.conn()).await?;
        tx.commit().await?;
    }
    Ok(count as f64 / t.elapsed().as_secs_f64())
}

/// Opens tongban on `url` with a fresh data directory and the demo county loaded.
pub(crate) async fn open_demo(url: String) -> anyhow::Result<(tempfile::TempDir, tongban::boot::Opened)> {
    let dir = tempfile::tempdir()?;
    let mut config = Config { data_dir: dir.path().to_path_buf(), ..Config::default() };
    config.database.url = url;
    let opened = open(config).await?;
    tongban_identity::demo::load(&opened.identity).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok((dir, opened))
}

async fn measure(url: String, count: usize) -> anyhow::Result<serde_json::Value> {
    let (_dir, opened) = open_demo(url).await?;
    let ids = &opened.identity;
    let sysadmin =
        ids.user_by_username("sysadmin").await.map_err(|e| anyhow::anyhow!("{e}"))?.ok_or_else(|| anyhow::anyhow!("no sysadmin"))?;
    let principal =
        ids.authz().principal(sysadmin.id).await.map_err(|e| anyhow::anyhow!("{e}"))?.ok_or_else(|| anyhow::anyhow!("no principal"))?;
    let actor = Actor {
        user_id: Some(sysadmin.id),
        name: "sysadmin".into(),
        unit: "信息中心".into(),
        ip: "127.0.0.1".into(),
        user_agent: "bench".into(),
        purpose: String::new(),
    };
    let unit =
        ids.all_units().await.map_err(|e| anyhow::anyhow!("{e}"))?.into_iter().find(|u| u.name == "教育局").map(|u| u.id).unwrap_or(2);

    let raw = raw_inserts(&opened.db, count).await?;
    let t = Instant::now();
    for i in 0..count {
        ids.set_unit_enabled(&principal, &actor, unit, i % 2 == 1).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let audited = count as f64 / t.elapsed().as_secs_f64();
    let report = opened.audit.verify(&opened.db).await?;
    anyhow::ensure!(report.ok(), "chain broken after the benchmark");
    let engine = match opened.db.kind() {
        tongban_platform::DbKind::Sqlite => "sqlite",
        tongban_platform::DbKind::Postgres => "postgres",
    };
    opened.db.close().await;
    Ok(json!({
        "database": engine,
        "count": count,
        "raw_insert_tx_per_second": raw.round(),
        "audited_changes_per_second": audited.round(),
        "ratio": (audited / raw * 100.0).round() / 100.0,
        "chain_verified_records": report.records,
    }))
}

pub(crate) async fn fresh_postgres(admin_url: &str) -> anyhow::Result<String> {
    sqlx::any::install_default_drivers();
    let name = format!("tb_bench_{}", std::process::id());
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(admin_url).await?;
    sqlx::Executor::execute(&mut conn, format!("DROP DATABASE IF EXISTS {name}").as_str()).await?;
    sqlx::Executor::execute(&mut conn, format!("CREATE DATABASE {name}").as_str()).await?;
    let base = admin_url.rsplit_once('/').map(|(b, _)| b).unwrap_or(admin_url);
    Ok(format!("{base}/{name}"))
}

/// Measures SQLite, and PostgreSQL when a URL is given.
pub async fn run(count: usize, postgres: Option<&str>) -> anyhow::Result<serde_json::Value> {
    let sqlite_dir = tempfile::tempdir()?;
    let sqlite_url = format!("sqlite://{}?mode=rwc", sqlite_dir.path().join("bench.db").display());
    let mut results = vec![measure(sqlite_url, count).await?];
    if let Some(admin) = postgres {
        results.push(measure(fresh_postgres(admin).await?, count).await?);
    }
    Ok(json!({
        "benchmark": "audited_state_changes",
        "change": "IdentityService::set_unit_enabled (check + UPDATE + audit record + outbox event, one transaction), sequential",
        "raw": "BEGIN; INSERT one row; COMMIT, sequential, same pool",
        "results": results,
    }))
}
