//! Official documents (公文) through the API: drafts with the GB/T 9704 elements (refusals naming
//! the field, classified levels refused), who may number, and numbers without gaps or repeats
//! when many are assigned at once.

use axum::http::{Method, StatusCode, header};
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

/// Gives `username` the issuing office's role (unit administrator) over their own unit.
async fn make_office(app: &TestApp, username: &str) {
    app.sql(&format!(
        "INSERT INTO grants (user_id, role_id, scope, created_at) SELECT u.id, r.id, 'unit', 0 FROM users u, roles r \
         WHERE u.username = '{username}' AND r.code = 'unit_admin'"
    ))
    .await;
}

/// The security administrator gives each unit a seal certificate and a registered seal.
async fn seals_for(app: &TestApp, units: &[i64]) {
    let mut sec = app.admin("secadmin").await;
    for unit in units {
        let r = sec.post_form("/admin/pki", "/admin/pki/seal", &[("unit_id", &unit.to_string()), ("algorithm", "sm2")]).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        let r = sec
            .post_multipart_bytes(
                "/admin/pki",
                "/admin/pki/seals",
                &[("unit_id", &unit.to_string())],
                ("image", "seal.png", crate::pki::SEAL_PNG),
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    }
}

#[tokio::test]
async fn a_sealed_document_reaches_two_units_one_signs_for_it_one_refuses_and_the_sender_sees_both() {
    let app = TestApp::demo().await;
    let authority = crate::pki::ca(&app).await;
    let (hall, land, housing) =
        (app.unit_id("行政审批服务局（政务服务中心）").await, app.unit_id("自然资源局").await, app.unit_id("住房和城乡建设局").await);
    seals_for(&app, &[hall, land, housing]).await;
    make_office(&app, "zhoujun").await;
    make_office(&app, "xuhui").await;

    // The hall drafts, numbers and issues to the two bureaus.
    let mut office = app.staff("zhaomin").await;
    let id = office.json(Method::POST, "/api/v1/documents", draft("关于规范工程建设项目审批材料的通知")).await.json()["id"]
        .as_i64()
        .unwrap_or_default();
    let number = office.json(Method::POST, &format!("/api/v1/documents/{id}/number"), json!({})).await.json()["doc_number"].clone();
    assert!(number.as_str().unwrap_or_default().starts_with("嘉审批发〔"), "{number}");
    let seal = app.scalar(&format!("SELECT id FROM seals WHERE unit_id = {hall}")).await;
    let pdf = base64_encode(b"%PDF-1.7 red-header document");
    let body = |recipients: Vec<i64>| json!({"seal_id": seal, "file_name": "notice.pdf", "file": pdf, "recipients": recipients});
    let r = office.json(Method::POST, &format!("/api/v1/documents/{id}/issue"), body(vec![])).await;
    assert_eq!((r.status, r.json()["field"].clone()), (StatusCode::UNPROCESSABLE_ENTITY, json!("recipients")));
    let r = office.json(Method::POST, &format!("/api/v1/documents/{id}/issue"), body(vec![land, 999_999])).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "an unknown unit");
    let mut outsider = app.staff("huangli").await;
    let r = outsider.json(Method::POST, &format!("/api/v1/documents/{id}/issue"), body(vec![land])).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "another unit's document");
    let r = office.json(Method::POST, &format!("/api/v1/documents/{id}/issue"), body(vec![land, housing, hall])).await;
    assert_eq!((r.status, r.json()["recipients"].clone()), (StatusCode::OK, json!(2)), "{}", r.body);
    let r = office.json(Method::POST, &format!("/api/v1/documents/{id}/issue"), body(vec![land])).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "issued once");

    // 加急: signed for within two working days; e-supervision shows it until it is.
    let today = tongban_platform::clock::local_date(tongban_platform::clock::now_millis()).expect("today");
    let due = app.opened.calendar.calendar().await.expect("calendar").add_working_days(today, 2).expect("due").to_string();
    assert_eq!(app.scalar_text(&format!("SELECT due_on FROM document_deliveries WHERE recipient_unit_id = {land}")).await, due);
    let mut supervisor = app.staff("jiangwei").await;
    let page = supervisor.get("/supervision").await;
    assert!(page.body.contains("id=\"urgent-documents\"") && page.body.contains("关于规范工程建设项目审批材料的通知"), "{}", page.body);

    // 自然资源局: in its inbox, opened (read), the package verifies, signed for with its seal.
    let mut land_office = app.staff("zhoujun").await;
    let inbox = land_office.get("/api/v1/inbox").await.json();
    assert_eq!(inbox.as_array().map(Vec::len), Some(1));
    assert_eq!(inbox[0]["urgency"], "加急");
    let delivery = inbox[0]["id"].as_i64().unwrap_or_default();
    assert_eq!(outsider.get(&format!("/api/v1/deliveries/{delivery}")).await.status, StatusCode::NOT_FOUND);
    let opened = land_office.get(&format!("/api/v1/deliveries/{delivery}")).await.json();
    assert_eq!(opened["delivery"]["status"], "read");
    let report = authority.verify(opened["package"].to_string().as_bytes()).await.expect("verify");
    assert!(report.ok() && report.unit.contains("行政审批服务局"), "{:?}", report.problems);
    let receipt = land_office.json(Method::POST, &format!("/api/v1/deliveries/{delivery}/sign"), json!({})).await;
    assert_eq!(receipt.status, StatusCode::OK, "{}", receipt.body);
    let receipt = receipt.json();
    let again = land_office.json(Method::POST, &format!("/api/v1/deliveries/{delivery}/sign"), json!({})).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "signed once");
    let urgent = app
        .scalar(&format!("SELECT COUNT(*) FROM document_deliveries WHERE recipient_unit_id = {land} AND status IN ('delivered', 'read')"))
        .await;
    assert_eq!(urgent, 0, "signed for: off the supervision list");

    // 住建局 refuses with a reason; the reason is required.
    let mut housing_office = app.staff("xuhui").await;
    let housing_delivery = housing_office.get("/api/v1/inbox").await.json()[0]["id"].as_i64().unwrap_or_default();
    let r = housing_office.json(Method::POST, &format!("/api/v1/deliveries/{housing_delivery}/refuse"), json!({"reason": " "})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = housing_office
        .json(Method::POST, &format!("/api/v1/deliveries/{housing_delivery}/refuse"), json!({"reason": "非本单位职责，请改送县交通运输局"}))
        .await;
    assert_eq!(r.status, StatusCode::OK);

    // The sender's tracking: one signed (receipt checks out, naming the exact package), one refused.
    let tracking = office.get(&format!("/api/v1/documents/{id}/tracking")).await.json();
    let by_unit =
        |name: &str| tracking.as_array().and_then(|a| a.iter().find(|d| d["recipient_unit"] == name).cloned()).unwrap_or_default();
    let signed = by_unit("自然资源局");
    assert_eq!((signed["status"].clone(), signed["receipt_valid"].clone()), (json!("signed"), json!(true)));
    assert!(signed["read_at"].is_i64() && signed["signed_at"].is_i64());
    let refused = by_unit("住房和城乡建设局");
    assert_eq!(
        (refused["status"].clone(), refused["refusal_reason"].clone()),
        (json!("refused"), json!("非本单位职责，请改送县交通运输局"))
    );
    let package_sm3 = app.scalar_text(&format!("SELECT package_sm3 FROM documents WHERE id = {id}")).await;
    assert!(tongban_documents::receipt_verifies(&receipt, &package_sm3));
    assert!(!tongban_documents::receipt_verifies(&receipt, &"0".repeat(64)), "a receipt names one content only");
    let mut forged = receipt.clone();
    forged["text"] = json!(receipt["text"].as_str().unwrap_or_default().replace("自然资源局", "住房和城乡建设局"));
    assert!(!tongban_documents::receipt_verifies(&forged, &package_sm3), "an altered receipt fails");
    assert_eq!(app.audit_count("document.sign", "success").await, 1);
}

#[tokio::test]
async fn the_sender_withdraws_what_was_not_signed_for() {
    let app = TestApp::demo().await;
    let land = app.unit_id("自然资源局").await;
    let mut office = seals_and_a_numbered_draft(&app, "撤回测试").await;
    let id = app.scalar("SELECT MAX(id) FROM documents").await;
    let seal =
        app.scalar("SELECT s.id FROM seals s JOIN units u ON u.id = s.unit_id WHERE u.name = '行政审批服务局（政务服务中心）'").await;
    // No file: rendered as the GB/T 9704 PDF with the hall's seal on it (when a CJK font is installed).
    let rendering = tongban_documents::render::FontFile::load(None).is_ok();
    let body = if rendering {
        json!({"seal_id": seal, "recipients": [land]})
    } else {
        json!({"seal_id": seal, "file_name": "a.pdf", "file": base64_encode(b"%PDF"), "recipients": [land]})
    };
    let r = office.json(Method::POST, &format!("/api/v1/documents/{id}/issue"), body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let pdf = office.get(&format!("/documents/{id}/pdf")).await;
    assert_eq!(pdf.headers.get("content-type").and_then(|v| v.to_str().ok()), Some("application/pdf"));
    assert!(pdf.body.starts_with("%PDF-"));
    let mut land_office = app.staff("zhoujun").await;
    let delivery = land_office.get("/api/v1/inbox").await.json()[0]["id"].as_i64().unwrap_or_default();
    let r = office.json(Method::POST, &format!("/api/v1/documents/{id}/withdraw"), json!({})).await;
    assert_eq!(r.json()["withdrawn"], 1);
    assert_eq!(land_office.get("/api/v1/inbox").await.json().as_array().map(Vec::len), Some(0), "gone from the inbox");
    assert_eq!(land_office.get(&format!("/api/v1/deliveries/{delivery}")).await.status, StatusCode::NOT_FOUND);
    let r = land_office.json(Method::POST, &format!("/api/v1/deliveries/{delivery}/sign"), json!({})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "nothing left to sign for");
}

/// The CA, seals for the service hall and 自然资源局 (whose office is 周军), and a numbered draft of
/// the hall; answers the hall office's client.
async fn seals_and_a_numbered_draft(app: &TestApp, title: &str) -> crate::support::Client {
    let mut office = app.staff("zhaomin").await;
    let id = office.json(Method::POST, "/api/v1/documents", draft(title)).await.json()["id"].as_i64().unwrap_or_default();
    seals_and_a_numbered_draft_of(app, office, id).await
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// Runs the outbox until it is empty (process ends reach the documents slice this way).
async fn dispatch(app: &TestApp) {
    let dispatcher = tongban_platform::outbox::Dispatcher::new(app.opened.db.clone(), tongban::boot::outbox_handlers(&app.opened));
    while dispatcher.dispatch_once(100).await.expect("dispatch") > 0 {}
}

/// The open to-do task of `c` for process instance `instance`.
async fn task_of(c: &mut crate::support::Client, instance: i64) -> Option<i64> {
    let tasks = c.get("/api/v1/workflow/tasks").await.json();
    tasks.as_array()?.iter().find(|t| t["instance_id"] == instance).and_then(|t| t["id"].as_i64())
}

#[tokio::test]
async fn a_draft_is_reviewed_and_signed_off_through_the_workflow_before_numbering() {
    let app = TestApp::demo().await;
    let mut office = app.staff("zhaomin").await;
    let id = office.json(Method::POST, "/api/v1/documents", draft("关于开展政务服务满意度测评的通知")).await.json()["id"]
        .as_i64()
        .unwrap_or_default();
    let r = office.json(Method::POST, &format!("/api/v1/documents/{id}/submit"), json!({"reviewer": "liuyang", "signer": "nobody"})).await;
    assert_eq!((r.status, r.json()["field"].clone()), (StatusCode::UNPROCESSABLE_ENTITY, json!("signer")));
    let r =
        office.json(Method::POST, &format!("/api/v1/documents/{id}/submit"), json!({"reviewer": "liuyang", "signer": "zhangwei"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let instance = r.json()["instance_id"].as_i64().unwrap_or_default();
    let r = office.json(Method::POST, &format!("/api/v1/documents/{id}/number"), json!({})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "not before sign-off");

    // 核稿 by the reviewer, then 签发 by the leader, each from their own to-do list.
    let mut reviewer = app.staff("liuyang").await;
    let mut leader = app.staff("zhangwei").await;
    assert_eq!(task_of(&mut leader, instance).await, None, "the leader's turn comes after review");
    let task = task_of(&mut reviewer, instance).await.expect("review task");
    let r = reviewer.json(Method::POST, &format!("/api/v1/workflow/tasks/{task}/complete"), json!({"opinion": "已核，文字无误。"})).await;
    assert!(r.status.is_success(), "{}", r.body);
    let task = task_of(&mut leader, instance).await.expect("sign-off task");
    let r = leader.json(Method::POST, &format!("/api/v1/workflow/tasks/{task}/complete"), json!({"opinion": "同意印发。"})).await;
    assert!(r.status.is_success(), "{}", r.body);
    dispatch(&app).await;

    let doc = office.get(&format!("/api/v1/documents/{id}")).await.json();
    assert_eq!(doc["status"], "signed_off");
    assert_eq!(doc["fields"]["signer"], "张伟", "签发人 filled in from the process");
    let r = office.json(Method::POST, &format!("/api/v1/documents/{id}/number"), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(app.audit_count("document.sign_off", "success").await, 1);
}

#[tokio::test]
async fn a_received_document_is_proposed_instructed_handled_and_archived() {
    let app = TestApp::demo().await;
    let land = app.unit_id("自然资源局").await;
    let mut office = seals_and_a_numbered_draft(&app, "收文办理测试").await;
    let id = app.scalar("SELECT MAX(id) FROM documents").await;
    let seal =
        app.scalar("SELECT s.id FROM seals s JOIN units u ON u.id = s.unit_id WHERE u.name = '行政审批服务局（政务服务中心）'").await;
    let body = json!({"seal_id": seal, "file_name": "a.pdf", "file": base64_encode(b"%PDF"), "recipients": [land]});
    assert_eq!(office.json(Method::POST, &format!("/api/v1/documents/{id}/issue"), body).await.status, StatusCode::OK);
    let mut land_office = app.staff("zhoujun").await;
    let delivery = land_office.get("/api/v1/inbox").await.json()[0]["id"].as_i64().unwrap_or_default();
    let housing = app.unit_id("住房和城乡建设局").await;
    let people = json!({"proposer": "zhoujun", "leader": "zhoujun", "handler_unit_ids": [land, housing]});
    let r = land_office.json(Method::POST, &format!("/api/v1/deliveries/{delivery}/register"), people.clone()).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "sign for it first");
    land_office.json(Method::POST, &format!("/api/v1/deliveries/{delivery}/sign"), json!({})).await;
    let none = json!({"proposer": "zhoujun", "leader": "zhoujun", "handler_unit_ids": []});
    let r = land_office.json(Method::POST, &format!("/api/v1/deliveries/{delivery}/register"), none).await;
    assert_eq!(r.json()["field"], "handler_unit_ids", "{}", r.body);
    let mut outsider = app.staff("huangli").await;
    let r = outsider.json(Method::POST, &format!("/api/v1/deliveries/{delivery}/register"), people).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "another unit's document");
    // Registered on the page, ticking both handling units.
    let (page, units) = (format!("/inbox/{delivery}"), [land.to_string(), housing.to_string()]);
    let form = [("proposer", "zhoujun"), ("leader", "zhoujun"), ("handler_units", units[0].as_str()), ("handler_units", units[1].as_str())];
    let r = land_office.post_form(&page, &format!("/inbox/{delivery}/register"), &form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let instance = app.scalar(&format!("SELECT instance_id FROM document_deliveries WHERE id = {delivery}")).await;

    // 拟办, 批示, then 承办 by both handling units in parallel (each claims from its queue).
    for (step, opinion) in [("propose", "拟请局长阅示，由规划科承办。"), ("instruct", "同意，请规划科抓紧落实。")]
    {
        let task = task_of(&mut land_office, instance).await.unwrap_or_else(|| panic!("{step} task"));
        let r = land_office.json(Method::POST, &format!("/api/v1/workflow/tasks/{task}/complete"), json!({"opinion": opinion})).await;
        assert!(r.status.is_success(), "{step}: {}", r.body);
    }
    do_task_of(&mut land_office, instance, "已按要求落实。").await;
    dispatch(&app).await;
    let open = app.scalar(&format!("SELECT COUNT(*) FROM document_deliveries WHERE id = {delivery} AND archived_at IS NULL")).await;
    assert_eq!(open, 1, "住建局 has not handled its part yet");
    let mut housing_staff = app.staff("xuhui").await;
    do_task_of(&mut housing_staff, instance, "住建部分已落实。").await;
    dispatch(&app).await;
    let archived = app.scalar(&format!("SELECT COUNT(*) FROM document_deliveries WHERE id = {delivery} AND archived_at IS NOT NULL")).await;
    assert_eq!(archived, 1, "办结 and archived");
    assert_eq!(app.audit_count("document.archive", "success").await, 1);
}

/// Claims (from a unit's queue, when needed) and completes `c`'s task in `instance`.
async fn do_task_of(c: &mut crate::support::Client, instance: i64, opinion: &str) {
    let task = task_of(c, instance).await.expect("a task in the to-do list");
    c.json(Method::POST, &format!("/api/v1/workflow/tasks/{task}/claim"), json!({})).await;
    let r = c.json(Method::POST, &format!("/api/v1/workflow/tasks/{task}/complete"), json!({"opinion": opinion})).await;
    assert!(r.status.is_success(), "{}", r.body);
}

#[tokio::test]
async fn two_units_countersign_in_parallel_one_sends_it_back_and_both_sign_again_before_sign_off() {
    let app = TestApp::demo().await;
    let (hall, land, housing) =
        (app.unit_id("行政审批服务局（政务服务中心）").await, app.unit_id("自然资源局").await, app.unit_id("住房和城乡建设局").await);
    let mut office = app.staff("zhaomin").await;
    let id = office.json(Method::POST, "/api/v1/documents", draft("关于联合开展工程建设项目审批提速的通知")).await.json()["id"]
        .as_i64()
        .unwrap_or_default();
    let submit = |units: Value| json!({"reviewer": "liuyang", "signer": "zhangwei", "countersign_unit_ids": units});
    for bad in [json!([hall]), json!([land, 999_999])] {
        let r = office.json(Method::POST, &format!("/api/v1/documents/{id}/submit"), submit(bad)).await;
        assert_eq!((r.status, r.json()["field"].clone()), (StatusCode::UNPROCESSABLE_ENTITY, json!("countersign_units")), "{}", r.body);
    }
    assert_eq!(app.scalar("SELECT COUNT(*) FROM wf_instances").await, 0, "nothing half-started");
    let r = office.json(Method::POST, &format!("/api/v1/documents/{id}/submit"), submit(json!([land, housing, land]))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let instance = r.json()["instance_id"].as_i64().unwrap_or_default();

    let (mut reviewer, mut leader) = (app.staff("liuyang").await, app.staff("zhangwei").await);
    let (mut land_staff, mut housing_staff, mut outsider) =
        (app.staff("zhoujun").await, app.staff("xuhui").await, app.staff("huangli").await);
    assert_eq!(task_of(&mut land_staff, instance).await, None, "countersigning comes after review");
    assert_eq!(land_staff.get(&format!("/api/v1/documents/{id}")).await.status, StatusCode::NOT_FOUND, "not yet theirs to read");
    do_task_of(&mut reviewer, instance, "已核。").await;

    // Both units have the task at once; each opens the draft; a third unit still cannot.
    assert_eq!(land_staff.get(&format!("/api/v1/documents/{id}")).await.status, StatusCode::OK);
    assert_eq!(housing_staff.get(&format!("/api/v1/documents/{id}")).await.status, StatusCode::OK);
    assert_eq!(outsider.get(&format!("/api/v1/documents/{id}")).await.status, StatusCode::NOT_FOUND);
    assert_eq!(task_of(&mut outsider, instance).await, None);
    do_task_of(&mut land_staff, instance, "同意。").await;
    assert_eq!(task_of(&mut leader, instance).await, None, "sign-off waits for every countersigning unit");

    // 住建局 disagrees and sends it back to review: nothing stays open at countersigning.
    let task = task_of(&mut housing_staff, instance).await.expect("housing countersign task");
    housing_staff.json(Method::POST, &format!("/api/v1/workflow/tasks/{task}/claim"), json!({})).await;
    let back = json!({"target": "review", "reason": "请补充住建部门的审批时限。"});
    let r = housing_staff.json(Method::POST, &format!("/api/v1/workflow/tasks/{task}/send-back"), back).await;
    assert!(r.status.is_success(), "{}", r.body);
    let states = office.get(&format!("/api/v1/documents/{id}/countersigns")).await.json();
    let states: Vec<(String, String)> = states
        .as_array()
        .map(|a| a.iter().map(|c| (c["unit"].as_str().unwrap_or("").into(), c["status"].as_str().unwrap_or("").into())).collect())
        .unwrap_or_default();
    assert_eq!(states, vec![("自然资源局".into(), "completed".into()), ("住房和城乡建设局".into(), "sent_back".into())]);

    do_task_of(&mut reviewer, instance, "已补充。").await;
    do_task_of(&mut housing_staff, instance, "同意。").await;
    assert_eq!(task_of(&mut leader, instance).await, None, "自然资源局 countersigns the corrected draft too");
    do_task_of(&mut land_staff, instance, "同意。").await;
    do_task_of(&mut leader, instance, "同意印发。").await;
    dispatch(&app).await;
    assert_eq!(office.get(&format!("/api/v1/documents/{id}")).await.json()["status"], "signed_off");
    let done = app
        .scalar(&format!(
            "SELECT COUNT(*) FROM wf_tasks WHERE instance_id = {instance} AND node_id = 'countersign' AND status = 'completed'"
        ))
        .await;
    assert_eq!(done, 3, "one unit twice, the other once after the send-back");
}

#[tokio::test]
async fn the_author_recalls_a_draft_from_review_and_others_cannot() {
    let app = TestApp::demo().await;
    let land = app.unit_id("自然资源局").await;
    let mut office = app.staff("zhaomin").await;
    let id =
        office.json(Method::POST, "/api/v1/documents", draft("关于调整窗口服务时间的通知")).await.json()["id"].as_i64().unwrap_or_default();
    let r = office.json(Method::POST, &format!("/api/v1/documents/{id}/recall"), json!({})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "a draft is not under review");
    let body = json!({"reviewer": "liuyang", "signer": "zhangwei", "countersign_unit_ids": [land]});
    let instance =
        office.json(Method::POST, &format!("/api/v1/documents/{id}/submit"), body).await.json()["instance_id"].as_i64().unwrap_or_default();
    let mut reviewer = app.staff("liuyang").await;
    do_task_of(&mut reviewer, instance, "已核。").await;

    let mut land_staff = app.staff("zhoujun").await;
    let r = land_staff.json(Method::POST, &format!("/api/v1/documents/{id}/recall"), json!({})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "a countersigning unit reads it but cannot recall it");
    let mut outsider = app.staff("huangli").await;
    assert_eq!(outsider.json(Method::POST, &format!("/api/v1/documents/{id}/recall"), json!({})).await.status, StatusCode::NOT_FOUND);

    let r = office.json(Method::POST, &format!("/api/v1/documents/{id}/recall"), json!({})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(office.get(&format!("/api/v1/documents/{id}")).await.json()["status"], "draft", "at once, not after the outbox");
    assert_eq!(task_of(&mut land_staff, instance).await, None, "the countersigning task is gone");
    assert_eq!(land_staff.get(&format!("/api/v1/documents/{id}")).await.status, StatusCode::NOT_FOUND, "and so is their access");
    assert_eq!(app.audit_count("document.recall", "success").await, 1);
    dispatch(&app).await;
    assert_eq!(office.get(&format!("/api/v1/documents/{id}")).await.json()["status"], "draft");
    // The draft can be changed and sent again.
    let r =
        office.json(Method::POST, &format!("/api/v1/documents/{id}/submit"), json!({"reviewer": "liuyang", "signer": "zhangwei"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

#[tokio::test]
async fn attachments_are_checked_kept_once_sealed_with_the_document_and_read_by_its_recipients_only() {
    let app = TestApp::demo().await;
    let land = app.unit_id("自然资源局").await;
    let mut office = app.staff("zhaomin").await;
    let id =
        office.json(Method::POST, "/api/v1/documents", draft("关于印发审批材料清单的通知")).await.json()["id"].as_i64().unwrap_or_default();
    let page = format!("/documents/{id}");
    let upload = format!("/documents/{id}/attachments");
    let pdf: &[u8] = "%PDF-1.7 附件1：审批材料清单".as_bytes();
    for (name, bytes) in [("附件1.pdf", pdf), ("附件1-副本.pdf", pdf), ("印章.png", crate::pki::SEAL_PNG), ("去掉的.pdf", b"%PDF-1.7 x")]
    {
        let r = office.post_multipart_bytes(&page, &upload, &[], ("file", name, bytes)).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{name}: {}", r.body);
    }
    for (name, bytes) in [("run.exe", &b"MZ\x90\x00"[..]), ("假的.pdf", crate::pki::SEAL_PNG), ("空.pdf", b"")] {
        let r = office.post_multipart_bytes(&page, &upload, &[], ("file", name, bytes)).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{name} refused");
    }
    let rows = app.scalar(&format!("SELECT COUNT(*) FROM document_attachments WHERE document_id = {id}")).await;
    let distinct = app.scalar(&format!("SELECT COUNT(DISTINCT sm3) FROM document_attachments WHERE document_id = {id}")).await;
    assert_eq!((rows, distinct), (4, 3), "the same file twice is stored once");
    let gone = app.scalar(&format!("SELECT id FROM document_attachments WHERE document_id = {id} AND file_name = '去掉的.pdf'")).await;
    let r = office.post_form(&page, &format!("/documents/{id}/attachments/{gone}/delete"), &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);

    let listed = office.get(&format!("/api/v1/documents/{id}/attachments")).await.json();
    let names: Vec<&str> = listed.as_array().map(|a| a.iter().filter_map(|x| x["file_name"].as_str()).collect()).unwrap_or_default();
    assert_eq!(names, ["附件1.pdf", "附件1-副本.pdf", "印章.png"]);

    // Shown in the page: PDF in a frame of tongban's own pages only, images inline.
    let first = app.scalar(&format!("SELECT MIN(id) FROM document_attachments WHERE document_id = {id}")).await;
    let r = office.get(&format!("/documents/{id}/attachments/{first}")).await;
    assert_eq!((r.status, r.body.as_bytes()), (StatusCode::OK, pdf));
    assert_eq!(r.headers[header::CONTENT_TYPE], "application/pdf");
    assert!(r.headers[header::CONTENT_DISPOSITION].to_str().unwrap_or("").starts_with("inline"));
    assert_eq!(r.headers[header::X_FRAME_OPTIONS], "SAMEORIGIN");
    let r = office.get(&format!("/documents/{id}/attachments/{first}?download=1")).await;
    assert!(r.headers[header::CONTENT_DISPOSITION].to_str().unwrap_or("").starts_with("attachment"));
    assert_eq!(office.get(&page).await.headers[header::X_FRAME_OPTIONS], "DENY", "pages themselves are never framed");
    let mut outsider = app.staff("huangli").await;
    assert_eq!(outsider.get(&format!("/documents/{id}/attachments/{first}")).await.status, StatusCode::NOT_FOUND);
    let r = outsider.post_multipart_bytes("/documents", &upload, &[], ("file", "混入.pdf", pdf)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "another unit cannot attach to the draft");
    let r = outsider.post_form("/documents", &format!("/documents/{id}/attachments/{first}/delete"), &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "nor remove from it");

    // Issued: the attachments' digests are sealed with it; the recipient reads them, nobody else.
    let mut office = seals_and_a_numbered_draft_of(&app, office, id).await;
    let seal =
        app.scalar("SELECT s.id FROM seals s JOIN units u ON u.id = s.unit_id WHERE u.name = '行政审批服务局（政务服务中心）'").await;
    let body = json!({"seal_id": seal, "file_name": "a.pdf", "file": base64_encode(b"%PDF-1.7 body"), "recipients": [land]});
    let r = office.json(Method::POST, &format!("/api/v1/documents/{id}/issue"), body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = office.post_multipart_bytes(&page, &upload, &[], ("file", "晚了.pdf", pdf)).await;
    assert!(r.status == StatusCode::UNPROCESSABLE_ENTITY && r.body.contains("不能再修改"), "an issued document's attachments are fixed");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM documents WHERE package IS NOT NULL").await, 0, "the package is in the blob store");
    let mut land_office = app.staff("zhoujun").await;
    let delivery = land_office.get("/api/v1/inbox").await.json()[0]["id"].as_i64().unwrap_or_default();
    let r = land_office.get(&format!("/inbox/{delivery}")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body.matches("已随公文签章").count(), 3, "every attachment is among the sealed digests");
    let r = land_office.get(&format!("/documents/{id}/attachments/{first}")).await;
    assert_eq!((r.status, r.body.as_bytes()), (StatusCode::OK, pdf));
    let r = land_office.get(&format!("/inbox/{delivery}/file")).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "%PDF-1.7 body"), "the sealed file, from the package in the blob store");
    assert_eq!(outsider.get(&format!("/documents/{id}/attachments/{first}")).await.status, StatusCode::NOT_FOUND);
    let package = land_office.get(&format!("/inbox/{delivery}/package")).await.body;
    let v = tongban_pki::package::verify_package(package.as_bytes());
    assert!(v.content_intact && v.signature_valid, "{:?}", v.problems);
    assert_eq!(v.metadata["attachments"].as_array().map(Vec::len), Some(3));
    // Withdrawn: the recipient's access ends.
    office.json(Method::POST, &format!("/api/v1/documents/{id}/withdraw"), json!({})).await;
    assert_eq!(land_office.get(&format!("/documents/{id}/attachments/{first}")).await.status, StatusCode::NOT_FOUND);
}

/// Seals for the hall and 自然资源局, 周军 as his bureau's office, and the hall's draft `id` numbered.
async fn seals_and_a_numbered_draft_of(app: &TestApp, mut office: crate::support::Client, id: i64) -> crate::support::Client {
    crate::pki::ca(app).await;
    let (hall, land) = (app.unit_id("行政审批服务局（政务服务中心）").await, app.unit_id("自然资源局").await);
    seals_for(app, &[hall, land]).await;
    make_office(app, "zhoujun").await;
    let r = office.json(Method::POST, &format!("/api/v1/documents/{id}/number"), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    office
}

#[tokio::test]
async fn a_document_sent_to_a_distribution_group_reaches_each_of_its_units() {
    let app = TestApp::demo().await;
    let (hall, office_unit) = (app.unit_id("行政审批服务局（政务服务中心）").await, app.unit_id("县政府办公室").await);
    let (land, housing) = (app.unit_id("自然资源局").await, app.unit_id("住房和城乡建设局").await);
    let mut office = seals_and_a_numbered_draft(&app, "关于联合审批的通知").await;
    let groups = office.get(&format!("/api/v1/units/{hall}/document-groups")).await.json();
    assert_eq!(groups[0]["name"], "审批联办单位", "the demo's group");
    assert_eq!(groups[0]["members"].as_array().map(Vec::len), Some(3));
    let joint = groups[0]["id"].as_i64().unwrap_or_default();
    let mut outsider = app.staff("huangli").await;
    assert_eq!(outsider.get(&format!("/api/v1/units/{hall}/document-groups")).await.status, StatusCode::FORBIDDEN);
    let r = outsider
        .json(Method::POST, &format!("/api/v1/units/{hall}/document-groups"), json!({"name": "x", "member_unit_ids": [land]}))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let path = format!("/api/v1/units/{hall}/document-groups");
    for (body, field) in [
        (json!({"name": " ", "member_unit_ids": [land]}), "name"),
        (json!({"name": "本单位", "member_unit_ids": [hall]}), "members"),
        (json!({"name": "不存在", "member_unit_ids": [land, 999_999]}), "members"),
        (json!({"name": "审批联办单位", "member_unit_ids": [land]}), "name"),
    ] {
        let r = office.json(Method::POST, &path, body).await;
        assert_eq!((r.status, r.json()["field"].clone()), (StatusCode::UNPROCESSABLE_ENTITY, json!(field)), "{}", r.body);
    }
    let r = office.json(Method::POST, &path, json!({"name": "规划住建", "member_unit_ids": [land, housing, land]})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let planning = r.json()["id"].as_i64().unwrap_or_default();

    // Another unit's group cannot be used to send.
    let theirs = app.scalar(&format!("SELECT id FROM document_groups WHERE unit_id = {office_unit}")).await;
    let id = app.scalar("SELECT MAX(id) FROM documents").await;
    let seal =
        app.scalar("SELECT s.id FROM seals s JOIN units u ON u.id = s.unit_id WHERE u.name = '行政审批服务局（政务服务中心）'").await;
    let send = |groups: Value, recipients: Value| json!({"seal_id": seal, "file_name": "a.pdf", "file": base64_encode(b"%PDF"), "recipients": recipients, "group_ids": groups});
    let r = office.json(Method::POST, &format!("/api/v1/documents/{id}/issue"), send(json!([theirs]), json!([]))).await;
    assert_eq!((r.status, r.json()["field"].clone()), (StatusCode::UNPROCESSABLE_ENTITY, json!("groups")));
    let r = office.json(Method::POST, &format!("/api/v1/documents/{id}/issue"), send(json!([joint, planning]), json!([office_unit]))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["recipients"], 4, "three bureaus once each, and the county office");
    let names = app.scalar(&format!("SELECT COUNT(DISTINCT recipient_unit_id) FROM document_deliveries WHERE document_id = {id}")).await;
    assert_eq!(names, 4);

    assert_eq!(
        outsider.json(Method::DELETE, &format!("/api/v1/document-groups/{planning}"), json!({})).await.status,
        StatusCode::NOT_FOUND
    );
    let r = office.json(Method::DELETE, &format!("/api/v1/document-groups/{planning}"), json!({})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(app.audit_count("document.group.delete", "success").await, 1);
}
