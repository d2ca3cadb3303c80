//! Official documents (公文) through the API: drafts with the GB/T 9704 elements (refusals naming
//! the field, classified levels refused), who may number, and numbers without gaps or repeats
//! when many are assigned at once.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::TestApp;

fn draft(title: &str) -> Value {
    json!({
        "urgency": "加急",
        "issuer_mark": "嘉禾县行政审批服务局文件",
        "title": title,
        "main_recipients": "各乡镇人民政府，县直各单位：",
        "body": "现将政务服务事项目录予以公布，请遵照执行。",
        "issuing_authority": "嘉禾县行政审批服务局",
        "date": "2026-11-30",
    })
}

#[tokio::test]
async fn drafts_are_checked_and_only_the_issuing_office_numbers_them() {
    let app = TestApp::demo().await;
    let mut clerk = app.staff("liuyang").await;
    for (spoil, field) in [("classification", "classification"), ("date", "date"), ("title", "title")] {
        let mut body = draft("关于公布政务服务事项目录的通知");
        body[spoil] = json!(match spoil {
            "classification" => "机密",
            "date" => "2026-13-01",
            _ => "",
        });
        let r = clerk.json(Method::POST, "/api/v1/documents", body).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
        assert_eq!(r.json()["field"], field);
    }
    let r = clerk.json(Method::POST, "/api/v1/documents", json!({"title": "x", "unknown": 1})).await;
    assert_eq!((r.status, r.json()["field"].clone()), (StatusCode::UNPROCESSABLE_ENTITY, json!("unknown")));
    assert_eq!(app.scalar("SELECT COUNT(*) FROM documents").await, 0, "nothing half-written");

    let r = clerk.json(Method::POST, "/api/v1/documents", draft("关于公布政务服务事项目录的通知")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let id = r.json()["id"].as_i64().unwrap_or_default();
    let r = clerk.json(Method::POST, &format!("/api/v1/documents/{id}/number"), json!({})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "a clerk drafts, the office numbers");
    let mut outsider = app.staff("xuhui").await;
    assert_eq!(outsider.get(&format!("/api/v1/documents/{id}")).await.status, StatusCode::NOT_FOUND, "another unit's draft");

    // The service hall's office (document.issue over its subtree) sets the window's prefix and numbers.
    let mut office = app.staff("zhaomin").await;
    let window = app.unit_id("综合受理窗口").await;
    let r = office.json(Method::POST, &format!("/api/v1/documents/{id}/number"), json!({})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "no prefix yet: {}", r.body);
    let r = office.json(Method::PUT, &format!("/api/v1/units/{window}/document-prefix"), json!({"prefix": "嘉审〔受"})).await;
    assert_eq!((r.status, r.json()["field"].clone()), (StatusCode::UNPROCESSABLE_ENTITY, json!("prefix")));
    let r = office.json(Method::PUT, &format!("/api/v1/units/{window}/document-prefix"), json!({"prefix": "嘉审批受"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let land = app.unit_id("自然资源局").await;
    let r = office.json(Method::PUT, &format!("/api/v1/units/{land}/document-prefix"), json!({"prefix": "嘉自然"})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "outside her units");
    let year = tongban_platform::clock::local_date(tongban_platform::clock::now_millis()).map(|d| d.year()).unwrap_or(0);
    let r = office.json(Method::POST, &format!("/api/v1/documents/{id}/number"), json!({})).await;
    assert_eq!(r.json()["doc_number"], format!("嘉审批受〔{year}〕1号"));
    let r = office.json(Method::POST, &format!("/api/v1/documents/{id}/number"), json!({})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "numbered once");
    let r = clerk.json(Method::PUT, &format!("/api/v1/documents/{id}"), draft("改过的标题")).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "a numbered document is fixed");
    assert_eq!(app.audit_count("document.number", "success").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn numbers_assigned_at_once_never_repeat_and_leave_no_gap() {
    let app = TestApp::demo().await;
    let mut office = app.staff("zhaomin").await;
    let mut ids = Vec::new();
    for i in 0..30 {
        let r = office.json(Method::POST, "/api/v1/documents", draft(&format!("通知 {i}"))).await;
        ids.push(r.json()["id"].as_i64().unwrap_or_default());
    }
    // All at once, on the runtime's threads.
    let calls: Vec<_> = ids
        .iter()
        .map(|id| {
            let mut c = office.clone_session();
            let path = format!("/api/v1/documents/{id}/number");
            tokio::spawn(async move { c.json(Method::POST, &path, json!({})).await })
        })
        .collect();
    let mut results = Vec::new();
    for call in calls {
        results.push(call.await.expect("task"));
    }
    let mut seqs: Vec<i64> = results
        .iter()
        .map(|r| {
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            let n = r.json()["doc_number"].as_str().unwrap_or_default().to_string();
            n.rsplit('〕').next().and_then(|s| s.trim_end_matches('号').parse().ok()).unwrap_or(0)
        })
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=30).collect::<Vec<i64>>(), "1 to 30, each once");
}
