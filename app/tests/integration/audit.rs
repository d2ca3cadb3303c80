//! The audit trail: records for each action, no secrets, the database refuses edits, and
//! `tongban audit verify` finds an edited row, a recomputed chain and deleted newest rows.

use axum::http::StatusCode;
use tongban_audit::{AuditRecord, ProblemKind};
use tongban_crypto::sm3_hex;

use crate::support::{DEMO_PASSWORD, TestApp};

async fn unprotect(app: &TestApp) {
    if app.is_postgres() {
        app.sql("ALTER TABLE audit_log DISABLE TRIGGER USER").await;
    } else {
        app.sql("DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;").await;
    }
}

async fn busy_trail(app: &TestApp) {
    let mut c = app.client();
    c.login("zhangwei", "Wrong#pass1").await;
    let mut c = app.staff("zhangwei").await;
    c.post_form("/workbench", "/logout", &[]).await;
    app.staff("zhoujun").await;
}

#[tokio::test]
async fn records_name_actor_source_and_result_but_never_secrets() {
    let app = TestApp::demo().await;
    busy_trail(&app).await;
    let mut sys = app.admin("sysadmin").await;
    let edu = app.unit_id("教育局").await;
    let r = sys
        .json(axum::http::Method::POST, "/api/v1/users", serde_json::json!({"username": "heping2", "display_name": "何平", "unit_id": edu}))
        .await;
    let id = r.json()["user_id"].as_i64().unwrap_or_default();
    let r = sys.post_form(&format!("/admin/users/{id}"), &format!("/admin/users/{id}/reset-password"), &[]).await;
    let one_time = r.element_text("one-time-password");
    let row = app.scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'auth.login' AND result = 'failure' AND actor_name = 'zhangwei' AND ip = '198.51.100.7' AND user_agent = 'tongban-tests'").await;
    assert_eq!(row, 1);
    for secret in [DEMO_PASSWORD, one_time.as_str(), "Wrong#pass1"] {
        let n = app.scalar(&format!("SELECT COUNT(*) FROM audit_log WHERE details LIKE '%{secret}%' OR object_id LIKE '%{secret}%'")).await;
        assert_eq!(n, 0, "{secret} must not be in the audit trail");
    }
    assert_eq!(app.audit_count("user.reset_password", "success").await, 1);
    assert_eq!(app.audit_count("auth.logout", "success").await, 1);
}

#[tokio::test]
async fn the_database_refuses_to_edit_or_delete_audit_records() {
    let app = TestApp::demo().await;
    let update = sqlx::raw_sql("UPDATE audit_log SET result = 'success' WHERE seq = 1").execute(app.opened.db.pool()).await;
    assert!(update.is_err(), "UPDATE refused");
    let delete = sqlx::raw_sql("DELETE FROM audit_log WHERE seq = 1").execute(app.opened.db.pool()).await;
    assert!(delete.is_err(), "DELETE refused");
    assert!(app.opened.audit.verify(&app.opened.db).await.unwrap().ok());
}

#[tokio::test]
async fn verify_names_an_edited_record() {
    let app = TestApp::demo().await;
    busy_trail(&app).await;
    let report = app.opened.audit.verify(&app.opened.db).await.unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    unprotect(&app).await;
    app.sql("UPDATE audit_log SET actor_name = 'someone_else' WHERE seq = 3").await;
    let report = app.opened.audit.verify(&app.opened.db).await.unwrap();
    assert_eq!(report.problems[0].seq, 3);
    assert_eq!(report.problems[0].kind, ProblemKind::Edited);

    // The command line exits non-zero and names record 3.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tongban"))
        .args(["audit", "verify"])
        .env("TONGBAN_DATA_DIR", &app.opened.config.data_dir)
        .env("TONGBAN_DATABASE__URL", app.opened.config.database_url())
        .env_remove("TONGBAN_CONFIG")
        .output()
        .expect("run tongban");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("record 3"), "{stderr}");
}

#[tokio::test]
async fn verify_finds_a_chain_recomputed_after_an_edit() {
    let app = TestApp::demo().await;
    busy_trail(&app).await;
    unprotect(&app).await;
    // An attacker with database access edits record 2 and recomputes every hash after it.
    let mut records: Vec<AuditRecord> = sqlx::query_as(
        "SELECT seq, at, actor_id, actor_name, actor_unit, ip, user_agent, action, object_type, object_id, result, details, prev_hash, hash, mac FROM audit_log ORDER BY seq",
    )
    .fetch_all(app.opened.db.pool())
    .await
    .unwrap();
    records[1].result = "success".into();
    records[1].details = "{}".into();
    for i in 1..records.len() {
        records[i].prev_hash = records[i - 1].hash.clone();
        records[i].hash = sm3_hex(&records[i].canonical());
        sqlx::query("UPDATE audit_log SET result = $2, details = $3, prev_hash = $4, hash = $5 WHERE seq = $1")
            .bind(records[i].seq)
            .bind(&records[i].result)
            .bind(&records[i].details)
            .bind(&records[i].prev_hash)
            .bind(&records[i].hash)
            .execute(app.opened.db.pool())
            .await
            .unwrap();
    }
    let head = records.last().unwrap().hash.clone();
    app.sql(&format!("UPDATE audit_head SET hash = '{head}'")).await;
    let report = app.opened.audit.verify(&app.opened.db).await.unwrap();
    assert!(!report.ok());
    assert_eq!(report.problems[0].seq, 2, "{:?}", report.problems);
    assert_eq!(report.problems[0].kind, ProblemKind::Recomputed);
}

#[tokio::test]
async fn verify_finds_the_newest_records_deleted_after_a_checkpoint() {
    let app = TestApp::demo().await;
    busy_trail(&app).await;
    let cp = app.opened.audit.checkpoint(&app.opened.db).await.unwrap().expect("a checkpoint");
    assert!(app.opened.audit.checkpoint(&app.opened.db).await.unwrap().is_none(), "no duplicate checkpoint");
    unprotect(&app).await;
    let keep = cp.seq - 2;
    app.sql(&format!("DELETE FROM audit_log WHERE seq > {keep}")).await;
    let hash: String =
        sqlx::query_scalar(&format!("SELECT hash FROM audit_log WHERE seq = {keep}")).fetch_one(app.opened.db.pool()).await.unwrap();
    app.sql(&format!("UPDATE audit_head SET seq = {keep}, hash = '{hash}'")).await;
    let report = app.opened.audit.verify(&app.opened.db).await.unwrap();
    assert!(!report.ok());
    let p = &report.problems[0];
    assert_eq!((p.seq, p.kind), (keep + 1, ProblemKind::Truncated), "{:?}", report.problems);
    assert!(p.message.contains(&format!("{}..{}", keep + 1, cp.seq)));
}

#[tokio::test]
async fn a_forged_checkpoint_line_is_reported() {
    let app = TestApp::demo().await;
    busy_trail(&app).await;
    app.opened.audit.checkpoint(&app.opened.db).await.unwrap();
    let path = app.opened.config.audit_checkpoint_path();
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("tongban-audit-checkpoint v1 seq=1 hash=00 at=0 sig=abcd\n");
    std::fs::write(&path, text).unwrap();
    let report = app.opened.audit.verify(&app.opened.db).await.unwrap();
    assert!(report.problems.iter().any(|p| p.kind == ProblemKind::BadCheckpoint && p.seq == 2));
}

#[tokio::test]
async fn the_auditor_filters_pages_and_exports() {
    let app = TestApp::demo().await;
    busy_trail(&app).await;
    let mut auditor = app.admin("auditor").await;
    let r = auditor.get("/audit?actor=zhangwei&result=failure").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("共 1 条记录"), "{}", r.body);
    let r = auditor.get("/audit?from=2026-13-45").await;
    assert!(r.body.contains("起始日期") && r.body.contains("YYYY-MM-DD"), "bad date named");
    let r = auditor.get("/audit?page=abc").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = auditor.get("/audit/export.csv?action=auth.").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["content-type"], "text/csv; charset=utf-8");
    assert!(r.body.starts_with('\u{feff}'));
    assert!(r.body.contains("seq,time_utc,actor_id") && r.body.contains("auth.login"));
    assert!(!r.body.contains("demo.load"), "filter applies to the export");
    assert!(app.audit_count("audit.export", "success").await == 1, "exports are audited");
}
