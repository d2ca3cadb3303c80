//! Benchmark: distributing one sealed document to 200 units (公文分发): the time from the issuing
//! office pressing "seal and send" until every recipient's inbox lists the document — sealing
//! (SM2), storing the package, one delivery row and outbox event per unit and the audit record in
//! one transaction — then each of the 200 inboxes read back to check.

use std::time::Instant;

use serde_json::json;
use tongban_audit::Actor;
use tongban_authz::Principal;
use tongban_documents::{DocumentFields, DocumentService, IssueRequest};
use tongban_identity::UnitInput;
use tongban_pki::ca::CaService;

use crate::audit::{fresh_postgres, open_demo};

fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

async fn principal(opened: &tongban::boot::Opened, username: &str) -> anyhow::Result<(Principal, Actor)> {
    let user = opened.identity.user_by_username(username).await.map_err(err)?.ok_or_else(|| anyhow::anyhow!("no {username}"))?;
    let p = opened.identity.authz().principal(user.id).await.map_err(err)?.ok_or_else(|| anyhow::anyhow!("no principal"))?;
    let actor = Actor {
        user_id: Some(user.id),
        name: username.into(),
        unit: p.unit_name.clone(),
        ip: "127.0.0.1".into(),
        user_agent: "bench".into(),
        purpose: String::new(),
    };
    Ok((p, actor))
}

async fn measure(url: String, recipients: usize, rounds: usize) -> anyhow::Result<serde_json::Value> {
    let (_dir, opened) = open_demo(url).await?;
    // As served: the sealed package goes to the blob store (a local directory here).
    let documents = DocumentService::new(opened.db.clone(), opened.audit.clone()).with_blobs(opened.blobs.clone(), 10 << 20);
    documents.load_demo().await.map_err(err)?;
    let ca = CaService::new(
        opened.db.clone(),
        opened.audit.clone(),
        tongban_crypto::seal::SecretBox::new(rand::random()),
        "http://127.0.0.1:8080",
    );
    ca.ensure().await.map_err(err)?;
    let (sys, sys_actor) = principal(&opened, "sysadmin").await?;
    let (sec, sec_actor) = principal(&opened, "secadmin").await?;
    let (office, office_actor) = principal(&opened, "zhaomin").await?;
    let root = opened.identity.all_units().await.map_err(err)?.into_iter().find(|u| u.parent_id.is_none()).map(|u| u.id).unwrap_or(1);
    let mut units = Vec::with_capacity(recipients);
    for i in 0..recipients {
        let input = UnitInput {
            parent_id: Some(root),
            name: format!("收文单位{i:03}"),
            kind: "department".into(),
            region_code: None,
            sort_order: 0,
        };
        units.push(opened.identity.create_unit(&sys, &sys_actor, input).await.map_err(err)?);
    }
    ca.issue_seal(&sec, &sec_actor, office.unit_id, tongban_crypto::cert::KeyAlgorithm::Sm2).await.map_err(err)?;
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR seal";
    let seal_id = ca.register_seal(&sec, &sec_actor, office.unit_id, png).await.map_err(err)?;
    let file = vec![0x25u8; 256 * 1024];
    let fields = DocumentFields {
        issuer_mark: "嘉禾县行政审批服务局文件".into(),
        title: "关于公布政务服务事项目录的通知".into(),
        main_recipients: "各乡镇人民政府，县直各单位：".into(),
        body: "现予公布。".into(),
        issuing_authority: "嘉禾县行政审批服务局".into(),
        date: "2026-11-30".into(),
        ..DocumentFields::default()
    };
    let mut send_ms = Vec::new();
    let mut check_ms = Vec::new();
    for _ in 0..rounds {
        let id = documents.create_draft(&office, &office_actor, &fields).await.map_err(err)?;
        documents.assign_number(&office, &office_actor, id).await.map_err(err)?;
        let t = Instant::now();
        let req = IssueRequest { seal_id, file_name: "notice.pdf", file: &file, recipients: &units, groups: &[] };
        let n = documents.issue(&ca, &office, &office_actor, id, &req).await.map_err(err)?;
        anyhow::ensure!(n == recipients, "delivered to {n}");
        send_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        for unit in &units {
            let reader = Principal { unit_id: *unit, ..office.clone() };
            let inbox = documents.inbox(&reader).await.map_err(err)?;
            anyhow::ensure!(inbox.iter().any(|d| d.document_id == id), "unit {unit} lacks the document");
        }
        check_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        (v[v.len() / 2] * 10.0).round() / 10.0
    };
    let engine = match opened.db.kind() {
        tongban_platform::DbKind::Sqlite => "sqlite",
        tongban_platform::DbKind::Postgres => "postgres",
    };
    opened.db.close().await;
    Ok(json!({
        "database": engine,
        "recipients": recipients,
        "rounds": rounds,
        "document_bytes": file.len(),
        "seal_and_deliver_ms_median": median(&mut send_ms),
        "read_back_all_inboxes_ms_median": median(&mut check_ms),
    }))
}

/// Measures SQLite, and PostgreSQL when a URL is given.
pub async fn run(recipients: usize, rounds: usize, postgres: Option<&str>) -> anyhow::Result<serde_json::Value> {
    let dir = tempfile::tempdir()?;
    let sqlite = format!("sqlite://{}?mode=rwc", dir.path().join("bench.db").display());
    let mut results = vec![measure(sqlite, recipients, rounds).await?];
    if let Some(admin) = postgres {
        results.push(measure(fresh_postgres(admin).await?, recipients, rounds).await?);
    }
    Ok(json!({
        "benchmark": "document_distribution",
        "what": "seal (SM2) and deliver one numbered document to N units in one transaction, then read every recipient's inbox",
        "results": results,
    }))
}
