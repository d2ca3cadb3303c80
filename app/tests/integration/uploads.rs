//! Upload and body limits: uploads up to `server.max_upload_bytes`, other bodies up to
//! `server.max_body_bytes`; an oversized body answers 413 naming what was too large — JSON under
//! /api/, a page elsewhere — whether its length was declared or not (chunked).

use axum::http::{Method, StatusCode, header};
use serde_json::json;

use crate::{approval::citizen, support::TestApp};

fn pdf_of(size: usize) -> Vec<u8> {
    let mut v = b"%PDF-1.7\n".to_vec();
    v.resize(size, b'0');
    v
}

#[tokio::test]
async fn materials_up_to_the_configured_limit_are_accepted_and_larger_ones_named() {
    let app = TestApp::demo().await;
    let mut ent = citizen(&app, &crate::approval::credit_code(), "13900000095", "enterprise").await;
    let item = app.scalar("SELECT id FROM approval_items WHERE code = '431024-XK-ZR-001'").await.to_string();
    let r = ent.post_form(&format!("/guide/{item}"), "/public/applications", &[("item_id", &item)]).await;
    let page = r.location().to_string();
    let upload = format!("{page}/materials");

    // 3 MB: over axum's 2 MB default, within the documented 10 MiB.
    let r = ent.post_multipart_bytes(&page, &upload, &[("material_index", "0")], ("file", "图纸.pdf", &pdf_of(3 * 1024 * 1024))).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM intake_materials").await, 1);

    // 11 MiB: refused with a page that names the material.
    let r = ent.post_multipart_bytes(&page, &upload, &[("material_index", "1")], ("file", "大图.pdf", &pdf_of(11 * 1024 * 1024))).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(r.headers[header::CONTENT_TYPE].to_str().is_ok_and(|t| t.starts_with("text/html")), "a page");
    assert!(r.body.contains("材料") && r.body.contains("文件过大") && !r.body.contains("流程文件"), "{}", r.body);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM intake_materials").await, 1, "nothing stored");

    // A file within the body limit but over the upload check names the material too.
    let app_small = TestApp::with(|c| c.server.max_upload_bytes = 4 * 1024 * 1024, true).await;
    let mut ent = citizen(&app_small, &crate::approval::credit_code(), "13900000096", "enterprise").await;
    let r = ent.post_form(&format!("/guide/{item}"), "/public/applications", &[("item_id", &item)]).await;
    let page = r.location().to_string();
    let r = ent.post_multipart_bytes(&page, &format!("{page}/materials"), &[("material_index", "0")], ("file", "a.exe", b"MZ")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("材料") && !r.body.contains("流程文件"), "{}", r.body);
}

#[tokio::test]
async fn oversized_api_bodies_answer_json_whether_declared_or_chunked() {
    let app = TestApp::demo().await;
    let mut clerk = app.staff("liuyang").await;
    let big = format!("{{\"reason\": \"{}\"}}", "x".repeat(3 * 1024 * 1024));
    // No Content-Length: read until the limit fails the read (as a chunked body is).
    let r = clerk.raw(Method::POST, "/api/v1/cases/1/refuse", "application/json", &big).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", &r.body[..r.body.len().min(200)]);
    assert_eq!(r.json()["code"], json!("too_large"));
    assert!(r.json()["message"].as_str().is_some_and(|m| m.contains("过大")), "{}", r.body);
    // Declared too large: refused before reading.
    let r = clerk
        .request(Method::POST, "/api/v1/cases/1/refuse", &[("content-type", "application/json"), ("content-length", "99999999")], "{}")
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.json()["code"], json!("too_large"));
    // An attachment over the upload limit on the API names the attachment.
    let r = clerk
        .request(
            Method::POST,
            "/api/v1/documents/1/attachments",
            &[("content-type", "multipart/form-data; boundary=x"), ("content-length", "20000000")],
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!((r.json()["code"].as_str(), r.json()["field"].as_str()), (Some("too_large"), Some("attachment")), "{}", r.body);
    assert!(r.json()["message"].as_str().is_some_and(|m| m.starts_with("附件")), "{}", r.body);
}
