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

/// Attack test (issue 13, finding 23): the newest records are deleted together with the lines of
/// the primary checkpoint file that cover them. The mirror file (which the database's writer
/// cannot edit) still holds the checkpoint, so `verify` names the truncation, and the auditor's
/// page shows the primary file lacking the latest checkpoint.
#[tokio::test]
async fn deleting_the_newest_records_and_their_checkpoint_lines_is_caught_by_the_mirror() {
    let outside = tempfile::tempdir().expect("temp dir");
    let mirror = outside.path().join("log/checkpoints.log");
    let mirror_cfg = mirror.clone();
    let app = TestApp::with(move |c| c.audit.checkpoint_mirror = Some(mirror_cfg), true).await;
    busy_trail(&app).await;
    let first = app.opened.audit.checkpoint(&app.opened.db).await.unwrap().expect("a checkpoint");
    busy_trail(&app).await;
    let second = app.opened.audit.checkpoint(&app.opened.db).await.unwrap().expect("a second checkpoint");
    assert!(second.seq > first.seq);
    let primary = app.opened.config.audit_checkpoint_path();
    assert_eq!(std::fs::read_to_string(&primary).unwrap(), std::fs::read_to_string(&mirror).unwrap(), "both files get every line");
    assert!(app.opened.audit.verify(&app.opened.db).await.unwrap().ok());

    let mut auditor = app.admin("auditor").await;
    let r = auditor.get("/audit").await;
    assert_eq!(r.element_text("checkpoint-seq"), second.seq.to_string(), "{}", r.body);
    assert!(r.body.contains("检查点副本文件") && r.body.contains(&mirror.display().to_string()) && !r.body.contains("缺少此检查点"));

    // The attack: everything after the first checkpoint goes, and so does the primary file's line for the second.
    unprotect(&app).await;
    let keep = first.seq;
    app.sql(&format!("DELETE FROM audit_log WHERE seq > {keep}")).await;
    app.sql(&format!("UPDATE audit_head SET seq = {keep}, hash = '{}'", first.hash)).await;
    let text = std::fs::read_to_string(&primary).unwrap();
    let kept: String = text.lines().filter(|l| !l.contains(&format!("seq={} ", second.seq))).map(|l| format!("{l}\n")).collect();
    assert_ne!(kept, text);
    std::fs::write(&primary, kept).unwrap();

    let report = app.opened.audit.verify(&app.opened.db).await.unwrap();
    assert!(!report.ok(), "the mirror gives the deletion away");
    let p = &report.problems[0];
    assert_eq!((p.seq, p.kind), (keep + 1, ProblemKind::Truncated), "{:?}", report.problems);
    assert!(
        p.message.contains(&format!("{}..{}", keep + 1, second.seq)) && p.message.contains(&mirror.display().to_string()),
        "{}",
        p.message
    );
    assert!(
        report.problems.iter().any(|p| p.kind == ProblemKind::CheckpointMissing && p.seq == second.seq),
        "the primary file lacks a line the mirror holds: {:?}",
        report.problems
    );
    assert_eq!(report.checkpoint_files.len(), 2);

    let r = auditor.get("/audit").await;
    assert_eq!(r.element_text("checkpoint-seq"), second.seq.to_string(), "the page shows the latest checkpoint of any file");
    assert!(r.body.contains("缺少此检查点"), "the primary file is shown lacking it");

    // Emptying the primary file does not help either.
    std::fs::write(&primary, "").unwrap();
    let report = app.opened.audit.verify(&app.opened.db).await.unwrap();
    assert!(report.problems.iter().any(|p| p.kind == ProblemKind::Truncated), "{:?}", report.problems);
    let missing: Vec<i64> = report.problems.iter().filter(|p| p.kind == ProblemKind::CheckpointMissing).map(|p| p.seq).collect();
    assert_eq!(missing, [first.seq, second.seq], "{:?}", report.problems);
}

/// Checkpoints reach a syslog collector as RFC 5424 messages, over UDP and over TCP (octet
/// counting), and the auditor's page says they were sent.
#[tokio::test]
async fn checkpoints_are_sent_to_a_syslog_collector_in_rfc_5424() {
    let collector = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let url = format!("udp://{}", collector.local_addr().unwrap());
    let app = TestApp::with(move |c| c.audit.syslog = url, true).await;
    busy_trail(&app).await;
    let cp = app.opened.audit.checkpoint(&app.opened.db).await.unwrap().expect("a checkpoint");
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), collector.recv(&mut buf)).await.expect("a datagram").unwrap();
    let message = String::from_utf8(buf[..n].to_vec()).unwrap();
    assert_rfc5424(&message, &cp);

    let mut auditor = app.admin("auditor").await;
    let r = auditor.get("/audit").await;
    assert!(r.body.contains("syslog 日志服务器") && r.body.contains("udp://127.0.0.1:"), "{}", r.body);
    assert!(!r.body.contains("写入失败") && !r.body.contains("尚未发送"));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("tcp://{}", listener.local_addr().unwrap());
    let app = TestApp::with(move |c| c.audit.syslog = url, true).await;
    busy_trail(&app).await;
    let received = tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).await.unwrap();
        text
    });
    let cp = app.opened.audit.checkpoint(&app.opened.db).await.unwrap().expect("a checkpoint");
    let framed = tokio::time::timeout(std::time::Duration::from_secs(5), received).await.expect("a message").unwrap();
    let (len, message) = framed.split_once(' ').expect("octet counting: LEN SP MSG");
    assert_eq!(len.parse::<usize>().unwrap(), message.len());
    assert_rfc5424(message, &cp);

    let mut bad = tongban_platform::Config::default();
    bad.audit.syslog = "syslog.jiahe.internal".into();
    assert!(bad.validate().unwrap_err().to_string().contains("audit.syslog"));
}

/// `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG` with the checkpoint's line as MSG.
fn assert_rfc5424(message: &str, cp: &tongban_audit::Checkpoint) {
    let fields: Vec<&str> = message.splitn(8, ' ').collect();
    assert_eq!(fields.len(), 8, "{message}");
    assert_eq!(fields[0], "<109>1", "facility log audit (13), severity notice (5), version 1");
    let at = time::OffsetDateTime::parse(fields[1], &time::format_description::well_known::Rfc3339).expect("RFC 3339 timestamp");
    assert_eq!(at.offset(), time::UtcOffset::UTC);
    assert_eq!((at.unix_timestamp_nanos() / 1_000_000) as i64, cp.at);
    assert!(!fields[2].is_empty() && fields[2].chars().all(|c| c.is_ascii_graphic()), "hostname {:?}", fields[2]);
    assert_eq!((fields[3], fields[5], fields[6]), ("tongban", "checkpoint", "-"));
    assert!(fields[4].parse::<u32>().is_ok(), "procid");
    assert_eq!(fields[7], cp.to_line().trim_end());
    assert!(fields[7].contains(&format!("seq={} hash={}", cp.seq, cp.hash)));
}
