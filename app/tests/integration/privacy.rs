//! Personal data (个人信息保护): who reads a case, its materials and its result document; reads
//! and refused attempts in the audit trail; responses with personal data are never cached.

use axum::http::{Method, StatusCode, header};
use serde_json::json;

use crate::{
    approval::{accepted, citizen, complete_task, settle, submitted_permit},
    support::TestApp,
};

/// The applicant's data that a case carries (form values of `submitted_permit`).
const PROJECT: &str = "嘉禾县城南商住楼";

#[tokio::test]
async fn defining_processes_does_not_read_case_data() {
    let app = TestApp::demo().await;
    let (_ent, _page, number) = submitted_permit(&app, "13900000081").await;
    let case = accepted(&app, &number).await;
    let iid = app.scalar(&format!("SELECT instance_id FROM approval_cases WHERE id = {case}")).await;
    let mid = app.scalar(&format!("SELECT MIN(id) FROM case_materials WHERE case_id = {case}")).await;
    // A handler attaches a file to an opinion: case data too.
    let mut land = app.staff("zhoujun").await;
    let t = crate::approval::task_for(&mut land, &number, "review_land").await;
    land.json(Method::POST, &format!("/api/v1/workflow/tasks/{t}/claim"), json!({})).await;
    let ipage = format!("/workflow/instances/{iid}");
    let r = land
        .post_multipart(
            &ipage,
            &format!("/workflow/tasks/{t}/attachments"),
            &[("instance_id", &iid.to_string())],
            ("file", "现场照片.pdf", "%PDF-1.7 site"),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let r = land
        .json(Method::POST, &format!("/api/v1/workflow/tasks/{t}/complete"), json!({"opinion": "申请人联系电话13900000081已核实"}))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let aid = app.scalar("SELECT id FROM wf_task_attachments").await;

    let mut sys = app.admin("sysadmin").await;
    let denied_before = app.audit_count("approval.case.read", "denied").await;
    for path in [
        format!("/cases/{case}"),
        format!("/api/v1/cases/{case}"),
        format!("/cases/{case}/materials/{mid}"),
        format!("/cases/{case}/result"),
        format!("/api/v1/cases/{case}/result"),
        format!("/cases/{case}/notice/acceptance"),
        format!("{ipage}/attachments/{aid}"),
    ] {
        let r = sys.get(&path).await;
        assert!(matches!(r.status, StatusCode::NOT_FOUND | StatusCode::FORBIDDEN), "{path}: {} {}", r.status, r.body);
        assert!(!r.body.contains(PROJECT) && !r.body.contains("13900000081") && !r.body.contains("%PDF"), "{path} leaks: {}", r.body);
    }
    assert!(app.audit_count("approval.case.read", "denied").await > denied_before, "the refusals are recorded");
    // The instance's technical state stays visible for administering processes, without the data.
    let r = sys.get(&format!("/api/v1/workflow/instances/{iid}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v = r.json();
    assert_eq!(v["administrative"], json!(true));
    assert_eq!(v["variables"], json!({}), "no form data");
    assert!(v["tasks"].as_array().is_some_and(|t| t.len() >= 3), "the steps: {v}");
    assert!(!r.body.contains(PROJECT) && !r.body.contains("13900000081"), "{}", r.body);
    let r = sys.get(&ipage).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("规划审查") && r.body.contains("消防设计审查"), "the steps are listed");
    assert!(!r.body.contains(PROJECT) && !r.body.contains("13900000081") && !r.body.contains("现场照片"), "{}", r.body);

    // Those whose work needs it still read it all.
    let mut clerk = app.staff("liuyang").await;
    assert!(clerk.get(&format!("/cases/{case}")).await.body.contains(PROJECT));
    let r = land.get(&format!("/api/v1/workflow/instances/{iid}")).await;
    assert_eq!(r.json()["administrative"], json!(false));
    assert!(r.body.contains(PROJECT), "a participant sees the variables");
    assert_eq!(land.get(&format!("{ipage}/attachments/{aid}")).await.body, "%PDF-1.7 site");
}

#[tokio::test]
async fn reading_personal_data_is_recorded_once_and_refused_attempts_as_denials() {
    let app = TestApp::demo().await;
    let (mut ent, page, number) = submitted_permit(&app, "13900000082").await;
    settle(&app).await;
    let case = app.scalar(&format!("SELECT id FROM approval_cases WHERE number = '{number}'")).await;
    let mid = app.scalar(&format!("SELECT MIN(id) FROM case_materials WHERE case_id = {case}")).await;
    let reads = |action: &str, object: i64| {
        format!(
            "SELECT COUNT(*) FROM audit_log WHERE action = '{action}' AND result = 'success' AND object_id = '{object}' AND actor_name = 'liuyang'"
        )
    };

    let mut clerk = app.staff("liuyang").await;
    assert_eq!(clerk.get(&format!("/cases/{case}")).await.status, StatusCode::OK);
    assert_eq!(clerk.get(&format!("/cases/{case}")).await.status, StatusCode::OK);
    assert_eq!(clerk.get(&format!("/api/v1/cases/{case}")).await.status, StatusCode::OK);
    assert_eq!(app.scalar(&reads("approval.case.read", case)).await, 1, "one record for repeated reads within the hour");
    let details = app
        .scalar_text(&format!(
            "SELECT details FROM audit_log WHERE action = 'approval.case.read' AND object_id = '{case}' AND result = 'success'"
        ))
        .await;
    assert!(details.contains("GET /cases/{id}"), "the purpose is the route: {details}");
    assert_eq!(clerk.get(&format!("/cases/{case}/materials/{mid}")).await.body, "%PDF-1.7 m");
    clerk.get(&format!("/cases/{case}/materials/{mid}")).await;
    assert_eq!(app.scalar(&reads("approval.material.read", mid)).await, 1);
    // Another citizen tries the application: still 404, but recorded as a refusal.
    let mut other = citizen(&app, "11010519491231002X", "13900000083", "person").await;
    let denied = |action: &str| {
        format!("SELECT COUNT(*) FROM audit_log WHERE action = '{action}' AND result = 'denied' AND object_type = 'intake_application'")
    };
    assert_eq!(other.get(&page).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.scalar(&denied("approval.application.read")).await, 1, "the attempt is in the trail");
    assert_eq!(other.get(&format!("{page}/result")).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.scalar(&denied("approval.application.result")).await, 1);
    assert_eq!(other.post_form("/public", &format!("{page}/withdraw"), &[]).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.scalar(&denied("approval.application.withdraw")).await, 1);
    assert_eq!(ent.get(&page).await.status, StatusCode::OK, "the applicant still reads it");
    assert_eq!(app.scalar(&denied("approval.application.read")).await, 1, "the applicant's own reads are no refusals");

    // The result document, read by the window, is recorded once too.
    let case = accepted(&app, &number).await;
    for (user, step) in [("zhoujun", "review_land"), ("xuhui", "review_housing"), ("fangyuan", "review_fire")] {
        complete_task(&app, user, &number, step, "同意", None).await;
    }
    complete_task(&app, "zhoujun", &number, "decide", "准予许可", Some(true)).await;
    settle(&app).await;
    for _ in 0..2 {
        let r = clerk.get(&format!("/cases/{case}/result")).await;
        assert_eq!(r.status, StatusCode::OK);
    }
    assert_eq!(app.scalar(&reads("approval.result.read", case)).await, 1);
    assert_eq!(clerk.get(&format!("/api/v1/cases/{case}/result")).await.status, StatusCode::OK);
    assert_eq!(app.scalar(&reads("approval.result.read", case)).await, 1, "the API read falls in the same hour");
}

#[tokio::test]
async fn personal_data_and_private_files_are_never_cached() {
    let app = TestApp::demo().await;
    let (mut ent, page, number) = submitted_permit(&app, "13900000084").await;
    let case = accepted(&app, &number).await;
    let mid = app.scalar(&format!("SELECT MIN(id) FROM case_materials WHERE case_id = {case}")).await;
    for (user, step) in [("zhoujun", "review_land"), ("xuhui", "review_housing"), ("fangyuan", "review_fire")] {
        complete_task(&app, user, &number, step, "同意", None).await;
    }
    complete_task(&app, "zhoujun", &number, "decide", "准予许可", Some(true)).await;
    settle(&app).await;
    let mut clerk = app.staff("liuyang").await;
    let no_store = |r: &crate::support::Resp| r.headers.get(header::CACHE_CONTROL).and_then(|v| v.to_str().ok()) == Some("no-store");
    for path in [
        format!("/api/v1/cases/{case}"),
        "/api/v1/cases?list=all".to_string(),
        format!("/cases/{case}/materials/{mid}"),
        format!("/cases/{case}/result"),
        format!("/api/v1/cases/{case}/result"),
        "/api/v1/me".to_string(),
    ] {
        let r = clerk.get(&path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
        assert!(no_store(&r), "{path}: {:?}", r.headers.get(header::CACHE_CONTROL));
    }
    let r = ent.get(&format!("{page}/result")).await;
    assert!(r.status == StatusCode::OK && no_store(&r), "the applicant's result document");
    // Static assets stay cacheable.
    let r = clerk.get("/static/app.css").await;
    if r.status == StatusCode::OK {
        assert!(!no_store(&r), "static assets keep their own policy");
    }
}
