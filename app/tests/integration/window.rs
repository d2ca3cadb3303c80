//! Window registration (窗口收件) through the API, as a county's service-hall software does it:
//! checked applicant, form and materials; refusals naming the field with nothing stored; the case
//! runs like an online one; the applicant is told by SMS; the result is handed over at the window.

use axum::http::{Method, StatusCode};
use base64::Engine;
use serde_json::{Value, json};

use crate::{
    approval::{complete_task, settle},
    support::TestApp,
};

fn pdf(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("%PDF-1.7 {text}"))
}

fn application(item: i64) -> Value {
    json!({
        "item_id": item,
        "applicant": {"kind": "person", "name": "李秀英", "cert_no": "11010519491231002X", "phone": "13900000051"},
        "form": {"operator_name": "李秀英", "id_number": "11010519491231002X", "address": "嘉禾县珠泉镇解放路12号", "contact_phone": "13900000051"},
        "materials": [
            {"index": 0, "file_name": "申请书.pdf", "content_base64": pdf("form")},
            {"index": 1, "file_name": "身份证.pdf", "content_base64": pdf("id")},
            {"index": 2, "file_name": "租赁合同.pdf", "content_base64": pdf("lease")},
        ],
    })
}

#[tokio::test]
async fn the_service_hall_registers_at_the_window_and_hands_over_the_result() {
    let app = TestApp::demo().await;
    let item = app.scalar("SELECT id FROM approval_items WHERE name = '个体工商户设立登记'").await;
    let mut clerk = app.staff("liuyang").await;

    // Refusals name the field and store nothing.
    let cases_before = app.scalar("SELECT COUNT(*) FROM approval_cases").await;
    let mut bad = application(item);
    bad["applicant"]["cert_no"] = json!("110105194912310021");
    let r = clerk.json(Method::POST, "/api/v1/cases", bad).await;
    assert_eq!((r.status, r.json()["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("applicant.cert_no")), "{}", r.body);
    let mut bad = application(item);
    bad["materials"][1]["content_base64"] = json!("not base64!");
    let r = clerk.json(Method::POST, "/api/v1/cases", bad).await;
    assert_eq!(r.json()["field"].as_str(), Some("materials[1].content_base64"), "{}", r.body);
    let mut bad = application(item);
    bad["materials"][2]["file_name"] = json!("合同.exe");
    let r = clerk.json(Method::POST, "/api/v1/cases", bad).await;
    assert_eq!(r.json()["field"].as_str(), Some("materials[2].file_name"), "{}", r.body);
    let mut bad = application(item);
    bad["materials"].as_array_mut().map(|m| m.pop());
    let r = clerk.json(Method::POST, "/api/v1/cases", bad).await;
    assert_eq!(r.json()["field"].as_str(), Some("materials[2]"), "a required material is missing: {}", r.body);
    let mut bad = application(item);
    bad["form"]["address"] = json!("");
    let r = clerk.json(Method::POST, "/api/v1/cases", bad).await;
    assert_eq!(r.json()["field"].as_str(), Some("form.address"), "{}", r.body);
    let mut bad = application(item);
    bad["applicant"]["kind"] = json!("enterprise");
    bad["applicant"]["cert_no"] = json!("91431024MA4L0TB2XJ");
    let r = clerk.json(Method::POST, "/api/v1/cases", bad).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let r = clerk.json(Method::POST, "/api/v1/cases", json!({"item_id": item, "applicant": {}, "extra": 1})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "unknown or missing fields: {}", r.body);
    let mut office = app.staff("zhangwei").await;
    assert_eq!(office.json(Method::POST, "/api/v1/cases", application(item)).await.status, StatusCode::FORBIDDEN, "only the window");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM approval_cases").await, cases_before, "nothing half-written");

    // Registered: a JC number, in the acceptance queue, materials stored under their SM3.
    let r = clerk.json(Method::POST, "/api/v1/cases", application(item)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let receipt = r.json();
    let (case, number) = (receipt["case_id"].as_i64().unwrap_or_default(), receipt["number"].as_str().unwrap_or_default().to_string());
    assert!(number.starts_with("JC") && number.len() == 15, "{number}");
    let r = clerk.get(&format!("/api/v1/cases?number={}", number.to_lowercase())).await.json();
    assert_eq!(r.as_array().and_then(|l| l.first()).map(|c| c["id"].clone()), Some(json!(case)), "found by number");
    let pending = clerk.get("/api/v1/cases").await.json();
    assert!(pending.as_array().is_some_and(|l| l.iter().any(|c| c["number"] == number.as_str())));
    let r = clerk.get(&format!("/api/v1/cases/{case}")).await.json();
    assert_eq!((r["channel"].as_str(), r["materials"].as_array().map(Vec::len)), (Some("window"), Some(3)));
    assert_eq!(r["applicant"]["name"], "李秀英");
    assert_eq!(app.audit_count("approval.case.register", "success").await, 1);

    // A supplement: the applicant brings the missing page to the window.
    let r = clerk.json(Method::POST, &format!("/api/v1/cases/{case}/supplement"), json!({"items": ["租赁合同缺少出租方签字页"]})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let r = clerk.json(Method::POST, &format!("/api/v1/cases/{case}/supplement-answer"), json!({"materials": []})).await;
    assert_eq!(r.json()["field"].as_str(), Some("materials"));
    let more = json!({"materials": [{"index": 2, "file_name": "签字页.pdf", "content_base64": pdf("signed")}]});
    let r = clerk.json(Method::POST, &format!("/api/v1/cases/{case}/supplement-answer"), more.clone()).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let r = clerk.json(Method::POST, &format!("/api/v1/cases/{case}/supplement-answer"), more).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "answered once");
    assert_eq!(app.scalar(&format!("SELECT COUNT(*) FROM case_materials WHERE case_id = {case}")).await, 4);

    // Accept → the market regulator registers → granted; the applicant is told by SMS.
    let r = clerk.json(Method::POST, &format!("/api/v1/cases/{case}/accept"), json!({})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    complete_task(&app, "huangli", &number, "register", "材料齐全，准予登记", None).await;
    settle(&app).await;
    let r = clerk.get(&format!("/api/v1/cases/{case}")).await.json();
    assert_eq!(r["summary"]["status"], "approved", "{r}");
    let texts = app.scalar("SELECT COUNT(*) FROM notify_messages WHERE recipient = '13900000051' AND channel = 'sms'").await;
    assert_eq!(texts, 3, "supplement, accepted and decided, each by SMS");
    assert_eq!(
        app.scalar(&format!("SELECT COUNT(*) FROM intake_applications WHERE number = '{number}'")).await,
        0,
        "no public-side record"
    );

    // The hall software fetches the document and records the hand-over.
    let r = clerk.get(&format!("/api/v1/cases/{case}/result")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("准予行政许可决定书") && r.body.contains("李秀英") && r.body.contains("嘉禾县市场监督管理局"), "{}", r.body);
    let r = clerk.json(Method::POST, &format!("/api/v1/cases/{case}/deliver"), json!({"method": "courier", "note": "x"})).await;
    assert_eq!(r.json()["field"].as_str(), Some("method"));
    let r = clerk.json(Method::POST, &format!("/api/v1/cases/{case}/deliver"), json!({"method": "window", "note": "李秀英本人领取"})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let r = clerk.json(Method::POST, &format!("/api/v1/cases/{case}/deliver"), json!({"method": "window", "note": "again"})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "delivered once");
    let r = clerk.get(&format!("/cases/{case}")).await;
    assert!(r.body.contains("窗口领取：李秀英本人领取"), "{}", r.body);
    let mut other = app.staff("heping").await;
    assert_eq!(other.get(&format!("/api/v1/cases/{case}/result")).await.status, StatusCode::NOT_FOUND, "not for outsiders");
    let r = other.json(Method::POST, &format!("/api/v1/cases/{case}/deliver"), json!({"method": "window", "note": "x"})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}
